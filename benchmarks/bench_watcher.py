"""Benchmark: a finished file -> its SOC row, at ``flowcell watch``'s own defaults.

The live session is built exactly as ``flowcell watch`` builds it
(:class:`flowcell.live.session.LiveSession`: store, watcher with its default
``settle_s``/``quiet_s``/``poll_interval_s``, the default observables of the
experiment file, the potentiostat log, the live SOC and the table), and spectra are
written into the watched folder like a spectrometer writes them (a BES3T .DSC then the
.DTA in chunks, or under a temporary name renamed at the end; a Bruker expno: acqus, the
fid in chunks, audita.txt last, or written under a hidden name and renamed).

Prints, per format and observer, the latency from the moment the acquisition is complete
(last byte closed / final rename) to the moment the session has its SOC row: median, p95
and max, and the ratio of p95 to the 20 ms target.  Also the sustained rate for a burst.

Also a per-stage timeline of each acquisition, from wrappers around the running watcher's
own steps: the observer thread's last event, the worker's step, processing start, the
fingerprint, the read, the extraction, the store commit, the SOC row and the table drawn on
the (in-memory) terminal; the median wall time of each mark after completion, the median
wall and worker-thread CPU time of each interval with its p95, and the cyclic-GC
collections that ran meanwhile (``gc.callbacks``).  Wall much above CPU in an interval is
time the worker waited: for the GIL (another thread of the process) or for a core (the
load average, printed next to every figure).  The ``cpu`` lines time the same stages on
files already on disk, one after the other in this thread.  Each format runs ``--repeats``
times, interleaved, pooled; the first spectrum of a session (the Bruker series plan,
:mod:`ingest.processing.nmr_plan`) is in the statistics and printed as ``first``.  Each run
starts once the watcher's warm-up is over (:func:`_settled`), as a spectrometer's first
spectrum comes minutes after ``flowcell watch`` starts.

History (2 shared cores): before the series plan, p95 45 ms (BES3T) and 188 ms (Bruker 64k)
at load 1; the Bruker path spent ~100 ms a spectrum in the robust baseline (25 iterations of
labelling and SVD least squares) and ~1 ms per line in scipy's least-squares set-up, the
EPR path ~15 ms in lmfit.  With the plan (:mod:`ingest.processing.nmr_plan`), the numpy /
numba line fits and the EPR fit without lmfit: 8 ms (BES3T) and 25 ms (Bruker) of CPU per
file in total at load 8 (the ``cpu`` lines).  The tail beyond CPU (issue 13), found with the
timeline: generation-2 garbage collections of 180-290 ms over the ~260k objects of the
scientific stack (now frozen at start-up and kept out of a file's processing,
:mod:`ingest.live.gcpause`); the observer's threads woken by the watcher's own opens and
reads of the files (~0.3-1.5 ms per open, now not subscribed, :mod:`ingest.live.observer`);
rich's 4 Hz refresh and the table redraw (2-3 ms of Python) competing for the GIL (now one
drawing thread that waits while a file is processed).  At load 0.8: BES3T p95 38 -> 12.5 ms
(p50 16 -> 8.1); Bruker 64k p95 33 ms (p50 23), bound by the extraction (15.5 ms of CPU of
the 22.7 ms to the SOC row).  The Bruker stages around the extraction, CPU per file at load 1
(interleaved medians, same files): the read 1.7 -> 1.2 ms (the byte-order check's medians
skipped when the integer fid's declared order is evident, :func:`ingest.readers.bruker._declared_order_evident`;
acqus looked at once to identify the folder), the spin-standard test 0.14 -> 0.06 ms (string
paths), the completion check 0.40 -> 0.35 ms (one stat per file), the worker's whole step with
a lean extractor 4.6 -> 3.6 ms; a real TopSpin acqus parses in 1.2 ms instead of 1.45 (arrays
in one comprehension), and a fid without GRPDLY from new firmware no longer imports nmrglue
and scipy.signal (~0.45 s) on the first spectrum.  The fingerprint stays sha256 (0.6 ms for the
512 kB fid: the store's key, and the fastest hash here with SHA-NI; :mod:`ingest.live.signature`).
Then the same numbers at less CPU (load ~1, interleaved): the Bruker extraction 13.9 -> 6.4 ms
(line fits 4.4 -> 2.3, warm baseline 2.7 -> 1.3, noise 1.25 -> 1.0, the zero-filled transform's
halves on two threads), read + completion check 2.0 -> 1.2 ms, the SOC row 1.04 -> 0.5 ms; the
hash on a helper thread beside the read.  Bruker p50 18.6 -> 14.9-16.7 ms, p95 23.6 -> 19.8-21.5
(203 and 60 spectra).  What is left beyond the CPU: a spectrum comes after an idle wait, and the
same extraction costs 9.1-9.8 ms of CPU 50 ms after the last one against 6.2-6.6 ms back to back
(caches refilled: 512 kB of L2 a core against ~10 MB of arrays), plus ~1 ms from the kernel's
event through watchdog's threads to the worker.

Usage::

    python benchmarks/bench_watcher.py [--n 30] [--repeats 2] [--burst 50] [--no-polling] [--no-lean]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
import contextlib
import gc
import io
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_watch import T0, drip_bes3t, drip_bruker, make_epr, simple_row

from flowcell.config import ExperimentConfig
from flowcell.live.session import LiveSession
from flowcell.live.table import TerminalTable
from flowcell.simulate.spectra import NMRLine, nmr_fid
from ingest.readers.nmr_writers import write_bruker_1d

#: A DHAQ-like 1H spectrum: HDO and the O- and H-form ring protons (shifts of kinetics.observe).
LINES = [NMRLine(4.80, 2.0, 5e4, "hdo"), NMRLine(7.45, 6, 300, "h1"), NMRLine(7.05, 6, 300, "h3"),
         NMRLine(7.72, 6, 300, "h4"), NMRLine(6.55, 5, 200, "h1H"), NMRLine(6.25, 5, 200, "h3H"),
         NMRLine(6.45, 5, 200, "h4H")]


def make_nmr(stage: Path, i: int, *, n: int) -> Path:
    """A Bruker expno of ``n`` complex points (TopSpin layout, audita.txt last when dripped)."""
    fid = nmr_fid(LINES, n=n, sw_hz=8000.0, sfo1_hz=400.13e6, carrier_ppm=4.7, noise_sd=2.0,
                  rng=np.random.default_rng(i))
    s = T0 + timedelta(seconds=60 * i)
    return write_bruker_1d(stage / f"nmr{i}", fid, sfo1_hz=400.13e6, sw_hz=8000.0, carrier_ppm=4.7,
                           start=s, end=s + timedelta(seconds=30), ns=4)

TARGET_S = 0.020

#: Marks on the live path of one acquisition, in order (wall times since the acquisition was
#: complete): the observer thread's last event, the worker's step, the processing (signature,
#: fingerprint), the read, the extraction, the store commit, the SOC row (session.on_row
#: returned: estimate, live_soc.csv line, table row queued) and the table drawn on the terminal.
MARKS = ("event", "step", "process", "fingerprint", "read", "extract", "store", "SOC row", "drawn")
#: Intervals between marks printed with their wall and CPU (worker thread) durations.
INTERVALS = (("step", "process", "completion check"), ("process", "fingerprint", "signature, hash handed over"),
             ("fingerprint", "read", "read"), ("read", "extract", "extract"), ("extract", "store", "store"),
             ("store", "SOC row", "on_row (SOC, csv, table)"), ("SOC row", "drawn", "draw (table thread)"))


def _key(path: str | Path) -> str:
    k = str(Path(path).resolve())
    return k[:-4] if k.upper().endswith((".DTA", ".DSC")) else k


def _session(tmp: Path, watched: Path) -> tuple[LiveSession, dict[str, float], threading.Event]:
    """The session as ``flowcell watch exp.toml --out DIR`` builds it (table on a terminal)."""
    log = tmp / "potentiostat.csv"
    log.write_text(f"# start: {T0.isoformat()}\ntime_s,current_A\n"
                   + "\n".join(f"{t},{0.01}" for t in range(0, 40000, 10)) + "\n")
    cfg = ExperimentConfig.from_dict({
        "experiment": {"name": "bench"}, "electrolyte": {"concentration_M": 0.1, "volume_L": 0.01},
        "instruments": {"nmr_dir": str(watched), "epr_dir": str(watched), "potentiostat": str(log)}},
        source=tmp / "experiment.toml")
    arrived: dict[str, float] = {}
    evt = threading.Event()
    # a terminal (rich live table, as on a TTY) writing into memory
    s = LiveSession(cfg, tmp / "store", table=TerminalTable(io.StringIO(), ansi=True),
                    csv_path=tmp / "out" / "live_soc.csv")
    inner = s.on_row

    def on_row(row: dict):  # the SOC row exists when the session's on_row returns
        st = inner(row)
        now = time.time()
        arrived[_key(row["source"])] = now
        evt.set()
        return st

    s.on_row = on_row  # type: ignore[method-assign]
    return s, arrived, evt


@contextlib.contextmanager
def bruker_series(n: int, npts: int = 65536) -> Iterator[tuple[LiveSession, list]]:
    """The session as ``flowcell watch`` builds it (:func:`_session`) and the acquisitions of
    ``n`` Bruker expnos of the latency series (written to a stage folder, not watched), in a
    temporary folder removed afterwards: the set-up of the stage benchmarks
    (bench_live_row.py, bench_session_row.py)."""
    from ingest.live.completion import acquisition_for

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        (tmp / "watched").mkdir()
        s, _, _ = _session(tmp, tmp / "watched")
        try:
            yield s, [acquisition_for(make_nmr(tmp / "stage", i, n=npts)) for i in range(n)]
        finally:
            s.close()


class _TimedEvent(threading.Event):
    """The watcher's wake-up event, remembering when the observer thread last set it."""

    last = math.nan

    def set(self) -> None:
        if threading.current_thread().name != "ingest-watcher":
            self.last = time.time()
        super().set()


class _Timeline:
    """Wall and worker-CPU time stamps of each acquisition's marks in the running session
    (wrappers around the watcher's own steps, nothing else changed)."""

    def __init__(self, s: LiveSession) -> None:
        self.marks: dict[str, dict[str, tuple[float, float]]] = {}
        self.draws: list[float] = []
        self.gc: list[tuple[float, float, int]] = []  # (start, duration s, generation)
        self._gc_t0 = 0.0
        self._cur: dict[str, tuple[float, float]] = {}
        self.s = s
        w = s.watcher
        assert w is not None
        old, w._wake = w._wake, _TimedEvent()
        old.set()  # the worker leaves its wait on the old event
        self._restore: list = []
        # the fingerprint runs on its own thread beside the read (ingest.live.signature.FingerprintThread):
        # the mark is when it is handed over
        w._hashing.submit = self._wrap(w._hashing.submit, "fingerprint", after=True)
        w._step = self._wrap(w._step, "step", before=True, reset=True)
        w._process = self._wrap(w._process, "process", before=True, event=True)
        w._extractor = self._wrap(self._mark_read(w._extractor), "extract", after=True)
        s.store.append = self._wrap(s.store.append, "store", after=True, commit=True)
        inner = w.on_row

        def on_row(row: dict):
            out = inner(row)
            self._stamp("SOC row")
            self.marks[_key(row["source"])] = dict(self._cur)
            return out

        w.on_row = on_row
        table = s.table
        assert table is not None
        start = table._start

        def _start() -> None:  # the terminal table's Live exists from the first row on
            start()
            refresh = table._live.refresh

            def timed_refresh(*a, **k):
                refresh(*a, **k)
                self.draws.append(time.time())

            table._live.refresh = timed_refresh

        table._start = _start
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_t0 = time.time()
        else:
            self.gc.append((self._gc_t0, time.time() - self._gc_t0, info["generation"]))

    def close(self) -> None:
        gc.callbacks.remove(self._gc)
        for mod, name, fn in self._restore:
            setattr(mod, name, fn)

    def _stamp(self, name: str) -> None:
        self._cur[name] = (time.time(), time.thread_time())

    def _mark_read(self, extractor):
        def ex(spec):
            self._stamp("read")  # the extractor starts when the read is done
            return extractor(spec)
        return ex

    def _wrap(self, fn, name: str, *, before=False, after=False, reset=False, event=False, commit=False):
        def wrapped(*a, **k):
            if reset:
                self._cur = {}
            if event:
                self._cur["event"] = (self.s.watcher._wake.last, math.nan)
            if before:
                self._stamp(name)
            out = fn(*a, **k)
            if after:
                self._stamp(name)
            return out
        return wrapped

    def stages(self, done: dict[str, float]) -> dict[str, dict[str, tuple[float, float]]]:
        """Per acquisition: mark -> (wall s since completion, worker CPU s), 'drawn' added."""
        out = {}
        for k, t_done in done.items():
            m = self.marks.get(k)
            if not m:
                continue
            row_t = m["SOC row"][0]
            drawn = next((t for t in self.draws if t >= row_t), math.nan)
            m = dict(m, drawn=(drawn, math.nan))
            out[k] = {name: (m.get(name, (math.nan, math.nan))[0] - t_done, m.get(name, (math.nan, math.nan))[1])
                      for name in MARKS}
        return out


def _settled(s: LiveSession, timeout_s: float = 60.0) -> None:
    """Wait until the watcher's start-up is over (the compiled fits loaded by its warm-up
    thread, the start-up objects frozen out of the garbage collector): a spectrometer's first
    spectrum comes minutes after ``flowcell watch`` starts, not within its first second."""
    end = time.monotonic() + timeout_s
    time.sleep(0.5)
    while s.watcher is not None and s.watcher._warm is not None and time.monotonic() < end:
        time.sleep(0.05)


def latency(kind: str, n: int, polling: bool, npts: int, lean: bool = False) -> tuple[np.ndarray, dict, list]:
    """Latencies (s) of ``n`` acquisitions written one after the other, per-stage marks, GC pauses."""
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stage, watched = tmp / "stage", tmp / "watched"
        watched.mkdir()
        srcs = [make_epr(stage, i) if kind == "epr" else make_nmr(stage, i, n=npts) for i in range(n)]
        s, arrived, evt = _session(tmp, watched)
        # the command's defaults: `flowcell watch` passes polling=None (native observer unless the
        # folder is on a network share) and nothing else (lean: the extractor only, to show what
        # the watcher and the live SOC cost apart from processing the spectrum)
        s.watch(polling=True if polling else None, **({"extractor": simple_row} if lean else {}))
        tl = _Timeline(s)
        _settled(s)
        done: dict[str, float] = {}
        for i, src in enumerate(srcs):
            evt.clear()
            if kind == "epr":
                dst = watched / f"s{i:04d}"
                done[_key(dst)] = drip_bes3t(src, dst, chunk=2048, pause=0.001, rename=bool(i % 2))
            else:
                dst = watched / f"{i + 1}"
                done[_key(dst)] = drip_bruker(src, dst, chunk=65536, pause=0.001, rename=bool(i % 2))
            evt.wait(10)
            time.sleep(0.05)
        s.close()
        tl.close()
        keys = [k for k in done if k in arrived]
        t_first, t_last = min(done.values()), max(arrived.values(), default=0.0)
        pauses = [g for g in tl.gc if t_first <= g[0] <= t_last]
        return np.array([arrived[k] - done[k] for k in keys]), tl.stages(done), pauses


def burst(n: int, polling: bool) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stage, watched = tmp / "stage", tmp / "watched"
        watched.mkdir()
        pairs = [make_epr(stage, i) for i in range(n)]
        s, arrived, _ = _session(tmp, watched)
        s.watch(polling=True if polling else None)
        _settled(s)
        t0 = time.monotonic()
        for i, (dsc, dta) in enumerate(pairs):
            os.rename(dsc, watched / f"b{i:05d}.DSC")
            os.rename(dta, watched / f"b{i:05d}.DTA")
        while len(arrived) < n and time.monotonic() - t0 < 300:
            time.sleep(0.05)
        dt = time.monotonic() - t0
        s.close()
        return len(arrived), dt


def cpu_stages(kind: str, n: int) -> dict[str, float]:
    """CPU time (this thread, median ms) of each stage of the live path, the files already on
    disk: what the wall-clock stages above cost without the other processes of a shared
    machine.  The same objects as the watcher: its extractor, store and session."""
    from flowcell.fit.pipeline import observables_config
    from ingest.batch import _read_spectra, make_extractor
    from ingest.live.completion import acquisition_for, check_complete, fingerprint

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        watched = tmp / "watched"
        watched.mkdir()
        s, _, _ = _session(tmp, watched)
        ex = make_extractor(observables_config(s.cfg))
        ex.fast = True  # as Watcher.start sets it
        paths = [make_epr(tmp / "stage", i)[1] if kind == "epr" else make_nmr(tmp / "stage", i, n=65536)
                 for i in range(n + 1)]
        acqs = [acquisition_for(p) for p in paths]
        ex(_read_spectra(acqs[0], None)[0])  # the first spectrum: phase, plan
        out: dict[str, list[float]] = {k: [] for k in ("completion check", "fingerprint", "read", "extract",
                                                       "store", "SOC row (on_row)")}
        for a in acqs[1:]:
            t = time.thread_time()
            check_complete(a, 1.0, settle_s=0.0, quiet_s=0.4, max_scan_wait_s=5.0, now=time.time())
            t0 = time.thread_time()
            fp, files = fingerprint(a)
            t1 = time.thread_time()
            spec = _read_spectra(a, None)[0]
            t2 = time.thread_time()
            row = dict(ex(spec))
            row.setdefault("source", str(a.key))
            t3 = time.thread_time()
            s.store.append([row], str(a.key), fp, files)
            t4 = time.thread_time()
            LiveSession.on_row(s, row)  # the session's own (not the benchmark's wrapper)
            t5 = time.thread_time()
            for k, v in zip(out, (t0 - t, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                out[k].append(v)
        s.close()
        return {k: 1e3 * float(np.median(v)) for k, v in out.items()}


def _stage_lines(stages: dict, pauses: list) -> list[str]:
    """Median wall time of each mark since completion; median wall and worker-CPU duration of
    each interval; the cyclic-GC collections that ran meanwhile."""
    if not stages:
        return []
    wall = np.array([[v[m][0] for m in MARKS] for v in stages.values()]) * 1e3
    cpu = np.array([[v[m][1] for m in MARKS] for v in stages.values()]) * 1e3
    med = np.nanmedian(wall, axis=0)
    out = ["    marks (median ms after completion): " + ", ".join(f"{m} {v:.1f}" for m, v in zip(MARKS, med))]
    parts = []
    for a, b, label in INTERVALS:
        ia, ib = MARKS.index(a), MARKS.index(b)
        w, c = wall[:, ib] - wall[:, ia], cpu[:, ib] - cpu[:, ia]
        p95 = np.nanpercentile(w, 95) if np.isfinite(w).any() else math.nan
        cpu_txt = f"/{np.nanmedian(c):.1f}" if np.isfinite(c).any() else ""
        parts.append(f"{label} {np.nanmedian(w):.1f}{cpu_txt} (p95 {p95:.1f})")
    out.append("    intervals (median wall/CPU ms, p95 wall): " + ", ".join(parts))
    d = np.array([p[1] for p in pauses]) * 1e3
    gens = [sum(1 for p in pauses if p[2] == g) for g in range(3)]
    out.append(f"    cyclic GC during the run: {len(pauses)} collections (gen0/1/2 {gens[0]}/{gens[1]}/{gens[2]}), "
               f"longest {d.max() if len(d) else 0:.1f} ms, total {d.sum():.1f} ms")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30, help="spectra per latency run (the first builds the series plan)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="inotify latency runs per format, interleaved (BES3T, Bruker, BES3T, ...) and pooled")
    ap.add_argument("--burst", type=int, default=50, help="BES3T files dropped at once")
    ap.add_argument("--no-polling", action="store_true",
                    help="skip the polling observer (network shares; ~1.2 s a file by design: settle_s)")
    ap.add_argument("--no-lean", action="store_true", help="skip the lean-extractor runs")
    a = ap.parse_args()
    print(f"finished file -> SOC row at `flowcell watch` defaults; {os.cpu_count()} CPUs (shared); "
          f"target p95 <= {1e3 * TARGET_S:.0f} ms")
    runs = [("epr", 0, False, "BES3T 256 pt"), ("nmr", 65536, False, "Bruker 64k-point fid")]
    if not a.no_lean:
        runs += [("epr", 0, True, "BES3T, lean extractor"), ("nmr", 65536, True, "Bruker 64k, lean extractor")]
    plan = [(False, r) for _ in range(a.repeats) for r in runs]  # interleaved repeats
    if not a.no_polling:
        plan += [(True, r) for r in runs if not r[2]]
    pooled: dict[tuple, list] = {}
    for polling, (kind, npts, lean, label) in plan:
        lat, stages, pauses = latency(kind, a.n, polling, npts, lean)
        acc = pooled.setdefault((polling, label, lean), [[], {}, [], []])
        acc[0].append(lat)
        acc[1].update({f"{len(acc[3])}:{k}": v for k, v in stages.items()})
        acc[2] += pauses
        acc[3].append(os.getloadavg()[0])
    for (polling, label, lean), (lats, stages, pauses, loads) in pooled.items():
        obs = "polling" if polling else "inotify"
        lat = np.concatenate(lats)
        load = float(np.mean(loads))
        if not len(lat):
            print(f"{obs:8s} {label:<27s} no rows arrived")
            continue
        p50, p95, mx = np.median(lat), np.percentile(lat, 95), lat.max()
        firsts = ", ".join(f"{1e3 * x[0]:.0f}" for x in lats if len(x))
        print(f"{obs:8s} {label:<27s} n={len(lat):3d} ({len(lats)} runs)  p50 {1e3 * p50:7.1f} ms  "
              f"p95 {1e3 * p95:7.1f} ms  max {1e3 * mx:7.1f} ms  first {firsts} ms  "
              f"p95/target {p95 / TARGET_S:6.2f}  (load {load:.1f})")
        for line in _stage_lines(stages, pauses):
            print(line)
        if not lean:
            print(f"RESULT | watch {obs}: finished file -> SOC row p95, {label} | {1e3 * p95:.1f} ms "
                  f"(p50 {1e3 * p50:.1f}, load {load:.1f}) | {1e3 * TARGET_S:.0f} ms target | "
                  f"{p95 / TARGET_S:.2f}")
    for kind, label in (("epr", "BES3T 256 pt"), ("nmr", "Bruker 64k-point fid")):
        cpu = cpu_stages(kind, 15)
        print(f"cpu      {label:<27s} " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
              + f"  = {sum(cpu.values()):.1f} ms CPU per file (median; load {os.getloadavg()[0]:.1f})")
    got, dt = burst(a.burst, False)
    print(f"burst    {a.burst} x BES3T dropped at once: {got}/{a.burst} SOC rows in {dt:.2f} s "
          f"-> {got / dt:.1f} rows/s (load {os.getloadavg()[0]:.1f})")
    print(f"RESULT | watch burst: BES3T files -> SOC rows | {got / dt:.1f} rows/s | - | -")


if __name__ == "__main__":
    main()
