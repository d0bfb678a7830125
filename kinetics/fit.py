"""Fitting kinetic models to in-line NMR/EPR observables, with honest uncertainties.

``fit(model, experiments, free, obs=...)`` minimises, with lmfit, the residual
vector ``(model − data)/σ`` of every observed column of every experiment (NaN
data skipped), simulating each experiment once per residual evaluation with the
compiled (fast-equilibrium-reduced) model.  Several experiments are fitted at
once (global fit): a parameter is either shared or per-experiment (internal name
``<param>__<experiment>``, e.g. ``k_dec__exp2``).  Rate and equilibrium
constants are fitted as log10 by default.

Identifiability first (science.md §1.4, §2.2; project issue): a fast step such as
comproportionation (k ~ 1e8 1/(M s)) cannot be determined from
concentration-type data, and the covariance matrix then gives a tiny, misleading
±.  So every result carries

* a profile-likelihood 95 % interval per free parameter (own scan: the other
  free parameters are re-optimised at each point; the interval ends where
  Δχ² = 3.84·max(1, χ²_red); a side on which Δχ² never reaches the threshold
  inside the bounds is *unbounded* and ``ci95[name]`` is None),
* flags: ``'unbounded profile (low|high side)'``, ``'correlation > 0.95 with X'``,
  ``'no observable depends on it'`` (zero sensitivity of every residual; e.g. a
  fast-reduced rate), ``'at bound'``, ``'covariance unavailable'``,
* a warning when a free rate constant cannot enter any observable.

If ``model`` is a :class:`kinetics.network.Network` it is compiled here with fast
steps reduced to equilibria.  The rate of a reduced fast step can still be fitted
when an observed column is sensitive to it (``obs.sensitive_to``: the exchange
broadening of the quinone lines is what makes k_ex and k_c measurable); it then
enters through the observation model, with the equilibrium speciation.  A free
rate of a reduced step that no observed column is sensitive to raises a
:class:`FitWarning` and is flagged.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import lmfit
import numpy as np
import pandas as pd
from scipy import stats

from kinetics.observe import ObservationModel

__all__ = ["Experiment", "FitResult", "Profile", "fit", "FitWarning", "DCHI2_95", "jsonable"]

DCHI2_95 = float(stats.chi2.ppf(0.95, 1))  # 3.841
_BAD_RESIDUAL = 1e3


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


@dataclass
class Profile:
    """Profile likelihood of one parameter (natural units).

    ``lo``/``hi`` are the 95 % limits or None on a side where Δχ² never reached
    ``threshold`` inside the bounds (unbounded).  ``x`` and ``dchi2`` hold the scan.
    """

    name: str
    lo: float | None
    hi: float | None
    x: np.ndarray
    dchi2: np.ndarray
    threshold: float
    log10: bool


def _is_log_default(name: str) -> bool:
    base = name.split("__")[0]
    return base[:1] in ("k", "K") or base in ("J_e",)


class _Problem:
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
        # internal parameter table
        self.params = lmfit.Parameters()
        self.map: dict[str, tuple[str, str | None]] = {}  # display -> (base name, exp key)
        self.internal: dict[str, str] = {}  # display -> lmfit name
        for name, bounds in self.free.items():
            targets = [e for e in self.experiments] if name in per_experiment else [None]
            for e in targets:
                disp = name if e is None else f"{name}__{e.key}"
                v0 = float(e.fixed.get(name, base.get(name, np.nan)) if e is not None else base.get(name, np.nan))
                if e is None:
                    v0 = float(start.get(name, v0))
                else:
                    v0 = float(start.get(disp, start.get(name, v0)))
                if not np.isfinite(v0):
                    raise ValueError(f"parameter {disp!r} has no starting value; give it in start=")
                is_log = name in log_names
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
        # data
        self.blocks = []
        for e in self.experiments:
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
            self.blocks.append((e, t_sim, inv + off, cols, temp))
        self.ndata = int(sum(m.sum() for b in self.blocks for (_, m, _, _) in b[3]))
        if self.ndata == 0:
            raise ValueError("no finite data points in the observed columns")
        self.nfev = 0
        self.nbad = 0
        self.nsim = 0
        self.nclipped = 0  # trial simulations whose SOC left [0, 1] (warned once, after the fit)
        self._cache: dict[str, tuple[tuple, Any]] = {}
        # free model parameters that do not change the simulation (e.g. k1, k2, which
        # the library declares for the NMR observation model, or a rate reduced to
        # an equilibrium) are left out of the cache key: one integration then serves
        # every change of them.
        self.sim_inert: set[str] = set()
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
                        self.sim_inert.add(name)
            except Exception:  # leave the key complete if the probe fails
                self.sim_inert = set()

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


def _minimize(prob: _Problem, params: lmfit.Parameters, method: str, max_nfev: int | None) -> lmfit.minimizer.MinimizerResult:
    mini = lmfit.Minimizer(prob.residual, params, nan_policy="raise")
    kws: dict[str, Any] = {}
    if method == "leastsq":
        kws["epsfcn"] = 1e-10
    return mini.minimize(method=method, max_nfev=max_nfev, **kws)


def jsonable(obj: Any, *, nan_to_none: bool = True) -> Any:
    """Make ``obj`` JSON-safe: numpy scalars to Python, paths and times to strings.

    Parameters
    ----------
    obj : any
        Nested dicts / lists / tuples of numbers, strings, numpy scalars, paths, datetimes.
    nan_to_none : bool
        Replace NaN and inf by None (strict JSON); False keeps them (Python's json writes NaN).
    """
    from datetime import datetime as _dt
    from pathlib import Path as _Path

    if isinstance(obj, dict):
        return {str(k): jsonable(v, nan_to_none=nan_to_none) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, nan_to_none=nan_to_none) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if (np.isfinite(obj) or not nan_to_none) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (_dt, pd.Timestamp)):
        return obj.isoformat()
    if isinstance(obj, _Path):
        return str(obj)
    return obj



@dataclass
class FitResult:
    """Result of :func:`fit`.

    Attributes
    ----------
    values : dict[str, float]
        Best-fit values of the free parameters, natural units (per-experiment
        ones as ``name__experiment``).
    stderr : dict[str, float or None]
        Covariance (delta-method) standard errors, natural units.  Only meaningful
        for parameters without flags; prefer ``ci95``.
    ci95 : dict[str, (lo, hi) or None]
        Profile-likelihood 95 % intervals; None when unbounded on either side or
        not computed.
    profiles : dict[str, Profile]
    correlations : DataFrame
        Correlation matrix of the free parameters (internal, i.e. log10, scale).
    flags : dict[str, list[str]]
    chi2, redchi : float
    ndata, nfree, nfev : int
    success : bool
    message : str
    log10 : dict[str, bool]
        Whether each parameter was fitted as log10.
    fixed : dict[str, float]
        The base values of every non-free parameter used.
    elapsed_s : float
    """

    values: dict[str, float]
    stderr: dict[str, float | None]
    ci95: dict[str, tuple[float, float] | None]
    profiles: dict[str, Profile]
    correlations: pd.DataFrame
    flags: dict[str, list[str]]
    chi2: float
    redchi: float
    ndata: int
    nfree: int
    nfev: int
    success: bool
    message: str
    log10: dict[str, bool]
    fixed: dict[str, float]
    elapsed_s: float
    warnings: list[str] = field(default_factory=list)
    _prob: Any = field(default=None, repr=False)
    _params: Any = field(default=None, repr=False)
    mcmc_summary: dict[str, tuple[float, float, float]] | None = None
    mcmc_result: Any = field(default=None, repr=False)

    # -- access -----------------------------------------------------------
    @property
    def params(self) -> dict[str, float]:
        """Alias of :attr:`values` (architecture contract)."""
        return self.values

    @property
    def ci(self) -> dict[str, tuple[float, float] | None]:
        """Alias of :attr:`ci95`."""
        return self.ci95

    def predict(self) -> dict[str, pd.DataFrame]:
        """Best-fit predictions on each experiment's data times (name -> DataFrame)."""
        preds = self._prob.predictions(self._params)
        out = {}
        for (e, *_), pred in zip(self._prob.blocks, preds):
            pred = pred.copy()
            pred["t_s"] = np.asarray(e.data["t_s"], dtype=float)
            out[e.name] = pred
        return out

    def interval_text(self, name: str) -> str:
        """The 95 % interval as text, e.g. ``[1.2e-06, 3.4e-06]`` or ``[2.0e+05, ∞)``."""
        pr = self.profiles.get(name)
        if pr is None:
            return "not computed"
        lo = "0" if (pr.lo is None and pr.log10) else ("-inf" if pr.lo is None else f"{pr.lo:.4g}")
        hi = "inf" if pr.hi is None else f"{pr.hi:.4g}"
        lb = "(" if pr.lo is None else "["
        rb = ")" if pr.hi is None else "]"
        return f"{lb}{lo}, {hi}{rb}"

    def report(self) -> str:
        """A readable table: value, ± (covariance), 95 % profile interval, flags."""
        lines = [
            f"fit: {'converged' if self.success else 'NOT converged'} ({self.message}); "
            f"chi2 = {self.chi2:.4g}, reduced chi2 = {self.redchi:.4g}, "
            f"N = {self.ndata}, free = {self.nfree}, nfev = {self.nfev}, {self.elapsed_s:.2f} s",
            "values in natural units; '(log10)': fitted on a log10 scale",
            f"{'parameter':<24}{'value':>12}{'± (covar)':>12}  {'95% profile interval':<28}flags",
        ]
        for n, v in self.values.items():
            se = self.stderr.get(n)
            se_s = "n/a" if se is None or not np.isfinite(se) else f"{se:.3g}"
            fl = "; ".join(self.flags.get(n, [])) or "-"
            scale = " (log10)" if self.log10.get(n) else ""
            lines.append(f"{n + scale:<24}{v:>12.4g}{se_s:>12}  {self.interval_text(n):<28}{fl}")
        if any(self.flags.values()):
            lines.append("Flagged parameters: do not quote the covariance ± for them; "
                         "use the profile interval (unbounded means not identifiable from these data).")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.report()

    def to_frame(self) -> pd.DataFrame:
        """One row per free parameter: value, stderr, ci_lo, ci_hi, log10, flags."""
        rows = []
        for n, v in self.values.items():
            pr = self.profiles.get(n)
            rows.append({
                "parameter": n,
                "value": v,
                "stderr": self.stderr.get(n),
                "ci_lo": None if pr is None else pr.lo,
                "ci_hi": None if pr is None else pr.hi,
                "log10": self.log10.get(n, False),
                "flags": "; ".join(self.flags.get(n, [])),
            })
        return pd.DataFrame(rows).set_index("parameter")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (NaN/inf become None)."""
        d = {
            "values": self.values,
            "stderr": self.stderr,
            "ci95": {k: (None if v is None else list(v)) for k, v in self.ci95.items()},
            "profile_limits": {k: [p.lo, p.hi] for k, p in self.profiles.items()},
            "correlations": self.correlations.to_dict(),
            "flags": self.flags,
            "chi2": self.chi2,
            "redchi": self.redchi,
            "ndata": self.ndata,
            "nfree": self.nfree,
            "nfev": self.nfev,
            "success": self.success,
            "message": self.message,
            "log10": self.log10,
            "fixed": self.fixed,
            "elapsed_s": self.elapsed_s,
            "warnings": self.warnings,
            "mcmc": self.mcmc_summary,
        }
        out = jsonable(d)
        json.dumps(out)  # guarantee
        return out

    def plot(self, path: Any = None) -> Any:
        """Data vs model per observable with residuals (matplotlib Agg); saves to ``path``."""
        from kinetics.plots import plot_fit

        return plot_fit(self, path)

    def mcmc(self, steps: int = 1000, *, nwalkers: int | None = None, burn: int | None = None,
             thin: int = 1, seed: int = 0, progress: bool = False) -> dict[str, tuple[float, float, float]]:
        """Posterior sampling with emcee (lmfit ``Minimizer.emcee``).

        Uniform priors on the fitted (log10 for rate constants) scale inside the
        bounds; the likelihood uses the given σ (``is_weighted=True``).

        Returns
        -------
        dict name -> (median, 2.5 %, 97.5 %) in natural units; also stored in
        :attr:`mcmc_summary` and the raw lmfit result in ``self.mcmc_result``.
        """
        params = self._params.copy()
        for p in params.values():
            if not np.isfinite(p.min) or not np.isfinite(p.max):
                warnings.warn(f"parameter {p.name} has an infinite bound: the flat prior is improper", FitWarning)
        nw = nwalkers or max(4 * len(params), 16)
        nw += nw % 2
        mini = lmfit.Minimizer(self._prob.residual, params, nan_policy="raise")
        res = mini.emcee(params=params, steps=steps, nwalkers=nw, burn=burn if burn is not None else steps // 4,
                         thin=thin, is_weighted=True, seed=seed, progress=progress)
        summ = {}
        for disp, iname in self._prob.internal.items():
            ch = res.flatchain[iname].to_numpy()
            if iname.startswith("log10_"):
                ch = 10.0**ch
            q = np.percentile(ch, [50, 2.5, 97.5])
            summ[disp] = (float(q[0]), float(q[1]), float(q[2]))
        self.mcmc_summary = summ
        self.mcmc_result = res
        return summ


def _chi2_at(prob: _Problem, params: lmfit.Parameters, others: list[str], method: str) -> float:
    """χ² with the profiled parameter fixed and the others re-optimised."""
    if others:
        r = _minimize(prob, params, method, max_nfev=60 * (len(others) + 1))
        return float(np.sum(r.residual**2))
    return float(np.sum(prob.residual(params) ** 2))


def _profile_one(prob: _Problem, best: lmfit.Parameters, disp: str, chi2_min: float, threshold: float,
                 stderr_int: float | None, max_steps: int, method: str) -> tuple[Profile, float]:
    iname = prob.internal[disp]
    par = best[iname]
    is_log = iname.startswith("log10_")
    x0 = par.value
    if stderr_int is not None and np.isfinite(stderr_int) and stderr_int > 0:
        step0 = stderr_int
    else:
        step0 = 0.1 if is_log else 0.1 * max(abs(x0), 1e-12)
    if is_log:
        step0 = float(np.clip(step0, 1e-3, 1.0))
    others = [n for n in best if n != iname and best[n].vary]
    xs, ds = [x0], [0.0]
    limits: dict[int, float | None] = {}
    best_seen = chi2_min
    for direction in (-1, +1):
        bound = par.min if direction < 0 else par.max
        cur = best.copy()
        x_prev, d_prev = x0, 0.0
        s = step0
        limit = None
        for _ in range(max_steps):
            x = x_prev + direction * s
            at_bound = False
            if (direction < 0 and x <= bound) or (direction > 0 and x >= bound):
                x, at_bound = bound, True
            cur[iname].set(value=x, vary=False)
            if others:
                r = _minimize(prob, cur, method, max_nfev=60 * (len(others) + 1))
                chi2 = float(np.sum(r.residual**2))
                cur = r.params
            else:
                chi2 = float(np.sum(prob.residual(cur) ** 2))
            d = chi2 - chi2_min
            best_seen = min(best_seen, chi2)
            xs.append(x)
            ds.append(d)
            if d >= threshold:
                # interpolate in sqrt(Δχ²), linear in x for a quadratic profile;
                # one refinement when the bracket overshoots a lot
                a, b = math.sqrt(max(d_prev, 0.0)), math.sqrt(d)
                frac = (math.sqrt(threshold) - a) / (b - a) if b > a else 1.0
                limit = x_prev + frac * (x - x_prev)
                if d > 10 * threshold:
                    cur[iname].set(value=limit, vary=False)
                    d_mid = _chi2_at(prob, cur, others, method) - chi2_min
                    xs.append(limit)
                    ds.append(d_mid)
                    m = math.sqrt(max(d_mid, 0.0))
                    if d_mid >= threshold and m > a:
                        frac = (math.sqrt(threshold) - a) / (m - a)
                        limit = x_prev + frac * (limit - x_prev)
                    elif d_mid < threshold and b > m:
                        frac = (math.sqrt(threshold) - m) / (b - m)
                        limit = limit + frac * (x - limit)
                break
            if at_bound or not np.isfinite(x):
                break
            x_prev, d_prev = x, d
            s *= 2.5
        limits[direction] = limit
    order = np.argsort(xs)
    xs_a, ds_a = np.asarray(xs)[order], np.asarray(ds)[order]
    conv = (lambda v: 10.0**v) if is_log else (lambda v: v)
    lo = None if limits[-1] is None else float(conv(limits[-1]))
    hi = None if limits[+1] is None else float(conv(limits[+1]))
    return Profile(disp, lo, hi, conv(xs_a), ds_a, threshold, is_log), best_seen


def fit(
    model: Any,
    experiments: Experiment | Sequence[Experiment],
    free: Sequence[str] | Mapping[str, tuple[float, float] | None],
    *,
    obs: ObservationModel | None = None,
    shared: Iterable[str] | None = None,
    per_experiment: Iterable[str] | None = None,
    log_scale: bool | Iterable[str] = True,
    start: Mapping[str, float] | None = None,
    conf_interval: bool = True,
    method: str = "leastsq",
    max_nfev: int | None = None,
    profile_steps: int = 14,
    corr_threshold: float = 0.95,
    sim_kwargs: Mapping[str, Any] | None = None,
    reduce_fast: bool | None = None,
) -> FitResult:
    """Fit model parameters to one or several experiments.

    Parameters
    ----------
    model : kinetics.model.Model or kinetics.network.Network
        A compiled model (``.simulate``, ``.param_names``, ``.defaults``); a
        Network is compiled here, with fast steps reduced to equilibria unless an
        observed column is sensitive to their rates.
    experiments : Experiment or list of Experiment
    free : list of names, or dict name -> (min, max) or None
        Parameters to fit (model or observation parameters); bounds in natural
        units.  Log-scale parameters default to (start/1e4, start·1e4).
    obs : ObservationModel
        Maps simulations to observed columns (default ``ObservationModel()``).
    shared, per_experiment : iterable of str
        Global fit: parameters in ``per_experiment`` get one value per experiment
        (``name__<experiment>``); if only ``shared`` is given, the other free
        parameters are per-experiment; by default all are shared.
    log_scale : bool or iterable of str
        True: rate and equilibrium constants (names starting with k/K, and J_e)
        are fitted as log10; or the explicit list of names to fit as log10.
    start : dict
        Starting values (natural units); keys ``name`` or ``name__<experiment>``.
        Non-free entries override the model defaults too.
    conf_interval : bool
        Compute the profile-likelihood intervals (costly: a sub-fit per point).
    method : str
        lmfit method for the main fit and the profile sub-fits.
    profile_steps : int
        Maximum profile points per side (step doubling from the covariance σ).
    sim_kwargs : dict
        Extra keyword arguments for ``Model.simulate`` (method, rtol, atol).
    reduce_fast : bool, optional
        Only when ``model`` is a Network: compile with fast steps reduced
        (default True; see the module docstring).

    Returns
    -------
    FitResult
    """
    t0 = time.perf_counter()
    exps = [experiments] if isinstance(experiments, Experiment) else list(experiments)
    if not exps:
        raise ValueError("no experiments given")
    keys = [e.key for e in exps]
    if len(set(keys)) != len(keys):
        raise ValueError(f"experiment names must be unique (after sanitising): {keys}")
    obs = obs or ObservationModel()
    free_d: dict[str, tuple[float, float] | None] = (
        {n: None for n in free} if not isinstance(free, Mapping) else dict(free)
    )
    if not free_d:
        raise ValueError("no free parameters")
    observed = sorted({c for e in exps for c in e.sigma})
    sens = obs.sensitive_to(observed)
    rate_sensitive = set().union(*sens.values()) if sens else set()
    if hasattr(model, "compile") and not hasattr(model, "simulate"):
        # Fast steps are always reduced to equilibria: a fast rate that an observable
        # is sensitive to (k_c, k1, k2 through the exchange broadening) enters through
        # the observation model, which takes the rate and the equilibrium speciation;
        # the stiff full model would only add integration cost.
        model = model.compile(reduce_fast=True if reduce_fast is None else reduce_fast)
    if per_experiment is not None:
        per = set(per_experiment)
    elif shared is not None:
        per = set(free_d) - set(shared)
    else:
        per = set()
    unknown_per = per - set(free_d)
    if unknown_per:
        raise ValueError(f"per-experiment parameter(s) {sorted(unknown_per)} are not free")
    if log_scale is True:
        log_names = {n for n in free_d if _is_log_default(n)}
    elif log_scale is False:
        log_names = set()
    else:
        log_names = set(log_scale)
    start = dict(start or {})
    prob = _Problem(model, exps, free_d, obs, per, log_names, start, sim_kwargs or {})

    warn_msgs: list[str] = []
    # structural check: a rate constant of a reduced fast step enters nothing
    reduced = _reduced_rate_names(model)
    for n in free_d:
        if n in reduced and n not in rate_sensitive:
            msg = (f"{n} is the rate of a step reduced to equilibrium and no observed column "
                   f"({observed}) is sensitive to it: it cannot be determined")
            warn_msgs.append(msg)
            warnings.warn(msg, FitWarning, stacklevel=2)

    res = _minimize(prob, prob.params, method, max_nfev)
    best = res.params
    r = prob.residual(best)
    chi2 = float(np.sum(r**2))
    nfree = len(best)
    dof = max(prob.ndata - nfree, 1)
    redchi = chi2 / dof

    values = prob.natural(best)
    flags: dict[str, list[str]] = {d: [] for d in values}
    log10 = {d: prob.internal[d].startswith("log10_") for d in values}
    stderr: dict[str, float | None] = {}
    ist: dict[str, float | None] = {}
    for d, iname in prob.internal.items():
        se = best[iname].stderr
        ist[d] = se if se is not None and np.isfinite(se) else None
        if ist[d] is None:
            stderr[d] = None
            flags[d].append("covariance unavailable")
        elif log10[d]:
            stderr[d] = values[d] * math.log(10) * se
        else:
            stderr[d] = se
    names = list(values)
    if res.covar is not None and np.all(np.isfinite(res.covar)):
        cov = np.asarray(res.covar)
        sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
        corr = cov / np.outer(sd, sd)
    else:
        corr = np.full((nfree, nfree), np.nan)
        np.fill_diagonal(corr, 1.0)
    # lmfit's covar follows the order of varying parameters
    var_names = [n for n in best if best[n].vary]
    disp_of = {v: k for k, v in prob.internal.items()}
    corr_df = pd.DataFrame(corr, index=[disp_of[n] for n in var_names], columns=[disp_of[n] for n in var_names])
    corr_df = corr_df.loc[names, names]
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j and np.isfinite(corr_df.iloc[i, j]) and abs(corr_df.iloc[i, j]) > corr_threshold:
                flags[a].append(f"correlation > {corr_threshold:g} with {b} ({corr_df.iloc[i, j]:+.3f})")
    # sensitivity: zero Jacobian column means nothing observed depends on it
    for d, iname in prob.internal.items():
        h = 1e-3 if log10[d] else 1e-4 * max(abs(best[iname].value), 1e-8)
        pp = best.copy()
        pp[iname].set(value=best[iname].value + h)
        if best[iname].max < pp[iname].value:
            pp[iname].set(value=best[iname].value - h)
        dr = prob.residual(pp) - r
        if np.max(np.abs(dr)) < 1e-9:
            flags[d].append("no observable depends on it")
            msg = f"{d}: no observed column depends on it (zero sensitivity)"
            if msg not in warn_msgs:
                warn_msgs.append(msg)
                warnings.warn(msg, FitWarning, stacklevel=2)
        p = best[iname]
        if np.isfinite(p.min) and abs(p.value - p.min) < 1e-6 * max(1.0, abs(p.min)):
            flags[d].append("at bound")
        elif np.isfinite(p.max) and abs(p.value - p.max) < 1e-6 * max(1.0, abs(p.max)):
            flags[d].append("at bound")

    profiles: dict[str, Profile] = {}
    ci95: dict[str, tuple[float, float] | None] = {d: None for d in names}
    if conf_interval:
        threshold = DCHI2_95 * max(1.0, redchi)
        for d in names:
            if "no observable depends on it" in flags[d]:  # flat profile: no scan needed
                x0 = values[d]
                profiles[d] = Profile(d, None, None, np.array([x0]), np.array([0.0]), threshold, log10[d])
                flags[d] += ["unbounded profile (low side)", "unbounded profile (high side)"]
                continue
            pr, best_seen = _profile_one(prob, best, d, chi2, threshold, ist[d], profile_steps, method)
            profiles[d] = pr
            if pr.lo is None:
                flags[d].append("unbounded profile (low side)")
            if pr.hi is None:
                flags[d].append("unbounded profile (high side)")
            if pr.lo is not None and pr.hi is not None:
                ci95[d] = (pr.lo, pr.hi)
            if best_seen < chi2 - 0.05 * max(1.0, redchi):
                flags[d].append("profile found a lower chi2: the fit may not be at the minimum")
    for d in names:
        if flags[d] and any(f.startswith("unbounded") for f in flags[d]):
            msg = f"{d}: 95 % profile interval is unbounded; the covariance ± is not meaningful"
            warn_msgs.append(msg)
            warnings.warn(msg, FitWarning, stacklevel=2)
    if prob.nbad:
        warn_msgs.append(f"{prob.nbad} model evaluations failed or gave non-finite values (penalised)")
    if prob.nclipped:
        warn_msgs.append(f"{prob.nclipped} of {prob.nsim} trial simulations left SOC [0, 1] and were clipped "
                         "(trial parameters far from the data; check the best fit's SOC range)")
    fixed = {k: float(v) for k, v in prob.base.items() if k not in free_d and np.isscalar(v)}
    return FitResult(
        values=values, stderr=stderr, ci95=ci95, profiles=profiles, correlations=corr_df, flags=flags,
        chi2=chi2, redchi=redchi, ndata=prob.ndata, nfree=nfree, nfev=prob.nfev, success=bool(res.success),
        message=str(res.message), log10=log10, fixed=fixed, elapsed_s=time.perf_counter() - t0,
        warnings=warn_msgs, _prob=prob, _params=best,
    )


def _fast_rate_names(net: Any) -> set[str]:
    """Forward rate-constant names of the fast reactions of a Network (best effort)."""
    out: set[str] = set()
    for rx in getattr(net, "reactions", []):
        if getattr(rx, "fast", False):
            k = getattr(rx, "k", None)
            if isinstance(k, str):
                out.add(k)
    return out


def _reduced_rate_names(model: Any) -> set[str]:
    """Rate constants of steps a compiled Model reduced to equilibria (best effort)."""
    for attr in ("reduced_rates", "fast_rate_names"):
        v = getattr(model, attr, None)
        if v:
            return set(v)
    net = getattr(model, "network", None) or getattr(model, "net", None)
    if net is not None and getattr(model, "reduce_fast", getattr(model, "reduced", False)):
        return _fast_rate_names(net)
    return set()
