"""Where a window's line fit starts: its points, its edge baseline, its highest point.

The steps of :func:`ingest.processing.peaks.fit_peak` before the fit itself, on every window
of every live spectrum: :func:`index_window` (the window's index range on a decreasing axis,
by bisection), ``_edge_baseline`` (a straight line through the medians of the window's two
end strips), the highest point of the spectrum minus that line and its half-height crossings
(``_guess``: the starting centre, FWHM and height).  With numba (the optional ``fast`` extra)
the live path does the last three in one compiled pass,
:func:`ingest.processing.lorentz_nb.window_start`, the same numbers
(tests/test_row_speedups.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ingest.processing import lorentz_nb
from ingest.processing.halfwidth import half_height_bounds

__all__ = ["index_window", "top_ppm"]


def index_window(ppm: np.ndarray, window_ppm: Sequence[float]) -> tuple[int, int]:
    """The index range ``[i0, i1)`` of a *decreasing* axis inside a window, by bisection.

    The same points as the mask ``lo <= ppm <= hi`` (processed spectra are stored with
    the ppm axis decreasing, :mod:`ingest.processing.nmr`), in O(log n).

    Parameters
    ----------
    ppm : ndarray, shape (n,)
        Strictly decreasing axis, ppm.
    window_ppm : (float, float)
        Either order, ppm.

    Returns
    -------
    (int, int)
    """
    lo, hi = _low_high(window_ppm)
    rev = ppm[::-1]  # increasing (a view); rev[n-1-j] = ppm[j]
    n = ppm.size
    i0 = n - int(rev.searchsorted(hi, side="right"))
    i1 = n - int(rev.searchsorted(lo, side="left"))
    return i0, max(i0, i1)


def _low_high(window_ppm: Sequence[float]) -> tuple[float, float]:
    """``sorted(float(w) for w in window_ppm)`` of a 2-element window (the same order, NaN
    included), as a tuple."""
    a, b = window_ppm
    a, b = float(a), float(b)
    return (b, a) if b < a else (a, b)


def _median(a: np.ndarray) -> float:
    """``np.median`` of a short 1D array, without its wrappers (the same value; ~5x faster on
    the 50-point strips of :func:`_edge_baseline`, four per fitted window and spectrum)."""
    n = a.size
    k = n // 2
    if n == 0:
        return float("nan")
    if n % 2:
        v = float(np.partition(a, k)[k])
    else:
        p = np.partition(a, (k - 1, k))
        v = float((p[k - 1] + p[k]) / 2.0)
    return v if math.isfinite(v) else float(np.median(a))


def _edge_baseline(x: np.ndarray, y: np.ndarray, frac: float = 0.05, monotonic: bool = False
                   ) -> tuple[float, float]:
    """Line through the medians of the first and last ``frac`` of a window: (slope, intercept).

    ``monotonic``: ``x`` is known sorted (either way; the live path's cut of the decreasing
    axis): the medians of its strips are their middle points, the same values as sorting."""
    k = max(2, int(len(x) * frac))
    if monotonic:
        x1, x2 = _middle(x[:k]), _middle(x[-k:])
    else:
        x1, x2 = _median(x[:k]), _median(x[-k:])
    y1, y2 = _median(y[:k]), _median(y[-k:])
    slope = (y2 - y1) / (x2 - x1) if x2 != x1 else 0.0
    return float(slope), float(y1 - slope * x1)


def _middle(a: np.ndarray) -> float:
    """:func:`_median` of a sorted (either way) finite strip: its middle point(s), no partition."""
    n = a.size
    k = n // 2
    if n % 2:
        return float(a[k])
    lo, hi = (a[k - 1], a[k]) if a[k - 1] <= a[k] else (a[k], a[k - 1])
    return float((lo + hi) / 2.0)


def _guess(x: np.ndarray, y: np.ndarray, i: int | None = None) -> tuple[float, float, float]:
    """(center, fwhm, height) guesses from the maximum (index ``i``, ``argmax(y)`` when None)
    and its half-height crossings (x in ppm)."""
    if i is None:
        i = int(np.argmax(y))
    h = float(y[i])
    return _guess_at(x, i, h, *half_height_bounds(y, i, h / 2.0))


def _guess_at(x: np.ndarray, i: int, h: float, left: int, right: int) -> tuple[float, float, float]:
    """:func:`_guess` from the maximum's index ``i``, height ``h`` and half-height crossings."""
    fwhm = abs(x[right] - x[left])
    if fwhm == 0:
        fwhm = 3 * abs(x[1] - x[0])
    return float(x[i]), float(fwhm), h


def _compiled_start(x: np.ndarray, y: np.ndarray) -> tuple | None:
    """(slope, intercept, index and height of the maximum, half-height crossings) of a window
    by the compiled :func:`ingest.processing.lorentz_nb.window_start`: the values of
    :func:`_edge_baseline`, the maximum of the spectrum minus that line and
    :func:`_guess`'s crossings; None without numba or with a non-finite point."""
    k = lorentz_nb.load_kernels()
    # the array type the kernel was compiled for (warm-up): another would compile on the live path
    if k is None or not (x.flags.c_contiguous and y.flags.c_contiguous and x.flags.writeable
                         and y.flags.writeable and x.dtype == y.dtype == np.float64):
        return None
    ok, s, c0, top, h, lo, hi = k.window_start(x, y, max(2, int(len(x) * 0.05)))
    return (s, c0, top, h, lo, hi) if ok else None


def top_ppm(x: np.ndarray, y: np.ndarray, i0: int, i1: int) -> float:
    """:func:`ingest.processing.nmr.find_peak_ppm` on the points ``i0:i1`` (its window's, cut by
    :func:`index_window`): the highest point refined by a 3-point parabola, the same
    arithmetic without the mask (the window offset of every live spectrum).

    Parameters
    ----------
    x, y : ndarray, shape (n,)
        Axis (ppm) and spectrum.
    i0, i1 : int
        The window's index range.

    Returns
    -------
    float
        ppm; NaN when the range holds fewer than 3 points.
    """
    if i1 - i0 < 3:
        return float("nan")
    i = i0 + int(y[i0:i1].argmax())
    if i <= 0 or i >= y.size - 1:
        return float(x[i])
    a, b, c = y[i - 1], y[i], y[i + 1]
    den = a - 2 * b + c
    d = float(0.5 * (a - c) / den if den != 0 else 0.0)
    d = d if math.isnan(d) else min(max(d, -0.5), 0.5)  # np.clip's value
    return float(x[i] + d * (x[i + 1] - x[i - 1]) / 2.0)
