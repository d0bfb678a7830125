"""Known truths to judge a fit against (``flowcell fit --truth``).

Two forms are read:

* JSON: the simulator's ``truth.json`` (``{"params": {...}, ...}``) or a flat
  ``{"Kc": 0.35, "k_dec": 3e-6}``: true parameter values.
* CSV: a time series written by any software, one row per time, with a time column
  (``t_s`` or ``time_s``: s since the potentiostat start; ``time_h``: h; ``time``: an
  ISO timestamp, referred to the potentiostat start) and any of ``soc`` and
  concentrations ``O``, ``R``, ``H``, ``A``, ... (mol/L; a ``_M`` suffix is accepted,
  ``_mM`` is converted).  The fitted SOC and concentrations are compared with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest.types import IngestError

__all__ = ["Truth", "compare_series", "read_truth"]

_SPECIES = ("O", "R", "H", "D", "A", "AL", "A2")


@dataclass
class Truth:
    """True parameter values and/or a true time series (``t_s``, ``soc``, ``<species>_M``)."""

    params: dict[str, float] | None
    series: pd.DataFrame | None
    path: Path


def read_truth(path: str | Path, *, start: datetime | None = None) -> Truth:
    """Read a truth file (see the module docstring).

    Parameters
    ----------
    path : path
        ``.json`` or ``.csv``.
    start : datetime, optional
        Potentiostat start, for an ISO ``time`` column.

    Raises
    ------
    IngestError
        Unreadable file, no time column, or no usable column (the message names the file).
    """
    p = Path(path)
    if not p.exists():
        raise IngestError(p, "no such truth file")
    if p.suffix.lower() == ".json":
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise IngestError(p, f"not valid JSON: {exc}") from None
        params = d.get("params", d) if isinstance(d, dict) else None
        if not isinstance(params, dict):
            raise IngestError(p, "expected an object of parameter values (or {'params': {...}})")
        vals = {k: float(v) for k, v in params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if not vals:
            raise IngestError(p, "no numeric parameter values found")
        return Truth(vals, None, p)
    try:
        df = pd.read_csv(p, sep=None, engine="python", comment="#")
    except Exception as exc:  # pandas raises several types
        raise IngestError(p, f"not a readable CSV: {exc}") from None
    return Truth(None, _series(df, p, start), p)


def _series(df: pd.DataFrame, p: Path, start: datetime | None) -> pd.DataFrame:
    cols = {c.strip(): c for c in df.columns}
    low = {c.lower(): c for c in cols}
    out = pd.DataFrame()
    if "t_s" in low or "time_s" in low:
        out["t_s"] = pd.to_numeric(df[cols[low.get("t_s", low.get("time_s"))]], errors="coerce")
    elif "time_h" in low:
        out["t_s"] = pd.to_numeric(df[cols[low["time_h"]]], errors="coerce") * 3600.0
    elif "time" in low:
        tm = pd.to_datetime(df[cols[low["time"]]], utc=True, errors="coerce")
        if start is None:
            raise IngestError(p, "a 'time' column of timestamps needs the potentiostat start time")
        out["t_s"] = (tm - pd.Timestamp(start)).dt.total_seconds()
    else:
        raise IngestError(p, f"no time column (t_s, time_s, time_h or time); columns: {list(df.columns)}")
    for c in cols:
        name = c.strip()
        if name.lower() == "soc":
            out["soc"] = pd.to_numeric(df[cols[c]], errors="coerce")
            continue
        base, scale = name, 1.0
        if name.endswith("_mM"):
            base, scale = name[:-3], 1e-3
        elif name.endswith("_M"):
            base = name[:-2]
        if base in _SPECIES:
            out[f"{base}_M"] = pd.to_numeric(df[cols[c]], errors="coerce") * scale
    if len(out.columns) < 2:
        raise IngestError(p, f"no soc or concentration column ({', '.join(_SPECIES)}, with _M or _mM); "
                             f"columns: {list(df.columns)}")
    return out.dropna(subset=["t_s"]).sort_values("t_s").reset_index(drop=True)


def compare_series(truth: pd.DataFrame, fitted: pd.DataFrame) -> pd.DataFrame:
    """Fitted series against a true one, on the true times inside the fitted range.

    Returns
    -------
    DataFrame
        One row per common column: ``column``, ``n``, ``rms`` and ``max_abs`` difference
        (fitted minus true; SOC as a fraction, concentrations in mol/L).
    """
    t = truth["t_s"].to_numpy(float)
    tf = fitted["t_s"].to_numpy(float)
    inside = (t >= tf.min()) & (t <= tf.max())
    rows = []
    for c in truth.columns:
        if c == "t_s" or c not in fitted:
            continue
        y = truth[c].to_numpy(float)[inside]
        f = np.interp(t[inside], tf, fitted[c].to_numpy(float))
        d = (f - y)[np.isfinite(y)]
        if d.size:
            rows.append({"column": c, "n": int(d.size), "rms": float(np.sqrt(np.mean(d * d))),
                         "max_abs": float(np.max(np.abs(d)))})
    return pd.DataFrame(rows, columns=["column", "n", "rms", "max_abs"])


def truth_params(truth: Truth | None) -> dict[str, Any] | None:
    """The parameter values of a truth, or None."""
    return None if truth is None else truth.params
