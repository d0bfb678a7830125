"""Half-height crossings of a peak: one walk, shared by every width estimate.

Used by the EPR line locator (:func:`ingest.processing.epr_line.locate_line`),
the NMR peak fit's starting guess (:mod:`ingest.processing.peaks`) and the
spectral width check of :func:`kinetics.exchange.fwhm_from_spectrum`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["half_height_bounds"]


def half_height_bounds(y: np.ndarray, i: int, half: float | None = None) -> tuple[int, int]:
    """Walk out from a peak's top to the first samples at or below half height.

    Parameters
    ----------
    y : numpy.ndarray
        Peak signal on its sample grid (any units; the peak must be positive).
    i : int
        Index of the peak's top.
    half : float, optional
        The level to walk down to (same units as ``y``); default ``y[i] / 2``.

    Returns
    -------
    tuple of int
        ``(lo, hi)``: the indices of the first samples at or below ``half`` on
        either side of ``i``, or the ends of the array when the signal never
        falls that far (the caller checks ``y[lo] > half`` for that case).
    """
    level = y[i] / 2 if half is None else half
    n = len(y)
    if not isinstance(y, np.ndarray) or y.ndim != 1 or n < 2 * _CHUNK:
        return _walk(y, i, level)
    # the same walk in chunks of points compared at once (a narrow line's crossing lies in the
    # first chunk): the first sample not above ``level`` (NaN stops it, as ``>`` is False)
    lo = i
    while lo > 0:
        a = max(1, lo - _CHUNK + 1)
        above = y[a:lo + 1][::-1] > level  # y[lo], y[lo-1], ..., y[a]
        j = int(above.argmin())
        if not above[j]:
            lo -= j
            break
        lo = a - 1
    hi = i
    while hi < n - 1:
        b = min(n - 1, hi + _CHUNK)
        above = y[hi:b] > level  # y[hi], ..., y[b-1]
        j = int(above.argmin())
        if not above[j]:
            hi += j
            break
        hi = b
    return lo, hi


#: Points compared at once by :func:`half_height_bounds` (the Python walk below twice this).
_CHUNK = 64


def _walk(y, i: int, level) -> tuple[int, int]:
    """The point-by-point walk of :func:`half_height_bounds` (short or non-array signals)."""
    lo = i
    while lo > 0 and y[lo] > level:
        lo -= 1
    hi = i
    while hi < len(y) - 1 and y[hi] > level:
        hi += 1
    return lo, hi
