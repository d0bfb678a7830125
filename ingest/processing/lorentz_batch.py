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
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ingest.processing.peaks import PeakFit

__all__ = ["fit_lorentzians", "window_slices"]

NAN = float("nan")


def window_slices(ppm: np.ndarray, windows: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    """Index ranges ``[i0, i1)`` of ``lo <= ppm <= hi`` on a decreasing axis, one per window."""
    rev = ppm[::-1]
    n = ppm.size
    out = []
    for lo, hi in windows:
        a = int(np.searchsorted(rev, lo, side="left"))   # first rev index with rev >= lo
        b = int(np.searchsorted(rev, hi, side="right"))  # first rev index with rev > hi
        out.append((n - b, n - a))
    return out


def _guesses(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float, float]:
    """fit_peak's edge baseline (slope, intercept) and guess (centre, fwhm, height)."""
    k = max(2, int(len(x) * 0.05))
    x1, y1 = np.median(x[:k]), np.median(y[:k])
    x2, y2 = np.median(x[-k:]), np.median(y[-k:])
    s = float((y2 - y1) / (x2 - x1)) if x2 != x1 else 0.0
    c0 = float(y1 - s * x1)
    yb = y - (s * x + c0)
    i = int(np.argmax(yb))
    h = float(yb[i])
    half = h / 2.0
    below_l = np.flatnonzero(yb[:i + 1][::-1] <= half)
    left = i - int(below_l[0]) if below_l.size else 0
    below_r = np.flatnonzero(yb[i:] <= half)
    right = i + int(below_r[0]) if below_r.size else y.size - 1
    fwhm = abs(x[right] - x[left])
    if fwhm == 0:
        fwhm = 3 * abs(x[1] - x[0])
    return s, c0, float(x[i]), float(fwhm), h


def _model_jac(q: np.ndarray, xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    A, c, sg, sl, ic = (q[:, k:k + 1] for k in range(5))
    u = xc - c
    d = u * u + sg * sg
    L = sg / (np.pi * d)
    model = A * L + sl * xc + ic
    k = A / np.pi / (d * d)
    J = np.stack([L, k * 2.0 * sg * u, k * (u * u - sg * sg), xc, np.ones_like(xc)], axis=-1)
    return model, J


def _lm(q: np.ndarray, xc: np.ndarray, y: np.ndarray, w: np.ndarray, max_iter: int = 200
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Levenberg-Marquardt on every row; returns (q, chi2, converged)."""
    B = q.shape[0]
    lam = np.full(B, 1e-3)
    model, J = _model_jac(q, xc)
    r = (model - y) * w
    chi2 = np.einsum("bn,bn->b", r, r)
    done = np.zeros(B, dtype=bool)
    eye = np.eye(5)
    for _ in range(max_iter):
        Jw = J * w[..., None]
        JTJ = np.einsum("bni,bnj->bij", Jw, Jw)
        g = np.einsum("bni,bn->bi", Jw, r)
        diag = np.einsum("bii->bi", JTJ)
        M = JTJ + lam[:, None, None] * diag[:, :, None] * eye
        try:
            step = np.linalg.solve(M, -g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        step[done] = 0.0
        qn = q + step
        mn, Jn = _model_jac(qn, xc)
        rn = (mn - y) * w
        cn = np.einsum("bn,bn->b", rn, rn)
        better = (cn <= chi2) & np.isfinite(cn) & ~done
        small = better & ((chi2 - cn) <= 1e-13 * chi2) & (np.abs(step) <= 1e-10 * (np.abs(q) + 1e-30)).all(1) \
            | better & ((chi2 - cn) <= 1e-15 * chi2)
        q = np.where(better[:, None], qn, q)
        r = np.where(better[:, None], rn, r)
        J = np.where(better[:, None, None], Jn, J)
        chi2 = np.where(better, cn, chi2)
        lam = np.where(better, lam / 10.0, lam * 10.0)
        done |= small | (lam > 1e12)
        if done.all():
            break
    return q, chi2, done & (lam <= 1e12)


def fit_lorentzians(ppm: np.ndarray, real: np.ndarray, windows: Sequence[tuple[float, float]], *,
                    sfo1_hz: float, snr_min: float, noise: float, noise_corr: float,
                    max_points: int = 2048) -> list[PeakFit | None]:
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

    Returns
    -------
    list of PeakFit or None
        None where ``fit_peak`` must decide (see the module docstring).
    """
    B = real.shape[0]
    out: list[PeakFit | None] = [None] * B
    ranges = window_slices(ppm, windows)
    prep: dict[int, list[tuple]] = {}
    for b, ((i0, i1), win) in enumerate(zip(ranges, windows)):
        if i1 - i0 < 8 or not (noise > 0):
            continue
        x, y = ppm[i0:i1], real[b, i0:i1]
        s, c0, c, fwhm, h = _guesses(x, y)
        if h < snr_min * noise:
            continue
        dx = abs(x[1] - x[0])
        stride = int(max(1, min(math.ceil(x.size / max_points), fwhm / dx // 8)))
        prep.setdefault(stride, []).append((b, i0, i1, win, s, c0, c, fwhm, h))
    for stride, items in prep.items():
        for b, pf in zip([it[0] for it in items], _fit_group(ppm, real, items, stride, sfo1_hz, noise, noise_corr)):
            out[b] = pf
    return out


def _fit_group(ppm: np.ndarray, real: np.ndarray, items: list[tuple], stride: int, sfo1_hz: float,
               noise: float, noise_corr: float) -> list[PeakFit | None]:
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
    q, chi2, ok = _lm(q0, X, Y, W)
    _, J = _model_jac(q, X)
    Jw = J * W[..., None]
    JTJ = np.einsum("bni,bnj->bij", Jw, Jw)
    corr = max(1.0, noise_corr / stride) if stride > 1 else noise_corr
    infl = math.sqrt(max(1.0, float(corr))) if corr != 1.0 else 1.0
    to_hz = sfo1_hz * 1e-6
    res: list[PeakFit | None] = []
    for g, (b, i0, i1, win, s, c0, c, fwhm, h) in enumerate(items):
        inside = bool(np.all(q[g] >= lb[g]) and np.all(q[g] <= ub[g]))
        if not (ok[g] and inside):
            res.append(None)  # fit_peak's bounded refit decides
            continue
        n = int(npts[g])
        redchi = float(chi2[g]) / max(1, n - 5)
        try:
            err = np.sqrt(np.clip(np.diag(np.linalg.inv(JTJ[g]) * redchi), 0, None))
            ok_cov = bool(np.all(np.isfinite(err)))
        except np.linalg.LinAlgError:
            err, ok_cov = np.full(5, NAN), False
        lo, hi = sorted(win)
        a, ae = float(q[g, 0]), float(err[0]) * infl
        cc, ce = float(q[g, 1]) + c, float(err[1]) * infl
        sg, se = float(q[g, 2]), float(err[2]) * infl
        height = a / (math.pi * sg)
        warn = [] if ok_cov else ["uncertainties not estimated"]
        edge = max(sg, 0.02 * (hi - lo))
        if cc - lo < edge or hi - cc < edge:
            warn.append("peak at window edge")
        if 2 * sg > 0.5 * (hi - lo):
            warn.append("peak wider than half the window")
        res.append(PeakFit(center_ppm=cc, center_err_ppm=ce, fwhm_hz=2 * sg * to_hz, fwhm_err_hz=2 * se * to_hz,
                           area=a * to_hz, area_err=ae * to_hz, height=float(height),
                           snr=float(height / noise) if noise > 0 else math.inf, redchi=redchi, success=ok_cov,
                           window=(float(lo), float(hi)), n_points=n, method="lorentzian", warnings=tuple(warn)))
    return res
