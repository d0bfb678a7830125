"""Benchmark: ``flowcell --help`` and every subcommand's ``--help`` against a bare Python start.

Each command runs in a fresh interpreter, interleaved with ``python -c pass`` (the floor)
over ``--repeats`` rounds; medians with the spread, and the ratio to the floor (issue 15:
<= 5x).  tests/test_help_imports.py checks that none of them imports numpy, pandas, scipy
or sympy.

Usage::

    PYTHONPATH=. python benchmarks/bench_cli_startup.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CEILING = 5.0
COMMANDS = [[], ["demo"], ["simulate"], ["watch"], ["fit"], ["ingest"], ["screen"]]


def _run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def measure(repeats: int = 9) -> list[tuple[str, float, float, float, float]]:
    """Rows (command, median s, min s, max s, median ratio to the bare start)."""
    times: dict[str, list[float]] = {"python -c pass": []}
    ratios: dict[str, list[float]] = {}
    for _ in range(repeats):
        for cmd in COMMANDS:  # interleaved: floor, command, floor, command ...
            base = _run(["-c", "pass"])
            times["python -c pass"].append(base)
            name = " ".join(["flowcell", *cmd, "--help"])
            t = _run(["-m", "flowcell", *cmd, "--help"])
            times.setdefault(name, []).append(t)
            ratios.setdefault(name, []).append(t / base)
    rows = []
    for name, v in times.items():
        r = statistics.median(ratios[name]) if name in ratios else 1.0
        rows.append((name, statistics.median(v), min(v), max(v), r))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args(argv)
    print(f"{'command':32s} {'median s':>9s} {'min-max s':>14s} {'x bare start':>13s}")
    worst = 0.0
    for name, med, lo, hi, r in measure(args.repeats):
        worst = max(worst, r)
        print(f"{name:32s} {med:9.3f} {lo:6.3f}-{hi:<7.3f} {r:13.2f}")
    print(f"worst ratio {worst:.2f}x a bare Python start (ceiling {CEILING:g}x): {worst / CEILING:.2f} of the ceiling")
    print(f"RESULT | `flowcell [CMD] --help`, slowest | {worst:.2f}x a bare `python -c pass` | <= {CEILING:g}x | "
          f"{worst / CEILING:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
