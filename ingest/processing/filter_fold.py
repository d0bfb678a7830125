"""The Bruker digital-filter delay folded into the zero-filled transform, corrected to the exact removal.

The per-spectrum path removes a filter delay of ``GD`` points (docs/physics.md §5.1) as a
circular shift over the acquired length ``td`` (an FFT pair,
:func:`ingest.processing.nmr.remove_digital_filter`), drops the last ``ceil(GD)`` points,
apodizes from the new first point and zero-fills to ``m``: the exact FID ``xe``.  The
*fold* skips the pair: it apodizes the FID as delayed (weights ``exp(-pi lb (k - GD) / sw)``,
zero before ``floor(GD)``), zero-fills it (``u``) and shifts by ``GD`` over ``m`` with a
linear phase of the zero-filled transform: ``S_m u``.  For a whole number of points the two
agree; for a fractional one they differ, mostly where the shifted signal starts (the exact
path cuts the band-limited FID at its first point, the fold samples it on a grid offset by
``GD - floor(GD)``), and the difference moves the integrals of empty windows by several
standard errors (8-12 at GD = 67.98, 64k points).

The difference is linear in the FID ``d``: ``S_m^-1 xe - u = G d``.  What moves the rows is a
short circular stretch of it (the ``2 ceil(GD) + 2`` points after the start and ``tail`` points
before it, wrapped to the end of the zero-filled array: with the exact ``G d`` there, the rows
of bench_ingest's series agree with the exact path's within 0.004 of each standard error), and
on that stretch ``G`` is, for inputs in the first ``head`` FID points, numerically of low rank
(19 at 1e-6 of the largest singular value for GD = 67.98, 64k points).
:func:`fold_correction` finds that operator by a randomized range finder (forward and adjoint
applications of ``G`` to 26 vectors, complex64 transforms: 0.3-0.6 s CPU at 64k points with
one BLAS thread, load 1-3.5; once per series and process, :func:`series_correction`), and
:meth:`FoldCorrection.correction` adds ``c = G d`` on the stretch with two small products per
batch (~0.1 ms per 64k-point spectrum).  The first point (its correction, docs/physics.md
§5.1) is the exact path's ``xe[0]``, a dot product with the shift's own kernel
(:attr:`FoldCorrection.first`).

What is left is measured on each series' first FID against the exact path before the fold is
trusted (:func:`check_fold`): near the spectrum's edges the exact shift carries content across
the Nyquist edge (noise-like, up to ~1.5 sigma per bin in the outermost bins), and away from a
whole number of points (GD 67.5, 72.125) ``G`` reads the whole FID (with ``head`` = 4096 the
stretch is off by ~10 noise sigma of the FID at GD 67.5) and the difference beyond the stretch
reaches ~1 sigma per bin: those series keep the exact removal.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft

from ingest.processing.zf_fft import vendor_real

__all__ = ["BLOCK", "BLOCK_MAX", "EDGE", "PEAK_MAX", "FoldCheck", "FoldCorrection", "check_fold", "fold_correction",
           "folded_real", "series_correction", "shift_kernel"]

#: Fraction of the bins at each end of the spectrum left out of the per-bin and block measures:
#: there the exact removal's circular shift carries the content across the Nyquist edge that no
#: short correction reproduces (a noise-like difference of ~0.5-1.5 sigma in the outermost bins,
#: < 0.05 sigma 1/64 of the width inside; the filter's own roll-off band).  Its effect on the
#: rest, through the baseline fitted on signal-free points that include the edges, is measured.
EDGE = 1 / 64
#: Largest single-bin difference of the corrected fold from the exact path inside the edges
#: (noise sigma units).
PEAK_MAX = 0.05
#: Bins per block of the smooth-offset measure (an integral window of ~0.2-0.5 ppm at 400 MHz
#: and 128k points spans 1000-4000 bins).
BLOCK = 2048
#: Largest |sum of the difference, less its baseline, over a block| / (sigma * sqrt(BLOCK)):
#: the shift of a block integral in units of its noise.
BLOCK_MAX = 0.1


def shift_kernel(t: np.ndarray, n: int) -> np.ndarray:
    """The circular fractional-shift kernel over ``n`` points: the weight of the sample at distance
    ``t`` (points) in the band-limited interpolation of :func:`ingest.processing.nmr.remove_digital_filter`
    (frequencies ``-n/2 .. n/2-1``): ``sin(pi t) exp(-i pi t / n) / (n sin(pi t / n))``, 1 at ``t = 0``."""
    t = np.asarray(t, dtype=np.float64)
    s = np.sin(np.pi * t / n)
    small = np.abs(s) < 1e-300
    out = np.sin(np.pi * t) * np.exp(-1j * np.pi * t / n) / (n * np.where(small, 1.0, s))
    return np.where(small, 1.0 + 0j, out)


@dataclass(frozen=True)
class FoldCorrection:
    """The correction of one series (see the module docstring).

    Attributes
    ----------
    index : ndarray of int, shape (q,)
        Positions in the zero-filled array (``0 .. m-1``) where ``c`` is added: the stretch after
        the start (below ``td``) and the stretch before it (wrapped, ``>= m - tail``).
    left : ndarray, shape (head, r), complex128
        ``coef = d[:head] @ left``.
    right : ndarray, shape (r, q), complex128
        ``c = coef @ right``.
    first : ndarray, shape (td,), complex128
        ``d @ first`` is the exact path's first point ``xe[0]``.
    """

    index: np.ndarray
    left: np.ndarray
    right: np.ndarray
    first: np.ndarray

    @property
    def head(self) -> int:
        """FID points the correction reads."""
        return int(self.left.shape[0])

    @property
    def rank(self) -> int:
        """Rank of the correction operator."""
        return int(self.left.shape[1])

    def correction(self, fids: np.ndarray) -> np.ndarray:
        """``c`` (b, q) for FIDs (b, td), in their precision."""
        dt = np.result_type(fids.dtype, np.complex64)
        return (fids[:, :self.head] @ self.left.astype(dt)) @ self.right.astype(dt)


class _Residual:
    """``G d = S_m^-1 xe(d) - u(d)`` on the stretch, and its adjoint (complex128, batched)."""

    def __init__(self, td: int, gd: float, m: int, alpha: float, index: np.ndarray,
                 dtype: type = np.complex128) -> None:
        self.td, self.m, self.index, self.dtype = td, m, index, np.dtype(dtype)
        nk = td - math.ceil(gd)
        self.a0 = np.exp(-alpha * np.arange(td))
        self.a0[nk:] = 0.0
        self.apod = np.exp(-alpha * (np.arange(td) - gd))
        self.apod[: math.floor(gd)] = 0.0
        self.lin = np.exp(2j * np.pi * gd * scipy.fft.fftfreq(m))
        self.lin_td = np.exp(2j * np.pi * gd * scipy.fft.fftfreq(td))
        real = np.float32 if self.dtype == np.complex64 else np.float64
        self.a0, self.apod = self.a0.astype(real), self.apod.astype(real)
        self.ilin, self.lin = (1 / self.lin).astype(self.dtype), self.lin.astype(self.dtype)
        self.clin_td, self.lin_td = np.conj(self.lin_td).astype(self.dtype), self.lin_td.astype(self.dtype)

    def forward(self, d: np.ndarray) -> np.ndarray:
        """(s, td) -> (s, q)."""
        d = d.astype(self.dtype)
        x = scipy.fft.fft(d, axis=1)
        x *= self.lin_td
        x = scipy.fft.ifft(x, axis=1, overwrite_x=True)
        y = np.zeros((d.shape[0], self.m), self.dtype)
        np.multiply(x, self.a0, out=y[:, :self.td])
        y = scipy.fft.fft(y, axis=1, overwrite_x=True)
        y *= self.ilin
        y = scipy.fft.ifft(y, axis=1, overwrite_x=True)
        y[:, :self.td] -= d * self.apod
        return y[:, self.index]

    def adjoint(self, c: np.ndarray) -> np.ndarray:
        """(s, q) -> (s, td)."""
        y = np.zeros((c.shape[0], self.m), self.dtype)
        y[:, self.index] = c
        own = y[:, :self.td] * self.apod
        y = scipy.fft.fft(y, axis=1, overwrite_x=True)
        y *= self.lin
        z = scipy.fft.ifft(y, axis=1, overwrite_x=True)[:, :self.td] * self.a0
        z = scipy.fft.fft(z, axis=1, overwrite_x=True)
        z *= self.clin_td
        out = scipy.fft.ifft(z, axis=1, overwrite_x=True)
        out -= own
        return out


@functools.lru_cache(maxsize=8)
def series_correction(td: int, gd: float, m: int, lb_hz: float, sw_hz: float) -> FoldCorrection:
    """:func:`fold_correction` with its defaults, kept for the process (a pure function of the
    series' acquisition and processing parameters; 0.3-0.6 s at 64k points, so a second
    extractor over the same series does not pay it again).  The arrays are shared: do not modify them."""
    return fold_correction(td, gd, m, lb_hz, sw_hz)


def fold_correction(td: int, gd: float, m: int, lb_hz: float, sw_hz: float, *, head: int = 4096,
                    tail: int = 1024, lead: int | None = None, samples: int = 26, rtol: float = 1e-6,
                    seed: int = 0) -> FoldCorrection:
    """The low-rank correction of the folded filter removal for one series.

    Parameters
    ----------
    td : int
        Acquired complex points.
    gd : float
        Group delay, points (> 0).
    m : int
        Zero-filled transform size (``>= 2 td``).
    lb_hz, sw_hz : float
        Exponential line broadening and spectral width, Hz.
    head : int
        FID points the correction reads (at most ``td``).
    tail : int
        Points of the stretch before the start (wrapped to the end of the zero-filled array).
    lead : int, optional
        Points of the stretch from the start (default ``2 ceil(GD) + 2``: the filter's rise
        and as much after it).
    samples : int
        Random vectors of the range finder (the rank found must stay below it).
    rtol : float
        Singular values below ``rtol`` times the largest are dropped.
    seed : int
        Of the range finder's random vectors (the result does not depend on it beyond ``rtol``).

    Returns
    -------
    FoldCorrection
    """
    if not gd > 0:
        raise ValueError(f"the group delay must be > 0 points, got {gd}")
    if m < 2 * td:
        raise ValueError(f"the transform size {m} must be at least twice the FID's {td} points")
    head = min(int(head), td)
    tail = min(int(tail), m - td)
    lead = min(2 * math.ceil(gd) + 2 if lead is None else int(lead), td)
    index = np.r_[np.arange(lead), np.arange(m - tail, m)]
    # complex64 transforms (round-off ~4e-7 of the largest entry, below what the guard can see)
    op = _Residual(td, gd, m, np.pi * lb_hz / sw_hz, index, np.complex64)
    rng = np.random.default_rng(seed)
    probe = np.zeros((samples, td), np.complex64)
    probe[:, :head] = rng.standard_normal((samples, head)) + 1j * rng.standard_normal((samples, head))
    # tall matrices through QR and the SVD of the small factor (a LAPACK SVD of the tall one is
    # slow with threaded BLAS on a loaded machine)
    qy, ry = np.linalg.qr(op.forward(probe).T.astype(np.complex128))
    uy, sy, _ = np.linalg.svd(ry)
    q = qy @ uy[:, sy > rtol * sy[0]] if sy.size and sy[0] > 0 else qy[:, :0]  # (q, r'): the range on the stretch
    bh = op.adjoint(q.T).astype(np.complex128)[:, :head].T   # (head, r'): (q^H G)^H
    qb, rb = np.linalg.qr(bh)
    ur, s, vrh = np.linalg.svd(rb)                       # q^H G = vrh^H s (qb ur)^H
    r = int(np.count_nonzero(s > rtol * s[0])) if s.size and s[0] > 0 else 0
    left = np.ascontiguousarray((qb @ ur[:, :r]).conj())  # (head, r)
    right = np.ascontiguousarray(((q @ vrh[:r].conj().T) * s[:r]).T)  # (r, q)
    first = shift_kernel(gd - np.arange(td), td)
    return FoldCorrection(index, left, right, first)


def folded_real(fold: FoldCorrection, fids: np.ndarray, U: np.ndarray, real: np.ndarray, apod: np.ndarray,
                phase: np.ndarray, perm: np.ndarray, tw: np.ndarray | None = None,
                phase2: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Real spectra of FIDs through the corrected fold: the FID apodized as delayed, plus the
    correction on its stretch, one zero-filled transform, then the filter's linear phase times the
    phase; and the exact path's first points.

    Parameters
    ----------
    fold : FoldCorrection
    fids : ndarray, shape (b, td), complex
        The FIDs (not modified).
    U : ndarray, shape (b, m), complex
        Work array (overwritten); its dtype is the transforms' precision.
    real : ndarray, shape (b, m), float64
        The result, vendor order (``perm``: FFT index of each vendor index).
    apod : ndarray, shape (td,)
        The apodization as delayed (zero before ``floor(GD)``).
    phase : ndarray, shape (m,)
        Filter linear phase times phase (and scaling), FFT order.
    tw, phase2 : ndarray, optional
        With ``td <= m / 2``: the split transform's twiddle (:func:`ingest.processing.zf_fft.half_twiddle`)
        and ``phase`` in its layout (:func:`ingest.processing.zf_fft.even_odd`): the zero-filled
        transform as two half-size ones.

    Returns
    -------
    real : ndarray
    x0 : ndarray, shape (b,)
        The exact path's first points ``xe[0]`` (before the first-point correction's factor).
    """
    b, td = fids.shape
    m = U.shape[1]
    h = m // 2
    x0 = fids @ fold.first.astype(U.dtype)
    c = fold.correction(fids)
    lo = fold.index < h
    if tw is not None and phase2 is not None and td <= h:
        # zf_fft.split_fft of a FID whose second half holds the wrapped stretch: the even bins
        # see u0 + u1, the odd bins (u0 - u1) w
        U2 = U.reshape(b, 2, h)
        np.multiply(fids, apod, out=U2[:, 0, :td])
        U2[:, 0, td:] = 0.0
        U2[:, 0, fold.index[lo]] += c[:, lo]
        np.multiply(U2[:, 0], tw, out=U2[:, 1])
        j = fold.index[~lo] - h
        U2[:, 0, j] += c[:, ~lo]
        U2[:, 1, j] -= c[:, ~lo] * tw[j]
        vendor_real(scipy.fft.fft(U2, axis=-1, workers=1, overwrite_x=True), phase2, real)
        return real, x0
    np.multiply(fids, apod, out=U[:, :td])
    U[:, td:] = 0.0
    U[:, fold.index] += c
    U = scipy.fft.fft(U, axis=1, workers=1, overwrite_x=True)
    U *= phase
    np.copyto(real, U.real[:, perm])
    return real, x0


@dataclass(frozen=True)
class FoldCheck:
    """Outcome of :func:`check_fold` for one series.

    Attributes
    ----------
    ok : bool
        The corrected fold is within :data:`PEAK_MAX` and :data:`BLOCK_MAX`.
    peak_ratio : float
        Largest single-bin difference from the exact path, noise sigma units.
    block_ratio : float
        Largest |sum over a block of :data:`BLOCK` bins| / (sigma sqrt(BLOCK)).
    """

    ok: bool
    peak_ratio: float
    block_ratio: float


def check_fold(folded: np.ndarray, exact: np.ndarray, sigma: float,
               baseline: Callable[[np.ndarray], np.ndarray] | None = None) -> FoldCheck:
    """Compare one FID's real spectrum through the corrected fold with the exact path's.

    Parameters
    ----------
    folded, exact : ndarray, shape (n,)
        The two real spectra (same phase, same first-point correction, before any baseline).
    sigma : float
        Noise standard deviation of ``exact``.
    baseline : callable, optional
        The baseline the processing would fit to a spectrum (here: to the difference); the block
        measure is taken on the difference less it, as the integrals see it.

    Returns
    -------
    FoldCheck
        ``ok`` when, inside the outer :data:`EDGE` of the bins at each end, no bin differs by more
        than :data:`PEAK_MAX` sigma and no block sum by more than :data:`BLOCK_MAX`.
    """
    d = np.asarray(folded, dtype=np.float64) - np.asarray(exact, dtype=np.float64)
    s = float(sigma)
    e = int(d.size * EDGE)
    if not (s > 0 and math.isfinite(s)) or not np.isfinite(d).all() or d.size - 2 * e < BLOCK:
        return FoldCheck(False, math.inf, math.inf)
    inner = d[e: d.size - e]
    peak = float(np.abs(inner).max()) / s
    if baseline is not None:
        inner = (d - baseline(d))[e: d.size - e]
    nb = inner.size // BLOCK
    sums = np.concatenate([inner[: nb * BLOCK].reshape(nb, BLOCK).sum(axis=1),
                           inner[inner.size - nb * BLOCK:].reshape(nb, BLOCK).sum(axis=1)])  # two block grids
    block = float(np.abs(sums).max()) / (s * math.sqrt(BLOCK))
    return FoldCheck(peak <= PEAK_MAX and block <= BLOCK_MAX, peak, block)
