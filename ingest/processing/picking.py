"""Noise-aware peak picking and multiplet grouping on a processed ¹H spectrum.

:func:`pick_peaks` finds local maxima standing ``snr_min`` noise standard
deviations above the baseline (height *and* prominence, so a noise wiggle on a
large line's flank is not a peak), refines each centre with a 3-point
parabola and measures its width at half height.  :func:`group_multiplets`
joins components closer than ``join_hz`` (couplings are field-independent in
Hz; aromatic ortho J ~ 8.5 Hz, docs/physics.md §1.4) into one multiplet with
a centre, a span, a component count and an area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from ingest.processing.nmr import noise_sigma

__all__ = ["Multiplet", "Peak", "group_multiplets", "pick_peaks"]


@dataclass(frozen=True)
class Peak:
    """One picked maximum.

    Attributes
    ----------
    ppm : float
        Centre (parabola through the top three points), ppm.
    height : float
        Spectrum units.
    snr : float
        height / noise standard deviation.
    fwhm_hz : float
        Width at half height, Hz (from the sampled spectrum).
    index : int
        Index of the top point.
    """

    ppm: float
    height: float
    snr: float
    fwhm_hz: float
    index: int


@dataclass(frozen=True)
class Multiplet:
    """A group of picked maxima that belong together.

    Attributes
    ----------
    ppm : float
        Centre, ppm (height-weighted mean of the components: the centre of a
        symmetric first-order multiplet).
    lo_ppm, hi_ppm : float
        Outermost component positions, ppm.
    n : int
        Number of components.
    area : float
        Integral over the multiplet (components +- 3 widths), spectrum units x Hz.
    height : float
        Tallest component, spectrum units.
    snr : float
        Tallest component / noise.
    fwhm_hz : float
        Median component width, Hz.
    peaks : tuple of Peak
    """

    ppm: float
    lo_ppm: float
    hi_ppm: float
    n: int
    area: float
    height: float
    snr: float
    fwhm_hz: float
    peaks: tuple[Peak, ...]


def pick_peaks(ppm: np.ndarray, y: np.ndarray, *, sfo1_hz: float, snr_min: float = 8.0,
               noise: float | None = None) -> list[Peak]:
    """Maxima at least ``snr_min`` noise sigmas high and prominent.

    Parameters
    ----------
    ppm, y : ndarray, shape (n,)
        Processed (phased, baseline-corrected) real spectrum and its axis, ppm.
    sfo1_hz : float
        Spectrometer frequency, Hz.
    snr_min : float
        Threshold in noise standard deviations (:func:`ingest.processing.nmr.noise_sigma`).
    noise : float or None
        Noise standard deviation if known.

    Returns
    -------
    list of Peak
        Sorted by decreasing ppm.
    """
    ppm = np.asarray(ppm, float)
    y = np.asarray(y, float)
    sigma = noise_sigma(y) if noise is None else float(noise)
    if not sigma > 0:
        sigma = 1e-12 * float(np.max(np.abs(y)) or 1.0)
    idx, _ = signal.find_peaks(y, height=snr_min * sigma, prominence=snr_min * sigma)
    if idx.size == 0:
        return []
    widths = signal.peak_widths(y, idx, rel_height=0.5)[0]
    step_hz = abs(float(ppm[1] - ppm[0])) * sfo1_hz * 1e-6
    out = []
    for i, w in zip(idx, widths):
        c = float(ppm[i])
        if 0 < i < y.size - 1:
            a, b, d = y[i - 1], y[i], y[i + 1]
            den = a - 2 * b + d
            if den != 0:
                c = float(ppm[i] + np.clip(0.5 * (a - d) / den, -0.5, 0.5) * (ppm[i + 1] - ppm[i - 1]) / 2)
        out.append(Peak(ppm=c, height=float(y[i]), snr=float(y[i] / sigma), fwhm_hz=float(w * step_hz), index=int(i)))
    return _drop_ringing(sorted(out, key=lambda p: -p.ppm), sfo1_hz)


def _drop_ringing(peaks: list[Peak], sfo1_hz: float, rules: tuple[tuple[float, float], ...] = ((25.0, 20.0),
                                                                                               (150.0, 100.0))
                  ) -> list[Peak]:
    """Drop maxima under ``1/ratio`` of a line within ``within_hz``, for each ``(within_hz, ratio)``.

    These are truncation wiggles (sinc ringing of a FID cut before it decayed:
    on a simulated 4k-point FID, maxima of 1/300 of the main line 44 Hz away)
    and lineshape bumps of a big line, not lines: multiplet components differ
    by at most 6x (1:4:6:4:1).  A genuine line this much smaller and this close
    to a big one (a 13C satellite, 0.55 %) is dropped too: say so when it matters.
    """
    if len(peaks) < 2:
        return peaks
    pos = np.array([p.ppm for p in peaks]) * sfo1_hz * 1e-6
    h = np.array([p.height for p in peaks])
    keep = []
    for i in range(len(peaks)):
        d = np.abs(pos - pos[i])
        keep.append(not any(np.any((d <= w) & (h > r * h[i])) for w, r in rules))
    return [p for p, k in zip(peaks, keep) if k]


def group_multiplets(peaks: list[Peak], ppm: np.ndarray, y: np.ndarray, *, sfo1_hz: float,
                     join_hz: float = 12.0) -> list[Multiplet]:
    """Join picked maxima closer than ``join_hz`` into multiplets.

    Parameters
    ----------
    peaks : list of Peak
        From :func:`pick_peaks`.
    ppm, y : ndarray
        The spectrum the peaks were picked on (for the areas).
    sfo1_hz : float
        Spectrometer frequency, Hz.
    join_hz : float
        Largest distance between neighbouring components of one multiplet, Hz
        (default 12 Hz: above aromatic ortho couplings, below most line separations
        at >= 300 MHz).

    Returns
    -------
    list of Multiplet
        Sorted by decreasing ppm.
    """
    ppm = np.asarray(ppm, float)
    y = np.asarray(y, float)
    hz = sfo1_hz * 1e-6
    ps = sorted(peaks, key=lambda p: -p.ppm)
    groups: list[list[Peak]] = []
    for p in ps:
        if groups and (groups[-1][-1].ppm - p.ppm) * sfo1_hz * 1e-6 <= join_hz:
            groups[-1].append(p)
        else:
            groups.append([p])
    step_hz = abs(float(ppm[1] - ppm[0])) * hz
    out = []
    for g in groups:
        h = np.array([p.height for p in g])
        c = float(np.sum(h * np.array([p.ppm for p in g])) / np.sum(h))
        w = float(np.median([p.fwhm_hz for p in g]))
        pad = 3.0 * w / hz
        lo, hi = min(p.ppm for p in g), max(p.ppm for p in g)
        m = (ppm >= lo - pad) & (ppm <= hi + pad)
        area = float(np.sum(y[m]) * step_hz)
        top = max(g, key=lambda p: p.height)
        out.append(Multiplet(ppm=c, lo_ppm=lo, hi_ppm=hi, n=len(g), area=area, height=top.height, snr=top.snr,
                             fwhm_hz=w, peaks=tuple(g)))
    return out
