"""Store: append-only, exactly once, atomic, round trips of values and times."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.live.completion import discover, fingerprint
from ingest.live.store import Store, StoreError, write_table

ROOT = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2026-01-02T03:04:05.250000+00:00")


def _row(i: int, kind: str = "nmr") -> dict:
    t = T0 + pd.Timedelta(seconds=10 * i)
    r = {
        "kind": kind, "source": f"/data/{kind}/{i}", "row": -1,
        "time_start": t - pd.Timedelta(seconds=2), "time_end": t + pd.Timedelta(seconds=2), "time_mid": t,
        "temperature_K": 298.15, "format": "bruker" if kind == "nmr" else "bes3t",
    }
    if kind == "nmr":
        r.update(hdo_shift_ppm=4.79 + 1e-3 * i, hdo_fwhm_Hz=1.5, ns=np.int64(8), dhaq_h1_area=float("nan"))
    else:
        r.update(epr_di=1.25e5 * (i + 1), epr_spin_conc_M=float("nan"), mw_freq_GHz=9.4)
    return r


def test_append_table_roundtrip(tmp_path: Path) -> None:
    st = Store(tmp_path / "exp")
    ids = st.append([_row(2)], "/data/nmr/2", "fp2", [{"path": "/data/nmr/2/fid", "size": 10, "mtime": 1.5, "sha256": "x"}])
    st.append([_row(0), ], "/data/nmr/0", "fp0")
    st.append([_row(1, "epr")], "/data/epr/1", "fp1")
    assert len(ids) == 1 and len(st) == 3
    df = st.table()
    # sorted by time, t_s from the first spectrum, tz-aware UTC, values exact
    assert list(df["source"]) == ["/data/nmr/0", "/data/epr/1", "/data/nmr/2"]
    assert str(df["time_mid"].dt.tz) == "UTC"
    assert df["time_mid"].iloc[0] == T0
    np.testing.assert_allclose(df["t_s"], [0.0, 10.0, 20.0], atol=1e-9)
    assert df.loc[2, "hdo_shift_ppm"] == pytest.approx(4.792, abs=1e-15)
    assert math.isnan(df.loc[0, "dhaq_h1_area"])
    assert df.loc[1, "epr_di"] == 2.5e5
    assert list(df.columns[:9]) == ["kind", "source", "row", "time_start", "time_end", "time_mid", "t_s", "temperature_K", "format"]
    assert list(st.table(kind="epr")["source"]) == ["/data/epr/1"]
    m = st.manifest()
    assert m.loc[m.source == "/data/nmr/2", "files"].iloc[0][0]["size"] == 10


def test_exactly_once_and_persistence(tmp_path: Path) -> None:
    st = Store(tmp_path)
    assert st.append([_row(0), _row(1)], "/a", "fpA") != []
    assert st.seen("fpA") and not st.seen("fpB")
    assert st.append([_row(0), _row(1)], "/a", "fpA") == []  # same bytes: nothing written
    st.close()
    st2 = Store(tmp_path)  # reopen: everything still there, still deduplicated
    assert len(st2) == 2 and st2.seen("fpA")
    assert st2.append([_row(5)], "/a", "fpA") == []
    assert len(st2) == 2


def test_two_connections_no_duplicates(tmp_path: Path) -> None:
    a, b = Store(tmp_path), Store(tmp_path)
    assert a.append([_row(0)], "/x", "same")
    assert b.append([_row(0)], "/x", "same") == []
    assert len(a) == len(b) == 1


def test_skip_log(tmp_path: Path) -> None:
    st = Store(tmp_path)
    st.log_skip("/d/bad.DTA", "/d/bad.DTA: .DTA is empty", "fpbad")
    sk = st.skipped()
    assert list(sk["path"]) == ["/d/bad.DTA"] and "empty" in sk["reason"].iloc[0]
    assert st.was_skipped("fpbad") and not st.seen("fpbad")


def test_seen_signature(tmp_path: Path) -> None:
    st = Store(tmp_path)
    ns = 1_700_000_000_123_456_789
    st.append([_row(0)], "/e/1", "fp", [{"path": "/e/1/fid", "size": 4096, "mtime": ns / 1e9, "mtime_ns": ns, "sha256": "h"}])
    assert st.seen_signature("/e/1", [("fid", 4096, ns)])
    assert not st.seen_signature("/e/1", [("fid", 4096, ns + 1)])  # touched: exact ns compare
    assert not st.seen_signature("/e/1", [("fid", 4097, ns)])
    assert not st.seen_signature("/e/2", [("fid", 4096, ns)])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export(tmp_path: Path, suffix: str) -> None:
    st = Store(tmp_path / "s")
    for i in range(3):
        st.append([_row(i)], f"/n/{i}", f"fp{i}")
    out = st.export(tmp_path / f"table{suffix}")
    back = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert len(back) == 3
    np.testing.assert_allclose(back["hdo_shift_ppm"], [4.79, 4.791, 4.792], rtol=0, atol=1e-12)
    np.testing.assert_allclose(back["t_s"], [0, 10, 20])
    with pytest.raises(ValueError, match="table.xlsx"):
        write_table(st.table(), tmp_path / "table.xlsx")


def test_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "store.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="store.sqlite"):
        Store(tmp_path)


def test_fingerprint_is_content(tmp_path: Path) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.DSC").write_text("XPTS 4\nIRFMT D\n")
        (tmp_path / d / "x.DTA").write_bytes(np.arange(4, dtype=">f8").tobytes())
    fa, filesa = fingerprint(discover(tmp_path / "a")[0])
    fb, _ = fingerprint(discover(tmp_path / "b")[0])
    assert fa == fb  # same bytes in another folder, other mtime: same key
    assert {Path(f["path"]).name for f in filesa} == {"x.DSC", "x.DTA"}
    (tmp_path / "b" / "x.DTA").write_bytes(np.arange(1, 5, dtype=">f8").tobytes())
    assert fingerprint(discover(tmp_path / "b")[0])[0] != fa


_KILL_SCRIPT = r"""
import sys, pandas as pd
from ingest.live.store import Store
st = Store(sys.argv[1])
t0 = pd.Timestamp("2026-01-01", tz="UTC")
i = 0
print("ready", flush=True)
while True:
    rows = [{"kind": "epr", "source": f"/s/{i}", "row": k, "time_mid": t0 + pd.Timedelta(seconds=i), "v": i} for k in range(50)]
    st.append(rows, f"/s/{i}", f"fp{i}")
    i += 1
"""


def test_kill9_leaves_whole_acquisitions(tmp_path: Path) -> None:
    """SIGKILL a process in the middle of appending 50-row acquisitions: after
    reopening, every acquisition in the manifest has all its 50 rows and no
    row exists without its manifest entry (atomic transactions)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(tmp_path)], env=env, stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    st = Store(tmp_path)
    m = st.manifest()
    df = st.table()
    assert len(m) > 2, "the writer made too little progress to test anything"
    counts = df.groupby("source").size()
    assert set(counts.index) == set(m["source"])
    assert (counts == 50).all(), counts[counts != 50]
    assert (m["n_rows"] == 50).all()
    con = sqlite3.connect(tmp_path / "store.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


# --------------------------------------------------------------------------- read-only, locked


def _closed_store(folder: Path, n: int = 3) -> pd.DataFrame:
    st = Store(folder)
    for i in range(n):
        st.append([_row(i)], source=f"/data/nmr/{i}", fingerprint=f"fp{i}")
    df = st.table()
    st.close()
    return df


def test_readonly_store_reads_without_writing_anything(tmp_path: Path) -> None:
    """``flowcell fit`` opens the store read-only: same table, the database's
    bytes unchanged, nothing written to the WAL, writes refused."""
    folder = tmp_path / "exp"
    want = _closed_store(folder)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert set(before) == {"store.sqlite"}  # cleanly closed: the WAL was checkpointed away
    st = Store(folder, readonly=True)
    pd.testing.assert_frame_equal(st.table(), want)
    assert len(st) == 3 and len(st.manifest()) == 3
    with pytest.raises((StoreError, sqlite3.OperationalError)):
        st.append([_row(9)], source="/data/nmr/9", fingerprint="fp9")
    st.close()
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert after["store.sqlite"] == before["store.sqlite"]
    assert set(after) <= {"store.sqlite", "store.sqlite-wal", "store.sqlite-shm"}
    assert len(after.get("store.sqlite-wal", (b"",))[0]) == 0


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_readonly_store_on_readonly_folder(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    want = _closed_store(folder)
    os.chmod(folder / "store.sqlite", 0o444)
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(StoreError):
            Store(folder)  # read-write is impossible here, and says so
        pd.testing.assert_frame_equal(Store(folder, readonly=True).table(), want)
    finally:
        os.chmod(folder, 0o755)


def test_immutable_fallback_when_even_ro_cannot_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-only media where sqlite cannot create the WAL index: ``immutable=1``."""
    folder = tmp_path / "exp"
    want = _closed_store(folder)
    real = sqlite3.connect
    tried = []

    def connect(database, *a, **k):
        tried.append(database)
        if "immutable=1" not in str(database):
            raise sqlite3.OperationalError("unable to open database file")
        return real(database, *a, **k)

    monkeypatch.setattr(sqlite3, "connect", connect)
    pd.testing.assert_frame_equal(Store(folder, readonly=True).table(), want)
    assert [("immutable=1" in u) for u in tried] == [False, True]


def test_locked_store_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    _closed_store(folder)
    other = sqlite3.connect(str(folder / "store.sqlite"), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            Store(folder, timeout_s=0.1)
        st = Store(folder, timeout_s=0.1, readonly=True)  # readers still read (WAL)
        assert len(st) == 3
    finally:
        other.execute("ROLLBACK")
        other.close()
