"""The faster robust baseline and noise estimate give the same numbers as the code they replaced.

* :func:`ingest.processing.median_select.median_inplace` is ``np.median`` (bracketed selection
  on large arrays, the whole partition when the sample misses);
* :func:`noise_sigma` on a 131,072-point spectrum is the np.median formula exactly;
* ``_signal_mask`` (numpy and compiled) is the maximum-filter implementation it replaced;
* the compiled polynomial is ``numpy.polynomial.polynomial.polyval`` bit for bit;
* a warm-started series gives the same baselines and converged states with and without the
  compiled kernels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from ingest.processing import baseline_nb, median_select, nmr_baseline
from ingest.processing.nmr_baseline import baseline, noise_sigma


def _compiled():
    k = baseline_nb.load_kernels()
    if k is None:
        pytest.skip("numba not installed or FLOWCELL_NUMBA=0")
    return k


def _spectrum(n: int, seed: int, noise: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Decreasing ppm axis, Lorentzians on a cubic baseline plus white noise (plain numpy)."""
    rng = np.random.default_rng(seed)
    ppm = np.linspace(12.0, -2.0, n)
    y = 0.3 + 0.05 * ppm - 0.004 * ppm**2 + 2e-4 * ppm**3
    for c, hw, a in ((4.79, 0.012, 40.0), (7.48, 0.004, 3.0), (7.05, 0.004, 2.0), (3.34, 0.003, 0.8)):
        y += a * hw * hw / ((ppm - c) ** 2 + hw**2)
    return ppm, y + rng.normal(0.0, noise, n)


def _noise_reference(y: np.ndarray, lag: int = 16) -> float:
    d = y[lag:] - y[:-lag]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def test_median_inplace_is_np_median_on_both_paths(monkeypatch):
    calls = []
    full = median_select._partition_median
    monkeypatch.setattr(median_select, "_partition_median", lambda a: calls.append(a.size) or full(a))
    rng = np.random.default_rng(3)
    cases = [rng.normal(size=40001), rng.normal(size=40000), rng.standard_cauchy(50000),
             np.r_[rng.normal(size=39998), np.inf, -np.inf], np.abs(rng.normal(size=65536)) + 1e6]
    for a in cases:
        assert median_select.median_inplace(a.copy()) == np.median(a)
    assert calls == []  # every one bracketed
    # misses, caught by the count, the whole array partitioned: a sample that sees one value of a
    # period-`stride` array, and values on a grid (the interpolated bracket falls between two)
    stride = 40000 // median_select.SAMPLE
    periodic = np.tile(np.r_[0.0, np.linspace(1.0, 2.0, stride - 1)], 40000 // stride)
    ties = np.round(rng.normal(size=40001), 1)
    for a in (periodic, ties):
        assert median_select.median_inplace(a.copy()) == np.median(a)
    assert calls == [periodic.size, ties.size]
    small = rng.normal(size=1001)
    assert median_select.median_inplace(small.copy()) == np.median(small)


@pytest.mark.parametrize("n", [131072, 65537])
def test_noise_sigma_of_a_large_spectrum_is_the_median_formula(n):
    _, y = _spectrum(n, seed=n)
    assert noise_sigma(y) == _noise_reference(y)
    y[1000] = np.inf
    assert noise_sigma(y) == _noise_reference(y)
    y[2000] = np.nan
    assert math.isnan(noise_sigma(y))


def _signal_mask_filtered(resid, sigma, k_lo, k_hi, dil, smooth, smooth_sigma, widen=3.0):
    """The maximum-filter and cumulative-sum implementation the candidate-index one replaced."""
    a = np.abs(resid)
    seed = a > k_hi * sigma
    if smooth > 1 and smooth_sigma > 0:
        seed |= np.abs(ndimage.uniform_filter1d(resid, smooth, mode="nearest")) > k_hi * smooth_sigma
    cand = seed | (a > k_lo * sigma)
    grown = ndimage.maximum_filter1d(cand.view(np.uint8), 2 * max(1, smooth) + 1).view(bool)
    edges = np.diff(grown.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    cs = np.r_[0, np.cumsum(seed)]
    keep = cs[stops] > cs[starts]
    starts, stops = starts[keep], stops[keep]
    _signal_mask_filtered.regions = starts.size
    ext = np.minimum(8 * max(1, dil), np.maximum(max(1, dil // 2), (widen * (stops - starts) / 2).astype(np.int64)))
    paint = np.zeros(a.size + 1, dtype=np.int64)
    np.add.at(paint, np.maximum(0, starts - ext), 1)
    np.add.at(paint, np.minimum(a.size, stops + ext), -1)
    return np.cumsum(paint[:-1]) > 0


def _mask_cases():
    rng = np.random.default_rng(11)
    x = np.linspace(-1, 1, 4096)
    for i in range(40):
        y = rng.normal(0, 1, x.size)
        for _ in range(rng.integers(0, 12)):
            c, g, h = rng.uniform(-1.1, 1.1), rng.uniform(1e-4, 0.02), rng.uniform(1, 1e4)
            y += h * g * g / ((x - c) ** 2 + g * g)
        if i % 4 == 0:  # noise, low thresholds, short joins: ~100 regions (the cumulative-sum painting)
            yield (rng.normal(0, 1, x.size), 1.0, 2.3, 2.3, int(rng.integers(1, 4)), 1, 0.0)
        else:
            yield (y, 1.0, 3.0, 4.2, int(rng.integers(1, 60)), int(rng.integers(1, 17)), float(rng.uniform(0, 0.5)))


def test_signal_mask_is_the_filtered_one(monkeypatch):
    monkeypatch.setattr(baseline_nb, "kernels", lambda: None)
    many = 0
    for args in _mask_cases():
        want = _signal_mask_filtered(*args)
        np.testing.assert_array_equal(nmr_baseline._signal_mask(*args), want)
        many += _signal_mask_filtered.regions > nmr_baseline._PAINT_LOOP
    assert many >= 5


def test_compiled_signal_mask_is_the_numpy_one(monkeypatch):
    k = _compiled()
    for args in _mask_cases():
        monkeypatch.setattr(baseline_nb, "kernels", lambda: None)
        want = nmr_baseline._signal_mask(*args)
        monkeypatch.setattr(baseline_nb, "kernels", lambda: k)
        np.testing.assert_array_equal(nmr_baseline._signal_mask(*args), want)


def test_compiled_polyval_is_numpys_bit_for_bit(monkeypatch):
    k = _compiled()
    monkeypatch.setattr(baseline_nb, "kernels", lambda: k)
    rng = np.random.default_rng(2)
    x = np.linspace(-1.0, 1.0, 100_003)
    for deg in range(6):  # compiled up to the cubic, numpy above
        for _ in range(5):
            c = rng.normal(size=deg + 1) * 10.0 ** rng.uniform(-3, 3, deg + 1)
            assert np.array_equal(nmr_baseline._polyval(x, c), np.polynomial.polynomial.polyval(x, c))


def test_warm_series_is_the_same_with_and_without_compiled_kernels(monkeypatch):
    k = _compiled()
    rng = np.random.default_rng(8)
    ppm, y0 = _spectrum(16384, seed=1)
    series = [y0 * (1.0 + 0.02 * i) + rng.normal(0, 0.01, y0.size) for i in range(5)]
    runs = []
    for kern in (None, k):
        monkeypatch.setattr(baseline_nb, "kernels", lambda kern=kern: kern)
        state: dict = {}
        out = [baseline(ppm, y, order=3, noise=noise_sigma(y), _state=state, return_mask=True) for y in series]
        runs.append((out, state))
    (a, sa), (b, sb) = runs
    for (bl_a, m_a), (bl_b, m_b) in zip(a, b):
        assert np.array_equal(bl_a, bl_b) and np.array_equal(m_a, m_b)
    assert np.array_equal(sa[3][0], sb[3][0]) and sa[3][1] == sb[3][1]
    # and the baseline is the cubic under the lines, within a fraction of the noise
    truth = 0.3 + 0.05 * ppm - 0.004 * ppm**2 + 2e-4 * ppm**3
    assert np.max(np.abs(a[0][0] - truth)) < 0.5 * 0.01
