"""The batch engine's zero-filled transform in two layouts: 2 half-size or 4 quarter-size transforms.

For bench_ingest's size (64k-point FIDs zero-filled to 128k, complex64, 16 spectra a call as
``ingest.processing.batch_nmr.DEFAULT_CHUNK``) prints ms a spectrum (median of ``--reps``
interleaved repeats) of the compiled preparation pass (``zf_fft_nb.prep_split`` /
``prep_quarters``, from the stored int32 words) and of scipy's transforms, for the two layouts
(:mod:`ingest.processing.zf_fft`), in one process and in two processes at once (what two
workers meet: each the other's cache neighbour).  The ratio four/two is the layout's gain.

Usage::

    PYTHONPATH=. python benchmarks/bench_split_fft.py [--reps 15]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()

import argparse
import multiprocessing
import os
import statistics
import time

import numpy as np
import scipy.fft

TD, M, B = 65536, 131072, 16


def _run(reps: int) -> dict[int, float]:
    """ms a spectrum (prep + transform) of each layout, medians of ``reps`` interleaved repeats."""
    from ingest.processing import zf_fft_nb
    from ingest.processing.lorentz_batch import load_compiled
    from ingest.processing.zf_fft import half_twiddle, split_twiddles

    load_compiled()
    nb = zf_fft_nb.load()
    rng = np.random.default_rng(os.getpid())
    words = [np.round(rng.standard_normal(2 * TD) * 1e4).astype(np.int32) for _ in range(B)]
    apod = np.exp(-np.arange(TD) / 3e4).astype(np.float32)
    tw = {2: half_twiddle(M).view(np.float32), 4: split_twiddles(M, 4).view(np.float32)}
    U = np.empty((B, M), np.complex64)
    x0 = np.empty(B, np.complex64)
    out: dict[int, list[float]] = {2: [], 4: []}
    for r in range(reps):
        for ways in ((2, 4) if r % 2 == 0 else (4, 2)):
            Uw = U.reshape(B, ways, M // ways).view(np.float32)
            t0 = time.perf_counter()
            for j, w in enumerate(words):
                if nb is None:  # no numba: the transform only
                    break
                if ways == 2:
                    nb.prep_split(w, 1.0, apod, tw[2], Uw[j, 0], Uw[j, 1])
                else:
                    t = tw[4]
                    nb.prep_quarters(w, 1.0, apod, t[1], t[2], t[3], *Uw[j], x0[j:j + 1].view(np.float32), True)
                nb.sum_squares(w, 1.0)
            scipy.fft.fft(Uw.view(np.complex64), axis=-1, workers=1, overwrite_x=True)
            out[ways].append((time.perf_counter() - t0) / B * 1e3)
    return {w: statistics.median(v) for w, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args(argv)
    _run(2)  # compile / load the kernels before forking
    alone = _run(a.reps)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        both = pool.map(_run, [a.reps, a.reps])
    pair = {w: statistics.mean(d[w] for d in both) for w in (2, 4)}
    print(f"zero-filled transform of {TD}-point FIDs to {M}, complex64, {B} a call; ms a spectrum "
          f"(prep pass + transforms), median of {a.reps} (load {os.getloadavg()[0]:.1f})")
    for label, d in (("1 process", alone), ("2 processes at once", pair)):
        print(f"  {label:<20} two half-size {d[2]:.3f}   four quarter-size {d[4]:.3f}   four/two {d[4] / d[2]:.2f}")
    print(f"RESULT | zero-filled 128k transform, 4 quarter-size vs 2 half-size (2 processes at once) "
          f"| {pair[4]:.3f} ms a spectrum | {pair[2]:.3f} ms | {pair[4] / pair[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
