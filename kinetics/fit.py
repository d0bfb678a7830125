"""Fitting kinetic models to in-line NMR/EPR observables, with honest uncertainties.

``fit(model, experiments, free, obs=...)`` minimises, with lmfit, the residual
vector ``(model − data)/σ`` of every observed column of every experiment (NaN
data skipped), simulating each experiment once per residual evaluation with the
compiled (fast-equilibrium-reduced) model.  Several experiments are fitted at
once (global fit): a parameter is either shared or per-experiment (internal name
``<param>__<experiment>``, e.g. ``k_dec__exp2``).  Rate and equilibrium
constants are fitted as log10 by default.

Identifiability first (docs/physics.md §1.4, §2.2; project issue): a fast step such as
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

The optimiser is made to reach the minimum: besides the given start, ``multistart``
points drawn over the bounds of the log-scale parameters are screened and the best
are refined; a profile that finds a lower χ² restarts the fit from there
(``FitResult.refits`` counts it).  Outliers (``|r| > reject_sigma`` robust σ of their
column, at most :data:`MAX_REJECT_FRACTION` of it) are left out and counted
(``FitResult.excluded``), so one glitch cannot move a constant.  Residual-structure
tests per observable (:mod:`kinetics.goodness`) say whether the model describes the
data (``FitResult.misfit``).

If ``model`` is a :class:`kinetics.network.Network` it is compiled here with fast
steps reduced to equilibria.  The rate of a reduced fast step can still be fitted
when an observed column is sensitive to it (``obs.sensitive_to``: the exchange
broadening of the quinone lines is what makes k_ex and k_c measurable); it then
enters through the observation model, with the equilibrium speciation.  A free
rate of a reduced step that no observed column is sensitive to raises a
:class:`FitWarning` and is flagged.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import lmfit
import numpy as np
import pandas as pd
from scipy import stats

from kinetics import goodness
from kinetics.fit_problem import (
    Experiment,
    FitWarning,
    Problem,
    is_log_default,
    minimize,
)
from kinetics.fit_result import FitResult, Profile, jsonable
from kinetics.model import Model
from kinetics.observe import ObservationModel

__all__ = [
    "DCHI2_95",
    "MAX_REJECT_FRACTION",
    "Experiment",
    "FitResult",
    "FitWarning",
    "Profile",
    "fit",
    "jsonable",
]

DCHI2_95 = float(stats.chi2.ppf(0.95, 1))  # 3.841
#: At most this fraction of a column's points (and at least one) may be rejected as outliers;
#: more would mean the model, not the data, is wrong.
MAX_REJECT_FRACTION = 0.05
_MAX_REFITS = 2


def _chi2_at(prob: Problem, params: lmfit.Parameters, others: list[str], method: str) -> tuple[float, Any]:
    """χ² with the profiled parameter fixed and the others re-optimised (and those parameters)."""
    if others:
        r = minimize(prob, params, method, max_nfev=60 * (len(others) + 1))
        return float(np.sum(r.residual**2)), r.params
    return float(np.sum(prob.residual(params) ** 2)), params


def _interpolate_limit(prob: Problem, cur: Any, iname: str, others: list[str], method: str, chi2_min: float,
                       threshold: float, x_prev: float, d_prev: float, x: float, d: float,
                       xs: list, ds: list) -> float:
    """Where Δχ² crosses the threshold between two profile points (linear in sqrt(Δχ²)),
    with one refinement point when the bracket overshoots a lot."""
    a, b = math.sqrt(max(d_prev, 0.0)), math.sqrt(d)
    frac = (math.sqrt(threshold) - a) / (b - a) if b > a else 1.0
    limit = x_prev + frac * (x - x_prev)
    if d > 10 * threshold:
        cur[iname].set(value=limit, vary=False)
        d_mid = _chi2_at(prob, cur, others, method)[0] - chi2_min
        xs.append(limit)
        ds.append(d_mid)
        m = math.sqrt(max(d_mid, 0.0))
        if d_mid >= threshold and m > a:
            limit = x_prev + (math.sqrt(threshold) - a) / (m - a) * (limit - x_prev)
        elif d_mid < threshold and b > m:
            limit = limit + (math.sqrt(threshold) - m) / (b - m) * (x - limit)
    return limit


def _profile_one(prob: Problem, best: lmfit.Parameters, disp: str, chi2_min: float, threshold: float,
                 stderr_int: float | None, max_steps: int, method: str) -> tuple[Profile, float, Any]:
    """Profile likelihood of one parameter; also the lowest χ² met and its parameters."""
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
    best_seen, best_params = chi2_min, None
    for direction in (-1, +1):
        bound = par.min if direction < 0 else par.max
        cur = best.copy()
        x_prev, d_prev, s, limit = x0, 0.0, step0, None
        for _ in range(max_steps):
            x = x_prev + direction * s
            at_bound = (direction < 0 and x <= bound) or (direction > 0 and x >= bound)
            if at_bound:
                x = bound
            cur[iname].set(value=x, vary=False)
            chi2, cur = _chi2_at(prob, cur, others, method)
            cur = cur.copy()
            d = chi2 - chi2_min
            if chi2 < best_seen:
                best_seen, best_params = chi2, cur.copy()
            xs.append(x)
            ds.append(d)
            if d >= threshold:
                limit = _interpolate_limit(prob, cur, iname, others, method, chi2_min, threshold,
                                           x_prev, d_prev, x, d, xs, ds)
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
    if best_params is not None:
        best_params[iname].set(vary=True)
    return Profile(disp, lo, hi, conv(xs_a), ds_a, threshold, is_log), best_seen, best_params


def _chi2(prob: Problem, params: lmfit.Parameters) -> float:
    return float(np.sum(prob.residual(params) ** 2))


def _optimise(prob: Problem, params: lmfit.Parameters, method: str, max_nfev: int | None,
              multistart: int, seed: int = 0) -> tuple[Any, list[dict[str, Any]]]:
    """Local fit from ``params`` and from the best of ``multistart`` screened starts.

    The starts are a Latin hypercube over the (log10) bounds of the log-scale free
    parameters (the others stay at their start); each is screened by one χ²
    evaluation, the two best get a short fit and are refined when they beat the best.  Returns the best lmfit result and a
    table of the local fits (start χ², end χ²).
    """
    runs = []
    res = minimize(prob, params, method, max_nfev)
    runs.append({"start": "given", "chi2": float(np.sum(res.residual ** 2))})
    logs = [n for n, p in params.items() if p.vary and n.startswith("log10_")
            and np.isfinite(p.min) and np.isfinite(p.max)]
    if multistart <= 0 or not logs:
        return res, runs
    rng = np.random.default_rng(seed)
    u = (rng.permuted(np.tile(np.arange(multistart), (len(logs), 1)), axis=1).T
         + rng.random((multistart, len(logs)))) / multistart
    screened = []
    for row in u:
        p = params.copy()
        for n, f in zip(logs, row):
            p[n].set(value=p[n].min + f * (p[n].max - p[n].min))
        screened.append((_chi2(prob, p), p))
    screened.sort(key=lambda x: x[0])
    best_chi2 = runs[0]["chi2"]
    budget = 15 * (len(logs) + 1)  # a short exploratory fit; refined only if it beats the best
    for c0, p in screened[:2]:
        r = minimize(prob, p, method, budget)
        c = float(np.sum(r.residual ** 2))
        if c < best_chi2 - 1e-6 * max(1.0, best_chi2):
            r = minimize(prob, r.params, method, max_nfev)
            c = float(np.sum(r.residual ** 2))
        runs.append({"start": "multistart", "start_chi2": c0, "chi2": c})
        if c < best_chi2 - 1e-6 * max(1.0, best_chi2):
            res, best_chi2 = r, c
    return res, runs


def _reject_outliers(prob: Problem, res: Any, method: str, max_nfev: int | None, reject_sigma: float) -> Any:
    """Leave out points whose residual exceeds ``reject_sigma`` robust σ of their column, refit.

    The robust σ is ``max(1, 1.4826 MAD)`` of the column's normalised residuals; at most
    ``max(1, MAX_REJECT_FRACTION n)`` points of a column go (the largest first).
    """
    for _ in range(3):
        new = 0
        for bi, col, rows, t, r in prob.column_residuals(res.params):
            if r.size < goodness.MIN_POINTS:
                continue
            scale = max(1.0, 1.4826 * float(np.median(np.abs(r - np.median(r)))))
            bad = np.flatnonzero(np.abs(r) > reject_sigma * scale)
            room = max(1, int(MAX_REJECT_FRACTION * r.size)) - sum(
                1 for x in prob.excluded if x["column"] == col and x["experiment"] == prob.blocks[bi][0].name)
            if bad.size == 0 or room <= 0:
                continue
            bad = bad[np.argsort(-np.abs(r[bad]))][:room]
            prob.exclude(bi, col, rows[bad], reason=f"outlier: |residual| > {reject_sigma:g} robust sigma")
            new += bad.size
        if not new:
            break
        res = minimize(prob, res.params, method, max_nfev)
    return res


def _uncertainties(prob: Problem, res: Any, corr_threshold: float,
                   warn_msgs: list[str]) -> tuple[dict, dict, dict, dict, pd.DataFrame, np.ndarray]:
    """Covariance standard errors, correlations and flags at the best fit.

    Returns ``values, stderr, internal stderr, flags, correlations, residual``.
    """
    best = res.params
    r = prob.residual(best)
    values = prob.natural(best)
    flags: dict[str, list[str]] = {d: [] for d in values}
    stderr: dict[str, float | None] = {}
    ist: dict[str, float | None] = {}
    for d, iname in prob.internal.items():
        se = best[iname].stderr
        ist[d] = se if se is not None and np.isfinite(se) else None
        if ist[d] is None:
            stderr[d] = None
            flags[d].append("covariance unavailable")
        else:
            stderr[d] = values[d] * math.log(10) * se if iname.startswith("log10_") else se
    names = list(values)
    nfree = len(best)
    if res.covar is not None and np.all(np.isfinite(res.covar)):
        cov = np.asarray(res.covar)
        sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
        corr = cov / np.outer(sd, sd)
    else:
        corr = np.full((nfree, nfree), np.nan)
        np.fill_diagonal(corr, 1.0)
    var_names = [n for n in best if best[n].vary]  # lmfit's covar follows this order
    disp_of = {v: k for k, v in prob.internal.items()}
    corr_df = pd.DataFrame(corr, index=[disp_of[n] for n in var_names],
                           columns=[disp_of[n] for n in var_names]).loc[names, names]
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j and np.isfinite(corr_df.iloc[i, j]) and abs(corr_df.iloc[i, j]) > corr_threshold:
                flags[a].append(f"correlation > {corr_threshold:g} with {b} ({corr_df.iloc[i, j]:+.3f})")
    for d, iname in prob.internal.items():
        is_log = iname.startswith("log10_")
        h = 1e-3 if is_log else 1e-4 * max(abs(best[iname].value), 1e-8)
        x = best[iname].value
        pp = best.copy()
        pp[iname].set(value=x + h if x + h <= best[iname].max else x - h)  # step inside the bounds
        if np.max(np.abs(prob.residual(pp) - r)) < 1e-9:
            flags[d].append("no observable depends on it")
            msg = f"{d}: no observed column depends on it (zero sensitivity)"
            if msg not in warn_msgs:
                warn_msgs.append(msg)
                warnings.warn(msg, FitWarning, stacklevel=3)
        p = best[iname]
        if (np.isfinite(p.min) and abs(p.value - p.min) < 1e-6 * max(1.0, abs(p.min))) or (
                np.isfinite(p.max) and abs(p.value - p.max) < 1e-6 * max(1.0, abs(p.max))):
            flags[d].append("at bound")
    return values, stderr, ist, flags, corr_df, r


def _profiles(prob: Problem, best: Any, values: dict, ist: dict, flags: dict, chi2: float, redchi: float,
              profile_steps: int, method: str) -> tuple[dict, dict, Any]:
    """Profile-likelihood intervals of every free parameter; also the parameters of the
    lowest χ² any profile met when it is lower than ``chi2`` (else None)."""
    threshold = DCHI2_95 * max(1.0, redchi)
    profiles: dict[str, Profile] = {}
    ci95: dict[str, tuple[float, float] | None] = {d: None for d in values}
    lower, lower_chi2 = None, chi2 - 0.05 * max(1.0, redchi)
    for d in values:
        is_log = prob.internal[d].startswith("log10_")
        if "no observable depends on it" in flags[d]:  # flat profile: no scan needed
            profiles[d] = Profile(d, None, None, np.array([values[d]]), np.array([0.0]), threshold, is_log)
            flags[d] += ["unbounded profile (low side)", "unbounded profile (high side)"]
            continue
        pr, best_seen, best_p = _profile_one(prob, best, d, chi2, threshold, ist[d], profile_steps, method)
        profiles[d] = pr
        if pr.lo is None:
            flags[d].append("unbounded profile (low side)")
        if pr.hi is None:
            flags[d].append("unbounded profile (high side)")
        if pr.lo is not None and pr.hi is not None:
            ci95[d] = (pr.lo, pr.hi)
        if best_seen < lower_chi2 and best_p is not None:
            lower, lower_chi2 = best_p, best_seen
            flags[d].append("profile found a lower chi2: the fit may not be at the minimum")
    return profiles, ci95, lower


def _residual_checks(prob: Problem, params: Any) -> list[goodness.ResidualCheck]:
    return [goodness.check_residuals(prob.blocks[bi][0].name, col, t, r)
            for bi, col, rows, t, r in prob.column_residuals(params)]


def _setup(model: Any, experiments: Experiment | Sequence[Experiment], free: Any, obs: ObservationModel | None,
           shared: Iterable[str] | None, per_experiment: Iterable[str] | None, log_scale: bool | Iterable[str],
           start: Mapping[str, float] | None, sim_kwargs: Mapping[str, Any] | None,
           reduce_fast: bool | None) -> tuple[Problem, dict, list[str]]:
    """Check the inputs, compile a Network, build the :class:`Problem`; warnings found on the way."""
    exps = [experiments] if isinstance(experiments, Experiment) else list(experiments)
    if not exps:
        raise ValueError("no experiments given")
    keys = [e.key for e in exps]
    if len(set(keys)) != len(keys):
        raise ValueError(f"experiment names must be unique (after sanitising): {keys}")
    obs = obs or ObservationModel()
    free_d: dict[str, tuple[float, float] | None] = (
        {n: None for n in free} if not isinstance(free, Mapping) else dict(free))
    if not free_d:
        raise ValueError("no free parameters")
    observed = sorted({c for e in exps for c in e.sigma})
    sens = obs.sensitive_to(observed)
    rate_sensitive = set().union(*sens.values()) if sens else set()
    if hasattr(model, "compile") and not hasattr(model, "simulate"):
        # Fast steps are always reduced to equilibria: a fast rate that an observable
        # is sensitive to (k_c, k1, k2 through the exchange broadening) enters through
        # the observation model, which takes the rate and the equilibrium speciation.
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
        log_names = {n for n in free_d if is_log_default(n)}
    elif log_scale is False:
        log_names = set()
    else:
        log_names = set(log_scale)
    prob = Problem(model, exps, free_d, obs, per, log_names, dict(start or {}), sim_kwargs or {})
    nvar = len(prob.params)
    if prob.ndata <= nvar:
        raise ValueError(f"too few data points: {prob.ndata} finite observations for {nvar} free parameters "
                         f"({', '.join(prob.internal)}); a fit needs more points than parameters")
    warn_msgs: list[str] = []
    reduced = _reduced_rate_names(model)
    for n in free_d:
        if n in reduced and n not in rate_sensitive:
            msg = (f"{n} is the rate of a step reduced to equilibrium and no observed column "
                   f"({observed}) is sensitive to it: it cannot be determined")
            warn_msgs.append(msg)
            warnings.warn(msg, FitWarning, stacklevel=3)
    return prob, free_d, warn_msgs


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
    method: str = "least_squares",
    max_nfev: int | None = None,
    profile_steps: int = 14,
    corr_threshold: float = 0.95,
    sim_kwargs: Mapping[str, Any] | None = None,
    reduce_fast: bool | None = None,
    multistart: int = 8,
    reject_sigma: float | None = 6.0,
) -> FitResult:
    """Fit model parameters to one or several experiments.

    Parameters
    ----------
    model : kinetics.model.Model or kinetics.network.Network
        A compiled model (``.simulate``, ``.param_names``, ``.defaults``); a
        Network is compiled here, with fast steps reduced to equilibria.
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
        lmfit method for the main fit and the profile sub-fits (default ``least_squares``:
        scipy's trust-region reflective, which handles bounds directly; ``leastsq``'s
        bound transform crawls when a parameter sits on its bound).
    max_nfev : int, optional
        Evaluation budget of the main fit (default ``200 (n_free + 1)``).
    profile_steps : int
        Maximum profile points per side (step growing from the covariance σ).
    sim_kwargs : dict
        Extra keyword arguments for ``Model.simulate`` (method, rtol, atol).
    reduce_fast : bool, optional
        Only when ``model`` is a Network: compile with fast steps reduced (default True).
    multistart : int
        Starts screened over the bounds of the log-scale parameters (0: only ``start``).
    reject_sigma : float or None
        Outlier threshold in robust σ of each column (None: keep every point).

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        Bad input, or no more data points than free parameters.
    """
    t0 = time.perf_counter()
    prob, free_d, warn_msgs = _setup(model, experiments, free, obs, shared, per_experiment, log_scale, start,
                                     sim_kwargs, reduce_fast)
    max_nfev = max_nfev or 200 * (len(prob.params) + 1)
    res, starts = _optimise(prob, prob.params, method, max_nfev, multistart)
    if reject_sigma is not None:
        res = _reject_outliers(prob, res, method, max_nfev, reject_sigma)
    refits = 0
    while True:
        values, stderr, ist, flags, corr_df, r = _uncertainties(prob, res, corr_threshold, warn_msgs)
        chi2 = float(np.sum(r**2))
        dof = max(prob.ndata - len(res.params), 1)
        redchi = chi2 / dof
        profiles: dict[str, Profile] = {}
        ci95: dict[str, tuple[float, float] | None] = {d: None for d in values}
        if not conf_interval:
            break
        profiles, ci95, lower = _profiles(prob, res.params, values, ist, flags, chi2, redchi, profile_steps, method)
        if lower is None or refits >= _MAX_REFITS:
            break
        refits += 1
        warn_msgs.append(f"a profile found a lower chi2 than the fit ({chi2:.6g}): refitted from there")
        res = minimize(prob, lower, method, 200 * (len(prob.params) + 1))  # a full budget, whatever the first had
    return _result(prob, res, free_d, values, stderr, ci95, profiles, corr_df, flags, chi2, redchi, warn_msgs,
                   refits, starts, t0)


def _result(prob: Problem, res: Any, free_d: dict, values: dict, stderr: dict, ci95: dict, profiles: dict,
            corr_df: pd.DataFrame, flags: dict, chi2: float, redchi: float, warn_msgs: list[str], refits: int,
            starts: list, t0: float) -> FitResult:
    """Assemble the :class:`FitResult` with the residual checks and the closing warnings."""
    for d in values:
        if any(f.startswith("unbounded") for f in flags[d]):
            msg = f"{d}: 95 % profile interval is unbounded; the covariance ± is not meaningful"
            warn_msgs.append(msg)
            warnings.warn(msg, FitWarning, stacklevel=3)
    if prob.nbad:
        warn_msgs.append(f"{prob.nbad} model evaluations failed or gave non-finite values (penalised)")
    if prob.nclipped:
        warn_msgs.append(f"{prob.nclipped} of {prob.nsim} trial simulations left SOC [0, 1] and were clipped "
                         "(trial parameters far from the data; check the best fit's SOC range)")
    if prob.excluded:
        warn_msgs.append(f"{len(prob.excluded)} outlier(s) left out of the fit: " + ", ".join(
            f"{x['column']} at t = {x['t_s']:.0f} s" for x in prob.excluded[:5])
                         + (" ..." if len(prob.excluded) > 5 else ""))
    checks = _residual_checks(prob, res.params)
    fixed = {k: float(v) for k, v in prob.base.items() if k not in free_d and np.isscalar(v)}
    log10 = {d: prob.internal[d].startswith("log10_") for d in values}
    return FitResult(
        values=values, stderr=stderr, ci95=ci95, profiles=profiles, correlations=corr_df, flags=flags,
        chi2=chi2, redchi=redchi, ndata=prob.ndata, nfree=len(res.params), nfev=prob.nfev,
        success=bool(res.success), message=str(res.message), log10=log10, fixed=fixed,
        elapsed_s=time.perf_counter() - t0, warnings=warn_msgs, _prob=prob, _params=res.params,
        checks=checks, excluded=list(prob.excluded), refits=refits, starts=starts,
    )


def _reduced_rate_names(model: Model) -> set[str]:
    """Forward rate constants of the fast steps a compiled model reduced to equilibria."""
    if not model.reduced:
        return set()
    return {rx.k for rx in model.network.reactions if rx.fast and isinstance(rx.k, str)}
