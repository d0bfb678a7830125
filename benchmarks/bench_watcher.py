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

Also the median time of each stage after completion (worker woken, processing started,
extraction started/ended, row stored, SOC row), the load average next to every figure, and
``RESULT |`` lines for benchmarks/readme_table.py.  The first spectrum of a Bruker series
builds the series plan (:mod:`ingest.processing.nmr_plan`); it is in the statistics and
printed as ``first``.

History (2 shared cores): before the series plan, p95 45 ms (BES3T) and 188 ms (Bruker 64k)
at load 1; the Bruker path spent ~100 ms a spectrum in the robust baseline (25 iterations of
labelling and SVD least squares) and ~1 ms per line in scipy's least-squares set-up, the
EPR path ~15 ms in lmfit.  With the plan (:mod:`ingest.processing.nmr_plan`), the numpy /
numba line fits and the EPR fit without lmfit: 8 ms (BES3T) and 25 ms (Bruker) of CPU per
file in total at load 8 (the ``cpu`` lines).

Usage::

    python benchmarks/bench_watcher.py [--n 30] [--burst 50] [--no-polling] [--no-lean]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
import io
import math
import os
import sys
import tempfile
import threading
import time
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

#: Stages of one acquisition on the live path, in order (times since the acquisition was complete).
STAGES = ("worker step", "process start", "extract start", "extract end", "store end", "SOC row")


def _session(tmp: Path, watched: Path, marks: dict) -> tuple[LiveSession, dict[str, float], threading.Event]:
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
        src = Path(row["source"])
        if src.suffix.upper() in (".DTA", ".DSC"):
            src = src.with_suffix("")
        key = str(src.resolve())
        arrived[key] = now
        marks.setdefault(key, {})["SOC row"] = now
        evt.set()
        return st

    s.on_row = on_row  # type: ignore[method-assign]
    return s, arrived, evt


def _instrument(s: LiveSession, marks: dict) -> None:
    """Time stamps of the stages of each acquisition in the running watcher (wrappers only)."""
    w = s.watcher
    assert w is not None
    cur: dict[str, float] = {}
    step, process, append, extractor = w._step, w._process, s.store.append, w._extractor

    def _step() -> None:
        cur["worker step"] = time.time()
        step()

    def _process(c) -> None:
        cur["process start"] = time.time()
        process(c)

    def _extract(spec):
        cur["extract start"] = time.time()  # after the read
        r = extractor(spec)
        cur["extract end"] = time.time()
        return r

    def _append(rows, key, *a, **k):
        out = append(rows, key, *a, **k)
        k_ = str(Path(key).resolve())
        if k_.upper().endswith((".DTA", ".DSC")):
            k_ = k_[:-4]
        marks[k_] = dict(cur, **{"store end": time.time()})
        return out

    w._step, w._process, s.store.append = _step, _process, _append  # type: ignore[method-assign]
    w._extractor = _extract  # type: ignore[assignment]


def latency(kind: str, n: int, polling: bool, npts: int, lean: bool = False) -> tuple[np.ndarray, dict]:
    """Latencies (s) of ``n`` acquisitions written one after the other, and the per-stage marks."""
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stage, watched = tmp / "stage", tmp / "watched"
        watched.mkdir()
        srcs = [make_epr(stage, i) if kind == "epr" else make_nmr(stage, i, n=npts) for i in range(n)]
        marks: dict[str, dict] = {}
        s, arrived, evt = _session(tmp, watched, marks)
        # the command's defaults: `flowcell watch` passes polling=None (native observer unless the
        # folder is on a network share) and nothing else (lean: the extractor only, to show what
        # the watcher and the live SOC cost apart from processing the spectrum)
        s.watch(polling=True if polling else None, **({"extractor": simple_row} if lean else {}))
        _instrument(s, marks)
        time.sleep(0.5)
        done: dict[str, float] = {}
        for i, src in enumerate(srcs):
            evt.clear()
            if kind == "epr":
                dst = watched / f"s{i:04d}"
                done[str(dst.resolve())] = drip_bes3t(src, dst, chunk=2048, pause=0.001, rename=bool(i % 2))
            else:
                dst = watched / f"{i + 1}"
                done[str(dst.resolve())] = drip_bruker(src, dst, chunk=65536, pause=0.001, rename=bool(i % 2))
            evt.wait(10)
            time.sleep(0.05)
        s.close()
        keys = [k for k in done if k in arrived]
        stages = {k: {st: marks.get(k, {}).get(st, math.nan) - done[k] for st in STAGES} for k in keys}
        return np.array([arrived[k] - done[k] for k in keys]), stages


def burst(n: int, polling: bool) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stage, watched = tmp / "stage", tmp / "watched"
        watched.mkdir()
        pairs = [make_epr(stage, i) for i in range(n)]
        s, arrived, _ = _session(tmp, watched, {})
        s.watch(polling=True if polling else None)
        time.sleep(0.5)
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
        s, _, _ = _session(tmp, watched, {})
        ex = make_extractor(observables_config(s.cfg))
        ex.fast = True  # as Watcher.start sets it
        paths = [make_epr(tmp / "stage", i)[1] if kind == "epr" else make_nmr(tmp / "stage", i, n=65536)
                 for i in range(n + 1)]
        acqs = [acquisition_for(p) for p in paths]
        ex(_read_spectra(acqs[0], None)[0])  # the first spectrum: phase, plan
        out: dict[str, list[float]] = {k: [] for k in ("completion check + fingerprint", "read", "extract",
                                                       "store", "SOC row (on_row)")}
        for a in acqs[1:]:
            t = time.thread_time()
            check_complete(a, 1.0, settle_s=0.0, quiet_s=0.4, max_scan_wait_s=5.0, now=time.time())
            fp, files = fingerprint(a)
            t1 = time.thread_time()
            spec = _read_spectra(a, None)[0]
            t2 = time.thread_time()
            row = dict(ex(spec))
            row.setdefault("source", str(a.key))
            t3 = time.thread_time()
            s.store.append([row], str(a.key), fp, files)
            t4 = time.thread_time()
            s.on_row(row)
            t5 = time.thread_time()
            for k, v in zip(out, (t1 - t, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                out[k].append(v)
        s.close()
        return {k: 1e3 * float(np.median(v)) for k, v in out.items()}


def _stage_line(stages: dict) -> str:
    """Median time of each stage since completion, and the median duration of each step, ms."""
    if not stages:
        return ""
    arr = np.array([[v[st] for st in STAGES] for v in stages.values()]) * 1e3
    med = np.nanmedian(arr, axis=0)
    parts = [f"{name} {m:.1f}" for name, m in zip(STAGES, med)]
    return "    stages (median ms after completion): " + ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30, help="spectra per latency run (the first builds the series plan)")
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
    for polling in (False,) if a.no_polling else (False, True):
        obs = "polling" if polling else "inotify"
        for kind, npts, lean, label in runs:
            if polling and lean:
                continue
            lat, stages = latency(kind, a.n, polling, npts, lean)
            load = os.getloadavg()[0]
            if not len(lat):
                print(f"{obs:8s} {label:<27s} no rows arrived")
                continue
            p50, p95, mx = np.median(lat), np.percentile(lat, 95), lat.max()
            print(f"{obs:8s} {label:<27s} n={len(lat):3d}  p50 {1e3 * p50:7.1f} ms  p95 {1e3 * p95:7.1f} ms  "
                  f"max {1e3 * mx:7.1f} ms  first {1e3 * lat[0]:7.1f} ms  p95/target {p95 / TARGET_S:6.2f}  "
                  f"(load {load:.1f})")
            print(_stage_line(stages))
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
