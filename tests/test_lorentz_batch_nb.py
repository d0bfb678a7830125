"""The compiled passes of the batch line fits (ingest/processing/lorentz_batch_nb.py) give the
numpy steps' numbers to the bit.

* :func:`ingest.processing.lorentz_batch.fit_lorentzians` with the compiled passes equals, field
  for field, the numpy gather/guesses/linear start feeding the compiled Levenberg-Marquardt
  (the path before the passes existed), on spectra with a strong line, a weak line, an empty
  window, a broad line fitted every few points, windows that follow the water line (rows of
  different lengths) and a window holding NaN (handed to the numpy steps);
* :func:`ingest.processing.lorentz_batch.window_integrals` equals its numpy steps;
* the compiled pairwise sum equals ``np.sum`` for every length (numpy's blocks of 8 and 128), the
  selection median the sorting one.

Data: Lorentzian lines + Gaussian noise on a decreasing ppm axis, written here with numpy only.
"""

from __future__ import annotations

import numpy as np
import pytest

from ingest.processing import lorentz_batch, lorentz_batch_nb, lorentz_nb

SFO1 = 400.13e6


def _spectra(rng: np.random.Generator, B: int = 6, n: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """B spectra on a 12..-1 ppm axis: a water line that moves, a narrow line, a broad line, noise."""
    ppm = np.linspace(12.0, -1.0, n)
    real = np.empty((B, n))
    for b in range(B):
        y = rng.normal(0.0, 1e-3, n)
        for c, hw, a in ((4.79 + 0.01 * b, 0.01, 1.0), (7.45, 0.0015, 0.02), (2.0, 0.05, 0.5),
                         (6.5, 0.002, 0.004 * b)):  # the last one weak or absent
            y += a / np.pi * hw / ((ppm - c) ** 2 + hw * hw)
        real[b] = y + 2e-4 * (ppm - 5.0)
    return ppm, real


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert repr(x) == repr(y)  # every field, to the last bit (NaN == NaN here)


@pytest.fixture(scope="module")
def compiled():
    if lorentz_batch_nb.load() is None:
        pytest.skip("compiled line fits not available (no numba, or FLOWCELL_NUMBA=0)")
    return lorentz_batch_nb.kernels()


def test_compiled_passes_give_the_numpy_steps_bits(compiled, monkeypatch):
    monkeypatch.setattr(lorentz_batch, "COMPILED_LINEAR_START", False)  # numpy's start: its bits (see below)
    ppm, real = _spectra(np.random.default_rng(5))
    real[4, 1885:1890] = np.nan  # near 10.5 ppm
    kw = {"sfo1_hz": SFO1, "snr_min": 5.0, "noise": 1e-3, "noise_corr": 1.0}
    cases = {
        "water": [(4.19 + 0.01 * b, 5.39 + 0.01 * b) for b in range(6)],  # follows: lengths differ
        "narrow": [(7.35, 7.55)] * 6,
        "broad": [(1.0, 3.0)] * 6,  # 2520 points > max_points: every other point
        "weak": [(6.4, 6.6)] * 6,  # below snr_min in some rows, fitted in others
        "empty": [(9.0, 9.2)] * 6,
        "tiny": [(8.0, 8.0005)] * 6,  # fewer than 8 points: fit_peak decides
        "nan": [(10.4, 10.6)] * 6,  # a NaN in one row: the numpy steps for the window
    }
    took = []
    run = lorentz_batch._fit_compiled
    monkeypatch.setattr(lorentz_batch, "_fit_compiled", lambda *a, **k: took.append(run(*a, **k)) or took[-1])
    got = {k: lorentz_batch.fit_lorentzians(ppm, real, w, compiled=True, max_points=1024, **kw)
           for k, w in cases.items()}
    assert took == [True] * 6 + [False]  # the compiled passes, but for the NaN window
    assert all(pf is not None and pf.success for pf in got["narrow"] + got["broad"])
    assert got["broad"][0].n_points < 1400 and all(pf is None for pf in got["tiny"])
    assert [pf.method for pf in got["empty"]] == ["lorentzian"] * 6 and not got["empty"][0].success
    assert sum(pf is not None and pf.success for pf in got["weak"]) >= 2
    assert sum("no peak above noise" in pf.warnings for pf in got["weak"] if pf is not None) >= 1
    monkeypatch.setattr(lorentz_batch, "_batch_kernels", lambda c: None)  # the numpy steps, compiled LM
    assert lorentz_nb.kernels() is not None
    for k, w in cases.items():
        _same(got[k], lorentz_batch.fit_lorentzians(ppm, real, w, compiled=True, max_points=1024, **kw))


def test_compiled_window_integrals_equal_numpy(compiled, monkeypatch):
    ppm, real = _spectra(np.random.default_rng(6))
    wins = [(4.0 + 0.013 * b, 5.5 + 0.01 * b) for b in range(6)]
    kw = {"sfo1_hz": SFO1, "noise": 1e-3, "noise_corr": 3.7}
    got = lorentz_batch.window_integrals(ppm, real, wins, **kw)
    some = lorentz_batch.window_integrals(ppm, real, [(6.4, 6.6), (12.5, 13.0), (7.4, 7.40001)], rows=[1, 3, 5], **kw)
    monkeypatch.setattr(lorentz_batch, "_batch_kernels", lambda c: None)
    _same(got, lorentz_batch.window_integrals(ppm, real, wins, **kw))
    _same(some, lorentz_batch.window_integrals(ppm, real, [(6.4, 6.6), (12.5, 13.0), (7.4, 7.40001)], rows=[1, 3, 5],
                                               **kw))
    assert got[0].area == pytest.approx(1.0 * SFO1 * 1e-6, rel=0.02)  # the water line's area, Hz
    assert some[1].warnings == ("too few points in window",)


def test_pairwise_sum_is_numpys(compiled):
    rng = np.random.default_rng(7)
    for n in [*range(1, 300), 1023, 1309, 2619, 7855, 8193, 40001]:
        a = rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 6, n)
        assert lorentz_batch_nb._pairwise(a, 0, n) == np.sum(a), n


def test_selection_median_is_the_sorting_median(compiled):
    rng = np.random.default_rng(8)
    for k in (2, 3, 4, 5, 64, 65, 392, 393):
        for a in (rng.standard_normal(k), rng.integers(0, 4, k).astype(float), np.linspace(3.0, -1.0, k),
                  np.linspace(-1.0, 3.0, k) ** 3):
            ref = lorentz_batch._median_rows(a[None])[0]
            assert lorentz_batch_nb._median_sorted(a, np.empty(k)) == ref
            assert lorentz_batch_nb._axis_median(a, np.empty(k)) == ref
