"""Least-squares fit of a Lorentzian first-derivative line to a CW EPR sweep (docs/physics.md §1.5).

Its centre and width are reported when the fit is good, and its analytic area checks the
model-free double integral (:func:`ingest.processing.epr.double_integral`).  Field in T.
"""

from __future__ import annotations

import math
import warnings as _warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.processing.epr_derivative import _sorted, baseline_correct, peak_to_peak

__all__ = ["lorentzian_derivative", "LorentzianFit", "fit_lorentzian_derivative"]


def lorentzian_derivative(
    x: np.ndarray, area: float, center: float, dBpp: float, c0: float = 0.0, c1: float = 0.0
) -> np.ndarray:
    """First derivative of a Lorentzian absorption of given area, plus a linear baseline.

    ``A(x) = (area/pi) G / ((x-center)^2 + G^2)`` with HWHM ``G = (sqrt(3)/2) dBpp``
    (docs/physics.md §1.5); returns ``dA/dx + c0 + c1 (x - center)``.  Units follow
    ``x``: with x in mT, ``area`` is in a.u. mT^2 when the result is in a.u.
    """
    g = 0.5 * math.sqrt(3.0) * dBpp
    u = x - center
    return -(area / math.pi) * 2.0 * g * u / (u * u + g * g) ** 2 + c0 + c1 * u


@dataclass
class LorentzianFit:
    """Lorentzian-derivative fit (lmfit), the check on the model-free double integral.

    Attributes
    ----------
    center_T, center_err_T : float
        Line centre and its standard error, T.
    dBpp_T, dBpp_err_T : float
        Peak-to-peak width and its standard error, T.
    area, area_err : float
        Analytic absorption area (= double integral over an infinite sweep),
        a.u. mT^2, and its standard error.
    r2 : float
        Coefficient of determination of the fit.
    redchi : float
    result : lmfit.model.ModelResult
    warnings : list of str
    """

    center_T: float
    center_err_T: float
    dBpp_T: float
    dBpp_err_T: float
    area: float
    area_err: float
    r2: float
    redchi: float
    result: Any = field(repr=False)
    warnings: list[str] = field(default_factory=list)


def fit_lorentzian_derivative(
    field_T: np.ndarray, y: np.ndarray, *, baseline_fraction: float = 0.1
) -> LorentzianFit:
    """Fit one Lorentzian first-derivative line plus a linear baseline (lmfit).

    Parameters
    ----------
    field_T : ndarray
        Field, T.
    y : ndarray
        First-derivative spectrum, a.u.
    baseline_fraction : float
        Used only for the starting values (a linear baseline is fitted too).

    Returns
    -------
    LorentzianFit
        ``area`` is the analytic area, a.u. mT^2, comparable with
        :func:`double_integral` (docs/physics.md §1.5 caveat 3).
    """
    import lmfit

    x, yy = _sorted(field_T, y)
    xm = x * 1e3
    d, _ = baseline_correct(xm, yy, fraction=baseline_fraction, order=1)
    pp = peak_to_peak(xm, d)
    w0 = max(pp.width_T, 2.0 * float(np.median(np.diff(xm))))
    g0 = 0.5 * math.sqrt(3.0) * w0
    area0 = pp.amplitude * math.pi * g0 * g0 * 4.0 * math.sqrt(3.0) / 9.0
    # sign of the line: positive lobe at low field for a positive absorption
    if pp.low_T != pp.high_T and np.interp(pp.low_T, xm, d) < 0:
        area0 = -area0
    model = lmfit.Model(lorentzian_derivative)
    params = model.make_params(area=area0, center=pp.center_T, dBpp=w0, c0=0.0, c1=0.0)
    span = xm[-1] - xm[0]
    params["center"].set(min=xm[0], max=xm[-1])
    params["dBpp"].set(min=1e-3 * w0, max=span)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        res = model.fit(yy, params, x=xm)
    p = res.params
    ss_res = float(np.sum(res.residual ** 2))
    ss_tot = float(np.sum((yy - yy.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")

    def err(name: str) -> float:
        e = p[name].stderr
        return float(e) if e is not None else float("nan")

    warns: list[str] = []
    if not res.success:
        warns.append(f"fit did not converge: {res.message}")
    if r2 < 0.9:
        warns.append(f"poor Lorentzian fit (R^2 = {r2:.3f}): line not a single Lorentzian")
    return LorentzianFit(
        center_T=float(p["center"].value) * 1e-3,
        center_err_T=err("center") * 1e-3,
        dBpp_T=float(p["dBpp"].value) * 1e-3,
        dBpp_err_T=err("dBpp") * 1e-3,
        area=float(p["area"].value),
        area_err=err("area"),
        r2=r2,
        redchi=float(res.redchi),
        result=res,
        warnings=warns,
    )


# normalisation and spin counting: ingest.processing.epr_quant (re-exported above)
