"""Compiled passes of the batch line fits (numba) that replace numpy calls around the
kernels of :mod:`ingest.processing.lorentz_batch_nb`, the same numbers to the bit:

* :func:`axis_slices`: the index ranges of :func:`ingest.processing.lorentz_batch.window_slices`
  by bisection of the decreasing axis (numpy's ``searchsorted`` on the reversed axis copies it:
  10 us a call on a 128k-point axis, 4 us so);
* :func:`prepare_rows`: the guesses and strides (:func:`ingest.processing.lorentz_batch_nb.guess_rows`),
  the windowed integrals of the rows below ``snr_min`` (:func:`ingest.processing.lorentz_batch_nb.integral_rows`,
  padded as numpy pads them) and the points of every row fitted: one call a window.

The linear start of the fits stays numpy's (``_linear_start``: OpenBLAS's ``dsyrk``/``dgemv``
sums and LAPACK's solve): a start summed in point order differs in its last bits and
Levenberg-Marquardt, stopping at 1e-10 relative in chi-square, carries that to ~1e-5 of a
standard error on the strongest lines (the water line, SNR ~2e5).

Loaded by :func:`load` after :func:`ingest.processing.lorentz_batch_nb.load` (whose compiled
helpers these kernels call); compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import math
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

from ingest.processing import lorentz_batch_nb

__all__ = ["kernels", "load"]


def axis_slices(ppm, w, i0, i1):  # pragma: no cover - compiled
    """``i0[j]``, ``i1[j]``: the range ``lo <= ppm <= hi`` of window ``w[j]`` = (lo, hi) on the
    decreasing axis ``ppm``: ``i0`` the number of points above ``hi``, ``i1`` the number at or
    above ``lo`` (numpy's ``searchsorted`` on the reversed axis, counted from the top).
    False when a window edge is not finite (numpy's NaN ordering then)."""
    n = ppm.size
    for j in range(w.shape[0]):
        lo, hi = w[j, 0], w[j, 1]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        a, b = 0, n  # first index with ppm[i] <= hi
        while a < b:
            m = (a + b) // 2
            if ppm[m] > hi:
                a = m + 1
            else:
                b = m
        i0[j] = a
        a, b = 0, n  # first index with ppm[i] < lo
        while a < b:
            m = (a + b) // 2
            if ppm[m] >= lo:
                a = m + 1
            else:
                b = m
        i1[j] = a
    return True


def prepare_rows(ppm, real, w, snr_min, noise, max_points, sfo1_hz, corr, rows, i0s, lns, lo, hi, guess, stride,
                 flag, ints, npts):  # pragma: no cover - compiled
    """The steps of ``fit_lorentzians`` before its linear start, one window ``w[b]`` = (lo, hi)
    ppm per row ``b`` of ``real``: the ``G`` rows whose window holds at least 8 points (the
    count returned; -1 when a window edge or a value in a window is not finite: the numpy
    steps then) are written first into the arrays given: ``rows`` (row of ``real``), ``i0s``,
    ``lns`` (index range), ``lo``, ``hi`` (sorted edges), ``guess``, ``stride``, ``flag`` of
    :func:`ingest.processing.lorentz_batch_nb.guess_rows`; rows flagged 1 (below ``snr_min``):
    ``ints`` = (area, its error, height, centroid) of ``window_integrals``, padded to the
    longest of them as numpy pads them; rows flagged 0: ``npts``, the points fitted."""
    B = w.shape[0]
    a0, a1 = np.empty(B, dtype=np.int64), np.empty(B, dtype=np.int64)
    if not axis_slices(ppm, w, a0, a1):
        return -1
    G = 0
    for b in range(B):
        if a1[b] - a0[b] >= 8:
            rows[G], i0s[G], lns[G] = b, a0[b], a1[b] - a0[b]
            lo[G], hi[G] = min(w[b, 0], w[b, 1]), max(w[b, 0], w[b, 1])
            G += 1
    if G == 0:
        return 0
    _guess_rows(ppm, real, rows[:G], i0s[:G], lns[:G], snr_min, noise, max_points, guess, stride, flag)
    nlow = 0
    for g in range(G):
        if flag[g] == 2:
            return -1
        if flag[g] == 1:
            nlow += 1
        else:
            npts[g] = (lns[g] + stride[g] - 1) // stride[g]
    if nlow == 0:
        return G
    sel = np.empty(nlow, dtype=np.int64)
    j = 0
    for g in range(G):
        if flag[g] == 1:
            sel[j] = g
            j += 1
    return G if _integral_sel(ppm, real, rows, i0s, lns, sel, sfo1_hz, noise, corr, ints) else -1


def linear_row(q0, x, y, w, n, lb, ub, q):  # pragma: no cover - compiled
    """``_linear_start`` of one row, its 3x3 normal equations summed in point order and solved by
    Gaussian elimination with partial pivoting (a singular row keeps its guess)."""
    for j in range(5):
        q[j] = q0[j]
    c, sg = q0[1], q0[2]
    a = sg / math.pi
    s2 = sg * sg
    s00 = s01 = s02 = s11 = s12 = s22 = b0 = b1 = b2 = 0.0
    for k in range(n):
        wk = w[k]
        u = x[k] - c
        lw = a / (u * u + s2) * wk
        xw = x[k] * wk
        yw = y[k] * wk
        s00 += lw * lw
        s01 += lw * xw
        s02 += lw * wk
        s11 += xw * xw
        s12 += xw * wk
        s22 += wk * wk
        b0 += lw * yw
        b1 += xw * yw
        b2 += wk * yw
    A = np.empty((3, 4))
    A[0, 0], A[0, 1], A[0, 2], A[0, 3] = s00, s01, s02, b0
    A[1, 0], A[1, 1], A[1, 2], A[1, 3] = s01, s11, s12, b1
    A[2, 0], A[2, 1], A[2, 2], A[2, 3] = s02, s12, s22, b2
    for col in range(3):
        p = col
        for i in range(col + 1, 3):
            if abs(A[i, col]) > abs(A[p, col]):
                p = i
        if A[p, col] == 0.0:
            return
        if p != col:
            for k in range(4):
                A[p, k], A[col, k] = A[col, k], A[p, k]
        for i in range(col + 1, 3):
            f = A[i, col] / A[col, col]
            for k in range(col + 1, 4):
                A[i, k] -= f * A[col, k]
    s_2 = A[2, 3] / A[2, 2]
    s_1 = (A[1, 3] - A[1, 2] * s_2) / A[1, 1]
    s_0 = (A[0, 3] - A[0, 1] * s_1 - A[0, 2] * s_2) / A[0, 0]
    if not (math.isfinite(s_0) and math.isfinite(s_1) and math.isfinite(s_2) and s_0 > 0):
        return
    q[0], q[3], q[4] = s_0, s_1, s_2
    for j in range(5):
        if not (q[j] >= lb[j] and q[j] <= ub[j]):
            for i in range(5):
                q[i] = q0[i]
            return


def linear_rows(q0, X, Y, W, npts, lb, ub, q):  # pragma: no cover - compiled
    """:func:`linear_row` of every padded row."""
    for g in range(q0.shape[0]):
        linear_row(q0[g], X[g], Y[g], W[g], npts[g], lb[g], ub[g], q[g])


# the compiled helpers of lorentz_batch_nb, bound by load()
_guess_rows: Any = None
_integral_sel: Any = None

_KERNELS: Any = None  # None: not tried; False: unavailable or switched off
_LOCK = threading.Lock()


def load() -> SimpleNamespace | None:
    """The kernels (``axis_slices``, ``prepare_rows``), compiling them on the first call; None
    when :func:`ingest.processing.lorentz_batch_nb.load` gives None."""
    global _KERNELS, _guess_rows, _integral_sel, axis_slices, linear_row
    if _KERNELS is None:
        with _LOCK:
            if _KERNELS is None:
                nb = lorentz_batch_nb.load()
                if nb is None:
                    _KERNELS = False
                else:
                    import numba  # lazy: already imported by lorentz_nb.load_kernels

                    jit = numba.njit(cache=True, nogil=True, error_model="numpy")
                    _guess_rows = nb.guess_rows
                    _integral_sel = lorentz_batch_nb._integral_sel
                    axis_slices = jit(axis_slices)
                    linear_row = jit(linear_row)
                    _KERNELS = SimpleNamespace(axis_slices=axis_slices, prepare_rows=jit(prepare_rows),
                                               linear_rows=jit(linear_rows))
    return _KERNELS or None


def kernels() -> SimpleNamespace | None:
    """The kernels when :func:`load` ran and the compiled fits are on, else None; never imports numba."""
    return (_KERNELS or None) if lorentz_batch_nb.kernels() is not None else None
