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
from typing import Any

import numpy as np

from ingest.processing.peaks import PeakFit

__all__ = ["fit_lorentzians"]


def _model_jac(u: np.ndarray, th: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Model and Jacobian on the centred axis ``u`` (Hz): ``n`` area-normalised Lorentzians
    ``(centre Hz, log HWHM, area)`` + a straight line ``(intercept, slope)``, all lines at once;
    with one more parameter, a common zero-order phase error ``phi`` (rad): each line is then
    ``area (cos phi L + sin phi D)``, L the absorption and D the dispersion Lorentzian."""
    c = th[0:3 * n:3]
    hw = np.exp(np.minimum(th[1:3 * n:3], 30.0))
    area = th[2:3 * n:3]
    v = u[:, None] - c[None, :]
    h2 = hw * hw
    v2 = v * v
    q = 1.0 / (v2 + h2)  # 1/d
    L = (hw / math.pi) * q
    q2 = q * q / math.pi  # 1/(pi d^2)
    J = np.empty((u.size, th.size))
    dL_dc = (2 * hw) * v * q2
    dL_dl = hw * (v2 - h2) * q2  # d/d(log hw)
    if th.size == 3 * n + 3:
        phi = th[3 * n + 2]
        cp, sp = math.cos(phi), math.sin(phi)
        D = v * q / math.pi
        shape = cp * L + sp * D
        J[:, 0:3 * n:3] = area * (cp * dL_dc + sp * (v2 - h2) * q2)
        J[:, 1:3 * n:3] = area * (cp * dL_dl - sp * (2 * h2) * v * q2)
        J[:, 3 * n + 2] = (area * (cp * D - sp * L)) @ np.ones(n)
    else:
        shape = L
        J[:, 0:3 * n:3] = area * dL_dc
        J[:, 1:3 * n:3] = area * dL_dl
    J[:, 2:3 * n:3] = shape
    J[:, 3 * n] = 1.0
    J[:, 3 * n + 1] = u
    return shape @ area + th[3 * n] + th[3 * n + 1] * u, J


def _lm(fun: Any, th: np.ndarray, lo: np.ndarray, hi: np.ndarray, max_iter: int = 50
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, str]:
    """Levenberg-Marquardt on the normal equations, steps clipped to the bounds.

    ``fun(th) -> (residual, Jacobian)``.  The problem is small (3 parameters per line + 2), so
    each step is one solve of a ~10 x 10 system: ~20x cheaper than ``least_squares`` ('trf'
    with bounds takes an SVD of the whole Jacobian per step).  Converged when chi-square falls
    by less than 1e-10 of itself (or a rejected step changes it by less: round-off), or every
    step component is below 1e-10 of its parameter.
    Returns ``(th, residual, Jacobian, converged, message)``.
    """
    r, J = fun(th)
    chi = float(r @ r)
    lam = 1e-3
    for _ in range(max_iter):
        JTJ = J.T @ J
        g = J.T @ r
        dg = np.maximum(np.diag(JTJ), 1e-30)
        try:
            step = np.linalg.solve(JTJ + lam * np.diag(dg), -g)
        except np.linalg.LinAlgError:
            return th, r, J, False, "singular normal equations"
        tn = np.clip(th + step, lo, hi)
        rn, Jn = fun(tn)
        cn = float(rn @ rn)
        flat = np.isfinite(cn) and abs(chi - cn) <= 1e-10 * chi  # no change beyond round-off
        if np.isfinite(cn) and cn <= chi:
            small = flat or bool(np.all(np.abs(tn - th) <= 1e-10 * (np.abs(th) + 1e-30)))
            th, r, J, chi = tn, rn, Jn, cn
            lam = max(lam / 10.0, 1e-12)
            if small:
                return th, r, J, True, "converged"
        elif flat:
            return th, r, J, True, "converged"
        else:
            lam *= 10.0
            if lam > 1e12:
                return th, r, J, True, "no further decrease"
    return th, r, J, False, f"no convergence in {max_iter} steps"


def _peak_fits(
    th: np.ndarray, err: np.ndarray, s2: float, n: int, *, sfo1_hz: float, window: tuple[float, float],
    cap_hz: float, step_hz: float, n_points: int, success: bool, message: str,
    noise: float | None = None, at_bound: Sequence[bool] = (),
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
    noise : float, optional
        Noise standard deviation for the 'no peak above noise' test (default: sqrt(s2)).
    at_bound : sequence of bool
        Whether each line's centre ended on its bound.
    """
    lo, hi = window
    noise = math.sqrt(s2) if noise is None or not noise > 0 else float(noise)
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
        if j < len(at_bound) and at_bound[j]:
            warn.append("centre at its bound")
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
    max_fwhm_hz: float | None = None, centre_bounds_ppm: Sequence[Sequence[float]] | None = None,
    noise: float | None = None, noise_corr: float = 1.0, max_points: int | None = None,
    fit_phase: bool = False,
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
    centre_bounds_ppm : sequence of (low, high), optional
        Allowed range of each line's centre, ppm (default: unbounded).  A centre that ends
        on its bound is reported NaN with the warning 'centre at its bound'.
    noise : float, optional
        Noise standard deviation of the spectrum for the 'no peak above noise' test (height
        below 3 noise); default the residual standard deviation of the fit.
    noise_corr : float
        Noise correlation length, points (:func:`ingest.processing.peaks.fit_peak`): the
        standard errors are multiplied by ``sqrt(max(1, noise_corr / stride))``.
    max_points : int, optional
        Fit every k-th point so that at most this many are used (default: all).
    fit_phase : bool
        Fit a zero-order phase error common to the lines (within ±10°): each line is then
        ``area (cos phi L + sin phi D)`` with the dispersion Lorentzian D.  A phase error of
        0.17° (the automatic phasing of the first spectrum, reused) put ±0.5 Hz on 90 Hz wide
        DHAQ lines through their neighbours' dispersion tails; with the phase fitted < 0.01 Hz
        (tests/test_widths.py).

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
    idx = _range_indices(x_ppm, lo, hi)
    n = len(centres_ppm)
    win = (lo, hi)
    span_hz = (hi - lo) * sfo1_hz * 1e-6
    cap = 0.5 * span_hz if max_fwhm_hz is None else float(max_fwhm_hz)

    def empty(why: str) -> list[PeakFit]:
        nan = math.nan
        return [PeakFit(nan, nan, nan, nan, nan, nan, nan, nan, nan, False, win, int(idx.size),
                        "lorentzian-multi", (why,)) for _ in range(n)]

    if n == 0 or idx.size < 3 * n + 4:
        return empty("too few points in the fit range")
    stride = max(1, math.ceil(idx.size / max_points)) if max_points else 1
    if stride > 1:
        idx = _thinned(x_ppm, idx, stride, centres_ppm, fwhm_guess_hz, sfo1_hz)
    x = x_ppm[idx] * sfo1_hz * 1e-6  # Hz
    step = float(np.median(np.abs(np.diff(x))))
    y = y_all[idx]
    if not np.all(np.isfinite(y)):
        return empty("fit failed: non-finite values in the fit range")
    xc = float(np.mean(x))
    u = x - xc  # centred axis, Hz
    theta0 = _start(x, y, centres_ppm, fwhm_guess_hz, sfo1_hz) - np.r_[np.tile([xc, 0.0, 0.0], n), 0.0, 0.0]
    bounds = _bounds(centre_bounds_ppm, n, sfo1_hz, xc, step, span_hz)
    if fit_phase:
        theta0 = np.r_[theta0, 0.0]
        bounds = (np.r_[bounds[0], -math.radians(10.0)], np.r_[bounds[1], math.radians(10.0)])
    margin = np.where(np.isfinite(bounds[1] - bounds[0]), 1e-6 * (bounds[1] - bounds[0]), 0.0)
    theta0 = np.clip(theta0, bounds[0] + margin, bounds[1] - margin)
    scale = float(np.max(np.abs(y))) or 1.0

    def fun(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mod, J = _model_jac(u, th, n)
        return (mod - y) / scale, J / scale

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        th, r, J, ok, msg = _lm(fun, theta0, bounds[0], bounds[1])
    if not np.all(np.isfinite(th)) or not np.all(np.isfinite(r)):
        return empty("fit failed: non-finite parameters")
    at_lim = [bool(centre_bounds_ppm is not None and (th[3 * j] <= bounds[0][3 * j] + margin[3 * j]
                                                      or th[3 * j] >= bounds[1][3 * j] - margin[3 * j]))
              for j in range(n)]
    th = th.copy()
    th[0:3 * n:3] += xc
    s2, err = _errors(J * scale, r * scale, noise_corr / stride)
    return _peak_fits(th, err, s2, n, sfo1_hz=sfo1_hz, window=win, cap_hz=cap, step_hz=step / stride,
                      n_points=int(y.size), success=ok, message=msg, noise=noise, at_bound=at_lim)


def _errors(J: np.ndarray, r: np.ndarray, corr: float) -> tuple[float, np.ndarray]:
    """Residual variance and standard errors: ``inv(J^T J)`` scaled by the residual variance,
    then by ``sqrt(max(1, corr))`` for correlated noise (``corr`` points per independent one)."""
    s2 = float(r @ r) / max(r.size - J.shape[1], 1)
    try:
        cov = np.linalg.pinv(J.T @ J) * s2
        err = np.sqrt(np.clip(np.diag(cov), 0, None)) * math.sqrt(max(1.0, corr))
    except np.linalg.LinAlgError:
        err = np.full(J.shape[1], math.nan)
    return s2, err


def _thinned(x_ppm: np.ndarray, idx: np.ndarray, stride: int, centres_ppm: Sequence[float],
             fwhm_guess_hz: float | Sequence[float], sfo1_hz: float) -> np.ndarray:
    """Every ``stride``-th index of ``idx``, plus every index within 3 FWHM of a line narrower
    than 8 thinned points (a narrow neighbour sampled between its points stalls the fit)."""
    keep = [idx[::stride]]
    step_ppm = abs(float(x_ppm[idx[1]] - x_ppm[idx[0]])) if idx.size > 1 else 0.0
    g = np.broadcast_to(np.asarray(fwhm_guess_hz, dtype=float), (len(centres_ppm),))
    for c, w in zip(centres_ppm, g):
        w_ppm = float(w) * 1e6 / sfo1_hz
        if w_ppm < 8 * stride * step_ppm:
            near = idx[np.abs(x_ppm[idx] - float(c)) <= 3 * max(w_ppm, step_ppm)]
            keep.append(near)
    return np.unique(np.concatenate(keep)) if len(keep) > 1 else keep[0]


def _range_indices(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Indices of ``lo <= x <= hi``: by bisection on a monotonic axis (processed spectra), else a mask."""
    n = x.size
    if n > 2 and x[0] != x[-1]:
        dx = (x[-1] - x[0]) / (n - 1)
        if abs(x[1] - x[0] - dx) <= 1e-9 * abs(dx) and abs(x[n // 2] - x[0] - (n // 2) * dx) <= 1e-6 * abs(dx):
            # uniform axis (processed spectra): the index range from the spacing, checked at its ends
            a, b = sorted(((lo - x[0]) / dx, (hi - x[0]) / dx))
            i0, i1 = max(0, math.ceil(a - 1e-9)), min(n, math.floor(b + 1e-9) + 1)
            while i0 < i1 and not lo <= x[i0] <= hi:
                i0 += 1
            while i1 > i0 and not lo <= x[i1 - 1] <= hi:
                i1 -= 1
            return np.arange(i0, i1)
    return np.flatnonzero((x >= lo) & (x <= hi))


def _start(x: np.ndarray, y: np.ndarray, centres_ppm: Sequence[float], fwhm_guess_hz: float | Sequence[float],
           sfo1_hz: float) -> np.ndarray:
    """Starting ``(centre Hz, log HWHM, area)`` per line from the spectrum's height at each centre
    above the median of the range's outer 5 % (the baseline's intercept, slope 0)."""
    n = len(centres_ppm)
    g = np.broadcast_to(np.asarray(fwhm_guess_hz, dtype=float), (n,))
    k = max(3, y.size // 20)
    base = float(np.median(np.concatenate([y[:k], y[-k:]])))
    order = np.argsort(x)
    theta0 = []
    for c, w in zip(centres_ppm, g):
        c_hz = float(c) * sfo1_hz * 1e-6
        h = float(np.interp(c_hz, x[order], y[order]) - base)
        theta0 += [c_hz, math.log(w / 2), max(h, 0.0) * math.pi * w / 2 + 1e-12]
    return np.array(theta0 + [base, 0.0])


def _bounds(centre_bounds_ppm: Sequence[Sequence[float]] | None, n: int, sfo1_hz: float, xc: float,
            step_hz: float, span_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the parameter vector: centres (Hz, centred on ``xc``) within their ranges, HWHM
    between a quarter point and the fit range (log), areas and baseline free."""
    lo = np.full(3 * n + 2, -np.inf)
    hi = np.full(3 * n + 2, np.inf)
    lo[1:3 * n:3] = math.log(max(0.25 * step_hz, 1e-6))
    hi[1:3 * n:3] = math.log(max(span_hz, 1e-6))
    if centre_bounds_ppm is not None:
        for j, (a, b) in enumerate(centre_bounds_ppm):
            a_hz, b_hz = sorted((float(a) * sfo1_hz * 1e-6 - xc, float(b) * sfo1_hz * 1e-6 - xc))
            lo[3 * j], hi[3 * j] = a_hz, b_hz
    return lo, hi
