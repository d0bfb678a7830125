"""Plain CSV potentiostat logs (any potentiostat, or ``flowcell simulate``).

(Named ``csvlog`` rather than ``csv`` so it never shadows the standard library.)

Format: comma-separated, one header row naming the columns with their units.
Recognised names (case-insensitive): time ``time_s`` / ``t_s`` / ``time/s`` /
``time_min`` / ``time_h``; current ``current_A`` / ``I_A`` / ``current_mA`` / ``I/mA`` /
``current_uA``; potential ``voltage_V`` / ``E_V`` / ``Ewe/V`` / ``voltage_mV``; the
instrument's charge ``charge_C`` / ``Q_C`` / ``charge_mAh``.  Other columns are kept.
Lines starting with ``#`` are comments: ``# start: <ISO 8601>`` gives the start time,
``# current: interval-mean`` (default) or ``# current: sample`` says whether the current
of a row is the mean over the interval ending at it or a reading taken at the row and
held until the next (docs/physics.md §5.7).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from flowcell.potentiostat.columns import parse_start
from flowcell.potentiostat.table import assemble
from ingest.types import IngestError

__all__ = ["csv_comments", "csv_roles", "read_potentiostat_csv"]

#: role -> {lower-case column name: SI factor}
_ALIASES = {
    "t": {"time_s": 1.0, "t_s": 1.0, "time/s": 1.0, "time_min": 60.0, "time_h": 3600.0},
    "I": {"current_a": 1.0, "i_a": 1.0, "i/a": 1.0, "current_ma": 1e-3, "i_ma": 1e-3, "i/ma": 1e-3,
          "current_ua": 1e-6, "i/ua": 1e-6},
    "E": {"voltage_v": 1.0, "e_v": 1.0, "ewe_v": 1.0, "ewe/v": 1.0, "potential_v": 1.0, "voltage_mv": 1e-3},
    "Q": {"charge_c": 1.0, "q_c": 1.0, "charge_mah": 3.6, "q/ma.h": 3.6, "(q-qo)/c": 1.0},
}


def csv_comments(lines) -> dict[str, str]:
    """``key: value`` (or ``key = value``) pairs from ``#`` comment lines (``start``, ``current``)."""
    out: dict[str, str] = {}
    for line in lines:
        if not line.startswith("#"):
            continue
        for key in ("start", "current"):
            m = re.search(rf"\b{key}\s*[:=]\s*(.+?)\s*(?:;|$)", line[1:].strip())
            if m and key not in out:
                out[key] = m.group(1)
    return out


def csv_roles(names: list[str], path: Path) -> dict[str, tuple[int, float]]:
    """Header names -> {role: (column index, SI factor)}; raises when time or current is missing."""
    lower = [n.strip().lower() for n in names]
    roles: dict[str, tuple[int, float]] = {}
    for role, aliases in _ALIASES.items():
        for i, n in enumerate(lower):
            if n in aliases:
                roles[role] = (i, aliases[n])
                break
    for role, what in (("t", "time_s"), ("I", "current_A")):
        if role not in roles:
            raise IngestError(path, f"missing column {what!r} (or another name of {sorted(_ALIASES[role])}); "
                                    f"have {names}")
    return roles


def read_potentiostat_csv(path: str | Path) -> pd.DataFrame:
    """Read a plain potentiostat CSV (format in the module docstring).

    Returns
    -------
    DataFrame
        Same layout as :func:`flowcell.potentiostat.read_mpt`; ``attrs['format'] = 'csv'``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise IngestError(path, f"cannot read: {exc.strerror or exc}") from None
    notes = csv_comments(text.splitlines())
    warnings = []
    if text and not text.endswith(("\n", "\r")):
        text = text[: text.rfind("\n") + 1]
        warnings.append("the last line has no line end: not read (it may be half-written)")
    try:
        raw = pd.read_csv(io.StringIO(text), comment="#", skipinitialspace=True)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise IngestError(path, f"not a readable CSV: {exc}") from None
    names = [str(c) for c in raw.columns]
    roles_ix = csv_roles(names, path)
    roles: dict[str, np.ndarray] = {}
    for role, (i, scale) in roles_ix.items():
        try:
            roles[role] = pd.to_numeric(raw.iloc[:, i]).to_numpy(dtype=float) * scale
        except ValueError:
            raise IngestError(path, f"column {names[i]!r} is not numeric") from None
    used = {names[i] for i, _ in roles_ix.values()}
    sample = notes.get("current", "interval-mean").strip().lower().startswith("sample")
    attrs = {"source": str(path), "format": "csv",
             "start": parse_start(notes["start"]) if "start" in notes else None, "technique": None,
             "columns": {names[i]: r for r, (i, _) in roles_ix.items()},
             "current_convention": "sample" if sample else "interval-mean", "warnings": warnings}
    extra = {c: raw[c].to_numpy() for c in names if c not in used}
    return assemble(roles, extra, loop=None, sample_current=sample, attrs=attrs, current_from=("I",))
