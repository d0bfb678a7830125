"""Peak extraction from a processed 1D spectrum: value + diagnostics.

Every extractor here follows one contract (style.md, "pybaselines"): it takes
``(ppm, real, window_ppm, *, sfo1_hz, ...)``, never modifies its inputs, is
deterministic, and returns a :class:`PeakFit` that carries the value, its
standard errors AND the diagnostics (window, reduced chi-square, success,
warnings).  A failed or empty window gives NaN values plus warnings, never an
exception, so one bad peak does not lose a whole table row.

Units: centre in ppm; widths (FWHM) in Hz; areas as the integral of the real
spectrum over frequency in Hz, i.e. (spectrum units) x Hz.  With
:func:`ingest.processing.nmr.fft` scaling, that equals the FID amplitude of the
line at t = 0 (independent of zero filling and line broadening).

Full-lineshape fits (Lorentzian or Voigt + a straight baseline) are the
primary method; docs/physics.md §1.6: "Areas of exchange-broadened lines must come
from full-lineshape fits, not windowed sums".  Voigt and multiplet fits use
lmfit models; the single Lorentzian, the one on every spectrum of a live run,
is the same model solved by ``scipy.optimize.least_squares`` with its
analytic Jacobian and lmfit's error convention (tested against lmfit), ~10x
cheaper (:mod:`ingest.processing.peak_lorentz`).  The windowed integral
(:func:`integrate_window`) is the model-free fallback and check.  The result type,
:class:`PeakFit`, lives in :mod:`ingest.processing.peak_fit` and is importable from here;
the steps before a fit (window cut, edge baseline, starting guess) in
:mod:`ingest.processing.peak_start`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from ingest.processing.nmr import noise_sigma
from ingest.processing.peak_fit import NAN, PeakFit
from ingest.processing.peak_fit import empty_fit as _empty
from ingest.processing.peak_lorentz import fit_lorentzian_fast as _fit_lorentzian_fast
from ingest.processing.peak_start import (
    _compiled_start,
    _edge_baseline,
    _guess,
    _guess_at,
    _low_high,
    index_window,
)

__all__ = ["EXTRACTORS", "PeakFit", "fit_multiplet", "fit_peak", "index_window", "integrate_window"]

Shape = Literal["lorentzian", "voigt"]




def _noise(y: np.ndarray) -> float:
    return noise_sigma(y)


def _window(ppm: np.ndarray, real: np.ndarray, window_ppm: Sequence[float]):
    ppm = np.asarray(ppm, dtype=float)
    real = np.asarray(real, dtype=float)
    if ppm.shape != real.shape or ppm.ndim != 1:
        raise ValueError(f"ppm and real must be 1D of the same shape, got {ppm.shape} and {real.shape}")
    if len(window_ppm) != 2:
        raise ValueError(f"window_ppm must be (low, high), got {window_ppm!r}")
    lo, hi = sorted(float(w) for w in window_ppm)
    sel = np.flatnonzero((ppm >= lo) & (ppm <= hi))
    return ppm, real, (lo, hi), sel


def _rows(sel: np.ndarray) -> np.ndarray | slice:
    """``sel`` (sorted indices) as a slice when contiguous (always on a monotonic axis): views of
    the window instead of fancy-indexed copies, the same values."""
    if sel.size and int(sel[-1]) - int(sel[0]) + 1 == sel.size:
        return slice(int(sel[0]), int(sel[-1]) + 1)
    return sel


def _cut(ppm: np.ndarray, real: np.ndarray, window_ppm: Sequence[float], whole: bool):
    """(ppm, real, (low, high), selected points, rows of the window): :func:`_window` and
    :func:`_rows`; or, ``whole`` (the live path: the caller cut the window by
    :func:`index_window`), every point, with no mask to scan."""
    if whole:
        ppm, real = np.asarray(ppm, dtype=float), np.asarray(real, dtype=float)
        return ppm, real, _low_high(window_ppm), ppm, slice(None)
    ppm, real, window, sel = _window(ppm, real, window_ppm)
    return ppm, real, window, sel, _rows(sel)


def _trapezoid_weights(hz: np.ndarray) -> np.ndarray:
    """Weights ``w`` with ``sum(w * y)`` = the trapezoid integral of ``y`` over |Hz| (either axis order)."""
    if hz.size < 2:
        return np.zeros(hz.size)
    h = np.subtract(hz[1:], hz[:-1])  # |step| / 2, in place (no temporaries)
    np.abs(h, out=h)
    h /= 2.0
    # w[i] = h[i-1] + h[i] inside, h[0] and h[-1] at the ends (the same sums as accumulating
    # d/2 into both neighbours, in one pass)
    w = np.empty(hz.size)
    w[0], w[-1] = h[0], h[-1]
    np.add(h[1:], h[:-1], out=w[1:-1])
    return w


def integrate_window(
    ppm: np.ndarray,
    real: np.ndarray,
    window_ppm: Sequence[float],
    *,
    sfo1_hz: float,
    baseline: Literal["none", "linear"] = "none",
    noise: float | None = None,
    noise_corr: float = 1.0,
    edge_fraction: float = 0.15,
    _whole: bool = False,
) -> PeakFit:
    """Windowed integral (model-free fallback).

    Sums the spectrum over the window (trapezoid rule in Hz).  The centre is
    the intensity-weighted mean ppm of the positive part; no width is given.
    A Lorentzian loses its wings outside the window: ±n FWHM/2 captures
    (2/π)·arctan(n) of the area (docs/physics.md §1.5, caveat 3).

    Baseline.  The default ``'none'`` integrates the spectrum as given: use
    it on spectra already baseline-corrected by
    :func:`ingest.processing.nmr.process_fid` (the robust polynomial is fitted
    to the signal-free points of the *whole* spectrum, so it adds almost no
    noise).  ``'linear'`` subtracts a least-squares line through the outer
    ``edge_fraction`` of the window at each end (for spectra with no baseline
    correction).  That line is estimated from few points and its error is
    multiplied by the full window width: with 5 % strips it carried twice
    the noise of the integral itself (a SNR-20 anthrone line lost or gained
    30 % at random; the earlier ``area_err`` ignored it).  Its propagated
    error is now part of ``area_err``.

    Parameters
    ----------
    ppm, real : ndarray, shape (n,)
    window_ppm : (float, float)
    sfo1_hz : float
        Observe frequency, Hz (ppm -> Hz).
    baseline : {'none', 'linear'}
    noise : float or None
        Noise standard deviation; default estimated from the whole ``real``.
    noise_corr : float
        Noise correlation length, points (see :func:`fit_peak`).
    edge_fraction : float
        Fraction of the window at each end used for the ``'linear'`` baseline.
    _whole : bool
        Private (the live path), as in :func:`fit_peak`: ``ppm``/``real`` are exactly the
        window's points, cut by :func:`index_window`.

    Returns
    -------
    PeakFit
        ``method='integral'``; the area is signed (a negative value means the
        window integrates to less than the baseline); ``area_err`` = noise x
        sqrt(noise_corr x sum of the squared weights of the linear estimator
        that maps the spectrum to the area) (= noise * dnu * sqrt(n *
        noise_corr) without a baseline).
    """
    ppm, real, window, sel, rows = _cut(ppm, real, window_ppm, _whole)
    if sel.size < 3:
        return _empty(window, int(sel.size), "integral", ["too few points in window"])
    sigma = _noise(real) if noise is None else float(noise)
    return _integrate(ppm[rows], real[rows].copy(), window, sfo1_hz, baseline, sigma, noise_corr, edge_fraction)


def _plain_integral(x: np.ndarray, y: np.ndarray, sfo1_hz: float, sigma: float, noise_corr: float
                    ) -> tuple[float, float]:
    """(area, area_err) of :func:`integrate_window` without a local baseline, on the window's
    points (the same operations as :func:`_integrate`; nothing else computed)."""
    hz = x * sfo1_hz
    hz *= 1e-6
    w = _trapezoid_weights(hz)
    p = np.multiply(w, y, out=hz)  # (w * y).sum() and (w * w).sum(), one buffer
    area = float(np.add.reduce(p))
    np.multiply(w, w, out=p)
    return area, float(sigma * math.sqrt(max(1.0, noise_corr) * float(np.add.reduce(p))))


def _integrate(x: np.ndarray, y: np.ndarray, window: tuple[float, float], sfo1_hz: float, baseline: str,
               sigma: float, noise_corr: float, edge_fraction: float = 0.15) -> PeakFit:
    """:func:`integrate_window` on the window's points ``x`` (ppm), ``y`` (a copy: modified),
    noise ``sigma`` known (also the no-peak branch of :func:`fit_peak`, same window)."""
    warn: list[str] = []
    hz = x * sfo1_hz
    hz *= 1e-6
    wts0 = _trapezoid_weights(hz)
    wts = wts0
    if baseline == "linear":
        k = max(2, int(round(x.size * float(edge_fraction))))
        idx = np.r_[0:k, x.size - k:x.size]
        x0 = float(np.mean(hz))
        X = np.column_stack([hz[idx] - x0, np.ones(idx.size)])
        # integral of the line s*(hz - x0) + c over the window, as g . (s, c)
        g = np.array([np.sum(wts * (hz - x0)), np.sum(wts)])
        h = X @ np.linalg.solve(X.T @ X, g)  # weights of the strip points in that integral
        coef = np.linalg.lstsq(X, y[idx], rcond=None)[0]
        y = y - (coef[0] * (hz - x0) + coef[1])
        wts = wts.copy()
        wts[idx] -= h
    elif baseline != "none":
        raise ValueError(f"baseline must be 'none' or 'linear', got {baseline!r}")
    buf = wts0 * y  # one buffer for the three weighted sums (the values of (a * b).sum())
    area = float(np.add.reduce(buf))
    area_err = float(sigma * math.sqrt(max(1.0, noise_corr) * float(np.add.reduce(np.multiply(wts, wts, out=buf)))))
    height = float(y.max())
    snr = height / sigma if sigma > 0 else math.inf
    pos = np.maximum(y, 0.0)  # np.clip(y, 0, None): the same ufunc
    spos = np.add.reduce(pos)
    center = float(np.add.reduce(np.multiply(x, pos, out=buf)) / spos) if spos > 0 else NAN
    if snr < 5:
        warn.append("no peak above noise")
    return PeakFit(center, NAN, NAN, NAN, area, area_err, height, float(snr), NAN, True, window,
                   int(x.size), "integral", tuple(warn))


def _make_model(shape: str, prefix: str):
    from lmfit.models import LorentzianModel, VoigtModel

    if shape == "lorentzian":
        return LorentzianModel(prefix=prefix)
    if shape == "voigt":
        return VoigtModel(prefix=prefix)
    raise ValueError(f"shape must be 'lorentzian' or 'voigt', got {shape!r}")


def _set_peak_params(params, prefix: str, shape: str, c: float, fwhm: float, h: float, window) -> None:
    lo, hi = window
    width = hi - lo
    if shape == "lorentzian":
        sig = fwhm / 2.0
        params[f"{prefix}sigma"].set(value=sig, min=1e-7, max=width)
        params[f"{prefix}amplitude"].set(value=h * math.pi * sig)
    else:
        sig = fwhm / 3.6
        params[f"{prefix}sigma"].set(value=sig, min=1e-8, max=width)
        params[f"{prefix}gamma"].set(value=sig, min=0.0, max=width, vary=True, expr="")
        params[f"{prefix}amplitude"].set(value=h * fwhm * 1.3)
    params[f"{prefix}center"].set(value=c, min=lo, max=hi)


def _peak_from_params(res, prefix: str, sfo1_hz: float, window, n: int, shape: str, sigma_noise: float,
                      warn: list[str]) -> PeakFit:
    to_hz = sfo1_hz * 1e-6
    p = res.params

    def val(name: str) -> tuple[float, float]:
        par = p[f"{prefix}{name}"]
        err = par.stderr if par.stderr is not None else NAN
        return float(par.value), float(err)

    c, ce = val("center")
    f, fe = val("fwhm")
    a, ae = val("amplitude")
    h = float(p[f"{prefix}height"].value)
    lo, hi = window
    if not (res.success and np.isfinite(ce)):
        warn.append("uncertainties not estimated")
    edge = max(0.5 * abs(f), 0.02 * (hi - lo))
    if c - lo < edge or hi - c < edge:
        warn.append("peak at window edge")
    if abs(f) > 0.5 * (hi - lo):
        warn.append("peak wider than half the window")
    return PeakFit(
        center_ppm=c, center_err_ppm=ce, fwhm_hz=abs(f) * to_hz, fwhm_err_hz=fe * to_hz,
        area=a * to_hz, area_err=ae * to_hz, height=h,
        snr=float(h / sigma_noise) if sigma_noise > 0 else math.inf,
        redchi=float(res.redchi), success=bool(res.success and np.isfinite(ce)), window=window,
        n_points=n, method=shape, warnings=tuple(warn),
    )


def _fit_lmfit(
    x: np.ndarray, y: np.ndarray, window: tuple[float, float], n_sel: int, shape: str, c: float, fwhm: float,
    h: float, s: float, c0: float, baseline: str, sfo1_hz: float, sigma: float,
) -> PeakFit:
    """lmfit fit of one line (``shape``) plus the chosen baseline; errors not yet inflated.

    Parameters
    ----------
    x, y : ndarray
        Shift (ppm) and spectrum in the window (possibly thinned).
    c, fwhm, h : float
        Starting centre (ppm), FWHM (ppm) and height.
    s, c0 : float
        Starting baseline slope and intercept.
    sfo1_hz, sigma : float
        Spectrometer frequency (Hz) and noise standard deviation.
    """
    # lazy: only the lmfit paths import lmfit (the Lorentzian fast path does not need it)
    from lmfit.models import ConstantModel, LinearModel

    model = _make_model(shape, "p_")
    params = model.make_params()
    _set_peak_params(params, "p_", shape, c, fwhm, h, window)
    if baseline == "linear":
        bm = LinearModel(prefix="b_")
        params.update(bm.make_params(slope=s, intercept=c0))
        model = model + bm
    elif baseline == "constant":
        bm = ConstantModel(prefix="b_")
        params.update(bm.make_params(c=float(np.median(np.r_[y[:3], y[-3:]]))))
        model = model + bm
    elif baseline != "none":
        raise ValueError(f"baseline must be 'linear', 'constant' or 'none', got {baseline!r}")
    try:
        res = model.fit(y, params, x=x)
    except Exception as exc:  # lmfit/scipy failures become diagnostics, not crashes
        return _empty(window, n_sel, shape, [f"fit failed: {exc}"])
    return _peak_from_params(res, "p_", sfo1_hz, window, n_sel, shape, sigma, [])


def fit_peak(
    ppm: np.ndarray,
    real: np.ndarray,
    window_ppm: Sequence[float],
    *,
    sfo1_hz: float,
    shape: Shape = "lorentzian",
    baseline: Literal["linear", "constant", "none"] = "linear",
    snr_min: float = 5.0,
    noise: float | None = None,
    noise_corr: float = 1.0,
    max_points: int = 2048,
    start: Sequence[float] | None = None,
    solver: Literal["minpack", "numpy"] = "minpack",
    _whole: bool = False,
) -> PeakFit:
    """Fit one peak (plus a local baseline) inside a ppm window.

    Model: a Lorentzian (``scipy.optimize.least_squares``, analytic Jacobian;
    see :func:`ingest.processing.peak_lorentz.fit_lorentzian_fast`) or lmfit's ``VoigtModel`` with free
    ``gamma``, + a straight line (or a constant, or nothing).  Standard errors
    are lmfit's convention (covariance scaled by the reduced chi-square).  If
    the highest point in the window is below ``snr_min`` x noise, no fit is attempted: the result
    has NaN centre and width, the windowed integral as area
    (:func:`integrate_window`, no local baseline: the spectrum is expected to
    be baseline-corrected) and the warning 'no peak above noise'.

    Parameters
    ----------
    ppm, real : ndarray, shape (n,)
        Axis (ppm, either order) and real spectrum.
    window_ppm : (float, float)
        Fit window, ppm.
    sfo1_hz : float
        Observe frequency, Hz (ppm -> Hz for widths and areas).
    shape : {'lorentzian', 'voigt'}
    baseline : {'linear', 'constant', 'none'}
    snr_min : float
        Detection threshold (peak height / noise).
    noise : float or None
        Noise standard deviation; default estimated from the whole ``real``
        with :func:`ingest.processing.nmr.noise_sigma`.
    noise_corr : float
        Noise correlation length of the spectrum in points
        (``ProcessedNMR.params['noise_corr_points']``; 1 for white noise).
        lmfit's standard errors assume independent points; they are
        multiplied by ``sqrt(noise_corr)`` (zero filling and line broadening
        correlate neighbouring points: without this the errors came out 2.7x
        too small at lb 0.5 Hz, zf 2).
    max_points : int
        Windows with more points are fitted on every k-th point (speed),
        keeping at least 8 points per FWHM.
    start : (area, centre, HWHM) or None
        Lorentzian only, with ``solver='numpy'``: start from these (ppm units: area in
        spectrum units x ppm, centre and half-width in ppm; e.g. the previous spectrum's
        line) instead of the guess from the window.
    solver : {'minpack', 'numpy'}
        Lorentzian only: ``'numpy'`` solves the same least-squares problem with a plain
        numpy Levenberg-Marquardt (:func:`ingest.processing.lsq_numpy.lm_numpy`; same optimum, less overhead,
        the live path) and falls back to MINPACK when it does not converge inside the bounds.
    _whole : bool
        Private (the live path): ``ppm``/``real`` are exactly the window's points, as cut by
        :func:`index_window`; the window mask is not recomputed.

    Returns
    -------
    PeakFit
    """
    ppm, real, window, sel, rows = _cut(ppm, real, window_ppm, _whole)
    if sel.size < 8:
        return _empty(window, int(sel.size), shape, ["too few points in window"])
    x, y = ppm[rows], real[rows]  # views (read only here)
    sigma = _noise(real) if noise is None else float(noise)
    got = _compiled_start(x, y) if _whole and baseline != "none" else None
    if got is None:
        s, c0 = _edge_baseline(x, y, monotonic=_whole) if baseline != "none" else (0.0, 0.0)
        yb = y - (s * x + c0)
        top = int(yb.argmax())  # (the first maximum, or the first NaN: the value of yb.max())
        h = float(yb[top])
    else:  # the same numbers from one compiled pass (the live path)
        s, c0, top, h = got[:4]
    if not (sigma > 0) or h < snr_min * sigma:  # (the guess's height: the maximum of yb)
        area, area_err = _plain_integral(x, y, sfo1_hz, sigma, noise_corr)  # integrate_window's
        return _empty(window, int(sel.size), shape, ["no peak above noise"], area=area,
                      area_err=area_err, height=h, snr=float(h / sigma) if sigma > 0 else NAN)
    c, fwhm, h = _guess(x, yb, top) if got is None else _guess_at(x, top, h, got[4], got[5])
    # Large windows: fit every stride-th point (keeping >= 8 points per FWHM); the noise
    # correlation length shrinks by the same factor.
    dx = abs(x[1] - x[0])
    stride = int(max(1, min(math.ceil(x.size / max_points), fwhm / dx // 8)))
    if stride > 1:
        x, y = x[::stride], y[::stride]
        noise_corr = max(1.0, noise_corr / stride)
    if shape == "lorentzian":
        return _fit_lorentzian_fast(x, y, window, c, fwhm, h, s, c0, baseline, sfo1_hz, sigma,
                                    start=start, solver=solver, noise_corr=noise_corr)
    return _inflate(_fit_lmfit(x, y, window, int(sel.size), shape, c, fwhm, h, s, c0, baseline, sfo1_hz, sigma),
                    noise_corr)


def _inflate(pf: PeakFit, noise_corr: float) -> PeakFit:
    if noise_corr == 1.0:
        return pf
    k = math.sqrt(max(1.0, float(noise_corr)))
    return replace(pf, center_err_ppm=pf.center_err_ppm * k, fwhm_err_hz=pf.fwhm_err_hz * k, area_err=pf.area_err * k)


def fit_multiplet(
    ppm: np.ndarray,
    real: np.ndarray,
    window_ppm: Sequence[float],
    centers_ppm: Sequence[float],
    *,
    sfo1_hz: float,
    shape: Shape = "lorentzian",
    noise: float | None = None,
    noise_corr: float = 1.0,
) -> list[PeakFit]:
    """Fit several overlapping peaks in one window (sum of lines + linear baseline).

    Parameters
    ----------
    ppm, real : ndarray, shape (n,)
    window_ppm : (float, float)
    centers_ppm : sequence of float
        Starting centres, ppm, one per line; each centre may move by at most
        half the distance to its neighbours (or to the window edge).
    sfo1_hz : float
    shape : {'lorentzian', 'voigt'}
    noise : float or None
    noise_corr : float
        Noise correlation length, points (see :func:`fit_peak`).

    Returns
    -------
    list of PeakFit
        One per line, in the order of ``centers_ppm``.
    """
    from lmfit.models import LinearModel

    ppm, real, window, sel = _window(ppm, real, window_ppm)
    k = len(centers_ppm)
    if k == 0:
        return []
    if sel.size < 4 * k + 4:
        return [_empty(window, int(sel.size), shape, ["too few points in window"]) for _ in range(k)]
    x, y = ppm[sel], real[sel]
    sigma = _noise(real) if noise is None else float(noise)
    s, c0 = _edge_baseline(x, y)
    yb = y - (s * x + c0)
    order = np.argsort(centers_ppm)
    cs = np.asarray(centers_ppm, dtype=float)[order]
    bounds = np.r_[window[0], (cs[1:] + cs[:-1]) / 2, window[1]]
    model = LinearModel(prefix="b_")
    params = model.make_params(slope=s, intercept=c0)
    for i, ci in enumerate(cs):
        pre = f"p{i}_"
        m = _make_model(shape, pre)
        params.update(m.make_params())
        hi_ = float(np.interp(ci, x[::-1], yb[::-1])) if x[0] > x[-1] else float(np.interp(ci, x, yb))
        fw = min(0.02, (bounds[i + 1] - bounds[i]) / 2)
        _set_peak_params(params, pre, shape, ci, fw, max(hi_, sigma), (bounds[i], bounds[i + 1]))
        model = model + m
    try:
        res = model.fit(y, params, x=x)
    except Exception as exc:
        return [_empty(window, int(sel.size), shape, [f"fit failed: {exc}"]) for _ in range(k)]
    out: list[PeakFit | None] = [None] * k
    for i in range(k):
        pf = _peak_from_params(res, f"p{i}_", sfo1_hz, window, int(sel.size), shape, sigma, [])
        pf_w = [w for w in pf.warnings if w != "peak at window edge"]
        if pf.snr < 5:
            pf_w.append("no peak above noise")
        out[int(order[i])] = _inflate(PeakFit(**{**pf.as_dict(), "warnings": tuple(pf_w)}), noise_corr)
    return [p for p in out if p is not None]


#: All single-window extractors, for the shared contract test (name -> callable(ppm, real, window, sfo1_hz=...)).
EXTRACTORS: dict[str, Any] = {
    "lorentzian": lambda ppm, real, w, *, sfo1_hz: fit_peak(ppm, real, w, sfo1_hz=sfo1_hz, shape="lorentzian"),
    "voigt": lambda ppm, real, w, *, sfo1_hz: fit_peak(ppm, real, w, sfo1_hz=sfo1_hz, shape="voigt"),
    "integral": lambda ppm, real, w, *, sfo1_hz: integrate_window(ppm, real, w, sfo1_hz=sfo1_hz, baseline="linear"),
    "multiplet1": lambda ppm, real, w, *, sfo1_hz: fit_multiplet(
        ppm, real, w, [float(ppm[np.flatnonzero((ppm >= min(w)) & (ppm <= max(w)))][
            np.argmax(real[(ppm >= min(w)) & (ppm <= max(w))])])], sfo1_hz=sfo1_hz)[0],
}
