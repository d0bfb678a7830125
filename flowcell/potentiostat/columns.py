"""Units, column names, start times and the one current convention of every reader.

The table convention (docs/physics.md §5.7)
-------------------------------------------
Every reader returns ``I_A`` as the **mean current over the interval that ends at
the row**, ``(t_{k-1}, t_k]``, so that the charge is the right-hand sum

    Q_k = Q_{k-1} + I_k (t_k - t_{k-1})

exact at every record, whatever the current did between records.  The best
interval mean a file carries is used (:func:`interval_current`), in this order:

1. ``dq`` -- EC-Lab's per-row charge increment (``dq/mA.h``, GCPL): ``I_k = dq_k / dt_k``
   (what EC-Lab's own export writes as ``<I>/mA``);
2. ``(Q-Qo)`` -- the instrument's cumulative charge, integrated at its internal
   sampling rate: ``I_k = dQ_k / dt_k`` within a loop;
3. ``<I>`` -- EC-Lab's averaged current (an interval mean already);
4. ``I`` -- an instantaneous reading.  EC-Lab logs a row at a step instant with the
   *new* current (the ``control changes`` row), so the reading at ``t_{k-1}`` is the
   current held over ``(t_{k-1}, t_k]``: ``I_k = I_{k-1}``.  A plain CSV's current
   is taken as the interval mean (``current: sample`` in its comments selects this rule).

``(Q-Qo)`` is reset to 0 by EC-Lab at the start of each loop, and the technique
pauses between loops: no charge is counted across a loop boundary (a row that
starts a loop carries ``I_A = 0``, its interval being the pause).  Loop starts come
from the header's ``Loop k from point number a to b`` table, or, while a file is
still growing, from the reset itself (``(Q-Qo)`` exactly 0 after a non-zero value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

__all__ = ["SI_NAMES", "UNIT_SCALE", "RowState", "interval_current", "parse_start", "split_name"]

#: Unit (lower case) -> SI factor (A, V, C, s).
UNIT_SCALE = {
    "a": 1.0, "ma": 1e-3, "µa": 1e-6, "ua": 1e-6, "μa": 1e-6, "na": 1e-9, "pa": 1e-12,
    "v": 1.0, "mv": 1e-3, "v/ma": 1e-3,
    "c": 1.0, "mc": 1e-3, "µc": 1e-6, "uc": 1e-6, "μc": 1e-6,
    "ma.h": 3.6, "mah": 3.6, "µa.h": 3.6e-3, "ua.h": 3.6e-3, "a.h": 3600.0, "ah": 3600.0,
    "s": 1.0, "min": 60.0, "h": 3600.0,
}

#: EC-Lab quantity name -> role in :func:`interval_current`.
SI_NAMES = {"time": "t", "I": "I", "<I>": "Imean", "(Q-Qo)": "Q", "dq": "dq", "Ewe": "E", "<Ewe>": "E",
            "control/V/mA": "control", "control": "control"}

_DATE_FORMATS = (
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S.%f", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M:%S",
)


def parse_start(text: str) -> datetime | None:
    """A start time as EC-Lab or a CSV comment writes it -> tz-aware datetime (UTC if no zone).

    EC-Lab writes ``MM/DD/YYYY HH:MM:SS[.fff]`` (day first when the first field exceeds 12).
    """
    text = text.strip()
    first = re.match(r"(\d+)[/.-]", text)
    formats = list(_DATE_FORMATS)
    if first and len(first.group(1)) <= 2 and int(first.group(1)) > 12:
        formats.sort(key=lambda f: not f.startswith("%d"))
    for fmt in formats:
        try:
            dt = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


def split_name(col: str) -> tuple[str, str]:
    """EC-Lab column -> (quantity, unit): ``'<I>/mA' -> ('<I>', 'ma')``, ``'control/V/mA' -> ('control/V/mA', 'ma')``."""
    col = col.strip()
    if col.startswith("control/"):
        return col, col.rpartition("/")[2].lower()
    name, _, unit = col.rpartition("/")
    if not name:
        return col, ""
    return name.strip(), unit.strip().lower()


@dataclass
class RowState:
    """The last accepted row, carried from one chunk of a growing file to the next."""

    t: float = np.nan
    Q: float = np.nan          # instrument (Q-Qo), C
    I_inst: float = np.nan     # instantaneous current reading, A
    loop: int = 0
    count: float = 0.0         # own cumulative charge, C
    n: int = 0                 # rows accepted so far


def interval_current(t: np.ndarray, cols: dict[str, np.ndarray], loop: np.ndarray | None = None,
                     prev: RowState | None = None, *, sample_current: bool = False,
                     charge: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Mean current over the interval ending at each row, and the loop label of each row.

    Parameters
    ----------
    t : ndarray
        Times, s, strictly increasing (and after ``prev.t``).
    cols : dict
        SI arrays by role: ``dq`` (C per row), ``Q`` (cumulative C), ``Imean`` (A), ``I`` (A).
    loop : ndarray of int, optional
        Loop label from the header; None: loops are found from ``(Q-Qo)`` resets.
    prev : RowState, optional
        The row before ``t[0]`` (a growing file); None: ``t[0]`` is the first row.
    sample_current : bool
        ``I`` is an instantaneous reading, held until the next row (EC-Lab ``I/mA``).
    charge : ndarray, optional
        The instrument's cumulative charge, C, used only to find loop resets when
        ``cols`` has no ``Q`` (default ``cols['Q']``).

    Returns
    -------
    I_A : ndarray
        A; 0 on the first row of the file and on the first row of every loop after the first.
    loop : ndarray of int
    source : str
        The column used (``'dq'``, ``'(Q-Qo)'``, ``'<I>'``, ``'I'``).
    """
    n = t.size
    first = prev is None or prev.n == 0
    t_prev = np.concatenate([[np.nan if first else prev.t], t[:-1]]) if n else t
    dt = t - t_prev
    Q = cols.get("Q")
    Qr = Q if Q is not None else charge
    if loop is None:
        base = 0 if first else prev.loop
        if Qr is not None and n:
            q_prev = np.concatenate([[np.nan if first else prev.Q], Qr[:-1]])
            reset = (Qr == 0.0) & np.isfinite(q_prev) & (q_prev != 0.0)
            loop = base + np.cumsum(reset)
        else:
            loop = np.full(n, base, dtype=int)
    loop = np.asarray(loop, dtype=int)
    loop_prev = np.concatenate([[-1 if first else prev.loop], loop[:-1]]) if n else loop
    starts = loop != loop_prev
    if "dq" in cols:
        current, source = cols["dq"] / dt, "dq"
    elif Q is not None:
        q_prev = np.concatenate([[np.nan if first else prev.Q], Q[:-1]]) if n else Q
        current, source = (Q - q_prev) / dt, "(Q-Qo)"
    elif "Imean" in cols:
        current, source = cols["Imean"].copy(), "<I>"
    elif "I" in cols:
        inst = cols["I"]
        if sample_current:
            current = np.concatenate([[np.nan if first else prev.I_inst], inst[:-1]]) if n else inst
        else:
            current = inst.copy()
        source = "I"
    else:
        raise ValueError("no current: need one of dq, (Q-Qo), <I>, I")
    current = np.where(starts, 0.0, current)
    return current, loop, source
