"""Live watcher: spectrometer-like writes, exactly once, kill -9, bursts, bad files.

Files are produced by the package's writers (``write_bruker_1d``,
``write_bes3t``) into a staging folder, then *dripped* into the watched folder
the way spectrometers write: parameters first, the data in chunks with
pauses, ``audita.txt`` last (TopSpin); ``.DSC`` then ``.DTA`` in chunks, or
the ``.DTA`` under a temporary name renamed at the end (Xepr/network copies);
an expno directory created and then filled, or built under a hidden name and
renamed into place.

The rows are checked against known truths: each spectrum's written amplitude
and its start/end times (the ``simple_row`` extractor below reads them back
through the real readers, so the values prove the right bytes were read once).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.live.completion import acquisition_for, check_complete, discover
from ingest.live.store import Store
from ingest.live.watch import Watcher, is_network_path
from ingest.types import IngestError

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 2, 3, 10, 0, 0, tzinfo=timezone.utc)
FAST = dict(settle_s=0.15, quiet_s=0.4, rescan_s=1.0, poll_interval_s=0.1, retry_s=0.1, max_tries=3, give_up_s=3.0)


# --------------------------------------------------------------------------- helpers (also used by the
# batch tests, the kill -9 subprocess and benchmarks/bench_watcher.py)


def simple_row(spec) -> dict:
    """A minimal, deterministic extractor: kind, source, times and the peak
    amplitude of the data as read (|FID| max for NMR, max intensity for EPR)."""
    m = spec.meta
    if spec.kind == "nmr":
        amp = float(np.abs(spec.fid).max())
        src = m.path
    else:
        amp = float(np.max(spec.intensity))
        src = Path(m.path).with_suffix("")
    return {
        "kind": spec.kind, "source": str(src), "row": -1 if m.row is None else int(m.row),
        "time_start": pd.Timestamp(m.start), "time_end": pd.Timestamp(m.end), "time_mid": pd.Timestamp(m.mid),
        "temperature_K": m.temperature_K, "format": getattr(m, "vendor", None) or getattr(m, "format", None),
        "amp": amp,
    }


def read_rows(path):
    from ingest.readers.dispatch import read_rows as _rr

    return _rr(path)


def make_nmr(stage: Path, i: int, *, n: int = 2048, amp: float | None = None) -> Path:
    """A Bruker 1D expno with a one-line FID of amplitude 1000·(i+1), acquired
    at T0 + 60 i s for 30 s."""
    from ingest.readers.nmr_writers import write_bruker_1d

    t = np.arange(n) / 8000.0
    a = 1000.0 * (i + 1) if amp is None else amp
    fid = a * np.exp(2j * np.pi * 700.0 * t - t / 0.05)
    s = T0 + timedelta(seconds=60 * i)
    return write_bruker_1d(stage / f"nmr{i}", fid, sfo1_hz=400.13e6, sw_hz=8000.0, carrier_ppm=4.7,
                           start=s, end=s + timedelta(seconds=30), ns=4)


def make_epr(stage: Path, i: int, *, n: int = 256) -> tuple[Path, Path]:
    """A BES3T Lorentzian-derivative sweep with maximum 0.1·(i+1), acquired at
    T0 + 60 i + 20 s for 20 s."""
    from ingest.readers.epr_writers import write_bes3t

    b = np.linspace(0.335, 0.345, n)
    x = (b - 0.34) / 5e-4
    y = -2 * x / (1 + x**2) ** 2
    y = 0.1 * (i + 1) * y / y.max()
    s = T0 + timedelta(seconds=60 * i + 20)
    return write_bes3t(stage / f"epr{i}", b, y, mw_freq_hz=9.4e9, mw_power_W=2e-3, mod_amp_T=1e-4,
                       receiver_gain_db=40.0, conversion_time_s=0.01, n_scans=1, temperature_K=298.0,
                       start=s, end=s + timedelta(seconds=20))


def _drip(src: Path, dst: Path, chunk: int, pause: float) -> None:
    data = src.read_bytes()
    with open(dst, "wb") as fh:
        for k in range(0, max(len(data), 1), chunk):
            fh.write(data[k : k + chunk])
            fh.flush()
            if pause:
                time.sleep(pause)


def drip_bruker(src: Path, dst: Path, *, chunk: int = 4096, pause: float = 0.01, rename: bool = False) -> float:
    """Write an expno like TopSpin: mkdir, acqu/acqus, fid in chunks, audita.txt
    last; or all of it under a hidden name then renamed.  Returns the wall time
    (time.time()) at which the acquisition became complete."""
    target = dst.with_name(f".{dst.name}.tmp") if rename else dst
    target.mkdir(parents=True)
    for name in ("acqu", "acqus"):
        shutil.copyfile(src / name, target / name)
    _drip(src / "fid", target / "fid", chunk, pause)
    shutil.copyfile(src / "audita.txt", target / "audita.txt")
    if rename:
        os.rename(target, dst)
    return time.time()


def drip_bes3t(src: tuple[Path, Path], dst_base: Path, *, chunk: int = 512, pause: float = 0.01,
               rename: bool = False) -> float:
    """Write a BES3T pair like Xepr: .DSC first, then .DTA in chunks (or the .DTA
    under ``X.DTA.part`` renamed at the end).  Returns the completion time."""
    dsc, dta = src
    shutil.copyfile(dsc, dst_base.with_name(dst_base.name + ".DSC"))
    final = dst_base.with_name(dst_base.name + ".DTA")
    tmp = final.with_name(final.name + ".part") if rename else final
    _drip(dta, tmp, chunk, pause)
    if rename:
        os.rename(tmp, final)
    return time.time()


def wait_rows(store: Store, n: int, timeout: float) -> pd.DataFrame:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if len(store) >= n:
            break
        time.sleep(0.05)
    return store.table()


def check_exactly_once(df: pd.DataFrame, expected: dict[str, tuple[float, datetime]]) -> None:
    """Every expected source exactly once, with its amplitude (rel 1e-6) and its
    start time (exact to 1 ms)."""
    counts = df["source"].value_counts()
    missing = set(expected) - set(counts.index)
    assert not missing, f"missing: {sorted(missing)[:5]}"
    extra = set(counts.index) - set(expected)
    assert not extra, f"unexpected rows: {sorted(extra)[:5]}"
    assert (counts == 1).all(), counts[counts != 1]
    for _, r in df.iterrows():
        amp, start = expected[r["source"]]
        assert r["amp"] == pytest.approx(amp, rel=1e-6), r["source"]
        assert abs((r["time_start"] - pd.Timestamp(start)).total_seconds()) < 1e-3, r["source"]


# --------------------------------------------------------------------------- unit checks of completion


def test_completion_rules(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    src = make_nmr(stage, 0)
    d = tmp_path / "w" / "1"
    d.mkdir(parents=True)
    shutil.copyfile(src / "acqus", d / "acqus")
    (d / "fid").write_bytes((src / "fid").read_bytes()[:5000])
    a = acquisition_for(d / "fid", tmp_path / "w")
    assert a is not None and a.format == "bruker" and a.key == d
    c = check_complete(a, 100.0)
    assert not c.complete and c.expected_bytes == 16384 and c.actual_bytes == 5000 and c.may_grow
    shutil.copyfile(src / "fid", d / "fid")
    # full size but no audita.txt: wait one scan (AQ + D1 = 0.128 + 1 s) x 1.5
    assert not check_complete(a, 0.5, settle_s=0.1, now=time.time()).complete
    assert check_complete(a, 2.0, settle_s=0.1, now=time.time()).complete
    shutil.copyfile(src / "audita.txt", d / "audita.txt")
    assert check_complete(a, 0.2, settle_s=0.1, now=time.time()).complete
    assert not check_complete(a, 0.05, settle_s=0.1, now=time.time()).complete
    # BES3T: .DSC alone waits for the .DTA; a short .DTA is incomplete
    dsc, dta = make_epr(stage, 0)
    shutil.copyfile(dsc, tmp_path / "w" / "e.DSC")
    b = acquisition_for(tmp_path / "w" / "e.DSC")
    assert b is not None and b.format == "bes3t" and not check_complete(b, 9.0).complete
    (tmp_path / "w" / "e.DTA").write_bytes(dta.read_bytes()[:1000])
    assert "1000 of 2048" in check_complete(b, 9.0).reason
    shutil.copyfile(dta, tmp_path / "w" / "e.DTA")
    assert check_complete(b, 9.0).complete
    keys = {a.key.name for a in discover(tmp_path / "w")}
    assert keys == {"1", "e"}


def test_expno_side_files_before_acqus_are_not_acquisitions(tmp_path: Path) -> None:
    """TopSpin writes pulseprogram, format.temp, ... into a new expno before acqus:
    they are pieces of the coming expno, never acquisitions to set aside."""
    d = tmp_path / "w" / "7"
    d.mkdir(parents=True)
    for name in ("pulseprogram", "format.temp", "scon", "uxnmr.par"):
        (d / name).write_text("# side file\n")
        assert acquisition_for(d / name, tmp_path / "w") is None
    assert discover(tmp_path / "w") == []
    stage = tmp_path / "stage"
    src = make_nmr(stage, 0)
    shutil.copyfile(src / "acqus", d / "acqus")
    a = acquisition_for(d / "pulseprogram", tmp_path / "w")
    assert a is not None and a.format == "bruker" and a.key == d
    assert [x.key for x in discover(tmp_path / "w")] == [d]


def test_completion_on_real_files(shared_data: Path) -> None:
    """The real vendor files are complete by their own headers: TD 32768 int32
    words = 131072 bytes (bruker-1h-d2o), TD 12018 -> 48072 bytes padded to
    48128 (bruker-array), Spinsolve 32 + 12·32768, BES3T 3000·8 bytes."""
    import math

    acqs = {a.key.relative_to(shared_data).as_posix(): a for a in discover(shared_data / "nmr") + discover(shared_data / "epr")}
    from ingest.live.completion import expected_size

    assert expected_size(acqs["nmr/bruker-1h-d2o/1"]) == 131072
    assert expected_size(acqs["nmr/bruker-array/3"]) == 48072
    assert expected_size(acqs["nmr/spinsolve-series/00000"]) == 32 + 12 * 32768
    assert expected_size(acqs["epr/bes3t-BDPA-1DFieldSweep"]) == 24000
    assert expected_size(acqs["epr/bes3t-BDPA-2DTimeField"]) == 320000
    assert all(check_complete(a, math.inf).complete for a in acqs.values())
    assert "epr/bes3t-BDPA-2DTimeField" in acqs and not any(k.endswith(".info") for k in acqs)


def test_network_detection(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\nserver:/export /data/nmr nfs4 rw 0 0\n")
    assert is_network_path("/data/nmr/exp1", mounts)
    assert not is_network_path("/data/other", mounts)
    assert is_network_path("//server/share/nmr", mounts)
    assert is_network_path("/mnt/epr", mounts)


# --------------------------------------------------------------------------- live


def _start(nmr: Path, epr: Path, store: Path, **kw) -> tuple[Watcher, list[dict]]:
    got: list[dict] = []
    w = Watcher(nmr, epr, store, extractor=simple_row, on_row=got.append, **{**FAST, "reader": read_rows, **kw})
    w.start()
    return w, got


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_live_stream_exactly_once(tmp_path: Path, polling: bool) -> None:
    stage, nmr, epr = tmp_path / "stage", tmp_path / "nmr", tmp_path / "epr"
    nmr.mkdir()
    epr.mkdir()
    expected: dict[str, tuple[float, datetime]] = {}
    # two already present before the watcher starts (in reverse name order,
    # so acquisition order != name order)
    for i, name in ((0, "20"), (1, "10")):
        shutil.copytree(make_nmr(stage, i), nmr / name)
        expected[str((nmr / name).resolve())] = (1000.0 * (i + 1), T0 + timedelta(seconds=60 * i))
    w, got = _start(nmr, epr, tmp_path / "store", polling=polling)
    rows_seen: list[dict] = []

    def _iterate() -> None:
        for r in w.rows():  # ends when the watcher stops
            rows_seen.append(r)

    it_thread = threading.Thread(target=_iterate, daemon=True)
    it_thread.start()
    try:
        # the pre-existing ones first, in acquisition order (expno 20 is older)
        assert wait_rows(w.store, 2, 10.0).shape[0] == 2
        assert [Path(r["source"]).name for r in got[:2]] == ["20", "10"]
        for i in range(2, 8):
            dst = nmr / f"{100 + i}"
            drip_bruker(make_nmr(stage, i), dst, rename=(i % 2 == 0))
            expected[str(dst.resolve())] = (1000.0 * (i + 1), T0 + timedelta(seconds=60 * i))
            base = epr / f"s{i:03d}"
            drip_bes3t(make_epr(stage, i), base, rename=(i % 2 == 1))
            expected[str(base.resolve())] = (0.1 * (i + 1), T0 + timedelta(seconds=60 * i + 20))
        df = wait_rows(w.store, len(expected), 20.0)
        time.sleep(3 * FAST["settle_s"] + 0.3)  # nothing more may arrive
        df = w.store.table()
    finally:
        w.stop()
    it_thread.join(10)
    check_exactly_once(df, expected)
    assert len(got) == len(expected)  # callback once per row
    assert sorted(r["source"] for r in rows_seen) == sorted(expected)  # iterator saw every new row
    assert w.store.skipped().empty
    assert df["time_mid"].is_monotonic_increasing and df["t_s"].iloc[0] == 0.0
    assert w.stats["errors"] == 0


def test_same_folder_and_clock_offsets(tmp_path: Path) -> None:
    stage, d = tmp_path / "stage", tmp_path / "both"
    d.mkdir()
    w, got = _start(d, d, tmp_path / "store", nmr_clock_offset_s=2.0, epr_clock_offset_s=-3.5)
    try:
        drip_bruker(make_nmr(stage, 0), d / "1")
        drip_bes3t(make_epr(stage, 0), d / "e0")
        df = wait_rows(w.store, 2, 10.0)
    finally:
        w.stop()
    assert len(df) == 2
    n = df[df.kind == "nmr"].iloc[0]
    e = df[df.kind == "epr"].iloc[0]
    assert n["time_start"] == pd.Timestamp(T0) - pd.Timedelta(seconds=2.0)
    assert e["time_start"] == pd.Timestamp(T0 + timedelta(seconds=20)) + pd.Timedelta(seconds=3.5)
    assert n["clock_offset_s"] == 2.0 and e["clock_offset_s"] == -3.5


def test_restart_resumes_and_picks_up(tmp_path: Path) -> None:
    """Stop, add files while down, restart: the new ones land, nothing doubles,
    and unchanged files are not even re-hashed (fast path)."""
    stage, nmr, epr = tmp_path / "stage", tmp_path / "nmr", tmp_path / "epr"
    nmr.mkdir()
    epr.mkdir()
    expected = {}
    for i in range(3):
        drip_bes3t(make_epr(stage, i), epr / f"a{i}", pause=0)
        expected[str((epr / f"a{i}").resolve())] = (0.1 * (i + 1), T0 + timedelta(seconds=60 * i + 20))
    w, _ = _start(nmr, epr, tmp_path / "store")
    wait_rows(w.store, 3, 10.0)
    w.stop()
    for i in range(3, 5):
        drip_bes3t(make_epr(stage, i), epr / f"a{i}", pause=0)
        expected[str((epr / f"a{i}").resolve())] = (0.1 * (i + 1), T0 + timedelta(seconds=60 * i + 20))
    w2, got2 = _start(nmr, epr, tmp_path / "store")
    try:
        df = wait_rows(w2.store, 5, 10.0)
        time.sleep(0.5)
        df = w2.store.table()
    finally:
        w2.stop()
    check_exactly_once(df, expected)
    assert len(got2) == 2 and w2.stats["duplicates"] == 0


def test_corrupt_among_good(tmp_path: Path) -> None:
    """Good files all land; each bad one is set aside with a reason naming it,
    after retries; the watcher carries on."""
    stage, nmr, epr = tmp_path / "stage", tmp_path / "nmr", tmp_path / "epr"
    nmr.mkdir()
    epr.mkdir()
    w, got = _start(nmr, epr, tmp_path / "store", give_up_s=1.5)
    expected = {}
    try:
        for i in range(4):
            drip_bes3t(make_epr(stage, i), epr / f"g{i}", pause=0)
            expected[str((epr / f"g{i}").resolve())] = (0.1 * (i + 1), T0 + timedelta(seconds=60 * i + 20))
            if i == 1:
                # a .DSC without XPTS (no size known: quiet period, then the reader fails)
                dsc, dta = make_epr(stage, 99)
                text = "\n".join(l for l in dsc.read_text().splitlines() if not l.startswith("XPTS"))
                (epr / "bad_key.DSC").write_text(text)
                shutil.copyfile(dta, epr / "bad_key.DTA")
                # a wrong-format file
                (epr / "junk.csv").write_bytes(os.urandom(3000))
                # a truncated fid that never completes
                src = make_nmr(stage, 50)
                (nmr / "7").mkdir()
                shutil.copyfile(src / "acqus", nmr / "7" / "acqus")
                (nmr / "7" / "fid").write_bytes((src / "fid").read_bytes()[:4000])
        for i in range(2):
            drip_bruker(make_nmr(stage, i), nmr / f"{i + 1}", pause=0)
            expected[str((nmr / f"{i + 1}").resolve())] = (1000.0 * (i + 1), T0 + timedelta(seconds=60 * i))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (len(w.store) < len(expected) or len(w.store.skipped()) < 3):
            time.sleep(0.1)
        assert w.running, "the watcher died"
        df = w.store.table()
        sk = w.store.skipped()
    finally:
        w.stop()
    check_exactly_once(df, expected)
    reasons = {Path(p).name: r for p, r in zip(sk["path"], sk["reason"])}
    assert set(reasons) == {"bad_key.DTA", "junk.csv", "7"}, reasons
    assert "XPTS" in reasons["bad_key.DTA"] and "bad_key" in reasons["bad_key.DTA"]
    assert "junk.csv" in reasons["junk.csv"]
    assert "4000 of 16384" in reasons["7"] and "7" in reasons["7"]
    assert w.stats["retries"] >= 2  # bad files were retried before being set aside


def test_copies_of_stored_or_set_aside_bytes_are_duplicates(tmp_path: Path) -> None:
    """The content key is hashed beside the read (ingest.live.signature.FingerprintThread): a
    copied expno of stored bytes adds no row and no SOC row; a copied expno of bytes already
    set aside is not retried nor set aside twice."""
    stage, nmr, epr = tmp_path / "stage", tmp_path / "nmr", tmp_path / "epr"
    nmr.mkdir()
    epr.mkdir()
    refused: set[bytes] = set()

    def reader(path):  # refuses one fid's bytes: complete on disk, set aside after retries
        p = Path(path)
        fid = (p if p.is_dir() else p.parent) / "fid"
        if fid.exists() and fid.read_bytes() in refused:
            raise IngestError(path, "refused by the test's reader")
        return read_rows(path)

    w, got = _start(nmr, epr, tmp_path / "store", give_up_s=0.5, reader=reader)
    try:
        drip_bruker(make_nmr(stage, 0), nmr / "1", pause=0)
        wait_rows(w.store, 1, 10.0)
        src = make_nmr(stage, 50)
        refused.add((src / "fid").read_bytes())
        drip_bruker(src, nmr / "7", pause=0)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(w.store.skipped()) < 1:
            time.sleep(0.05)
        retries = w.stats["retries"]
        assert len(w.store.skipped()) == 1
        # copied beside, then moved in whole: copytree sets each file's mtime after writing it, and a
        # watcher that reads a copy in between sees it change once more (a second duplicate, rightly)
        for a, b in (("1", "2"), ("7", "8")):
            shutil.copytree(nmr / a, stage / f"copy{b}")
            os.rename(stage / f"copy{b}", nmr / b)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and w.stats["duplicates"] < 2:
            time.sleep(0.05)
        time.sleep(0.3)
        assert w.running
        assert w.stats["duplicates"] == 2 and w.stats["retries"] == retries
        assert len(w.store) == 1 and len(got) == 1 and len(w.store.skipped()) == 1
    finally:
        w.stop()


def test_default_pipeline_live(tmp_path: Path) -> None:
    """The watcher with the package's own reader and extractor
    (ingest.readers.dispatch.read_rows + ingest.processing.observables.Extractor): three BES3T sweeps
    of amplitude 0.1, 0.2, 0.3 give double integrals in ratio 1:2:3 (rtol 1e-6)
    and the written microwave frequency, each exactly once."""
    stage, epr = tmp_path / "stage", tmp_path / "epr"
    epr.mkdir()
    w = Watcher(None, epr, tmp_path / "store", **FAST)
    w.start()
    try:
        for i in range(3):
            drip_bes3t(make_epr(stage, i), epr / f"d{i}", rename=bool(i % 2))
        df = wait_rows(w.store, 3, 20.0)
        time.sleep(0.5)
        df = w.store.table()
    finally:
        w.stop()
    assert len(df) == 3 and w.store.skipped().empty
    assert df["time_start"].tolist() == [pd.Timestamp(T0 + timedelta(seconds=60 * i + 20)) for i in range(3)]
    di = df["epr_di"].to_numpy()
    np.testing.assert_allclose(di / di[0], [1, 2, 3], rtol=1e-6)
    np.testing.assert_allclose(df["mw_freq_GHz"], 9.4, rtol=1e-9)


_KILL_SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[4])
from test_watch import simple_row, read_rows, FAST
from ingest.live.watch import Watcher
w = Watcher(sys.argv[1], sys.argv[2], sys.argv[3], extractor=simple_row, reader=read_rows, **FAST)
print("started", flush=True)
w.run()
"""


def _spawn(nmr: Path, epr: Path, store: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(nmr), str(epr), str(store), str(ROOT / "tests")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdout is not None and p.stdout.readline().strip() == b"started"
    return p


def test_kill9_mid_stream_then_restart(tmp_path: Path) -> None:
    """SIGKILL the watcher process while spectra stream in, keep writing while it
    is down, restart it: every spectrum exactly once, none lost."""
    stage, nmr, epr, store = tmp_path / "stage", tmp_path / "nmr", tmp_path / "epr", tmp_path / "store"
    nmr.mkdir()
    epr.mkdir()
    srcs_e = [make_epr(stage, i) for i in range(24)]
    srcs_n = [make_nmr(stage, i) for i in range(6)]
    expected = {}
    p = _spawn(nmr, epr, store)
    try:
        killed_at = None
        for i in range(24):
            drip_bes3t(srcs_e[i], epr / f"k{i:03d}", chunk=1024, pause=0.005)
            expected[str((epr / f"k{i:03d}").resolve())] = (0.1 * (i + 1), T0 + timedelta(seconds=60 * i + 20))
            if i < 6:
                drip_bruker(srcs_n[i], nmr / f"{i + 1}", chunk=8192, pause=0.005)
                expected[str((nmr / f"{i + 1}").resolve())] = (1000.0 * (i + 1), T0 + timedelta(seconds=60 * i))
            if i == 9:
                # kill once it has stored something (its start-up may be slow on a busy machine)
                with Store(store) as st:
                    end = time.monotonic() + 20
                    while len(st) == 0 and time.monotonic() < end:
                        time.sleep(0.02)
                p.send_signal(signal.SIGKILL)
                p.wait(10)
                st = Store(store)
                killed_at = len(st)
                st.close()
        assert killed_at is not None and 0 < killed_at < len(expected), killed_at
        p = _spawn(nmr, epr, store)
        st = Store(store)
        df = wait_rows(st, len(expected), 30.0)
        time.sleep(0.6)
        df = st.table()
    finally:
        p.kill()
        p.wait(10)
    check_exactly_once(df, expected)
    assert len(st.manifest()) == len(expected)


@pytest.mark.slow
def test_burst_of_1000(tmp_path: Path) -> None:
    """1,000 BES3T spectra dropped into the folder at once (renamed in from a
    staging folder on the same file system): all processed, exactly once."""
    stage, epr = tmp_path / "stage", tmp_path / "epr"
    epr.mkdir()
    first = make_epr(stage, 0)
    dsc_text = first[0].read_text()
    expected = {}
    b = np.linspace(0.335, 0.345, 256)
    x = (b - 0.34) / 5e-4
    y = -2 * x / (1 + x**2) ** 2
    y = y / y.max()
    for i in range(1000):
        (stage / f"b{i:04d}.DSC").write_text(dsc_text)
        (stage / f"b{i:04d}.DTA").write_bytes((y * (1 + i) * 1e-3).astype(">f8").tobytes())
        expected[str((epr / f"b{i:04d}").resolve())] = ((1 + i) * 1e-3, T0 + timedelta(seconds=20))
    w, got = _start(epr, None, tmp_path / "store", rescan_s=2.0)
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        for i in range(1000):
            os.rename(stage / f"b{i:04d}.DSC", epr / f"b{i:04d}.DSC")
            os.rename(stage / f"b{i:04d}.DTA", epr / f"b{i:04d}.DTA")
        df = wait_rows(w.store, 1000, 35.0)
        elapsed = time.monotonic() - t0
    finally:
        w.stop()
    check_exactly_once(df, expected)
    print(f"burst of 1000: {elapsed:.1f} s, {1000 / elapsed:.0f} spectra/s")


@pytest.mark.parametrize("rename", [False, True], ids=["close-write", "moved-to"])
def test_close_write_or_rename_completes_without_the_settle_wait(tmp_path: Path, rename: bool) -> None:
    """With inotify, a file closed after writing (or renamed into place) at its full header
    size is taken at once: a 30 s settle wait is not waited.  The polling observer, which sees
    no such event, does wait it."""
    stage, epr = tmp_path / "stage", tmp_path / "epr"
    epr.mkdir()
    src = make_epr(stage, 0)
    fast, got = _start(epr, None, tmp_path / "store", settle_s=30.0, polling=False)
    slow, got_slow = _start(epr, None, tmp_path / "store_poll", settle_s=30.0, polling=True)
    try:
        time.sleep(0.3)
        done = drip_bes3t(src, epr / "s0", pause=0, rename=rename)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got, "no row: the close-write / moved-to event was not taken as completion"
        assert time.time() - done < 2.0
        time.sleep(1.0)
        assert not got_slow  # polling: still inside its settle wait
    finally:
        fast.stop()
        slow.stop()
