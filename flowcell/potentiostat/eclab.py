"""BioLogic EC-Lab files: the binary ``.mpr`` (written while the run goes) and the ``.mpt`` text export.

``.mpr`` is read with galvani (echemdata/galvani, GPL-3.0-or-later, an optional
dependency: ``pip install flowcell-rfb[eclab]``).  galvani and yadg were compared on
every ``.mpr`` of the shared test files: both read all of them, with identical
values, equal to the ``.mpt`` exports of the same runs to the export's printed
digits; galvani needs only numpy and reads a file in ~30 ms (yadg: xarray, pint,
h5netcdf, ... and ~1.7 s to import).

``.mpt`` quirks handled here (docs/physics.md §5.7):

* Latin-1 text; first line ``EC-Lab ASCII FILE`` (or ``BT-Lab ...``);
  ``Nb header lines : N`` counts the lines up to and including the tab-separated
  column header.
* Decimal commas (the exporting PC's locale): the separator is a tab, so a comma
  can only be a decimal mark.
* Current ``I/mA`` (instantaneous), ``<I>/mA`` (averaged), ``control/mA`` (set
  point), charge ``(Q-Qo)/C`` or ``(Q-Qo)/mA.h``, ``dq/mA.h`` (per row): see
  :mod:`flowcell.potentiostat.columns` for which one gives the current.
* ``Loop k from point number a to b`` lines give the ``loop`` column.
* ``Acquisition started on : MM/DD/YYYY HH:MM:SS[.fff]`` (local time of the
  instrument PC, taken as UTC as everywhere in the package).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from flowcell.potentiostat.columns import parse_start
from flowcell.potentiostat.table import assemble, roles_from_columns
from ingest.types import IngestError

__all__ = ["MptHeader", "last_line_complete", "parse_mpt_header", "parse_mpt_rows", "read_mpr", "read_mpt"]

_MAX_HEADER = 2000


@dataclass
class MptHeader:
    """What the header of an ``.mpt`` says."""

    n_lines: int
    names: list[str]
    start: datetime | None = None
    technique: str | None = None
    loops: list[tuple[int, int]] = field(default_factory=list)
    n_bytes: int = 0  # bytes up to and including the column-header line

    def loop_labels(self, n: int) -> np.ndarray | None:
        """Loop label of each of ``n`` rows (None when the header has no loop table)."""
        if not self.loops:
            return None
        loop = np.zeros(n, dtype=int)
        for k, (a, b) in enumerate(self.loops):
            loop[a: b + 1] = k
        loop[self.loops[-1][1] + 1:] = len(self.loops) - 1
        return loop


def parse_mpt_header(raw: bytes, path: Path) -> MptHeader | None:
    """Parse the header from the first bytes of an ``.mpt``; None when it is not all there yet.

    Raises :class:`IngestError` when the bytes are not an EC-Lab export.
    """
    first_nl = raw.find(b"\n")
    if first_nl < 0 and len(raw) < 40:
        return None  # not even the first line yet
    first = raw[: first_nl if first_nl >= 0 else len(raw)].decode("latin-1")
    if "ASCII FILE" not in first:
        raise IngestError(path, "not a BioLogic EC-Lab text export (first line is not 'EC-Lab ASCII FILE')")
    m = re.search(rb"Nb header lines\s*:\s*(\d+)", raw[:4096])
    if m is None:
        if raw.count(b"\n") > 5:
            raise IngestError(path, "no 'Nb header lines : N' line in the header")
        return None
    n_header = int(m.group(1))
    if n_header < 1 or n_header > _MAX_HEADER:
        raise IngestError(path, f"'Nb header lines : {n_header}' is not a plausible header length")
    pos = -1
    for _ in range(n_header):
        pos = raw.find(b"\n", pos + 1)
        if pos < 0:
            return None
    lines = raw[: pos + 1].decode("latin-1").splitlines()
    header = lines[n_header - 1]
    if "\t" not in header or "time" not in header:
        raise IngestError(path, f"line {n_header} (the declared column header) is not a tab-separated "
                                f"header: {header[:80]!r}")
    names = [c.strip() for c in header.rstrip("\r\n").split("\t")]
    while names and names[-1] == "":
        names.pop()
    h = MptHeader(n_header, names, n_bytes=pos + 1)
    for i, line in enumerate(lines[: n_header - 1]):
        if line.strip().startswith("Nb header lines") and i + 2 < n_header - 1 and not lines[i + 1].strip():
            h.technique = lines[i + 2].strip() or None
        mm = re.match(r"\s*Acquisition started on\s*:\s*(.+)$", line)
        if mm and h.start is None:
            h.start = parse_start(mm.group(1))
        mm = re.match(r"\s*Loop\s+(\d+)\s+from point number\s+(\d+)\s+to\s+(\d+)", line)
        if mm:
            h.loops.append((int(mm.group(2)), int(mm.group(3))))
    return h


_ECLAB_NUMBER = re.compile(rb"-?\d[.,]\d+E[+-]\d{3}")


def last_line_complete(line: bytes, n_cols: int) -> bool:
    """True when an unterminated last line is certainly whole.

    EC-Lab ends an export without a line end, and a running export may stop in the
    middle of a line.  The line is taken as whole only when it has every field and its
    last field is a complete EC-Lab number (mantissa and a three-digit exponent,
    ``4.1685095E-001``); anything else might be cut short.
    """
    parts = line.rstrip(b"\r\t").split(b"\t")
    return len(parts) == n_cols and _ECLAB_NUMBER.fullmatch(parts[-1].strip()) is not None


def parse_mpt_rows(body: str, n_cols: int) -> tuple[np.ndarray, int]:
    """Complete data lines (tab-separated, decimal point or comma) -> float array (rows, n_cols).

    Lines with the wrong number of fields or a non-number are dropped; returns the
    array and the number dropped.
    """
    if "," in body:
        body = body.replace(",", ".")
    lines = [ln.rstrip("\r\t ") for ln in body.split("\n")]
    good = [ln for ln in lines if ln and ln.count("\t") == n_cols - 1]
    bad = sum(1 for ln in lines if ln.strip()) - len(good)
    if not good:
        return np.zeros((0, n_cols)), bad
    try:  # every line has n_cols fields: one conversion; a non-number anywhere -> line by line below
        return np.array("\t".join(good).split("\t"), dtype=float).reshape(len(good), n_cols), bad
    except ValueError:
        pass
    rows = []
    for ln in good:
        try:
            rows.append([float(x) for x in ln.split("\t")])
        except ValueError:
            bad += 1
    return np.array(rows, dtype=float).reshape(len(rows), n_cols), bad


def read_mpt(path: str | Path, *, complete_only: bool = True) -> pd.DataFrame:
    """Read a BioLogic EC-Lab ``.mpt`` text export.

    Parameters
    ----------
    path : str or Path
    complete_only : bool
        Default True: a last line without its line end is read only when it is certainly
        whole (:func:`last_line_complete`; EC-Lab ends its exports so), never when it may
        be half-written.  False reads whatever is there.

    Returns
    -------
    DataFrame
        ``t_s`` (s), ``I_A`` (A, interval mean, :mod:`flowcell.potentiostat.columns`),
        ``Q_C`` (C, the package's count), ``Q_instrument_C`` (C, the instrument's
        ``(Q-Qo)`` with its per-loop resets), ``E_V`` (V), ``loop``, then the raw
        columns under their EC-Lab names.  ``attrs``: ``source``, ``format``
        (``'biologic-mpt'``), ``start``, ``technique``, ``header_lines``, ``columns``,
        ``current_source``, ``warnings``.

    Raises
    ------
    IngestError
        Unreadable, not an EC-Lab export, header incomplete, no time/current column.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(path, f"cannot read: {exc.strerror or exc}") from None
    header = parse_mpt_header(raw, path)
    if header is None:
        raise IngestError(path, "the header is incomplete (file still being written?)")
    body = raw[header.n_bytes:]
    notes = []
    if complete_only and body and not body.endswith((b"\n", b"\r")):
        cut = body.rfind(b"\n") + 1
        if not last_line_complete(body[cut:], len(header.names)):
            body = body[:cut]
            notes.append("the last line has no line end and is not complete: not read (still being written?)")
    data, bad = parse_mpt_rows(body.decode("latin-1"), len(header.names))
    columns = {name: data[:, i] for i, name in enumerate(header.names)}
    roles, found = roles_from_columns(columns, path)
    attrs = {"source": str(path), "format": "biologic-mpt", "start": header.start, "technique": header.technique,
             "header_lines": header.n_lines, "columns": found,
             "warnings": notes + ([f"{bad} malformed data line(s) skipped"] if bad else [])}
    if header.start is None:
        attrs["warnings"].append("no 'Acquisition started on' line: start time unknown")
    return assemble(roles, _raw_columns(columns, found),
                    loop=header.loop_labels(len(data)), sample_current=True, attrs=attrs)


def _raw_columns(columns: dict[str, np.ndarray], found: dict[str, str]) -> dict[str, np.ndarray]:
    """The file's columns kept after the core ones: all but time and potential (already there)."""
    return {c: v for c, v in columns.items() if found.get(c) not in ("t", "E")}


def _galvani(path: Path):
    try:
        from galvani import (
            BioLogic,  # optional dependency (GPL): imported only for .mpr
        )
    except ImportError:  # pragma: no cover - depends on the environment
        raise IngestError(path, "reading EC-Lab .mpr needs galvani: pip install 'flowcell-rfb[eclab]' "
                                "(or export the run as .mpt from EC-Lab)") from None
    return BioLogic


def read_mpr(path: str | Path) -> pd.DataFrame:
    """Read a BioLogic EC-Lab binary ``.mpr`` (with galvani); same table as :func:`read_mpt`.

    The start time is the log module's acquisition time (UTC as everywhere; None, with a
    warning, when the file has no log module).  ``attrs['format'] = 'biologic-mpr'``.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "cannot read: no such file")
    BioLogic = _galvani(path)
    try:
        mpr = BioLogic.MPRfile(str(path))
    except Exception as exc:  # noqa: BLE001 - galvani raises ValueError, NotImplementedError, struct errors...
        raise IngestError(path, f"not a readable EC-Lab .mpr: {type(exc).__name__}: {exc}") from None
    data = mpr.data
    columns: dict[str, np.ndarray] = {}
    for name in data.dtype.names:
        if name == "flags":
            for flag in getattr(mpr, "flags_dict", {}):
                columns[flag] = np.asarray(mpr.get_flag(flag)).astype(float)
            continue
        columns[name] = np.asarray(data[name])
    roles, found = roles_from_columns(columns, path)
    stamp = getattr(mpr, "timestamp", None)
    start = stamp.replace(tzinfo=timezone.utc) if isinstance(stamp, datetime) and stamp.tzinfo is None else stamp
    attrs = {"source": str(path), "format": "biologic-mpr", "start": start, "technique": None, "columns": found,
             "warnings": [] if start else ["no log module in the .mpr: start time unknown"]}
    loop = getattr(mpr, "loop_index", None)
    labels = None
    if loop is not None and len(loop) > 1:
        labels = np.zeros(len(data), dtype=int)
        for k, a in enumerate(np.asarray(loop)[:-1]):
            labels[int(a):] = k
    return assemble(roles, _raw_columns(columns, found),
                    loop=labels, sample_current=True, attrs=attrs)
