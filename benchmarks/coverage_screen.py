"""Coverage of the screen's 95 % intervals: how many true k_dec (and Kc) fall inside?

Simulates ``N`` experiments (``flowcell.screen.run.simulate_screen``: real Bruker 1H and
BES3T files, the demo cell, k_dec = 2e-6 x 2.2^i 1/s, true Kc 0.0967) at each
spectrum spacing, runs :func:`flowcell.screen.run.screen` serially with profile-likelihood
intervals (the ``flowcell fit`` path, :mod:`flowcell.fit.pipeline`), and prints per
experiment the fitted k_dec, its interval and the offset from the truth, then the
count inside.  With 95 % intervals, about 0.95 N should be inside.

Usage::

    PYTHONPATH=. python benchmarks/coverage_screen.py [--n 4] [--hours 2] [--spacing 120 300]
        [--keep DIR] [--free Kc,k_dec,J_e]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
import tempfile
import time
import warnings
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="experiments per spacing")
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--spacing", type=float, nargs="+", default=[120.0, 300.0], help="s between spectrum pairs")
    ap.add_argument("--free", default="Kc,k_dec,J_e")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="work folder (simulations reused if present)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    from flowcell.screen import run as scr

    tmp = None
    root = args.keep
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="coverage-screen-")
        root = Path(tmp.name)
    free = [s.strip() for s in args.free.split(",") if s.strip()]
    summary = []
    for sp in args.spacing:
        exp_dir = root / f"experiments_{int(sp)}s"
        t0 = time.perf_counter()
        if not exp_dir.exists():
            k_decs = [2e-6 * 2.2 ** i for i in range(args.n)]
            scr.simulate_screen(exp_dir, [{"name": f"exp{i:02d}", "params": {"k_dec": k}} for i, k in enumerate(k_decs)],
                                hours=args.hours, interval_s=sp, seed=args.seed)
        res = scr.screen(exp_dir, root / f"out_{int(sp)}s", executor="serial", free=free, conf_interval=True,
                         cache=False, report=False)
        t = res.table.set_index("experiment")
        print(f"\nspacing {sp:g} s ({args.n} experiments, {args.hours:g} h, {time.perf_counter() - t0:.0f} s)")
        for name, r in t.iterrows():
            tv = r["k_dec_true"]
            print(f"  {name}: k_dec {r['k_dec']:.5g} [{r['k_dec_lo']:.5g}, {r['k_dec_hi']:.5g}] true {tv:.5g} "
                  f"(fit/true - 1 = {r['k_dec'] / tv - 1:+.4f}, lo/true - 1 = {r['k_dec_lo'] / tv - 1:+.4f}, "
                  f"hi/true - 1 = {r['k_dec_hi'] / tv - 1:+.4f})  inside: {bool(r['k_dec_inside'])}")
        for p in ("k_dec", "Kc"):
            ins = int(t[f"{p}_inside"].astype(bool).sum())
            summary.append(f"spacing {sp:g} s: {p} true value inside its 95 % interval in {ins} of {len(t)}")
    print()
    print("\n".join(summary))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
