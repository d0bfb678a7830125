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
                         start=None, solver="minpack") -> PeakFit:
    """Lorentzian + baseline by ``scipy.optimize.least_squares`` with the analytic Jacobian.

    The same model and the same standard errors as an lmfit ``Model`` fit
    (covariance ``inv(J^T J)`` scaled by the reduced chi-square, lmfit's
    ``scale_covar``), without lmfit's per-fit overhead: building, copying and
    evaluating ``Parameters`` (asteval) cost ~11 ms per fit against ~0.5 ms of
    arithmetic, i.e. most of the per-spectrum time of the live pipeline
    (cProfile, benchmarks/bench_nmr_pipeline.py).  Voigt and multiplet fits
    keep lmfit.  x is centred on the guess to decorrelate slope and intercept.
    FWHM = 2*sigma, height = amplitude/(pi*sigma); their errors follow from
    the covariance.
    """
    lo, hi = window
    n = x.size
    xc = x - c
    if baseline not in ("linear", "constant", "none"):
        raise ValueError(f"baseline must be 'linear', 'constant' or 'none', got {baseline!r}")
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
    to_hz = sfo1_hz * 1e-6
    a, ae = float(pv[0]), float(err[0])
    cc, ce = float(pv[1]) + c, float(err[1])
    sg, se = float(pv[2]), float(err[2])
    height = a / (math.pi * sg)
    warn: list[str] = []
    success = bool(res.success and ok_cov)
    if not success:
        warn.append("uncertainties not estimated")
    edge = max(sg, 0.02 * (hi - lo))
    if cc - lo < edge or hi - cc < edge:
        warn.append("peak at window edge")
    if 2 * sg > 0.5 * (hi - lo):
        warn.append("peak wider than half the window")
    return PeakFit(
        center_ppm=cc, center_err_ppm=ce, fwhm_hz=2 * sg * to_hz, fwhm_err_hz=2 * se * to_hz,
        area=a * to_hz, area_err=ae * to_hz, height=float(height),
        snr=float(height / sigma_noise) if sigma_noise > 0 else math.inf,
        redchi=redchi, success=success, window=window,
        n_points=n, method="lorentzian", warnings=tuple(warn),
    )
