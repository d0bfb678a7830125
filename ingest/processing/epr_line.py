"""Find the radical's line in a CW EPR field sweep: centre, g and peak-to-peak width.

:func:`locate_line` needs no window from the user: it integrates the baseline-corrected
first-derivative spectrum once (the absorption, where noise averages out and the line
is a single hump), takes the strongest hump, and measures the derivative extremes
only within ±1.5 FWHM of it, so other lines, a drifting baseline or noise spikes far
from the radical do not move the result (docs/physics.md §1.5: g = h ν / (μ_B B_res),
B_res the zero crossing between the derivative extremes; ΔB_pp between them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import constants as _c
from scipy.integrate import cumulative_trapezoid

from ingest.processing.halfwidth import half_height_bounds

__all__ = ["LineLocation", "locate_line"]

_H_OVER_MUB = _c.h / _c.physical_constants["Bohr magneton"][0]


@dataclass
class LineLocation:
    """Result of :func:`locate_line`.

    Attributes
    ----------
    center_T : float
        Zero crossing of the derivative between its extremes, T.
    dBpp_T : float
        Peak-to-peak width, T.
    g : float
        ``h ν / (μ_B B_res)``; NaN without a frequency.
    snr : float
        Half the peak-to-peak amplitude over the rms noise of the sweep's outer regions.
    window_T : tuple of float
        Field range searched for the extremes, T.
    inverted : bool
        The absorption is negative (phase inverted by 180°).
    warnings : list of str
    """

    center_T: float
    dBpp_T: float
    g: float
    snr: float
    window_T: tuple[float, float]
    inverted: bool = False
    warnings: list[str] = field(default_factory=list)


def _detrend(x: np.ndarray, y: np.ndarray, outer: np.ndarray) -> np.ndarray:
    coef = np.polyfit(x[outer] - x.mean(), y[outer], 1)
    return y - np.polyval(coef, x - x.mean())


def _vertex(x: np.ndarray, y: np.ndarray, i: int) -> float:
    """Parabolic refinement of an extremum at index ``i``."""
    if 0 < i < len(x) - 1:
        x3, y3 = x[i - 1: i + 2], y[i - 1: i + 2]
        a = np.polyfit(x3 - x3[1], y3, 2)
        if a[0] != 0:
            dx = -a[1] / (2 * a[0])
            if abs(dx) <= abs(x3[2] - x3[0]) / 2:
                return float(x3[1] + dx)
    return float(x[i])


def locate_line(field_T, y, mw_freq_hz: float | None = None, *, baseline_fraction: float = 0.1,
                min_snr: float = 3.0) -> LineLocation:
    """Locate the strongest line of a first-derivative field sweep.

    Parameters
    ----------
    field_T : array_like
        Field, T (either order).
    y : array_like
        First-derivative signal, a.u.
    mw_freq_hz : float, optional
        Microwave frequency, Hz (for ``g``).
    baseline_fraction : float
        Outer fraction of the sweep width (each side) taken as line-free: it sets the
        linear baselines of the derivative and of the absorption, and the noise.
    min_snr : float
        Below this signal-to-noise ratio the result carries a warning (no clear line).

    Returns
    -------
    LineLocation
    """
    x = np.asarray(field_T, float)
    d = np.asarray(y, float)
    if x.ndim != 1 or d.shape != x.shape or x.size < 8:
        raise ValueError("locate_line: need 1D field and signal of equal length (>= 8 points)")
    if x[0] > x[-1]:
        x, d = x[::-1], d[::-1]
    width = x[-1] - x[0]
    outer = (x <= x[0] + baseline_fraction * width) | (x >= x[-1] - baseline_fraction * width)
    if outer.sum() < 4:
        outer[:2] = outer[-2:] = True
    d = _detrend(x, d, outer)
    absorption = _detrend(x, cumulative_trapezoid(d, x, initial=0.0), outer)
    i0 = int(np.argmax(np.abs(absorption)))
    sign = 1.0 if absorption[i0] >= 0 else -1.0
    a = sign * absorption
    lo, hi = half_height_bounds(a, i0)
    fwhm = max(x[hi] - x[lo], 2 * (x[1] - x[0]))
    w0, w1 = x[i0] - 1.5 * fwhm, x[i0] + 1.5 * fwhm
    inside = np.nonzero((x >= w0) & (x <= w1))[0]
    s = sign * d[inside]
    i_max = int(inside[np.argmax(s)])
    i_min = int(inside[np.argmin(s)])
    warnings: list[str] = []
    if sign < 0:
        warnings.append("the absorption is negative: phase inverted by 180°?")
    if i_max > i_min:  # the low-field extreme must be the maximum of an absorption derivative
        warnings.append("derivative extremes in reverse order: not a single absorption line")
        i_max, i_min = i_min, i_max
    b_max, b_min = _vertex(x, sign * d, i_max), _vertex(x, -sign * d, i_min)
    seg = slice(i_max, i_min + 1)
    xs, ds = x[seg], sign * d[seg]
    cross = np.nonzero((ds[:-1] > 0) & (ds[1:] <= 0))[0]
    if cross.size:
        k = cross[np.argmin(np.abs(cross - (len(xs) // 2)))]
        centre = float(xs[k] + ds[k] * (xs[k + 1] - xs[k]) / (ds[k] - ds[k + 1]))
    else:
        centre = 0.5 * (b_max + b_min)
    noise = float(np.std(d[outer & ~((x >= w0) & (x <= w1))])) if (outer & ~((x >= w0) & (x <= w1))).sum() > 3 \
        else float(np.std(d[outer]))
    amp = 0.5 * (sign * d[i_max] - sign * d[i_min])
    snr = float(amp / noise) if noise > 0 else float("inf")
    if snr < min_snr:
        warnings.append(f"no clear line: signal-to-noise {snr:.1f} < {min_snr:g}")
    if w0 < x[0] or w1 > x[-1]:
        warnings.append("the line reaches the sweep edge: centre and width may be biased")
    g = _H_OVER_MUB * mw_freq_hz / centre if mw_freq_hz and centre > 0 else float("nan")
    return LineLocation(center_T=centre, dBpp_T=abs(b_min - b_max), g=float(g), snr=snr,
                        window_T=(float(max(w0, x[0])), float(min(w1, x[-1]))), inverted=sign < 0,
                        warnings=warnings)
