"""From a store table and a potentiostat log to the fit's data (:class:`FitData`).

Time base, sigma floors, product-area calibration and line-width selection; see the
module docstring of :mod:`flowcell.fit.pipeline` (which re-exports every name here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from flowcell.fit.observation import integral_capture
from flowcell.params import resolve_params
from flowcell.transit import reservoir_delays
from ingest.processing.assignment import summarize_warnings
from ingest.processing.epr import EPRCalibration
from ingest.processing.observables import ObservablesConfig
from ingest.processing.widths import max_fwhm_hz

__all__ = [
    "DEFAULT_SIGMA",
    "LINE_WIDTHS",
    "MAX_FWHM_HZ_UNKNOWN_WINDOW",
    "OBSERVABLES",
    "REDUCED_LINE_WIDTHS",
    "WIDTH_PARAMS",
    "FitData",
    "observables_config",
    "prepare_fit_data",
]

#: Floor of each observable's sigma (units of the column); the effective sigma is
#: the larger of this and twice the extractor's median reported error.
DEFAULT_SIGMA = {"hdo_shift_ppm": 5e-5, "epr_spin_conc_M": 1.5e-4, "anthrone_area": 2e-5, "anthranol_area": 2e-5,
                 "dhaq_h1_fwhm_Hz": 0.3, "dhaq_h3_fwhm_Hz": 0.3, "dhaq_h4_fwhm_Hz": 0.3}
#: Line widths of the oxidised-form quinone lines (slow exchange, docs/physics.md §1.4:
#: ``FWHM = w0 + (k1 [R] + kc [H]) / pi``), Hz; they carry the electron-exchange rates.
LINE_WIDTHS = ("dhaq_h1_fwhm_Hz", "dhaq_h3_fwhm_Hz", "dhaq_h4_fwhm_Hz")
#: Line widths of the reduced-form (DHAQ4-) lines, ``FWHM = w0 + (k2 [R] + kc [O]) / pi`` in slow
#: exchange: they carry k2 (docs/physics.md §1.4, §1.8), used when the ingest config has their windows.
REDUCED_LINE_WIDTHS = ("dhaq4_h1_fwhm_Hz", "dhaq4_h3_fwhm_Hz", "dhaq4_h4_fwhm_Hz")
DEFAULT_SIGMA.update({c: 0.3 for c in REDUCED_LINE_WIDTHS})
#: Observable columns a fit uses when the table has them.
OBSERVABLES = ("hdo_shift_ppm", "epr_spin_conc_M", "anthrone_area", "anthranol_area") + LINE_WIDTHS + REDUCED_LINE_WIDTHS
#: Parameters that act on the line widths only; the widths are fitted only when one is free.
WIDTH_PARAMS = ("k1", "kc", "k2", "w0_Hz")
#: A line width is used up to the widest line the extractor's extended lineshape fit measures
#: (:func:`ingest.processing.widths.max_fwhm_hz`: the extended range holds 2 FWHM on each side of
#: the line; 120 Hz for the default 0.2 ppm windows at 400 MHz, 110 Hz for the 0.1 ppm ones).
#: Lines broader than 15 % of their window are measured by Lorentzians fitted past the window
#: with their neighbours (:func:`ingest.processing.widths.refine_widths`); measured on simulated
#: spectra with every DHAQ O and H line present (tests/test_widths.py,
#: benchmarks/bench_widths.py): width bias within ±0.04 Hz from 2.5 to 100 Hz, where the
#: in-window fit read -0.36 Hz at 30 Hz, -6.2 Hz at 80 Hz and -11.8 Hz at 100 Hz (the old rule
#: dropped every width above 20 % of the window, 16 Hz).  Broader lines are reported NaN by the extractor
#: ('width not measured') and so are lines too low to be seen above the noise ('no peak above
#: noise'); :data:`MAX_FWHM_HZ_UNKNOWN_WINDOW` applies when the window is unknown.
MAX_FWHM_HZ_UNKNOWN_WINDOW = 120.0


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
    sigma_source : dict
        Column -> ``"extractor"`` (twice the extractor's median error), ``"floor"`` (no
        usable extractor error: :data:`DEFAULT_SIGMA`) or ``"given"`` (by the caller).
    dropped : dict
        ``"<kind>: <reason>"`` -> rows of the table the fit does not use (also in ``notes``).
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
    dropped: dict[str, int] = field(default_factory=dict)
    sigma_source: dict[str, str] = field(default_factory=dict)


def observables_config(cfg: Any) -> Any:
    """The ingest observables config of an experiment, with its EPR calibration.

    ``[observables] config`` of the experiment when given, else
    ``ObservablesConfig.default()``; the experiment's ``[epr_calibration]`` becomes
    ``obs.epr.calibration`` so that rows carry ``epr_spin_conc_M``.
    """
    ref = getattr(getattr(cfg, "observables", None), "config", None)
    obs = ObservablesConfig.from_toml(ref) if ref else ObservablesConfig.default()
    cal = getattr(cfg, "epr_calibration", None)
    if cal is not None:
        ecal = EPRCalibration(concentration_M=cal.concentration_M, di_norm=cal.di_norm,
                              temperature_K=cal.temperature_K, g=cal.g, spin=cal.spin,
                              q_factor=getattr(cal, "q_factor", None), mw_freq_hz=getattr(cal, "mw_freq_hz", None))
        obs = replace(obs, epr=replace(obs.epr, calibration=ecal))
    return obs


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

    A width is used when it is finite with a finite, positive fit error, not above the
    widest line the extractor measures (:func:`ingest.processing.widths.max_fwhm_hz` of its
    window, else :data:`MAX_FWHM_HZ_UNKNOWN_WINDOW`) and the extractor did not flag that
    peak ('peak at window edge', 'width not measured', 'no peak above noise', ... in
    ``nmr_warnings``).  Broadened lines (higher SOC, docs/physics.md §1.4) are used: the
    extractor fits them past their windows; lines too broad to be measured are left out
    (NaN) and counted in ``notes``.  ``w0``
    is the median width of the lines in the first spectrum (SOC 0: no radical, no
    exchange; it includes the processing line broadening ``lb``).
    """
    w0s = []
    warn = [str(x) for x in df["nmr_warnings"]] if "nmr_warnings" in df else [""] * len(df)
    for c in LINE_WIDTHS + REDUCED_LINE_WIDTHS:
        if c not in df:
            continue
        stem = c[:-len("_fwhm_Hz")]
        w = pd.to_numeric(df[c], errors="coerce").to_numpy(float)
        e = (pd.to_numeric(df[f"{stem}_fwhm_err_Hz"], errors="coerce").to_numpy(float)
             if f"{stem}_fwhm_err_Hz" in df else np.ones(len(df)))
        pk = peaks.get(stem)
        win = getattr(pk, "window_ppm", None)
        cap = max_fwhm_hz(win, sfo1_hz) if win else MAX_FWHM_HZ_UNKNOWN_WINDOW
        flagged = np.array([f"{stem}:" in x for x in warn])
        ok = nmr & np.isfinite(w) & (w > 0) & (w <= cap) & np.isfinite(e) & (e > 0) & ~flagged
        unmeasured = int(np.sum(nmr & np.array([f"{stem}: width not measured" in x for x in warn])))
        if not ok.any():
            if unmeasured:
                notes.append(f"{c}: no usable width ({unmeasured} spectra: line too broad to measure, "
                             f"> {cap:.0f} Hz or not above noise): exchange rates from it unidentifiable")
            continue
        out[c] = np.where(ok, w, np.nan)
        notes.append(f"{c}: {int(ok.sum())} of {int(nmr.sum())} spectra used (width <= {cap:.0f} Hz, "
                     f"no extractor warning)" + (f"; {unmeasured} too broad to measure (docs/physics.md §1.4) "
                                                 "left out" if unmeasured else ""))
        if i0 is not None and ok[i0] and c in LINE_WIDTHS:
            w0s.append(float(w[i0]))
    if not w0s:
        return None
    w0 = float(np.median(w0s))
    notes.append(f"w0_Hz = {w0:.3f} Hz: median O-line width in the first spectrum (SOC 0, includes lb)")
    return w0


def _masked_column(df: pd.DataFrame, name: str, mask: np.ndarray) -> np.ndarray:
    """Column ``name`` as floats where ``mask`` holds, NaN elsewhere (all NaN when absent)."""
    if name not in df:
        return np.full(len(df), np.nan)
    v = pd.to_numeric(df[name], errors="coerce").to_numpy(float)
    return np.where(mask, v, np.nan)


def _product_areas(df: pd.DataFrame, out: pd.DataFrame, nmr: np.ndarray, peaks: Mapping[str, Any],
                   area_scale: float | None, fwhm0: float, sfo1: float, notes: list[str]) -> None:
    """Write the decomposition products' areas into ``out`` as concentrations, mol/L.

    Each product area is divided by ``area_scale`` (area per mol/L of protons) and its
    proton count; windowed-integral areas are first divided by their Lorentzian
    capture fraction (line width ``fwhm0`` Hz unless the product's own is measured;
    ``sfo1`` in Hz).  Appends to ``notes``.
    """
    for prod, default_nh in (("anthrone_area", 2), ("anthranol_area", 1)):
        if area_scale is None or prod not in df:
            continue
        pk = peaks.get(prod[:-5])
        nh = getattr(pk, "n_h", None) or default_nh
        raw_area = _masked_column(df, prod, nmr)
        # the line's own width (issue 14): the quinone line's (fwhm0) only when the product's is not measured
        wcol = f"{prod[:-5]}_fwhm_Hz"
        w_own = pd.to_numeric(df[wcol], errors="coerce").to_numpy(float)[nmr] if wcol in df else np.zeros(0)
        w_own = w_own[np.isfinite(w_own) & (w_own > 0)]
        fw_prod = float(np.median(w_own)) if w_own.size else fwhm0
        if pk is not None and getattr(pk, "method", "fit") == "integral" and np.isfinite(fw_prod):
            scol = f"{prod[:-5]}_shift_ppm"
            centre = (pd.to_numeric(df[scol], errors="coerce").to_numpy(float) if scol in df
                      else np.full(len(df), np.nan))
            mid = 0.5 * sum(pk.window_ppm)
            cap = np.array([integral_capture(c if np.isfinite(c) else mid, fw_prod, pk.window_ppm, sfo1)
                            for c in np.where(nmr, centre, mid)])
            raw_area = raw_area / cap
            notes.append(f"{prod}: windowed integral divided by its Lorentzian capture fraction "
                         f"({np.nanmedian(cap[nmr]):.4f}, FWHM {fw_prod:.2f} Hz, "
                         f"{'its own median width' if w_own.size else 'the first quinone line width: its own not measured'})")
        out[prod] = raw_area / (area_scale * nh)


def _sigmas(df: pd.DataFrame, out: pd.DataFrame, area_scale: float | None,
            sigma: Mapping[str, float] | None, notes: list[str]
            ) -> tuple[pd.DataFrame, dict[str, float], dict[str, str]]:
    """Per-column sigma: twice the extractor's median error, floored at DEFAULT_SIGMA; ``sigma`` overrides.

    Returns
    -------
    tuple
        ``(out, sig, sig_src)``: ``out`` without the observable columns that hold no
        finite value, sigma per column (column units), and where each came from
        ('extractor', 'floor' or 'given').
    """
    sig: dict[str, float] = {}
    sig_src: dict[str, str] = {}
    for c in OBSERVABLES:
        if c not in out or not np.isfinite(out[c].to_numpy(float)).any():
            out = out.drop(columns=[c]) if c in out else out
            continue
        e = _median_err(df[np.isfinite(out[c].to_numpy(float))], c) if c.endswith("_fwhm_Hz") else _median_err(df, c)
        if c.endswith("_area") and area_scale:
            e /= area_scale * 2
        sig[c] = max(DEFAULT_SIGMA[c], 2.0 * e)
        sig_src[c] = "extractor" if 2.0 * e >= DEFAULT_SIGMA[c] else "floor"
    sig.update(dict(sigma or {}))
    sig_src.update({c: "given" for c in (sigma or {})})
    if any(v == "floor" for v in sig_src.values()):
        notes.append("no extractor error for " + ", ".join(c for c, v in sig_src.items() if v == "floor")
                     + ": sigma is the floor of DEFAULT_SIGMA, its scale cannot judge the model "
                       "(only the residual-structure tests do)")
    return out, sig, sig_src


def _area_scale(df: pd.DataFrame, i0: int | None, peaks: Mapping[str, Any],
                C_tot: float) -> tuple[float | None, float]:
    """Area per mol/L of protons and the quinone line's FWHM (Hz) from the first NMR row ``i0``.

    ``C_tot`` in mol/L; the area scale is None when ``dhaq_h1_area`` is missing or not positive.
    """
    area_scale = None
    fwhm0 = math.nan
    if i0 is not None and "dhaq_h1_area" in df:
        a0 = float(pd.to_numeric(df["dhaq_h1_area"], errors="coerce").iloc[i0])
        nh0 = getattr(peaks.get("dhaq_h1"), "n_h", None) or 2
        if np.isfinite(a0) and a0 > 0:
            area_scale = a0 / C_tot / nh0  # area per mol/L of protons
        if "dhaq_h1_fwhm_Hz" in df:
            fwhm0 = float(pd.to_numeric(df["dhaq_h1_fwhm_Hz"], errors="coerce").iloc[i0])
    return area_scale, fwhm0


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
        except ImportError:  # ingest absent: no per-peak details (a broken config file raises, naming it)
            obs_cfg = None
    peaks = {p.name: p for p in (getattr(getattr(obs_cfg, "nmr", None), "peaks", None) or [])}
    start = start or potentiostat.attrs.get("start")
    df = table.copy()
    tm = pd.to_datetime(df["time_mid"], utc=True)
    if start is None:
        start = tm.min().to_pydatetime()
        notes.append("potentiostat log has no start time: the first spectrum is taken as t = 0")
    t = (tm - pd.Timestamp(start)).dt.total_seconds().to_numpy()
    kind = df["kind"].astype(str).to_numpy()
    t = t - _clock_offsets(df, kind, cfg, notes)
    reservoir = getattr(cfg.flow, "detectors", "loop") == "reservoir"
    delays = reservoir_delays() if reservoir else cfg.transit_delays()
    if reservoir:
        notes.append("[flow] detectors = 'reservoir': no transit delay, the detectors see the tank")
    t = t - np.where(kind == "nmr", delays.delay_s("nmr"), delays.delay_s("epr"))
    pt, pI = _current_log(potentiostat, cfg)
    notes += [f"potentiostat log: {w}" for w in potentiostat.attrs.get("warnings", []) or []]
    out = pd.DataFrame({"t_s": t})
    nmr = kind == "nmr"
    epr = kind == "epr"
    C_tot = float(cfg.electrolyte.concentration_M)

    def col(name: str, mask: np.ndarray) -> np.ndarray:
        return _masked_column(df, name, mask)

    out["hdo_shift_ppm"] = col("hdo_shift_ppm", nmr)
    R = col("epr_spin_conc_M", epr)
    if not np.isfinite(R).any() and "epr_di_norm" in df and cfg.epr_calibration is not None:
        cal = cfg.epr_calibration
        R = col("epr_di_norm", epr) / cal.di_norm * cal.concentration_M
        notes.append("epr_spin_conc_M computed from epr_di_norm and the config's [epr_calibration]")
    out["epr_spin_conc_M"] = R
    order = np.argsort(t)
    first_nmr = [i for i in order if nmr[i] and np.isfinite(t[i])]
    area_scale, fwhm0 = _area_scale(df, first_nmr[0] if first_nmr else None, peaks, C_tot)
    sfo1 = float(pd.to_numeric(df.get("sfo1_MHz", pd.Series([400.0])), errors="coerce").dropna().median()) * 1e6
    _product_areas(df, out, nmr, peaks, area_scale, fwhm0, sfo1, notes)
    if area_scale is None:
        notes.append("no sharp dhaq_h1 line in the first spectrum: product areas not used")
    hdo_ref = float(out["hdo_shift_ppm"].iloc[first_nmr[0]]) if first_nmr else 4.79
    w0_Hz = _line_widths(df, out, nmr, peaks, sfo1, first_nmr[0] if first_nmr else None, notes)
    notes += summarize_warnings(df["nmr_warnings"]) if "nmr_warnings" in df else []  # assignment checks
    out, sig, sig_src = _sigmas(df, out, area_scale, sigma, notes)
    out = out.iloc[order].reset_index(drop=True)
    dropped = _count_dropped(out, kind[order], pt, notes)
    keep = np.isfinite(out["t_s"].to_numpy(float)) & (out["t_s"].to_numpy(float) >= 0)
    keep &= out.drop(columns=["t_s"]).notna().any(axis=1).to_numpy()
    out = out[keep].reset_index(drop=True)
    return FitData(out, sig, (pt, pI), start, area_scale, hdo_ref, notes,
                   volume_L=float(cfg.electrolyte.volume_L), c_tot_M=C_tot,
                   temperature_K=float(cfg.electrolyte.temperature_K),
                   geometry=str(getattr(cfg.instruments, "geometry", "parallel")),
                   flow_L_s=None if reservoir else float(cfg.flow.rate_mL_min) / 60e3, w0_Hz=w0_Hz,
                   config_params=resolve_params(cfg), dropped=dropped, sigma_source=sig_src)


def _clock_offsets(df: pd.DataFrame, kind: np.ndarray, cfg: Any, notes: list[str]) -> np.ndarray:
    """Per-row clock offset to subtract, s: ``[instruments] nmr_clock_offset_s`` /
    ``epr_clock_offset_s`` (instrument minus potentiostat clock), unless the row says
    (``clock_offset_s``, written by the watcher) that it was applied already."""
    ins = cfg.instruments
    off = np.where(kind == "nmr", float(getattr(ins, "nmr_clock_offset_s", 0.0) or 0.0),
                   np.where(kind == "epr", float(getattr(ins, "epr_clock_offset_s", 0.0) or 0.0), 0.0))
    if "clock_offset_s" in df:
        done = np.isfinite(pd.to_numeric(df["clock_offset_s"], errors="coerce").to_numpy(float))
        off = np.where(done, 0.0, off)
    if np.any(off != 0):
        notes.append("clock offsets applied (instrument minus potentiostat clock): "
                     + ", ".join(f"{k} {float(np.median(off[kind == k])):+g} s" for k in ("nmr", "epr")
                                 if np.any((kind == k) & (off != 0))))
    return off


def _current_log(potentiostat: pd.DataFrame, cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(t_s, I_A)`` of the potentiostat log with the configured sign; non-finite values raise."""
    pt = potentiostat["t_s"].to_numpy(float)
    pI = potentiostat["I_A"].to_numpy(float) * getattr(cfg.instruments, "current_sign", 1)
    src = getattr(cfg.instruments, "potentiostat", None) or "potentiostat log"
    for name, v in (("time", pt), ("current", pI)):
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            where = f"row {bad[0]}" + (f" (t = {pt[bad[0]]:g} s)" if np.isfinite(pt[bad[0]]) else "")
            raise ValueError(f"{src}: {bad.size} non-finite {name} value(s), first at {where}; "
                             "the fit needs a finite current at every logged time")
    return pt, pI


def _count_dropped(out: pd.DataFrame, kind: np.ndarray, pt: np.ndarray, notes: list[str]) -> dict[str, int]:
    """Count (and say in ``notes``) every row the fit will not use, and why."""
    t = out["t_s"].to_numpy(float)
    has_obs = out.drop(columns=["t_s"]).notna().any(axis=1).to_numpy()
    reasons = {
        "no time": ~np.isfinite(t),
        "before the potentiostat start": np.isfinite(t) & (t < 0),
        "no usable observable": np.isfinite(t) & (t >= 0) & ~has_obs,
    }
    dropped: dict[str, int] = {}
    for why, m in reasons.items():
        for k in sorted(set(kind[m])):
            n = int(np.sum(m & (kind == k)))
            dropped[f"{k}: {why}"] = n
            notes.append(f"{n} {k.upper()} row(s) dropped: {why}")
    if len(pt) and np.any(t > pt[-1] + 1.0):
        notes.append(f"{int(np.sum(t > pt[-1] + 1.0))} row(s) after the end of the potentiostat log "
                     "(the last logged current is held)")
    return dropped


