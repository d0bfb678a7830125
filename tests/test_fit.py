"""Fitting: parameter recovery with honest intervals, global fits, identifiability flags.

Data are simulated with the DHAQ library model (docs/physics.md §2.6 placeholders) and the
observation model, plus Gaussian noise of known σ; the truths are therefore known.
The 20-repeat coverage study runs in ``benchmarks/bench_fit.py --coverage 20`` (too
slow for the default suite); here one fixed-seed realisation is checked.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from kinetics import library as lib
from kinetics.fit import Experiment, FitWarning, fit
from kinetics.observe import ObservationModel

TRUTH = {"Kc": 0.1, "k_dec": 1e-5, "J_e": 1e-7, "k2": 3e5}
# kc = 1e3 1/(M s): comproportionation still equilibrates in ms at 0.1 M, but its
# lifetime broadening (kc[O]/π ≈ 10 Hz) leaves the slow-exchange lines observable.
FIXED_OBS = {"k1": 1e5, "w0_Hz": 2.0, "hdo_ref_ppm": 4.79, "kc": 1e3}
SIGMA = {
    "hdo_shift_ppm": 1e-3,  # ppm
    "epr_spin_conc_M": 2e-4,  # mol/L
    "anthrone_area": 1e-4,  # area_scale = 1: mol/L
    "dhaq_h1_area": 1e-3,
    "dhaq4_h1_area": 1e-3,
    "dhaq4_h1_fwhm_Hz": 20.0,  # Hz
}


@pytest.fixture(scope="module")
def model():
    return lib.dhaq().compile()


@pytest.fixture(scope="module")
def obs():
    return ObservationModel(regime="slow")


def make_experiment(model, obs, name, truth, *, seed, I_A=0.02, t_charge=7200.0, t_end=6 * 3600.0,
                    n=49, sigma=SIGMA, C=0.1):
    """6 h: constant-current charge, then open-circuit rest (self-discharge, decay)."""
    t = np.linspace(0.0, t_end, n)
    current = (np.array([0.0, t_charge]), np.array([I_A, 0.0]))
    p = dict(model.defaults, **FIXED_OBS)
    p.update(truth)
    sim = model.simulate(t, params={k: v for k, v in p.items() if k in model.param_names},
                         y0={"O": C}, current_A=current, volume_L=0.01)
    pred = obs.predict(sim, p)
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"t_s": t})
    for c, s in sigma.items():
        data[c] = pred[c].to_numpy() + rng.normal(0.0, s, n)
    return Experiment(name, data, dict(sigma), current_A=current, volume_L=0.01, y0={"O": C}, fixed=dict(FIXED_OBS))


START = {"Kc": 0.05, "k_dec": 4e-6, "J_e": 3e-7, "k2": 1e5}


@pytest.fixture(scope="module")
def recovery(model, obs):
    exp = make_experiment(model, obs, "exp1", TRUTH, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)  # a well-posed fit must not warn
        res = fit(model, exp, list(TRUTH), obs=obs, start=START, sim_kwargs={"rtol": 1e-7, "atol": 1e-11})
    return res


def test_recovery_within_profile_intervals(recovery):
    res = recovery
    assert res.success
    assert 0.6 < res.redchi < 1.5  # noise model is right
    for name, true in TRUTH.items():
        lo, hi = res.ci95[name]  # None would mean unbounded: must not happen here
        assert lo < true < hi, f"{name}: truth {true} outside 95 % interval [{lo}, {hi}]"
        assert lo < res.values[name] < hi
        assert res.flags[name] == []
        # not absurdly wide: relative width of the 95 % interval
        assert hi / lo < {"Kc": 1.05, "k_dec": 1.1, "J_e": 2.0, "k2": 1.1}[name], (name, lo, hi)
        # profile and covariance agree for these well-determined parameters (±25 %)
        half = 0.5 * (np.log(hi) - np.log(lo))
        assert half == pytest.approx(1.96 * res.stderr[name] / res.values[name], rel=0.25)


def test_result_report_dict_frame_plot(recovery, tmp_path):
    res = recovery
    text = res.report()
    assert "95% profile interval" in text
    for name in TRUTH:  # one line per parameter: name [(log10)], value (4 digits), ± (3 digits), interval
        m = re.search(rf"^{name}(?: \(log10\))?\s+(\S+)\s+(\S+)", text, re.M)
        assert m, (name, text)
        assert float(m.group(1)) == pytest.approx(res.values[name], rel=1e-3)
        assert float(m.group(2)) == pytest.approx(res.stderr[name], rel=5e-3)
    d = res.to_dict()
    back = json.loads(json.dumps(d))
    assert back["values"]["Kc"] == pytest.approx(res.values["Kc"])
    assert back["ci95"]["k2"][0] == pytest.approx(res.ci95["k2"][0])
    fr = res.to_frame()
    assert list(fr.index) == list(TRUTH)
    assert {"value", "stderr", "ci_lo", "ci_hi", "flags"} <= set(fr.columns)
    corr = res.correlations
    assert corr.shape == (4, 4)
    np.testing.assert_allclose(np.diag(corr.to_numpy()), 1.0)
    path = tmp_path / "fit.png"
    res.plot(path)
    assert path.stat().st_size > 10_000
    from kinetics.plots import plot_profiles

    plot_profiles(res, tmp_path / "prof.png")
    assert (tmp_path / "prof.png").stat().st_size > 5_000


def test_unidentifiable_fast_step_is_flagged():
    # full stiff model, comproportionation rate free, concentration-type data only:
    # the covariance gives a ± but the profile never closes -> flagged, ci95 None.
    full = lib.dhaq().compile(reduce_fast=False)
    obs = ObservationModel()
    sigma = {"hdo_shift_ppm": 1e-3, "epr_spin_conc_M": 2e-4}
    exp = make_experiment(full, obs, "stiff", {"Kc": 0.1, "kc": 1e8}, seed=1, t_charge=1800.0,
                          t_end=1800.0, n=13, sigma=sigma)
    with pytest.warns(FitWarning, match="unbounded"):
        res = fit(full, exp, ["kc"], obs=obs, start={"kc": 1e7},
                  sim_kwargs={"method": "BDF", "rtol": 1e-6, "atol": 1e-10}, profile_steps=8)
    assert res.ci95["kc"] is None
    assert any(f.startswith("unbounded profile") for f in res.flags["kc"])
    assert "unbounded" in res.report()


def test_reduced_fast_rate_warns(model, obs):
    # in the reduced model kc enters nothing unless a line width is observed
    sigma = {"hdo_shift_ppm": 1e-3, "epr_spin_conc_M": 2e-4}
    exp = make_experiment(model, obs, "red", {"Kc": 0.1}, seed=2, n=9, sigma=sigma)
    with pytest.warns(FitWarning, match="cannot be determined|no observed column"):
        res = fit(model, exp, ["kc"], obs=obs, conf_interval=False)
    assert "no observable depends on it" in res.flags["kc"]


def test_global_fit_shared_K_per_experiment_kdec(model, obs):
    sigma = {k: SIGMA[k] for k in ("hdo_shift_ppm", "epr_spin_conc_M", "anthrone_area", "dhaq_h1_area")}
    t1 = {"Kc": 0.1, "k_dec": 1e-5, "J_e": 1e-7}
    t2 = {"Kc": 0.1, "k_dec": 3e-5, "J_e": 1e-7}
    e1 = make_experiment(model, obs, "exp1", t1, seed=11, sigma=sigma, n=31)
    e2 = make_experiment(model, obs, "exp2", t2, seed=12, sigma=sigma, n=31, I_A=0.03, t_charge=5400.0)
    res = fit(model, [e1, e2], ["Kc", "k_dec"], obs=obs, per_experiment=["k_dec"],
              start={"Kc": 0.2, "k_dec": 1e-5}, conf_interval=False,
              sim_kwargs={"rtol": 1e-7, "atol": 1e-11})
    assert set(res.values) == {"Kc", "k_dec__exp1", "k_dec__exp2"}
    for name, true in (("Kc", 0.1), ("k_dec__exp1", 1e-5), ("k_dec__exp2", 3e-5)):
        assert abs(res.values[name] - true) < 4 * res.stderr[name], (name, res.values[name], res.stderr[name])
        assert res.values[name] == pytest.approx(true, rel=0.05)
    assert res.ci95 == {"Kc": None, "k_dec__exp1": None, "k_dec__exp2": None}  # not computed


def test_nan_rows_skipped_and_obs_only_mcmc(model, obs):
    # NMR and EPR rows interleaved: NaN where an instrument did not measure.
    sigma = {"epr_spin_conc_M": 2e-4, "dhaq4_h1_fwhm_Hz": 20.0}
    exp = make_experiment(model, obs, "nan", TRUTH, seed=5, sigma=sigma, n=40)
    exp.data.loc[::2, "epr_spin_conc_M"] = np.nan
    exp.data.loc[1::2, "dhaq4_h1_fwhm_Hz"] = np.nan
    exp = Experiment("nan", exp.data, sigma, current_A=exp.current_A, y0=exp.y0,
                     fixed=dict(FIXED_OBS, **{k: TRUTH[k] for k in ("Kc", "k_dec", "J_e")}))
    # w0 is pinned only by the few points at t ≈ 0 (σ 20 Hz) and bounded below by 0:
    # its profile reaches the bound, so it must be flagged, not given a ± interval
    with pytest.warns(FitWarning, match="w0_Hz"):
        res = fit(model, exp, {"k2": (1e4, 1e7), "w0_Hz": (0.0, 50.0)}, obs=obs, start={"k2": 1e5})
    assert "unbounded profile (low side)" in res.flags["w0_Hz"] and res.ci95["w0_Hz"] is None
    assert res.ndata == 40
    lo, hi = res.ci95["k2"]
    assert lo < TRUTH["k2"] < hi
    assert res.log10["k2"] and not res.log10["w0_Hz"]
    # observation-only parameters: one simulation serves every evaluation (cache)
    assert res._prob.nsim - 2 <= 1  # (2 = the start-up probe of which parameters move the simulation)
    summ = res.mcmc(steps=80, nwalkers=8, burn=30, seed=1)
    med, q1, q2 = summ["k2"]
    assert q1 < TRUTH["k2"] < q2
    assert med == pytest.approx(res.values["k2"], rel=0.02)


def test_input_errors(model, obs):
    data = pd.DataFrame({"t_s": [0.0, 10.0], "hdo_shift_ppm": [4.79, 4.8]})
    with pytest.raises(ValueError, match="epr_spin_conc_M"):
        Experiment("x", data, {"epr_spin_conc_M": 1e-4})
    with pytest.raises(ValueError, match="t_s"):
        Experiment("x", data.drop(columns="t_s"), {"hdo_shift_ppm": 1e-3})
    exp = Experiment("x", data, {"hdo_shift_ppm": 1e-3}, y0={"O": 0.1})
    with pytest.raises(ValueError, match="unknown parameter"):
        fit(model, exp, ["not_a_param"], obs=obs)
    with pytest.raises(ValueError, match="unique"):
        fit(model, [exp, exp], ["Kc"], obs=obs)


def test_fast_rate_measurable_through_line_width(model, obs):
    # kc is reduced to an equilibrium in the model, but the H-line lifetime broadening
    # (kc[O] + k2[R])/π makes it measurable: no warning, bounded interval with the truth.
    sigma = {"dhaq4_h1_fwhm_Hz": 5.0}
    truth = dict(TRUTH, kc=2e4)
    exp = make_experiment(model, obs, "kc", truth, seed=4, sigma=sigma, n=25)
    exp.fixed.update(truth)
    exp.fixed.pop("kc")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        res = fit(lib.dhaq(), exp, ["kc"], obs=obs, start={"kc": 5e3})  # a Network: compiled reduced here
    lo, hi = res.ci95["kc"]
    assert lo < 2e4 < hi and hi / lo < 1.5
    assert res.flags["kc"] == []
