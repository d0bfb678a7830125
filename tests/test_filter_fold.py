"""The batch engine's digital-filter removal against the per-spectrum path's (ingest.processing.batch_nmr,
ingest.processing.filter_fold).

The per-spectrum path removes the Bruker filter delay GD as a circular shift over the acquired
length (an FFT pair, :func:`ingest.processing.nmr.remove_digital_filter`).  The batch engine:

* a whole number of points: the shift is a slice (no FFT pair), the pair's numbers to round-off;
* a fractional delay: by default (``exact_filter=True``) the FFT pair; opt-in
  (``exact_filter=False``) the corrected fold (a linear phase of the zero-filled transform plus a
  low-rank correction near the FID's start) when the series' first FID shows it within the
  guard of :mod:`ingest.processing.filter_fold`, else the FFT pair.

The uncorrected fold is exact for a whole number of points only; at GD = 67.98 it moves
empty-window integrals by 8-12 standard errors at 64k points (benchmarks/bench_filter_fold.py).

Data: Bruker 1H expnos written by tests/generators/bruker_expno.py (numpy only); the exact
removal is also written out here in numpy for the spectrum-level checks.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
from generators.bruker_expno import fid, write_expno
from rowcompare import assert_rows_close

from ingest.processing.batch_nmr import BatchExtractor, reference_rows
from ingest.processing.filter_fold import fold_correction
from ingest.processing.observables import ObservablesConfig
from ingest.readers.dispatch import read_rows

TD = 8192
SW = 8012.8  # the generator's spectral width, Hz
LINES = [(4.79, 10.0, 1.0), (7.45, 1.0, 3.0), (7.05, 1.0, 3.0), (7.72, 1.0, 3.0), (3.34, 0.2, 1.0)]


def _series(root: Path, gd: float, n: int = 4) -> list:
    rng = np.random.default_rng(5)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for k in range(n):
        data = fid(LINES, TD, phase_deg=-40.0, noise=2e-3, rng=rng, group_delay=gd)
        write_expno(root / str(10 + k), data, t0 + timedelta(minutes=k), group_delay=gd)
    return [s for k in range(n) for s in read_rows(root / str(10 + k))]


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> list:
    return _series(tmp_path_factory.mktemp("gd68"), 68.0)


@pytest.fixture(scope="module")
def fractional(tmp_path_factory) -> list:
    return _series(tmp_path_factory.mktemp("gd6798"), 67.98)


def _numeric(row: dict) -> dict:
    return {k: v for k, v in row.items() if isinstance(v, float)}


def _assert_same(a: list[dict], b: list[dict], rel: float) -> None:
    """Every numeric column within ``rel`` of its standard error (or of itself, without one)."""
    for r, g in zip(a, b):
        assert set(r) == set(g)
        for k, v in _numeric(r).items():
            if not np.isfinite(v):
                assert np.isnan(v) == np.isnan(g[k]), k
                continue
            base = k.removesuffix("_ppm").removesuffix("_Hz")
            err = next((r[e] for e in (f"{base}_err", f"{base}_err_ppm", f"{base}_err_Hz") if e in r), None)
            scale = err if err is not None and np.isfinite(err) and err > 0 else max(abs(v), 1e-12)
            assert abs(g[k] - v) <= rel * scale, (k, v, g[k], scale)


def test_whole_point_delay_runs_no_fft_pair(whole, monkeypatch):
    """GD = 68 points: the shift is a slice; the rows equal those of the FFT pair to round-off
    and the per-spectrum path's as closely as with a fractional delay (tests/test_fast_path.py)."""
    cfg = ObservablesConfig.default()
    batched = []  # batch inverse transforms of the acquired length: the filter's FFT pair
    real_ifft = scipy.fft.ifft

    def spy(x, *a, **kw):
        if np.ndim(x) == 2 and np.shape(x)[1] == TD:
            batched.append(np.shape(x))
        return real_ifft(x, *a, **kw)

    monkeypatch.setattr(scipy.fft, "ifft", spy)
    got = BatchExtractor(cfg, precision="complex128").rows(whole)
    assert batched == []
    monkeypatch.undo()

    class Pair(BatchExtractor):  # the same engine with the FFT pair forced
        def _start_series(self, spec, key):
            row = super()._start_series(spec, key)
            for ser in self._series.values():
                ser.gd_int = 0
            return row

    pair = Pair(cfg, precision="complex128").rows(whole)
    _assert_same(pair, got, 1e-6)
    # the per-spectrum path: fits within 1 % of their errors; empty windows within 1 (the
    # series' noise and baseline mask, the same with the FFT pair: measured 0.53 on this series)
    ref = reference_rows(whole, cfg)
    assert_rows_close(ref, got, cfg.nmr.peaks, frac=0.01, windowed=1.0, same_keys=True)
    np.testing.assert_allclose([g["hdo_shift_ppm"] for g in got], 4.79, atol=2e-4)
    # the default precision (complex64 when the guard allows) slices too
    default = BatchExtractor(cfg).rows(whole)
    assert_rows_close(pair, default, cfg.nmr.peaks, frac=0.01, windowed=0.05)


def _exact_and_fold(d: np.ndarray, gd: float, m: int, lb: float = 0.3) -> tuple[np.ndarray, ...]:
    """The exact path's zero-filled FID (shift over td, drop ceil(gd), apodize, zero-fill), the
    fold's input (apodized as delayed, zero before floor(gd), zero-filled) and its phase."""
    td, a = d.size, np.pi * lb / SW
    nk = td - int(np.ceil(gd))
    x = np.fft.ifft(np.fft.fft(d) * np.exp(2j * np.pi * gd * np.fft.fftfreq(td)))
    xe = np.zeros(m, complex)
    xe[:nk] = x[:nk] * np.exp(-a * np.arange(nk))
    w = np.exp(-a * (np.arange(td) - gd))
    w[: int(np.floor(gd))] = 0.0
    u = np.zeros(m, complex)
    u[:td] = d * w
    return xe, u, np.exp(2j * np.pi * gd * np.fft.fftfreq(m))


@pytest.mark.parametrize("gd", [67.98, 67.5, 72.125])
def test_correction_reproduces_the_exact_residual(gd):
    """On its stretch the correction is the residual S^-1(exact) - fold input (numpy here), the
    first point is the exact path's; at GD = 67.98 the corrected spectrum is within 0.1 sigma of
    the exact one per bin inside the edges (uncorrected: ~5 sigma)."""
    d = fid(LINES, TD, phase_deg=-40.0, noise=2e-3, rng=np.random.default_rng(3), group_delay=gd)
    m = 2 * TD
    xe, u, lin = _exact_and_fold(d, gd, m)
    g = np.fft.ifft(np.fft.fft(xe) / lin) - u
    fc = fold_correction(TD, gd, m, 0.3, SW, head=TD)
    c = fc.correction(d[None])[0]
    assert np.abs(c - g[fc.index]).max() <= 2e-4 * np.abs(g[fc.index]).max()  # measured 1e-5 .. 3e-5
    assert abs(d @ fc.first - xe[0]) <= 1e-12 * abs(xe[0])
    if gd == 67.98:
        v = u.copy()
        v[fc.index] += c
        sigma = 2e-3 * np.sqrt(np.exp(-2 * np.pi * 0.3 / SW * np.arange(TD)).sum())
        inner = slice(m // 64, m - m // 64)
        exact = np.fft.fftshift(np.fft.fft(xe))[inner]
        assert np.abs(np.fft.fftshift(np.fft.fft(v) * lin)[inner] - exact).max() < 0.1 * sigma
        assert np.abs(np.fft.fftshift(np.fft.fft(u) * lin)[inner] - exact).max() > 2 * sigma


def test_opt_in_fold_within_the_guard(fractional):
    """GD = 67.98: the engine with the fold switched on (``exact_filter=False``, opt-in) uses the
    corrected fold (recorded in the params), its rows equal the FFT pair's (the default's)
    within 2 % of every standard error (measured 0.3 %) and the
    per-spectrum path's as closely as the pair's do."""
    cfg = ObservablesConfig.default()
    bx = BatchExtractor(cfg, exact_filter=False)
    got = bx.rows(fractional)
    check = bx.fold_of(fractional[0])
    assert check is not None and check.ok, check
    assert bx.extractor.last.params["filter_removal"] == "fold"
    pair = BatchExtractor(cfg, exact_filter=True).rows(fractional)
    _assert_same(pair, got, 0.02)
    assert_rows_close(reference_rows(fractional, cfg), got, cfg.nmr.peaks, frac=0.01, windowed=1.0, same_keys=True)


def test_guard_refuses_what_the_correction_cannot_reach(tmp_path):
    """GD = 67.5 at 8k points: the fold's difference beyond the corrected stretch is ~1 sigma
    per bin; the guard refuses it and the series goes through the FFT pair (the same rows)."""
    specs = _series(tmp_path, 67.5, n=3)
    cfg = ObservablesConfig.default()
    bx = BatchExtractor(cfg, exact_filter=False)
    got = bx.rows(specs)
    check = bx.fold_of(specs[0])
    assert check is not None and not check.ok and check.block_ratio > 1.0, check
    assert bx.extractor.last.params["filter_removal"] == "exact"
    _assert_same(BatchExtractor(cfg, exact_filter=True).rows(specs), got, 1e-9)


def test_real_series_keeps_the_fft_pair(shared_data):
    """bruker-array (600 MHz, presaturated water, old firmware: GD 72.125 from the DSPFVS
    table): the baseline barely covers the axis, so each spectrum gets its own robust baseline,
    which reacts to the fold's difference near the edges (0.5 standard errors of formamide's
    area when the fold was let through on expno 12); the engine keeps the FFT pair there."""
    specs = [read_rows(shared_data / "nmr" / "bruker-array" / k)[0] for k in ("12", "3", "6")]
    cfg = ObservablesConfig.default()
    bx = BatchExtractor(cfg, exact_filter=False)
    got = bx.rows(specs)
    assert bx.extractor.last.params["group_delay"] == 72.125
    assert bx.fold_of(specs[0]) is None
    assert bx.extractor.last.params["filter_removal"] == "exact"
    _assert_same(BatchExtractor(cfg, exact_filter=True).rows(specs), got, 1e-9)
