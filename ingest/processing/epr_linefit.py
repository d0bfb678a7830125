"""The Lorentzian-derivative line fit of every EPR row, without lmfit's per-fit overhead.

The same model, starting values, bounds and error convention as
:func:`ingest.processing.epr_lorentzian.fit_lorentzian_derivative` (lmfit ``Model.fit``,
``leastsq``, covariance scaled by the reduced chi-square), solved with the analytic
Jacobian by a plain numpy Levenberg-Marquardt
(:func:`ingest.processing.lsq_numpy.lm_numpy`), MINPACK's bounded fallback
(``scipy.optimize.least_squares(method='trf')``) when the free optimum leaves the bounds.
lmfit spent ~15 ms a sweep building and copying ``Parameters`` (asteval), most of the
per-file time of the live EPR path; this takes well under 1 ms for a 1024-point sweep.
Agreement with the lmfit fit: tests/test_live_fast.py (centre, width and area within
1e-3 of their standard errors).  Physics: docs/physics.md §1.5.
"""

from __future__ import annotations

import math
import warnings as _warnings

import numpy as np

from ingest.processing.epr_derivative import _sorted, baseline_correct, peak_to_peak
from ingest.processing.epr_lorentzian import LorentzianFit, lorentzian_derivative
from ingest.processing.lsq_numpy import lm_numpy

__all__ = ["fit_line", "lorentzian_derivative_jac"]

_S3 = 0.5 * math.sqrt(3.0)


def lorentzian_derivative_jac(x: np.ndarray, area: float, center: float, dBpp: float, c0: float = 0.0,
                              c1: float = 0.0) -> np.ndarray:
    """Columns d/d(area, center, dBpp, c0, c1) of :func:`lorentzian_derivative`, shape (n, 5)."""
    g = _S3 * dBpp
    u = x - center
    d = u * u + g * g
    d2 = 1.0 / (d * d)
    d3 = d2 / d
    J = np.empty((x.size, 5))
    J[:, 0] = -(2.0 * g / math.pi) * u * d2
    J[:, 1] = (2.0 * area * g / math.pi) * (d2 - 4.0 * u * u * d3) - c1
    J[:, 2] = -(2.0 * area / math.pi) * u * (d2 - 4.0 * g * g * d3) * _S3
    J[:, 3] = 1.0
    J[:, 4] = u
    return J


class _Result:
    """The fields of an lmfit ``ModelResult`` that the EPR row reads."""

    def __init__(self, success: bool, message: str, residual: np.ndarray, redchi: float) -> None:
        self.success, self.message, self.residual, self.redchi = success, message, residual, redchi


def _start(xm: np.ndarray, yy: np.ndarray, baseline_fraction: float) -> tuple[np.ndarray, float]:
    """Starting values (area, centre, dBpp, c0, c1) of the lmfit fit, and the starting width (mT)."""
    d, _ = baseline_correct(xm, yy, fraction=baseline_fraction, order=1)
    pp = peak_to_peak(xm, d)
    w0 = max(pp.width_T, 2.0 * float(np.median(np.diff(xm))))
    g0 = _S3 * w0
    area0 = pp.amplitude * math.pi * g0 * g0 * 4.0 * math.sqrt(3.0) / 9.0
    if pp.low_T != pp.high_T and np.interp(pp.low_T, xm, d) < 0:
        area0 = -area0
    return np.array([area0, pp.center_T, w0, 0.0, 0.0]), w0


def fit_line(field_T: np.ndarray, y: np.ndarray, *, baseline_fraction: float = 0.1) -> LorentzianFit:
    """Fit one Lorentzian first-derivative line plus a linear baseline (field in T).

    Parameters and result as :func:`ingest.processing.epr_lorentzian.fit_lorentzian_derivative`
    (``result`` holds ``success``, ``message``, ``residual`` and ``redchi`` only).
    """
    from scipy.optimize import least_squares

    x, yy = _sorted(field_T, y)
    xm = x * 1e3
    p0, w0 = _start(xm, yy, baseline_fraction)
    lb = np.array([-np.inf, xm[0], 1e-3 * w0, -np.inf, -np.inf])
    ub = np.array([np.inf, xm[-1], xm[-1] - xm[0], np.inf, np.inf])
    p0 = np.clip(p0, lb, ub)

    def resid(q: np.ndarray) -> np.ndarray:
        return lorentzian_derivative(xm, *q) - yy

    def jac(q: np.ndarray) -> np.ndarray:
        return lorentzian_derivative_jac(xm, *q)

    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        res = lm_numpy(resid, jac, p0, lb, ub, max_iter=200, lam0=1e-3)
        message = "converged"
        if not res.success:
            span = np.where(np.isfinite(ub - lb), ub - lb, 0.0)
            q0 = np.clip(p0, lb + 1e-9 * span, ub - 1e-9 * span)
            res = least_squares(resid, q0, jac=jac, bounds=(lb, ub), method="trf", x_scale="jac",
                                ftol=1e-10, xtol=1e-10, gtol=1e-10, max_nfev=400)
            message = str(res.message)
    q, r = res.x, res.fun
    n = xm.size
    ss_res = float(r @ r)
    redchi = ss_res / max(1, n - 5)
    ss_tot = float(np.sum((yy - yy.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    try:
        J = jac(q)
        err = np.sqrt(np.clip(np.diag(np.linalg.inv(J.T @ J)) * redchi, 0.0, None))
    except np.linalg.LinAlgError:
        err = np.full(5, np.nan)
    success = bool(res.success)
    warns: list[str] = []
    if not success:
        warns.append(f"fit did not converge: {message}")
    if r2 < 0.9:
        warns.append(f"poor Lorentzian fit (R^2 = {r2:.3f}): line not a single Lorentzian")
    return LorentzianFit(
        center_T=float(q[1]) * 1e-3, center_err_T=float(err[1]) * 1e-3,
        dBpp_T=float(q[2]) * 1e-3, dBpp_err_T=float(err[2]) * 1e-3,
        area=float(q[0]), area_err=float(err[0]), r2=r2, redchi=redchi,
        result=_Result(success, message, r, redchi), warnings=warns,
    )
