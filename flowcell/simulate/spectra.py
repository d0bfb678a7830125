"""Synthetic spectra from the observation model: 1H FIDs and CW-EPR derivative sweeps.

Pure functions on arrays; the simulator (:mod:`flowcell.simulate.simulator`) writes the
results with the vendor writers of :mod:`ingest`.

NMR (docs/physics.md §1.3, §1.4, §1.6)
    A sum of Lorentzian lines in the time domain,
    ``s(t) = sum_k A_k exp(i 2 pi nu_k t - pi w_k t)``, with
    ``nu_k = (delta_k - carrier_ppm) * sfo1`` (Hz) and ``w_k`` the FWHM (Hz).
    The sign follows Bruker's stored FIDs: with ``numpy.fft`` ordering, a positive
    offset from the carrier is a higher ppm (checked on
    ``shared/data/nmr/bruker-array/12`` against its pdata/1/1r).  The FFT of one
    line has area ``A_k`` (Hz x intensity), so areas are proportional to
    ``A_k`` whatever the processing does, and ``A_k`` is set to
    ``(protons) x (mol/L) x amplitude_per_M``.

EPR (docs/physics.md §1.5)
    A Lorentzian absorption of area ``area`` (a.u. x T), HWHM
    ``Gamma = (sqrt(3)/2) dB_pp``, observed as the first harmonic of a
    field modulation of peak-to-peak amplitude ``B_m``::

        S1(B) = (4/pi) int_0^pi A(B + (B_m/2) cos th) cos th dth

    (evaluated with Gauss-Legendre quadrature).  For ``B_m << Gamma`` this is
    ``B_m dA/dB``; for any ``B_m`` its double integral is exactly
    ``B_m x area`` (docs/physics.md §1.5, proof there), so over-modulation changes the
    shape, never the double integral.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ingest.processing.nmr_sim import simulate_fid
from kinetics.constants import H_PLANCK, MU_B

__all__ = [
    "NMRLine",
    "nmr_fid",
    "lorentzian_absorption",
    "epr_first_harmonic",
    "epr_resonance_field_T",
    "epr_area",
    "epr_sweep",
    "MU_B",
    "H_PLANCK",
]



@dataclass(frozen=True)
class NMRLine:
    """One Lorentzian NMR line.

    Attributes
    ----------
    shift_ppm : float
        Position, ppm.
    fwhm_hz : float
        Full width at half maximum, Hz (> 0).
    amplitude : float
        Time-domain amplitude at t = 0 (= spectral area, Hz x intensity).
    name : str
        Label, for provenance only.
    """

    shift_ppm: float
    fwhm_hz: float
    amplitude: float
    name: str = ""


def nmr_fid(lines: Iterable[NMRLine], *, n: int, sw_hz: float, sfo1_hz: float, carrier_ppm: float,
            noise_sd: float = 0.0, rng: np.random.Generator | None = None,
            phase_deg: float = 0.0) -> np.ndarray:
    """Complex FID of Lorentzian lines plus white complex Gaussian noise.

    Parameters
    ----------
    lines : iterable of NMRLine
    n : int
        Number of complex points.
    sw_hz : float
        Spectral width, Hz (dwell time 1/sw).
    sfo1_hz : float
        Observe frequency, Hz (Hz per ppm = sfo1_hz * 1e-6).
    carrier_ppm : float
        Chemical shift of the carrier, ppm.
    noise_sd : float
        Standard deviation of each of the real and imaginary noise parts.
    rng : numpy Generator, optional
    phase_deg : float
        Zero-order receiver phase applied to the whole FID, degrees.

    Returns
    -------
    ndarray of complex128, shape (n,)
    """
    if n <= 0 or sw_hz <= 0 or sfo1_hz <= 0:
        raise ValueError("n, sw_hz and sfo1_hz must be > 0")
    kept = []
    for ln in lines:
        if ln.amplitude == 0.0:
            continue
        if not ln.fwhm_hz > 0:
            raise ValueError(f"line {ln.name!r}: fwhm must be > 0 Hz, got {ln.fwhm_hz}")
        kept.append((ln.shift_ppm, ln.amplitude, ln.fwhm_hz))
    # the one FID synthesis of the package: ingest's (it also simulates the digital filter)
    return simulate_fid(kept, td=n, sw_hz=sw_hz, sfo1_hz=sfo1_hz, carrier_ppm=carrier_ppm, phase_deg=phase_deg,
                        noise_sd=noise_sd, seed=rng)


def lorentzian_absorption(field_T: np.ndarray, center_T: float, hwhm_T: float, area: float) -> np.ndarray:
    """Lorentzian absorption ``area * (G/pi) / ((B-B0)^2 + G^2)`` (a.u.; integral = area)."""
    d = np.asarray(field_T, float) - center_T
    return area * (hwhm_T / np.pi) / (d * d + hwhm_T * hwhm_T)


_GL_X, _GL_W = np.polynomial.legendre.leggauss(48)
_TH = (_GL_X + 1.0) * np.pi / 2.0  # nodes on [0, pi]
_TW = _GL_W * np.pi / 2.0


def epr_first_harmonic(field_T: np.ndarray, center_T: float, dBpp_T: float, area: float,
                       mod_amp_T: float) -> np.ndarray:
    """First-harmonic (derivative-like) CW-EPR signal of a Lorentzian line.

    Parameters
    ----------
    field_T : ndarray
        Field axis, T.
    center_T : float
        Resonance field, T.
    dBpp_T : float
        Peak-to-peak width of the (small-modulation) derivative, T; HWHM = sqrt(3)/2 dBpp.
    area : float
        Integral of the absorption over field (a.u. x T).
    mod_amp_T : float
        Peak-to-peak modulation amplitude, T.

    Returns
    -------
    ndarray
        Signal whose double integral over an infinite sweep is ``mod_amp_T * area``
        (docs/physics.md §1.5).
    """
    if not dBpp_T > 0 or not mod_amp_T > 0:
        raise ValueError("dBpp_T and mod_amp_T must be > 0")
    B = np.asarray(field_T, float)[:, None]
    hw = np.sqrt(3.0) / 2.0 * dBpp_T
    a = lorentzian_absorption(B + 0.5 * mod_amp_T * np.cos(_TH)[None, :], center_T, hw, area)
    return (4.0 / np.pi) * (a * (np.cos(_TH) * _TW)[None, :]).sum(axis=1)


def epr_resonance_field_T(g: float, mw_freq_hz: float) -> float:
    """Resonance field B = h nu / (g mu_B), T (docs/physics.md §1.5)."""
    return H_PLANCK * mw_freq_hz / (g * MU_B)


def epr_area(conc_M: float, *, sensitivity: float, mw_power_W: float, temperature_K: float,
             g: float = 2.0046, spin: float = 0.5, receiver_gain_lin: float = 1.0,
             reference_T_K: float = 298.15) -> float:
    """Absorption area of ``conc_M`` spins for the given acquisition settings.

    area = sensitivity x conc x sqrt(P / 1 W) x G_lin x (T_ref/T) x g/2.0023 x S(S+1)/0.75
    (Curie law and Aasa-Vanngard g-factor, docs/physics.md §1.5; unsaturated, so ∝ sqrt(P)).
    Scans are averaged (Xepr ``SctNorm``), so they only lower the noise.
    """
    return (sensitivity * conc_M * np.sqrt(mw_power_W) * receiver_gain_lin
            * (reference_T_K / temperature_K) * (g / 2.0023) * spin * (spin + 1) / 0.75)


def epr_sweep(center_T: float, width_T: float, n: int) -> np.ndarray:
    """Evenly spaced field axis of ``n`` points centred on ``center_T``, T."""
    return center_T - width_T / 2 + np.arange(n) * (width_T / (n - 1))
