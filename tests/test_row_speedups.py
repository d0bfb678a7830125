"""The live NMR row's shortcuts give the numbers of the steps they replace, to the last bit (issue 13).

The row of every live spectrum (``Extractor(fast=True)``: the window offset, the line fits of
:func:`ingest.processing.peaks.fit_peak`, the assignment checks) takes shortcuts that must
not move a single number: a window's start computed in one compiled pass
(:func:`ingest.processing.lorentz_nb.window_start`) instead of numpy's steps, the compiled
line fit called with its bounds computed on floats and its covariance from the LAPACK
inverse without ``np.linalg.inv``'s wrapper, unit weights summed without multiplying by 1,
the half-height walk in chunks, the followed line's top without a mask, and the same-line
check skipped when no two centres are close.  Each is compared here with what it replaced,
on random input and on whole rows of a simulated series written by
tests/generators/bruker_expno.py (it imports nothing from the package).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from generators.bruker_expno import GD, fid, write_expno

from ingest.batch import find_acquisitions
from ingest.processing import halfwidth, lorentz_nb, peak_lorentz
from ingest.processing.assignment import assignment_warnings
from ingest.processing.nmr import find_peak_ppm
from ingest.processing.observables import Extractor, ObservablesConfig
from ingest.processing.peak_fit import PeakFit
from ingest.processing.peak_start import (
    _compiled_start,
    _edge_baseline,
    _guess,
    index_window,
    top_ppm,
)
from ingest.readers.dispatch import read_rows

TD = 8192


def _kernels():
    k = lorentz_nb.load_kernels()
    if k is None:
        pytest.skip("numba not installed or switched off (FLOWCELL_NUMBA=0)")
    return k


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> list:
    """Seven spectra: DHAQ-like lines (one shrinking to the noise), a moving water line, a line
    at a window's edge in the last three (the fast path's refit from the window's guess)."""
    root = tmp_path_factory.mktemp("row_series")
    rng = np.random.default_rng(11)
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    for k in range(7):
        lines = [(4.79 + 0.004 * k, 20.0, 1.5), (7.45, 1.0 - 0.15 * k, 3.0), (7.05, 1.0, 3.0), (7.72, 0.8, 3.0),
                 (6.25, 0.1 * k + 0.05, 4.0), (3.34, 0.1, 1.0)] + ([(2.125, 0.3, 2.0)] if k >= 4 else [])
        data = fid(lines, TD, phase_deg=-20.0, noise=4e-3, rng=rng, group_delay=GD)
        write_expno(root / str(10 + k), data, t0 + timedelta(minutes=3 * k), scale_bits=22,
                    extra={"PARMODE": 0, "SOLVENT": "<H2O>"}, acqu=True)
    return [s for p in find_acquisitions(root) for s in read_rows(p)]


def _rows(spectra: list) -> tuple[list[dict], list[dict]]:
    ex = Extractor(ObservablesConfig.default(), fast=True)
    rows = [ex(s) for s in spectra]
    assert ex.plan is not None and ex.plan.stats["spectra"] == len(spectra) - 1
    return rows, [ex.last_fits]


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        w = b[k]
        if isinstance(v, float):
            assert (math.isnan(v) and math.isnan(w)) or v == w, (k, v, w)
        else:
            assert v == w, (k, v, w)


def test_compiled_row_equals_the_numpy_row_to_the_bit(series, monkeypatch):
    """Whole rows: the compiled window start and line fit against numpy's steps and the general
    fit (``np.linalg.inv``, the kernel through :func:`ingest.processing.lsq_numpy.lm_compiled_lorentz`)."""
    _kernels()
    fast, fits = _rows(series)
    assert any("peak at window edge" in r["nmr_warnings"] for r in fast)  # the refit branch ran
    monkeypatch.setattr("ingest.processing.peak_start._compiled_start", lambda x, y: None)
    monkeypatch.setattr("ingest.processing.peaks._compiled_start", lambda x, y: None)
    monkeypatch.setattr(peak_lorentz, "_fit_compiled", lambda *a: None)
    ref, ref_fits = _rows(series)
    for a, b in zip(fast, ref):
        _same(a, b)
    for name, f in fits[0].items():
        _same(f.as_dict(), ref_fits[0][name].as_dict())


def test_window_start_is_numpys_steps():
    _kernels()
    rng = np.random.default_rng(3)
    for t in range(300):
        n = int(rng.integers(8, 400))
        x = np.linspace(7.6, 7.3, n) if t % 3 else np.sort(rng.uniform(7.3, 7.6, n))
        if t % 5 == 0:
            x = rng.permutation(x)  # not an axis: its strips' medians by sorting
        c, w = rng.uniform(7.35, 7.55), rng.uniform(1e-3, 0.05)
        y = rng.uniform(0, 5) * w * w / ((x - c) ** 2 + w * w) + rng.normal(0, rng.uniform(1e-3, 1), n) + 0.3 * x
        if t % 7 == 0:
            y = np.round(y, 1)  # ties: the first maximum, equal medians
        got = _compiled_start(x, y)
        s, c0 = _edge_baseline(x, y)
        yb = y - (s * x + c0)
        top = int(yb.argmax())
        assert got[:4] == (s, c0, top, float(yb[top]))
        lo, hi = halfwidth.half_height_bounds(yb, top, float(yb[top]) / 2.0)
        assert got[4:] == (lo, hi)
        assert _guess(x, yb) == _guess(x, yb, top)
    y[5] = np.nan
    assert _compiled_start(x, y) is None  # numpy's NaN handling, not the kernel's
    assert _compiled_start(x[::-1], y[::-1]) is None  # a layout the kernel was not compiled for


def test_unit_weight_normal_equations_are_the_weighted_ones():
    _kernels()
    rng = np.random.default_rng(4)
    for _ in range(50):
        n = int(rng.integers(5, 3000))
        x = np.sort(rng.uniform(-0.5, 0.5, n))
        y = 0.02 / np.pi / (x * x + 1e-4) + rng.normal(0, 0.1, n)
        q = np.array([rng.uniform(0.5, 2), rng.normal(0, 0.01), rng.uniform(0.005, 0.02), rng.normal(), rng.normal()])
        A, g, A1, g1 = np.zeros((5, 5)), np.zeros(5), np.zeros((5, 5)), np.zeros(5)
        chi = lorentz_nb._normal_eq(q, x, y, np.ones(n), n, A, g)
        chi1 = lorentz_nb._normal_eq1(q, x, y, n, A1, g1)
        assert chi == chi1 and np.array_equal(A, A1) and np.array_equal(g, g1)


def test_fast_inverse_and_errors_are_numpys():
    rng = np.random.default_rng(5)
    for _ in range(100):
        J = rng.normal(size=(40, 5)) * rng.uniform(1e-3, 1e3, 5)
        A = J.T @ J
        inv = np.linalg.inv(A)
        assert np.array_equal(peak_lorentz._inverse(A), inv)
        ae, ce, se, ok = peak_lorentz._errors(A, 2.5)
        err = np.sqrt(np.maximum((inv * 2.5).diagonal(), 0.0))
        assert (ae, ce, se, ok) == (float(err[0]), float(err[1]), float(err[2]), bool(np.isfinite(err).all()))
    with pytest.raises(np.linalg.LinAlgError):
        peak_lorentz._inverse(np.zeros((5, 5)))
    assert peak_lorentz._errors(np.zeros((5, 5)), 1.0)[3] is False


def test_clamp_is_numpys():
    """(The sign of a zero tied with a zero bound is numpy's SIMD's choice: not compared.)"""
    vals = [-np.inf, -1.0, -0.0, 0.0, 0.5, 1.0, np.inf, np.nan]
    for v in vals:
        for a in vals:
            for b in vals:
                want = float(np.minimum(np.maximum(v, a), b))
                got = peak_lorentz._clamp(v, a, b)
                assert (math.isnan(want) and math.isnan(got)) or want == got, (v, a, b)


def test_chunked_half_height_walk_is_the_point_walk():
    rng = np.random.default_rng(6)
    for _ in range(3000):
        n = int(rng.integers(1, 400))
        y = rng.normal(size=n) + 10 * np.exp(-np.linspace(-3, 3, n) ** 2 * rng.uniform(0.001, 5))
        if rng.random() < 0.1:
            y[rng.integers(0, n)] = np.nan
        i = int(rng.integers(0, n))
        half = [None, float(rng.normal()), np.nan, -np.inf][int(rng.integers(0, 4))]
        level = y[i] / 2 if half is None else half
        assert halfwidth.half_height_bounds(y, i, half) == halfwidth._walk(y, i, level)


def test_top_ppm_is_find_peak_ppm():
    rng = np.random.default_rng(7)
    x = np.linspace(6.0, 3.0, 3001)
    for t in range(300):
        y = rng.normal(size=x.size) + 50 * np.exp(-((x - rng.uniform(2.9, 6.1)) / 0.01) ** 2)
        if t % 5 == 0:
            y[rng.integers(0, x.size)] = np.nan
        lo, hi = sorted(rng.uniform(2.8, 6.2, 2))
        if t % 11 == 0:
            hi = lo + 0.001  # a window of fewer than 3 points
        i0, i1 = index_window(x, (lo, hi))
        a, b = top_ppm(x, y, i0, i1), find_peak_ppm(x, y, (lo, hi))
        assert (math.isnan(a) and math.isnan(b)) or a == b, (lo, hi)


def _fit(c: float, w: float, method: str = "lorentzian", success: bool = True) -> PeakFit:
    return PeakFit(c, 1e-4, w, 0.1, 1.0, 0.01, 1.0, 50.0, 1.0, success, (c - 0.1, c + 0.1), 100, method, ())


def test_same_line_check_still_finds_close_lines():
    peaks = ObservablesConfig.default().nmr.peaks
    fits = {p.name: _fit(p.expected_ppm, 3.0) for p in peaks}
    assert not [w for w in assignment_warnings(peaks, fits, sfo1_hz=400e6) if "same line" in w]
    a, b = peaks[1].name, peaks[2].name
    fits[b] = _fit(fits[a].center_ppm + 0.003, 3.0)  # 1.2 Hz apart, half width 1.5 Hz
    same = [w for w in assignment_warnings(peaks, fits, sfo1_hz=400e6) if "same line" in w]
    assert same == [f"{a}: same line as {b} (both at {fits[a].center_ppm:.4f} ppm): overlapping windows",
                    f"{b}: same line as {a} (both at {fits[a].center_ppm:.4f} ppm): overlapping windows"]
    fits[b] = _fit(fits[a].center_ppm + 0.003, 2.0)
    fits[a] = _fit(fits[a].center_ppm, math.nan)  # the other line's width decides
    assert not [w for w in assignment_warnings(peaks, fits, sfo1_hz=400e6) if "same line" in w]
