"""Compiled kinetic model and its fast simulation.

``Network.compile(reduce_fast=True) -> Model``; ``Model.simulate(...) -> SimResult``
(contract in docs/architecture.md, "Kinetics model").

Integration: LSODA (ODEPACK, through ``scipy.integrate.odeint``: the Fortran driver loop,
much less Python overhead per step than ``solve_ivp(method='LSODA')``) with the
sympy-generated analytic Jacobian by default; ``solve_ivp``'s BDF and Radau are offered by
option (typically 5-10x slower on these small stiff systems).  A failed LSODA segment
is retried with a small first step and then redone with BDF (RuntimeWarning).  With numba
on (``FLOWCELL_NUMBA=1``) the default ``method='auto'`` runs the whole simulation in one
compiled RODAS4 loop instead (:mod:`kinetics.compiled_run`), LSODA if that fails.

A piecewise-constant current (a table, or a ``flowcell.simulate.protocol.CurrentSchedule``) is
integrated segment by segment between the
current steps, so step edges are exact breakpoints and the right-hand side does not
evaluate the current at all: the solver calls the generated code directly, with the
parameters and the segment's current bound (:meth:`kinetics.codegen.Compiled.ode_functions`),
and counts the calls itself.  The DataFrames of :class:`SimResult` are built on first use.  A callable current is evaluated at every right-hand-side
call; pass ``breakpoints=`` for its discontinuities.

Units: concentrations mol/L, time s, current A (> 0 charging = reducing the anolyte),
volume L.  The electrode electron flux is ``i = I / (F V)`` in mol e-/(L s)
(docs/physics.md §1.1, §2.1).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.integrate import odeint, solve_ivp

from kinetics.codegen import Compiled, compile_network
from kinetics.compiled_run import compiled_run
from kinetics.constants import F
from kinetics.network import Network, NetworkError

__all__ = ["Model", "SimResult", "piecewise_current"]

CurrentLike = Callable[[float], float] | tuple[Sequence[float], Sequence[float]] | None


@dataclass
class SimResult:
    """Result of :meth:`Model.simulate`.

    Attributes
    ----------
    t_s : ndarray
        Output times, s.
    Y : ndarray
        Concentrations (n_t, n_species), mol/L, in ``species`` order (algebraic ones included).
    X : ndarray
        The integrated state (n_t, n_state), in ``state_names`` order (slow variables of the
        reduced model, or all species).
    species, state_names : list of str
    soc : ndarray
        ``n_e / (n_max C_act(t0))``: SOC on the initial active total (docs/physics.md §1.1).
    soc_active : ndarray
        ``n_e / (n_max C_act(t))``: SOC on the current active total.
    current_A : ndarray
        Current at the output times, A (> 0 charging).
    C_act : ndarray
        Active quinone, monomer units, mol/L.
    n_e : ndarray
        Electrons stored in the active pool, mol/L.
    params : dict
        Parameter values used.
    stats : dict
        ``nfev``, ``njev`` (counted by the solver), ``retries``, ``wall_s``, ``method``,
        ``reduced``, ``segments``.
    conc, state : DataFrame
        ``Y`` and ``X`` indexed by ``t_s`` (built on first access: a fit that reads arrays
        does not pay for them).
    """

    t_s: np.ndarray
    Y: np.ndarray
    X: np.ndarray
    species: list[str]
    state_names: list[str]
    soc: np.ndarray
    soc_active: np.ndarray
    current_A: np.ndarray
    C_act: np.ndarray
    n_e: np.ndarray
    params: dict[str, float]
    stats: dict[str, Any] = field(default_factory=dict)
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _frame(self, name: str, values: np.ndarray, columns: list[str]) -> pd.DataFrame:
        if name not in self._frames:
            self._frames[name] = pd.DataFrame(values, index=pd.Index(self.t_s, name="t_s"),
                                              columns=list(columns), copy=False)
        return self._frames[name]

    @property
    def conc(self) -> pd.DataFrame:
        """Concentrations, mol/L: index ``t_s``, one column per species."""
        return self._frame("conc", self.Y, self.species)

    @property
    def state(self) -> pd.DataFrame:
        """The integrated state: index ``t_s``, one column per ``state_names``."""
        return self._frame("state", self.X, self.state_names)

    def __getitem__(self, species: str) -> np.ndarray:
        """Concentration of one species, mol/L."""
        try:
            return self.Y[:, self.species.index(species)]
        except ValueError:
            raise KeyError(f"unknown species {species!r}; the model has {self.species}") from None


def piecewise_current(steps: Sequence[tuple[float, float]], t0_s: float = 0.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Build a piecewise-constant current table from ``[(duration_s, I_A), ...]``.

    Returns ``(t_edges_s, I_A)`` with ``len(t_edges_s) == len(I_A) + 1``; the current is
    0 after the last edge.  A rest is ``(duration_s, 0.0)``.
    """
    d = np.array([s[0] for s in steps], dtype=float)
    if np.any(d < 0):
        raise ValueError("piecewise_current: durations must be >= 0 s")
    edges = t0_s + np.concatenate([[0.0], np.cumsum(d)])
    return edges, np.array([s[1] for s in steps], dtype=float)


def _first_step(fun: Callable, jf: Callable | None, x0: np.ndarray, a: float, b: float, rtol: float,
                atol: float) -> float:
    """A first step for a stiff segment, s: the smaller of ``0.01 |x|/|x'|`` (weighted RMS
    norms, Hairer-Norsett-Wanner's first guess) and ``1/|J|_inf`` (the explicit stability
    limit LSODA's initial Adams steps must respect), bounded to ``[1e-12, b - a]`` (and
    ``1e-6`` s when the state does not move, e.g. a rest at equilibrium)."""
    span = b - a
    xs = x0.tolist()
    ws = [atol + rtol * abs(v) for v in xs]
    fs = np.asarray(fun(a, x0), float).tolist()
    n = max(len(xs), 1)
    d0 = math.sqrt(sum((v / w) ** 2 for v, w in zip(xs, ws)) / n)
    d1 = math.sqrt(sum((v / w) ** 2 for v, w in zip(fs, ws)) / n)
    h = 0.01 * d0 / d1 if d0 > 1e-5 and d1 > 1e-5 else 1e-6
    if jf is not None:
        rows = np.asarray(jf(a, x0), float).tolist()
    else:  # forward differences (a handful of calls for these small systems)
        cols = []
        for k in range(len(xs)):
            dx = 1.49e-8 * max(abs(xs[k]), atol / rtol if rtol > 0 else 1e-8)
            xp = x0.copy()
            xp[k] += dx
            cols.append([(u - v) / dx for u, v in zip(np.asarray(fun(a, xp), float).tolist(), fs)])
        rows = [list(r) for r in zip(*cols)]
    rho = max((sum(abs(v) for v in r) for r in rows), default=0.0)
    if math.isfinite(rho) and rho > 0:
        h = min(h, 1.0 / rho)
    return float(min(max(h, 1e-12), span)) if math.isfinite(h) else 1e-6


def _solver_count(cumulative: np.ndarray, ok: bool) -> int:
    """Calls counted by odeint (cumulative per output time).  After a failure the entries
    past the failing output are not set (arbitrary memory): count the valid prefix only."""
    if ok or cumulative.size == 0:
        return int(cumulative[-1]) if cumulative.size else 0
    c = cumulative.astype(np.int64)
    bad = np.flatnonzero((c < 0) | (np.diff(c, prepend=0) < 0))
    return int(c[:bad[0]].max(initial=0)) if bad.size else int(c[-1])


class _TooMuchWork(Exception):
    """Internal: the solver exceeded ``max_nfev`` on a segment."""


class _Table:
    """Piecewise-constant current: value ``I[k]`` on ``[t[k], t[k+1])``."""

    def __init__(self, t: np.ndarray, I: np.ndarray, after: float | None) -> None:
        self.t = t
        self.I = I
        self.after = after  # value after the last start (None = keep the last value)
        # value by np.searchsorted(t, ts, 'right'): 0 before the first start, I[k-1], then 'after'
        self._pad = np.concatenate(([0.0], np.asarray(I, float), [0.0 if after is None else float(after)]))

    def many(self, ts: np.ndarray) -> np.ndarray:
        return self._pad[np.searchsorted(self.t, ts, side="right")]

    def __call__(self, ts: float) -> float:
        k = int(np.searchsorted(self.t, ts, side="right")) - 1
        if k < 0:
            return 0.0
        if k >= len(self.I):
            return 0.0 if self.after is None else float(self.after)
        return float(self.I[k])


def _current(current_A: Any) -> tuple[Callable[[float], float], np.ndarray, bool]:
    """Return (I(t), breakpoints, piecewise_constant)."""
    if current_A is None:
        return (lambda t: 0.0), np.array([]), True
    if hasattr(current_A, "t_edges_s") and hasattr(current_A, "current_A"):
        edges = np.asarray(current_A.t_edges_s, float)
        return _Table(edges, np.asarray(current_A.current_A, float), 0.0), edges, True
    if isinstance(current_A, tuple) and len(current_A) == 2:
        t = np.asarray(current_A[0], float)
        I = np.asarray(current_A[1], float)
        if np.any(np.diff(t) < 0):
            raise ValueError("current table: times must be increasing")
        if len(t) == len(I) + 1:
            return _Table(t, I, 0.0), t, True
        if len(t) == len(I):
            return _Table(t, I, None), t, True
        raise ValueError(f"current table: {len(t)} times for {len(I)} currents "
                         "(need equal lengths, or one more edge than currents)")
    if callable(current_A):
        return (lambda t: float(current_A(t))), np.array([]), False
    if np.isscalar(current_A):
        v = float(current_A)
        return (lambda t: v), np.array([]), True
    raise TypeError("current_A must be None, a number, a callable I(t_s) -> A, "
                    "a (t_s, I_A) table or a CurrentSchedule")


class Model:
    """A network compiled to numeric ODEs (full stiff or fast-equilibrium reduced).

    Attributes
    ----------
    network : Network
    reduced : bool
        True when fast reactions are replaced by their equilibria (docs/physics.md §2.2).
    species : list[str]
        Every species reported in ``SimResult.conc``.
    param_names : list[str]
    defaults : dict[str, float]
        Parameter defaults from the network (docs/physics.md §2.6 placeholders in the library).
    state_names : list[str]
        Names of the integrated variables (``C_act``, ``n_e``, ``A_tot``, ... when reduced).
    """

    def __init__(self, network: Network, reduce_fast: bool = True) -> None:
        self.network = network
        self._c: Compiled = compile_network(network)
        has_fast = bool(self._c.fast_reactions.any())
        if reduce_fast and has_fast and self._c.reduce_error:
            raise NetworkError(self._c.reduce_error)
        self.reduced = bool(reduce_fast and has_fast)
        self.species: list[str] = list(network.species_names)
        self.param_names: list[str] = list(network.param_names)
        self.defaults: dict[str, float] = network.defaults
        self.state_names: list[str] = list(self._c.slow_names) if self.reduced else list(self.species)
        act = [network.species_info(s) for s in self.species]
        self._w_units = np.array([s.units if s.active else 0 for s in act], dtype=float)
        self._w_e = np.array([s.electrons if s.active else 0 for s in act], dtype=float)
        self._layout: tuple[np.ndarray, ...] | None = None  # kinetics.compiled_run's: blocks and
        self._invariants: dict[Any, np.ndarray] = {}  # conservation laws

    # ------------------------------------------------------------------ helpers
    def __repr__(self) -> str:
        return (f"Model({self.network.name!r}, reduced={self.reduced}, species={self.species}, "
                f"state={self.state_names})")

    def param_vector(self, params: Mapping[str, float] | None = None) -> np.ndarray:
        """Parameter vector in ``param_names`` order (defaults overridden by ``params``)."""
        params = dict(params or {})
        bad = sorted(set(params) - set(self.param_names))
        if bad:
            raise KeyError(f"unknown parameters {bad}; the model has {self.param_names}")
        vals = {**self.defaults, **{k: float(v) for k, v in params.items()}}
        missing = [n for n in self.param_names if n not in vals]
        if missing:
            raise KeyError(f"missing parameters {missing} (no default in the network)")
        return np.array([vals[n] for n in self.param_names], dtype=float)

    def y_vector(self, y0: Mapping[str, float]) -> np.ndarray:
        """Species vector (mol/L) from a dict; absent species are 0."""
        bad = sorted(set(y0) - set(self.species))
        if bad:
            raise KeyError(f"unknown species {bad} in y0; the model has {self.species}")
        y = np.array([float(y0.get(s, 0.0)) for s in self.species])
        if np.any(y < 0):
            raise ValueError(f"y0 has negative concentrations: {dict(y0)}")
        return y

    def equilibrate(self, y0: Mapping[str, float], params: Mapping[str, float] | None = None
                    ) -> dict[str, float]:
        """Project ``y0`` onto the fast equilibria, keeping the slow invariants (mol/L)."""
        p = self.param_vector(params)
        y = self.y_vector(y0)
        if self._c.blocks:
            y = self._c.y_of_z(self._c.P @ y, p)
        return dict(zip(self.species, map(float, y)))

    def y0_from_soc(self, C_tot_M: float, soc: float, params: Mapping[str, float] | None = None
                    ) -> dict[str, float]:
        """Equilibrium initial state for active total ``C_tot_M`` (mol/L) at SOC ``soc``."""
        roles = self._quinone_roles()
        y0 = {roles["O"]: C_tot_M * (1.0 - soc), roles["H"]: C_tot_M * soc}
        return self.equilibrate(y0, params)

    def _quinone_roles(self) -> dict[str, str]:
        for b in self._c.blocks:
            if b.kind == "comproportionation":
                return b.roles
        return {"O": "O", "H": "H"}

    def _state0(self, y: np.ndarray) -> np.ndarray:
        return self._c.P @ y if self.reduced else y.copy()

    def _species(self, X: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Species (n_t, n_y) from integrated states (n_t, n_state)."""
        if not self.reduced:
            return X
        return self._c.y_of_z_many(X, p)

    @staticmethod
    def _cur(I_A: float, volume_L: float) -> tuple[float, float, float]:
        i = I_A / (F * volume_L)
        return i, max(i, 0.0), max(-i, 0.0)

    def rhs(self, x: np.ndarray, params: Mapping[str, float] | None = None, current_A: float = 0.0,
            volume_L: float = 0.01) -> np.ndarray:
        """Time derivative of the integrated state ``x`` (``state_names`` order), per s."""
        p = self.param_vector(params)
        cur = self._cur(current_A, volume_L)
        x = np.asarray(x, float)
        return self._c.reduced_functions(p)[0](x, p, cur) if self.reduced else self._c.rhs_full(x, p, cur)

    def jacobian(self, x: np.ndarray, params: Mapping[str, float] | None = None,
                 current_A: float = 0.0, volume_L: float = 0.01) -> np.ndarray:
        """Analytic Jacobian d(rhs)/dx (sympy-generated), 1/s."""
        p = self.param_vector(params)
        cur = self._cur(current_A, volume_L)
        x = np.asarray(x, float)
        return self._c.reduced_functions(p)[1](x, p, cur) if self.reduced else self._c.jac_full(x, p, cur)

    def conservation_laws(self, closed: bool = True) -> list[dict[str, Any]]:
        """See :meth:`kinetics.network.Network.conservation_laws`."""
        return self.network.conservation_laws(closed=closed)

    # ------------------------------------------------------------------ integration
    @staticmethod
    def _integrate(fun: Callable, jf: Callable | None, x0: np.ndarray, tt: np.ndarray, method: str,
                   rtol: float, atol: float, max_step: float, first_step: float | None,
                   max_nfev: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Integrate one constant-current segment; returns states at ``tt`` (rows) and stats.

        'LSODA' runs ODEPACK's LSODA through ``scipy.integrate.odeint`` (the Fortran driver
        loop; the same algorithm as ``solve_ivp(method='LSODA')`` but far less Python
        overhead per step).  Other methods use ``solve_ivp``.  A failed or stalled LSODA
        segment is redone with BDF and a RuntimeWarning.
        """
        a, b = float(tt[0]), float(tt[-1])
        if method.upper() == "LSODA":
            # Calls are counted by ODEPACK itself (infodict 'nfe', 'nje'): no Python layer
            # between the solver and the generated functions.
            # ODEPACK's own first-step guess depends on the first output interval and can
            # start the non-stiff (Adams) phase with a step far beyond the stiff stability
            # limit (a rest segment near equilibrium: "excess work done" after ~20,000
            # calls).  Start from a step the state and its Jacobian allow (_first_step);
            # LSODA's Adams/BDF switching still fails now and then for one particular h0
            # (its neighbours succeed), so retry with a third of it, then with LSODA's own
            # guess, then BDF.  Retries are counted in the stats ('retries').
            st = {"nfev": 0, "njev": 0, "nlu": 0, "retries": -1}
            if first_step is None:
                h_first = _first_step(fun, jf, x0, a, b, rtol, atol)
                st["nfev"] = 1 + (len(x0) if jf is None else 0)
                st["njev"] = int(jf is not None)
            else:
                h_first = first_step
            for h0 in ([h_first] if first_step is not None else [h_first, h_first / 3.0, 0.0]):
                st["retries"] += 1
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ys, info = odeint(fun, x0, tt, Dfun=jf, tfirst=True, rtol=rtol, atol=atol,
                                      full_output=True, mxstep=max(1, max_nfev // 10),
                                      hmax=0.0 if not np.isfinite(max_step) else max_step, h0=h0)
                ok = info["message"] == "Integration successful."
                st["nfev"] += _solver_count(info["nfe"], ok)
                st["njev"] += _solver_count(info["nje"], ok)
                st["steps"] = st.get("steps", 0) + _solver_count(info["nst"], ok)
                if ok and np.isfinite(ys).all():
                    return ys, st
            warnings.warn(f"LSODA failed on [{a:g}, {b:g}] s ({info['message']}); redoing the "
                          "segment with BDF", RuntimeWarning, stacklevel=3)
            method = "BDF"
            fallback = True
            counted = dict(st)
        else:
            fallback = False
            counted = {}
        counter = [0]

        def f(t: float, y: np.ndarray) -> np.ndarray:
            counter[0] += 1
            if counter[0] > max_nfev:
                raise _TooMuchWork
            return fun(t, y)

        kw: dict[str, Any] = {"rtol": rtol, "atol": atol, "max_step": max_step}
        if first_step is not None:
            kw["first_step"] = min(first_step, b - a)
        if jf is not None and method in ("BDF", "Radau"):
            kw["jac"] = jf
        try:
            sol = solve_ivp(f, (a, b), x0, method=method, t_eval=tt, **kw)
        except _TooMuchWork:
            raise RuntimeError(f"{method} needed more than {max_nfev} right-hand-side calls on "
                               f"[{a:g}, {b:g}] s") from None
        if not sol.success:
            hint = ""
            if sol.y.size and np.nanmin(sol.y) < -max(1e3 * atol, 1e-9):
                hint = (" (a concentration went negative: over-charge or over-discharge? the full "
                        "model cannot pass a current once the reacting species run out)")
            raise RuntimeError(f"integration failed on [{a:g}, {b:g}] s: {sol.message}{hint}")
        return sol.y.T, {"nfev": int(sol.nfev) + counted.get("nfev", 0), "njev": int(sol.njev) + counted.get("njev", 0),
                         "nlu": int(sol.nlu), "fallback": fallback, "retries": counted.get("retries", 0)}

    # ------------------------------------------------------------------ simulate
    def simulate(self, t_s: Sequence[float] | np.ndarray, params: Mapping[str, float] | None = None,
                 y0: Mapping[str, float] | None = None, current_A: CurrentLike = None,
                 volume_L: float = 0.01, method: str = "auto", rtol: float = 1e-8,
                 atol: float = 1e-12, *, jac: str | None = "analytic",
                 breakpoints: Sequence[float] | None = None, equilibrate: bool = True,
                 max_step: float = np.inf, first_step: float | None = None,
                 max_nfev: int = 200_000) -> SimResult:
        """Integrate the model and report every species at the times ``t_s``.

        Parameters
        ----------
        t_s : array_like
            Output times, s, increasing; integration starts at ``t_s[0]`` from ``y0``.
        params : dict, optional
            Parameter values overriding ``defaults``.
        y0 : dict species -> mol/L
            Initial concentrations (absent = 0).  With ``equilibrate`` (default) they are
            projected onto the fast equilibria first (same C_act, n_e), so the full and
            reduced models start from the same state.
        current_A : None, float, callable, (t, I) table or CurrentSchedule
            Cell current, A (> 0 charging).  Table ``(t_start_s, I_A)`` of equal lengths
            holds ``I[k]`` on ``[t[k], t[k+1])`` and the last value after; with one more
            edge than currents the current is 0 after the last edge.
        volume_L : float
            Circulating anolyte volume V_tot, L.
        method : {'auto', 'LSODA', 'RODAS4', 'BDF', 'Radau', ...}
            'auto': the compiled RODAS4 loop (:mod:`kinetics.compiled_run`) when numba is on
            (``FLOWCELL_NUMBA=1`` or ``model._c.use_numba = True``), else LSODA, and LSODA if
            the loop fails (``stats['compiled_fallback']``).  'LSODA': always LSODA.  'RODAS4':
            the loop whenever numba is installed (else ValueError).  Others: ``solve_ivp``'s.
        rtol, atol : float
            Tolerances (atol in mol/L).
        jac : {'analytic', 'fd', None}
            'analytic' passes the sympy Jacobian; 'fd'/None lets the solver difference.
        breakpoints : sequence of float, optional
            Extra integration breakpoints (discontinuities of a callable current), s.
        equilibrate : bool
            Project ``y0`` onto the fast equilibria.
        max_step : float
            Maximum step, s.
        first_step : float or None
            Initial step of every segment, s (None = the solver's own guess).

        max_nfev : int
            Right-hand-side calls allowed per current segment (LSODA: 'mxstep' = max_nfev/10
            steps per output interval; a failed LSODA segment is redone with BDF and a
            RuntimeWarning).

        Returns
        -------
        SimResult
            ``stats['method']``: the integrator that ran ('RODAS4', 'LSODA', ...).
        """
        t_out = np.asarray(t_s, dtype=float).ravel()
        if t_out.size == 0:
            raise ValueError("simulate: t_s is empty")
        steps = np.diff(t_out)
        if (steps < 0).any():
            raise ValueError("simulate: t_s must be increasing")
        if volume_L <= 0:
            raise ValueError(f"simulate: volume_L must be > 0, got {volume_L}")
        p = self.param_vector(params)
        if y0 is None:
            raise ValueError(f"simulate: y0 is required (dict of species -> mol/L, species {self.species})")
        y_init = self.y_vector(y0)
        if equilibrate and self._c.blocks:
            y_init = self._c.y_of_z(self._c.P @ y_init, p)
        x = self._state0(y_init)
        Ifun, bps, piecewise = _current(current_A)
        t0, t1 = float(t_out[0]), float(t_out[-1])
        edges = [t0]
        extra = np.concatenate([bps, np.asarray(breakpoints if breakpoints is not None else [], float)])
        edges += sorted({float(b) for b in extra if t0 < b < t1})
        edges.append(t1)
        if jac not in ("analytic", "fd", None):
            raise ValueError("jac must be 'analytic', 'fd' or None")
        run, Y = None, None
        if method.upper() in ("AUTO", "RODAS4"):  # the compiled loop, where it applies
            run, why = compiled_run(self, t_out, edges, x, p, Ifun, piecewise, volume_L, method.upper() == "RODAS4",
                                    rtol, atol, jac, max_step, first_step, max_nfev)
            if run is None and method.upper() == "RODAS4" and why:
                raise ValueError(f"simulate: method='RODAS4' is not available here: {why}")
            method = "LSODA"
        if run is not None and "compiled_fallback" not in run[1]:
            X, stats = run
            Y = stats.pop("_Y", None)
        else:  # LSODA (solve_ivp's methods), also where the compiled loop failed: the stats say why
            X, stats = self._segments(t_out, edges, x, p, Ifun, piecewise, volume_L, method, rtol, atol,
                                      jac, max_step, first_step, max_nfev, strict=bool((steps > 0).all()))
            stats.update({k: v for k, v in (run or (None, {}))[1].items() if k == "compiled_fallback"})
        if not np.isfinite(X[0]).all():
            X[0] = self._state0(y_init)
        return self._result(t_out, X, y_init, p, Ifun, atol, stats, Y)

    def _segments(self, t_out: np.ndarray, edges: list[float], x: np.ndarray, p: np.ndarray, Ifun: Callable,
                  piecewise: bool, volume_L: float, method: str, rtol: float, atol: float, jac: str | None,
                  max_step: float, first_step: float | None, max_nfev: int, strict: bool = False
                  ) -> tuple[np.ndarray, dict[str, Any]]:
        """Integrate segment by segment (constant current within each); states at ``t_out`` and stats.

        ``strict``: ``t_out`` has no repeated times (the solver's times are then a slice of it,
        with the segment's ends added where they are not output times)."""
        c = self._c
        use_jac = jac == "analytic"
        if not piecewise:
            f, J = c.reduced_functions(p) if self.reduced else (c.rhs_full, c.jac_full)
        t0, t1 = float(t_out[0]), float(t_out[-1])
        X = np.full((t_out.size, len(x)), np.nan)
        stats = {"nfev": 0, "njev": 0, "nlu": 0, "steps": 0, "segments": 0, "retries": 0}
        wall = time.perf_counter()
        if t1 == t0:
            X[:] = x
        # output rows of each segment [a, b]: the first row at or after a (not yet done) to the
        # last at or before b (t_out is sorted)
        lo = np.searchsorted(t_out, edges, side="left")
        hi = np.searchsorted(t_out, edges, side="right")
        start = 0
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
            if b <= a:
                continue
            r0, r1 = max(start, int(lo[k])), int(hi[k + 1])
            ts = t_out[r0:r1]
            off = 0 if (ts.size and ts[0] == a) else 1
            tt = ts if not off else np.concatenate(([a], ts))
            if tt[-1] != b:
                tt = np.append(tt, b)
            if not strict:  # repeated output times: the solver needs increasing times
                tt = np.unique(tt)
            if piecewise:
                fun0, jf = c.ode_functions(p, self._cur(Ifun(0.5 * (a + b)), volume_L), self.reduced)
            else:
                fun0 = (lambda t, y: f(y, p, self._cur(Ifun(t), volume_L)))
                jf = (lambda t, y: J(y, p, self._cur(Ifun(t), volume_L)))
            ys, st = self._integrate(fun0, jf if use_jac else None, x, tt, method, rtol, atol, max_step,
                                     first_step, max_nfev)
            for key in ("nfev", "njev", "nlu", "steps", "retries"):
                stats[key] += st.get(key, 0)
            if st.get("fallback"):
                stats["fallback"] = stats.get("fallback", 0) + 1
            stats["segments"] += 1
            if r1 > r0:
                X[r0:r1] = ys[off:off + ts.size] if strict else ys[np.searchsorted(tt, ts)]
                start = r1
            x = ys[-1]
        stats.update(wall_s=time.perf_counter() - wall, method=method, reduced=self.reduced, jac=jac,
                     solver="LSODA (ODEPACK, odeint)" if method.upper() == "LSODA" else f"{method} (solve_ivp)")
        return X, stats

    def _result(self, t_out: np.ndarray, X: np.ndarray, y_init: np.ndarray, p: np.ndarray, Ifun: Callable,
                atol: float, stats: dict[str, Any], Y: np.ndarray | None = None) -> SimResult:
        """Species, SOC and current at ``t_out`` from the integrated states (``Y`` when already
        computed); range warnings."""
        Y = self._species(X, p) if Y is None else Y
        tol = max(1e3 * atol, 1e-9)
        if self.reduced:
            for b in self._c.blocks:
                if b.kind == "comproportionation":
                    k = self._c.slow_names.index(b.names[0])
                    if X[:, k + 1].min() < -tol or (X[:, k + 1] - 2.0 * X[:, k]).max() > tol:
                        warnings.warn("SOC left [0, 1] (over-charge or over-discharge): the "
                                      "speciation is clipped and the electron balance is lost",
                                      RuntimeWarning, stacklevel=2)
        elif np.any(Y < -tol):
            bad = [self.species[k] for k in np.flatnonzero((Y < -tol).any(0))]
            warnings.warn(f"negative concentrations of {bad} (over-charge or over-discharge?)",
                          RuntimeWarning, stacklevel=2)
        C_act = Y @ self._w_units
        n_e = Y @ self._w_e
        nmax = float(self.network.n_max)
        C0 = float(y_init @ self._w_units)
        with np.errstate(divide="ignore", invalid="ignore"):
            soc = n_e / (nmax * C0) if C0 > 0 else np.full_like(n_e, np.nan)
            soc_act = np.where(C_act > 0, n_e / (nmax * C_act), np.nan)
        I_out = Ifun.many(t_out) if isinstance(Ifun, _Table) else np.array([Ifun(t) for t in t_out])
        return SimResult(t_out, Y, X, self.species, self.state_names, soc, soc_act, I_out, C_act, n_e,
                         dict(zip(self.param_names, map(float, p))), stats)
