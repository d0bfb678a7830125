"""The single Lorentzian + baseline fit of one window (the line fit on every live spectrum).

:func:`fit_lorentzian_fast` is the model of :func:`ingest.processing.peaks.fit_peak` for
``shape='lorentzian'`` solved with its analytic Jacobian: by the compiled or numpy
Levenberg-Marquardt of :mod:`ingest.processing.lsq_numpy` (``solver='numpy'``, warm start
from the previous spectrum's line), else MINPACK (``scipy.optimize.least_squares``), with a
bounded trust-region refit when the free optimum leaves the window.  Standard errors as
lmfit's ``scale_covar`` (tests/test_peaks.py, tests/test_live_fast.py).
"""

from __future__ import annotations

import math

import numpy as np

from ingest.processing import lorentz_nb
from ingest.processing.linalg_fast import (
    inv as _inverse,  # np.linalg.inv without its wrapper (~7 us of 15 a fit)
)
from ingest.processing.lsq_numpy import (
    lm_compiled_lorentz,
    lm_numpy,
    lorentz_line,
    lorentz_line_jac,
)
from ingest.processing.peak_fit import NAN, PeakFit, empty_fit

__all__ = ["fit_lorentzian_fast"]


def _least_squares(*args, **kwargs):
    """``scipy.optimize.least_squares``, imported on first use (~0.1 s of imports; the live
    path's compiled fit rarely needs it)."""
    from scipy.optimize import least_squares

    return least_squares(*args, **kwargs)


def fit_lorentzian_fast(x, y, window, c, fwhm, h, s, c0, baseline, sfo1_hz, sigma_noise,
                        start=None, solver="minpack", noise_corr=1.0) -> PeakFit:
    """Lorentzian + baseline by ``scipy.optimize.least_squares`` with the analytic Jacobian.

    The same model and the same standard errors as an lmfit ``Model`` fit
    (covariance ``inv(J^T J)`` scaled by the reduced chi-square, lmfit's
    ``scale_covar``), without lmfit's per-fit overhead: building, copying and
    evaluating ``Parameters`` (asteval) cost ~11 ms per fit against ~0.5 ms of
    arithmetic, i.e. most of the per-spectrum time of the live pipeline
    (cProfile, benchmarks/bench_nmr_pipeline.py).  Voigt and multiplet fits
    keep lmfit.  x is centred on the guess to decorrelate slope and intercept.
    FWHM = 2*sigma, height = amplitude/(pi*sigma); their errors follow from
    the covariance, multiplied by ``sqrt(max(1, noise_corr))`` (the noise correlation length
    in points, :func:`ingest.processing.peaks.fit_peak`; 1 leaves them as they are).

    ``solver='numpy'`` with a linear baseline (the live path): the compiled fit
    (:func:`ingest.processing.lorentz_nb.lm_lorentz`) is called with its bounds and start
    computed on Python floats, the same numbers as the general path below (which it falls
    back to without numba, or when that fit does not converge inside the bounds).
    """
    lo, hi = window
    n = x.size
    if baseline not in ("linear", "constant", "none"):
        raise ValueError(f"baseline must be 'linear', 'constant' or 'none', got {baseline!r}")
    if solver == "numpy" and baseline == "linear":
        got = _fit_compiled(x, y, lo, hi, c, fwhm, h, s, c0, start)
        if got is not None:
            q, chi2 = got[0], got[1]
            redchi = chi2 / max(1, n - 5)
            ae, ce, se, ok_cov = _errors(got[2], redchi)
            return _result(q[0], q[1] + c, q[2], ae, ce, se, ok_cov, redchi, window, n, sfo1_hz,
                           sigma_noise, noise_corr)
    xc = x - c
    sig0 = fwhm / 2.0
    full = np.array([h * math.pi * sig0, 0.0, sig0, s, c0 + s * c])
    free = np.array([True, True, True, baseline == "linear", baseline != "none"])
    if baseline == "constant":
        full[3] = 0.0
    elif baseline == "none":
        full[3:] = 0.0
    lb = np.array([-np.inf, lo - c, 1e-7, -np.inf, -np.inf])[free]
    ub = np.array([np.inf, hi - c, hi - lo, np.inf, np.inf])[free]
    span = np.where(np.isfinite(ub - lb), ub - lb, 0.0)
    lb_in, ub_in = lb + 1e-9 * span, ub - 1e-9 * span  # starts kept strictly inside the bounds
    p0 = np.minimum(np.maximum(full[free], lb_in), ub_in)  # np.clip's values, less overhead

    def unpack(q):
        p = full.copy()
        p[free] = q
        return p

    def resid(q):
        return lorentz_line(xc, *unpack(q)) - y

    def jac(q):
        p = unpack(q)
        return lorentz_line_jac(xc, p[0], p[1], p[2])[:, free]

    res = None
    if solver == "numpy":
        # the same optimum as MINPACK below (tests/test_live_fast.py), from the previous
        # spectrum's line when given (warm start: ``start`` = (area, centre, HWHM) in ppm units)
        q0 = p0
        if start is not None:
            st = full.copy()
            st[0], st[1], st[2] = float(start[0]), float(start[1]) - c, float(start[2])
            q0 = np.minimum(np.maximum(st[free], lb_in), ub_in)
        lam0 = 1e-6 if start is not None else 1e-3
        res = lm_compiled_lorentz(xc, y, q0, lb, ub, lam0) if free.all() else None
        if res is None:
            res = lm_numpy(resid, jac, q0, lb, ub, lam0=lam0)
        if not res.success:
            res = None
    try:
        # MINPACK Levenberg-Marquardt (as lmfit's leastsq) first: ~5x faster than the
        # bounded trust-region method; the bounds (centre in the window, 0 < HWHM < window)
        # are enforced by refitting with 'trf' only when the free optimum leaves them.
        if res is None:
            res = _least_squares(resid, p0, jac=jac, method="lm", x_scale="jac",
                                ftol=1e-10, xtol=1e-10, gtol=1e-10, max_nfev=200)
        if not (res.success and (res.x >= lb).all() and (res.x <= ub).all()):
            res = _least_squares(resid, p0, jac=jac, bounds=(lb, ub), method="trf", x_scale="jac",
                                ftol=1e-10, xtol=1e-10, gtol=1e-10, max_nfev=200)
    except Exception as exc:  # scipy failures become diagnostics, not crashes
        return empty_fit(window, n, "lorentzian", [f"fit failed: {exc}"])
    pv = unpack(res.x)
    nfree = int(np.count_nonzero(free))
    dof = max(1, n - nfree)
    chi2 = getattr(res, "chi2", None)  # the compiled fit's sum of squares, else from the residuals
    chi2 = float((res.fun * res.fun).sum()) if chi2 is None else float(chi2)
    redchi = chi2 / dof
    J = res.jac
    try:
        cov = np.linalg.inv(J.T @ J if J is not None else res.jtj) * redchi
        err = np.full(5, NAN)
        err[free] = np.sqrt(np.maximum(cov.diagonal(), 0.0))
        ok_cov = bool(np.isfinite(err[free]).all())
    except np.linalg.LinAlgError:
        err = np.full(5, NAN)
        ok_cov = False
    return _result(float(pv[0]), float(pv[1]) + c, float(pv[2]), float(err[0]), float(err[1]),
                   float(err[2]), bool(res.success and ok_cov), redchi, window, n, sfo1_hz, sigma_noise,
                   noise_corr)


def _clamp(v: float, a: float, b: float) -> float:
    """``np.minimum(np.maximum(v, a), b)`` of Python floats (NaN propagated, the same ties)."""
    if math.isnan(v) or math.isnan(a) or math.isnan(b):
        return math.nan
    return min(max(v, a), b)  # max(v, a) is v unless a > v: numpy's choice on ties too


#: Point weights of the live fit (all ones), shared, grown as needed; read-only to the kernel.
_ONES = np.ones(0)


def _ones(n: int) -> np.ndarray:
    global _ONES
    if _ONES.size < n:
        _ONES = np.ones(max(n, 4096))
    return _ONES[:n]


def _fit_compiled(x, y, lo, hi, c, fwhm, h, s, c0, start):
    """The ``solver='numpy'``, linear-baseline fit by the compiled kernel: (parameters as
    Python floats, the centre relative to ``c``; sum of squares; ``J^T J``), or None without
    numba or when it did not converge inside the bounds.  The bounds, start and damping of
    the general path of :func:`fit_lorentzian_fast`, computed on floats (the same values)."""
    k = lorentz_nb.load_kernels()
    if k is None:
        return None
    sig0 = fwhm / 2.0
    lb1, ub1, ub2 = lo - c, hi - c, hi - lo
    d1, d2 = ub1 - lb1, ub2 - 1e-7
    span1 = d1 if math.isfinite(d1) else 0.0
    span2 = d2 if math.isfinite(d2) else 0.0
    lo1, hi1 = lb1 + 1e-9 * span1, ub1 - 1e-9 * span1  # starts kept strictly inside the bounds
    lo2, hi2 = 1e-7 + 1e-9 * span2, ub2 - 1e-9 * span2
    if start is None:
        q0 = [h * math.pi * sig0, _clamp(0.0, lo1, hi1), _clamp(sig0, lo2, hi2), s, c0 + s * c]
        lam0 = 1e-3
    else:
        q0 = [float(start[0]), _clamp(float(start[1]) - c, lo1, hi1), _clamp(float(start[2]), lo2, hi2),
              s, c0 + s * c]
        lam0 = 1e-6
    q = np.array(q0, dtype=float)
    jtj = np.empty((5, 5))
    xs, ys = np.ascontiguousarray(x - c, dtype=float), np.ascontiguousarray(y, dtype=float)
    ok, chi2 = k.lm_lorentz(q, xs, ys, _ones(xs.size), lam0, 1e-9, 100, jtj)
    qv = q.tolist()
    if not (ok and all(map(math.isfinite, qv)) and lb1 <= qv[1] <= ub1 and 1e-7 <= qv[2] <= ub2):
        return None
    return qv, float(chi2), jtj


def _errors(jtj: np.ndarray, redchi: float) -> tuple[float, float, float, bool]:
    """Standard errors of (amplitude, centre, sigma) from ``J^T J`` (all five parameters free)
    and the reduced chi-square, lmfit's ``scale_covar``; and whether all five are finite."""
    try:
        var = _inverse(jtj).diagonal().tolist()
    except np.linalg.LinAlgError:
        return NAN, NAN, NAN, False
    # sqrt(max(v * redchi, 0)) as numpy's (NaN kept, -0.0 kept)
    err = [math.sqrt(v) if v >= 0.0 else (0.0 if v < 0.0 else NAN) for v in [v * redchi for v in var]]
    return err[0], err[1], err[2], all(map(math.isfinite, err))


def _result(a: float, cc: float, sg: float, ae: float, ce: float, se: float, success: bool, redchi: float,
            window, n: int, sfo1_hz: float, sigma_noise: float, noise_corr: float) -> PeakFit:
    """The :class:`PeakFit` of a fitted line: amplitude ``a`` (ppm units), centre ``cc`` (ppm),
    HWHM ``sg`` (ppm) and their errors; warnings from the window; errors inflated by
    ``sqrt(max(1, noise_corr))`` unless ``noise_corr`` is 1."""
    lo, hi = window
    to_hz = sfo1_hz * 1e-6
    height = a / (math.pi * sg)
    warn: list[str] = []
    if not success:
        warn.append("uncertainties not estimated")
    edge = max(sg, 0.02 * (hi - lo))
    if cc - lo < edge or hi - cc < edge:
        warn.append("peak at window edge")
    if 2 * sg > 0.5 * (hi - lo):
        warn.append("peak wider than half the window")
    ce_, fe_, ae_ = ce, 2 * se * to_hz, ae * to_hz
    if noise_corr != 1.0:
        k = math.sqrt(max(1.0, float(noise_corr)))
        ce_, fe_, ae_ = ce_ * k, fe_ * k, ae_ * k
    return PeakFit(
        center_ppm=cc, center_err_ppm=ce_, fwhm_hz=2 * sg * to_hz, fwhm_err_hz=fe_,
        area=a * to_hz, area_err=ae_, height=float(height),
        snr=float(height / sigma_noise) if sigma_noise > 0 else math.inf,
        redchi=redchi, success=success, window=window,
        n_points=n, method="lorentzian", warnings=tuple(warn),
    )
