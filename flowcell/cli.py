"""The ``flowcell`` command line.

Subcommands: ``demo``, ``simulate``, ``watch``, ``fit``, ``ingest`` (and ``screen``,
registered by :mod:`flowcell.screen`).  Run
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
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Sequence

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INPUT"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3

_EXIT_TEXT = """\
exit codes:
  0  success
  1  the job failed (fit did not converge / missed its targets, demo checks failed)
  2  bad usage, config or protocol (the message names the file and the key)
  3  input files unreadable (the message names the file)
"""

_MAIN_EPILOG = """\
examples:
  flowcell demo                         # simulate, watch, live SOC, fit, report (< 2 min)
  flowcell demo --speedup 500 --hours 2 --out demo-run
  flowcell simulate experiment.toml --out sim/ --hours 3
  flowcell simulate experiment.toml --out sim/ --realtime --speedup 100 &
  flowcell watch sim/experiment.toml    # live SOC table; Ctrl-C stops cleanly
  flowcell fit sim/store --config sim/experiment.toml
  flowcell ingest sim/nmr -o nmr.parquet
  flowcell screen EXPERIMENTS/ --out screen/

""" + _EXIT_TEXT


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the epilog's layout and show defaults."""


def _add_demo(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_cmd_demo)


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", formatter_class=_Formatter, help="write a synthetic experiment (vendor files + truth)",
        description=textwrap.dedent("""\
            Simulate the experiment described by CONFIG under a cycling protocol and write
            OUT/nmr/<expno> (Bruker 1H), OUT/epr/epr_NNNN.DSC/.DTA (BES3T), OUT/potentiostat.csv,
            OUT/standard/ (the EPR spin standard), OUT/experiment.toml (the config of the written
            folders, with its EPR calibration) and OUT/truth/ (true SOC, concentrations, parameters).

            PROTOCOL is a TOML file with [[step]] tables or text such as
              "rest 6 min; cc +50 mA until 1.6 V until soc 0.85 max 2 h; rest 1 h; cc -50 mA until 0.7 V max 2 h"
            (steps: 'cc <I> A|mA [until <V> V] [until soc <x>] [max <n> s|min|h]', 'rest <n> s|min|h')."""),
        epilog="examples:\n  flowcell simulate flowcell/data/demo_experiment.toml --out sim --hours 2\n"
               "  flowcell simulate exp.toml --out sim --protocol 'rest 5 min; cc 40 mA max 1 h' "
               "--realtime --speedup 60\n\n" + _EXIT_TEXT)
    p.add_argument("config", type=Path, help="experiment TOML (flowcell/data/example_experiment.toml is a template)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--protocol", default=None,
                   help="protocol TOML file or text (default: the demo's rest/charge/rest/discharge over --hours)")
    p.add_argument("--hours", type=float, default=3.0, help="duration of the default protocol, h")
    p.add_argument("--interval-min", type=float, default=2.0, help="minutes between spectrum pairs")
    p.add_argument("--soc0", type=float, default=0.0, help="initial SOC")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--realtime", action="store_true", help="write each file when the simulated clock reaches it")
    p.add_argument("--speedup", type=float, default=60.0, help="speed-up with --realtime")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a model parameter (repeatable), e.g. --param k_dec=3e-6")
    p.add_argument("--nmr-drift-ppm-h", type=float, default=0.0, help="NMR field drift, ppm/h")
    p.add_argument("--epr-drift-mT-h", type=float, default=0.0, help="EPR field drift, mT/h")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_simulate)


def _add_watch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watch", formatter_class=_Formatter, help="follow the instrument folders of CONFIG: live SOC table",
        description=textwrap.dedent("""\
            Watch the NMR and EPR folders named in CONFIG ([instruments] nmr_dir, epr_dir), store
            every new spectrum (STORE, default <config folder>/store) and print the live state of
            charge (coulomb counting from [instruments] potentiostat fused with the water shift and
            EPR).  Files already present are processed first.  Ctrl-C stops cleanly (exit 0)."""),
        epilog="examples:\n  flowcell watch sim/experiment.toml\n  flowcell watch exp.toml --store run1/store "
               "--plot run1/live.png --polling\n\n" + _EXIT_TEXT)
    p.add_argument("config", type=Path)
    p.add_argument("--store", type=Path, default=None, help="store folder")
    p.add_argument("--plot", type=Path, default=None, help="PNG updated with the live SOC")
    p.add_argument("--polling", action="store_true", help="polling observer (network shares)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                   help="stop once nothing is pending and no new row came for this long (scripts, tests)")
    p.set_defaults(func=_cmd_watch)


def _add_fit(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_cmd_fit)


def _add_ingest(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_cmd_ingest)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``flowcell`` command."""
    p = argparse.ArgumentParser(
        prog="flowcell", formatter_class=_Formatter,
        description="In-line NMR and EPR of redox-flow-battery electrolytes: simulate, watch, "
                    "live state of charge, kinetic fits.",
        epilog=_MAIN_EPILOG)
    try:
        from importlib.metadata import version
        ver = version("flowcell")
    except Exception:
        ver = "0.1.0 (not installed)"
    p.add_argument("--version", action="version", version=f"flowcell {ver}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_simulate, _add_watch, _add_fit, _add_ingest):
        add(sub)
    try:  # `flowcell screen` lives with the screening code (flowcell.screen)
        from .screen import add_screen_subcommand
    except ImportError:  # pragma: no cover - screening is optional
        pass
    else:
        add_screen_subcommand(sub)
    return p


# ---------------------------------------------------------------------------- commands
def _load_config(path: Path):
    from .config import ExperimentConfig
    return ExperimentConfig.from_toml(path)


def _cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo
    r = run_demo(a.out, speedup=a.speedup, hours=a.hours, seed=a.seed, live=not a.no_live, quick=a.quick,
                 interval_s=None if a.interval_min is None else 60.0 * a.interval_min, keep_raw=a.keep_raw)
    return EXIT_OK if r.ok else EXIT_FAIL


def _parse_params(items: Sequence[str]) -> dict[str, float]:
    out = {}
    for it in items:
        if "=" not in it:
            raise _Usage(f"--param {it!r}: expected NAME=VALUE")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise _Usage(f"--param {it!r}: {v!r} is not a number") from None
    return out


class _Usage(Exception):
    """Bad usage detected after argparse (exit 2)."""


def _cmd_simulate(a: argparse.Namespace) -> int:
    from kinetics import library

    from .demo import demo_protocol
    from .protocol import Protocol
    from .simulate import ExperimentSimulator, NoiseSettings
    cfg = _load_config(a.config)
    C, V = cfg.electrolyte.concentration_M, cfg.electrolyte.volume_L
    protocol = Protocol.load(a.protocol) if a.protocol else demo_protocol(a.hours, C_tot_M=C, volume_L=V)
    params = _parse_params(a.param)
    net = getattr(library, cfg.model.name)()
    unknown = set(params) - set(net.compile().param_names) - {"hdo_ref_ppm", "xi", "w0_Hz", "g"}
    if unknown:
        raise _Usage(f"--param: unknown parameter(s) {sorted(unknown)}")
    model = net.compile(reduce_fast=cfg.model.reduce_fast)
    noise = NoiseSettings(nmr_drift_ppm_per_h=a.nmr_drift_ppm_h, epr_field_drift_T_per_h=a.epr_drift_mT_h * 1e-3)
    sim = ExperimentSimulator(cfg, protocol, model, a.out, params=params, interval_s=60.0 * a.interval_min,
                              soc0=a.soc0, seed=a.seed, noise=noise)
    tr = sim.prepare()
    print(f"simulating {tr.schedule.total_s / 3600:.2f} h: {protocol.describe()}")
    print(f"{len(tr.spectra)} spectra -> {a.out}" + (f" in real time at {a.speedup:g}x" if a.realtime else ""))
    sim.write(realtime_speedup=a.speedup if a.realtime else None, progress=not a.no_progress)
    print(f"config of the written folders: {tr.config_path}")
    print(f"truth: {Path(a.out) / 'truth'}")
    return EXIT_OK


def _cmd_watch(a: argparse.Namespace) -> int:
    import threading

    import numpy as np
    import pandas as pd

    from ingest.store import Store
    from ingest.watch import Watcher

    from .live import LivePlot, LiveSOC, TerminalTable
    from .fitting import observables_config
    cfg = _load_config(a.config)
    ins = cfg.instruments
    if ins.nmr_dir is None and ins.epr_dir is None:
        raise _Usage(f"{a.config}: [instruments] names neither nmr_dir nor epr_dir")
    store_dir = a.store or Path(a.config).resolve().parent / "store"
    store = Store(store_dir)
    est = LiveSOC(cfg)
    table = TerminalTable()
    plot = LivePlot(a.plot, interactive=False) if a.plot else None
    pot_path = ins.potentiostat
    state = {"q": 0.0, "start": None}
    lock = threading.Lock()

    def pot_at(t_s: float) -> tuple[float | None, float | None]:
        if pot_path is None or not Path(pot_path).exists():
            return None, None
        from .potentiostat import coulomb_count, read_potentiostat
        try:
            df = read_potentiostat(pot_path)
        except Exception:
            return None, None
        if state["start"] is None:
            state["start"] = df.attrs.get("start")
        t, I = df["t_s"].to_numpy(float), df["I_A"].to_numpy(float)
        if t.size < 2:
            return None, None
        Q = coulomb_count(t, I, method="hold")
        i = int(np.clip(np.searchsorted(t, t_s, side="right") - 1, 0, t.size - 1))
        return float(I[i]), float(Q[i] + I[i] * (t_s - t[i]))

    def on_row(row: dict) -> None:
        with lock:
            pot_at(0.0) if state["start"] is None else None
            t_s = None
            if state["start"] is not None and row.get("time_mid") is not None:
                t_s = float((pd.Timestamp(row["time_mid"]) - pd.Timestamp(state["start"])).total_seconds())
            cur, q = pot_at(t_s) if t_s is not None else (None, None)
            dq = None if q is None else q - state["q"]
            if q is not None:
                state["q"] = q
            st = est.update(row, cur, t_s, charge_C=dq)
            table.update(st)
            if plot is not None:
                plot.update(st)

    w = Watcher(ins.nmr_dir, ins.epr_dir, store, observables_config(cfg), on_row=on_row,
                polling=True if a.polling else None, nmr_clock_offset_s=ins.nmr_clock_offset_s,
                epr_clock_offset_s=ins.epr_clock_offset_s)
    print(f"watching {ins.nmr_dir} and {ins.epr_dir} -> store {store_dir} (Ctrl-C to stop)", flush=True)
    import signal

    def _term(signum, frame):  # SIGTERM (service managers) stops as cleanly as Ctrl-C
        raise KeyboardInterrupt

    try:
        old_term = signal.signal(signal.SIGTERM, _term)
    except ValueError:  # not the main thread
        old_term = None
    try:
        if a.idle_exit is None:
            w.run(a.duration)
        else:
            import time
            w.start()
            t0 = last = time.monotonic()
            n_last = -1
            while a.duration is None or time.monotonic() - t0 < a.duration:
                time.sleep(0.25)
                n = len(est.history)
                if n != n_last:
                    n_last, last = n, time.monotonic()
                elif time.monotonic() - last >= a.idle_exit and w.wait_idle(timeout=0.1):
                    break
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        w.stop()
        store.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    print(f"{len(Store(store_dir))} rows in {store_dir}")
    return EXIT_OK


def _find_config(source: Path) -> Path | None:
    for d in [source, *source.resolve().parents][:3]:
        c = d / "experiment.toml"
        if c.exists():
            return c
    return None


def _cmd_fit(a: argparse.Namespace) -> int:
    import json

    from ingest.store import Store
    from ingest.types import IngestError

    from .potentiostat import read_potentiostat
    from .fitting import fit_table, observables_config
    from .report import write_report
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


def _cmd_ingest(a: argparse.Namespace) -> int:
    from ingest.batch import ingest_folder
    from ingest.store import write_table
    from ingest.types import IngestError
    if not a.folder.is_dir():
        raise IngestError(a.folder, "not a folder")
    cfg = None
    if a.observables:
        from ingest.observables import ObservablesConfig
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowcell`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from ingest.types import IngestError

    from .protocol import ProtocolError
    from kinetics.fit import FitWarning

    from .config import ConfigError

    # Fit results print their own warnings (flags, unbounded intervals) in the report and
    # on the terminal; Python's copy of each would say it twice.
    warnings.simplefilter("ignore", FitWarning)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ConfigError, ProtocolError, _Usage) as exc:  # ConfigError is an IngestError: check it first
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
