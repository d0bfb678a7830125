"""Honest fits on data the package did not write (issue 14 items 2, 3, 5).

The data come from ``tests/generators/inline_fit_data.py``, which imports nothing from
the package: its own ODE of the DHAQ anolyte (docs/physics.md §1.2, §2.1), its own Curie
water shift (§1.3), detectors in the reservoir.  Truths: Kc 0.35, k_dec 3e-5 1/s,
J_e 3e-7 M/s, with "extractor" errors of half the noise (the fit takes twice the median).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from generators.inline_fit_data import config, experiment

from flowcell.config import ConfigError, ExperimentConfig
from flowcell.fit import pipeline as fitting
from flowcell.fit.truth import read_truth
from flowcell.report import write_report
from kinetics import goodness
from kinetics.fit import FitWarning

TRUTH = {"Kc": 0.35, "k_dec": 3e-5, "J_e": 3e-7}
FREE = ("Kc", "k_dec", "J_e")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        yield


@pytest.fixture(scope="module")
def cfg():
    return ExperimentConfig.from_dict(config())


@pytest.fixture(scope="module")
def data():
    """63 NMR + 63 EPR spectra, matching mechanism (2 H -> A + O)."""
    return experiment(interval_s=86.0, seed=3)


@pytest.fixture(scope="module")
def clean(cfg, data):
    table, pot, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        return fitting.fit_table(table, cfg, pot, free=FREE, truth=TRUTH, conf_interval=False)


# ----------------------------------------------------------------------------- statistics
def test_goodness_statistics_on_known_sequences():
    """Runs test, lag-1 autocorrelation, LRT and criteria against values worked by hand."""
    alt = np.array([1.0, -1.0] * 20)  # 40 runs: as many as possible, p ~ 1
    runs, mu, p = goodness.runs_test(alt)
    assert runs == 40 and mu == pytest.approx(21.0) and p > 0.99
    step = np.r_[np.ones(20), -np.ones(20)]  # 2 runs where 21 are expected
    runs, mu, p = goodness.runs_test(step)
    assert runs == 2 and p < 1e-8
    rng = np.random.default_rng(0)
    x = np.zeros(4000)
    for i in range(1, x.size):  # AR(1), phi = 0.8
        x[i] = 0.8 * x[i - 1] + rng.normal()
    rho, p = goodness.lag1_autocorrelation(x)
    assert rho == pytest.approx(0.8, abs=0.03) and p < 1e-12
    rho, p = goodness.lag1_autocorrelation(rng.normal(size=4000))
    assert abs(rho) < 0.05 and p > 1e-3
    assert goodness.likelihood_ratio(110.0, 100.0, 1) == pytest.approx(0.0015654, rel=1e-3)
    assert goodness.likelihood_ratio(110.0, 100.0, 1, boundary=True) == pytest.approx(0.0007827, rel=1e-3)
    ic = goodness.information_criteria(100.0, 50, 3)
    assert ic["aic"] == 106.0 and ic["bic"] == pytest.approx(100 + 3 * math.log(50))
    assert ic["aicc"] == pytest.approx(106.0 + 24 / 46)
    c = goodness.check_residuals("e", "x", np.arange(40.0), 2 * step)  # a 2-sigma systematic: rejects
    assert c.failed and "sign runs" in c.failed[0]
    # the same shape at 0.2 sigma under white noise: significant but too small to matter
    small = goodness.check_residuals("e", "x", np.arange(400.0), 0.2 * np.r_[np.ones(200), -np.ones(200)]
                                     + 0.05 * rng.normal(size=400))
    assert not small.failed and small.notes


# ----------------------------------------------------------------------------- honest fits
def test_matching_mechanism_is_described_and_recovered(clean):
    """Right mechanism: chi2 with the extractors' sigmas is ~ N, no residual test fails,
    nothing left out, the truths within 3 standard errors."""
    g = clean.gof
    assert clean.status == "converged" and not clean.misfit, g.misfit_reasons
    assert 0.6 < g.redchi < 1.6
    assert not clean.result.excluded
    for n, v in TRUTH.items():
        assert abs(clean.result.values[n] - v) < 3 * clean.result.stderr[n], n


def test_one_glitch_cannot_move_a_constant(cfg, data, clean):
    """One +0.05 ppm glitch in 1 of 63 water shifts: left out and counted; Kc stays inside
    the clean fit's 95 % interval and the water-shift sigma is not inflated."""
    table, pot, _ = data
    bad = table.copy()
    i = int(np.flatnonzero(bad["kind"].eq("nmr"))[30])
    bad.loc[i, "hdo_shift_ppm"] += 0.05
    assert int(bad["kind"].eq("nmr").sum()) == 63
    out = fitting.fit_table(bad, cfg, pot, free=FREE, truth=TRUTH, conf_interval=False)
    ex = out.result.excluded
    assert len(ex) == 1 and ex[0]["column"] == "hdo_shift_ppm"
    assert ex[0]["value"] == pytest.approx(bad.loc[i, "hdo_shift_ppm"])
    kc, se = clean.result.values["Kc"], clean.result.stderr["Kc"]
    assert abs(out.result.values["Kc"] - kc) < 1.96 * se
    assert out.gof.rescale["experiment:hdo_shift_ppm"] < 1.5
    assert not out.misfit


def test_wrong_mechanism_is_rejected_not_converged(cfg):
    """Data with H -> A (2 e- from outside), fit assuming 2 H -> A + O: the residual tests
    fail, the status says so (the CLI exits 4), the rescaling stays within its bound."""
    table, pot, _ = experiment(decomposition="H->A", seed=5)
    out = fitting.fit_table(table, cfg, pot, free=FREE, conf_interval=False)
    assert out.misfit and out.status == "MODEL REJECTED by its residuals"
    assert any("hdo_shift_ppm" in r for r in out.gof.misfit_reasons)
    assert max(out.gof.rescale.values()) <= fitting.SIGMA_RESCALE_MAX
    assert out.gof.redchi > 10


def test_far_start_reaches_the_truth(cfg, data):
    """Kc started at 1e-3 (truth 0.35), k_dec at 1e-3: the multi-start fit finds the truth."""
    table, pot, _ = data
    fd = fitting.prepare_fit_data(table, cfg, pot)
    model = fitting._default_model(cfg)
    g = fitting.fit_group({"e": fd}, model=model, free=FREE, conf_interval=False, rescale_sigma=False,
                          start={"e": {"Kc": 1e-3, "k_dec": 1e-3, "J_e": 1e-10}})
    assert g.result.values["Kc"] == pytest.approx(0.35, rel=0.01)
    assert g.result.values["k_dec"] == pytest.approx(3e-5, rel=0.05)


def test_profile_finding_a_lower_chi2_refits_from_there():
    """A main fit stopped early (max_nfev): the profiles meet a lower chi2 and the fit restarts
    from there, ending at the full fit's minimum."""
    from kinetics import library
    from kinetics.fit import Experiment, fit
    from kinetics.observe import ObservationModel

    model = library.dhaq().compile()
    obs = ObservationModel(regime="slow")
    t = np.linspace(0, 4 * 3600.0, 40)
    cur = (np.array([0.0, 5400.0]), np.array([0.02, 0.0]))
    p = dict(model.defaults, Kc=0.2, k_dec=2e-5)
    sim = model.simulate(t, params={k: v for k, v in p.items() if k in model.param_names}, y0={"O": 0.1},
                         current_A=cur, volume_L=0.01)
    pred = obs.predict(sim, p)
    rng = np.random.default_rng(1)
    sig = {"hdo_shift_ppm": 5e-4, "anthrone_area": 5e-5}
    d = pd.DataFrame({"t_s": t, **{c: pred[c] + rng.normal(0, s, t.size) for c, s in sig.items()}})
    e = Experiment("x", d, sig, current_A=cur, volume_L=0.01, y0={"O": 0.1})
    full = fit(model, e, ["Kc", "k_dec"], obs=obs, start={"Kc": 0.05, "k_dec": 5e-6}, conf_interval=False,
               multistart=0)
    short = fit(model, e, ["Kc", "k_dec"], obs=obs, start={"Kc": 0.05, "k_dec": 5e-6}, max_nfev=4,
                multistart=0, profile_steps=6)
    assert short.refits >= 1
    assert short.chi2 <= full.chi2 * (1 + 1e-3) + 1e-6
    assert short.values["Kc"] == pytest.approx(full.values["Kc"], rel=1e-2)


# ----------------------------------------------------------------------------- bad input, plainly
def test_too_few_points_is_a_plain_message(cfg, data):
    table, pot, _ = data
    few = table[table["kind"].eq("nmr")].head(2)
    with pytest.raises(ValueError, match="too few data points"):
        fitting.fit_table(few, cfg, pot, free=FREE, conf_interval=False)


def test_non_finite_current_names_the_log(cfg, data):
    table, pot, _ = data
    bad = pot.copy()
    bad.loc[7, "I_A"] = np.inf
    with pytest.raises(ValueError, match=r"1 non-finite current value\(s\), first at row 7"):
        fitting.prepare_fit_data(table, cfg, bad)


def test_every_dropped_row_is_counted(cfg, data):
    """EPR rows without a time, rows before the log's start: counted by kind and reason."""
    table, pot, _ = data
    t = table.copy()
    epr = np.flatnonzero(t["kind"].eq("epr"))[:3]
    t.loc[epr, "time_mid"] = pd.NaT
    early = np.flatnonzero(t["kind"].eq("nmr"))[:1]
    t.loc[early, "time_mid"] = t.loc[early, "time_mid"] - pd.Timedelta(hours=1)
    fd = fitting.prepare_fit_data(t, cfg, pot)
    assert fd.dropped == {"epr: no time": 3, "nmr: before the potentiostat start": 1}
    assert "3 EPR row(s) dropped: no time" in fd.notes
    assert len(fd.data) == len(table) - 4


def test_clock_offsets_from_the_experiment_file(cfg, data):
    """NMR clock 40 s fast: with nmr_clock_offset_s = 40 the times are those of a true clock;
    rows the watcher already corrected (clock_offset_s column) are not shifted twice."""
    table, pot, _ = data
    ref = fitting.prepare_fit_data(table, cfg, pot)
    fast = table.copy()
    nmr = fast["kind"].eq("nmr")
    fast.loc[nmr, "time_mid"] = fast.loc[nmr, "time_mid"] + pd.Timedelta(seconds=40)
    c40 = replace(cfg, instruments=replace(cfg.instruments, nmr_clock_offset_s=40.0))
    fd = fitting.prepare_fit_data(fast, c40, pot)
    np.testing.assert_allclose(fd.data["t_s"], ref.data["t_s"], atol=1e-6)
    done = table.copy()
    done["clock_offset_s"] = 0.0
    fd2 = fitting.prepare_fit_data(done, c40, pot)
    np.testing.assert_allclose(fd2.data["t_s"], ref.data["t_s"], atol=1e-6)


def test_reservoir_detectors(cfg, data):
    """[flow] detectors = "reservoir": no transit delay, the tank observed (no outlet lead)."""
    table, pot, _ = data
    fd = fitting.prepare_fit_data(table, cfg, pot)
    assert fd.flow_L_s is None
    t0 = (table["time_mid"] - pot.attrs["start"]).dt.total_seconds().sort_values().to_numpy()
    np.testing.assert_allclose(fd.data["t_s"], t0, atol=1e-6)
    with pytest.raises(ConfigError, match="detectors"):
        ExperimentConfig.from_dict({**config(), "flow": {"detectors": "tank"}})


def test_truth_csv_series_written_and_report_in_natural_units(tmp_path, clean, data):
    """--truth accepts a plain CSV series; the fitted SOC and concentrations are written and
    compared; fit.json keeps its parameters list; tables in natural units."""
    _, pot, series = data
    csv = tmp_path / "truth.csv"
    series.assign(A_mM=series["A_M"] * 1e3).drop(columns=["A_M"]).to_csv(csv, index=False)
    tr = read_truth(csv, start=pot.attrs["start"])
    assert tr.params is None and {"t_s", "soc", "O_M", "A_M"} <= set(tr.series.columns)
    assert tr.series["A_M"].to_numpy() == pytest.approx(series["A_M"].to_numpy(), rel=1e-12, abs=1e-15)
    (tmp_path / "p.json").write_text(json.dumps({"params": TRUTH}))
    assert read_truth(tmp_path / "p.json").params == TRUTH
    rep = write_report(tmp_path / "out", clean, title="t", truth_series=tr.series)
    fitted = pd.read_csv(tmp_path / "out" / "fit_series.csv")
    assert {"t_s", "soc", "O_M", "R_M", "H_M", "A_M", "hdo_shift_ppm"} <= set(fitted.columns)
    js = json.loads((tmp_path / "out" / "fit.json").read_text())
    rows = {r["parameter"]: r for r in js["parameters"]}
    assert {"value", "ci95_lo", "ci95_hi", "flags"} <= set(rows["Kc"])
    cmp = {r["column"]: r for r in js["truth_series"]}
    for c in ("O_M", "R_M", "H_M", "A_M"):  # fitted tank concentrations vs the truth: < 20 uM
        assert cmp[c]["rms"] < 2e-5, (c, cmp[c])
    assert "soc" in cmp  # compared (the generator's SOC is relative to C_act, the package's to C_tot)
    text = rep.read_text()
    assert "(log10)" not in text and "Goodness of fit" in text and "| Kc |" in text
    assert "before any rescaling" in text


def test_fit_plot_is_a_labelled_grid(tmp_path, clean):
    fig = clean.result.plot()
    labels = [a.get_ylabel() for a in fig.axes]
    assert "HDO shift (ppm)" in labels and "EPR [R] (mM)" in labels and "anthrone (mM)" in labels
    assert labels.count("resid./σ") == 3
    w, h = fig.get_size_inches()
    assert w / h < 4  # a grid, not a strip
