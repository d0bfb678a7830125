"""Two-column CSV/TXT EPR exports (field, intensity): identify, read, completeness.

Two columns, field and intensity.  The field unit comes from the
``field_unit`` argument, else the header (``mT``, ``G``/``Gauss``, ``T``),
else the magnitude (X-band assumed: values >= 1500 are G, values < 5 are
T, otherwise mT).  No acquisition parameters: those meta fields are None.

Completeness: nothing in a CSV declares its length.  :func:`is_complete`
asks only that the last record ends with a line break; the live watcher
then waits the long quiet period
:data:`ingest.live.completion.UNSIZED_QUIET_S` before it trusts the file.
Values must be finite and the field column strictly monotonic (a half-written
or garbled export is refused, naming the line).  Formats: docs/physics.md §5.6.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ingest.readers.checks import checked, read_bytes
from ingest.readers.epr_common import FIELD_UNITS
from ingest.types import EPRMeta, EPRSpectrum, IngestError

__all__ = ["FIELD_RANGES", "is_complete", "is_epr_csv", "read_epr_csv"]

FIELD_RANGES = ((0.01, 2.0), (10.0, 2000.0), (100.0, 20000.0))


def is_epr_csv(p: Path) -> bool:
    """Text with >= 10 rows of 2-3 numeric columns, the first monotonic and in an EPR field range."""
    try:
        with open(p, "rb") as fh:
            h = fh.read(65536)
    except OSError:
        return False
    if not h or b"\x00" in h:
        return False
    lines = h.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(h) == 65536:
        lines = lines[:-1]  # last one may be cut
    rows: list[list[float]] = []
    header_lines = 0
    for ln in lines:
        s = ln.strip()
        if not s:
            continue
        parts = [x for x in re.split(r"[,;\t ]+", s) if x]
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            if rows:
                return False  # text after data: not a plain two-column export
            header_lines += 1
            if header_lines > 3:
                return False
            continue
        if not 2 <= len(vals) <= 3:
            return False
        rows.append(vals)
    if len(rows) < 10 or len({len(r) for r in rows}) != 1:
        return False
    x = [r[0] for r in rows]
    d = [b - a for a, b in zip(x, x[1:])]
    if not (all(v > 0 for v in d) or all(v < 0 for v in d)):
        return False
    lo, hi = min(x), max(x)
    return any(a <= lo and hi <= b for a, b in FIELD_RANGES)


def is_complete(path: Path) -> bool:
    """True when the file is not empty and its last byte is a line break."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                return False
            fh.seek(-1, 2)
            return fh.read(1) in (b"\n", b"\r")
    except OSError:
        return False


@checked()
def read_epr_csv(path: str | Path, field_unit: str | None = None) -> EPRSpectrum:
    """Read a two-column (field, intensity) CSV/TXT export.

    Parameters
    ----------
    path : str or Path
    field_unit : {'G', 'mT', 'T'} or None
        Field unit; None detects it from the header, else from the magnitude
        (X-band: >= 1500 → G, < 5 → T, otherwise mT).

    Returns
    -------
    EPRSpectrum
        Acquisition parameters are unknown: meta fields are None
        (docs/physics.md §5.6; the normalisation must come from the config).
    """
    path = Path(path)
    try:
        text = read_bytes(path, what="CSV file").decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise IngestError(path, f"cannot read: {exc}") from exc
    header: list[str] = []
    rows: list[tuple[float, float]] = []
    for line in re.split(r"\r\n|\r|\n", text):
        s = line.strip()
        if not s:
            continue
        if ";" in s:
            parts = [q.strip().replace(",", ".") for q in s.split(";")]
        elif "," in s:
            parts = [q.strip() for q in s.split(",")]
        else:
            parts = s.split()
        try:
            vals = [float(q) for q in parts if q != ""]
        except ValueError:
            if rows:
                raise IngestError(path, f"non-numeric line after the data started: {s[:60]!r}")
            header.append(s)
            continue
        if len(vals) < 2:
            raise IngestError(path, f"line with fewer than 2 columns: {s[:60]!r}")
        rows.append((vals[0], vals[1]))
    if len(rows) < 2:
        raise IngestError(path, "fewer than 2 numeric rows: not a two-column EPR export")
    arr = np.array(rows, float)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise IngestError(path, f"data row {int(np.flatnonzero(bad)[0]) + 1} holds a non-finite value (NaN/inf)")
    step = np.diff(arr[:, 0])
    if not (np.all(step > 0) or np.all(step < 0)):
        i = int(np.flatnonzero(step * np.sign(step[0] or 1) <= 0)[0]) + 2
        raise IngestError(path, f"field column is not strictly monotonic (data row {i}): not a field sweep, or garbled")
    unit = field_unit
    how = "argument"
    if unit is None:
        h = " ".join(header)
        if re.search(r"\bmT\b", h):
            unit, how = "mT", "header"
        elif re.search(r"\b(G|Gauss|gauss)\b", h):
            unit, how = "G", "header"
        elif re.search(r"\[T\]|\(T\)|\bTesla\b", h):
            unit, how = "T", "header"
        else:
            med = float(np.median(np.abs(arr[:, 0])))
            unit = "G" if med >= 1500 else ("T" if med < 5 else "mT")
            how = "magnitude"
    if unit.upper() not in FIELD_UNITS:
        raise IngestError(path, f"unknown field unit {unit!r}")
    meta = EPRMeta(path=path, format="csv",
                   extra={"header": header, "field_unit": unit, "field_unit_from": how})
    return EPRSpectrum(field_T=arr[:, 0] * FIELD_UNITS[unit.upper()], intensity=arr[:, 1], meta=meta)
