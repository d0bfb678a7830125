"""Potentiostat readers and coulomb counting, on every shared EC-Lab file.

Real files (``shared_data``, ``potentiostat/``, see its README): three older EC-Lab
``.mpt`` exports and ``eclab-mpr/`` (four binary ``.mpr``, two of them also exported
as ``.mpt``).  Each carries the instrument's own ``(Q-Qo)``, integrated at its internal
sampling rate; EC-Lab resets it at the start of every loop.  The package's count
``Q_C`` must reproduce it within 0.1 % of the charge throughput ``sum |dQ|``, loop by loop.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from flowcell.potentiostat import (
    charge_between,
    charge_throughput,
    coulomb_count,
    coulomb_soc,
    instrument_charge,
    read_mpr,
    read_mpt,
    read_potentiostat,
    read_potentiostat_csv,
)
from flowcell.transit import FARADAY
from ingest.types import IngestError

pytest.importorskip("galvani")

ECLAB = ["biologic-cp-steps.mpt", "biologic-cp-rest.mpt", "biologic-cva-decimal-comma.mpt",
         "eclab-mpr/cp.issue_61.mpr", "eclab-mpr/cp.issue_61.mpt", "eclab-mpr/gcpl.issue_175.mpr",
         "eclab-mpr/gcpl.issue_228.mpr", "eclab-mpr/gcpl.pr_182.1.mpr", "eclab-mpr/gcpl.pr_182.1.mpt"]
#: rows, loops, and the instrument's charge throughput (C, sum of |increments| within loops)
EXPECTED = {
    "biologic-cp-steps.mpt": (31, 1), "biologic-cp-rest.mpt": (44, 2), "biologic-cva-decimal-comma.mpt": (223, 1),
    "eclab-mpr/cp.issue_61.mpr": (312, 1), "eclab-mpr/cp.issue_61.mpt": (312, 1),
    "eclab-mpr/gcpl.issue_175.mpr": (11399, 1), "eclab-mpr/gcpl.issue_228.mpr": (10914, 1),
    "eclab-mpr/gcpl.pr_182.1.mpr": (2533, 1), "eclab-mpr/gcpl.pr_182.1.mpt": (2533, 1),
}


def _instrument_throughput(df) -> float:
    q, seg = df["Q_instrument_C"].to_numpy(float), df["loop"].to_numpy()
    return float(np.sum(np.abs(np.diff(q))[seg[1:] == seg[:-1]]))


@pytest.mark.parametrize("name", ECLAB)
def test_count_matches_the_instrument_charge(shared_data, name):
    """Q_C within 0.1 % of the throughput of the instrument's (Q-Qo), its per-loop resets undone."""
    df = read_potentiostat(shared_data / "potentiostat" / name)
    rows, loops = EXPECTED[name]
    assert len(df) == rows and df["loop"].nunique() == loops
    assert list(df.columns[:6]) == ["t_s", "I_A", "Q_C", "Q_instrument_C", "E_V", "loop"]
    assert np.all(np.diff(df["t_s"]) > 0) and np.isfinite(df["I_A"]).all()
    ref = instrument_charge(df["Q_instrument_C"], df["loop"])
    thr = _instrument_throughput(df)
    assert thr > 0
    assert np.max(np.abs(df["Q_C"].to_numpy() - ref)) < 1e-3 * thr
    # the count is the right-hand sum of the table's own current (one rule everywhere)
    np.testing.assert_allclose(df["Q_C"], coulomb_count(df["t_s"], df["I_A"], segments=df["loop"]),
                               rtol=0, atol=1e-12 * max(thr, 1e-30))
    assert df.attrs["format"] in ("biologic-mpt", "biologic-mpr")


@pytest.mark.parametrize("stem", ["cp.issue_61", "gcpl.pr_182.1"])
def test_mpr_and_mpt_of_the_same_run_give_the_same_table(shared_data, stem):
    folder = shared_data / "potentiostat" / "eclab-mpr"
    a, b = read_mpr(folder / f"{stem}.mpr"), read_mpt(folder / f"{stem}.mpt")
    assert len(a) == len(b)
    assert a.attrs["start"] == b.attrs["start"]
    np.testing.assert_allclose(a["t_s"], b["t_s"], rtol=1e-12, atol=1e-9)
    thr = _instrument_throughput(a)
    for col in ("Q_C", "Q_instrument_C"):  # .mpt prints 8 significant digits
        np.testing.assert_allclose(a[col], b[col], rtol=0, atol=1e-7 * thr)
    np.testing.assert_allclose(a["E_V"], b["E_V"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a["loop"], b["loop"])


def test_start_times(shared_data):
    d = shared_data / "potentiostat"
    assert read_potentiostat(d / "biologic-cp-steps.mpt").attrs["start"] == datetime(2022, 5, 5, 15, 55, 2,
                                                                                     tzinfo=timezone.utc)
    mpr = read_potentiostat(d / "eclab-mpr" / "cp.issue_61.mpr")
    assert mpr.attrs["start"] == datetime(2023, 11, 8, 16, 6, 15, 633000, tzinfo=timezone.utc)
    none = read_potentiostat(d / "eclab-mpr" / "gcpl.pr_182.1.mpr")
    assert none.attrs["start"] is None and any("start time unknown" in w for w in none.attrs["warnings"])


def test_the_instruments_current_columns_mean_what_the_table_says(shared_data):
    """Independent of (Q-Qo): each raw current column, read with its own semantics, counts the
    instrument's charge.  <I> (EC-Lab's export of dq/dt) and control/mA (the set point) are
    interval means; I/mA in this CP file is the reading at the row, held until the next."""
    d = shared_data / "potentiostat"
    g = read_potentiostat(d / "eclab-mpr" / "gcpl.pr_182.1.mpt")
    ref, thr = instrument_charge(g["Q_instrument_C"], g["loop"]), _instrument_throughput(g)
    q = coulomb_count(g["t_s"], g["<I>/mA"] * 1e-3)
    assert np.max(np.abs(q - ref)) < 1e-9 * thr  # observed 6e-16
    assert np.max(np.abs(coulomb_count(g["t_s"], g["<I>/mA"] * 1e-3, method="sample") - ref)) > 1e-3 * thr
    c = read_potentiostat(d / "biologic-cp-steps.mpt")
    ref, thr = instrument_charge(c["Q_instrument_C"], c["loop"]), _instrument_throughput(c)
    assert np.max(np.abs(coulomb_count(c["t_s"], c["control/mA"] * 1e-3) - ref)) < 1e-3 * thr  # 0.07 %
    assert np.max(np.abs(coulomb_count(c["t_s"], c["I/mA"] * 1e-3, method="sample") - ref)) < 1e-3 * thr  # 0.098 %
    # the step instants: the wrong rule on I/mA is off by ~9 % (so the test can fail)
    assert np.max(np.abs(coulomb_count(c["t_s"], c["I/mA"] * 1e-3) - ref)) > 0.05 * thr
    # the units: steps of +2.5 and -2 uA (header 'Is' row), mA -> A
    ns = c["Ns"].to_numpy()
    assert np.median(c["I_A"][ns == 1]) == pytest.approx(2.5e-6, rel=0.001)
    assert np.median(c["I_A"][ns == 2]) == pytest.approx(-2.0e-6, rel=0.001)


def test_loops_and_rests(shared_data):
    df = read_mpt(shared_data / "potentiostat" / "biologic-cp-rest.mpt")
    # header: 'Loop 0 from point number 0 to 21', 'Loop 1 from point number 22 to 43'
    np.testing.assert_array_equal(df["loop"], [0] * 22 + [1] * 22)
    assert df["Q_instrument_C"].iloc[22] == 0.0 and df["Q_instrument_C"].iloc[21] > 3e-7  # the reset
    assert df["I_A"].iloc[22] == 0.0  # no charge across the 41 s pause
    assert df["Q_C"].iloc[22] == df["Q_C"].iloc[21]
    # counting across the pause (no segments) would add ~1.3 uC, twice the whole throughput
    held = coulomb_count(df["t_s"], df["I/mA"] * 1e-3)
    assert np.max(np.abs(held - df["Q_C"])) > _instrument_throughput(df)


def test_decimal_comma_latin1(shared_data):
    df = read_mpt(shared_data / "potentiostat" / "biologic-cva-decimal-comma.mpt")
    assert df.attrs["technique"] == "Cyclic Voltammetry Advanced"
    # first data row: '3,289600104471901E+000 ... 8,7869531E-001 -2,604324994466466E-003'
    assert df["t_s"].iloc[0] == pytest.approx(3.289600104471901)
    assert df["E_V"].iloc[0] == pytest.approx(0.87869531)
    assert df["<I>/mA"].iloc[0] == pytest.approx(-2.604324994466466e-3)


def _mpt(rows: list[str], tail: str = "") -> bytes:
    """A minimal EC-Lab export (generator independent of the package)."""
    head = ["EC-Lab ASCII FILE", "Nb header lines : 5", "", "Chronopotentiometry",
            "time/s\t<I>/µA\tEwe/mV\t(Q-Qo)/mA.h\t"]
    return ("\n".join(head + rows) + "\n" + tail).encode("latin-1")


def test_half_written_last_line_is_never_read(tmp_path):
    p = tmp_path / "live.mpt"
    rows = ["0,0\t10,0\t500,0\t0,0", "1,0\t10,0\t501,0\t2,7777778E-006"]
    # every field there, but the charge cut short ('5,5' of '5,5555556E-006'): as a number
    # it would make the last interval's current 2e6 times too large
    p.write_bytes(_mpt(rows, "2,0\t10,0\t502,0\t5,5"))
    df = read_mpt(p)
    assert len(df) == 2 and "not complete" in " ".join(df.attrs["warnings"])
    np.testing.assert_allclose(df["I_A"], [0.0, 1e-5 * 1.0])
    np.testing.assert_allclose(df["Q_instrument_C"], [0.0, 1e-5])
    assert len(read_mpt(p, complete_only=False)) == 3
    p.write_bytes(_mpt(rows, "2,0\t1"))  # fields missing
    assert len(read_mpt(p)) == 2
    # EC-Lab ends its exports without a line end: a whole last line is read
    p.write_bytes(_mpt(rows, "2,0\t10,0\t502,0\t5,5555556E-006"))
    assert len(read_mpt(p)) == 3


def test_mpt_errors(tmp_path):
    bad = tmp_path / "x.mpt"
    bad.write_text("hello there, not a potentiostat file at all\n", encoding="latin-1")
    with pytest.raises(IngestError, match="not a BioLogic"):
        read_mpt(bad)
    bad.write_text("EC-Lab ASCII FILE\nno count here\n\n\n\n\n\n", encoding="latin-1")
    with pytest.raises(IngestError, match="Nb header lines"):
        read_mpt(bad)
    bad.write_text("EC-Lab ASCII FILE\nNb header lines : 3\n\nmode\tEwe/V\n1\t0.5\n", encoding="latin-1")
    with pytest.raises(IngestError, match="not a tab-separated header|no time column"):
        read_mpt(bad)
    with pytest.raises(IngestError, match="cannot read"):
        read_potentiostat(tmp_path / "missing.mpt")
    (tmp_path / "junk.mpr").write_bytes(b"\0" * 100)
    with pytest.raises(IngestError, match="not a readable EC-Lab .mpr"):
        read_potentiostat(tmp_path / "junk.mpr")


def test_csv_named_columns_units_and_conventions(tmp_path):
    p = tmp_path / "pot.csv"
    t = np.arange(0.0, 10.0, 0.5)
    cur = np.where(t <= 5, 100.0, -50.0)  # mA, the mean over the interval ending at each row
    lines = ["# a potentiostat log; start = 2026-01-02T03:04:05+00:00", "time_s,current_mA,voltage_V"]
    lines += [f"{a},{b},{1.0 + b / 1e3}" for a, b in zip(t, cur)]
    p.write_text("\n".join(lines) + "\n")
    df = read_potentiostat(p)
    assert df.attrs["format"] == "csv" and df.attrs["start"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    np.testing.assert_allclose(df["I_A"][1:], cur[1:] / 1e3)
    assert df["Q_C"].iloc[-1] == pytest.approx(0.1 * 5.0 - 0.05 * 4.5, rel=1e-12)
    assert "Q_instrument_C" not in df
    # '# current: sample': readings held until the next row
    p.write_text("# current: sample\ntime_min,I_A\n0,1\n1,1\n2,-1\n3,-1\n")
    s = read_potentiostat(p)
    np.testing.assert_allclose(s["t_s"], [0, 60, 120, 180])
    np.testing.assert_allclose(s["Q_C"], [0, 60, 120, 60])
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(IngestError, match="missing column 'time_s'"):
        read_potentiostat_csv(tmp_path / "bad.csv")
    with pytest.raises(IngestError, match="unknown potentiostat format"):
        (tmp_path / "x.dat").write_text("1")
        read_potentiostat(tmp_path / "x.dat")


def test_right_hand_rule_is_exact_for_interval_means():
    # +1 A on (0, 10], -0.5 A on (10, 14]: rows carry the mean of the interval ending at them
    t = np.array([0.0, 3.0, 10.0, 12.0, 14.0])
    current = np.array([0.0, 1.0, 1.0, -0.5, -0.5])
    np.testing.assert_allclose(coulomb_count(t, current), [0.0, 3.0, 10.0, 9.0, 8.0], atol=1e-14)
    assert charge_between(t, current, 1.0, 11.0) == pytest.approx(9.0 - 0.5)  # linear between rows
    assert charge_between(t, current, -5.0, 50.0) == pytest.approx(8.0)  # clamped
    # segments: nothing counted across a label change
    seg = [0, 0, 0, 1, 1]
    np.testing.assert_allclose(coulomb_count(t, current, segments=seg), [0.0, 3.0, 10.0, 10.0, 9.0])
    assert charge_between(t, current, 0.0, 14.0, segments=seg) == pytest.approx(9.0)
    assert charge_throughput(t, current) == pytest.approx(12.0)
    with pytest.raises(ValueError):
        coulomb_count([0.0, 2.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="method"):
        coulomb_count(t, current, method="hold")


def test_coulomb_soc_constant_current_exact():
    # docs/physics.md §1.1: SOC(t) = SOC0 + I t / (2 F C V) exactly for constant current
    t = np.linspace(0.0, 3600.0, 37)
    current = np.full_like(t, 0.05)
    soc = coulomb_soc(t, current, C_tot_M=0.1, volume_L=0.01, soc0=0.1)
    np.testing.assert_allclose(soc, 0.1 + 0.05 * t / (2 * FARADAY * 0.1 * 0.01), rtol=1e-13, atol=1e-15)
    soc_m = coulomb_soc(t, current, C_tot_M=0.1, volume_L=0.01, soc0=0.9, sign=-1)
    np.testing.assert_allclose(soc_m, 0.9 - 0.05 * t / (2 * FARADAY * 0.1 * 0.01), rtol=1e-13)
    with pytest.raises(ValueError):
        coulomb_soc(t, current, C_tot_M=0.0, volume_L=0.01)


@pytest.mark.parametrize("content", [None, b"EC-Lab ASCII FILE\ngarbage, no header count\n\n\n\n\n\n\n"])
def test_fit_with_missing_or_unreadable_log_is_exit_3_naming_it(tmp_path, capsys, content):
    """Loud, and before any spectrum is processed: never a silent zero current."""
    from pathlib import Path

    from flowcell.cli import EXIT_INPUT, main
    demo = Path(__file__).resolve().parents[1] / "flowcell" / "data" / "demo_experiment.toml"
    text = demo.read_text(encoding="utf-8").replace('potentiostat = "potentiostat.csv"',
                                                    'potentiostat = "run42.mpt"')
    assert "run42.mpt" in text
    (tmp_path / "experiment.toml").write_text(text, encoding="utf-8")
    (tmp_path / "nmr").mkdir()
    if content is not None:
        (tmp_path / "run42.mpt").write_bytes(content)
    assert main(["fit", str(tmp_path), "--no-intervals"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "run42.mpt" in err and ("no such file" in err or "Nb header lines" in err)


def test_malformed_lines_are_skipped_not_shifted(tmp_path):
    """A line with a field missing next to one with a field too many must not realign into a row."""
    rows = ["0,0\t10,0\t500,0\t0,0", "1,0\t10,0\t501,0", "2,0\t10,0\t502,0\t5,5555556E-006\t9", "3,0\t10,0\t503,0\t8,3333333E-006",
            "4,0\tx\t504,0\t1,1111111E-005"]
    p = tmp_path / "bad_lines.mpt"
    p.write_bytes(_mpt(rows))
    df = read_mpt(p)
    np.testing.assert_allclose(df["t_s"], [0.0, 3.0])
    assert "3 malformed data line(s) skipped" in df.attrs["warnings"]
    assert df["Q_C"].iloc[-1] == pytest.approx(3e-5)
