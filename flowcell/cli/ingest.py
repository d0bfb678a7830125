"""``flowcell ingest``: the subcommand's parser (``add``) and its work (``run``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flowcell.cli.common import EXIT_OK, EXIT_TEXT as _EXIT_TEXT, Formatter as _Formatter


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest", formatter_class=_Formatter, help="batch: a folder of finished files -> one tidy table",
        description="Read every NMR/EPR acquisition under FOLDER and write one row per spectrum "
                    "(units in the column names) to a Parquet or CSV file; unreadable files are listed, "
                    "not fatal.",
        epilog="examples:\n  flowcell ingest sim/nmr -o nmr.parquet\n  flowcell ingest data/ -o table.csv "
               "--observables my_peaks.toml\n\n" + _EXIT_TEXT)
    p.add_argument("folder", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help=".parquet or .csv")
    p.add_argument("--observables", type=Path, default=None, help="observables TOML (peak windows etc.)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    from ingest.batch import ingest_folder
    from ingest.live.store import write_table
    from ingest.types import IngestError
    if not a.folder.is_dir():
        raise IngestError(a.folder, "not a folder")
    cfg = None
    if a.observables:
        from ingest.processing.observables import ObservablesConfig
        cfg = ObservablesConfig.from_toml(a.observables)
    res = ingest_folder(a.folder, cfg, progress=not a.no_progress)
    if res.table is None or len(res.table) == 0:
        for p, why in res.skipped:
            print(f"skipped {p}: {why}", file=sys.stderr)
        raise IngestError(a.folder, "no readable spectra")
    path = write_table(res.table, a.output)
    print(f"{len(res.table)} rows -> {path}")
    for p, why in res.skipped:
        print(f"skipped {p}: {why}", file=sys.stderr)
    return EXIT_OK
