"""Lorentzian + straight-line fits of one window in many spectra at once (Levenberg-Marquardt).

The batch twin of :func:`ingest.processing.peaks.fit_peak` for ``shape='lorentzian'``,
``baseline='linear'``: the same window selection, edge baseline and guesses, the same
model (area-normalised Lorentzian of HWHM ``sigma`` + line, x centred on the guess), the
same optimum (least squares to 1e-12 relative in chi-square), the same standard errors
(``inv(J^T J)`` scaled by the reduced chi-square, then by ``sqrt(noise_corr)``) and the
same warnings.  The spectra of a batch share the ppm axis; their windows may differ (a
window that follows the water line): rows are padded and the padding carries zero weight.

A spectrum whose fit would take another branch of ``fit_peak`` (fewer than 8 points,
no peak above ``snr_min`` noise, an optimum outside the bounds, no convergence) is
returned as None: the caller runs ``fit_peak`` on it.

Two implementations of the same steps: numpy (below; ``FLOWCELL_NUMBA=0``, or numba not
loaded) and, once :func:`load_compiled` ran, compiled passes
(:mod:`ingest.processing.lorentz_rows_nb`: the window ranges, the guesses and the windowed
integrals of the rows below ``snr_min`` in one call per window and batch;
:mod:`ingest.processing.lorentz_batch_nb`: the padded arrays and the Levenberg-Marquardt in
numba; the linear start's 3x3 least squares in the kernel, :data:`COMPILED_LINEAR_START`).
With the numpy linear start the compiled passes give the numbers of the numpy steps feeding
the compiled Levenberg-Marquardt to the bit (tests/test_lorentz_batch_nb.py,
tests/test_lorentz_rows_nb.py); the compiled start, its sums in point order instead of
BLAS's, moves the optimum of the strongest lines by ~1e-5 of a standard error (the fit's
stopping tolerance), faster fits.  Results are built by
:mod:`ingest.processing.lorentz_results`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ingest.processing import lorentz_batch_nb, lorentz_nb, lorentz_rows_nb
from ingest.processing.lorentz_results import (
    _NO_PEAK,
    _cov_diag,
    _inflation,
    _new_fit,
    _peak_fits,
    _results,
)
from ingest.processing.peaks import PeakFit

__all__ = ["fit_lorentzians", "load_compiled", "window_integrals", "window_slices"]

NAN = float("nan")


def window_slices(ppm: np.ndarray, windows: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    """Index ranges ``[i0, i1)`` of ``lo <= ppm <= hi`` on a decreasing axis, one per window."""
    if len(windows) == 0:
        return []
    i0, i1 = _slice_arrays(ppm, np.asarray(windows, dtype=float).reshape(-1, 2))
    return list(zip(i0.tolist(), i1.tolist()))


def _slice_arrays(ppm: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`window_slices` as two index arrays (i0, i1) of the windows ``w`` (B, 2)."""
    rk = lorentz_rows_nb.kernels()
    if rk is not None:  # bisection of the axis in place (searchsorted would copy the reversed axis)
        i0, i1 = np.empty(w.shape[0], dtype=np.int64), np.empty(w.shape[0], dtype=np.int64)
        if rk.axis_slices(ppm, np.ascontiguousarray(w, dtype=float), i0, i1):
            return i0, i1
    rev = ppm[::-1]
    n = ppm.size
    a = np.searchsorted(rev, w[:, 0], side="left")   # first rev index with rev >= lo
    b = np.searchsorted(rev, w[:, 1], side="right")  # first rev index with rev > hi
    return n - b, n - a


def _gather(real: np.ndarray, ranges: Any, rows: Sequence[int]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window values of each row, left-aligned and padded: (values, index matrix, valid mask)."""
    i0 = np.array([ranges[b][0] for b in rows])
    ln = np.array([ranges[b][1] - ranges[b][0] for b in rows])
    ar = np.arange(int(ln.max()))
    idx = np.minimum(i0[:, None] + ar[None, :], real.shape[1] - 1)
    return real[np.asarray(rows)[:, None], idx], idx, ar[None, :] < ln[:, None]


def _median_rows(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=1)`` of finite data, by one sort (np.median's overhead dominates small rows)."""
    k = a.shape[1]
    srt = np.sort(a, axis=1)
    return srt[:, k // 2] if k % 2 else (srt[:, k // 2 - 1] + srt[:, k // 2]) / 2.0


def _guesses(x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """fit_peak's edge baseline (slope, intercept) and guess (centre, fwhm, height), every row."""
    G, L = y.shape
    ln = valid.sum(1)
    ar = np.arange(L)
    s = np.zeros(G)
    c0 = np.zeros(G)
    ks = np.maximum(2, (ln * 0.05).astype(int))
    for k in np.unique(ks):
        r = np.flatnonzero(ks == k)
        head = ar[:k]
        tail = ln[r, None] - k + head[None, :]
        x1, y1 = _median_rows(x[r][:, head]), _median_rows(y[r][:, head])
        x2 = _median_rows(np.take_along_axis(x[r], tail, 1))
        y2 = _median_rows(np.take_along_axis(y[r], tail, 1))
        sl = np.where(x2 != x1, (y2 - y1) / np.where(x2 != x1, x2 - x1, 1.0), 0.0)
        s[r], c0[r] = sl, y1 - sl * x1
    yb = y - (s[:, None] * x + c0[:, None])
    i = np.argmax(np.where(valid, yb, -np.inf), 1)
    h = yb[np.arange(G), i]
    below = (yb <= (h / 2.0)[:, None]) & valid
    left = np.where(below & (ar[None, :] <= i[:, None]), ar[None, :], -1).max(1)
    left = np.maximum(left, 0)
    right = np.where(below & (ar[None, :] >= i[:, None]), ar[None, :], L + 1).min(1)
    right = np.where(right > L, ln - 1, right)
    rows = np.arange(G)
    fwhm = np.abs(x[rows, right] - x[rows, left])
    fwhm = np.where(fwhm == 0, 3 * np.abs(x[:, 1] - x[:, 0]), fwhm)
    return s, c0, x[rows, i], fwhm, h


def _trapezoid(hz: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Trapezoid weights of each row over its valid points (ingest.processing.peaks._trapezoid_weights)."""
    d = np.abs(np.diff(hz, axis=1)) * (valid[:, 1:])
    w = np.zeros(hz.shape)
    w[:, :-1] += d / 2.0
    w[:, 1:] += d / 2.0
    return w


def window_integrals(ppm: np.ndarray, real: np.ndarray, windows: Sequence[tuple[float, float]], *,
                     sfo1_hz: float, noise: float, noise_corr: float, rows: Sequence[int] | None = None
                     ) -> list[PeakFit]:
    """:func:`ingest.processing.peaks.integrate_window` with ``baseline='none'``, every row at once
    (or the given ``rows`` of ``real``; ``windows`` then holds one window per given row)."""
    rows = list(range(real.shape[0])) if rows is None else list(rows)
    ranges = window_slices(ppm, windows)
    out: list[PeakFit] = []
    nb = _batch_kernels(None)
    got = _integrals_compiled(nb, ppm, real, rows, ranges, sfo1_hz, noise, noise_corr) if nb is not None else None
    if got is not None:
        area, err, height, center = got.T
    else:
        y, idx, valid = _gather(real, dict(zip(rows, ranges)), rows)
        x = ppm[idx]
        w = _trapezoid(x * sfo1_hz * 1e-6, valid)
        area = (w * y).sum(1)
        err = noise * np.sqrt(max(1.0, noise_corr) * (w * w).sum(1))
        yv = np.where(valid, y, -np.inf)
        height = yv.max(1)
        pos = np.where(valid, np.clip(y, 0, None), 0.0)
        psum = pos.sum(1)
        center = np.where(psum > 0, (x * pos).sum(1) / np.where(psum > 0, psum, 1.0), NAN)
    for b, (i0, i1) in enumerate(ranges):
        lo, hi = sorted(windows[b])
        if i1 - i0 < 3:
            out.append(_new_fit(NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, False, (lo, hi), i1 - i0, "integral",
                                ("too few points in window",)))
            continue
        snr = float(height[b] / noise) if noise > 0 else math.inf
        out.append(_new_fit(float(center[b]), NAN, NAN, NAN, float(area[b]), float(err[b]), float(height[b]), snr,
                            NAN, True, (float(lo), float(hi)), int(i1 - i0), "integral",
                            _NO_PEAK if snr < 5 else ()))
    return out


def _model_jac(q: np.ndarray, xc: np.ndarray, J: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Model and Jacobian rows (amplitude, center, sigma, slope, intercept), every spectrum.

    ``J`` has shape (B, 5, n) (one contiguous row per parameter); when given, its last two
    rows (``xc`` and 1) are taken as already filled and only the first three are written.
    """
    A, c, sg, sl, ic = (q[:, k:k + 1] for k in range(5))
    u = xc - c
    u2 = u * u
    s2 = sg * sg
    d = u2 + s2
    inv = 1.0 / d
    L = (sg / np.pi) * inv
    model = A * L
    model += sl * xc
    model += ic
    k = (A / np.pi) * inv * inv
    if J is None:
        J = np.empty((xc.shape[0], 5, xc.shape[1]))
        J[:, 3] = xc
        J[:, 4] = 1.0
    J[:, 0] = L
    np.multiply(k * (2.0 * sg), u, out=J[:, 1])
    np.multiply(k, u2 - s2, out=J[:, 2])
    return model, J


def _normal(J: np.ndarray, w: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``J^T W^2 J`` (B, 5, 5) and ``J^T W r`` (B, 5) of weighted residuals ``r``."""
    Jw = J * w[:, None, :]
    return Jw @ Jw.transpose(0, 2, 1), (Jw @ r[..., None])[..., 0]


#: The compiled passes start each fit from the linear start solved in the kernel
#: (:func:`ingest.processing.lorentz_rows_nb.linear_rows`: sums in point order, a 3x3 elimination)
#: instead of numpy's batched products and solve (~0.3 of the fits' time): the same start to
#: round-off, so the same optimum within the fit's stopping tolerance (the fitted values move by
#: < 1e-4 of their standard errors, tests/test_lorentz_rows_nb.py); False gives the numpy steps'
#: bits (what the tests of the other compiled passes compare with).
COMPILED_LINEAR_START = True


def _linear_basis(q0: np.ndarray, X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weighted basis (area, slope, intercept) of :func:`_linear_start` at the guess's centre
    and width, (G, 3, n), and the weighted values (G, n)."""
    sg = q0[:, 2:3]
    u = X - q0[:, 1:2]
    L = (sg / np.pi) / (u * u + sg * sg)
    return np.stack([L * W, X * W, W], axis=1), Y * W


def _linear_start(q0: np.ndarray, X: np.ndarray, Y: np.ndarray, W: np.ndarray, lb: np.ndarray, ub: np.ndarray,
                  basis: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The guess with its linear parameters (area, slope, intercept) solved exactly for its centre
    and width: a start much nearer the optimum (fewer iterations, the same optimum).  Rows
    whose solution leaves the bounds or is not finite keep their guess.  ``basis``: the
    :func:`_linear_basis` of the arguments when already computed (the compiled pass)."""
    Bm, yw = _linear_basis(q0, X, Y, W) if basis is None else basis
    A = Bm @ Bm.transpose(0, 2, 1)
    b = (Bm @ yw[..., None])[..., 0]
    q = q0.copy()
    try:
        sol = np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return q
    ok = np.isfinite(sol).all(1) & (sol[:, 0] > 0)
    q[ok, 0], q[ok, 3], q[ok, 4] = sol[ok, 0], sol[ok, 1], sol[ok, 2]
    inside = np.all((q >= lb) & (q <= ub), axis=1)
    q[~inside] = q0[~inside]
    return q


def _lm(q: np.ndarray, xc: np.ndarray, y: np.ndarray, w: np.ndarray, max_iter: int = 200
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Levenberg-Marquardt on every row (rows that converged drop out); returns (q, chi2, converged).

    MINPACK-style damping ``JTJ + lam * diag(JTJ)``; a step is kept when it does not raise
    chi-square, then ``lam`` /= 10, else ``lam`` *= 10.  Arrays of the rows still running
    are compacted only when fewer than half of them remain (no per-iteration copies).
    """
    q = q.copy()
    B = q.shape[0]
    lam = np.full(B, 1e-3)
    model, J = _model_jac(q, xc)
    r = (model - y) * w
    chi2 = np.einsum("bn,bn->b", r, r)
    done = np.zeros(B, dtype=bool)
    eye = np.eye(5)
    rows = np.arange(B)  # the rows the working arrays hold
    Xa, Ya, Wa = xc, y, w
    for _ in range(max_iter):
        live = ~done[rows]
        if not live.any():
            break
        if live.sum() < 0.5 * rows.size:  # compact the working set
            rows = rows[live]
            Xa, Ya, Wa, J, r = Xa[live], Ya[live], Wa[live], J[live], r[live]
            live = np.ones(rows.size, dtype=bool)
        JTJ, g = _normal(J, Wa, r)
        diag = np.einsum("bii->bi", JTJ)
        M = JTJ + lam[rows][:, None, None] * diag[:, :, None] * eye
        try:
            step = np.linalg.solve(M, -g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        qa = q[rows]
        qn = qa + step
        mn, Jn = _model_jac(qn, Xa)
        rn = (mn - Ya) * Wa
        cn = np.einsum("bn,bn->b", rn, rn)
        ca = chi2[rows]
        better = (cn <= ca) & np.isfinite(cn) & live
        # MINPACK's tests at fit_peak's tolerances (ftol = xtol = 1e-10), taken as MINPACK takes
        # them whether or not the step is kept: at the optimum, rounding makes chi-square rise by
        # ~1e-16 relative and waiting for lam to pass 1e12 would cost ~15 iterations
        small = live & np.isfinite(cn) & ((np.abs(ca - cn) <= 1e-10 * ca)
                                          | (np.abs(step) <= 1e-10 * (np.abs(qa) + 1e-30)).all(1))
        if better.any():
            rb = rows[better]
            q[rb], chi2[rb] = qn[better], cn[better]
            r[better], J[better] = rn[better], Jn[better]
        la = lam[rows]
        lam[rows] = np.where(live, np.where(better, la / 10.0, la * 10.0), la)
        done[rows] |= live & (small | (lam[rows] > 1e12))
    return q, chi2, done & (lam <= 1e12)


def _lm_compiled() -> Any:
    """The compiled twin of :func:`_lm` (:func:`ingest.processing.lorentz_nb.lm_rows`), or None.

    Loaded by :func:`ingest.processing.lorentz_nb.load_kernels` (numba's import costs ~1 s in
    a new process: :func:`load_compiled` decides when that pays; compiled once per machine).
    Same iteration and tests as :func:`_lm`, one row at a time in one pass over its points
    per iteration.  None without numba or with ``FLOWCELL_NUMBA=0``.
    """
    k = lorentz_nb.load_kernels()
    return k.lm_rows if k is not None else None


def load_compiled() -> bool:
    """Load the compiled line fits now (before forking workers, before a long batch), and with
    them the batch transform's compiled preparation pass (:mod:`ingest.processing.zf_fft_nb`).

    Returns
    -------
    bool
        True when :func:`fit_lorentzians` will use them by default from now on.
    """
    ok = _lm_compiled() is not None and lorentz_batch_nb.load() is not None and lorentz_rows_nb.load() is not None
    if ok:
        # the batch engine's pass, loaded with the fits
        from ingest.processing import zf_fft_nb

        zf_fft_nb.load()
    return ok


def _batch_kernels(compiled: bool | None) -> Any:
    """The compiled passes (:mod:`ingest.processing.lorentz_batch_nb`) when ``compiled`` asks for
    them (None: once loaded), else None."""
    if not (compiled or (compiled is None and lorentz_nb.kernels())):
        return None
    return lorentz_batch_nb.load() if lorentz_nb.load_kernels() is not None else None


def _integrals_compiled(nb: Any, ppm: np.ndarray, real: np.ndarray, rows: Sequence[int],
                        ranges: Sequence[tuple[int, int]], sfo1_hz: float, noise: float, noise_corr: float
                        ) -> np.ndarray | None:
    """(area, area error, height, centroid) of each row by the compiled pass, (G, 4); None when
    the numpy steps must decide (no row, an empty window, a value that is not finite)."""
    if not rows:
        return None
    rg = np.array(ranges, dtype=np.int64).reshape(-1, 2)
    ln = rg[:, 1] - rg[:, 0]
    if ln.max() < 1:
        return None
    vals = np.empty((len(rows), 4))
    ok = nb.integral_rows(ppm, real, np.asarray(rows, dtype=np.int64), rg[:, 0].copy(), ln, float(sfo1_hz),
                          float(noise), float(noise_corr), vals)
    return vals if ok else None


def _fit_compiled(nb: Any, out: list[PeakFit | None], ppm: np.ndarray, real: np.ndarray,
                  windows: Sequence[tuple[float, float]], *, sfo1_hz: float, snr_min: float, noise: float,
                  noise_corr: float, max_points: int) -> bool:
    """:func:`fit_lorentzians` with the compiled passes, into ``out``: one pass over the rows
    (:func:`ingest.processing.lorentz_rows_nb.prepare_rows`), then per stride the points and the
    linear start, the Levenberg-Marquardt, the covariances and the
    PeakFits.  False (``out`` untouched) when a window holds a value that is not finite: the
    numpy steps then."""
    rk = lorentz_rows_nb.load()
    if rk is None:
        return False
    w = np.asarray(windows, dtype=float).reshape(-1, 2)
    B = w.shape[0]
    ri = np.empty((3, B), dtype=np.int64)  # rows, i0s, lns
    lo, hi, guess, ints = np.empty(B), np.empty(B), np.empty((B, 5)), np.empty((B, 4))  # contiguous: the kernels'
    stride, flag, npts = np.ones(B, dtype=np.int64), np.empty(B, dtype=np.int64), np.zeros(B, dtype=np.int64)
    G = rk.prepare_rows(ppm, real, w, float(snr_min), float(noise), int(max_points), float(sfo1_hz),
                        float(noise_corr), ri[0], ri[1], ri[2], lo, hi, guess, stride, flag, ints, npts)
    if G <= 0:
        return G == 0
    r, i0s, lns = ri[0, :G], ri[1, :G], ri[2, :G]
    fl = flag[:G].tolist()
    if 1 in fl:  # fit_peak: no fit, the windowed integral with the guess's height
        gl = np.flatnonzero(flag[:G] == 1)
        h = guess[gl, 4]
        for b, (ar, ae, _, _), hh, snr, lo_, hi_, n in zip(r[gl].tolist(), ints[gl].tolist(), h.tolist(),
                                                           (h / noise).tolist(), lo[gl].tolist(), hi[gl].tolist(),
                                                           lns[gl].tolist()):
            out[b] = _new_fit(NAN, NAN, NAN, NAN, ar, ae, hh, snr, NAN, False, (lo_, hi_), n, "lorentzian",
                              _NO_PEAK)
    if 0 not in fl:
        return True
    f = np.flatnonzero(flag[:G] == 0)
    st = stride[f]
    strides = sorted(set(st.tolist()))
    S = f.size
    q, lb, ub, JTJ, chi2, ok = np.empty((S, 5)), np.empty((S, 5)), np.empty((S, 5)), np.empty((S, 5, 5)), \
        np.empty(S), np.empty(S, dtype=np.bool_)
    nf = npts[f]
    for s in strides:
        e = slice(None) if len(strides) == 1 else np.flatnonzero(st == s)  # one group a stride, as the numpy steps
        ne = nf[e]
        n_max = int(ne.max())
        Sg = ne.size
        X, Y, W, YW, Bm = _scratch(Sg, n_max)
        q0 = np.empty((Sg, 5))
        lbs, ubs = (lb, ub) if len(strides) == 1 else (np.empty((Sg, 5)), np.empty((Sg, 5)))
        nb.group_rows(ppm, real, f[e], r, i0s, lns, s, guess, lo, hi, X, Y, W, q0, lbs, ubs, Bm, YW)
        if COMPILED_LINEAR_START:
            qs = np.empty_like(q0)
            rk.linear_rows(q0, X, Y, W, ne, lbs, ubs, qs)  # summed in point order: numpy's last bits move
        else:
            qs = _linear_start(q0, X, Y, W, lbs, ubs, basis=(Bm, YW))  # numpy's sums: the numpy steps' bits
        if len(strides) == 1:
            nb.lm_rows_unit(qs, X, Y, ne, 200, chi2, ok, JTJ)
            q = qs
        else:
            c2, oks, J = np.empty(Sg), np.empty(Sg, dtype=np.bool_), np.empty((Sg, 5, 5))
            nb.lm_rows_unit(qs, X, Y, ne, 200, c2, oks, J)
            q[e], chi2[e], ok[e], JTJ[e], lb[e], ub[e] = qs, c2, oks, J, lbs, ubs
    infl = np.full(S, _inflation(noise_corr, strides[0])) if len(strides) == 1 else \
        np.array([_inflation(noise_corr, s) for s in st.tolist()])
    F, flags = np.empty((S, 9)), np.empty((S, 4), dtype=np.bool_)
    lof, hif = lo[f], hi[f]
    nb.result_cols(q, chi2, ok, _cov_diag(JTJ), lb, ub, nf, guess[f, 2], lof, hif, infl, sfo1_hz * 1e-6, float(noise),
                   F, flags)
    for b, pf in zip(r[f].tolist(), _peak_fits(zip(*flags.T.tolist(), *F.T.tolist(), lof.tolist(), hif.tolist(),
                                                   nf.tolist()))):
        out[b] = pf
    return True


def _scratch(S: int, n: int) -> tuple[np.ndarray, ...]:
    """Work arrays of one stride group, (S, n) x 4 and (S, 3, n), carved from this thread's
    buffer (kept between calls: fresh arrays of this size are new pages to fault in, which
    costs more than filling them); each view starts on a 64-byte boundary, as a fresh array."""
    k = -(-S * n // 8) * 8
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < 7 * k:
        buf = _SCRATCH.buf = np.empty(7 * k + 8)
    o = (-buf.ctypes.data % 64) // 8
    v = [buf[o + j * k:o + j * k + S * n].reshape(S, n) for j in range(4)]
    return (*v, buf[o + 4 * k:o + 4 * k + 3 * S * n].reshape(S, 3, n))


_SCRATCH = threading.local()


def fit_lorentzians(ppm: np.ndarray, real: np.ndarray, windows: Sequence[tuple[float, float]], *,
                    sfo1_hz: float, snr_min: float, noise: float, noise_corr: float,
                    max_points: int = 2048, compiled: bool | None = None) -> list[PeakFit | None]:
    """Fit one Lorentzian + line per spectrum (row of ``real``) in its window.

    Parameters
    ----------
    ppm : ndarray, shape (n,)
        Shared axis, ppm, decreasing.
    real : ndarray, shape (B, n)
        Baseline-corrected real spectra.
    windows : list of (lo, hi)
        One window per spectrum, ppm.
    sfo1_hz : float
        Observe frequency, Hz.
    snr_min, noise, noise_corr : float
        As :func:`ingest.processing.peaks.fit_peak`.
    compiled : bool or None
        True: the compiled Levenberg-Marquardt (numba; same optimum, several times faster),
        loading it if needed; False: the numpy one; None: the compiled one once it is loaded
        (:func:`load_compiled`), else numpy.

    Returns
    -------
    list of PeakFit or None
        None where ``fit_peak`` must decide (see the module docstring).
    """
    B = real.shape[0]
    out: list[PeakFit | None] = [None] * B
    if B == 0 or not (noise > 0):
        return out
    nb = _batch_kernels(compiled)
    if nb is not None and _fit_compiled(nb, out, ppm, real, windows, sfo1_hz=sfo1_hz, snr_min=snr_min, noise=noise,
                                        noise_corr=noise_corr, max_points=max_points):
        return out
    ranges = window_slices(ppm, windows)
    rows = [b for b, (i0, i1) in enumerate(ranges) if i1 - i0 >= 8]
    if not rows:
        return out
    y, idx, valid = _gather(real, ranges, rows)
    x = ppm[idx]
    s, c0, c, fwhm, h = _guesses(x, y, valid)
    low = h < snr_min * noise
    if low.any():  # fit_peak: no fit, the windowed integral with the guess's height
        lows = [rows[g] for g in np.flatnonzero(low)]
        ints = window_integrals(ppm, real, [windows[b] for b in lows], sfo1_hz=sfo1_hz, noise=noise,
                                noise_corr=noise_corr, rows=lows)
        for g, b, pf in zip(np.flatnonzero(low), lows, ints):
            out[b] = PeakFit(NAN, NAN, NAN, NAN, pf.area, pf.area_err, float(h[g]), float(h[g] / noise), NAN, False,
                             pf.window, pf.n_points, "lorentzian", ("no peak above noise",))
    prep: dict[int, list[tuple]] = {}
    for g, b in enumerate(rows):
        if low[g]:
            continue
        i0, i1 = ranges[b]
        dx = abs(ppm[i0 + 1] - ppm[i0])
        stride = int(max(1, min(math.ceil((i1 - i0) / max_points), fwhm[g] / dx // 8)))
        prep.setdefault(stride, []).append((b, i0, i1, windows[b], float(s[g]), float(c0[g]), float(c[g]),
                                            float(fwhm[g]), float(h[g])))
    for stride, items in prep.items():
        for b, pf in zip([it[0] for it in items], _fit_group(ppm, real, items, stride, sfo1_hz, noise, noise_corr,
                                                                 compiled)):
            out[b] = pf
    return out


def _fit_group(ppm: np.ndarray, real: np.ndarray, items: list[tuple], stride: int, sfo1_hz: float,
               noise: float, noise_corr: float, compiled: bool | None = None) -> list[PeakFit | None]:
    n_max = max(len(range(i0, i1, stride)) for _, i0, i1, *_ in items)
    G = len(items)
    X = np.zeros((G, n_max))
    Y = np.zeros((G, n_max))
    W = np.zeros((G, n_max))
    q0 = np.zeros((G, 5))
    lb = np.zeros((G, 5))
    ub = np.zeros((G, 5))
    npts = np.zeros(G, dtype=int)
    for g, (b, i0, i1, win, s, c0, c, fwhm, h) in enumerate(items):
        x, y = ppm[i0:i1:stride], real[b, i0:i1:stride]
        n = x.size
        npts[g] = n
        X[g, :n], Y[g, :n], W[g, :n] = x - c, y, 1.0
        X[g, n:] = X[g, n - 1]
        lo, hi = sorted(win)
        sig0 = fwhm / 2.0
        lb[g] = [-np.inf, lo - c, 1e-7, -np.inf, -np.inf]
        ub[g] = [np.inf, hi - c, hi - lo, np.inf, np.inf]
        span = np.where(np.isfinite(ub[g] - lb[g]), ub[g] - lb[g], 0.0)
        q0[g] = np.clip([h * math.pi * sig0, 0.0, sig0, s, c0 + s * c], lb[g] + 1e-9 * span, ub[g] - 1e-9 * span)
    q1 = _linear_start(q0, X, Y, W, lb, ub)
    nb = _lm_compiled() if compiled or (compiled is None and lorentz_nb.kernels()) else None
    unit = lorentz_batch_nb.kernels() if nb is not None else None
    if unit is not None:  # the compiled passes' Levenberg-Marquardt: the same iterations, the same sums
        q, chi2, ok, JTJ = q1.copy(), np.zeros(G), np.zeros(G, dtype=bool), np.zeros((G, 5, 5))
        unit.lm_rows_unit(q, X, Y, npts.astype(np.int64), 200, chi2, ok, JTJ)
    elif nb is not None:
        q, chi2, ok, JTJ = q1.copy(), np.zeros(G), np.zeros(G, dtype=bool), np.zeros((G, 5, 5))
        nb(q, X, Y, W, npts, 200, chi2, ok, JTJ)
    else:
        q, chi2, ok = _lm(q1, X, Y, W)
        _, J = _model_jac(q, X)
        JTJ, _ = _normal(J, W, np.zeros_like(Y))
    wins = np.array([sorted(it[3]) for it in items], dtype=float)
    return _results(q, chi2, ok, JTJ, lb, ub, npts, np.array([it[6] for it in items]), wins, stride,
                    sfo1_hz, noise, noise_corr)
