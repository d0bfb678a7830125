"""Compiled single-window Lorentzian fit of the live path (numba; the ``fast`` extra).

:func:`lm_lorentz` is :func:`ingest.processing.lsq_numpy.lm_numpy` for the model of
:func:`ingest.processing.peaks.fit_peak` (area-normalised Lorentzian of HWHM ``sigma`` plus
a straight line, all five parameters free) compiled: the same damping, acceptance and
convergence tests, with the normal equations summed in one pass over the points instead
of numpy temporaries (~20x less time on a 1300-point window, where the per-call overhead
of a dozen numpy operations per iteration dominated).  Without numba the module imports
and :data:`lm_lorentz` is None (:func:`ingest.processing.lsq_numpy.lm_compiled_lorentz` then
lets the numpy version work).
Agreement with MINPACK: tests/test_live_fast.py.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # the optional 'fast' extra
    numba = None

__all__ = ["lm_lorentz"]


def _jit(f):
    """numba.njit(cache=True, nogil=True), or None without numba."""
    return numba.njit(cache=True, nogil=True)(f) if numba is not None else None


def _normal_eq(q, x, y, JTJ, g):  # pragma: no cover - compiled
    """Sum of squares at ``q``; ``JTJ`` (J^T J) and ``g`` (J^T r) filled in place."""
    A, c, sg, sl, ic = q[0], q[1], q[2], q[3], q[4]
    s2 = sg * sg
    for i in range(5):
        g[i] = 0.0
        for j in range(5):
            JTJ[i, j] = 0.0
    chi2 = 0.0
    jv = np.empty(5)
    for k in range(x.size):
        xk = x[k]
        u = xk - c
        u2 = u * u
        inv = 1.0 / (u2 + s2)
        kk = A / math.pi * inv * inv
        r = A * sg / math.pi * inv + sl * xk + ic - y[k]
        chi2 += r * r
        jv[0] = sg / math.pi * inv
        jv[1] = kk * 2.0 * sg * u
        jv[2] = kk * (u2 - s2)
        jv[3] = xk
        jv[4] = 1.0
        for i in range(5):
            g[i] += jv[i] * r
            for j in range(i + 1):
                JTJ[i, j] += jv[i] * jv[j]
    for i in range(5):
        for j in range(i):
            JTJ[j, i] = JTJ[i, j]
    return chi2


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


def lm_lorentz(q, x, y, lam0, rtol, max_iter, JTJ_out):  # pragma: no cover - compiled
    """Fit in place: ``q`` (5,) start -> optimum; ``J^T J`` at the optimum into ``JTJ_out``.

    Returns (converged, sum of squares).  The tests of
    :func:`ingest.processing.lsq_numpy.lm_numpy`.
    """
    JTJ = np.empty((5, 5))
    g = np.empty(5)
    JTJn = np.empty((5, 5))
    gn = np.empty(5)
    M = np.empty((5, 5))
    rhs = np.empty(5)
    step = np.empty(5)
    qn = np.empty(5)
    d = np.empty(5)
    cost = _normal_eq(q, x, y, JTJ, g)
    lam = lam0
    ok = False
    prev = math.inf
    for _ in range(max_iter):
        for i in range(5):
            d[i] = JTJ[i, i] if JTJ[i, i] > 0.0 else 1.0
        moved = False
        while lam < 1e12:
            for i in range(5):
                rhs[i] = -g[i]
                for j in range(5):
                    M[i, j] = JTJ[i, j]
                M[i, i] += lam * d[i]
            if not _solve5(M, rhs, step):
                lam *= 10.0
                continue
            for i in range(5):
                qn[i] = q[i] + step[i]
            cn = _normal_eq(qn, x, y, JTJn, gn)
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
                for i in range(5):
                    q[i] = qn[i]
                    g[i] = gn[i]
                    for j in range(5):
                        JTJ[i, j] = JTJn[i, j]
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


_normal_eq = _jit(_normal_eq)
_solve5 = _jit(_solve5)
lm_lorentz = _jit(lm_lorentz)
