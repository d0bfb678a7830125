"""Noise estimate and warm-started robust baseline of the live NMR path (issue 13), per spectrum.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_baseline_noise.py [--spectra 40] [--n 131072]

A charging series of ``--n``-point real spectra (DHAQ-like lines, the water line, a drifting
cubic baseline, white noise; written here with plain numpy) goes through what
``SeriesPlan.process`` runs per spectrum: :func:`noise_sigma`, then the robust baseline started
from the previous spectrum's converged mask.  Thread CPU time, medians over the series, the
variants interleaved spectrum by spectrum:

* ``noise_sigma`` against its reference, the same formula with ``np.median`` (ratio);
* the warm baseline with the numpy kernels (``FLOWCELL_NUMBA=0``, or numba not loaded) and with
  the compiled ones (:mod:`ingest.processing.baseline_nb`, what the watcher loads), with their
  ratio; both give the same numbers (checked here too).
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
import math
import os
import time

import numpy as np

from ingest.processing import baseline_nb
from ingest.processing.nmr_baseline import baseline, noise_sigma


def _series(n: int, count: int, seed: int = 4) -> tuple[np.ndarray, list[np.ndarray]]:
    """ppm axis (12 .. -2) and ``count`` spectra: O-form lines shrink, H-form lines grow."""
    rng = np.random.default_rng(seed)
    ppm = np.linspace(12.0, -2.0, n)
    out = []
    for k in range(count):
        x = k / max(1, count - 1)
        y = 0.3 + (0.05 + 0.01 * x) * ppm - 0.004 * ppm**2 + 2e-4 * ppm**3
        for c, hw, a in ((4.79 + 0.01 * x, 0.01, 200.0), (7.45, 0.004, 3.0 - 1.5 * x), (7.05, 0.004, 3.0 - 1.5 * x),
                         (6.55, 0.005, 0.2 + 1.5 * x), (6.25, 0.005, 0.2 + 1.5 * x), (3.34, 0.003, 0.5)):
            y += a * hw * hw / ((ppm - c) ** 2 + hw * hw)
        out.append(y + rng.normal(0.0, 0.01, n))
    return ppm, out


def _reference_noise(y: np.ndarray, lag: int = 16) -> float:
    d = y[lag:] - y[:-lag]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def _cpu(f, *a, **k):
    t = time.thread_time()
    r = f(*a, **k)
    return time.thread_time() - t, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spectra", type=int, default=40, help="spectra in the series (default 40)")
    ap.add_argument("--n", type=int, default=131072, help="points per spectrum (default 131072)")
    args = ap.parse_args()
    ppm, series = _series(args.n, args.spectra + 1)
    compiled = baseline_nb.load_kernels() is not None and baseline_nb.warm_up()
    kern = baseline_nb.kernels
    states = {"numpy": {}, "compiled": {}}
    t = {"noise_sigma": [], "np.median formula": [], "numpy": [], "compiled": []}
    for i, y in enumerate(series):
        dt, s = _cpu(noise_sigma, y)
        dr, s_ref = _cpu(_reference_noise, y)
        assert s == s_ref, (s, s_ref)
        bls = {}
        for name in (("numpy", "compiled") if i % 2 else ("compiled", "numpy")) if compiled else ("numpy",):
            baseline_nb.kernels = (lambda: None) if name == "numpy" else kern
            db, bls[name] = _cpu(baseline, ppm, y, order=3, noise=s, _state=states[name])
            if i:  # the first spectrum starts cold (the plan's first spectrum)
                t[name].append(db)
        baseline_nb.kernels = kern
        if compiled:
            assert np.array_equal(bls["numpy"], bls["compiled"])
        if i:
            t["noise_sigma"].append(dt)
            t["np.median formula"].append(dr)
    ms = {k: 1e3 * float(np.median(v)) for k, v in t.items() if v}
    print(f"{args.spectra} spectra of {args.n} points, thread CPU medians (load average {os.getloadavg()[0]:.2f})")
    print(f"  noise_sigma                {ms['noise_sigma']:6.2f} ms   "
          f"({ms['noise_sigma'] / ms['np.median formula']:.2f} x the np.median formula, {ms['np.median formula']:.2f} ms)")
    print(f"  warm baseline, numpy       {ms['numpy']:6.2f} ms")
    if compiled:
        print(f"  warm baseline, compiled    {ms['compiled']:6.2f} ms   ({ms['compiled'] / ms['numpy']:.2f} x numpy; "
              "same baselines)")
    else:
        print("  warm baseline, compiled    (numba not installed or FLOWCELL_NUMBA=0)")


if __name__ == "__main__":
    main()
