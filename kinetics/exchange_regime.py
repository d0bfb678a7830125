"""Which exchange regime each quinone line is in, and line parameters in every regime.

docs/physics.md §1.4: the slow-exchange width ``w0 + k[R]/π`` holds only while every visit
to the radical destroys the proton's coherence (radical lifetime ≫ 1/ω_a) and the O and H
lines stay apart; the fast-exchange (Kubo-Anderson) average holds only when all exchange
rates exceed every frequency difference.  In between, only the full Bloch-McConnell model
is right.  This module

* classifies each line at each time point (:func:`exchange_regime`, :func:`dhaq_line_regimes`);
* gives the centre, FWHM and area of the observable lines of the Bloch-McConnell spectrum
  from one eigen-decomposition per point (:func:`bloch_mcconnell_lines`), vectorised over
  time points, with thermal electron-spin populations (:func:`dhaq_sites_batch`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from kinetics.exchange import electron_polarisation, kubo_anderson_fwhm_hz

__all__ = [
    "REGIME_TOL",
    "ExchangeEstimate",
    "bloch_mcconnell_lines",
    "dhaq_fast_fwhm_hz",
    "dhaq_line_regimes",
    "dhaq_sites_batch",
    "estimate_exchange_rate",
    "exchange_regime",
]

#: A limit is used when the governing rate ratio is below ``REGIME_TOL`` (slow) or above
#: ``1/REGIME_TOL`` (fast).  0.1 keeps the slow-exchange width within 1 %:
#: the fraction of coherence lost per visit is Δω²/(k² + Δω²) = 0.99 at k/Δω = 0.1.
REGIME_TOL = 0.1


def exchange_regime(rate_s: Any, delta_omega_rad_s: Any, *, tol: float = REGIME_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Exchange regime from an exchange rate and a frequency difference.

    Parameters
    ----------
    rate_s : float or array
        Exchange rate (pseudo-first-order, e.g. ``k [R]``), 1/s.
    delta_omega_rad_s : float or array
        Frequency difference between the exchanging sites, rad/s.
    tol : float
        Ratio below which the exchange is slow (above ``1/tol``: fast).

    Returns
    -------
    regime : ndarray of str
        ``'slow'``, ``'intermediate'`` or ``'fast'`` per element.
    limit_ok : ndarray of bool
        True where a limit formula (slow or fast) is valid; False where only the full
        Bloch-McConnell model is (docs/physics.md §1.4).
    """
    r = np.abs(np.asarray(rate_s, dtype=float)) / np.maximum(np.abs(np.asarray(delta_omega_rad_s, dtype=float)), 1e-300)
    regime = np.where(r <= tol, "slow", np.where(r >= 1.0 / tol, "fast", "intermediate"))
    return regime, regime != "intermediate"


def dhaq_line_regimes(
    O_M: Any, R_M: Any, H_M: Any, *, a_hz: float, k1: float, k2: float, dnu_OH_hz: float,
    kc: float = 0.0, Kc: float = 1.0, tol: float = REGIME_TOL,
) -> tuple[np.ndarray, np.ndarray]:
    """Regime of one quinone proton's O/H lines at each composition (docs/physics.md §1.4).

    Two ratios decide it: the radical's exit rate ``k_R = k1[O] + k2[H] + 2 kd[R]`` against
    the hyperfine half-splitting ``|ω_a|/2`` (does a visit to R destroy coherence?), and the
    O/H exchange ``k1[R] + kc[H] + k2[R] + kc[O]`` against ``2π |ν_O − ν_H|`` (do the O and
    H lines coalesce?).  Slow when the first is ≤ tol (every visit destroys coherence, so the
    O and H lines cannot coalesce whatever the second ratio: the slow-exchange width is then
    exact), fast when both are ≥ 1/tol; everything else is intermediate, including short
    radical visits with O and H lines still apart (neither limit holds there).

    Parameters
    ----------
    O_M, R_M, H_M : float or array
        Concentrations, mol/L.
    a_hz : float
        Hyperfine coupling of the proton, Hz.
    k1, k2, kc : float
        Rate constants, 1/(M s).
    Kc : float
        Comproportionation constant.
    dnu_OH_hz : float
        Shift difference between the O and H lines, Hz.

    Returns
    -------
    regime, limit_ok : ndarray
        As :func:`exchange_regime`.
    """
    O, R, H = (np.asarray(x, dtype=float) for x in (O_M, R_M, H_M))
    kd = kc / Kc if Kc > 0 else 0.0
    r_hf = (k1 * O + k2 * H + 2 * kd * R) / max(np.pi * abs(a_hz), 1e-300)
    r_dia = (k1 * R + kc * H + k2 * R + kc * O) / max(2 * np.pi * abs(dnu_OH_hz), 1e-300)
    slow = r_hf <= tol
    fast = (r_hf >= 1 / tol) & (r_dia >= 1 / tol)
    regime = np.where(slow, "slow", np.where(fast, "fast", "intermediate"))
    return regime, regime != "intermediate"


def dhaq_sites_batch(
    O_M: Any, R_M: Any, H_M: Any, *, a_hz: float, k1: float, k2: float, kc: float = 0.0, Kc: float = 1.0,
    nu_O_hz: float = 0.0, nu_H_hz: float = 0.0, nu_R_hz: float | None = None,
    sfo1_MHz: float = 400.0, g: float = 2.0046, T_K: float = 298.15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`kinetics.exchange.dhaq_exchange_sites` (no electron T1 term).

    Returns offsets (4,) Hz, populations (m, 4) and exchange matrices (m, 4, 4) 1/s, with
    thermal electron-spin populations (contact shift, docs/physics.md §1.4).
    """
    O, R, H = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (O_M, R_M, H_M))
    if nu_R_hz is None:
        nu_R_hz = 0.5 * (nu_O_hz + nu_H_hz)
    P = electron_polarisation(sfo1_MHz, g=g, T_K=T_K)
    up, dn = (1 + P) / 2, (1 - P) / 2
    kd = kc / Kc if Kc > 0 else 0.0
    tot = O + R + H
    tot = np.where(tot > 0, tot, 1.0)
    p = np.stack([O, R * up, R * dn, H], axis=-1) / tot[:, None]
    kOR, kRO = k1 * R + kc * H, k1 * O + kd * R
    kHR, kRH = k2 * R + kc * O, k2 * H + kd * R
    K = np.zeros((O.size, 4, 4))
    K[:, 1, 0], K[:, 2, 0] = kOR * up, kOR * dn
    K[:, 0, 1] = K[:, 0, 2] = kRO
    K[:, 3, 1] = K[:, 3, 2] = kRH
    K[:, 1, 3], K[:, 2, 3] = kHR * up, kHR * dn
    K -= np.einsum("mij->mj", K)[:, None, :] * np.eye(4)[None]
    offs = np.array([nu_O_hz, nu_R_hz + a_hz / 2, nu_R_hz - a_hz / 2, nu_H_hz], dtype=float)
    return offs, p, K


def bloch_mcconnell_lines(
    offsets_hz: Any, populations: Any, K: Any, *, r2: Any = 0.0, sites: tuple[int, ...] = (0, 3),
) -> dict[str, np.ndarray]:
    """Centre, FWHM and area of the lines the given sites show, from the Bloch-McConnell matrix.

    ``A = iΩ − R2 + K`` is diagonalised once per point (docs/physics.md §1.4): the spectrum
    is a sum of complex Lorentzians, one per eigenvalue λ_k, at ``Im λ_k / 2π`` (Hz) with FWHM
    ``−Re λ_k / π`` (Hz) and area ``Re w_k`` (``w_k`` the residue; Σ w_k = Σ p).  The line of a
    site s is the eigen-component that receives most of that site's magnetisation
    (``Re w_k^(s)``, the residue when only s starts magnetised); in the slow limit it is s's own
    line (area p_s, width r2/π + exit rate/π), in the fast limit every site maps onto the one
    averaged line (``coalesced``).  Exact for the Lorentzian components; near coalescence the
    observed peak is a sum of two overlapping components and its width is only approximate.

    Parameters
    ----------
    offsets_hz : array (n,) or (m, n)
        Site frequencies, Hz.
    populations : array (m, n)
        Site populations.
    K : array (m, n, n)
        Exchange matrices, 1/s (``K[j, i]``: rate from i to j; columns sum to 0).
    r2 : float or array (n,)
        Intrinsic transverse relaxation rate, 1/s (w0 = r2/π Hz).
    sites : tuple of int
        Sites whose lines are wanted.

    Returns
    -------
    dict
        ``centre_hz``, ``fwhm_hz``, ``area`` (each (m, len(sites))) and ``coalesced``
        (m, len(sites)) bool: the site's line is shared with another listed site.
    """
    p = np.atleast_2d(np.asarray(populations, dtype=float))
    K = np.asarray(K, dtype=float).reshape(p.shape[0], p.shape[1], p.shape[1])
    n = p.shape[1]
    om = 2 * np.pi * np.broadcast_to(np.asarray(offsets_hz, dtype=float), p.shape)
    r2v = np.broadcast_to(np.asarray(r2, dtype=float), (n,))
    A = K.astype(complex) + (1j * om[:, :, None] - r2v[None, :, None]) * np.eye(n)[None]
    lam, V = np.linalg.eig(A)
    left = np.einsum("mik->mk", V)  # 1ᵀ V
    Vinv = np.linalg.inv(V)
    total = left * np.einsum("mki,mi->mk", Vinv, p.astype(complex))
    idx = np.empty((p.shape[0], len(sites)), dtype=int)
    for j, s in enumerate(sites):
        w_s = left * Vinv[:, :, s] * p[:, s][:, None]
        idx[:, j] = np.argmax(w_s.real, axis=1)
    rows = np.arange(p.shape[0])[:, None]
    lam_s = lam[rows, idx]
    coalesced = np.zeros(idx.shape, dtype=bool)
    for j in range(len(sites)):
        for k in range(len(sites)):
            if j != k:
                coalesced[:, j] |= idx[:, j] == idx[:, k]
    return {"centre_hz": lam_s.imag / (2 * np.pi), "fwhm_hz": -lam_s.real / np.pi,
            "area": total[rows, idx].real, "coalesced": coalesced}


def dhaq_fast_fwhm_hz(
    O: np.ndarray, R: np.ndarray, H: np.ndarray, *, k1: float, k2: float, kc: float, kd: float, a_hz: float,
    nu_O_ppm: float, nu_H_ppm: float, nu_R_ppm: float, sfo1_MHz: float, w0_Hz: float,
) -> np.ndarray:
    """Kubo-Anderson (fast-exchange) FWHM of the averaged line per time point, Hz.

    The (O, R↑, R↓, H) network of docs/physics.md §1.4 with equal R↑/R↓ populations (the
    thermal imbalance, ~1e-2, changes the width by less than 1e-4); points without radical or
    without diamagnetic partner keep ``w0_Hz``.  Rates in 1/(M s), concentrations mol/L.
    """
    n = O.size
    width = np.full(n, w0_Hz, dtype=float)
    ok = (R > 0) & (O + H > 0)
    if not ok.any():
        return width
    O_, R_, H_ = O[ok], R[ok], H[ok]
    tot = O_ + R_ + H_
    p = np.stack([O_, R_ / 2, R_ / 2, H_], axis=-1) / tot[:, None]
    m = ok.sum()
    K = np.zeros((m, 4, 4))
    kOR, kRO = k1 * R_ + kc * H_, k1 * O_ + kd * R_
    kHR, kRH = k2 * R_ + kc * O_, k2 * H_ + kd * R_
    K[:, 1, 0] = K[:, 2, 0] = kOR / 2
    K[:, 0, 1] = K[:, 0, 2] = kRO
    K[:, 3, 1] = K[:, 3, 2] = kRH
    K[:, 1, 3] = K[:, 2, 3] = kHR / 2
    K -= np.einsum("mij->mj", K)[:, None, :] * np.eye(4)[None]
    ppm_to_rad = 2 * np.pi * sfo1_MHz
    nuR = nu_R_ppm * sfo1_MHz  # Hz
    om = np.array([nu_O_ppm * ppm_to_rad, 2 * np.pi * (nuR + a_hz / 2), 2 * np.pi * (nuR - a_hz / 2),
                   nu_H_ppm * ppm_to_rad])
    width[ok] = kubo_anderson_fwhm_hz(np.broadcast_to(om, (m, 4)), K, p, w0_Hz=w0_Hz)
    return width


@dataclass(frozen=True)
class ExchangeEstimate:
    """An electron self-exchange rate constant recovered from line widths.

    Attributes
    ----------
    k : float
        Best rate constant, 1/(M s) (NaN when nothing was observable).
    k_lo, k_hi : float
        Range where Δχ² < 4 (≈ 95 %), 1/(M s).
    w0_Hz : float
        Fitted intrinsic width, Hz.
    identifiable : bool
        False when fewer than 3 widths were observed or the Δχ² < 4 range reaches the edge of
        the search range or spans more than two decades.
    n_used : int
        Number of widths used.
    note : str
        Why not identifiable (empty otherwise).
    """

    k: float
    k_lo: float
    k_hi: float
    w0_Hz: float
    identifiable: bool
    n_used: int
    note: str = ""


def estimate_exchange_rate(
    conc: pd.DataFrame, widths: Mapping[str, Any], *, model: Any, sigma_Hz: float | Mapping[str, float] = 0.5,
    params: Mapping[str, float] | None = None, log10k_range: tuple[float, float] = (2.0, 11.0), tie: Sequence[str] = ("k1", "k2"),
) -> ExchangeEstimate:
    """Fit one self-exchange rate constant (``k1 = k2 = k``) and w0 to observed line widths.

    Works in every regime: the widths are predicted by ``model`` (an
    :class:`kinetics.observe.ObservationModel`, ``regime='auto'``: slow formula, Bloch-McConnell
    or fast average, docs/physics.md §1.4).  A grid over log10 k (w0 profiled as an offset)
    gives the Δχ² < 4 range, then a local least-squares refines k and w0 together.

    Parameters
    ----------
    conc : DataFrame
        Concentrations O, R, H (mol/L) per spectrum (index: t_s).
    widths : mapping column -> array
        Observed FWHM per spectrum (Hz; NaN where the line was not observed), e.g.
        ``{'dhaq_h1_fwhm_Hz': ...}``.
    model : ObservationModel
    sigma_Hz : float or mapping
        Standard deviation of each width, Hz.
    params : mapping
        Other observation parameters (hyperfine ``a_*_mT`` ...).
    log10k_range : (float, float)
        Search range of log10 k (1/(M s)).
    tie : sequence of str
        Rate-constant names set to k.
    """
    obs = {c: np.asarray(v, dtype=float) for c, v in widths.items()}
    used = {c: np.isfinite(v) & (v > 0) for c, v in obs.items()}
    sig = {c: float(sigma_Hz[c]) if isinstance(sigma_Hz, Mapping) else float(sigma_Hz) for c in obs}
    base = dict(params or {})
    first = _fit_k(conc, obs, used, sig, model, base, log10k_range, tie)
    if not np.isfinite(first.k):
        return first
    # near O/H coalescence the observed peak is two overlapping components whose fitted width
    # differs from either eigen-width: leave those points out at the fitted k, refit once
    near = _near_coalescence(conc, model, {**base, **{n: first.k for n in tie}})
    n_out = int(sum((used[c] & near).sum() for c in obs))
    if n_out == 0:
        return first
    used = {c: used[c] & ~near for c in obs}
    est = _fit_k(conc, obs, used, sig, model, base, log10k_range, tie)
    note = f"{n_out} width(s) near O/H coalescence left out" + (f"; {est.note}" if est.note else "")
    return ExchangeEstimate(est.k, est.k_lo, est.k_hi, est.w0_Hz, est.identifiable, est.n_used, note)


def _near_coalescence(conc: pd.DataFrame, model: Any, p: Mapping[str, float], band: tuple[float, float] = (0.2, 5.0)) -> np.ndarray:
    """Points whose O/H exchange ratio (:func:`dhaq_line_regimes`) lies inside ``band`` for any peak."""
    O, R, H = (np.asarray(conc[s], dtype=float) if s in conc else np.zeros(len(conc)) for s in "ORH")
    kc = p.get("kc", 0.0)
    k1, k2 = p.get("k1", 1e8), p.get("k2", 1e8)
    out = np.zeros(len(conc), dtype=bool)
    for pk in model.peaks.values():
        dnu = abs(pk.delta_O_ppm - pk.delta_H_ppm) * model.sfo1_MHz
        r = (k1 * R + kc * H + k2 * R + kc * O) / max(2 * np.pi * dnu, 1e-300)
        out |= (r > band[0]) & (r < band[1])
    return out


def _fit_k(conc: pd.DataFrame, obs: Mapping[str, np.ndarray], used: Mapping[str, np.ndarray],
           sig: Mapping[str, float], model: Any, base: Mapping[str, float],
           log10k_range: tuple[float, float], tie: Sequence[str]) -> ExchangeEstimate:
    """Grid over log10 k with w0 profiled, then a local least squares (see :func:`estimate_exchange_rate`)."""
    nan = math.nan
    n_used = int(sum(m.sum() for m in used.values()))
    if n_used < 3:
        return ExchangeEstimate(nan, nan, nan, nan, False, n_used, f"only {n_used} line width(s) observed")

    def resid(lk: float, w0: float) -> np.ndarray:
        pred = model.predict(conc, {**base, **{n: 10.0**lk for n in tie}, "w0_Hz": w0})
        r = [np.nan_to_num((np.asarray(pred[c], dtype=float)[used[c]] - obs[c][used[c]]) / sig[c], nan=1e3)
             for c in obs]
        return np.concatenate(r)

    grid = np.arange(log10k_range[0], log10k_range[1] + 1e-9, 0.1)
    chi2, w0s = np.empty(grid.size), np.empty(grid.size)
    s_mean = float(np.mean(list(sig.values())))
    for i, lk in enumerate(grid):
        w0 = 1.0
        for _ in range(3):  # w0 enters (nearly) additively: Gauss-Newton on w0 alone
            w0 = float(np.clip(w0 - np.mean(resid(lk, w0)) * s_mean, 0.0, 100.0))
        w0s[i] = w0
        chi2[i] = float(np.sum(resid(lk, w0) ** 2))
    i0 = int(np.argmin(chi2))
    fit = least_squares(lambda th: resid(th[0], th[1]), [grid[i0], w0s[i0]],
                        bounds=([log10k_range[0], 0.0], [log10k_range[1], 100.0]), x_scale=[0.1, 0.1])
    if float(np.sum(fit.fun**2)) > chi2[i0]:
        fit.x = np.array([grid[i0], w0s[i0]])
    c2min = min(float(np.sum(fit.fun**2)), float(chi2[i0]))
    inside = np.append(grid[chi2 - c2min < 4.0], fit.x[0])
    lo, hi = float(inside.min()) - 0.05, float(inside.max()) + 0.05  # ± half a grid step (0.1 decade)
    note = ""
    if lo < grid[0] or hi > grid[-1]:
        note = "the width data do not bound k inside the search range"
    elif hi - lo > 2.0:
        note = f"k determined only within {hi - lo:.1f} decades"
    return ExchangeEstimate(10.0 ** fit.x[0], 10.0**lo, 10.0**hi, float(fit.x[1]), not note, n_used, note)
