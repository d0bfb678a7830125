"""One output of the live SOC estimator (:class:`SOCState`) and the session's counts (:class:`SessionStatus`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

__all__ = ["SOCState", "SessionStatus"]


@dataclass(frozen=True)
class SOCState:
    """The live estimate after one row (docs/physics.md §1.1, §1.9).

    Attributes
    ----------
    t_s : float
        Time of the estimate, s since the session's start (the filter's clock).
    time_utc : datetime or None
        The same instant as a tz-aware UTC time, when the session has a start.
    soc, soc_sd : float
        Reservoir SOC on the initial amount of quinone, and its standard deviation.
    soc_active : float
        SOC on the quinone still active, ``soc / active_fraction``.
    soc_coulomb : float
        Pure coulomb count from the initial SOC (NaN without a potentiostat log).
    drift : float
        ``soc_coulomb - soc``: charge counted but not stored (SOC units).
    r_side_per_s : float
        Learnt side-reaction rate, 1/s (SOC per second; > 0 means charge lost).
    Kc, Kc_lo, Kc_hi : float
        Online estimate of the comproportionation constant and its ±2 sd range
        (docs/physics.md §1.2).
    nmr_scale, epr_scale : float
        Learnt factors on the ideal BMS water shift (§1.3) and on the EPR spin count (§1.5).
    hdo_ref_ppm : float
        Learnt zero-radical water shift, ppm (NaN until a water shift arrives).
    radical_M : float
        Radical concentration at the estimate, mol/L.
    active_fraction : float
        Fraction of the initial quinone still redox-active.
    current_A : float
        Cell current at ``t_s``, A (NaN without a log).
    kind : str or None
        'nmr' / 'epr' of the row, None for a pure time step.
    used, rejected : tuple of str
        Observations folded in, and those the outlier gate turned down.
    innovations : dict
        Normalised prior innovation (residual / predicted sd) per observation offered.
    flag : str
        Why the row did not touch the state ('' when it did), e.g. ``'untimed'``.
    row_time_s : float
        The row's own time (acquisition mid-time, clock offset removed), s; NaN if untimed.
    """

    t_s: float
    soc: float
    soc_sd: float
    soc_active: float = math.nan
    soc_coulomb: float = math.nan
    drift: float = math.nan
    r_side_per_s: float = 0.0
    Kc: float = math.nan
    Kc_lo: float = math.nan
    Kc_hi: float = math.nan
    nmr_scale: float = 1.0
    epr_scale: float = 1.0
    hdo_ref_ppm: float = math.nan
    radical_M: float = math.nan
    active_fraction: float = 1.0
    current_A: float = math.nan
    kind: str | None = None
    used: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    innovations: dict[str, float] = field(default_factory=dict)
    flag: str = ""
    row_time_s: float = math.nan
    time_utc: datetime | None = None

    @property
    def branch(self) -> str:
        """'low' or 'high': which side of 50 % the estimate is on (docs/physics.md §1.9)."""
        return "low" if self.soc < 0.5 else "high"

    def as_dict(self) -> dict[str, Any]:
        """Flat dict (innovations as ``innov_<name>``), for tables and CSV files."""
        # shallow (dataclasses.asdict deep-copies every field: half of the CSV line's cost)
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        inn = d.pop("innovations")
        d["used"] = ",".join(self.used)
        d["rejected"] = ",".join(self.rejected)
        d["branch"] = self.branch
        for k, v in inn.items():
            d[f"innov_{k}"] = v
        return d


@dataclass
class SessionStatus:
    """What the status line shows (:class:`flowcell.live.session.LiveSession` keeps it).

    Attributes
    ----------
    rows, used : int
        Rows seen, and rows whose observations were folded in.
    rejected_rows : int
        Rows whose every observation the outlier gate turned down.
    flagged : int
        Rows with no usable time (kept in the store, never used); ``flags`` counts them by reason.
    pending : int
        Files the watcher has seen but not yet stored.
    elapsed_s : float
        Wall time since the session started, s.
    potentiostat : str
        State of the log: 'ok', 'missing', 'unreadable: ...', 'replaced', or 'none' (not configured).
    mismatch, rejection_rate : float
        RMS normalised innovation and fraction of observations rejected, over the last ones.
    failure : str or None
        Why the live estimate failed (the commands then exit non-zero).
    """

    rows: int = 0
    used: int = 0
    rejected_rows: int = 0
    flagged: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    elapsed_s: float = 0.0
    potentiostat: str = "none"
    mismatch: float = math.nan
    rejection_rate: float = 0.0
    failure: str | None = None
