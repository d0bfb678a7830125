"""Compiled passes of the batch line fits (numba): the numpy steps of
:mod:`ingest.processing.lorentz_batch` around its Levenberg-Marquardt, one pass per window
and batch, the same numbers to the bit.

* :func:`guess_rows`: ``_gather`` + ``_guesses`` + the low-signal test and the point stride
  of :func:`ingest.processing.lorentz_batch.fit_lorentzians`, every row of one window;
* :func:`group_rows`: the padded arrays of one stride group of ``_fit_group`` (x centred on
  the guess, values, weights), its start, bounds and the weighted basis of ``_linear_start``
  (the 3x3 least squares itself stays numpy's: BLAS and LAPACK sum in their own order);
* :func:`integral_rows`: :func:`ingest.processing.lorentz_batch.window_integrals` (trapezoid
  weights, area, its error, height, centroid), with numpy's pairwise summation
  (:func:`_pairwise`) over the same padded rows, so that every sum has numpy's bits; the Hz
  axis, weights and error sum once for consecutive rows of one window (:func:`_integral_sel`,
  also called for the rows below ``snr_min`` by :mod:`ingest.processing.lorentz_rows_nb`);
* :func:`lm_rows_unit`: :func:`ingest.processing.lorentz_nb.lm_rows` for rows of unit
  weights (the batch's): the same iterations and tests, the normal equations by
  :func:`_normal_unit` (the per-point values first, in a loop without sums that the compiler
  runs on several points at once, then the sums, which it may reassociate and fuse to run
  them on several points at once too: ``fastmath={"reassoc", "contract"}``;
  the three sums that do not depend on the parameters once per row); the last bits differ
  from lorentz_nb's, the optimum the same within the fit's stopping tolerance (< 1e-6 of a
  standard error in ``benchmarks/bench_batch_stages.py --compare``); the numpy steps of
  :mod:`ingest.processing.lorentz_batch` use this one too when it is loaded; one row:
  :func:`_lm_row_unit`;
* :func:`result_cols`: the arithmetic of ``_results`` after numpy's ``inv(J^T J)``.

Medians by selection (:func:`_median_sorted`; ``np.sort``/``np.partition`` would add ~12 s
to the one-time compilation), sums in numpy's order: every number is the numpy steps' to
the last bit, with the same compiled Levenberg-Marquardt (tests/test_lorentz_batch_nb.py).
Every kernel reports a window holding a non-finite value (flag 2 / False) and the caller
then runs the numpy steps (their NaN handling).  ``error_model="numpy"``: a division by
zero gives inf/NaN as in numpy (no ZeroDivisionError from inside a fit).  Loaded by
:func:`load` after :func:`ingest.processing.lorentz_nb.load_kernels` (one switch,
``FLOWCELL_NUMBA``; numba imported there only); compiled once per machine (``cache=True``,
~12 s).
"""

from __future__ import annotations

import math
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

from ingest.processing import lorentz_nb

__all__ = ["kernels", "load"]


def _pairwise_leaf(a, i0, n):  # pragma: no cover - compiled
    """numpy's pairwise sum of at most 128 values: eight running sums in blocks of eight."""
    if n < 8:
        res = 0.0
        for i in range(i0, i0 + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[i0], a[i0 + 1], a[i0 + 2], a[i0 + 3]
    r4, r5, r6, r7 = a[i0 + 4], a[i0 + 5], a[i0 + 6], a[i0 + 7]
    m = n - n % 8
    i = 8
    while i < m:
        j = i0 + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i0 + i]
        i += 1
    return res


def _pairwise(a, i0, n):  # pragma: no cover - compiled
    """numpy's pairwise sum of ``a[i0:i0 + n]`` (float64, contiguous; ``np.sum`` of a row): blocks
    of at most 128 values (:func:`_pairwise_leaf`), above that the sum of two halves (the first
    a multiple of 8), left before right.  The recursion on an explicit stack (numba's disk
    cache does not hold recursive functions)."""
    if n <= 128:
        return _pairwise_leaf(a, i0, n)
    starts = np.empty(64, dtype=np.int64)
    lens = np.empty(64, dtype=np.int64)
    state = np.zeros(64, dtype=np.int64)
    left = np.empty(64)
    sp = 0
    starts[0], lens[0] = i0, n
    ret = 0.0
    while True:
        s, m = starts[sp], lens[sp]
        n2 = m // 2
        n2 -= n2 % 8
        if state[sp] == 0:  # the left half next
            state[sp] = 1
            cs, cm = s, n2
        elif state[sp] == 1:  # left done (ret): the right half next
            left[sp] = ret
            state[sp] = 2
            cs, cm = s + n2, m - n2
        else:  # both done
            ret = left[sp] + ret
            sp -= 1
            if sp < 0:
                return ret
            continue
        if cm <= 128:
            ret = _pairwise_leaf(a, cs, cm)
        else:
            sp += 1
            starts[sp], lens[sp], state[sp] = cs, cm, 0


def _median_sorted(a, buf):  # pragma: no cover - compiled
    """``_median_rows`` of one strip: the middle value of its sorted copy (or lower + upper
    middle over 2), found by selection (Hoare's, in the scratch ``buf``): the same values as
    sorting, a fraction of the compile time of ``np.sort``/``np.partition``."""
    k = a.size
    for i in range(k):
        buf[i] = a[i]
    h = k // 2
    lo, hi = 0, k - 1
    while lo < hi:
        pivot = buf[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                buf[i], buf[j] = buf[j], buf[i]
                i += 1
                j -= 1
        if h <= j:
            hi = j
        elif h >= i:
            lo = i
        else:
            break
    mid = buf[h]
    if k % 2:
        return mid
    low = buf[0]
    for i in range(1, h):
        low = max(low, buf[i])
    return (low + mid) / 2.0


def _axis_median(x, buf):  # pragma: no cover - compiled
    """:func:`_median_sorted` of a strip of the axis: its middle when it is sorted either way
    (an axis is: the same value), else by selection."""
    up = down = True
    for i in range(1, x.size):
        if x[i] < x[i - 1]:
            up = False
        if x[i] > x[i - 1]:
            down = False
    if not (up or down):
        return _median_sorted(x, buf)
    n = x.size
    k = n // 2
    return x[k] if n % 2 else (min(x[k - 1], x[k]) + max(x[k - 1], x[k])) / 2.0


def guess_rows(ppm, real, rows, i0s, lns, snr_min, noise, max_points, out, stride, flag):  # pragma: no cover
    """Edge baseline and guess of every row (``_guesses``): ``out[g]`` = (slope, intercept,
    centre, fwhm, height) of row ``g``'s window ``real[g, i0s[g]:i0s[g] + lns[g]]``;
    ``flag[g]`` 0 (fit it, every ``stride[g]``-th point), 1 (below ``snr_min * noise``),
    2 (a non-finite value: the numpy steps decide).  Row ``g`` is ``real[rows[g]]``."""
    buf = np.empty(max(2, int(lns.max() * 0.05)) if lns.size else 2)
    for g in range(i0s.size):
        i0, ln = i0s[g], lns[g]
        x = ppm[i0:i0 + ln]
        y = real[rows[g], i0:i0 + ln]
        k = max(2, int(ln * 0.05))
        x1, y1 = _axis_median(x[:k], buf), _median_sorted(y[:k], buf)
        x2, y2 = _axis_median(x[ln - k:], buf), _median_sorted(y[ln - k:], buf)
        sl = (y2 - y1) / (x2 - x1) if x2 != x1 else 0.0
        c0 = y1 - sl * x1
        top = 0
        h = y[0] - (sl * x[0] + c0)
        finite = math.isfinite(h)
        for i in range(1, ln):
            v = y[i] - (sl * x[i] + c0)
            if v > h:
                top, h = i, v
            if not math.isfinite(v):  # a value (or the line) not finite: v is not either
                finite = False
        if not finite:
            flag[g] = 2
            continue
        half = h / 2.0
        left = top
        while left >= 0 and not (y[left] - (sl * x[left] + c0) <= half):
            left -= 1
        left = max(left, 0)
        right = top
        while right < ln and not (y[right] - (sl * x[right] + c0) <= half):
            right += 1
        if right >= ln:
            right = ln - 1
        fwhm = abs(x[right] - x[left])
        if fwhm == 0:
            fwhm = 3 * abs(x[1] - x[0])
        out[g, 0], out[g, 1], out[g, 2], out[g, 3], out[g, 4] = sl, c0, x[top], fwhm, h
        flag[g] = 1 if h < snr_min * noise else 0
        dx = abs(ppm[i0 + 1] - ppm[i0])
        stride[g] = int(max(1, min(math.ceil(ln / max_points), fwhm / dx // 8)))


def group_rows(ppm, real, sel, rows, i0s, lns, stride, guess, los, his, X, Y, W, q0, lb, ub, Bm, YW):  # pragma: no cover
    """``_fit_group``'s arrays of the rows ``sel`` (of :func:`guess_rows`'s) of one stride: ``X`` (x minus the guessed
    centre, the last value repeated as padding), ``Y``, ``W`` (1, padding 0), start ``q0``,
    bounds ``lb``, ``ub``; and ``_linear_start``'s weighted basis ``Bm`` (G, 3, n) and ``YW``."""
    nmax = X.shape[1]
    pi = math.pi
    for g in range(sel.size):
        e = sel[g]
        b, i0 = rows[e], i0s[e]
        n = (lns[e] + stride - 1) // stride
        c = guess[e, 2]
        for k in range(n):
            X[g, k] = ppm[i0 + k * stride] - c
            Y[g, k] = real[b, i0 + k * stride]
            W[g, k] = 1.0
        for k in range(n, nmax):
            X[g, k] = X[g, n - 1]
            Y[g, k] = 0.0
            W[g, k] = 0.0
        lo, hi = los[e], his[e]
        lb[g, 0], lb[g, 1], lb[g, 2], lb[g, 3], lb[g, 4] = -np.inf, lo - c, 1e-7, -np.inf, -np.inf
        ub[g, 0], ub[g, 1], ub[g, 2], ub[g, 3], ub[g, 4] = np.inf, hi - c, hi - lo, np.inf, np.inf
        s, c0, fwhm, h = guess[e, 0], guess[e, 1], guess[e, 3], guess[e, 4]
        sig0 = fwhm / 2.0
        q0[g, 0], q0[g, 1], q0[g, 2], q0[g, 3], q0[g, 4] = h * pi * sig0, 0.0, sig0, s, c0 + s * c
        for j in range(5):
            span = ub[g, j] - lb[g, j]
            if not math.isfinite(span):
                span = 0.0
            v = max(q0[g, j], lb[g, j] + 1e-9 * span)  # np.clip: maximum, then minimum
            q0[g, j] = min(v, ub[g, j] - 1e-9 * span)
        sg, cq = q0[g, 2], q0[g, 1]
        a = sg / pi
        s2 = sg * sg
        for k in range(nmax):
            u = X[g, k] - cq
            w = W[g, k]
            Bm[g, 0, k] = a / (u * u + s2) * w
            Bm[g, 1, k] = X[g, k] * w
            Bm[g, 2, k] = w
            YW[g, k] = Y[g, k] * w


def integral_rows(ppm, real, rows, i0s, lns, sfo1_hz, noise, corr, out):  # pragma: no cover - compiled
    """``window_integrals`` of rows ``rows`` (windows ``i0s``, ``lns`` per row of ``rows``):
    ``out[j]`` = (area, area error, height, centroid).  The rows padded to the longest, as
    numpy's; False when a value is not finite (the numpy steps then)."""
    return _integral_sel(ppm, real, rows, i0s, lns, np.arange(rows.size), sfo1_hz, noise, corr, out)


def _integral_sel(ppm, real, rows, i0s, lns, sel, sfo1_hz, noise, corr, out):  # pragma: no cover - compiled
    """:func:`integral_rows` of the entries ``sel`` of ``rows``/``i0s``/``lns`` (into ``out[sel[j]]``),
    padded to the longest of them.  The Hz axis and the trapezoid weights are computed once
    for consecutive rows of the same window (the same values)."""
    L = 0
    for j in sel:
        L = max(L, lns[j])
    nc = ppm.size
    hz = np.empty(L)
    w = np.empty(L)
    t1 = np.empty(L)
    t2 = np.empty(L)
    t3 = np.empty(L)
    t4 = np.empty(L)
    cf = max(1.0, corr)
    last_i0 = last_ln = -1
    for j in sel:
        b, i0, ln = rows[j], i0s[j], lns[j]
        inside = i0 + L <= nc  # no index past the axis: contiguous loops (the same values)
        if i0 != last_i0 or ln != last_ln:
            last_i0, last_ln = i0, ln
            if inside:
                for k in range(L):
                    hz[k] = ppm[i0 + k] * sfo1_hz * 1e-6
            else:
                for k in range(L):
                    hz[k] = ppm[min(i0 + k, nc - 1)] * sfo1_hz * 1e-6
            for k in range(L):
                w[k] = 0.0
            for k in range(L - 1):
                d = abs(hz[k + 1] - hz[k]) * (1.0 if k + 1 < ln else 0.0)
                w[k] += d / 2.0
            for k in range(L - 1):
                d = abs(hz[k + 1] - hz[k]) * (1.0 if k + 1 < ln else 0.0)
                w[k + 1] += d / 2.0
            for k in range(L):
                t2[k] = w[k] * w[k]
            s2 = _pairwise(t2, 0, L)
        height = -np.inf
        finite = True
        if inside:
            row = real[b, i0:i0 + L]
            for k in range(L):
                y = row[k]
                finite &= math.isfinite(y)
                t1[k] = w[k] * y
                p = max(y, 0.0) if k < ln else 0.0
                t3[k] = p
                t4[k] = ppm[i0 + k] * p
            for k in range(ln):
                height = max(height, row[k])  # (a NaN: False below, whatever it gives)
        else:
            for k in range(L):
                i = min(i0 + k, nc - 1)
                y = real[b, i]
                finite &= math.isfinite(y)
                t1[k] = w[k] * y
                p = max(y, 0.0) if k < ln else 0.0
                t3[k] = p
                t4[k] = ppm[i] * p
                if k < ln and y > height:
                    height = y
        if not finite:
            return False
        psum = _pairwise(t3, 0, L)
        out[j, 0] = _pairwise(t1, 0, L)
        out[j, 1] = noise * math.sqrt(cf * s2)
        out[j, 2] = height
        out[j, 3] = _pairwise(t4, 0, L) / psum if psum > 0 else np.nan
    return True


def _normal_unit(q, x, y, n, sx, sxx, JTJ, g, tmp):  # pragma: no cover - compiled
    """:func:`ingest.processing.lorentz_nb._normal_eq1` with its three sums that do not depend
    on ``q`` given (``sx`` = sum of x, ``sxx`` = sum of x^2, in point order; ``n`` = sum of
    ones): the same sums, reassociated by the compiler (``load``: fastmath), so the last bits
    may differ.

    Two loops: the per-point values (line, residual, derivatives; one division each) first,
    into ``tmp`` (4, n) -- no sum there, so the compiler runs it on several points at once --
    then the sums, in point order."""
    A, c, sg, sl, ic = q[0], q[1], q[2], q[3], q[4]
    s2 = sg * sg
    sp = sg / math.pi
    ap = A / math.pi
    Ls, Rs, J1, J2 = tmp[0], tmp[1], tmp[2], tmp[3]
    for k in range(n):
        xk = x[k]
        u = xk - c
        u2 = u * u
        inv = 1.0 / (u2 + s2)
        L = sp * inv
        kk = ap * inv * inv
        Ls[k] = L
        Rs[k] = A * L + sl * xk + ic - y[k]
        J1[k] = kk * 2.0 * sg * u
        J2[k] = kk * (u2 - s2)
    g0 = g1 = g2 = g3 = g4 = 0.0
    a00 = a10 = a11 = a20 = a21 = a22 = 0.0
    a30 = a31 = a32 = a40 = a41 = a42 = 0.0
    chi2 = 0.0
    for k in range(n):
        xk = x[k]
        L = Ls[k]
        r = Rs[k]
        j1 = J1[k]
        j2 = J2[k]
        chi2 += r * r
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
        g4 += r
        a40 += L
        a41 += j1
        a42 += j2
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
    JTJ[3, 3] = sxx
    JTJ[4, 0] = JTJ[0, 4] = a40
    JTJ[4, 1] = JTJ[1, 4] = a41
    JTJ[4, 2] = JTJ[2, 4] = a42
    JTJ[4, 3] = JTJ[3, 4] = sx
    JTJ[4, 4] = float(n)
    return chi2


def lm_rows_unit(q, X, Y, npts, max_iter, chi2_out, ok_out, JTJ_out):  # pragma: no cover - compiled
    """:func:`ingest.processing.lorentz_nb.lm_rows` with every weight 1 over ``npts[b]``
    points (the same steps and tests; :func:`_normal_unit`'s sums)."""
    tmp = np.empty((4, X.shape[1]))
    work = np.empty((9, 5, 5))
    for b in range(q.shape[0]):
        chi2_out[b], ok_out[b] = _lm_row_unit(q[b], X[b], Y[b], npts[b], max_iter, JTJ_out[b], work, tmp)


def _lm_row_unit(q, x, y, n, max_iter, JTJ_out, work, tmp):  # pragma: no cover - compiled
    """One row of :func:`lm_rows_unit`: ``q`` (5,) from its start to the optimum over the
    first ``n`` points of ``x``, ``y`` (in place), ``J^T J`` there into ``JTJ_out``; returns
    (chi-square, converged).  ``work`` (9, 5, 5) and ``tmp`` (4, >= n): scratch."""
    JTJ, JTJn, M = work[0], work[1], work[2]
    g, gn, rhs, step, qn, d = work[3, 0], work[3, 1], work[3, 2], work[3, 3], work[3, 4], work[4, 0]
    qb = q.copy()
    lam = 1e-3
    sx = sxx = 0.0
    for k in range(n):
        sx += x[k]
        sxx += x[k] * x[k]
    chi2 = _normal_unit(qb, x, y, n, sx, sxx, JTJ, g, tmp)
    done = False
    for _ in range(max_iter):
        for i in range(5):
            d[i] = JTJ[i, i]
        if not _damped_step(JTJ, g, lam, d, M, rhs, step):
            break
        for i in range(5):
            qn[i] = qb[i] + step[i]
        cn = _normal_unit(qn, x, y, n, sx, sxx, JTJn, gn, tmp)
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
        q[i] = qb[i]
        for j in range(5):
            JTJ_out[i, j] = JTJ[i, j]
    return chi2, done and lam <= 1e12


def result_cols(q, chi2, ok, dg, lb, ub, npts, c, lo, hi, infl, to_hz, noise, F, flags):  # pragma: no cover
    """``_results``' arithmetic, row by row (the same operations): ``F[g]`` = (centre, its
    error, fwhm, its error, area, its error, height, snr, reduced chi-square), ppm and Hz;
    ``flags[g]`` = (inside the bounds and converged, errors finite, at the window edge,
    wider than half the window).  ``dg``: the diagonal of ``inv(J^T J)``; ``infl``: each row's
    factor on its standard errors (its stride's)."""
    for g in range(q.shape[0]):
        inside = ok[g]
        for j in range(5):
            if not (q[g, j] >= lb[g, j] and q[g, j] <= ub[g, j]):
                inside = False
        redchi = chi2[g] / max(1, npts[g] - 5)
        okc = True
        e0 = e1 = e2 = 0.0
        for j in range(5):
            v = dg[g, j] * redchi
            e = math.sqrt(v if not v < 0.0 else 0.0)  # np.clip(v, 0, None): NaN stays NaN
            if not math.isfinite(e):
                okc = False
            if j == 0:
                e0 = e
            elif j == 1:
                e1 = e
            elif j == 2:
                e2 = e
        a, sg = q[g, 0], q[g, 2]
        cc = q[g, 1] + c[g]
        se = e2 * infl[g]
        ae = e0 * infl[g]
        height = a / (math.pi * sg)
        wd = 0.02 * (hi[g] - lo[g])
        edge = sg if (sg >= wd or math.isnan(sg)) else wd  # np.maximum
        F[g, 0], F[g, 1] = cc, e1 * infl[g]
        F[g, 2], F[g, 3] = 2 * sg * to_hz, 2 * se * to_hz
        F[g, 4], F[g, 5] = a * to_hz, ae * to_hz
        F[g, 6], F[g, 7], F[g, 8] = height, height / noise, redchi
        flags[g, 0], flags[g, 1] = inside, okc
        flags[g, 2] = (cc - lo[g] < edge) or (hi[g] - cc < edge)
        flags[g, 3] = 2 * sg > 0.5 * (hi[g] - lo[g])


# the compiled helpers of lorentz_nb, bound by load() (dispatchers once load_kernels ran)
_damped_step: Any = None
_take: Any = None

_KERNELS: Any = None  # None: not tried; False: unavailable or switched off
_LOCK = threading.Lock()


def load() -> SimpleNamespace | None:
    """The kernels (``guess_rows``, ``group_rows``, ``integral_rows``, ``lm_rows_unit``,
    ``result_cols``), compiling them on the first call; None when :func:`ingest.processing.lorentz_nb.load_kernels`
    gives None (no numba, ``FLOWCELL_NUMBA=0``)."""
    global _KERNELS, _pairwise_leaf, _pairwise, _median_sorted, _axis_median, _normal_unit, _damped_step, _take
    global _lm_row_unit, _integral_sel
    if _KERNELS is None:
        with _LOCK:
            if _KERNELS is None:
                if lorentz_nb.load_kernels() is None:
                    _KERNELS = False
                else:
                    import numba  # lazy: already imported by load_kernels above

                    jit = numba.njit(cache=True, nogil=True, error_model="numpy")
                    _damped_step, _take = lorentz_nb._damped_step, lorentz_nb._take
                    # the sums reassociated (vectorised over points): cheaper iterations;
                    # their last bits differ from lorentz_nb's, the optimum within the fit's tolerance
                    _normal_unit = numba.njit(cache=True, nogil=True, error_model="numpy",
                                              fastmath={"reassoc", "contract"})(_normal_unit)
                    _pairwise_leaf = jit(_pairwise_leaf)
                    _pairwise = jit(_pairwise)  # after the leaf: it calls it
                    _median_sorted = jit(_median_sorted)
                    _axis_median = jit(_axis_median)  # after _median_sorted: it calls it
                    _lm_row_unit = jit(_lm_row_unit)  # after _normal_unit, _damped_step, _take
                    _integral_sel = jit(_integral_sel)  # after _pairwise
                    _KERNELS = SimpleNamespace(guess_rows=jit(guess_rows), group_rows=jit(group_rows),
                                               integral_rows=jit(integral_rows), lm_rows_unit=jit(lm_rows_unit),
                                               result_cols=jit(result_cols))
    return _KERNELS or None


def kernels() -> SimpleNamespace | None:
    """The kernels when :func:`load` ran and :func:`ingest.processing.lorentz_nb.kernels` is
    on (tests switch it off), else None; never imports numba."""
    return (_KERNELS or None) if lorentz_nb.kernels() is not None else None
