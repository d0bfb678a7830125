"""Exchange-broadened NMR line widths and shapes (docs/physics.md §1.4).

Slow and fast exchange limits, the Kubo-Anderson width, the full Bloch-McConnell
spectrum of exchanging sites, the DHAQ O/R/H sites, and the width of a computed
spectrum.  Used by :class:`kinetics.observe.ObservationModel` (re-exported there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ingest.processing.halfwidth import half_height_bounds
from kinetics.constants import GAMMA_1H, H_PLANCK, K_B, MU_B

__all__ = [
    "MHz_to_mT",
    "bloch_mcconnell_lineshape",
    "bloch_mcconnell_spectrum",
    "contact_shift_ppm",
    "dhaq_exchange_sites",
    "electron_polarisation",
    "fast_exchange_fwhm_hz",
    "fwhm_from_spectrum",
    "kubo_anderson_fwhm_hz",
    "mT_to_MHz",
    "slow_exchange_fwhm_hz",
]


# --- hyperfine (docs/physics.md §1.4) ----------------------------------------------
def contact_shift_ppm(a_hz: Any, g: float = 2.0046, T_K: float = 298.15, S: float = 0.5) -> Any:
    """Fermi-contact shift of a proton in the radical, ppm.

    ``δ_con = 2π a · g μ_B S(S+1) / (3 γ_N k_B T)`` (docs/physics.md §1.4);
    26.5 ppm per MHz of a_H at 298 K, g = 2.0046. Positive a gives a positive shift.

    Parameters
    ----------
    a_hz : float or array
        Isotropic hyperfine coupling, Hz (signed).
    """
    return (
        2 * np.pi * np.asarray(a_hz, dtype=float) * g * MU_B * S * (S + 1)
        / (3.0 * GAMMA_1H * K_B * T_K)
        * 1e6
    )


def mT_to_MHz(a_mT: Any, g: float = 2.0046) -> Any:
    """Hyperfine coupling in field units (mT) to frequency units (MHz).

    ``a(Hz) = a(T) g μ_B / h``: 28.06 MHz per mT at g = 2.0046 (docs/physics.md §1.4).
    """
    return np.asarray(a_mT, dtype=float) * 1e-3 * g * MU_B / H_PLANCK / 1e6


def MHz_to_mT(a_MHz: Any, g: float = 2.0046) -> Any:
    """Inverse of :func:`mT_to_MHz`."""
    return np.asarray(a_MHz, dtype=float) / (1e-3 * g * MU_B / H_PLANCK / 1e6)


def electron_polarisation(sfo1_MHz: float, *, g: float = 2.0046, T_K: float = 298.15) -> float:
    """Thermal electron-spin polarisation ``P = tanh(g μ_B B0 / 2 k_B T)`` (-).

    ``B0 = 2π sfo1 / γ_1H`` from the 1H frequency (docs/physics.md §1.4): 400 MHz, 298.15 K
    gives P = 0.0212.  The populations of the two electron-spin states are ``(1 ± P)/2``.
    """
    if not (sfo1_MHz > 0 and T_K > 0):
        raise ValueError(f"need sfo1_MHz > 0 and T_K > 0, got {sfo1_MHz} MHz, {T_K} K")
    B0 = 2 * np.pi * sfo1_MHz * 1e6 / GAMMA_1H
    return float(np.tanh(g * MU_B * B0 / (2 * K_B * T_K)))


# --- line widths (docs/physics.md §1.4) ---------------------------------------------
def slow_exchange_fwhm_hz(
    k: Any, R_M: Any, *, w0_Hz: float = 0.0, kc: float = 0.0, partner_M: Any = 0.0
) -> Any:
    """FWHM of a diamagnetic line lifetime-broadened by visits to the radical, Hz.

    Slow exchange with respect to the hyperfine coupling (k[R] ≪ ω_a)
    (docs/physics.md §1.4): ``Δν = w0 + (k [R] + k_c [partner]) / π``.
    For the O line use ``k = k1``, ``partner = [H]``; for the H line
    ``k = k2``, ``partner = [O]``.  1 mM radical with k = 1e6 1/(M s) gives 318.3 Hz.

    Parameters
    ----------
    k : float
        Self-exchange rate constant, 1/(M s).
    R_M : float or array
        Radical concentration, mol/L.
    w0_Hz : float
        Intrinsic width, Hz.
    kc : float
        Comproportionation rate constant, 1/(M s) (O + H -> 2R also ends the
        diamagnetic lifetime).
    partner_M : float or array
        [H] for the O line, [O] for the H line, mol/L.
    """
    return w0_Hz + (np.asarray(k) * np.asarray(R_M) + kc * np.asarray(partner_M)) / np.pi


def fast_exchange_fwhm_hz(
    a_hz: Any, *, p_R: Any, k: float, partner_M: Any, w0_Hz: float = 0.0
) -> Any:
    """Exchange-narrowed FWHM of the averaged line for a D ⇌ R± system, Hz.

    ``Δν = w0 + p_R ω_a² / (4 π k [D])`` with ``ω_a = 2π a`` (docs/physics.md §1.4),
    i.e. ``p_R (ω_a/2)² τ_R / π`` with radical lifetime ``τ_R = 1/(k [D])``.

    Parameters
    ----------
    a_hz : float
        Hyperfine coupling of the proton, Hz.
    p_R : float or array
        Fraction of molecules in the radical state (-).
    k : float
        Exchange rate constant, 1/(M s).
    partner_M : float or array
        Concentration of the diamagnetic exchange partner [D], mol/L.
    """
    w_a = 2 * np.pi * np.asarray(a_hz, dtype=float)
    return w0_Hz + np.asarray(p_R) * w_a**2 / (4 * np.pi * k * np.asarray(partner_M))


def kubo_anderson_fwhm_hz(omega: Any, K: Any, p: Any, *, w0_Hz: float = 0.0) -> np.ndarray:
    """Fast-exchange excess width of an arbitrary exchange network, Hz.

    ``Δ(1/T2) = -δωᵀ K^# (P δω)``, ``δω = Ω - Σ p Ω`` (docs/physics.md §1.4), where the
    group inverse is evaluated as ``K^# = (K - p 1ᵀ)^-1 + p 1ᵀ`` (the ``p 1ᵀ`` term
    drops because ``1ᵀ P δω = 0``).  Vectorised over leading axes.

    Parameters
    ----------
    omega : array (..., n)
        Site angular frequencies, rad/s.
    K : array (..., n, n)
        Exchange matrix, 1/s, ``K[j, i]`` = rate from site i to site j, columns
        summing to zero (dp/dt = K p).
    p : array (..., n)
        Equilibrium populations (sum 1, K p = 0).

    Returns
    -------
    ndarray (...)
        FWHM, Hz.
    """
    omega = np.asarray(omega, dtype=float)
    K = np.asarray(K, dtype=float)
    p = np.asarray(p, dtype=float)
    dw = omega - np.sum(p * omega, axis=-1, keepdims=True)
    M = K - p[..., :, None] * np.ones_like(p)[..., None, :]
    x = np.linalg.solve(M, (p * dw)[..., None])[..., 0]
    rate = -np.sum(dw * x, axis=-1)
    return w0_Hz + rate / np.pi


def bloch_mcconnell_spectrum(
    freq_hz: Any,
    offsets_hz: Any,
    populations: Any,
    K: Any,
    *,
    r2: Any = 0.0,
) -> np.ndarray:
    """Exchange lineshape (Kubo-Sack / Bloch-McConnell), general network.

    ``S(ω) = Re{ 1ᵀ [iω I − (iΩ − R2 + K)]⁻¹ p }`` (docs/physics.md §1.4), evaluated
    with one eigen-decomposition of ``A = iΩ − R2 + K`` so the cost per frequency
    point is O(n).  Valid in slow, intermediate and fast exchange.

    Parameters
    ----------
    freq_hz : array (m,)
        Frequency axis, Hz (same origin as ``offsets_hz``).
    offsets_hz : array (n,)
        Site resonance frequencies, Hz.
    populations : array (n,)
        Site populations (any normalisation; the spectrum integrates to their sum).
    K : array (n, n)
        Exchange matrix, 1/s, ``K[j, i]`` = rate from site i to j; columns sum to 0.
    r2 : float or array (n,)
        Intrinsic transverse relaxation rates, 1/s (FWHM w0 = r2/π Hz).

    Returns
    -------
    ndarray (m,)
        Absorption spectrum normalised so that ``∫ S dν (Hz) = Σ p``.
    """
    f = np.asarray(freq_hz, dtype=float)
    om = 2 * np.pi * np.asarray(offsets_hz, dtype=float)
    p = np.asarray(populations, dtype=float)
    K = np.asarray(K, dtype=float)
    n = om.size
    if K.shape != (n, n) or p.shape != (n,):
        raise ValueError(f"shapes disagree: offsets {om.shape}, populations {p.shape}, K {K.shape}")
    r2v = np.broadcast_to(np.asarray(r2, dtype=float), (n,))
    A = np.diag(1j * om - r2v) + K
    lam, V = np.linalg.eig(A)
    left = np.ones(n) @ V
    right = np.linalg.solve(V, p.astype(complex))
    w = left * right  # residues
    # FT of exp(A t): (iω - A)^-1 ; the factor 2 turns ∫dω = π Σp into ∫dν = Σp
    S = (w[None, :] / (1j * 2 * np.pi * f[:, None] - lam[None, :])).sum(axis=1)
    return 2.0 * S.real


#: Name used in docs/architecture.md.
bloch_mcconnell_lineshape = bloch_mcconnell_spectrum


def dhaq_exchange_sites(
    O_M: float,
    R_M: float,
    H_M: float,
    *,
    a_hz: float,
    k1: float,
    k2: float,
    kc: float = 0.0,
    Kc: float = 1.0,
    nu_O_hz: float = 0.0,
    nu_H_hz: float = 0.0,
    nu_R_hz: float | None = None,
    inv_T1e: float = 0.0,
    sfo1_MHz: float = 400.0,
    g: float = 2.0046,
    T_K: float = 298.15,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sites, populations and exchange matrix for one quinone proton (docs/physics.md §1.4).

    Sites ``[O, R↑, R↓, H]``; R↑/R↓ precess at ``ν_R ± a/2``.  The two electron-spin
    states are populated thermally (Boltzmann): the state whose proton precesses at
    ``ν_R + a/2`` holds ``(1 + P)/2`` of the radical, ``P = tanh(g μ_B B0 / 2 k_B T)``
    with ``B0 = 2π sfo1 / γ_1H``, so that the population-weighted radical frequency is
    ``ν_R + a P / 2``, i.e. the Fermi-contact shift of docs/physics.md §1.4
    (26.5 ppm per MHz of a at 298 K; equal populations would give no contact shift).
    Pseudo-first-order rates of a tagged molecule: O→R ``k1[R] + kc[H]``; R→O
    ``k1[O] + kd[R]``; H→R ``k2[R] + kc[O]``; R→H ``k2[H] + kd[R]`` (``kd = kc/Kc``),
    entries into R split between R↑/R↓ in their thermal ratio; R↑⇄R↓ at a total rate
    ``inv_T1e`` (1/T1e), detailed-balanced.  Detailed balance holds when [O],[R],[H] obey ``Kc``.

    Parameters
    ----------
    O_M, R_M, H_M : float
        Concentrations, mol/L.
    a_hz : float
        Signed hyperfine coupling of the proton, Hz.
    k1, k2, kc : float
        O/R and R/H self-exchange, comproportionation rate constants, 1/(M s).
    Kc : float
        Comproportionation constant (-).
    nu_O_hz, nu_H_hz, nu_R_hz : float
        Diamagnetic site frequencies, Hz (``nu_R_hz`` default: mean of O and H).
    inv_T1e : float
        Electron spin-lattice relaxation rate, 1/s.
    sfo1_MHz : float
        1H spectrometer frequency, MHz (sets B0 and so the electron polarisation).
    g, T_K : float
        Radical g-factor and temperature, K.

    Returns
    -------
    offsets_hz : ndarray (4,)
    populations : ndarray (4,)  (fractions of O + R + H)
    K : ndarray (4, 4)  1/s
    """
    if nu_R_hz is None:
        nu_R_hz = 0.5 * (nu_O_hz + nu_H_hz)
    kd = kc / Kc if Kc > 0 else 0.0
    tot = O_M + R_M + H_M
    P = electron_polarisation(sfo1_MHz, g=g, T_K=T_K)
    up, dn = (1 + P) / 2, (1 - P) / 2
    p = np.array([O_M, R_M * up, R_M * dn, H_M]) / tot
    kOR = k1 * R_M + kc * H_M
    kRO = k1 * O_M + kd * R_M
    kHR = k2 * R_M + kc * O_M
    kRH = k2 * H_M + kd * R_M
    K = np.zeros((4, 4))
    # column i = from site i
    K[1, 0], K[2, 0] = kOR * up, kOR * dn
    K[0, 1] = K[0, 2] = kRO
    K[3, 1] = K[3, 2] = kRH
    K[1, 3], K[2, 3] = kHR * up, kHR * dn
    K[2, 1], K[1, 2] = inv_T1e * dn, inv_T1e * up
    K -= np.diag(K.sum(axis=0))
    offs = np.array([nu_O_hz, nu_R_hz + a_hz / 2, nu_R_hz - a_hz / 2, nu_H_hz])
    return offs, p, K


def fwhm_from_spectrum(freq_hz: Any, spectrum: Any, *, near_hz: float | None = None) -> float:
    """Full width at half maximum of the peak (nearest ``near_hz`` if given), Hz.

    Linear interpolation of the half-height crossings; for checks and plots.
    """
    f = np.asarray(freq_hz, dtype=float)
    y = np.asarray(spectrum, dtype=float)
    if near_hz is None:
        i = int(np.argmax(y))
    else:
        j = int(np.argmin(np.abs(f - near_hz)))
        i = j
        while 0 < i < y.size - 1 and (y[i + 1] > y[i] or y[i - 1] > y[i]):
            i = i + 1 if y[i + 1] > y[i] else i - 1
    half = y[i] / 2
    lo, hi = half_height_bounds(y, i, half)
    if y[lo] > half or y[hi] > half:
        raise ValueError("peak does not fall to half height inside the frequency axis")
    fl = np.interp(half, [y[lo], y[lo + 1]], [f[lo], f[lo + 1]])
    fh = np.interp(half, [y[hi], y[hi - 1]], [f[hi], f[hi - 1]])
    return float(fh - fl)
