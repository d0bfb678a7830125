"""Where the wall time of a 2-worker batch ingest goes: the serial parts around the workers.

Runs :func:`ingest.batch.ingest_paths` (``workers=2``, the shipped forked run) on
bench_ingest's noisy 64k-point 1H expnos, ``--reps`` times, with timers wrapped around the
engine's own steps (nothing else changes), and prints, as medians in ms:

* resolve: the paths made acquisitions (``ingest.batch._resolve``);
* set-up: the series of the first block set up in the parent (``ingest.batch._set_up_head``:
  the phase, noise, baseline points and precision every worker shares; the other core idles
  meanwhile);
* start: from then to the first block begun (the worker's fork);
* workers: from then to the last block ended (the parent makes the first block's rows, then
  takes blocks as the forked worker does), with how busy the two cores were;
* exit: from the last block to the table being built (results back, the worker joined, the
  merge in block order);
* tidy: the table (``ingest.live.store.tidy``);
* the whole run, its spectra/s and the share of the wall time in serial parts, with the CPU
  calibration (benchmarks/_calib.py, run before each repeat: how much of two cores was free).

Usage::

    PYTHONPATH=. python benchmarks/bench_ingest_timeline.py [--n 600] [--reps 5] [--files DIR]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_batch_stages as bs  # its files() writes bench_ingest's expnos once
from _calib import parallel_capacity


def run_once(paths: list[Path], log: Path) -> dict[str, float]:
    """One timed ``ingest_paths(paths, workers=2)``; the phases in ms."""
    import ingest.batch as b
    marks: dict[str, float] = {}
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    orig = {k: getattr(b, k) for k in ("_resolve", "_set_up_head", "_run_block", "tidy")}

    def marked(name: str):
        """``orig[name]`` with its start and end times kept in ``marks[name]``, ``marks[name + "_end"]``."""
        def wrapper(*a, **k):
            marks[name] = time.perf_counter()
            out = orig[name](*a, **k)
            marks[name + "_end"] = time.perf_counter()
            return out
        return wrapper

    def run_block(*a, **k):
        t0 = time.perf_counter()
        out = orig["_run_block"](*a, **k)
        t1 = time.perf_counter()
        os.write(fd, f"{os.getpid()} {t0!r} {t1!r}\n".encode())  # one line per block (O_APPEND: whole lines)
        return out

    b._resolve, b._set_up_head, b._run_block, b.tidy = (marked("_resolve"), marked("_set_up_head"), run_block,
                                                        marked("tidy"))
    try:
        t0 = time.perf_counter()
        n = len(b.ingest_paths(paths, workers=2).table)
        t1 = time.perf_counter()
    finally:
        for k, v in orig.items():
            setattr(b, k, v)
        os.close(fd)
    spans = [tuple(map(float, ln.split()[1:])) for ln in log.read_text().splitlines()]
    w0, w1 = min(s for s, _ in spans), max(e for _, e in spans)
    busy = sum(e - s for s, e in spans)
    ms = {
        "resolve": marks["_resolve_end"] - t0,
        "set-up": marks["_set_up_head_end"] - marks["_set_up_head"],
        "start": w0 - marks["_set_up_head_end"],
        "workers": w1 - w0,
        "exit": marks["tidy"] - w1,
        "tidy": marks["tidy_end"] - marks["tidy"],
        "whole": t1 - t0,
    }
    out = {k: v * 1e3 for k, v in ms.items()}
    out["busy"] = busy / (2 * (w1 - w0))
    out["per_s"] = n / (t1 - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--files", type=Path, default=None, help="folder for the expnos (kept; default: a temporary one)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = bs.files(a.files or Path(tmp) / "nmr", a.n)
        from ingest.batch import ingest_paths
        ingest_paths(paths[:4])  # imports, numba's cached kernels
        ingest_paths(paths, workers=2)  # warm
        runs, caps, alone = [], [], []
        for _ in range(a.reps):
            c = parallel_capacity(2)
            caps.append(c["capacity"])
            alone.append(c["alone_s"])
            runs.append(run_once(paths, Path(tmp) / "spans.log"))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    load = os.getloadavg()[0]
    cap, job = statistics.median(caps), statistics.median(alone) * 1e3
    print(f"{a.n} spectra, ingest_paths(workers=2), median of {a.reps} runs (load {load:.1f}; CPU calibration "
          f"x{cap:.2f}, 2.00 = two free cores, its job alone {job:.0f} ms, benchmarks/_calib.py); ms of wall time")
    for k in ("resolve", "set-up", "start", "workers", "exit", "tidy"):
        lo, hi = min(r[k] for r in runs), max(r[k] for r in runs)
        extra = f"   cores busy {med['busy']:.0%}" if k == "workers" else ""
        print(f"  {k:<8} {med[k]:8.1f}  ({lo:.1f}-{hi:.1f}){extra}")
    serial = med["whole"] - med["workers"]
    print(f"  {'whole':<8} {med['whole']:8.1f}   {med['per_s']:.0f} spectra/s; outside the workers' span "
          f"{serial:.0f} ms ({serial / med['whole']:.0%})")
    print(f"RESULT | 2-worker ingest of {a.n} spectra, wall time outside the workers' span (calibration x{cap:.2f}, "
          f"job alone {job:.0f} ms) "
          f"| {serial:.0f} ms | whole run {med['whole']:.0f} ms ({med['per_s']:.0f} spectra/s) | {serial / med['whole']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
