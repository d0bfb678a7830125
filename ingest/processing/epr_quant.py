"""CW EPR quantitation: normalised double integral and spin counting (docs/physics.md §1.5).

The double integral of an unsaturated first-derivative spectrum is (Eaton, Eaton,
Barr & Weber, *Quantitative EPR*, 2010, eq. for the integrated intensity)

    DI ∝ G · N_scans^(0|1) · t_conv · √P · B_m · Q · n_B · S(S+1) · g · N_spins

with ``G`` the linear receiver gain, ``t_conv`` the conversion time, ``P`` the microwave
power (√P: unsaturated, see :mod:`ingest.processing.epr_saturation`), ``B_m`` the
modulation amplitude (exact, §1.5), ``Q`` the loaded quality factor of the resonator,
``n_B = hν/(2kT)`` the Boltzmann population difference (high-temperature limit: ∝ ν/T,
the Curie law), ``S`` the spin and ``g`` the Aasa-Vänngård factor of a field sweep.
:func:`normalised_di` divides by the instrument factors ``G N t_conv B_m √P``;
:func:`spin_concentration` takes the ratio to a standard measured in the same cell and
corrects T, g, S -- and Q and ν when sample and standard both carry them:

    c_x = c_std · (DI_x/DI_std) · (T_x/T_std) · [S_std(S_std+1)/S_x(S_x+1)] · (g_std/g_x)
                · (Q_std/Q_x) · (ν_std/ν_x)

Aqueous KOH is lossy: Q changes from one filling to the next, which is why the standard
should be measured in the same electrolyte and cell (§1.5), and why a recorded Q is used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ingest.types import EPRMeta

__all__ = [
    "EPRCalibration",
    "cavity_factor",
    "is_esr5000",
    "normalisation_factors",
    "normalised_di",
    "q_factor",
    "spin_concentration",
]


def _di_value(di: Any) -> float:
    return float(getattr(di, "value", di))


# --------------------------------------------------------------------------- normalisation

_META_FIELDS = ("mw_freq_hz", "mw_power_W", "mod_amp_T", "receiver_gain", "receiver_gain_db",
                "conversion_time_s", "n_scans", "temperature_K", "scans_normalised")


def _meta_value(meta: EPRMeta, name: str, overrides: Mapping[str, Any] | None) -> Any:
    v = getattr(meta, name, None)
    if v is None and overrides:
        v = overrides.get(name)
    return v


def normalisation_factors(
    meta: EPRMeta,
    *,
    gain_mode: Literal["linear", "none"] = "linear",
    scans: Literal["auto", "divide", "none"] = "auto",
    conversion_time: bool = True,
    mod_amp: bool = True,
    sqrt_power: bool = True,
    missing: Literal["raise", "skip"] = "raise",
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """The factors a double integral is divided by (docs/physics.md §1.5).

    ``DI_norm = DI / (G_lin * N_scans^(0|1) * t_conv * B_m * sqrt(P))`` with

    * ``receiver_gain`` (``gain_mode='linear'``): the linear factor; dB gains
      were already converted by the readers as 10**(dB/20);
    * ``n_scans``: ``scans='auto'`` divides only when the file does not say the
      data are already scan-normalised (Xepr ``SctNorm True`` → not divided;
      docs/physics.md §6 item 7 is open on whether SctNorm also covers gain and
      conversion time: we assume it covers scans only, as the Xepr option
      'normalize acquisition' averages scans); ``'divide'`` always, ``'none'`` never;
    * ``conversion_time_s`` in ms (numbers of order 1-100 as in eprscope's
      N_norm; a constant factor cancels against the standard);
    * ``mod_amp_T`` in mT: DI ∝ B_m exactly in linear response (§1.5);
    * ``sqrt(mw_power_W)`` with P in mW: unsaturated signal ∝ sqrt(P).

    Parameters
    ----------
    meta : EPRMeta
    gain_mode, scans, conversion_time, mod_amp, sqrt_power
        Which factors to apply (see above).
    missing : {'raise', 'skip'}
        What to do when a needed parameter is None in ``meta`` and ``overrides``.
    overrides : mapping, optional
        Values for EPRMeta fields the file lacks (CSV exports, ESR5000 gain),
        e.g. ``{'receiver_gain': 1.0, 'mod_amp_T': 1e-4}``.

    Returns
    -------
    dict
        ``{'gain': .., 'scans': .., 'conversion_time_ms': .., 'mod_amp_mT': ..,
        'sqrt_power_mW': ..}``; a factor switched off, or skipped because its
        parameter is unknown (``missing='skip'``), is 1.0.
    """
    out: dict[str, float] = {}

    def need(name: str) -> Any:
        v = _meta_value(meta, name, overrides)
        if v is None and missing == "raise":
            raise ValueError(f"{meta.path}: {name} unknown, needed to normalise the double integral "
                             f"(give it in EPRConfig.overrides or switch that factor off)")
        return v

    if gain_mode == "linear":
        v = need("receiver_gain")
        out["gain"] = float(v) if v is not None else 1.0
    elif gain_mode == "none":
        out["gain"] = 1.0
    else:
        raise ValueError(f"gain_mode must be 'linear' or 'none', not {gain_mode!r}")
    if scans not in ("auto", "divide", "none"):
        raise ValueError(f"scans must be 'auto', 'divide' or 'none', not {scans!r}")
    normed = _meta_value(meta, "scans_normalised", overrides)
    if scans == "divide" or (scans == "auto" and not normed):
        v = need("n_scans")
        out["scans"] = float(v) if v is not None else 1.0
    else:
        out["scans"] = 1.0
    if conversion_time:
        v = need("conversion_time_s")
        out["conversion_time_ms"] = float(v) * 1e3 if v is not None else 1.0
    else:
        out["conversion_time_ms"] = 1.0
    if mod_amp:
        v = need("mod_amp_T")
        out["mod_amp_mT"] = float(v) * 1e3 if v is not None else 1.0
    else:
        out["mod_amp_mT"] = 1.0
    if sqrt_power:
        v = need("mw_power_W")
        out["sqrt_power_mW"] = math.sqrt(float(v) * 1e3) if v is not None else 1.0
    else:
        out["sqrt_power_mW"] = 1.0
    return out


def normalised_di(
    di: Any,
    meta: EPRMeta,
    *,
    gain_mode: Literal["linear", "none"] = "linear",
    scans: Literal["auto", "divide", "none"] = "auto",
    conversion_time: bool = True,
    mod_amp: bool = True,
    sqrt_power: bool = True,
    missing: Literal["raise", "skip"] = "raise",
    overrides: Mapping[str, Any] | None = None,
) -> float:
    """Normalised double integral, a.u. mT^2 / (ms mT mW^0.5) (docs/physics.md §1.5).

    ``DI_norm = DI / (G_lin * N^(0|1) * t_conv[ms] * B_m[mT] * sqrt(P[mW]))``;
    the factors and each choice are documented in :func:`normalisation_factors`,
    whose keyword arguments this function takes.  The same settings must be
    used for the sample and for the calibration standard.

    Parameters
    ----------
    di : DoubleIntegral (``ingest.processing.epr``) or float
        Raw double integral, a.u. mT^2.
    meta : EPRMeta

    Returns
    -------
    float
    """
    value = _di_value(di)
    f = normalisation_factors(meta, gain_mode=gain_mode, scans=scans, conversion_time=conversion_time,
                              mod_amp=mod_amp, sqrt_power=sqrt_power, missing=missing, overrides=overrides)
    return value / math.prod(f.values())


# --------------------------------------------------------------------------- spin counting


@dataclass(frozen=True)
class EPRCalibration:
    """A spin-counting standard measured with the same normalisation (docs/physics.md §1.5).

    Attributes
    ----------
    concentration_M : float
        Spin concentration of the standard, mol/L.
    di_norm : float
        Its normalised double integral (same units and settings as the sample).
    temperature_K : float
        Temperature of the standard measurement, K.
    g : float
        g-value of the standard.
    spin : float
        Electron spin S of the standard (1/2 for TEMPOL).
    q_factor : float or None
        Loaded Q of the resonator with the standard in it (ESR5000 ``QFactor``, Xepr
        ``QValue``); used only when the sample's Q is known too.
    mw_freq_hz : float or None
        Microwave frequency of the standard's measurement, Hz; used only with the sample's.
    """

    concentration_M: float
    di_norm: float
    temperature_K: float = 298.15
    g: float = 2.0058
    spin: float = 0.5
    q_factor: float | None = None
    mw_freq_hz: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EPRCalibration:
        """Build from a TOML table (keys as the attributes)."""
        allowed = {"concentration_M", "di_norm", "temperature_K", "g", "spin", "q_factor", "mw_freq_hz"}
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(f"[epr.calibration]: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")
        for k in ("concentration_M", "di_norm"):
            if k not in d:
                raise ValueError(f"[epr.calibration]: required key {k!r} missing")
        return cls(**{k: float(v) for k, v in d.items()})


def spin_concentration(
    di_norm: float,
    calib: EPRCalibration,
    *,
    temperature_K: float | None = None,
    g: float | None = None,
    spin: float = 0.5,
    q_factor: float | None = None,
    mw_freq_hz: float | None = None,
) -> float:
    """Spin concentration from a normalised double integral, mol/L (docs/physics.md §1.5).

    ``c_x = c_std (DI_x/DI_std) (T_x/T_std) [S_std(S_std+1)/S_x(S_x+1)] (g_std/g_x)``
    (Curie law for T; Aasa-Vänngård g-factor for field-swept spectra).

    Parameters
    ----------
    di_norm : float
        Sample's normalised double integral (same settings as the standard).
    calib : EPRCalibration
    temperature_K : float, optional
        Sample temperature, K; None takes the standard's (no correction).
    g : float, optional
        Sample g-value; None (or NaN) takes the standard's (no correction).
    spin : float
        Sample spin S.
    q_factor, mw_freq_hz : float, optional
        The sample's resonator Q and microwave frequency (Hz); each is used (Q_std/Q_x,
        ν_std/ν_x, module docstring) only when the standard carries it too.

    Returns
    -------
    float
        mol/L.
    """
    T = calib.temperature_K if temperature_K is None or not np.isfinite(temperature_K) else temperature_K
    gx = calib.g if g is None or not np.isfinite(g) else g
    s_ratio = (calib.spin * (calib.spin + 1.0)) / (spin * (spin + 1.0))
    cav, _ = cavity_factor(calib, q_factor=q_factor, mw_freq_hz=mw_freq_hz)
    return float(calib.concentration_M * (di_norm / calib.di_norm) * (T / calib.temperature_K)
                 * s_ratio * (calib.g / gx) * cav)


def _known(v: Any) -> bool:
    return v is not None and np.isfinite(float(v)) and float(v) > 0


def cavity_factor(calib: EPRCalibration, *, q_factor: float | None = None,
                  mw_freq_hz: float | None = None) -> tuple[float, list[str]]:
    """``(Q_std/Q_x)·(ν_std/ν_x)`` for the factors both sides carry, and what was used.

    Returns
    -------
    factor : float
        1.0 when neither pair is complete.
    used : list of str
        e.g. ``['Q 2442/1359', 'frequency 9.4896/9.4666 GHz']`` (standard/sample).
    """
    f, used = 1.0, []
    if _known(q_factor) and _known(calib.q_factor):
        f *= float(calib.q_factor) / float(q_factor)
        used.append(f"Q {float(calib.q_factor):.0f}/{float(q_factor):.0f}")
    if _known(mw_freq_hz) and _known(calib.mw_freq_hz):
        f *= float(calib.mw_freq_hz) / float(mw_freq_hz)
        used.append(f"frequency {float(calib.mw_freq_hz) / 1e9:.4f}/{float(mw_freq_hz) / 1e9:.4f} GHz")
    return f, used


def is_esr5000(meta: EPRMeta) -> bool:
    """A Magnettech / Bruker ESR5000 file: its XML, or a BES3T file with an ESR5000 device layer."""
    if meta.format == "magnettech":
        return True
    dsl = (meta.extra or {}).get("dsl")
    return isinstance(dsl, Mapping) and any("ESR5000" in str(k).upper() for k in dsl)


def q_factor(meta: EPRMeta) -> float | None:
    """The loaded resonator Q the file records (ESR5000 ``QFactor``; Xepr ``QValue``), or None."""
    extra = meta.extra or {}
    v = extra.get("q_factor")
    dsl = extra.get("dsl")
    if v is None and isinstance(dsl, Mapping):  # Xepr: mwBridge; ESR5000 BES3T: its .DVC ESR5000 layer
        v = next((d["QValue"] for d in dsl.values() if isinstance(d, Mapping) and "QValue" in d), None)
    try:
        v = float(str(v).split()[0]) if v is not None else None
    except ValueError:
        return None
    return v if _known(v) else None
