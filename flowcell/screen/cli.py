"""``flowcell screen``: the subcommand's parser (light: ``--help`` imports no numpy) and its run.

The work lives in :mod:`flowcell.screen.run` (:func:`flowcell.screen.run.screen`), imported
only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from flowcell.screen.cache import DEFAULT_FREE

__all__ = ["add_screen_subcommand", "run_screen", "main"]


def add_screen_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``flowcell screen`` to an ``argparse`` subparsers object (``flowcell.cli``).

    The parser's ``func`` default is :func:`run_screen`.
    """
    p = subparsers.add_parser(
        "screen", help="reprocess, fit and compare many experiments (local cores or Dask)",
        description="Screen a folder (or list) of experiments: reprocess raw NMR/EPR files, fit each "
                    "experiment's kinetic model (and groups globally), write a comparison table and report. "
                    "An experiment is a folder with an experiment TOML, its raw NMR/EPR folders and a "
                    "potentiostat log (what `flowcell simulate` writes). Results are cached per experiment: "
                    "a rerun redoes only experiments whose raw files, model or options changed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  flowcell screen runs/ -o screen/                      # all local cores\n"
               "  flowcell screen runs/ -o screen/ --executor dask -j 2 # a local Dask cluster\n"
               "  flowcell screen runs/ --scheduler tcp://host:8786     # an existing Dask scheduler\n"
               "  flowcell screen runs/ --group-by quinone --shared Kc  # global fits, shared Kc\n"
               "  flowcell screen runs/ --free Kc,k_dec,J_e,k1,kc       # add exchange rates (needs visible lines)\n\n"
               "exit codes: 0 ok, 1 a task failed (the others are kept and reported), 2 bad usage, "
               "3 no experiment found")
    p.add_argument("experiments", nargs="+", type=Path, help="screen folder(s), experiment folders or TOML files")
    p.add_argument("-o", "--out", type=Path, default=None, help="output folder (default ./flowcell-screen)")
    p.add_argument("--executor", choices=("local", "serial", "dask"), default="local",
                   help="where tasks run (default: all local cores)")
    p.add_argument("-j", "--workers", type=int, default=None, help="workers (default: all cores)")
    p.add_argument("--scheduler", dest="scheduler_address", default=None,
                   help="address of a running Dask scheduler (implies --executor dask)")
    p.add_argument("--free", default=",".join(DEFAULT_FREE), help="free parameters, comma-separated")
    p.add_argument("--group-by", default=None,
                   help="global fits over groups: quinone, concentration_M, temperature_K, supporting, model")
    p.add_argument("--shared", default="Kc", help="parameters shared in a group, comma-separated")
    p.add_argument("--no-ci", action="store_true", help="skip profile-likelihood intervals (fast)")
    p.add_argument("--chunk-size", type=int, default=50, help="acquisitions per reprocessing task")
    p.add_argument("--retries", type=int, default=1, help="extra attempts of a failed task")
    p.add_argument("--no-cache", action="store_true", help="recompute everything")
    p.add_argument("--content-hash", action="store_true", help="fingerprint raw files by content (sha256)")
    p.set_defaults(func=run_screen)
    return p


def run_screen(args: argparse.Namespace) -> int:
    """Run ``flowcell screen`` from parsed arguments.

    Returns
    -------
    int
        Exit code as ``flowcell.cli``: 0 every experiment fitted; 1 some task failed
        (the others are in the table) or none could be fitted; 2 usage error (unknown
        executor, parameter or grouping); 3 no experiment found.
    """
    # lazy: numpy, pandas and the fitting stack load only when the command runs, not for --help
    import pandas as pd

    from flowcell.screen.run import screen
    out = args.out or Path.cwd() / "flowcell-screen"
    try:
        res = screen(args.experiments, out, executor=args.executor, workers=args.workers,
                     scheduler_address=args.scheduler_address,
                     free=[s.strip() for s in args.free.split(",") if s.strip()],
                     conf_interval=not args.no_ci, group_by=args.group_by,
                     shared=[s.strip() for s in args.shared.split(",") if s.strip()],
                     chunk_size=args.chunk_size, retries=args.retries, cache=not args.no_cache,
                     content_hash=args.content_hash, log=print)
    except FileNotFoundError as exc:
        print(f"flowcell screen: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:
        print(f"flowcell screen: {exc}", file=sys.stderr)
        return 2
    print(res.summary())
    cols = [c for c in ("experiment", "status", "Kc", "k2", "k_dec", "J_e", "fade_pct_per_day") if c in res.table]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(res.table[cols].to_string(index=False))
    return 1 if (res.failures or not (res.table["status"] == "ok").any()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m flowcell.screen.cli ...`` (same arguments as ``flowcell screen``)."""
    ap = argparse.ArgumentParser(prog="flowcell")
    sub = ap.add_subparsers(dest="command", required=True)
    add_screen_subcommand(sub)
    args = ap.parse_args(["screen", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
