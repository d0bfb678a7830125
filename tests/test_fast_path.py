"""The batch NMR engine (ingest.processing.batch_nmr) gives the per-spectrum Extractor's numbers.

Data: a series of Bruker 1H expnos written by tests/generators/bruker_expno.py, which imports
nothing from the package (TopSpin's acqus keys, int32 little-endian fid, a band-limited
digital-filter delay, a phase error, noise), so the readers see files the package did not
write.  Both paths read the same files; the batch rows must agree with the per-spectrum
rows within a small fraction of each fit's standard error.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from generators.bruker_expno import GD, fid, write_expno
from rowcompare import assert_rows_close

from ingest.batch import find_acquisitions, ingest_paths
from ingest.processing.batch_nmr import BatchExtractor
from ingest.processing.observables import Extractor, ObservablesConfig
from ingest.readers.dispatch import read_rows

TD = 16384
HDO = [4.790 + 0.004 * k for k in range(7)]  # the water line moves (bulk susceptibility)


# ----------------------------------------------------------------- independent writer
def _fid(k: int, rng: np.random.Generator) -> np.ndarray:
    lines = [(HDO[k], 10.0, 1.0), (7.45, 1.0, 3.0), (7.05, 1.0, 3.0), (7.72, 1.0, 3.0), (3.34, 0.2, 1.0)]
    return fid(lines, TD, phase_deg=-40.0, noise=2e-3, rng=rng, group_delay=GD)


def _write_expno(folder: Path, data: np.ndarray, when: datetime) -> None:
    # fid scaled by 2**20/max: the absolute scale is arbitrary, both paths read the same words
    write_expno(folder, data, when, scale_bits=20, extra={"PARMODE": 0, "SOLVENT": "<D2O>"}, acqu=True)


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("series")
    rng = np.random.default_rng(11)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for k in range(len(HDO)):
        _write_expno(root / str(10 + k), _fid(k, rng), t0 + timedelta(minutes=5 * k))
    return find_acquisitions(root)


def _spectra(paths: list[Path]) -> list:
    return [s for p in paths for s in read_rows(p)]


def _compare(ref: list[dict], got: list[dict], cfg: ObservablesConfig) -> None:
    # fits within 1 % of their error (measured: <= 0.2 %); windowed integrals of empty windows
    # (the series' noise and baseline mask) within 0.3 (measured 0.13)
    assert_rows_close(ref, got, cfg.nmr.peaks, frac=0.01, windowed=0.3, same_keys=True)
    for r, g in zip(ref, got):
        assert r["processing"].split(";ph=")[0] == g["processing"].split(";ph=")[0]
        assert r["time_start"] == g["time_start"] and r["source"] == g["source"]


def test_batch_rows_equal_per_spectrum_rows(series):
    cfg = ObservablesConfig.default()
    spectra = _spectra(series)
    ex = Extractor(cfg)
    ref = [ex(s) for s in spectra]
    bx = BatchExtractor(cfg, chunk=4)
    got = bx.rows(spectra)
    assert bx.phase == pytest.approx(ex.phase)
    _compare(ref, got, cfg)
    # the truth the generator wrote: the moving water line
    np.testing.assert_allclose([g["hdo_shift_ppm"] for g in got], HDO, atol=2e-4)
    assert abs(ex.phase[0] - 40.0) < 1.0  # the generator's -40 deg phase error undone


def test_chunking(series):
    """The batch engine's rows do not depend on its chunk size."""
    cfg = ObservablesConfig.default()
    spectra = _spectra(series)
    a = BatchExtractor(cfg, chunk=2).rows(spectra)
    b = BatchExtractor(cfg, chunk=16).rows(spectra)
    for r, g in zip(a, b):
        for k, v in r.items():
            if isinstance(v, float) and np.isfinite(v):
                assert g[k] == pytest.approx(v, rel=1e-9, abs=1e-15), k


def test_ingest_paths_uses_the_batch_engine(series):
    """`flowcell ingest` / screening (ingest_paths): the batch engine's rows equal a
    per-spectrum extractor's (a plain callable is not batched)."""
    cfg = ObservablesConfig.default()
    fast = ingest_paths(series, cfg).table
    ex = Extractor(cfg)
    slow = ingest_paths(series, extractor=lambda s: ex(s)).table
    assert len(fast) == len(slow) == len(HDO)
    pd.testing.assert_series_equal(fast["source"], slow["source"])
    np.testing.assert_allclose(fast["hdo_shift_ppm"], slow["hdo_shift_ppm"],
                               atol=0.05 * float(slow["hdo_shift_err_ppm"].max()))
    np.testing.assert_allclose(fast["dhaq_h1_area"], slow["dhaq_h1_area"],
                               atol=0.05 * float(slow["dhaq_h1_area_err"].max()))


def test_real_instrument_files_same_rows(shared_data):
    """Every NMR file in shared/data (Bruker array whose baseline order flips between
    spectra, single expnos, Spinsolve, JCAMP-DX): the batch engine's rows equal the
    per-spectrum rows (within 1 % of their errors, measured <= 0.03 %; same processing and warnings)."""
    from ingest.batch import ingest_folder
    cfg = ObservablesConfig.default()
    fast = ingest_folder(shared_data / "nmr", cfg, progress=False).table
    ex = Extractor(cfg)
    slow = ingest_folder(shared_data / "nmr", extractor=lambda s: ex(s), progress=False).table
    assert len(fast) == len(slow) == 17
    assert list(fast["processing"]) == list(slow["processing"])
    assert list(fast["nmr_warnings"].fillna("")) == list(slow["nmr_warnings"].fillna(""))
    for p in cfg.nmr.peaks:
        for col, err in ((f"{p.name}_shift_ppm", f"{p.name}_shift_err_ppm"), (f"{p.name}_area", f"{p.name}_area_err"),
                         (f"{p.name}_fwhm_Hz", f"{p.name}_fwhm_err_Hz")):
            d = (fast[col] - slow[col]).abs() / slow[err]
            assert not (d > 0.01).any(), (col, d.max())
            assert (fast[col].isna() == slow[col].isna()).all(), col
