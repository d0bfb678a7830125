"""What each in-line instrument records for one simulated spectrum row.

Pure functions of a :attr:`~flowcell.simulate.truth.SimulationTruth.spectra` row and
the acquisition settings: the NMR lines (water, quinone lines, products, impurities,
docs/physics.md §1.3, §1.4, §1.6), the FID noise level, and the CW-EPR first-harmonic
sweep with its exchange-broadened width (§1.5).  The synthesis itself is
:mod:`flowcell.simulate.spectra`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from kinetics.observe import DHAQ_PEAKS, epr_broadening

from flowcell.simulate.settings import IMPURITY_LINES, EPRSettings, NMRSettings, NoiseSettings
from flowcell.simulate.spectra import NMRLine, epr_area, epr_first_harmonic, epr_resonance_field_T, epr_sweep

__all__ = ["AREA_PER_M_PROTON", "nmr_lines", "nmr_noise_sd", "epr_dbpp", "epr_noise_sd", "epr_spectrum"]

#: Line amplitude (= DFT area / n) per mol/L of protons: keeps FID values O(1e4).
AREA_PER_M_PROTON = 1.0e4

_PRODUCT_SPECIES = {"anthrone": "A", "anthranol": "AL"}


def nmr_noise_sd(nmr: NMRSettings, noise: NoiseSettings) -> float:
    """FID noise sd giving :attr:`NoiseSettings.nmr_snr` for a 1 M-proton line.

    A line ``A exp(-pi w t)`` sampled at ``1/sw`` has a DFT peak height
    ``A / (1 - exp(-pi w / sw))``; white complex noise of sd ``s`` per part gives a
    DFT real part of sd ``s sqrt(n)``.
    """
    height = AREA_PER_M_PROTON / (1 - math.exp(-math.pi * nmr.line_fwhm_hz / nmr.sw_hz))
    return height / noise.nmr_snr / math.sqrt(nmr.td)


def nmr_lines(row: Mapping[str, Any], *, nmr: NMRSettings, noise: NoiseSettings, hdo_ref_ppm: float,
              product_lines: Mapping[str, tuple[float, int]], peak_pos: Mapping[str, float]) -> list[NMRLine]:
    """The lines of one NMR spectrum.

    Parameters
    ----------
    row : mapping
        A :attr:`SimulationTruth.spectra` row (``hdo_shift_ppm``, ``t_mid_s``, concentrations
        ``O_M``, ``H_M``, ``A_M``, ``AL_M``, predicted quinone shifts and widths).
    nmr, noise : settings
    hdo_ref_ppm : float
        Zero-radical water shift, ppm: the bulk-susceptibility shift ``hdo - hdo_ref``
        moves every line alike (docs/physics.md §1.3).
    product_lines : mapping name -> (ppm, protons)
        Anthrone / anthranol lines.
    peak_pos : mapping name -> ppm
        Quinone lines moved to the centre of the ingest window of that name.
    """
    a = AREA_PER_M_PROTON
    drift = noise.nmr_drift_ppm_per_h * row["t_mid_s"] / 3600.0
    bms = row["hdo_shift_ppm"] - hdo_ref_ppm
    temp_shift = row.get("temp_shift_ppm", 0.0)
    lines = [NMRLine(row["hdo_shift_ppm"] + drift + temp_shift, nmr.hdo_fwhm_hz, a * nmr.hdo_M, "hdo")]
    for pk in DHAQ_PEAKS.values():
        for stem, sp in ((pk.name_O, "O_M"), (pk.name_H, "H_M")):
            w = row.get(f"{stem}_fwhm_Hz", np.nan)
            sh = row.get(f"{stem}_shift_ppm", np.nan)
            if not (np.isfinite(w) and np.isfinite(sh)) or w > nmr.sw_hz:
                continue  # broader than the window: indistinguishable from baseline
            if stem in peak_pos:  # the ingest window's centre + the common BMS shift
                delta = pk.delta_O_ppm if stem == pk.name_O else pk.delta_H_ppm
                sh = sh - delta + peak_pos[stem]
            lines.append(NMRLine(sh + drift, max(w, 0.1), a * 2 * row[sp], stem))
    for name, (ppm, nh) in product_lines.items():
        c = row.get(f"{_PRODUCT_SPECIES.get(name, name)}_M", 0.0)
        if c > 0:
            lines.append(NMRLine(ppm + bms + drift, nmr.line_fwhm_hz, a * nh * c, name))
    for name, (ppm, nh, c) in IMPURITY_LINES.items():
        lines.append(NMRLine(ppm + bms + drift, nmr.line_fwhm_hz, a * nh * c, name))
    return lines


def epr_dbpp(row: Mapping[str, Any], epr: EPRSettings, params: Mapping[str, float]) -> float:
    """Peak-to-peak EPR width, T: intrinsic + R-R spin exchange + electron exchange with O and H."""
    R, O, H = row["R_M"], row["O_M"], row["H_M"]
    return (epr.dBpp0_T + float(epr_broadening(epr.k_spin_exchange, R))
            + float(epr_broadening(params["k1"], O)) + float(epr_broadening(params["k2"], H)))


def epr_noise_sd(epr: EPRSettings, noise: NoiseSettings, T_K: float) -> float:
    """Noise sd per point giving :attr:`NoiseSettings.epr_snr` on the standard's peak-to-peak."""
    gain = 10 ** (epr.receiver_gain_db / 20)
    area = epr_area(epr.standard_M, sensitivity=epr.sensitivity, mw_power_W=epr.mw_power_W,
                    temperature_K=T_K, g=epr.standard_g, receiver_gain_lin=gain)
    hw = math.sqrt(3) / 2 * epr.standard_dBpp_T
    pp = epr.mod_amp_T * area * (3 * math.sqrt(3) / (4 * math.pi)) / hw**2  # Lorentzian derivative p-p
    return pp / noise.epr_snr / math.sqrt(epr.n_scans)


def epr_spectrum(conc_M: float, dBpp_T: float, g: float, t_mid_s: float, rng: np.random.Generator, *,
                 epr: EPRSettings, noise: NoiseSettings, T_K: float,
                 n_scans: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Field axis (T) and noisy first-harmonic signal of ``conc_M`` spins (mol/L) of g ``g``."""
    center = epr_resonance_field_T(g, epr.mw_freq_hz)
    field_axis = epr_sweep(epr_resonance_field_T(epr.g, epr.mw_freq_hz), epr.sweep_T, epr.n_points)
    center += noise.epr_field_drift_T_per_h * t_mid_s / 3600.0
    gain = 10 ** (epr.receiver_gain_db / 20)
    area = epr_area(conc_M, sensitivity=epr.sensitivity, mw_power_W=epr.mw_power_W, temperature_K=T_K,
                    g=g, receiver_gain_lin=gain)
    y = epr_first_harmonic(field_axis, center, dBpp_T, area, epr.mod_amp_T)
    scans = n_scans or epr.n_scans
    y = y + rng.normal(0.0, epr_noise_sd(epr, noise, T_K) * math.sqrt(epr.n_scans / scans), y.size)
    return field_axis, y
