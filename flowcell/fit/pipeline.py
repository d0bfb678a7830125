"""From an observables table to a kinetic fit: the one fitting path of ``flowcell``.

``flowcell fit``, the demo and the electrolyte screen (single and group fits) all go
through this module, so the time base, the sigma rules, the nuisance parameters and
the bounds are the same everywhere:

* :func:`prepare_fit_data` turns a store table (one row per NMR or EPR spectrum,
  columns as docs/architecture.md lists) plus the potentiostat log into a
  :class:`FitData` (times the observed fluid left the cell, observables on the model's scales,
  sigma per observable);
* :func:`make_experiment` turns a :class:`FitData` into a ``kinetics.fit.Experiment``
  (fixed parameters, piecewise-constant current, initial state);
* :func:`fit_group` fits one or several prepared experiments with shared parameters
  (the others per experiment), :func:`fit_tables` does the same from store tables and
  :func:`fit_table` is the single-experiment case (a one-member :func:`fit_group`).

Time base and outlet observation: each spectrum is placed at its acquisition
mid-time minus the transit delay of its instrument (docs/physics.md §1.7: the fluid in the
detector left the cell that long ago), in seconds since the potentiostat's start.  The
kinetic model describes the well-mixed tank; what the detectors see is the cell outlet,
which leads the tank by one pass of ``I/(F Q)`` electrons (§1.1), re-speciated at the
fast equilibrium (§1.2), with the products at the tank's concentration
(:func:`outlet_composition`, the same physics as :mod:`flowcell.simulate.simulator`).  The fits
use that observation model (:func:`outlet_observation`).  The earlier approximation,
shifting spectra taken under current by ``V_tot/Q`` to where the tank reaches the
outlet's SOC (:func:`refer_to_tank`, kept for diagnostics), ignored that the tank keeps
decomposing meanwhile and biased k_dec low by ~0.25 % at k_dec ~ 2e-5 1/s
(benchmarks/coverage_screen.py).

Product areas are put on a concentration scale with the first spectrum, when the
battery is fully discharged and the quinone lines are sharp: ``area_scale =
dhaq_h1_area(t0) / C_tot`` (docs/physics.md §1.6, "total DHAQ at t = 0 (closed
system)"), per proton (``n_h`` of the observables config); windowed integrals are
divided by their Lorentzian capture fraction (:func:`integral_capture`), and the
remaining ~1 % processing offset of small lines is absorbed by fitting
``area_scale`` as a nuisance parameter (per experiment).  ``hdo_ref_ppm`` (the
zero-radical water shift) is always fitted too, per experiment.

Sigma rules and goodness of fit (one implementation, :func:`fit_group`): each
observable's sigma is the larger of a floor (:data:`DEFAULT_SIGMA`) and twice the
extractor's median error.  A first fit (multi-start over the log-scale parameters,
outliers beyond 6 robust sigma left out and counted) gives the honest χ² with those
sigmas and the residual tests per observable (:mod:`kinetics.goodness`:
scatter, runs, lag-1 autocorrelation) in :class:`GoodnessOfFit`; with ``rescale_sigma``
each column's sigma is then multiplied by its residual rms within [1,
:data:`SIGMA_RESCALE_MAX`] (a column without an extractor error, on the floor only, is
not bounded and is judged by its residual structure alone), and the final fit with
intervals is run.  A column needing more, structured residuals of a sigma or more, or a
calibration nuisance parameter on its plausible bound mark the fit as a misfit
(``FitOutcome.misfit``; ``flowcell fit`` exits 4).

Temperature: ``kinetics.fit.fit`` takes one ``ObservationModel`` (the first
member's ``T_K`` and geometry).  Each member gets its own BMS factor
``xi = bms_factor(geometry) T_ref / T`` as a fixed parameter: the Curie
susceptibility is proportional to 1/T (docs/physics.md §1.3), so the water shift
``xi chi(T_ref) [R]`` is then exactly that at its own temperature (the
slow-exchange observation model has no other temperature dependence).  For a
single experiment this is the observation model's own default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from flowcell.fit.data import (DEFAULT_SIGMA, LINE_WIDTHS, MAX_FWHM_HZ_UNKNOWN_WINDOW, OBSERVABLES,
                               REDUCED_LINE_WIDTHS,
                               WIDTH_PARAMS, FitData, observables_config, prepare_fit_data)
from flowcell.fit.outcome import NUISANCE, SIGMA_RESCALE_MAX, FitOutcome, GoodnessOfFit, GroupOutcome
from flowcell.fit.observation import (OutletObservation, current_table, integral_capture, obs_names,
                                      outlet_composition, outlet_observation, refer_to_tank)
from flowcell.params import compiled_model
from kinetics import fit as kfit
from kinetics.observe import bms_factor

__all__ = [
    "SIGMA_RESCALE_MAX",
    "GoodnessOfFit",
    "DEFAULT_BOUNDS",
    "DEFAULT_FREE",
    "DEFAULT_SIGMA",
    "MAX_FWHM_HZ_UNKNOWN_WINDOW",
    "LINE_WIDTHS",
    "NUISANCE",
    "WIDTH_PARAMS",
    "OutletObservation",
    "OBSERVABLES",
    "FitData",
    "FitOutcome",
    "GroupOutcome",
    "current_table",
    "default_bounds",
    "fit_group",
    "fit_table",
    "fit_tables",
    "fixed_params",
    "integral_capture",
    "make_experiment",
    "obs_names",
    "outlet_composition",
    "outlet_observation",
    "predict_curves",
    "observables_config",
    "prepare_fit_data",
    "refer_to_tank",
]

#: Parameters fitted by default (K from the water shift and EPR, decomposition from
#: the anthrone area, O2 self-discharge from the rest).  The exchange rates ``k1``
#: (k_ex of O/R) and ``kc`` need observable O-line widths (:data:`LINE_WIDTHS`); free
#: them explicitly (the demo does, :data:`flowcell.demo.DEMO_FREE`).
DEFAULT_FREE = ("Kc", "k_dec", "J_e")
#: Search bounds of free parameters, natural units (1/s, 1/(M s), M/s, 1/M, ppm, -);
#: ``hdo_ref_ppm`` is ±0.05 ppm around the first spectrum's value (:func:`default_bounds`).
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "Kc": (1e-4, 100.0), "k_dec": (1e-9, 1e-3), "J_e": (1e-11, 1e-5), "k_dec2": (1e-8, 1e-1),
    "eps_H": (0.0, 0.5), "KD": (1e-3, 1e3), "kc": (1e1, 1e11), "k1": (1e1, 1e11), "k2": (1e1, 1e11),
    "epr_scale": (0.5, 2.0), "xi": (-1.0, 1.0), "area_scale": (0.8, 1.25), "w0_Hz": (0.05, 20.0)}


def default_bounds(free: Sequence[str], fd: FitData) -> dict[str, tuple[float, float]]:
    """Search bounds of the free parameters (natural units, :data:`DEFAULT_BOUNDS`).

    ``hdo_ref_ppm`` gets ``fd.hdo_ref_ppm ± 0.05`` ppm.

    Raises
    ------
    ValueError
        A free parameter without default bounds (the message lists the known ones).
    """
    b = dict(DEFAULT_BOUNDS)
    b["hdo_ref_ppm"] = (fd.hdo_ref_ppm - 0.05, fd.hdo_ref_ppm + 0.05)
    out = {}
    for n in free:
        if n not in b:
            raise ValueError(f"no default bounds for free parameter {n!r}; known: {sorted(b)}")
        out[n] = b[n]
    return out


def fixed_params(model: Any, fd: FitData, *, free: Sequence[str] = (), params: Mapping[str, float] | None = None,
                 T_ref_K: float | None = None) -> dict[str, float]:
    """The fixed parameters of one experiment.

    Model defaults, then the config's ``[model.params]``, then ``params``; the
    nuisance parameters at their calibration values (``hdo_ref_ppm`` of the first
    spectrum, ``area_scale`` = 1); the BMS factor ``xi = bms_factor(geometry) T_ref/T``
    (see the module docstring; = the observation model's default when ``T_ref_K`` is
    the experiment's own temperature).  Names in ``free`` are left out; so are names
    that are neither model nor observation parameters.
    """
    fixed: dict[str, float] = dict(getattr(model, "defaults", {}) or {})
    fixed.update(fd.config_params)
    fixed.update({k: float(v) for k, v in (params or {}).items()})
    fixed["hdo_ref_ppm"] = fd.hdo_ref_ppm
    fixed["area_scale"] = 1.0
    if fd.w0_Hz is not None and "w0_Hz" not in fd.config_params and "w0_Hz" not in (params or {}):
        fixed["w0_Hz"] = float(fd.w0_Hz)
    T_ref = fd.temperature_K if T_ref_K is None else float(T_ref_K)
    fixed["xi"] = float(bms_factor(fd.geometry)) * T_ref / fd.temperature_K
    if fd.flow_L_s is not None:
        fixed["outlet_flow_L_s"] = float(fd.flow_L_s)
    known = set(getattr(model, "param_names", fixed)) | set(obs_names()) | {"outlet_flow_L_s"}
    return {k: float(v) for k, v in fixed.items() if k in known and k not in set(free)}


def make_experiment(fd: FitData, ident: str = "experiment", *, model: Any = None, free: Sequence[str] = (),
                    params: Mapping[str, float] | None = None, T_ref_K: float | None = None) -> Any:
    """A ``kinetics.fit.Experiment`` from prepared data.

    Parameters
    ----------
    fd : FitData
    ident : str
        Experiment name (suffix of its per-experiment parameters).
    model : kinetics Model, optional
        Supplies the default parameter values (:func:`fixed_params`).
    free : sequence of str
        Free parameter names (left out of ``fixed``).
    params : dict, optional
        Fixed parameter values overriding the defaults and the config.
    T_ref_K : float, optional
        Temperature of the fit's observation model (K; default the experiment's own).

    Returns
    -------
    kinetics.fit.Experiment
        ``data``/``sigma`` from ``fd``, ``current_A`` = :func:`current_table` of the
        log (s, A), ``volume_L``, ``y0 = {'O': C_tot}`` (fully discharged start, mol/L).
    """
    return kfit.Experiment(ident, fd.data, dict(fd.sigma), current_A=current_table(*fd.current),
                           volume_L=fd.volume_L, y0={"O": fd.c_tot_M},
                           fixed=fixed_params(model, fd, free=free, params=params, T_ref_K=T_ref_K))


def _w0_unreliable(fd: FitData, R_max_M: float = 1e-4) -> bool:
    """True when the first spectrum's width cannot stand for w0: radical present, or unknown (issue 14)."""
    if "w0_Hz" in fd.config_params:
        return False
    if fd.w0_Hz is None or "epr_spin_conc_M" not in fd.data:
        return True
    r = fd.data.sort_values("t_s")["epr_spin_conc_M"].dropna()
    return not (len(r) and abs(float(r.iloc[0])) <= R_max_M)


def _default_model(cfg: Any) -> Any:
    return compiled_model(cfg)


def _start_exchange_rates(fds: Mapping[str, FitData], free: Sequence[str], sv: dict[str, float], per: set[str],
                          exps: Sequence[Any], explicit: set[str]) -> None:
    """Starting values of free exchange rates (k1, kc, k2) from the line widths.

    The library placeholders (1e8 1/(M s)) give MHz-wide lines, far from any width
    that was actually measured, and a local optimiser started there stalls.  A rough
    scale: ``k ~ pi * median(FWHM - w0) / (0.05 C_tot)`` (docs/physics.md §1.4 with
    ``[R] + [H]`` ~ 5 % of C_tot at the low SOC where the lines are observable),
    used only when no start value was given.
    """
    for n in ("k1", "kc", "k2"):
        if n not in free or n in explicit:
            continue
        for (ident, fd), e in zip(fds.items(), exps):
            ex = [fd.data[c].to_numpy(float) - (fd.w0_Hz or 0.0) for c in LINE_WIDTHS if c in fd.data]
            ex = np.concatenate(ex) if ex else np.zeros(0)
            ex = ex[np.isfinite(ex) & (ex > 0)]
            if not ex.size:
                continue
            k0 = float(np.clip(np.pi * np.median(ex) / (0.05 * fd.c_tot_M), 1e2, 1e10))
            if n in per:
                sv[f"{n}__{e.key}"] = k0
            else:
                sv[n] = k0
                break


def _widths_and_rates(fds: dict[str, FitData], free: list[str], params: Mapping[str, float] | None) -> None:
    """Drop line widths when no exchange rate is free; else free k2 and w0_Hz where the data need them.

    Mutates ``free`` (appends) and each member's ``sigma``, ``data`` and ``notes``.
    """
    if not any(n in free for n in WIDTH_PARAMS):  # widths only inform the exchange rates
        for fd in fds.values():
            drop = [c for c in LINE_WIDTHS + REDUCED_LINE_WIDTHS if c in fd.sigma]
            if drop:
                fd.sigma = {c: v for c, v in fd.sigma.items() if c not in drop}
                fd.data = fd.data.drop(columns=[c for c in drop if c in fd.data])
                fd.notes.append("line widths not fitted (no exchange rate k1/kc/k2/w0_Hz free)")
    if (any(n in free for n in WIDTH_PARAMS) and "k2" not in free and "k2" not in (params or {})
            and any(c in fd.sigma for fd in fds.values() for c in REDUCED_LINE_WIDTHS)
            and not any("k2" in fd.config_params for fd in fds.values())):
        free.append("k2")  # issue 14: the reduced-form (dhaq4_*) widths carry k2
        for fd in fds.values():
            fd.notes.append("k2 fitted from the reduced-form (dhaq4_*) line widths (docs/physics.md §1.8)")
    if (any(n in free for n in WIDTH_PARAMS) and "w0_Hz" not in free
            and any(_w0_unreliable(fd) for fd in fds.values())):
        free.append("w0_Hz")  # issue 14: w0 fitted with the rates; the first spectrum's width only starts it
        for fd in fds.values():
            fd.notes.append("w0_Hz fitted: the first spectrum already held radical (or no EPR to tell), "
                            "so its width is not the intrinsic one (docs/physics.md §1.4)")


def _union_bounds(fds: dict[str, FitData], all_free: list[str]) -> dict[str, tuple[float, float]]:
    """Bounds of each free parameter (its own units): the union over members."""
    # bounds: the union over members (hdo_ref_ppm differs per member)
    bounds: dict[str, tuple[float, float]] = {}
    for fd in fds.values():
        for n, (lo, hi) in default_bounds(all_free, fd).items():
            o = bounds.get(n, (lo, hi))
            bounds[n] = (min(lo, o[0]), max(hi, o[1]))
    return bounds


def _start_values(fds: dict[str, FitData], exps: list[Any], all_free: list[str], per: set[str], *,
                  start: Mapping[str, Mapping[str, float]] | None, params: Mapping[str, float] | None,
                  defaults: Mapping[str, float]) -> dict[str, float]:
    """Starting values by fit name (``name`` shared, ``name__key`` per member), in the parameters' units.

    Nuisance parameters start at calibration, others from ``start``, ``params`` or the
    model defaults (shared ones given per member: their median); w0_Hz at the first
    spectrum's width, clipped to [0.1, 19] Hz.
    """
    # starting values: nuisance at calibration, others from `start`, `params` or the model defaults
    sv: dict[str, float] = {}
    shared_start: dict[str, list[float]] = {}
    for (ident, fd), e in zip(fds.items(), exps):
        own = dict((start or {}).get(ident) or {})
        for n in all_free:
            v = own.get(n, fd.hdo_ref_ppm if n == "hdo_ref_ppm" else 1.0 if n == "area_scale" else
                        (params or {}).get(n, defaults.get(n)))
            if v is None:
                continue
            if n in per:
                sv[f"{n}__{e.key}"] = float(v)
            elif n in own:
                shared_start.setdefault(n, []).append(float(own[n]))
            else:
                sv.setdefault(n, float(v))
    for n, vals in shared_start.items():
        sv[n] = float(np.median(vals))
    for (ident, fd), e in zip(fds.items(), exps):  # w0 starts at the first spectrum's width (issue 14)
        if "w0_Hz" in all_free and fd.w0_Hz is not None:
            sv.setdefault(f"w0_Hz__{e.key}" if "w0_Hz" in per else "w0_Hz", float(np.clip(fd.w0_Hz, 0.1, 19.0)))
    return sv


def fit_group(fit_data: Mapping[str, FitData], *, model: Any, free: Sequence[str] = DEFAULT_FREE,
              shared: Sequence[str] | None = None, params: Mapping[str, float] | None = None,
              start: Mapping[str, Mapping[str, float]] | None = None, conf_interval: bool = True,
              rescale_sigma: bool = True, free_area_scale: bool = True,
              truth: Mapping[str, Mapping[str, float]] | None = None, multistart: int = 8) -> GroupOutcome:
    """Fit one or several prepared experiments; the only place a fit is set up.

    Parameters
    ----------
    fit_data : dict
        Experiment id -> :class:`FitData` (:func:`prepare_fit_data`), in order.
    model : kinetics Model
    free : sequence of str
        Free kinetic parameters (default Kc, k_dec, J_e).  ``hdo_ref_ppm`` is always
        free, and ``area_scale`` when product areas are fitted and ``free_area_scale``
        (both per experiment).
    shared : sequence of str, optional
        Free parameters shared by all experiments; the others get one value per
        experiment (``<name>__<id>``).  Default: all of ``free``.  With one
        experiment every parameter keeps its plain name.
    params : dict, optional
        Fixed values overriding model defaults and ``[model.params]``.
    start : dict, optional
        Experiment id -> starting values (e.g. the member's own fit); a shared
        parameter starts at the median over the members that give it.
    conf_interval : bool
        Profile-likelihood 95 % intervals.
    rescale_sigma : bool
        Fit twice: a first fit without intervals (its χ² with the extractors' sigmas is
        :attr:`GroupOutcome.gof`), then each experiment's column sigma is multiplied by
        the rms of its normalised residuals within [1, :data:`SIGMA_RESCALE_MAX`], so
        intervals reflect the scatter actually seen; a column needing more fails the
        goodness-of-fit (the model is wrong, not the sigma).
    free_area_scale : bool
        Fit ``area_scale`` (product areas vs the first spectrum's quinone line) as a
        nuisance parameter when product areas are fitted: their windowed integrals
        carry a ~1 % processing offset that would otherwise bias k_dec.
    truth : dict, optional
        Experiment id -> true values (simulations), for :meth:`GroupOutcome.table`.
    multistart : int
        Starts screened over the bounds of the log-scale parameters in the first fit
        (``kinetics.fit.fit``).

    Returns
    -------
    GroupOutcome
    """
    if not fit_data:
        raise ValueError("fit_group: no experiments given")
    fds = dict(fit_data)
    free = list(dict.fromkeys(free))
    _widths_and_rates(fds, free, params)
    shared_l = [n for n in (free if shared is None else shared) if n in free]
    nuis = []
    if any("hdo_shift_ppm" in fd.sigma for fd in fds.values()):
        nuis.append("hdo_ref_ppm")
    if free_area_scale and any(c in fd.sigma for fd in fds.values() for c in ("anthrone_area", "anthranol_area")):
        nuis.append("area_scale")
        for fd in fds.values():
            fd.notes.append("area_scale (product areas vs the first spectrum's quinone line) fitted as a "
                            "nuisance parameter: windowed integrals of small lines carry a ~1 % processing offset")
    all_free = free + [n for n in nuis if n not in free]
    single = len(fds) == 1
    per = set() if single else {n for n in all_free if n not in shared_l or n in NUISANCE}
    first = next(iter(fds.values()))
    T_ref = first.temperature_K
    obs = outlet_observation(geometry=first.geometry, T_K=T_ref, flow_L_s=first.flow_L_s)
    defaults = dict(getattr(model, "defaults", {}) or {})

    def build() -> list[Any]:
        return [make_experiment(fd, ident, model=model, free=all_free, params=params, T_ref_K=T_ref)
                for ident, fd in fds.items()]

    exps = build()
    bounds = _union_bounds(fds, all_free)
    sv = _start_values(fds, exps, all_free, per, start=start, params=params, defaults=defaults)
    _start_exchange_rates(fds, all_free, sv, per, exps, explicit=set(params or {}) | {
        n for own in (start or {}).values() for n in (own or {})})
    result, exps, gof = _fit_two_pass(model, fds, build, bounds, obs, per, sv, conf_interval=conf_interval,
                                      rescale_sigma=rescale_sigma, multistart=multistart)
    return GroupOutcome(result, fds, exps, all_free, [n for n in all_free if n not in per],
                        {k: dict(v) for k, v in (truth or {}).items()}, gof=gof)


def _fit_two_pass(model: Any, fds: dict[str, FitData], build: Any, bounds: dict, obs: Any, per: set[str],
                  sv: dict[str, float], *, conf_interval: bool, rescale_sigma: bool,
                  multistart: int) -> tuple[Any, list[Any], GoodnessOfFit]:
    """First fit with the extractors' sigmas (multi-start, outliers out): the honest χ²
    and the residual tests; then, with ``rescale_sigma``, each column's sigma scaled to
    its scatter within [1, :data:`SIGMA_RESCALE_MAX`] and the final fit with intervals."""
    exps = build()
    pass1 = kfit.fit(model, exps, bounds, obs=obs, per_experiment=per, start=sv or None,
                     conf_interval=conf_interval and not rescale_sigma, multistart=multistart)
    dof = max(pass1.ndata - pass1.nfree, 1)
    floor_only = {(e.name, c) for fd, e in zip(fds.values(), exps)
                  for c, src in fd.sigma_source.items() if src == "floor"}
    gof = GoodnessOfFit(pass1.chi2, pass1.chi2 / dof, pass1.ndata, float(stats.chi2.sf(pass1.chi2, dof)),
                        scatter={f"{c.experiment}:{c.column}": c.scatter for c in pass1.checks},
                        misfit_reasons=_misfit_reasons(pass1.checks, floor_only), excluded=list(pass1.excluded))
    if not rescale_sigma:
        gof.misfit_reasons += _nuisance_at_bound(pass1, bounds)
        return pass1, exps, gof
    failing = {(c.experiment, c.column) for c in pass1.checks if c.failed}
    for (ident, fd), e in zip(fds.items(), exps):
        new = {}
        for c, sg in fd.sigma.items():
            f = gof.scatter.get(f"{e.name}:{c}", 1.0)
            top = np.inf if (e.name, c) in floor_only else SIGMA_RESCALE_MAX  # a floor is no extractor's word
            f = float(np.clip(f if np.isfinite(f) else 1.0, 1.0, top))
            gof.rescale[f"{e.name}:{c}"] = f
            new[c] = sg * f
        fd.notes.append(f"sigma scaled to the residual scatter of a first fit, within [1, {SIGMA_RESCALE_MAX:g}] "
                        "(unbounded for floor-only sigmas): "
                        + ", ".join(f"{c} x{new[c] / fd.sigma[c]:.2f}" for c in fd.sigma))
        fd.sigma = new
    exps = build()
    result = kfit.fit(model, exps, bounds, obs=obs, per_experiment=per, start=dict(pass1.values),
                      conf_interval=conf_interval, multistart=0)
    gof.misfit_reasons += _misfit_reasons([c for c in result.checks if (c.experiment, c.column) not in failing],
                                          floor_only)
    gof.misfit_reasons += _nuisance_at_bound(result, bounds)
    return result, exps, gof


def _nuisance_at_bound(result: Any, bounds: Mapping[str, tuple[float, float]]) -> list[str]:
    """A nuisance parameter (calibration) on its plausible bound: the data ask for a
    calibration outside its stated range, i.e. the model does not describe them."""
    out = []
    for disp, v in result.values.items():
        base = disp.partition("__")[0]
        if base in NUISANCE and "at bound" in result.flags.get(disp, []):
            lo, hi = bounds.get(base, (float("nan"), float("nan")))
            out.append(f"{disp} at its bound {v:.4g} (plausible range [{lo:.4g}, {hi:.4g}]): the data need a "
                       "calibration outside it")
    return out


def _misfit_reasons(checks: Sequence[Any], floor_only: set[tuple[str, str]]) -> list[str]:
    """Failed residual tests as text; a column whose sigma is only the floor is judged by
    its residual structure, not by its scatter."""
    out = []
    for c in checks:
        failed = [f for f in c.failed if not (f.startswith("scatter") and (c.experiment, c.column) in floor_only)]
        if failed:
            out.append(f"{c.experiment} {c.column}: " + "; ".join(failed))
    return out


def fit_tables(members: Sequence[tuple[str, pd.DataFrame, Any, pd.DataFrame]], *,
               free: Sequence[str] = DEFAULT_FREE, shared: Sequence[str] | None = None, model: Any = None,
               params: Mapping[str, float] | None = None, sigma: Mapping[str, float] | None = None,
               start: Mapping[str, Mapping[str, float]] | None = None, conf_interval: bool = True,
               rescale_sigma: bool = True, free_area_scale: bool = True,
               truth: Mapping[str, Mapping[str, float]] | None = None, multistart: int = 8) -> GroupOutcome:
    """Global fit of several experiments from their store tables (:func:`fit_group`).

    Parameters
    ----------
    members : list of (id, table, cfg, potentiostat)
        Experiment id, store table, ``ExperimentConfig`` and potentiostat log
        (:func:`flowcell.potentiostat.read_potentiostat`).
    model : kinetics Model, optional
        Default ``kinetics.library.<name>().compile()`` of the first member's config.
    sigma : dict, optional
        Per-column sigma overriding the automatic choice, for every member.

    The other parameters are those of :func:`fit_group`.
    """
    members = list(members)
    if not members:
        raise ValueError("fit_tables: no experiments given")
    ids = [m[0] for m in members]
    if len(set(ids)) != len(ids):
        raise ValueError(f"fit_tables: experiment ids must be unique, got {ids}")
    model = model if model is not None else _default_model(members[0][2])
    fds = {ident: prepare_fit_data(table, cfg, pot, sigma=sigma) for ident, table, cfg, pot in members}
    return fit_group(fds, model=model, free=free, shared=shared, params=params, start=start,
                     conf_interval=conf_interval, rescale_sigma=rescale_sigma, free_area_scale=free_area_scale,
                     truth=truth, multistart=multistart)


def fit_table(table: pd.DataFrame, cfg: Any, potentiostat: pd.DataFrame, *,
              free: Sequence[str] = DEFAULT_FREE, model: Any = None, start: datetime | None = None,
              truth: Mapping[str, float] | None = None, params: Mapping[str, float] | None = None,
              conf_interval: bool = True, sigma: Mapping[str, float] | None = None,
              rescale_sigma: bool = True, free_area_scale: bool = True, multistart: int = 8) -> FitOutcome:
    """Fit the experiment's kinetic model to one store table (a one-member :func:`fit_group`).

    Parameters
    ----------
    table : DataFrame
        Store rows.
    cfg : ExperimentConfig
    potentiostat : DataFrame
        From :func:`flowcell.potentiostat.read_potentiostat`.
    free : sequence of str
        Free parameters (default Kc, k_dec, J_e; ``hdo_ref_ppm`` is always free too,
        ``area_scale`` when product areas are fitted, see :func:`fit_group`).
    model : kinetics Model, optional
        Default ``kinetics.library.<cfg.model.name>().compile()``.
    start : datetime, optional
        Overrides the potentiostat's start time (:func:`prepare_fit_data`).
    truth : dict, optional
        True values (simulations) for the report.
    params : dict, optional
        Fixed parameter values (default: model defaults + ``cfg.model.params``).
    sigma : dict, optional
        Per-column noise, column units (default: floors of :data:`DEFAULT_SIGMA` or
        twice the extractor's median error).
    conf_interval, rescale_sigma, free_area_scale : bool
        As :func:`fit_group`.
    multistart : int
        As :func:`fit_group`.

    Returns
    -------
    FitOutcome
    """
    model = model if model is not None else _default_model(cfg)
    fd = prepare_fit_data(table, cfg, potentiostat, start=start, sigma=sigma)
    g = fit_group({"experiment": fd}, model=model, free=free, params=params, conf_interval=conf_interval,
                  rescale_sigma=rescale_sigma, free_area_scale=free_area_scale, multistart=multistart)
    out = FitOutcome(g.result, fd, list(g.free), truth=dict(truth) if truth else None, gof=g.gof)
    out.prediction = predict_curves(model, g, "experiment")
    return out


def predict_curves(model: Any, outcome: GroupOutcome, ident: str, n: int = 400) -> pd.DataFrame | None:
    """Model curves of one member at the fitted values on a dense grid (for plots).

    Returns a DataFrame with ``t_s`` (s), the predicted observable columns and ``soc``,
    or None when the simulation fails (plots are best effort).
    """
    try:
        fd = outcome.fit_data[ident]
        e = dict(zip(outcome.fit_data, outcome.experiments))[ident]
        first = next(iter(outcome.fit_data.values()))
        obs = outlet_observation(geometry=first.geometry, T_K=first.temperature_K, flow_L_s=first.flow_L_s)
        p = dict(obs.defaults)
        p.update(outcome.values_for(ident))
        t = fd.data["t_s"].to_numpy(float)
        grid = np.linspace(max(0.0, float(np.min(t))), float(np.max(t)), n)
        names = set(getattr(model, "param_names", p))
        sim = model.simulate(grid, params={k: v for k, v in p.items() if k in names}, y0=e.y0,
                             current_A=e.current_A, volume_L=e.volume_L)
        pred = obs.predict(sim, p)
        pred["soc"] = np.asarray(sim.soc, float)
        for sp in sim.conc.columns:  # tank concentrations, mol/L
            pred[f"{sp}_M"] = sim.conc[sp].to_numpy(float)
        if "t_s" not in pred:
            pred.insert(0, "t_s", grid)
        return pred
    except Exception:  # plots are best effort
        return None


