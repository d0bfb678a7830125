"""Observation models: from species concentrations to what the instruments see.

Pure functions (SI inside; ppm for chemical shifts, Hz for line widths, mol/L
for concentrations) plus :class:`ObservationModel`, which maps a simulated
:class:`kinetics.model.SimResult` onto the columns that ``ingest`` extracts
from real spectra (``hdo_shift_ppm``, ``epr_spin_conc_M``,
``dhaq_h1_fwhm_Hz`` ...), so that a fit compares like with like.

Physics and numbers follow the project's physics notes ``docs/physics.md``:

* §1.3  bulk magnetic susceptibility (BMS) shift of the water line, Curie law,
  geometry factors +1/3 (cylinder parallel to B0) and -1/6 (perpendicular),
  the catholyte (ferricyanide) linear shift, the -0.0103 ppm/K temperature
  coefficient of HDO (Gottlieb 1997);
* §1.4  exchange broadening of the quinone aromatic lines: slow-exchange
  lifetime broadening, fast-exchange (Kubo-Anderson) narrowing, the general
  Bloch-McConnell (Kubo-Sack) lineshape, contact shift and mT <-> MHz;
* §1.5  EPR line broadening by exchange (slow regime).

Sources quoted in docs/physics.md: Evans method geometry factors (scribd mirror of
the Evans slides), W23 (benchtop BMS orientation), Z20/Z21 (mechanism only;
their numbers were NOT available, so every number here is either a physical
constant or an ASSUMED placeholder labelled as such).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

import numpy as np
import pandas as pd

# constants (CODATA, docs/physics.md §1.0): one copy, in kinetics.constants
from kinetics.constants import GAMMA_1H, H_PLANCK, K_B, MU_B, N_A
from kinetics.constants import MU_0 as MU0
from kinetics.exchange import (
    MHz_to_mT,
    bloch_mcconnell_lineshape,
    contact_shift_ppm,
    bloch_mcconnell_spectrum,
    dhaq_exchange_sites,
    fast_exchange_fwhm_hz,
    fwhm_from_spectrum,
    kubo_anderson_fwhm_hz,
    mT_to_MHz,
    slow_exchange_fwhm_hz,
)
from kinetics.exchange_regime import bloch_mcconnell_lines, dhaq_fast_fwhm_hz, dhaq_line_regimes, dhaq_sites_batch
from ingest.processing.lines import line as _line

__all__ = [
    "MU0",
    "N_A",
    "K_B",
    "H_PLANCK",
    "MU_B",
    "GAMMA_1H",
    "HDO_TEMP_COEF_PPM_K",
    "curie_chi_molar",
    "bms_factor",
    "bms_shift_ppm",
    "water_shift_ppm",
    "radical_from_water_shift",
    "ferricyanide_chi_molar",
    "catholyte_water_shift_ppm",
    "contact_shift_ppm",
    "mT_to_MHz",
    "MHz_to_mT",
    "slow_exchange_fwhm_hz",
    "fast_exchange_fwhm_hz",
    "kubo_anderson_fwhm_hz",
    "bloch_mcconnell_spectrum",
    "bloch_mcconnell_lineshape",
    "dhaq_exchange_sites",
    "fwhm_from_spectrum",
    "epr_broadening",
    "epr_spin_conc",
    "PeakSpec",
    "DHAQ_PEAKS",
    "ObservationModel",
]

HDO_TEMP_COEF_PPM_K = -0.0103  # ppm/K, Gottlieb 1997 (docs/physics.md §1.3, §3)



# --- susceptibility and the water shift (docs/physics.md §1.3) --------------------
def curie_chi_molar(g: float = 2.0046, T: float = 298.15, S: float = 0.5) -> float:
    """Curie-law molar susceptibility of a paramagnet, SI.

    ``chi_M = mu0 N_A g^2 S(S+1) mu_B^2 / (3 k_B T)`` (docs/physics.md §1.3).

    Parameters
    ----------
    g : float
        Isotropic g-factor (-).
    T : float
        Temperature, K.
    S : float
        Electron spin quantum number (-).

    Returns
    -------
    float
        Molar susceptibility, m^3/mol (1.588e-8 for S = 1/2, g = 2.0046, 298.15 K).
    """
    if T <= 0:
        raise ValueError(f"temperature must be positive, got T = {T} K")
    return MU0 * N_A * g**2 * S * (S + 1) * MU_B**2 / (3.0 * K_B * T)


def _chi_from_mu_eff(mu_eff_B: float, T: float) -> float:
    """Molar susceptibility (m^3/mol) from an effective moment in Bohr magnetons."""
    return MU0 * N_A * (mu_eff_B * MU_B) ** 2 / (3.0 * K_B * T)


def bms_factor(geometry: str = "parallel") -> float:
    """Geometry factor ``1/3 - D_z`` of the BMS shift (docs/physics.md §1.3).

    Parameters
    ----------
    geometry : {'parallel', 'perpendicular', 'sphere'}
        Long cylinder parallel to B0 (superconducting magnet, vertical tube):
        +1/3; perpendicular (Halbach benchtop): -1/6; sphere: 0.

    Returns
    -------
    float
        Dimensionless factor multiplying the volume susceptibility change.
    """
    factors = {"parallel": 1.0 / 3.0, "perpendicular": -1.0 / 6.0, "sphere": 0.0}
    try:
        return factors[geometry]
    except KeyError:
        raise ValueError(
            f"unknown geometry {geometry!r}; use one of {sorted(factors)}"
        ) from None


def bms_shift_ppm(delta_chi_v: Any, *, geometry: str = "parallel", xi: float | None = None) -> Any:
    """BMS shift (ppm) for a volume-susceptibility change ``delta_chi_v`` (SI, -)."""
    f = bms_factor(geometry) if xi is None else xi
    return f * np.asarray(delta_chi_v) * 1e6


def water_shift_ppm(
    R_M: Any,
    *,
    g: float = 2.0046,
    T_K: float = 298.15,
    geometry: str = "parallel",
    xi: float | None = None,
    S: float = 0.5,
    other_paramagnets: Iterable[tuple[Any, float]] = (),
) -> Any:
    """Water-line shift caused by dissolved radicals (BMS), ppm.

    ``Δδ = ξ · Σ_i χ_M,i · c_i(mol/m^3) · 1e6`` (docs/physics.md §1.3) with
    ``ξ = +1/3`` (∥ B0) or ``-1/6`` (⊥ B0) unless calibrated.

    Parameters
    ----------
    R_M : float or array
        Radical (S = 1/2 by default) concentration, mol/L.
    g : float
        g-factor of the radical.
    T_K : float
        Temperature, K.
    geometry : {'parallel', 'perpendicular', 'sphere'}
    xi : float, optional
        Empirical geometry factor overriding ``bms_factor(geometry)``.
    S : float
        Spin of the radical.
    other_paramagnets : iterable of (conc_M, chi_molar_m3_mol)
        Further paramagnets in the same liquid (e.g. crossed-over ferricyanide).

    Returns
    -------
    float or ndarray
        Shift relative to the same solution without paramagnets, ppm
        (+5.29e-3 ppm per mM radical at 298.15 K, ∥).
    """
    f = bms_factor(geometry) if xi is None else float(xi)
    dchi = curie_chi_molar(g, T_K, S) * np.asarray(R_M, dtype=float) * 1000.0
    for c, chi in other_paramagnets:
        dchi = dchi + chi * np.asarray(c, dtype=float) * 1000.0
    return f * dchi * 1e6


def radical_from_water_shift(
    shift_ppm: Any,
    *,
    g: float = 2.0046,
    T_K: float = 298.15,
    geometry: str = "parallel",
    xi: float | None = None,
    S: float = 0.5,
) -> Any:
    """Invert :func:`water_shift_ppm`: radical concentration (mol/L) from Δδ (ppm).

    ``[R] = Δδ·1e-6 / (ξ χ_M 1000)`` (docs/physics.md §1.3, "Inversion").
    """
    f = bms_factor(geometry) if xi is None else float(xi)
    if f == 0:
        raise ValueError("geometry factor is zero (sphere): the water shift carries no [R] information")
    return np.asarray(shift_ppm, dtype=float) * 1e-6 / (f * curie_chi_molar(g, T_K, S) * 1000.0)


def ferricyanide_chi_molar(T_K: float = 298.15, mu_eff_B: float = 2.3) -> float:
    """Molar susceptibility of low-spin ferricyanide, m^3/mol (docs/physics.md §1.3).

    ``mu_eff ≈ 2.3 μ_B`` is a literature value [G] (range ≈ 2.25-2.4, temperature
    dependent through the orbital contribution): calibrate rather than trust it.
    """
    return _chi_from_mu_eff(mu_eff_B, T_K)


def catholyte_water_shift_ppm(
    soc_cat: Any,
    C_cat_M: float,
    *,
    T_K: float = 298.15,
    geometry: str = "parallel",
    xi: float | None = None,
    mu_eff_B: float = 2.3,
) -> Any:
    """Water shift of the ferro/ferricyanide catholyte, linear in its SOC, ppm.

    ``Δδ = ξ χ_M,Fe(III) C_cat SOC_cat`` (docs/physics.md §1.3, Z22); the charged
    catholyte is ferricyanide (S = 1/2), ferrocyanide is diamagnetic.
    About +9.3e-3 ppm per mM Fe(III) (∥) with μ_eff = 2.3 μ_B.

    Parameters
    ----------
    soc_cat : float or array
        Catholyte state of charge (fraction of ferricyanide), 0..1.
    C_cat_M : float
        Total iron concentration, mol/L.
    """
    f = bms_factor(geometry) if xi is None else float(xi)
    chi = ferricyanide_chi_molar(T_K, mu_eff_B)
    return f * chi * np.asarray(soc_cat, dtype=float) * C_cat_M * 1000.0 * 1e6


# --- EPR (docs/physics.md §1.5) -------------------------------------------------------
def epr_broadening(
    k: float, partner_M: Any, *, g: float = 2.00231930, P_i: float = 0.0
) -> Any:
    """Slow-exchange broadening of the EPR peak-to-peak width, T.

    ``Δ(ΔB_pp) = (2/√3)(1/γ_e)(1 − P_i) k [partner]`` (docs/physics.md §1.5), with
    ``γ_e = g μ_B/ħ``; 2/(√3 γ_e) = 6.56e-12 T s.  k = 1e8 1/(M s) with 0.05 M
    partner gives 0.33 G (3.3e-5 T).

    Parameters
    ----------
    k : float
        Exchange rate constant (Heisenberg or electron self-exchange), 1/(M s).
    partner_M : float or array
        Concentration of the exchange partner, mol/L.
    P_i : float
        Statistical weight of the line's own hyperfine component (0 for an
        unresolved line).
    """
    gamma_e = g * MU_B / (H_PLANCK / (2 * np.pi))
    return 2.0 / (np.sqrt(3.0) * gamma_e) * (1 - P_i) * k * np.asarray(partner_M, dtype=float)


def epr_spin_conc(R_M: Any, *, scale: float = 1.0) -> Any:
    """EPR-observed spin concentration (mol/L): ``scale · [R]`` (calibration factor)."""
    return scale * np.asarray(R_M, dtype=float)


# --- the observation model ------------------------------------------------------
@dataclass(frozen=True)
class PeakSpec:
    """One aromatic proton environment of the quinone.

    Attributes
    ----------
    name_O : str
        Column stem of the line of the oxidised form (and of the averaged line in
        fast exchange), as named in the ingest config (e.g. ``'dhaq_h1'``).
    name_H : str
        Column stem of the separate line of the reduced form (slow exchange only).
    delta_O_ppm, delta_H_ppm : float
        Shifts of the O and H forms, ppm.  **ASSUMED placeholders** (the real
        DHAQ shifts were NOT FOUND, docs/physics.md §3); calibrate on real files.
    a_mT : float
        Hyperfine coupling in the radical, mT (signed).  ASSUMED (docs/physics.md §2.6).
    delta_Rdia_ppm : float or None
        Diamagnetic part of the shift in the radical; default mean of O and H.
    """

    name_O: str
    name_H: str
    delta_O_ppm: float
    delta_H_ppm: float
    a_mT: float
    delta_Rdia_ppm: float | None = None


#: DHAQ ring protons H1/5, H3/7, H4/8.  All numbers ASSUMED placeholders
#: (docs/physics.md §2.6 for a_j; shifts: the review only says they move by ~1 ppm).
#: Positions from the one line table, ``ingest.processing.lines`` (tests/test_peak_layout.py).
DHAQ_PEAKS: dict[str, PeakSpec] = {
    j: PeakSpec(f"dhaq_{j}", f"dhaq4_{j}", _line(f"dhaq_{j}").ppm, _line(f"dhaq4_{j}").ppm, a)
    for j, a in (("h1", -0.05), ("h3", -0.10), ("h4", -0.02))
}


@dataclass
class ObservationModel:
    """Maps simulated concentrations to ingest's observable columns.

    Parameters
    ----------
    geometry : {'parallel', 'perpendicular', 'sphere'}
        Sample orientation relative to B0 (sets the default BMS factor ξ).
    g : float
        Radical g-factor (ASSUMED 2.0046).
    T_K : float
        Temperature, K (Curie law, contact shift).
    peaks : dict[str, PeakSpec]
        Aromatic protons; the key ``j`` names the hyperfine parameter ``a_j_mT``.
    regime : {'auto', 'slow', 'fast'}
        Exchange regime of the aromatic lines (docs/physics.md §1.4):

        * ``'auto'`` (default): decided per line and per time point by
          :func:`kinetics.exchange_regime.dhaq_line_regimes`: the slow formulas below
          where every visit to the radical destroys coherence, the fast (averaged) line
          where all rates exceed every frequency difference, and the full Bloch-McConnell
          model (thermal electron-spin populations, so with the contact shift) in between
          (:func:`kinetics.exchange_regime.bloch_mcconnell_lines`).  Columns as ``'slow'``;
          where O and H lines have coalesced, the averaged line (area ∝ [O]+[R]+[H]) is
          reported in the ``name_O`` columns and the ``name_H`` columns are NaN.
          :meth:`regimes` tells which regime each line was in.

        * ``'slow'`` (k[·] ≪ ω_a): the O line (``name_O``) and the H line
          (``name_H``) are observed separately at their own shifts + the BMS shift,
          lifetime-broadened: ``Δν_O = w0 + (k1[R] + kc[H])/π``,
          ``Δν_H = w0 + (k2[R] + kc[O])/π``; areas ∝ [O] and [H].  The radical's own
          line is never observed.  A line wider than ``max_fwhm_Hz`` is
          reported as NaN (unobservable).
        * ``'fast'`` (rates ≫ ω_a, |Ω_O − Ω_H|): one averaged line per proton
          (column ``name_O``) at ``f_O δ_O + f_H δ_H + f_R(δ_Rdia + δ_con)`` + BMS,
          Kubo-Anderson width from the 4-site (O, R↑, R↓, H) network, area ∝ [O]+[R]+[H].
          No ``name_H`` columns.

        Use :func:`bloch_mcconnell_spectrum` for the intermediate regime.
    sfo1_MHz : float
        1H spectrometer frequency (converts ppm differences to rad/s in the fast
        regime), MHz.
    referenced_to_water : bool
        True when the spectra were referenced to the HDO peak (ingest
        ``reference = {peak = "hdo"}``): the water shift is then constant and the
        aromatic shifts carry no BMS term.
    max_fwhm_Hz : float or None
        Slow regime: widths above this are reported NaN.

    Observation parameters (``params`` of :meth:`predict`, defaults in
    :attr:`defaults`): ``hdo_ref_ppm`` (HDO shift without radical, ppm), ``xi``
    (BMS factor; default from geometry), ``w0_Hz`` (intrinsic width, Hz),
    ``k1``, ``k2`` (self-exchange, 1/(M s)), ``kc``, ``Kc`` (from the kinetic
    model), ``area_scale`` (area per mol/L), ``a_<j>_mT`` (hyperfine, mT),
    ``epr_scale`` (EPR calibration factor, -), ``hdo_temp_coef_ppm_K``.
    """

    geometry: str = "parallel"
    g: float = 2.0046
    T_K: float = 298.15
    peaks: Mapping[str, PeakSpec] = field(default_factory=lambda: dict(DHAQ_PEAKS))
    regime: Literal["auto", "slow", "fast"] = "auto"
    sfo1_MHz: float = 400.0
    referenced_to_water: bool = False
    max_fwhm_Hz: float | None = None

    def __post_init__(self) -> None:
        bms_factor(self.geometry)  # validates
        if self.regime not in ("auto", "slow", "fast"):
            raise ValueError(f"regime must be 'auto', 'slow' or 'fast', got {self.regime!r}")

    # -- parameters -----------------------------------------------------------
    @property
    def defaults(self) -> dict[str, float]:
        """Default observation parameters (ASSUMED placeholders, docs/physics.md §2.6)."""
        d = {
            "hdo_ref_ppm": 4.79,
            "xi": bms_factor(self.geometry),
            "w0_Hz": 2.0,
            "k1": 1e8,
            "k2": 1e8,
            "area_scale": 1.0,
            "epr_scale": 1.0,
            "hdo_temp_coef_ppm_K": HDO_TEMP_COEF_PPM_K,
        }
        for key, pk in self.peaks.items():
            d[f"a_{key}_mT"] = pk.a_mT
        return d

    @property
    def param_names(self) -> list[str]:
        """Names of the observation parameters."""
        return list(self.defaults)

    def columns(self) -> list[str]:
        """Columns :meth:`predict` returns (besides ``t_s``)."""
        cols = ["hdo_shift_ppm", "epr_spin_conc_M"]
        for pk in self.peaks.values():
            for stem in (pk.name_O,) if self.regime == "fast" else (pk.name_O, pk.name_H):
                cols += [f"{stem}_shift_ppm", f"{stem}_fwhm_Hz", f"{stem}_area"]
        return cols + ["anthrone_area", "anthranol_area"]

    def sensitive_to(self, columns: Iterable[str]) -> dict[str, set[str]]:
        """Which parameters can enter each observed column.

        Returns a dict column -> set of parameter names.  Species concentrations
        (and so every kinetic parameter of a model) enter all columns; this lists
        the *rate* constants that act through the line shape, which is what makes a
        fast step such as comproportionation measurable (docs/physics.md §1.4).
        """
        out: dict[str, set[str]] = {}
        for c in columns:
            s: set[str] = set()
            if c.endswith("_fwhm_Hz"):
                s |= {"k1", "k2", "kc", "w0_Hz"}
                if self.regime != "slow":
                    s |= {f"a_{k}_mT" for k in self.peaks}
            if c.endswith("_shift_ppm") and c != "hdo_shift_ppm" and self.regime != "slow":
                s |= {f"a_{k}_mT" for k in self.peaks}
                if self.regime == "auto":
                    s |= {"k1", "k2", "kc"}
            out[c] = s
        return out

    # -- prediction -----------------------------------------------------------
    def predict(
        self,
        sim: Any,
        params: Mapping[str, float] | None = None,
        *,
        temperature_K: Any = None,
    ) -> pd.DataFrame:
        """Observables for every time point of a simulation.

        Parameters
        ----------
        sim : SimResult or DataFrame
            Anything with ``.conc`` (DataFrame of mol/L, columns O, R, H, optional
            D, A, AL) and ``.t_s``; a bare DataFrame of concentrations (index t_s)
            is accepted too.
        params : dict
            Observation and kinetic parameters (missing ones take :attr:`defaults`;
            ``kc`` defaults to 0, ``Kc`` is needed only when ``kc > 0``).
        temperature_K : float or array, optional
            Sample temperature per point; adds ``hdo_temp_coef_ppm_K·(T − T_K)`` to
            the water shift (docs/physics.md §1.3: 0.5 K mimics ~1 mM of radical).

        Returns
        -------
        DataFrame
            Column ``t_s`` plus :meth:`columns`.
        """
        p = dict(self.defaults)
        p.update({k: float(v) for k, v in (params or {}).items() if np.isscalar(v)})
        if isinstance(sim, pd.DataFrame):
            conc = sim
            t = np.asarray(sim.index, dtype=float)
        else:
            conc = sim.conc
            t = np.asarray(sim.t_s, dtype=float)
        n = len(t)

        def col(name: str) -> np.ndarray:
            return np.asarray(conc[name], dtype=float) if name in conc.columns else np.zeros(n)

        O, R, H = col("O"), col("R"), col("H")
        out: dict[str, np.ndarray] = {"t_s": t}
        dbms = water_shift_ppm(R, g=self.g, T_K=self.T_K, xi=p["xi"])
        hdo = np.full(n, p["hdo_ref_ppm"]) + (0.0 if self.referenced_to_water else dbms)
        if temperature_K is not None:
            hdo = hdo + p["hdo_temp_coef_ppm_K"] * (np.asarray(temperature_K, dtype=float) - self.T_K)
        out["hdo_shift_ppm"] = hdo
        out["epr_spin_conc_M"] = p["epr_scale"] * R
        common = 0.0 if self.referenced_to_water else dbms
        w0, k1, k2 = p["w0_Hz"], p["k1"], p["k2"]
        kc = p.get("kc", 0.0)
        Kc = p.get("Kc", 1.0)
        scale = p["area_scale"]

        if self.regime == "auto":
            self._predict_auto(out, O, R, H, p, common)
        elif self.regime == "slow":
            fw_O = slow_exchange_fwhm_hz(k1, R, w0_Hz=w0, kc=kc, partner_M=H)
            fw_H = slow_exchange_fwhm_hz(k2, R, w0_Hz=w0, kc=kc, partner_M=O)
            if self.max_fwhm_Hz is not None:
                fw_O = np.where(fw_O > self.max_fwhm_Hz, np.nan, fw_O)
                fw_H = np.where(fw_H > self.max_fwhm_Hz, np.nan, fw_H)
            for pk in self.peaks.values():
                out[f"{pk.name_O}_shift_ppm"] = pk.delta_O_ppm + common
                out[f"{pk.name_O}_fwhm_Hz"] = fw_O
                out[f"{pk.name_O}_area"] = scale * O
                out[f"{pk.name_H}_shift_ppm"] = pk.delta_H_ppm + common
                out[f"{pk.name_H}_fwhm_Hz"] = fw_H
                out[f"{pk.name_H}_area"] = scale * H
        else:
            tot = O + R + H
            safe = np.where(tot > 0, tot, 1.0)
            fO, fR, fH = O / safe, R / safe, H / safe
            kd = kc / Kc if Kc > 0 else 0.0
            for key, pk in self.peaks.items():
                a_hz = mT_to_MHz(p[f"a_{key}_mT"], self.g) * 1e6
                dR = pk.delta_Rdia_ppm if pk.delta_Rdia_ppm is not None else 0.5 * (pk.delta_O_ppm + pk.delta_H_ppm)
                dcon = contact_shift_ppm(a_hz, self.g, self.T_K)
                out[f"{pk.name_O}_shift_ppm"] = fO * pk.delta_O_ppm + fH * pk.delta_H_ppm + fR * (dR + dcon) + common
                out[f"{pk.name_O}_fwhm_Hz"] = self._fast_width(O, R, H, k1, k2, kc, kd, a_hz, pk, dR, w0)
                out[f"{pk.name_O}_area"] = scale * tot
        out["anthrone_area"] = scale * col("A")
        out["anthranol_area"] = scale * col("AL")
        return pd.DataFrame(out)

    def _regime_of(self, pk: PeakSpec, key: str, O: np.ndarray, R: np.ndarray, H: np.ndarray,
                   p: Mapping[str, float]) -> np.ndarray:
        a_hz = float(mT_to_MHz(p[f"a_{key}_mT"], self.g)) * 1e6
        reg, _ = dhaq_line_regimes(O, R, H, a_hz=a_hz, k1=p["k1"], k2=p["k2"], kc=p.get("kc", 0.0),
                                   Kc=p.get("Kc", 1.0), dnu_OH_hz=(pk.delta_O_ppm - pk.delta_H_ppm) * self.sfo1_MHz)
        return reg

    def regimes(self, sim: Any, params: Mapping[str, float] | None = None) -> pd.DataFrame:
        """Exchange regime of each proton's lines at each time point (docs/physics.md §1.4).

        Returns a DataFrame with ``t_s`` and one column per peak key (``'h1'`` ...) holding
        ``'slow'``, ``'intermediate'`` or ``'fast'`` (see
        :func:`kinetics.exchange_regime.dhaq_line_regimes`).  ``'intermediate'`` means
        neither limit formula holds: ``regime='auto'`` uses Bloch-McConnell there.
        """
        p = dict(self.defaults)
        p.update({k: float(v) for k, v in (params or {}).items() if np.isscalar(v)})
        conc = sim if isinstance(sim, pd.DataFrame) else sim.conc
        t = np.asarray(sim.index if isinstance(sim, pd.DataFrame) else sim.t_s, dtype=float)
        c = {s: np.asarray(conc[s], dtype=float) if s in conc.columns else np.zeros(t.size) for s in "ORH"}
        out = {"t_s": t}
        for key, pk in self.peaks.items():
            out[key] = self._regime_of(pk, key, c["O"], c["R"], c["H"], p)
        return pd.DataFrame(out)

    def _predict_auto(self, out: dict, O: np.ndarray, R: np.ndarray, H: np.ndarray,
                      p: Mapping[str, float], common: Any) -> None:
        """Aromatic columns with the regime chosen per line and point (``regime='auto'``)."""
        w0, k1, k2, scale = p["w0_Hz"], p["k1"], p["k2"], p["area_scale"]
        kc, Kc = p.get("kc", 0.0), p.get("Kc", 1.0)
        kd = kc / Kc if Kc > 0 else 0.0
        n, sf = O.size, self.sfo1_MHz
        tot = O + R + H
        fw_O = slow_exchange_fwhm_hz(k1, R, w0_Hz=w0, kc=kc, partner_M=H)
        fw_H = slow_exchange_fwhm_hz(k2, R, w0_Hz=w0, kc=kc, partner_M=O)
        for key, pk in self.peaks.items():
            reg = self._regime_of(pk, key, O, R, H, p)
            a_hz = float(mT_to_MHz(p[f"a_{key}_mT"], self.g)) * 1e6
            dR = pk.delta_Rdia_ppm if pk.delta_Rdia_ppm is not None else 0.5 * (pk.delta_O_ppm + pk.delta_H_ppm)
            sh_O, sh_H = np.full(n, pk.delta_O_ppm), np.full(n, pk.delta_H_ppm)
            wO, wH, ar_O, ar_H = fw_O.copy(), fw_H.copy(), scale * O, scale * H
            fast, mid = reg == "fast", reg == "intermediate"
            if fast.any():
                safe = tot[fast]
                fO, fR, fH = O[fast] / safe, R[fast] / safe, H[fast] / safe
                sh_O[fast] = (fO * pk.delta_O_ppm + fH * pk.delta_H_ppm
                              + fR * (dR + contact_shift_ppm(a_hz, self.g, self.T_K)))
                wO[fast] = self._fast_width(O[fast], R[fast], H[fast], k1, k2, kc, kd, a_hz, pk, dR, w0)
                ar_O[fast] = scale * tot[fast]
                wH[fast] = np.nan
            if mid.any():
                offs, pops, K = dhaq_sites_batch(O[mid], R[mid], H[mid], a_hz=a_hz, k1=k1, k2=k2, kc=kc, Kc=Kc,
                                                 nu_O_hz=pk.delta_O_ppm * sf, nu_H_hz=pk.delta_H_ppm * sf,
                                                 nu_R_hz=dR * sf, sfo1_MHz=sf, g=self.g, T_K=self.T_K)
                ln = bloch_mcconnell_lines(offs, pops, K, r2=np.pi * w0)
                sh_O[mid], sh_H[mid] = ln["centre_hz"][:, 0] / sf, ln["centre_hz"][:, 1] / sf
                wO[mid], wH[mid] = ln["fwhm_hz"][:, 0], ln["fwhm_hz"][:, 1]
                ar_O[mid], ar_H[mid] = scale * ln["area"][:, 0] * tot[mid], scale * ln["area"][:, 1] * tot[mid]
                wH[mid] = np.where(ln["coalesced"][:, 1], np.nan, wH[mid])
            if self.max_fwhm_Hz is not None:
                wO = np.where(wO > self.max_fwhm_Hz, np.nan, wO)
                wH = np.where(wH > self.max_fwhm_Hz, np.nan, wH)
            sh_H = np.where(np.isnan(wH) & (fast | mid), np.nan, sh_H)
            ar_H = np.where(np.isnan(sh_H), np.nan, ar_H)
            out[f"{pk.name_O}_shift_ppm"] = sh_O + common
            out[f"{pk.name_O}_fwhm_Hz"] = wO
            out[f"{pk.name_O}_area"] = ar_O
            out[f"{pk.name_H}_shift_ppm"] = sh_H + common
            out[f"{pk.name_H}_fwhm_Hz"] = wH
            out[f"{pk.name_H}_area"] = ar_H

    def _fast_width(
        self, O: np.ndarray, R: np.ndarray, H: np.ndarray, k1: float, k2: float,
        kc: float, kd: float, a_hz: float, pk: PeakSpec, dR: float, w0: float,
    ) -> np.ndarray:
        """Kubo-Anderson width per time point on the (O, R↑, R↓, H) network."""
        return dhaq_fast_fwhm_hz(O, R, H, k1=k1, k2=k2, kc=kc, kd=kd, a_hz=a_hz, nu_O_ppm=pk.delta_O_ppm,
                                 nu_H_ppm=pk.delta_H_ppm, nu_R_ppm=dR, sfo1_MHz=self.sfo1_MHz, w0_Hz=w0)
