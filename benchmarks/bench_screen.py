"""Benchmark of ``flowcell screen``: reprocessing (spectra/s) and fitting (experiments/min)
at 1 and 2 workers, the speed-up, and what the machine could give at that moment.

Simulates a screen once (``flowcell.screen.run.simulate_screen``: Bruker 1H expnos with
noisy 64k-point FIDs and BES3T EPR files), then runs :func:`flowcell.screen.run.screen`
without the cache at the command's defaults (chunk size 50, free Kc,k_dec,J_e, profile
intervals on; ``--no-ci`` to skip them) for 1 and 2 workers, **interleaved** (1, 2, 2, 1,
1, 2, ...) over ``--repeats`` rounds.  Figures are medians with the spread (min-max).

A CPU-calibration job (benchmarks/_calib.py: fixed FFT work, alone and two at once) runs
next to every round: ``capacity`` = the speed-up two processes could get from the machine
right then (2.0 when both cores are free).  The floor of issue 15 is a 1 -> 2 worker speed-up
of 1.8 on two free cores; the printed ``ratio`` is speed-up / (1.8 x capacity / 2).

Usage::

    PYTHONPATH=. python benchmarks/bench_screen.py [--experiments 4] [--hours 2]
        [--interval 120] [--td 65536] [--repeats 3] [--no-ci] [--keep DIR]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _calib import parallel_capacity  # noqa: E402

FLOOR_SPEEDUP = 1.8


def _simulate(exp_dir: Path, args: argparse.Namespace) -> None:
    from flowcell.screen import run as scr
    t0 = time.perf_counter()
    k_decs = [2e-6 * 2.2 ** i for i in range(args.experiments)]
    scr.simulate_screen(exp_dir, [{"name": f"exp{i:02d}", "params": {"k_dec": k}} for i, k in enumerate(k_decs)],
                        hours=args.hours, interval_s=args.interval, small=False, nmr_td=args.td)
    print(f"simulated {args.experiments} experiments ({args.hours:g} h, a spectrum pair every "
          f"{args.interval:g} s, {args.td}-point FIDs) in {time.perf_counter() - t0:.1f} s")


def _spread(v: list[float]) -> str:
    return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=4)
    ap.add_argument("--hours", type=float, default=2.0, help="simulated hours per experiment")
    ap.add_argument("--interval", type=float, default=120.0, help="s between spectrum pairs")
    ap.add_argument("--td", type=int, default=65536, help="complex points per FID")
    ap.add_argument("--chunk-size", type=int, default=50, help="acquisitions per task (command default 50)")
    ap.add_argument("--no-ci", action="store_true", help="skip the profile intervals (the command's --no-ci)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds of (1, 2) workers")
    ap.add_argument("--keep", type=Path, default=None, help="simulate into this folder (reused if present)")
    args = ap.parse_args(argv)

    from flowcell.screen import run as scr

    tmp = None
    root = args.keep
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-screen-")
        root = Path(tmp.name)
    exp_dir = root / "experiments"
    if not exp_dir.exists():
        _simulate(exp_dir, args)
    scr._model("dhaq")  # compiled in the driver (as screen() does) before the first fork
    res: dict[int, dict[str, list[float]]] = {w: {"rep": [], "fit": []} for w in (1, 2)}
    caps: list[float] = []
    for r in range(args.repeats):
        for w in ((1, 2) if r % 2 == 0 else (2, 1)):
            caps.append(parallel_capacity(2)["capacity"])
            out = root / f"out_{w}_{r}"
            s = scr.screen(exp_dir, out, workers=w, conf_interval=not args.no_ci, chunk_size=args.chunk_size,
                           cache=False, report=False)
            t = s.timings
            if s.failures:
                print(f"  {len(s.failures)} failure(s): " + "; ".join(str(f) for f in s.failures))
            res[w]["rep"].append(t["n_spectra"] / t["reprocess_s"])
            res[w]["fit"].append(60.0 * t["n_fits"] / t["fit_s"])
            print(f"  round {r + 1}, {w} worker(s): {t['n_spectra']:.0f} spectra in {t['reprocess_s']:.1f} s, "
                  f"{t['n_fits']:.0f} fits in {t['fit_s']:.1f} s (capacity now {caps[-1]:.2f})")
    cap = statistics.median(caps)
    print(f"\nflowcell screen defaults (chunk {args.chunk_size}, intervals {'off' if args.no_ci else 'on'}); "
          f"medians (min-max) of {args.repeats} interleaved rounds")
    print(f"{'workers':>7}  {'reprocess spectra/s':>22}  {'fits exp/min':>20}")
    for w in (1, 2):
        print(f"{w:>7}  {_spread(res[w]['rep']):>22}  {_spread(res[w]['fit']):>20}")
    print(f"CPU calibration: 2 processes could run {cap:.2f}x one (median; 2.00 = two free cores)")
    for stage in ("rep", "fit"):
        sp = statistics.median(res[2][stage]) / statistics.median(res[1][stage])
        name = "reprocessing" if stage == "rep" else "fitting"
        print(f"speed-up 1 -> 2 workers, {name}: x{sp:.2f}; floor x{FLOOR_SPEEDUP} on free cores -> "
              f"ratio {sp / (FLOOR_SPEEDUP * cap / 2):.2f} (>= 1 meets it at this capacity)")
        print(f"RESULT | `flowcell screen` 1 -> 2 workers, {name} | x{sp:.2f} (calibration x{cap:.2f}) | "
              f">= x{FLOOR_SPEEDUP} on 2 free cores | {sp / (FLOOR_SPEEDUP * cap / 2):.2f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
