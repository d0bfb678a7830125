"""Flow-loop delays, single-pass conversion and the reservoir as a CSTR.

Pure functions.  SI inside (s, L, L/s, A, mol/L); the public functions take
volumes in mL and flow rates in mL/min because that is how a flow loop is
described on the bench, and convert at once.

Loop model (docs/physics.md §1.7, §1.1)::

    reservoir --feed--> cell --+--(cell_to_nmr)--> NMR cell
                               +--(cell_to_epr)--> EPR cell
                               +--(return, whole path)--> reservoir

* transit delay to a detector ``tau = V_tubing / Q`` (§1.7);
* residence time in a detection volume ``V_det / Q`` (§1.7);
* single-pass conversion ``dSOC_pass = I / (2 F C_tot Q)`` (§1.1, [D]); the
  worked example of §1.1 (0.1 A, 0.1 M, 13.6 mL/min) gives 0.023;
* the reservoir as a continuously stirred tank,
  ``dc_tank/dt = (Q/V_tank) (c_in(t - tau_return) - c_tank)`` (§1.7).

Taylor dispersion in the tubing is ignored (first order, §1.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from kinetics.constants import F

__all__ = [
    "FARADAY",
    "TransitDelays",
    "ml_min_to_L_s",
    "transit_time_s",
    "transit_delays",
    "reservoir_delays",
    "delta_soc_per_pass",
    "refer_to_outlet",
    "refer_to_reservoir",
    "outlet_soc_from_tank",
    "tank_soc_from_outlet",
    "tank_response",
]

FARADAY = F  # C/mol, CODATA 2018 (docs/physics.md §1.0)

Instrument = Literal["nmr", "epr"]


def ml_min_to_L_s(rate_mL_min: float) -> float:
    """Convert a flow rate from mL/min to L/s."""
    return float(rate_mL_min) * 1e-3 / 60.0


def _check_rate(rate_mL_min: float) -> float:
    q = float(rate_mL_min)
    if not np.isfinite(q) or q <= 0:
        raise ValueError(f"flow rate must be positive and finite, got {rate_mL_min!r} mL/min")
    return q


def transit_time_s(volume_mL: float, rate_mL_min: float) -> float:
    """Plug-flow transit time ``tau = V / Q`` (docs/physics.md §1.7).

    Parameters
    ----------
    volume_mL : float
        Volume between the two points, mL (>= 0).
    rate_mL_min : float
        Volumetric flow rate, mL/min (> 0).

    Returns
    -------
    float
        Transit time, s.
    """
    q = _check_rate(rate_mL_min)
    v = float(volume_mL)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"volume must be >= 0 and finite, got {volume_mL!r} mL")
    return v / q * 60.0


@dataclass(frozen=True)
class TransitDelays:
    """Delays along the flow loop, all in s (docs/physics.md §1.7).

    Attributes
    ----------
    cell_to_nmr_s, cell_to_epr_s : float
        Tubing transit from the cell outlet to the inlet of each detection volume.
    nmr_to_epr_s : float
        ``cell_to_epr_s - cell_to_nmr_s`` (positive when the EPR sees the fluid later).
    nmr_residence_s, epr_residence_s : float
        Residence time in each detection volume, ``V_det / Q``.
    cell_residence_s : float
        Residence time in the electrochemical cell.
    feed_s : float
        Reservoir outlet to cell inlet.
    return_s : float
        Cell outlet back into the reservoir along the flow path.
    tank_s : float
        Reservoir turnover time ``V_tank / Q`` (the CSTR time constant), NaN when unknown.
    """

    cell_to_nmr_s: float
    cell_to_epr_s: float
    nmr_to_epr_s: float
    nmr_residence_s: float
    epr_residence_s: float
    cell_residence_s: float = 0.0
    feed_s: float = 0.0
    return_s: float = 0.0
    tank_s: float = float("nan")

    def delay_s(self, instrument: Instrument) -> float:
        """Mean age of the fluid in a detector, counted from the cell outlet, s.

        The fluid in a detection volume left the cell between ``tau`` and
        ``tau + V_det/Q`` ago (plug flow); its mean age is
        ``tau + V_det/(2Q)``.  This is the delay :func:`refer_to_outlet` subtracts.
        """
        if instrument == "nmr":
            return self.cell_to_nmr_s + 0.5 * self.nmr_residence_s
        if instrument == "epr":
            return self.cell_to_epr_s + 0.5 * self.epr_residence_s
        raise ValueError(f"instrument must be 'nmr' or 'epr', got {instrument!r}")


def reservoir_delays() -> TransitDelays:
    """Delays of detectors that sample the well-mixed reservoir itself (``[flow] detectors =
    "reservoir"``): no transit, no residence, and the fluid seen is the tank's, not the
    cell outlet's (docs/physics.md §1.7)."""
    return TransitDelays(cell_to_nmr_s=0.0, cell_to_epr_s=0.0, nmr_to_epr_s=0.0, nmr_residence_s=0.0,
                         epr_residence_s=0.0)


def transit_delays(
    *,
    rate_mL_min: float,
    cell_to_nmr_mL: float = 0.0,
    cell_to_epr_mL: float = 0.0,
    nmr_cell_mL: float = 0.0,
    epr_cell_mL: float = 0.0,
    cell_mL: float = 0.0,
    feed_mL: float = 0.0,
    return_mL: float = 0.0,
    reservoir_mL: float | None = None,
) -> TransitDelays:
    """Compute every loop delay from the loop volumes (docs/physics.md §1.7).

    Parameters
    ----------
    rate_mL_min : float
        Volumetric flow rate through the cell and detectors, mL/min.
    cell_to_nmr_mL, cell_to_epr_mL : float
        Tubing volume from the cell outlet to each detection volume, mL.
    nmr_cell_mL, epr_cell_mL : float
        Detection (flow-cell) volumes, mL.
    cell_mL : float
        Electrolyte volume inside the electrochemical cell, mL.
    feed_mL : float
        Tubing from the reservoir to the cell inlet, mL.
    return_mL : float
        Whole flow path from the cell outlet back into the reservoir, mL.
    reservoir_mL : float or None
        Liquid volume in the reservoir, mL; None leaves ``tank_s`` NaN.

    Returns
    -------
    TransitDelays
    """
    t = lambda v: transit_time_s(v, rate_mL_min)  # noqa: E731
    nmr, epr = t(cell_to_nmr_mL), t(cell_to_epr_mL)
    return TransitDelays(
        cell_to_nmr_s=nmr,
        cell_to_epr_s=epr,
        nmr_to_epr_s=epr - nmr,
        nmr_residence_s=t(nmr_cell_mL),
        epr_residence_s=t(epr_cell_mL),
        cell_residence_s=t(cell_mL),
        feed_s=t(feed_mL),
        return_s=t(return_mL),
        tank_s=float("nan") if reservoir_mL is None else t(reservoir_mL),
    )


def delta_soc_per_pass(current_A: float | np.ndarray, C_tot_M: float, rate_mL_min: float) -> float | np.ndarray:
    """Single-pass SOC change across the cell, ``I / (2 F C_tot Q)`` (docs/physics.md §1.1, [D]).

    Parameters
    ----------
    current_A : float or ndarray
        Charging current, A (positive reduces the anolyte).
    C_tot_M : float
        Total active quinone, mol/L (monomer units).
    rate_mL_min : float
        Flow rate through the cell, mL/min.

    Returns
    -------
    float or ndarray
        Dimensionless SOC difference outlet minus inlet.  The §1.1 example,
        0.1 A at 0.1 M and 13.6 mL/min, gives 0.0229.
    """
    if C_tot_M <= 0:
        raise ValueError(f"C_tot_M must be positive, got {C_tot_M!r} mol/L")
    q = ml_min_to_L_s(_check_rate(rate_mL_min))
    out = np.asarray(current_A, dtype=float) / (2.0 * FARADAY * C_tot_M * q)
    return float(out) if out.ndim == 0 else out


def outlet_soc_from_tank(soc_tank, current_A, C_tot_M: float, rate_mL_min: float):
    """SOC of the stream leaving the cell when the inlet carries ``soc_tank``.

    The outlet leads the reservoir by ``dSOC_pass`` (docs/physics.md §1.7, §1.1).
    Arrays broadcast.
    """
    return np.asarray(soc_tank, float) + delta_soc_per_pass(current_A, C_tot_M, rate_mL_min)


def tank_soc_from_outlet(soc_outlet, current_A, C_tot_M: float, rate_mL_min: float):
    """Inverse of :func:`outlet_soc_from_tank`: the cell-inlet (reservoir) SOC."""
    return np.asarray(soc_outlet, float) - delta_soc_per_pass(current_A, C_tot_M, rate_mL_min)


def refer_to_outlet(t_s, delays: TransitDelays, instrument: Instrument):
    """Refer spectrum mid-times to the moment the fluid left the cell.

    ``t_outlet = t_mid - (tau_cell->det + V_det/(2Q))`` (docs/physics.md §1.7; the
    half residence time is the mean age inside the detection volume, see
    :meth:`TransitDelays.delay_s`).

    Parameters
    ----------
    t_s : float or ndarray
        Acquisition mid-times, s (any common origin).
    delays : TransitDelays
    instrument : {'nmr', 'epr'}

    Returns
    -------
    float or ndarray
        Cell-outlet times, s, same origin.
    """
    out = np.asarray(t_s, float) - delays.delay_s(instrument)
    return float(out) if out.ndim == 0 else out


def refer_to_reservoir(
    t_s,
    soc,
    current_A,
    delays: TransitDelays,
    instrument: Instrument,
    *,
    C_tot_M: float,
    rate_mL_min: float,
):
    """Refer a spectroscopic SOC to the reservoir it was drawn from.

    The fluid seen by a detector at ``t_s`` left the cell at
    ``t_out = refer_to_outlet(t_s)``; it entered the cell ``cell_residence_s``
    earlier and left the reservoir ``feed_s`` before that, with an SOC lower by
    ``dSOC_pass`` (docs/physics.md §1.7, §1.1).

    Parameters
    ----------
    t_s : float or ndarray
        Spectrum mid-times, s.
    soc : float or ndarray
        SOC measured in the detector (dimensionless).
    current_A : float or ndarray
        Cell current while that fluid was in the cell, A (charging > 0).
    delays : TransitDelays
    instrument : {'nmr', 'epr'}
    C_tot_M : float
        mol/L.
    rate_mL_min : float
        mL/min.

    Returns
    -------
    (t_reservoir_s, soc_reservoir)
    """
    t_out = refer_to_outlet(t_s, delays, instrument)
    t_res = np.asarray(t_out, float) - delays.cell_residence_s - delays.feed_s
    soc_res = tank_soc_from_outlet(soc, current_A, C_tot_M, rate_mL_min)
    if t_res.ndim == 0:
        t_res = float(t_res)
    if np.ndim(soc_res) == 0:
        soc_res = float(soc_res)
    return t_res, soc_res


def tank_response(
    t_s: np.ndarray,
    c_in: np.ndarray,
    *,
    tank_mL: float,
    rate_mL_min: float,
    return_delay_s: float = 0.0,
    c0: float | None = None,
) -> np.ndarray:
    """Reservoir composition for a given inflow history (CSTR, docs/physics.md §1.7).

    Integrates ``dc/dt = (Q/V)(c_in(t - tau_return) - c)`` exactly for an
    inflow that is piecewise linear between the samples (so exact for ramps,
    and for a delayed inflow whose kinks fall on sample times; otherwise the
    delayed inflow is linearly interpolated): on each interval of length h
    with inflow ``u0 + s t``,
    ``c(h) = u0 + s h - s/a + (c(0) - u0 + s/a) e^{-a h}``, ``a = Q/V``.

    Parameters
    ----------
    t_s : ndarray, shape (n,)
        Increasing sample times, s.
    c_in : ndarray, shape (n,)
        Composition entering the reservoir at those times at the cell outlet
        (any intensive quantity: SOC, mol/L).  It reaches the tank
        ``return_delay_s`` later; before the first sample it is held at ``c_in[0]``.
    tank_mL : float
        Reservoir liquid volume, mL.
    rate_mL_min : float
        mL/min.
    return_delay_s : float
        Transit from the cell outlet to the tank, s.
    c0 : float or None
        Tank composition at ``t_s[0]``; default ``c_in[0]``.

    Returns
    -------
    ndarray, shape (n,)
        Tank composition at ``t_s``.
    """
    t = np.asarray(t_s, float)
    u_raw = np.asarray(c_in, float)
    if t.ndim != 1 or t.shape != u_raw.shape:
        raise ValueError("t_s and c_in must be 1D arrays of the same length")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise ValueError("t_s must be strictly increasing")
    if tank_mL <= 0:
        raise ValueError(f"tank_mL must be positive, got {tank_mL!r}")
    a = ml_min_to_L_s(_check_rate(rate_mL_min)) / (tank_mL * 1e-3)  # 1/s
    # inflow at the tank at time t is c_in(t - tau); hold the first value before.
    u = np.interp(t - return_delay_s, t, u_raw, left=u_raw[0], right=u_raw[-1])
    out = np.empty_like(t)
    out[0] = u[0] if c0 is None else float(c0)
    for i in range(t.size - 1):
        h = t[i + 1] - t[i]
        s = (u[i + 1] - u[i]) / h
        e = np.exp(-a * h)
        out[i + 1] = u[i] + s * h - s / a + (out[i] - u[i] + s / a) * e
    return out
