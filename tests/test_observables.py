"""Tests of ingest.processing.observables: config parsing, the row contract, phase reuse, EPR delegation."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from ingest.processing import nmr as npc
from ingest.processing.observables import Extractor, ObservablesConfig, extract_nmr
from ingest.types import IngestError, NMRMeta, NMRSpectrum

SF, SW, CAR, TD = 400.13e6, 8000.0, 4.7, 16384
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
# hdo + the three (placeholder) DHAQ windows of the default config + methanol
LINES = [(4.79, 5.0, 1.5), (7.48, 1.0, 3.0), (7.00, 1.0, 3.0), (7.72, 1.0, 3.0), (3.34, 0.3, 1.0)]
PEAK_COLS = ("shift_ppm", "shift_err_ppm", "fwhm_Hz", "fwhm_err_Hz", "area", "area_err")


def make_spec(lines=LINES, phase_deg=30.0, seed=0, start=T0, row=None, temperature=298.15) -> NMRSpectrum:
    fid = npc.simulate_fid(lines, td=TD, sw_hz=SW, sfo1_hz=SF, carrier_ppm=CAR, phase_deg=phase_deg,
                           noise_sd=2e-3, seed=seed)
    meta = NMRMeta(path=Path(f"/sim/{seed}"), vendor="bruker", nucleus="1H", sfo1_hz=SF, bf1_hz=SF, sw_hz=SW,
                   carrier_ppm=CAR, td=TD, ns=16, temperature_K=temperature, start=start,
                   end=None if start is None else start + timedelta(seconds=60), row=row)
    return NMRSpectrum(fid=fid, meta=meta)


def test_default_config_shape():
    cfg = ObservablesConfig.default()
    names = [p.name for p in cfg.nmr.peaks]
    assert names[:4] == ["hdo", "dhaq_h1", "dhaq_h3", "dhaq_h4"]
    assert {"anthrone", "anthranol", "acetone", "methanol", "formamide"} <= set(names)
    assert cfg.nmr.peak("hdo").window_ppm == (4.19, 5.39)  # 4.79 +- 0.6 (line table)
    assert cfg.nmr.follow == "hdo" and cfg.nmr.follow_ppm == 4.79
    assert {"dhaq4_h1", "dhaq4_h3", "dhaq4_h4"} <= set(names)  # reduced-form windows (k2 fits)
    assert cfg.nmr.lb_hz == 0.5 and cfg.nmr.zero_fill == 2
    assert cfg.nmr.processing_reference() == {"external": 0.0}  # water shift is not self-referenced
    assert cfg.epr.baseline_fraction == 0.1
    assert "PLACEHOLDER" in cfg.nmr.peak("dhaq_h1").note


def test_toml_errors_name_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[nmr]\nlb_hz = 0.5\n[[nmr.peaks]]\nname = "hdo"\nwindow_ppm = [4.2]\n')
    with pytest.raises(IngestError, match=r"bad\.toml.*window_ppm"):
        ObservablesConfig.from_toml(bad)
    bad.write_text('[nmr]\nlbhz = 0.5\n')
    with pytest.raises(IngestError, match="lbhz"):
        ObservablesConfig.from_toml(bad)
    bad.write_text('[nmr]\nreference = { peak = "nope", ppm = 4.79 }\n[[nmr.peaks]]\nname="hdo"\nwindow_ppm=[4,5]\n')
    with pytest.raises(IngestError, match="nope"):
        ObservablesConfig.from_toml(bad)
    bad.write_text("[nmr\n")
    with pytest.raises(IngestError, match="TOML"):
        ObservablesConfig.from_toml(bad)
    with pytest.raises(IngestError, match="not found"):
        ObservablesConfig.from_toml(tmp_path / "missing.toml")


def test_row_columns_and_values():
    cfg = ObservablesConfig.default()
    row = extract_nmr(make_spec(), cfg)
    common = ["kind", "source", "row", "time_start", "time_end", "time_mid", "temperature_K", "format",
              "sfo1_MHz", "ns"]
    for c in common:
        assert c in row
    for p in cfg.nmr.peaks:
        for suffix in PEAK_COLS:
            assert f"{p.name}_{suffix}" in row
    assert row["kind"] == "nmr" and row["format"] == "bruker" and row["row"] == -1 and row["ns"] == 16
    assert row["sfo1_MHz"] == pytest.approx(400.13)
    assert row["time_mid"] == pd.Timestamp("2026-01-01T12:00:30Z") and str(row["time_start"].tz) == "UTC"
    # values: known lines recovered (lb 0.5 Hz adds to the width; areas = amplitudes)
    for name, (c, a, w) in zip(["hdo", "dhaq_h1", "dhaq_h3", "dhaq_h4", "methanol"], LINES):
        assert row[f"{name}_shift_ppm"] == pytest.approx(c, abs=1e-3), name
        assert row[f"{name}_fwhm_Hz"] == pytest.approx(w + 0.5, rel=0.05), name
        assert row[f"{name}_area"] == pytest.approx(a, rel=0.03), name
    assert "gd=" in row["processing"] and "lb=0.5Hz" in row["processing"]
    # optional windows without a peak: no warning; a missing required peak is reported
    assert "anthrone" not in row["nmr_warnings"]


def test_missing_required_peak_is_reported():
    row = extract_nmr(make_spec(lines=LINES[:1]))
    assert "dhaq_h1: no peak above noise" in row["nmr_warnings"]
    assert math.isnan(row["dhaq_h1_shift_ppm"])


def test_extractor_phases_once_and_reuses():
    ex = Extractor()
    assert ex.phase is None
    r1 = ex(make_spec(seed=1, phase_deg=30.0))
    p = ex.phase
    assert p is not None and abs(((p[0] + 30.0) + 180) % 360 - 180) < 1.5
    assert "(auto)" in r1["processing"]
    r2 = ex(make_spec(seed=2, phase_deg=30.0, start=T0 + timedelta(minutes=5), row=3))
    assert ex.phase == p and "(auto)" not in r2["processing"]
    assert r2["row"] == 3 and r2["hdo_area"] == pytest.approx(5.0, rel=0.03)
    ex.reset_phase()
    assert ex.phase is None


def test_naive_and_missing_times():
    row = extract_nmr(make_spec(start=datetime(2026, 1, 1, 12, 0)))
    assert str(row["time_start"].tz) == "UTC"
    row = extract_nmr(make_spec(start=None, temperature=None))
    assert row["time_mid"] is pd.NaT and math.isnan(row["temperature_K"])


def test_reference_to_water_pins_hdo(tmp_path):
    # Referencing to the water peak makes hdo_shift_ppm constant by construction (docs/physics.md §1.3).
    cfg_path = tmp_path / "ref.toml"
    cfg_path.write_text('[nmr]\nreference = { peak = "hdo", ppm = 4.80 }\n'
                        '[[nmr.peaks]]\nname = "hdo"\nwindow_ppm = [4.2, 5.4]\n'
                        '[[nmr.peaks]]\nname = "dhaq_h1"\nwindow_ppm = [7.35, 7.6]\n')
    cfg = ObservablesConfig.from_toml(cfg_path)
    row = extract_nmr(make_spec(), cfg)
    assert row["hdo_shift_ppm"] == pytest.approx(4.80, abs=3e-4)
    assert row["dhaq_h1_shift_ppm"] == pytest.approx(7.49, abs=1e-3)  # moved with it
    assert list(k for k in row if k.endswith("_area")) == ["hdo_area", "dhaq_h1_area"]


def test_epr_rows_are_delegated(shared_data):
    from ingest.readers.dispatch import read

    spec = read(shared_data / "epr" / "bes3t-BDPA-1DFieldSweep.DSC")
    row = Extractor()(spec)
    assert row["kind"] == "epr" and row["format"] == "bes3t"
    assert {"epr_di", "epr_g", "time_mid", "source"} <= set(row)
    assert 1.99 < row["epr_g"] < 2.01  # BDPA, g = 2.0027


def test_real_bruker_row(shared_data):
    from ingest.readers.bruker import read_bruker

    row = Extractor()(read_bruker(shared_data / "nmr" / "bruker-1h-d2o" / "1"))
    # HDO in D2O: a sharp line near 4.7 ppm on the unreferenced (SR = 0) axis
    assert 4.6 < row["hdo_shift_ppm"] < 4.9 and 0.5 < row["hdo_fwhm_Hz"] < 5
    assert row["temperature_K"] == 306.0 and row["format"] == "bruker"


# ------------------------------------------------ small integral lines next to large ones
# Regression: "a spectrum containing only dhaq_h1, acetone and a small anthrone line lost 30 %
# of the anthrone area".  Causes, in order of size:
# 1. integrate_window subtracted a straight line through the medians of the outer 5 % of the
#    window; that line's noise, multiplied by the full window width, carried twice the noise
#    of the integral itself (sd 35 % of the area at SNR 12, 18 % at SNR 22; seed 4 below:
#    -29 % at SNR 25) and was missing from area_err.  Integral windows now integrate the
#    globally baseline-corrected spectrum (PeakSpec.baseline 'auto' -> 'none').
# 2. the global baseline's signal-free point selection: every 3-sigma noise excursion was
#    widened into an n/200-point hole (25-35 % of the spectrum masked at random), and the
#    fixed widening let the 1/d^2 wings of the water and aromatic lines (half an SNR-50
#    line's area inside this window) into the cubic fit, so masking the small line moved
#    the cubic under it (-3 % mean, -6.5 % worst at SNR 10).  Now: hysteresis detection and
#    a widening proportional to each line's own extent (ingest.processing.nmr._signal_mask).
#
# The test isolates what processing does to the small line: the same noise realisation is
# processed with and without the anthrone line, so the (irreducible) noise of the 0.4 ppm
# window cancels in the difference.  Truth: the Lorentzian fraction inside [3.7, 4.1] ppm,
# (1/pi)(arctan((4.1-c)/g) + arctan((c-3.7)/g)), g = HWHM (98.7 %).  What remains is the
# response of the global cubic to masking the line: over 16 seeds mean +0.5 %, -0.2 %, -0.1 %
# and sd 2.5 %, 1.5 %, 0.6 % at SNR 10, 25, 50.  Tolerances ~2.5 sd: 6 %, 4 %, 2 %.
# Before the fix the worst deviations over these 4 seeds were 70 %, 29 %, 15 %.
SIM_SF, SIM_SW, SIM_CAR, SIM_TD = 400.13e6, 6410.0, 4.70, 16384  # flowcell.simulate.simulator.NMRSettings
BIG_LINES = [(7.475, 2000.0, 3.0), (2.225, 120.0, 2.0), (4.79, 1000.0, 1.5)]  # dhaq_h1, acetone, hdo
SIM_NOISE = 1.1  # FID noise sd: HDO height / spectrum noise ~ 2e4 (the simulator's 0.1 M HDO)


@pytest.mark.parametrize("snr, tol", [(10, 0.06), (25, 0.04), (50, 0.02)])
def test_small_integral_line_next_to_large_lines_keeps_its_area(snr, tol):
    meta = NMRMeta(path=Path("/sim/anthrone"), vendor="bruker", nucleus="1H", sfo1_hz=SIM_SF, bf1_hz=SIM_SF,
                   sw_hz=SIM_SW, carrier_ppm=SIM_CAR, td=SIM_TD, ns=4)
    cfg = ObservablesConfig.default()
    lb, w, c = cfg.nmr.lb_hz, 2.0, 3.9
    sigma = npc.spectrum_noise_sd(SIM_NOISE, SIM_TD, SIM_SW, lb)
    area = snr * sigma * math.pi * (w + lb) / 2  # height = snr * sigma
    g = (w + lb) / 2 / (SIM_SF * 1e-6)  # HWHM, ppm
    lo, hi = cfg.nmr.peak("anthrone").window_ppm
    frac = (math.atan((hi - c) / g) + math.atan((c - lo) / g)) / math.pi
    kw = dict(td=SIM_TD, sw_hz=SIM_SW, sfo1_hz=SIM_SF, carrier_ppm=SIM_CAR)
    big = npc.simulate_fid(BIG_LINES, **kw)
    small = npc.simulate_fid([(c, area, w)], **kw)
    ex = Extractor(cfg, phase=(0.0, 0.0))
    for seed in (1, 2, 3, 4):  # fixed seeds: deterministic
        noise = npc.simulate_fid([], noise_sd=SIM_NOISE, seed=seed, **kw)
        with_line = ex(NMRSpectrum(fid=big + small + noise, meta=meta))
        got_snr = ex.last_fits["anthrone"].snr
        without = ex(NMRSpectrum(fid=big + noise, meta=meta))
        assert 0.7 * snr < got_snr < 1.3 * snr  # the test runs at the SNR it claims
        dev = (with_line["anthrone_area"] - without["anthrone_area"]) / (area * frac) - 1
        assert abs(dev) < tol, (snr, seed, dev)


def test_integral_area_err_is_calibrated_next_to_large_lines():
    # The reported anthrone_area_err matches the scatter of the windowed area over 12 noise
    # realisations (SNR 25) within a factor 1.6 (chi-square with 12 samples: 95 % of ratios
    # fall in [0.6, 1.4]).  Before the fix the scatter was 2.5 x the reported error.
    meta = NMRMeta(path=Path("/sim/anthrone"), vendor="bruker", nucleus="1H", sfo1_hz=SIM_SF, bf1_hz=SIM_SF,
                   sw_hz=SIM_SW, carrier_ppm=SIM_CAR, td=SIM_TD, ns=4)
    cfg = ObservablesConfig.default()
    lb, w = cfg.nmr.lb_hz, 2.0
    area = 25 * npc.spectrum_noise_sd(SIM_NOISE, SIM_TD, SIM_SW, lb) * math.pi * (w + lb) / 2
    kw = dict(td=SIM_TD, sw_hz=SIM_SW, sfo1_hz=SIM_SF, carrier_ppm=SIM_CAR)
    clean = npc.simulate_fid(BIG_LINES + [(3.9, area, w)], **kw)
    ex = Extractor(cfg, phase=(0.0, 0.0))
    got, err = [], []
    for seed in range(12):
        row = ex(NMRSpectrum(fid=clean + npc.simulate_fid([], noise_sd=SIM_NOISE, seed=100 + seed, **kw), meta=meta))
        got.append(row["anthrone_area"])
        err.append(row["anthrone_area_err"])
    import numpy as np

    ratio = float(np.std(got, ddof=1) / np.mean(err))
    assert 1 / 1.6 < ratio < 1.6, ratio
