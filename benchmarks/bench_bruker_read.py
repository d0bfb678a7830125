"""Benchmark of the batch read of a Bruker expno (``flowcell ingest`` -> ``read_rows``), issue 15.

64k-point 1H FIDs as bench_ingest.py writes them (full-scale int32, ``NC`` -25, audita.txt),
thread CPU per spectrum, median of ``--repeats`` interleaved rounds, next to the load average:

* floor: a bare numpy read of each ``fid`` into complex128 (``np.fromfile`` + ``astype`` +
  the ``2**NC`` scale), nothing checked;
* ``read_rows`` keeping every spectrum (each FID a fresh 1 MB array: its page faults count);
* ``read_rows`` dropping each spectrum before the next (freed memory reused);
* ``read_rows`` in blocks of 32 spectra dropped before the next block, as
  :func:`ingest.batch.ingest_paths` reads them, without and with
  :func:`ingest.readers.bruker_words.recycled_arrays` (what ingest_paths uses), the words
  converted by numpy (two passes) and, with the batch engine's compiled kernels loaded (as
  ``flowcell ingest`` of >= 200 acquisitions loads them), by one compiled pass
  (:mod:`ingest.readers.bruker_words_nb`; skipped without numba);
* the per-stage split of the dropping read (identify, parameters, words, times, checks);
* the same series with a TopSpin-size ``acqus`` (the package's writer puts ~35 lines in it, a
  TopSpin acqus has 300-1000: here :func:`topspin_size` adds 300 lines of arrays and values),
  read as ``flowcell ingest`` reads, with each acqus patched from the last one parsed (what
  ships, :func:`ingest.readers.bruker_params._parse_like`) and parsed in full (before).

Target: <= 0.5 ms a spectrum (the ratio to it is printed).

Usage::

    PYTHONPATH=. python benchmarks/bench_bruker_read.py [--files 192] [--repeats 5]
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()

import argparse
import collections
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ingest

from ingest.readers import (
    bruker,
    bruker_params,
    bruker_words,
    bruker_words_nb,
    dispatch,
)
from ingest.readers.bruker_words import recycled_arrays

TARGET_MS = 0.5


def _floor(paths: list[Path]) -> None:
    for p in paths:
        w = np.fromfile(p / "fid", dtype="<i4").astype(np.float64)
        w *= 2.0 ** -25
        w.view(np.complex128)


def _keep(paths: list[Path]) -> None:
    x = [dispatch.read_rows(p) for p in paths]
    del x


def _drop(paths: list[Path]) -> None:
    for p in paths:
        dispatch.read_rows(p)


def _blocks_fresh(paths: list[Path]) -> None:
    for i in range(0, len(paths), 32):
        x = [dispatch.read_rows(p) for p in paths[i:i + 32]]
        del x


def _blocks(paths: list[Path]) -> None:
    with recycled_arrays():
        _blocks_fresh(paths)


def _blocks_numpy(paths: list[Path]) -> None:
    """:func:`_blocks` with the words converted by numpy even when the compiled pass is loaded."""
    saved, bruker_words.converter = bruker_words.converter, lambda: None
    try:
        _blocks(paths)
    finally:
        bruker_words.converter = saved


def _compiled() -> bool:
    """Load the batch engine's compiled kernels (numba), as ``flowcell ingest`` of 200 or more
    acquisitions does; False without numba."""
    try:
        from ingest.processing.lorentz_batch import load_compiled
        return bool(load_compiled()) and bruker_words_nb.converter() is not None
    except ImportError:
        return False


def _split(paths: list[Path]) -> dict[str, float]:
    """Thread CPU (us a spectrum) of each stage of the dropping read, by wrapping the stages."""
    acc: collections.Counter = collections.Counter()
    saved = []

    def wrap(mod, name):
        f = getattr(mod, name)
        saved.append((mod, name, f))

        def w(*a, **k):
            t = time.thread_time_ns()
            try:
                return f(*a, **k)
            finally:
                acc[name] += time.thread_time_ns() - t
        setattr(mod, name, w)

    wrap(bruker, "identify_seen")
    for n in ("read_acqus", "read_words", "_times", "_processed", "_checked_fields"):
        wrap(bruker, n)
    wrap(bruker_words, "_declared_order_evident")
    wrap(bruker, "check_meta")
    try:
        _drop(paths)
    finally:
        for mod, name, f in saved:
            setattr(mod, name, f)
    return {k: v / len(paths) / 1e3 for k, v in acc.most_common()}


def topspin_size(paths: list[Path], extra: int = 300) -> None:
    """Add ``extra`` lines of TopSpin-like parameters (arrays of 8-64 values, scalars, strings)
    before ``##END=`` of each expno's acqus, the same in every expno (a series' acqus differ
    in their date, path and DATE only).  Plain text: imports nothing from the package."""
    rng = np.random.default_rng(1)
    add, k = [], 0
    while len(add) < extra:
        if k % 10 == 0:
            n = int(rng.choice([8, 16, 32, 64]))
            add.append(f"##$ARR{k}= (0..{n - 1})")
            vals = [f"{v:.6g}" if k % 20 else str(int(v)) for v in rng.uniform(0, 1000, n)]
            add += [" ".join(vals[i:i + 10]) for i in range(0, n, 10)]
        elif k % 10 == 5:
            add.append(f"##$STR{k}= <text {k}>")
        else:
            add.append(f"##$PAR{k}= {rng.uniform(0, 100):.6g}")
        k += 1
    block = "\n".join(add[:extra]) + "\n"
    for p in paths:
        a = p / "acqus"
        text = a.read_text(encoding="latin-1")
        a.write_text(text.replace("##END=", block + "##END=", 1), encoding="latin-1")


def _acqus_ab(paths: list[Path], repeats: int) -> tuple[float, float, int]:
    """(patched, full) ms a spectrum of the blocked, recycled read of ``paths``, interleaved,
    and the acqus lines."""
    patched, res = bruker_params._parse_like, {"patched": [], "full": []}

    def full(raw, last):
        return bruker_params.parse_jcamp(raw.decode("latin-1")), None

    try:
        for _ in range(repeats):
            for k, f in (("full", full), ("patched", patched)):
                bruker_params._parse_like = f
                bruker_params._ACQUS_CACHE.clear()
                bruker_params._LAST_PARSED.clear()
                t = time.thread_time()
                _blocks(paths)
                res[k].append((time.thread_time() - t) / len(paths) * 1e3)
    finally:
        bruker_params._parse_like = patched
    lines = (paths[0] / "acqus").read_text(encoding="latin-1").count("\n")
    return statistics.median(res["patched"]), statistics.median(res["full"]), lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=192)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-compiled", dest="compiled", action="store_false",
                    help="do not load numba's kernels (no compiled-conversion line)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = bench_ingest.write_files(Path(tmp), a.files)
        runs = {"floor (bare numpy)": _floor, "read_rows, keep all": _keep, "read_rows, drop each": _drop,
                "read_rows, blocks of 32": _blocks_fresh, "read_rows, blocks of 32 recycled": _blocks_numpy}
        compiled = a.compiled and _compiled()
        if compiled:
            runs["... recycled, compiled conversion"] = _blocks
        for f in runs.values():
            f(paths[:8])
        res: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(a.repeats):
            for k, f in runs.items():
                t = time.thread_time()
                f(paths)
                res[k].append((time.thread_time() - t) / len(paths) * 1e3)
        split = _split(paths)
        topspin_size(paths)
        _blocks(paths[:8])
        ts_patched, ts_full, ts_lines = _acqus_ab(paths, a.repeats)
    load = os.getloadavg()[0]
    print(f"Bruker batch read, {a.files} 64k-point expnos, median of {a.repeats} (load average {load:.2f})")
    for k, v in res.items():
        print(f"  {k:34s} {statistics.median(v):6.3f} ms/spectrum  ({statistics.median(v) / TARGET_MS:.2f} x the "
              f"{TARGET_MS} ms target)")
    print("  split of 'drop each' (us/spectrum): " + ", ".join(f"{k} {v:.0f}" for k, v in split.items()))
    print(f"  TopSpin-size acqus ({ts_lines} lines), blocks of 32 recycled: {ts_patched:.3f} ms/spectrum, each acqus "
          f"patched from the last; {ts_full:.3f} parsed in full (x{ts_full / ts_patched:.2f})")
    got, floor = statistics.median(res["read_rows, blocks of 32 recycled"]), statistics.median(res["floor (bare numpy)"])
    if compiled:
        nb = statistics.median(res["... recycled, compiled conversion"])
        print(f"RESULT | Bruker batch read per 64k-point expno with the compiled kernels loaded (`flowcell ingest` of "
              f">= 200 acquisitions; load {load:.2f}) | {nb:.2f} ms CPU | {got:.2f} ms converted by numpy | "
              f"{nb / got:.2f}")
    print(f"RESULT | Bruker batch read per 64k-point expno, as `flowcell ingest` reads (blocks of 32, arrays recycled; "
          f"budget <= {TARGET_MS} ms: {got / TARGET_MS:.2f} of it; load {load:.2f}) | {got:.2f} ms CPU | "
          f"floor {floor:.2f} ms (bare numpy read + complex conversion) | {got / floor:.2f}")
    print(f"RESULT | Bruker batch read per 64k-point expno with a TopSpin-size acqus ({ts_lines} lines; load {load:.2f}) | "
          f"{ts_patched:.2f} ms CPU | {ts_full:.2f} ms with each acqus parsed in full | {ts_patched / ts_full:.2f}")


if __name__ == "__main__":
    main()
