"""What the in-line detectors see: the cell outlet's composition, windowed-integral
capture, and the observation model of the fits (docs/physics.md §1.1, §1.2, §1.5, §1.7).

Split from :mod:`flowcell.fit.pipeline` (which re-exports every name here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from ingest.processing.peaks import integrate_window
from kinetics.constants import F
from kinetics.observe import ObservationModel
from kinetics.speciation import speciate

__all__ = ["OutletObservation", "current_table", "integral_capture", "obs_names", "outlet_composition",
           "outlet_observation", "refer_to_tank"]

def integral_capture(center_ppm: float, fwhm_hz: float, window_ppm: Sequence[float], sfo1_hz: float) -> float:
    """Fraction of a Lorentzian's area that ``ingest.processing.peaks.integrate_window`` reports.

    A windowed integral loses the Lorentzian wings outside the window
    ((2/pi) arctan(n) within +-n HWHM, docs/physics.md §1.5 caveat 3) and part of the
    line under its edge baseline, more so when the line sits off the window's centre.
    This runs the same integral on a noise-free Lorentzian of the given width
    (grid 0.05 Hz).  ``center_ppm`` is the centre the integral itself reported (the
    intensity-weighted mean, pulled towards the window centre); the true line
    centre that reproduces it is found first (brentq).
    """

    lo, hi = float(min(window_ppm)), float(max(window_ppm))
    step = 0.05 / (sfo1_hz * 1e-6)
    ppm = np.arange(hi + 0.5, lo - 0.5, -step)

    def run(c: float):
        hz = (ppm - c) * sfo1_hz * 1e-6
        g = 0.5 * fwhm_hz
        y = (g / np.pi) / (hz * hz + g * g)  # unit area per Hz
        return integrate_window(ppm, y, (lo, hi), sfo1_hz=sfo1_hz, noise=1.0)

    c = float(center_ppm)
    if lo < c < hi:
        a, b = lo + 1e-4, hi - 1e-4
        try:
            fa, fb = run(a).center_ppm - c, run(b).center_ppm - c
            if fa * fb < 0:
                c = brentq(lambda x: run(x).center_ppm - center_ppm, a, b, xtol=1e-5)
        except (ValueError, RuntimeError):
            pass
    return float(run(c).area)


def refer_to_tank(t_fluid_s: np.ndarray, t_log_s: np.ndarray, I_A: np.ndarray, *, volume_L: float,
                  rate_mL_min: float) -> np.ndarray:
    """Time at which the well-mixed tank has the SOC the cell outlet had at ``t_fluid_s``, s.

    Not used by the fits any more (they observe the outlet directly,
    :func:`outlet_composition`); kept as the approximation it is, for diagnostics.

    The outlet leads the tank by ``dSOC_pass = I/(2 F C Q)`` (docs/physics.md §1.1); at
    constant current the tank needs ``V_tot/Q`` to catch up, since
    ``dSOC/dt = I/(2 F C V_tot)``.  So a spectrum of fluid that left the cell at ``t``
    while current flowed is compared with the tank model at ``t + V_tot/Q``, capped
    at the next change of the logged current (where the tank stops following the
    same slope).  At rest the shift is zero.  The kinetic model is a single
    well-mixed volume, so this is the consistent way to compare.  Fluid that left
    the cell less than ``V_tot/Q`` before a current change has no tank equivalent
    (the outlet was ahead of anything the tank reaches): its time is NaN, and
    the earlier time base left such spectra out.

    Parameters
    ----------
    t_fluid_s : ndarray
        Times the observed fluid left the cell, s (potentiostat clock).
    t_log_s, I_A : ndarray
        Potentiostat log (A, > 0 charging).
    volume_L : float
        Circulating volume V_tot, L.
    rate_mL_min : float
        Flow rate, mL/min.
    """
    t = np.asarray(t_fluid_s, float)
    if len(t_log_s) == 0:
        return t.copy()
    lag = volume_L * 1e3 / rate_mL_min * 60.0
    i = np.clip(np.searchsorted(t_log_s, t, side="right") - 1, 0, len(I_A) - 1)
    cur = I_A[i]
    change = np.nonzero(np.abs(np.diff(I_A)) > 1e-12)[0] + 1  # first sample of a new current
    t_change = t_log_s[change] if change.size else np.array([np.inf])
    j = np.searchsorted(t_change, t, side="right")
    nxt = np.where(j < t_change.size, t_change[np.minimum(j, t_change.size - 1)], np.inf)
    shifted = np.where(np.abs(cur) > 0, t + lag, t)
    return np.where((np.abs(cur) > 0) & (shifted > nxt), np.nan, shifted)



def outlet_composition(conc: pd.DataFrame, current_A: np.ndarray, params: Mapping[str, float],
                       flow_L_s: float) -> pd.DataFrame:
    """Composition of the fluid leaving the cell, from the well-mixed tank's, mol/L.

    One pass through the cell adds ``eff I / (F Q)`` mol/L of electrons (docs/physics.md
    §1.1: the outlet leads the tank by ``dSOC = I/(2 F C Q)``; ``eff = 1 - eps_H -
    eps_dec`` on charge, 1 on discharge, as in :mod:`flowcell.simulate.simulator`), which
    redistribute at the fast comproportionation (and dimer) equilibrium (§1.2, §1.2b,
    :func:`kinetics.speciation.speciate`) on the active total ``C_act = O + R + H + 2D``.
    Products (anthrone, anthranol, ...) form slowly in the bulk and leave at the tank's
    concentration.  Transit to the detectors is the time shift of
    :func:`prepare_fit_data` (§1.7).

    Parameters
    ----------
    conc : DataFrame
        Tank concentrations (columns O, R, H, optional D, products), mol/L.
    current_A : ndarray
        Cell current at the same times, A (> 0 charging).
    params : dict
        ``Kc``, optional ``KD``, ``eps_H``, ``eps_dec``.
    flow_L_s : float
        Flow rate through the cell, L/s.
    """

    out = conc.copy()
    O, R, H = (out[c].to_numpy(float) for c in ("O", "R", "H"))
    D = out["D"].to_numpy(float) if "D" in out else np.zeros_like(O)
    C_act = O + R + H + 2 * D
    n_e = R + 2 * H + 2 * D
    I = np.asarray(current_A, float)
    eff = np.where(I > 0, 1.0 - float(params.get("eps_H", 0.0)) - float(params.get("eps_dec", 0.0)), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(C_act > 0, (n_e + eff * I / (F * flow_L_s)) / (2 * C_act), 0.0)
    O2, R2, H2, D2 = speciate(np.clip(x, 0.0, 1.0), C_act, float(params["Kc"]), float(params.get("KD", 0.0)))
    out["O"], out["R"], out["H"] = O2, R2, H2
    if "D" in out:
        out["D"] = D2
    return out


@dataclass
class OutletObservation(ObservationModel):
    """``kinetics.observe.ObservationModel`` of the fluid leaving the cell.

    The kinetic model describes the well-mixed tank; the in-line NMR and EPR see
    the cell outlet (:func:`outlet_composition`), transit-delayed.  The flow rate
    (L/s) is the per-experiment parameter ``outlet_flow_L_s`` (fixed, from the
    config), else ``flow_L_s``; None observes the tank itself.
    """

    flow_L_s: float | None = None

    def predict(self, sim: Any, params: Mapping[str, float] | None = None, *,
                temperature_K: Any = None) -> pd.DataFrame:
        p = dict(params or {})
        Q = p.pop("outlet_flow_L_s", self.flow_L_s)
        I = getattr(sim, "current_A", None)
        if Q is None or I is None or not hasattr(sim, "conc"):
            return super().predict(sim, p, temperature_K=temperature_K)
        full = dict(self.defaults)
        full.update(p)
        return super().predict(outlet_composition(sim.conc, I, full, float(Q)), p,
                               temperature_K=temperature_K)


def outlet_observation(*, geometry: str = "parallel", T_K: float = 298.15, flow_L_s: float | None = None) -> Any:
    """The observation model of the fits: :class:`kinetics.observe.ObservationModel` of the cell outlet.

    Parameters
    ----------
    geometry : str
        NMR sample geometry (BMS factor, docs/physics.md §1.3).
    T_K : float
        Temperature of the Curie susceptibility, K.
    flow_L_s : float or None
        Default flow rate through the cell, L/s (None: observe the tank).
    """
    return OutletObservation(geometry=geometry, T_K=T_K, flow_L_s=flow_L_s)


def current_table(t: np.ndarray, I: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compress a potentiostat log into piecewise-constant segments.

    Parameters
    ----------
    t, I : ndarray
        Log times (s) and currents (A), ``I[k]`` the mean over ``(t[k-1], t[k]]`` as
        :func:`flowcell.potentiostat.read_potentiostat` gives it (``I[0]`` unused).

    Returns
    -------
    (edges, I) : tuple of ndarray
        Segment edges (s, one more than currents) and each segment's current (A), as
        ``Model.simulate`` takes ``current_A`` (zero outside the log); the charge passed
        equals the log's exact count at every logged time.
    """
    t = np.asarray(t, float)
    I = np.asarray(I, float)
    if t.size < 2:
        return (np.array([t[0], t[0]]), np.zeros(1)) if t.size else (t, I)
    inner = I[1:]
    keep = np.concatenate([[True], np.abs(np.diff(inner)) > 1e-12])
    return np.concatenate([t[:-1][keep], t[-1:]]), inner[keep]


def obs_names() -> list[str]:
    """Names of the observation-model parameters (``kinetics.observe.ObservationModel``)."""
    return ObservationModel().param_names

