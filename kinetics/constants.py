"""Physical constants (SI, CODATA 2018) and small unit helpers.

Values as listed in docs/physics.md §1.0 [G].  Everything inside the package is SI;
concentrations are in mol/L as chemists use them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "F",
    "R_GAS",
    "N_A",
    "K_B",
    "H_PLANCK",
    "MU_0",
    "MU_B",
    "GAMMA_1H",
    "G_E",
    "T_STD",
    "thermal_voltage",
    "Kc_from_dE",
    "dE_from_Kc",
]

F: float = 96485.33212
"""Faraday constant, C/mol."""
R_GAS: float = 8.314462618
"""Molar gas constant, J/(mol K)."""
N_A: float = 6.02214076e23
"""Avogadro constant, 1/mol."""
K_B: float = 1.380649e-23
"""Boltzmann constant, J/K."""
H_PLANCK: float = 6.62607015e-34
"""Planck constant, J s."""
MU_0: float = 1.25663706212e-6
"""Vacuum permeability, T m/A (CODATA 2018)."""
MU_B: float = 9.2740100783e-24
"""Bohr magneton, J/T."""
GAMMA_1H: float = 2.6752218744e8
"""Proton gyromagnetic ratio, rad/(s T)."""
G_E: float = 2.00231930436
"""Free-electron g factor."""
T_STD: float = 298.15
"""Standard temperature, K."""


def thermal_voltage(T_K: float = T_STD) -> float:
    """RT/F in volts (25.693 mV at 298.15 K, docs/physics.md §1.0)."""
    return R_GAS * T_K / F


def Kc_from_dE(dE_V: float | np.ndarray, T_K: float = T_STD) -> float | np.ndarray:
    """Comproportionation constant from the couple separation (docs/physics.md §1.2, [D]).

    ``K_c = exp(F (E1 - E2) / (R T))`` with ``dE_V = E1 - E2`` (V): E1 = E°'(O/R),
    E2 = E°'(R/H).  dE < 0 is potential inversion (K_c < 1); K_c = 4 at
    dE = (RT/F) ln 4 = +35.6 mV (298 K).
    """
    out = np.exp(np.asarray(dE_V, dtype=float) / thermal_voltage(T_K))
    return float(out) if out.ndim == 0 else out


def dE_from_Kc(Kc: float | np.ndarray, T_K: float = T_STD) -> float | np.ndarray:
    """Inverse of :func:`Kc_from_dE`: ``E1 - E2 = (RT/F) ln K_c`` (V)."""
    out = thermal_voltage(T_K) * np.log(np.asarray(Kc, dtype=float))
    return float(out) if out.ndim == 0 else out

