"""``read_potentiostat``: any supported log, chosen from the suffix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from flowcell.potentiostat.csvlog import read_potentiostat_csv
from flowcell.potentiostat.eclab import read_mpr, read_mpt
from ingest.selection import looks_like_potentiostat_log as is_potentiostat_log
from ingest.types import IngestError

__all__ = ["POTENTIOSTAT_SUFFIXES", "is_potentiostat_log", "read_potentiostat"]

#: Suffixes of the logs :func:`read_potentiostat` reads.
POTENTIOSTAT_SUFFIXES = (".mpr", ".mpt", ".csv", ".txt")


def read_potentiostat(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a potentiostat log: EC-Lab ``.mpr`` or ``.mpt``, or a plain CSV.

    Parameters
    ----------
    path : str or Path
        The log, or a folder holding exactly one.
    **kwargs
        Passed to :func:`read_mpt` (``complete_only``).

    Returns
    -------
    DataFrame
        ``t_s`` (s), ``I_A`` (A, mean over the interval ending at the row), ``Q_C`` (C,
        the package's coulomb count, exact at every row), ``Q_instrument_C`` (C, the
        instrument's own charge, where the file has it), ``E_V`` (V), ``loop``, then the
        file's other columns.  ``attrs['start']``: tz-aware UTC datetime of ``t_s = 0``
        (None when the file does not say); ``attrs['source']``, ``attrs['format']``,
        ``attrs['warnings']``.

    Raises
    ------
    IngestError
        Missing or unreadable file, unknown format, no time or current.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in POTENTIOSTAT_SUFFIXES)
        if len(files) != 1:
            raise IngestError(path, f"expected one potentiostat log (.mpr/.mpt/.csv) in the folder, "
                                    f"found {len(files)}")
        path = files[0]
    if not path.exists():
        raise IngestError(path, "cannot read: no such file")
    suffix = path.suffix.lower()
    if suffix == ".mpt":
        return read_mpt(path, **kwargs)
    if suffix == ".mpr":
        return read_mpr(path)
    if suffix in (".csv", ".txt"):
        return read_potentiostat_csv(path)
    raise IngestError(path, f"unknown potentiostat format {suffix!r} (expected .mpr, .mpt or .csv)")
