"""``flowcell fit``: the subcommand's parser (``add``) and its work (``run``)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from flowcell.cli.common import EXIT_FAIL, EXIT_MISFIT, EXIT_OK
from flowcell.cli.common import EXIT_TEXT as _EXIT_TEXT
from flowcell.cli.common import Formatter as _Formatter
from flowcell.cli.common import Usage as _Usage
from flowcell.cli.common import load_config as _load_config


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", formatter_class=_Formatter, help="post-hoc kinetic fit with 95 %% intervals and a report",
        description=textwrap.dedent("""\
            Fit the kinetic model to an experiment.  STORE_OR_FOLDER is a store folder (from
            'watch' or 'demo') or a folder of raw files (ingested first, in batch).  The potentiostat
            log, loop volumes, clock offsets and the mechanism ([model] name, mechanism, network)
            come from --config (default: experiment.toml in or above the folder).  Writes
            report.md, fit.json, fit_series.csv (fitted SOC and concentrations) and PNG plots to --out.

            The report states the chi2 with the extractors' own sigmas before any rescaling,
            the residual tests per observable (scatter, runs, lag-1 autocorrelation), the
            outliers left out and every dropped row.  A fit whose residuals reject the model
            exits with 4.

            --compare fits several mechanisms to the same data and ranks them by AIC/BIC
            (likelihood-ratio test where they nest): variant tokens of kinetics.library.VARIANTS
            joined by '+' (dec_2H, dec_2H_2nd, dec_H, dec_H_2nd, dec_H_R, no_tautomer, dimer,
            sd_O2, sd_H2), 'default' for the file's own model, or a network text file."""),
        epilog="examples:\n  flowcell fit sim/store --config sim/experiment.toml\n"
               "  flowcell fit sim --free Kc,k_dec,J_e,eps_H --out fit-run2\n"
               "  flowcell fit sim --compare dec_2H,dec_H,dec_H+dimer --no-intervals\n"
               "  flowcell fit sim --truth truth_series.csv   # columns t_s, soc, O_M, R_M, H_M, A_M\n\n"
               + _EXIT_TEXT)
    p.add_argument("source", type=Path, metavar="STORE_OR_FOLDER")
    p.add_argument("--config", type=Path, default=None, help="experiment TOML")
    p.add_argument("--free", default="Kc,k_dec,J_e", help="comma-separated free parameters")
    p.add_argument("--out", type=Path, default=None, help="report folder (default <source>/fit)")
    p.add_argument("--no-intervals", action="store_true", help="skip the profile-likelihood intervals (fast)")
    p.add_argument("--truth", type=Path, default=None,
                   help="truth.json (true parameters) or a CSV time series (t_s, soc, O_M, R_M, H_M, A_M ...): "
                        "report whether the true values are inside the intervals / how far the fitted series are")
    p.add_argument("--compare", default=None, metavar="A,B,...",
                   help="fit these mechanisms to the same data and rank them (see above)")
    p.set_defaults(func=run)


def _find_config(source: Path) -> Path | None:
    for d in [source, *source.resolve().parents][:3]:
        c = d / "experiment.toml"
        if c.exists():
            return c
    return None


def _inputs(a: argparse.Namespace):
    """(cfg, store table, potentiostat log) of the command line, checked."""
    import numpy as np

    from flowcell.fit.pipeline import observables_config
    from flowcell.potentiostat import read_potentiostat
    from flowcell.validation import check_output
    from ingest.live.store import Store
    from ingest.types import IngestError
    src = a.source
    if not src.exists():
        raise IngestError(src, "no such store or folder")
    cfg_path = a.config or _find_config(src)
    if cfg_path is None:
        raise _Usage(f"{src}: no experiment.toml found next to it; give --config")
    cfg = _load_config(cfg_path)
    check_output(a.out or (src / "fit"), "--out")  # before the work: an unwritable report is exit 2, not 3
    if cfg.instruments.potentiostat is None:
        raise _Usage(f"{cfg_path}: [instruments] potentiostat is needed for the fit (the current)")
    pot = read_potentiostat(cfg.instruments.potentiostat)  # a missing/unreadable log fails before the work
    for w in pot.attrs.get("warnings", []):
        print(f"potentiostat log {cfg.instruments.potentiostat}: {w}", file=sys.stderr)
    for col in ("t_s", "I_A"):
        bad = np.flatnonzero(~np.isfinite(pot[col].to_numpy(float)))
        if bad.size:
            raise IngestError(cfg.instruments.potentiostat,
                              f"{bad.size} non-finite {col} value(s) (first in data row {bad[0]}); "
                              "the fit needs a finite current at every logged time")
    skipped = [w for w in pot.attrs.get("warnings", []) if "skipped" in str(w) and "I" in str(w)]
    if skipped:  # the reader left out rows without a finite time or current: the charge there is unknown
        raise IngestError(cfg.instruments.potentiostat,
                          "; ".join(map(str, skipped)) + " (non-finite time or current): the charge passed in "
                          "those intervals is unknown, so the fit would integrate a wrong current; "
                          "repair or cut the log")
    if (src / "store.sqlite").exists() or any(src.glob("*.sqlite")):
        table = Store(src, readonly=True).table()  # read-only: works on read-only media
    else:
        from ingest.batch import ingest_paths
        from ingest.selection import select_acquisitions
        sel = select_acquisitions(src, standards=[cfg.instruments.epr_standard])  # standards are not samples
        for line in sel.listing():
            print(line)
        res = ingest_paths(sel.spectra, observables_config(cfg), progress=True)
        table = res.table
        for p, why in res.skipped:
            print(f"skipped {p}: {why}", file=sys.stderr)
    if table is None or len(table) == 0:
        raise IngestError(src, "no spectra found")
    return cfg, table, pot


def run(a: argparse.Namespace) -> int:
    from flowcell.fit.pipeline import fit_table
    from flowcell.fit.truth import read_truth
    from flowcell.report import write_comparison, write_report

    cfg, table, pot = _inputs(a)
    free = [f.strip() for f in a.free.split(",") if f.strip()]
    out = a.out or (a.source / "fit")
    if a.compare:
        return _run_compare(a, cfg, table, pot, free, out, write_comparison)
    truth = read_truth(a.truth, start=pot.attrs.get("start")) if a.truth else None
    print(f"fitting {', '.join(free)} to {len(table)} spectra ...")
    try:
        outcome = fit_table(table, cfg, pot, free=free, truth=truth.params if truth else None,
                            conf_interval=not a.no_intervals)
    except ValueError as exc:  # bad free names, too few points, a bad log: plain words, exit 2
        raise _Usage(str(exc)) from None
    report = write_report(out, outcome, title=f"kinetic fit: {cfg.experiment.name}",
                          truth_series=truth.series if truth else None)
    print(outcome.result.report())
    if outcome.gof is not None:
        g = outcome.gof
        print(f"with the extractors' sigmas (before rescaling): chi2 = {g.chi2:.4g}, reduced chi2 = {g.redchi:.4g}, "
              f"N = {g.ndata}")
    print(f"status: {outcome.status}")
    for r in (outcome.gof.misfit_reasons if outcome.gof else []):
        print(f"  residuals: {r}")
    print(f"report: {report}")
    if outcome.misfit:  # the more specific verdict first
        return EXIT_MISFIT
    if not outcome.result.success:
        return EXIT_FAIL
    if truth is not None and truth.params is not None and not outcome.all_inside():
        return EXIT_FAIL
    return EXIT_OK


def _run_compare(a: argparse.Namespace, cfg, table, pot, free: list[str], out: Path, write_comparison) -> int:
    from flowcell.fit.compare import compare_mechanisms
    specs = [s.strip() for s in a.compare.split(",") if s.strip()]
    try:
        comp = compare_mechanisms(table, cfg, pot, specs, free=free, progress=print)
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    report = write_comparison(out, comp, title=f"mechanism comparison: {cfg.experiment.name}")
    print(comp.report())
    print(f"report: {report}")
    best = comp.best
    if best is None:
        return EXIT_FAIL
    return EXIT_MISFIT if best.misfit else EXIT_OK
