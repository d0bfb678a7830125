"""Pairing NMR and EPR rows in time (docs/physics.md §1.7 delays)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingest.live.pairing import pair, transit_delay_s

T0 = pd.Timestamp("2026-03-01T12:00:00", tz="UTC")


def _nmr(times_s, **cols) -> pd.DataFrame:
    df = pd.DataFrame({"kind": "nmr", "source": [f"n{i}" for i in range(len(times_s))],
                       "time_mid": [T0 + pd.Timedelta(seconds=float(t)) for t in times_s], "temperature_K": 298.0})
    df["hdo_shift_ppm"] = 4.79 + 0.01 * np.arange(len(df))
    for k, v in cols.items():
        df[k] = v
    return df


def _epr(times_s) -> pd.DataFrame:
    df = pd.DataFrame({"kind": "epr", "source": [f"e{i}" for i in range(len(times_s))],
                       "time_mid": [T0 + pd.Timedelta(seconds=float(t)) for t in times_s], "temperature_K": 297.0})
    df["epr_di"] = 100.0 * (1 + np.arange(len(df)))
    return df


def test_transit_delay() -> None:
    # 2.5 mL at 13.6 mL/min (docs/physics.md §1.7 flow rate) = 11.0294 s
    assert transit_delay_s(2.5, 13.6) == pytest.approx(60 * 2.5 / 13.6, rel=1e-12)
    with pytest.raises(ValueError):
        transit_delay_s(1.0, 0.0)


def test_delay_recovers_known_pairs() -> None:
    """EPR 30 s downstream: EPR spectrum k is at NMR time k*60 + 30 (+ jitter
    ±3 s).  With delay 30 s and tolerance 10 s every pair is found with the
    right partner and pair_dt_s equals the jitter."""
    rng = np.random.default_rng(1)
    jit = rng.uniform(-3, 3, 10)
    n = _nmr(np.arange(10) * 60.0)
    e = _epr(np.arange(10) * 60.0 + 30.0 + jit)
    out = pair(n, e, delay_s=30.0, tolerance_s=10.0)
    assert len(out) == 10 and out["matched"].all()
    assert list(out["nmr_source"]) == [f"n{i}" for i in range(10)]
    assert list(out["epr_source"]) == [f"e{i}" for i in range(10)]
    np.testing.assert_allclose(out["pair_dt_s"], jit, atol=1e-6)
    np.testing.assert_allclose(out["t_s"], np.arange(10) * 60.0, atol=1e-9)
    # unprefixed instrument columns, prefixed common ones
    assert {"hdo_shift_ppm", "epr_di", "nmr_temperature_K", "epr_temperature_K"} <= set(out.columns)
    # without the delay, nearest matching within 10 s finds nothing: all kept unmatched
    out0 = pair(n, e, delay_s=0.0, tolerance_s=10.0)
    assert len(out0) == 20 and not out0["matched"].any()
    assert out0["pair_dt_s"].isna().all()


def test_volume_flow_and_clock_offset() -> None:
    # 6.8 mL at 13.6 mL/min -> 30 s; EPR PC clock 5 s fast.
    n = _nmr([0, 100, 200])
    e = _epr([35, 135, 235])
    out = pair(n, e, volume_mL=6.8, flow_mL_min=13.6, tolerance_s=1.0, clock_offset_s=5.0)
    assert out["matched"].all()
    np.testing.assert_allclose(out["pair_dt_s"], 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="delay_s"):
        pair(n, e, tolerance_s=1.0)
    with pytest.raises(ValueError, match="not both"):
        pair(n, e, delay_s=1.0, volume_mL=1.0, flow_mL_min=1.0, tolerance_s=1.0)


def test_unmatched_kept_and_one_to_one() -> None:
    # EPR twice as dense as NMR: each NMR row takes its nearest EPR row, the
    # other EPR rows stay as unmatched rows; an NMR row far away stays alone.
    n = _nmr([0, 60, 1000])
    e = _epr([1, 29, 59, 89])
    out = pair(n, e, delay_s=0.0, tolerance_s=5.0)
    assert len(out) == 3 + 4 - 2
    m = out[out["matched"]]
    assert list(zip(m["nmr_source"], m["epr_source"])) == [("n0", "e0"), ("n1", "e2")]
    np.testing.assert_allclose(m["pair_dt_s"], [1.0, -1.0])
    assert set(out.loc[~out["matched"], "epr_source"].dropna()) == {"e1", "e3"}
    assert set(out.loc[~out["matched"], "nmr_source"].dropna()) == {"n2"}
    assert out["time"].is_monotonic_increasing
    # one EPR row between two NMR rows goes to the closer only
    out2 = pair(_nmr([0, 10]), _epr([6]), delay_s=0.0, tolerance_s=10.0)
    assert len(out2) == 2
    assert out2.loc[out2["matched"], "nmr_source"].tolist() == ["n1"]


def test_combined_table_and_cell_reference() -> None:
    both = pd.concat([_nmr([0, 60]), _epr([20, 80])], ignore_index=True)
    out = pair(both, both, delay_s=20.0, tolerance_s=2.0, nmr_delay_s=12.0)
    assert out["matched"].all() and len(out) == 2
    # time refers to the cell outlet: NMR mid-time minus 12 s
    assert out["time"].iloc[0] == T0 - pd.Timedelta(seconds=12)


def test_empty_sides() -> None:
    out = pair(_nmr([0, 1]), _epr([]).astype({"time_mid": "datetime64[ns, UTC]"}), delay_s=0, tolerance_s=1)
    assert len(out) == 2 and not out["matched"].any()
