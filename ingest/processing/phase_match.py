"""The operator's phase, recovered from the vendor's own processed spectrum.

When a Bruker data set carries TopSpin's processed real spectrum
(``pdata/1/1r``), the operator has already phased it.  Automatic phasing
(:func:`ingest.processing.nmr.autophase`) cannot always find that phase:
on the presaturated H2O spectra of ``shared/data/nmr/bruker-array`` the
spectrum holds genuinely negative lines and a distorted solvent line, TopSpin's
phase has a first-order part of 90.8 degrees, and ACME with ``p1 = 0`` gave
correlations of 0.90-0.99 with ``1r``, with a free ``p1`` 0.59-0.91.

:func:`match_vendor_phase` finds the zero- and first-order phase
(:func:`ingest.processing.nmr.phase` convention) for which the real part of
our complex spectrum best reproduces the vendor's real spectrum, by linear
least squares in ``p0`` (and the scale) on a grid of ``p1`` refined by a
scalar minimisation.  The two axes are aligned first by cross-correlating the
magnitudes (TopSpin's axis carries the operator's ``SR`` referencing, ours
does not; docs/physics.md §1.3 explains why the water line must not be
self-referenced).  Only the two phase numbers are taken from the vendor: the
Fourier transform, digital filter, apodization and baseline stay ours.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, optimize

__all__ = ["align_offset_ppm", "match_vendor_phase"]


def _on_grid(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """np.interp for axes of either direction (ppm axes decrease)."""
    if xp[0] > xp[-1]:
        xp, fp = xp[::-1], fp[::-1]
    return np.interp(x, xp, fp, left=0.0, right=0.0)


def align_offset_ppm(ppm: np.ndarray, mag: np.ndarray, ref_ppm: np.ndarray, ref: np.ndarray) -> float:
    """Offset ``d`` (ppm) such that the line at ``ppm`` sits at ``ppm + d`` on the reference axis.

    Cross-correlation of ``|mag|`` with ``|ref|`` (resampled onto ``ppm``),
    integer lag from the FFT, sub-point from a parabola through the maximum.
    """
    ppm = np.asarray(ppm, float)
    step = float(ppm[0] - ppm[1])
    r = np.abs(_on_grid(ppm, np.asarray(ref_ppm, float), np.asarray(ref, float)))
    a = np.abs(np.asarray(mag, float))
    a, r = a - a.mean(), r - r.mean()
    n = a.size
    m = 1 << math.ceil(math.log2(2 * n))
    xc = np.fft.irfft(np.fft.rfft(r, m) * np.conj(np.fft.rfft(a, m)), m)
    lag = int(np.argmax(xc))
    frac = 0.0
    y0, y1, y2 = xc[(lag - 1) % m], xc[lag], xc[(lag + 1) % m]
    den = y0 - 2 * y1 + y2
    if den < 0:
        frac = 0.5 * (y0 - y2) / den
    if lag > m // 2:
        lag -= m
    # r[j] ~ a[j - lag]: the line at index i of ``a`` appears at index i + lag of ``r``,
    # i.e. at ppm[i] - (lag + frac) * step on the reference axis.
    return -(lag + frac) * step


def match_vendor_phase(spec: np.ndarray, ppm: np.ndarray, ref_ppm: np.ndarray, ref: np.ndarray,
                       *, p1_range_deg: float = 360.0) -> tuple[float, float, float]:
    """Phase ``(p0, p1)`` (degrees) making ``Re(phase(spec))`` best match ``ref``.

    Parameters
    ----------
    spec : ndarray of complex, shape (n,)
        Unphased spectrum in vendor order (:func:`ingest.processing.nmr.fft`).
    ppm : ndarray, shape (n,)
        Its axis, ppm.
    ref_ppm, ref : ndarray
        The vendor's processed real spectrum and its axis (ppm; may carry a
        different referencing: aligned by :func:`align_offset_ppm`).
    p1_range_deg : float
        ``p1`` is searched in ``[-p1_range_deg, +p1_range_deg]``.

    Returns
    -------
    (p0_deg, p1_deg, corr) : tuple of float
        ``p0`` wrapped to [-180, 180); ``corr`` is the correlation of the
        phased real part with ``ref`` on the vendor's axis (1 = identical up
        to scale).
    """
    spec = np.asarray(spec, dtype=complex)
    ppm = np.asarray(ppm, float)
    ref_ppm = np.asarray(ref_ppm, float)
    ref = np.asarray(ref, float)
    n = spec.size
    off = align_offset_ppm(ppm, np.abs(spec), ref_ppm, ref)
    pos = np.arange(n) / n
    # vendor values on our (shifted) grid
    v = _on_grid(ppm + off, ref_ppm, ref)
    keep = (ppm + off <= max(ref_ppm[0], ref_ppm[-1])) & (ppm + off >= min(ref_ppm[0], ref_ppm[-1]))
    # Only the points near lines constrain the phase (speed: ~10x fewer points).
    mag = np.abs(spec)
    near = ndimage.maximum_filter1d((mag > 0.005 * mag.max()).astype(np.uint8), max(3, n // 1000)).astype(bool)
    keep &= near
    s, v, pos = spec[keep], v[keep], pos[keep]
    vv = float(np.sum(v * v))
    power = float(np.sum(s.real**2 + s.imag**2))
    w1, w2 = v * s, s * s

    def sums(p1: np.ndarray) -> tuple[np.ndarray, ...]:
        # With u = s exp(i p1 pos), a = Re u, b = -Im u: the five products of the 2x2 normal
        # equations of v ~ c0 a + c1 b follow from S1 = sum(v u) and S2 = sum(u^2).  Element-wise
        # sums, not BLAS dots: OpenBLAS threads on a busy 2-core machine made each 16k-point dot
        # cost ~10 ms (measured), i.e. seconds per spectrum for the grid below.
        th = np.deg2rad(np.atleast_1d(p1))[:, None] * pos[None, :]
        e = np.exp(1j * th)
        s1 = np.sum(w1 * e, axis=1)
        s2 = np.sum(w2 * (e * e), axis=1)
        aa, bb, ab = 0.5 * (power + s2.real), 0.5 * (power - s2.real), -0.5 * s2.imag
        return aa, ab, bb, s1.real, -s1.imag

    def solve(p1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        aa, ab, bb, av, bv = sums(p1)
        det = aa * bb - ab * ab
        ok = det > 0
        det = np.where(ok, det, 1.0)
        c0, c1 = (bb * av - ab * bv) / det, (aa * bv - ab * av) / det
        resid = np.where(ok, vv - c0 * av - c1 * bv, np.inf)
        return resid, np.where(ok, np.rad2deg(np.arctan2(c1, c0)), 0.0)

    def fit(p1: float) -> tuple[float, float]:
        resid, p0 = solve(np.array([p1]))
        return float(resid[0]), float(p0[0])

    grid = np.arange(-p1_range_deg, p1_range_deg + 1e-9, 3.0)
    costs = np.concatenate([solve(chunk)[0] for chunk in np.array_split(grid, max(1, grid.size // 16))])
    g0 = float(grid[int(np.argmin(costs))])
    res = optimize.minimize_scalar(lambda p: fit(p)[0], bounds=(g0 - 3.0, g0 + 3.0), method="bounded",
                                   options={"xatol": 1e-3})
    p1 = float(res.x)
    p0 = fit(p1)[1]
    y = (s * np.exp(1j * np.deg2rad(p0 + p1 * pos))).real
    corr = float(np.corrcoef(y, v)[0, 1]) if np.std(v) > 0 and np.std(y) > 0 else float("nan")
    return (p0 + 180.0) % 360.0 - 180.0, p1, corr
