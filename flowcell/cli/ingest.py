"""``flowcell ingest``: the subcommand's parser (``add``) and its work (``run``).

The one ingest command line (``python -m ingest.batch`` runs this too).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from flowcell.cli.common import EXIT_OK
from flowcell.cli.common import EXIT_TEXT as _EXIT_TEXT
from flowcell.cli.common import Formatter as _Formatter
from flowcell.cli.common import Usage as _Usage

#: Table formats the outputs take.
TABLE_SUFFIXES = (".parquet", ".csv")


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest", formatter_class=_Formatter, help="batch: a folder (or one file) of spectra -> one tidy table",
        description=textwrap.dedent("""\
            Read every NMR/EPR acquisition in PATH (a folder, searched recursively, or one file,
            expno or BES3T pair) and write one row per spectrum (units in the column names) to
            a Parquet or CSV file, or print it when no --output is given.  Unreadable files are
            listed with the reason, never fatal.

            Potentiostat logs found there (EC-Lab .mpr/.mpt, CSV with time and current columns)
            are not spectra: they are listed, and read into their own table with
            --potentiostat-out (t_s, I_A, Q_C = exact coulomb count, Q_instrument_C, source).
            Spin standards are never ingested as samples: anything in a folder named
            'standard/' (or 'standards/'), and every --standard PATH, is listed and left out."""),
        epilog="examples:\n  flowcell ingest sim/nmr -o nmr.parquet\n  flowcell ingest data/ -o table.csv "
               "--observables my_peaks.toml\n  flowcell ingest run/epr/sample_012.DSC\n"
               "  flowcell ingest run/ -o spectra.parquet --potentiostat-out current.parquet\n\n" + _EXIT_TEXT)
    p.add_argument("path", type=Path, metavar="PATH", help="folder, or one acquisition (file, expno, .DSC/.DTA)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="table of the spectra (.parquet or .csv); without it the table is printed")
    p.add_argument("--observables", type=Path, default=None, help="observables TOML (peak windows etc.)")
    p.add_argument("--potentiostat-out", type=Path, default=None, metavar="FILE",
                   help="read the potentiostat logs found into this table (.parquet or .csv)")
    p.add_argument("--standard", type=Path, action="append", default=[], metavar="PATH",
                   help="an EPR spin standard (file or folder) to leave out; repeatable")
    p.add_argument("-j", "--workers", type=_workers, default="auto", metavar="N",
                   help="processes for reprocessing ('auto': the cores available, at most 4); the table "
                        "does not depend on it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (or 'auto')") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: at least 1 process")
    return n


def default_workers() -> int:
    """Cores this process may use, at most 4 (the batch engine's default worker count)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def _check_table_path(path: Path | None, option: str) -> None:
    """Format and writability of an output table, before any work (exit 2 naming the option)."""
    if path is None:
        return
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise _Usage(f"{option} {path}: unsupported table format {path.suffix or '(none)'!r} "
                     f"(use {' or '.join(TABLE_SUFFIXES)})")
    from flowcell.validation import check_output
    check_output(path, option)


def _potentiostat_table(logs: list[Path], out: Path | None) -> int:
    """List the logs; read them into ``out`` when asked.  Returns the number read."""
    if not logs:
        return 0
    if out is None:
        for p in logs:
            print(f"potentiostat log (not a spectrum; read it with --potentiostat-out FILE): {p}")
        return 0
    import pandas as pd

    from flowcell.potentiostat import read_potentiostat
    from ingest.live.store import write_table
    from ingest.types import IngestError
    tables = []
    for p in logs:
        try:
            df = read_potentiostat(p)
        except IngestError as exc:
            print(f"potentiostat log unreadable: {exc}", file=sys.stderr)
            continue
        for w in df.attrs.get("warnings", []):
            print(f"potentiostat log {p}: {w}", file=sys.stderr)
        start = df.attrs.get("start")
        df.insert(0, "source", str(p))
        df.insert(1, "time", pd.NaT if start is None else pd.Timestamp(start) + pd.to_timedelta(df["t_s"], unit="s"))
        tables.append(df)
        print(f"potentiostat log: {p} ({len(df)} rows, {df.attrs.get('format')}, "
              f"Q = {df['Q_C'].iloc[-1] if len(df) else 0.0:.6g} C)")
    if not tables:
        raise IngestError(logs[0], "no potentiostat log could be read")
    write_table(pd.concat(tables, ignore_index=True), out)
    print(f"potentiostat table -> {out}")
    return len(tables)


def run(a: argparse.Namespace) -> int:
    from ingest.batch import ingest_paths
    from ingest.live.store import write_table
    from ingest.selection import select_acquisitions
    from ingest.types import IngestError
    _check_table_path(a.output, "--output")  # before the work (exit 2 naming the argument)
    _check_table_path(a.potentiostat_out, "--potentiostat-out")
    if not a.path.exists():
        raise IngestError(a.path, "no such file or folder")
    cfg = None
    if a.observables:
        from ingest.processing.observables import ObservablesConfig
        cfg = ObservablesConfig.from_toml(a.observables)
    sel = select_acquisitions(a.path, standards=a.standard)
    for line in sel.listing()[len(sel.potentiostat):]:
        print(line)
    n_logs = _potentiostat_table(sel.potentiostat, a.potentiostat_out)
    workers = default_workers() if a.workers == "auto" else int(a.workers)
    res = ingest_paths(sel.spectra, cfg, progress=not a.no_progress, workers=workers)
    print(res.summary())
    if res.table is None or len(res.table) == 0:
        if n_logs or (sel.potentiostat and not sel.spectra and not res.skipped):
            return EXIT_OK
        raise IngestError(a.path, "no readable spectra")
    if a.output is None:
        import pandas as pd
        with pd.option_context("display.max_columns", 12, "display.width", 160):
            print(res.table.dropna(axis=1, how="all").head(50).to_string(max_colwidth=40))
        return EXIT_OK
    path = write_table(res.table, a.output)
    print(f"{len(res.table)} rows -> {path}")
    return EXIT_OK
