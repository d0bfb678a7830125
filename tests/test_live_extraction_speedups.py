"""The cheaper arithmetic of the live NMR extraction (issue 13) gives the numbers of the
plain formulas it replaced: exactly where the operations are the same, to rounding where
the summation order changed (normal equations from power sums, the compiled fit's chi-square).

The fast path as a whole against the full per-spectrum path: tests/test_live_fast.py and
tests/test_fast_path.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ingest.processing import lsq_numpy, nmr_baseline
from ingest.processing.nmr_baseline import (
    _masked_lsq,
    baseline,
    end_free_fractions,
    longest_signal_run,
    noise_sigma,
)
from ingest.processing.peaks import _trapezoid_weights, fit_peak, integrate_window


def _spectrum(n: int = 32768, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Decreasing ppm axis, three Lorentzians on a cubic baseline plus white noise (plain numpy)."""
    rng = np.random.default_rng(seed)
    ppm = np.linspace(12.0, -2.0, n)
    y = 0.3 + 0.05 * ppm - 0.004 * ppm**2 + 2e-4 * ppm**3
    for c, hw, a in ((4.79, 0.012, 40.0), (7.48, 0.004, 3.0), (3.34, 0.003, 0.8)):
        y += a * hw / np.pi / ((ppm - c) ** 2 + hw**2) * hw * np.pi
    return ppm, y + rng.normal(0.0, 0.01, n)


def _noise_reference(y: np.ndarray, lag: int = 16) -> float:
    """The estimator of :func:`noise_sigma` written with np.median."""
    d = y[lag:] - y[:-lag]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def test_noise_sigma_is_the_median_formula_exactly_and_propagates_nan():
    _, y = _spectrum()
    assert noise_sigma(y) == _noise_reference(y)
    with_inf = y.copy()
    with_inf[100] = np.inf  # +inf and -inf differences, no NaN: the estimator still runs
    assert noise_sigma(with_inf) == _noise_reference(with_inf)
    with_nan = y.copy()
    with_nan[5000] = np.nan
    assert math.isnan(noise_sigma(with_nan))


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_masked_normal_equations_match_lstsq_on_the_masked_rows(order):
    rng = np.random.default_rng(order)
    x = np.linspace(-1.0, 1.0, 8192)
    y = np.polynomial.polynomial.polyval(x, rng.normal(size=order + 1)) + rng.normal(0, 0.1, x.size)
    mask = rng.random(x.size) > 0.3
    y[~mask] = np.nan  # masked-out points never enter the fit (NaN would propagate)
    P = np.polynomial.polynomial.polyvander(x, 2 * order)
    ref = np.linalg.lstsq(P[mask, :order + 1], y[mask], rcond=None)[0]
    np.testing.assert_allclose(_masked_lsq(P, y, mask, order), ref, rtol=1e-10, atol=1e-12)


def test_masked_normal_equations_fall_back_to_lstsq_when_singular():
    x = np.linspace(-1.0, 1.0, 64)
    y = 1.0 + 2.0 * x
    mask = np.zeros(x.size, dtype=bool)
    mask[[3, 40]] = True  # two points cannot pin a cubic: singular normal matrix
    P = np.polynomial.polynomial.polyvander(x, 6)
    ref = np.linalg.lstsq(P[mask, :4], y[mask], rcond=None)[0]
    np.testing.assert_allclose(_masked_lsq(P, y, mask, 3), ref, rtol=1e-9, atol=1e-12)


def test_coverage_helpers_equal_the_array_split_formulas():
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 5, 7, 8, 1000, 8191):
        b = rng.random(n) > 0.4
        for k in (2, 4, 6, 8):
            segs = np.array_split(b, k)
            with np.errstate(invalid="ignore", divide="ignore"):
                want = (segs[0].mean() if segs[0].size else np.nan, segs[-1].mean() if segs[-1].size else np.nan)
            np.testing.assert_array_equal(end_free_fractions(b, k), want)
        d = np.diff(np.r_[False, ~b, False].astype(np.int8))
        runs = np.flatnonzero(d == -1) - np.flatnonzero(d == 1)
        assert longest_signal_run(b) == (int(runs.max()) if runs.size else 0)


def test_trapezoid_weights_are_the_accumulated_half_steps_exactly():
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 50, 1309):
        hz = np.cumsum(rng.uniform(0.05, 0.07, n))[::-1]  # decreasing, uneven
        d = np.abs(np.diff(hz))
        ref = np.zeros(n)
        ref[:-1] += d / 2.0
        ref[1:] += d / 2.0
        assert np.array_equal(_trapezoid_weights(hz), ref)
    y = rng.normal(size=hz.size)
    assert float(np.sum(_trapezoid_weights(hz) * y)) == pytest.approx(-np.trapezoid(y, hz), rel=1e-12)


def test_no_peak_window_area_is_the_windowed_integral():
    ppm, y = _spectrum()
    y = y - (0.3 + 0.05 * ppm - 0.004 * ppm**2 + 2e-4 * ppm**3)  # baseline-corrected
    win = (6.2, 6.4)  # no line: the fit reports the windowed sum without a local baseline
    got = fit_peak(ppm, y, win, sfo1_hz=400.13e6, noise=0.01, noise_corr=2.0)
    ref = integrate_window(ppm, y, win, sfo1_hz=400.13e6, noise=0.01, noise_corr=2.0)
    assert "no peak above noise" in got.warnings and math.isnan(got.center_ppm)
    assert got.area == ref.area and got.area_err == ref.area_err
    # a non-monotonic axis (fancy-indexed window) gives the same numbers as the sorted one
    perm = np.random.default_rng(0).permutation(ppm.size)
    ref2 = integrate_window(ppm[perm], y[perm], win, sfo1_hz=400.13e6, noise=0.01, noise_corr=2.0)
    assert ref2.n_points == ref.n_points and ref2.height == ref.height


def test_series_baseline_state_reuses_its_vandermonde_only_for_its_own_axis():
    ppm, y = _spectrum()
    cold = baseline(ppm, y, order=3)
    state: dict = {}
    assert np.array_equal(baseline(ppm, y, order=3, _state=state), cold)  # cached matrix: same arithmetic
    np.testing.assert_allclose(baseline(ppm, y, order=3, _state=state), cold, rtol=0, atol=1e-12)
    ppm2 = ppm + 0.37  # another axis of the same size: the cached matrices must not be reused
    for key in [k for k in state if isinstance(k, int)] + ["used"]:
        state.pop(key, None)  # (no warm start either: only the cache is carried over)
    assert np.array_equal(baseline(ppm2, y, order=3, _state=state), baseline(ppm2, y, order=3))


@pytest.mark.skipif(lsq_numpy.lorentz_nb.load_kernels() is None, reason="numba (the 'fast' extra) not available")
def test_compiled_fit_reports_the_sum_of_squares_of_its_residuals():
    x = np.linspace(-0.1, 0.1, 1201)
    rng = np.random.default_rng(5)
    y = lsq_numpy.lorentz_line(x, 2.0, 0.004, 0.01, 0.3, -0.05) + rng.normal(0, 0.02, x.size)
    lb, ub = np.full(5, -np.inf), np.full(5, np.inf)
    res = lsq_numpy.lm_compiled_lorentz(x, y, np.array([1.5, 0.0, 0.015, 0.0, 0.0]), lb, ub, 1e-3)
    assert res.success
    r = lsq_numpy.lorentz_line(x, *res.x) - y
    assert res.chi2 == pytest.approx(float(r @ r), rel=1e-10)
    assert res.chi2 == pytest.approx(0.02**2 * x.size, rel=0.1)  # and it is the noise's


def test_polyval_is_bit_identical_to_numpy():
    x = np.linspace(-1, 1, 1001)
    c = np.array([0.3, -1.2, 0.5, 2.0])
    assert np.array_equal(nmr_baseline._polyval(x, c), np.polynomial.polynomial.polyval(x, c))
