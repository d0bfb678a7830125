"""What really happened in a simulated experiment (:class:`SimulationTruth`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flowcell.simulate.protocol import CurrentSchedule

__all__ = ["SimulationTruth"]


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
        Tank SOC on the initial active total (docs/physics.md §1.1).
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
