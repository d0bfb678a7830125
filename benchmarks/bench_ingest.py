"""Benchmark of batch reprocessing (``flowcell ingest``, screening's reprocess tasks): spectra/s
of 64k-point noisy 1H FIDs with the default observables, against the floor and the
per-spectrum path, at 1 and 2 workers, with peak memory.

Writes ``--files`` Bruker expnos (HDO + three DHAQ lines + methanol, phase error, digital
filter delay 67.98 points, fresh noise in every file) once, then, interleaved over
``--repeats`` rounds:

* floor: a bare numpy read of every ``fid`` + one complex FFT of the zero-filled size;
* exact floor: the read + the one transform processing needs (the zero-filled FFT; the
  digital-filter delay is a linear phase folded into the phase, docs/physics.md §5.1) as the
  engine runs it: four quarter-size transforms (bins by residue mod 4,
  ingest/processing/zf_fft.py) in complex64, the precision the batch engine proves harmless
  per series (ingest/processing/fft_precision.py), 16 spectra per call: the honest floor of
  processing;
* ``flowcell ingest FOLDER -o table.parquet`` in a fresh process at its defaults (what
  ships: start-up, discovery, reading, the batch engine in ``-j auto`` workers, writing),
  with its peak RSS, and the same with ``-j 1``;
* the batch engine (:func:`ingest.batch.ingest_paths`, ``workers=1`` and ``workers=2``,
  the shipped forked workers), spectra/s, next to the CPU calibration
  (benchmarks/_calib.py: how much of two cores was free) and the load average;
* the per-spectrum path (:class:`ingest.processing.observables.Extractor`) on a subset.

Floors (issue 15): >= 500 spectra/s on 2 cores; peak RSS <= 1 GB for 10,000 spectra
(``--rss-spectra 10000`` ingests the files repeatedly, in one process, to check it).

Usage::

    PYTHONPATH=. python benchmarks/bench_ingest.py [--files 600] [--repeats 3] [--rss-spectra 10000]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
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
    """Spectra/s of the floor: a bare numpy read of every ``fid`` + one complex FFT of the
    zero-filled size (1 process)."""
    t0 = time.perf_counter()
    for p in paths:
        w = np.frombuffer((p / "fid").read_bytes(), dtype="<i4")[: 2 * TD].astype(np.float64)
        np.fft.fft(w[0::2] + 1j * w[1::2], 2 * TD)
    return len(paths) / (time.perf_counter() - t0)


def floor_exact(paths: list[Path], chunk: int = 16) -> float:
    """Spectra/s of the processing floor: the read + the zero-filled FFT (2 TD) in the batch
    engine's layout, four quarter-size transforms (bins 4j + r: the rows ``a + b``,
    ``(a - ib) w``, ``(a - b) w**2``, ``(a + ib) w**3`` of the FID's halves ``a``, ``b``,
    ingest/processing/zf_fft.py), in place, complex64, ``chunk`` spectra per call (1 process)."""
    import scipy.fft
    q = TD // 2
    x = np.empty((chunk, TD), np.complex64)
    u = np.empty((chunk, 4, q), np.complex64)
    t = np.arange(q)
    tw = np.exp(-2j * np.pi * np.arange(4)[:, None] * t / (2 * TD)).astype(np.complex64)
    t0 = time.perf_counter()
    for i in range(0, len(paths), chunk):
        block = paths[i:i + chunk]
        for j, p in enumerate(block):
            w = np.frombuffer((p / "fid").read_bytes(), dtype="<i4")[: 2 * TD]
            x[j].real, x[j].imag = w[0::2], w[1::2]
        b = len(block)
        a, c = x[:b, :q], x[:b, q:]
        np.add(a, c, out=u[:b, 0])
        np.subtract(a, 1j * c, out=u[:b, 1])
        np.subtract(a, c, out=u[:b, 2])
        np.add(a, 1j * c, out=u[:b, 3])
        u[:b, 1:] *= tw[1:]
        scipy.fft.fft(u[:b], axis=-1, workers=1, overwrite_x=True)
    return len(paths) / (time.perf_counter() - t0)


def engine(paths: list[Path], workers: int) -> float:
    """Spectra/s of :func:`ingest.batch.ingest_paths` (what ``flowcell ingest`` runs) with
    ``workers`` processes, in this process (imports done, numba's fits compiled)."""
    from ingest.batch import ingest_paths
    t0 = time.perf_counter()
    n = len(ingest_paths(paths, workers=workers).table)
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


def cli(folder: Path, out: Path, workers: str = "auto") -> tuple[float, float]:
    """``flowcell ingest FOLDER -o OUT`` in a fresh process (its defaults; ``-j`` when given):
    (spectra/s including start-up, peak RSS MB of the process and its workers)."""
    code = ("import resource, runpy, sys; sys.argv = sys.argv[1:]\n"
            "try:\n    runpy.run_module('flowcell', run_name='__main__')\nexcept SystemExit as e:\n"
            "    r = resource.getrusage; mb = max(r(resource.RUSAGE_SELF).ru_maxrss, "
            "r(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024\n"
            "    print(f'RSS {mb:.0f}'); raise\n")
    args = ["flowcell", "ingest", str(folder), "-o", str(out), "--no-progress"]
    if workers != "auto":
        args += ["-j", workers]
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    n = int(r.stdout.split()[0])
    rss = float(r.stdout.split("RSS ")[-1].split()[0])
    return n / dt, rss


_RSS = """
import resource, sys
from pathlib import Path
from ingest.batch import ingest_paths
paths = [Path(p) for p in sys.argv[2:]]
reps = int(sys.argv[1]) // len(paths) + 1
res = ingest_paths((paths * reps)[: int(sys.argv[1])])
print(len(res.table), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
"""


def _spread(v: list[float]) -> str:
    return f"(median of {len(v)}; {min(v):.0f}-{max(v):.0f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--subset", type=int, default=40, help="files for the per-spectrum reference")
    ap.add_argument("--rss-spectra", type=int, default=0, help="also ingest this many spectra in one process")
    args = ap.parse_args(argv)
    from ingest.batch import ingest_paths
    from flowcell.cli.ingest import default_workers
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        root = Path(d) / "nmr"
        t0 = time.perf_counter()
        paths = write_files(root, args.files)
        print(f"wrote {args.files} expnos ({TD}-point noisy FIDs) in {time.perf_counter() - t0:.1f} s; "
              f"`flowcell ingest` default workers here: {default_workers()}")
        from ingest.processing.lorentz_batch import load_compiled
        load_compiled()  # numba's cached kernels, as ingest_paths loads them from 200 files on
        ingest_paths(paths[:4])  # warm: imports
        keys = ("floor", "floor64", "cli", "cli1", "rss", "e1", "e2", "ref", "cap", "alone", "load")
        f: dict[str, list[float]] = {k: [] for k in keys}
        for r in range(args.repeats):
            f["load"].append(os.getloadavg()[0])
            f["floor"].append(floor(paths))
            f["floor64"].append(floor_exact(paths))
            c = parallel_capacity(2)
            f["cap"].append(c["capacity"])
            f["alone"].append(c["alone_s"])
            for w in ((1, 2) if r % 2 == 0 else (2, 1)):
                f[f"e{w}"].append(engine(paths, w))
            c, rss = cli(root, Path(d) / f"t{r}.parquet")
            f["cli"].append(c)
            f["rss"].append(rss)
            f["cli1"].append(cli(root, Path(d) / f"u{r}.parquet", "1")[0])
            f["ref"].append(per_spectrum(paths[: args.subset]))
        med = {k: statistics.median(v) for k, v in f.items()}
        sp = {k: _spread(v) for k, v in f.items()}
        print(f"\n{args.files} spectra, {args.repeats} interleaved rounds; spectra/s; load average "
              f"{min(f['load']):.1f}-{max(f['load']):.1f}; CPU calibration: 2 processes could run "
              f"x{med['cap']:.2f} of one (2.00 = two free cores); the calibration job alone took "
              f"{med['alone'] * 1e3:.0f} ms (the cores' own speed: it grows when the host slows them all)")
        print(f"  floor (numpy read + FFT, 1 process)        {med['floor']:7.0f} {sp['floor']}")
        print(f"  exact floor (read + 4 quarter FFTs, c64, x16) {med['floor64']:7.0f} {sp['floor64']}")
        print(f"  batch engine, 1 worker                     {med['e1']:7.0f} {sp['e1']}   "
              f"= {med['floor'] / med['e1']:.1f}x the floor's time, "
              f"{med['floor64'] / med['e1']:.1f}x the exact floor's")
        print(f"  batch engine, 2 workers                    {med['e2']:7.0f} {sp['e2']}   "
              f"x{med['e2'] / med['e1']:.2f} over 1 worker; {med['e2'] / FLOOR_PER_S:.2f}x the 500/s target")
        print(f"  flowcell ingest, defaults (fresh process)  {med['cli']:7.0f} {sp['cli']}   "
              f"peak RSS {max(f['rss']):.0f} MB")
        print(f"  flowcell ingest -j 1 (fresh process)       {med['cli1']:7.0f} {sp['cli1']}")
        print(f"  per-spectrum Extractor, 1 worker           {med['ref']:7.0f} {sp['ref']}   "
              f"-> batch engine x{med['e1'] / med['ref']:.1f} faster")
        cal = (f"(load {statistics.median(f['load']):.1f}, calibration x{med['cap']:.2f} of 2 free cores, "
               f"its job alone {med['alone'] * 1e3:.0f} ms)")
        print(f"RESULT | batch reprocessing, 2 workers, 64k 1H FIDs, default observables | {med['e2']:.0f} spectra/s "
              f"{cal} | >= {FLOOR_PER_S:.0f}/s | {med['e2'] / FLOOR_PER_S:.2f}")
        print(f"RESULT | batch reprocessing, 1 worker | {med['e1']:.0f} spectra/s | floor {med['floor']:.0f}/s "
              f"(numpy read + FFT) | {med['e1'] / med['floor']:.2f}")
        print(f"RESULT | batch reprocessing, 1 worker, vs exact processing's floor | {med['e1']:.0f} spectra/s | "
              f"floor {med['floor64']:.0f}/s (numpy read + the zero-filled FFT as four quarters, complex64, 16 per call) | "
              f"{med['e1'] / med['floor64']:.2f}")
        print(f"RESULT | `flowcell ingest` of {args.files} files, defaults, fresh process | {med['cli']:.0f} spectra/s "
              f"| floor {med['floor']:.0f}/s | {med['cli'] / med['floor']:.2f}")
        print(f"RESULT | batch engine vs per-spectrum Extractor, 1 worker | x{med['e1'] / med['ref']:.1f} | - | -")
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
