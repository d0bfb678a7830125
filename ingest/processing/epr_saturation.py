"""Microwave power saturation of a CW EPR line, from a power series of one sample.

Unsaturated, the double integral grows as the square root of the microwave power
(docs/physics.md §1.5, "intensity ... proportional to the square root of microwave
power"; caveat 1: semiquinones have long T1e, so check DI ∝ √P over a power series
and work in the linear regime).  Progressive saturation makes ``DI/√P`` fall:

    DI/√P = r0 · (1 + P/P_half)^(-b/2)

with ``b = 1`` for an inhomogeneously broadened line and ``b = 3`` for a homogeneous
(Lorentzian) one (Portis; Castner).  :func:`saturation_check` compares each power's
``r = DI/√P`` with the low-power plateau ``r0`` and flags every power where ``r`` falls
below it by more than ``k`` times its noise.

The **safe power** it reports is the highest measured power at and below which no
point is flagged.  When the series is long enough to fit ``P_half`` (three or more
powers, saturation seen), it also reports the power at which the model loses
``max_loss`` (default 2 %) of the signal with ``b = 3``, the stricter case:
``P_safe = P_half · ((1 - max_loss)^(-2/3) - 1)`` (``≈ 0.0136 P_half`` for 2 %).
Measure sample and spin standard at a power at or below both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

__all__ = ["SaturationCheck", "saturation_check"]


@dataclass
class SaturationCheck:
    """Result of :func:`saturation_check` (powers ascending).

    Attributes
    ----------
    power_W : ndarray
    ratio : ndarray
        ``DI / √P`` relative to the low-power plateau ``r0`` (1 = unsaturated).
    sigma : ndarray
        Noise of ``ratio`` (same scale).
    saturated : ndarray of bool
        ``ratio < 1 - k·sigma`` at that power.
    safe_power_W : float
        Highest measured power with no saturated point at or below it (NaN if even the
        lowest is; then measure lower).
    p_half_W : float
        Half-saturation power of the fit (NaN when not fitted).
    model_safe_power_W : float
        Power losing ``max_loss`` of the signal by the fitted model (b = 3), W (NaN when not fitted).
    warnings : list of str
    """

    power_W: np.ndarray
    ratio: np.ndarray
    sigma: np.ndarray
    saturated: np.ndarray
    safe_power_W: float
    p_half_W: float = float("nan")
    model_safe_power_W: float = float("nan")
    warnings: list[str] = field(default_factory=list)


def _sigma(r: np.ndarray, r0: float, di_sigma: np.ndarray | None, power: np.ndarray, rel_floor: float,
           n_ref: int) -> np.ndarray:
    if di_sigma is not None:
        return np.maximum(np.asarray(di_sigma, float) / np.sqrt(power) / r0, rel_floor)
    low = r[:max(n_ref, 2)] / r0
    scatter = float(np.std(low, ddof=1)) if low.size > 1 else 0.0
    return np.full(r.size, max(scatter, rel_floor))


def saturation_check(power_W, di, di_sigma=None, *, k: float = 3.0, rel_floor: float = 0.01,
                     n_ref: int = 2, max_loss: float = 0.02) -> SaturationCheck:
    """Does ``DI/√P`` fall with power beyond its noise?  (docs/physics.md §1.5 caveat 1)

    Parameters
    ----------
    power_W : array_like
        Microwave powers, W (the same sample, every other setting equal).
    di : array_like
        Double integrals at those powers (normalised for everything but the power).
    di_sigma : array_like, optional
        Standard error of each ``di``.  Without it the noise is the scatter of the
        ``n_ref`` lowest-power ratios, never below ``rel_floor``.
    k : float
        Number of standard errors a fall must exceed to count as saturation.
    rel_floor : float
        Smallest relative noise assumed (DI repeatability is rarely better than 1 %).
    n_ref : int
        Lowest powers averaged for the plateau ``r0``.
    max_loss : float
        Signal loss defining :attr:`SaturationCheck.model_safe_power_W`.

    Returns
    -------
    SaturationCheck
    """
    p = np.asarray(power_W, float)
    y = np.asarray(di, float)
    if p.shape != y.shape or p.ndim != 1 or p.size < 2:
        raise ValueError("saturation_check: need two or more powers and as many double integrals")
    if np.any(p <= 0) or not np.all(np.isfinite(y)):
        raise ValueError("saturation_check: powers must be > 0 and double integrals finite")
    order = np.argsort(p)
    p, y = p[order], y[order]
    ds = None if di_sigma is None else np.asarray(di_sigma, float)[order]
    r = y / np.sqrt(p)
    n0 = min(max(n_ref, 1), p.size)
    r0 = float(np.mean(r[:n0]))
    sig = _sigma(r, r0, ds, p, rel_floor, n0)
    ratio = r / r0
    sat = ratio < 1.0 - k * sig
    ok_until = np.cumsum(sat) == 0
    safe = float(p[ok_until][-1]) if ok_until.any() else float("nan")
    warnings: list[str] = []
    if sat.any():
        first = float(p[np.argmax(sat)])
        warnings.append(f"microwave saturation: DI/sqrt(P) falls {100 * (1 - ratio[np.argmax(sat)]):.1f} % "
                        f"(> {k:g} sigma) by {first * 1e3:.3g} mW; stay at or below {safe * 1e3:.3g} mW"
                        if np.isfinite(safe) else
                        f"microwave saturation already at the lowest power {first * 1e3:.3g} mW: measure lower")
    if np.any(ratio > 1.0 + k * sig):
        warnings.append("DI/sqrt(P) rises with power beyond its noise: not saturation (baseline, phase or "
                        "detection problem?)")
    out = SaturationCheck(p, ratio, sig, sat, safe, warnings=warnings)
    if sat.any() and p.size >= 3:
        fit = least_squares(lambda q: (r / r0 - q[0] * (1 + p / np.exp(q[1])) ** -1.5) / sig,
                            x0=[1.0, np.log(p[np.argmax(sat)])], method="lm")
        if fit.success:
            out.p_half_W = float(np.exp(fit.x[1]))
            out.model_safe_power_W = out.p_half_W * ((1 - max_loss) ** (-2 / 3) - 1)
    return out
