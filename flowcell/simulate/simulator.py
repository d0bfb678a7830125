"""In-line experiment simulator: chemistry -> observation models -> real vendor files.

Given an :class:`~flowcell.config.ExperimentConfig`, a cycling
:class:`~flowcell.simulate.protocol.Protocol` and a compiled kinetic model
(``kinetics.library.dhaq().compile()``), :class:`ExperimentSimulator`

1. resolves the protocol into a piecewise-constant current (``protocol.resolve``),
2. integrates the chemistry of the well-mixed anolyte (``Model.simulate``),
3. works out what each in-line instrument sees: the fluid in a detector left the
   cell ``delay`` seconds earlier (docs/physics.md §1.7, ``cfg.transit_delays()``), and
   the cell-outlet stream leads the tank by the single-pass conversion
   ``dn_e = I/(F Q)`` (docs/physics.md §1.1) -- the active pool is re-speciated with the
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
placeholder (docs/physics.md §2.6), chosen to make synthetic data look plausible.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kinetics.model import Model
from kinetics.observe import HDO_TEMP_COEF_PPM_K, ObservationModel

from flowcell.fit.data import observables_config
from flowcell.params import resolve_params
from flowcell.simulate import files, instruments
from flowcell.simulate.plan import acquisitions, spectra_table, time_grid
from flowcell.simulate.protocol import F, Protocol
from flowcell.simulate.settings import ANTHRONE_LINES, IMPURITY_LINES, EPRSettings, NMRSettings, NoiseSettings
from flowcell.simulate.spectra import NMRLine, nmr_fid
from flowcell.simulate.truth import SimulationTruth

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


def _window_positions(obs_cfg: Any, lines: dict[str, tuple[float, int]]) -> dict[str, float]:
    """Move the product lines (in place) and the quinone lines to the ingest windows' expected
    positions (``ppm`` of a window, else its centre)."""
    peak_pos: dict[str, float] = {}
    for pk in obs_cfg.nmr.peaks:
        if pk.window_ppm is None:
            continue
        expected = getattr(pk, "ppm", None)  # windows of older observables files have no ppm
        centre = float(expected) if expected is not None else 0.5 * (float(pk.window_ppm[0]) + float(pk.window_ppm[1]))
        if pk.name in lines:
            nh = getattr(pk, "n_h", None)
            lines[pk.name] = (centre, int(nh) if nh else lines[pk.name][1])
        elif pk.name.startswith("dhaq"):
            peak_pos[pk.name] = centre
    return peak_pos


class ExperimentSimulator:
    """Simulate one in-line experiment and write its files.

    Parameters
    ----------
    cfg : ExperimentConfig
        Electrolyte (C_tot, V_tot, T), flow loop (delays), geometry, model params.
    protocol : Protocol
    model : kinetics.model.Model
        The compiled model (:func:`flowcell.params.compiled_model`).
    out_dir : path
        Output folder (``nmr/``, ``epr/``, ``potentiostat.csv``, ``standard/``,
        ``experiment.toml``, ``truth/``).
    params : dict, optional
        Overrides of :func:`flowcell.params.resolve_params` (library defaults <-
        ``[model.params]`` <- these).
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
        ``[observables] config`` or ingest's default.
    log_interval_s : float
        Potentiostat log spacing, s.
    """

    def __init__(self, cfg: Any, protocol: Protocol, model: Model, out_dir: str | Path, *,
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
        self.params = resolve_params(cfg, params, network=model.network)
        self.lines = dict(ANTHRONE_LINES)
        obs_cfg = obs_peaks_cfg if obs_peaks_cfg is not None else observables_config(cfg)
        self.peak_pos = _window_positions(obs_cfg, self.lines)
        self.truth: SimulationTruth | None = None
        self.cfg_written: Any = None
        self._setup_done = False
        self._logged_I: np.ndarray | None = None

    @property
    def C_tot(self) -> float:
        """Total quinone, mol/L."""
        return float(self.cfg.electrolyte.concentration_M)

    @property
    def volume_L(self) -> float:
        """Circulating volume, L."""
        return float(self.cfg.electrolyte.volume_L)

    @property
    def T_K(self) -> float:
        """Sample temperature, K."""
        return float(self.cfg.electrolyte.temperature_K)

    @property
    def flow_L_s(self) -> float:
        """Flow rate through the cell, L/s."""
        return self.cfg.flow.rate_mL_min / 60e3

    # ------------------------------------------------------------------ chemistry
    def prepare(self) -> SimulationTruth:
        """Integrate the chemistry and compute what every spectrum will show (no files)."""
        p = self.params
        sched = self.protocol.resolve(C_tot_M=self.C_tot, volume_L=self.volume_L, soc0=self.soc0,
                                      Kc=p["Kc"], eps_H=p["eps_H"], T_K=self.T_K)
        total = sched.total_s
        delays = self.cfg.transit_delays()
        acqs = acquisitions(total, self.interval_s, nmr_duration_s=self.nmr.duration_s,
                            epr_duration_s=self.epr.duration_s, nmr_delay_s=delays.delay_s("nmr"),
                            epr_delay_s=delays.delay_s("epr"))
        grid = time_grid(total, self.log_interval_s, sched, acqs)
        y0 = {"O": self.C_tot * (1 - self.soc0), "H": self.C_tot * self.soc0} if self.soc0 else {"O": self.C_tot}
        names = set(self.model.param_names)
        sim = self.model.simulate(grid, params={k: v for k, v in p.items() if k in names}, y0=y0,
                                  volume_L=self.volume_L, current_A=(sched.t_edges_s, sched.current_A))
        conc = sim.conc
        t = np.asarray(sim.t_s, float)
        soc = np.asarray(sim.soc, float)
        I = np.asarray(sched(t), float)
        soc_cc = self.soc0 + sched.charge_C(t) / (2 * F * self.C_tot * self.volume_L)
        volt = self.protocol.voltage.cell(conc["O"].to_numpy(), conc["H"].to_numpy(), I)
        rng = np.random.default_rng(self.seed + 7)
        if self.noise.voltage_sd_V:
            volt = volt + rng.normal(0, self.noise.voltage_sd_V, volt.size)
        # the potentiostat's reading of the current (the chemistry sees the set current): the mean
        # over the interval ending at each row, as EC-Lab's <I> (docs/physics.md §5.7), so the
        # right-hand coulomb count of flowcell.potentiostat is exact
        I_log = np.concatenate([I[:1], np.diff(sched.charge_C(t)) / np.diff(t)]) if t.size > 1 else I
        self._logged_I = I_log + (rng.normal(0, self.noise.current_sd_A, I.size) if self.noise.current_sd_A else 0.0)
        obs = ObservationModel(geometry=self.cfg.instruments.geometry, g=self.epr.g, T_K=self.T_K,
                               sfo1_MHz=self.nmr.sfo1_hz / 1e6)
        spectra = spectra_table(acqs, t, conc, soc, sched, obs, p, self.flow_L_s)
        self._add_temperatures_and_times(spectra)
        self.truth = SimulationTruth(
            start=self.start, t_s=t, conc=conc.reset_index(drop=True), soc=soc, soc_coulomb=soc_cc,
            current_A=I, voltage_V=volt, spectra=spectra, params=dict(p), schedule=sched,
            out_dir=self.out_dir, area_per_M_proton=instruments.AREA_PER_M_PROTON)
        return self.truth

    def _add_temperatures_and_times(self, spectra: pd.DataFrame) -> None:
        """Sample temperature written in the files (HDO moves by -0.0103 ppm/K, docs/physics.md §1.3), UTC times."""
        rng_t = np.random.default_rng(self.seed + 17)
        sd = self.noise.temperature_sd_K
        spectra["temperature_K"] = self.T_K + (rng_t.normal(0.0, sd, len(spectra)) if sd else 0.0)
        spectra["temp_shift_ppm"] = HDO_TEMP_COEF_PPM_K * (spectra["temperature_K"] - self.T_K)
        for a, b in (("time_start", "t_start_s"), ("time_end", "t_end_s"), ("time_mid", "t_mid_s")):
            spectra[a] = [pd.Timestamp(self.start + timedelta(seconds=float(x))) for x in spectra[b]]

    # ------------------------------------------------------------------ spectra
    def nmr_lines(self, row: Mapping[str, Any]) -> list[NMRLine]:
        """The lines of one NMR spectrum from a :attr:`SimulationTruth.spectra` row."""
        return instruments.nmr_lines(row, nmr=self.nmr, noise=self.noise,
                                     hdo_ref_ppm=self.params.get("hdo_ref_ppm", 4.79),
                                     product_lines=self.lines, peak_pos=self.peak_pos)

    def write_nmr(self, k: int, row: Mapping[str, Any], rng: np.random.Generator) -> Path:
        """Write NMR spectrum ``k`` (expno k+1) and return its folder."""
        fid = nmr_fid(self.nmr_lines(row), n=self.nmr.td, sw_hz=self.nmr.sw_hz, sfo1_hz=self.nmr.sfo1_hz,
                      carrier_ppm=self.nmr.carrier_ppm, noise_sd=instruments.nmr_noise_sd(self.nmr, self.noise),
                      rng=rng, phase_deg=self.nmr.phase_deg)
        return files.write_nmr_file(self.out_dir / "nmr" / str(k + 1), fid, self.nmr,
                                    temperature_K=float(row.get("temperature_K", self.T_K)),
                                    start=row["time_start"].to_pydatetime(), end=row["time_end"].to_pydatetime())

    def epr_spectrum(self, conc_M: float, dBpp_T: float, g: float, t_mid_s: float,
                     rng: np.random.Generator, n_scans: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Field axis (T) and first-harmonic signal for ``conc_M`` spins."""
        return instruments.epr_spectrum(conc_M, dBpp_T, g, t_mid_s, rng, epr=self.epr, noise=self.noise,
                                        T_K=self.T_K, n_scans=n_scans)

    def write_epr(self, k: int, row: Mapping[str, Any], rng: np.random.Generator) -> Path:
        """Write EPR spectrum ``k`` as ``epr/epr_NNNN.DSC/.DTA``; returns the .DTA path."""
        field_axis, y = self.epr_spectrum(max(row["R_M"], 0.0), instruments.epr_dbpp(row, self.epr, self.params),
                                          self.epr.g, row["t_mid_s"], rng)
        return files.write_epr_file(self.out_dir / "epr" / f"epr_{k + 1:04d}", field_axis, y, self.epr,
                                    temperature_K=self.T_K, start=row["time_start"].to_pydatetime(),
                                    end=row["time_end"].to_pydatetime())

    def write_standard(self) -> dict[str, float]:
        """Write the TEMPOL standard and measure its normalised double integral through ingest.

        Returns the ``[epr_calibration]`` table (concentration_M, di_norm, temperature_K, g, spin).
        """
        e = self.epr
        rng = np.random.default_rng(self.seed + 1)
        f, y = self.epr_spectrum(e.standard_M, e.standard_dBpp_T, e.standard_g, 0.0, rng, e.standard_scans)
        t0 = self.start - timedelta(seconds=600)
        dta = files.write_epr_file(self.out_dir / "standard" / "tempol_1mM", f, y, e, temperature_K=self.T_K,
                                   start=t0, end=t0 + timedelta(seconds=e.duration_s * e.standard_scans),
                                   n_scans=e.standard_scans)
        return {"concentration_M": e.standard_M, "temperature_K": self.T_K, "g": e.standard_g, "spin": 0.5,
                "di_norm": files.measured_di_norm(dta)}

    # ------------------------------------------------------------------ files
    def write_config(self, calibration: Mapping[str, float]) -> Path:
        """Write ``experiment.toml`` for the simulated folders (paths relative to it)."""
        path, self.cfg_written = files.write_experiment_config(self.cfg, self.out_dir, calibration)
        return path

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
        pot.write_text(files.potentiostat_header(self.start), encoding="utf-8")
        tr.potentiostat_path = pot
        self._setup_done = True

    def _log_until(self, t_from: float, t_to: float) -> None:
        tr = self.truth
        assert tr is not None
        with open(self.out_dir / "potentiostat.csv", "a", encoding="utf-8") as fh:
            fh.write(files.potentiostat_rows(tr.t_s, self._logged_I, tr.voltage_V, t_from, t_to))

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
        if not self._setup_done:
            self.setup_files()
        rngs = {"nmr": np.random.default_rng(self.seed + 11), "epr": np.random.default_rng(self.seed + 13)}
        writers = {"nmr": self.write_nmr, "epr": self.write_epr}
        sp = tr.spectra
        paths: list[str] = [""] * len(sp)
        count = {"nmr": 0, "epr": 0}
        bar = tqdm(total=len(sp), desc="simulating spectra", unit="file", disable=not progress)
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
            self._log_until(t_logged, t_end)
            t_logged = t_end
            kind = row["kind"]
            path = writers[kind](count[kind], row, rngs[kind])
            count[kind] += 1
            paths[i] = str(path)
            if on_file is not None:
                on_file(kind, path)
            bar.update(1)
        else:
            self._log_until(t_logged, tr.schedule.total_s)
        bar.close()
        sp["path"] = paths
        tr.save(self.out_dir / "truth")
        return tr


def simulate_experiment(cfg: Any, protocol: Protocol, model: Model, out_dir: str | Path, *,
                        realtime_speedup: float | None = None, seed: int = 0,
                        progress: bool = False, **kwargs: Any) -> SimulationTruth:
    """Simulate an experiment and write its files (the contract entry point).

    Parameters
    ----------
    cfg : ExperimentConfig
    protocol : Protocol
    model : kinetics.model.Model (compiled)
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
