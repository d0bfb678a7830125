"""``flowcell demo``: a whole in-line experiment in under two minutes.

1. A simulator thread (:class:`flowcell.simulate.simulator.ExperimentSimulator`) writes a
   Bruker 1H experiment and a BES3T EPR file per time point plus a potentiostat CSV
   into a temporary folder, in real time at a high speed-up.
2. The watcher (:class:`ingest.live.watch.Watcher`) follows the folders into a store
   (``<out>/store``).
3. The same live session as ``flowcell watch`` (:class:`flowcell.live.session.LiveSession`:
   store, watcher, potentiostat log, live SOC with K_c learnt online) folds each new
   row into the live state of charge and prints a table that updates (with the
   simulator's true SOC next to it), ``<out>/live_soc.csv`` and an updating plot
   (``<out>/live_soc.png``).
4. At the end, the kinetic model is fitted to the store's table with the
   potentiostat current (:func:`flowcell.fit.pipeline.fit_table`, the path ``flowcell fit``
   and the screen use), and ``report.md`` (:func:`flowcell.report.write_report`),
   ``fit.json`` and PNG plots are written to ``<out>``.

Success (exit code 0) means: the live SOC stayed within ``LIVE_TOL`` (0.02
absolute) of the true tank SOC after the first ``settle_s`` of the run, and the
true K_c, k_dec, J_e, k1 and kc lie inside the fitted 95 % intervals.

The true parameters (:data:`DEMO_TRUTH`) are ASSUMED placeholders chosen so that
K_c, the decomposition rate and the O2 self-discharge are identifiable within a
few simulated hours from the water shift, EPR and the anthrone area: k_dec is 3x
the docs/physics.md §2.6 placeholder and J_e 200x, so both leave a visible mark in
hours rather than days.

Electron exchange (ASSUMED, far below the library's 1e8 1/(M s) placeholders, which
make the quinone lines MHz wide and unobservable, as Z20 saw): k1 = 2e3 (O/R
self-exchange, the k_ex of the screen table) and kc = 1e3 1/(M s).  The oxidised-form
lines then broaden as ``w0 + (k1 [R] + kc [H]) / pi`` (docs/physics.md §1.4, slow exchange,
the formula of ``kinetics.observe`` used by both the simulator and the fit) to ~5 Hz
at SOC 0.05, ~14 Hz at SOC 0.3 and ~35 Hz at SOC 0.85 (0.1 M, K_c 0.0967); every one of
them is fitted: lines broader than 15 % of their ingest window are measured by Lorentzians
fitted past the window with their neighbours (:func:`ingest.processing.widths.refine_widths`),
up to :func:`ingest.processing.widths.max_fwhm_hz` (120 Hz for the 0.2 ppm windows).  Comproportionation still relaxes in ``1/(kc (O + H)) ~ 10 ms``, fast against
the seconds of cell-to-detector transit, so the reduced (fast-equilibrium) model holds.
k1 and kc are both free: their correlation is about -0.96 (flagged) but the line widths
at different SOC weight [R] and [H] differently, and both come back within ~4-5 %
(95 % intervals, default settings).  Broader lines' Lorentzian wings leak into the
product windows; with larger exchange rates (5e3) that inflated the anthrone sigma 10x.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from flowcell.config import ExperimentConfig
from flowcell.fit.pipeline import fit_table, observables_config
from flowcell.live.plot import LivePlot
from flowcell.live.session import LiveSession
from flowcell.live.table import TerminalTable
from flowcell.params import compiled_model
from flowcell.potentiostat import read_potentiostat
from flowcell.report import write_report
from flowcell.simulate.protocol import F, Protocol, Step
from flowcell.simulate.simulator import ExperimentSimulator
from kinetics.fit_result import significant_digits
from ingest.processing.observables import ObservablesConfig

__all__ = [
    "DEMO_FREE",
    "DEMO_TRUTH",
    "LIVE_TOL",
    "DemoResult",
    "demo_protocol",
    "load_demo_config",
    "observables_config",
    "run_demo",
]

#: True parameters of the demo experiment (ASSUMED, see the module docstring).
DEMO_TRUTH: dict[str, float] = {"Kc": 0.0967, "k_dec": 3e-6, "J_e": 2e-7, "k1": 2e3, "kc": 1e3}
#: Parameters the demo fits (besides the nuisance ones, :data:`flowcell.fit.pipeline.NUISANCE`).
DEMO_FREE: tuple[str, ...] = ("Kc", "k_dec", "J_e", "k1", "kc")
#: Live-SOC tolerance (absolute SOC) after the settling time.
LIVE_TOL = 0.02


@dataclass
class DemoResult:
    """Outcome of :func:`run_demo`.

    Attributes
    ----------
    ok : bool
        Live SOC within tolerance and every true parameter inside its 95 % interval.
    live_max_err, live_rms_err : float
        Max / rms |live SOC - true SOC| after ``settle_s`` (absolute SOC).
    live : DataFrame
        One row per live update (t_s, soc, soc_sd, soc_coulomb, drift, true_soc ...).
    fit : FitOutcome or None
    out_dir : Path
    n_rows : int
        Rows the watcher stored.
    elapsed_s : float
        Wall time of the whole demo.
    messages : list of str
        What went wrong, if anything.
    """

    ok: bool
    live_max_err: float
    live_rms_err: float
    live: pd.DataFrame
    fit: Any
    out_dir: Path
    n_rows: int
    elapsed_s: float
    truth: Any = None
    messages: list[str] = field(default_factory=list)


def demo_protocol(hours: float, *, C_tot_M: float = 0.1, volume_L: float = 0.01,
                  soc_top: float = 0.85) -> Protocol:
    """Rest / charge / rest / discharge filling ``hours`` of simulated time.

    A short rest first (baseline spectra at SOC 0 with sharp quinone lines: the
    zero-radical water shift and the area scale), charge to ``soc_top`` in 42 % of
    the time, rest 24 % (self-discharge and decomposition show), discharge at the
    same current for 30 % (voltage limit 0.7 V).
    """
    total = hours * 3600.0
    t_ch = 0.42 * total
    current = soc_top * 2 * F * C_tot_M * volume_L / t_ch
    return Protocol([
        Step("rest", 0.0, max(0.04 * total, 360.0)),
        Step("cc", current, t_ch * 1.1, v_limit_V=1.6, soc_limit=soc_top),
        Step("rest", 0.0, 0.24 * total),
        Step("cc", -current, 0.30 * total, v_limit_V=0.7),
    ])


_FALLBACK_CFG = {
    "experiment": {"name": "demo-dhaq-0.1M"},
    "electrolyte": {"quinone": "DHAQ", "concentration_M": 0.1, "volume_L": 0.010, "temperature_K": 298.15},
    "flow": {"rate_mL_min": 13.6, "cell_to_nmr_mL": 0.5, "cell_to_epr_mL": 0.8, "nmr_cell_mL": 0.2,
             "epr_cell_mL": 0.05, "cell_mL": 0.3, "feed_mL": 0.5, "return_mL": 1.5},
    "instruments": {"nmr_dir": "nmr", "epr_dir": "epr", "potentiostat": "potentiostat.csv",
                    "geometry": "parallel"},
    "model": {"name": "dhaq", "params": {"Kc": 0.0967, "k_dec": 1e-6}},
}


def load_demo_config() -> Any:
    """``flowcell/data/demo_experiment.toml`` (or a built-in copy of its numbers)."""
    path = Path(__file__).with_name("data") / "demo_experiment.toml"
    if path.exists():
        return ExperimentConfig.from_toml(path)
    return ExperimentConfig.from_dict(_FALLBACK_CFG, source="<flowcell.demo built-in>")



class _KeepWarnings(logging.Handler):
    """Collect the live loggers' warnings for the report instead of printing them across the table."""

    def __init__(self, *names: str) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []
        self.loggers = [logging.getLogger(n) for n in names]
        self._old = [lg.propagate for lg in self.loggers]

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())

    def __enter__(self) -> _KeepWarnings:
        for lg in self.loggers:
            lg.addHandler(self)
            lg.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        for lg, old in zip(self.loggers, self._old):
            lg.removeHandler(self)
            lg.propagate = old


def _simulate_live(sim: Any, truth: Any, cfg_sim: Any, raw: Path, out_dir: Path, *, speedup: float,
                   live: bool, plot: bool, stream: TextIO, messages: list[str]) -> LiveSession:
    """Write the experiment in real time while the live session (as in ``flowcell watch``) follows it."""
    store_dir = out_dir / "store"
    if store_dir.exists():
        shutil.rmtree(store_dir)
    table = TerminalTable(stream, truth_shown=True) if live else None
    lplot = LivePlot(out_dir / "live_soc.png", interactive=False, title="flowcell demo: live SOC",
                     every=10) if plot else None
    session = LiveSession(cfg_sim, store_dir, potentiostat=raw / "potentiostat.csv", start=truth.start,
                          table=table, csv_path=out_dir / "live_soc.csv", plot=lplot,
                          truth=lambda t: float(truth.soc_at(t)))
    session.watch(raw / "nmr", raw / "epr", polling=False)
    stop, err = threading.Event(), []

    def writer() -> None:
        try:
            sim.write(realtime_speedup=speedup, stop=stop)
        except BaseException as exc:  # reported below
            err.append(exc)

    th = threading.Thread(target=writer, name="flowcell-demo-simulator", daemon=True)
    th.start()
    try:
        while th.is_alive():
            th.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        th.join()
        session.close()
        raise
    if err:
        session.close()
        raise err[0]
    n_expected = len(truth.spectra)
    if not session.watcher.wait_idle(timeout=60.0, min_rows=n_expected):  # type: ignore[union-attr]
        messages.append(f"watcher idle timeout: {len(session.store)} of {n_expected} rows stored")
    return session


def _live_check(session: LiveSession, truth_soc: Callable[[float], float], settle_s: float,
                messages: list[str]) -> tuple[pd.DataFrame, float, float, bool]:
    """The live states as a table with the true SOC; max and rms error after ``settle_s``."""
    live_df = pd.DataFrame([s.as_dict() for s in session.history])
    if not len(live_df):
        messages.append("no live SOC at all")
        return live_df, math.nan, math.nan, False
    live_df["true_soc"] = [float(truth_soc(t)) for t in live_df["t_s"]]
    late = live_df[(live_df["t_s"] >= settle_s) & (live_df["flag"] == "")]
    errs = (late["soc"] - late["true_soc"]).abs().to_numpy(float)
    live_max = float(errs.max()) if errs.size else math.nan
    live_rms = float(np.sqrt(np.mean(errs ** 2))) if errs.size else math.nan
    ok = bool(np.isfinite(live_max) and live_max <= LIVE_TOL) and session.failure is None
    if session.failure:
        messages.append(f"live estimate failed: {session.failure}")
    if not (np.isfinite(live_max) and live_max <= LIVE_TOL):
        messages.append(f"live SOC off the truth by up to {live_max:.4f} (tolerance {LIVE_TOL})")
    return live_df, live_max, live_rms, ok


def _fit(table: pd.DataFrame, cfg_sim: Any, potlog: pd.DataFrame, model: Any, conf_interval: bool,
         say: Callable[[str], None], messages: list[str]) -> tuple[Any, bool]:
    """Fit :data:`DEMO_FREE` and print the parameter table; (outcome, every truth inside its interval)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcome = fit_table(table, cfg_sim, potlog, free=DEMO_FREE, model=model, truth=DEMO_TRUTH,
                                conf_interval=conf_interval)
    except Exception as exc:  # noqa: BLE001 - the report still gets written
        messages.append(f"fit failed: {type(exc).__name__}: {exc}")
        say(f"fit failed: {exc}")
        return None, False
    n_soc = sum("SOC left" in str(w.message) for w in caught)
    for w in caught:
        if "SOC left" not in str(w.message):
            say(f"fit warning: {w.message}")
    if n_soc:
        say(f"(the optimiser tried {n_soc} parameter sets that over-discharge the cell; harmless)")
    say("")
    say(f"{'parameter':>10} {'true':>10} {'fitted':>10} {'95 % interval':>25}  inside  flags")
    for _, r in outcome.table().iterrows():
        tv = r["truth"]
        ins = "" if r["truth_inside"] is None else ("yes" if r["truth_inside"] else "NO")
        tvs = f"{tv:10.4g}" if np.isfinite(tv) else f"{'-':>10}"
        sig = significant_digits(r["value"], r["ci95_hi"] - r["ci95_lo"])
        say(f"{r['parameter']:>10} {tvs} {r['value']:10.{sig}g} "
            f"[{r['ci95_lo']:10.{sig}g}, {r['ci95_hi']:10.{sig}g}]  {ins:>6}  {r['flags']}")
    ok = bool(outcome.result.success) and outcome.all_inside()
    if not ok:
        messages.append("a true parameter lies outside its fitted 95 % interval (or the fit failed)")
    return outcome, ok


def _save_for_refit(raw: Path, out_dir: Path, cfg_sim: Any, messages: list[str]) -> None:
    """Keep what a later ``flowcell fit OUT/store`` needs: the potentiostat log and the config."""
    try:
        shutil.copy2(raw / "potentiostat.csv", out_dir / "potentiostat.csv")
        ins = replace(cfg_sim.instruments, potentiostat=(out_dir / "potentiostat.csv").resolve())
        replace(cfg_sim, instruments=ins).write_toml(out_dir / "experiment.toml")
    except Exception as exc:  # noqa: BLE001 - not essential
        messages.append(f"could not save experiment.toml for a later fit: {exc}")


def _write_outputs(out_dir: Path, outcome: Any, live_df: pd.DataFrame, truth: Any, summary: dict,
                   notes: list[str]) -> Path:
    """report.md with its plots, and the simulator's truth."""
    report = write_report(out_dir, outcome, title="flowcell demo: simulated DHAQ charge/rest/discharge",
                          live=live_df if len(live_df) else None, truth=truth.frame(), summary=summary,
                          notes=notes
                          + ["True parameters are ASSUMED placeholders (docs/physics.md §2.6 in the flowcell "
                             "repository), chosen to be identifiable in a few hours; k1 (k_ex, O/R "
                             "self-exchange) and kc are small enough for the oxidised-form lines to stay "
                             "observable at low SOC (docs/physics.md §1.4 in the flowcell repository)."])
    truth.save(out_dir / "truth")
    return report


def _raw_dir(out_dir: Path, keep_raw: bool) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """Where the simulated instruments write: ``out_dir/raw`` (emptied) or a temporary folder.

    Returns
    -------
    tuple
        ``(raw, tmp)``: the folder and the temporary directory to clean up (None when kept).
    """
    tmp = None
    if keep_raw:
        raw = out_dir / "raw"
        if raw.exists():
            shutil.rmtree(raw)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="flowcell-demo-")
        raw = Path(tmp.name)
    return raw, tmp


def _report_live(session: Any, truth: Any, n_rows: int, watcher_notes: list[str], settle_s: float,
                 say: Callable[[str], None], messages: list[str]) -> tuple[Any, float, float, bool]:
    """Say the watcher's notes and how the live SOC compared with the truth after ``settle_s`` (s).

    Returns
    -------
    tuple
        ``(live_df, live_max, live_rms, live_ok)`` from :func:`_live_check` (errors as SOC fractions).
    """
    for m in watcher_notes[:5]:
        say(m)
    if n_rows < len(truth.spectra):
        messages.append(f"only {n_rows} of {len(truth.spectra)} spectra reached the store")
    live_df, live_max, live_rms, live_ok = _live_check(session, truth.soc_at, settle_s, messages)
    say("")
    say(f"live SOC vs true SOC after the first {settle_s / 60:g} min: max |error| = {100 * live_max:.2f} %, "
        f"rms = {100 * live_rms:.2f} % (tolerance {100 * LIVE_TOL:g} %) -> {'OK' if live_ok else 'FAILED'}")
    if len(live_df):
        last = session.history[-1]
        say(f"K_c learnt online: {last.Kc:.3g} (±2 sd {last.Kc_lo:.3g}-{last.Kc_hi:.3g}; "
            f"true {DEMO_TRUTH['Kc']:g})")
    return live_df, live_max, live_rms, live_ok


def run_demo(out: str | Path | None = None, *, speedup: float = 250.0, hours: float = 3.0,
             seed: int = 0, live: bool = True, quick: bool = False, interval_s: float | None = None,
             keep_raw: bool = False, plot: bool = True, stream: TextIO | None = None,
             settle_s: float = 900.0, conf_interval: bool = True) -> DemoResult:
    """Run the demo (see the module docstring) and return its outcome.

    Parameters
    ----------
    out : path, optional
        Output folder (default ``./flowcell-demo-<UTC timestamp>``).
    speedup : float
        Simulated seconds per wall-clock second.
    hours : float
        Simulated duration, h.
    seed : int
        Noise seed.
    live : bool
        Print the live table (the filter runs either way).
    quick : bool
        Test settings: 2 h at 1000x, a spectrum pair every 3 min (same code path).
    interval_s : float, optional
        Time between spectrum pairs, s (default 120 s, 180 s with ``quick``).
    keep_raw : bool
        Keep the simulated instrument files in ``<out>/raw`` instead of a temporary folder.
    plot : bool
        Write the updating ``live_soc.png``.
    stream : text stream
        Where to print (default stdout).
    settle_s : float
        Simulated time excluded from the live-SOC check ("after the first minutes"), s.
    conf_interval : bool
        Profile-likelihood intervals in the fit (needed for the check).
    """
    t_wall = time.monotonic()
    stream = stream or sys.stdout
    if quick:
        hours, speedup = min(hours, 2.0), max(speedup, 1000.0)
        interval_s = interval_s or 180.0
    interval_s = interval_s or 120.0
    out_dir = Path(out) if out else Path.cwd() / f"flowcell-demo-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    out_dir.mkdir(parents=True, exist_ok=True)
    messages: list[str] = []

    def say(msg: str) -> None:
        stream.write(msg + "\n")
        stream.flush()

    cfg = load_demo_config()
    protocol = demo_protocol(hours, C_tot_M=cfg.electrolyte.concentration_M, volume_L=cfg.electrolyte.volume_L)
    say(f"flowcell demo: {hours:g} h simulated at {speedup:g}x "
        f"(~{hours * 3600 / speedup:.0f} s), spectra every {interval_s / 60:g} min, seed {seed}")
    say(f"protocol: {protocol.describe()}")
    say("true parameters (ASSUMED): " + ", ".join(f"{k} = {v:g}" for k, v in DEMO_TRUTH.items()))
    say("the live SOC learns K_c online (no constant given beforehand)")
    model = compiled_model(cfg)
    raw, tmp = _raw_dir(out_dir, keep_raw)
    try:
        sim = ExperimentSimulator(cfg, protocol, model, raw, params=DEMO_TRUTH, interval_s=interval_s,
                                  seed=seed, obs_peaks_cfg=ObservablesConfig.default())
        truth = sim.prepare()
        sim.setup_files()
        cfg_sim = sim.cfg_written
        with _KeepWarnings("ingest.live.watch", "flowcell.live") as keep:
            session = _simulate_live(sim, truth, cfg_sim, raw, out_dir, speedup=speedup, live=live, plot=plot,
                                     stream=stream, messages=messages)
            table = session.store.table()
            n_rows = len(session.store)
            session.close()
        watcher_notes = [f"live: {m}" for m in keep.records]
        live_df, live_max, live_rms, live_ok = _report_live(session, truth, n_rows, watcher_notes, settle_s,
                                                            say, messages)
        say(f"fitting {', '.join(DEMO_FREE)} to {n_rows} spectra (profile-likelihood intervals) ...")
        outcome, fit_ok = _fit(table, cfg_sim, read_potentiostat(raw / "potentiostat.csv"), model,
                               conf_interval, say, messages)
        ok = live_ok and fit_ok and n_rows >= len(truth.spectra)
        elapsed = time.monotonic() - t_wall
        summary = {
            "simulated hours": hours, "speed-up": speedup, "spectra": n_rows, "seed": seed,
            "live SOC max |error| after settling": live_max, "live SOC rms error": live_rms,
            "live tolerance": LIVE_TOL, "all true parameters inside 95 % intervals": fit_ok,
            "wall time (s)": round(elapsed, 1), "result": "OK" if ok else "FAILED",
        }
        report = _write_outputs(out_dir, outcome, live_df, truth, summary, messages + watcher_notes)
        _save_for_refit(raw, out_dir, cfg_sim, messages)
        say(f"\nreport: {report}")
        say(f"demo {'OK' if ok else 'FAILED'} in {elapsed:.0f} s")
        return DemoResult(ok, live_max, live_rms, live_df, outcome, out_dir, n_rows, elapsed, truth, messages)
    finally:
        if tmp is not None:
            tmp.cleanup()
