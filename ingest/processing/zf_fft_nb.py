"""The compiled passes before the batch engine's split transform (numba): numpy's numbers.

The batch engine (:class:`ingest.processing.batch_nmr.BatchExtractor`) runs each series'
zero-filled transform in complex64 as four quarter-size ones (or two half-size ones,
:mod:`ingest.processing.zf_fft`).  Before the transform numpy makes several passes over every
spectrum: copy the FID into the complex64 work array, its norm for the precision guard
(:func:`ingest.processing.fft_precision.fid_norm`), the apodization, the zero filling, the
four-way sums and the twiddles.  :func:`prep_quarters` (four ways) and :func:`prep_split` (two)
do it in one call, reading the FID (complex128 pairs, or the stored int32 words) themselves;
:func:`sum_squares` gives the FID's sum of squares for either
(their cost: the ``prep_quarters`` / ``prep_split`` and ``sum_squares`` lines of
``benchmarks/bench_batch_stages.py --profile``).  The phase product and the vendor-order copies
after the transform stay numpy's (a compiled twin, reading the rows backwards, was slower).

numpy's bits: the cast and the apodization are exact operations that the kernels repeat;
numpy's complex64 product, on processors with fused multiply-add (x86-64-v3 and later, which
numpy's SIMD loops use), rounds ``ar*br - ai*bi`` once after the first product
(``fma(ar, br, -(ai*bi))``); the kernels do the same in float64, where float32 products are
exact, and round to float32: the same bits but in rare double-rounding cases
(tests/test_zf_fft_nb.py compares with numpy's own arithmetic on the machine it runs on).
The sum of squares runs in an order of the compiler's (partial sums), so the norm differs from
:func:`fid_norm` in the last bits; it only decides the precision against a threshold.
Loaded with the batch line fits' kernels (:func:`ingest.processing.lorentz_batch.load_compiled`;
one switch, ``FLOWCELL_NUMBA``), compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import math
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

from ingest.processing import lorentz_batch_nb

__all__ = ["exact_in_float32", "kernels", "load", "prep_quarters", "prep_split", "sum_squares"]


def prep_split(src, scale, apod, twv, u0v, u1v):  # pragma: no cover - compiled
    """One FID into the split transform's rows (its sum of squares: :func:`sum_squares`).

    ``src``: the FID as (re, im) pairs, either float64 (a complex128 FID viewed as floats,
    ``scale`` 1.0) or the stored int32 words with ``scale`` = 2**NC
    (:class:`ingest.readers.stored_fid.WordsSpectrum`): the values are ``float64(src) * scale``,
    exact either way, so the words give the converted FID's rows to the bit (numba
    compiles one version per type); ``apod`` (td,) float32; ``twv``: the odd bins' twiddle
    (complex64, ``h >= td`` points) as float32 pairs; ``u0v``, ``u1v``: the even and odd rows
    (complex64, ``h`` points) as float32 pairs, set to ``complex64(fid) * apod`` (zeros after
    ``td``) and that times the twiddle.
    """
    td = apod.size
    for k in range(td):  # no sum in this loop: the compiler runs it on several points at once
        zr = np.float64(src[2 * k]) * scale
        zi = np.float64(src[2 * k + 1]) * scale
        a = apod[k]
        vr = np.float32(zr) * a
        vi = np.float32(zi) * a
        u0v[2 * k] = vr
        u0v[2 * k + 1] = vi
        tr = twv[2 * k]
        ti = twv[2 * k + 1]
        # numpy's complex64 product with fused multiply-add: fma(ar, br, -(ai*bi)), fma(ar, bi, ai*br)
        u1v[2 * k] = np.float32(np.float64(vr) * np.float64(tr) - np.float64(vi * ti))
        u1v[2 * k + 1] = np.float32(np.float64(vr) * np.float64(ti) + np.float64(vi * tr))
    u0v[2 * td:] = 0.0
    u1v[2 * td:] = 0.0


def prep_quarters(src, scale, apod, t1, t2, t3, u0, u1, u2, u3, x0v, f32):  # pragma: no cover - compiled
    """One FID into the four rows of :func:`ingest.processing.zf_fft.quarter_fft` (its sum of
    squares: :func:`sum_squares`).

    ``src``, ``scale``, ``apod`` as for :func:`prep_split` (``td <= 2 q``); ``t1``, ``t2``,
    ``t3``: rows 1-3 of the four ways' twiddles (complex64, q points) as float32 pairs; ``u0`` ..
    ``u3``: the spectrum's four work rows (complex64, q points; each row its own argument, which
    the compiler vectorises where it did not a 2D array's rows) as float32 pairs, set to
    ``a + b``, ``(a - i b) w``,
    ``(a - b) w**2``, ``(a + i b) w**3`` with ``a``, ``b`` the apodized FID's points ``t`` and
    ``t + q`` in complex64 (zero past the FID): numpy's operations in :func:`quarter_fft`, one
    by one; ``x0v`` (2,) float32: the apodized first point (the first-point correction's);
    ``f32``: :func:`exact_in_float32` of ``src`` and ``scale``.
    """
    td = apod.size
    q = u0.size // 2
    # first pass: the apodized FID in complex64 over rows 0 and 1 (zeros after it), in loops
    # simple enough for the compiler to run on several points at once (one loop reading a and b
    # was not); with ``f32`` (:func:`exact_in_float32`) the cheaper float32(v) * scale, the same bits
    na = min(td, q)
    nb = max(min(td - q, q), 0)
    if f32:
        fs = np.float32(scale)
        for k in range(na):
            u0[2 * k] = (np.float32(src[2 * k]) * fs) * apod[k]
            u0[2 * k + 1] = (np.float32(src[2 * k + 1]) * fs) * apod[k]
        for k in range(nb):
            u1[2 * k] = (np.float32(src[2 * (k + q)]) * fs) * apod[k + q]
            u1[2 * k + 1] = (np.float32(src[2 * (k + q) + 1]) * fs) * apod[k + q]
    else:
        for k in range(na):
            u0[2 * k] = np.float32(np.float64(src[2 * k]) * scale) * apod[k]
            u0[2 * k + 1] = np.float32(np.float64(src[2 * k + 1]) * scale) * apod[k]
        for k in range(nb):
            u1[2 * k] = np.float32(np.float64(src[2 * (k + q)]) * scale) * apod[k + q]
            u1[2 * k + 1] = np.float32(np.float64(src[2 * (k + q) + 1]) * scale) * apod[k + q]
    for k in range(2 * na, 2 * q):
        u0[k] = 0.0
    for k in range(2 * nb, 2 * q):
        u1[k] = 0.0
    x0v[0] = u0[0]
    x0v[1] = u0[1]
    # second pass: a + b, and (a - i b, a - b, a + i b) times the twiddle: numpy's complex64
    # product with fused multiply-add, fma(vr, tr, -(vi*ti)) and fma(vr, ti, vi*tr), as in prep_split
    for k in range(q):
        ar, ai, br, bi = u0[2 * k], u0[2 * k + 1], u1[2 * k], u1[2 * k + 1]
        u0[2 * k] = ar + br
        u0[2 * k + 1] = ai + bi
        vr, vi, tr, ti = ar + bi, ai - br, t1[2 * k], t1[2 * k + 1]
        u1[2 * k] = np.float32(np.float64(vr) * np.float64(tr) - np.float64(vi * ti))
        u1[2 * k + 1] = np.float32(np.float64(vr) * np.float64(ti) + np.float64(vi * tr))
        vr, vi, tr, ti = ar - br, ai - bi, t2[2 * k], t2[2 * k + 1]
        u2[2 * k] = np.float32(np.float64(vr) * np.float64(tr) - np.float64(vi * ti))
        u2[2 * k + 1] = np.float32(np.float64(vr) * np.float64(ti) + np.float64(vi * tr))
        vr, vi, tr, ti = ar - bi, ai + br, t3[2 * k], t3[2 * k + 1]
        u3[2 * k] = np.float32(np.float64(vr) * np.float64(tr) - np.float64(vi * ti))
        u3[2 * k + 1] = np.float32(np.float64(vr) * np.float64(ti) + np.float64(vi * tr))


def sum_squares(src, scale):  # pragma: no cover - compiled (fastmath: the sum reassociated)
    """The FID's sum of squares, ``sum((float64(v) * scale)**2)`` over ``src`` (float64 pairs or
    int32 words), for the precision guard: compiled with ``fastmath={"reassoc"}``, so the
    compiler sums several points at once in an order of its choosing (last bits only; the sum
    decides the precision against a threshold)."""
    s = 0.0
    for k in range(src.size):
        v = np.float64(src[k]) * scale
        s += v * v
    return s


def exact_in_float32(src: np.ndarray, scale: float) -> bool:
    """Is ``float32(float64(v) * scale)`` equal to ``float32(v) * float32(scale)`` for every value
    of ``src``?  Yes for ``scale`` 1.0; and for int32 words (``|v| < 2**31``) times a power of two
    between 2**-90 and 2**90 (the Bruker words' 2**NC): one rounding to 24 bits, then an exact
    scaling that keeps the values normal float32 numbers."""
    if scale == 1.0:
        return True
    frac, exp = math.frexp(scale)
    return src.dtype == np.int32 and frac == 0.5 and -90 <= exp <= 90


_KERNELS: Any = None  # None: not tried; False: unavailable or switched off
_LOCK = threading.Lock()


def load() -> SimpleNamespace | None:
    """The kernels (``prep_split``, ``prep_quarters``, ``sum_squares``), compiled on the first call; None
    when :func:`ingest.processing.lorentz_batch_nb.load` gives None (no numba, ``FLOWCELL_NUMBA=0``)."""
    global _KERNELS
    if _KERNELS is None:
        with _LOCK:
            if _KERNELS is None:
                if lorentz_batch_nb.load() is None:
                    _KERNELS = False
                else:
                    import numba  # lazy: already imported by the line fits' kernels

                    jit = numba.njit(cache=True, nogil=True, error_model="numpy")
                    _KERNELS = SimpleNamespace(
                        prep_split=jit(prep_split), prep_quarters=jit(prep_quarters),
                        sum_squares=numba.njit(cache=True, nogil=True, error_model="numpy",
                                               fastmath={"reassoc"})(sum_squares))
    return _KERNELS or None


def kernels() -> SimpleNamespace | None:
    """The kernels when :func:`load` ran and the line fits' kernels are on (tests switch them
    off), else None; never imports numba."""
    return (_KERNELS or None) if lorentz_batch_nb.kernels() is not None else None
