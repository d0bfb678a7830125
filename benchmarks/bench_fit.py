"""Benchmark of kinetics.fit: wall time and coverage of the profile intervals.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_fit.py               # timing only
    PYTHONPATH=. python benchmarks/bench_fit.py --coverage 20 # + 20-repeat coverage study

Timing: a 3-parameter fit (Kc, k_dec, J_e) of a simulated 6-hour experiment
(2 h constant-current charge at 20 mA, 4 h rest; 0.1 M DHAQ in 10 mL; 73 spectra;
observables hdo_shift_ppm, epr_spin_conc_M, anthrone_area, dhaq_h1_area,
dhaq4_h1_area), with and without the profile-likelihood intervals.

Coverage: 20 noise realisations of the same experiment plus the slow-exchange
H-line width (k2 free as well); counts how often each truth falls inside its
reported 95 % profile interval (expected ≈ 19 of 20) and reports the median
relative interval width.

The end-to-end coverage of ``flowcell fit`` (the pipeline, on data the package did not
write), with a matching and a mismatched mechanism and how often the misfit tests catch
the latter, is ``benchmarks/coverage_fit.py``.
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from kinetics.fit import Experiment, FitWarning, fit
from kinetics.library import dhaq
from kinetics.observe import ObservationModel

FIXED = {"k1": 1e5, "w0_Hz": 2.0, "hdo_ref_ppm": 4.79, "kc": 1e3}
SIGMA = {
    "hdo_shift_ppm": 1e-3,
    "epr_spin_conc_M": 2e-4,
    "anthrone_area": 1e-4,
    "dhaq_h1_area": 1e-3,
    "dhaq4_h1_area": 1e-3,
}
TRUTH = {"Kc": 0.1, "k_dec": 1e-5, "J_e": 1e-7}
START = {"Kc": 0.05, "k_dec": 4e-6, "J_e": 3e-7, "k2": 1e5}
SIM = {"rtol": 1e-7, "atol": 1e-11}


def experiment(model, obs, truth, sigma, seed, n=73):
    t = np.linspace(0.0, 6 * 3600.0, n)
    current = (np.array([0.0, 7200.0]), np.array([0.02, 0.0]))
    p = dict(model.defaults, **FIXED)
    p.update(truth)
    sim = model.simulate(t, params={k: v for k, v in p.items() if k in model.param_names},
                         y0={"O": 0.1}, current_A=current, volume_L=0.01)
    pred = obs.predict(sim, p)
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"t_s": t})
    for c, s in sigma.items():
        data[c] = pred[c].to_numpy() + rng.normal(0, s, n)
    return Experiment(f"run{seed}", data, sigma, current_A=current, volume_L=0.01, y0={"O": 0.1}, fixed=FIXED)


def _one_integration(model, obs, exp, repeats: int) -> float:
    """Median wall time of one simulate + predict at the truth: the fit's floor per evaluation, s."""
    p = dict(model.defaults, **FIXED)
    p.update(TRUTH)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sim = model.simulate(exp.data["t_s"].to_numpy(), params={k: v for k, v in p.items() if k in model.param_names},
                             y0={"O": 0.1}, current_A=exp.current_A, volume_L=0.01, **SIM)
        obs.predict(sim, p)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def timing(model, obs, repeats: int = 7) -> None:
    """Fits with and without profiles, interleaved; median (spread) and the ratio to the floor.

    The floor is what the integrations alone cost: the fit's number of model integrations
    times one simulate + predict.  The ratio is the fitting machinery's overhead on top.
    """
    exp = experiment(model, obs, TRUTH, SIGMA, seed=0)
    walls: dict[bool, list[float]] = {False: [], True: []}
    nsim: dict[bool, int] = {}
    res = None
    for _ in range(repeats):
        for ci in (False, True):  # interleaved, so a change of machine load hits both alike
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FitWarning)
                r = fit(model, exp, list(TRUTH), obs=obs, start=START, conf_interval=ci, sim_kwargs=SIM)
            walls[ci].append(time.perf_counter() - t0)
            nsim[ci] = r._prob.nsim
            res = r if ci else res
    one = _one_integration(model, obs, exp, 2 * repeats + 5)
    print(f"one integration + prediction ({exp.data.shape[0]} spectra, 6 h): {1e3 * one:.2f} ms (median)")
    for ci in (False, True):
        w = np.array(walls[ci])
        floor = nsim[ci] * one
        label = "with profile intervals" if ci else "point estimate only"
        print(f"3-parameter fit (Kc, k_dec, J_e), {label}: median {np.median(w):.2f} s "
              f"(min {w.min():.2f}, max {w.max():.2f}, {repeats} interleaved repeats), "
              f"{nsim[ci]} integrations -> floor {floor:.2f} s, ratio {np.median(w) / floor:.2f}")
        print(f"RESULT | 3-parameter DHAQ fit, 6 h, {label} (median of {repeats}; min-max "
              f"{w.min():.2f}-{w.max():.2f} s) | {np.median(w):.2f} s | {nsim[ci]} integrations x "
              f"{1e3 * one:.2f} ms = {floor:.2f} s | {np.median(w) / floor:.2f}")
    print(res.report())


def coverage(model, obs, n: int) -> None:
    sigma = dict(SIGMA, dhaq4_h1_fwhm_Hz=20.0)
    truth = dict(TRUTH, k2=3e5)
    inside = {k: 0 for k in truth}
    bounded = {k: 0 for k in truth}
    widths = {k: [] for k in truth}
    t0 = time.perf_counter()
    for seed in range(n):
        exp = experiment(model, obs, truth, sigma, seed=100 + seed, n=49)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            res = fit(model, exp, list(truth), obs=obs, start=START, sim_kwargs=SIM)
        for k, v in truth.items():
            ci = res.ci95[k]
            if ci is None:
                continue
            bounded[k] += 1
            inside[k] += ci[0] < v < ci[1]
            widths[k].append((ci[1] - ci[0]) / v)
    wall = time.perf_counter() - t0
    expected = 0.95 * n
    for k in truth:
        print(f"RESULT | coverage of the 95 % profile interval, {k} ({n} simulated repeats) | "
              f"{inside[k]}/{n} | 0.95 x {n} = {expected:.0f} | {inside[k] / expected:.2f}")
    print(f"\ncoverage study: {n} repeats, 4 free parameters, profiles on, {wall:.0f} s in total")
    for k in truth:
        w = np.median(widths[k]) if widths[k] else float("nan")
        print(f"  {k:6s}: truth inside 95 % profile interval in {inside[k]}/{n} "
              f"(bounded {bounded[k]}/{n}); median interval width {100 * w:.1f} % of the truth")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coverage", type=int, default=0, help="number of repeats of the coverage study")
    ap.add_argument("--repeats", type=int, default=7, help="timing repeats (interleaved with/without profiles)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    model = dhaq().compile()
    print(f"compile (reduced DHAQ model): {time.perf_counter() - t0:.2f} s")
    obs = ObservationModel(regime="slow")
    timing(model, obs, args.repeats)
    if args.coverage:
        coverage(model, obs, args.coverage)


if __name__ == "__main__":
    main()
