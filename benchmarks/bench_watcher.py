"""Benchmark of the live watcher: latency and sustained throughput.

Prints
  * the latency from an acquisition's completion (last byte written / final
    rename, as the spectrometer finishes it) to its row being committed in
    the store (``on_row`` fires after the commit): median and 95th percentile,
    for BES3T sweeps and Bruker expnos dripped in like a spectrometer writes;
  * the sustained rate (spectra/s) for a burst of spectra dropped at once.

Both with a minimal extractor (the ingest machinery alone: completion checks,
sha256, reading, SQLite commit) and with the package's default extractor
(``ingest.processing.observables.Extractor``: baseline, double integral, peak fits), when
it is importable.  The latency floor is ``settle_s`` (the stability the
watcher requires once a file has its full size; 0.2 s here, 1 s by default).

Usage::

    PYTHONPATH=. python benchmarks/bench_watcher.py [--n 60] [--burst 1000] [--settle 0.2] [--polling]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ingest.live.watch import Watcher  # noqa: E402
from test_watch import drip_bes3t, drip_bruker, make_epr, make_nmr, simple_row  # noqa: E402


def _latency(kind: str, n: int, settle: float, polling: bool, extractor, label: str) -> None:
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stage, watched = tmp / "stage", tmp / "watched"
        watched.mkdir()
        srcs = [make_epr(stage, i) if kind == "epr" else make_nmr(stage, i, n=4096) for i in range(n)]
        arrived: dict[str, float] = {}
        done_evt = threading.Event()

        def on_row(r: dict) -> None:
            src = Path(r["source"])
            if src.suffix.upper() in (".DTA", ".DSC"):  # extractors may name the data file
                src = src.with_suffix("")
            arrived[str(src.resolve())] = time.time()
            if len(arrived) >= n:
                done_evt.set()

        w = Watcher(watched, None, tmp / "store", extractor=extractor, on_row=on_row, polling=polling,
                    settle_s=settle, quiet_s=1.0, rescan_s=5.0, poll_interval_s=0.05)
        w.start()
        completed: dict[str, float] = {}
        for i, src in enumerate(srcs):
            if kind == "epr":
                dst = watched / f"s{i:04d}"
                completed[str(dst.resolve())] = drip_bes3t(src, dst, chunk=2048, pause=0.002, rename=bool(i % 2))
            else:
                dst = watched / f"{i + 1}"
                completed[str(dst.resolve())] = drip_bruker(src, dst, chunk=8192, pause=0.002, rename=bool(i % 2))
            time.sleep(0.25)  # one acquisition every ~0.25 s (much faster than real instruments)
        done_evt.wait(60)
        w.stop()
        lat = np.array([arrived[k] - completed[k] for k in completed if k in arrived])
        if len(lat) == 0:
            print(f"{label:<44s} no rows arrived")
            return
        print(f"{label:<44s} n={len(lat):4d}  median {1e3 * np.median(lat):7.1f} ms   "
              f"p95 {1e3 * np.percentile(lat, 95):7.1f} ms   max {1e3 * lat.max():7.1f} ms"
              + ("" if len(lat) == n else f"   MISSING {n - len(lat)}"))


def _burst(n: int, settle: float, polling: bool, extractor, label: str) -> None:
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        stage, watched = tmp / "stage", tmp / "watched"
        watched.mkdir()
        dsc, _ = make_epr(stage, 0)
        text = dsc.read_text()
        b = np.linspace(0.335, 0.345, 256)
        x = (b - 0.34) / 5e-4
        y = -2 * x / (1 + x**2) ** 2
        for i in range(n):
            (stage / f"b{i:05d}.DSC").write_text(text)
            (stage / f"b{i:05d}.DTA").write_bytes((y * (1 + i)).astype(">f8").tobytes())
        count = [0]
        done_evt = threading.Event()

        def on_row(r: dict) -> None:
            count[0] += 1
            if count[0] >= n:
                done_evt.set()

        w = Watcher(watched, None, tmp / "store", extractor=extractor, on_row=on_row, polling=polling,
                    settle_s=settle, quiet_s=1.0, rescan_s=5.0, poll_interval_s=0.05)
        w.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        for i in range(n):
            os.rename(stage / f"b{i:05d}.DSC", watched / f"b{i:05d}.DSC")
            os.rename(stage / f"b{i:05d}.DTA", watched / f"b{i:05d}.DTA")
        t_dropped = time.monotonic() - t0
        done_evt.wait(300)
        dt = time.monotonic() - t0
        w.stop()
        print(f"{label:<44s} {count[0]:5d}/{n} in {dt:6.2f} s  -> {count[0] / dt:7.1f} spectra/s "
              f"(drop took {t_dropped:.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60, help="spectra per latency run")
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=0.2)
    ap.add_argument("--polling", action="store_true")
    a = ap.parse_args()
    obs = "PollingObserver" if a.polling else "native observer (inotify)"
    print(f"watcher benchmark: {obs}, settle_s={a.settle}, {os.cpu_count()} CPUs (shared)")
    print("latency = row committed (on_row) - acquisition complete (last byte / rename)")
    _latency("epr", a.n, a.settle, a.polling, simple_row, "BES3T 256 pt, minimal extractor")
    _latency("nmr", a.n, a.settle, a.polling, simple_row, "Bruker 4k-point fid, minimal extractor")
    default = None
    try:
        from ingest.batch import make_extractor

        default = make_extractor()
    except Exception as e:  # noqa: BLE001
        print(f"(default extractor unavailable: {e})")
    if default is not None:
        _latency("epr", a.n, a.settle, a.polling, default, "BES3T 256 pt, default extractor")
        _latency("nmr", max(a.n // 2, 5), a.settle, a.polling, make_extractor(), "Bruker 4k-point fid, default extractor")
    print("sustained throughput, burst dropped at once:")
    _burst(a.burst, a.settle, a.polling, simple_row, f"{a.burst} x BES3T, minimal extractor")
    if default is not None:
        _burst(max(a.burst // 4, 10), a.settle, a.polling, make_extractor(), f"{max(a.burst // 4, 10)} x BES3T, default extractor")


if __name__ == "__main__":
    main()
