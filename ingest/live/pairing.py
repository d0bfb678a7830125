"""Pair NMR and EPR rows in time, allowing for the flow-loop delay.

The two instruments sit at different places on the flow loop, so the same
parcel of electrolyte reaches them at different times (docs/physics.md §1.7):

    τ_cell→NMR = V(cell→NMR)/Q,   τ_cell→EPR = V(cell→EPR)/Q,
    τ_NMR→EPR  = τ_cell→EPR − τ_cell→NMR.

Each spectrum is referred to the cell outlet by subtracting its transit time
from its acquisition mid-time (§1.7: "Report each spectrum at its acquisition
mid-time minus the delay").  The two PCs' clocks may also disagree; the EPR
clock offset (EPR clock − NMR clock, s) is subtracted from the EPR times.
Rows are then matched nearest-in-time within a tolerance, one-to-one;
unmatched rows of either side are kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["pair", "transit_delay_s"]

_COMMON = ("kind", "source", "row", "time_start", "time_end", "time_mid", "t_s", "temperature_K", "format", "clock_offset_s")


def transit_delay_s(volume_mL: float, flow_mL_min: float) -> float:
    """Transit time through a tubing volume at a flow rate (docs/physics.md §1.7).

    Parameters
    ----------
    volume_mL : float
        Tubing volume, mL.
    flow_mL_min : float
        Volumetric flow rate, mL/min (> 0).

    Returns
    -------
    float
        Delay, s: ``60 · V / Q``.
    """
    if not flow_mL_min or flow_mL_min <= 0:
        raise ValueError(f"flow_mL_min must be > 0, got {flow_mL_min!r}")
    return 60.0 * float(volume_mL) / float(flow_mL_min)


def _prefixed(df: pd.DataFrame, prefix: str, other_cols: set[str]) -> pd.DataFrame:
    ren = {}
    for c in df.columns:
        if c in _COMMON or c in other_cols:
            if not str(c).startswith(prefix):
                ren[c] = f"{prefix}{c}"
    return df.rename(columns=ren)


def _one_to_one(n: pd.DataFrame, e: pd.DataFrame, tolerance_s: float) -> dict[int, int]:
    """Pair NMR rows with EPR rows one to one, nearest in time first.

    Parameters
    ----------
    n, e : DataFrame
        NMR and EPR rows with referred times ``_t`` (tz-aware) and row numbers
        ``_i`` / ``_j``.
    tolerance_s : float
        Largest |time difference| for a match, s.

    Returns
    -------
    dict
        NMR row number ``_i`` -> EPR row number ``_j``.
    """
    # one-to-one nearest matching: candidates by merge_asof, then resolve
    # conflicts greedily by smallest |dt| (so each EPR row pairs at most once)
    nn = n.dropna(subset=["_t"]).sort_values("_t")
    ee = e.dropna(subset=["_t"]).sort_values("_t")
    pairs: list[tuple[float, int, int]] = []
    if len(nn) and len(ee):
        tol = pd.Timedelta(seconds=float(tolerance_s))
        for direction in ("nearest", "backward", "forward"):
            m = pd.merge_asof(
                nn[["_t", "_i"]], ee[["_t", "_j"]].rename(columns={"_t": "_te"}),
                left_on="_t", right_on="_te", direction=direction, tolerance=tol,
            ).dropna(subset=["_j"])
            for t, i, te, j in zip(m["_t"], m["_i"], m["_te"], m["_j"]):
                pairs.append((abs((te - t).total_seconds()), int(i), int(j)))
    pairs.sort()
    used_i: set[int] = set()
    used_j: set[int] = set()
    match: dict[int, int] = {}
    for _, i, j in pairs:
        if i in used_i or j in used_j:
            continue
        used_i.add(i)
        used_j.add(j)
        match[i] = j
    return match


def _merged(n: pd.DataFrame, e: pd.DataFrame, match: dict[int, int]) -> pd.DataFrame:
    """One table of matched pairs and unmatched rows, sorted by the referred time.

    Columns common to both sides get ``nmr_`` / ``epr_`` prefixes; adds ``time``,
    ``t_s`` (s since the first row), ``matched`` and ``pair_dt_s`` (s).
    """
    ncols = set(n.columns) - {"_t", "_i"}
    ecols = set(e.columns) - {"_t", "_j"}
    both = ncols & ecols
    np_ = _prefixed(n, "nmr_", both).rename(columns={"_t": "_tn"})
    ep_ = _prefixed(e, "epr_", both).rename(columns={"_t": "_te"})
    np_["_j"] = np_["_i"].map(match)
    out = np_.merge(ep_, on="_j", how="outer", sort=False)
    out["matched"] = out["_tn"].notna() & out["_te"].notna()
    out["pair_dt_s"] = np.where(out["matched"], (out["_te"] - out["_tn"]).dt.total_seconds(), np.nan)
    out["time"] = out["_tn"].where(out["_tn"].notna(), out["_te"])
    out = out.sort_values(["time"], kind="stable", na_position="last").reset_index(drop=True)
    t = pd.to_datetime(out["time"], utc=True)
    out["t_s"] = (t - t.min()).dt.total_seconds()
    out = out.drop(columns=[c for c in ("_tn", "_te", "_i", "_j") if c in out.columns])
    first = ["time", "t_s", "matched", "pair_dt_s"]
    return out[first + [c for c in out.columns if c not in first]]


def pair(
    nmr: pd.DataFrame,
    epr: pd.DataFrame,
    *,
    delay_s: float | None = None,
    volume_mL: float | None = None,
    flow_mL_min: float | None = None,
    tolerance_s: float,
    clock_offset_s: float = 0.0,
    nmr_delay_s: float = 0.0,
    time_col: str = "time_mid",
) -> pd.DataFrame:
    """Match NMR and EPR rows in time into one table.

    Parameters
    ----------
    nmr, epr : DataFrame
        Tables of rows (``kind`` 'nmr' / 'epr'), each with a tz-aware
        ``time_col``.  A combined table may be passed twice; each side keeps
        only its kind when a ``kind`` column is present.
    delay_s : float, optional
        Transit time from the NMR cell to the EPR cell, s (τ_NMR→EPR; positive
        when the EPR is downstream).  Give this, or ``volume_mL`` and
        ``flow_mL_min``.
    volume_mL : float, optional
        Tubing volume from the NMR to the EPR detection volume, mL (negative if
        the EPR is upstream).
    flow_mL_min : float, optional
        Flow rate, mL/min.
    tolerance_s : float
        Largest |time difference| (after the corrections) for a match, s.
    clock_offset_s : float
        EPR PC clock minus NMR PC clock, s (subtracted from the EPR times).
    nmr_delay_s : float
        Transit time cell outlet → NMR, s (τ_cell→NMR); shifts both sides so
        that ``time`` refers to the cell outlet.  0 refers to the NMR.
    time_col : str
        Time column used on both sides.

    Returns
    -------
    DataFrame
        One row per matched pair plus every unmatched row of either side,
        sorted by ``time`` (tz-aware UTC, the cell-outlet time: NMR's when
        present, else EPR's) with ``t_s`` (s since the first row).  Columns
        common to both kinds are prefixed ``nmr_`` / ``epr_`` (``nmr_source``,
        ``epr_time_mid`` …), the others keep their names; ``pair_dt_s`` is the
        EPR minus NMR referred time, s (NaN when unmatched); ``matched`` bool.

    Raises
    ------
    ValueError
        If neither ``delay_s`` nor both ``volume_mL`` and ``flow_mL_min`` are
        given, or ``tolerance_s`` < 0.
    """
    if delay_s is None:
        if volume_mL is None or flow_mL_min is None:
            raise ValueError("pair(): give delay_s, or volume_mL and flow_mL_min")
        delay_s = transit_delay_s(volume_mL, flow_mL_min)
    elif volume_mL is not None or flow_mL_min is not None:
        raise ValueError("pair(): give delay_s or volume_mL/flow_mL_min, not both")
    if tolerance_s < 0:
        raise ValueError(f"pair(): tolerance_s must be >= 0, got {tolerance_s}")
    n = nmr.copy()
    e = epr.copy()
    if "kind" in n.columns:
        n = n[n["kind"].fillna("nmr") == "nmr"]
    if "kind" in e.columns:
        e = e[e["kind"].fillna("epr") == "epr"]
    for name, df in (("nmr", n), ("epr", e)):
        if time_col not in df.columns:
            raise ValueError(f"pair(): {name} table has no {time_col!r} column")
    n = n.reset_index(drop=True)
    e = e.reset_index(drop=True)
    shift_n = pd.to_timedelta(nmr_delay_s, unit="s")
    shift_e = pd.to_timedelta(nmr_delay_s + delay_s + clock_offset_s, unit="s")
    n["_t"] = (pd.to_datetime(n[time_col], utc=True) - shift_n).astype("datetime64[ns, UTC]")
    e["_t"] = (pd.to_datetime(e[time_col], utc=True) - shift_e).astype("datetime64[ns, UTC]")
    n["_i"] = np.arange(len(n))
    e["_j"] = np.arange(len(e))

    match = _one_to_one(n, e, tolerance_s)

    return _merged(n, e, match)
