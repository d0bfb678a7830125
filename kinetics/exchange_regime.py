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

from typing import Any

import numpy as np

from kinetics.exchange import electron_polarisation

__all__ = ["REGIME_TOL", "exchange_regime", "dhaq_line_regimes", "dhaq_sites_batch", "bloch_mcconnell_lines"]

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
