"""Batch path: folder of finished files → one tidy table; bad files reported, never fatal."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.batch import BatchResult, find_acquisitions, ingest_folder, ingest_paths, main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_watch import T0, make_epr, make_nmr, simple_row  # noqa: E402


def _folder_with_good_and_bad(tmp: Path) -> tuple[Path, dict]:
    """3 NMR expnos + 3 BES3T sweeps (known amplitudes and times) and four bad
    acquisitions: truncated fid, empty .DTA, .DSC missing XPTS, wrong format."""
    stage, root = tmp / "stage", tmp / "run"
    (root / "nmr").mkdir(parents=True)
    (root / "epr").mkdir()
    truth = {}
    for i in range(3):
        shutil.copytree(make_nmr(stage, i), root / "nmr" / f"{10 * (3 - i)}")  # expno 30 is the oldest
        truth[str(root / "nmr" / f"{10 * (3 - i)}")] = (1000.0 * (i + 1), T0 + timedelta(seconds=60 * i))
        dsc, dta = make_epr(stage, i)
        shutil.copyfile(dsc, root / "epr" / f"s{i}.DSC")
        shutil.copyfile(dta, root / "epr" / f"s{i}.DTA")
        truth[str(root / "epr" / f"s{i}")] = (0.1 * (i + 1), T0 + timedelta(seconds=60 * i + 20))
    # truncated fid
    src = make_nmr(stage, 7)
    shutil.copytree(src, root / "nmr" / "99")
    (root / "nmr" / "99" / "fid").write_bytes((src / "fid").read_bytes()[:6000])
    # empty .DTA
    dsc, dta = make_epr(stage, 8)
    shutil.copyfile(dsc, root / "epr" / "empty.DSC")
    (root / "epr" / "empty.DTA").write_bytes(b"")
    # .DSC with a missing key
    text = "\n".join(l for l in dsc.read_text().splitlines() if not l.startswith("XPTS"))
    (root / "epr" / "nokey.DSC").write_text(text)
    shutil.copyfile(dta, root / "epr" / "nokey.DTA")
    # wrong format
    (root / "epr" / "notes.csv").write_bytes(os.urandom(2000))
    # side files that are not acquisitions: ignored silently
    (root / "epr" / "s0.info").write_text("lab notes")
    (root / "epr" / ".hidden.DTA").write_bytes(b"x")
    return root, truth


def test_ingest_folder_good_and_bad(tmp_path: Path) -> None:
    root, truth = _folder_with_good_and_bad(tmp_path)
    res = ingest_folder(root, extractor=simple_row, progress=False)
    assert isinstance(res, BatchResult)
    t = res.table
    assert len(t) == 6
    assert sorted(t["source"]) == sorted(truth)
    for _, r in t.iterrows():
        amp, start = truth[r["source"]]
        assert r["amp"] == pytest.approx(amp, rel=1e-6)
        assert r["time_start"] == pd.Timestamp(start)
    # tidy: one row per spectrum, sorted by time, t_s from the first, tz-aware
    assert t["time_mid"].is_monotonic_increasing and str(t["time_mid"].dt.tz) == "UTC"
    # mid-times: NMR 60 i + 15 s, EPR 60 i + 30 s -> t_s from the first (15 s)
    np.testing.assert_allclose(t["t_s"], [0, 15, 60, 75, 120, 135], atol=1e-6)
    assert list(t["kind"]) == ["nmr", "epr"] * 3
    reasons = {Path(p).name: r for p, r in res.skipped}
    assert set(reasons) == {"99", "empty.DTA", "nokey.DTA", "notes.csv"}, reasons
    assert "99" in reasons["99"] and "6000 of 16384" in reasons["99"]
    assert "empty.DTA" in reasons["empty.DTA"] and "0 of 2048" in reasons["empty.DTA"]
    assert "nokey" in reasons["nokey.DTA"] and "XPTS" in reasons["nokey.DTA"]
    assert "notes.csv" in reasons["notes.csv"]
    s = res.summary()
    assert "6 spectra" in s and "4 skipped" in s and "notes.csv" in s


def test_reader_errors_pass_through_named(tmp_path: Path) -> None:
    """Errors raised by the reader itself (not caught by the size checks) are
    reported with the reader's message, and exceptions from the extractor too."""
    root, _ = _folder_with_good_and_bad(tmp_path)

    def bad_extractor(spec):
        if spec.kind == "epr":
            raise RuntimeError("fit exploded")
        return simple_row(spec)

    res = ingest_folder(root / "epr", extractor=bad_extractor, progress=False)
    assert len(res.table) == 0
    msgs = [r for p, r in res.skipped if Path(p).name == "s1.DTA"]
    assert msgs and "fit exploded" in msgs[0] and "s1.DTA" in msgs[0] and "RuntimeError" in msgs[0]


def test_find_acquisitions_order(tmp_path: Path) -> None:
    root, _ = _folder_with_good_and_bad(tmp_path)
    acqs = [p.name for p in find_acquisitions(root / "nmr")]
    # by acquisition time (DATE in acqus): expno 30 (i=0) first, the truncated 99 (i=7) last
    assert acqs == ["30", "20", "10", "99"]


def test_ingest_paths(tmp_path: Path) -> None:
    root, truth = _folder_with_good_and_bad(tmp_path)
    res = ingest_paths([root / "epr" / "s2.DTA", root / "nmr" / "10", root / "epr" / "s0.info"], extractor=simple_row)
    assert sorted(res.table["source"]) == sorted([str(root / "epr" / "s2"), str(root / "nmr" / "10")])
    assert [Path(p).name for p, _ in res.skipped] == ["s0.info"]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_main_writes_table(tmp_path: Path, capsys, monkeypatch, suffix: str) -> None:
    root, truth = _folder_with_good_and_bad(tmp_path)
    import ingest.batch as b

    monkeypatch.setattr(b, "make_extractor", lambda cfg=None: simple_row)
    out = tmp_path / f"table{suffix}"
    assert main([str(root), "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "6 spectra (epr: 3, nmr: 3)" in text and "4 skipped" in text and "empty.DTA" in text
    back = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert len(back) == 6
    np.testing.assert_allclose(np.sort(back["amp"]), np.sort([a for a, _ in truth.values()]), rtol=1e-9)
    assert main([str(tmp_path / "nope")]) == 2


def test_real_files_all_read(shared_data: Path) -> None:
    """Every real instrument file in shared/data is found and read (none
    skipped); the Bruker array comes out in acquisition (DATE) order, not in
    name order (3, 6, 9, ..., 24 — lexical order would put 12 first)."""
    res = ingest_folder(shared_data / "nmr", extractor=simple_row, progress=False)
    assert res.skipped == []
    assert len(res.table) == 1 + 8 + 5 + 3
    arr = [Path(p).name for p in find_acquisitions(shared_data / "nmr" / "bruker-array")]
    assert arr == ["3", "6", "9", "12", "15", "18", "21", "24"]
    res_e = ingest_folder(shared_data / "epr" / "esp", extractor=simple_row, progress=False)
    assert res_e.skipped == [] and len(res_e.table) == 3


def test_default_pipeline_on_synthetic_epr(tmp_path: Path) -> None:
    """With the package's own extractor (ingest.processing.observables), the EPR double
    integral scales with the written amplitude (0.1, 0.2, 0.3): ratios 2 and 3
    within 1e-6."""
    stage = tmp_path / "stage"
    for i in range(3):
        make_epr(stage, i)
    res = ingest_folder(stage, progress=False)
    assert res.skipped == [], res.skipped
    di = res.table.sort_values("source")["epr_di"].to_numpy()
    np.testing.assert_allclose(di / di[0], [1, 2, 3], rtol=1e-6)
    np.testing.assert_allclose(res.table["mw_freq_GHz"], 9.4, rtol=1e-9)
