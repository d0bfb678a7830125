"""The live SOC estimator against experiments written by an independent generator.

``tests/generators/live_experiment.py`` imports nothing from the package: its radical
fraction comes from bisection on the equilibrium, its water shift from the Curie law with
CODATA constants and a cell factor the filter is not told, its EPR count from a
calibration factor the filter is not told.  The filter is given no K_c either
(docs/physics.md §1.2, §1.3, §1.9), and some of the charge goes to a side reaction
coulomb counting does not see.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from generators.live_experiment import charging_run

from flowcell.config import ExperimentConfig
from flowcell.live.estimator import LiveSOC
from flowcell.live.timing import RowClock


class HoldLog:
    """Stand-in for ``flowcell.potentiostat.PotentiostatTail`` on arrays (tests the filter alone)."""

    def __init__(self, t, current):  # current[k]: mean over the interval ending at t[k]
        self.t, self.I = np.asarray(t, float), np.asarray(current, float)
        self.Q = np.concatenate([[0.0], np.cumsum(self.I[1:] * np.diff(self.t))])

    def _k(self, t_s):
        return int(np.clip(np.searchsorted(self.t, t_s, side="left"), 1, self.t.size - 1))

    def charge_at(self, t_s):
        k = self._k(t_s)
        return float(self.Q[k - 1] + self.I[k] * (t_s - self.t[k - 1]))

    def current_at(self, t_s):
        return float(self.I[self._k(t_s)])


def config(**live) -> ExperimentConfig:
    return ExperimentConfig.from_dict({
        "experiment": {"name": "generated"},
        "electrolyte": {"concentration_M": 0.1, "volume_L": 0.010},
        "flow": {"rate_mL_min": 13.6, "cell_to_nmr_mL": 0.5, "cell_to_epr_mL": 0.8,
                 "nmr_cell_mL": 0.2, "epr_cell_mL": 0.05},
        "live": {"refer_to_outlet": False, **live},
    })


def track(run, cfg, rows=None):
    """Feed the rows; (t_s, estimate, sd, truth, state) per row."""
    f = LiveSOC(cfg, coulombs=HoldLog(run.log_t_s, run.log_I_A))
    clock = RowClock(run.start)
    out = []
    for r in rows if rows is not None else run.rows:
        st = f.update(r, clock.place(r).t_s)
        out.append((st.t_s, st.soc, st.soc_sd, run.true_soc(st.t_s), st))
    return f, out


@pytest.mark.parametrize("Kc", [0.01, 0.1, 1.0, 10.0])
def test_unknown_Kc_tracked_over_the_range(Kc):
    """No K_c given, 1.5 % of the charge lost: within 0.02 after 30 min of charge, truth inside
    ±2 sd at least 90 % of the time, and K_c itself recovered within its ±2 sd band."""
    run = charging_run(Kc, seed=3, loss=0.015, cell_factor=0.9, epr_scale=1.15, interval_s=90.0)
    f, out = track(run, config())
    late = [(s, sd, tr) for t, s, sd, tr, _ in out if t >= run.info["rest_s"] + 1800]
    err = np.array([s - tr for s, sd, tr in late])
    inside = np.mean([abs(s - tr) <= 2 * sd for s, sd, tr in late])
    assert np.abs(err).max() <= 0.02, f"Kc {Kc}: max |error| {np.abs(err).max():.4f}"
    assert inside >= 0.9, f"Kc {Kc}: truth inside ±2 sd only {inside:.2f} of the time"
    last = out[-1][4]
    assert last.Kc_lo <= Kc <= last.Kc_hi, (last.Kc, last.Kc_lo, last.Kc_hi)
    assert f.rejection_rate < 0.1


def test_uncertainty_wide_until_data_pin_it():
    """Before the charge the K_c band spans decades; after it, less than a factor 2 either way."""
    run = charging_run(0.3, seed=1)
    _, out = track(run, config())
    first, last = out[0][4], out[-1][4]
    assert first.Kc_hi / first.Kc_lo > 100
    assert last.Kc_hi / last.Kc_lo < 4
    assert abs(math.log(last.Kc / 0.3)) < math.log(1.5)


def test_mismatch_is_shown_not_hidden():
    """Water shifts from another experiment (a jump of 0.05 ppm mid-run): the table's rejection
    rate and mismatch say so, instead of a confident wrong number."""
    run = charging_run(0.3, seed=2)
    rows = [dict(r) for r in run.rows]
    for r in rows[len(rows) // 2:]:
        if "hdo_shift_ppm" in r:
            r["hdo_shift_ppm"] += 0.05
    f, out = track(run, config(), rows)
    assert f.rejection_rate > 0.2 or f.mismatch > 3
    assert any(st.rejected for *_, st in out)


def test_late_rows_at_their_own_time_no_sawtooth():
    """Rows delivered in a shuffled order (EPR at once, NMR late) give the same estimate
    within noise: each is evaluated at its own acquisition time."""
    run = charging_run(0.3, seed=4, loss=0.0, interval_s=120.0)
    rows = list(run.rows)
    late = []
    for i in range(0, len(rows) - 6, 6):  # every third NMR row arrives 3 rows late
        late.append(rows[i:i + 6][::-1])
    shuffled = [r for block in late for r in block] + rows[len(late) * 6:]
    _, out = track(run, config(), shuffled)
    _, ordered = track(run, config())
    err = np.array([s - tr for t, s, sd, tr, _ in out if t > run.info["rest_s"] + 600])
    err_ordered = np.array([s - tr for t, s, sd, tr, _ in ordered if t > run.info["rest_s"] + 600])
    assert np.abs(err).max() < 0.015  # the old filter made a ±4.5 % sawtooth here
    assert np.sqrt(np.mean(err ** 2)) < 1.5 * np.sqrt(np.mean(err_ordered ** 2)) + 0.002


def test_update_cost_bounded_whatever_the_gap():
    """A row 300 days after the last costs the same as one a minute later."""
    import time
    run = charging_run(0.3, seed=0)
    f = LiveSOC(config(), coulombs=HoldLog(run.log_t_s, run.log_I_A))
    t0 = time.perf_counter()
    f.update(run.rows[5], 3e2)
    f.update(run.rows[6], 300 * 86400.0)
    assert time.perf_counter() - t0 < 0.5
    assert np.isfinite(f.x).all()


def test_missing_log_widens_instead_of_zero_current():
    """Without a potentiostat log the SOC sd grows (no silent zero current)."""
    run = charging_run(0.3, seed=0)
    f = LiveSOC(config(), coulombs=None)
    clock = RowClock(run.start)
    sds = [f.update({}, clock.place(r).t_s).soc_sd for r in run.rows[:40]]
    assert sds[-1] > 2 * sds[0] and sds[-1] > 0.04
