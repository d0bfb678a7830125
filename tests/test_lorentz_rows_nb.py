"""The shortcuts of the batch line fits and rows (issue 15) give the numbers of what they replace.

* :func:`ingest.processing.lorentz_rows_nb.axis_slices` (bisection) equals numpy's
  ``searchsorted`` on the reversed axis, windows on, between and beyond the axis points;
* :func:`ingest.processing.lorentz_batch.fit_lorentzians` with the compiled passes equals the
  numpy steps feeding the compiled Levenberg-Marquardt, field for field, when the rows of one
  window are fitted at different strides (a broad line in some spectra, a narrow one in others)
  and some rows fall below ``snr_min`` (their windowed integrals in the same pass);
* the compiled windowed integrals, which compute the Hz axis and weights once for consecutive rows
  of one window, equal the numpy steps whatever the order of the windows;
* ``_new_fit`` builds the PeakFit ``PeakFit(*values)`` builds; ``peaks_columns`` gives the items of
  ``peak_columns`` peak after peak; ``assignment_warnings`` re-reads a new tuple of peaks.

Data: Lorentzian lines + Gaussian noise on a decreasing ppm axis, written here with numpy only.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from ingest.processing import lorentz_batch, lorentz_rows_nb
from ingest.processing.assignment import assignment_warnings
from ingest.processing.observables import ObservablesConfig
from ingest.processing.peak_fit import PeakFit
from ingest.processing.row_parts import peak_columns, peaks_columns

SFO1 = 400.13e6


@pytest.fixture(scope="module")
def rows_nb():
    if lorentz_rows_nb.load() is None:
        pytest.skip("compiled line fits not available (no numba, or FLOWCELL_NUMBA=0)")
    return lorentz_rows_nb.kernels()


def _numpy_slices(ppm: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The former numpy steps of window_slices (searchsorted on the reversed axis)."""
    rev = ppm[::-1]
    a = np.searchsorted(rev, w[:, 0], side="left")
    b = np.searchsorted(rev, w[:, 1], side="right")
    return ppm.size - b, ppm.size - a


def test_axis_slices_equal_searchsorted(rows_nb):
    ppm = np.linspace(12.0, -1.0, 4097)  # 13/4096 ppm a point
    rng = np.random.default_rng(2)
    edges = np.concatenate([rng.uniform(-2.0, 13.0, 200), ppm[rng.integers(0, ppm.size, 100)], [12.0, -1.0, 13.5, -3.0]])
    w = np.sort(rng.choice(edges, size=(300, 2)), axis=1)
    w[::7] = w[::7, ::-1]  # some windows given high first (empty ranges, as numpy gives them)
    i0, i1 = np.empty(300, dtype=np.int64), np.empty(300, dtype=np.int64)
    assert rows_nb.axis_slices(ppm, w, i0, i1)
    r0, r1 = _numpy_slices(ppm, w)
    np.testing.assert_array_equal(i0, r0)
    np.testing.assert_array_equal(i1, r1)
    assert ((i1 - i0)[w[:, 0] <= w[:, 1]] >= 0).all() and (i1 - i0).max() > 1000
    w[5, 1] = np.nan
    assert not rows_nb.axis_slices(ppm, w, i0, i1)  # numpy's NaN ordering decides
    assert lorentz_batch.window_slices(ppm, w.tolist()) == list(zip(*(a.tolist() for a in _numpy_slices(ppm, w))))


def _spectra(rng: np.random.Generator, B: int = 8, n: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """B spectra on a 12..-1 ppm axis: near 2 ppm a broad line (rows 0-2), a narrow one (rows 3-5)
    or none (rows 6-7, below snr_min); a water line that moves; noise."""
    ppm = np.linspace(12.0, -1.0, n)
    real = np.empty((B, n))
    for b in range(B):
        y = rng.normal(0.0, 1e-3, n)
        lines = [(4.79 + 0.01 * b, 0.01, 1.0)]
        if b < 3:
            lines.append((2.0 + 0.01 * b, 0.05, 0.5))
        elif b < 6:
            lines.append((2.1, 0.002, 0.05))
        for c, hw, a in lines:
            y += a / np.pi * hw / ((ppm - c) ** 2 + hw * hw)
        real[b] = y + 2e-4 * (ppm - 5.0)
    return ppm, real


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert repr(x) == repr(y)  # every field, to the last bit (NaN == NaN here)


def test_strides_and_low_rows_in_one_window_give_the_numpy_steps_bits(rows_nb, monkeypatch):
    monkeypatch.setattr(lorentz_batch, "COMPILED_LINEAR_START", False)  # numpy's start: its bits
    ppm, real = _spectra(np.random.default_rng(11))
    kw = {"sfo1_hz": SFO1, "snr_min": 5.0, "noise": 1e-3, "noise_corr": 3.0, "max_points": 1024}
    cases = {"mixed": [(1.0, 3.0)] * 8, "water": [(4.19 + 0.01 * b, 5.39 + 0.01 * b) for b in range(8)]}
    took, run = [], lorentz_batch._fit_compiled
    monkeypatch.setattr(lorentz_batch, "_fit_compiled", lambda *a, **k: took.append(run(*a, **k)) or took[-1])
    got = {k: lorentz_batch.fit_lorentzians(ppm, real, w, compiled=True, **kw) for k, w in cases.items()}
    assert took == [True, True]
    mixed = got["mixed"]
    assert {pf.n_points for pf in mixed[:3]} != {pf.n_points for pf in mixed[3:6]}  # two strides
    assert all(pf.success for pf in mixed[:6]) and all(not pf.success for pf in mixed[6:])
    assert [pf.warnings for pf in mixed[6:]] == [("no peak above noise",)] * 2
    assert mixed[0].fwhm_hz == pytest.approx(0.1 * SFO1 * 1e-6, rel=0.05)  # 2 x 0.05 ppm
    assert mixed[3].center_ppm == pytest.approx(2.1, abs=1e-3)
    monkeypatch.setattr(lorentz_batch, "_batch_kernels", lambda c: None)  # the numpy steps, compiled LM
    for k, w in cases.items():
        _same(got[k], lorentz_batch.fit_lorentzians(ppm, real, w, compiled=True, **kw))


def test_compiled_linear_start_reaches_the_numpy_steps_optimum(rows_nb, monkeypatch):
    """The linear start solved in the kernel (sums in point order) is numpy's to round-off, so the
    fits end at the numpy steps' optimum within their stopping tolerance: every fitted value
    within 1e-4 of its standard error (a line at SNR ~1000 and a weak one), the rest equal."""
    ppm, real = _spectra(np.random.default_rng(13))
    kw = {"sfo1_hz": SFO1, "snr_min": 5.0, "noise": 1e-3, "noise_corr": 1.0}
    cases = {"water": [(4.19 + 0.01 * b, 5.39 + 0.01 * b) for b in range(8)], "narrow": [(7.35, 7.55)] * 8,
             "broad": [(1.0, 3.0)] * 8, "weak": [(6.4, 6.6)] * 8}
    assert lorentz_batch.COMPILED_LINEAR_START
    got = {k: lorentz_batch.fit_lorentzians(ppm, real, w, compiled=True, **kw) for k, w in cases.items()}
    monkeypatch.setattr(lorentz_batch, "_batch_kernels", lambda c: None)  # the numpy steps, compiled LM
    moved = 0
    for k, w in cases.items():
        for a, b in zip(got[k], lorentz_batch.fit_lorentzians(ppm, real, w, compiled=True, **kw)):
            assert (a.success, a.warnings, a.n_points, a.window) == (b.success, b.warnings, b.n_points, b.window)
            for v, e in (("center_ppm", "center_err_ppm"), ("fwhm_hz", "fwhm_err_hz"), ("area", "area_err")):
                x, y, err = getattr(a, v), getattr(b, v), getattr(b, e)
                assert math.isnan(x) == math.isnan(y), (k, v)
                if not math.isnan(x):
                    assert abs(x - y) <= 1e-4 * err, (k, v, x, y, err)
                    moved += x != y
    assert moved > 0  # the starts do differ in their last bits: the comparison above is not vacuous


def test_integrals_of_repeated_windows_equal_numpy(rows_nb, monkeypatch):
    ppm, real = _spectra(np.random.default_rng(12))
    kw = {"sfo1_hz": SFO1, "noise": 1e-3, "noise_corr": 2.5}
    a, b = (4.6, 5.0), (4.55, 5.02)
    wins = [a, a, b, a, a, b, b, a]  # the axis and weights reused, recomputed, reused
    got = lorentz_batch.window_integrals(ppm, real, wins, **kw)
    monkeypatch.setattr(lorentz_batch, "_batch_kernels", lambda c: None)
    _same(got, lorentz_batch.window_integrals(ppm, real, wins, **kw))
    assert got[0].area == pytest.approx(1.0 * SFO1 * 1e-6, rel=0.1)  # most of the water line, Hz
    assert got[0].area_err == got[1].area_err != got[2].area_err


def test_new_fit_is_the_dataclass():
    assert not hasattr(PeakFit, "__post_init__") and not hasattr(PeakFit, "__slots__")
    vals = (7.45, 1e-4, 2.5, 0.1, 3.2, 0.05, 1.1, 55.0, 1.02, True, (7.35, 7.55), 512, "lorentzian",
            ("peak at window edge",))
    a, b = lorentz_batch._new_fit(*vals), PeakFit(*vals)
    assert a == b and repr(a) == repr(b) and hash(a) == hash(b) and dataclasses.asdict(a) == dataclasses.asdict(b)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.area = 1.0  # type: ignore[misc]


def _fit(c: float, w: float, area: float = 1.0) -> PeakFit:
    return PeakFit(c, 1e-4, w, 0.1, area, 0.01, 1.0, 100.0, 1.0, True, (c - 0.1, c + 0.1), 100, "lorentzian", ())


def test_peaks_columns_and_assignment_follow_the_peaks_given():
    peaks = ObservablesConfig.default().nmr.peaks
    fits = {p.name: _fit(p.expected_ppm, 2.0 + 0.1 * i, area=float(p.n_h or 1)) for i, p in enumerate(peaks)}
    want = [kv for p in peaks for kv in peak_columns(p.name, fits[p.name])]
    assert list(peaks_columns(peaks, fits)) == want
    fewer = peaks[:3]
    assert list(peaks_columns(fewer, fits)) == want[:18]  # another tuple: its own names
    assert list(peaks_columns(peaks, fits)) == want
    p = peaks[1]
    fits[p.name] = _fit(p.expected_ppm + 0.8 * p.tolerance_ppm, 2.0, area=float(p.n_h))
    assert not [w for w in assignment_warnings(peaks, fits, sfo1_hz=SFO1) if "from the expected" in w]
    tight = tuple(dataclasses.replace(q, tol_ppm=0.5 * q.tolerance_ppm) if q is p else q for q in peaks)
    moved = [w for w in assignment_warnings(tight, fits, sfo1_hz=SFO1) if "from the expected" in w]
    assert len(moved) == 1 and moved[0].startswith(f"{p.name}: line at") and math.isfinite(fits[p.name].center_ppm)
    assert assignment_warnings(list(tight), fits, sfo1_hz=SFO1) == assignment_warnings(tight, fits, sfo1_hz=SFO1)
    assert not [w for w in assignment_warnings(peaks, fits, sfo1_hz=SFO1) if "from the expected" in w]
