"""Tiny synthetic 1H FID generator for the calibration / window tests (numpy only, no package code).

Each line is a first-order multiplet: components at the centre +- J/2 (per coupling) with binomial
weights, each a Lorentzian of the given FWHM; the FID is sum A exp(2 pi i nu t - pi w t) with
nu = (ppm - carrier) * sfo1 (a higher frequency is a higher ppm, as in Bruker FIDs).
"""

from __future__ import annotations

from math import comb

import numpy as np

SFO1 = 400.13e6
SW = 4800.0  # Hz, 12 ppm
CARRIER = 5.5  # ppm
TD = 16384


def components(ppm: float, area: float, j_hz: tuple[float, ...] = (), mult: str = "") -> list[tuple[float, float]]:
    """(ppm, area) of the components of a first-order multiplet."""
    if mult in ("t", "quint") and j_hz:
        k = 3 if mult == "t" else 5
        w = np.array([comb(k - 1, i) for i in range(k)], float)
        offs = (np.arange(k) - (k - 1) / 2) * j_hz[0]
        return [(ppm + o / (SFO1 * 1e-6), area * wi / w.sum()) for o, wi in zip(offs, w)]
    comps = [(0.0, 1.0)]
    for j in j_hz:
        comps = [(o + s * j / 2, a / 2) for o, a in comps for s in (-1, 1)]
    return [(ppm + o / (SFO1 * 1e-6), area * a) for o, a in comps]


def fid(lines: list[tuple[float, float, float, tuple[float, ...], str]], *, noise: float = 0.0, seed: int = 0,
        td: int = TD) -> np.ndarray:
    """lines: (ppm, area, fwhm_hz, couplings_hz, multiplicity)."""
    t = np.arange(td) / SW
    out = np.zeros(td, complex)
    for ppm, area, w, j, mult in lines:
        for c, a in components(ppm, area, j, mult):
            out += a * np.exp((2j * np.pi * (c - CARRIER) * SFO1 * 1e-6 - np.pi * w) * t)
    if noise:
        rng = np.random.default_rng(seed)
        out += noise * (rng.standard_normal(td) + 1j * rng.standard_normal(td))
    return out


#: DHAQ-like sample at SOC 0 (positions as the line table, couplings of the ring protons).
DHAQ = [
    (4.79, 2000.0, 2.0, (), "s"),
    (7.45, 20.0, 1.0, (2.4,), "d"),
    (7.05, 20.0, 1.0, (8.5, 2.4), "dd"),
    (7.72, 20.0, 1.0, (8.5,), "d"),
    (3.34, 6.0, 1.0, (), "s"),
]


def shifted(lines, d_ppm: float, *, water: bool = True):
    """Every line (or every line but the water) moved by d_ppm."""
    return [((p + d_ppm) if (water or abs(p - 4.79) > 1e-9) else p, a, w, j, m) for p, a, w, j, m in lines]
