"""Calibration of the observables windows (issue 12): find, assign, window, follow, warn.

Synthetic spectra come from tests/nmr_lines_gen.py (numpy only): first-order multiplets with
known positions, so every assignment and every followed position is checked against the truth.
The real spectra (the shared instrument files, conftest.shared_data) carry no quinone: there the picked lines are checked against
the same picker run on TopSpin's own processed spectrum, and nothing may be assigned to a
quinone that is not there.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import nmr_lines_gen as G
import numpy as np
import pytest

from ingest.processing.calibrate import calibrate
from ingest.processing.observables import Extractor, ObservablesConfig
from ingest.processing.observables_toml import to_toml, write_observables
from ingest.processing.picking import group_multiplets, pick_peaks
from ingest.types import NMRMeta, NMRSpectrum

NAMES = ["hdo", "dhaq_h1", "dhaq_h3", "dhaq_h4", "methanol"]


def _spec(lines, seed: int = 1, noise: float = 0.02) -> NMRSpectrum:
    meta = NMRMeta(path=Path(f"/synthetic/{seed}"), vendor="spinsolve", nucleus="1H", sfo1_hz=G.SFO1,
                   bf1_hz=G.SFO1, sw_hz=G.SW, carrier_ppm=G.CARRIER, td=G.TD, ns=1)
    return NMRSpectrum(fid=G.fid(lines, noise=noise, seed=seed), meta=meta)


def _check_assigned(cal, truth: dict[str, float]) -> None:
    for name, ppm in truth.items():
        assert name in cal.assigned, (name, cal.report())
        assert cal.assigned[name].ppm == pytest.approx(ppm, abs=0.002), (name, cal.report())


# ------------------------------------------------------------------ layouts
PERMUTED = [G.DHAQ[0], (7.72, 20.0, 1.0, (2.4,), "d"), G.DHAQ[2], (7.45, 20.0, 1.0, (8.5,), "d"), G.DHAQ[4]]


@pytest.mark.parametrize("layout, truth", [
    ("table", dict(zip(NAMES, [4.79, 7.45, 7.05, 7.72, 3.34]))),
    ("all +0.25", dict(zip(NAMES, [5.04, 7.70, 7.30, 7.97, 3.59]))),          # BMS / referencing offset
    ("quinone +0.15", dict(zip(NAMES, [4.79, 7.60, 7.20, 7.87, 3.34]))),      # the placeholders are off
    ("h1<->h4", dict(zip(NAMES, [4.79, 7.72, 7.05, 7.45, 3.34]))),             # another order than the table
])
def test_calibration_assigns_shifted_and_permuted_layouts(layout, truth) -> None:
    lines = {"table": G.DHAQ, "all +0.25": G.shifted(G.DHAQ, 0.25),
             "quinone +0.15": [(p + 0.15 if p > 6 else p, *rest) for p, *rest in G.DHAQ], "h1<->h4": PERMUTED}[layout]
    cal = calibrate(_spec(lines))
    _check_assigned(cal, truth)
    assert cal.offset_ppm == pytest.approx(truth["hdo"] - 4.79, abs=0.002)
    assert not cal.unexplained, cal.report()
    # windows: centred on the measured lines, none overlapping another (bar the followed water)
    cfg = cal.config.nmr
    for name, ppm in truth.items():
        lo, hi = cfg.peak(name).window_ppm
        assert lo < ppm < hi
    wins = sorted(p.window_ppm for p in cfg.peaks if p.name != "hdo")
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(wins))
    assert cfg.follow == "hdo" and cfg.follow_ppm == pytest.approx(truth["hdo"], abs=0.002)


def test_calibration_of_another_quinone_pattern() -> None:
    """DBEAQ: ring protons plus the butyrate chains (t, quint, t of 4H), all moved by +0.1 ppm."""
    d = 0.1
    lines = [(4.79 + d, 2000.0, 2.0, (), "s"),
             (7.55 + d, 20.0, 1.0, (2.4,), "d"), (7.20 + d, 20.0, 1.0, (8.5, 2.4), "dd"),
             (7.95 + d, 20.0, 1.0, (8.5,), "d"), (4.15 + d, 40.0, 1.0, (6.5,), "t"),
             (2.05 + d, 40.0, 1.0, (6.5,), "quint"), (2.35 + d, 40.0, 1.0, (6.5,), "t")]
    cal = calibrate(_spec(lines), quinone="DBEAQ")
    names = ["hdo", "dbeaq_h1", "dbeaq_h3", "dbeaq_h4", "dbeaq_och2", "dbeaq_ch2", "dbeaq_ch2coo"]
    _check_assigned(cal, {n: ln[0] for n, ln in zip(names, lines)})
    # the same spectrum read as DHAQ: the side chains are reported, not forced into DHAQ windows
    dh = calibrate(_spec(lines), quinone="DHAQ")
    assert len(dh.unexplained) >= 3 and not any(n.startswith("dbeaq") for n in dh.assigned)


def test_reduced_forms_and_products_get_windows_moved_by_the_offset() -> None:
    cal = calibrate(_spec(G.shifted(G.DHAQ, 0.2)))
    for name, ppm in (("dhaq4_h1", 6.55), ("dhaq4_h3", 6.25), ("dhaq4_h4", 6.45), ("anthrone", 3.95)):
        lo, hi = cal.config.nmr.peak(name).window_ppm
        assert lo < ppm + 0.2 < hi, name
        assert name in cal.missing and ("appears" in cal.missing[name])


# ------------------------------------------------------------------ following and warnings
def test_drifting_series_every_line_followed() -> None:
    """Lines drift together over 0.3 ppm (BMS): each followed within 0.002 ppm, no warnings."""
    cal = calibrate(_spec(G.DHAQ, seed=1))
    ex = Extractor(cal.config)
    for k, d in enumerate(np.linspace(0.0, 0.3, 5)):
        row = ex(_spec(G.shifted(G.DHAQ, d), seed=10 + k))
        assert row["window_offset_ppm"] == pytest.approx(d, abs=0.002)
        for name, (ppm, *_rest) in zip(NAMES, G.DHAQ):
            assert row[f"{name}_shift_ppm"] == pytest.approx(ppm + d, abs=0.002), (name, d)
        assert row["nmr_warnings"] == "", row["nmr_warnings"]


SINGLETS = [(4.79, 2000.0, 2.0, (), "s"), (7.45, 20.0, 1.0, (), "s"), (7.05, 20.0, 1.0, (), "s"),
            (7.72, 20.0, 1.0, (), "s")]


def test_misassignment_warns_and_following_prevents_it() -> None:
    """The issue's case: the spectrum moved by 0.2 ppm puts H1 (7.65) in the dhaq_h4 window."""
    cfg = ObservablesConfig.default()
    still = replace(cfg, nmr=replace(cfg.nmr, follow=None))
    row = Extractor(still)(_spec(G.shifted(SINGLETS, 0.2)))
    assert row["dhaq_h4_shift_ppm"] == pytest.approx(7.65, abs=0.002)  # H1, caught by the h4 window
    assert "dhaq_h4: line at 7.65" in row["nmr_warnings"] and "another line in this window" in row["nmr_warnings"]
    # with the default following, the windows moved with the water: every line in its own window
    row = Extractor(cfg)(_spec(G.shifted(SINGLETS, 0.2)))
    for name, (ppm, *_r) in zip(NAMES, SINGLETS):
        assert row[f"{name}_shift_ppm"] == pytest.approx(ppm + 0.2, abs=0.002)
    assert "dhaq_h" not in row["nmr_warnings"], row["nmr_warnings"]


def test_sibling_area_and_same_line_warnings() -> None:
    lines = [SINGLETS[0], SINGLETS[1], SINGLETS[2], (7.72, 60.0, 1.0, (), "s")]  # h4 three times too big
    row = Extractor()(_spec(lines))
    assert "dhaq_h4: area per proton" in row["nmr_warnings"]
    cfg = ObservablesConfig.default()
    peaks = [replace(p, window_ppm=(7.40, 7.60)) if p.name == "dhaq_h4" else p for p in cfg.nmr.peaks]
    row = Extractor(replace(cfg, nmr=replace(cfg.nmr, peaks=tuple(peaks))))(_spec(SINGLETS))
    assert "dhaq_h1: same line as dhaq_h4" in row["nmr_warnings"]


# ------------------------------------------------------------------ the file and the command
def test_written_observables_read_back_identically(tmp_path) -> None:
    cal = calibrate(_spec(G.shifted(G.DHAQ, 0.1)))
    path = write_observables(cal.config, tmp_path / "obs.toml", header=cal.report())
    back = ObservablesConfig.from_toml(path)
    assert back.nmr == cal.config.nmr
    assert to_toml(back) == to_toml(cal.config)


def test_calibrate_command_writes_file_and_plot(tmp_path, shared_data) -> None:
    from flowcell.cli import main

    out, png = tmp_path / "obs.toml", tmp_path / "calib.png"
    assert main(["calibrate", str(shared_data / "nmr/bruker-1h-d2o/1"), "--quinone", "none", "-o", str(out),
                 "--plot", str(png)]) == 0
    cfg = ObservablesConfig.from_toml(out)
    assert cfg.nmr.follow == "hdo" and png.stat().st_size > 10_000
    assert sum(p.name.startswith("line_") for p in cfg.nmr.peaks) >= 3


def test_calibrate_command_rejects_bad_usage(tmp_path) -> None:
    from flowcell.cli import main

    assert main(["calibrate", "x", "--quinone", "XYZ", "-o", str(tmp_path / "o.toml")]) == 2
    assert main(["calibrate", "x", "-o", str(tmp_path / "o.txt")]) == 2


# ------------------------------------------------------------------ real spectra
def _topspin_axis(folder: Path):
    import nmrglue as ng

    dic, real = ng.bruker.read_pdata(str(folder / "pdata" / "1"), scale_data=True)
    p = dic["procs"]
    ppm = p["OFFSET"] - np.arange(p["SI"]) * p["SW_p"] / p["SF"] / p["SI"]
    return ppm + (p["SF"] - dic["acqus"]["BF1"]) / p["SF"] * 1e6, np.asarray(real, float), p["SF"] * 1e6


@pytest.mark.parametrize("expno", [3, 12, 24])
def test_real_spectra_picked_lines_match_topspin_and_nothing_is_invented(shared_data, expno) -> None:
    from ingest.readers.dispatch import read

    folder = shared_data / "nmr" / "bruker-array" / str(expno)
    spec = read(folder)
    cal = calibrate(spec, quinone=None)
    t_ppm, t_real, sf = _topspin_axis(folder)
    theirs = group_multiplets(pick_peaks(t_ppm, t_real, sfo1_hz=sf, snr_min=8.0), t_ppm, t_real, sfo1_hz=sf)
    strong = [g for g in cal.multiplets if g.snr >= 20]
    assert len(strong) >= 5
    for g in strong:
        # 0.002 ppm, widened for broad weak lines by 3x their position precision fwhm/SNR
        # (a 43 Hz line at SNR 25, on the flank of the presaturated water: 0.003 ppm)
        prec = g.fwhm_hz / (spec.meta.sfo1_hz * 1e-6) / g.snr
        d = min(abs(g.ppm - h.ppm) for h in theirs)
        assert d < 0.002 + 3 * prec, (g.ppm, d, prec)
    sharp = [g for g in strong if g.fwhm_hz / (spec.meta.sfo1_hz * 1e-6) / g.snr < 1e-3]
    assert len(sharp) >= 3 and all(min(abs(g.ppm - h.ppm) for h in theirs) < 0.002 for g in sharp)
    # presaturated water: reported, not used; every line reported as found, none assigned to a species
    assert "presaturated" in cal.missing["hdo"] and not cal.assigned
    assert len(cal.unexplained) == len(cal.multiplets)
    for quinone in ("DHAQ", "DBEAQ"):
        q = calibrate(spec, quinone=quinone)
        assert not q.assigned, q.report()
        assert all(why for why in q.missing.values())


def test_real_d2o_water_found_and_other_lines_reported(shared_data) -> None:
    from ingest.readers.dispatch import read

    cal = calibrate(read(shared_data / "nmr" / "bruker-1h-d2o" / "1"), quinone="DHAQ")
    assert cal.assigned["hdo"].ppm == pytest.approx(4.704, abs=0.002)
    assert not any(n.startswith("dhaq") for n in cal.assigned)
    assert "MISSING   dhaq_h1" in cal.report() and "unassigned line at" in cal.report()


# ------------------------------------------------------------------ the simulator's series
@pytest.fixture(scope="module")
def sim_series(tmp_path_factory):
    """A rest/charge/rest run of the package's simulator (4k-point FIDs), its truth table."""
    from datetime import datetime, timezone

    from flowcell.demo import load_demo_config
    from flowcell.simulate.protocol import Protocol, Step
    from flowcell.simulate.simulator import ExperimentSimulator, NMRSettings
    from kinetics import library

    out = tmp_path_factory.mktemp("calsim")
    sim = ExperimentSimulator(load_demo_config(), Protocol([Step("rest", 0.0, 360), Step("cc", 0.04, 1500),
                                                            Step("rest", 0.0, 600)]),
                              library.dhaq().compile(), out, params={"k_dec": 0.0, "J_e": 0.0, "eps_H": 0.0},
                              interval_s=240.0, seed=5, nmr=NMRSettings(td=4096, sw_hz=6410.0, ns=1),
                              start=datetime(2026, 1, 2, tzinfo=timezone.utc))
    tr = sim.prepare()
    sim.write()
    return tr.spectra[tr.spectra.kind == "nmr"]


def test_simulator_series_calibrated_and_followed(sim_series) -> None:
    from ingest.processing.lines import line
    from ingest.readers.dispatch import read_rows

    first = sim_series.iloc[0]
    cal = calibrate(read_rows(first["path"])[0])
    truth = {n: first[f"{n}_shift_ppm"] for n in ("hdo", "dhaq_h1", "dhaq_h3", "dhaq_h4")}
    truth |= {n: line(n).ppm + first["hdo_shift_ppm"] - line("hdo").ppm for n in ("acetone", "methanol")}
    _check_assigned(cal, truth)
    ex = Extractor(cal.config)
    moved = 0.0
    for _, r in sim_series.iterrows():
        row = ex(read_rows(r["path"])[0])
        bms = r["hdo_shift_ppm"] - line("hdo").ppm
        moved = max(moved, abs(bms))
        assert row["hdo_shift_ppm"] == pytest.approx(r["hdo_shift_ppm"], abs=0.002)
        for n in ("acetone", "methanol"):  # inert singlets ride on the BMS shift
            assert row[f"{n}_shift_ppm"] == pytest.approx(line(n).ppm + bms, abs=0.002)
        for n in ("dhaq_h1", "dhaq_h3", "dhaq_h4"):
            if r[f"{n}_fwhm_Hz"] < 20:  # observable (not exchange-broadened away)
                assert row[f"{n}_shift_ppm"] == pytest.approx(r[f"{n}_shift_ppm"], abs=0.002)
    assert moved > 0.05  # the series did move


def test_row_warnings_are_summarised_for_reports() -> None:
    from ingest.processing.assignment import summarize_warnings

    lines = summarize_warnings(["dhaq_h4: line at 7.6500 ppm is -0.070 ppm from the expected 7.7200",
                                "dhaq_h4: line at 7.6610 ppm is -0.059 ppm from the expected 7.7200; hdo: edge", ""])
    assert lines[0].startswith("NMR row warning in 2 of 3 spectra: dhaq_h4: line at 7.6500")
    assert lines[1].startswith("NMR row warning in 1 of 3 spectra: hdo: edge")
