"""Benchmark of ``flowcell screen``: reprocessing (spectra/s) and fitting (experiments/min)
at 1 and 2 workers, and the speed-up.

Simulates a small screen once (``flowcell.screen.run.simulate_screen``: real Bruker 1H and
BES3T files), then runs :func:`flowcell.screen.run.screen` without the cache for each worker
count.  Reprocessing = ``reprocess_s`` (phase + chunk tasks + merge); fitting =
``fit_s`` (one task per experiment; the one-off sympy compile of the model is done in the
driver before the workers fork; with ``--executor dask`` the worker processes are started
and warmed before the clock starts, and that time is printed separately).

Usage::

    PYTHONPATH=. python benchmarks/bench_screen.py [--experiments 4] [--hours 2]
        [--interval 120] [--chunk-size 10] [--ci] [--executor local|dask] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _warm() -> None:
    """Worker warm-up: import the readers and compile the kinetic model."""
    import ingest.batch  # noqa: F401
    import ingest.processing.observables  # noqa: F401
    from flowcell.screen import run as scr
    scr._model("dhaq")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=4)
    ap.add_argument("--hours", type=float, default=2.0, help="simulated hours per experiment")
    ap.add_argument("--interval", type=float, default=120.0, help="s between spectrum pairs")
    ap.add_argument("--chunk-size", type=int, default=10, help="acquisitions per reprocessing task")
    ap.add_argument("--ci", action="store_true", help="profile-likelihood intervals in the fits (slower)")
    ap.add_argument("--executor", choices=("local", "dask"), default="local")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--keep", type=Path, default=None, help="simulate into this folder (reused if present)")
    args = ap.parse_args(argv)

    from flowcell.screen import run as scr

    tmp = None
    root = args.keep
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-screen-")
        root = Path(tmp.name)
    exp_dir = root / "experiments"
    t0 = time.perf_counter()
    model_s = 0.0
    if not exp_dir.exists():
        k_decs = [2e-6 * 2.2 ** i for i in range(args.experiments)]
        scr.simulate_screen(exp_dir, [{"name": f"exp{i:02d}", "params": {"k_dec": k}} for i, k in enumerate(k_decs)],
                            hours=args.hours, interval_s=args.interval)
        print(f"simulated {args.experiments} experiments ({args.hours:g} h, a spectrum pair every "
              f"{args.interval:g} s) in {time.perf_counter() - t0:.1f} s")
    else:
        tc = time.perf_counter()
        scr._model("dhaq")
        model_s = time.perf_counter() - tc
        print(f"compiled the kinetic model in {model_s:.1f} s (one-off, before the workers fork)")

    rows = []
    for w in args.workers:
        out = root / f"out_{args.executor}_{w}"
        ex: object = args.executor
        if args.executor == "dask":  # start the cluster and warm the workers outside the timings
            ex = scr.DaskExecutor(workers=w)
            tw = time.perf_counter()
            ex.client.run(_warm)
            print(f"dask: {w} worker process(es) started and warmed (imports, model compile) in "
                  f"{time.perf_counter() - tw:.1f} s")
        res = scr.screen(exp_dir, out, executor=ex, workers=w, free=("Kc", "k_dec", "J_e"),
                         conf_interval=args.ci, chunk_size=args.chunk_size, cache=False, report=False)
        if args.executor == "dask":
            ex.close()
        t = res.timings
        if res.failures:
            print(f"  {len(res.failures)} failure(s): " + "; ".join(str(f) for f in res.failures))
        rows.append((w, t["n_spectra"], t["reprocess_s"], t["n_fits"], t["fit_s"]))

    print()
    print(f"executor {args.executor}; {'with' if args.ci else 'without'} profile intervals; "
          f"chunk size {args.chunk_size}")
    print(f"{'workers':>7} {'spectra':>8} {'reproc s':>9} {'spectra/s':>10} {'fits':>5} {'fit s':>7} "
          f"{'exp/min':>8}")
    for w, ns, rs, nf, fs in rows:
        print(f"{w:>7} {int(ns):>8} {rs:>9.2f} {ns / rs:>10.2f} {int(nf):>5} {fs:>7.2f} {60 * nf / fs:>8.2f}")
    if len(rows) >= 2:
        (w1, ns1, rs1, nf1, fs1), (w2, ns2, rs2, nf2, fs2) = rows[0], rows[-1]
        print(f"speed-up {w1} -> {w2} workers: reprocessing x{(ns2 / rs2) / (ns1 / rs1):.2f}, "
              f"fitting x{(nf2 / fs2) / (nf1 / fs1):.2f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
