"""Benchmark: widths of exchange-broadened lines, in-window fit vs the extended fit, and its cost.

Synthetic 1H FIDs (numpy only: HDO, acetone, methanol, the three DHAQ O lines at FWHM W and
the three reduced-form H lines at W/2, 400.13 MHz, 6410 Hz, 16k points, noise giving the
O lines a height/noise of ~2000 at 2 Hz) are processed once with the default observables
config.  For each W the script prints the FWHM of ``dhaq_h1`` (O, 0.2 ppm window) and
``dhaq4_h4`` (H, 0.1 ppm window) from

* the in-window Lorentzian alone (:func:`ingest.processing.observables._peak_fit`), and
* the extractor's row, i.e. with :func:`ingest.processing.widths.refine_widths`,

minus the truth (W + lb, lb = 0.5 Hz), in Hz.  Then the cost of ``refine_widths`` per
spectrum (CPU time of this process, time.process_time: less sensitive to other jobs on
the machine; median of interleaved repeats) next to the cost of the in-window fits of every
configured peak (the floor it adds to), and their ratio.

Run:  PYTHONPATH=. python benchmarks/bench_widths.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from generators.bruker_expno import fid as generator_fid  # noqa: E402

from ingest.processing.observables import Extractor, _peak_fit, window_offset
from ingest.processing.widths import refine_widths
from ingest.types import NMRMeta, NMRSpectrum

SFO1, SW, CAR, TD = 400.13e6, 6410.0, 4.70, 16384
BASE = [(4.79, 1000.0, 1.5), (2.22, 120.0, 2.0), (3.34, 60.0, 2.0)]


def fid(lines: list[tuple[float, float, float]], noise: float, seed: int) -> np.ndarray:
    """Sum of A exp(2 pi i nu t - pi w t) (nu from ppm, carrier, sfo1) + complex white noise
    (the tests' numpy-only generator, tests/generators/bruker_expno.py)."""
    return generator_fid(lines, TD, sw=SW, sf=SFO1, car=CAR, noise=noise, rng=np.random.default_rng(seed))


def spectrum(w_hz: float, seed: int = 0, noise: float = 0.05) -> NMRSpectrum:
    """The sample with O lines of FWHM ``w_hz`` and H lines of ``w_hz / 2``."""
    lines = BASE + [(7.45, 2000.0, w_hz), (7.05, 2000.0, w_hz), (7.72, 2000.0, w_hz),
                    (6.55, 500.0, w_hz / 2), (6.45, 500.0, w_hz / 2), (6.25, 500.0, w_hz / 2)]
    meta = NMRMeta(path=Path(f"/synthetic/{seed}"), vendor="spinsolve", nucleus="1H", sfo1_hz=SFO1, bf1_hz=SFO1,
                   sw_hz=SW, carrier_ppm=CAR, td=TD, ns=1)
    return NMRSpectrum(fid=fid(lines, noise, seed), meta=meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    ex = Extractor()
    ex(spectrum(2.0))
    lb = ex.cfg.nmr.lb_hz
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'W Hz':>6} | {'h1 in-window':>12} {'h1 extended':>12} | {'h4(H) in-window':>15} {'h4(H) extended':>14}")
    for w in (2, 5, 10, 20, 30, 45, 60, 80, 100, 120):
        row = ex(spectrum(w, seed=w))
        proc = ex.last
        off = window_offset(proc, ex.cfg.nmr)
        raw = {n: _peak_fit(ex.cfg.nmr.peak(n), proc, ex.cfg.nmr.snr_min, proc.params["noise_sigma"], off).fwhm_hz
               for n in ("dhaq_h1", "dhaq4_h4")}
        print(f"{w:6.0f} | {raw['dhaq_h1'] - w - lb:12.2f} {row['dhaq_h1_fwhm_Hz'] - w - lb:12.2f} | "
              f"{raw['dhaq4_h4'] - w / 2 - lb:15.2f} {row['dhaq4_h4_fwhm_Hz'] - w / 2 - lb:14.2f}")
    cost_refine, cost_fits = [], []
    for w in (10.0, 30.0, 60.0):
        ex(spectrum(w, seed=99))
        proc = ex.last
        cfg = ex.cfg.nmr
        off = window_offset(proc, cfg)
        noise = proc.params["noise_sigma"]
        for _ in range(args.repeats):  # interleaved: in-window fits, then the refinement
            t0 = time.process_time()
            fits = {p.name: _peak_fit(p, proc, cfg.snr_min, noise, off) for p in cfg.peaks}
            t1 = time.process_time()
            refine_widths(fits, cfg.peaks, proc.ppm, proc.real, sfo1_hz=proc.sfo1_hz, offset=off, noise=noise,
                          noise_corr=float(proc.params.get("noise_corr_points", 1.0)))
            t2 = time.process_time()
            cost_fits.append(t1 - t0)
            cost_refine.append(t2 - t1)
        print(f"W = {w:.0f} Hz: refine_widths {1e3 * statistics.median(cost_refine[-args.repeats:]):.2f} ms, "
              f"in-window fits of all {len(cfg.peaks)} peaks {1e3 * statistics.median(cost_fits[-args.repeats:]):.2f} ms")
    r, f = statistics.median(cost_refine), statistics.median(cost_fits)
    print(f"median over all: refine_widths {1e3 * r:.2f} ms per spectrum = {r / f:.2f} x the in-window fits "
          f"({1e3 * f:.2f} ms); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
