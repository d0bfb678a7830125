"""TopSpin's audit trail ``audita.txt``: the acquisition's start and end (docs/physics.md §5.1).

TopSpin writes :data:`CLOSING_FILE` into the expno when an acquisition ends; its first
entry written by ``zg`` holds ``started at <date time zone>`` (the start) and its ``WHEN``
stamp (the end).  Used by :mod:`ingest.readers.bruker` (times, completeness); kept apart
so that module stays a readable size.
"""

from __future__ import annotations

import os
import re
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ingest.readers.bruker_params import _MAX_PARAM_BYTES
from ingest.readers.checks import read_bytes, read_small, regular_size
from ingest.types import IngestError

__all__ = ["CLOSING_FILE", "read_audita"]

#: TopSpin writes this file into the expno when an acquisition ends.
CLOSING_FILE = "audita.txt"

_WHEN = r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*([+-]\d{1,4})?"
_ENTRY_RE = re.compile(r"\(\s*\d+\s*,\s*<" + _WHEN + r">(.*?)(?=\n\(\s*\d+\s*,\s*<|##END|\Z)", re.DOTALL)
#: :data:`_ENTRY_RE` in two parts: an entry's head, and where its body ends (the next head's
#: line, ``##END`` or the end of the text), found with searches instead of a lookahead at
#: every character of the lazy body (~5 instead of ~25 us an audit trail; the same entries).
_HEAD_RE = re.compile(r"\(\s*\d+\s*,\s*<" + _WHEN + r">")
_NEXT_RE = re.compile(r"\n\(\s*\d+\s*,\s*<")
_STARTED_RE = re.compile(r"started at\s+" + _WHEN)


def _parse_when(stamp: str, zone: str | None) -> datetime:
    """``2010-04-11 14:38:22.760`` + ``+0200`` (or ``-500``) -> aware UTC datetime."""
    dt = datetime.fromisoformat(stamp.replace(" ", "T"))
    if zone in ("+0000", "-0000"):  # what the conversion below gives, without it
        return dt.replace(tzinfo=timezone.utc)
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
    text = _text(os.fspath(path))
    if text is None:
        return None, None
    if "started at" not in text:  # no entry can match (the common case of a file without zg)
        return None, None
    for off, when, zone, body in _entries(text):
        s = _STARTED_RE.search(body)
        if s:
            try:
                return _parse_when(s.group(1), s.group(2)), _parse_when(when, zone)
            except (ValueError, OverflowError) as exc:
                raise IngestError(path, f"audit entry at byte offset {off}: bad time stamp ({exc})") from None
    return None, None


def _entries(text: str):
    """(offset, WHEN, zone, body) of each audit entry, as ``_ENTRY_RE.finditer`` gives them."""
    pos = 0
    while True:
        m = _HEAD_RE.search(text, pos)
        if m is None:
            return
        end = m.end()
        nxt = _NEXT_RE.search(text, end)
        stop = text.find("##END", end)
        body_end = min(nxt.start() if nxt else len(text), stop if stop >= 0 else len(text))
        yield m.start(), m.group(1), m.group(2), text[end:body_end]
        pos = body_end


def _text(path: str) -> str | None:
    """The file's text (Latin-1), None when it is absent.  The usual case (a small regular
    file) in one stat and one read; anything else through the checks of
    :func:`ingest.readers.checks.read_bytes`, which word the errors."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode) and 0 < st.st_size <= _MAX_PARAM_BYTES:
        raw = read_small(path, st.st_size)
        if len(raw) < st.st_size:
            raise IngestError(path, f"{CLOSING_FILE} shrank while being read (byte offset {len(raw)})")
        return raw.decode("latin-1")
    p = Path(path)
    try:
        if regular_size(p, CLOSING_FILE) > _MAX_PARAM_BYTES:
            raise IngestError(p, f"{CLOSING_FILE} larger than {_MAX_PARAM_BYTES} bytes: not an audit trail")
        return read_bytes(p, what=CLOSING_FILE).decode("latin-1")
    except IngestError:
        if not p.exists():
            return None
        raise
