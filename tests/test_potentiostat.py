"""Potentiostat readers and coulomb counting.

Real files: three BioLogic EC-Lab exports in ../shared/data/potentiostat (see its
README).  Each carries the instrument's own ``(Q-Qo)/C``, integrated by the
instrument at its internal sampling rate, far denser than the recorded points.
Our integral can only use the recorded points, so the agreement is limited by
how the current varies between them; the tolerances below are stated relative
to the charge throughput ``integral |I| dt`` and justified per file.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from flowcell.potentiostat import (
    charge_between,
    coulomb_count,
    coulomb_soc,
    read_mpt,
    read_potentiostat,
    read_potentiostat_csv,
)
from flowcell.transit import FARADAY
from ingest.types import IngestError


def _ref_and_throughput(df):
    """Instrument charge referred to the first point (not counted across loops) and the throughput."""
    t, current, q, seg = df.t_s.to_numpy(), df.I_A.to_numpy(), df.Q_C.to_numpy(), df.loop.to_numpy()
    same = seg[1:] == seg[:-1]
    ref = np.concatenate([[0.0], np.cumsum(np.where(same, np.diff(q), 0.0))])
    thr = float(np.sum(np.abs(current[:-1]) * np.diff(t) * same))
    return ref, thr


def test_cp_steps_header_columns_and_charge(shared_data):
    df = read_mpt(shared_data / "potentiostat" / "biologic-cp-steps.mpt")
    assert list(df.columns[:5]) == ["t_s", "I_A", "E_V", "Q_C", "loop"]
    assert len(df) == 31
    assert df.attrs["start"] == datetime(2022, 5, 5, 15, 55, 2, tzinfo=timezone.utc)
    assert df.attrs["technique"] == "Chronopotentiometry"
    assert df.attrs["columns"]["<Ewe>/V"] == "E_V"
    # mA -> A: the file's steps are 0, +2.5 and -2 uA (header 'Is' row)
    ns = df["Ns"].to_numpy()
    assert np.median(df.I_A[ns == 1]) == pytest.approx(2.5e-6, rel=0.01)
    assert np.median(df.I_A[ns == 2]) == pytest.approx(-2.0e-6, rel=0.01)
    assert df.t_s.iloc[0] == pytest.approx(560.2763878602855, rel=1e-15)
    assert df.E_V.iloc[0] == pytest.approx(0.88483948)
    ref, thr = _ref_and_throughput(df)
    # EC-Lab logs the row at a step instant with the NEW current, so holding each
    # sample until the next one ('hold') is the right rule: agreement to 0.5 % of
    # the 45 uC throughput (observed 0.1 %, current noise between points).
    q_hold = coulomb_count(df.t_s, df.I_A, method="hold")
    assert np.max(np.abs(q_hold - ref)) < 5e-3 * thr
    # The trapezoid averages old and new current over the 1 s interval ending at the
    # +2.5 -> -2 uA step: error bound |dI| dt / 2 = 4.5 uA * 1 s / 2 (+ the same 0.5 %).
    q_trap = coulomb_count(df.t_s, df.I_A)
    bound = 4.5e-6 * 1.0 / 2 + 5e-3 * thr
    err = np.max(np.abs(q_trap - ref))
    assert err < bound
    assert err > 0.5 * 4.5e-6 / 2  # and the step error is really there (the test can fail)


def test_cp_rest_two_loops(shared_data):
    df = read_mpt(shared_data / "potentiostat" / "biologic-cp-rest.mpt")
    assert len(df) == 44
    assert df.attrs["start"] == datetime(2022, 6, 24, 13, 13, 57, tzinfo=timezone.utc)
    # header: 'Loop 0 from point number 0 to 21', 'Loop 1 from point number 22 to 43'
    np.testing.assert_array_equal(df.loop.to_numpy(), [0] * 22 + [1] * 22)
    ref, thr = _ref_and_throughput(df)
    # open circuit, ~30 nA of leakage: smooth, so the trapezoid within 0.5 % of throughput
    q = coulomb_count(df.t_s, df.I_A, segments=df.loop)
    assert np.max(np.abs(q - ref)) < 5e-3 * thr
    # without segments the 41 s pause between loops would be counted (~1.3 uC, > 2x throughput)
    q_all = coulomb_count(df.t_s, df.I_A)
    assert np.max(np.abs(q_all - ref)) > thr


def test_cv_decimal_comma(shared_data):
    df = read_mpt(shared_data / "potentiostat" / "biologic-cva-decimal-comma.mpt")
    assert len(df) == 223
    assert df.attrs["technique"] == "Cyclic Voltammetry Advanced"
    assert df.attrs["columns"]["<I>/mA"] == "I_A"
    # first data row: '3,289600104471901E+000 ... 8,7869531E-001 -2,604324994466466E-003'
    assert df.t_s.iloc[0] == pytest.approx(3.289600104471901)
    assert df.E_V.iloc[0] == pytest.approx(0.87869531)
    assert df.I_A.iloc[0] == pytest.approx(-2.604324994466466e-6)
    assert df["cycle number"].iloc[0] == 1.0
    ref, thr = _ref_and_throughput(df)
    # <I> is averaged over only part of each potential step (EC-Lab 'Step percent 50'),
    # while (Q-Qo) integrates every internal sample; at the sweep reversals the two
    # differ, so agreement is 5 % of throughput (observed 2.7 %).
    q = coulomb_count(df.t_s, df.I_A)
    assert np.max(np.abs(q - ref)) < 0.05 * thr


def test_mpt_errors(tmp_path):
    bad = tmp_path / "x.mpt"
    bad.write_text("hello\n", encoding="latin-1")
    with pytest.raises(IngestError, match="not a BioLogic"):
        read_mpt(bad)
    bad.write_text("EC-Lab ASCII FILE\nno count here\n", encoding="latin-1")
    with pytest.raises(IngestError, match="Nb header lines"):
        read_mpt(bad)
    bad.write_text("EC-Lab ASCII FILE\nNb header lines : 3\n\nmode\tEwe/V\n1\t0.5\n", encoding="latin-1")
    with pytest.raises(IngestError, match="not a tab-separated header|no time column"):
        read_mpt(bad)
    with pytest.raises(IngestError, match="cannot read"):
        read_mpt(tmp_path / "missing.mpt")


def test_mpt_growing_file_and_units(tmp_path):
    text = ("EC-Lab ASCII FILE\nNb header lines : 4\n\ntime/s\t<I>/µA\tEwe/mV\t(Q-Qo)/mA.h\t\n"
            "0,0\t10,0\t500,0\t0,0\n1,0\t10,0\t501,0\t0,00277777\n2,0\t10")
    p = tmp_path / "live.mpt"
    p.write_bytes(text.encode("latin-1"))
    df = read_mpt(p, complete_only=True)
    assert len(df) == 2  # the unterminated last line is dropped
    np.testing.assert_allclose(df.I_A, [1e-5, 1e-5])
    np.testing.assert_allclose(df.E_V, [0.5, 0.501])
    np.testing.assert_allclose(df.Q_C, [0.0, 0.00277777 * 3.6])
    assert df.attrs["start"] is None
    assert len(read_mpt(p)) == 3


def test_csv_reader_round_trip(tmp_path):
    p = tmp_path / "pot.csv"
    t = np.arange(0.0, 10.0, 0.5)
    current = np.where(t < 5, 0.1, -0.05)
    with open(p, "w") as fh:
        fh.write("# flowcell simulated potentiostat log; start = 2026-01-02T03:04:05+00:00\n")
        fh.write("time_s,current_A,voltage_V\n")
        for a, b in zip(t, current):
            fh.write(f"{a},{b},{1.0 + b}\n")
    df = read_potentiostat(p)
    assert df.attrs["format"] == "csv"
    assert df.attrs["start"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    np.testing.assert_allclose(df.t_s, t)
    np.testing.assert_allclose(df.I_A, current)
    np.testing.assert_allclose(df.E_V, 1.0 + current)
    assert df.Q_C.isna().all()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(IngestError, match="missing column 'current_A'|missing column 'time_s'"):
        read_potentiostat_csv(tmp_path / "bad.csv")
    with pytest.raises(IngestError, match="unknown potentiostat format"):
        read_potentiostat(tmp_path / "x.dat")


def test_coulomb_soc_constant_current_exact():
    # science.md §1.1: SOC(t) = SOC0 + I t / (2 F C V) exactly for constant current
    t = np.linspace(0.0, 3600.0, 37)
    current = np.full_like(t, 0.05)
    soc = coulomb_soc(t, current, C_tot_M=0.1, volume_L=0.01, soc0=0.1)
    np.testing.assert_allclose(soc, 0.1 + 0.05 * t / (2 * FARADAY * 0.1 * 0.01), rtol=1e-13, atol=1e-15)
    # anolyte discharged by positive current when sign = -1
    soc_m = coulomb_soc(t, current, C_tot_M=0.1, volume_L=0.01, soc0=0.9, sign=-1)
    np.testing.assert_allclose(soc_m, 0.9 - 0.05 * t / (2 * FARADAY * 0.1 * 0.01), rtol=1e-13)
    with pytest.raises(ValueError):
        coulomb_soc(t, current, C_tot_M=0.0, volume_L=0.01)


def test_trapezoid_exact_for_bracketed_steps():
    # steps +1 A for 10 s, -0.5 A for 4 s; each step bracketed by two samples at the same time
    t = np.array([0.0, 3.0, 10.0, 10.0, 12.0, 14.0])
    current = np.array([1.0, 1.0, 1.0, -0.5, -0.5, -0.5])
    q = coulomb_count(t, current)
    np.testing.assert_allclose(q, [0.0, 3.0, 10.0, 10.0, 9.0, 8.0], rtol=0, atol=1e-14)
    # linear ramp I = 2t: Q = t^2, exact for the trapezoid on any grid
    tt = np.sort(np.random.default_rng(0).uniform(0, 5, 40))
    np.testing.assert_allclose(coulomb_count(tt, 2 * tt), tt ** 2 - tt[0] ** 2, atol=1e-12)
    with pytest.raises(ValueError):
        coulomb_count([0.0, 2.0, 1.0], [1.0, 1.0, 1.0])


def test_charge_between_constant_current():
    t = np.linspace(0.0, 100.0, 11)
    current = np.full_like(t, 0.02)
    assert charge_between(t, current, 15.0, 47.5) == pytest.approx(0.02 * 32.5, rel=1e-12)
    assert charge_between(t, current, -10.0, 200.0) == pytest.approx(0.02 * 100.0, rel=1e-12)  # clamped
    assert charge_between(t, current, 50.0, 50.0) == 0.0
