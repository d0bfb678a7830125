"""TopSpin's audit trail ``audita.txt``: the acquisition's start and end (docs/physics.md §5.1).

TopSpin writes :data:`CLOSING_FILE` into the expno when an acquisition ends; its first
entry written by ``zg`` holds ``started at <date time zone>`` (the start) and its ``WHEN``
stamp (the end).  Used by :mod:`ingest.readers.bruker` (times, completeness); kept apart
so that module stays a readable size.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ingest.readers.bruker_params import _MAX_PARAM_BYTES
from ingest.readers.checks import read_bytes, regular_size
from ingest.types import IngestError

__all__ = ["CLOSING_FILE", "read_audita"]

#: TopSpin writes this file into the expno when an acquisition ends.
CLOSING_FILE = "audita.txt"

_WHEN = r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*([+-]\d{1,4})?"
_ENTRY_RE = re.compile(r"\(\s*\d+\s*,\s*<" + _WHEN + r">(.*?)(?=\n\(\s*\d+\s*,\s*<|##END|\Z)", re.DOTALL)
_STARTED_RE = re.compile(r"started at\s+" + _WHEN)


def _parse_when(stamp: str, zone: str | None) -> datetime:
    """``2010-04-11 14:38:22.760`` + ``+0200`` (or ``-500``) -> aware UTC datetime."""
    dt = datetime.fromisoformat(stamp.replace(" ", "T"))
    if zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone.lstrip("+-").rjust(4, "0")
        off = timedelta(hours=int(digits[:-2]), minutes=int(digits[-2:]))
        dt = dt.replace(tzinfo=timezone(sign * off))
    else:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def read_audita(path: str | Path) -> tuple[datetime | None, datetime | None]:
    """Acquisition start and end from a TopSpin ``audita.txt``.

    The first audit entry that contains ``started at`` (written by ``zg``)
    gives the start; that entry's ``WHEN`` stamp gives the end.  Time zones in
    the file (``+0200``, ``-500``) are honoured; stamps without a zone are UTC.

    Parameters
    ----------
    path : str or Path
        ``audita.txt``.

    Returns
    -------
    (start, end) : tuple of datetime or None
        UTC-aware; ``(None, None)`` when no usable entry is found.
    """
    p = Path(path)
    try:
        if regular_size(p, CLOSING_FILE) > _MAX_PARAM_BYTES:
            raise IngestError(p, f"{CLOSING_FILE} larger than {_MAX_PARAM_BYTES} bytes: not an audit trail")
        text = read_bytes(p, what=CLOSING_FILE).decode("latin-1")
    except IngestError:
        if not p.exists():
            return None, None
        raise
    for m in _ENTRY_RE.finditer(text):
        when, zone, body = m.group(1), m.group(2), m.group(3)
        s = _STARTED_RE.search(body)
        if s:
            try:
                return _parse_when(s.group(1), s.group(2)), _parse_when(when, zone)
            except (ValueError, OverflowError) as exc:
                off = m.start()
                raise IngestError(p, f"audit entry at byte offset {off}: bad time stamp ({exc})") from None
    return None, None
