"""The fit's bookkeeping: one experiment's data (:class:`Experiment`) and the residual
function over all experiments (:class:`Problem`), used by :func:`kinetics.fit.fit`.

Parameters are fitted on an internal scale (log10 for rate and equilibrium constants,
``log10_<name>``); :meth:`Problem.natural` converts back.  Rows can be excluded from
the residual (outliers rejected by the fit, :meth:`Problem.exclude`); they are then
counted, never silently lost.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lmfit
import numpy as np
import pandas as pd

from kinetics.observe import ObservationModel

__all__ = ["BAD_RESIDUAL", "Experiment", "FitWarning", "Problem", "is_log_default", "minimize"]

BAD_RESIDUAL = 1e3
_BAD_RESIDUAL = BAD_RESIDUAL

class FitWarning(UserWarning):
    """A fitted parameter is not identifiable from the data given."""


@dataclass
class Experiment:
    """One experiment: data, noise, and what drives the model.

    Parameters
    ----------
    name : str
        Label; used as the suffix of per-experiment parameters (non-word
        characters are replaced by ``_``).
    data : DataFrame
        Column ``t_s`` (s, time since the state ``y0``) plus observable columns
        named as in ingest (``hdo_shift_ppm``, ``epr_spin_conc_M``, ...).  NaN
        entries are skipped (NMR and EPR rows need not coincide).
    sigma : dict[str, float or array]
        Noise standard deviation of each observed column, in that column's unit.
        Only the columns listed here are fitted.
    current_A : callable, (t_s, I_A) arrays, or None
        Charging current (A, > 0 on charge), passed to ``Model.simulate``.
    volume_L : float
        Circulating anolyte volume, L.
    y0 : dict[str, float]
        Initial concentrations at t = 0, mol/L.
    fixed : dict[str, float]
        Parameter values specific to this experiment (model or observation),
        overriding the defaults.
    temperature_K : array or None
        Per-row sample temperature for the HDO temperature term (optional).
    """

    name: str
    data: pd.DataFrame
    sigma: Mapping[str, Any]
    current_A: Any = None
    volume_L: float = 0.01
    y0: Mapping[str, float] = field(default_factory=dict)
    fixed: Mapping[str, float] = field(default_factory=dict)
    temperature_K: Any = None

    def __post_init__(self) -> None:
        if "t_s" not in self.data.columns:
            raise ValueError(f"experiment {self.name!r}: data has no 't_s' column")
        if not self.sigma:
            raise ValueError(f"experiment {self.name!r}: sigma is empty; name the columns to fit")
        for col, s in self.sigma.items():
            if col not in self.data.columns:
                raise ValueError(
                    f"experiment {self.name!r}: sigma names column {col!r} that is not in the data "
                    f"(columns: {list(self.data.columns)})"
                )
            if np.any(~(np.asarray(s, dtype=float) > 0)):
                raise ValueError(f"experiment {self.name!r}: sigma[{col!r}] must be > 0")
        t = np.asarray(self.data["t_s"], dtype=float)
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ValueError(f"experiment {self.name!r}: t_s must be finite and >= 0")

    @property
    def key(self) -> str:
        """Identifier-safe name used as the parameter suffix."""
        return re.sub(r"\W", "_", self.name)



def is_log_default(name: str) -> bool:
    base = name.split("__")[0]
    return base[:1] in ("k", "K") or base in ("J_e",)


class Problem:
    """Internal: parameter bookkeeping and the residual function."""

    def __init__(
        self,
        model: Any,
        experiments: Sequence[Experiment],
        free: Mapping[str, tuple[float, float] | None],
        obs: ObservationModel,
        per_experiment: set[str],
        log_names: set[str],
        start: Mapping[str, float],
        sim_kwargs: Mapping[str, Any],
    ) -> None:
        self.model = model
        self.experiments = list(experiments)
        self.obs = obs
        self.sim_kwargs = dict(sim_kwargs)
        self.model_names = list(getattr(model, "param_names", []))
        base = dict(getattr(model, "defaults", {}))
        base.update(obs.defaults)
        base.update(start)
        self.base = base
        known = set(self.model_names) | set(obs.param_names) | set(base)
        unknown = [n for n in free if n not in known]
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown}: not a model parameter {self.model_names} "
                f"nor an observation parameter {obs.param_names}"
            )
        self.free = dict(free)
        self.per_experiment = per_experiment
        self.log_names = log_names
        self._add_parameters(start)
        self.blocks = self._data_blocks(self.experiments)
        self.ndata = int(sum(m.sum() for b in self.blocks for (_, m, _, _) in b[3]))
        if self.ndata == 0:
            raise ValueError("no finite data points in the observed columns")
        self.excluded: list[dict[str, Any]] = []
        self.nfev = 0
        self.nbad = 0
        self.nsim = 0
        self.nclipped = 0  # trial simulations whose SOC left [0, 1] (warned once, after the fit)
        self._cache: dict[str, tuple[tuple, Any]] = {}
        self.sim_inert: set[str] = set()  # the full cache key while the probe simulates
        self.sim_inert = self._find_sim_inert()

    def _add_parameters(self, start: Mapping[str, float]) -> None:
        """The internal lmfit table: one entry per free parameter (per experiment where asked).

        Log-scale parameters are held as ``log10_<name>`` with bounds defaulting to
        start / 1e4 .. start * 1e4; fills :attr:`params`, :attr:`map` (display name ->
        (base name, experiment key)) and :attr:`internal` (display -> lmfit name).
        """
        self.params = lmfit.Parameters()
        self.map: dict[str, tuple[str, str | None]] = {}  # display -> (base name, exp key)
        self.internal: dict[str, str] = {}  # display -> lmfit name
        for name, bounds in self.free.items():
            targets = [e for e in self.experiments] if name in self.per_experiment else [None]
            for e in targets:
                disp = name if e is None else f"{name}__{e.key}"
                v0 = float(e.fixed.get(name, self.base.get(name, np.nan)) if e is not None else self.base.get(name, np.nan))
                if e is None:
                    v0 = float(start.get(name, v0))
                else:
                    v0 = float(start.get(disp, start.get(name, v0)))
                if not np.isfinite(v0):
                    raise ValueError(f"parameter {disp!r} has no starting value; give it in start=")
                is_log = name in self.log_names
                lo, hi = (None, None) if bounds is None else bounds
                if is_log:
                    if v0 <= 0:
                        raise ValueError(f"parameter {disp!r} is fitted on a log scale but starts at {v0} <= 0")
                    lo = v0 / 1e4 if lo is None else lo
                    hi = v0 * 1e4 if hi is None else hi
                    if lo <= 0:
                        raise ValueError(f"parameter {disp!r}: log-scale bounds must be > 0, got {lo}")
                    iname = "log10_" + disp
                    self.params.add(iname, value=math.log10(v0), min=math.log10(lo), max=math.log10(hi))
                else:
                    iname = disp
                    self.params.add(iname, value=v0,
                                    min=-np.inf if lo is None else lo, max=np.inf if hi is None else hi)
                self.map[disp] = (name, None if e is None else e.key)
                self.internal[disp] = iname

    @staticmethod
    def _data_blocks(experiments: Sequence[Experiment]) -> list[tuple]:
        """Per experiment: (experiment, simulation times from 0 s, row -> time index,
        [(column, finite mask, finite values, sigma)], temperature K or None)."""
        blocks = []
        for e in experiments:
            t = np.asarray(e.data["t_s"], dtype=float)
            tu, inv = np.unique(t, return_inverse=True)
            t_sim = tu if tu[0] == 0.0 else np.concatenate([[0.0], tu])
            off = 0 if tu[0] == 0.0 else 1
            cols = []
            for c, s in e.sigma.items():
                y = np.asarray(e.data[c], dtype=float)
                m = np.isfinite(y)
                sig = np.broadcast_to(np.asarray(s, dtype=float), y.shape)[m]
                cols.append((c, m, y[m], sig))
            temp = None if e.temperature_K is None else np.asarray(e.temperature_K, dtype=float)
            blocks.append((e, t_sim, inv + off, cols, temp))
        return blocks

    def _find_sim_inert(self) -> set[str]:
        """Free model parameters that do not change the simulation (probed by a 1.5x change).

        Such parameters (e.g. k1, k2, which the library declares for the NMR observation
        model, or a rate reduced to an equilibrium) are left out of the cache key: one
        integration then serves every change of them.  Empty when the probe fails.
        """
        inert: set[str] = set()
        cand = sorted({self.map[d][0] for d in self.internal} & set(self.model_names))
        if cand:
            e, t_sim = self.blocks[0][0], self.blocks[0][1]
            p0 = self.exp_params(self.natural(self.params), e)
            try:
                ref = np.asarray(self._simulate_raw(e, t_sim, p0).conc, dtype=float)
                for name in cand:
                    p1 = dict(p0)
                    p1[name] = p0[name] * 1.5 if p0[name] != 0 else 1e-6
                    alt = np.asarray(self._simulate_raw(e, t_sim, p1).conc, dtype=float)
                    if np.allclose(alt, ref, rtol=1e-9, atol=1e-15):
                        inert.add(name)
            except Exception:  # leave the key complete if the probe fails
                inert = set()
        return inert

    # -- values -----------------------------------------------------------
    def natural(self, params: lmfit.Parameters) -> dict[str, float]:
        out = {}
        for disp, iname in self.internal.items():
            v = params[iname].value
            out[disp] = 10.0**v if iname.startswith("log10_") else v
        return out

    def exp_params(self, nat: Mapping[str, float], e: Experiment) -> dict[str, float]:
        p = dict(self.base)
        p.update(e.fixed)
        for disp, v in nat.items():
            name, key = self.map[disp]
            if key is None or key == e.key:
                p[name] = v
        return p

    def simulate(self, e: Experiment, t_sim: np.ndarray, p: Mapping[str, float]) -> Any:
        """Simulate one experiment; the last result per experiment is cached, so
        changing only observation parameters (k1, k2, hdo_ref_ppm, ...) costs no
        integration."""
        mp = {k: p[k] for k in self.model_names if k in p} if self.model_names else dict(p)
        key = tuple(sorted((k, float(v)) for k, v in mp.items() if np.isscalar(v) and k not in self.sim_inert))
        hit = self._cache.get(e.key)
        if hit is not None and hit[0] == key:
            return hit[1]
        sim = self._simulate_raw(e, t_sim, p)
        self._cache[e.key] = (key, sim)
        return sim

    def _simulate_raw(self, e: Experiment, t_sim: np.ndarray, p: Mapping[str, float]) -> Any:
        mp = {k: p[k] for k in self.model_names if k in p} if self.model_names else dict(p)
        self.nsim += 1
        # Trial parameters far from the data can over-charge the model; the model warns
        # each time.  Count those here and say it once after the fit instead.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            sim = self.model.simulate(
                t_sim, params=mp, y0=dict(e.y0), current_A=e.current_A, volume_L=e.volume_L, **self.sim_kwargs
            )
        for w in caught:
            if issubclass(w.category, RuntimeWarning) and "SOC left [0, 1]" in str(w.message):
                self.nclipped += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return sim

    def predictions(self, params: lmfit.Parameters) -> list[pd.DataFrame]:
        nat = self.natural(params)
        out = []
        for e, t_sim, idx, cols, temp in self.blocks:
            p = self.exp_params(nat, e)
            sim = self.simulate(e, t_sim, p)
            pred = self.obs.predict(sim, p)
            pred = pred.iloc[idx].reset_index(drop=True)
            if temp is not None:
                pred["hdo_shift_ppm"] = pred["hdo_shift_ppm"] + p["hdo_temp_coef_ppm_K"] * (temp - self.obs.T_K)
            out.append(pred)
        return out

    def column_residuals(self, params: lmfit.Parameters) -> list[tuple[int, str, np.ndarray, np.ndarray, np.ndarray]]:
        """Normalised residuals per (experiment, column): ``(block, column, rows, t_s, r)``.

        ``rows`` are the data-row indices used (finite data, not excluded)."""
        preds = self.predictions(params)
        out = []
        for bi, (pred, (e, t_sim, idx, cols, temp)) in enumerate(zip(preds, self.blocks)):
            t = np.asarray(e.data["t_s"], dtype=float)
            for c, m, y, sig in cols:
                rows = np.flatnonzero(m)
                out.append((bi, c, rows, t[rows], (np.asarray(pred[c], dtype=float)[m] - y) / sig))
        return out

    def exclude(self, block: int, column: str, rows: np.ndarray, reason: str = "outlier") -> None:
        """Leave data rows of one column out of the residual (counted in :attr:`excluded`)."""
        e, t_sim, idx, cols, temp = self.blocks[block]
        for i, (c, m, y, sig) in enumerate(cols):
            if c != column:
                continue
            t = np.asarray(e.data["t_s"], dtype=float)
            vals = np.asarray(e.data[c], dtype=float)
            full_sig = np.broadcast_to(np.asarray(e.sigma[c], dtype=float), vals.shape)
            m2 = m.copy()
            m2[np.asarray(rows, dtype=int)] = False
            for r in rows:
                self.excluded.append({"experiment": e.name, "column": c, "row": int(r), "t_s": float(t[r]),
                                      "value": float(vals[r]), "reason": reason})
            cols[i] = (c, m2, vals[m2], full_sig[m2])
        self.ndata = int(sum(m.sum() for b in self.blocks for (_, m, _, _) in b[3]))
        self._cache.clear()

    def residual(self, params: lmfit.Parameters) -> np.ndarray:
        self.nfev += 1
        try:
            preds = self.predictions(params)
        except Exception:  # integration failure in a far corner of parameter space
            self.nbad += 1
            return np.full(self.ndata, _BAD_RESIDUAL)
        parts = []
        for pred, (e, t_sim, idx, cols, temp) in zip(preds, self.blocks):
            for c, m, y, sig in cols:
                if c not in pred.columns:
                    raise ValueError(
                        f"experiment {e.name!r}: the observation model does not predict column {c!r} "
                        f"(it predicts {list(pred.columns)})"
                    )
                parts.append((np.asarray(pred[c], dtype=float)[m] - y) / sig)
        r = np.concatenate(parts)
        if not np.all(np.isfinite(r)):
            self.nbad += 1
            r = np.where(np.isfinite(r), r, _BAD_RESIDUAL)
        return r


def minimize(prob: Problem, params: lmfit.Parameters, method: str, max_nfev: int | None) -> lmfit.minimizer.MinimizerResult:
    mini = lmfit.Minimizer(prob.residual, params, nan_policy="raise")
    kws: dict[str, Any] = {}
    if method == "leastsq":
        kws["epsfcn"] = 1e-10
    return mini.minimize(method=method, max_nfev=max_nfev, **kws)


