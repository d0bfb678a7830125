"""Benchmark: the live SOC row, :meth:`flowcell.live.session.LiveSession.on_row`, per spectrum.

The session as ``flowcell watch exp.toml --out DIR`` builds it on a terminal
(benchmarks/bench_watcher.py's ``_session``: potentiostat log, live SOC filter, rich table,
``live_soc.csv``), fed the rows of its Bruker 64k series (``make_nmr``, the default
observables, ``Extractor(fast=True)``).  After 20 rows of warm-up the series is replayed
``--repeats`` times, each pass two hours later (a long run, rows in order).  Prints the
worker-thread CPU medians (and p95) of ``on_row`` (potentiostat refresh, row clock, filter,
CSV line, table) and of the filter alone (:meth:`flowcell.live.estimator.LiveSOC.update`:
time step, unscented update, state), with the ratio of ``on_row`` to its 0.6 ms target
(its share of issue 13's 20 ms p95 from a finished file to its row).

History (2 shared cores): on_row 1.0-1.1 ms, the filter 0.76 ms at load 0.8 (dozens of numpy
calls on 7-element arrays: np.eye, np.diag, np.linalg's wrappers, np.ix_, concatenate; the
radical fraction of one point through the array code; pandas Timestamp arithmetic in the
row clock; ``dataclasses.replace`` and a dict per CSV line; a strided 4000-row copy per
potentiostat lookup).  Now ~0.5 ms and ~0.33 ms at load 1.5, the same numbers to the last
bit (tests/test_live_soc_speedups.py; benchmarks/bench_live_soc.py prints the same figures).

Usage::

    python benchmarks/bench_session_row.py [--repeats 6]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_watcher as bw

from flowcell.fit.pipeline import observables_config
from flowcell.live.session import LiveSession
from ingest.batch import _read_spectra, make_extractor

TARGET_S = 0.6e-3
WARMUP = 20


def _shifted(row: dict, dt: timedelta) -> dict:
    return {**row, **{k: row[k] + dt for k in ("time_start", "time_end", "time_mid") if row.get(k) is not None}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40, help="spectra replayed per pass (after the warm-up)")
    ap.add_argument("--repeats", type=int, default=6, help="passes over the series")
    a = ap.parse_args(argv)
    with bw.bruker_series(WARMUP + a.n) as (session, acqs):
        ex = make_extractor(observables_config(session.cfg))
        ex.fast = True
        rows = []
        for acq in acqs:
            row = dict(ex(_read_spectra(acq, None)[0]))
            row.setdefault("source", str(acq.key))
            rows.append(row)
        on_row = LiveSession.on_row  # the session's own (bench_watcher wraps the instance's)
        for r in rows[:WARMUP]:
            on_row(session, r)
        t_row: list[float] = []
        t_filter: list[float] = []
        for k in range(a.repeats):
            for r in rows[WARMUP:]:
                r2 = _shifted(r, timedelta(hours=2 * k + 1))
                t = time.thread_time()
                on_row(session, r2)
                t_row.append(time.thread_time() - t)
            for r in rows[WARMUP:]:  # the filter alone, on rows later still
                r2 = _shifted(r, timedelta(hours=2 * k + 1, minutes=50))
                t_s = session.clock.place(r2).t_s
                t = time.thread_time()
                session.estimator.update(r2, t_s)
                t_filter.append(time.thread_time() - t)
    med, p95 = float(np.median(t_row)), float(np.percentile(t_row, 95))
    print(f"live SOC row (session.on_row), Bruker 64k rows: {a.n} x {a.repeats} passes, CPU; "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"  on_row         median {1e3 * med:5.3f} ms  p95 {1e3 * p95:5.3f} ms   x{med / TARGET_S:.2f} of the "
          f"{1e3 * TARGET_S:.1f} ms target")
    print(f"  filter update  median {1e3 * float(np.median(t_filter)):5.3f} ms  "
          f"p95 {1e3 * float(np.percentile(t_filter, 95)):5.3f} ms")


if __name__ == "__main__":
    main()
