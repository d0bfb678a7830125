"""Benchmark: the live NMR row of one spectrum (the line fits, their refinement and checks).

On ``flowcell watch``'s Bruker 64k series (benchmarks/bench_watcher.py's ``make_nmr``, the
default observables of its experiment file, ``Extractor(fast=True)`` as the watcher builds
it), the worker-thread CPU of :func:`ingest.processing.observables._nmr_row` per spectrum
(the window offset, 12 windows: 7 Lorentzian fits, 3 windows without a line above the noise,
2 windowed integrals; the width refinement and the assignment checks), and of the whole
extraction.  Medians over the series, ``--repeats`` passes interleaved.

Printed with their ratios to:

* floor: the compiled Levenberg-Marquardt iterations themselves
  (:func:`ingest.processing.lorentz_nb.lm_lorentz`, counted inside the same rows): what
  the row cannot go below without changing the fits;
* target: 2.5 ms, the row's share of issue 13's 20 ms p95 from a finished FID to its row.

History (2 shared cores; interleaved runs, load average 1.5-1.6): the row took 4.4-4.5 ms,
x5.8 of its floor of 0.75-0.79 ms (a Python half-height walk, 40 partition medians, 13
bisections through ``np.searchsorted``'s wrapper, the fit's bounds in 5-element arrays, the
covariance through ``np.linalg.inv``, ``dataclasses.replace`` for the error inflation, the
followed line's top through a mask over 8k points).  Now 2.2-2.3 ms, x3.9-4.0 of a floor of
0.57 ms, the same numbers to the last bit (tests/test_row_speedups.py): the window start
(edge medians, maximum, half-height crossings) in one compiled pass, the fit's bounds and
start on floats, the covariance through the LAPACK inverse without its wrapper, the error
inflation folded into the result, the unit-weight normal equations without multiplications
by 1 and with register accumulators (the LM ~25 % faster), the followed line's top by
bisection, in-place windowed sums, and the same-line check skipped when no two centres are
close.

Usage::

    python benchmarks/bench_live_row.py [--n 40] [--repeats 3]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_watcher as bw

import ingest.processing.observables as obs
from flowcell.fit.pipeline import observables_config
from ingest.batch import _read_spectra, make_extractor
from ingest.processing import lorentz_nb

TARGET_S = 2.5e-3


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40, help="spectra in the series (after the first)")
    ap.add_argument("--repeats", type=int, default=3, help="passes over the series")
    a = ap.parse_args(argv)
    with bw.bruker_series(a.n + 1) as (session, acqs):
        cfg = observables_config(session.cfg)
        specs = [_read_spectra(acq, None)[0] for acq in acqs]
    kern = lorentz_nb.load_kernels()
    rows: list[float] = []   # CPU of each row
    lms: list[float] = []    # CPU of the compiled LM inside each row
    totals: list[float] = []  # CPU of each whole extraction
    if kern is not None:  # the floor: the compiled LM's own time inside the rows
        lm = kern.lm_lorentz

        def timed_lm(*args):
            t = time.thread_time()
            out = lm(*args)
            lms[-1] += time.thread_time() - t
            return out

        kern.lm_lorentz = timed_lm
    row = obs._nmr_row

    def timed_row(*args, **kw):
        lms.append(0.0)
        t = time.thread_time()
        out = row(*args, **kw)
        rows.append(time.thread_time() - t)
        return out

    for _ in range(a.repeats):
        ex = make_extractor(cfg)
        ex.fast = True
        obs._nmr_row = row
        ex(specs[0])  # phase and series plan: not timed
        obs._nmr_row = timed_row
        for sp in specs[1:]:
            t = time.thread_time()
            ex(sp)
            totals.append(time.thread_time() - t)
    obs._nmr_row = row
    med_row, med_tot = float(np.median(rows)), float(np.median(totals))
    med_lm = float(np.median(lms)) if kern is not None else float("nan")
    print(f"live NMR row, Bruker 64k: {a.n} spectra x {a.repeats} passes, CPU medians; "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"  row (fits, refine, warnings)  {1e3 * med_row:6.2f} ms   x{med_row / TARGET_S:.2f} of the 2.5 ms "
          f"target, x{med_row / med_lm:.2f} of the floor (p95 {1e3 * float(np.percentile(rows, 95)):.2f} ms)")
    print(f"  floor: compiled LM in the row {1e3 * med_lm:6.2f} ms")
    print(f"  extraction (process + row)    {1e3 * med_tot:6.2f} ms")


if __name__ == "__main__":
    main()
