"""Compiled Levenberg-Marquardt for the batch Lorentzian fits (numba; the ``fast`` extra).

:func:`lm_rows` is :func:`ingest.processing.lorentz_batch._lm` one row at a time: the same
model (area-normalised Lorentzian of HWHM ``sigma`` plus a line), the same damping
(``JTJ + lam * diag(JTJ)``, ``lam`` from 1e-3, /10 on a kept step, x10 on a refused one),
the same tests (chi-square change or step within 1e-10 relative; failure past ``lam`` 1e12),
with the normal equations summed in one pass over the points instead of whole-array
temporaries.  Importing this module imports numba (~1 s in a new process); without numba
:data:`lm_rows` is None and the caller uses the numpy version.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # the module still imports (tests import every module); lm_rows is then None
    numba = None

__all__ = ["lm_rows"]


def _jit(func):  # type: ignore[no-untyped-def]
    return numba.njit(cache=True, nogil=True)(func) if numba is not None else func


@_jit
def _normal_eq(q, x, y, w, n, JTJ, g):  # pragma: no cover - compiled
    """chi-square at ``q``; ``JTJ`` and ``g`` (``J^T W^2 J``, ``J^T W r``) filled in place."""
    A, c, sg, sl, ic = q[0], q[1], q[2], q[3], q[4]
    s2 = sg * sg
    for i in range(5):
        g[i] = 0.0
        for j in range(5):
            JTJ[i, j] = 0.0
    chi2 = 0.0
    jv = np.empty(5)
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
        jv[0] = L * wk
        jv[1] = kk * 2.0 * sg * u * wk
        jv[2] = kk * (u2 - s2) * wk
        jv[3] = xk * wk
        jv[4] = wk
        for i in range(5):
            g[i] += jv[i] * r
            for j in range(i + 1):
                JTJ[i, j] += jv[i] * jv[j]
    for i in range(5):
        for j in range(i):
            JTJ[j, i] = JTJ[i, j]
    return chi2


@_jit
def _solve5(M, b, out):  # pragma: no cover - compiled
    """``M out = b`` (5x5, partial pivoting, M and b overwritten); False when singular."""
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


def lm_rows(q, X, Y, W, npts, max_iter, chi2_out, ok_out, JTJ_out):  # pragma: no cover - compiled
    """Fit every row in place: ``q`` (B, 5) start -> optimum; chi-square, convergence flag and
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
    for b in range(B):
        n = npts[b]
        x, y, w = X[b], Y[b], W[b]
        qb = q[b].copy()
        lam = 1e-3
        chi2 = _normal_eq(qb, x, y, w, n, JTJ, g)
        done = False
        for _ in range(max_iter):
            for i in range(5):
                rhs[i] = -g[i]
                for j in range(5):
                    M[i, j] = JTJ[i, j]
                M[i, i] += lam * JTJ[i, i]
            if not _solve5(M, rhs, step):
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
                for i in range(5):
                    qb[i] = qn[i]
                    g[i] = gn[i]
                    for j in range(5):
                        JTJ[i, j] = JTJn[i, j]
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


lm_rows = _jit(lm_rows) if numba is not None else None  # type: ignore[assignment]
