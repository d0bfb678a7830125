"""The potentiostat log as the live session sees it: charge and current on the session clock.

The log is read incrementally by :class:`flowcell.potentiostat.PotentiostatTail` (which
skips NaN and out-of-order rows with a warning).  :class:`SessionCoulombs` maps the
session's seconds to the log's own (the two starts may differ) and says loudly when the
log is missing or unreadable, so a missing log is never a silent zero current.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from flowcell.potentiostat import PotentiostatTail

__all__ = ["PotentiostatTail", "SessionCoulombs"]


def _utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class SessionCoulombs:
    """Charge and current of a log on the session clock (``t_s`` since the session start).

    Parameters
    ----------
    log : PotentiostatTail-like or None
        None: no log configured (status ``'none'``).
    """

    def __init__(self, log: Any | None) -> None:
        self.log = log
        self.offset_s = 0.0  # session time + offset = log time
        self._session_start: pd.Timestamp | None = None
        self._warned: set[str] = set()
        self._aligned: tuple[Any, Any] = (None, None)  # (session start, log start) of offset_s

    @property
    def status(self) -> str:
        return "none" if self.log is None else str(self.log.status)

    @property
    def ok(self) -> bool:
        """Counting possible: the log is read (``'replaced'``: a new file took its place, read anew)."""
        return self.log is not None and self.status in ("ok", "replaced")

    def new_warnings(self) -> list[str]:
        """Warnings of the log not returned before."""
        if self.log is None:
            return []
        out = [w for w in self.log.warnings if w not in self._warned]
        self._warned.update(out)
        return out

    def refresh(self, session_start: Any = None, *, read: bool = True) -> None:
        """Read new log rows (``read``); align the clocks once both starts are known."""
        if self.log is None:
            return
        try:
            if read:
                self.log.update()
        except Exception as exc:  # noqa: BLE001 - the log must never stop the session; status says it
            self.log.status = f"unreadable: {type(exc).__name__}: {exc}"
        raw_ls = getattr(self.log, "start", None)
        if (session_start is None or session_start is self._aligned[0]) and raw_ls is self._aligned[1]:
            return  # nothing new to align (the per-row case: no Timestamp arithmetic)
        s = _utc(session_start)
        if s is not None:
            self._session_start = s
        ls = _utc(raw_ls)
        if ls is not None and self._session_start is not None:
            self.offset_s = (self._session_start - ls).total_seconds()
            self._aligned = (session_start, raw_ls)

    def charge_at(self, t_s: float) -> float:
        log = self.log  # (the test of :attr:`ok`, inline: called several times per row)
        if log is None or log.status not in ("ok", "replaced"):
            return math.nan
        return float(log.charge_at(t_s + self.offset_s))

    def current_at(self, t_s: float) -> float:
        log = self.log
        if log is None or log.status not in ("ok", "replaced"):
            return math.nan
        return float(log.current_at(t_s + self.offset_s))
