"""The live per-spectrum fast path gives the reference numbers (issue 13, item 3).

``Extractor(fast=True)`` (what ``flowcell watch`` uses: a per-series plan of
:mod:`ingest.processing.nmr_plan`, the robust baseline started where the previous
spectrum's converged, windows cut by index, Lorentzians solved by a numpy
Levenberg-Marquardt warm-started from the previous spectrum) against the default
``Extractor`` (every spectrum processed in full): on real Bruker and Spinsolve series and on
a noisy simulated series written by tests/generators/bruker_expno.py (it imports nothing from the
package).  Also the pieces: the index window, the numpy LM against MINPACK, the EPR line fit
against lmfit, and the run-length signal mask against the labelling it replaced.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from generators.bruker_expno import GD, fid, write_expno
from rowcompare import assert_rows_close
from scipy import ndimage

from ingest.batch import find_acquisitions
from ingest.processing import nmr_baseline
from ingest.processing.epr_linefit import fit_line
from ingest.processing.epr_lorentzian import fit_lorentzian_derivative
from ingest.processing.observables import Extractor, ObservablesConfig
from ingest.processing.peaks import fit_peak, index_window
from ingest.readers.dispatch import read_rows

TD = 16384


# ----------------------------------------------------------------- independent writer
def _fid(k: int, rng: np.random.Generator) -> np.ndarray:
    """A charging DHAQ-like series: the O-form lines shrink, the H-form lines grow, the
    water line moves; noise; -30 deg phase; the digital filter's delay."""
    x = k / 6.0
    lines = [(4.79 + 0.003 * k, 20.0, 1.5), (7.45, 1.0 - 0.5 * x, 3.0), (7.05, 1.0 - 0.5 * x, 3.0),
             (7.72, 1.0 - 0.5 * x, 3.0), (6.55, 0.5 * x + 0.05, 4.0), (6.25, 0.5 * x + 0.05, 4.0),
             (3.34, 0.1, 1.0)]
    return fid(lines, TD, phase_deg=-30.0, noise=4e-3, rng=rng, group_delay=GD)


def _write_expno(folder: Path, data: np.ndarray, when: datetime) -> None:
    write_expno(folder, data, when, scale_bits=22, extra={"PARMODE": 0, "SOLVENT": "<H2O>"}, acqu=True)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> list:
    root = tmp_path_factory.mktemp("live_series")
    rng = np.random.default_rng(5)
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    for k in range(7):
        _write_expno(root / str(10 + k), _fid(k, rng), t0 + timedelta(minutes=3 * k))
    return [s for p in find_acquisitions(root) for s in read_rows(p)]


# ----------------------------------------------------------------- comparison
def _compare(spectra: list, frac: float) -> Extractor:
    """Reference (full) and fast rows of one series: every fitted shift, width and area within
    ``frac`` of its standard error, the same warnings and processing; returns the fast extractor."""
    cfg = ObservablesConfig.default()
    ref, fast = Extractor(cfg), Extractor(cfg, fast=True)
    rows = [(ref(s), fast(s)) for s in spectra]
    for k, (r, g) in enumerate(rows):
        assert r["processing"] == g["processing"], k
    # windowed sums within one error, as the batch engine (tests/test_fast_path.py): the robust
    # baseline started from the previous spectrum's mask may converge to a slightly different
    # mask (up to 0.13 noise sd apart here)
    assert_rows_close([r for r, _ in rows], [g for _, g in rows], cfg.nmr.peaks, frac=frac,
                      windowed=max(frac, 1.0), err_rel=0.02, same_keys=True)
    assert fast.plan is not None and fast.plan.stats["spectra"] == len(spectra) - 1
    return fast


def test_fast_rows_equal_reference_simulated(simulated):
    fast = _compare(simulated, 0.05)
    assert fast.last is not None and fast.last.params["phase_source"] == "given"


def test_fast_rows_equal_reference_without_numba(simulated, monkeypatch):
    """Without the optional numba extra the numpy Levenberg-Marquardt does the line fits."""
    from ingest.processing import lorentz_nb

    monkeypatch.setattr(lorentz_nb, "_KERNELS", False)  # as without numba or with FLOWCELL_NUMBA=0
    _compare(simulated, 0.05)


def test_fast_rows_equal_reference_bruker_array(shared_data):
    """600 MHz H2O with presaturation: the baseline is marginal (its order falls from 3 to 2
    between spectra): the fast path must then start the baseline from scratch, as per spectrum."""
    spectra = [s for p in find_acquisitions(shared_data / "nmr" / "bruker-array") for s in read_rows(p)]
    fast = _compare(spectra, 0.01)
    assert fast.plan.state["used"] == 2


def test_fast_rows_equal_reference_spinsolve(shared_data):
    spectra = [s for p in find_acquisitions(shared_data / "nmr" / "spinsolve-series") for s in read_rows(p)]
    _compare(spectra, 0.05)


def test_plan_spectrum_equals_process_fid(simulated):
    """The plan's FFT chain (exact digital-filter shift, apodization, zero fill, phase) is
    ``process_fid``'s arithmetic: equal to rounding before the baseline."""
    ex = Extractor(fast=True)
    ex(simulated[0])
    ref = Extractor(phase=ex.phase)
    ref(simulated[3])
    full = ref.last.real + ref.last.baseline
    got = ex.plan.spectrum(simulated[3].fid)
    assert np.max(np.abs(got - full)) <= 1e-9 * np.max(np.abs(full))


# ----------------------------------------------------------------- pieces
def test_index_window_is_the_mask():
    rng = np.random.default_rng(0)
    ppm = 12.0 - np.arange(65536) * (16.0 / 65536)
    for _ in range(200):
        lo, hi = sorted(rng.uniform(-6, 14, 2))
        if rng.random() < 0.2:  # windows on grid points exactly
            lo, hi = sorted(ppm[rng.integers(0, ppm.size, 2)])
        i0, i1 = index_window(ppm, (hi, lo))
        np.testing.assert_array_equal(np.arange(i0, i1), np.flatnonzero((ppm >= lo) & (ppm <= hi)))


def test_numpy_lm_is_minpack_optimum():
    """fit_peak(solver="numpy"), cold and warm-started, = the MINPACK fit: values within 1e-2 of
    their standard errors, the same errors (rel 1e-3) and warnings."""
    rng = np.random.default_rng(2)
    ppm = np.linspace(8.0, 6.0, 12000)
    for _ in range(60):
        c, g, a = rng.uniform(6.95, 7.05), rng.uniform(0.001, 0.02), rng.uniform(0.05, 20)
        y = a / np.pi * g / ((ppm - c) ** 2 + g * g) + rng.normal(0, 0.05, ppm.size) + 0.1 * (ppm - 7)
        ref = fit_peak(ppm, y, (6.85, 7.15), sfo1_hz=4e8, noise=0.05)
        starts = [None, (a * 1.1, c + 0.3 * g, g * 0.8)]
        for st in starts:
            got = fit_peak(ppm, y, (6.85, 7.15), sfo1_hz=4e8, noise=0.05, solver="numpy", start=st)
            assert got.warnings == ref.warnings
            for v, e in (("area", "area_err"), ("center_ppm", "center_err_ppm"), ("fwhm_hz", "fwhm_err_hz")):
                if np.isfinite(getattr(ref, e)):
                    assert abs(getattr(got, v) - getattr(ref, v)) <= 1e-2 * getattr(ref, e), v
                    assert getattr(got, e) == pytest.approx(getattr(ref, e), rel=1e-3)


def _epr_cases(shared: Path | None) -> list:
    rng = np.random.default_rng(4)
    out = []
    for _ in range(8):
        b = np.linspace(0.335, 0.345, 1024)
        w = rng.uniform(1e-4, 8e-4)
        g, u = np.sqrt(3) / 2 * w * 1e3, (b - 0.34 - rng.uniform(-1e-3, 1e-3)) * 1e3
        y = -(5 / np.pi) * 2 * g * u / (u * u + g * g) ** 2
        out.append((b, y + rng.normal(0, rng.uniform(0.005, 0.3) * np.abs(y).max(), b.size) + 0.01))
    if shared is not None:
        for f in ("bes3t-BDPA-1DFieldSweep.DTA", "bes3t-test-bes3t-1D-fieldsweep.DTA", "esp/ESP.spc",
                  "esp/EMX-winEPR.spc"):
            s = read_rows(shared / "epr" / f)[0]
            out.append((s.field_T, s.intensity))
    return out


@pytest.mark.parametrize("real", [False, True])
def test_epr_line_fit_is_the_lmfit_fit(real, request):
    shared = request.getfixturevalue("shared_data") if real else None
    for b, y in _epr_cases(shared):
        ref, got = fit_lorentzian_derivative(b, y), fit_line(b, y)
        assert got.result.success == bool(ref.result.success)
        assert got.warnings == ref.warnings
        assert got.r2 == pytest.approx(ref.r2, abs=1e-6)
        for v, e in (("center_T", "center_err_T"), ("dBpp_T", "dBpp_err_T"), ("area", "area_err")):
            assert abs(getattr(got, v) - getattr(ref, v)) <= 1e-2 * getattr(ref, e), v
            assert getattr(got, e) == pytest.approx(getattr(ref, e), rel=2e-3), e


def _signal_mask_labelled(resid, sigma, k_lo, k_hi, dil, smooth, smooth_sigma, widen=3.0):
    """The labelling implementation the run-length one replaced (commit 766fe6b)."""
    a = np.abs(resid)
    seed = a > k_hi * sigma
    if smooth > 1 and smooth_sigma > 0:
        seed |= np.abs(ndimage.uniform_filter1d(resid, smooth, mode="nearest")) > k_hi * smooth_sigma
    cand = seed | (a > k_lo * sigma)
    grown = ndimage.maximum_filter1d(cand.astype(np.uint8), 2 * max(1, smooth) + 1).astype(bool)
    lab, nlab = ndimage.label(grown)
    out = np.zeros(a.size, dtype=bool)
    if nlab == 0:
        return out
    seeded = np.zeros(nlab + 1, dtype=bool)
    seeded[np.unique(lab[seed])] = True
    ext_min, ext_max = max(1, dil // 2), 8 * max(1, dil)
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None or not seeded[k]:
            continue
        i0, i1 = sl[0].start, sl[0].stop
        ext = min(ext_max, max(ext_min, int(widen * (i1 - i0) / 2)))
        out[max(0, i0 - ext):min(a.size, i1 + ext)] = True
    return out


def test_run_length_signal_mask_is_the_labelled_one():
    rng = np.random.default_rng(9)
    x = np.linspace(-1, 1, 8192)
    for _ in range(30):
        y = rng.normal(0, 1, x.size)
        for _ in range(rng.integers(0, 12)):
            c, g, h = rng.uniform(-1.1, 1.1), rng.uniform(1e-4, 0.02), rng.uniform(1, 1e4)
            y += h * g * g / ((x - c) ** 2 + g * g)
        dil, smooth = int(rng.integers(1, 60)), int(rng.integers(1, 17))
        args = (y, 1.0, 3.0, 4.2, dil, smooth, float(rng.uniform(0, 0.5)))
        np.testing.assert_array_equal(nmr_baseline._signal_mask(*args), _signal_mask_labelled(*args))


def test_watcher_default_extractor_is_fast(tmp_path):
    from ingest.live.store import Store
    from ingest.live.watch import Watcher

    (tmp_path / "in").mkdir()
    w = Watcher(tmp_path / "in", None, Store(tmp_path / "store"), ObservablesConfig.default())
    w.start()
    try:
        assert w._extractor.fast is True
    finally:
        w.stop()
        w.store.close()
