"""Benchmark of batch reprocessing (``flowcell ingest``, screening's reprocess tasks): spectra/s
of 64k-point noisy 1H FIDs with the default observables, against the floor and the
per-spectrum path, at 1 and 2 workers, with peak memory.

Writes ``--files`` Bruker expnos (HDO + three DHAQ lines + methanol, phase error, digital
filter delay 67.98 points, fresh noise in every file) once, then, interleaved over
``--repeats`` rounds:

* floor: a bare numpy read of every ``fid`` + one complex FFT of the zero-filled size;
* ``flowcell ingest FOLDER -o table.parquet`` in a fresh process (what ships: start-up,
  discovery, reading, the batch engine, writing), with its peak RSS;
* the batch engine (:func:`ingest.batch.ingest_paths`) in 1 and in 2 worker processes
  (the files split in two halves), spectra/s, next to the CPU calibration
  (benchmarks/_calib.py: how much of two cores was free);
* the per-spectrum path (:class:`ingest.processing.observables.Extractor`) on a subset.

Floors (issue 15): >= 500 spectra/s on 2 cores; peak RSS <= 1 GB for 10,000 spectra
(``--rss-spectra 10000`` ingests the files repeatedly, in one process, to check it).

Usage::

    PYTHONPATH=. python benchmarks/bench_ingest.py [--files 600] [--repeats 3] [--rss-spectra 10000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _calib import parallel_capacity  # noqa: E402

FLOOR_PER_S = 500.0
SF, SW, CAR, GD, TD = 400.13e6, 8012.8, 4.7, 67.98, 65536


def write_files(root: Path, n: int) -> list[Path]:
    """``n`` Bruker expnos with noisy FIDs (the package's writer; lines from nmr_sim)."""
    from ingest.processing.nmr_sim import simulate_fid
    from ingest.readers.nmr_writers import write_bruker_1d
    lines = [(4.79, 10.0, 1.0), (7.45, 1.0, 3.0), (7.05, 1.0, 3.0), (7.72, 1.0, 3.0), (3.34, 0.2, 1.0)]
    base = simulate_fid(lines, td=TD, sw_hz=SW, sfo1_hz=SF, carrier_ppm=CAR, phase_deg=-40.0, group_delay=GD)
    rng = np.random.default_rng(0)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    out = []
    for k in range(n):
        fid = base + 2e-3 * (rng.standard_normal(TD) + 1j * rng.standard_normal(TD))
        out.append(write_bruker_1d(root / str(10 + k), fid, sfo1_hz=SF, sw_hz=SW, carrier_ppm=CAR,
                                   start=t0 + timedelta(minutes=k), end=t0 + timedelta(minutes=k, seconds=50),
                                   group_delay=GD))
    return out


def floor(paths: list[Path]) -> float:
    t0 = time.perf_counter()
    for p in paths:
        w = np.frombuffer((p / "fid").read_bytes(), dtype="<i4")[: 2 * TD].astype(np.float64)
        np.fft.fft(w[0::2] + 1j * w[1::2], 2 * TD)
    return len(paths) / (time.perf_counter() - t0)


def _engine(paths: list[Path]) -> int:
    from ingest.batch import ingest_paths
    return len(ingest_paths(paths).table)


def engine(paths: list[Path], workers: int) -> float:
    """Spectra/s of the batch engine, the files split over ``workers`` forked processes."""
    import ingest.batch  # noqa: F401  imports before forking
    halves = [paths[i::workers] for i in range(workers)]
    t0 = time.perf_counter()
    if workers == 1:
        n = _engine(paths)
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            n = sum(pool.map(_engine, halves))
    return n / (time.perf_counter() - t0)


def per_spectrum(paths: list[Path]) -> float:
    from ingest.processing.observables import Extractor
    from ingest.readers.dispatch import read_rows
    ex = Extractor()
    t0 = time.perf_counter()
    for p in paths:
        for s in read_rows(p):
            ex(s)
    return len(paths) / (time.perf_counter() - t0)


def cli(folder: Path, out: Path) -> tuple[float, float]:
    """``flowcell ingest`` in a fresh process: (spectra/s including start-up, peak RSS MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "flowcell", "ingest", str(folder), "-o", str(out), "--no-progress"],
                       capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    n = int(r.stdout.split()[0])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return n / dt, max(rss, before) / 1024.0


_RSS = """
import resource, sys
from pathlib import Path
from ingest.batch import ingest_paths
paths = [Path(p) for p in sys.argv[2:]]
reps = int(sys.argv[1]) // len(paths) + 1
res = ingest_paths((paths * reps)[: int(sys.argv[1])])
print(len(res.table), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--subset", type=int, default=40, help="files for the per-spectrum reference")
    ap.add_argument("--rss-spectra", type=int, default=0, help="also ingest this many spectra in one process")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        root = Path(d) / "nmr"
        t0 = time.perf_counter()
        paths = write_files(root, args.files)
        print(f"wrote {args.files} expnos ({TD}-point noisy FIDs) in {time.perf_counter() - t0:.1f} s")
        f: dict[str, list[float]] = {k: [] for k in ("floor", "cli", "rss", "e1", "e2", "ref", "cap")}
        for r in range(args.repeats):
            f["floor"].append(floor(paths))
            c, rss = cli(root, Path(d) / f"t{r}.parquet")
            f["cli"].append(c)
            f["rss"].append(rss)
            f["cap"].append(parallel_capacity(2)["capacity"])
            for w in ((1, 2) if r % 2 == 0 else (2, 1)):
                f[f"e{w}"].append(engine(paths, w))
            f["ref"].append(per_spectrum(paths[: args.subset]))
        med = {k: statistics.median(v) for k, v in f.items()}
        rng = {k: f"({min(v):.0f}-{max(v):.0f})" for k, v in f.items()}
        print(f"\n{args.files} spectra, medians (min-max) of {args.repeats} interleaved rounds; spectra/s")
        print(f"  floor (numpy read + FFT, 1 process)      {med['floor']:7.0f} {rng['floor']}")
        print(f"  flowcell ingest (fresh process, 1 core)  {med['cli']:7.0f} {rng['cli']}   "
              f"= {med['floor'] / med['cli']:.1f}x the floor's time; peak RSS {max(f['rss']):.0f} MB")
        print(f"  batch engine, 1 worker                   {med['e1']:7.0f} {rng['e1']}")
        print(f"  batch engine, 2 workers                  {med['e2']:7.0f} {rng['e2']}   "
              f"= {med['e2'] / FLOOR_PER_S:.2f}x the 500/s floor; x{med['e2'] / med['e1']:.2f} over 1 worker "
              f"(CPU calibration: 2 processes could run x{med['cap']:.2f})")
        print(f"  per-spectrum Extractor, 1 worker         {med['ref']:7.0f} {rng['ref']}   "
              f"-> batch engine x{med['e1'] / med['ref']:.1f} faster")
        print(f"RESULT | batch reprocessing, 2 workers, 64k 1H FIDs, default observables | {med['e2']:.0f} spectra/s "
              f"(calibration x{med['cap']:.2f} of 2 free cores) | >= {FLOOR_PER_S:.0f}/s | {med['e2'] / FLOOR_PER_S:.2f}")
        print(f"RESULT | batch engine vs per-spectrum Extractor, 1 worker | x{med['e1'] / med['ref']:.1f} | - | -")
        print(f"RESULT | `flowcell ingest` of {args.files} files, fresh process | {med['cli']:.0f} spectra/s = "
              f"{med['floor'] / med['cli']:.1f}x a bare numpy read + FFT | - | -")
        if args.rss_spectra:
            r = subprocess.run([sys.executable, "-c", _RSS, str(args.rss_spectra), *map(str, paths)],
                               capture_output=True, text=True, env={**os.environ})
            n, mb = r.stdout.split()
            print(f"  {n} spectra in one ingest: peak RSS {float(mb):.0f} MB "
                  f"({float(mb) / 1024:.2f}x the 1 GB ceiling)")
            print(f"RESULT | peak RSS, {n} spectra in one ingest | {float(mb):.0f} MB | <= 1024 MB | "
                  f"{float(mb) / 1024:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
