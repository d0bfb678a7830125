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
    # python -m ingest.batch is flowcell ingest: its exit codes (3 input missing, 2 bad usage)
    assert main([str(tmp_path / "nope")]) == 3
    assert main([str(root), "-o", str(tmp_path / "table.xlsx")]) == 2


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


# --------------------------------------------------------------------------- flowcell ingest: listing


def _pot_csv(path: Path) -> float:
    """A potentiostat CSV (interval-mean current, 2 mA for 100 s then -1 mA for 50 s); its charge."""
    t = np.arange(0.0, 151.0)
    cur = np.where(t <= 100, 2e-3, -1e-3)
    path.write_text("# start: 2026-01-01T00:00:00Z\ntime_s,current_A,voltage_V\n"
                    + "".join(f"{a},{b},1.0\n" for a, b in zip(t, cur)))
    return 2e-3 * 100 - 1e-3 * 50


def test_flowcell_ingest_lists_logs_and_standards(tmp_path: Path, capsys, monkeypatch) -> None:
    """Potentiostat logs are listed (and read on request), spin standards left out, never silently."""
    import ingest.batch as b
    from flowcell.cli import EXIT_OK
    from flowcell.cli import main as flowcell_main

    root, _ = _folder_with_good_and_bad(tmp_path)
    q = _pot_csv(root / "potentiostat.csv")
    (root / "cycling.mpt").write_bytes(
        b"EC-Lab ASCII FILE\nNb header lines : 4\n\ntime/s\t<I>/mA\t(Q-Qo)/C\t\n0,0\t0,0\t0,0\n1,0\t2,0\t0,002\n")
    (root / "standard").mkdir()
    shutil.copyfile(root / "epr" / "s1.DSC", root / "standard" / "tempol.DSC")
    shutil.copyfile(root / "epr" / "s1.DTA", root / "standard" / "tempol.DTA")
    named = root / "epr" / "tempol_ref"
    shutil.copyfile(root / "epr" / "s2.DSC", named.with_suffix(".DSC"))
    shutil.copyfile(root / "epr" / "s2.DTA", named.with_suffix(".DTA"))
    monkeypatch.setattr(b, "make_extractor", lambda cfg=None: simple_row)
    out, pot = tmp_path / "t.parquet", tmp_path / "pot.csv"
    code = flowcell_main(["ingest", str(root), "-o", str(out), "--potentiostat-out", str(pot), "--no-progress",
                          "--standard", str(named.with_suffix(".DSC"))])
    text = capsys.readouterr().out
    assert code == EXIT_OK, text
    assert f"spin standard (not ingested as a sample): {root / 'standard' / 'tempol'}" in text
    assert f"spin standard (not ingested as a sample): {named}" in text
    assert f"potentiostat log: {root / 'potentiostat.csv'} (151 rows" in text
    assert f"potentiostat log: {root / 'cycling.mpt'} (2 rows" in text
    assert "6 spectra (epr: 3, nmr: 3)" in text and "4 skipped" in text  # the logs are not 'skipped'
    tab = pd.read_parquet(out)
    assert len(tab) == 6 and not tab["source"].str.contains("tempol").any()
    logs = pd.read_csv(pot)
    assert set(logs["source"]) == {str(root / "potentiostat.csv"), str(root / "cycling.mpt")}
    csv_rows = logs[logs["source"] == str(root / "potentiostat.csv")]
    assert csv_rows["Q_C"].iloc[-1] == pytest.approx(q, rel=1e-12)
    # without --potentiostat-out they are still listed
    assert flowcell_main(["ingest", str(root), "-o", str(out), "--no-progress"]) == EXIT_OK
    assert "potentiostat log (not a spectrum; read it with --potentiostat-out FILE)" in capsys.readouterr().out


def test_flowcell_ingest_one_file_and_usage_before_work(tmp_path: Path, capsys, monkeypatch) -> None:
    import ingest.batch as b
    from flowcell.cli import EXIT_OK, EXIT_USAGE
    from flowcell.cli import main as flowcell_main

    root, _ = _folder_with_good_and_bad(tmp_path)
    monkeypatch.setattr(b, "make_extractor", lambda cfg=None: simple_row)
    out = tmp_path / "one.csv"
    assert flowcell_main(["ingest", str(root / "epr" / "s2.DTA"), "-o", str(out), "--no-progress"]) == EXIT_OK
    one = pd.read_csv(out)
    assert len(one) == 1 and one["source"].iloc[0] == str(root / "epr" / "s2")
    assert flowcell_main(["ingest", str(root / "nmr" / "20"), "--no-progress"]) == EXIT_OK  # printed
    assert "1 spectra (nmr: 1)" in capsys.readouterr().out

    def no_work(*a, **k):
        raise AssertionError("the work started before the arguments were checked")

    monkeypatch.setattr(b, "ingest_paths", no_work)
    for args, word in ((["-o", str(tmp_path / "x.xlsx")], "--output"),
                       (["-o", str(out), "--potentiostat-out", str(tmp_path / "p.txt")], "--potentiostat-out")):
        assert flowcell_main(["ingest", str(root), *args]) == EXIT_USAGE
        assert word in capsys.readouterr().err


def test_selection_rules(tmp_path: Path) -> None:
    from ingest.selection import (
        is_spin_standard,
        looks_like_potentiostat_log,
        select_acquisitions,
    )

    root = tmp_path / "run"
    (root / "Standards" / "tempol").mkdir(parents=True)
    assert is_spin_standard(root / "Standards" / "tempol" / "a.DSC", root)
    assert not is_spin_standard(root / "epr" / "a.DSC", root)
    assert is_spin_standard(root / "epr" / "a", None, [root / "epr" / "a.DTA"])  # a BES3T pair by either file
    _pot_csv(root / "log.csv")
    (root / "table.csv").write_text("Field [G],Intensity\n3400,0.1\n")
    assert looks_like_potentiostat_log(root / "log.csv") and not looks_like_potentiostat_log(root / "table.csv")
    sel = select_acquisitions(root / "log.csv")
    assert sel.potentiostat == [root / "log.csv"] and sel.spectra == []
    with pytest.raises(FileNotFoundError):
        select_acquisitions(root / "nope")


def test_watcher_leaves_standards_out(tmp_path: Path) -> None:
    from ingest.live.watch import Watcher

    stage, epr = tmp_path / "stage", tmp_path / "epr"
    (epr / "standard").mkdir(parents=True)
    for i, dst in ((0, epr / "s0"), (1, epr / "standard" / "tempol"), (2, epr / "ref")):
        dsc, dta = make_epr(stage, i)
        shutil.copyfile(dsc, dst.with_suffix(".DSC"))
        shutil.copyfile(dta, dst.with_suffix(".DTA"))
    w = Watcher(None, epr, tmp_path / "store", extractor=simple_row, standards=[epr / "ref.DSC"])
    w._rescan()
    assert sorted(p.name for p in w._cands) == ["s0"]
