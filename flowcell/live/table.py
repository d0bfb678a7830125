"""The live table: one line per row, fitted to the terminal, and a status line.

On a terminal the table is drawn with ``rich.live.Live`` (redrawn in place, and at the
new width when the window is resized; columns of least importance are dropped until
the rest fit, 80 columns keep the essentials).  Elsewhere (a log file, a pipe) the
header is printed once and then one plain line per row, at most 80 characters.

One drawing thread redraws when a row arrives and once a second (the elapsed time, a
resized window); rich's own 4 Hz refresh thread is off.  While the producer is busy with
a file (:attr:`TerminalTable.idle` cleared), a redraw waits, at most :data:`MAX_HOLD_S`: a
redraw is 2-3 ms of Python that would hold the GIL against the spectrum being processed.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from flowcell.live.state import SOCState

__all__ = ["COLUMNS", "MAX_HOLD_S", "TICK_S", "Column", "TerminalTable", "format_status", "render_lines"]

#: Longest a redraw waits for the producer to finish the file in hand, s.
MAX_HOLD_S = 0.25
#: Redraw at least this often (the status line's clock; a resized window), s.
TICK_S = 1.0


def _pct(v: float, fmt: str = "6.2f") -> str:
    return format(100 * v, fmt) if math.isfinite(v) else "-"


def _time(st: SOCState) -> str:
    if st.time_utc is not None:
        return st.time_utc.strftime("%H:%M:%S")
    return f"{st.t_s / 60:.1f}m" if math.isfinite(st.t_s) else "-"


def _kc(st: SOCState) -> str:
    if not math.isfinite(st.Kc):
        return "-"
    return f"{st.Kc:.2g} ({st.Kc_lo:.2g}-{st.Kc_hi:.2g})"


def _obs(st: SOCState) -> str:
    if st.flag:
        return f"{st.kind or '?'} {st.flag}"
    parts = list(st.used) + [f"{n}!" for n in st.rejected]
    return f"{st.kind or '-'} {','.join(parts) or '-'}"


@dataclass(frozen=True)
class Column:
    """A table column: header, width (characters), priority (0 = dropped last), cell text."""

    header: str
    width: int
    priority: int
    cell: Callable[[SOCState, float], str]


#: Columns of the live table (``true_soc`` is NaN unless a truth is shown, as in the demo).
COLUMNS: tuple[Column, ...] = (
    Column("time UTC", 8, 0, lambda s, tr: _time(s)),
    Column("SOC %", 6, 0, lambda s, tr: _pct(s.soc)),
    Column("±2sd %", 6, 0, lambda s, tr: _pct(2 * s.soc_sd, "5.2f")),
    Column("true %", 6, 1, lambda s, tr: _pct(tr)),
    Column("err %", 6, 1, lambda s, tr: _pct(s.soc - tr, "+.2f") if math.isfinite(tr) else "-"),
    Column("Kc (±2sd)", 18, 1, lambda s, tr: _kc(s)),
    Column("coul %", 6, 2, lambda s, tr: _pct(s.soc_coulomb)),
    Column("act %", 6, 3, lambda s, tr: _pct(s.soc_active)),
    Column("I mA", 7, 3, lambda s, tr: f"{1e3 * s.current_A:7.2f}" if math.isfinite(s.current_A) else "-"),
    Column("[R] mM", 6, 4, lambda s, tr: f"{1e3 * s.radical_M:6.2f}" if math.isfinite(s.radical_M) else "-"),
    Column("row", 14, 0, lambda s, tr: _obs(s)),
)


def _fit(columns: tuple[Column, ...], width: int) -> list[Column]:
    """The most important columns that fit in ``width`` characters (one space between)."""
    chosen = list(columns)
    for prio in sorted({c.priority for c in columns}, reverse=True):
        if sum(c.width for c in chosen) + len(chosen) - 1 <= width:
            break
        if prio == 0:
            break
        chosen = [c for c in chosen if c.priority != prio]
    return chosen


def _line(cells: list[str], cols: list[Column], width: int) -> str:
    out = " ".join(f"{v[:c.width]:>{c.width}}" if i < len(cols) - 1 else f"{v[:c.width]:<{c.width}}"
                   for i, (v, c) in enumerate(zip(cells, cols)))
    return out[:width].rstrip()


def render_lines(rows: list[tuple[SOCState, float]], width: int, *, truth_shown: bool = False) -> list[str]:
    """Header, rule and one line per (state, true SOC) fitted to ``width`` characters."""
    cols = tuple(c for c in COLUMNS if truth_shown or c.header not in ("true %", "err %"))
    chosen = _fit(cols, width)
    head = _line([c.header for c in chosen], chosen, width)
    body = [_line([c.cell(s, tr) for c in chosen], chosen, width) for s, tr in rows]
    return [head, "-" * min(len(head), width), *body]


def format_status(status: Any, width: int = 80) -> str:
    """The status line: rows, rejected (rate), mismatch (rms normalised innovation), flagged,
    pending, elapsed, potentiostat (fitted to ``width``).

    Anything abnormal (a failure, a potentiostat log that is not ``ok``) comes first, so a
    narrow terminal still shows it.
    """
    el = int(status.elapsed_s)
    parts = [f"rows {status.rows}", f"rej {status.rejected_rows} ({100 * status.rejection_rate:.0f}%)"]
    if math.isfinite(status.mismatch):
        parts.append(f"mism {status.mismatch:.1f}")
    parts += [f"flagged {status.flagged}", f"pending {status.pending}",
              f"{el // 3600:d}:{el % 3600 // 60:02d}:{el % 60:02d}"]
    pot = f"potentiostat {status.potentiostat}"
    parts.insert(0, pot) if status.potentiostat not in ("ok", "none") else parts.append(pot)
    if status.failure:
        parts.insert(0, f"FAILING: {status.failure}")
    return "  ".join(parts)[:width]


class _Renderable:
    """What ``rich.live.Live`` draws: the table at the console's current size."""

    def __init__(self, table: TerminalTable) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width, 40)
        height = max(console.size.height - 4, 3)
        lines = render_lines(self.table.rows[-height:], width, truth_shown=self.table.truth_shown)
        if self.table.status is not None:
            lines.append(format_status(self.table.status, width))
        yield Text("\n".join(lines), no_wrap=True, overflow="crop")


class TerminalTable:
    """The live table (see the module docstring).

    Parameters
    ----------
    stream : text stream, default ``sys.stdout``
    ansi : bool or None
        Redraw in place (rich) or print plain lines; None: in place on a terminal.
    truth_shown : bool
        Show the ``true %`` and ``err %`` columns (the demo).
    width : int
        Width of the plain lines, characters.

    Attributes
    ----------
    idle : threading.Event or None
        Set while the producer is idle, cleared while it is busy (the watcher's
        :attr:`ingest.live.watch.Watcher.idle`); redraws wait for it, at most :data:`MAX_HOLD_S`.
    """

    def __init__(self, stream: TextIO | None = None, *, ansi: bool | None = None, truth_shown: bool = False,
                 width: int = 80) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.ansi = bool(getattr(self.stream, "isatty", lambda: False)()) if ansi is None else ansi
        self.truth_shown = truth_shown
        self.width = width
        self.rows: list[tuple[SOCState, float]] = []
        self.status: Any = None
        self._live: Live | None = None
        self._header_done = False
        self._dirty = threading.Event()
        self._drawer: threading.Thread | None = None
        self.idle: threading.Event | None = None

    def _start(self) -> None:
        console = Console(file=self.stream, force_terminal=True)
        self._live = Live(_Renderable(self), console=console, auto_refresh=False,
                          redirect_stdout=False, redirect_stderr=False, vertical_overflow="crop")
        self._live.start()
        # a new row is drawn at once, by this thread: the watcher's thread (the caller of
        # update) goes back to the next file instead of rendering the table (a few ms)
        self._drawer = threading.Thread(target=self._draw_loop, name="live-table", daemon=True)
        self._drawer.start()

    def _draw_loop(self) -> None:
        while True:
            self._dirty.wait(TICK_S)
            idle = self.idle
            if idle is not None and self._live is not None:
                idle.wait(MAX_HOLD_S)  # the producer is on a file: draw right after it
            self._dirty.clear()
            live = self._live
            if live is None:
                return
            try:
                live.refresh()
            except Exception:  # noqa: BLE001 - a broken terminal must not stop the session
                return
            time.sleep(0.02)  # at most ~50 redraws a second during bursts

    def update(self, state: SOCState, status: Any = None, true_soc: float = math.nan) -> None:
        """Add a row (with the session status) and redraw."""
        self.rows.append((state, true_soc))
        self.status = status
        if self.ansi:
            if self._live is None:
                self._start()
            self._dirty.set()
            return
        lines = render_lines([(state, true_soc)], self.width, truth_shown=self.truth_shown)
        if not self._header_done:
            self.stream.write("\n".join(lines[:2]) + "\n")
            self._header_done = True
        self.stream.write(lines[2] + "\n")
        self.stream.flush()

    def note(self, msg: str) -> None:
        """A message above the table (warnings, the potentiostat status)."""
        if self._live is not None:
            self._live.console.print(Text(msg), no_wrap=False)
        else:
            self.stream.write(msg + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Draw the last state and leave the table on the screen."""
        if self._live is not None:
            live, self._live = self._live, None
            self._dirty.set()  # the drawing thread ends
            if self._drawer is not None:
                self._drawer.join(1.0)
            live.refresh()
            live.stop()
        elif self.status is not None and not self.ansi:
            self.stream.write(format_status(self.status, self.width) + "\n")
            self.stream.flush()
