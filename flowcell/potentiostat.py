"""Potentiostat logs and coulomb counting.

Readers
-------
* :func:`read_mpt` -- BioLogic EC-Lab ``.mpt`` text export (science.md §5.7).
* :func:`read_potentiostat_csv` -- a plain CSV (``time_s, current_A[, voltage_V][, charge_C]``).
* :func:`read_potentiostat` -- dispatch on the suffix.

All return a :class:`pandas.DataFrame` with SI columns ``t_s`` (s), ``I_A`` (A),
``E_V`` (V, NaN when not logged) and ``Q_C`` (C, the instrument's own charge
when the file has it, else NaN), followed by the other raw columns, and
``df.attrs`` holding ``source``, ``format``, ``start`` (timezone-aware
datetime or None; the file's local time is taken as UTC when it gives no
zone, as in ``ingest``), ``technique`` and ``columns`` (raw name -> SI name).

Why not a PyPI reader: ``galvani`` reads only the binary ``.mpr``; ``eclabfiles``
(last release 2022) is unmaintained; ``yadg`` reads ``.mpt`` well but pulls in
xarray, h5netcdf, pint and pydantic schemas for a 60-line job; ``ixdat`` is a
whole data framework.  The format is simple and the reader below is tested on
three real EC-Lab exports (tests/test_potentiostat.py).

EC-Lab ``.mpt`` quirks handled here:

* Latin-1 text; first line ``EC-Lab ASCII FILE`` (or ``BT-Lab ...``);
  ``Nb header lines : N`` counts the lines up to and including the tab-separated
  column header.
* Numbers may use a decimal comma (locale setting of the exporting PC).
* Current is ``I/mA`` or ``<I>/mA`` (averaged current in CV exports), potential
  ``Ewe/V`` or ``<Ewe>/V``, charge ``(Q-Qo)/C`` or ``(Q-Qo)/mA.h``.
* ``Loop k from point number a to b`` lines give a ``loop`` column: the
  technique paused between loops, so charge is not integrated across a loop boundary.
* ``Acquisition started on : MM/DD/YYYY HH:MM:SS`` (EC-Lab's US format; day-first
  when the first field exceeds 12, ISO dates accepted).
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.types import IngestError

from flowcell.transit import FARADAY

__all__ = [
    "read_mpt",
    "read_potentiostat_csv",
    "read_potentiostat",
    "coulomb_count",
    "charge_between",
    "coulomb_soc",
]

_UNIT_SCALE = {
    "a": 1.0, "ma": 1e-3, "µa": 1e-6, "ua": 1e-6, "μa": 1e-6, "na": 1e-9, "pa": 1e-12,
    "v": 1.0, "mv": 1e-3,
    "c": 1.0, "mc": 1e-3, "µc": 1e-6, "uc": 1e-6, "ma.h": 3.6, "µa.h": 3.6e-3, "ua.h": 3.6e-3, "a.h": 3600.0,
    "s": 1.0, "min": 60.0, "h": 3600.0,
}

_DATE_FORMATS = (
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S.%f", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M:%S",
)


def _parse_start(text: str) -> datetime | None:
    text = text.strip()
    first = re.match(r"(\d+)[/.-]", text)
    formats = list(_DATE_FORMATS)
    if first and len(first.group(1)) <= 2 and int(first.group(1)) > 12:
        formats.sort(key=lambda f: not f.startswith("%d"))  # day-first must be tried first
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


def _split_name(col: str) -> tuple[str, str]:
    """'<I>/mA' -> ('I', 'ma'); '(Q-Qo)/mA.h' -> ('(Q-Qo)', 'ma.h')."""
    name, _, unit = col.strip().rpartition("/")
    if not name:
        return col.strip().strip("<>"), ""
    return name.strip().strip("<>"), unit.strip().lower()


def _si_columns(raw: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Map EC-Lab column names to t_s, I_A, E_V, Q_C (scaled to SI)."""
    wanted = {"time": "t_s", "I": "I_A", "Ewe": "E_V", "(Q-Qo)": "Q_C"}
    found: dict[str, str] = {}
    out = {}
    for col in raw.columns:
        name, unit = _split_name(col)
        if name in wanted and wanted[name] not in out:
            scale = _UNIT_SCALE.get(unit)
            if scale is None:
                raise IngestError(path, f"column {col!r}: unknown unit {unit!r}")
            out[wanted[name]] = raw[col].to_numpy(dtype=float) * scale
            found[col] = wanted[name]
    if "t_s" not in out:
        raise IngestError(path, f"no time column (time/s) among {list(raw.columns)}")
    if "I_A" not in out:
        raise IngestError(path, f"no current column (I/mA or <I>/mA) among {list(raw.columns)}")
    n = len(raw)
    df = pd.DataFrame({k: out.get(k, np.full(n, np.nan)) for k in ("t_s", "I_A", "E_V", "Q_C")})
    for col in raw.columns:
        if col not in found and col not in df.columns:
            df[col] = raw[col].to_numpy()
    return df, found


def read_mpt(path: str | Path, *, complete_only: bool = False) -> pd.DataFrame:
    """Read a BioLogic EC-Lab ``.mpt`` text export.

    Parameters
    ----------
    path : str or Path
        The ``.mpt`` file.
    complete_only : bool
        Drop a last line that has no line end (the instrument may still be
        writing it; use True when reading a growing file live).

    Returns
    -------
    DataFrame
        ``t_s`` (s, elapsed time as the file gives it), ``I_A`` (A), ``E_V``
        (V), ``Q_C`` (C, the instrument's ``(Q-Qo)``), ``loop`` (int, from the
        header's loop table, 0 when there is none), then the remaining raw
        columns under their EC-Lab names.  ``attrs``: ``source``, ``format``
        ('biologic-mpt'), ``start``, ``technique``, ``header_lines``, ``columns``.

    Raises
    ------
    IngestError
        Not an EC-Lab export, header count missing or wrong, no time/current column.
    """
    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise IngestError(path, f"cannot read: {exc.strerror or exc}") from None
    text = raw_bytes.decode("latin-1")
    lines = text.splitlines()
    if not lines or "ASCII FILE" not in lines[0]:
        raise IngestError(path, "not a BioLogic EC-Lab text export (first line is not 'EC-Lab ASCII FILE')")
    n_header = None
    start = None
    technique = None
    loops: list[tuple[int, int]] = []
    scan = lines[: min(len(lines), 400)]
    for i, line in enumerate(scan):
        m = re.match(r"\s*Nb header lines\s*:\s*(\d+)", line)
        if m:
            n_header = int(m.group(1))
            if i + 2 < len(lines) and lines[i + 1].strip() == "" and technique is None:
                technique = lines[i + 2].strip() or None
            continue
        m = re.match(r"\s*Acquisition started on\s*:\s*(.+)$", line)
        if m and start is None:
            start = _parse_start(m.group(1))
            continue
        m = re.match(r"\s*Loop\s+(\d+)\s+from point number\s+(\d+)\s+to\s+(\d+)", line)
        if m:
            loops.append((int(m.group(2)), int(m.group(3))))
        if n_header is not None and i >= n_header:
            break
    if n_header is None:
        raise IngestError(path, "no 'Nb header lines : N' line in the header")
    if n_header < 1 or n_header > len(lines):
        raise IngestError(path, f"'Nb header lines : {n_header}' but the file has {len(lines)} lines")
    header = lines[n_header - 1]
    if "\t" not in header or "time" not in header:
        raise IngestError(path, f"line {n_header} (the declared column header) is not a tab-separated header: "
                                f"{header[:80]!r}")
    names = [c.strip() for c in header.rstrip("\r\n").split("\t")]
    while names and names[-1] == "":
        names.pop()
    data_lines = lines[n_header:]
    if complete_only and data_lines and not text.endswith(("\n", "\r")):
        data_lines = data_lines[:-1]
    data_lines = [ln for ln in data_lines if ln.strip()]
    body = "\n".join(data_lines)
    # decimal comma: the separator is a tab, so a comma can only be a decimal mark
    if "," in body:
        body = body.replace(",", ".")
    if not data_lines:
        raw = pd.DataFrame({n: pd.Series(dtype=float) for n in names})
    else:
        try:
            raw = pd.read_csv(io.StringIO(body), sep="\t", header=None, usecols=range(len(names)),
                              names=names, dtype=float, engine="c")
        except (ValueError, pd.errors.ParserError) as exc:
            raise IngestError(path, f"data block does not parse as numbers: {exc}") from None
    raw = raw.dropna(subset=[c for c in names if _split_name(c)[0] == "time"][:1])
    df, found = _si_columns(raw, path)
    loop = np.zeros(len(df), dtype=int)
    for k, (a, b) in enumerate(loops):
        loop[a: b + 1] = k
    df.insert(4, "loop", loop)
    df.attrs.update(source=str(path), format="biologic-mpt", start=start, technique=technique,
                    header_lines=n_header, columns=found)
    return df


_CSV_ALIASES = {
    "t_s": ("t_s", "time_s", "time/s"),
    "I_A": ("I_A", "current_A", "i_a"),
    "E_V": ("E_V", "voltage_V", "ewe_V", "potential_V"),
    "Q_C": ("Q_C", "charge_C"),
}


def read_potentiostat_csv(path: str | Path) -> pd.DataFrame:
    """Read a plain potentiostat CSV.

    Format: comma-separated, one header row naming the columns ``time_s`` (or
    ``t_s``), ``current_A`` (or ``I_A``), optionally ``voltage_V`` (``E_V``) and
    ``charge_C`` (``Q_C``); other columns are kept as they are.  Lines starting
    with ``#`` are comments; a comment containing ``start: <ISO 8601 datetime>``
    (or ``start = ...``) gives the start time.  This is what ``flowcell.simulate.simulator`` writes.

    Returns
    -------
    DataFrame
        Same layout as :func:`read_mpt` (without ``loop``); ``attrs['format'] = 'csv'``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise IngestError(path, f"cannot read: {exc.strerror or exc}") from None
    start = None
    for line in text.splitlines():
        if not line.startswith("#"):
            continue
        m = re.search(r"\bstart\s*[:=]\s*(.+?)\s*$", line.strip())
        if m:
            start = _parse_start(m.group(1))
    try:
        raw = pd.read_csv(io.StringIO(text), comment="#", skipinitialspace=True)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise IngestError(path, f"not a readable CSV: {exc}") from None
    lower = {c.strip().lower(): c for c in raw.columns}
    out: dict[str, np.ndarray] = {}
    used = set()
    for si, aliases in _CSV_ALIASES.items():
        for a in aliases:
            if a.lower() in lower:
                col = lower[a.lower()]
                try:
                    out[si] = pd.to_numeric(raw[col]).to_numpy(dtype=float)
                except ValueError:
                    raise IngestError(path, f"column {col!r} is not numeric") from None
                used.add(col)
                break
    for si in ("t_s", "I_A"):
        if si not in out:
            raise IngestError(path, f"missing column {_CSV_ALIASES[si][1]!r} (or {si!r}); have {list(raw.columns)}")
    n = len(raw)
    df = pd.DataFrame({k: out.get(k, np.full(n, np.nan)) for k in ("t_s", "I_A", "E_V", "Q_C")})
    for col in raw.columns:
        if col not in used:
            df[col] = raw[col].to_numpy()
    df.attrs.update(source=str(path), format="csv", start=start, technique=None,
                    columns={c: c for c in used})
    return df


def read_potentiostat(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a potentiostat log, choosing the reader from the suffix.

    ``.mpt`` -> :func:`read_mpt`; ``.csv``/``.txt`` -> :func:`read_potentiostat_csv`.
    A folder holding exactly one such file is accepted.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".mpt", ".csv", ".txt"))
        if len(files) != 1:
            raise IngestError(path, f"expected one .mpt/.csv potentiostat file in the folder, found {len(files)}")
        path = files[0]
    suffix = path.suffix.lower()
    if suffix == ".mpt":
        return read_mpt(path, **kwargs)
    if suffix in (".csv", ".txt"):
        return read_potentiostat_csv(path)
    raise IngestError(path, f"unknown potentiostat format {suffix!r} (expected .mpt or .csv)")


def coulomb_count(t_s, I_A, *, method: str = "trapezoid", segments=None) -> np.ndarray:
    """Charge passed since the first sample, ``Q(t) = integral I dt`` (C).

    Parameters
    ----------
    t_s : array_like
        Sample times, s, non-decreasing (repeated times are allowed: they mark a step).
    I_A : array_like
        Current, A.
    method : {'trapezoid', 'hold'}
        ``'trapezoid'`` is exact for a current linear between samples, hence
        for a piecewise-constant current when every step is bracketed by two
        samples at the step time (one at the old level, one at the new).  A
        step that falls between samples ``dt`` apart costs at most
        ``|dI| dt / 2``.
        ``'hold'`` keeps each sample's current until the next sample (left
        rectangle rule).  It is exact for a galvanostatic step logged at the
        step instant with the *new* current, which is what EC-Lab does (the
        ``control changes`` row).
    segments : array_like of int, optional
        Segment label per sample (e.g. the ``loop`` column of :func:`read_mpt`);
        no charge is counted across a change of label (the technique paused).

    Returns
    -------
    ndarray
        Cumulative charge, C, starting at 0.
    """
    t = np.asarray(t_s, dtype=float)
    current = np.asarray(I_A, dtype=float)
    if t.shape != current.shape or t.ndim != 1:
        raise ValueError("t_s and I_A must be 1D arrays of the same length")
    if t.size == 0:
        return np.zeros(0)
    if np.any(np.diff(t) < 0):
        raise ValueError("t_s must be non-decreasing")
    if method == "trapezoid":
        dq = 0.5 * (current[1:] + current[:-1]) * np.diff(t)
    elif method == "hold":
        dq = current[:-1] * np.diff(t)
    else:
        raise ValueError(f"method must be 'trapezoid' or 'hold', got {method!r}")
    if segments is not None:
        seg = np.asarray(segments)
        dq = np.where(seg[1:] == seg[:-1], dq, 0.0)
    return np.concatenate([[0.0], np.cumsum(dq)])


def charge_between(t_s, I_A, t0_s: float, t1_s: float) -> float:
    """Charge passed between two times, C, from a logged current (trapezoid rule).

    The cumulative charge of :func:`coulomb_count` is interpolated linearly at
    ``t0_s`` and ``t1_s`` (exact for a current constant between samples; times
    outside the log are clamped to its ends).  Use it to feed
    ``LiveSOC.update(..., charge_C=...)`` between two spectra.
    """
    t = np.asarray(t_s, dtype=float)
    q = coulomb_count(t, I_A)
    if t.size == 0:
        return 0.0
    if t.size == 1:
        return 0.0
    return float(np.interp(t1_s, t, q) - np.interp(t0_s, t, q))


def coulomb_soc(
    t_s,
    I_A,
    *,
    C_tot_M: float,
    volume_L: float,
    soc0: float = 0.0,
    sign: int = +1,
    method: str = "trapezoid",
    segments=None,
) -> np.ndarray:
    """Coulomb-counted anolyte SOC (science.md §1.1, [D]).

    ``SOC(t) = SOC0 + sign * integral I dt / (2 F C_tot V_tot)``

    Parameters
    ----------
    t_s, I_A : array_like
        Time (s) and current (A).
    C_tot_M : float
        Total active quinone, mol/L (monomer units).
    volume_L : float
        Whole circulating anolyte volume, L.
    soc0 : float
        SOC at ``t_s[0]``.
    sign : {+1, -1}
        +1 when positive current charges (reduces) the anolyte.
    method, segments
        See :func:`coulomb_count`.

    Returns
    -------
    ndarray
        SOC (dimensionless); no clipping to [0, 1], so overcharge shows.
    """
    if C_tot_M <= 0 or volume_L <= 0:
        raise ValueError(f"C_tot_M and volume_L must be positive, got {C_tot_M!r} mol/L, {volume_L!r} L")
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    q = coulomb_count(t_s, I_A, method=method, segments=segments)
    return soc0 + sign * q / (2.0 * FARADAY * C_tot_M * volume_L)
