"""The ``flowcell`` command line.

Subcommands: ``demo``, ``simulate``, ``watch``, ``fit``, ``ingest`` (and ``screen``,
registered by :mod:`flowcell.screen.cli`).  Run
``flowcell <command> --help`` for each.  ``python -m flowcell`` is the same.

Exit codes (documented in ``--help``):

* 0 -- everything went right;
* 1 -- the job failed (a fit did not converge or missed its targets, the demo's
  checks failed, an unexpected error);
* 2 -- bad usage or a bad config / protocol (argparse's convention);
* 3 -- input files unreadable (an ``IngestError`` naming the file).
"""


from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Sequence

from flowcell import __version__
from flowcell.cli import calibrate, demo, fit, ingest, simulate, watch
from flowcell.screen.cli import add_screen_subcommand
from flowcell.cli.common import EXIT_FAIL, EXIT_INPUT, EXIT_OK, EXIT_TEXT as _EXIT_TEXT, EXIT_USAGE, Formatter as _Formatter, Usage as _Usage

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INPUT"]

_MAIN_EPILOG = """\
examples:
  flowcell demo                         # simulate, watch, live SOC, fit, report (< 2 min)
  flowcell demo --speedup 500 --hours 2 --out demo-run
  flowcell simulate experiment.toml --out sim/ --hours 3
  flowcell simulate experiment.toml --out sim/ --realtime --speedup 100 &
  flowcell watch sim/experiment.toml --out run1   # live SOC table + run1/live_soc.csv; Ctrl-C stops
  flowcell calibrate soc0/10 --quinone DHAQ -o observables.toml --plot calib.png
  flowcell fit sim/store --config sim/experiment.toml
  flowcell fit sim/store --compare dec_2H,dec_H     # rank candidate mechanisms (AIC/BIC, LRT)
  flowcell ingest sim/nmr -o nmr.parquet
  flowcell screen EXPERIMENTS/ --out screen/

""" + _EXIT_TEXT


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``flowcell`` command."""
    p = argparse.ArgumentParser(
        prog="flowcell", formatter_class=_Formatter,
        description="In-line NMR and EPR of redox-flow-battery electrolytes: simulate, watch, "
                    "live state of charge, kinetic fits.",
        epilog=_MAIN_EPILOG)
    p.add_argument("--version", action="version", version=f"flowcell {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in (demo, simulate, watch, fit, ingest, calibrate):
        cmd.add(sub)
    add_screen_subcommand(sub)  # its parser lives with the screening code (light: flowcell.screen.cli)
    return p




def _protocol_error() -> tuple[type[Exception], ...]:
    """``ProtocolError`` when its module was loaded by the command (only then can it be raised);
    not imported otherwise: flowcell.simulate.protocol loads kinetics (sympy, lmfit)."""
    mod = sys.modules.get("flowcell.simulate.protocol")
    return (mod.ProtocolError,) if mod is not None else ()


#: Subcommands that run no kinetic fit: they skip importing kinetics.fit (sympy, lmfit).
_NO_FITS = frozenset({"ingest"})


#: Thread-count variables of the BLAS libraries numpy may be built with.
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> None:
    """One BLAS thread per process unless the user set a count (docs/conventions.md).

    Every linear-algebra problem here is small (normal equations of a few line fits, a
    baseline of a few columns, the Jacobians of a kinetic fit): a second BLAS thread buys
    nothing and, on a busy machine, costs a lot (a 23 x 23 solve took 8.7 ms with OpenBLAS's
    threads competing for the cores, 48 us with one).  Parallel work is done by processes
    (``flowcell ingest -j``, ``flowcell screen --workers``).  Must run before numpy loads; the
    benchmarks call it too, to measure what the command runs.
    """
    for var in BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowcell`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    one_blas_thread()
    # imported after parsing, not at module level: `flowcell --help` must not load numpy
    # ConfigError from its light home (flowcell.config's is the same class)
    from flowcell.validation import ConfigError
    from ingest.types import IngestError

    if args.command not in _NO_FITS:
        # Fit results print their own warnings (flags, unbounded intervals) in the report and
        # on the terminal; Python's copy of each would say it twice.  Lazy: kinetics.fit loads
        # sympy and lmfit (~1 s), which `flowcell ingest` never needs.
        from kinetics.fit import FitWarning

        warnings.simplefilter("ignore", FitWarning)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ConfigError, _Usage, *_protocol_error()) as exc:  # ConfigError is an IngestError: check it first
        print(f"flowcell {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (IngestError, FileNotFoundError) as exc:
        print(f"flowcell {args.command}: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except Exception as exc:  # the job itself failed
        print(f"flowcell {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

