"""``flowcell demo``: a whole in-line experiment in under two minutes.

1. A simulator thread (:class:`flowcell.simulate.simulator.ExperimentSimulator`) writes a
   Bruker 1H experiment and a BES3T EPR file per time point plus a potentiostat CSV
   into a temporary folder, in real time at a high speed-up.
2. The watcher (:class:`ingest.live.watch.Watcher`) follows the folders into a store
   (``<out>/store``).
3. :class:`flowcell.live.soc.LiveSOC` folds each new row into the live state of
   charge and prints a table that updates (with the simulator's true SOC next to
   it), and an updating plot (``<out>/live_soc.png``).
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
the science.md §2.6 placeholder and J_e 200x, so both leave a visible mark in
hours rather than days.

Electron exchange (ASSUMED, far below the library's 1e8 1/(M s) placeholders, which
make the quinone lines MHz wide and unobservable, as Z20 saw): k1 = 2e3 (O/R
self-exchange, the k_ex of the screen table) and kc = 1e3 1/(M s).  The oxidised-form
lines then broaden as ``w0 + (k1 [R] + kc [H]) / pi`` (science.md §1.4, slow exchange,
the formula of ``kinetics.observe`` used by both the simulator and the fit) to ~5 Hz
at SOC 0.05, ~14 Hz at SOC 0.3 and ~35 Hz at SOC 0.85 (0.1 M, K_c 0.0967); widths up to
20 % of the ingest window (20-24 Hz, :data:`flowcell.fit.pipeline.FWHM_CAP_FRACTION`) are
fitted.  Comproportionation still relaxes in ``1/(kc (O + H)) ~ 10 ms``, fast against
the seconds of cell-to-detector transit, so the reduced (fast-equilibrium) model holds.
k1 and kc are both free: their correlation is about -0.96 (flagged) but the line widths
at different SOC weight [R] and [H] differently, and both come back within ~4-5 %
(95 % intervals, default settings).  Broader lines' Lorentzian wings leak into the
product windows; with larger exchange rates (5e3) that inflated the anthrone sigma 10x.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from flowcell.simulate.protocol import Protocol, Step
from flowcell.fit.pipeline import observables_config

__all__ = ["DEMO_FREE", "DEMO_TRUTH", "LIVE_TOL", "DemoResult", "demo_protocol", "load_demo_config", "run_demo",
           "observables_config"]

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
    from flowcell.simulate.protocol import F
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
    from flowcell.config import ExperimentConfig
    path = Path(__file__).with_name("data") / "demo_experiment.toml"
    if path.exists():
        return ExperimentConfig.from_toml(path)
    return ExperimentConfig.from_dict(_FALLBACK_CFG, source="<flowcell.demo built-in>")


class _LiveTable:
    """The live table: redrawn in place (last ``n_rows``) on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO, header: str, n_rows: int = 15) -> None:
        self.stream, self.header, self.n_rows = stream, header, n_rows
        self.ansi = bool(getattr(stream, "isatty", lambda: False)())
        self.lines: list[str] = []
        self._drawn = 0
        if not self.ansi:
            stream.write(header + "\n" + "-" * len(header) + "\n")
            stream.flush()

    def add(self, line: str) -> None:
        self.lines.append(line)
        if self.ansi:
            text = "\n".join([self.header, "-" * len(self.header), *self.lines[-self.n_rows:]])
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self.stream.write(text + "\n")
            self._drawn = text.count("\n") + 1
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, msg: str) -> None:
        """A message above the table (the table is redrawn below it)."""
        if self.ansi and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J{msg}\n")
            self._drawn = 0
            if self.lines:
                last = self.lines.pop()
                self.add(last)
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()


class _PotLog:
    """Reads the potentiostat CSV as it grows; current and charge at a time."""

    def __init__(self, path: Path, fallback: Any) -> None:
        self.path = path
        self.fallback = fallback  # CurrentSchedule (used if the file cannot be read yet)
        self.t = np.zeros(0)
        self.I = np.zeros(0)
        self.Q = np.zeros(0)

    def refresh(self) -> None:
        from flowcell.potentiostat import coulomb_count, read_potentiostat_csv
        try:
            df = read_potentiostat_csv(self.path)
        except Exception:
            return
        t = df["t_s"].to_numpy(float)
        ok = np.isfinite(t) & np.isfinite(df["I_A"].to_numpy(float))
        if ok.sum() >= 2:
            self.t, self.I = t[ok], df["I_A"].to_numpy(float)[ok]
            self.Q = coulomb_count(self.t, self.I, method="hold")

    def charge(self, t_s: float) -> float:
        """Charge passed from 0 to ``t_s`` (zero-order hold of the logged current), C."""
        if self.t.size < 2 or t_s > self.t[-1]:
            self.refresh()
        if self.t.size < 2 or t_s > self.t[-1] + 30:
            return float(self.fallback.charge_C(t_s))
        i = int(np.clip(np.searchsorted(self.t, t_s, side="right") - 1, 0, self.t.size - 1))
        return float(self.Q[i] + self.I[i] * (t_s - self.t[i]))

    def current(self, t_s: float) -> float:
        if self.t.size < 2 or t_s > self.t[-1] + 30:
            return float(self.fallback(t_s))
        i = int(np.clip(np.searchsorted(self.t, t_s, side="right") - 1, 0, self.t.size - 1))
        return float(self.I[i])


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
    from kinetics import library

    from flowcell.live.soc import LiveSOC, LivePlot, format_state
    from flowcell.fit.pipeline import fit_table
    from flowcell.report import write_report
    from flowcell.simulate.simulator import ExperimentSimulator

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
    C, V = cfg.electrolyte.concentration_M, cfg.electrolyte.volume_L
    protocol = demo_protocol(hours, C_tot_M=C, volume_L=V)
    say(f"flowcell demo: {hours:g} h simulated at {speedup:g}x "
        f"(~{hours * 3600 / speedup:.0f} s), spectra every {interval_s / 60:g} min, seed {seed}")
    say(f"protocol: {protocol.describe()}")
    say(f"true parameters (ASSUMED): " + ", ".join(f"{k} = {v:g}" for k, v in DEMO_TRUTH.items()))
    model = library.dhaq().compile()
    tmp = None
    if keep_raw:
        raw = out_dir / "raw"
        if raw.exists():
            shutil.rmtree(raw)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="flowcell-demo-")
        raw = Path(tmp.name)
    try:
        from ingest.processing.observables import ObservablesConfig
        sim = ExperimentSimulator(cfg, protocol, model, raw, params=DEMO_TRUTH, interval_s=interval_s,
                                  seed=seed, obs_peaks_cfg=ObservablesConfig.default())
        truth = sim.prepare()
        sim.setup_files()
        cfg_sim = sim.cfg_written
        obs_cfg = observables_config(cfg_sim)
        n_expected = len(truth.spectra)

        # --- live side --------------------------------------------------------
        from ingest.live.store import Store
        from ingest.live.watch import Watcher
        store_dir = out_dir / "store"
        if store_dir.exists():
            shutil.rmtree(store_dir)
        store = Store(store_dir)
        est = LiveSOC(cfg_sim)
        lplot = LivePlot(out_dir / "live_soc.png", interactive=False, title="flowcell demo: live SOC") if plot else None
        pot = _PotLog(raw / "potentiostat.csv", truth.schedule)
        states: list[dict] = []
        lock = threading.Lock()
        last = {"t": 0.0, "q": 0.0}
        header = ("   t (min)   SOC %  ±sd %  branch  coul %  drift %  r_side %/h  [R] mM     I mA       obs"
                  "   true %   err %")
        table_out = _LiveTable(stream, header) if live else None

        def on_row(row: dict) -> None:
            with lock:
                t_s = float((pd.Timestamp(row["time_mid"]) - pd.Timestamp(truth.start)).total_seconds())
                q = pot.charge(t_s)
                st = est.update(row, pot.current(t_s), t_s, charge_C=q - last["q"])
                last["q"], last["t"] = q, t_s
                true = float(truth.soc_at(t_s))
                d = st.as_dict()
                d["true_soc"] = true
                states.append(d)
                if table_out is not None:
                    table_out.add(f"{format_state(st)} {100 * true:8.2f} {100 * (st.soc - true):+7.2f}")
                if lplot is not None and (len(states) % 10 == 0):
                    try:
                        lplot.update(st)
                    except Exception:
                        pass
                elif lplot is not None:
                    lplot.states.append(st)

        import logging

        class _Keep(logging.Handler):  # watcher warnings go into the report, not across the table
            def __init__(self) -> None:
                super().__init__(logging.WARNING)
                self.records: list[str] = []

            def emit(self, record: logging.LogRecord) -> None:
                self.records.append(record.getMessage())

        keep = _Keep()
        wlog = logging.getLogger("ingest.live.watch")
        wlog.addHandler(keep)
        old_propagate, wlog.propagate = wlog.propagate, False
        watcher = Watcher(raw / "nmr", raw / "epr", store, obs_cfg, on_row=on_row, settle_s=0.3,
                          poll_interval_s=0.2, rescan_s=5.0)
        watcher.start()
        stop = threading.Event()
        err: list[BaseException] = []

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
            watcher.stop()
            raise
        if err:
            watcher.stop()
            raise err[0]
        if not watcher.wait_idle(timeout=60.0, min_rows=n_expected):
            messages.append(f"watcher idle timeout: {len(store)} of {n_expected} rows stored")
        watcher.stop()
        wlog.removeHandler(keep)
        wlog.propagate = old_propagate
        watcher_notes = [f"watcher: {m}" for m in keep.records]
        for m in watcher_notes[:5]:
            say(m)
        n_rows = len(store)
        if n_rows < n_expected:
            messages.append(f"only {n_rows} of {n_expected} spectra reached the store")
        if lplot is not None and lplot.states:
            try:
                lplot.states.pop()
                lplot.update(est.history[-1])
            except Exception:
                pass
        live_df = pd.DataFrame(states)
        if len(live_df):
            late = live_df[live_df["t_s"] >= settle_s]
            errs = (late["soc"] - late["true_soc"]).abs().to_numpy(float)
            live_max = float(errs.max()) if errs.size else math.nan
            live_rms = float(np.sqrt(np.mean(errs ** 2))) if errs.size else math.nan
        else:
            live_max = live_rms = math.nan
        live_ok = bool(np.isfinite(live_max) and live_max <= LIVE_TOL)
        if not live_ok:
            messages.append(f"live SOC off the truth by up to {live_max:.4f} (tolerance {LIVE_TOL})")
        say("")
        say(f"live SOC vs true SOC after the first {settle_s / 60:g} min: max |error| = {100 * live_max:.2f} %, "
            f"rms = {100 * live_rms:.2f} % (tolerance {100 * LIVE_TOL:g} %) -> {'OK' if live_ok else 'FAILED'}")

        # --- fit --------------------------------------------------------------
        from flowcell.potentiostat import read_potentiostat
        say(f"fitting {', '.join(DEMO_FREE)} to {n_rows} spectra (profile-likelihood intervals) ...")
        table = store.table()
        potlog = read_potentiostat(raw / "potentiostat.csv")
        outcome = None
        fit_ok = False
        try:
            import warnings
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outcome = fit_table(table, cfg_sim, potlog, free=DEMO_FREE, model=model, truth=DEMO_TRUTH,
                                    conf_interval=conf_interval)
            n_soc = sum("SOC left" in str(w.message) for w in caught)
            for w in caught:
                if "SOC left" not in str(w.message):
                    say(f"fit warning: {w.message}")
            if n_soc:
                say(f"(the optimiser tried {n_soc} parameter sets that over-discharge the cell; harmless)")
            tab = outcome.table()
            say("")
            say(f"{'parameter':>10} {'true':>10} {'fitted':>10} {'95 % interval':>25}  inside  flags")
            for _, r in tab.iterrows():
                tv = r["truth"]
                ins = "" if r["truth_inside"] is None else ("yes" if r["truth_inside"] else "NO")
                tvs = f"{tv:10.4g}" if np.isfinite(tv) else f"{'-':>10}"
                say(f"{r['parameter']:>10} {tvs} {r['value']:10.4g} "
                    f"[{r['ci95_lo']:10.4g}, {r['ci95_hi']:10.4g}]  {ins:>6}  {r['flags']}")
            fit_ok = bool(outcome.result.success) and outcome.all_inside()
            if not fit_ok:
                messages.append("a true parameter lies outside its fitted 95 % interval (or the fit failed)")
        except Exception as exc:  # the report still gets written
            messages.append(f"fit failed: {type(exc).__name__}: {exc}")
            say(f"fit failed: {exc}")
        store.close()
        ok = live_ok and fit_ok and n_rows >= n_expected
        elapsed = time.monotonic() - t_wall
        summary = {
            "simulated hours": hours, "speed-up": speedup, "spectra": n_rows, "seed": seed,
            "live SOC max |error| after settling": live_max, "live SOC rms error": live_rms,
            "live tolerance": LIVE_TOL, "all true parameters inside 95 % intervals": fit_ok,
            "wall time (s)": round(elapsed, 1), "result": "OK" if ok else "FAILED",
        }
        report = write_report(out_dir, outcome, title="flowcell demo: simulated DHAQ charge/rest/discharge",
                              live=live_df if len(live_df) else None, truth=truth.frame(), summary=summary,
                              notes=messages + watcher_notes
                              + ["True parameters are ASSUMED placeholders (science.md §2.6), "
                                 "chosen to be identifiable in a few hours; k1 (k_ex, O/R self-exchange) "
                                 "and kc are small enough for the oxidised-form lines to stay observable "
                                 "at low SOC (science.md §1.4)."])
        truth.save(out_dir / "truth")
        # keep what a later `flowcell fit OUT/store` needs: the potentiostat log and the config
        try:
            shutil.copy2(raw / "potentiostat.csv", out_dir / "potentiostat.csv")
            ins = replace(cfg_sim.instruments, potentiostat=(out_dir / "potentiostat.csv").resolve())
            replace(cfg_sim, instruments=ins).write_toml(out_dir / "experiment.toml")
        except Exception as exc:  # not essential
            messages.append(f"could not save experiment.toml for a later fit: {exc}")
        if len(live_df):
            live_df.to_csv(out_dir / "live_soc.csv", index=False)
        say(f"\nreport: {report}")
        say(f"demo {'OK' if ok else 'FAILED'} in {elapsed:.0f} s")
        return DemoResult(ok, live_max, live_rms, live_df, outcome, out_dir, n_rows, elapsed, truth, messages)
    finally:
        if tmp is not None:
            tmp.cleanup()
