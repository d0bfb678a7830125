"""Exact median of a large array by selection on a bracketed subset (the robust noise estimate).

:func:`median_inplace` returns the value ``np.median`` returns (a NaN-free float array), found
on about half a percent of the points: a strided sample's value ``v`` near the median and one
counting pass give ``v``'s exact rank; the sample's local density of values places the median
from there, and a narrow bracket around that place is checked by counting the points below
and inside it; the points inside are gathered and the wanted rank selected among them.  That
is exact, not an estimate: the ``r``-th smallest of the array is the ``(r - below)``-th
smallest of the bracketed points whenever the counts show the rank inside the bracket;
otherwise (a sample that missed: a periodic array, values on a grid) the whole array is
partitioned, as before.  On 131,072-point spectra :func:`ingest.processing.nmr_baseline.noise_sigma`
(two medians, once per live spectrum) went from 1.2-1.3 to 1.0 ms
(benchmarks/bench_baseline_noise.py).  The scratch arrays (:func:`scratch`) stay allocated per
thread (~1.3 MB at that size).
"""

from __future__ import annotations

import math
import threading

import numpy as np

__all__ = ["median_inplace", "scratch"]

#: Below this many points the whole array is partitioned (the bracket does not pay).
MIN_BRACKET = 32768
#: Points of the strided sample that locates the median.
SAMPLE = 4096
#: Sample ranks either side of the median's that measure the local density of values.
SAMPLE_SPAN = 128
#: Relative error of that density (``1 / sqrt(SAMPLE_SPAN)``, rounded up).
DENSITY_ERR = 0.1
#: Half-width of the bracket in those errors, and points added to it (on the captured live
#: and real series: the bracket held every time, with ~0.5 % of the points inside).
BRACKET_SD, PAD = 4.0, 128

_local = threading.local()


def scratch(name: str, n: int, dtype: type | np.dtype = float) -> np.ndarray:
    """A per-thread scratch array of ``n`` elements, kept between calls (no allocation and no
    page faults once warm); its content is undefined.  ``name`` tells the users apart."""
    key = (name, np.dtype(dtype).char)
    buf = getattr(_local, "bufs", None)
    if buf is None:
        buf = _local.bufs = {}
    a = buf.get(key)
    if a is None or a.size < n:
        a = buf[key] = np.empty(max(n, 1), dtype=dtype)
    return a[:n]


def _partition_median(a: np.ndarray) -> float:
    """``np.median(a)`` by partitioning all of ``a`` in place."""
    n = a.size
    k = n // 2
    a.partition(k)
    if n % 2:
        return float(a[k])
    return float((a[:k].max() + a[k]) / 2.0)


def median_inplace(a: np.ndarray) -> float:
    """``np.median(a)`` of a 1D float array without NaN (the same value; it may reorder ``a``).

    Parameters
    ----------
    a : ndarray of float, shape (n,)
        Contiguous scratch array, no NaN (not checked; +-inf allowed).

    Returns
    -------
    float
        The median (mean of the two middle values for an even size).
    """
    n = a.size
    if n < MIN_BRACKET:
        return _partition_median(a)
    k = n // 2
    r0, r1 = (k - 1, k) if n % 2 == 0 else (k, k)  # the ranks wanted
    lo, hi = _bracket(a, r1)
    if not lo <= hi:
        return _partition_median(a)
    below_lo = np.less(a, lo, out=scratch("median.lt", n, bool))
    inside = np.less_equal(a, hi, out=scratch("median.le", n, bool))
    below = int(np.count_nonzero(below_lo))
    np.not_equal(inside, below_lo, out=inside)  # lo <= a <= hi (a < lo implies a <= hi)
    n_in = int(np.count_nonzero(inside))
    if not (below <= r0 and r1 < below + n_in):  # the bracket missed: every point
        return _partition_median(a)
    sub = np.compress(inside, a)  # (2x faster than a[inside])
    j = r1 - below
    sub.partition(j)  # one rank (two ranks partition ~4x slower); rank r0 = r1 - 1: max below it
    if n % 2:
        return float(sub[j])
    return float((sub[:j].max() + sub[j]) / 2.0)


def _bracket(a: np.ndarray, rank: int) -> tuple[float, float]:
    """Values ``lo <= hi`` that most likely enclose the ``rank``-th smallest of ``a`` with a
    few tenths of a percent of the points between them (the caller checks by counting).

    The strided sample's value ``v`` at that rank and its local density (points per unit,
    from the sample values ``SAMPLE_SPAN`` ranks either side) place the wanted value at
    ``v + (rank - #(a < v)) / density``; the bracket is that, widened by ``BRACKET_SD`` times
    the error of the density (a fraction of the distance) plus ``PAD`` points.
    """
    n = a.size
    s = a[::n // SAMPLE].copy()
    ns = s.size
    r = min(ns - 1 - SAMPLE_SPAN, max(SAMPLE_SPAN, (rank * ns) // n))
    s.partition(r)
    v = s[r]
    below_v = np.less(a, v, out=scratch("median.lt", n, bool))
    off = rank - int(np.count_nonzero(below_v))  # points from v to the wanted rank (exact)
    s_lo = np.partition(s[:r], r - SAMPLE_SPAN)[r - SAMPLE_SPAN]
    s_hi = np.partition(s[r + 1:], SAMPLE_SPAN - 1)[SAMPLE_SPAN - 1]
    width = s_hi - s_lo  # value span of 2 SAMPLE_SPAN sample points: 2 SAMPLE_SPAN n / ns points
    if not (width > 0 and math.isfinite(width)):
        return v, v
    per_point = width * ns / (2 * SAMPLE_SPAN * n)
    centre = v + off * per_point
    half = (BRACKET_SD * DENSITY_ERR * abs(off) + PAD) * per_point
    return centre - half, centre + half


