"""PotentiostatTail: a growing log read incrementally, never a half-written record.

The logs are written by a small generator that imports nothing from the package
(EC-Lab ``.mpt`` layout: Latin-1, ``Nb header lines``, tab-separated, decimal comma).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import numpy as np
import pytest

from flowcell.potentiostat import PotentiostatTail, read_potentiostat

HEADER = ["EC-Lab ASCII FILE", "Nb header lines : 6", "", "Galvanostatic Cycling with Potential Limitation",
          "Acquisition started on : 03/04/2026 10:20:30.500",
          "mode\ttime/s\t<I>/mA\tEwe/V\t(Q-Qo)/mA.h\t"]


def mpt_rows(t: np.ndarray, current_mA: np.ndarray, comma: bool = True) -> str:
    """Rows of interval-mean current; (Q-Qo) integrated exactly from it."""
    q = np.concatenate([[0.0], np.cumsum(current_mA[1:] * np.diff(t))]) / 3600.0  # mA.h
    text = "".join(f"1\t{a:.15E}\t{b:.7E}\t{1.0 + b / 100:.7E}\t{c:.15E}\n" for a, b, c in zip(t, current_mA, q))
    return text.replace(".", ",") if comma else text


def protocol(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n, dtype=float)
    return t, np.where(t < n // 2, 50.0, -20.0)


def append(path, text: str) -> None:
    with open(path, "ab") as fh:
        fh.write(text.encode("latin-1"))


def test_missing_then_growing_then_partial(tmp_path):
    p = tmp_path / "run.mpt"
    tail = PotentiostatTail(p)
    assert tail.update() == 0 and tail.status == "missing" and tail.start is None
    assert tail.charge_at(10.0) == 0.0
    append(p, "\n".join(HEADER[:3]) + "\n")  # header not complete yet
    assert tail.update() == 0 and tail.status == "ok" and tail.start is None
    append(p, "\n".join(HEADER[3:]) + "\n")
    assert tail.update() == 0
    assert tail.start == datetime(2026, 3, 4, 10, 20, 30, 500000, tzinfo=timezone.utc)
    t, cur = protocol(400)
    rows = mpt_rows(t, cur)
    lines = rows.splitlines(keepends=True)
    append(p, "".join(lines[:150]) + lines[150][:17])  # a record cut in the middle
    assert tail.update() == 150
    assert tail.t_last == 149.0
    append(p, lines[150][17:] + "".join(lines[151:]))
    assert tail.update() == 250 and tail.update() == 0
    # same table as the one-shot reader; exact count: 50 mA for 199 s, then -20 mA for 200 s
    full = read_potentiostat(p)
    got = tail.table()
    np.testing.assert_allclose(got[["t_s", "I_A", "Q_C"]].to_numpy(), full[["t_s", "I_A", "Q_C"]].to_numpy(),
                               rtol=1e-12, atol=1e-15)
    assert got.attrs["start"] == full.attrs["start"]
    assert tail.charge_at(199.0) == pytest.approx(0.05 * 199, rel=1e-9)
    assert tail.charge_at(199.5) == pytest.approx(0.05 * 199 - 0.02 * 0.5, rel=1e-9)  # held between records
    assert tail.current_at(199.5) == pytest.approx(-0.02) and tail.current_at(100.0) == pytest.approx(0.05)
    assert tail.charge_at(409.0) == pytest.approx(0.05 * 199 - 0.02 * 210, rel=1e-9)  # last current held
    assert tail.warnings == []


def test_an_unchanged_log_is_not_opened_again(tmp_path, monkeypatch):
    """The live session asks once per spectrum: a log not written since is not reopened
    (same size and mtime), and what is appended later is read."""
    import flowcell.potentiostat.tail as tail_mod

    p = tmp_path / "run.mpt"
    t, cur = protocol(40)
    lines = mpt_rows(t, cur).splitlines(keepends=True)
    append(p, "\n".join(HEADER) + "\n" + "".join(lines[:20]))
    tail = PotentiostatTail(p)
    assert tail.update() == 20
    opened: list[str] = []
    real_open = open
    monkeypatch.setattr(tail_mod, "open", lambda *a, **k: opened.append(str(a[0])) or real_open(*a, **k),
                        raising=False)
    assert tail.update() == 0 and tail.update() == 0 and tail.status == "ok"
    assert opened == []
    append(p, "".join(lines[20:]))
    assert tail.update() == 20 and len(opened) == 1
    assert tail.charge_at(39.0) == pytest.approx((0.05 * 19 - 0.02 * 20), rel=1e-9)


def test_truncated_and_replaced_logs_are_detected(tmp_path):
    p = tmp_path / "run.mpt"
    t, cur = protocol(100)
    p.write_bytes(("\n".join(HEADER) + "\n" + mpt_rows(t, cur)).encode("latin-1"))
    tail = PotentiostatTail(p)
    assert tail.update() == 100
    # truncated: a shorter file at the same inode
    with open(p, "r+b") as fh:
        fh.truncate(len(("\n".join(HEADER) + "\n" + mpt_rows(t[:40], cur[:40])).encode("latin-1")))
    assert tail.update() == 40 and tail.status == "replaced"
    assert any("truncated" in w for w in tail.warnings)
    assert tail.update() == 0 and tail.status == "ok"
    # replaced: a new file (new inode) renamed over the old one, another run
    new = tmp_path / "new.mpt"
    t2, cur2 = protocol(60)
    new.write_bytes(("\n".join(HEADER) + "\n" + mpt_rows(t2, -cur2)).encode("latin-1"))
    os.replace(new, p)
    assert tail.update() == 60 and tail.status == "replaced"
    assert tail.charge_at(59.0) == pytest.approx(-(0.05 * 29 - 0.02 * 30), rel=1e-9)
    # same size and inode, but the header changed
    text = p.read_bytes().replace(b"10:20:30", b"11:20:30")
    with open(p, "r+b") as fh:
        fh.write(text)
    assert tail.update() == 60 and tail.status == "replaced" and tail.start.hour == 11
    # deleted
    p.unlink()
    assert tail.update() == 0 and tail.status == "missing"


def test_nan_and_out_of_order_rows_are_skipped_loudly(tmp_path):
    p = tmp_path / "run.csv"
    p.write_text("# start: 2026-01-01T00:00:00Z\ntime_s,current_A\n0,0\n1,1.0\n2,1.0\n")
    tail = PotentiostatTail(p)
    assert tail.update() == 3 and tail.charge_at(2.0) == pytest.approx(2.0)
    with open(p, "a") as fh:
        fh.write("3,nan\n1.5,1.0\n4,1.0\n5,1.0\n")
    assert tail.update() == 2
    assert any("NaN" in w for w in tail.warnings) and any("does not increase" in w for w in tail.warnings)
    # the NaN row's interval is covered by the next row's mean: 1 A from 2 to 4 s
    assert tail.charge_at(5.0) == pytest.approx(5.0)
    assert tail.table()["t_s"].tolist() == [0, 1, 2, 4, 5]


def test_unreadable_log_reports_status(tmp_path):
    p = tmp_path / "run.mpt"
    p.write_text("this is not an EC-Lab file, whatever its name says\n" * 3)
    tail = PotentiostatTail(p)
    assert tail.update() == 0 and tail.status.startswith("unreadable: not a BioLogic")
    q = tmp_path / "run.csv"
    q.write_text("a,b\n1,2\n")
    tail = PotentiostatTail(q)
    assert tail.update() == 0 and tail.status.startswith("unreadable: missing column")


def test_mpr_is_reread_when_it_changes(shared_data, tmp_path):
    pytest.importorskip("galvani")
    src = shared_data / "potentiostat" / "eclab-mpr" / "cp.issue_61.mpr"
    tail = PotentiostatTail(src)
    assert tail.update() == 312 and tail.status == "ok" and tail.update() == 0
    ref = read_potentiostat(src)
    assert tail.charge_at(float(ref["t_s"].iloc[100])) == pytest.approx(float(ref["Q_C"].iloc[100]), rel=1e-12)
    assert tail.start == ref.attrs["start"]


def test_a_folder_holding_one_log(tmp_path):
    """``[instruments] potentiostat`` may name a folder: its one log is followed; a second is an error."""
    d = tmp_path / "pot"
    tail = PotentiostatTail(d)
    assert tail.update() == 0 and tail.status == "missing"
    d.mkdir()
    assert tail.update() == 0 and tail.status == "missing"
    t, cur = protocol(20)
    (d / "a.mpt").write_bytes(("\n".join(HEADER) + "\n" + mpt_rows(t, cur)).encode("latin-1"))
    assert tail.update() == 20 and tail.status == "ok"
    (d / "a.mpt").rename(d / "b.mpt")  # a new log in the folder: read from scratch
    assert tail.update() == 20 and tail.status == "replaced"
    (d / "c.csv").write_text("time_s,current_A\n0,0\n")
    assert tail.update() == 0 and tail.status.startswith("unreadable: 2 logs in the folder")
