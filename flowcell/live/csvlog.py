"""``live_soc.csv``: the live estimate written row by row as it comes."""

from __future__ import annotations

import csv
import math
from operator import attrgetter
from pathlib import Path
from typing import Any

from flowcell.live.state import SOCState

__all__ = ["CSV_COLUMNS", "LiveCsv"]

#: Columns of ``live_soc.csv``: ``soc`` on the initial quinone, ``soc_active`` on the active quinone left.
CSV_COLUMNS = ("time_utc", "t_s", "soc", "soc_active", "soc_sd", "soc_coulomb", "Kc", "Kc_lo", "Kc_hi",
               "nmr_scale", "epr_scale", "hdo_ref_ppm", "radical_M", "current_A", "kind", "source",
               "row_time_s", "used", "rejected", "flag", "rejection_rate", "mismatch", "true_soc")


# the columns in CSV_COLUMNS order: SOCState attributes read in one call, then the row's own
_HEAD = attrgetter(*CSV_COLUMNS[1:CSV_COLUMNS.index("source")])  # t_s ... kind
assert CSV_COLUMNS[CSV_COLUMNS.index("source"):] == ("source", "row_time_s", "used", "rejected", "flag",
                                                      "rejection_rate", "mismatch", "true_soc")


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return ""
    return v


class LiveCsv:
    """Append one line per state to ``path`` (header first; flushed at once).

    A flagged row (``flag`` set: untimed, future-dated ...) is written too, with the
    estimate as it stood, so the file shows every row that arrived.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", newline="", encoding="utf-8")
        self._w = csv.writer(self._fh)
        self._w.writerow(CSV_COLUMNS)
        self._fh.flush()

    def update(self, state: SOCState, *, source: str = "", rejection_rate: float = math.nan,
               mismatch: float = math.nan, true_soc: float = math.nan) -> None:
        t = state.time_utc
        cells = [t.isoformat() if t is not None else "", *_HEAD(state), source, state.row_time_s,
                 ",".join(state.used), ",".join(state.rejected), state.flag, rejection_rate, mismatch, true_soc]
        self._w.writerow([_cell(v) for v in cells])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
