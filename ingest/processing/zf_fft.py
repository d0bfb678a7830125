"""The transform of a zero-filled FID as two half-size transforms (even and odd bins).

A FID ``u`` of ``n`` points whose second half is zero (zero filling by 2 or more) has the
spectrum ``S[2j] = FFT_{n/2}(u[:n/2])[j]`` and ``S[2j+1] = FFT_{n/2}(u[:n/2] w)[j]`` with
``w[t] = exp(-2 pi i t / n)``: the same numbers (to rounding) as ``fft(u)``, from two
transforms of half the size that run as one batch of two rows.  In complex64, scipy's
pocketfft vectorises over rows, and the pair costs ~20 % less than the one long transform
(benchmarks/bench_nmr_pipeline.py); in complex128 it does not pay on one core, so the batch
engine (:class:`ingest.processing.batch_nmr.BatchExtractor`) uses it in single precision only,
and the live plan (:class:`ingest.processing.nmr_plan.SeriesPlan`) also in double precision when
it may use two cores: the two rows then run at once (5.9 -> 4.1 ms wall for the 131,072-point
transform with its phase, at load 0.9).

:func:`vendor_real` then applies the phase in that layout (one contiguous product in the
transform's precision) and writes the real part in vendor order (high ppm first:
``fftshift(S)[::-1]``, :func:`ingest.processing.nmr.fft`) as four strided copies.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

__all__ = ["even_odd", "half_twiddle", "split_fft", "vendor_real"]


def half_twiddle(n: int, dtype: object = np.complex64) -> np.ndarray:
    """``exp(-2 pi i t / n)`` for ``t < n/2`` in ``dtype`` (the odd bins' modulation)."""
    if n % 2:
        raise ValueError(f"the transform size must be even, got {n}")
    return np.exp(-2j * np.pi * np.arange(n // 2) / n).astype(dtype)


def even_odd(a: np.ndarray, dtype: object = np.complex64) -> np.ndarray:
    """An FFT-order array of ``n`` values (e.g. the phase factor) in the even/odd layout of
    :func:`split_fft`: shape (2, n/2), ``out[r, j] = a[2 j + r]``, in ``dtype``."""
    a = np.asarray(a)
    return np.ascontiguousarray(a.reshape(-1, 2).T).astype(dtype)


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


def _pieces(n: int) -> list[tuple[slice, int, int, int]]:
    """(vendor slice, parity row, first index, count) of the four strided pieces of the vendor
    order ``fftshift(S)[::-1]`` of an ``n``-point spectrum, read backwards from ``R[row]``."""
    h = n // 2
    j0, j1 = (h - 1) % 2, h % 2
    return [(slice(j0, h, 2), 0, (h - 1 - j0) // 2, len(range(j0, h, 2))),     # k = h-1-j even
            (slice(j1, h, 2), 1, (h - 2 - j1) // 2, len(range(j1, h, 2))),     # k odd
            (slice(h, n, 2), 1, h - 1, len(range(0, h, 2))),                   # k = n-1-j' odd
            (slice(h + 1, n, 2), 0, h - 1, len(range(1, h, 2)))]               # k even


def vendor_real(R: np.ndarray, rot2: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``Re(S * rot)`` in vendor order from the even/odd layout of :func:`split_fft`.

    Parameters
    ----------
    R : ndarray, shape (..., 2, m), complex
        :func:`split_fft`'s result; overwritten (multiplied by ``rot2``).
    rot2 : ndarray, shape (2, m), complex
        The phase factor (times any scaling) in the even/odd layout (:func:`even_odd` of its
        FFT-order values).
    out : ndarray, shape (..., 2 m), float64
        The result.

    Returns
    -------
    ndarray
        ``out``.
    """
    R *= rot2
    n = 2 * R.shape[-1]
    for sl, row, first, cnt in _pieces(n):
        src = slice(first, None, -1) if first - cnt < 0 else slice(first, first - cnt, -1)
        np.copyto(out[..., sl], R.real[..., row, src])
    return out
