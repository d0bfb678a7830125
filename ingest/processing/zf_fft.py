"""The transform of a zero-filled FID as two or four shorter transforms (bins by residue).

A FID ``u`` of ``n`` points whose second half is zero (zero filling by 2 or more) has the
spectrum ``S[2j] = FFT_{n/2}(u[:n/2])[j]`` and ``S[2j+1] = FFT_{n/2}(u[:n/2] w)[j]`` with
``w[t] = exp(-2 pi i t / n)``: the same numbers (to rounding) as ``fft(u)``, from two
transforms of half the size that run as one batch of two rows (:func:`split_fft`).  In
complex64, scipy's pocketfft vectorises over rows, and the pair costs ~20 % less than the one
long transform (benchmarks/bench_nmr_pipeline.py); in complex128 it does not pay on one core,
so the live plan (:class:`ingest.processing.nmr_plan.SeriesPlan`) uses it in double precision
only when it may use two cores: the two rows then run at once.

One step further (:func:`quarter_fft`, ``n`` a multiple of 4): with ``q = n/4``, ``a = u[:q]``
and ``b = u[q:2q]`` (the rest is zero), ``S[4j + r] = FFT_q(y_r)[j]`` where
``y_r[t] = (a[t] + (-i)**r b[t]) w[t]**r``: the sum, the difference and the two products
with ``(-i)**r`` are exact sign and swap operations before three twiddles.  Four transforms of
a quarter of the size stay in the processor's cache where the half-size ones do not: the
batch engine (:class:`ingest.processing.batch_nmr.BatchExtractor`, complex64, 16 spectra a
call) runs its transforms this way (``benchmarks/bench_split_fft.py`` prints the time of
both layouts).

Both layouts are "split layouts": ``R[..., r, j] = S[ways * j + r]``, ``ways`` = 2 or 4.
:func:`vendor_real` then applies the phase in that layout (one contiguous product in the
transform's precision) and writes the real part in vendor order (high ppm first:
``fftshift(S)[::-1]``, :func:`ingest.processing.nmr.fft`) as ``2 * ways`` strided copies.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

__all__ = ["even_odd", "half_twiddle", "quarter_fft", "split_fft", "split_layout", "split_twiddles",
           "vendor_real"]


def _twiddle(n: int, count: int) -> np.ndarray:
    """``exp(-2 pi i t / n)`` for ``t < count``, complex128."""
    return np.exp(-2j * np.pi * np.arange(count) / n)


def half_twiddle(n: int, dtype: object = np.complex64) -> np.ndarray:
    """``exp(-2 pi i t / n)`` for ``t < n/2`` in ``dtype`` (the odd bins' modulation)."""
    if n % 2:
        raise ValueError(f"the transform size must be even, got {n}")
    return _twiddle(n, n // 2).astype(dtype)


def split_twiddles(n: int, ways: int = 2, dtype: object = np.complex64) -> np.ndarray:
    """``(ways, n/ways)``: row ``r`` is ``exp(-2 pi i r t / n)``, ``t < n/ways`` (row 0 ones),
    in ``dtype``: the twiddles of the split layout (row 1 of two ways is :func:`half_twiddle`)."""
    if n % ways:
        raise ValueError(f"the transform size must be a multiple of {ways}, got {n}")
    out = np.empty((ways, n // ways), np.complex128)
    out[0] = 1.0
    if ways > 1:
        out[1] = _twiddle(n, n // ways)
    for r in range(2, ways):  # powers in complex128 (rounding ~1e-16, far below dtype's)
        np.multiply(out[r - 1], out[1], out=out[r])
    return out.astype(dtype)


def split_layout(a: np.ndarray, ways: int = 2, dtype: object = np.complex64) -> np.ndarray:
    """An FFT-order array of ``n`` values (e.g. the phase factor) in the split layout of
    ``ways`` rows: shape (ways, n/ways), ``out[r, j] = a[ways * j + r]``, in ``dtype``."""
    a = np.asarray(a)
    return np.ascontiguousarray(a.reshape(-1, ways).T).astype(dtype)


def even_odd(a: np.ndarray, dtype: object = np.complex64) -> np.ndarray:
    """:func:`split_layout` with two ways: shape (2, n/2), ``out[r, j] = a[2 j + r]``."""
    return split_layout(a, 2, dtype)


def split_fft(u2: np.ndarray, tw: np.ndarray, workers: int = 1) -> np.ndarray:
    """Spectrum of a FID zero-filled to ``n = 2 m`` points, in even/odd layout.

    Parameters
    ----------
    u2 : ndarray, shape (..., 2, m), complex
        ``u2[..., 0, :]`` holds the first ``m`` points of the zero-filled FID (the rest of it
        is zero); ``u2[..., 1, :]`` is scratch.  Overwritten.
    tw : ndarray, shape (m,)
        :func:`half_twiddle` of ``n``.
    workers : int
        Threads of the transform: with 2, the even and the odd bins' halves run at once on two
        cores (pocketfft parallelises over rows; the live plan's choice,
        :func:`ingest.processing.nmr_plan.live_fft_workers`).

    Returns
    -------
    ndarray, shape (..., 2, m)
        ``R[..., r, j] = fft(u)[2 j + r]`` (possibly ``u2`` itself).
    """
    np.multiply(u2[..., 0, :], tw, out=u2[..., 1, :])
    return scipy.fft.fft(u2, axis=-1, workers=workers, overwrite_x=True)


def quarter_fft(u4: np.ndarray, tw4: np.ndarray) -> np.ndarray:
    """Spectrum of a FID zero-filled to ``n = 4 q`` points (at least twice its length), in the
    split layout of four ways.

    Parameters
    ----------
    u4 : ndarray, shape (..., 4, q), complex
        Rows 0 and 1 hold the first ``2 q`` points of the zero-filled FID (``u4[..., :2, :]``
        flattened; the rest of it is zero); rows 2 and 3 are scratch.  Overwritten.
    tw4 : ndarray, shape (4, q)
        :func:`split_twiddles` of ``n`` with four ways.

    Returns
    -------
    ndarray, shape (..., 4, q)
        ``R[..., r, j] = fft(u)[4 j + r]`` (possibly ``u4`` itself).

    Notes
    -----
    The rows before the transform are ``a + b``, ``(a - i b) w``, ``(a - b) w**2`` and
    ``(a + i b) w**3`` (``a``, ``b`` rows 0 and 1), made by float additions of real and
    imaginary parts (the compiled pass, :func:`ingest.processing.zf_fft_nb.prep_quarters`,
    makes the same ones) and one complex product per row.
    """
    a, b = u4[..., 0, :], u4[..., 1, :]
    np.subtract(a, b, out=u4[..., 2, :])
    np.subtract(a.real, b.imag, out=u4[..., 3, :].real)
    np.add(a.imag, b.real, out=u4[..., 3, :].imag)
    t_re = a.real + b.imag
    t_im = a.imag - b.real
    np.add(a, b, out=a)
    u4[..., 1, :].real = t_re
    u4[..., 1, :].imag = t_im
    np.multiply(u4[..., 1:, :], tw4[1:], out=u4[..., 1:, :])
    return scipy.fft.fft(u4, axis=-1, workers=1, overwrite_x=True)


def _pieces(n: int, ways: int = 2) -> list[tuple[slice, int, int, int]]:
    """(vendor slice, row, first index, count) of the ``2 * ways`` strided pieces of the vendor
    order ``fftshift(S)[::-1]`` of an ``n``-point spectrum, read backwards from ``R[row]`` of
    the split layout (vendor index ``v`` holds FFT index ``(n/2 - 1 - v) mod n``)."""
    h = n // 2
    out = []
    for r in range(ways):
        v0 = (h - 1 - r) % ways                            # v < h: FFT index h-1-v
        out.append((slice(v0, h, ways), r, (h - 1 - v0) // ways, len(range(v0, h, ways))))
    for r in range(ways):
        v0 = h + (ways - 1 - r) % ways                     # v >= h: FFT index n-1-(v-h)
        out.append((slice(v0, n, ways), r, (n - 1 - (v0 - h)) // ways, len(range(v0, n, ways))))
    return out


def vendor_real(R: np.ndarray, rot2: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``Re(S * rot)`` in vendor order from a split layout (:func:`split_fft`, :func:`quarter_fft`).

    Parameters
    ----------
    R : ndarray, shape (..., ways, q), complex
        The split transforms; overwritten (multiplied by ``rot2``).
    rot2 : ndarray, shape (ways, q), complex
        The phase factor (times any scaling) in the same layout (:func:`split_layout` of its
        FFT-order values).
    out : ndarray, shape (..., ways * q), float64
        The result.

    Returns
    -------
    ndarray
        ``out``.
    """
    R *= rot2
    ways = R.shape[-2]
    for sl, row, first, cnt in _pieces(ways * R.shape[-1], ways):
        src = slice(first, None, -1) if first - cnt < 0 else slice(first, first - cnt, -1)
        np.copyto(out[..., sl], R.real[..., row, src])
    return out
