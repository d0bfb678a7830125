"""complex64 transforms where the series proves them harmless (ingest.processing.fft_precision).

The live plan (``Extractor(fast=True)``) and the batch engine run their FFTs in complex64
when the first FID of a series shows the round-off far below the noise; the observables must
then equal the complex128 path's within 1e-3 of each fit's standard error: on real Bruker
and Spinsolve series (shared data) and on a series written by tests/generators/bruker_expno.py
(imports nothing from the package).  A FID whose noise is below the float32 round-off must
stay in complex128, and so must a later FID much larger than the first one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from generators.bruker_expno import GD, fid, write_expno
from rowcompare import assert_rows_close

from ingest.batch import find_acquisitions
from ingest.processing.batch_nmr import BatchExtractor
from ingest.processing.fft_precision import PEAK_MAX, RMS_MAX, check_precision
from ingest.processing.observables import Extractor, ObservablesConfig
from ingest.processing.zf_fft import (
    even_odd,
    half_twiddle,
    quarter_fft,
    split_fft,
    split_layout,
    split_twiddles,
    vendor_real,
)
from ingest.readers.dispatch import read_rows

TD = 16384
CFG = ObservablesConfig.default()
TOL = 1e-3  # of each observable's standard error


def _lines(k: int) -> list[tuple[float, float, float]]:
    x = k / 4.0
    return [(4.79 + 0.003 * k, 20.0, 1.5), (7.45, 1.0 - 0.5 * x, 3.0), (7.05, 1.0 - 0.5 * x, 3.0),
            (6.55, 0.5 * x + 0.05, 4.0), (3.34, 0.1, 1.0)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list:
    """Five Bruker expnos (int32 fid, TopSpin acqus, digital-filter delay, phase error, noise)."""
    root = tmp_path_factory.mktemp("precision")
    rng = np.random.default_rng(7)
    t0 = datetime(2026, 4, 1, tzinfo=timezone.utc)
    for k in range(5):
        data = fid(_lines(k), TD, phase_deg=-25.0, noise=3e-3, rng=rng, group_delay=GD)
        write_expno(root / str(10 + k), data, t0 + timedelta(minutes=4 * k), scale_bits=22,
                    extra={"SOLVENT": "<H2O>"})
    return [s for p in find_acquisitions(root) for s in read_rows(p)]


def _real_series(shared_data: Path, name: str) -> list:
    return [s for p in find_acquisitions(shared_data / "nmr" / name) for s in read_rows(p)]


def _assert_same(ref: list[dict], got: list[dict]) -> None:
    """Every shift, width and area (fitted or windowed) within TOL of its standard error."""
    assert_rows_close(ref, got, CFG.nmr.peaks, frac=TOL)


def _live_pair(spectra: list) -> tuple[list[dict], list[dict], Extractor]:
    """Rows of the live path with the series' precision (auto) and forced complex128."""
    auto, dbl = Extractor(CFG, fast=True), Extractor(CFG, fast=True)
    ra, rd = [auto(spectra[0])], [dbl(spectra[0])]
    dbl.plan.precision = None  # complex128 from here on
    for s in spectra[1:]:
        ra.append(auto(s))
        rd.append(dbl(s))
    return rd, ra, auto


def _check_live(spectra: list) -> None:
    ref, got, auto = _live_pair(spectra)
    assert auto.plan.fft_dtype == np.complex64, auto.plan.precision
    assert auto.last.params["fft_dtype"] == "complex64"
    assert auto.plan.stats.get("complex128", 0) == 0
    _assert_same(ref, got)


def _check_batch(spectra: list) -> None:
    auto, dbl = BatchExtractor(CFG, chunk=4), BatchExtractor(CFG, chunk=4, precision="complex128")
    got, ref = auto.rows(spectra), dbl.rows(spectra)
    assert auto.precision_of(spectra[0]).single
    assert auto.stats == {"complex64": len(spectra) - 1}
    assert dbl.stats == {"complex128": len(spectra) - 1}
    _assert_same(ref, got)


# ----------------------------------------------------------------- observables
def test_generated_series_live(generated):
    _check_live(generated)


def test_generated_series_batch(generated):
    _check_batch(generated)


def test_bruker_array(shared_data):
    spectra = _real_series(shared_data, "bruker-array")[:4]
    _check_live(spectra)
    _check_batch(spectra)


def test_spinsolve_series(shared_data):
    """Benchtop water 1e5 times above the noise: the largest dynamic range of the shared files."""
    spectra = _real_series(shared_data, "spinsolve-series")
    _check_live(spectra)
    _check_batch(spectra)


# ----------------------------------------------------------------- the guard
def test_noise_below_float32_roundoff_stays_complex128(generated):
    """A FID with noise 1e-10 of its lines (no ADC words: the reader's header, a float FID):
    float32 cannot carry it, the guard keeps complex128, and the rows equal the forced path's."""
    rng = np.random.default_rng(3)
    quiet = [replace(s, fid=fid(_lines(k), TD, phase_deg=-25.0, noise=1e-10, rng=rng, group_delay=GD))
             for k, s in enumerate(generated[:2])]
    ex = Extractor(CFG, fast=True)
    for s in quiet:
        ex(s)
    assert ex.plan.fft_dtype == np.complex128
    assert ex.plan.precision.rms_ratio > 10 * RMS_MAX  # the round-off is above the noise here
    assert ex.last.params["fft_dtype"] == "complex128"
    bx = BatchExtractor(CFG)
    bx.rows(quiet)
    assert not bx.precision_of(quiet[0]).single and bx.stats == {"complex128": 1}


def test_larger_fid_later_goes_complex128(generated):
    """The round-off grows with the lines, the noise does not: a FID whose lines are 1000 times
    stronger over the same noise (a dynamic range out of the first FID's guard) is transformed
    in complex128, the others in complex64."""
    s = generated[2]
    lines = fid(_lines(2), TD, phase_deg=-25.0, group_delay=GD)  # noise-free, generator units
    words = np.asarray(s.fid)
    scale = np.vdot(lines, words).real / np.vdot(lines, lines).real  # to the reader's units
    loud = replace(s, fid=words + 999.0 * scale * lines)
    spectra = [generated[0], generated[1], loud, generated[3]]
    ex = Extractor(CFG, fast=True)
    for s in spectra:
        ex(s)
    assert ex.plan.fft_dtype == np.complex64 and ex.plan.stats["complex128"] == 1
    bx = BatchExtractor(CFG, chunk=1)
    bx.rows(spectra[:3])
    assert bx.stats == {"complex64": 1, "complex128": 1}
    assert bx.extractor.last.params["fft_dtype"] == "complex128"  # the loud one's provenance
    bx.rows(spectra[3:])
    assert bx.stats == {"complex64": 2, "complex128": 1}
    assert bx.extractor.last.params["fft_dtype"] == "complex64"


def test_check_precision_thresholds():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(4096)
    ok = check_precision(ref + 0.5 * RMS_MAX * rng.standard_normal(4096), ref, 1.0, 1.0)
    assert ok.single and ok.label == "complex64"
    assert ok.rms_ratio == pytest.approx(0.5 * RMS_MAX, rel=0.05)
    noisy = check_precision(ref + 2 * RMS_MAX * rng.standard_normal(4096), ref, 1.0, 1.0)
    assert not noisy.single and noisy.label == "complex128"
    spike = ref.copy()
    spike[100] += 2 * PEAK_MAX
    assert not check_precision(spike, ref, 1.0, 1.0).single  # one bin too far, whatever the rms
    assert not check_precision(ref, ref, 0.0, 1.0).single  # no noise estimate: no proof
    assert ok.holds(1.0) and ok.holds(1.5) and not ok.holds(3.0)  # round-off scales with the norm


@pytest.mark.parametrize("n", [2, 6, 16, 4096])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_split_transform_is_the_zero_filled_fft(n, dtype):
    """Even/odd half transforms, phased into vendor order, against numpy's full transform of the
    zero-filled FID and ``fftshift(S)[::-1]`` (the vendor order of ingest.processing.nmr.fft)."""
    rng = np.random.default_rng(n)
    m = n // 2
    u = np.zeros(n, complex)
    u[:m] = rng.standard_normal(m) + 1j * rng.standard_normal(m)
    rot = np.exp(1j * rng.uniform(0.0, 2 * np.pi, n)) * 3.0  # vendor order
    ref = (np.fft.fftshift(np.fft.fft(u))[::-1] * rot).real
    rot_fft = np.empty(n, complex)
    rot_fft[np.fft.fftshift(np.arange(n))[::-1]] = rot  # vendor index j <- FFT index perm[j]
    u2 = np.zeros((2, 2, m), dtype)
    u2[1, 0] = u[:m]
    out = np.empty((2, n))
    vendor_real(split_fft(u2, half_twiddle(n, dtype)), even_odd(rot_fft, dtype), out)
    tol = 1e-12 if dtype == np.complex128 else 2e-6
    assert np.max(np.abs(out[1] - ref)) <= tol * np.max(np.abs(ref))
    assert np.max(np.abs(out[0])) == 0.0  # the zero row stays zero


@pytest.mark.parametrize("n, td", [(4, 2), (16, 8), (16, 5), (16, 3), (4096, 2048), (4096, 1500), (4096, 700)])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_quarter_transform_is_the_zero_filled_fft(n, td, dtype):
    """Four quarter-size transforms (bins 4j + r), phased into vendor order, against numpy's full
    transform of the zero-filled FID: a FID filling half the length, less, or under a quarter."""
    rng = np.random.default_rng(n + td)
    u = np.zeros(n, complex)
    u[:td] = rng.standard_normal(td) + 1j * rng.standard_normal(td)
    rot = np.exp(1j * rng.uniform(0.0, 2 * np.pi, n)) * 3.0  # vendor order
    ref = (np.fft.fftshift(np.fft.fft(u))[::-1] * rot).real
    rot_fft = np.empty(n, complex)
    rot_fft[np.fft.fftshift(np.arange(n))[::-1]] = rot
    u4 = np.full((2, 4, n // 4), np.nan, dtype)  # rows 2 and 3 are scratch: stale values must not matter
    u4[:, :2] = 0.0
    u4[1].reshape(-1)[: n // 2] = u[: n // 2]
    out = np.empty((2, n))
    vendor_real(quarter_fft(u4, split_twiddles(n, 4, dtype)), split_layout(rot_fft, 4, dtype), out)
    tol = 1e-12 if dtype == np.complex128 else 2e-6
    assert np.max(np.abs(out[1] - ref)) <= tol * np.max(np.abs(ref))
    assert np.max(np.abs(out[0])) == 0.0


def test_split_twiddles_and_layout():
    n = 64
    tw = split_twiddles(n, 4, np.complex128)
    t = np.arange(n // 4)
    for r in range(4):
        assert np.allclose(tw[r], np.exp(-2j * np.pi * r * t / n), rtol=0, atol=1e-15)
    assert np.array_equal(split_twiddles(n, 2)[1], half_twiddle(n))
    a = np.arange(n) + 0j
    assert np.array_equal(split_layout(a, 4).real, np.arange(n).reshape(-1, 4).T)
    assert np.array_equal(even_odd(a), split_layout(a, 2))


# ----------------------------------------------------------------- two threads (issue 13)
@pytest.mark.parametrize("single", [False, True])
def test_two_thread_transform_gives_the_same_spectra_and_rows(generated, single):
    """The live plan's zero-filled transform on two threads (even and odd halves at once) gives
    the one-thread spectrum to rounding, in both precisions, and the same rows."""
    one, two = Extractor(CFG, fast=True), Extractor(CFG, fast=True)
    one(generated[0]), two(generated[0])
    one.plan.workers, two.plan.workers = 1, 2
    for ex in (one, two):
        ex.plan._bufs.clear()
        if not single:
            ex.plan.precision = None  # complex128
    dtype = one.plan.fft_dtype
    assert dtype == (np.complex64 if single else np.complex128)
    assert two.plan._split(dtype) and one.plan._split(dtype) == single
    for s in generated[1:]:
        a, b = one.plan.spectrum(s.fid, dtype), two.plan.spectrum(s.fid, dtype)
        tol = 2e-6 if single else 1e-13
        assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(a))
    _assert_same([one(s) for s in generated[1:]], [two(s) for s in generated[1:]])


def test_live_fft_workers_follows_the_cpus_the_process_may_use(monkeypatch):
    from ingest.processing import nmr_plan

    monkeypatch.setattr(nmr_plan.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert nmr_plan.live_fft_workers() == 1
    monkeypatch.setattr(nmr_plan.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert nmr_plan.live_fft_workers() == 2
