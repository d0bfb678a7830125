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

Usage::

    python benchmarks/bench_watcher.py [--n 40] [--burst 200] [--polling]
"""

from __future__ import annotations

import argparse
import io
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


def _session(tmp: Path, watched: Path) -> tuple[LiveSession, dict[str, float], threading.Event]:
    log = tmp / "potentiostat.csv"
    log.write_text(f"# start: {T0.isoformat()}\ntime_s,current_A\n"
                   + "\n".join(f"{t},{0.01}" for t in range(0, 40000, 10)) + "\n")
    cfg = ExperimentConfig.from_dict({
        "experiment": {"name": "bench"}, "electrolyte": {"concentration_M": 0.1, "volume_L": 0.01},
        "instruments": {"nmr_dir": str(watched), "epr_dir": str(watched), "potentiostat": str(log)}},
        source=tmp / "experiment.toml")
    arrived: dict[str, float] = {}
    evt = threading.Event()
    s = LiveSession(cfg, tmp / "store", table=TerminalTable(io.StringIO(), ansi=False),
                    csv_path=tmp / "out" / "live_soc.csv")
    inner = s.on_row

    def on_row(row: dict):  # the SOC row exists when the session's on_row returns
        st = inner(row)
        src = Path(row["source"])
        if src.suffix.upper() in (".DTA", ".DSC"):
            src = src.with_suffix("")
        arrived[str(src.resolve())] = time.time()
        evt.set()
        return st

    s.on_row = on_row  # type: ignore[method-assign]
    return s, arrived, evt


def latency(kind: str, n: int, polling: bool, npts: int, lean: bool = False) -> np.ndarray:
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stage, watched = tmp / "stage", tmp / "watched"
        watched.mkdir()
        srcs = [make_epr(stage, i) if kind == "epr" else make_nmr(stage, i, n=npts) for i in range(n)]
        s, arrived, evt = _session(tmp, watched)
        # the command's defaults: nothing else passed (lean: the extractor only, to show what
        # the watcher and the live SOC cost apart from processing the spectrum)
        s.watch(polling=polling, **({"extractor": simple_row} if lean else {}))
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
        return np.array([arrived[k] - done[k] for k in done if k in arrived])


def burst(n: int, polling: bool) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stage, watched = tmp / "stage", tmp / "watched"
        watched.mkdir()
        pairs = [make_epr(stage, i) for i in range(n)]
        s, arrived, _ = _session(tmp, watched)
        s.watch(polling=polling)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40, help="spectra per latency run")
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--polling", action="store_true", help="also the polling observer (network shares)")
    a = ap.parse_args()
    print(f"finished file -> SOC row at `flowcell watch` defaults; {os.cpu_count()} CPUs (shared); "
          f"target p95 <= {1e3 * TARGET_S:.0f} ms")
    for polling in (False, True) if a.polling else (False,):
        obs = "polling" if polling else "inotify"
        for kind, npts, lean, label in (("epr", 0, False, "BES3T 256 pt"),
                                        ("nmr", 65536, False, "Bruker 64k-point fid"),
                                        ("epr", 0, True, "BES3T, lean extractor"),
                                        ("nmr", 65536, True, "Bruker 64k, lean extractor")):
            lat = latency(kind, a.n if not (kind == "nmr" and not lean) else max(a.n // 3, 5), polling, npts, lean)
            if not len(lat):
                print(f"{obs:8s} {label:<27s} no rows arrived")
                continue
            p95 = np.percentile(lat, 95)
            print(f"{obs:8s} {label:<27s} n={len(lat):3d}  median {1e3 * np.median(lat):7.1f} ms  "
                  f"p95 {1e3 * p95:7.1f} ms  max {1e3 * lat.max():7.1f} ms  p95/target {p95 / TARGET_S:6.2f}")
    got, dt = burst(a.burst, False)
    print(f"burst    {a.burst} x BES3T dropped at once: {got}/{a.burst} SOC rows in {dt:.2f} s "
          f"-> {got / dt:.1f} rows/s")


if __name__ == "__main__":
    main()
