"""Instantaneous state-of-charge estimator from in-line observables (science.md §1.9).

1. The water (HDO) BMS shift and/or the EPR spin count give the radical
   concentration [R] (science.md §1.3, §1.5); with the comproportionation
   constant K_c this gives two SOC candidates x and 1 − x (science.md §1.2,
   ``kinetics.speciation.soc_from_radical``).
2. The candidates are told apart by aromatic observables that are monotonic in
   SOC — the slow-exchange area ratio ``A_H/(A_O + A_H)`` or the BMS-corrected
   averaged shift in fast exchange — by the sign of the current (charging ⇒ SOC
   rising) and by continuity with the previous estimate.
3. Uncertainties are propagated through the derivative ``dx/du = 1/|1 − 2x|``
   (``u = x(1 − x)``), capped by the exact deviation ``sqrt(σ_u)`` at x = ½, so near
   SOC 0.5 the water shift visibly carries no SOC information and an aromatic
   estimate, when given, dominates the inverse-variance combination.

No dimer (K_D = 0) is assumed for the inversion (science.md §1.2); with a dimer
use the full model instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kinetics.observe import radical_from_water_shift
from kinetics.speciation import radical_fraction, soc_from_radical

__all__ = ["SOCEstimate", "estimate_soc", "soc_from_area_fraction", "soc_from_averaged_shift"]


@dataclass(frozen=True)
class SOCEstimate:
    """One SOC estimate.

    Attributes
    ----------
    soc : float
        State of charge, 0..1 (science.md §1.1).
    soc_err : float
        One standard uncertainty of ``soc``.
    branch : str
        ``'low'`` (x < ½ candidate chosen), ``'high'``, ``'merged'`` (candidates
        indistinguishable, near ½), ``'ambiguous'`` (nothing to choose with: the
        midpoint is returned with an error spanning both), ``'aromatic'`` (no [R]
        information, aromatic observable only).
    candidates : tuple[float, float] or ()
        ``(x_low, x_high)`` from [R].
    candidate_err : float or None
        Uncertainty of each candidate from [R] alone.
    R_M, R_err_M : float or None
        Radical concentration used and its uncertainty, mol/L.
    info : dict
        Scores and the aromatic estimate, for diagnostics.
    """

    soc: float
    soc_err: float
    branch: str
    candidates: tuple[float, ...] = ()
    candidate_err: float | None = None
    R_M: float | None = None
    R_err_M: float | None = None
    info: dict = field(default_factory=dict, compare=False)


def soc_from_area_fraction(y: float, f_R: float = 0.0) -> float:
    """SOC from the slow-exchange area fraction ``y = A_H/(A_O + A_H)``.

    ``y = f_H/(f_O + f_H) = (x − f_R/2)/(1 − f_R)`` (science.md §1.2 balances),
    hence ``x = y(1 − f_R) + f_R/2``.
    """
    return float(y * (1.0 - f_R) + f_R / 2.0)


def soc_from_averaged_shift(
    shift_ppm: float, delta_O_ppm: float, delta_H_ppm: float, *, f_R: float = 0.0, delta_con_ppm: float = 0.0
) -> float:
    """SOC from a BMS-corrected, exchange-averaged aromatic shift (fast regime).

    ``δ̄ = f_O δ_O + f_H δ_H + f_R(δ_Rdia + δ_con)`` (science.md §1.4); with
    ``δ_Rdia = (δ_O + δ_H)/2`` and ``f_H + f_R/2 = x`` this is exactly
    ``δ_O + x(δ_H − δ_O) + f_R δ_con``.
    """
    if delta_H_ppm == delta_O_ppm:
        raise ValueError("delta_H_ppm equals delta_O_ppm: the averaged shift carries no SOC information")
    return float((shift_ppm - delta_O_ppm - f_R * delta_con_ppm) / (delta_H_ppm - delta_O_ppm))


def _candidate_err(f_R: float, sigma_f: float, K: float, x: float) -> float:
    """σ_x of a candidate: derivative of x(u), capped by the exact √σ_u at x = ½."""
    du_df = 2.0 * f_R * (1.0 - K / 4.0) / K + 0.5
    sigma_u = abs(du_df) * sigma_f
    d = abs(1.0 - 2.0 * x)
    deriv = sigma_u / d if d > 0 else math.inf
    return float(min(deriv, math.sqrt(sigma_u)))


def estimate_soc(
    *,
    C_tot: float,
    K: float,
    water_shift_ppm: float | None = None,
    water_err_ppm: float = 2e-3,
    hdo_ref_ppm: float = 0.0,
    epr_R_M: float | None = None,
    epr_err_M: float | None = None,
    area_fraction: float | None = None,
    area_fraction_err: float = 0.03,
    avg_shift_ppm: float | None = None,
    avg_shift_err_ppm: float = 0.01,
    delta_O_ppm: float | None = None,
    delta_H_ppm: float | None = None,
    delta_con_ppm: float = 0.0,
    arom: tuple[float, float] | None = None,
    prev: SOCEstimate | float | None = None,
    prev_err: float = 0.02,
    current_sign: int | float | None = None,
    max_step: float = 0.05,
    geometry: str = "parallel",
    g: float = 2.0046,
    T_K: float = 298.15,
    xi: float | None = None,
) -> SOCEstimate:
    """Estimate the anolyte SOC from one set of instantaneous observables.

    Parameters
    ----------
    C_tot : float
        Active quinone concentration, mol/L.
    K : float
        Comproportionation constant K_c (-).
    water_shift_ppm : float, optional
        HDO shift, ppm; ``hdo_ref_ppm`` (the no-radical shift) is subtracted.
    water_err_ppm : float
        Its uncertainty, ppm (0.005 ppm ≈ 1 mM radical, ∥ geometry; include the
        temperature term, science.md §1.3).
    epr_R_M, epr_err_M : float, optional
        EPR spin concentration and its uncertainty, mol/L (default 5 %).
    area_fraction, area_fraction_err : float, optional
        Slow exchange: ``A_H/(A_O + A_H)`` of separate O and H lines.
    avg_shift_ppm, avg_shift_err_ppm, delta_O_ppm, delta_H_ppm, delta_con_ppm : float, optional
        Fast exchange: BMS-corrected averaged aromatic shift (e.g. referenced to
        water) with the pure-form shifts and the radical's contact shift.
    arom : (soc, soc_err), optional
        An aromatic SOC estimate computed by the caller (used when neither
        ``area_fraction`` nor ``avg_shift_ppm`` is given).
    prev : SOCEstimate or float, optional
        The previous estimate (continuity).
    prev_err : float
        Uncertainty of ``prev`` when given as a float.
    current_sign : int, optional
        Sign of the charging current since ``prev`` (+1 charging: SOC rises).
    max_step : float
        SOC change plausible between two estimates (continuity tolerance).
    geometry, g, T_K, xi :
        Observation model of the water shift (science.md §1.3).

    Returns
    -------
    SOCEstimate
    """
    if C_tot <= 0 or K <= 0:
        raise ValueError(f"C_tot and K must be > 0, got C_tot={C_tot}, K={K}")
    # 1. radical concentration from the water shift and/or EPR (inverse variance)
    Rs: list[tuple[float, float]] = []
    if water_shift_ppm is not None and np.isfinite(water_shift_ppm):
        R_w = float(radical_from_water_shift(water_shift_ppm - hdo_ref_ppm, geometry=geometry, g=g, T_K=T_K, xi=xi))
        s_w = float(abs(radical_from_water_shift(water_err_ppm, geometry=geometry, g=g, T_K=T_K, xi=xi)))
        Rs.append((R_w, s_w))
    if epr_R_M is not None and np.isfinite(epr_R_M):
        s_e = epr_err_M if epr_err_M is not None else max(0.05 * abs(epr_R_M), 1e-5)
        Rs.append((float(epr_R_M), float(s_e)))
    R = R_err = None
    f_R = 0.0
    if Rs:
        w = np.array([1 / s**2 for _, s in Rs])
        R = float(np.sum(w * np.array([r for r, _ in Rs])) / w.sum())
        R_err = float(1 / math.sqrt(w.sum()))
        f_R = min(max(R / C_tot, 0.0), float(radical_fraction(0.5, K)))

    # 2. aromatic estimate (monotonic in SOC)
    if arom is not None:
        arom = (float(arom[0]), float(arom[1]))
    if area_fraction is not None and np.isfinite(area_fraction):
        arom = (soc_from_area_fraction(area_fraction, f_R), area_fraction_err * (1.0 - f_R))
    elif avg_shift_ppm is not None and np.isfinite(avg_shift_ppm):
        if delta_O_ppm is None or delta_H_ppm is None:
            raise ValueError("avg_shift_ppm needs delta_O_ppm and delta_H_ppm")
        x_a = soc_from_averaged_shift(avg_shift_ppm, delta_O_ppm, delta_H_ppm, f_R=f_R, delta_con_ppm=delta_con_ppm)
        arom = (x_a, avg_shift_err_ppm / abs(delta_H_ppm - delta_O_ppm))

    # reference for continuity: the last *decided* estimate (merged or ambiguous
    # estimates sit at 0.5 by construction and would bias the choice)
    anchor: tuple[float, float, int] | None = None
    if isinstance(prev, SOCEstimate):
        anchor = prev.info.get("anchor") or (prev.soc, prev.soc_err, 0)
    elif prev is not None:
        anchor = (float(prev), float(prev_err), 0)

    if R is None:
        if arom is None:
            raise ValueError("no observable given: pass water_shift_ppm, epr_R_M, area_fraction or avg_shift_ppm")
        x, s = arom
        return SOCEstimate(float(np.clip(x, 0, 1)), float(s), "aromatic", info={"arom": arom})

    # 3. the two candidates and their uncertainty
    lo, hi = (float(v) for v in soc_from_radical(f_R, K))
    s_c = _candidate_err(f_R, R_err / C_tot, K, lo)
    info: dict = {"arom": arom, "f_R": f_R}
    if hi - lo < 2 * s_c:
        branch = "merged"
        x, s = 0.5 * (lo + hi), max(s_c, 0.5 * (hi - lo))
    else:
        scores = {}
        for name, xc in (("low", lo), ("high", hi)):
            z2 = 0.0
            n = 0
            if arom is not None:
                z2 += (xc - arom[0]) ** 2 / (s_c**2 + arom[1] ** 2)
                n += 1
            if anchor is not None:
                a_soc, a_err, a_n = anchor
                drift = max_step * (a_n + 1)
                z2 += (xc - a_soc) ** 2 / (s_c**2 + a_err**2 + drift**2)
                n += 1
                if current_sign is not None and current_sign != 0:
                    # one-sided: moving against the current is penalised
                    # (charging ⇒ SOC does not fall)
                    z = -(xc - a_soc) * np.sign(current_sign) / math.sqrt(s_c**2 + a_err**2)
                    if z > 0:
                        z2 += z * z
            scores[name] = (z2, n)
        info["scores"] = {k: v[0] for k, v in scores.items()}
        decisive = abs(scores["low"][0] - scores["high"][0]) >= 4.0 or arom is not None
        if scores["low"][1] == 0 or not decisive:
            branch = "ambiguous"
            x, s = 0.5 * (lo + hi), 0.5 * (hi - lo) + s_c
        else:
            branch = "low" if scores["low"][0] <= scores["high"][0] else "high"
            x, s = (lo if branch == "low" else hi), s_c
    if branch in ("merged", "ambiguous") and anchor is not None:
        info["anchor"] = (anchor[0], anchor[1], anchor[2] + 1)
    # 4. combine with the aromatic estimate (inverse variance) unless ambiguous
    if arom is not None and branch != "ambiguous":
        w1, w2 = 1 / s**2, 1 / arom[1] ** 2
        x = (w1 * x + w2 * arom[0]) / (w1 + w2)
        s = 1 / math.sqrt(w1 + w2)
    if "anchor" not in info and branch not in ("merged", "ambiguous"):
        info["anchor"] = (float(x), float(s), 0)
    return SOCEstimate(float(np.clip(x, 0.0, 1.0)), float(s), branch, (lo, hi), float(s_c), R, R_err, info)
