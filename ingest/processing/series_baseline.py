"""The least-squares baseline operator a batch of spectra shares (ingest.processing.batch_nmr).

The robust polynomial baseline of :func:`ingest.processing.nmr.baseline` finds the signal-free
points of a series' first spectrum; every later spectrum's baseline is then a linear
least-squares fit on those points, one matrix product for a whole batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg.blas import dgemm, dgemv

from ingest.processing.nmr import ProcessedNMR
from ingest.processing.nmr import baseline as robust_baseline

__all__ = ["baseline_operator", "subtract_product", "subtract_rows"]


def baseline_operator(ppm: np.ndarray, proc: ProcessedNMR, params: dict[str, Any]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Signal-free points of the first spectrum's baseline, the polynomial fit on them, and
    whether they cover the axis only marginally (an end segment less than 15 % free, or a
    signal run over 35 % of the axis: other spectra of the series may fall back to a lower
    order, :func:`ingest.processing.nmr_baseline._covers` draws the line at 5 % and 50 %)."""
    order = int(str(params.get("baseline", "poly3")).removeprefix("poly") or 3)
    raw = proc.real + proc.baseline
    _, mask = robust_baseline(ppm, raw, order=order, noise=float(params["noise_sigma"]), return_mask=True)
    n = ppm.size
    stride = max(1, n // 8192)
    xs = (ppm - ppm.mean()) / (np.ptp(ppm) / 2 or 1.0)
    idx = np.arange(0, n, stride)[mask[::stride][: len(range(0, n, stride))]]
    vander = np.polynomial.polynomial.polyvander(xs, order)
    pinv = np.linalg.pinv(vander[idx])
    segs = np.array_split(mask, 2 * (order + 1))
    sig = np.diff(np.r_[False, ~mask, False].astype(np.int8))
    runs = np.flatnonzero(sig == -1) - np.flatnonzero(sig == 1)
    marginal = min(segs[0].mean(), segs[-1].mean()) < 0.15 or (runs.size > 0 and runs.max() > 0.35 * n)
    return idx, pinv, vander, bool(marginal)


def subtract_product(real: np.ndarray, h: np.ndarray, basis: np.ndarray) -> None:
    """``real -= h @ basis`` in place, in one pass over ``real`` (BLAS dgemm with beta = 1; no
    (b, m) product written and read back).  ``real`` (b, m) C-contiguous float64."""
    got = dgemm(-1.0, basis.T, np.asarray(h, dtype=np.float64).T, 1.0, real.T, overwrite_c=1)
    if not np.shares_memory(got, real):  # BLAS had to copy (not expected for these layouts)
        real[...] = got.T


def subtract_rows(real: np.ndarray, h: np.ndarray, basis: np.ndarray) -> None:
    """``real -= h @ basis`` in place, row by row (BLAS dgemv with beta = 1: each row updated
    where it lies, no (b, n) product written and read back, as numpy's product and subtraction
    would).  ``real`` (b, n) float64 whose rows are contiguous
    (a column slice of a C-contiguous array will do), ``h`` (b, k), ``basis`` (k, n)
    C-contiguous."""
    bt = basis.T  # (n, k), Fortran-contiguous: BLAS reads it in place
    for j in range(real.shape[0]):
        row = real[j]
        got = dgemv(-1.0, bt, np.asarray(h[j], dtype=np.float64), beta=1.0, y=row, overwrite_y=1)
        if not np.shares_memory(got, row):  # BLAS had to copy (not expected for these layouts)
            row[...] = got
