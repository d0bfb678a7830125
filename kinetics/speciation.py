"""Closed-form speciation of a two-electron quinone with comproportionation.

Species (docs/physics.md §1.0): O (oxidised, DHAQ2-), R (radical, DHAQ3-•), H (reduced,
DHAQ4-) and the optional diamagnetic dimer D (2 quinone units, 2 electrons).
With x = SOC, C_tot = [O] + [R] + [H] + 2[D] (monomer units, mol/L) and
n_e = [R] + 2[H] + 2[D] = 2 x C_tot (docs/physics.md §1.1).

* No dimer (docs/physics.md §1.2, [D]): ``K_c = [R]^2/([O][H])`` and the stable root
  ``f_R = 2 K x(1-x) / (K/2 + sqrt(K^2/4 + K(4-K) x(1-x)))``.
* Dimer (docs/physics.md §1.2b, [D]): ``O + H <=> D`` with ``K_D = [D]/([O][H])`` (1/M);
  one scalar equation ``p = (C(1-x) - s)(C x - s)`` with ``s = sqrt(K_c p)/2 + K_D p``
  and ``p = [O][H]``, solved by a bracketed root (monotone on the bracket).

All functions are vectorised over numpy arrays (broadcasting x, C_tot, K).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

__all__ = [
    "radical_fraction",
    "radical_fraction_checked",
    "speciate",
    "soc_from_radical",
    "K_from_radical",
    "apparent_K",
    "dimer_p",
]

ArrayLike = float | np.ndarray


def _out(a: np.ndarray) -> ArrayLike:
    return float(a) if np.ndim(a) == 0 else a


def radical_fraction(x: ArrayLike, K: ArrayLike) -> ArrayLike:
    """Radical fraction f_R = [R]/C_tot at SOC ``x`` with no dimer (docs/physics.md §1.2).

    Parameters
    ----------
    x : float or ndarray
        State of charge, 0..1 (values outside are clipped).
    K : float or ndarray
        Comproportionation constant K_c = [R]^2/([O][H]) (dimensionless, > 0).

    Returns
    -------
    float or ndarray
        f_R (dimensionless), symmetric in x <-> 1-x, maximal ``sqrt(K)/(2+sqrt(K))``
        at x = 1/2; ``2x(1-x)`` for K = 4.

    Notes
    -----
    Uses the numerically stable root of ``(1-K/4) f^2 + (K/2) f - K x(1-x) = 0``,
    valid for every K > 0 including K = 4.
    """
    if isinstance(x, float) and isinstance(K, float):  # one point: the same operations on floats
        return _radical_fraction_scalar(x, K)
    x = np.asarray(x, dtype=float).clip(0.0, 1.0)
    K = np.asarray(K, dtype=float)
    if (K < 0).any():
        raise ValueError(f"radical_fraction: K must be >= 0, got {K}")
    return _out(radical_fraction_checked(x, K))


def radical_fraction_checked(x: np.ndarray, K: np.ndarray) -> np.ndarray:
    """:func:`radical_fraction` of arrays already checked: ``x`` within [0, 1] (or NaN), ``K``
    not negative (e.g. ``exp`` of a log constant).  For callers in a hot loop (the live filter)."""
    u = x * (1.0 - x)
    den = K / 2.0 + np.sqrt(K * K / 4.0 + K * (4.0 - K) * u)
    pos = den > 0
    if pos.all():  # the usual case (K > 0): no masking
        return 2.0 * K * u / den
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pos, 2.0 * K * u / np.where(pos, den, 1.0), 0.0)


def _radical_fraction_scalar(x: float, K: float) -> float:
    """:func:`radical_fraction` of one point in Python floats (bit-identical, ~40x cheaper)."""
    x = min(max(x, 0.0), 1.0)  # np.clip's rule, -0.0 and NaN included
    if K < 0:
        raise ValueError(f"radical_fraction: K must be >= 0, got {K}")
    u = x * (1.0 - x)
    den = K / 2.0 + math.sqrt(K * K / 4.0 + K * (4.0 - K) * u)
    return float(2.0 * K * u / den) if den > 0 else 0.0  # float: K may be an np.float64


def dimer_p(a: float, b: float, Kc: float, KD: float) -> float:
    """Solve ``p = (a - s)(b - s)``, ``s = sqrt(Kc p)/2 + KD p`` for p = [O][H] (M^2).

    ``a = C_tot (1-x)``, ``b = C_tot x`` (mol/L).  Scalar; brentq on the bracket
    ``[0, min(a b, p_s)]`` where ``s(p_s) = min(a, b)`` (docs/physics.md §1.2b).
    """
    m = min(a, b)
    if m <= 0.0:
        return 0.0
    ab = a * b
    rk = math.sqrt(max(Kc, 0.0))
    # s(p_s) = m  ->  KD u^2 + (rk/2) u - m = 0 with u = sqrt(p_s)
    if KD > 0:
        u_s = 2.0 * m / (rk / 2.0 + math.sqrt(rk * rk / 4.0 + 4.0 * KD * m))
    else:
        u_s = 2.0 * m / rk if rk > 0 else math.inf
    hi = min(ab, u_s * u_s)

    def g(p: float) -> float:
        s = rk * math.sqrt(p) / 2.0 + KD * p
        return (a - s) * (b - s) - p

    if g(hi) >= 0.0:
        return hi
    return brentq(g, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=200)


def speciate(soc: ArrayLike, C_tot: ArrayLike, Kc: ArrayLike | None = None, KD: ArrayLike = 0.0,
             *, K: ArrayLike | None = None, K_D: ArrayLike | None = None
             ) -> tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike]:
    """Equilibrium concentrations ``(O, R, H, D)`` in mol/L (docs/physics.md §1.2, §1.2b).

    Parameters
    ----------
    soc : float or ndarray
        State of charge x = n_e / (2 C_tot), 0..1 (clipped).
    C_tot : float or ndarray
        Total active quinone in monomer units, mol/L.
    Kc : float or ndarray
        Comproportionation constant (dimensionless).
    KD : float or ndarray, optional
        Dimer constant [D]/([O][H]), 1/M.  0 (default) = no dimer: closed form.
    K, K_D : optional
        Aliases of ``Kc`` and ``KD`` (the spelling of docs/architecture.md).

    Returns
    -------
    O, R, H, D : float or ndarray
        mol/L; ``O + R + H + 2D = C_tot`` and ``R + 2H + 2D = 2 x C_tot``.
    """
    if K is not None:
        if Kc is not None:
            raise TypeError("speciate: give Kc or K, not both")
        Kc = K
    if Kc is None:
        raise TypeError("speciate: missing the comproportionation constant Kc")
    if K_D is not None:
        KD = K_D
    x, C, K, KD_ = np.broadcast_arrays(np.clip(np.asarray(soc, float), 0.0, 1.0),
                                       np.asarray(C_tot, float), np.asarray(Kc, float),
                                       np.asarray(KD, float))
    if np.any(C < 0):
        raise ValueError("speciate: C_tot must be >= 0 mol/L")
    if not np.any(KD_ > 0):
        fR = np.asarray(radical_fraction(x, K))
        R = C * fR
        O = np.maximum(C * (1.0 - x) - R / 2.0, 0.0)
        H = np.maximum(C * x - R / 2.0, 0.0)
        D = np.zeros_like(R)
    else:
        a = (C * (1.0 - x)).ravel()
        b = (C * x).ravel()
        p = np.array([dimer_p(ai, bi, ki, di) for ai, bi, ki, di
                      in zip(a, b, K.ravel(), KD_.ravel())]).reshape(x.shape)
        R = np.sqrt(K * p)
        D = KD_ * p
        s = R / 2.0 + D
        O = np.maximum(C * (1.0 - x) - s, 0.0)
        H = np.maximum(C * x - s, 0.0)
    return _out(O), _out(R), _out(H), _out(D)


def soc_from_radical(f_R: ArrayLike, K: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
    """Both SOC branches ``(x_low, x_high)`` giving radical fraction ``f_R`` (docs/physics.md §1.2).

    ``x(1-x) = u`` with ``u = f_R^2 (1 - K/4)/K + f_R/2``; ``x = 1/2 -/+ sqrt(1/4 - u)``.
    When ``u > 1/4`` (f_R above the maximum ``sqrt(K)/(2+sqrt(K))``, e.g. noise)
    both branches return 1/2.  NaN where K <= 0.
    """
    f = np.asarray(f_R, dtype=float)
    K = np.asarray(K, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = f * f * (1.0 - K / 4.0) / K + f / 2.0
        u = np.where(K > 0, u, np.nan)
    r = np.sqrt(np.clip(0.25 - u, 0.0, None))
    return _out(0.5 - r), _out(0.5 + r)


def K_from_radical(f_R: ArrayLike, x: ArrayLike) -> ArrayLike:
    """Comproportionation constant from f_R at known SOC x (no dimer, docs/physics.md §1.2).

    ``K = f_R^2 / ((1 - x - f_R/2)(x - f_R/2))``; NaN where a factor is <= 0.
    """
    f = np.asarray(f_R, dtype=float)
    x = np.asarray(x, dtype=float)
    fO = 1.0 - x - f / 2.0
    fH = x - f / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        K = np.where((fO > 0) & (fH > 0), f * f / (fO * fH), np.nan)
    return _out(K)


def apparent_K(soc: ArrayLike, C_tot: ArrayLike, Kc: ArrayLike, KD: ArrayLike) -> ArrayLike:
    """EPR-apparent comproportionation constant with a dimer present (docs/physics.md §1.2b).

    The radical fraction ``f_R = [R]/C_tot`` of the dimer model is read back through the
    no-dimer balances (:func:`K_from_radical`).  Equals ``Kc`` when ``KD = 0`` and falls
    with ``C_tot`` when ``KD > 0`` (the Z21 concentration dependence, [V-translated]).
    """
    _, R, _, _ = speciate(soc, C_tot, Kc, KD)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.asarray(R) / np.asarray(C_tot, dtype=float)
    return K_from_radical(f, soc)
