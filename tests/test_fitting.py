"""The one fitting path (flowcell.fit.pipeline): single fits, group fits, experiment building.

Known truths used here: what the in-line simulator (``flowcell.simulate.simulator.ExperimentSimulator``,
its ``prepare()`` step: the chemistry and every spectrum's true observables, no files)
says each NMR and EPR spectrum shows, for known Kc and k_dec: the cell-outlet
composition (docs/physics.md §1.1 single-pass conversion, §1.2 speciation) after the transit
delay (§1.7), products at the tank's concentration.  Gaussian noise of known sigma is
added here.  So the fitted values must recover the truths within their 95 % intervals
(noise-free: to 1e-4), and the group fit's chi2 must equal the sum of the members'
residual pieces evaluated independently (any drift between the group and single paths,
in sigmas, fixed parameters, nuisance parameters or time base, breaks that equality).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowcell.fit import pipeline as fitting
from flowcell.demo import demo_protocol, load_demo_config

FREE = ("Kc", "k_dec")
#: noise of the synthetic observables (column units): ppm, mol/L, mol/L of product
NOISE = {"hdo_shift_ppm": 1e-4, "epr_spin_conc_M": 3e-4, "anthrone_area": 4e-5}
HOURS = 1.5
#: multi-start off here: the point is the group/single equivalence and recovery from the
#: demo start, and the screened starts cost about half of each fit; the default
#: (multistart=8) still runs in the screen and CLI fit tests (tests/test_screen.py, test_cli.py)
MS = 0


@pytest.fixture(scope="module")
def model():
    from kinetics import library
    return library.dhaq().compile(reduce_fast=True)


@pytest.fixture(scope="module")
def cfg():
    return load_demo_config()


def simulated(model, cfg, truth: dict, tmp_path_factory, *, interval_s: float = 120.0,
              seed: int = 0, noise: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(store table, potentiostat log) of the simulator's true observables plus noise."""
    from flowcell.simulate.simulator import ExperimentSimulator
    sim = ExperimentSimulator(cfg, demo_protocol(HOURS), model, tmp_path_factory.mktemp("sim"), params=truth,
                              interval_s=interval_s, seed=seed)
    tr = sim.prepare()
    # the potentiostat's reading: the mean current over the interval ending at each row
    t = np.asarray(tr.t_s, float)
    # (constant on each interval: the grid holds every current step)
    I_log = np.concatenate([np.asarray(tr.current_A, float)[:1],
                            np.asarray(tr.schedule(0.5 * (t[1:] + t[:-1])), float)])
    pot = pd.DataFrame({"t_s": t, "I_A": I_log})
    pot.attrs["start"] = tr.start
    sp = tr.spectra
    rng = np.random.default_rng(seed)
    nmr = (sp["kind"] == "nmr").to_numpy()
    n = len(sp)
    table = pd.DataFrame({"kind": sp["kind"], "time_mid": pd.to_datetime(sp["time_mid"], utc=True),
                          "sfo1_MHz": 400.13})
    table["hdo_shift_ppm"] = np.where(nmr, sp["hdo_shift_ppm"] + noise * rng.normal(0, NOISE["hdo_shift_ppm"], n), np.nan)
    # first-spectrum calibration: dhaq_h1 (2 H) area = 2 C_tot -> 1 area unit per mol/L of protons
    table["dhaq_h1_area"] = np.where(nmr, 2.0 * float(cfg.electrolyte.concentration_M), np.nan)
    table["anthrone_area"] = np.where(nmr, 2.0 * (sp["A_M"] + noise * rng.normal(0, NOISE["anthrone_area"], n)), np.nan)
    table["epr_spin_conc_M"] = np.where(~nmr, sp["epr_spin_conc_M"] + noise * rng.normal(0, NOISE["epr_spin_conc_M"], n),
                                        np.nan)
    return table, pot


def test_make_experiment_round_trips_the_current(cfg, model, tmp_path_factory):
    """The experiment's piecewise-constant current reproduces the logged current at every
    logged time (exactly), and carries C_tot, V_tot, sigmas and the calibration values."""
    table, pot = simulated(model, cfg, {"Kc": 0.1, "k_dec": 3e-6}, tmp_path_factory)
    fd = fitting.prepare_fit_data(table, cfg, pot, sigma=NOISE)
    e = fitting.make_experiment(fd, "a", model=model, free=FREE)
    t_seg, I_seg = e.current_A
    t_log, I_log = pot["t_s"].to_numpy(float), pot["I_A"].to_numpy(float)
    # I_log[k] is the mean over (t[k-1], t[k]] (flowcell.potentiostat's convention)
    idx = np.searchsorted(t_seg, t_log[1:], side="left") - 1
    np.testing.assert_array_equal(I_seg[idx], I_log[1:])
    assert len(t_seg) >= 4  # rest, charge, rest, discharge
    assert e.y0 == {"O": pytest.approx(0.1)} and e.volume_L == pytest.approx(0.010)
    assert e.sigma == NOISE
    assert "Kc" not in e.fixed and "k_dec" not in e.fixed
    assert e.fixed["outlet_flow_L_s"] == pytest.approx(cfg.flow.rate_mL_min / 60e3)
    assert e.fixed["hdo_ref_ppm"] == pytest.approx(fd.hdo_ref_ppm) and e.fixed["area_scale"] == 1.0
    from kinetics.observe import bms_factor
    assert e.fixed["xi"] == pytest.approx(bms_factor("parallel"))
    # another temperature of the observation model scales the BMS factor by T_ref / T (Curie law)
    e2 = fitting.make_experiment(fd, "a", model=model, free=FREE, T_ref_K=1.1 * fd.temperature_K)
    assert e2.fixed["xi"] == pytest.approx(1.1 * bms_factor("parallel"), rel=1e-12)
    # the product column is on the concentration scale: area / (area_scale n_H) with area_scale = 1
    assert fd.area_scale == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no default bounds for free parameter 'nonsense'"):
        fitting.default_bounds(["nonsense"], fd)


@pytest.fixture(scope="module")
def pair(cfg, model, tmp_path_factory):
    """Two simulated experiments sharing Kc = 0.1 with k_dec 3e-6 and 8e-6 1/s."""
    truth = {"a": {"Kc": 0.1, "k_dec": 3e-6}, "b": {"Kc": 0.1, "k_dec": 8e-6}}
    sims = {k: simulated(model, cfg, v, tmp_path_factory, seed=i) for i, (k, v) in enumerate(truth.items())}
    pot = sims["a"][1]
    return pot, truth, {k: v[0] for k, v in sims.items()}


def _chi2_by_hand(model, g: fitting.GroupOutcome) -> float:
    """Sum over members of ((model - data)/sigma)^2, each member simulated on its own."""
    from kinetics.observe import ObservationModel
    total = 0.0
    first = next(iter(g.fit_data.values()))
    obs = ObservationModel(geometry=first.geometry, T_K=first.temperature_K)  # the plain (tank) model
    for ident, fd in g.fit_data.items():
        p = dict(obs.defaults)
        p.update(g.values_for(ident))
        t = fd.data["t_s"].to_numpy(float)
        tu, inv = np.unique(t, return_inverse=True)
        grid = np.concatenate([[0.0], tu])
        e = dict(zip(g.fit_data, g.experiments))[ident]
        sim = model.simulate(grid, params={k: v for k, v in p.items() if k in model.param_names}, y0={"O": fd.c_tot_M},
                             current_A=fitting.current_table(*fd.current), volume_L=fd.volume_L)
        assert e.volume_L == fd.volume_L
        outlet = fitting.outlet_composition(sim.conc, sim.current_A, p, fd.flow_L_s)
        pred = obs.predict(outlet, p).iloc[1:].reset_index(drop=True).iloc[inv].reset_index(drop=True)
        for c, s in fd.sigma.items():
            r = (pred[c].to_numpy(float) - fd.data[c].to_numpy(float)) / s
            total += float(np.nansum(r ** 2))
    return total


def test_group_fit_recovers_shared_kc_and_chi2_matches_pieces(cfg, model, pair):
    """fit_tables on two experiments: one shared Kc (truth 0.1) inside its 95 % interval,
    per-experiment k_dec inside theirs; the group chi2 equals the members' residual
    pieces evaluated independently (rel 1e-9); nuisance parameters are per experiment."""
    pot, truth, tabs = pair
    g = fitting.fit_tables([(k, tabs[k], cfg, pot) for k in ("a", "b")], free=FREE, shared=("Kc",),
                           model=model, sigma=NOISE, truth=truth, conf_interval=True, multistart=MS)
    r = g.result
    assert set(r.values) == {"Kc", "k_dec__a", "k_dec__b", "hdo_ref_ppm__a", "hdo_ref_ppm__b",
                             "area_scale__a", "area_scale__b"}
    tab = g.table().set_index(["parameter", "experiment"])
    assert len(tab) == 3  # nuisance rows left out
    for key, row in tab.iterrows():
        assert row["ci95_lo"] <= row["truth"] <= row["ci95_hi"], (key, row.to_dict())
    kc = tab.loc[("Kc", "")]
    assert kc["value"] == pytest.approx(0.1, rel=0.05)
    assert kc["ci95_hi"] / kc["ci95_lo"] < 1.3  # informative
    assert _chi2_by_hand(model, g) == pytest.approx(r.chi2, rel=1e-9)
    # sigma rules: the synthetic noise is the given sigma, so rescaling changes little (< x1.3)
    for fd in g.fit_data.values():
        for c, s in fd.sigma.items():
            assert NOISE[c] <= s < 1.3 * NOISE[c]


def test_single_fit_is_a_one_member_group(cfg, model, pair):
    """fit_table of one experiment == the group path with one member (same values and chi2,
    plain parameter names); and with nothing shared the group fit of two members is the sum
    of the two single fits (chi2 within 1e-4 relative, values within 1e-3)."""
    pot, truth, tabs = pair
    singles = {k: fitting.fit_table(tabs[k], cfg, pot, free=FREE, model=model, sigma=NOISE, truth=truth[k],
                                    conf_interval=False, multistart=MS) for k in ("a", "b")}
    for k, s in singles.items():
        assert set(s.result.values) == {"Kc", "k_dec", "hdo_ref_ppm", "area_scale"}
        assert s.prediction is not None and {"t_s", "hdo_shift_ppm", "soc"} <= set(s.prediction.columns)
    g = fitting.fit_tables([(k, tabs[k], cfg, pot) for k in ("a", "b")], free=FREE, shared=(), model=model,
                           sigma=NOISE, conf_interval=False, multistart=MS)
    assert g.result.chi2 == pytest.approx(sum(s.result.chi2 for s in singles.values()), rel=1e-4)
    for k, s in singles.items():
        for n in ("Kc", "k_dec", "area_scale"):
            assert g.result.values[f"{n}__{k}"] == pytest.approx(s.result.values[n], rel=1e-3)
        assert g.fit_data[k].sigma == pytest.approx(s.fit_data.sigma, rel=1e-3)


def test_noise_free_simulation_recovered_exactly(cfg, model, tmp_path_factory):
    """Time base and outlet observation (docs/physics.md §1.1, §1.7): every spectrum is placed at
    the time its fluid left the cell, and observed as the outlet composition (tank + one
    pass of I/(F Q) electrons, re-speciated; products at the tank's concentration).
    Noise-free simulator truths with a fast decomposition (k_dec = 2e-5 1/s) give back
    k_dec and Kc to 1e-4 relative and chi2 ~ 0.  (The earlier time base, spectra referred to
    the tank by a V_tot/Q shift, biased k_dec by -0.26 % with chi2 = 8.8 on the noise-free
    truths of a 2 h run with k_dec = 2.13e-5 1/s: the tank has decomposed V_tot/Q longer.)"""
    truth = {"Kc": 0.1, "k_dec": 2e-5}
    table, pot = simulated(model, cfg, truth, tmp_path_factory, noise=0.0)
    fd = fitting.prepare_fit_data(table, cfg, pot, sigma=NOISE)
    nmr = table[table["kind"] == "nmr"].iloc[10]  # during the charge
    t_fluid = (nmr["time_mid"] - pot.attrs["start"]).total_seconds() - cfg.transit_delays().delay_s("nmr")
    row = fd.data[np.isclose(fd.data["hdo_shift_ppm"], nmr["hdo_shift_ppm"], rtol=0, atol=1e-12)]
    assert row["t_s"].tolist() == pytest.approx([t_fluid], abs=1e-6)
    assert row["anthrone_area"].tolist() == pytest.approx([nmr["anthrone_area"] / 2.0], rel=1e-12)
    out = fitting.fit_table(table, cfg, pot, free=FREE, model=model, sigma=NOISE, conf_interval=False,
                            rescale_sigma=False)
    assert out.result.values["k_dec"] == pytest.approx(truth["k_dec"], rel=1e-4)
    assert out.result.values["Kc"] == pytest.approx(truth["Kc"], rel=1e-4)
    assert out.result.values["area_scale"] == pytest.approx(1.0, abs=1e-4)
    assert out.result.chi2 < 1e-4


WIDTHS = ("dhaq_h1_fwhm_Hz", "dhaq_h3_fwhm_Hz", "dhaq_h4_fwhm_Hz")


def _with_widths(model, cfg, truth, tmp_path_factory, *, noise_hz: float = 0.0, seed: int = 0):
    """simulated() plus the simulator's true O-line widths (slow exchange, docs/physics.md §1.4:
    w0 + (k1 [R] + kc [H]) / pi at the cell outlet) and a fit error column."""
    from flowcell.simulate.simulator import ExperimentSimulator
    table, pot = simulated(model, cfg, truth, tmp_path_factory, seed=seed, noise=0.0)
    sim = ExperimentSimulator(cfg, demo_protocol(HOURS), model, tmp_path_factory.mktemp("simw"), params=truth,
                              interval_s=120.0, seed=seed)
    sp = sim.prepare().spectra
    nmr = (sp["kind"] == "nmr").to_numpy()
    rng = np.random.default_rng(seed + 1)
    for c in WIDTHS:
        table[c] = np.where(nmr, sp[c] + noise_hz * rng.normal(0, 1, len(sp)), np.nan)
        table[c.replace("_fwhm_Hz", "_fwhm_err_Hz")] = np.where(nmr, 0.05, np.nan)
    return table, pot, sp


def test_line_widths_recover_exchange_rates_noise_free(cfg, model, tmp_path_factory):
    """O-line widths (docs/physics.md §1.4) make k1 (k_ex of O/R) and kc measurable: on the
    simulator's noise-free widths (k1 = kc = 5e3 1/(M s), ASSUMED) the fit recovers both to
    1e-4 relative with chi2 ~ 0, i.e. the simulator and the fit use the same width formula;
    w0 is taken from the first spectrum (2.0 Hz, the observation model's default); widths
    are used up to the widest line the extractor measures (ingest.processing.widths.max_fwhm_hz
    of the dhaq_h1 window: 120 Hz at 400 MHz), the broad ones included (issue 14)."""
    truth = {"Kc": 0.1, "k_dec": 3e-6, "k1": 5e3, "kc": 5e3}
    table, pot, sp = _with_widths(model, cfg, truth, tmp_path_factory)
    fd = fitting.prepare_fit_data(table, cfg, pot, sigma=NOISE)
    assert fd.w0_Hz == pytest.approx(2.0, abs=1e-9)
    w = fd.data["dhaq_h1_fwhm_Hz"].to_numpy(float)
    from ingest.processing.widths import max_fwhm_hz
    sfo1 = float(pd.to_numeric(table["sfo1_MHz"], errors="coerce").median()) * 1e6
    cap = max_fwhm_hz(fitting.observables_config(cfg).nmr.peak("dhaq_h1").window_ppm, sfo1)
    true_w = sp.loc[sp["kind"] == "nmr", "dhaq_h1_fwhm_Hz"].to_numpy(float)
    assert np.nanmax(w) <= cap and np.isfinite(w).sum() == int(np.sum(true_w <= cap))
    assert (true_w > 20.0).sum() >= 3  # broad lines (the old 20 %-of-window cap dropped them) are used
    assert fd.sigma["dhaq_h1_fwhm_Hz"] == pytest.approx(fitting.DEFAULT_SIGMA["dhaq_h1_fwhm_Hz"])
    out = fitting.fit_table(table, cfg, pot, free=("Kc", "k_dec", "k1", "kc"), model=model, sigma=NOISE,
                            conf_interval=False, rescale_sigma=False)
    for n in ("Kc", "k_dec", "k1", "kc"):
        assert out.result.values[n] == pytest.approx(truth[n], rel=1e-4), n
    assert out.result.chi2 < 1e-4
    # without a free exchange rate the widths are not fitted at all (no misleading residuals)
    g = fitting.fit_group({"x": fitting.prepare_fit_data(table, cfg, pot, sigma=NOISE)}, model=model,
                          free=("Kc",), conf_interval=False, rescale_sigma=False)
    assert not set(WIDTHS) & set(g.fit_data["x"].sigma)


def test_line_widths_flagged_or_unfitted_rows_are_skipped(cfg, model, tmp_path_factory):
    """A width is used only with a finite positive fit error and no extractor warning for
    that peak; a peak missing everywhere adds no column."""
    truth = {"Kc": 0.1, "k_dec": 3e-6, "k1": 5e3, "kc": 5e3}
    table, pot, _ = _with_widths(model, cfg, truth, tmp_path_factory)
    nmr_idx = np.flatnonzero((table["kind"] == "nmr").to_numpy())
    table["nmr_warnings"] = ""
    # rows 2 and 3: still narrow enough to be used whatever the window (SOC < 0.1)
    table.loc[nmr_idx[2], "nmr_warnings"] = "dhaq_h1: peak at window edge"
    table.loc[nmr_idx[3], "dhaq_h3_fwhm_err_Hz"] = np.nan
    table["dhaq_h4_fwhm_Hz"] = np.nan
    fd = fitting.prepare_fit_data(table, cfg, pot, sigma=NOISE)
    t_of = lambda i: (table.loc[i, "time_mid"] - pot.attrs["start"]).total_seconds() - cfg.transit_delays().delay_s("nmr")
    r3 = fd.data[np.isclose(fd.data["t_s"], t_of(nmr_idx[2]))].iloc[0]
    r4 = fd.data[np.isclose(fd.data["t_s"], t_of(nmr_idx[3]))].iloc[0]
    assert np.isnan(r3["dhaq_h1_fwhm_Hz"]) and np.isfinite(r3["dhaq_h3_fwhm_Hz"])
    assert np.isnan(r4["dhaq_h3_fwhm_Hz"]) and np.isfinite(r4["dhaq_h1_fwhm_Hz"])
    assert "dhaq_h4_fwhm_Hz" not in fd.data and "dhaq_h4_fwhm_Hz" not in fd.sigma
