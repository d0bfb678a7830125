"""Benchmark of the batch engine's line fits and window integrals (issue 15): CPU ms per
spectrum of :func:`ingest.processing.lorentz_batch.fit_lorentzians` +
:func:`ingest.processing.lorentz_batch.window_integrals`, as the batch engine calls them
(default observables, 64k-point noisy 1H FIDs of benchmarks/bench_ingest.py, chunks of 16),
with the compiled passes (:mod:`ingest.processing.lorentz_batch_nb`, what ships once
``load_compiled`` ran) against the numpy steps feeding the compiled Levenberg-Marquardt (the
path before them), interleaved; prints how far apart their fits are (in standard errors:
the compiled passes solve the linear start in the kernel, its sums in point order, so the
strongest lines' optima move within the fit's tolerance, docs/conventions.md).

Target: <= 1.2 ms per spectrum (a third of the previous ~3.5).

Usage::

    PYTHONPATH=. python benchmarks/bench_batch_fits.py [--files 96] [--repeats 7]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FLOWCELL_NUMBA", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ingest

TARGET_MS = 1.2


def _calls(files: int) -> tuple[list, int]:
    """The engine's (kind, args, kwargs) calls of the two functions on ``files`` spectra."""
    from ingest.processing import batch_nmr
    from ingest.processing.batch_nmr import BatchExtractor
    from ingest.readers.dispatch import read_rows
    with tempfile.TemporaryDirectory() as tmp:
        paths = bench_ingest.write_files(Path(tmp), files)
        specs = [s for p in paths for s in read_rows(p)]
    calls: list = []
    fit, integ = batch_nmr.fit_lorentzians, batch_nmr.window_integrals
    batch_nmr.fit_lorentzians = lambda *a, **k: calls.append(("fit", a, k)) or fit(*a, **k)
    batch_nmr.window_integrals = lambda *a, **k: calls.append(("int", a, k)) or integ(*a, **k)
    try:
        ex = BatchExtractor()
        for i in range(0, len(specs), 64):
            ex.rows(specs[i:i + 64])
    finally:
        batch_nmr.fit_lorentzians, batch_nmr.window_integrals = fit, integ
    return calls, len(specs)


def _deviation(a: list, b: list) -> float:
    """Largest |a - b| / b's standard error over the fitted centres, widths and areas of two runs'
    outputs (lists, one per call, of PeakFit or None)."""
    worst = 0.0
    for xs, ys in zip(a, b):
        for x, y in zip(xs, ys):
            if x is None or y is None:
                if (x is None) != (y is None):
                    return float("inf")
                continue
            for v, e in (("center_ppm", "center_err_ppm"), ("fwhm_hz", "fwhm_err_hz"), ("area", "area_err")):
                d, err = abs(getattr(x, v) - getattr(y, v)), getattr(y, e)
                if d > 0:
                    worst = max(worst, d / err if err > 0 else float("inf"))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    from ingest.processing import lorentz_batch as lb
    if not lb.load_compiled():
        sys.exit("compiled line fits unavailable (numba missing or FLOWCELL_NUMBA=0): nothing to compare")
    calls, n = _calls(a.files)
    compiled_kernels = lb._batch_kernels

    def run(passes: bool) -> tuple[float, list]:
        lb._batch_kernels = compiled_kernels if passes else (lambda compiled: None)
        t = time.thread_time()
        out = [(lb.fit_lorentzians if k == "fit" else lb.window_integrals)(*args, **kw) for k, args, kw in calls]
        return (time.thread_time() - t) / n * 1e3, out

    times: dict[bool, list[float]] = {True: [], False: []}
    outs = {}
    for _ in range(a.repeats):
        for passes in (False, True):
            t, outs[passes] = run(passes)
            times[passes].append(t)
    lb._batch_kernels = compiled_kernels
    dev = _deviation(outs[True], outs[False])
    new, old = statistics.median(times[True]), statistics.median(times[False])
    print(f"{n} spectra, {len(calls)} calls; load {os.getloadavg()[0]:.2f}")
    print(f"numpy steps + compiled LM: {old:.3f} ms/spectrum CPU (median of {a.repeats})")
    print(f"compiled passes:           {new:.3f} ms/spectrum CPU  ({old / new:.2f}x faster; "
          f"target <= {TARGET_MS} ms: {new / TARGET_MS:.2f} of it)")
    print(f"largest difference of a fitted value (centre, width, area): {dev:.1e} of its standard error")
    print(f"RESULT | batch line fits + window integrals per spectrum, compiled passes (numpy steps + compiled LM "
          f"{old:.2f} ms; fits within {dev:.0e} of a standard error of theirs; load {os.getloadavg()[0]:.2f}) | "
          f"{new:.2f} ms CPU | "
          f"<= {TARGET_MS} ms (this round's budget) | {new / TARGET_MS:.2f}")


if __name__ == "__main__":
    main()
