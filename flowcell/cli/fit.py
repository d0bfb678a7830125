"""``flowcell fit``: the subcommand's parser (``add``) and its work (``run``)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from flowcell.cli.common import EXIT_FAIL, EXIT_OK, EXIT_TEXT as _EXIT_TEXT, Formatter as _Formatter, Usage as _Usage, load_config as _load_config


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", formatter_class=_Formatter, help="post-hoc kinetic fit with 95 %% intervals and a report",
        description=textwrap.dedent("""\
            Fit the kinetic model to an experiment.  STORE_OR_FOLDER is a store folder (from
            'watch' or 'demo') or a folder of raw files (ingested first, in batch).  The potentiostat
            log and loop volumes come from --config (default: experiment.toml in or above the
            folder).  Writes report.md, fit.json and PNG plots to --out."""),
        epilog="examples:\n  flowcell fit sim/store --config sim/experiment.toml\n"
               "  flowcell fit sim --free Kc,k_dec,J_e,eps_H --out fit-run2\n\n" + _EXIT_TEXT)
    p.add_argument("source", type=Path, metavar="STORE_OR_FOLDER")
    p.add_argument("--config", type=Path, default=None, help="experiment TOML")
    p.add_argument("--free", default="Kc,k_dec,J_e", help="comma-separated free parameters")
    p.add_argument("--out", type=Path, default=None, help="report folder (default <source>/fit)")
    p.add_argument("--no-intervals", action="store_true", help="skip the profile-likelihood intervals (fast)")
    p.add_argument("--truth", type=Path, default=None,
                   help="truth.json of a simulation: report whether the true values are inside the intervals")
    p.set_defaults(func=run)


def _find_config(source: Path) -> Path | None:
    for d in [source, *source.resolve().parents][:3]:
        c = d / "experiment.toml"
        if c.exists():
            return c
    return None


def run(a: argparse.Namespace) -> int:
    import json

    from ingest.live.store import Store
    from ingest.types import IngestError

    from flowcell.potentiostat import read_potentiostat
    from flowcell.fit.pipeline import fit_table, observables_config
    from flowcell.report import write_report
    src = a.source
    if not src.exists():
        raise IngestError(src, "no such store or folder")
    cfg_path = a.config or _find_config(src)
    if cfg_path is None:
        raise _Usage(f"{src}: no experiment.toml found next to it; give --config")
    cfg = _load_config(cfg_path)
    if (src / "store.sqlite").exists() or any(src.glob("*.sqlite")):
        table = Store(src).table()
    else:
        from ingest.batch import ingest_folder
        res = ingest_folder(src, observables_config(cfg), progress=True)
        table = res.table
        for p, why in res.skipped:
            print(f"skipped {p}: {why}", file=sys.stderr)
    if table is None or len(table) == 0:
        raise IngestError(src, "no spectra found")
    if cfg.instruments.potentiostat is None:
        raise _Usage(f"{cfg_path}: [instruments] potentiostat is needed for the fit (the current)")
    pot = read_potentiostat(cfg.instruments.potentiostat)
    free = [f.strip() for f in a.free.split(",") if f.strip()]
    truth = None
    if a.truth:
        truth = json.loads(Path(a.truth).read_text())["params"]
    print(f"fitting {', '.join(free)} to {len(table)} spectra ...")
    try:
        outcome = fit_table(table, cfg, pot, free=free, truth=truth, conf_interval=not a.no_intervals)
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    out = a.out or (src / "fit")
    report = write_report(out, outcome, title=f"kinetic fit: {cfg.experiment.name}")
    print(outcome.result.report())
    print(f"report: {report}")
    ok = bool(outcome.result.success)
    if truth is not None:
        ok = ok and outcome.all_inside()
    return EXIT_OK if ok else EXIT_FAIL
