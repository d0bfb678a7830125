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
mid-time minus the transit delay of its instrument (science.md §1.7: the fluid in the
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
dhaq_h1_area(t0) / C_tot`` (science.md §1.6, "total DHAQ at t = 0 (closed
system)"), per proton (``n_h`` of the observables config); windowed integrals are
divided by their Lorentzian capture fraction (:func:`integral_capture`), and the
remaining ~1 % processing offset of small lines is absorbed by fitting
``area_scale`` as a nuisance parameter (per experiment).  ``hdo_ref_ppm`` (the
zero-radical water shift) is always fitted too, per experiment.

Sigma rules (one implementation, :func:`fit_group`): each observable's sigma is the
larger of a floor (:data:`DEFAULT_SIGMA`) and twice the extractor's median error;
with ``rescale_sigma`` a first fit without intervals is run and each experiment's
column sigma is multiplied by the rms of its normalised residuals (when > 1).

Temperature: ``kinetics.fit.fit`` takes one ``ObservationModel`` (the first
member's ``T_K`` and geometry).  Each member gets its own BMS factor
``xi = bms_factor(geometry) T_ref / T`` as a fixed parameter: the Curie
susceptibility is proportional to 1/T (science.md §1.3), so the water shift
``xi chi(T_ref) [R]`` is then exactly that at its own temperature (the
slow-exchange observation model has no other temperature dependence).  For a
single experiment this is the observation model's own default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_FREE",
    "DEFAULT_SIGMA",
    "FWHM_CAP_FRACTION",
    "FWHM_CAP_HZ",
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
#: Floor of each observable's sigma (units of the column); the effective sigma is
#: the larger of this and twice the extractor's median reported error.
DEFAULT_SIGMA = {"hdo_shift_ppm": 5e-5, "epr_spin_conc_M": 1.5e-4, "anthrone_area": 2e-5, "anthranol_area": 2e-5,
                 "dhaq_h1_fwhm_Hz": 0.3, "dhaq_h3_fwhm_Hz": 0.3, "dhaq_h4_fwhm_Hz": 0.3}
#: Line widths of the oxidised-form quinone lines (slow exchange, science.md §1.4:
#: ``FWHM = w0 + (k1 [R] + kc [H]) / pi``), Hz; they carry the electron-exchange rates.
LINE_WIDTHS = ("dhaq_h1_fwhm_Hz", "dhaq_h3_fwhm_Hz", "dhaq_h4_fwhm_Hz")
#: Observable columns a fit uses when the table has them.
OBSERVABLES = ("hdo_shift_ppm", "epr_spin_conc_M", "anthrone_area", "anthranol_area") + LINE_WIDTHS
#: Parameters that act on the line widths only; the widths are fitted only when one is free.
WIDTH_PARAMS = ("k1", "kc", "k2", "w0_Hz")
#: A line width is used only up to this fraction of its ingest window (in Hz): wider
#: Lorentzians lose their wings to the window and its linear baseline (measured on the
#: demo's simulated Bruker files: width bias < 0.2 Hz up to 20 Hz in the 100 Hz dhaq_h1
#: window, 1-4 % at 45 Hz), and up to :data:`FWHM_CAP_HZ` when the window is unknown.
FWHM_CAP_FRACTION = 0.2
FWHM_CAP_HZ = 20.0
#: Nuisance parameters, always per experiment: the zero-radical water shift (ppm) and
#: the product-area scale (1 = the first-spectrum calibration).
NUISANCE = ("hdo_ref_ppm", "area_scale")
#: Search bounds of free parameters, natural units (1/s, 1/(M s), M/s, 1/M, ppm, -);
#: ``hdo_ref_ppm`` is ±0.05 ppm around the first spectrum's value (:func:`default_bounds`).
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "Kc": (1e-4, 100.0), "k_dec": (1e-9, 1e-3), "J_e": (1e-11, 1e-5), "k_dec2": (1e-8, 1e-1),
    "eps_H": (0.0, 0.5), "KD": (1e-3, 1e3), "kc": (1e1, 1e11), "k1": (1e1, 1e11), "k2": (1e1, 1e11),
    "epr_scale": (0.5, 2.0), "xi": (-1.0, 1.0), "area_scale": (0.8, 1.25), "w0_Hz": (0.05, 20.0)}


@dataclass
class FitData:
    """One experiment's data, ready for ``kinetics.fit``.

    Attributes
    ----------
    data : DataFrame
        ``t_s`` (s since the potentiostat start: when the observed fluid left the
        cell) and the observable columns (NaN where an instrument gave nothing).
    sigma : dict
        Column -> standard deviation (column units).
    current : tuple of ndarray
        ``(t_s, I_A)`` from the potentiostat log (s, A; > 0 charging).
    start : datetime or None
        Potentiostat start (UTC).
    area_scale : float or None
        Area per mol/L of protons from the first spectrum.
    hdo_ref_ppm : float
        Starting value of the zero-radical water shift (first spectrum), ppm.
    notes : list of str
        What was done to the data (shown in the report).
    volume_L, c_tot_M, temperature_K, geometry, config_params, flow_L_s
        From the experiment config: circulating volume (L), total quinone (mol/L),
        temperature (K), NMR sample geometry, ``[model.params]`` and the flow rate
        through the cell (L/s; None: observe the tank itself).
    w0_Hz : float or None
        Width of the oxidised-form quinone lines without exchange, from the first
        spectrum (SOC 0; includes the processing line broadening), Hz.  None when the
        table has no such width.
    """

    data: pd.DataFrame
    sigma: dict[str, float]
    current: tuple[np.ndarray, np.ndarray]
    start: datetime | None
    area_scale: float | None
    hdo_ref_ppm: float
    notes: list[str] = field(default_factory=list)
    volume_L: float = 0.01
    c_tot_M: float = 0.1
    temperature_K: float = 298.15
    geometry: str = "parallel"
    config_params: dict[str, float] = field(default_factory=dict)
    flow_L_s: float | None = None
    w0_Hz: float | None = None


def _interval_row(result: Any, disp: str, truth: float) -> dict[str, Any]:
    ci = (result.ci95 or {}).get(disp)
    lo, hi = (ci if ci is not None else (math.nan, math.nan))
    lo = math.nan if lo is None else float(lo)
    hi = math.nan if hi is None else float(hi)
    se = (result.stderr or {}).get(disp)
    inside = bool(np.isfinite(truth) and np.isfinite(lo) and np.isfinite(hi) and lo <= truth <= hi)
    return {"value": float(result.values.get(disp, math.nan)), "stderr": math.nan if se is None else float(se),
            "ci95_lo": lo, "ci95_hi": hi, "truth": truth, "truth_inside": inside if np.isfinite(truth) else None,
            "flags": "; ".join((result.flags or {}).get(disp, []))}


@dataclass
class FitOutcome:
    """A finished single-experiment fit plus what it was fitted to."""

    result: Any
    fit_data: FitData
    free: list[str]
    prediction: pd.DataFrame | None = None
    truth: dict[str, float] | None = None

    def table(self) -> pd.DataFrame:
        """Parameter table: parameter, value, stderr, ci95_lo, ci95_hi, truth, truth_inside, flags."""
        rows = [dict(parameter=n, **_interval_row(self.result, n, float((self.truth or {}).get(n, math.nan))))
                for n in self.free]
        return pd.DataFrame(rows)

    def all_inside(self) -> bool:
        """True when every known true value lies inside its 95 % interval."""
        t = self.table()
        known = t[np.isfinite(t["truth"].astype(float))]
        return bool(len(known)) and bool(known["truth_inside"].all())


@dataclass
class GroupOutcome:
    """A finished fit of one or several experiments with shared parameters.

    Attributes
    ----------
    result : kinetics.fit.FitResult
        Per-experiment parameters are named ``<name>__<experiment key>`` when there is
        more than one experiment.
    fit_data : dict
        Experiment id -> :class:`FitData` (sigmas as finally used).
    experiments : list of kinetics.fit.Experiment
        As fitted (same order as ``fit_data``).
    free, shared : list of str
        Free parameters (with the nuisance ones) and those shared by all experiments.
    truth : dict
        Experiment id -> true values (simulations), may be empty.
    """

    result: Any
    fit_data: dict[str, FitData]
    experiments: list[Any]
    free: list[str]
    shared: list[str]
    truth: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self, *, nuisance: bool = False) -> pd.DataFrame:
        """One row per fitted parameter: parameter, experiment ('' when shared), value,
        stderr, ci95_lo, ci95_hi, truth, truth_inside, flags.

        A shared parameter's truth is used when every member has the same true value.
        ``nuisance=False`` leaves out ``hdo_ref_ppm`` and ``area_scale``.
        """
        key_of = {e.key: ident for ident, e in zip(self.fit_data, self.experiments)}
        rows = []
        for disp in self.result.values:
            base, _, key = disp.partition("__")
            if base in NUISANCE and not nuisance:
                continue
            ident = key_of.get(key, key) if key else ("" if len(self.fit_data) > 1 else next(iter(self.fit_data)))
            if key or len(self.fit_data) == 1:
                tv = float(self.truth.get(ident, {}).get(base, math.nan))
            else:
                vals = {float(t.get(base, math.nan)) for t in self.truth.values()} if self.truth else set()
                tv = vals.pop() if len(vals) == 1 else math.nan
            rows.append(dict(parameter=base, experiment=ident if key else "", **_interval_row(self.result, disp, tv)))
        return pd.DataFrame(rows)

    def values_for(self, ident: str) -> dict[str, float]:
        """All parameter values of one member (its fixed ones plus the fitted shared and own ones)."""
        e = dict(zip(self.fit_data, self.experiments))[ident]
        key = e.key
        p = dict(e.fixed)
        for disp, v in self.result.values.items():
            base, _, k = disp.partition("__")
            if not k or k == key:
                p[base] = float(v)
        return p


def observables_config(cfg: Any) -> Any:
    """The ingest observables config of an experiment, with its EPR calibration.

    ``[observables] config`` of the experiment when given, else
    ``ObservablesConfig.default()``; the experiment's ``[epr_calibration]`` becomes
    ``obs.epr.calibration`` so that rows carry ``epr_spin_conc_M``.
    """
    from dataclasses import replace

    from ingest.processing.observables import ObservablesConfig
    ref = getattr(getattr(cfg, "observables", None), "config", None)
    obs = ObservablesConfig.from_toml(ref) if ref else ObservablesConfig.default()
    cal = getattr(cfg, "epr_calibration", None)
    if cal is not None:
        from ingest.processing.epr import EPRCalibration
        ecal = EPRCalibration(concentration_M=cal.concentration_M, di_norm=cal.di_norm,
                              temperature_K=cal.temperature_K, g=cal.g, spin=cal.spin)
        obs = replace(obs, epr=replace(obs.epr, calibration=ecal))
    return obs


def integral_capture(center_ppm: float, fwhm_hz: float, window_ppm: Sequence[float], sfo1_hz: float) -> float:
    """Fraction of a Lorentzian's area that ``ingest.processing.peaks.integrate_window`` reports.

    A windowed integral loses the Lorentzian wings outside the window
    ((2/pi) arctan(n) within +-n HWHM, science.md §1.5 caveat 3) and part of the
    line under its edge baseline, more so when the line sits off the window's centre.
    This runs the same integral on a noise-free Lorentzian of the given width
    (grid 0.05 Hz).  ``center_ppm`` is the centre the integral itself reported (the
    intensity-weighted mean, pulled towards the window centre); the true line
    centre that reproduces it is found first (brentq).
    """
    from scipy.optimize import brentq

    from ingest.processing.peaks import integrate_window
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

    Not used by the fits any more (they observe the outlet directly,
    :func:`outlet_composition`); kept as the approximation it is, for diagnostics.

    The outlet leads the tank by ``dSOC_pass = I/(2 F C Q)`` (science.md §1.1); at
    constant current the tank needs ``V_tot/Q`` to catch up, since
    ``dSOC/dt = I/(2 F C V_tot)``.  So a spectrum of fluid that left the cell at ``t``
    while current flowed is compared with the tank model at ``t + V_tot/Q``, capped
    at the next change of the logged current (where the tank stops following the
    same slope).  At rest the shift is zero.  The kinetic model is a single
    well-mixed volume, so this is the consistent way to compare.  Fluid that left
    the cell less than ``V_tot/Q`` before a current change has no tank equivalent
    (the outlet was ahead of anything the tank reaches): its time is NaN, and
    the earlier time base left such spectra out.

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
    if col.endswith("_fwhm_Hz"):
        ecol = col[:-len("_fwhm_Hz")] + "_fwhm_err_Hz"
    if ecol and ecol in df:
        v = pd.to_numeric(df[ecol], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            return float(np.median(v))
    return 0.0


def _line_widths(df: pd.DataFrame, out: pd.DataFrame, nmr: np.ndarray, peaks: Mapping[str, Any],
                 sfo1_hz: float, i0: int | None, notes: list[str]) -> float | None:
    """Put the usable oxidised-form line widths (Hz) into ``out``; return w0 (Hz) or None.

    A width is used when it is finite with a finite, positive fit error, not above
    the cap (:data:`FWHM_CAP_FRACTION` of its window in Hz, else :data:`FWHM_CAP_HZ`)
    and the extractor did not flag that peak ('peak at window edge', 'wider than
    half the window', 'no peak above noise', ... in ``nmr_warnings``).  Wider lines
    (higher SOC, science.md §1.4) are left out (NaN): their fitted widths are biased
    by the window.  ``w0``
    is the median width of the lines in the first spectrum (SOC 0: no radical, no
    exchange; it includes the processing line broadening ``lb``).
    """
    w0s = []
    warn = [str(x) for x in df["nmr_warnings"]] if "nmr_warnings" in df else [""] * len(df)
    for c in LINE_WIDTHS:
        if c not in df:
            continue
        stem = c[:-len("_fwhm_Hz")]
        w = pd.to_numeric(df[c], errors="coerce").to_numpy(float)
        e = (pd.to_numeric(df[f"{stem}_fwhm_err_Hz"], errors="coerce").to_numpy(float)
             if f"{stem}_fwhm_err_Hz" in df else np.ones(len(df)))
        pk = peaks.get(stem)
        win = getattr(pk, "window_ppm", None)
        cap = FWHM_CAP_FRACTION * abs(float(win[1]) - float(win[0])) * sfo1_hz * 1e-6 if win else FWHM_CAP_HZ
        flagged = np.array([f"{stem}:" in x for x in warn])
        ok = nmr & np.isfinite(w) & (w > 0) & (w <= cap) & np.isfinite(e) & (e > 0) & ~flagged
        if not ok.any():
            continue
        out[c] = np.where(ok, w, np.nan)
        notes.append(f"{c}: {int(ok.sum())} of {int(nmr.sum())} spectra used (width <= {cap:.1f} Hz, "
                     f"no extractor warning); wider lines (higher SOC, science.md §1.4) left out: window-truncation bias")
        if i0 is not None and ok[i0]:
            w0s.append(float(w[i0]))
    if not w0s:
        return None
    w0 = float(np.median(w0s))
    notes.append(f"w0_Hz = {w0:.3f} Hz: median O-line width in the first spectrum (SOC 0, includes lb)")
    return w0


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
            scol = f"{prod[:-5]}_shift_ppm"
            centre = (pd.to_numeric(df[scol], errors="coerce").to_numpy(float) if scol in df
                      else np.full(len(df), np.nan))
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
    w0_Hz = _line_widths(df, out, nmr, peaks, sfo1, first_nmr[0] if first_nmr else None, notes)
    sig: dict[str, float] = {}
    for c in OBSERVABLES:
        if c not in out or not np.isfinite(out[c].to_numpy(float)).any():
            out = out.drop(columns=[c]) if c in out else out
            continue
        e = _median_err(df[np.isfinite(out[c].to_numpy(float))], c) if c in LINE_WIDTHS else _median_err(df, c)
        if c.endswith("_area") and area_scale:
            e /= area_scale * 2
        sig[c] = max(DEFAULT_SIGMA[c], 2.0 * e)
    sig.update(dict(sigma or {}))
    out = out.iloc[order].reset_index(drop=True)
    out = out[out["t_s"] >= 0].reset_index(drop=True)
    return FitData(out, sig, (pt, pI), start, area_scale, hdo_ref, notes,
                   volume_L=float(cfg.electrolyte.volume_L), c_tot_M=C_tot,
                   temperature_K=float(cfg.electrolyte.temperature_K),
                   geometry=str(getattr(cfg.instruments, "geometry", "parallel")),
                   flow_L_s=float(cfg.flow.rate_mL_min) / 60e3, w0_Hz=w0_Hz,
                   config_params={k: float(v) for k, v in (getattr(cfg.model, "params", None) or {}).items()})


def outlet_composition(conc: pd.DataFrame, current_A: np.ndarray, params: Mapping[str, float],
                       flow_L_s: float) -> pd.DataFrame:
    """Composition of the fluid leaving the cell, from the well-mixed tank's, mol/L.

    One pass through the cell adds ``eff I / (F Q)`` mol/L of electrons (science.md
    §1.1: the outlet leads the tank by ``dSOC = I/(2 F C Q)``; ``eff = 1 - eps_H -
    eps_dec`` on charge, 1 on discharge, as in :mod:`flowcell.simulate.simulator`), which
    redistribute at the fast comproportionation (and dimer) equilibrium (§1.2, §1.2b,
    :func:`kinetics.speciation.speciate`) on the active total ``C_act = O + R + H + 2D``.
    Products (anthrone, anthranol, ...) form slowly in the bulk and leave at the tank's
    concentration.  Transit to the detectors is the time shift of
    :func:`prepare_fit_data` (§1.7).

    Parameters
    ----------
    conc : DataFrame
        Tank concentrations (columns O, R, H, optional D, products), mol/L.
    current_A : ndarray
        Cell current at the same times, A (> 0 charging).
    params : dict
        ``Kc``, optional ``KD``, ``eps_H``, ``eps_dec``.
    flow_L_s : float
        Flow rate through the cell, L/s.
    """
    from kinetics.constants import F
    from kinetics.speciation import speciate

    out = conc.copy()
    O, R, H = (out[c].to_numpy(float) for c in ("O", "R", "H"))
    D = out["D"].to_numpy(float) if "D" in out else np.zeros_like(O)
    C_act = O + R + H + 2 * D
    n_e = R + 2 * H + 2 * D
    I = np.asarray(current_A, float)
    eff = np.where(I > 0, 1.0 - float(params.get("eps_H", 0.0)) - float(params.get("eps_dec", 0.0)), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(C_act > 0, (n_e + eff * I / (F * flow_L_s)) / (2 * C_act), 0.0)
    O2, R2, H2, D2 = speciate(np.clip(x, 0.0, 1.0), C_act, float(params.get("Kc", 1.0)), float(params.get("KD", 0.0)))
    out["O"], out["R"], out["H"] = O2, R2, H2
    if "D" in out:
        out["D"] = D2
    return out


def _outlet_observation_cls() -> type:
    from kinetics.observe import ObservationModel

    @dataclass
    class OutletObservation(ObservationModel):
        """``kinetics.observe.ObservationModel`` of the fluid leaving the cell.

        The kinetic model describes the well-mixed tank; the in-line NMR and EPR see
        the cell outlet (:func:`outlet_composition`), transit-delayed.  The flow rate
        (L/s) is the per-experiment parameter ``outlet_flow_L_s`` (fixed, from the
        config), else ``flow_L_s``; None observes the tank itself.
        """

        flow_L_s: float | None = None

        def predict(self, sim: Any, params: Mapping[str, float] | None = None, *,
                    temperature_K: Any = None) -> pd.DataFrame:
            p = dict(params or {})
            Q = p.pop("outlet_flow_L_s", self.flow_L_s)
            I = getattr(sim, "current_A", None)
            if Q is None or I is None or not hasattr(sim, "conc"):
                return super().predict(sim, p, temperature_K=temperature_K)
            full = dict(self.defaults)
            full.update(p)
            return super().predict(outlet_composition(sim.conc, I, full, float(Q)), p,
                                   temperature_K=temperature_K)

    OutletObservation.__module__ = __name__
    OutletObservation.__qualname__ = "OutletObservation"
    return OutletObservation


def outlet_observation(*, geometry: str = "parallel", T_K: float = 298.15, flow_L_s: float | None = None) -> Any:
    """The observation model of the fits: :class:`kinetics.observe.ObservationModel` of the cell outlet.

    Parameters
    ----------
    geometry : str
        NMR sample geometry (BMS factor, science.md §1.3).
    T_K : float
        Temperature of the Curie susceptibility, K.
    flow_L_s : float or None
        Default flow rate through the cell, L/s (None: observe the tank).
    """
    return _OUTLET(geometry=geometry, T_K=T_K, flow_L_s=flow_L_s)


def current_table(t: np.ndarray, I: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compress a potentiostat log into piecewise-constant segments.

    Parameters
    ----------
    t, I : ndarray
        Log times (s) and currents (A).

    Returns
    -------
    (t_start, I) : tuple of ndarray
        Start time of each segment (s) and its current (A), as ``Model.simulate`` takes
        ``current_A``; the log's value at every logged time is reproduced exactly.
    """
    t = np.asarray(t, float)
    I = np.asarray(I, float)
    if t.size == 0:
        return t, I
    keep = np.concatenate([[True], np.abs(np.diff(I)) > 1e-12])
    return t[keep], I[keep]


def obs_names() -> list[str]:
    """Names of the observation-model parameters (``kinetics.observe.ObservationModel``)."""
    from kinetics.observe import ObservationModel
    return ObservationModel().param_names


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
    from kinetics.observe import bms_factor

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
    from kinetics import fit as kfit
    return kfit.Experiment(ident, fd.data, dict(fd.sigma), current_A=current_table(*fd.current),
                           volume_L=fd.volume_L, y0={"O": fd.c_tot_M},
                           fixed=fixed_params(model, fd, free=free, params=params, T_ref_K=T_ref_K))


def _default_model(cfg: Any) -> Any:
    from kinetics import library
    return getattr(library, cfg.model.name)().compile(reduce_fast=bool(getattr(cfg.model, "reduce_fast", True)))


def _start_exchange_rates(fds: Mapping[str, FitData], free: Sequence[str], sv: dict[str, float], per: set[str],
                          exps: Sequence[Any], explicit: set[str]) -> None:
    """Starting values of free exchange rates (k1, kc, k2) from the line widths.

    The library placeholders (1e8 1/(M s)) give MHz-wide lines, far from any width
    that was actually measured, and a local optimiser started there stalls.  A rough
    scale: ``k ~ pi * median(FWHM - w0) / (0.05 C_tot)`` (science.md §1.4 with
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


def fit_group(fit_data: Mapping[str, FitData], *, model: Any, free: Sequence[str] = DEFAULT_FREE,
              shared: Sequence[str] | None = None, params: Mapping[str, float] | None = None,
              start: Mapping[str, Mapping[str, float]] | None = None, conf_interval: bool = True,
              rescale_sigma: bool = True, free_area_scale: bool = True,
              truth: Mapping[str, Mapping[str, float]] | None = None) -> GroupOutcome:
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
        Fit twice: a first fit without intervals, then each experiment's column sigma
        is multiplied by the rms of its normalised residuals (when > 1), so intervals
        reflect the scatter actually seen (extraction noise, small model errors).
    free_area_scale : bool
        Fit ``area_scale`` (product areas vs the first spectrum's quinone line) as a
        nuisance parameter when product areas are fitted: their windowed integrals
        carry a ~1 % processing offset that would otherwise bias k_dec.
    truth : dict, optional
        Experiment id -> true values (simulations), for :meth:`GroupOutcome.table`.

    Returns
    -------
    GroupOutcome
    """
    from kinetics import fit as kfit

    if not fit_data:
        raise ValueError("fit_group: no experiments given")
    fds = dict(fit_data)
    free = list(dict.fromkeys(free))
    if not any(n in free for n in WIDTH_PARAMS):  # widths only inform the exchange rates
        for fd in fds.values():
            drop = [c for c in LINE_WIDTHS if c in fd.sigma]
            if drop:
                fd.sigma = {c: v for c, v in fd.sigma.items() if c not in drop}
                fd.data = fd.data.drop(columns=[c for c in drop if c in fd.data])
                fd.notes.append("line widths not fitted (no exchange rate k1/kc/k2/w0_Hz free)")
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
    # bounds: the union over members (hdo_ref_ppm differs per member)
    bounds: dict[str, tuple[float, float]] = {}
    for fd in fds.values():
        for n, (lo, hi) in default_bounds(all_free, fd).items():
            o = bounds.get(n, (lo, hi))
            bounds[n] = (min(lo, o[0]), max(hi, o[1]))
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
    _start_exchange_rates(fds, all_free, sv, per, exps, explicit=set(params or {}) | {
        n for own in (start or {}).values() for n in (own or {})})
    if rescale_sigma:
        pass1 = kfit.fit(model, exps, bounds, obs=obs, per_experiment=per, start=sv or None, conf_interval=False)
        pred = pass1.predict()
        for (ident, fd), e in zip(fds.items(), exps):
            new = {}
            for c, sg in fd.sigma.items():
                r = (fd.data[c].to_numpy(float) - pred[e.name][c].to_numpy(float)) / sg
                r = r[np.isfinite(r)]
                f = float(np.sqrt(np.mean(r ** 2))) if r.size > 3 else 1.0
                new[c] = sg * max(1.0, f)
            fd.notes.append("sigma rescaled to the residual scatter of a first fit: " +
                            ", ".join(f"{c} x{new[c] / fd.sigma[c]:.2f}" for c in fd.sigma))
            fd.sigma = new
        sv = {k: float(v) for k, v in pass1.values.items()}
        exps = build()
    result = kfit.fit(model, exps, bounds, obs=obs, per_experiment=per, start=sv or None,
                      conf_interval=conf_interval)
    return GroupOutcome(result, fds, exps, all_free, [n for n in all_free if n not in per],
                        {k: dict(v) for k, v in (truth or {}).items()})


def fit_tables(members: Sequence[tuple[str, pd.DataFrame, Any, pd.DataFrame]], *,
               free: Sequence[str] = DEFAULT_FREE, shared: Sequence[str] | None = None, model: Any = None,
               params: Mapping[str, float] | None = None, sigma: Mapping[str, float] | None = None,
               start: Mapping[str, Mapping[str, float]] | None = None, conf_interval: bool = True,
               rescale_sigma: bool = True, free_area_scale: bool = True,
               truth: Mapping[str, Mapping[str, float]] | None = None) -> GroupOutcome:
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
                     truth=truth)


def fit_table(table: pd.DataFrame, cfg: Any, potentiostat: pd.DataFrame, *,
              free: Sequence[str] = DEFAULT_FREE, model: Any = None, start: datetime | None = None,
              truth: Mapping[str, float] | None = None, params: Mapping[str, float] | None = None,
              conf_interval: bool = True, sigma: Mapping[str, float] | None = None,
              rescale_sigma: bool = True, free_area_scale: bool = True) -> FitOutcome:
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

    Returns
    -------
    FitOutcome
    """
    model = model if model is not None else _default_model(cfg)
    fd = prepare_fit_data(table, cfg, potentiostat, start=start, sigma=sigma)
    g = fit_group({"experiment": fd}, model=model, free=free, params=params, conf_interval=conf_interval,
                  rescale_sigma=rescale_sigma, free_area_scale=free_area_scale)
    out = FitOutcome(g.result, fd, list(g.free), truth=dict(truth) if truth else None)
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
        if "t_s" not in pred:
            pred.insert(0, "t_s", grid)
        return pred
    except Exception:  # plots are best effort
        return None


_OUTLET = _outlet_observation_cls()
#: The outlet observation model class (module level, so that instances pickle).
OutletObservation = _OUTLET
