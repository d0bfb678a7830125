"""When was a row measured?  Row times, and the rows whose time cannot be trusted.

A row is placed at its own acquisition mid-time (``time_mid``, else the middle of
``time_start``/``time_end``), with the instrument's clock offset removed
(docs/physics.md §1.7).  A row whose time is missing, NaN, before 1990, more than a
day ahead of the wall clock, or far outside the run never reaches the filter: it is
kept in the store and flagged, so one bad file cannot poison the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

__all__ = ["EARLIEST", "MAX_AHEAD_S", "MAX_OUTSIDE_S", "RowClock", "RowTime"]

#: Instruments with a file format this package reads did not exist before this.
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
#: A row more than this ahead of the wall clock is from a wrong clock, s.
MAX_AHEAD_S = 86400.0
#: A row this far before the run's start or after its last good row is not of this run, s.
MAX_OUTSIDE_S = 86400.0
# the same bounds in integer nanoseconds (``pd.Timestamp.value``): exact, and no Timestamp arithmetic per row
_EARLIEST_NS = pd.Timestamp(EARLIEST).value
_AHEAD_NS, _OUTSIDE_NS = int(MAX_AHEAD_S * 1e9), int(MAX_OUTSIDE_S * 1e9)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NS_PER_DAY = 86_400_000_000_000


@dataclass(frozen=True)
class RowTime:
    """Where a row sits in time.

    Attributes
    ----------
    t_s : float
        Seconds since the session start (NaN when ``flag`` is set).
    stamp : pandas.Timestamp or None
        The row's UTC time (clock offset removed).
    flag : str
        '' for a usable time, else why not: 'untimed', 'before 1990', 'future',
        'outside run'.
    """

    t_s: float
    stamp: pd.Timestamp | None
    flag: str = ""


def _stamp(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT or pd.isna(ts):
        return None
    if ts.tzinfo is timezone.utc:  # already UTC (tz_convert would return an equal copy)
        return ts
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _seconds(ns: int) -> float:
    """``pd.Timedelta(ns).total_seconds()`` in integer arithmetic: whole microseconds, as pandas counts."""
    days, rem = divmod(ns, _NS_PER_DAY)
    secs, rem = divmod(rem, 1_000_000_000)
    return days * 86400 + secs + (rem // 1000) / 1_000_000


def row_stamp(row: Mapping[str, Any]) -> pd.Timestamp | None:
    """The row's acquisition mid-time as a UTC Timestamp, or None."""
    mid = _stamp(row.get("time_mid"))
    if mid is not None:
        return mid
    a, b = _stamp(row.get("time_start")), _stamp(row.get("time_end"))
    if a is not None and b is not None:
        return a + (b - a) / 2
    return a or b


class RowClock:
    """Turns rows into seconds since the session start, and flags untrustworthy times.

    Parameters
    ----------
    start : datetime, optional
        Absolute time of ``t_s = 0`` (the potentiostat log's start).  When None, the
        first good row's time becomes the start (:meth:`set_start` may replace it
        later, e.g. once the potentiostat log appears).
    clock_offsets_s : mapping kind -> s
        Instrument clock minus reference clock; subtracted from rows that do not
        already carry ``clock_offset_s`` (the watcher applies it itself).
    now : callable
        Wall clock (tests pass a fixed one).
    """

    def __init__(self, start: datetime | None = None, *, clock_offsets_s: Mapping[str, float] | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.start: pd.Timestamp | None = _stamp(start)
        self.offsets = dict(clock_offsets_s or {})
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.last_good: pd.Timestamp | None = None

    def set_start(self, start: datetime | None) -> None:
        """Adopt the reference start (once known; later calls with the same start are no-ops)."""
        s = _stamp(start)
        if s is not None:
            self.start = s

    def place(self, row: Mapping[str, Any]) -> RowTime:
        """Where ``row`` sits in time, or why it cannot be placed."""
        ts = row_stamp(row)
        if ts is None:
            return RowTime(math.nan, None, "untimed")
        if "clock_offset_s" not in row:
            off = float(self.offsets.get(str(row.get("kind")), 0.0) or 0.0)
            if off:
                ts = ts - pd.Timedelta(seconds=off)
        v = ts.value  # UTC ns: the comparisons below are those of the Timestamps, exactly
        if v < _EARLIEST_NS:
            return RowTime(math.nan, ts, "before 1990")
        if v > pd.Timestamp(self.now()).value + _AHEAD_NS:
            return RowTime(math.nan, ts, "future")
        if self.start is not None and v < self.start.value - _OUTSIDE_NS:
            return RowTime(math.nan, ts, "outside run")
        if self.last_good is not None and v > self.last_good.value + _OUTSIDE_NS:
            return RowTime(math.nan, ts, "outside run")
        if self.start is None:
            self.start = ts
        if self.last_good is None or v > self.last_good.value:
            self.last_good = ts
        return RowTime(_seconds(v - self.start.value), ts)

    def utc(self, t_s: float) -> datetime | None:
        """The UTC time of ``t_s`` seconds after the start (None before a start is known)."""
        if self.start is None or not math.isfinite(t_s):
            return None
        if self.start.tzinfo is timezone.utc:  # the same instant, truncated to µs, without pandas (~15 µs)
            return _EPOCH + timedelta(microseconds=(self.start.value + int(t_s * 1e9)) // 1000)
        return (self.start + pd.Timedelta(seconds=t_s)).to_pydatetime(warn=False)
