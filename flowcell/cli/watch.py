"""``flowcell watch``: the subcommand's parser (``add``) and its work (``run``)."""

from __future__ import annotations

import argparse
import signal
import sys
import textwrap
from pathlib import Path

from flowcell.cli.common import EXIT_FAIL, EXIT_OK
from flowcell.cli.common import EXIT_TEXT as _EXIT_TEXT
from flowcell.cli.common import Formatter as _Formatter
from flowcell.cli.common import Usage as _Usage
from flowcell.cli.common import load_config as _load_config

_DESCRIPTION = """\
    Watch the NMR and EPR folders named in CONFIG ([instruments] nmr_dir, epr_dir), store every
    new spectrum (STORE, default <config folder>/store) and show the live state of charge:
    coulomb counting from [instruments] potentiostat (read as it grows) fused with the water
    shift and the EPR spin count.  Files already present are processed first.

    No kinetic constant is needed beforehand: K_c, the zero-radical water shift and the NMR and
    EPR scales are learnt from the data as they come, and the SOC uncertainty stays wide until
    the data pin them down.  The table fits the terminal; its status line counts rows, rows
    rejected by the filter (data and model disagree), rows flagged (no usable time: missing,
    before 1990, more than a day ahead, far outside the run: kept in the store, never used),
    files pending, the elapsed time and the potentiostat log's state (ok / missing / unreadable).

    A finished file is taken at once (close-write / rename events plus the format's own size
    check); --polling (network shares) waits for files to be stable for 1 s instead.

    Ctrl-C or SIGTERM stops cleanly.  The exit code is 1 (with the reason) when the live estimate
    failed: no SOC for 20 rows in a row, no SOC at all, or the store or --out not writable."""


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watch", formatter_class=_Formatter, help="follow the instrument folders of CONFIG: live SOC table",
        description=textwrap.dedent(_DESCRIPTION),
        epilog="examples:\n  flowcell watch sim/experiment.toml\n  flowcell watch exp.toml --out run1 --plot\n"
               "  flowcell watch exp.toml --store run1/store --polling --idle-exit 30\n\n" + _EXIT_TEXT)
    p.add_argument("config", type=Path)
    p.add_argument("--store", type=Path, default=None, help="store folder (default <config folder>/store)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="write DIR/live_soc.csv as it goes (time_utc, soc, soc_active, soc_sd, Kc, ...)")
    p.add_argument("--plot", nargs="?", const="auto", default=None, metavar="PNG",
                   help="live plot: a window where a display exists, else PNG (default DIR/live_soc.png "
                        "or ./live_soc.png)")
    p.add_argument("--polling", action="store_true", help="polling observer (network shares)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                   help="stop once nothing is pending and no new row came for this long (scripts, tests)")
    p.set_defaults(func=run)


def _plot(a: argparse.Namespace):
    """The LivePlot asked for by --plot (None without it)."""
    if a.plot is None:
        return None
    from flowcell.live.plot import (  # lazy: matplotlib only with --plot
        LivePlot,
        has_display,
    )

    if a.plot != "auto":
        return LivePlot(a.plot, interactive=False, every=5)
    if has_display():
        return LivePlot(None, interactive=True)
    return LivePlot((a.out or Path.cwd()) / "live_soc.png", interactive=False, every=5)


def run(a: argparse.Namespace) -> int:
    # lazy: numpy/pandas/watchdog only when the command runs, so `flowcell --help` stays fast
    from flowcell.live.session import LiveSession
    from flowcell.live.table import TerminalTable
    from ingest.live.store import StoreError

    cfg = _load_config(a.config)
    ins = cfg.instruments
    if ins.nmr_dir is None and ins.epr_dir is None:
        raise _Usage(f"{a.config}: [instruments] names neither nmr_dir nor epr_dir")
    from flowcell.validation import check_output
    for key in ("instruments.nmr_dir", "instruments.epr_dir"):  # a missing folder: exit 2 naming the key
        if getattr(ins, key.split(".")[1]) is not None:
            cfg.require_dir(key)
    if a.out is not None:
        check_output(a.out, "--out")
    store_dir = a.store or Path(a.config).resolve().parent / "store"
    table = TerminalTable()
    try:
        session = LiveSession(cfg, store_dir, table=table, plot=_plot(a),
                              csv_path=None if a.out is None else a.out / "live_soc.csv")
    except (StoreError, OSError) as exc:
        print(f"flowcell watch: cannot write the store or the output: {exc}", file=sys.stderr)
        return EXIT_FAIL
    session.watch(polling=True if a.polling else None)
    print(f"watching {ins.nmr_dir} and {ins.epr_dir} -> store {store_dir} (Ctrl-C to stop)", flush=True)

    def _term(signum, frame):  # SIGTERM (service managers) stops as cleanly as Ctrl-C
        raise KeyboardInterrupt

    try:
        old_term = signal.signal(signal.SIGTERM, _term)
        # Ctrl-C always stops the watcher, even when the shell or a parent process started it
        # with SIGINT ignored (background jobs, some test runners): Python then installs no
        # KeyboardInterrupt handler, and the run would never end
        old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread
        old_term = old_int = None
    try:
        session.run(a.duration, a.idle_exit)
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        session.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)
    s = session.status
    print(f"{s.rows} rows in {store_dir} ({s.flagged} flagged: no usable time; {s.rejected_rows} rejected by the filter)")
    if session.failure:
        print(f"flowcell watch: the live estimate failed: {session.failure}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK
