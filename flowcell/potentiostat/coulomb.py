"""Coulomb counting: charge from a logged current (docs/physics.md §1.1, §5.7).

One rule: the current of a row is the mean over the interval that ends at the row
(how :func:`flowcell.read_potentiostat` delivers every format, see
:mod:`flowcell.potentiostat.columns`), so

    Q_k = Q_{k-1} + I_k (t_k - t_{k-1}),     Q_0 = 0,

exact at every record; between records the charge is linear in time (the interval's
mean current held).  No charge is counted across a change of ``segments`` label
(EC-Lab loops: the technique paused).
"""

from __future__ import annotations

import numpy as np

from flowcell.transit import FARADAY

__all__ = ["charge_between", "charge_throughput", "coulomb_count", "coulomb_soc", "instrument_charge"]


def _arrays(t_s, I_A) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t_s, dtype=float)
    current = np.asarray(I_A, dtype=float)
    if t.shape != current.shape or t.ndim != 1:
        raise ValueError("t_s and I_A must be 1D arrays of the same length")
    if np.any(np.diff(t) < 0):
        raise ValueError("t_s must be non-decreasing")
    return t, current


def coulomb_count(t_s, I_A, *, segments=None, method: str = "interval") -> np.ndarray:
    """Charge passed since the first record, C.

    Parameters
    ----------
    t_s : array_like
        Record times, s, non-decreasing.
    I_A : array_like
        Current, A: the mean over the interval ending at each record (``I_A`` of
        :func:`flowcell.read_potentiostat`).  The first record's value is not used.
    segments : array_like of int, optional
        Segment label per record (the ``loop`` column); an interval whose two ends carry
        different labels counts no charge (the technique paused).
    method : {'interval', 'sample'}
        ``'interval'`` (default): right-hand rule ``I_k (t_k - t_{k-1})``, exact for
        interval means.  ``'sample'``: for raw instantaneous readings logged at a step
        instant with the new current (EC-Lab ``I/mA``), ``I_{k-1} (t_k - t_{k-1})``;
        the readers already convert such columns, so callers of the package's tables
        never need it.

    Returns
    -------
    ndarray
        Cumulative charge, C, starting at 0.
    """
    t, current = _arrays(t_s, I_A)
    if t.size == 0:
        return np.zeros(0)
    if method == "interval":
        dq = current[1:] * np.diff(t)
    elif method == "sample":
        dq = current[:-1] * np.diff(t)
    else:
        raise ValueError(f"method must be 'interval' or 'sample', got {method!r}")
    if segments is not None:
        seg = np.asarray(segments)
        dq = np.where(seg[1:] == seg[:-1], dq, 0.0)
    return np.concatenate([[0.0], np.cumsum(dq)])


def charge_between(t_s, I_A, t0_s: float, t1_s: float, *, segments=None) -> float:
    """Charge passed between two times, C (:func:`coulomb_count`, linear between records).

    Exact at record times; between two records the interval's mean current is held
    (the charge is interpolated linearly); times outside the log are clamped to its ends.
    Use it to feed ``LiveSOC.update(..., charge_C=...)`` between two spectra.
    """
    t = np.asarray(t_s, dtype=float)
    if t.size < 2:
        return 0.0
    q = coulomb_count(t, I_A, segments=segments)
    return float(np.interp(t1_s, t, q) - np.interp(t0_s, t, q))


def instrument_charge(Q_instrument_C, segments) -> np.ndarray:
    """The instrument's ``(Q-Qo)`` made continuous: its per-loop resets removed, C.

    Within a loop the increments are the instrument's; across a loop boundary nothing
    is added (the pause), as in :func:`coulomb_count` with ``segments``.
    """
    q = np.asarray(Q_instrument_C, dtype=float)
    seg = np.asarray(segments)
    if q.size == 0:
        return q
    same = seg[1:] == seg[:-1]
    return np.concatenate([[0.0], np.cumsum(np.where(same, np.diff(q), 0.0))])


def charge_throughput(t_s, I_A, *, segments=None) -> float:
    """Total charge moved either way, ``sum |I_k| (t_k - t_{k-1})``, C (the scale of count errors)."""
    t, current = _arrays(t_s, I_A)
    if t.size < 2:
        return 0.0
    dq = np.abs(current[1:]) * np.diff(t)
    if segments is not None:
        seg = np.asarray(segments)
        dq = np.where(seg[1:] == seg[:-1], dq, 0.0)
    return float(np.sum(dq))


def coulomb_soc(t_s, I_A, *, C_tot_M: float, volume_L: float, soc0: float = 0.0, sign: int = +1,
                segments=None) -> np.ndarray:
    """Coulomb-counted anolyte SOC (docs/physics.md §1.1, [D]).

    ``SOC(t) = SOC0 + sign * Q(t) / (2 F C_tot V_tot)`` with ``Q`` from :func:`coulomb_count`.

    Parameters
    ----------
    t_s, I_A : array_like
        Time (s) and interval-mean current (A).
    C_tot_M : float
        Total active quinone, mol/L (monomer units).
    volume_L : float
        Whole circulating anolyte volume, L.
    soc0 : float
        SOC at ``t_s[0]``.
    sign : {+1, -1}
        +1 when positive current charges (reduces) the anolyte.
    segments : array_like, optional
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
    q = coulomb_count(t_s, I_A, segments=segments)
    return soc0 + sign * q / (2.0 * FARADAY * C_tot_M * volume_L)
