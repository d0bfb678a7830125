"""When each spectrum is acquired, which fluid it sees, and what that fluid shows.

The NMR acquires at ``k * interval`` (+5 s), the EPR half an interval later.  The fluid
in a detector left the cell ``delay`` seconds earlier (docs/physics.md §1.7,
``ExperimentConfig.transit_delays()``) and the cell outlet leads the tank by one pass
(§1.1, :func:`flowcell.fit.pipeline.outlet_composition`).  :func:`spectra_table` puts
the composition seen and the observation model's prediction into one row per spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from flowcell.fit.observation import outlet_composition
from flowcell.simulate.protocol import CurrentSchedule

__all__ = ["Acquisitions", "acquisitions", "time_grid", "seen_composition", "spectra_table"]


@dataclass(frozen=True)
class Acquisitions:
    """Start, end and mid times of one instrument's acquisitions, and when their fluid left the cell (s)."""

    kind: str
    start_s: np.ndarray
    end_s: np.ndarray
    mid_s: np.ndarray
    fluid_s: np.ndarray


def acquisitions(total_s: float, interval_s: float, *, nmr_duration_s: float, epr_duration_s: float,
                 nmr_delay_s: float, epr_delay_s: float) -> tuple[Acquisitions, Acquisitions]:
    """NMR and EPR acquisitions that end within ``total_s`` (two instruments, interleaved)."""
    n_acq = int(total_s // interval_s)
    nmr_start = np.arange(n_acq) * interval_s + 5.0
    epr_start = nmr_start + 0.5 * interval_s
    out = []
    for kind, start, dur, delay in (("nmr", nmr_start, nmr_duration_s, nmr_delay_s),
                                    ("epr", epr_start, epr_duration_s, epr_delay_s)):
        end = start + dur
        keep = end <= total_s
        mid = 0.5 * (start + end)[keep]
        out.append(Acquisitions(kind, start[keep], end[keep], mid, np.clip(mid - delay, 0.0, None)))
    return out[0], out[1]


def time_grid(total_s: float, log_interval_s: float, sched: CurrentSchedule,
              acqs: tuple[Acquisitions, ...]) -> np.ndarray:
    """Chemistry output times: the potentiostat log, the current steps and every spectrum's times."""
    parts = [np.arange(0.0, total_s, log_interval_s), [total_s], sched.t_edges_s]
    parts += [a.mid_s for a in acqs] + [a.fluid_s for a in acqs]
    return np.unique(np.concatenate(parts))


def seen_composition(t: np.ndarray, conc: pd.DataFrame, sched: CurrentSchedule, fluid_t: np.ndarray,
                     params: Mapping[str, float], flow_L_s: float) -> pd.DataFrame:
    """Composition (mol/L) of the fluid that left the cell at ``fluid_t``, and its SOC ``soc_seen``."""
    cols = {c: np.interp(fluid_t, t, np.asarray(conc[c], float)) for c in conc.columns}
    tank = pd.DataFrame(cols, index=pd.Index(fluid_t, name="t_s"))
    out = outlet_composition(tank, np.asarray(sched(fluid_t), float), params, flow_L_s)
    D = out["D"].to_numpy(float) if "D" in out else 0.0
    C_act = out["O"].to_numpy(float) + out["R"].to_numpy(float) + out["H"].to_numpy(float) + 2 * D
    n_e = out["R"].to_numpy(float) + 2 * out["H"].to_numpy(float) + 2 * D
    with np.errstate(invalid="ignore", divide="ignore"):
        out["soc_seen"] = np.clip(np.where(C_act > 0, n_e / (2 * C_act), 0.0), 0, 1)
    return out


def spectra_table(acqs: tuple[Acquisitions, ...], t: np.ndarray, conc: pd.DataFrame, soc: np.ndarray,
                  sched: CurrentSchedule, obs: Any, params: Mapping[str, float],
                  flow_L_s: float) -> pd.DataFrame:
    """One row per spectrum, sorted by end time.

    Columns: ``kind``, ``t_start_s``, ``t_end_s``, ``t_mid_s``, ``t_fluid_s``, ``soc_tank``,
    ``soc_seen``, ``current_A``, the concentrations seen (``O_M``, ``R_M`` ...) and the
    observation model's prediction (``hdo_shift_ppm``, ``epr_spin_conc_M`` ...).
    """
    rows = []
    for a in acqs:
        seen = seen_composition(t, conc, sched, a.fluid_s, params, flow_L_s)
        pred = obs.predict(seen, params)
        for i in range(len(a.mid_s)):
            r = {"kind": a.kind, "t_start_s": a.start_s[i], "t_end_s": a.end_s[i], "t_mid_s": a.mid_s[i],
                 "t_fluid_s": a.fluid_s[i], "soc_tank": float(np.interp(a.mid_s[i], t, soc)),
                 "soc_seen": float(seen["soc_seen"].iloc[i]), "current_A": float(sched(a.fluid_s[i]))}
            for c in seen.columns:
                if c != "soc_seen":
                    r[f"{c}_M"] = float(seen[c].iloc[i])
            for c in pred.columns:
                if c != "t_s":
                    r[c] = float(pred[c].iloc[i])
            rows.append(r)
    return pd.DataFrame(rows).sort_values("t_end_s", kind="stable").reset_index(drop=True)
