"""Synthetic FIDs (the package's one FID synthesis) and the noise they give after processing.

Used by the simulator (:mod:`flowcell.simulate.spectra`), the tests and the benchmarks;
the frequency sense and scaling are those of :mod:`ingest.processing.nmr`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft

__all__ = ["simulate_fid", "spectrum_noise_sd"]


def simulate_fid(
    lines: Any,
    *,
    td: int,
    sw_hz: float,
    sfo1_hz: float,
    carrier_ppm: float,
    phase_deg: float = 0.0,
    group_delay: float = 0.0,
    noise_sd: float = 0.0,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Synthetic FID of Lorentzian lines, in the readers' frequency sense.

    ``fid(t) = exp(i*phase) * sum_k a_k exp(2j*pi*(ppm_k - carrier)*sfo1*1e-6*t) exp(-pi*w_k*t)``,
    ``t = j / sw_hz``; processed by :func:`process_fid` each line has area
    ``a_k`` (Hz x FID units), FWHM ``w_k + lb`` Hz, centre ``ppm_k``.

    Parameters
    ----------
    lines : iterable of (ppm, amplitude, fwhm_hz)
    td : int
        Complex points.
    sw_hz, sfo1_hz : float
        Spectral width and observe frequency, Hz.
    carrier_ppm : float
    phase_deg : float
        Zero-order phase error added, degrees.
    group_delay : float
        Simulated Bruker digital-filter delay, points: the ideal FID is
        delayed by this many points as a band-limited circular shift (the
        inverse of :func:`remove_digital_filter`).
    noise_sd : float
        Standard deviation of the white Gaussian noise in each of the real
        and imaginary parts (see :func:`spectrum_noise_sd`).
    seed : int, Generator or None

    Returns
    -------
    ndarray of complex128, shape (td,)
    """
    t = np.arange(int(td)) / float(sw_hz)
    fid = np.zeros(int(td), dtype=np.complex128)
    for ppm, amp, fwhm in lines:
        dnu = (float(ppm) - carrier_ppm) * sfo1_hz * 1e-6
        fid += float(amp) * np.exp((2j * np.pi * dnu - np.pi * float(fwhm)) * t)
    fid *= np.exp(1j * np.deg2rad(phase_deg))
    if group_delay:
        n = fid.size
        f = scipy.fft.fftfreq(n) * n
        fid = scipy.fft.ifft(scipy.fft.fft(fid) * np.exp(-2j * np.pi * float(group_delay) * f / n))
    if noise_sd:
        rng = np.random.default_rng(seed)
        fid = fid + noise_sd * (rng.standard_normal(fid.size) + 1j * rng.standard_normal(fid.size))
    return fid


def spectrum_noise_sd(noise_sd: float, td: int, sw_hz: float, lb_hz: float = 0.0) -> float:
    """Noise standard deviation of the real spectrum from :func:`process_fid`.

    For white FID noise of ``noise_sd`` per component, ``2/sw * noise_sd *
    sqrt(sum_k w_k**2)`` with ``w_k = exp(-pi*lb*k/sw)`` (zero filling adds no
    noise).  A Lorentzian of area ``a`` and FWHM ``W`` Hz has height
    ``2a/(pi*W)``; so the SNR of a simulated line follows.

    Returns
    -------
    float
    """
    w = np.exp(-np.pi * lb_hz * np.arange(int(td)) / sw_hz)
    return float(2.0 / sw_hz * noise_sd * math.sqrt(float(np.sum(w * w))))
