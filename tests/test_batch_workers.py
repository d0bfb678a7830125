"""Batch reprocessing in forked workers, the compiled line fits, the fast Bruker parameter parser.

* ``ingest_paths(..., workers=2)`` gives exactly the table of ``workers=1`` — also for a folder
  holding two interleaved series (two FID sizes), where a worker may meet a series first that
  an earlier block holds (the parent then redoes that block in order).
* The compiled Levenberg-Marquardt (numba, the ``fast`` extra) reaches the numpy one's optimum.
* :func:`ingest.readers.bruker_params.parse_jcamp` parses every real parameter file as nmrglue does.

Data: Bruker expnos written by tests/generators/bruker_expno.py, which imports nothing from the package.
"""

from __future__ import annotations

import os
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from generators.bruker_expno import GD, fid, write_expno
from ingest import batch
from ingest.batch import find_acquisitions, ingest_paths
from ingest.processing import lorentz_batch



def _fid(td: int, hdo: float, rng: np.random.Generator) -> np.ndarray:
    lines = ((hdo, 10.0, 1.0), (7.45, 1.0, 3.0), (7.05, 1.0, 3.0), (7.72, 1.0, 3.0))
    return fid(lines, td, phase_deg=-40.0, noise=2e-3, rng=rng, group_delay=GD)


@pytest.fixture(scope="module")
def two_series(tmp_path_factory) -> list[Path]:
    """14 expnos: 8192-point FIDs, with 4096-point ones from the 6th on (every other one)."""
    root = tmp_path_factory.mktemp("two_series")
    rng = np.random.default_rng(5)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for k in range(14):
        td = 4096 if (k >= 5 and k % 2) else 8192
        write_expno(root / str(10 + k), _fid(td, 4.79 + 0.002 * k, rng), t0 + timedelta(minutes=k))
    return find_acquisitions(root)


def test_workers_give_the_serial_table(two_series, monkeypatch):
    monkeypatch.setattr(batch, "BATCH_ACQUISITIONS", 2)
    one = ingest_paths(two_series, workers=1)
    two = ingest_paths(two_series, workers=2)
    assert len(one.table) == 14 and not one.skipped and not two.skipped
    pd.testing.assert_frame_equal(one.table, two.table)
    # the generator's moving water line, in both series
    k = np.arange(14)
    short = (k >= 5) & (k % 2 == 1)  # 4096 points: 0.51 s of a 1 Hz line, truncated
    err = np.abs(two.table["hdo_shift_ppm"].to_numpy() - (4.79 + 0.002 * k))
    assert err[~short].max() < 3e-4 and err[short].max() < 1.2e-3, err


def test_workers_report_unreadable_files_once(two_series, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "BATCH_ACQUISITIONS", 2)
    bad = tmp_path / "99"
    bad.mkdir()
    (bad / "acqus").write_text((two_series[0] / "acqus").read_text())
    (bad / "fid").write_bytes(b"\0" * 100)  # truncated
    res = ingest_paths([*two_series[:7], bad, *two_series[7:]], workers=2)
    assert len(res.table) == 14
    assert [p for p, _ in res.skipped] == [bad] and "truncated" in res.skipped[0][1]


@pytest.mark.parametrize("how", ["raises", "dies"])
def test_a_failed_worker_block_is_redone_here(two_series, monkeypatch, how):
    """A block that a forked worker could not finish (it raised, or the worker died in it) is
    redone in this process: the table is still the serial one, nothing lost or doubled."""
    monkeypatch.setattr(batch, "BATCH_ACQUISITIONS", 2)
    one = ingest_paths(two_series, workers=1)
    parent, real = os.getpid(), batch._from_primed
    taken = []

    def flaky(ex, i):
        if os.getpid() != parent and not taken:  # the worker's first block
            taken.append(i)
            if how == "dies":
                os._exit(3)
            raise RuntimeError("worker fails")
        return real(ex, i)

    monkeypatch.setattr(batch, "_from_primed", flaky)
    monkeypatch.setattr(batch, "_POLL_S", 0.05)
    two = ingest_paths(two_series, workers=2)
    assert not two.skipped
    pd.testing.assert_frame_equal(one.table, two.table)


def test_series_set_up_early_gives_the_same_rows(two_series):
    """BatchExtractor.start_series_early (the parallel run's set-up before its fork): the series
    set up from the first spectrum, whose row made afterwards is the row a first spectrum gets."""
    from ingest.processing.batch_nmr import BatchExtractor
    from ingest.readers.dispatch import read_rows

    spectra = [s for p in two_series for s in read_rows(p)]
    want = pd.DataFrame(BatchExtractor().rows(spectra))
    ex = BatchExtractor()
    ex.start_series_early(read_rows(two_series[0])[0])
    assert ex.phase is not None and len(ex._series) == 1 and len(ex._early) == 1
    got = pd.DataFrame(ex.rows(spectra))
    assert not ex._early  # used once
    pd.testing.assert_frame_equal(got, want)


def test_compiled_lm_reaches_the_numpy_optimum():
    pytest.importorskip("numba")
    rng = np.random.default_rng(3)
    n, G = 600, 6
    x = np.linspace(-0.05, 0.05, n)
    X = np.tile(x, (G, 1))
    truth = np.c_[rng.uniform(0.5, 2, G), rng.uniform(-0.004, 0.004, G), rng.uniform(0.002, 0.006, G),
                  rng.uniform(-1, 1, G), rng.uniform(-0.1, 0.1, G)]
    Y, _ = lorentz_batch._model_jac(truth, X)
    Y = Y + 0.5 * rng.standard_normal(Y.shape)
    W = np.ones_like(X)
    W[0, 500:] = 0.0  # a shorter row, padded
    q0 = truth * np.array([1.3, 0.0, 1.5, 0.0, 0.0]) + np.array([0, 0.001, 0, 0, 0])
    q_np, chi_np, ok_np = lorentz_batch._lm(q0, X, Y, W)
    nb = lorentz_batch._lm_compiled()
    if nb is None:  # numba installed but switched off (FLOWCELL_NUMBA=0): nothing compiled to compare
        pytest.skip("compiled line fits switched off (FLOWCELL_NUMBA=0)")
    q_nb, chi_nb, ok_nb, jtj = q0.copy(), np.zeros(G), np.zeros(G, bool), np.zeros((G, 5, 5))
    nb(q_nb, X, Y, W, np.array([500] + [n] * (G - 1)), 200, chi_nb, ok_nb, jtj)
    assert ok_np.all() and ok_nb.all()
    np.testing.assert_allclose(chi_nb, chi_np, rtol=1e-9)
    _, J = lorentz_batch._model_jac(q_np, X)
    jtj_np, _ = lorentz_batch._normal(J, W, np.zeros_like(Y))
    err = np.sqrt(np.diagonal(np.linalg.inv(jtj_np), axis1=1, axis2=2) * (chi_np / (n - 5))[:, None])
    assert (np.abs(q_nb - q_np) < 1e-4 * err).all()  # same optimum, far inside the errors
    scale = np.sqrt(np.einsum("bii->bi", jtj_np)[:, :, None] * np.einsum("bii->bi", jtj_np)[:, None, :])
    assert (np.abs(jtj - jtj_np) <= 1e-9 * scale).all()


def test_parse_jcamp_equals_nmrglue_on_real_files(shared_data):
    ng = pytest.importorskip("nmrglue")
    from ingest.readers.bruker_params import parse_jcamp, read_acqus
    files = [p for p in (shared_data / "nmr").rglob("*")
             if p.is_file() and p.name in ("acqus", "acqu", "procs", "proc", "acqu2s", "proc2s")]
    assert len(files) >= 30
    for p in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ng.bruker.read_jcamp(str(p), encoding="latin-1")
        assert parse_jcamp(p.read_bytes().decode("latin-1")) == ref, p
        assert read_acqus(p) == ref  # parsed, then from the cache
        assert read_acqus(p) == ref


def test_parse_jcamp_edge_cases():
    from ingest.readers.bruker_params import parse_jcamp
    d = parse_jcamp("##TITLE= x\n$$ c\n##$A= (0..3)\n1 2.5\n<s> 4\n##$B= <multi\nline>\n##$C= yes\n"
                    "##$D= 1e3\n##$E= (broken\n##$F= <never closed\n")
    assert d["A"] == [1, 2.5, "s", 4] and d["B"] == "multi\nline" and d["C"] is True and d["D"] == 1000.0
    assert "E" not in d and "F" not in d and d["_comments"] == ["$$ c"] and d["_coreheader"] == ["##TITLE= x"]


def test_sign_extension_fraction_matches_the_top_byte_definition():
    from ingest.readers.checks import _sign_extended
    rng = np.random.default_rng(0)
    for dt in ("<i4", ">i4", "<i8", "<u4", "<i2"):
        info = np.iinfo(np.dtype(dt))
        v = np.r_[rng.integers(info.min, info.max, 500, dtype=np.dtype(dt).newbyteorder("=")),
                  rng.integers(-300, 300, 500) % (info.max + 1 if info.min == 0 else 1 << 62),
                  info.min, info.max, 0].astype(dt)
        top = (v.astype(np.int64) >> (8 * v.dtype.itemsize - 8)) & 0xFF
        assert _sign_extended(v) == pytest.approx(float(np.isin(top, (0, 0xFF)).mean()), abs=1e-15), dt


def test_rows_with_compiled_fits_equal_numpy_fits(two_series, monkeypatch):
    pytest.importorskip("numba")
    from ingest.processing.batch_nmr import BatchExtractor
    from ingest.readers.dispatch import read_rows
    spectra = [s for p in two_series for s in read_rows(p)]
    if lorentz_batch._lm_compiled() is None and os.environ.get("FLOWCELL_NUMBA", "").strip() in ("0", "false", "no", "off"):
        pytest.skip("compiled line fits switched off (FLOWCELL_NUMBA=0)")
    assert lorentz_batch.load_compiled()
    fast = BatchExtractor().rows(spectra)
    from ingest.processing import lorentz_nb
    monkeypatch.setattr(lorentz_nb, "_KERNELS", False)  # the numpy Levenberg-Marquardt
    slow = BatchExtractor().rows(spectra)
    for a, b in zip(fast, slow):
        for p in ("hdo", "dhaq_h1", "dhaq_h3", "dhaq_h4"):
            for col in ("shift_ppm", "fwhm_Hz", "area"):
                err = b[f"{p}_{col.replace('_ppm', '_err_ppm').replace('_Hz', '_err_Hz')}" if col != "area"
                        else f"{p}_area_err"]
                assert abs(a[f"{p}_{col}"] - b[f"{p}_{col}"]) <= 1e-6 * err, (p, col)


def test_blocks_short_head_up_to_the_first_nmr_acquisition(monkeypatch):
    from ingest.live.acquisition import Acquisition

    def acq(k: int, fmt: str) -> Acquisition:
        return Acquisition(Path(str(k)), fmt, (), Path(str(k)))

    monkeypatch.setattr(batch, "BATCH_ACQUISITIONS", 4)
    mixed = [acq(0, "bes3t"), acq(1, "esp"), acq(2, "bruker"), *[acq(k, "bes3t" if k % 2 else "bruker")
                                                                   for k in range(3, 12)]]
    sizes = [len(b) for b in batch._blocks(mixed)]
    assert sizes == [3, 4, 4, 1]  # the head ends with the first NMR acquisition (it sets the phase)
    assert [a for b in batch._blocks(mixed) for a in b] == mixed
    assert [len(b) for b in batch._blocks([acq(k, "bes3t") for k in range(6)])] == [4, 2]  # no NMR: capped
    assert [len(b) for b in batch._blocks([])] == [0]


def test_blocks_of_a_long_run_end_in_quarter_blocks():
    """600 acquisitions: the head, blocks of 32, the last 64 in blocks of 8 (the workers' last
    blocks short, so they finish together); the order kept; the same partition whatever the workers."""
    from ingest.live.acquisition import Acquisition

    acqs = [Acquisition(Path(str(k)), "bruker", (), Path(str(k))) for k in range(600)]
    sizes = [len(b) for b in batch._blocks(acqs)]
    assert sizes == [1] + [32] * 16 + [23] + [8] * 8
    assert [a for b in batch._blocks(acqs) for a in b] == acqs
    assert [len(b) for b in batch._blocks(acqs[:256])] == [1] + [32] * 7 + [31]  # shorter runs: no tail
