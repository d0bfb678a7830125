"""CW EPR processing: baseline, double integral, g-value, widths, normalisation, spin counting.

Pure functions on arrays (no I/O).  Field axes come in tesla (SI, like the
readers); integrals are reported per millitesla because that is how EPR
spectroscopists quote them: the double integral of a first-derivative
spectrum in arbitrary units ``a.u.`` is in ``a.u. mT^2`` (first integral,
the absorption, in ``a.u. mT``).  Multiply by 1e-6 for ``a.u. T^2``.

Physics and numbers: docs/physics.md §1.5 (spin counting by double integration
[G/V], the normalised double integral [D/V], B_m exactness [D], Lorentzian
wings [D], g = h nu / (mu_B B_res) [G]); open question §6 item 7 (``SctNorm``).

Pieces live in their own modules and are importable from here: the sweep's baseline and
peak-to-peak (:mod:`ingest.processing.epr_derivative`), the Lorentzian fit
(:mod:`ingest.processing.epr_lorentzian`), normalisation and spin counting
(:mod:`ingest.processing.epr_quant`), line location and saturation checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np
import pandas as pd
from scipy import constants as _c
from scipy.integrate import cumulative_trapezoid

from ingest.processing.epr_derivative import PeakToPeak, _outer_mask, _sorted, baseline_correct, peak_to_peak
from ingest.processing.epr_line import LineLocation, locate_line
from ingest.processing.epr_linefit import fit_line
from ingest.processing.epr_lorentzian import LorentzianFit, fit_lorentzian_derivative, lorentzian_derivative
from ingest.processing.epr_quant import (
    _META_FIELDS,
    EPRCalibration,
    _meta_value,
    cavity_factor,
    is_esr5000,
    normalisation_factors,
    normalised_di,
    q_factor,
    spin_concentration,
)
from ingest.processing.epr_saturation import SaturationCheck, saturation_check
from ingest.types import EPRSpectrum

__all__ = [
    "baseline_correct",
    "DoubleIntegral",
    "double_integral",
    "g_from_field",
    "g_value",
    "PeakToPeak",
    "peak_to_peak",
    "LorentzianFit",
    "lorentzian_derivative",
    "fit_lorentzian_derivative",
    "normalisation_factors",
    "normalised_di",
    "EPRCalibration",
    "spin_concentration",
    "EPRConfig",
    "epr_row",
    "q_factor",
    "cavity_factor",
    "LineLocation",
    "locate_line",
    "SaturationCheck",
    "saturation_check",
]

#: h / mu_B in T/Hz: g = H_OVER_MUB * nu / B.
H_OVER_MUB: float = _c.h / _c.physical_constants["Bohr magneton"][0]


@dataclass
class DoubleIntegral:
    """Result of :func:`double_integral` (ascending field order).

    Attributes
    ----------
    value : float
        Double integral, a.u. mT^2 (the area of the absorption).
    field_mT : ndarray
        Field axis, mT, ascending.
    derivative : ndarray
        Baseline-corrected first-derivative spectrum, a.u.
    first_integral : ndarray
        Baseline-corrected absorption (first integral), a.u. mT.
    running_integral : ndarray
        Cumulative second integral, a.u. mT^2 (its last value is ``value``);
        a plateau at the high-field end shows the wings are captured.
    baseline_derivative, baseline_absorption : ndarray
        The subtracted polynomials.
    diagnostics : dict
        ``baseline_fraction``, ``orders``, ``edge_fraction`` (largest |absorption|
        in the outer regions relative to its peak: large values mean truncated
        wings or a bad baseline), ``snr`` (half the peak-to-peak amplitude over ``noise_rms``,
        the rms of the corrected derivative in the outer regions, which counts
        baseline wander as noise), ``baseline_variation`` (peak-to-peak of the
        fitted derivative baseline over that of the corrected signal; a constant
        offset does not count, a truncated line or strong drift gives > 0.1).
    warnings : list of str
    """

    value: float
    field_mT: np.ndarray
    derivative: np.ndarray
    first_integral: np.ndarray
    running_integral: np.ndarray
    baseline_derivative: np.ndarray
    baseline_absorption: np.ndarray
    diagnostics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __float__(self) -> float:
        return float(self.value)


def double_integral(
    field_T: np.ndarray,
    y: np.ndarray,
    *,
    baseline_fraction: float = 0.1,
    derivative_order: int = 1,
    absorption_order: int = 1,
) -> DoubleIntegral:
    """Model-free double integral of a first-derivative CW EPR spectrum (docs/physics.md §1.5).

    Steps: polynomial baseline on the outer ``baseline_fraction`` of the sweep
    of the derivative → cumulative trapezoid (absorption) → polynomial
    baseline on the outer parts of the absorption → trapezoid.

    Parameters
    ----------
    field_T : ndarray, shape (n,)
        Field, T.
    y : ndarray, shape (n,)
        First-harmonic signal, a.u.
    baseline_fraction : float
        Fraction of the sweep width on each side used for both baselines.
    derivative_order, absorption_order : int
        Polynomial degrees of the two baselines.

    Returns
    -------
    DoubleIntegral
        ``value`` in a.u. mT^2.

    Notes
    -----
    A Lorentzian absorption swept over +-n HWHM keeps (2/pi) arctan(n) of its
    area (98.7 % at n = 50), and the two linear baselines remove some more
    wing area: with the defaults a Lorentzian swept over +-20/50/100 HWHM
    gives 90.5/96.2/98.1 % of its area (tests/test_roundtrip_epr.py).  For
    Lorentzian lines use :func:`fit_lorentzian_derivative` (analytic area) and
    keep this model-free value as the check (docs/physics.md §1.5 caveat 3).  For
    any modulation amplitude the DI is B_m x the absorption area (§1.5 [D]),
    which the tests verify on theory and on a real ESR5000 series.
    """
    x, yy = _sorted(field_T, y)
    xm = x * 1e3
    d, b1 = baseline_correct(xm, yy, fraction=baseline_fraction, order=derivative_order)
    a = cumulative_trapezoid(d, xm, initial=0.0)
    a2, b2 = baseline_correct(xm, a, fraction=baseline_fraction, order=absorption_order)
    run = cumulative_trapezoid(a2, xm, initial=0.0)
    value = float(run[-1])
    mask = _outer_mask(xm, baseline_fraction)
    peak = float(np.max(np.abs(a2))) if a2.size else 0.0
    edge = float(np.max(np.abs(a2[mask])) / peak) if peak > 0 else float("nan")
    # rms of the corrected derivative off the line: white noise AND baseline wander count
    noise = float(np.sqrt(np.mean(d[mask] ** 2)))
    snr = float((d.max() - d.min()) / 2.0 / noise) if noise > 0 else float("inf")
    amp = float(np.ptp(d)) if d.size else 0.0
    base_var = float(np.ptp(b1) / amp) if amp > 0 else float("nan")
    warns: list[str] = []
    if base_var > 0.1:
        warns.append(f"the derivative baseline varies by {base_var:.0%} of the signal across the sweep: "
                     "line truncated by the sweep or strong baseline drift")
    if edge > 0.05:
        warns.append(f"absorption at the sweep edges is {edge:.1%} of its peak: wings truncated or baseline poor")
    if value <= 0:
        warns.append("double integral is not positive (phase inverted, no signal, or baseline failure)")
    if snr < 5:
        warns.append(f"low signal-to-noise ({snr:.1f})")
    return DoubleIntegral(
        value=value,
        field_mT=xm,
        derivative=d,
        first_integral=a2,
        running_integral=run,
        baseline_derivative=b1,
        baseline_absorption=b2,
        diagnostics={
            "baseline_fraction": baseline_fraction,
            "orders": (derivative_order, absorption_order),
            "edge_fraction": edge,
            "snr": snr,
            "noise_rms": noise,
            "baseline_variation": base_var,
            "units": "a.u. mT^2",
        },
        warnings=warns,
    )


def g_from_field(B_T: float, mw_freq_hz: float) -> float:
    """g = h nu / (mu_B B) (docs/physics.md §1.5).  ``B_T`` in T, ``mw_freq_hz`` in Hz."""
    return float(H_OVER_MUB * mw_freq_hz / B_T)


def g_value(
    field_T: np.ndarray,
    y: np.ndarray,
    mw_freq_hz: float,
    *,
    method: Literal["zero_crossing", "fit"] = "zero_crossing",
    baseline_fraction: float = 0.1,
) -> float:
    """g-value from the resonance field (docs/physics.md §1.5: g = h nu / (mu_B B_res)).

    Parameters
    ----------
    field_T : ndarray
        Field, T.
    y : ndarray
        First-derivative spectrum, a.u.
    mw_freq_hz : float
        Microwave frequency, Hz (``MWFQ``).
    method : {'zero_crossing', 'fit'}
        B_res from the zero crossing between the derivative extremes (after a
        linear baseline), or from the centre of a Lorentzian-derivative fit.
    baseline_fraction : float

    Returns
    -------
    float
        g (dimensionless).
    """
    if method == "fit":
        b = fit_lorentzian_derivative(field_T, y, baseline_fraction=baseline_fraction).center_T
    elif method == "zero_crossing":
        d, _ = baseline_correct(field_T, y, fraction=baseline_fraction, order=1)
        b = peak_to_peak(field_T, d).center_T
    else:
        raise ValueError(f"method must be 'zero_crossing' or 'fit', not {method!r}")
    return g_from_field(b, mw_freq_hz)




# --------------------------------------------------------------------------- config and row


@dataclass
class EPRConfig:
    """EPR part of the observables configuration (``cfg.epr``; TOML table ``[epr]``).

    Attributes
    ----------
    baseline_fraction : float
        Outer fraction of the sweep width used for the baselines (docs/physics.md §1.5: ~0.1).
    calibration : EPRCalibration or None
        Spin-counting standard; None → ``epr_spin_conc_M`` is NaN.
    fit_lorentzian : bool
        Fit a Lorentzian derivative; its centre and width are then reported
        (when R^2 >= 0.9) and its area is kept as the check on the DI.
    gain_mode, scans, conversion_time, mod_amp, sqrt_power
        Normalisation choices (see :func:`normalisation_factors`).
    overrides : dict
        EPRMeta values to use when the file lacks them (CSV exports: the
        normalisation must come from the config, docs/physics.md §5.6).
    di_source : {'model_free', 'lorentzian'}
        What ``epr_di_norm`` (hence ``epr_spin_conc_M``) is computed from: the
        model-free double integral (default), or the analytic area of the
        Lorentzian fit when it is good (R^2 >= 0.9; otherwise the model-free
        value, with a warning).  ``'lorentzian'`` removes the sweep-width bias
        of §1.5 caveat 3 when sample and standard have different widths.
        ``epr_di`` is always the model-free value.
    """

    baseline_fraction: float = 0.1
    calibration: EPRCalibration | None = None
    fit_lorentzian: bool = True
    gain_mode: Literal["linear", "none"] = "linear"
    scans: Literal["auto", "divide", "none"] = "auto"
    conversion_time: bool = True
    mod_amp: bool = True
    sqrt_power: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)
    di_source: Literal["model_free", "lorentzian"] = "model_free"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "EPRConfig":
        """Build from the ``[epr]`` TOML table; unknown keys raise ValueError naming them."""
        if not d:
            return cls()
        d = dict(d)
        allowed = {"baseline_fraction", "calibration", "fit_lorentzian", "gain_mode", "scans",
                   "conversion_time", "mod_amp", "sqrt_power", "overrides", "di_source"}
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(f"[epr]: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")
        cal = d.pop("calibration", None)
        if cal is not None and not isinstance(cal, EPRCalibration):
            cal = EPRCalibration.from_dict(cal)
        ov = dict(d.pop("overrides", {}) or {})
        bad = set(ov) - set(_META_FIELDS)
        if bad:
            raise ValueError(f"[epr.overrides]: unknown keys {sorted(bad)}; allowed {sorted(_META_FIELDS)}")
        cfg = cls(calibration=cal, overrides=ov, **d)
        if cfg.di_source not in ("model_free", "lorentzian"):
            raise ValueError(f"[epr]: di_source {cfg.di_source!r} must be 'model_free' or 'lorentzian'")
        if not 0.0 < cfg.baseline_fraction < 0.5:
            raise ValueError(f"[epr]: baseline_fraction {cfg.baseline_fraction} must be in (0, 0.5)")
        return cfg


def _ts(dt: Any) -> pd.Timestamp:
    if dt is None:
        return pd.NaT
    t = pd.Timestamp(dt)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _nan(v: float | None, scale: float = 1.0) -> float:
    return float("nan") if v is None else float(v) * scale


def _unity_gain(meta: Any, cfg: EPRConfig, warns: list[str]) -> dict[str, Any]:
    """The overrides, with unity receiver gain for an ESR5000/Magnettech file that records none.

    The ESR5000 writes no receiver gain (neither in its XML nor in its BES3T files, docs/physics.md
    §5.4): the gain factor is taken as 1
    and the row says so; sample and standard must then be measured with the same gain.
    """
    ov = cfg.overrides
    if (cfg.gain_mode == "linear" and is_esr5000(meta) and meta.receiver_gain is None
            and ov.get("receiver_gain") is None):
        warns.append("no receiver gain in the ESR5000 file: unity gain assumed (measure the standard "
                     "with the same gain)")
        return {**ov, "receiver_gain": 1.0}
    return ov


def _refine_line(
    spec: EPRSpectrum, cfg: EPRConfig, line: Any, di_value: float, warns: list[str]
) -> tuple[float, float, float, float]:
    """Refine the located line by the Lorentzian fit when asked and good; choose the area.

    Parameters
    ----------
    line : LineLocation
        From :func:`locate_line` (centre and peak-to-peak width, T).
    di_value : float
        Model-free double integral, in the units of :func:`double_integral`'s ``value``.
    warns : list of str
        Appended to.

    Returns
    -------
    tuple of float
        ``(center_T, dBpp_T, area, fit_area)``: the line's centre and width (T), the area
        that is normalised (the fit's when ``di_source='lorentzian'`` and it fits) and the
        fit's area (NaN without fit).
    """
    center_T, dBpp_T = line.center_T, line.dBpp_T
    fit_area = float("nan")
    fit_ok = False
    if cfg.fit_lorentzian or cfg.di_source == "lorentzian":
        try:
            # lmfit's model without lmfit's overhead (the same fit, ingest.processing.epr_linefit)
            fit = fit_line(spec.field_T, spec.intensity, baseline_fraction=cfg.baseline_fraction)
            fit_area = fit.area
            warns += fit.warnings
            fit_ok = fit.r2 >= 0.9 and bool(fit.result.success)
            if fit_ok and cfg.fit_lorentzian:
                center_T, dBpp_T = fit.center_T, fit.dBpp_T
        except (ValueError, RuntimeError) as exc:  # pragma: no cover - defensive
            warns.append(f"Lorentzian fit failed: {exc}")
    area = di_value
    if cfg.di_source == "lorentzian":
        if fit_ok:
            area = fit_area
        else:
            warns.append("di_source 'lorentzian' but the fit is poor: epr_di_norm from the model-free DI")
    return center_T, dBpp_T, area, fit_area


def _time_mid(t0: Any, t1: Any) -> Any:
    """Midpoint of two Timestamps; the known one when the other is NaT."""
    if t0 is pd.NaT:
        return t1
    if t1 is pd.NaT:
        return t0
    return t0 + (t1 - t0) / 2


def epr_row(spec: EPRSpectrum, epr_cfg: EPRConfig | None = None) -> dict[str, Any]:
    """One table row for a 1D EPR spectrum (columns of docs/architecture.md).

    Parameters
    ----------
    spec : EPRSpectrum
        1D; split 2D sets first with :func:`ingest.readers.epr.split_rows`.
    epr_cfg : EPRConfig, optional

    Returns
    -------
    dict
        ``kind, source, row, time_start, time_end, time_mid`` (tz-aware UTC
        Timestamps, NaT when unknown), ``temperature_K, format, epr_di``
        (a.u. mT^2, model-free), ``epr_di_norm`` (from ``epr_di``, or from the fit
        area with ``di_source='lorentzian'``; NaN when a needed parameter is missing),
        ``epr_spin_conc_M`` (mol/L, NaN without calibration), ``epr_g``,
        ``epr_center_mT``, ``epr_dBpp_mT``, ``mw_freq_GHz``, ``mw_power_mW``,
        ``mod_amp_mT``, ``q_factor`` (resonator Q, NaN when not recorded), plus
        diagnostics ``epr_line_snr`` (:func:`locate_line`), ``epr_fit_area`` (a.u. mT^2,
        NaN without fit), ``epr_di_edge_frac`` and ``epr_warnings`` ('; '-joined).

        The line (centre, ``epr_g``, ``epr_dBpp_mT``) is located automatically in each sweep
        (:func:`ingest.processing.epr_line.locate_line`), then refined by the Lorentzian fit
        when that fits (R^2 >= 0.9).  ESR5000 files without a receiver gain are normalised
        with unity gain (noted in ``epr_warnings``).  The spin concentration uses the Q and
        frequency ratios when sample and standard both carry them (:mod:`ingest.processing.epr_quant`).
    """
    cfg = epr_cfg or EPRConfig()
    if spec.intensity.ndim != 1:
        raise ValueError(f"{spec.meta.path}: epr_row needs a 1D spectrum; use ingest.readers.epr.split_rows first")
    meta = spec.meta
    ov = cfg.overrides
    warns: list[str] = []
    di = double_integral(spec.field_T, spec.intensity, baseline_fraction=cfg.baseline_fraction)
    warns += di.warnings
    line = locate_line(spec.field_T, spec.intensity, _meta_value(meta, "mw_freq_hz", ov),
                       baseline_fraction=cfg.baseline_fraction)
    warns += line.warnings
    center_T, dBpp_T, area, fit_area = _refine_line(spec, cfg, line, di.value, warns)
    ov = _unity_gain(meta, cfg, warns)
    try:
        di_norm = normalised_di(area, meta, gain_mode=cfg.gain_mode, scans=cfg.scans,
                                conversion_time=cfg.conversion_time, mod_amp=cfg.mod_amp,
                                sqrt_power=cfg.sqrt_power, missing="raise", overrides=ov)
    except ValueError as exc:
        di_norm = float("nan")
        warns.append(str(exc).split(": ", 1)[-1])
    freq = _meta_value(meta, "mw_freq_hz", ov)
    g = g_from_field(center_T, float(freq)) if freq else float("nan")
    temp = _meta_value(meta, "temperature_K", ov)
    conc = float("nan")
    q = q_factor(meta)
    if cfg.calibration is not None and np.isfinite(di_norm):
        conc = spin_concentration(di_norm, cfg.calibration, temperature_K=temp,
                                  g=g if np.isfinite(g) else None, q_factor=q, mw_freq_hz=freq)
    t0, t1 = _ts(meta.start), _ts(meta.end)
    tm = _time_mid(t0, t1)
    power = _meta_value(meta, "mw_power_W", ov)
    modamp = _meta_value(meta, "mod_amp_T", ov)
    return {
        "kind": "epr",
        "source": str(meta.path),
        "row": -1 if meta.row is None else int(meta.row),
        "time_start": t0,
        "time_end": t1,
        "time_mid": tm,
        "temperature_K": _nan(temp),
        "format": meta.format,
        "epr_di": di.value,
        "epr_di_norm": di_norm,
        "epr_spin_conc_M": conc,
        "epr_g": g,
        "epr_center_mT": center_T * 1e3,
        "epr_dBpp_mT": dBpp_T * 1e3,
        "epr_line_snr": line.snr,
        "q_factor": _nan(q),
        "mw_freq_GHz": _nan(freq, 1e-9),
        "mw_power_mW": _nan(power, 1e3),
        "mod_amp_mT": _nan(modamp, 1e3),
        "epr_fit_area": fit_area,
        "epr_di_edge_frac": float(di.diagnostics["edge_fraction"]),
        "epr_warnings": "; ".join(warns),
    }
