"""Regenerate the README's performance table: run the benchmarks, collect their figures.

Every benchmark prints ``RESULT | figure | value | floor or reference | ratio`` lines;
this script runs each one that is present (other engineers' scripts included; those
without RESULT lines contribute their last printed line), and writes one Markdown table
to ``benchmarks/README_table.md`` (and prints it) for the README.

``--quick`` runs smaller problems (a few minutes); the default runs the benchmarks at
their own defaults (much longer: the screen benchmark simulates and fits four
experiments with profile intervals, several times).

Usage::

    PYTHONPATH=. python benchmarks/readme_table.py [--quick] [--only kinetics,cli]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: name -> (script, full arguments, quick arguments)
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "cli": ("bench_cli_startup.py", [], ["--repeats", "3"]),
    "kinetics": ("bench_kinetics.py", [], ["--repeats", "3"]),
    "nmr": ("bench_nmr_pipeline.py", [], ["--repeats", "5", "--no-nmrglue"]),
    "ingest": ("bench_ingest.py", ["--rss-spectra", "10000"], ["--files", "100", "--repeats", "1", "--subset", "10"]),
    "screen": ("bench_screen.py", [], ["--experiments", "2", "--hours", "1", "--td", "16384", "--repeats", "1",
                                      "--no-ci"]),
    # other engineers' benchmarks (issues 11, 13, 14), run when present
    "fit": ("bench_fit.py", [], []),
    "watcher": ("bench_watcher.py", [], []),
    "potentiostat": ("bench_potentiostat_tail.py", [], []),
    "batchfits": ("bench_batch_fits.py", [], ["--repeats", "3"]),
    "bruker_read": ("bench_bruker_read.py", [], ["--files", "64", "--repeats", "3"]),
    "topspin_filter": ("bench_topspin_filter.py", [], []),
    "split_fft": ("bench_split_fft.py", [], ["--reps", "5"]),
    "ingest_timeline": ("bench_ingest_timeline.py", [], ["--n", "200", "--reps", "2"]),
}


def run(name: str, quick: bool, timeout: float | None = None) -> tuple[list[list[str]], str]:
    script, full, fast = BENCHES[name]
    path = HERE / script
    if not path.exists():
        return [], f"{script}: not present"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, str(path), *(fast if quick else full)], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [[f"{script}", f"timed out after {timeout:g} s", "-", "-", script]], f"{script}: timed out"
    took = time.perf_counter() - t0
    rows = [[c.strip() for c in line.split("|")[1:]] + [script]
            for line in r.stdout.splitlines() if line.startswith("RESULT |")]
    if not rows:
        last = (r.stdout.strip().splitlines() or [r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""])[-1]
        rows = [[f"{script} (no RESULT lines)", last, "-", "-", script]]
    return rows, f"{script}: {took:.0f} s, exit {r.returncode}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BENCHES))
    ap.add_argument("--out", type=Path, default=HERE / "README_table.md")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per benchmark script (default none)")
    args = ap.parse_args(argv)
    names = [n for n in (args.only.split(",") if args.only else BENCHES) if n]
    table = ["| Figure | Measured | Floor / reference | Ratio | Script |", "|---|---|---|---|---|"]
    for n in names:
        rows, note = run(n, args.quick, args.timeout)
        print(note, file=sys.stderr)
        table += ["| " + " | ".join(r[:4] + [f"`benchmarks/{r[4]}`"]) + " |" for r in rows]
    head = (f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
            f"({platform.processor() or platform.machine()}, Python {platform.python_version()})"
            f"{', quick sizes' if args.quick else ''}; ratio = measured / floor (<= 1 meets a ceiling, "
            f">= 1 a floor).  Regenerate: `python benchmarks/readme_table.py`.\n\n")
    text = head + "\n".join(table) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
