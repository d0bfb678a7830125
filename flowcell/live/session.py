"""One live session: store + watcher + live SOC + potentiostat, behind ``flowcell watch`` and ``flowcell demo``.

Every row the watcher commits to the store goes through :meth:`LiveSession.on_row`:

1. the potentiostat log is read incrementally (its warnings, e.g. NaN or swapped rows,
   are shown once; a missing or unreadable log is in the status line, never a silent
   zero current);
2. the row is placed at its own acquisition mid-time (:class:`flowcell.live.timing.RowClock`);
   a row with no usable time stays in the store but is flagged and counted and never
   touches the state;
3. the estimator (:class:`flowcell.live.estimator.LiveSOC`) folds it in at that time;
4. the table, ``live_soc.csv`` and the plot are updated.

The session fails (:attr:`LiveSession.failure`, a reason; the commands exit non-zero)
when ``max_rows_without_soc`` rows in a row give no SOC, or the store cannot be written.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from flowcell.config import ExperimentConfig
from flowcell.fit.pipeline import observables_config
from flowcell.live.csvlog import LiveCsv
from flowcell.live.estimator import LiveSOC
from flowcell.live.plot import LivePlot
from flowcell.live.potlog import PotentiostatTail, SessionCoulombs
from flowcell.live.state import SessionStatus, SOCState
from flowcell.live.table import TerminalTable
from flowcell.live.timing import RowClock
from flowcell.params import resolve_params
from ingest.live.store import Store
from ingest.live.watch import Watcher

__all__ = ["MAX_ROWS_WITHOUT_SOC", "LiveSession", "SessionStatus"]

log = logging.getLogger("flowcell.live")

#: The live estimate has failed after this many rows in a row without an SOC.
MAX_ROWS_WITHOUT_SOC = 20


class _ToTable(logging.Handler):
    """Warnings of the watcher and the session printed above the live table, not across it."""

    LOGGERS = ("ingest.live.watch", "flowcell.live")

    def __init__(self, table: TerminalTable) -> None:
        super().__init__(logging.WARNING)
        self.table = table
        self._old = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.table.note(record.getMessage())
        except Exception:  # noqa: BLE001 - a broken terminal must not stop the session
            self.handleError(record)

    def install(self) -> None:
        for name in self.LOGGERS:
            lg = logging.getLogger(name)
            self._old[name] = lg.propagate
            lg.addHandler(self)
            lg.propagate = False

    def remove(self) -> None:
        for name, old in self._old.items():
            lg = logging.getLogger(name)
            lg.removeHandler(self)
            lg.propagate = old


class LiveSession:
    """Store + watcher + live SOC + potentiostat for one experiment.

    Parameters
    ----------
    cfg : ExperimentConfig
    store : Store or path
        The experiment's store (a folder is opened or created; an unwritable one is a failure).
    params : mapping, optional
        Resolved model parameters; default ``flowcell.params.resolve_params(cfg)``.
    potentiostat : path, log object, or None
        The potentiostat log; default ``[instruments] potentiostat`` (None there: no log).
    start : datetime, optional
        Session time zero; default the log's start, else the first good row's time.
    table : TerminalTable, optional
    csv_path : path, optional
        Where to write ``live_soc.csv`` as it goes.
    plot : LivePlot, optional
    truth : callable, optional
        ``t_s -> true SOC`` (the demo's simulator), shown next to the estimate.
    max_rows_without_soc : int
    """

    _FROM_CONFIG = object()

    def __init__(self, cfg: ExperimentConfig, store: Store | str | Path, *, params: Mapping[str, float] | None = None,
                 potentiostat: Any = _FROM_CONFIG, start: datetime | None = None,
                 table: TerminalTable | None = None, csv_path: str | Path | None = None,
                 plot: LivePlot | None = None, truth: Callable[[float], float] | None = None,
                 max_rows_without_soc: int = MAX_ROWS_WITHOUT_SOC) -> None:
        self.cfg = cfg
        self.failure: str | None = None
        self.store = store if isinstance(store, Store) else Store(store)
        if potentiostat is self._FROM_CONFIG:
            potentiostat = cfg.instruments.potentiostat
        if isinstance(potentiostat, (str, Path)):
            potentiostat = PotentiostatTail(potentiostat)
        self.coulombs = SessionCoulombs(potentiostat)
        ins = cfg.instruments
        self.clock = RowClock(start, clock_offsets_s={"nmr": ins.nmr_clock_offset_s, "epr": ins.epr_clock_offset_s})
        self.coulombs.refresh(self.clock.start)
        if self.clock.start is None and potentiostat is not None:
            self.clock.set_start(getattr(potentiostat, "start", None))
        self.estimator = LiveSOC(cfg, resolve_params(cfg) if params is None else params, coulombs=self.coulombs)
        self.estimator.utc = self._utc  # each state carries its UTC time (no dataclasses.replace per row)
        self.table, self.plot, self.truth = table, plot, truth
        self._to_table = _ToTable(table) if table is not None else None
        if self._to_table is not None:
            self._to_table.install()
        self.csv = LiveCsv(csv_path) if csv_path is not None else None
        self.max_rows_without_soc = int(max_rows_without_soc)
        self.status = SessionStatus(potentiostat=self.coulombs.status)
        self.history: list[SOCState] = []
        self.watcher: Watcher | None = None
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._without_soc = 0
        self._closed = False
        if self.coulombs.log is None:
            self._note("no potentiostat log configured ([instruments] potentiostat): no coulomb counting, "
                       "the SOC rests on the spectra alone and its uncertainty grows")
        elif not self.coulombs.ok:
            self._note(f"potentiostat log {self.coulombs.status}: no coulomb counting until it can be read")

    # ---------------------------------------------------------------- rows
    def on_row(self, row: Mapping[str, Any]) -> SOCState:
        """Fold one stored row into the estimate (thread-safe); returns the state shown for it."""
        with self._lock:
            self.status.rows += 1
            self._refresh_log()
            placed = self.clock.place(row)
            if placed.flag:
                st = self.estimator.state(kind=row.get("kind"), flag=placed.flag)
                self.status.flagged += 1
                self.status.flags[placed.flag] = self.status.flags.get(placed.flag, 0) + 1
                log.warning("%s: %s time (%s); kept in the store, not used for the SOC",
                            row.get("source", "row"), placed.flag, placed.stamp)
            else:
                self.coulombs.refresh(self.clock.start, read=False)  # the start may be set now; read above
                st = self.estimator.update(row, placed.t_s)
                if st.rejected and not st.used:
                    self.status.rejected_rows += 1
                self.status.used += bool(st.used)
            ok = not st.flag and math.isfinite(st.soc) and math.isfinite(st.soc_sd)
            self._without_soc = 0 if ok else self._without_soc + 1
            if self._without_soc >= self.max_rows_without_soc and self.failure is None:
                self.failure = f"no SOC for {self._without_soc} rows in a row (last: {st.flag or 'not finite'})"
            self.history.append(st)
            self._show(st, row)
            return st

    def _utc(self, t_s: float) -> datetime | None:
        return self.clock.utc(t_s)

    def _refresh_log(self) -> None:
        self.coulombs.refresh(self.clock.start)
        if self.clock.start is None and self.coulombs.log is not None:
            self.clock.set_start(getattr(self.coulombs.log, "start", None))
        for w in self.coulombs.new_warnings():
            self._note(f"potentiostat: {w}")
        st = self.coulombs.status
        if st != self.status.potentiostat:
            if st != "ok":
                self._note(f"potentiostat log {st}: no coulomb counting, SOC uncertainty grows")
            self.status.potentiostat = st

    def _show(self, st: SOCState, row: Mapping[str, Any]) -> None:
        s = self.refresh_status()
        true = float(self.truth(st.t_s)) if self.truth is not None and math.isfinite(st.t_s) else math.nan
        if self.csv is not None:
            self.csv.update(st, source=str(row.get("source", "")), rejection_rate=s.rejection_rate,
                            mismatch=s.mismatch, true_soc=true)
        if self.table is not None:  # last: on a terminal it wakes the drawing thread
            self.table.update(st, s, true)
        if self.plot is not None:
            if self.plot.interactive:  # a GUI window is drawn from the main thread, in run()
                self.plot.add(st, true)
            else:
                self.plot.update(st, true)

    def _note(self, msg: str) -> None:
        log.warning(msg)  # above the table when there is one (_ToTable), else on stderr

    def refresh_status(self) -> SessionStatus:
        """Bring the status up to date (pending files, elapsed time, store errors) and return it."""
        s = self.status
        s.elapsed_s = time.monotonic() - self._t0
        s.mismatch, s.rejection_rate = self.estimator.mismatch, self.estimator.rejection_rate
        if self.watcher is not None:
            s.pending = len(self.watcher.pending())
            err = self.watcher.store_error
            if err and self.failure is None:
                self.failure = f"the store cannot be written: {err}"
        s.failure = self.failure
        return s

    # ---------------------------------------------------------------- watching
    def watch(self, nmr_dir: Any = None, epr_dir: Any = None, *, polling: bool | None = None,
              **options: Any) -> Watcher:
        """Start a watcher on the config's folders (or those given) feeding :meth:`on_row`."""
        ins = self.cfg.instruments
        self.watcher = Watcher(nmr_dir or ins.nmr_dir, epr_dir or ins.epr_dir, self.store,
                               observables_config(self.cfg), on_row=self.on_row, polling=polling,
                               nmr_clock_offset_s=ins.nmr_clock_offset_s,
                               epr_clock_offset_s=ins.epr_clock_offset_s,
                               standards=(getattr(ins, "epr_standard", None),), **options)
        self._t0 = time.monotonic()
        if self.table is not None:
            self.table.idle = self.watcher.idle  # redraws wait for the file in hand (issue 13)
        return self.watcher.start()

    def run(self, duration_s: float | None = None, idle_exit_s: float | None = None,
            stop: threading.Event | None = None) -> None:
        """Block while the watcher works: until ``duration_s``, ``stop``, or ``idle_exit_s``
        seconds with nothing pending and no new row; refreshes the status line meanwhile."""
        assert self.watcher is not None, "call watch() first"
        t0 = last = time.monotonic()
        n_last = n_drawn = -1
        stop = stop or threading.Event()
        while not stop.is_set() and (duration_s is None or time.monotonic() - t0 < duration_s):
            stop.wait(0.25)
            self.refresh_status()
            if self.plot is not None and self.plot.interactive and len(self.plot.states) != n_drawn:
                n_drawn = len(self.plot.states)
                self.plot.draw()
            n = self.status.rows
            if n != n_last:
                n_last, last = n, time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - last >= idle_exit_s \
                    and self.watcher.wait_idle(timeout=0.1):
                break

    def close(self) -> None:
        """Stop the watcher, close the store and the outputs; a run with rows but no SOC fails.
        (A second call does nothing.)"""
        if self._closed:
            return
        self._closed = True
        if self.watcher is not None:
            self.watcher.stop()
        self.refresh_status()
        if self.status.rows and not any(math.isfinite(s.soc) and not s.flag for s in self.history) \
                and self.failure is None:
            self.failure = f"{self.status.rows} rows but no SOC estimate"
        self.status.failure = self.failure
        if self._to_table is not None:
            self._to_table.remove()
            self._to_table = None
        for out in (self.table, self.csv, self.plot):
            if out is not None:
                out.close()
        self.store.close()
