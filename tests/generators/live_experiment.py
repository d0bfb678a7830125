"""An in-line NMR + EPR charging experiment written with its own physics.

Imports nothing from the package under test (numpy and the standard library only), so a
wrong observation model, speciation or time handling in the package shows up as a
tracking error instead of cancelling out.

Physics (written out here, independently):

* coulomb counting: ``dSOC/dt = I (1 - loss) / (2 F C V)`` (the ``loss`` fraction of the
  charge goes to a side reaction the package is not told about);
* radical fraction by bisection on the comproportionation equilibrium
  ``f^2 = K (1 - x - f/2)(x - f/2)``;
* Curie susceptibility of an S = 1/2 radical ``chi_M = mu0 N_A g^2 S(S+1) muB^2 / (3 k T)``
  and a BMS water shift ``factor * chi_M * [R]`` (``factor`` 1/3 for a cylinder along B0,
  times a cell factor the package does not know);
* an EPR spin count ``scale * [R]`` (a calibration the package does not know);
* each spectrum sees the fluid that left the cell ``tau`` seconds before its
  acquisition mid-time, plus the single-pass conversion ``I/(2 F C Q)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

F = 96485.33212
MU0 = 1.25663706212e-6
N_A = 6.02214076e23
MU_B = 9.2740100783e-24
K_B = 1.380649e-23


def radical_fraction(x: np.ndarray, K: float) -> np.ndarray:
    """Bisection on f^2 = K (1 - x - f/2)(x - f/2), f in [0, 2 min(x, 1-x)]."""
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    lo, hi = np.zeros_like(x), 2 * np.minimum(x, 1 - x)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        g = mid ** 2 - K * (1 - x - mid / 2) * (x - mid / 2)
        lo, hi = np.where(g < 0, mid, lo), np.where(g < 0, hi, mid)
    return 0.5 * (lo + hi)


def water_shift_per_M(g: float = 2.0046, T: float = 298.15, factor: float = 1 / 3) -> float:
    """BMS water shift per mol/L of S = 1/2 radical, ppm."""
    chi_m = MU0 * N_A * g ** 2 * 0.75 * MU_B ** 2 / (3 * K_B * T)  # m^3/mol
    return factor * chi_m * 1e3 * 1e6


@dataclass
class Run:
    """A generated run: rows as an ingest watcher would store them, and the potentiostat log."""

    rows: list[dict]
    log_t_s: np.ndarray
    log_I_A: np.ndarray
    start: datetime
    soc_t_s: np.ndarray
    soc: np.ndarray
    info: dict = field(default_factory=dict)

    def true_soc(self, t_s: float) -> float:
        """Reservoir SOC at ``t_s`` seconds after the start."""
        return float(np.interp(t_s, self.soc_t_s, self.soc))


def charging_run(Kc: float, *, C: float = 0.1, V: float = 0.010, current_A: float = 0.05,
                 soc_end: float = 0.9, rest_s: float = 600.0, interval_s: float = 60.0, loss: float = 0.0,
                 hdo_ref_ppm: float = 4.79, cell_factor: float = 0.9, epr_scale: float = 1.15,
                 sd_hdo_ppm: float = 0.002, sd_epr_M: float = 2e-4, tau_nmr_s: float = 0.0,
                 tau_epr_s: float = 0.0, flow_L_s: float | None = None, seed: int = 0,
                 start: datetime | None = None) -> Run:
    """Rest, then charge at constant current to ``soc_end``; an NMR and an EPR row every ``interval_s``.

    Rows have ``kind``, ``time_start``/``time_end``/``time_mid`` (UTC datetimes, 20 s
    acquisitions), ``hdo_shift_ppm`` + ``hdo_shift_err_ppm`` (NMR) or
    ``epr_spin_conc_M`` (EPR).  The log is sampled every 10 s.
    """
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    rate = current_A * (1 - loss) / (2 * F * C * V)
    t_end = rest_s + soc_end / rate
    t = np.arange(0.0, t_end + 10.0, 10.0)
    current = np.where(t > rest_s, current_A, 0.0)  # mean current over the interval ending at t
    soc = np.clip((t - rest_s) * rate, 0.0, None)
    shift_per_M = water_shift_per_M(factor=cell_factor / 3)
    plan = [(k, kind, t_mid + dt, tau) for k, t_mid in enumerate(np.arange(interval_s / 2, t_end, interval_s))
            for kind, tau, dt in (("nmr", tau_nmr_s, 0.0), ("epr", tau_epr_s, interval_s / 2)) if t_mid + dt <= t_end]
    tc = np.array([tm - tau for _, _, tm, tau in plan])  # when the fluid seen left the cell
    x = np.interp(tc, t, soc)
    if flow_L_s:
        x = x + np.where(tc > rest_s, current_A, 0.0) / (2 * F * C * flow_L_s)
    radical = C * radical_fraction(x, Kc)
    noise = rng.normal(0.0, 1.0, len(plan))
    rows: list[dict] = []
    for (k, kind, tm, _), R, e in zip(plan, radical, noise):
        mid = start + timedelta(seconds=float(tm))
        row = {"kind": kind, "source": f"{kind}/{k:04d}", "row": 0, "time_mid": mid,
               "time_start": mid - timedelta(seconds=10), "time_end": mid + timedelta(seconds=10)}
        if kind == "nmr":
            row["hdo_shift_ppm"] = hdo_ref_ppm + shift_per_M * R + sd_hdo_ppm * e
            row["hdo_shift_err_ppm"] = sd_hdo_ppm
        else:
            row["epr_spin_conc_M"] = epr_scale * R + sd_epr_M * e
        rows.append(row)
    rows.sort(key=lambda r: r["time_mid"])
    return Run(rows, t, current, start, t, soc, {"Kc": Kc, "rest_s": rest_s, "t_end": t_end})


def write_potentiostat_csv(run: Run, path, *, rows: list[int] | None = None, edit=None) -> None:
    """The run's log as a plain CSV (``# start:`` comment, ``time_s,current_A``); ``edit(lines)``
    may spoil data lines (NaN, swapped rows) before they are written."""
    lines = [f"{t:.1f},{i:.6g}" for t, i in zip(run.log_t_s, run.log_I_A)]
    if edit is not None:
        lines = edit(lines)
    text = f"# start: {run.start.isoformat()}\ntime_s,current_A\n" + "\n".join(lines) + "\n"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
