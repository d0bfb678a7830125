"""Synthetic FIDs (the package's one FID synthesis) and the noise they give after processing.

Used by the simulator (:mod:`flowcell.simulate.spectra`), the tests and the benchmarks;
the frequency sense and scaling are those of :mod:`ingest.processing.nmr`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft

__all__ = ["delay_fid", "simulate_fid", "spectrum_noise_sd"]


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
    ``t = j / sw_hz``, then delayed by ``group_delay`` points as a digital filter
    delays it (:func:`delay_fid`), then white noise; processed by
    :func:`process_fid` each line has area ``a_k`` (Hz x FID units), FWHM
    ``w_k + lb`` Hz, centre ``ppm_k``.

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
        Simulated Bruker digital-filter delay, dwell points (may be fractional;
        :func:`delay_fid`): what a console's digital filter records, the
        band-limited FID ``group_delay`` points late with the filter's precursor
        before it (docs/physics.md §5.1).  :func:`process_fid` removes it exactly.
    noise_sd : float
        Standard deviation of the white Gaussian noise in each of the real
        and imaginary parts, added to all ``td`` points after the delay
        (see :func:`spectrum_noise_sd`).
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
        fid = delay_fid(fid, float(group_delay))
    # Noise after the delay: the receiver records noise at every one of the td points,
    # precursor included (white noise stays white through the filter's delay anyway).
    if noise_sd:
        rng = np.random.default_rng(seed)
        fid = fid + noise_sd * (rng.standard_normal(fid.size) + 1j * rng.standard_normal(fid.size))
    return fid


#: Zero-padded length of :func:`delay_fid`'s transform, in units of next_pow2(td) (so >= 4 td).
_PAD = 4


def delay_fid(fid: np.ndarray, group_delay: float) -> np.ndarray:
    """Delay a FID sampled from ``t = 0`` the way a digital filter does (docs/physics.md §5.1).

    Models what a Bruker console's linear-phase decimation filter records: the
    band-limited FID sampled ``group_delay`` dwell points late, ``x_k = f((k -
    group_delay)/sw)``, with the filter's precursor (its response to the FID's
    abrupt onset) in the points before ``group_delay``; ``td`` points are kept,
    so the last ``group_delay`` points of the FID fall off the end, as on the
    instrument.  Steps: the ``t = 0`` sample is halved (the band-limited record
    of a FID that starts at ``t = 0`` carries half its first value there, the
    trapezoid weight; :func:`process_fid` applies no first-point factor to
    digital-filter data), the record is zero-padded to ``4 * next_pow2(td)``
    points, its transform multiplied by ``exp(-2j*pi*group_delay*q/L)`` (``q``
    the signed frequency index, ``L`` the padded length), transformed back and
    cut to the first ``td`` points.  The padding makes the circular delay
    behave as an aperiodic one on the kept points: the precursor's slow
    (1/distance) tail that reaches before the first point wraps to the far end
    of the padded buffer, >= 3 td away, instead of into the record (a delay
    circular over ``td``, this package's former model, wrapped the FID's tail
    into the precursor).  A whole ``group_delay`` is an exact shift (zeros
    before it, no precursor).  The filter modelled is ideal (brick-wall): its
    precursor decays as 1/distance, where a real filter's ends within ~GD
    points, and the part before the first point is lost; after processing that
    is ~1e-7 of a line's height inside the band and up to 5e-5 at its Nyquist
    edge (GD 67.98 to 72.125; tests/test_nmr_process.py).

    Parameters
    ----------
    fid : ndarray of complex, shape (td,)
        FID sampled at ``t = k/sw``, ``k = 0 .. td-1``, first point unhalved.
    group_delay : float
        Delay, dwell points (>= 0; Bruker ``GRPDLY``).

    Returns
    -------
    ndarray of complex128, shape (td,)
    """
    gd = float(group_delay)
    if gd < 0:
        raise ValueError(f"group_delay must be >= 0, got {group_delay}")
    x = np.array(fid, dtype=np.complex128)
    if gd == 0:
        return x
    td = x.size
    big = _PAD * (1 << max(td - 1, 1).bit_length())
    x[0] *= 0.5
    q = scipy.fft.fftfreq(big) * big
    return scipy.fft.ifft(scipy.fft.fft(x, big) * np.exp(-2j * np.pi * gd * q / big))[:td]


def spectrum_noise_sd(noise_sd: float, td: int, sw_hz: float, lb_hz: float = 0.0, group_delay: float = 0.0) -> float:
    """Noise standard deviation of the real spectrum from :func:`process_fid`.

    For white FID noise of ``noise_sd`` per component, ``2/sw * noise_sd *
    sqrt(sum_k w_k**2)`` over all ``td`` points, with the apodization weights
    ``w_k = exp(-pi*lb*(k - group_delay)/sw)`` (time counts from the FID's
    start, ``group_delay`` points in for digital-filter data, docs/physics.md
    §5.1; zero filling adds no noise).  A Lorentzian of area ``a`` and FWHM
    ``W`` Hz has height ``2a/(pi*W)``; so the SNR of a simulated line follows.

    Parameters
    ----------
    noise_sd : float
        FID noise standard deviation per component (real, imaginary).
    td : int
        Complex points of the FID.
    sw_hz, lb_hz : float
        Spectral width and exponential line broadening, Hz.
    group_delay : float
        Digital-filter delay, dwell points (0: none).

    Returns
    -------
    float
        Standard deviation of the real spectrum, FID units / Hz.
    """
    w = np.exp(-np.pi * lb_hz * (np.arange(int(td)) - float(group_delay)) / sw_hz)
    return float(2.0 / sw_hz * noise_sd * math.sqrt(float(np.sum(w * w))))
