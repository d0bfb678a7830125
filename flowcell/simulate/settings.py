"""Acquisition, noise and line-table settings of the in-line experiment simulator.

Every numerical default is an ASSUMED placeholder (docs/physics.md §2.6), chosen to make
synthetic data look plausible; none is a measured value.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.processing.lines import line

__all__ = ["NMRSettings", "EPRSettings", "NoiseSettings", "ANTHRONE_LINES", "IMPURITY_LINES"]

#: Anthrone / anthranol lines (ppm, protons).  ASSUMED placeholders: their shifts
#: were NOT FOUND (docs/physics.md §1.6); they are moved to the centre of the ingest
#: windows of the same name when an observables config is given.
ANTHRONE_LINES: dict[str, tuple[float, int]] = {n: (line(n).ppm, line(n).n_h) for n in ("anthrone", "anthranol")}
#: Inert impurity singlets (docs/physics.md §1.6, W23): ppm, protons, mol/L (ASSUMED amounts).
IMPURITY_LINES: dict[str, tuple[float, int, float]] = {
    n: (line(n).ppm, line(n).n_h, 2e-3) for n in ("acetone", "methanol")  # positions: ingest.processing.lines
}


@dataclass(frozen=True)
class NMRSettings:
    """1H acquisition settings (ASSUMED placeholders for a 400 MHz magnet).

    Attributes
    ----------
    sfo1_hz : float
        Observe frequency, Hz.
    sw_hz : float
        Spectral width, Hz.
    carrier_ppm : float
        Carrier (centre) shift, ppm.
    td : int
        Complex points per FID.
    ns : int
        Scans per spectrum.
    d1_s : float
        Relaxation delay, s (acquisition duration = ns (AQ + d1)).
    hdo_M : float
        Concentration of HDO protons in the D2O electrolyte, mol/L (0.1: ~99.9 % D).
    hdo_fwhm_hz, line_fwhm_hz : float
        Intrinsic widths of the water and the inert lines, Hz.
    phase_deg : float
        Receiver phase of every FID, degrees (the extractor finds it once).
    """

    sfo1_hz: float = 400.13e6
    sw_hz: float = 6410.0
    carrier_ppm: float = 4.70
    td: int = 16384
    ns: int = 4
    d1_s: float = 2.0
    hdo_M: float = 0.1
    hdo_fwhm_hz: float = 1.5
    line_fwhm_hz: float = 2.0
    phase_deg: float = 27.0

    @property
    def duration_s(self) -> float:
        """Acquisition duration ns (AQ + d1), s."""
        return self.ns * (self.td / self.sw_hz + self.d1_s)


@dataclass(frozen=True)
class EPRSettings:
    """CW EPR acquisition settings (ASSUMED placeholders, X band).

    Attributes
    ----------
    mw_freq_hz, mw_power_W : float
        Microwave frequency (Hz) and power (W, linear regime assumed).
    mod_amp_T : float
        Peak-to-peak modulation amplitude, T.
    receiver_gain_db : float
    conversion_time_s : float
        Per point, s (acquisition duration = n_points x conversion time x scans).
    n_scans : int
    n_points : int
    sweep_T : float
        Sweep width, T (wide: >= 50 HWHM each side, docs/physics.md §1.5 caveat 3).
    g : float
        g of the radical (ASSUMED 2.0046).
    dBpp0_T : float
        Intrinsic peak-to-peak width (unresolved hyperfine envelope), T.
    k_spin_exchange : float
        Heisenberg R + R exchange rate constant for the EPR width, 1/(M s) (ASSUMED 1e9).
    sensitivity : float
        Absorption area per (mol/L x sqrt(W)), a.u. x T.
    standard_M, standard_g, standard_dBpp_T : float
        The TEMPOL standard used for the spin calibration (docs/physics.md §1.5, 1 mM §2.6),
        its width chosen near the sample's so the finite-sweep losses cancel.
    standard_scans : int
        Scans averaged for the standard (lower noise on the calibration).
    """

    mw_freq_hz: float = 9.4e9
    mw_power_W: float = 2e-3
    mod_amp_T: float = 5e-5
    receiver_gain_db: float = 30.0
    conversion_time_s: float = 0.005
    n_scans: int = 1
    n_points: int = 4096
    sweep_T: float = 0.04
    g: float = 2.0046
    dBpp0_T: float = 1.2e-4
    k_spin_exchange: float = 1e9
    sensitivity: float = 1.0e3
    standard_M: float = 1e-3
    standard_g: float = 2.0058
    standard_dBpp_T: float = 2.2e-4
    standard_scans: int = 16

    @property
    def duration_s(self) -> float:
        """Acquisition duration, s."""
        return self.n_points * self.conversion_time_s * self.n_scans


@dataclass(frozen=True)
class NoiseSettings:
    """Noise and drifts (ASSUMED).

    Attributes
    ----------
    nmr_snr : float
        Height of a 1 mol/L (protons) line of width ``line_fwhm_hz`` over the noise
        standard deviation of the processed real spectrum (no apodisation).
    epr_snr : float
        Peak-to-peak of the 1 mM standard over the noise standard deviation.
    nmr_drift_ppm_per_h : float
        Field drift of an unlocked magnet: every NMR line moves by this, ppm/h.
    epr_field_drift_T_per_h : float
        Drift of the EPR field axis (resonance moves), T/h.
    temperature_sd_K : float
        Random sample-temperature jitter written in the files, K (shifts HDO by
        -0.0103 ppm/K, docs/physics.md §1.3).
    voltage_sd_V, current_sd_A : float
        Noise on the potentiostat log.
    """

    nmr_snr: float = 2e5
    epr_snr: float = 5000.0
    nmr_drift_ppm_per_h: float = 0.0
    epr_field_drift_T_per_h: float = 0.0
    temperature_sd_K: float = 0.0
    voltage_sd_V: float = 1e-3
    current_sd_A: float = 0.0
