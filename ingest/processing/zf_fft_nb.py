"""The compiled pass before the batch engine's split transform (numba): numpy's numbers, one pass.

The batch engine (:class:`ingest.processing.batch_nmr.BatchExtractor`) runs each series'
zero-filled transform in complex64 as two half-size ones (:mod:`ingest.processing.zf_fft`).
Before the transform numpy makes five passes over every spectrum: copy the FID into the
complex64 work array, its norm for the precision guard
(:func:`ingest.processing.fft_precision.fid_norm`), the apodization, the zero filling and the
odd bins' twiddle.  :func:`prep_split` makes one: it reads the FID (complex128) once and
writes both rows, returning the FID's sum of squares (0.33 ms a 64k-point spectrum in a batch
of 16, benchmarks/bench_batch_stages.py --profile).  The phase product and the vendor-order copies
after the transform stay numpy's (a compiled twin, reading the rows backwards, was slower).

numpy's bits: the cast and the apodization are exact operations that the kernel repeats;
numpy's complex64 product, on processors with fused multiply-add (x86-64-v3 and later, which
numpy's SIMD loops use), rounds ``ar*br - ai*bi`` once after the first product
(``fma(ar, br, -(ai*bi))``); the kernel does the same in float64, where float32 products are
exact, and rounds to float32: the same bits but in rare double-rounding cases
(tests/test_zf_fft_nb.py compares with numpy's own arithmetic on the machine it runs on).
The sum of squares runs in point order, not BLAS's, so the norm differs from
:func:`fid_norm` in the last bits; it only decides the precision against a threshold.
Loaded with the batch line fits' kernels (:func:`ingest.processing.lorentz_batch.load_compiled`;
one switch, ``FLOWCELL_NUMBA``), compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

from ingest.processing import lorentz_batch_nb

__all__ = ["kernels", "load", "prep_split"]


def prep_split(fv, apod, twv, u0v, u1v):  # pragma: no cover - compiled
    """One FID into the split transform's rows; returns its sum of squares (float64).

    ``fv``: the FID (complex128, ``td`` points) as float64 pairs; ``apod`` (td,) float32;
    ``twv``: the odd bins' twiddle (complex64, ``h >= td`` points) as float32 pairs;
    ``u0v``, ``u1v``: the even and odd rows (complex64, ``h`` points) as float32 pairs, set to
    ``complex64(fid) * apod`` (zeros after ``td``) and that times the twiddle.
    """
    td = apod.size
    s = 0.0
    for k in range(td):
        zr = fv[2 * k]
        zi = fv[2 * k + 1]
        s += zr * zr + zi * zi
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
    return s


_KERNELS: Any = None  # None: not tried; False: unavailable or switched off
_LOCK = threading.Lock()


def load() -> SimpleNamespace | None:
    """The kernel (``prep_split``), compiled on the first call; None
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
                    _KERNELS = SimpleNamespace(prep_split=jit(prep_split))
    return _KERNELS or None


def kernels() -> SimpleNamespace | None:
    """The kernels when :func:`load` ran and the line fits' kernels are on (tests switch them
    off), else None; never imports numba."""
    return (_KERNELS or None) if lorentz_batch_nb.kernels() is not None else None
