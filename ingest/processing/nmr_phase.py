"""NMR phase correction: applying a phase, and ACME automatic phasing.

Conventions as in :mod:`ingest.processing.nmr` (nmrglue's ``ps``: the spectrum is multiplied
by ``exp(1j * radians(p0 + p1 * j / n))``, pivot at index 0).  ACME: L. Chen, Z. Weng,
L. Goh, M. Garland, J. Magn. Reson. 158 (2002) 164-168.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import ndimage, optimize

__all__ = ["phase", "autophase"]


def phase(spec: np.ndarray, p0_deg: float, p1_deg: float = 0.0) -> np.ndarray:
    """Apply zero- and first-order phase (nmrglue convention, pivot at index 0).

    Parameters
    ----------
    spec : ndarray of complex, shape (n,)
    p0_deg, p1_deg : float
        Degrees; phase at index ``j`` is ``p0 + p1 * j / n``.

    Returns
    -------
    ndarray of complex
    """
    spec = np.asarray(spec)
    if p1_deg == 0:
        return spec * np.exp(1j * np.deg2rad(p0_deg))
    n = spec.shape[-1]
    ph = np.deg2rad(p0_deg + p1_deg * np.arange(n) / n)
    return spec * np.exp(1j * ph)


def _decimate(spec: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Block-sum a complex spectrum to at most ``max_points``; returns (values, fractional positions)."""
    n = spec.shape[-1]
    m = max(1, int(math.ceil(n / max_points)))
    nb = n // m
    blocks = spec[: nb * m].reshape(nb, m).sum(axis=1)
    pos = (np.arange(nb) * m + (m - 1) / 2.0) / n
    return blocks, pos


def _acme(re: np.ndarray, gamma: float) -> float:
    d = np.abs(re[2:] - re[:-2])
    s = d.sum()
    if s == 0:
        return 0.0
    h = d / s
    h = h[h > 0]
    entropy = -np.sum(h * np.log(h))
    neg = re[re < 0]
    return float(entropy + gamma * np.sum(neg * neg))


def autophase(
    spec: np.ndarray,
    *,
    p1: bool = False,
    max_points: int = 4096,
    region: tuple[int, int] | None = None,
    gamma: float = 1000.0,
    refine: bool = True,
) -> tuple[float, float]:
    """Automatic phase correction by ACME entropy minimisation (fast).

    The complex spectrum is block-summed to at most ``max_points`` points (a
    linear operation that commutes with a slowly varying phase, so the optimum
    is unchanged while each objective costs ~0.1 ms), normalised, and the ACME
    objective (entropy of |first derivative| of the real part + ``gamma`` x the
    sum of squared negative intensities, Chen et al. 2002) is minimised: a
    coarse grid in ``p0`` (10 degree steps), then Nelder-Mead on
    ``(p0, p1)``.  Typical cost 10-30 ms for a 64k spectrum (nmrglue's
    ``autops`` ~0.3 s); call it once per series and reuse the phase.

    Parameters
    ----------
    spec : ndarray of complex, shape (n,)
        Spectrum from :func:`fft` (vendor order).
    p1 : bool
        Also optimise the first-order phase (else ``p1 = 0``).  Off by
        default: once the digital filter is removed exactly, ``p1`` is small,
        and on real spectra dominated by a distorted solvent line (the
        presaturated H2O of ``shared/data/nmr/bruker-array``) a free ``p1``
        drives ACME to wrong minima (correlation with TopSpin's ``1r`` fell
        from 0.99 to 0.6-0.9), while ``p0`` alone gave 0.90-0.99.
    max_points : int
        Size of the decimated spectrum used for the search.
    region : (i0, i1) or None
        Index range to phase on (e.g. around the peaks of interest); the
        returned ``p1`` still refers to the full spectrum.
    gamma : float
        Weight of the negativity penalty.
    refine : bool
        Refine ``p0`` (when ``p1`` is not fitted) by making the complex sum
        over the peak regions real and positive (see code); the decimated
        ACME optimum alone scatters by ~2 degrees on sharp lines.

    Returns
    -------
    (p0_deg, p1_deg) : tuple of float
        p0 wrapped to [-180, 180).
    """
    spec = np.asarray(spec)
    n = spec.shape[-1]
    if region is not None:
        i0, i1 = sorted(int(i) for i in region)
        blocks, pos = _decimate(spec[i0:i1], max_points)
        pos = (pos * (i1 - i0) + i0) / n
    else:
        blocks, pos = _decimate(spec, max_points)
    scale = np.max(np.abs(blocks))
    if not np.isfinite(scale) or scale == 0:
        return (0.0, 0.0)
    blocks = blocks / scale

    def cost(x: np.ndarray) -> float:
        p0 = x[0]
        pp1 = x[1] if p1 else 0.0
        re = (blocks * np.exp(1j * np.deg2rad(p0 + pp1 * pos))).real
        return _acme(re, gamma)

    grid = np.arange(-180.0, 180.0, 10.0)
    costs = [cost(np.array([g, 0.0])) for g in grid]
    x0 = np.array([grid[int(np.argmin(costs))], 0.0])
    if p1:
        res = optimize.minimize(
            cost, x0, method="Nelder-Mead",
            options={"xatol": 0.01, "fatol": 1e-10, "maxiter": 2000, "initial_simplex": [x0, x0 + [10, 0], x0 + [0, 20]]},
        )
        p0, pp1 = float(res.x[0]), float(res.x[1])
    else:
        res = optimize.minimize_scalar(lambda a: cost(np.array([a, 0.0])), bracket=(x0[0] - 10, x0[0] + 10), tol=1e-8)
        p0, pp1 = float(res.x), 0.0
    if refine and not p1:
        p0 = _refine_p0(spec if region is None else spec[i0:i1], p0, lambda a: cost(np.array([a, 0.0])))
    p0 = (p0 + 180.0) % 360.0 - 180.0
    return (p0, pp1)


def _refine_p0(full: np.ndarray, p0: float, cost: Callable[[float], float]) -> float:
    """Refine a zero-order phase (degrees) from the complex sum over the peak regions.

    Over the peak regions (|S| above 2 % of the maximum, widened), the dispersion
    parts integrate to ~0, so the correct p0 makes sum(S) real and positive.  The
    refined value is accepted when it stays within 30 degrees of ``p0`` (the ACME
    optimum) and raises the ACME ``cost`` by < 2 % (distorted solvent lines, e.g.
    presaturation, fail this); otherwise ``p0`` is returned unchanged.
    """
    mag = np.abs(full)
    sig = mag > 0.02 * mag.max()
    sig = ndimage.maximum_filter1d(sig.astype(np.uint8), max(3, full.size // 500)).astype(bool)
    z = np.sum(full[sig])
    if abs(z) > 0:
        p0_int = float(-np.rad2deg(np.angle(z)))
        c_acme, c_int = cost(p0), cost(p0_int)
        if abs((p0_int - p0 + 180.0) % 360.0 - 180.0) < 30.0 and c_int <= c_acme + 0.02 * abs(c_acme):
            return p0_int
    return p0
