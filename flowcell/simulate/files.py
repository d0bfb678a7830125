"""Writing a simulated experiment: vendor files, the potentiostat log, the config.

Bruker 1H expnos (:func:`ingest.readers.nmr_writers.write_bruker_1d`), BES3T EPR pairs
(:func:`ingest.readers.epr_writers.write_bes3t`), a ``time_s,current_A,voltage_V``
potentiostat CSV and the ``experiment.toml`` of the written folders.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ingest.processing.epr import EPRConfig, epr_row
from ingest.readers.dispatch import read as read_spectrum
from ingest.readers.epr_writers import write_bes3t
from ingest.readers.nmr_writers import write_bruker_1d

from flowcell.config import EPRCalibrationConfig
from flowcell.simulate.settings import EPRSettings, NMRSettings

__all__ = ["write_nmr_file", "write_epr_file", "measured_di_norm", "potentiostat_header", "potentiostat_rows",
           "write_experiment_config"]


def write_nmr_file(folder: Path, fid: np.ndarray, nmr: NMRSettings, *, temperature_K: float,
                   start: datetime, end: datetime) -> Path:
    """Write one Bruker 1D expno (``folder``) holding ``fid``; returns the folder."""
    return Path(write_bruker_1d(folder, fid, sfo1_hz=nmr.sfo1_hz, sw_hz=nmr.sw_hz, carrier_ppm=nmr.carrier_ppm,
                                ns=nmr.ns, temperature_K=temperature_K, start=start, end=end, d1_s=nmr.d1_s))


def write_epr_file(base: Path, field_T: np.ndarray, y: np.ndarray, epr: EPRSettings, *, temperature_K: float,
                   start: datetime, end: datetime, n_scans: int | None = None) -> Path:
    """Write ``base.DSC``/``base.DTA`` (BES3T); returns the .DTA path."""
    base.parent.mkdir(parents=True, exist_ok=True)
    _, dta = write_bes3t(base, field_T, y, mw_freq_hz=epr.mw_freq_hz, mw_power_W=epr.mw_power_W,
                         mod_amp_T=epr.mod_amp_T, receiver_gain_db=epr.receiver_gain_db,
                         conversion_time_s=epr.conversion_time_s, n_scans=n_scans or epr.n_scans,
                         temperature_K=temperature_K, start=start, end=end)
    return Path(dta)


def measured_di_norm(dta: Path) -> float:
    """Normalised double integral of a written EPR file, measured through ingest (the calibration)."""
    return float(epr_row(read_spectrum(dta), EPRConfig())["epr_di_norm"])


def potentiostat_header(start: datetime) -> str:
    """First lines of the simulated potentiostat CSV."""
    return f"# flowcell simulated potentiostat log\n# start: {start.isoformat()}\ntime_s,current_A,voltage_V\n"


def potentiostat_rows(t_s: np.ndarray, current_A: np.ndarray, voltage_V: np.ndarray,
                      t_from: float, t_to: float) -> str:
    """CSV rows with ``t_from < t <= t_to`` (every ``t <= t_to`` when ``t_from < 0``).

    Times are strictly increasing, as a potentiostat logs them: where the truth grid
    holds a step boundary twice to the written millisecond (the old step's last point
    and the new step's first), only the first row is written.  With right-hand-rule counting the dropped row
    carried a zero time step, so the charge is unchanged.
    """
    m = (t_s > t_from) & (t_s <= t_to) if t_from >= 0 else (t_s <= t_to)
    m[1:] &= np.diff(np.round(t_s, 3)) > 0  # as written (ms): equal there is a duplicate
    return "".join(f"{t_s[i]:.3f},{current_A[i]:.9g},{voltage_V[i]:.6f}\n" for i in np.nonzero(m)[0])


def write_experiment_config(cfg: Any, out_dir: Path, calibration: Mapping[str, float]) -> tuple[Path, Any]:
    """``out_dir/experiment.toml`` for the simulated folders (paths relative to it).

    Returns the path and the written :class:`~flowcell.config.ExperimentConfig` (with the
    ``[epr_calibration]`` of the simulated standard when its double integral is finite).
    """
    ins = replace(cfg.instruments, nmr_dir=(out_dir / "nmr").resolve(), epr_dir=(out_dir / "epr").resolve(),
                  potentiostat=(out_dir / "potentiostat.csv").resolve(), nmr_format="bruker", epr_format="bes3t")
    cal = None
    if calibration and math.isfinite(calibration.get("di_norm", float("nan"))):
        cal = EPRCalibrationConfig(**{k: calibration[k] for k in
                                      ("concentration_M", "di_norm", "temperature_K", "g", "spin")})
    written = replace(cfg, instruments=ins, epr_calibration=cal)
    return Path(written.write_toml(out_dir / "experiment.toml")), written
