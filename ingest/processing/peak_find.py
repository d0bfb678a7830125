"""Prominent maxima of a sampled curve and their widths: scipy.signal's definitions, in numpy.

:func:`prominent_peaks` gives what ``scipy.signal.find_peaks(y, prominence=p)`` gives (indices
and prominences), and :func:`peak_widths_at` what ``scipy.signal.peak_widths(y, peaks,
rel_height)[0]`` gives, with the same definitions (tests/test_peak_find.py compares them on
random curves, plateaus and edges).  They are here because importing ``scipy.signal`` imports
``scipy.stats`` and costs ~0.8 s (``python -X importtime``), paid by every process that meets a
broadened line (:mod:`ingest.processing.widths`): the first such spectrum of a ``flowcell
ingest`` run, or of each batch worker.

Definitions (scipy's):

* a local maximum is a sample, or the middle sample (rounded down) of a run of equal samples,
  with a strictly lower neighbour on each side (the first and last samples never are);
* its prominence is its height above the higher of the two lowest points reached walking left
  and right until a strictly higher sample or the end; those lowest points (the one nearest the
  peak among equal ones) are its bases;
* its width at ``rel_height`` is measured at ``y[peak] - rel_height * prominence``: the
  distance between where the curve, walked out from the peak no farther than the bases, first
  comes down to that height on each side (linear interpolation between samples).
"""

from __future__ import annotations

import numpy as np

__all__ = ["local_maxima", "peak_widths_at", "prominences", "prominent_peaks"]


def local_maxima(y: np.ndarray) -> np.ndarray:
    """Indices of the local maxima of ``y`` (1D), plateaus at their middle (rounded down)."""
    y = np.asarray(y, dtype=float)
    n = y.size
    if n < 3:
        return np.empty(0, dtype=np.intp)
    starts = np.concatenate(([0], np.flatnonzero(y[1:] != y[:-1]) + 1))
    ends = np.concatenate((starts[1:] - 1, [n - 1]))
    v = y[starts]
    j = np.flatnonzero((v[1:-1] > v[:-2]) & (v[1:-1] > v[2:])) + 1  # interior runs above both neighbours
    return (starts[j] + ends[j]) // 2


def prominences(y: np.ndarray, peaks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prominences, left bases, right bases) of ``peaks`` in ``y`` (no window length)."""
    y = np.asarray(y, dtype=float)
    peaks = np.asarray(peaks, dtype=np.intp)
    prom = np.empty(peaks.size)
    left = np.empty(peaks.size, dtype=np.intp)
    right = np.empty(peaks.size, dtype=np.intp)
    for k, p in enumerate(peaks):
        h = y[p]
        higher = np.flatnonzero(y[:p] > h)
        lo = higher[-1] + 1 if higher.size else 0
        seg = y[lo:p + 1]
        lb = lo + seg.size - 1 - int(np.argmin(seg[::-1]))   # the lowest point nearest the peak
        higher = np.flatnonzero(y[p + 1:] > h)
        hi = p + higher[0] if higher.size else y.size - 1
        seg = y[p:hi + 1]
        rb = p + int(np.argmin(seg))
        left[k], right[k] = lb, rb
        prom[k] = h - max(y[lb], y[rb])
    return prom, left, right


def prominent_peaks(y: np.ndarray, prominence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Local maxima of ``y`` with a prominence of at least ``prominence``: (indices, prominences,
    left bases, right bases), as ``scipy.signal.find_peaks(y, prominence=prominence)``.

    Only maxima at least ``prominence`` above the curve's minimum can qualify; the others are
    left out before their prominences are computed (the same result, fewer walks in noise).
    """
    y = np.asarray(y, dtype=float)
    pk = local_maxima(y)
    if pk.size:
        pk = pk[y[pk] - y.min() >= prominence]
    prom, left, right = prominences(y, pk)
    keep = prom >= prominence
    return pk[keep], prom[keep], left[keep], right[keep]


def peak_widths_at(y: np.ndarray, peaks: np.ndarray, prom: np.ndarray, left: np.ndarray, right: np.ndarray,
                   rel_height: float = 0.5) -> np.ndarray:
    """Widths (samples) of ``peaks`` at ``rel_height`` of their prominences ``prom`` (bases
    ``left``, ``right`` from :func:`prominences`), as ``scipy.signal.peak_widths(...)[0]``."""
    y = np.asarray(y, dtype=float)
    out = np.empty(len(peaks))
    for k, p in enumerate(np.asarray(peaks, dtype=np.intp)):
        height = y[p] - prom[k] * rel_height
        lb, rb = int(left[k]), int(right[k])
        # walk left from the peak while above the height, no farther than the left base
        below = np.flatnonzero(y[lb + 1:p + 1] <= height)
        i = lb + 1 + below[-1] if below.size else lb
        left_ip = float(i)
        if y[i] < height:
            left_ip += (height - y[i]) / (y[i + 1] - y[i])
        below = np.flatnonzero(y[p:rb] <= height)
        i = p + below[0] if below.size else rb
        right_ip = float(i)
        if y[i] < height:
            right_ip -= (height - y[i]) / (y[i - 1] - y[i])
        out[k] = right_ip - left_ip
    return out
