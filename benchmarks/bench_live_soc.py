"""The live SOC with no K_c given, over K_c = 0.01-10: accuracy, honesty of the ±2 sd, cost.

Experiments come from the independent generator (tests/generators/live_experiment.py: its own
speciation, Curie law, an unknown NMR cell factor and EPR calibration, 1.5 % of the charge lost
to a side reaction).  Target (issue 13): |SOC - truth| <= 0.02 after the first 30 min of
charge, truth inside ±2 sd >= 90 % of the time.

Usage::

    python benchmarks/bench_live_soc.py [--seeds 3]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_live_soc import charging_run, config, track  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    worst, inside_min, n_rows, cpu = 0.0, 1.0, 0, 0.0
    for K in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
        for seed in range(a.seeds):
            run = charging_run(K, seed=seed, loss=0.015, interval_s=90.0)
            t0 = time.process_time()
            f, out = track(run, config())
            cpu += time.process_time() - t0
            n_rows += len(out)
            late = [(s, sd, tr) for t, s, sd, tr, _ in out if t >= run.info["rest_s"] + 1800]
            err = max(abs(s - tr) for s, sd, tr in late)
            inside = float(np.mean([abs(s - tr) <= 2 * sd for s, sd, tr in late]))
            last = out[-1][4]
            worst, inside_min = max(worst, err), min(inside_min, inside)
            print(f"Kc {K:5g} seed {seed}: max|err| {err:.4f}  inside ±2 sd {inside:.2f}  "
                  f"Kc learnt {last.Kc:.3g} [{last.Kc_lo:.3g}, {last.Kc_hi:.3g}]  rejected {f.rejection_rate:.2f}")
    print(f"worst max|err| {worst:.4f} (target 0.02, ratio {worst / 0.02:.2f}); "
          f"worst fraction inside ±2 sd {inside_min:.2f} (target 0.90)")
    print(f"cost: {1e3 * cpu / n_rows:.2f} ms CPU per row (filter + row timing)")


if __name__ == "__main__":
    main()
