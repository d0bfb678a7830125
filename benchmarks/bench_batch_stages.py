"""CPU per stage of batch reprocessing, one worker (bench_ingest's noisy 64k-point 1H series).

Prints ms a spectrum (thread CPU, median of ``--reps`` interleaved repeats) of: read
(``read_rows`` of each expno), engine (``BatchExtractor.rows`` over the read spectra, 64 at a
time, compiled line fits loaded) and ingest (``ingest_paths``, one worker, end to end); with
``--profile`` a cProfile of the engine.  ``--save F.pkl`` keeps the engine's rows and
``--compare F.pkl`` compares them with rows kept earlier (per column: max |diff| / stderr, or
relative where a column has no error): how a change is shown to leave the numbers alone.

Usage::

    PYTHONPATH=. python benchmarks/bench_batch_stages.py [--n 192] [--reps 5] [--profile]
        [--save rows.pkl | --compare rows.pkl] [--files DIR]
"""
import argparse
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("FLOWCELL_NUMBA", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from flowcell.cli import one_blas_thread

one_blas_thread()
import bench_ingest as bi


def files(root: Path, n: int) -> list[Path]:
    """``n`` expnos under ``root`` (written once, by bench_ingest's generator)."""
    if not root.exists() or len(list(root.iterdir())) < n:
        import shutil
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        bi.write_files(root, n)
    return sorted(root.iterdir(), key=lambda p: int(p.name))[:n]

def _err_column(c: str) -> str | None:
    """The standard-error column of a value column: NAME_shift_ppm -> NAME_shift_err_ppm,
    NAME_fwhm_Hz -> NAME_fwhm_err_Hz, NAME_area -> NAME_area_err (None for an error column)."""
    for unit in ("_ppm", "_Hz"):
        if c.endswith(unit):
            stem = c[: -len(unit)]
            return None if stem.endswith("_err") else stem + "_err" + unit
    return None if c.endswith("_err") else c + "_err"


def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--n", type=int, default=192); ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--profile", action="store_true"); ap.add_argument("--save"); ap.add_argument("--compare")
    ap.add_argument("--files", type=Path, default=None, help="folder for the expnos (kept; default: a temporary one)")
    a = ap.parse_args()
    if a.files is None:
        with tempfile.TemporaryDirectory() as tmp:
            return run(a, files(Path(tmp), a.n))
    return run(a, files(a.files, a.n))


def run(a, paths):
    from ingest.batch import ingest_paths
    from ingest.processing.batch_nmr import BatchExtractor
    from ingest.processing.lorentz_batch import load_compiled
    from ingest.readers.dispatch import read_rows
    load_compiled()
    specs = [s for p in paths for s in read_rows(p)]
    BatchExtractor().rows(specs[:40])  # warm
    res = {"read": [], "engine": [], "ingest": []}
    rows = None
    for _ in range(a.reps):
        t = time.thread_time(); [read_rows(p) for p in paths]; res["read"].append((time.thread_time() - t) / len(paths) * 1e3)
        t = time.thread_time(); ex = BatchExtractor(); rows = []
        for i in range(0, len(specs), 64):
            rows += ex.rows(specs[i:i + 64])
        res["engine"].append((time.thread_time() - t) / len(specs) * 1e3)
        t = time.thread_time(); ingest_paths(paths, workers=1, extractor=BatchExtractor()); res["ingest"].append((time.thread_time() - t) / len(paths) * 1e3)
    load = os.getloadavg()[0]
    for k, v in res.items():
        print(f"{k:8s} {statistics.median(v):6.2f} ms/spectrum CPU (min {min(v):.2f}, max {max(v):.2f}; load {load:.2f})")
    if a.save:
        with open(a.save, "wb") as fh:
            pickle.dump(rows, fh)
        print("saved", a.save)
    if a.compare:
        import pandas as pd
        with open(a.compare, "rb") as fh:
            ref = pd.DataFrame(pickle.load(fh))
        got = pd.DataFrame(rows)
        worst = []
        for c in ref.columns:
            if c in ("source", "path"):  # where the files were written, not a number
                continue
            if not pd.api.types.is_numeric_dtype(ref[c]) or c not in got:
                if c in got and not ref[c].equals(got[c]): worst.append((float("inf"), c, "non-numeric differs"))
                continue
            d = (got[c].astype(float) - ref[c].astype(float)).abs()
            ec = _err_column(c)
            scale = ref[ec].astype(float) if ec in ref else ref[c].astype(float).abs().clip(lower=1e-300)
            r = (d / scale).max()
            if r > 0 or (ref[c].isna() != got[c].isna()).any(): worst.append((float(r), c, "/err" if ec in ref else "rel"))
        worst.sort(reverse=True)
        print("differences (max |diff|/stderr or relative):", worst[:15] if worst else "none (bit-identical)")
    if a.profile:
        import cProfile
        import pstats
        pr = cProfile.Profile(); ex = BatchExtractor(); pr.enable()
        for i in range(0, len(specs), 64):
            ex.rows(specs[i:i + 64])
        pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(30)

if __name__ == "__main__":
    main()
