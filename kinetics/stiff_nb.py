"""A stiff solver loop compiled with numba: RODAS4 over piecewise-constant-current segments.

:func:`integrate` runs the whole simulation of :meth:`kinetics.model.Model.simulate` (every
constant-current segment, every output time) in one call of machine code that calls the
numba builds of the generated right-hand side and analytic Jacobian directly, by address
(C callbacks of :func:`kinetics.emit.build_cfunc`, so this loop is compiled once for every
network and cached on disk by numba), with no Python call per step.

Method: RODAS of Hairer & Wanner (*Solving Ordinary Differential Equations II*, 2nd ed.,
Springer 1996, §IV.7 and §VI.3; their ``rodas.f``, version of October 28, 1996, METH = 1):
a 6-stage Rosenbrock method of order 4 with an embedded order-3 solution, L-stable and
stiffly accurate, so the fast comproportionation of the full model (k_c ~ 1e8 1/(M s)) is
no constraint on the step.  Coefficients are those of ``rodas.f``'s subroutine ROCOE
(METH = 1), in the form that solves ``(I/(h γ) - J) k_i = f(y + Σ a_ij k_j) + Σ (c_ij/h) k_j``,
the same Jacobian and one LU factorisation per step.  The right-hand side does not depend
on t within a segment (the current is constant there), so the time-derivative terms vanish.

Step-size control as in ``rodas.f``: the weighted RMS norm of the difference of the two
solutions with weights ``atol + rtol max(|y_n|, |y_n+1|)`` (the tolerances the LSODA path
uses), ``h_new = h / max(1/6, min(5, err^(1/4) / 0.9))`` with Gustafsson's predictive
controller after the first accepted step; a rejected step is redone with the same Jacobian.
A first step per segment from Hairer-Norsett-Wanner's estimate (their vol. I, §II.4; as
scipy's ``select_initial_step``).  Output at the requested times by the method's dense
output (order 3, ``rodas.f``'s CONTRO with the D coefficients of ROCOE), never by stepping to
them; the state at a segment's end is the step's own solution.

Failures are returned, never hidden: a step whose stages give non-finite values (the
callbacks report them) is redone with a quarter of the step; the status is non-zero when
the step size underflows, the iteration matrix stays singular, the segment needs more than
``max_steps`` steps or the right-hand side is not finite at an accepted state, and the
caller redoes the simulation with LSODA (:mod:`kinetics.compiled_run`,
``stats['compiled_fallback']``).

This module imports numba (the ``fast`` extra): :mod:`kinetics.compiled_run` imports it only
when the loop runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

try:
    from llvmlite import ir
    from numba import njit, types
    from numba.core.extending import intrinsic
except ImportError as _e:  # the optional extra: say which, not just "No module named numba"
    raise ImportError("kinetics.stiff_nb needs numba, the 'fast' extra: pip install 'flowcell-rfb[fast]'") from _e

__all__ = ["STATS", "STATUS", "integrate", "load", "species_rows"]

#: Status codes of :func:`integrate`.
STATUS = {0: "ok", 1: "step size underflow", 2: "more than max_steps steps",
          3: "iteration matrix repeatedly singular", 4: "non-finite values",
          5: "output times past the last segment"}
#: Entries of the integer stats array of :func:`integrate`, in order.
STATS = ("nfev", "njev", "nlu", "steps", "rejected", "nonfinite", "failed_segment")

# RODAS, Hairer & Wanner rodas.f, subroutine ROCOE, METH = 1 (gamma = 0.25)
_GAMMA = 0.25
_A21 = 1.544
_A31, _A32 = 0.9466785280815826, 0.2557011698983284
_A41, _A42, _A43 = 3.314825187068521, 2.896124015972201, 0.9986419139977817
_A51, _A52, _A53, _A54 = 1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895
_C21 = -5.6688
_C31, _C32 = -2.430093356833875, -0.2063599157091915
_C41, _C42, _C43 = -0.1073529058151375, -9.594562251023355, -20.47028614809616
_C51, _C52, _C53, _C54 = 7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616
_C61, _C62, _C63, _C64, _C65 = (8.083246795921522, -7.981132988064893, -31.52159432874371,
                                16.31930543123136, -6.058818238834054)
_D21, _D22, _D23, _D24, _D25 = (10.12623508344586, -7.487995877610167, -34.80091861555747,
                                -7.992771707568823, 1.025137723295662)
_D31, _D32, _D33, _D34, _D35 = (-0.6762803392801253, 6.087714651680015, 16.43084320892478,
                                24.76722511418386, -6.594389125716872)
# the same as 6 x 5 tables, row s = stage s + 1 (the last row: the embedded solution, a_65 = 1)
_AS = (0.0, 0.0, 0.0, 0.0, 0.0, _A21, 0.0, 0.0, 0.0, 0.0, _A31, _A32, 0.0, 0.0, 0.0,
       _A41, _A42, _A43, 0.0, 0.0, _A51, _A52, _A53, _A54, 0.0, _A51, _A52, _A53, _A54, 1.0)
_CS = (0.0, 0.0, 0.0, 0.0, 0.0, _C21, 0.0, 0.0, 0.0, 0.0, _C31, _C32, 0.0, 0.0, 0.0,
       _C41, _C42, _C43, 0.0, 0.0, _C51, _C52, _C53, _C54, 0.0, _C61, _C62, _C63, _C64, _C65)
# step-size control (rodas.f defaults): h_new = h / FAC with FAC2 <= FAC <= FAC1, safety SAFE
_FAC1, _FAC2, _SAFE = 5.0, 1.0 / 6.0, 0.9
_UROUND = 2.220446049250313e-16

_jit = njit(cache=True, error_model="numpy", nogil=True)
_inline = njit(cache=True, error_model="numpy", nogil=True, inline="always")  # no call, no refcounts per step


@intrinsic
def _call(typingctx, addr, a, b, i0, i1, i2, out):
    """``status = (*addr)(a.data, b.data, i0, i1, i2, out.data)``: a C callback of
    :func:`kinetics.emit.build_cfunc` called by address (contiguous float64 arrays)."""
    sig = types.intc(addr, a, b, i0, i1, i2, out)

    def codegen(context, builder, signature, args):
        dbl = ir.DoubleType()
        fnty = ir.FunctionType(ir.IntType(32), [dbl.as_pointer(), dbl.as_pointer(), dbl, dbl, dbl,
                                                dbl.as_pointer()])
        fptr = builder.inttoptr(args[0], fnty.as_pointer())
        ptrs = [context.make_array(t)(context, builder, v).data for t, v in ((a, args[1]), (b, args[2]), (out, args[6]))]
        return builder.call(fptr, [ptrs[0], ptrs[1], args[3], args[4], args[5], ptrs[2]])

    return sig, codegen


@_inline
def _lu(E: np.ndarray, piv: np.ndarray) -> bool:
    """In-place LU factorisation with partial pivoting (Doolittle); False when singular."""
    n = E.shape[0]
    for k in range(n):
        m = k
        big = abs(E[k, k])
        for i in range(k + 1, n):
            if abs(E[i, k]) > big:
                big, m = abs(E[i, k]), i
        piv[k] = m
        if big == 0.0 or not math.isfinite(big):
            return False
        if m != k:
            for j in range(n):
                E[k, j], E[m, j] = E[m, j], E[k, j]
        for i in range(k + 1, n):
            E[i, k] /= E[k, k]
            lik = E[i, k]
            for j in range(k + 1, n):
                E[i, j] -= lik * E[k, j]
    return True


@_inline
def _solve(E: np.ndarray, piv: np.ndarray, b: np.ndarray) -> None:
    """Solve ``E x = b`` in place with the factors of :func:`_lu`."""
    n = E.shape[0]
    for k in range(n):
        m = piv[k]
        if m != k:
            b[k], b[m] = b[m], b[k]
    for i in range(n):
        s = b[i]
        for j in range(i):
            s -= E[i, j] * b[j]
        b[i] = s
    for i in range(n - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, n):
            s -= E[i, j] * b[j]
        b[i] = s / E[i, i]


@_inline
def _copy(src, dst):
    """``dst[:] = src`` as a loop (numba's slice assignment compiles error-message code for
    seconds)."""
    for i in range(src.size):
        dst[i] = src[i]


@_jit
def _wrms(v: np.ndarray, y: np.ndarray, rtol: float, atol: float) -> float:
    s = 0.0
    for i in range(v.size):
        r = v[i] / (atol + rtol * abs(y[i]))
        s += r * r
    return math.sqrt(s / max(v.size, 1))


@_jit
def _first_step(fa, y, f0, p, cur, span, rtol, atol, hmax, stats):
    """Hairer-Norsett-Wanner's starting step for an order-4 method, s (their vol. I, §II.4)."""
    d0 = _wrms(y, y, rtol, atol)
    d1 = _wrms(f0, y, rtol, atol)
    h0 = 0.01 * d0 / d1 if (d0 > 1e-5 and d1 > 1e-5) else 1e-6
    h0 = min(h0, span)
    n = y.size
    y1, f1 = np.empty(n), np.empty(n)
    for i in range(n):
        y1[i] = y[i] + h0 * f0[i]
    stats[0] += 1
    if _call(fa, y1, p, cur[0], cur[1], cur[2], f1) != 0:
        d2 = math.inf  # a non-finite probe: start small
    else:
        for i in range(n):
            f1[i] -= f0[i]
        d2 = _wrms(f1, y, rtol, atol) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** 0.2
    h = min(100.0 * h0, h1, span, hmax)
    return h if (math.isfinite(h) and h > 0.0) else 1e-6


@_inline
def _stages(fa, y, dy1, p, cur, E, piv, h, K, yy, d, ynew):
    """The six stages of one RODAS step from ``y`` (``dy1 = f(y)``, ``E`` factorised for h):
    ``K[0..5]`` and the new solution in ``ynew`` (``yy``, ``d``: work arrays); the error
    estimate is ``K[5]``.  Returns False when a value is not finite."""
    n = y.size
    bad = 0
    for s in range(6):
        if s == 0:
            for i in range(n):
                d[i] = dy1[i]
        else:  # stage point y + sum_j a_sj K_j (stage 6: the embedded solution)
            for i in range(n):
                acc = y[i]
                for j in range(s):
                    acc += _AS[5 * s + j] * K[j, i]
                yy[i] = acc
            bad |= _call(fa, yy, p, cur[0], cur[1], cur[2], d)
        for i in range(n):
            acc = 0.0
            for j in range(s):
                acc += _CS[5 * s + j] * K[j, i]
            K[s, i] = d[i] + acc / h
        _solve(E, piv, K[s])
    for i in range(n):
        ynew[i] = yy[i] + K[5, i]
        if not math.isfinite(ynew[i]):
            bad = 1
    return bad == 0


@_jit
def _dense(y, ynew, K, t, t_new, t_out, j, X, Q):
    """Rows of ``X`` from ``j`` at the ``t_out`` in ``(t, t_new]`` by the dense output (rodas.f
    CONTRO), keeping the invariants of ``y`` (:func:`_project`); returns the next row."""
    if j >= t_out.size or t_out[j] > t_new:
        return j
    h = t_new - t
    n = y.size
    c2, c3 = np.empty(n), np.empty(n)
    for i in range(n):
        c2[i] = _D21 * K[0, i] + _D22 * K[1, i] + _D23 * K[2, i] + _D24 * K[3, i] + _D25 * K[4, i]
        c3[i] = _D31 * K[0, i] + _D32 * K[1, i] + _D33 * K[2, i] + _D34 * K[3, i] + _D35 * K[4, i]
    zero = np.zeros(n)
    _project(c2, zero, Q)  # with Q^T ynew = Q^T y, every row keeps Q^T y
    _project(c3, zero, Q)
    while j < t_out.size and t_out[j] <= t_new:
        s = min((t_out[j] - t) / h, 1.0)
        for i in range(n):
            X[j, i] = y[i] * (1.0 - s) + s * (ynew[i] + (1.0 - s) * (c2[i] + s * c3[i]))
        j += 1
    return j


@_inline
def _project(v, ref, Q):
    """``v -= Q Q^T (v - ref)``: restore the linear invariants ``Q^T x`` (orthonormal columns)
    of ``ref`` in ``v``, which the exact solution keeps and the stages lose to rounding."""
    for k in range(Q.shape[1]):
        dot = 0.0
        for i in range(v.size):
            dot += Q[i, k] * (v[i] - ref[i])
        for i in range(v.size):
            v[i] -= dot * Q[i, k]


@_jit
def _segment(fa, ja, x, p, cur, a, b, t_out, j, X, rtol, atol, hmax, h_init, max_steps, stats, Q):
    """Integrate one constant-current segment [a, b] from ``x`` (updated in place); fills the
    rows of ``X`` from ``j`` whose times are <= b.  Returns (status, next row)."""
    n = x.size
    K = np.empty((6, n))
    yy, d, ynew, dy1 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    E, J = np.empty((n, n)), np.empty((n, n))
    piv = np.empty(n, np.int64)
    y = np.empty(n)
    _copy(x, y)
    t = a
    stats[0] += 1
    if _call(fa, y, p, cur[0], cur[1], cur[2], dy1) != 0:
        return 4, j
    h = min(h_init, hmax) if h_init > 0.0 else _first_step(fa, y, dy1, p, cur, b - a, rtol, atol, hmax, stats)
    steps, n_acc, nsing = 0, 0, 0
    h_acc, err_acc, err, fac = h, 1.0, 1.0, 1.0
    rejected = False
    while t < b:
        last = t + 1.0001 * h >= b
        if last:
            h = b - t
        stats[1] += 1
        if _call(ja, y, p, cur[0], cur[1], cur[2], J) != 0:
            return 4, j
        while True:  # the stages for h (the same Jacobian after a rejection)
            if steps >= max_steps:
                return 2, j
            steps += 1
            if h <= 10.0 * _UROUND * max(abs(t), abs(b - a)):
                return 1, j
            for i in range(n):
                for k in range(n):
                    E[i, k] = -J[i, k]
                E[i, i] += 1.0 / (h * _GAMMA)
            stats[2] += 1
            if not _lu(E, piv):
                nsing += 1
                if nsing >= 5:
                    return 3, j
                h *= 0.5
                last = False
                continue
            stats[0] += 5
            ok = _stages(fa, y, dy1, p, cur, E, piv, h, K, yy, d, ynew)
            err = _wrms_pair(K[5], y, ynew, rtol, atol) if ok else math.nan
            if not math.isfinite(err):  # non-finite stage values: a quarter of the step
                stats[5] += 1
                h *= 0.25
                last = False
                rejected = True
                continue
            fac = max(_FAC2, min(_FAC1, err ** 0.25 / _SAFE))
            if err <= 1.0:
                break
            stats[4] += 1
            rejected = True
            last = False
            h = h / fac
        # accepted; Gustafsson's predictive controller (rodas.f, PRED)
        n_acc += 1
        stats[3] += 1
        if n_acc > 1:
            fac = max(fac, max(_FAC2, min(_FAC1, (h_acc / h) * (err * err / err_acc) ** 0.25 / _SAFE)))
        h_new = h / fac
        h_acc, err_acc = h, max(1e-2, err)
        t_new = b if last else t + h
        _project(ynew, y, Q)
        j = _dense(y, ynew, K, t, t_new, t_out, j, X, Q)
        _copy(ynew, y)
        t = t_new
        h_new = min(h_new, hmax)
        if rejected:
            h_new = min(h_new, h)
        rejected = False
        h = h_new
        if t < b:
            stats[0] += 1
            if _call(fa, y, p, cur[0], cur[1], cur[2], dy1) != 0:
                return 4, j
    _copy(y, x)
    return 0, j


@_inline
def _wrms_pair(e, y, ynew, rtol, atol):
    s = 0.0
    for i in range(e.size):
        r = e[i] / (atol + rtol * max(abs(y[i]), abs(ynew[i])))
        s += r * r
    return math.sqrt(s / max(e.size, 1))


def _run(fa, ja, x0, p, edges, curs, t_out, rtol, atol, hmax, h_init, max_steps, X, stats, Q):
    """All segments ``[edges[k], edges[k+1]]`` at currents ``curs[k]`` (i, i_ch, i_dis);
    ``t_out[0] == edges[0]``; rows of ``X`` at ``t_out``.  Returns the status (0 = ok)."""
    x = np.empty(x0.size)
    _copy(x0, x)
    j = 0
    while j < t_out.size and t_out[j] <= edges[0]:
        _copy(x, X[j])
        j += 1
    for k in range(edges.size - 1):
        a, b = edges[k], edges[k + 1]
        if b <= a:
            continue
        status, j = _segment(fa, ja, x, p, curs[k], a, b, t_out, j, X, rtol, atol, hmax, h_init,
                             max_steps, stats, Q[k])
        if status != 0:
            stats[6] = k
            return status
    stats[6] = -1
    if j < t_out.size:
        return 5
    for r in range(t_out.size):
        for i in range(x.size):
            if not math.isfinite(X[r, i]):
                return 4
    return 0


@_jit
def species_rows(Z, p, comp, iso, free, n_y):
    """Species (n_t, n_y), mol/L, from the reduced model's slow variables ``Z`` (n_t, n_z):
    the closed forms the compiled reduced right-hand side integrates (no active dimer),
    docs/physics.md §1.2 (stable root of ``O + H <=> 2R``) and the isomer split ``X = T/(1+K)``,
    ``Y = K T/(1+K)``; the same arithmetic as :meth:`kinetics.blocks.FastBlock.solve_many`.

    ``comp`` rows ``(z offset, K index, O, R, H, D)`` (D -1 when absent), ``iso`` rows
    ``(z offset, K index, X, Y)``, ``free`` rows ``(z column, species)``.
    """
    n_t = Z.shape[0]
    Y = np.zeros((n_t, n_y))
    for b in range(comp.shape[0]):
        c, K = comp[b, 0], p[comp[b, 1]]
        kO, kR, kH = comp[b, 2], comp[b, 3], comp[b, 4]
        k2, k4, kk = K / 2.0, K * K / 4.0, K * (4.0 - K)
        for r in range(n_t):
            C, E = Z[r, c], Z[r, c + 1]
            x = E / (2.0 * C) if C > 0 else 0.0
            x = min(max(x, 0.0), 1.0)
            u = x * (1.0 - x)
            den = k2 + math.sqrt(k4 + kk * u)
            f = 2.0 * K * u / den if den > 0 else 0.0
            Cp = max(C, 0.0)
            R = Cp * f
            half = R / 2.0
            Y[r, kO] = max(Cp * (1.0 - x) - half, 0.0)
            Y[r, kR] = R
            Y[r, kH] = max(Cp * x - half, 0.0)
    for b in range(iso.shape[0]):
        c, K = iso[b, 0], p[iso[b, 1]]
        for r in range(n_t):
            T = Z[r, c]
            Y[r, iso[b, 2]] = T / (1.0 + K)
            Y[r, iso[b, 3]] = K * T / (1.0 + K)
    for b in range(free.shape[0]):
        for r in range(n_t):
            Y[r, free[b, 1]] = Z[r, free[b, 0]]
    return Y


_VEC = types.float64[::1]
_MAT = types.float64[:, ::1]
_SIG = types.int64(types.int64, types.int64, _VEC, _VEC, _VEC, _MAT, _VEC, types.float64, types.float64,
                   types.float64, types.float64, types.int64, _MAT, types.int64[::1], types.float64[:, :, ::1])
_compiled: list[Callable] = []
_lazy = njit(cache=True, error_model="numpy", nogil=True)(_run)  # not compiled until load()


def load() -> Callable:
    """The compiled loop: loaded from numba's disk cache (~0.05 s once numba is set up), or
    compiled (~7 s) and cached once per installation."""
    if not _compiled:
        _lazy.compile(_SIG)
        _lazy.disable_compile()
        _compiled.append(_lazy)
    return _compiled[0]


def integrate(f: Any, jac: Any, x0: np.ndarray, p: np.ndarray, edges: np.ndarray,
              curs: np.ndarray, t_out: np.ndarray, rtol: float, atol: float, hmax: float = math.inf,
              h_init: float = 0.0, max_steps: int = 50_000, invariants: np.ndarray | None = None
              ) -> tuple[int, np.ndarray, dict[str, int]]:
    """Integrate ``dx/dt = f(x, p, *curs[k])`` on every segment ``[edges[k], edges[k+1]]`` s.

    Parameters
    ----------
    f, jac : numba C callbacks (or their addresses, int)
        Right-hand side (n values, per s) and Jacobian (n x n, row by row, per s) of
        :func:`kinetics.emit.build_cfunc`: ``status = fn(x_ptr, p_ptr, i, i_ch, i_dis, out_ptr)``,
        status 1 when a value is not finite.  The caller keeps them alive.
    x0 : (n,) float array
        State at ``edges[0]``.
    p : float array
        Parameters.
    edges : (n_seg + 1,) float array
        Segment edges, s, increasing; ``edges[0] == t_out[0]`` and ``edges[-1] == t_out[-1]``.
    curs : (n_seg, 3) float array
        Electron fluxes ``(i, i_ch, i_dis)`` on each segment, mol/(L s).
    t_out : (n_out,) float array
        Output times, s, non-decreasing.
    rtol, atol : float
        Tolerances (atol in the units of x).
    hmax : float
        Largest step, s.
    h_init : float
        First step of every segment, s (0: estimated per segment).
    max_steps : int
        Steps (accepted and rejected) allowed per segment.
    invariants : (n_seg, n, k) float array, optional
        Per segment, orthonormal columns ``Q`` (zero columns allowed) with ``Q^T f = 0``: its
        linear conservation laws.  Every accepted step and output row is projected back onto
        ``Q^T x = Q^T x_start`` (the drift the stages pick up from rounding in the stiff linear
        solves, ~1e-10 relative over a run otherwise; LSODA's Newton corrections are small
        enough not to show it).

    Returns
    -------
    status : int
        0 on success, else a key of :data:`STATUS` (rows not reached are nan).
    X : (n_out, n) float array
        States at ``t_out``.
    stats : dict
        Counts named by :data:`STATS` (``failed_segment`` -1 on success).
    """
    X = np.full((t_out.size, x0.size), np.nan)
    st = np.zeros(len(STATS), np.int64)
    fa, ja = (int(getattr(fn, "address", fn)) for fn in (f, jac))
    status = load()(fa, ja, np.ascontiguousarray(x0, float), np.ascontiguousarray(p, float),
                    np.ascontiguousarray(edges, float), np.ascontiguousarray(curs, float),
                    np.ascontiguousarray(t_out, float), float(rtol), float(atol), float(hmax),
                    float(h_init), int(max_steps), X, st,
                    np.zeros((len(curs), x0.size, 0)) if invariants is None
                    else np.ascontiguousarray(invariants, float))
    return int(status), X, dict(zip(STATS, st.tolist()))
