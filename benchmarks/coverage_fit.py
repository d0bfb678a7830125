"""Coverage of ``flowcell fit`` intervals, and how often the misfit tests catch a wrong mechanism.

Usage (from the repository root)::

    PYTHONPATH=.:tests python benchmarks/coverage_fit.py --repeats 20 [--jobs 2]

Data: ``tests/generators/inline_fit_data.py`` (imports nothing from the package: its own
ODE and observation physics, detectors in the reservoir), 1.5 h rest / charge / rest /
discharge, 0.1 M in 10 mL, 60 NMR + 60 EPR spectra, truths Kc 0.35, k_dec 3e-5 1/s,
J_e 3e-7 M/s; noise 2e-4 ppm, 2e-4 M, 4e-5 (extractor errors reported at half of it).

Two studies of ``--repeats`` noise realisations each, every fit through
``flowcell.fit.pipeline.fit_table`` at the shipped defaults (profile intervals, multi-start,
outlier rejection, bounded sigma rescaling) with the package's default mechanism
(2 H -> A + O):

* matching: the data were written with 2 H -> A + O;
* mismatched: the data were written with H -> A (2 e- from an untracked reductant).

Printed per study and parameter: how often the truth is inside the 95 % interval
(expected ~95 % when matching), and how often the residual tests reject the model
(should be ~0 % when matching and ~100 % when mismatched).  The floor: 19/20 inside
when matching; 20/20 caught when mismatched.
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

TRUTH = {"Kc": 0.35, "k_dec": 3e-5, "J_e": 3e-7}


def one(args: tuple[str, int]) -> dict:
    """Fit one realisation; returns inside flags, misfit and timing."""
    from generators.inline_fit_data import config, experiment

    from flowcell.config import ExperimentConfig
    from flowcell.fit.pipeline import fit_table
    from kinetics.fit import FitWarning

    decomposition, seed = args
    warnings.simplefilter("ignore", FitWarning)
    table, pot, _ = experiment(decomposition=decomposition, seed=1000 + seed)
    cfg = ExperimentConfig.from_dict(config())
    t0 = time.perf_counter()
    out = fit_table(table, cfg, pot, free=tuple(TRUTH), truth=TRUTH)
    tab = out.table().set_index("parameter")
    return {"inside": {k: bool(tab.loc[k, "truth_inside"]) for k in TRUTH},
            "bounded": {k: bool(np.isfinite(tab.loc[k, "ci95_lo"]) and np.isfinite(tab.loc[k, "ci95_hi"]))
                        for k in TRUTH},
            "rel_err": {k: float(tab.loc[k, "value"] / TRUTH[k] - 1) for k in TRUTH},
            "misfit": bool(out.misfit), "redchi_raw": float(out.gof.redchi), "wall": time.perf_counter() - t0,
            "reasons": out.gof.misfit_reasons}


def study(name: str, decomposition: str, n: int, jobs: int) -> None:
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        res = list(ex.map(one, [(decomposition, s) for s in range(n)]))
    wall = time.perf_counter() - t0
    caught = sum(r["misfit"] for r in res)
    print(f"\n{name}: data written with {decomposition}, fit assumes 2H->A+O; {n} repeats, "
          f"{wall:.0f} s wall ({np.median([r['wall'] for r in res]):.1f} s median per fit)")
    print(f"  {'parameter':<8}{'truth inside 95 % CI':>22}{'bounded':>10}{'median rel. error':>20}")
    for k in TRUTH:
        inside = sum(r["inside"][k] for r in res)
        bounded = sum(r["bounded"][k] for r in res)
        med = np.median([r["rel_err"][k] for r in res])
        print(f"  {k:<8}{inside:>14d}/{n} ({100 * inside / n:3.0f} %){bounded:>6d}/{n}{100 * med:>18.1f} %")
    print(f"  misfit tests reject the model: {caught}/{n} ({100 * caught / n:.0f} %); "
          f"median reduced chi2 with the extractors' sigmas {np.median([r['redchi_raw'] for r in res]):.3g}")
    keys = [x.split(":")[0].split(" at its bound")[0] for r in res for x in r["reasons"]]
    if keys:
        print("  what failed: " + ", ".join(f"{k} {keys.count(k)}x" for k in sorted(set(keys))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    study("matching mechanism", "2H->A+O", a.repeats, a.jobs)
    study("mismatched mechanism", "H->A", a.repeats, a.jobs)


if __name__ == "__main__":
    main()
