"""In-line experiment simulator: chemistry -> observation models -> real vendor files.

Given an :class:`~flowcell.config.ExperimentConfig`, a cycling
:class:`~flowcell.simulate.protocol.Protocol` and a compiled kinetic model
(``kinetics.library.dhaq().compile()``), :class:`ExperimentSimulator`

1. resolves the protocol into a piecewise-constant current (``protocol.resolve``),
2. integrates the chemistry of the well-mixed anolyte (``Model.simulate``),
3. works out what each in-line instrument sees: the fluid in a detector left the
   cell ``delay`` seconds earlier (science.md §1.7, ``cfg.transit_delays()``), and
   the cell-outlet stream leads the tank by the single-pass conversion
   ``dn_e = I/(F Q)`` (science.md §1.1) -- the active pool is re-speciated with the
   fast comproportionation equilibrium (§1.2/§1.2b) at the outlet SOC,
4. applies the observation model (``kinetics.observe.ObservationModel``: BMS water
   shift §1.3, exchange broadening of the quinone lines §1.4, product areas §1.6,
   EPR spin concentration §1.5),
5. synthesises a Bruker 1H FID (``flowcell.simulate.spectra.nmr_fid``) and a BES3T
   first-harmonic EPR sweep (``flowcell.simulate.spectra.epr_first_harmonic``) per time
   point, with noise, and writes them with ``ingest.readers.nmr_writers.write_bruker_1d``
   (``nmr/<expno>/``) and ``ingest.readers.epr_writers.write_bes3t`` (``epr/<name>.DSC/.DTA``),
   plus a potentiostat log ``potentiostat.csv`` (``time_s,current_A,voltage_V``), an
   EPR standard (``standard/tempol_1mM``) that fixes the spin calibration, the
   experiment config the files belong to (``experiment.toml``) and the truth
   (``truth/``).

Files are written either all at once, or in real time at a chosen speed-up (each
file appears when the simulated clock reaches the end of its acquisition) so the
watcher can follow them.

Every numerical default below that is not a physical constant is an ASSUMED
placeholder (science.md §2.6), chosen to make synthetic data look plausible.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from flowcell.simulate.protocol import F, CurrentSchedule, Protocol
from flowcell.simulate.spectra import (
    NMRLine,
    epr_area,
    epr_first_harmonic,
    epr_resonance_field_T,
    epr_sweep,
    nmr_fid,
)

__all__ = [
    "NMRSettings",
    "EPRSettings",
    "NoiseSettings",
    "SimulationTruth",
    "ExperimentSimulator",
    "simulate_experiment",
    "ANTHRONE_LINES",
    "IMPURITY_LINES",
]

#: Anthrone / anthranol lines (ppm, protons).  ASSUMED placeholders: their shifts
#: were NOT FOUND (science.md §1.6); they are moved to the centre of the ingest
#: windows of the same name when an observables config is given.
ANTHRONE_LINES: dict[str, tuple[float, int]] = {"anthrone": (3.95, 2), "anthranol": (5.92, 1)}
#: Inert impurity singlets (science.md §1.6, W23): ppm, protons, mol/L (ASSUMED amounts).
IMPURITY_LINES: dict[str, tuple[float, int, float]] = {
    "acetone": (2.22, 6, 2e-3),
    "methanol": (3.34, 3, 2e-3),
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
        Sweep width, T (wide: >= 50 HWHM each side, science.md §1.5 caveat 3).
    g : float
        g of the radical (ASSUMED 2.0046).
    dBpp0_T : float
        Intrinsic peak-to-peak width (unresolved hyperfine envelope), T.
    k_spin_exchange : float
        Heisenberg R + R exchange rate constant for the EPR width, 1/(M s) (ASSUMED 1e9).
    sensitivity : float
        Absorption area per (mol/L x sqrt(W)), a.u. x T.
    standard_M, standard_g, standard_dBpp_T : float
        The TEMPOL standard used for the spin calibration (science.md §1.5, 1 mM §2.6),
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
        -0.0103 ppm/K, science.md §1.3).
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


@dataclass
class SimulationTruth:
    """What really happened in a simulated experiment.

    Attributes
    ----------
    start : datetime
        Experiment (potentiostat) time zero, UTC.
    t_s : ndarray
        Dense time grid of the chemistry, s.
    conc : DataFrame
        Tank concentrations on ``t_s`` (mol/L, one column per species).
    soc : ndarray
        Tank SOC on the initial active total (science.md §1.1).
    soc_coulomb : ndarray
        Ideal coulomb-counting SOC from the applied current (no side reactions).
    current_A, voltage_V : ndarray
        Applied current and cell voltage on ``t_s``.
    spectra : DataFrame
        One row per written spectrum: ``kind``, ``path``, ``time_start``,
        ``time_end``, ``time_mid`` (UTC), ``t_mid_s``, ``t_fluid_s`` (when the fluid
        left the cell), ``soc_tank`` (tank SOC at ``t_mid_s``), ``soc_seen`` (outlet
        SOC of the fluid in the detector), ``R_M`` (radical seen) and the predicted
        observables (``hdo_shift_ppm``, ``epr_spin_conc_M``, ``anthrone_area`` ...).
    params : dict
        Kinetic + observation parameters used (the fit's targets).
    schedule : CurrentSchedule
    out_dir : Path or None
    config_path, potentiostat_path : Path or None
    epr_calibration : dict
        ``concentration_M``, ``di_norm`` (from the standard through ingest), ``g``,
        ``temperature_K``, ``spin``.
    area_per_M_proton : float
        NMR line area per mol/L of protons in the synthetic spectra (a.u.).
    """

    start: datetime
    t_s: np.ndarray
    conc: pd.DataFrame
    soc: np.ndarray
    soc_coulomb: np.ndarray
    current_A: np.ndarray
    voltage_V: np.ndarray
    spectra: pd.DataFrame
    params: dict[str, float]
    schedule: CurrentSchedule
    out_dir: Path | None = None
    config_path: Path | None = None
    potentiostat_path: Path | None = None
    epr_calibration: dict[str, float] = field(default_factory=dict)
    area_per_M_proton: float = 1.0

    def soc_at(self, t_s: np.ndarray | float) -> np.ndarray | float:
        """Tank SOC interpolated at ``t_s`` (s since :attr:`start`)."""
        out = np.interp(np.asarray(t_s, float), self.t_s, self.soc)
        return float(out) if np.ndim(out) == 0 else out

    def seconds(self, when: Any) -> np.ndarray:
        """Seconds since :attr:`start` for datetimes / pandas Timestamps."""
        ts = pd.to_datetime(pd.Series(np.atleast_1d(when)), utc=True)
        return ((ts - pd.Timestamp(self.start)).dt.total_seconds()).to_numpy()

    def frame(self) -> pd.DataFrame:
        """Dense truth as a table: t_s, soc, soc_coulomb, current_A, voltage_V + species."""
        df = pd.DataFrame({"t_s": self.t_s, "soc": self.soc, "soc_coulomb": self.soc_coulomb,
                           "current_A": self.current_A, "voltage_V": self.voltage_V})
        for c in self.conc.columns:
            df[c] = np.asarray(self.conc[c], float)
        return df

    def save(self, folder: str | Path) -> Path:
        """Write ``truth.csv``, ``truth_spectra.csv`` and ``truth.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(folder / "truth.csv", index=False)
        sp = self.spectra.copy()
        for c in ("time_start", "time_end", "time_mid"):
            if c in sp:
                sp[c] = sp[c].astype(str)
        sp.to_csv(folder / "truth_spectra.csv", index=False)
        meta = {
            "start": self.start.isoformat(),
            "params": {k: float(v) for k, v in self.params.items()},
            "epr_calibration": self.epr_calibration,
            "area_per_M_proton": self.area_per_M_proton,
            "schedule": {"t_edges_s": self.schedule.t_edges_s.tolist(),
                         "current_A": self.schedule.current_A.tolist(),
                         "end_reason": self.schedule.end_reason},
        }
        (folder / "truth.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return folder


def _speciate(soc: np.ndarray, C_act: np.ndarray, Kc: float, KD: float) -> tuple[np.ndarray, ...]:
    """O, R, H, D (mol/L) at SOC ``soc`` of an active pool ``C_act`` (science.md §1.2/§1.2b)."""
    try:
        from kinetics.speciation import speciate
        O, R, H, D = speciate(np.clip(soc, 0, 1), C_act, Kc, KD)
        return (np.asarray(O, float), np.asarray(R, float), np.asarray(H, float), np.asarray(D, float))
    except ImportError:  # pragma: no cover - kinetics always ships
        from flowcell.simulate.protocol import radical_fraction
        fR = radical_fraction(soc, Kc)
        x = np.clip(soc, 0, 1)
        return (C_act * (1 - x - fR / 2), C_act * fR, C_act * (x - fR / 2), np.zeros_like(x))


class ExperimentSimulator:
    """Simulate one in-line experiment and write its files.

    Parameters
    ----------
    cfg : ExperimentConfig
        Electrolyte (C_tot, V_tot, T), flow loop (delays), geometry, model params.
    protocol : Protocol
    model : kinetics Model
        ``kinetics.library.dhaq().compile()`` (or any model with the contract API).
    out_dir : path
        Output folder (``nmr/``, ``epr/``, ``potentiostat.csv``, ``standard/``,
        ``experiment.toml``, ``truth/``).
    params : dict, optional
        Parameter overrides on top of ``model.defaults`` and ``cfg.model.params``.
    interval_s : float
        Time between the starts of successive NMR (and EPR) acquisitions, s.
    soc0 : float
        Initial SOC.
    seed : int
        Seed of every random number (noise).
    start : datetime, optional
        Experiment start (UTC); default now, rounded to the second.
    nmr, epr, noise : settings
    obs_peaks_cfg : ObservablesConfig, optional
        Anthrone/anthranol lines (and the O-form quinone lines) are placed at the centre
        of its windows, with its proton counts; default: the experiment's
        ``[observables] config`` or ingest's default (the placeholders of
        :data:`ANTHRONE_LINES` and ``kinetics.observe.DHAQ_PEAKS`` otherwise).
    log_interval_s : float
        Potentiostat log spacing, s.
    """

    def __init__(self, cfg: Any, protocol: Protocol, model: Any, out_dir: str | Path, *,
                 params: Mapping[str, float] | None = None, interval_s: float = 120.0,
                 soc0: float = 0.0, seed: int = 0, start: datetime | None = None,
                 nmr: NMRSettings | None = None, epr: EPRSettings | None = None,
                 noise: NoiseSettings | None = None, obs_peaks_cfg: Any = None,
                 log_interval_s: float = 10.0) -> None:
        self.cfg = cfg
        self.protocol = protocol
        self.model = model
        self.out_dir = Path(out_dir)
        self.interval_s = float(interval_s)
        self.soc0 = float(soc0)
        self.seed = int(seed)
        self.nmr = nmr or NMRSettings()
        self.epr = epr or EPRSettings()
        self.noise = noise or NoiseSettings()
        self.log_interval_s = float(log_interval_s)
        st = start or datetime.now(timezone.utc).replace(microsecond=0)
        self.start = st if st.tzinfo else st.replace(tzinfo=timezone.utc)
        p: dict[str, float] = dict(getattr(model, "defaults", {}) or {})
        p.update({k: float(v) for k, v in (cfg.model.params or {}).items()})
        p.update({k: float(v) for k, v in (params or {}).items()})
        p.setdefault("Kc", float(cfg.Kc))
        self.params = p
        self.lines = dict(ANTHRONE_LINES)
        self.peak_pos: dict[str, float] = {}
        if obs_peaks_cfg is None:  # the experiment's own observables config (or ingest's default)
            from flowcell.fit.pipeline import observables_config

            obs_peaks_cfg = observables_config(cfg)
        if obs_peaks_cfg is not None:
            self._adopt_windows(obs_peaks_cfg)
        self.truth: SimulationTruth | None = None
        self.cfg_written: Any = None
        self._setup_done = False

    # ------------------------------------------------------------------ helpers
    def _adopt_windows(self, obs_cfg: Any) -> None:
        peaks = getattr(getattr(obs_cfg, "nmr", None), "peaks", None) or []
        for pk in peaks:
            name = getattr(pk, "name", None)
            win = getattr(pk, "window_ppm", None)
            if win is None:
                continue
            centre = 0.5 * (float(win[0]) + float(win[1]))
            if name in self.lines:
                nh = getattr(pk, "n_h", None)
                self.lines[name] = (centre, int(nh) if nh else self.lines[name][1])
            elif name is not None and name.startswith("dhaq"):
                self.peak_pos[name] = centre

    @property
    def C_tot(self) -> float:
        return float(self.cfg.electrolyte.concentration_M)

    @property
    def volume_L(self) -> float:
        return float(self.cfg.electrolyte.volume_L)

    @property
    def T_K(self) -> float:
        return float(self.cfg.electrolyte.temperature_K)

    def _obs_model(self) -> Any:
        from kinetics.observe import ObservationModel
        return ObservationModel(geometry=self.cfg.instruments.geometry, g=self.epr.g, T_K=self.T_K,
                                sfo1_MHz=self.nmr.sfo1_hz / 1e6)

    # ------------------------------------------------------------------ chemistry
    def prepare(self) -> SimulationTruth:
        """Integrate the chemistry and compute what every spectrum will show (no files)."""
        cfg, p = self.cfg, self.params
        sched = self.protocol.resolve(C_tot_M=self.C_tot, volume_L=self.volume_L, soc0=self.soc0,
                                      Kc=p["Kc"], eps_H=p.get("eps_H", 0.0), T_K=self.T_K)
        total = sched.total_s
        # acquisition plan: NMR at k*interval, EPR half an interval later (two instruments)
        n_acq = int(total // self.interval_s)
        nmr_start = np.arange(n_acq) * self.interval_s + 5.0
        epr_start = nmr_start + 0.5 * self.interval_s
        nmr_end = nmr_start + self.nmr.duration_s
        epr_end = epr_start + self.epr.duration_s
        keep_n, keep_e = nmr_end <= total, epr_end <= total
        delays = cfg.transit_delays()
        d_nmr, d_epr = delays.delay_s("nmr"), delays.delay_s("epr")
        nmr_mid = 0.5 * (nmr_start + nmr_end)[keep_n]
        epr_mid = 0.5 * (epr_start + epr_end)[keep_e]
        fl_n = np.clip(nmr_mid - d_nmr, 0.0, None)
        fl_e = np.clip(epr_mid - d_epr, 0.0, None)
        grid = np.unique(np.concatenate([
            np.arange(0.0, total, self.log_interval_s), [total], sched.t_edges_s,
            nmr_mid, epr_mid, fl_n, fl_e]))
        y0 = {"O": self.C_tot * (1 - self.soc0), "H": self.C_tot * self.soc0} if self.soc0 else {"O": self.C_tot}
        sim = self._simulate(grid, y0, sched)
        conc = sim.conc
        t = np.asarray(sim.t_s, float)
        soc = np.asarray(sim.soc, float)
        I = np.asarray(sched(t), float)
        soc_cc = self.soc0 + sched.charge_C(t) / (2 * F * self.C_tot * self.volume_L)
        vm = self.protocol.voltage
        volt = vm.cell(conc["O"].to_numpy(), conc["H"].to_numpy(), I)
        rng = np.random.default_rng(self.seed + 7)
        if self.noise.voltage_sd_V:
            volt = volt + rng.normal(0, self.noise.voltage_sd_V, volt.size)
        # the potentiostat's reading of the current (the chemistry sees the set current)
        self._logged_I = I + (rng.normal(0, self.noise.current_sd_A, I.size) if self.noise.current_sd_A else 0.0)

        obs = self._obs_model()
        rows = []
        for kind, starts, ends, mids, fluid in (
                ("nmr", nmr_start[keep_n], nmr_end[keep_n], nmr_mid, fl_n),
                ("epr", epr_start[keep_e], epr_end[keep_e], epr_mid, fl_e)):
            seen = self._seen(t, conc, sched, fluid)
            pred = obs.predict(seen, p)
            for i in range(len(mids)):
                r = {"kind": kind, "t_start_s": starts[i], "t_end_s": ends[i], "t_mid_s": mids[i],
                     "t_fluid_s": fluid[i],
                     "soc_tank": float(np.interp(mids[i], t, soc)),
                     "soc_seen": float(seen["soc_seen"].iloc[i]),
                     "current_A": float(sched(fluid[i]))}
                for c in seen.columns:
                    if c != "soc_seen":
                        r[f"{c}_M"] = float(seen[c].iloc[i])
                for c in pred.columns:
                    if c != "t_s":
                        r[c] = float(pred[c].iloc[i])
                rows.append(r)
        spectra = pd.DataFrame(rows).sort_values("t_end_s", kind="stable").reset_index(drop=True)
        # sample temperature written in the files; HDO moves by -0.0103 ppm/K (science.md §1.3)
        rng_t = np.random.default_rng(self.seed + 17)
        dT = rng_t.normal(0.0, self.noise.temperature_sd_K, len(spectra)) if self.noise.temperature_sd_K else 0.0
        spectra["temperature_K"] = self.T_K + dT
        from kinetics.observe import HDO_TEMP_COEF_PPM_K
        spectra["temp_shift_ppm"] = HDO_TEMP_COEF_PPM_K * (spectra["temperature_K"] - self.T_K)
        for a, b in (("time_start", "t_start_s"), ("time_end", "t_end_s"), ("time_mid", "t_mid_s")):
            spectra[a] = [pd.Timestamp(self.start + timedelta(seconds=float(x))) for x in spectra[b]]
        self.truth = SimulationTruth(
            start=self.start, t_s=t, conc=conc.reset_index(drop=True), soc=soc, soc_coulomb=soc_cc,
            current_A=I, voltage_V=volt, spectra=spectra, params=dict(p), schedule=sched,
            out_dir=self.out_dir, area_per_M_proton=self._area_per_M())
        return self.truth

    def _simulate(self, grid: np.ndarray, y0: dict[str, float], sched: CurrentSchedule) -> Any:
        names = set(getattr(self.model, "param_names", self.params))
        kw = dict(params={k: v for k, v in self.params.items() if k in names}, y0=y0, volume_L=self.volume_L)
        try:
            return self.model.simulate(grid, current_A=(sched.t_edges_s, sched.current_A), **kw)
        except (TypeError, ValueError):
            return self.model.simulate(grid, current_A=sched, **kw)

    def _seen(self, t: np.ndarray, conc: pd.DataFrame, sched: CurrentSchedule,
              fluid_t: np.ndarray) -> pd.DataFrame:
        """Composition of the fluid that left the cell at ``fluid_t`` (outlet lead, §1.1/§1.7)."""
        cols = {c: np.interp(fluid_t, t, np.asarray(conc[c], float)) for c in conc.columns}
        O, R, H = cols["O"], cols["R"], cols["H"]
        D = cols.get("D", np.zeros_like(O))
        C_act = O + R + H + 2 * D
        n_e = R + 2 * H + 2 * D
        Q_L_s = self.cfg.flow.rate_mL_min / 60e3
        I = np.asarray(sched(fluid_t), float)
        eff = np.where(I > 0, 1.0 - self.params.get("eps_H", 0.0) - self.params.get("eps_dec", 0.0), 1.0)
        dn = eff * I / (F * Q_L_s)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(C_act > 0, (n_e + dn) / (2 * C_act), 0.0)
        O2, R2, H2, D2 = _speciate(np.clip(x, 0, 1), C_act, self.params["Kc"], self.params.get("KD", 0.0))
        out = pd.DataFrame(cols, index=pd.Index(fluid_t, name="t_s"))
        out["O"], out["R"], out["H"] = O2, R2, H2
        if "D" in out:
            out["D"] = D2
        out["soc_seen"] = np.clip(x, 0, 1)
        return out

    # ------------------------------------------------------------------ spectra
    def _area_per_M(self) -> float:
        """Line amplitude (= DFT area / n) per mol/L of protons: keeps FID values O(1e4)."""
        return 1.0e4

    def _noise_sd_nmr(self) -> float:
        """FID noise sd giving :attr:`NoiseSettings.nmr_snr` for a 1 M-proton line.

        A line ``A exp(-pi w t)`` sampled at ``1/sw`` has a DFT peak height
        ``A / (1 - exp(-pi w / sw))``; white complex noise of sd ``s`` per part gives a
        DFT real part of sd ``s sqrt(n)``.
        """
        a = self._area_per_M()
        height = a / (1 - math.exp(-math.pi * self.nmr.line_fwhm_hz / self.nmr.sw_hz))
        return height / self.noise.nmr_snr / math.sqrt(self.nmr.td)

    def nmr_lines(self, row: Mapping[str, Any]) -> list[NMRLine]:
        """The lines of one NMR spectrum from a :attr:`SimulationTruth.spectra` row."""
        a = self._area_per_M()
        lines: list[NMRLine] = []
        drift = self.noise.nmr_drift_ppm_per_h * row["t_mid_s"] / 3600.0
        bms = row["hdo_shift_ppm"] - self.params.get("hdo_ref_ppm", 4.79)
        temp_shift = row.get("temp_shift_ppm", 0.0)
        lines.append(NMRLine(row["hdo_shift_ppm"] + drift + temp_shift, self.nmr.hdo_fwhm_hz,
                             a * self.nmr.hdo_M, "hdo"))
        from kinetics.observe import DHAQ_PEAKS
        sw = self.nmr.sw_hz
        for pk in DHAQ_PEAKS.values():
            for stem, sp in ((pk.name_O, "O_M"), (pk.name_H, "H_M")):
                w = row.get(f"{stem}_fwhm_Hz", np.nan)
                sh = row.get(f"{stem}_shift_ppm", np.nan)
                if not (np.isfinite(w) and np.isfinite(sh)) or w > sw:
                    continue  # broader than the window: indistinguishable from baseline
                if stem in self.peak_pos:  # the ingest window's centre + the common BMS shift
                    delta = pk.delta_O_ppm if stem == pk.name_O else pk.delta_H_ppm
                    sh = sh - delta + self.peak_pos[stem]
                lines.append(NMRLine(sh + drift, max(w, 0.1), a * 2 * row[sp], stem))
        for name, (ppm, nh) in self.lines.items():
            c = row.get(f"{'A' if name == 'anthrone' else 'AL'}_M", 0.0)
            if c > 0:
                lines.append(NMRLine(ppm + bms + drift, self.nmr.line_fwhm_hz, a * nh * c, name))
        for name, (ppm, nh, c) in IMPURITY_LINES.items():
            lines.append(NMRLine(ppm + bms + drift, self.nmr.line_fwhm_hz, a * nh * c, name))
        return lines

    def write_nmr(self, k: int, row: Mapping[str, Any], rng: np.random.Generator) -> Path:
        """Write NMR spectrum ``k`` (expno k+1) and return its folder."""
        from ingest.readers.nmr_writers import write_bruker_1d
        fid = nmr_fid(self.nmr_lines(row), n=self.nmr.td, sw_hz=self.nmr.sw_hz, sfo1_hz=self.nmr.sfo1_hz,
                      carrier_ppm=self.nmr.carrier_ppm, noise_sd=self._noise_sd_nmr(), rng=rng,
                      phase_deg=self.nmr.phase_deg)
        folder = self.out_dir / "nmr" / str(k + 1)
        return Path(write_bruker_1d(
            folder, fid, sfo1_hz=self.nmr.sfo1_hz, sw_hz=self.nmr.sw_hz, carrier_ppm=self.nmr.carrier_ppm,
            ns=self.nmr.ns, temperature_K=float(row.get("temperature_K", self.T_K)),
            start=row["time_start"].to_pydatetime(), end=row["time_end"].to_pydatetime(),
            d1_s=self.nmr.d1_s))

    def _epr_dbpp(self, row: Mapping[str, Any]) -> float:
        from kinetics.observe import epr_broadening
        p = self.params
        R, O, H = row["R_M"], row["O_M"], row["H_M"]
        return (self.epr.dBpp0_T + float(epr_broadening(self.epr.k_spin_exchange, R))
                + float(epr_broadening(p.get("k1", 1e8), O)) + float(epr_broadening(p.get("k2", 1e8), H)))

    def _epr_noise_sd(self) -> float:
        e = self.epr
        gain = 10 ** (e.receiver_gain_db / 20)
        area = epr_area(e.standard_M, sensitivity=e.sensitivity, mw_power_W=e.mw_power_W,
                        temperature_K=self.T_K, g=e.standard_g, receiver_gain_lin=gain)
        hw = math.sqrt(3) / 2 * e.standard_dBpp_T
        pp = e.mod_amp_T * area * (3 * math.sqrt(3) / (4 * math.pi)) / hw**2  # Lorentzian derivative p-p
        return pp / self.noise.epr_snr / math.sqrt(e.n_scans)

    def epr_spectrum(self, conc_M: float, dBpp_T: float, g: float, t_mid_s: float,
                     rng: np.random.Generator, n_scans: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Field axis (T) and first-harmonic signal for ``conc_M`` spins."""
        e = self.epr
        center = epr_resonance_field_T(g, e.mw_freq_hz)
        field_axis = epr_sweep(epr_resonance_field_T(e.g, e.mw_freq_hz), e.sweep_T, e.n_points)
        center += self.noise.epr_field_drift_T_per_h * t_mid_s / 3600.0
        gain = 10 ** (e.receiver_gain_db / 20)
        area = epr_area(conc_M, sensitivity=e.sensitivity, mw_power_W=e.mw_power_W, temperature_K=self.T_K,
                        g=g, receiver_gain_lin=gain)
        y = epr_first_harmonic(field_axis, center, dBpp_T, area, e.mod_amp_T)
        scans = n_scans or e.n_scans
        y = y + rng.normal(0.0, self._epr_noise_sd() * math.sqrt(e.n_scans / scans), y.size)
        return field_axis, y

    def write_epr(self, k: int, row: Mapping[str, Any], rng: np.random.Generator) -> Path:
        """Write EPR spectrum ``k`` as ``epr/epr_NNNN.DSC/.DTA``; returns the .DTA path."""
        field_axis, y = self.epr_spectrum(max(row["R_M"], 0.0), self._epr_dbpp(row), self.epr.g,
                                          row["t_mid_s"], rng)
        return self._write_bes3t(self.out_dir / "epr" / f"epr_{k + 1:04d}", field_axis, y,
                                 row["time_start"].to_pydatetime(), row["time_end"].to_pydatetime())

    def _write_bes3t(self, base: Path, field_axis: np.ndarray, y: np.ndarray, start: datetime,
                     end: datetime, n_scans: int | None = None) -> Path:
        from ingest.readers.epr_writers import write_bes3t
        e = self.epr
        base.parent.mkdir(parents=True, exist_ok=True)
        _, dta = write_bes3t(base, field_axis, y, mw_freq_hz=e.mw_freq_hz, mw_power_W=e.mw_power_W,
                             mod_amp_T=e.mod_amp_T, receiver_gain_db=e.receiver_gain_db,
                             conversion_time_s=e.conversion_time_s, n_scans=n_scans or e.n_scans,
                             temperature_K=self.T_K, start=start, end=end)
        return Path(dta)

    def write_standard(self) -> dict[str, float]:
        """Write the TEMPOL standard and measure its normalised double integral through ingest.

        Returns the ``[epr_calibration]`` table (concentration_M, di_norm, temperature_K, g, spin).
        """
        e = self.epr
        rng = np.random.default_rng(self.seed + 1)
        f, y = self.epr_spectrum(e.standard_M, e.standard_dBpp_T, e.standard_g, 0.0, rng, e.standard_scans)
        t0 = self.start - timedelta(seconds=600)
        dta = self._write_bes3t(self.out_dir / "standard" / "tempol_1mM", f, y, t0,
                                t0 + timedelta(seconds=e.duration_s * e.standard_scans), e.standard_scans)
        cal = {"concentration_M": e.standard_M, "temperature_K": self.T_K, "g": e.standard_g, "spin": 0.5}
        try:
            from ingest.readers.epr import read_bes3t
            from ingest.processing.epr import EPRConfig, epr_row
            row = epr_row(read_bes3t(dta), EPRConfig())
            cal["di_norm"] = float(row["epr_di_norm"])
        except ImportError:
            cal["di_norm"] = float("nan")
        return cal

    # ------------------------------------------------------------------ files
    def _potentiostat_rows(self, t_from: float, t_to: float) -> str:
        tr = self.truth
        assert tr is not None
        m = (tr.t_s > t_from) & (tr.t_s <= t_to) if t_from >= 0 else (tr.t_s <= t_to)
        idx = np.nonzero(m)[0]
        cur = getattr(self, "_logged_I", tr.current_A)
        return "".join(f"{tr.t_s[i]:.3f},{cur[i]:.9g},{tr.voltage_V[i]:.6f}\n" for i in idx)

    def write_config(self, calibration: Mapping[str, float]) -> Path:
        """Write ``experiment.toml`` for the simulated folders (paths relative to it)."""
        from flowcell.config import EPRCalibrationConfig
        ins = replace(self.cfg.instruments, nmr_dir=(self.out_dir / "nmr").resolve(),
                      epr_dir=(self.out_dir / "epr").resolve(),
                      potentiostat=(self.out_dir / "potentiostat.csv").resolve(),
                      nmr_format="bruker", epr_format="bes3t")
        cal = None
        if calibration and math.isfinite(calibration.get("di_norm", float("nan"))):
            cal = EPRCalibrationConfig(**{k: calibration[k] for k in
                                          ("concentration_M", "di_norm", "temperature_K", "g", "spin")})
        cfg = replace(self.cfg, instruments=ins, epr_calibration=cal)
        self.cfg_written = cfg
        return Path(cfg.write_toml(self.out_dir / "experiment.toml"))

    def setup_files(self) -> None:
        """Create the folders, the EPR standard, ``experiment.toml`` and the log header.

        Called by :meth:`write`; call it first yourself to start a watcher on the
        folders (with the calibrated config :attr:`cfg_written`) before the spectra come.
        """
        tr = self.truth or self.prepare()
        out = self.out_dir
        (out / "nmr").mkdir(parents=True, exist_ok=True)
        (out / "epr").mkdir(parents=True, exist_ok=True)
        tr.epr_calibration = self.write_standard()
        tr.config_path = self.write_config(tr.epr_calibration)
        pot = out / "potentiostat.csv"
        pot.write_text(f"# flowcell simulated potentiostat log\n# start: {self.start.isoformat()}\n"
                       "time_s,current_A,voltage_V\n", encoding="utf-8")
        tr.potentiostat_path = pot
        self._setup_done = True

    def write(self, *, realtime_speedup: float | None = None, progress: bool = False,
              stop: threading.Event | None = None, on_file: Callable[[str, Path], None] | None = None
              ) -> SimulationTruth:
        """Write every file (after :meth:`prepare`).

        Parameters
        ----------
        realtime_speedup : float, optional
            None writes everything at once; X > 0 writes each file when the simulated
            clock (running X times faster than the wall clock) passes its end.
        progress : bool
            Show a tqdm progress bar.
        stop : threading.Event, optional
            Set it to stop writing early (real-time mode).
        on_file : callable(kind, path), optional
            Called after each file is complete.
        """
        tr = self.truth or self.prepare()
        out = self.out_dir
        if not self._setup_done:
            self.setup_files()
        pot = out / "potentiostat.csv"
        rng_n = np.random.default_rng(self.seed + 11)
        rng_e = np.random.default_rng(self.seed + 13)
        sp = tr.spectra
        paths: list[str] = [""] * len(sp)
        count = {"nmr": 0, "epr": 0}
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(sp), desc="simulating spectra", unit="file")
        wall0 = time.monotonic()
        t_logged = -1.0
        for i, row in sp.iterrows():
            t_end = float(row["t_end_s"])
            if realtime_speedup:
                wait = wall0 + t_end / realtime_speedup - time.monotonic()
                if stop is not None and stop.wait(max(wait, 0.0)):
                    break
                if stop is None and wait > 0:
                    time.sleep(wait)
            with open(pot, "a", encoding="utf-8") as fh:
                fh.write(self._potentiostat_rows(t_logged, t_end))
            t_logged = t_end
            k = count[row["kind"]]
            count[row["kind"]] += 1
            path = self.write_nmr(k, row, rng_n) if row["kind"] == "nmr" else self.write_epr(k, row, rng_e)
            paths[i] = str(path)
            if on_file is not None:
                on_file(row["kind"], path)
            if bar is not None:
                bar.update(1)
        else:
            with open(pot, "a", encoding="utf-8") as fh:
                fh.write(self._potentiostat_rows(t_logged, tr.schedule.total_s))
        if bar is not None:
            bar.close()
        sp["path"] = paths
        tr.save(out / "truth")
        return tr


def simulate_experiment(cfg: Any, protocol: Protocol, model: Any, out_dir: str | Path, *,
                        realtime_speedup: float | None = None, seed: int = 0,
                        progress: bool = False, **kwargs: Any) -> SimulationTruth:
    """Simulate an experiment and write its files (the contract entry point).

    Parameters
    ----------
    cfg : ExperimentConfig
    protocol : Protocol
    model : kinetics Model (compiled)
    out_dir : path
    realtime_speedup : float, optional
        Write in real time at this speed-up (None: all at once).
    seed : int
    progress : bool
    **kwargs
        Passed to :class:`ExperimentSimulator` (params, interval_s, soc0, nmr, epr, noise ...).

    Returns
    -------
    SimulationTruth
    """
    sim = ExperimentSimulator(cfg, protocol, model, out_dir, seed=seed, **kwargs)
    sim.prepare()
    return sim.write(realtime_speedup=realtime_speedup, progress=progress)
