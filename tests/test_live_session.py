"""No row can poison the live session (flowcell.live.session.LiveSession.on_row).

Rows and the potentiostat log come from the independent generator
(tests/generators/live_experiment.py); the session reads the log with the package's
PotentiostatTail, as ``flowcell watch`` does.  Poisons: rows without a time, with a NaN
time, dated before 1990, years ahead or days before the run; NaN and swapped rows in the
potentiostat log; a missing log.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from generators.live_experiment import charging_run, write_potentiostat_csv

from flowcell.config import ExperimentConfig
from flowcell.live.session import LiveSession
from flowcell.live.table import TerminalTable


def config(tmp_path, log) -> ExperimentConfig:
    return ExperimentConfig.from_dict({
        "experiment": {"name": "generated"},
        "electrolyte": {"concentration_M": 0.1, "volume_L": 0.010},
        "flow": {"rate_mL_min": 13.6},
        "instruments": {"potentiostat": str(log)},
        "live": {"refer_to_outlet": False},
    }, source=tmp_path / "experiment.toml")


@pytest.fixture(scope="module")
def run():
    return charging_run(0.3, seed=5, interval_s=120.0, loss=0.01)


_OPEN: list = []


@pytest.fixture(autouse=True)
def _close_sessions():
    """Close every session a test opened (their table handlers sit on global loggers)."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def session(tmp_path, run, *, log_edit=None, log=True, name="s"):
    path = tmp_path / f"{name}.csv"
    if log:
        write_potentiostat_csv(run, path, edit=log_edit)
    buf = io.StringIO()
    s = LiveSession(config(tmp_path, path), tmp_path / f"store-{name}", table=TerminalTable(buf, ansi=False),
                    csv_path=tmp_path / f"{name}-live.csv")
    _OPEN.append(s)
    return s, buf


def errors(s, run):
    return np.array([st.soc - run.true_soc(st.t_s) for st in s.history
                     if not st.flag and st.t_s > run.info["rest_s"] + 1800])


POISONS = {
    "untimed": {"time_mid": None, "time_start": None, "time_end": None},
    "NaN time": {"time_mid": float("nan"), "time_start": float("nan"), "time_end": None},
    "before 1990": {"time_mid": pd.Timestamp("1985-03-01T12:00Z")},
    "future": {"time_mid": pd.Timestamp.now(tz="UTC") + timedelta(days=9 * 365)},
    "days before the run": {"time_mid": None},  # filled in below
}


def test_untimed_and_misdated_rows_never_touch_the_state(tmp_path, run):
    clean, _ = session(tmp_path, run, name="clean")
    for r in run.rows:
        clean.on_row(r)
    dirty, buf = session(tmp_path, run, name="dirty")
    n_poison = 0
    for k, r in enumerate(run.rows):
        dirty.on_row(r)
        if k % 10 == 5:
            for name, patch in POISONS.items():
                bad = {**r, "time_start": None, "time_end": None, **patch}
                if name == "days before the run":
                    bad["time_mid"] = run.start - timedelta(days=3)
                bad["hdo_shift_ppm"], bad["epr_spin_conc_M"] = 9.9, 1.0  # would wreck the SOC if used
                dirty.on_row(bad)
                n_poison += 1
    good_clean = [st for st in clean.history]
    good_dirty = [st for st in dirty.history if not st.flag]
    assert len(good_dirty) == len(good_clean)
    assert np.allclose([s.soc for s in good_dirty], [s.soc for s in good_clean], atol=1e-12)
    st = dirty.refresh_status()
    assert st.flagged == n_poison and st.rows == len(run.rows) + n_poison
    assert set(st.flags) == {"untimed", "before 1990", "future", "outside run"}
    assert dirty.failure is None
    dirty.close()
    lines = list(csv.DictReader(open(tmp_path / "dirty-live.csv")))
    assert len(lines) == st.rows
    assert sum(bool(l["flag"]) for l in lines) == n_poison
    assert "flagged" in buf.getvalue()  # the status line counts them


def test_nan_and_swapped_potentiostat_rows_are_skipped_loudly(tmp_path, run):
    def spoil(lines):
        lines = list(lines)
        k = len(lines) // 3
        lines[k] = lines[k].split(",")[0] + ",nan"        # NaN current
        lines[k + 5], lines[k + 6] = lines[k + 6], lines[k + 5]  # two rows swapped
        return lines

    s, buf = session(tmp_path, run, log_edit=spoil, name="spoilt")
    for r in run.rows:
        s.on_row(r)
    assert all(math.isfinite(st.soc) for st in s.history)
    assert np.abs(errors(s, run)).max() < 0.02
    assert "potentiostat:" in buf.getvalue()  # the tail's warnings shown once
    assert s.failure is None


def test_missing_log_is_loud_and_widens_the_sd(tmp_path, run):
    s, buf = session(tmp_path, run, log=False, name="nolog")
    for r in run.rows[:30]:
        s.on_row(r)
    assert s.refresh_status().potentiostat == "missing"
    assert "missing" in buf.getvalue()
    with_log, _ = session(tmp_path, run, name="withlog")
    for r in run.rows[:30]:
        with_log.on_row(r)
    # no silent zero current: without the current the SOC is known only as well as the spectra say
    assert s.history[-1].soc_sd > 3 * with_log.history[-1].soc_sd
    assert all(math.isnan(st.soc_coulomb) for st in s.history)


def test_a_run_of_untimed_rows_fails_the_session(tmp_path, run):
    s, _ = session(tmp_path, run, name="fail")
    for r in run.rows[:3]:
        s.on_row(r)
    for _ in range(25):
        s.on_row({**run.rows[3], "time_mid": None, "time_start": None, "time_end": None})
    assert s.failure is not None and "no SOC" in s.failure


def test_clock_offset_honoured(tmp_path, run):
    """An EPR PC clock 90 s fast: rows without ``clock_offset_s`` are shifted by the config's offset."""
    path = tmp_path / "off.csv"
    write_potentiostat_csv(run, path)
    cfg = ExperimentConfig.from_dict({
        "experiment": {"name": "g"}, "electrolyte": {"concentration_M": 0.1, "volume_L": 0.010},
        "flow": {"rate_mL_min": 13.6}, "live": {"refer_to_outlet": False},
        "instruments": {"potentiostat": str(path), "epr_clock_offset_s": 90.0}})
    s = LiveSession(cfg, tmp_path / "store-off")
    r = next(r for r in run.rows if r["kind"] == "epr")
    st = s.on_row({**r, "time_mid": r["time_mid"] + timedelta(seconds=90)})
    assert st.row_time_s == pytest.approx((r["time_mid"] - run.start).total_seconds())
