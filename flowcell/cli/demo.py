"""``flowcell demo``: the subcommand's parser (``add``) and its work (``run``)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from flowcell.cli.common import EXIT_FAIL, EXIT_OK, EXIT_TEXT as _EXIT_TEXT, Formatter as _Formatter


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", formatter_class=_Formatter,
        help="simulate an experiment in real time, watch it, show live SOC, fit and report",
        description=textwrap.dedent("""\
            The README's main command.  A simulated 0.1 M DHAQ anolyte is charged, rested and
            discharged; a simulator thread writes a Bruker 1H experiment and a BES3T EPR file per
            time point plus a potentiostat log into a temporary folder, in real time at a high
            speed-up.  The watcher follows them into a store, the live SOC filter prints a table
            (with the simulator's true SOC next to it), and at the end the kinetic model (Kc,
            k_dec, J_e, and the exchange rates k1, kc from the quinone line widths) is fitted
            and report.md, fit.json and PNG plots are written.

            Exit code 0 only if the live SOC stayed within 0.02 of the truth after the first
            15 minutes and every true parameter lies inside its fitted 95 % interval."""),
        epilog="examples:\n  flowcell demo\n  flowcell demo --quick --no-live --out /tmp/demo\n\n" + _EXIT_TEXT)
    p.add_argument("--speedup", type=float, default=250.0, help="simulated seconds per wall-clock second")
    p.add_argument("--hours", type=float, default=3.0, help="simulated duration, h")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default ./flowcell-demo-<UTC timestamp>)")
    p.add_argument("--interval-min", type=float, default=None,
                   help="minutes between spectrum pairs (default 2; 3 with --quick)")
    p.add_argument("--no-live", action="store_true", help="do not print the live table")
    p.add_argument("--quick", action="store_true", help="test settings: 2 h at >= 1000x (same code path)")
    p.add_argument("--keep-raw", action="store_true", help="keep the simulated files in OUT/raw")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from flowcell.demo import run_demo
    from flowcell.validation import check_arg, check_output
    check_arg("--speedup", a.speedup, min=0.0, strict_min=True, max=1e7)
    check_arg("--hours", a.hours, min=0.0, strict_min=True, max=2000.0, unit="h")
    if a.interval_min is not None:
        check_arg("--interval-min", a.interval_min, min=0.0, strict_min=True, max=60.0 * a.hours, unit="min")
    if a.out is not None:
        check_output(a.out, "--out")
    r = run_demo(a.out, speedup=a.speedup, hours=a.hours, seed=a.seed, live=not a.no_live, quick=a.quick,
                 interval_s=None if a.interval_min is None else 60.0 * a.interval_min, keep_raw=a.keep_raw)
    return EXIT_OK if r.ok else EXIT_FAIL
