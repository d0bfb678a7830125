"""Compiled Levenberg-Marquardt Lorentzian fits (numba; the optional ``fast`` extra).

One model, the area-normalised Lorentzian of HWHM ``sigma`` plus a straight line (five
parameters, all free), with the normal equations summed in one pass over the points
(:func:`_normal_eq`, weighted) and a 5x5 pivoting solve (:func:`_solve5`), shared by two
drivers:

* :func:`lm_lorentz`: one window of the live path, the compiled
  :func:`ingest.processing.lsq_numpy.lm_numpy` (MINPACK's damping and ``xtol`` test,
  damping from ``lam0`` so that a warm start from the previous spectrum converges in a
  couple of steps, a refused step retried within the iteration); called through
  :func:`ingest.processing.lsq_numpy.lm_compiled_lorentz`.
* :func:`lm_rows`: many windows, one row each, the compiled twin of
  :func:`ingest.processing.lorentz_batch._lm` (damping from 1e-3, one trial step per
  iteration, converged when chi-square or the step moves by 1e-10 relative); called by
  :func:`ingest.processing.lorentz_batch.fit_lorentzians` without its compiled passes (its
  unit-weight twin there: :func:`ingest.processing.lorentz_batch_nb.lm_rows_unit`).

Two drivers rather than one because each is the twin of a numpy reference that its tests
compare against (tests/test_live_fast.py: the live fit against MINPACK to its ``xtol``;
tests/test_batch_workers.py: compiled against numpy batch); their iteration counts and
stopping tests differ, so one driver would move one path's numbers.

The sums of :func:`_normal_eq` are kept in scalar accumulators, and the live fit's unit
weights use :func:`_normal_eq1` (no multiplications by 1): the same operations in the same
order, the same bits, a live fit ~25 % faster (tests/test_row_speedups.py).  Also
:func:`window_start`, the numpy steps before a live window's fit (edge baseline, maximum,
half-height crossings; :mod:`ingest.processing.peak_start`) in one pass.

numba is imported by :func:`load_kernels` only (~1 s in a new process), honouring
``FLOWCELL_NUMBA`` (:mod:`ingest.processing.numba_switch`); the module itself imports
without numba.  Machine code is cached on disk (``cache=True``), compiled once per machine.
"""

from __future__ import annotations

import math
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

from ingest.processing.numba_switch import numba_installed, numba_switch

__all__ = ["kernels", "lm_lorentz", "lm_rows", "load_kernels", "warm_up", "window_start"]


def _normal_eq(q, x, y, w, n, JTJ, g):  # pragma: no cover - compiled
    """chi-square at ``q`` over the first ``n`` points; ``JTJ`` (``J^T W^2 J``) and ``g``
    (``J^T W r``) filled in place.  Points of weight 0 are skipped.

    Each sum in its own scalar (register) accumulator, the points in order: the same
    operations as accumulating into the arrays (~8 % faster: no loads and stores through
    arrays the compiler cannot prove distinct)."""
    A, c, sg, sl, ic = q[0], q[1], q[2], q[3], q[4]
    s2 = sg * sg
    g0 = g1 = g2 = g3 = g4 = 0.0
    a00 = a10 = a11 = a20 = a21 = a22 = 0.0
    a30 = a31 = a32 = a33 = a40 = a41 = a42 = a43 = a44 = 0.0
    chi2 = 0.0
    for k in range(n):
        wk = w[k]
        if wk == 0.0:
            continue
        xk = x[k]
        u = xk - c
        u2 = u * u
        inv = 1.0 / (u2 + s2)
        L = sg / math.pi * inv
        kk = A / math.pi * inv * inv
        r = (A * L + sl * xk + ic - y[k]) * wk
        chi2 += r * r
        j0 = L * wk
        j1 = kk * 2.0 * sg * u * wk
        j2 = kk * (u2 - s2) * wk
        j3 = xk * wk
        j4 = wk
        g0 += j0 * r
        a00 += j0 * j0
        g1 += j1 * r
        a10 += j1 * j0
        a11 += j1 * j1
        g2 += j2 * r
        a20 += j2 * j0
        a21 += j2 * j1
        a22 += j2 * j2
        g3 += j3 * r
        a30 += j3 * j0
        a31 += j3 * j1
        a32 += j3 * j2
        a33 += j3 * j3
        g4 += j4 * r
        a40 += j4 * j0
        a41 += j4 * j1
        a42 += j4 * j2
        a43 += j4 * j3
        a44 += j4 * j4
    g[0], g[1], g[2], g[3], g[4] = g0, g1, g2, g3, g4
    JTJ[0, 0] = a00
    JTJ[1, 0] = JTJ[0, 1] = a10
    JTJ[1, 1] = a11
    JTJ[2, 0] = JTJ[0, 2] = a20
    JTJ[2, 1] = JTJ[1, 2] = a21
    JTJ[2, 2] = a22
    JTJ[3, 0] = JTJ[0, 3] = a30
    JTJ[3, 1] = JTJ[1, 3] = a31
    JTJ[3, 2] = JTJ[2, 3] = a32
    JTJ[3, 3] = a33
    JTJ[4, 0] = JTJ[0, 4] = a40
    JTJ[4, 1] = JTJ[1, 4] = a41
    JTJ[4, 2] = JTJ[2, 4] = a42
    JTJ[4, 3] = JTJ[3, 4] = a43
    JTJ[4, 4] = a44
    return chi2


def _normal_eq1(q, x, y, n, JTJ, g):  # pragma: no cover - compiled
    """:func:`_normal_eq` with every weight 1 (the live fit): the same sums without the six
    multiplications by 1 a point (exact, so the same numbers; ~20 % of the pass)."""
    A, c, sg, sl, ic = q[0], q[1], q[2], q[3], q[4]
    s2 = sg * sg
    g0 = g1 = g2 = g3 = g4 = 0.0
    a00 = a10 = a11 = a20 = a21 = a22 = 0.0
    a30 = a31 = a32 = a33 = a40 = a41 = a42 = a43 = a44 = 0.0
    chi2 = 0.0
    for k in range(n):
        xk = x[k]
        u = xk - c
        u2 = u * u
        inv = 1.0 / (u2 + s2)
        L = sg / math.pi * inv
        kk = A / math.pi * inv * inv
        r = A * L + sl * xk + ic - y[k]
        chi2 += r * r
        j1 = kk * 2.0 * sg * u
        j2 = kk * (u2 - s2)
        g0 += L * r
        a00 += L * L
        g1 += j1 * r
        a10 += j1 * L
        a11 += j1 * j1
        g2 += j2 * r
        a20 += j2 * L
        a21 += j2 * j1
        a22 += j2 * j2
        g3 += xk * r
        a30 += xk * L
        a31 += xk * j1
        a32 += xk * j2
        a33 += xk * xk
        g4 += r
        a40 += L
        a41 += j1
        a42 += j2
        a43 += xk
        a44 += 1.0
    g[0], g[1], g[2], g[3], g[4] = g0, g1, g2, g3, g4
    JTJ[0, 0] = a00
    JTJ[1, 0] = JTJ[0, 1] = a10
    JTJ[1, 1] = a11
    JTJ[2, 0] = JTJ[0, 2] = a20
    JTJ[2, 1] = JTJ[1, 2] = a21
    JTJ[2, 2] = a22
    JTJ[3, 0] = JTJ[0, 3] = a30
    JTJ[3, 1] = JTJ[1, 3] = a31
    JTJ[3, 2] = JTJ[2, 3] = a32
    JTJ[3, 3] = a33
    JTJ[4, 0] = JTJ[0, 4] = a40
    JTJ[4, 1] = JTJ[1, 4] = a41
    JTJ[4, 2] = JTJ[2, 4] = a42
    JTJ[4, 3] = JTJ[3, 4] = a43
    JTJ[4, 4] = a44
    return chi2


def _normal(q, x, y, w, n, JTJ, g, unit):  # pragma: no cover - compiled
    """:func:`_normal_eq1` when every weight is 1 (``unit``), else :func:`_normal_eq`."""
    if unit:
        return _normal_eq1(q, x, y, n, JTJ, g)
    return _normal_eq(q, x, y, w, n, JTJ, g)


def _solve5(M, b, out):  # pragma: no cover - compiled
    """``M out = b`` (5x5, partial pivoting; M and b overwritten); False when singular."""
    for col in range(5):
        p = col
        for r in range(col + 1, 5):
            if abs(M[r, col]) > abs(M[p, col]):
                p = r
        if M[p, col] == 0.0 or not math.isfinite(M[p, col]):
            return False
        if p != col:
            for j in range(5):
                M[col, j], M[p, j] = M[p, j], M[col, j]
            b[col], b[p] = b[p], b[col]
        for r in range(col + 1, 5):
            f = M[r, col] / M[col, col]
            for j in range(col, 5):
                M[r, j] -= f * M[col, j]
            b[r] -= f * b[col]
    for r in range(4, -1, -1):
        acc = b[r]
        for j in range(r + 1, 5):
            acc -= M[r, j] * out[j]
        out[r] = acc / M[r, r]
    return True


def _damped_step(JTJ, g, lam, d, M, rhs, step):  # pragma: no cover - compiled
    """Solve ``(J^T J + lam diag(d)) step = -g`` into ``step`` (scratch ``M``, ``rhs``);
    False when singular.  The Levenberg-Marquardt step of both drivers."""
    for i in range(5):
        rhs[i] = -g[i]
        for j in range(5):
            M[i, j] = JTJ[i, j]
        M[i, i] += lam * d[i]
    return _solve5(M, rhs, step)


def _take(q, g, JTJ, qn, gn, JTJn):  # pragma: no cover - compiled
    """Accept a step: ``q, g, J^T J`` <- the trial point's."""
    for i in range(5):
        q[i] = qn[i]
        g[i] = gn[i]
        for j in range(5):
            JTJ[i, j] = JTJn[i, j]


def lm_lorentz(q, x, y, w, lam0, rtol, max_iter, JTJ_out):  # pragma: no cover - compiled
    """One window, in place: ``q`` (5,) start -> optimum; ``J^T J`` at the optimum into
    ``JTJ_out``; ``w`` the point weights (ones for the live fit).

    Returns (converged, sum of squares).  The tests of
    :func:`ingest.processing.lsq_numpy.lm_numpy`.
    """
    n = x.size
    JTJ = np.empty((5, 5))
    g = np.empty(5)
    JTJn = np.empty((5, 5))
    gn = np.empty(5)
    M = np.empty((5, 5))
    rhs = np.empty(5)
    step = np.empty(5)
    qn = np.empty(5)
    d = np.empty(5)
    unit = True  # the live fit's weights: all ones
    for k in range(n):
        if w[k] != 1.0:
            unit = False
            break
    cost = _normal(q, x, y, w, n, JTJ, g, unit)
    lam = lam0
    ok = False
    prev = math.inf
    for _ in range(max_iter):
        for i in range(5):
            d[i] = JTJ[i, i] if JTJ[i, i] > 0.0 else 1.0
        moved = False
        while lam < 1e12:
            if not _damped_step(JTJ, g, lam, d, M, rhs, step):
                lam *= 10.0
                continue
            for i in range(5):
                qn[i] = q[i] + step[i]
            cn = _normal(qn, x, y, w, n, JTJn, gn, unit)
            if math.isfinite(cn) and cn <= cost:
                ns = 0.0
                nq = 0.0
                for i in range(5):
                    ns += d[i] * step[i] * step[i]
                    nq += d[i] * qn[i] * qn[i]
                ratio = math.sqrt(ns) / (math.sqrt(nq) if nq > 0.0 else 1.0)
                quad = lam <= 1e-6 and ratio <= 1e-4 and ratio <= 10.0 * prev * prev
                flat = cost - cn <= 1e-14 * cost
                prev = ratio
                _take(q, g, JTJ, qn, gn, JTJn)
                cost = cn
                moved = True
                lam = max(lam * 0.1, 1e-12)
                ok = ratio <= rtol or quad or flat
                break
            lam *= 10.0
        if not moved or ok:
            ok = ok or (not moved and cost == 0.0)
            break
    for i in range(5):
        for j in range(5):
            JTJ_out[i, j] = JTJ[i, j]
    return ok, cost


def lm_rows(q, X, Y, W, npts, max_iter, chi2_out, ok_out, JTJ_out):  # pragma: no cover - compiled
    """Every row in place: ``q`` (B, 5) start -> optimum; chi-square, convergence flag and
    ``J^T W^2 J`` at the optimum into ``chi2_out``, ``ok_out``, ``JTJ_out``."""
    B = q.shape[0]
    JTJ = np.empty((5, 5))
    g = np.empty(5)
    JTJn = np.empty((5, 5))
    gn = np.empty(5)
    M = np.empty((5, 5))
    rhs = np.empty(5)
    step = np.empty(5)
    qn = np.empty(5)
    d = np.empty(5)
    for b in range(B):
        n = npts[b]
        x, y, w = X[b], Y[b], W[b]
        qb = q[b].copy()
        lam = 1e-3
        chi2 = _normal_eq(qb, x, y, w, n, JTJ, g)
        done = False
        for _ in range(max_iter):
            for i in range(5):
                d[i] = JTJ[i, i]
            if not _damped_step(JTJ, g, lam, d, M, rhs, step):
                break
            for i in range(5):
                qn[i] = qb[i] + step[i]
            cn = _normal_eq(qn, x, y, w, n, JTJn, gn)
            fin = math.isfinite(cn)
            tiny = True
            for i in range(5):
                if abs(step[i]) > 1e-10 * (abs(qb[i]) + 1e-30):
                    tiny = False
            small = fin and (abs(chi2 - cn) <= 1e-10 * chi2 or tiny)
            if fin and cn <= chi2:
                _take(qb, g, JTJ, qn, gn, JTJn)
                chi2 = cn
                lam /= 10.0
            else:
                lam *= 10.0
            if small or lam > 1e12:
                done = True
                break
        for i in range(5):
            q[b, i] = qb[i]
            for j in range(5):
                JTJ_out[b, i, j] = JTJ[i, j]
        chi2_out[b] = chi2
        ok_out[b] = done and lam <= 1e12


def _middle(a):  # pragma: no cover - compiled
    """Median of a sorted strip (its middle point, or the mean of the two)."""
    n = a.size
    k = n // 2
    if n % 2:
        return a[k]
    return (a[k - 1] + a[k]) / 2.0


def _strip_median(a):  # pragma: no cover - compiled
    """Median of a strip of the axis: its middle when it is sorted either way (an axis is; the
    same value as sorting it), else of its sorted copy."""
    up = down = True
    for i in range(1, a.size):
        if a[i] < a[i - 1]:
            up = False
        if a[i] > a[i - 1]:
            down = False
    if up or down:
        n = a.size
        k = n // 2
        return a[k] if n % 2 else (min(a[k - 1], a[k]) + max(a[k - 1], a[k])) / 2.0
    return _middle(np.sort(a))


def window_start(x, y, k):  # pragma: no cover - compiled
    """The start of one window's line fit: the numpy steps of
    :func:`ingest.processing.peaks.fit_peak` in one pass, the same numbers.

    The line through the medians of the first and last ``k`` points (``_edge_baseline``), the
    first maximum of the spectrum minus that line (index, height) and the first points at or
    below half that height on either side (``half_height_bounds``).  Returns ``(ok, slope,
    intercept, top, height, lo, hi)``; ``ok`` False when a point or a result is not finite
    (the numpy steps then: their NaN handling)."""
    n = x.size
    for i in range(n):
        if not (math.isfinite(x[i]) and math.isfinite(y[i])):
            return False, 0.0, 0.0, 0, 0.0, 0, 0
    x1, y1 = _strip_median(x[:k]), _middle(np.sort(y[:k]))
    x2, y2 = _strip_median(x[n - k:]), _middle(np.sort(y[n - k:]))
    slope = (y2 - y1) / (x2 - x1) if x2 != x1 else 0.0
    c0 = y1 - slope * x1
    top = 0
    h = y[0] - (slope * x[0] + c0)
    for i in range(1, n):
        v = y[i] - (slope * x[i] + c0)
        if v > h:
            top = i
            h = v
    if not (math.isfinite(slope) and math.isfinite(c0) and math.isfinite(h)):
        return False, 0.0, 0.0, 0, 0.0, 0, 0
    level = h / 2.0
    lo = top
    while lo > 0 and y[lo] - (slope * x[lo] + c0) > level:
        lo -= 1
    hi = top
    while hi < n - 1 and y[hi] - (slope * x[hi] + c0) > level:
        hi += 1
    return True, slope, c0, top, h, lo, hi


#: The compiled kernels (None: not tried yet; False: unavailable or switched off).
_KERNELS: Any = None
_LOCK = threading.Lock()  # the live warm-up thread and the first fit may load at once


def load_kernels() -> SimpleNamespace | None:
    """The compiled kernels (``lm_lorentz``, ``lm_rows``), importing numba on the first call;
    None without numba or with ``FLOWCELL_NUMBA=0``.  The one loader of both paths."""
    global _KERNELS, _normal_eq, _normal_eq1, _normal, _solve5, _damped_step, _take, _middle, _strip_median
    if _KERNELS is None:
        with _LOCK:
            if _KERNELS is None:
                if numba_switch() is False or not numba_installed():
                    _KERNELS = False
                else:
                    import numba  # lazy: the optional 'fast' extra, ~1 s to import

                    jit = numba.njit(cache=True, nogil=True)
                    # the drivers resolve these globals when they compile: dispatchers first
                    _normal_eq, _normal_eq1, _solve5 = jit(_normal_eq), jit(_normal_eq1), jit(_solve5)
                    _normal = jit(_normal)  # after the two it chooses between
                    _damped_step, _take = jit(_damped_step), jit(_take)  # after _solve5: it calls it
                    _middle = jit(_middle)
                    _strip_median = jit(_strip_median)  # after _middle: it calls it
                    _KERNELS = SimpleNamespace(lm_lorentz=jit(lm_lorentz), lm_rows=jit(lm_rows),
                                               window_start=jit(window_start))
    return _KERNELS or None


def kernels() -> SimpleNamespace | None:
    """The compiled kernels if already loaded (never imports numba), else None."""
    return _KERNELS or None


def warm_up() -> bool:
    """Load and compile (or load from numba's disk cache) both kernels now, not on the first
    spectrum; True when they are available.  A failing numba leaves the numpy fits."""
    global _KERNELS
    try:
        k = load_kernels()
        if k is None:
            return False
        x = np.linspace(-1.0, 1.0, 64)
        y = 0.1 / np.pi / (x * x + 0.01)
        w = np.ones_like(x)
        k.lm_lorentz(np.array([1.0, 0.0, 0.1, 0.0, 0.0]), x, y, w, 1e-3, 1e-9, 100, np.empty((5, 5)))
        k.lm_rows(np.array([[1.0, 0.0, 0.1, 0.0, 0.0]]), x[None], y[None], w[None], np.array([x.size]), 200,
                  np.zeros(1), np.zeros(1, dtype=bool), np.zeros((1, 5, 5)))
        k.window_start(x, y, 3)
        return True
    except Exception:  # noqa: BLE001 - numba present but failing: the numpy fits are used
        _KERNELS = False
        return False
