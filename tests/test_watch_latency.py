"""What keeps a finished file's SOC row within milliseconds (issue 13, item 3).

* the cyclic garbage collector is kept out of a file's processing (ingest.live.gcpause) and
  the watcher suspends it exactly while it processes a file;
* the observer does not hear the watcher's own opens and reads (ingest.live.observer);
* the live table's redraw waits while the watcher is on a file, and rich's 4 Hz refresh is off;
* the potentiostat log's charge is looked up in O(log n), exact against the integrated current;
* the per-row caches (log alignment, the BES3T descriptor) follow changes.

The logs, descriptors and data here are written with numpy and plain text only.
"""

from __future__ import annotations

import gc
import io
import math
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from flowcell.live.potlog import SessionCoulombs
from flowcell.live.state import SessionStatus, SOCState
from flowcell.live.table import MAX_HOLD_S, TerminalTable
from flowcell.potentiostat import PotentiostatTail
from ingest.live import gcpause
from ingest.live.completion import acquisition_for, acquisition_time
from ingest.live.observer import start_observer
from ingest.live.store import Store
from ingest.live.watch import Watcher

# --------------------------------------------------------------------------- garbage collector


def test_no_collection_is_counted_across_threads_and_restores():
    assert gc.isenabled()
    entered, release = threading.Event(), threading.Event()

    def other():
        with gcpause.no_collection():
            entered.set()
            release.wait(5)

    th = threading.Thread(target=other)
    with gcpause.no_collection():
        assert not gc.isenabled()
        th.start()
        assert entered.wait(5)
        assert gcpause.collect_idle() == -1  # paused: no collection now
    assert not gc.isenabled()  # the other thread is still inside
    release.set()
    th.join(5)
    assert gc.isenabled()


def test_collect_idle_collects_cycles_and_full_when_due():
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = __import__("weakref").ref(a)
    del a, b
    assert gcpause.collect_idle(full_every_s=math.inf) == 1  # young generations only
    assert ref() is None  # the cycle is gone
    assert gcpause.collect_idle(full_every_s=0.0) == 2


def _bes3t(base: Path, k: int, date: str = "02/03/26") -> None:
    """A 64-point BES3T pair written with numpy only (Xepr layout, DATE/TIME in #DSL)."""
    y = np.sin(np.linspace(0, 3, 64)) * (k + 1)
    y.astype(">f8").tofile(base.with_suffix(".DTA"))
    base.with_suffix(".DSC").write_text(
        "#DESC\t1.2 * DESCRIPTOR INFORMATION ***********************\n"
        "DSRC\tEXP\nBSEQ\tBIG\nIKKF\tREAL\nXTYP\tIDX\nYTYP\tNODATA\nZTYP\tNODATA\nIRFMT\tD\n"
        "XPTS\t64\nXMIN\t3350.0\nXWID\t100.0\nXUNI\t'G'\nIRUNI\t''\nTITL\t'test'\n"
        "*\n#SPL\t1.2 * STANDARD PARAMETER LAYER\nOPER\txuser\n"
        f"DATE\t{date}\nTIME\t10:{k:02d}:00\nCMNT\t\nSAMP\t\nSFOR\t\nSTAG\tC\nEXPT\tCW\nOXS1\tIADC\n"
        "AXS1\tB0VL\nA1CT\t0.34\nA1SW\t0.01\nMWFQ\t9.4e+09\nMWPW\t0.002\nAVGS\t1\nRCAG\t40\nSPTP\t0.01\n"
        "*\n#DSL\t1.0 * DEVICE SPECIFIC LAYER\n.DVC\tacqStart, 1.0\n\n"
        "*\n************************************************************\n")


def test_watcher_suspends_collection_exactly_while_processing(tmp_path):
    seen: list[bool] = []

    def extractor(spec) -> dict:
        seen.append(gc.isenabled())
        m = spec.meta
        return {"kind": spec.kind, "source": str(Path(m.path).with_suffix("")), "time_mid": m.mid,
                "amp": float(np.max(spec.intensity))}

    watched = tmp_path / "epr"
    watched.mkdir()
    for k in range(2):
        _bes3t(watched / f"s{k}", k)
    with Watcher(None, watched, Store(tmp_path / "store"), extractor=extractor, settle_s=0.05) as w:
        assert w.wait_idle(20, min_rows=2)
        assert w.idle.is_set()
    assert seen == [False, False]
    assert gc.isenabled()
    rows = Store(tmp_path / "store").table()
    assert sorted(rows["amp"].round(6)) == sorted(np.round([np.sin(np.linspace(0, 3, 64)).max() * (k + 1)
                                                             for k in range(2)], 6))
    seen.clear()
    _bes3t(watched / "s2", 2)
    with Watcher(None, watched, Store(tmp_path / "store"), extractor=extractor, settle_s=0.05,
                 gc_control=False) as w:
        assert w.wait_idle(20, min_rows=3)
    assert seen == [True]  # left alone when asked


# --------------------------------------------------------------------------- observer


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")
def test_observer_does_not_hear_its_own_reads(tmp_path):
    pytest.importorskip("watchdog.observers.inotify")
    from watchdog.observers.inotify_c import InotifyConstants as C

    f = tmp_path / "a.DTA"
    f.write_bytes(b"x" * 4096)
    got: list[tuple[list[Path], Path | None]] = []
    obs = start_observer([tmp_path], lambda paths, done: got.append((paths, done)), polling=False,
                         poll_interval_s=0.1)
    try:
        (emitter,) = list(obs.emitters)
        mask = emitter.get_event_mask_from_filter()  # what the kernel is asked for
        assert not mask & (C.IN_OPEN | C.IN_CLOSE_NOWRITE | C.IN_ACCESS)
        assert mask & C.IN_CLOSE_WRITE and mask & C.IN_MOVED_TO and mask & C.IN_CREATE
        time.sleep(0.2)
        for _ in range(20):  # what the watcher does to a finished file: open, stat, read, close
            f.read_bytes()
        time.sleep(0.3)
        reads = list(got)
        g = tmp_path / "b.DTA"
        g.write_bytes(b"y" * 10)
        deadline = time.monotonic() + 5
        while not any(done == g for _, done in got) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        obs.stop()
        obs.join(5)
    assert reads == []
    assert any(done == g for _, done in got)  # the close-after-write still arrives


# --------------------------------------------------------------------------- table


def _state(k: int) -> SOCState:
    return SOCState(t_s=60.0 * k, soc=0.01 * k, soc_sd=0.004, kind="epr", used=("epr",))


def test_table_redraw_waits_for_the_producer():
    buf = io.StringIO()
    table = TerminalTable(buf, ansi=True)
    idle = threading.Event()  # the producer is busy
    table.idle = idle
    table.update(_state(1), SessionStatus(rows=1))
    assert table._live is not None and not table._live.auto_refresh  # no 4 Hz refresh thread
    t0 = time.monotonic()
    time.sleep(MAX_HOLD_S / 3)
    assert "1.00" not in buf.getvalue()  # held while busy
    idle.set()
    while "1.00" not in buf.getvalue() and time.monotonic() - t0 < 5:
        time.sleep(0.01)
    assert time.monotonic() - t0 < MAX_HOLD_S + 1.0
    assert "1.00" in buf.getvalue()  # the row's SOC, drawn once the producer was idle
    idle.clear()
    table.update(_state(7), SessionStatus(rows=2))
    t1 = time.monotonic()
    while "7.00" not in buf.getvalue() and time.monotonic() - t1 < 5:
        time.sleep(0.01)
    assert "7.00" in buf.getvalue()  # never held beyond MAX_HOLD_S
    assert time.monotonic() - t1 >= MAX_HOLD_S * 0.8
    table.close()


# --------------------------------------------------------------------------- potentiostat


def test_charge_lookup_is_exact_between_and_beyond_records(tmp_path):
    rng = np.random.default_rng(3)
    t = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 2.0, 499))])
    current = rng.uniform(-0.05, 0.05, t.size)
    p = tmp_path / "log.csv"
    p.write_text("# start: 2026-02-03T10:00:00+00:00\ntime_s,current_A\n"
                 + "".join(f"{a:.17g},{b:.17g}\n" for a, b in zip(t, current)))
    tail = PotentiostatTail(p)
    assert tail.update() == t.size
    # each record's current is the mean over the interval ending at it
    q = np.concatenate([[0.0], np.cumsum(current[1:] * np.diff(t))])
    mid = 0.5 * (t[:-1] + t[1:])
    truth = q[:-1] + current[1:] * (mid - t[:-1])
    got = np.array([tail.charge_at(x) for x in mid])
    assert np.max(np.abs(got - truth)) < 1e-12
    assert [tail.charge_at(x) for x in t[::50]] == pytest.approx(q[::50], abs=1e-12)
    assert tail.charge_at(t[-1] + 10.0) == pytest.approx(q[-1] + current[-1] * 10.0, abs=1e-12)
    assert tail.charge_at(-5.0) == 0.0


class _Log:
    status = "ok"
    warnings: tuple[str, ...] = ()

    def __init__(self, start):
        self.start = start

    def update(self) -> int:
        return 0


def test_coulomb_alignment_follows_a_new_log_start():
    log = _Log(datetime(2026, 2, 3, 10, 0, tzinfo=timezone.utc))
    c = SessionCoulombs(log)
    session = datetime(2026, 2, 3, 10, 5, tzinfo=timezone.utc)
    c.refresh(session)
    assert c.offset_s == 300.0
    c.refresh(session)  # the per-row call: cached
    assert c.offset_s == 300.0
    log.start = datetime(2026, 2, 3, 10, 4, tzinfo=timezone.utc)  # the log was replaced
    c.refresh(session)
    assert c.offset_s == 60.0
    c.refresh(datetime(2026, 2, 3, 10, 6, tzinfo=timezone.utc))
    assert c.offset_s == 120.0


# --------------------------------------------------------------------------- completion memo


def test_descriptor_parsed_once_per_state_and_reread_when_it_changes(tmp_path):
    base = tmp_path / "s0"
    _bes3t(base, 3)
    acq = acquisition_for(base.with_suffix(".DSC"))
    t1 = acquisition_time(acq)
    assert t1 == datetime(2026, 2, 3, 10, 3, tzinfo=timezone.utc).timestamp()
    assert acquisition_time(acq) == t1
    time.sleep(0.01)
    _bes3t(base, 3, date="02/04/26")  # rewritten: a day later
    assert acquisition_time(acq) - t1 == pytest.approx(86400.0)


def test_root_and_hidden_by_string_prefix_do_not_confuse_siblings(tmp_path):
    from ingest.live.observer import hidden

    a, ab = tmp_path / "a", tmp_path / "ab"
    a.mkdir()
    ab.mkdir()
    w = Watcher(a, ab, Store(tmp_path / "store"))
    assert w._root_of(ab / "x" / "fid") == ab  # not a: 'ab' merely starts with 'a'
    assert w._root_of(a / "x") == a and w._root_of(a) == a
    assert w._root_of(tmp_path / "abc" / "f") is None
    assert hidden(a / ".1.tmp" / "fid", a) and hidden(a / "x" / "~lock", a)
    assert not hidden(a / "x" / "fid", a) and not hidden(ab / ".x", a) and not hidden(a, a)
