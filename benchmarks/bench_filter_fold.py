"""Why the batch engine keeps the digital-filter FFT pair for a fractional delay, and what the
whole-point slice saves (ingest.processing.batch_nmr; docs/conventions.md, "Batch reprocessing").

  python benchmarks/bench_filter_fold.py

For each delay GD (the bench series' 67.98, 67.5, a whole 68, and 72.125: an old DSPFVS table's
delay, DECIM 32) it prints the difference between the
exact removal (circular shift over the acquired length, then the zero-filled transform) and the
fold (a linear phase of the zero-filled transform), before and after the correction of
ingest.processing.filter_fold, in units of the spectrum's noise: the largest bin, and the largest
sum over blocks of 1024 / 4096 bins (over sigma * sqrt(block): what an integral over such a
window sees), on the whole spectrum and inside the edges.  (The batch engine's guard measures
the real part after the phase, and the block sums after the series' baseline.)  Then the cost
of the pair against the slice a whole-point delay allows (complex64, 16 FIDs per call), and the
engine's rows with the fold against the FFT pair (cost, and differences per column).
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flowcell.cli import one_blas_thread

one_blas_thread()
import numpy as np
import scipy.fft as sf

from ingest.processing.nmr_sim import simulate_fid

LB = 0.3


def _metrics(err: np.ndarray, sig: float) -> str:
    """Largest bin and largest block sum (1024, 4096 bins) of ``err`` over the noise, on the whole
    spectrum and inside the outer 1/64 of the bins at each end (filter_fold.EDGE)."""
    out = []
    e = err.size // 64
    for part in (err, err[e:err.size - e]):
        out.append(f"max {np.abs(part).max() / sig:8.3f}")
        for w in (1024, 4096):
            nb = part.size // w
            out.append(f"blk{w} {np.abs(part[:nb * w].reshape(nb, w).sum(1)).max() / (sig * math.sqrt(w)):8.3f}")
        out.append("|")
    return " ".join(out[:-1])


def study(d: np.ndarray, gd: float, sw: float, sig_t: float, label: str) -> None:
    from ingest.processing.filter_fold import series_correction
    td = d.size
    m = 2 * (1 << (td - 1).bit_length())
    alpha, nk, keep0 = np.pi * LB / sw, td - math.ceil(gd), math.floor(gd)
    a0 = np.exp(-alpha * np.arange(td))
    x = sf.ifft(sf.fft(d) * np.exp(2j * np.pi * gd * sf.fftfreq(td)))
    xe = np.zeros(m, complex)
    xe[:nk] = x[:nk] * a0[:nk]
    apod = np.exp(-alpha * (np.arange(td) - gd))
    apod[:keep0] = 0.0
    u = np.zeros(m, complex)
    u[:td] = d * apod
    lin = np.exp(2j * np.pi * gd * sf.fftfreq(m))
    ex = np.fft.fftshift(sf.fft(xe))
    sig = sig_t * math.sqrt(float((a0[:nk] ** 2).sum()))
    print(f"{label}: GD {gd}, td {td}, m {m}  (whole spectrum | inside the edges; noise units)")
    print(f"  fold as is        {_metrics(np.fft.fftshift(sf.fft(u) * lin) - ex, sig)}")
    if gd != int(gd):
        fc = series_correction(td, float(gd), m, LB, sw)
        u[fc.index] += fc.correction(d[None])[0]
        print(f"  + correction (r {fc.rank:2d}) {_metrics(np.fft.fftshift(sf.fft(u) * lin) - ex, sig)}")


def pair_vs_slice(td: int = 65536, b: int = 16, reps: int = 7) -> None:
    rng = np.random.default_rng(0)
    f = (rng.standard_normal((b, td)) + 1j * rng.standard_normal((b, td))).astype(np.complex64)
    lin = np.exp(2j * np.pi * 67.98 * sf.fftfreq(td)).astype(np.complex64)
    u = np.empty((b, td), np.complex64)
    tp, ts = [], []
    for _ in range(reps):  # interleaved repeats
        w = f.copy()
        t = time.thread_time()
        F = sf.fft(w, axis=1, workers=1, overwrite_x=True)
        F *= lin
        x = sf.ifft(F, axis=1, workers=1, overwrite_x=True)
        np.copyto(u[:, :td - 68], x[:, :td - 68])
        tp.append((time.thread_time() - t) / b * 1e3)
        t = time.thread_time()
        np.copyto(u[:, :td - 68], f[:, 68:])
        ts.append((time.thread_time() - t) / b * 1e3)
    print(f"filter removal, {td} points, complex64: FFT pair {statistics.median(tp):.3f} ms/FID, "
          f"slice {statistics.median(ts):.3f} ms/FID (ratio {statistics.median(tp) / statistics.median(ts):.0f}; "
          f"load {os.getloadavg()[0]:.2f})")


def engine(n: int = 96, reps: int = 5) -> None:
    """BatchExtractor rows of bench_ingest's series (GD 67.98, 64k points): the default (the
    corrected fold, within its guard on this series) against ``exact_filter=True`` (the FFT
    pair), interleaved; the correction's one-off cost per series; the rows' largest difference
    per column in units of its standard error."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_ingest

    from ingest.processing import filter_fold
    from ingest.processing.batch_nmr import BatchExtractor
    from ingest.processing.lorentz_batch import load_compiled
    from ingest.readers.dispatch import read_rows
    load_compiled()
    with tempfile.TemporaryDirectory() as tmp:
        specs = [s for p in bench_ingest.write_files(Path(tmp), n) for s in read_rows(p)]
    filter_fold.series_correction.cache_clear()
    t = time.thread_time()
    first = BatchExtractor()
    first.prime(specs[0])
    print(f"first series set-up with the correction's precompute: {time.thread_time() - t:.2f} s CPU "
          f"(fold check {first.fold_of(specs[0])})")
    times: dict[str, list[float]] = {"fold": [], "pair": []}
    rows = {}
    for _ in range(reps):
        for name, kw in (("fold", {}), ("pair", {"exact_filter": True})):
            bx = BatchExtractor(**kw)
            t = time.thread_time()
            rows[name] = [r for i in range(0, len(specs), 64) for r in bx.rows(specs[i:i + 64])]
            times[name].append((time.thread_time() - t) / len(specs) * 1e3)
    f, p = statistics.median(times["fold"]), statistics.median(times["pair"])
    print(f"engine, {len(specs)} spectra: fold {f:.2f} ms/spectrum, FFT pair {p:.2f} ms/spectrum CPU "
          f"(ratio {p / f:.2f}; medians of {reps} interleaved; load {os.getloadavg()[0]:.2f})")
    diffs = {}
    for a, b in zip(rows["pair"], rows["fold"]):
        for col, v in a.items():
            for unit, e in (("_ppm", "_err_ppm"), ("_Hz", "_err_Hz"), ("", "_err")):
                key = col.removesuffix(unit) + e if col.endswith(unit) else None
                if isinstance(v, float) and key in a and key != col and np.isfinite(v) and a[key] > 0:
                    diffs[col] = max(diffs.get(col, 0.0), abs(b[col] - v) / a[key])
                    break
    top = sorted(diffs.items(), key=lambda kv: -kv[1])[:6]
    print("largest |fold - pair| / stderr per column:", ", ".join(f"{c} {v:.4f}" for c, v in top))


def main() -> None:
    lines = [(4.79, 10.0, 1.0), (7.45, 1.0, 3.0), (7.05, 1.0, 3.0), (7.72, 1.0, 3.0), (3.34, 0.2, 1.0)]
    sw = 8012.8
    for gd in (67.98, 67.5, 68.0, 72.125):
        d = simulate_fid(lines, td=65536, sw_hz=sw, sfo1_hz=400.13e6, carrier_ppm=4.7, phase_deg=-40.0,
                         group_delay=gd, noise_sd=2e-3, seed=1)
        study(d, gd, sw, 2e-3, "bench series")
    pair_vs_slice()
    engine()


if __name__ == "__main__":
    main()
