"""Post-hoc kinetic fit of an in-line experiment, and its report (markdown + PNG + JSON).

:func:`fit_table` turns a store table (one row per NMR or EPR spectrum, columns as
docs/architecture.md lists) plus the potentiostat log into a
``kinetics.fit.Experiment`` and fits the kinetic model through the observation
model (water shift §1.3, EPR spin concentration §1.5, product areas §1.6).

Time base: each spectrum is placed at its acquisition mid-time minus the transit
delay of its instrument (science.md §1.7: the fluid in the detector left the cell
that long ago), in seconds since the potentiostat's start, and then referred to
the well-mixed tank the kinetic model describes: the cell outlet leads the tank by
``I/(2FCQ)`` (§1.1), which the tank reaches ``V_tot/Q`` later at constant current
(:func:`refer_to_tank`; spectra straddling a current change are left out).

Product areas are put on a concentration scale with the first spectrum, when the
battery is fully discharged and the quinone lines are sharp: ``area_scale =
dhaq_h1_area(t0) / C_tot`` (science.md §1.6, "total DHAQ at t = 0 (closed
system)"), per proton (``n_h`` of the observables config); windowed integrals are
divided by their Lorentzian capture fraction (:func:`integral_capture`), and the
remaining ~1 % processing offset of small lines is absorbed by fitting
``area_scale`` as a nuisance parameter.  ``hdo_ref_ppm`` (the zero-radical water
shift) is always fitted too.  Each observable's sigma is the larger of a floor
(:data:`DEFAULT_SIGMA`) and twice the extractor's median error, then rescaled to the
residual scatter of a first fit (``rescale_sigma``).

:func:`write_report` writes ``report.md``, ``fit.json`` and the plots
``soc.png`` (true / coulomb / live SOC), ``observables.png`` (water shift and
EPR [R] against time with the fit) and ``fit.png`` (the fit's own data-vs-model).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "FitData",
    "FitOutcome",
    "prepare_fit_data",
    "fit_table",
    "plot_soc",
    "plot_observables",
    "write_report",
    "DEFAULT_FREE",
    "DEFAULT_SIGMA",
    "observables_config",
    "integral_capture",
]

#: Parameters fitted by default (ASSUMED demo choice: K from the water shift and EPR,
#: decomposition from the anthrone area, O2 self-discharge from the rest).
DEFAULT_FREE = ("Kc", "k_dec", "J_e")
#: Floor of each observable's sigma (units of the column); the effective sigma is
#: the larger of this and the extractor's median reported error.
DEFAULT_SIGMA = {"hdo_shift_ppm": 5e-5, "epr_spin_conc_M": 1.5e-4, "anthrone_area": 2e-5, "anthranol_area": 2e-5}

OBSERVABLES = ("hdo_shift_ppm", "epr_spin_conc_M", "anthrone_area", "anthranol_area")


@dataclass
class FitData:
    """Data ready for ``kinetics.fit``.

    Attributes
    ----------
    data : DataFrame
        ``t_s`` (s since the potentiostat start, referred to the cell outlet) and the
        observable columns (NaN where an instrument gave nothing).
    sigma : dict
        Column -> standard deviation (column units).
    current : tuple of ndarray
        ``(t_s, I_A)`` from the potentiostat log (A, > 0 charging).
    start : datetime or None
        Potentiostat start (UTC).
    area_scale : float or None
        Area per mol/L (2 protons) from the first spectrum.
    hdo_ref_ppm : float
        Starting value of the zero-radical water shift (first spectrum), ppm.
    """

    data: pd.DataFrame
    sigma: dict[str, float]
    current: tuple[np.ndarray, np.ndarray]
    start: datetime | None
    area_scale: float | None
    hdo_ref_ppm: float
    notes: list[str] = field(default_factory=list)


@dataclass
class FitOutcome:
    """A finished fit plus what it was fitted to."""

    result: Any
    fit_data: FitData
    free: list[str]
    prediction: pd.DataFrame | None = None
    truth: dict[str, float] | None = None

    def table(self) -> pd.DataFrame:
        """Parameter table: value, stderr, ci_lo, ci_hi, truth, inside, flags."""
        r = self.result
        rows = []
        for name in self.free:
            ci = (r.ci95 or {}).get(name)
            lo, hi = (ci if ci is not None else (math.nan, math.nan))
            lo = math.nan if lo is None else lo
            hi = math.nan if hi is None else hi
            tv = (self.truth or {}).get(name, math.nan)
            inside = bool(np.isfinite(tv) and np.isfinite(lo) and np.isfinite(hi) and lo <= tv <= hi)
            rows.append({"parameter": name, "value": r.values.get(name, math.nan),
                         "stderr": (r.stderr or {}).get(name, math.nan), "ci95_lo": lo, "ci95_hi": hi,
                         "truth": tv, "truth_inside": inside if np.isfinite(tv) else None,
                         "flags": "; ".join((r.flags or {}).get(name, []))})
        return pd.DataFrame(rows)

    def all_inside(self) -> bool:
        """True when every known true value lies inside its 95 % interval."""
        t = self.table()
        known = t[np.isfinite(t["truth"].astype(float))]
        return bool(len(known)) and bool(known["truth_inside"].all())


def observables_config(cfg: Any) -> Any:
    """The ingest observables config of an experiment, with its EPR calibration.

    ``[observables] config`` of the experiment when given, else
    ``ObservablesConfig.default()``; the experiment's ``[epr_calibration]`` becomes
    ``obs.epr.calibration`` so that rows carry ``epr_spin_conc_M``.
    """
    from dataclasses import replace

    from ingest.observables import ObservablesConfig
    ref = getattr(getattr(cfg, "observables", None), "config", None)
    obs = ObservablesConfig.from_toml(ref) if ref else ObservablesConfig.default()
    cal = getattr(cfg, "epr_calibration", None)
    if cal is not None:
        from ingest.epr_process import EPRCalibration
        ecal = EPRCalibration(concentration_M=cal.concentration_M, di_norm=cal.di_norm,
                              temperature_K=cal.temperature_K, g=cal.g, spin=cal.spin)
        obs = replace(obs, epr=replace(obs.epr, calibration=ecal))
    return obs


def integral_capture(center_ppm: float, fwhm_hz: float, window_ppm: Sequence[float], sfo1_hz: float) -> float:
    """Fraction of a Lorentzian's area that ``ingest.peaks.integrate_window`` reports.

    A windowed integral loses the Lorentzian wings outside the window
    ((2/pi) arctan(n) within +-n HWHM, science.md §1.5 caveat 3) and part of the
    line under its edge baseline, more so when the line sits off the window's centre.
    This runs the same integral on a noise-free Lorentzian of the given width
    (grid 0.05 Hz).  ``center_ppm`` is the centre the integral itself reported (the
    intensity-weighted mean, pulled towards the window centre); the true line
    centre that reproduces it is found first (brentq).
    """
    from scipy.optimize import brentq

    from ingest.peaks import integrate_window
    lo, hi = float(min(window_ppm)), float(max(window_ppm))
    step = 0.05 / (sfo1_hz * 1e-6)
    ppm = np.arange(hi + 0.5, lo - 0.5, -step)

    def run(c: float):
        hz = (ppm - c) * sfo1_hz * 1e-6
        g = 0.5 * fwhm_hz
        y = (g / np.pi) / (hz * hz + g * g)  # unit area per Hz
        return integrate_window(ppm, y, (lo, hi), sfo1_hz=sfo1_hz, noise=1.0)

    c = float(center_ppm)
    if lo < c < hi:
        a, b = lo + 1e-4, hi - 1e-4
        try:
            fa, fb = run(a).center_ppm - c, run(b).center_ppm - c
            if fa * fb < 0:
                c = brentq(lambda x: run(x).center_ppm - center_ppm, a, b, xtol=1e-5)
        except (ValueError, RuntimeError):
            pass
    return float(run(c).area)


def refer_to_tank(t_fluid_s: np.ndarray, t_log_s: np.ndarray, I_A: np.ndarray, *, volume_L: float,
                  rate_mL_min: float) -> np.ndarray:
    """Time at which the well-mixed tank has the SOC the cell outlet had at ``t_fluid_s``, s.

    The outlet leads the tank by ``dSOC_pass = I/(2 F C Q)`` (science.md §1.1); at
    constant current the tank needs ``V_tot/Q`` to catch up, since
    ``dSOC/dt = I/(2 F C V_tot)``.  So a spectrum of fluid that left the cell at ``t``
    while current flowed is compared with the tank model at ``t + V_tot/Q``, capped
    at the next change of the logged current (where the tank stops following the
    same slope).  At rest the shift is zero.  The kinetic model is a single
    well-mixed volume, so this is the consistent way to compare.  Fluid that left
    the cell less than ``V_tot/Q`` before a current change has no tank equivalent
    (the outlet was ahead of anything the tank reaches): its time is NaN, and
    :func:`prepare_fit_data` leaves such spectra out.

    Parameters
    ----------
    t_fluid_s : ndarray
        Times the observed fluid left the cell, s (potentiostat clock).
    t_log_s, I_A : ndarray
        Potentiostat log (A, > 0 charging).
    volume_L : float
        Circulating volume V_tot, L.
    rate_mL_min : float
        Flow rate, mL/min.
    """
    t = np.asarray(t_fluid_s, float)
    if len(t_log_s) == 0:
        return t.copy()
    lag = volume_L * 1e3 / rate_mL_min * 60.0
    i = np.clip(np.searchsorted(t_log_s, t, side="right") - 1, 0, len(I_A) - 1)
    cur = I_A[i]
    change = np.nonzero(np.abs(np.diff(I_A)) > 1e-12)[0] + 1  # first sample of a new current
    t_change = t_log_s[change] if change.size else np.array([np.inf])
    j = np.searchsorted(t_change, t, side="right")
    nxt = np.where(j < t_change.size, t_change[np.minimum(j, t_change.size - 1)], np.inf)
    shifted = np.where(np.abs(cur) > 0, t + lag, t)
    return np.where((np.abs(cur) > 0) & (shifted > nxt), np.nan, shifted)


def _median_err(df: pd.DataFrame, col: str) -> float:
    ecol = {"hdo_shift_ppm": "hdo_shift_err_ppm", "anthrone_area": "anthrone_area_err",
            "anthranol_area": "anthranol_area_err"}.get(col)
    if ecol and ecol in df:
        v = pd.to_numeric(df[ecol], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            return float(np.median(v))
    return 0.0


def prepare_fit_data(table: pd.DataFrame, cfg: Any, potentiostat: pd.DataFrame, *,
                     start: datetime | None = None, sigma: Mapping[str, float] | None = None,
                     obs_cfg: Any = None) -> FitData:
    """Build the fit's data table from a store table and a potentiostat log.

    Parameters
    ----------
    table : DataFrame
        Store rows (``kind``, ``time_mid`` and observable columns).
    cfg : ExperimentConfig
        C_tot, V_tot, loop delays, EPR calibration.
    potentiostat : DataFrame
        ``t_s``, ``I_A`` (``attrs['start']`` gives the start time).
    start : datetime, optional
        Overrides the potentiostat's start time.
    sigma : dict, optional
        Per-column sigma overriding the automatic choice.
    obs_cfg : ObservablesConfig, optional
        The peak windows, methods and proton counts used by the extractor (default
        :func:`observables_config`).  Windowed-integral product areas are divided by
        :func:`integral_capture` of a line as wide as ``dhaq_h1`` in the first spectrum.
    """
    notes: list[str] = []
    if obs_cfg is None:
        try:
            obs_cfg = observables_config(cfg)
        except Exception:  # ingest absent: no per-peak details
            obs_cfg = None
    peaks = {p.name: p for p in (getattr(getattr(obs_cfg, "nmr", None), "peaks", None) or [])}
    start = start or potentiostat.attrs.get("start")
    df = table.copy()
    tm = pd.to_datetime(df["time_mid"], utc=True)
    if start is None:
        start = tm.min().to_pydatetime()
        notes.append("potentiostat log has no start time: the first spectrum is taken as t = 0")
    t = (tm - pd.Timestamp(start)).dt.total_seconds().to_numpy()
    delays = cfg.transit_delays()
    kind = df["kind"].astype(str).to_numpy()
    t = t - np.where(kind == "nmr", delays.delay_s("nmr"), delays.delay_s("epr"))
    pt = potentiostat["t_s"].to_numpy(float)
    pI = potentiostat["I_A"].to_numpy(float) * getattr(cfg.instruments, "current_sign", 1)
    t = refer_to_tank(t, pt, pI, volume_L=float(cfg.electrolyte.volume_L),
                      rate_mL_min=float(cfg.flow.rate_mL_min))
    out = pd.DataFrame({"t_s": t})
    nmr = kind == "nmr"
    epr = kind == "epr"
    C_tot = float(cfg.electrolyte.concentration_M)

    def col(name: str, mask: np.ndarray) -> np.ndarray:
        if name not in df:
            return np.full(len(df), np.nan)
        v = pd.to_numeric(df[name], errors="coerce").to_numpy(float)
        return np.where(mask, v, np.nan)

    out["hdo_shift_ppm"] = col("hdo_shift_ppm", nmr)
    R = col("epr_spin_conc_M", epr)
    if not np.isfinite(R).any() and "epr_di_norm" in df and cfg.epr_calibration is not None:
        cal = cfg.epr_calibration
        R = col("epr_di_norm", epr) / cal.di_norm * cal.concentration_M
        notes.append("epr_spin_conc_M computed from epr_di_norm and the config's [epr_calibration]")
    out["epr_spin_conc_M"] = R
    area_scale = None
    order = np.argsort(t)
    first_nmr = [i for i in order if nmr[i] and np.isfinite(t[i])]
    fwhm0 = math.nan
    if first_nmr and "dhaq_h1_area" in df:
        i0 = first_nmr[0]
        a0 = float(pd.to_numeric(df["dhaq_h1_area"], errors="coerce").iloc[i0])
        nh0 = getattr(peaks.get("dhaq_h1"), "n_h", None) or 2
        if np.isfinite(a0) and a0 > 0:
            area_scale = a0 / C_tot / nh0  # area per mol/L of protons
        if "dhaq_h1_fwhm_Hz" in df:
            fwhm0 = float(pd.to_numeric(df["dhaq_h1_fwhm_Hz"], errors="coerce").iloc[i0])
    sfo1 = float(pd.to_numeric(df.get("sfo1_MHz", pd.Series([400.0])), errors="coerce").dropna().median()) * 1e6
    for prod, default_nh in (("anthrone_area", 2), ("anthranol_area", 1)):
        if area_scale is None or prod not in df:
            continue
        pk = peaks.get(prod[:-5])
        nh = getattr(pk, "n_h", None) or default_nh
        raw_area = col(prod, nmr)
        if pk is not None and getattr(pk, "method", "fit") == "integral" and np.isfinite(fwhm0):
            centre = pd.to_numeric(df.get(f"{prod[:-5]}_shift_ppm"), errors="coerce").to_numpy(float)
            mid = 0.5 * sum(pk.window_ppm)
            cap = np.array([integral_capture(c if np.isfinite(c) else mid, fwhm0, pk.window_ppm, sfo1)
                            for c in np.where(nmr, centre, mid)])
            raw_area = raw_area / cap
            notes.append(f"{prod}: windowed integral divided by its Lorentzian capture fraction "
                         f"({np.nanmedian(cap[nmr]):.4f}, FWHM {fwhm0:.2f} Hz)")
        out[prod] = raw_area / (area_scale * nh)
    if area_scale is None:
        notes.append("no sharp dhaq_h1 line in the first spectrum: product areas not used")
    hdo_ref = float(out["hdo_shift_ppm"].iloc[first_nmr[0]]) if first_nmr else 4.79
    sig: dict[str, float] = {}
    for c in OBSERVABLES:
        if c not in out or not np.isfinite(out[c].to_numpy(float)).any():
            out = out.drop(columns=[c]) if c in out else out
            continue
        e = _median_err(df, c)
        if c.endswith("_area") and area_scale:
            e /= area_scale * 2
        sig[c] = max(DEFAULT_SIGMA[c], 2.0 * e)
    sig.update(dict(sigma or {}))
    out = out.iloc[order].reset_index(drop=True)
    straddle = int(np.isnan(out["t_s"]).sum())
    if straddle:
        notes.append(f"{straddle} spectra of fluid that left the cell within V_tot/Q of a current change "
                     "left out (no tank equivalent, see refer_to_tank)")
    out = out[out["t_s"] >= 0].reset_index(drop=True)
    return FitData(out, sig, (pt, pI), start, area_scale, hdo_ref, notes)


def _current_table(t: np.ndarray, I: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compress the log into piecewise-constant segments (start times, currents)."""
    keep = np.concatenate([[True], np.abs(np.diff(I)) > 1e-12])
    return t[keep], I[keep]


def fit_table(table: pd.DataFrame, cfg: Any, potentiostat: pd.DataFrame, *,
              free: Sequence[str] = DEFAULT_FREE, model: Any = None, start: datetime | None = None,
              truth: Mapping[str, float] | None = None, params: Mapping[str, float] | None = None,
              conf_interval: bool = True, sigma: Mapping[str, float] | None = None,
              rescale_sigma: bool = True, free_area_scale: bool = True) -> FitOutcome:
    """Fit the experiment's kinetic model to a store table.

    Parameters
    ----------
    table : DataFrame
        Store rows.
    cfg : ExperimentConfig
    potentiostat : DataFrame
        From :func:`flowcell.potentiostat.read_potentiostat`.
    free : sequence of str
        Free parameters (default Kc, k_dec, J_e; ``hdo_ref_ppm`` is always free too).
    model : kinetics Model, optional
        Default ``kinetics.library.<cfg.model.name>().compile()``.
    truth : dict, optional
        True values (simulations) for the report.
    params : dict, optional
        Fixed parameter values (default: model defaults + ``cfg.model.params``).
    sigma : dict, optional
        Per-column noise, column units (default: floors of :data:`DEFAULT_SIGMA` or
        twice the extractor's median error).
    free_area_scale : bool
        Fit ``area_scale`` (the concentration scale of the product areas, 1 = the
        first-spectrum calibration) as a nuisance parameter when product areas are
        fitted; their windowed integrals carry a ~1 % offset from the processing
        (measured on noise-free round trips), which would otherwise bias k_dec.
    rescale_sigma : bool
        Fit twice: a first fit without intervals, then each column's sigma is
        multiplied by the rms of its normalised residuals (when > 1), so intervals
        reflect the scatter actually seen (extraction noise, small model errors).

    Returns
    -------
    FitOutcome
    """
    from kinetics import fit as kfit
    from kinetics.observe import ObservationModel

    if model is None:
        from kinetics import library
        net = getattr(library, cfg.model.name)()
        model = net.compile(reduce_fast=cfg.model.reduce_fast)
    fd = prepare_fit_data(table, cfg, potentiostat, start=start, sigma=sigma)
    fixed: dict[str, float] = dict(getattr(model, "defaults", {}) or {})
    fixed.update({k: float(v) for k, v in (cfg.model.params or {}).items()})
    fixed.update(dict(params or {}))
    free = list(free)
    if "hdo_ref_ppm" not in free and "hdo_shift_ppm" in fd.data:
        free.append("hdo_ref_ppm")
    fixed["hdo_ref_ppm"] = fd.hdo_ref_ppm
    fixed["area_scale"] = 1.0
    products = [c for c in ("anthrone_area", "anthranol_area") if c in fd.sigma]
    if free_area_scale and products and "area_scale" not in free:
        free.append("area_scale")
        fd.notes.append("area_scale (product areas vs the first spectrum's quinone line) fitted as a nuisance "
                        "parameter: windowed integrals of small lines carry a ~1 % processing offset")
    for name in free:
        fixed.pop(name, None)
    known = set(getattr(model, "param_names", fixed)) | set(obs_names())
    fixed = {k: v for k, v in fixed.items() if k in known}
    start_vals = {n: (fd.hdo_ref_ppm if n == "hdo_ref_ppm" else 1.0 if n == "area_scale" else
                      (params or {}).get(n, (getattr(model, "defaults", {}) or {}).get(n, cfg.Kc if n == "Kc" else None)))
                  for n in free}
    start_vals = {k: v for k, v in start_vals.items() if v is not None}
    obs = ObservationModel(geometry=cfg.instruments.geometry, T_K=float(cfg.electrolyte.temperature_K))
    C = float(cfg.electrolyte.concentration_M)
    exp = kfit.Experiment("experiment", fd.data, fd.sigma, current_A=_current_table(*fd.current),
                          volume_L=float(cfg.electrolyte.volume_L), y0={"O": C}, fixed=fixed)
    bounds = _bounds(free, fd)
    if rescale_sigma:
        # pass 1 (no intervals): the residual scatter of each observable sets its sigma
        first = kfit.fit(model, [exp], bounds, obs=obs, start=start_vals or None, conf_interval=False)
        pred = first.predict()["experiment"]
        new_sigma = {}
        for c, sg in fd.sigma.items():
            r = (fd.data[c].to_numpy(float) - pred[c].to_numpy(float)) / sg
            r = r[np.isfinite(r)]
            f = float(np.sqrt(np.mean(r ** 2))) if r.size > 3 else 1.0
            new_sigma[c] = sg * max(1.0, f)
        fd.notes.append("sigma rescaled to the residual scatter of a first fit: " +
                        ", ".join(f"{c} x{new_sigma[c] / fd.sigma[c]:.2f}" for c in fd.sigma))
        fd.sigma = new_sigma
        start_vals = {k: float(v) for k, v in first.values.items()}
        exp = kfit.Experiment("experiment", fd.data, fd.sigma, current_A=_current_table(*fd.current),
                              volume_L=float(cfg.electrolyte.volume_L), y0={"O": C}, fixed=fixed)
    result = kfit.fit(model, [exp], bounds, obs=obs, start=start_vals or None, conf_interval=conf_interval)
    out = FitOutcome(result, fd, [f for f in free], truth=dict(truth) if truth else None)
    out.prediction = _predict(model, obs, fd, fixed, result, exp)
    return out


def obs_names() -> list[str]:
    """Names of the observation-model parameters (``kinetics.observe.ObservationModel``)."""
    from kinetics.observe import ObservationModel
    return ObservationModel().param_names


def _bounds(free: Sequence[str], fd: FitData) -> dict[str, tuple[float, float]]:
    b = {"Kc": (1e-4, 100.0), "k_dec": (1e-9, 1e-3), "J_e": (1e-11, 1e-5), "k_dec2": (1e-8, 1e-1),
         "eps_H": (0.0, 0.5), "KD": (1e-3, 1e3), "kc": (1e3, 1e11), "k1": (1e3, 1e11), "k2": (1e3, 1e11),
         "hdo_ref_ppm": (fd.hdo_ref_ppm - 0.05, fd.hdo_ref_ppm + 0.05), "epr_scale": (0.5, 2.0),
         "xi": (-1.0, 1.0), "area_scale": (0.8, 1.25)}
    out = {}
    for n in free:
        if n not in b:
            raise ValueError(f"no default bounds for free parameter {n!r}; known: {sorted(b)}")
        out[n] = b[n]
    return out


def _predict(model: Any, obs: Any, fd: FitData, fixed: Mapping[str, float], result: Any,
             exp: Any) -> pd.DataFrame | None:
    """Model curves at the fitted values on a dense grid (for the plots)."""
    try:
        p = dict(fixed)
        p.update({k: float(v) for k, v in result.values.items()})
        t = fd.data["t_s"].to_numpy(float)
        grid = np.linspace(max(0.0, t.min()), t.max(), 400)
        names = set(getattr(model, "param_names", p))
        sim = model.simulate(grid, params={k: v for k, v in p.items() if k in names}, y0=exp.y0, current_A=_current_table(*fd.current),
                             volume_L=exp.volume_L)
        pred = obs.predict(sim, p)
        pred["soc"] = np.asarray(sim.soc, float)
        return pred
    except Exception:  # plots are best effort
        return None


# ---------------------------------------------------------------------------- plots
def _plt():
    import matplotlib
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover
            pass
    import matplotlib.pyplot as plt
    return plt


def plot_soc(path: str | Path, *, truth: pd.DataFrame | None = None, live: pd.DataFrame | None = None,
             coulomb: pd.DataFrame | None = None) -> Path:
    """SOC against time: true (simulation), coulomb-counted, live estimate with ±2 sd.

    Parameters
    ----------
    truth : DataFrame with ``t_s``, ``soc`` (and optionally ``soc_coulomb``)
    live : DataFrame with ``t_s``, ``soc``, ``soc_sd``
    coulomb : DataFrame with ``t_s``, ``soc``
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    if truth is not None:
        ax.plot(truth["t_s"] / 3600, truth["soc"], "k-", lw=1.5, label="true (simulation)")
    if coulomb is not None:
        ax.plot(coulomb["t_s"] / 3600, coulomb["soc"], "C1--", lw=1, label="coulomb counting")
    elif truth is not None and "soc_coulomb" in truth:
        ax.plot(truth["t_s"] / 3600, truth["soc_coulomb"], "C1--", lw=1, label="coulomb counting")
    if live is not None and len(live):
        t = live["t_s"].to_numpy(float) / 3600
        s = live["soc"].to_numpy(float)
        ax.plot(t, s, "C0o", ms=3, label="live SOC (filter)")
        if "soc_sd" in live:
            sd = live["soc_sd"].to_numpy(float)
            ax.fill_between(t, s - 2 * sd, s + 2 * sd, color="C0", alpha=0.2, lw=0, label="live ±2 sd")
    ax.set_xlabel("time (h)")
    ax.set_ylabel("state of charge")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_observables(path: str | Path, fd: FitData, prediction: pd.DataFrame | None = None) -> Path:
    """Water shift and EPR [R] (and product) against time, data and fitted model."""
    plt = _plt()
    cols = [c for c in ("hdo_shift_ppm", "epr_spin_conc_M", "anthrone_area") if c in fd.data]
    labels = {"hdo_shift_ppm": "HDO shift (ppm)", "epr_spin_conc_M": "EPR [R] (mM)",
              "anthrone_area": "anthrone (mM, from area)"}
    scale = {"hdo_shift_ppm": 1.0, "epr_spin_conc_M": 1e3, "anthrone_area": 1e3}
    fig, axes = plt.subplots(len(cols), 1, figsize=(7, 2.4 * len(cols)), sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], cols):
        d = fd.data[["t_s", c]].dropna()
        ax.plot(d["t_s"] / 3600, d[c] * scale[c], "o", ms=3, color="C0", label="data")
        if prediction is not None and c in prediction:
            ax.plot(prediction["t_s"] / 3600, prediction[c] * scale[c], "-", color="C3", lw=1.5, label="fit")
        ax.set_ylabel(labels[c])
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("time (h; spectra referred to the well-mixed tank)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(v):
        return "–"
    return f"{v:.6g}"


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, (datetime, pd.Timestamp)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    return o


def write_report(out_dir: str | Path, outcome: FitOutcome | None, *, title: str = "flowcell experiment",
                 live: pd.DataFrame | None = None, truth: pd.DataFrame | None = None,
                 summary: Mapping[str, Any] | None = None, notes: Sequence[str] = ()) -> Path:
    """Write ``report.md``, ``fit.json`` and the PNG plots into ``out_dir``.

    Parameters
    ----------
    outcome : FitOutcome or None
        The fit (None: report the live part only).
    live : DataFrame, optional
        Live SOC states (``t_s``, ``soc``, ``soc_sd``, ``soc_coulomb``, ``drift`` ...).
    truth : DataFrame, optional
        Dense truth of a simulation (``t_s``, ``soc``, ``soc_coulomb``).
    summary : dict, optional
        Extra key figures printed at the top and stored in ``fit.json``.

    Returns
    -------
    Path
        The ``report.md`` path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", f"Written {datetime.now().astimezone().isoformat(timespec='seconds')} by flowcell.", ""]
    if summary:
        lines += ["## Summary", ""]
        lines += [f"- **{k}**: {_fmt(v) if isinstance(v, (float, np.floating)) else v}" for k, v in summary.items()]
        lines.append("")
    coulomb = None
    if live is not None and "soc_coulomb" in live:
        coulomb = pd.DataFrame({"t_s": live["t_s"], "soc": live["soc_coulomb"]})
    if truth is not None or live is not None:
        plot_soc(out / "soc.png", truth=truth, live=live, coulomb=coulomb)
        lines += ["## State of charge", "", "![SOC against time](soc.png)", ""]
    payload: dict[str, Any] = {"summary": dict(summary or {})}
    if outcome is not None:
        tab = outcome.table()
        plot_observables(out / "observables.png", outcome.fit_data, outcome.prediction)
        try:
            outcome.result.plot(out / "fit.png")
            fit_png = True
        except Exception:
            fit_png = False
        lines += ["## Kinetic fit", "",
                  "Parameters with 95 % profile-likelihood intervals (flags name parameters the data cannot pin "
                  "down: unbounded profiles or correlations above 0.95).", "",
                  "| parameter | value | ± (stderr) | 95 % interval | truth | inside | flags |",
                  "|---|---|---|---|---|---|---|"]
        for _, r in tab.iterrows():
            inside = "" if r["truth_inside"] is None else ("yes" if r["truth_inside"] else "**no**")
            lines.append(f"| {r['parameter']} | {_fmt(r['value'])} | {_fmt(r['stderr'])} | "
                         f"[{_fmt(r['ci95_lo'])}, {_fmt(r['ci95_hi'])}] | {_fmt(r['truth'])} | {inside} | "
                         f"{r['flags']} |")
        lines += ["", "Sigma per observable: " + ", ".join(f"{k} = {v:.3g}" for k, v in outcome.fit_data.sigma.items()),
                  "", "![observables and fit](observables.png)", ""]
        if fit_png:
            lines += ["![fit residuals](fit.png)", ""]
        try:
            lines += ["```", outcome.result.report(), "```", ""]
        except Exception:
            pass
        try:
            payload["fit"] = outcome.result.to_dict()
        except Exception as exc:
            payload["fit"] = {"error": f"to_dict failed: {exc}"}
        payload["parameters"] = tab.to_dict(orient="records")
        payload["sigma"] = outcome.fit_data.sigma
        payload["fit_notes"] = outcome.fit_data.notes
        notes = list(notes) + outcome.fit_data.notes
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    (out / "fit.json").write_text(json.dumps(_jsonable(payload), indent=2), encoding="utf-8")
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
