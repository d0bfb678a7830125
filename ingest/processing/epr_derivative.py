"""The first-derivative CW EPR sweep itself: field order, baseline, peak-to-peak (docs/physics.md §1.5).

Building blocks of :mod:`ingest.processing.epr` (which re-exports them) and of the
Lorentzian fit (:mod:`ingest.processing.epr_lorentzian`).  Field in T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["baseline_correct", "PeakToPeak", "peak_to_peak"]


def _sorted(field_T: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(field_T, float)
    yy = np.asarray(y, float)
    if x.ndim != 1 or yy.shape != x.shape:
        raise ValueError(f"field ({x.shape}) and intensity ({yy.shape}) must be 1D of equal length")
    if x.size < 5:
        raise ValueError("need at least 5 points")
    if x[0] > x[-1]:
        x, yy = x[::-1], yy[::-1]
    return x, yy


def _outer_mask(x: np.ndarray, fraction: float) -> np.ndarray:
    if not 0.0 < fraction < 0.5:
        raise ValueError(f"baseline fraction {fraction} must be in (0, 0.5)")
    lo, hi = x[0], x[-1]
    w = (hi - lo) * fraction
    mask = (x <= lo + w) | (x >= hi - w)
    if mask.sum() < 4:  # very coarse sweeps: take at least two points per side
        mask[:2] = True
        mask[-2:] = True
    return mask


def baseline_correct(
    field_T: np.ndarray, y: np.ndarray, *, fraction: float = 0.1, order: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Subtract a polynomial fitted to the outer parts of the sweep (docs/physics.md §1.5).

    Parameters
    ----------
    field_T : ndarray, shape (n,)
        Field axis, T (any monotonic order).
    y : ndarray, shape (n,)
        Signal, a.u.
    fraction : float
        Fraction of the sweep WIDTH used on each side (0.1 = the lowest and
        highest 10 % of the field range).
    order : int
        Polynomial degree (0 = offset, 1 = linear, ...).

    Returns
    -------
    corrected, baseline : ndarray, shape (n,)
        In the order of the input.
    """
    x = np.asarray(field_T, float)
    yy = np.asarray(y, float)
    xs, ys = _sorted(x, yy)
    mask = _outer_mask(xs, fraction)
    poly = np.polynomial.Polynomial.fit(xs[mask], ys[mask], order)
    base = poly(x)
    return yy - base, base


@dataclass(frozen=True)
class PeakToPeak:
    """Peak-to-peak features of a first-derivative line.

    Attributes
    ----------
    width_T : float
        ΔB_pp, T (distance between the maximum and the minimum).
    amplitude : float
        Maximum minus minimum, a.u.
    low_T, high_T : float
        Fields of the low-field and high-field extremes, T.
    center_T : float
        Zero crossing between the two extremes, T (linear interpolation).
    """

    width_T: float
    amplitude: float
    low_T: float
    high_T: float
    center_T: float


def _refine(x: np.ndarray, y: np.ndarray, i: int) -> float:
    """Parabolic refinement of an extremum at index i (evenly spaced or not)."""
    if i <= 0 or i >= x.size - 1:
        return float(x[i])
    x0, x1, x2 = x[i - 1], x[i], x[i + 1]
    y0, y1, y2 = y[i - 1], y[i], y[i + 1]
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    if den == 0:
        return float(x1)
    A = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
    B = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / den
    if A == 0:
        return float(x1)
    xv = -B / (2 * A)
    return float(xv) if x0 <= xv <= x2 else float(x1)


def peak_to_peak(field_T: np.ndarray, y: np.ndarray) -> PeakToPeak:
    """Peak-to-peak width, amplitude and zero crossing of a first-derivative line.

    Parameters
    ----------
    field_T : ndarray
        Field, T.
    y : ndarray
        First-derivative signal, a.u. (baseline-corrected for best results).

    Returns
    -------
    PeakToPeak
        Extremes refined by a 3-point parabola; the centre is the zero
        crossing between them closest to their midpoint.
    """
    x, yy = _sorted(field_T, y)
    imax, imin = int(np.argmax(yy)), int(np.argmin(yy))
    bmax, bmin = _refine(x, yy, imax), _refine(x, -yy, imin)
    lo_i, hi_i = sorted((imax, imin))
    seg_x, seg_y = x[lo_i:hi_i + 1], yy[lo_i:hi_i + 1]
    mid = 0.5 * (bmax + bmin)
    center = mid
    s = np.sign(seg_y)
    idx = np.nonzero(s[:-1] * s[1:] <= 0)[0]
    if idx.size:
        cands = []
        for k in idx:
            y0, y1 = seg_y[k], seg_y[k + 1]
            xc = seg_x[k] if y1 == y0 else seg_x[k] - y0 * (seg_x[k + 1] - seg_x[k]) / (y1 - y0)
            cands.append(xc)
        center = float(min(cands, key=lambda c: abs(c - mid)))
    return PeakToPeak(
        width_T=float(abs(bmin - bmax)),
        amplitude=float(yy[imax] - yy[imin]),
        low_T=float(min(bmax, bmin)),
        high_T=float(max(bmax, bmin)),
        center_T=center,
    )
