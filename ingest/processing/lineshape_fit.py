"""Exchange-broadened lines fitted together over a range wider than their windows.

docs/physics.md §1.4, §1.6: widths and areas of exchange-broadened lines must come from
full-lineshape fits.  A Lorentzian fitted inside a window a few times narrower than the line
loses its wings to the window and the linear baseline (widths read low, then the line is
dropped).  :func:`fit_lorentzians` fits N Lorentzians (the line and its neighbours) plus a
straight baseline over an extended range, so a broadened line is measured, not dropped.
Same contract as :mod:`ingest.processing.peaks`: returns one :class:`PeakFit` per line,
NaN + warnings on failure, never an exception for bad data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import least_squares

from ingest.processing.peaks import PeakFit

__all__ = ["fit_lorentzians"]


def _model(x: np.ndarray, theta: np.ndarray, n: int) -> np.ndarray:
    y = theta[3 * n] + theta[3 * n + 1] * x
    for j in range(n):
        c, lhw, area = theta[3 * j: 3 * j + 3]
        hw = math.exp(min(lhw, 30.0))
        y = y + area / math.pi * hw / ((x - c) ** 2 + hw * hw)
    return y


def _jacobian(u: np.ndarray, th: np.ndarray, n: int) -> np.ndarray:
    """Jacobian of :func:`_model` on the centred axis ``u`` (Hz) with respect to ``th``."""
    J = np.empty((u.size, th.size))
    for j in range(n):
        c, lhw, area = th[3 * j: 3 * j + 3]
        hw = math.exp(min(lhw, 30.0))
        d = (u - c) ** 2 + hw * hw
        L = hw / d / math.pi
        J[:, 3 * j] = area * 2 * (u - c) * L / d
        J[:, 3 * j + 1] = area * hw * ((d - 2 * hw * hw) / (d * d)) / math.pi
        J[:, 3 * j + 2] = L
    J[:, 3 * n] = 1.0
    J[:, 3 * n + 1] = u
    return J


def _peak_fits(
    th: np.ndarray, err: np.ndarray, s2: float, n: int, *, sfo1_hz: float, window: tuple[float, float],
    cap_hz: float, step_hz: float, n_points: int, success: bool, message: str,
) -> list[PeakFit]:
    """One :class:`PeakFit` per line from the fitted parameters, judged and warned.

    Parameters
    ----------
    th, err : ndarray
        Fitted ``(centre Hz, log half-width, area)`` per line, then the baseline, and
        their standard errors.
    s2 : float
        Residual variance, (spectrum units)^2.
    window : (float, float)
        Fit range, ppm.
    cap_hz, step_hz : float
        Widest plausible FWHM and the point spacing, Hz.
    """
    lo, hi = window
    noise = math.sqrt(s2)
    out = []
    for j in range(n):
        c, lhw, area = th[3 * j: 3 * j + 3]
        fwhm = 2 * math.exp(min(lhw, 30.0))
        warn: list[str] = [] if success else [f"fit failed: {message}"]
        height = area / (math.pi * fwhm / 2) if fwhm > 0 else math.nan
        if not fwhm <= cap_hz:
            warn.append("wider than the fit range")
        if not fwhm >= 0.5 * step_hz:
            warn.append("narrower than half a point (noise spike)")
        if not (lo <= c / sfo1_hz * 1e6 <= hi):
            warn.append("centre outside the fit range")
        if not height > 3 * noise:
            warn.append("no peak above noise")
        ok = not warn
        nan = math.nan
        out.append(PeakFit(
            c / sfo1_hz * 1e6 if ok else nan, err[3 * j] / sfo1_hz * 1e6 if ok else nan,
            fwhm if ok else nan, fwhm * err[3 * j + 1] if ok else nan,
            area if ok else nan, err[3 * j + 2] if ok else nan,
            height, height / noise if noise > 0 else math.inf, s2, ok, window, n_points, "lorentzian-multi",
            tuple(warn)))
    return out


def fit_lorentzians(
    ppm: np.ndarray, real: np.ndarray, centres_ppm: Sequence[float], *, sfo1_hz: float,
    fit_range_ppm: Sequence[float], fwhm_guess_hz: float | Sequence[float] = 5.0,
    max_fwhm_hz: float | None = None,
) -> list[PeakFit]:
    """Fit Lorentzians at the given starting centres together, over an extended range.

    Parameters
    ----------
    ppm, real : array
        Chemical-shift axis (ppm) and real spectrum.
    centres_ppm : sequence of float
        Starting centres of the lines to fit (the line of interest and its neighbours), ppm.
    sfo1_hz : float
        Spectrometer frequency, Hz (ppm -> Hz).
    fit_range_ppm : (float, float)
        Range fitted, ppm; make it several widths wider than the broadest line.
    fwhm_guess_hz : float or sequence
        Starting FWHM per line, Hz.
    max_fwhm_hz : float, optional
        Widths above this are reported NaN with the warning 'wider than the fit range'
        (default: half the fit range in Hz).

    Returns
    -------
    list of PeakFit
        One per starting centre, in order (``method = 'lorentzian-multi'``); centre in ppm,
        FWHM in Hz, area in (spectrum units) x Hz, standard errors from the Jacobian scaled
        by the residual variance.
    """
    x_ppm = np.asarray(ppm, dtype=float)
    y_all = np.asarray(real, dtype=float)
    lo, hi = sorted(float(v) for v in fit_range_ppm)
    m = (x_ppm >= lo) & (x_ppm <= hi)
    n = len(centres_ppm)
    win = (lo, hi)
    span_hz = (hi - lo) * sfo1_hz * 1e-6
    cap = 0.5 * span_hz if max_fwhm_hz is None else float(max_fwhm_hz)

    def empty(why: str) -> list[PeakFit]:
        nan = math.nan
        return [PeakFit(nan, nan, nan, nan, nan, nan, nan, nan, nan, False, win, int(m.sum()),
                        "lorentzian-multi", (why,)) for _ in range(n)]

    if n == 0 or m.sum() < 3 * n + 4:
        return empty("too few points in the fit range")
    x = x_ppm[m] * sfo1_hz * 1e-6  # Hz
    step = float(np.median(np.abs(np.diff(x))))
    y = y_all[m]
    g = np.broadcast_to(np.asarray(fwhm_guess_hz, dtype=float), (n,))
    theta0 = []
    base = float(np.median(np.concatenate([y[:max(3, y.size // 20)], y[-max(3, y.size // 20):]])))
    for c, w in zip(centres_ppm, g):
        c_hz = float(c) * sfo1_hz * 1e-6
        h = float(np.interp(c_hz, x, y) - base) if x[0] < x[-1] else float(np.interp(c_hz, x[::-1], y[::-1]) - base)
        theta0 += [c_hz, math.log(w / 2), max(h, 0.0) * math.pi * w / 2 + 1e-12]
    theta0 += [base, 0.0]
    xc = float(np.mean(x))
    u = x - xc  # centred axis, Hz
    theta0 = np.array(theta0)
    theta0[0:3 * n:3] -= xc
    scale = float(np.max(np.abs(y))) or 1.0

    def resid(th: np.ndarray) -> np.ndarray:
        return (_model(u, th, n) - y) / scale

    def jac(th: np.ndarray) -> np.ndarray:
        return _jacobian(u, th, n) / scale

    try:
        res = least_squares(resid, theta0, jac=jac, method="trf", x_scale="jac", max_nfev=200)
    except (ValueError, OverflowError, np.linalg.LinAlgError) as exc:  # non-finite data, runaway width
        return empty(f"fit failed: {exc}")
    th = res.x.copy()
    th[0:3 * n:3] += xc
    dof = max(y.size - th.size, 1)
    s2 = float(np.sum((res.fun * scale) ** 2)) / dof
    try:
        cov = np.linalg.pinv(res.jac.T @ res.jac) * s2 / scale**2
        err = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        err = np.full(th.size, math.nan)
    return _peak_fits(th, err, s2, n, sfo1_hz=sfo1_hz, window=win, cap_hz=cap, step_hz=step,
                      n_points=int(y.size), success=bool(res.success), message=str(res.message))

