"""CPU calibration for benchmarks on a shared machine: how much parallel capacity is free now.

:func:`parallel_capacity` times a fixed single-threaded job (complex FFTs) alone and then
in ``n`` processes at once; ``n * t_alone / t_parallel`` is the speed-up the machine can give
``n`` workers at this moment (2.0 on two idle cores; less when other work competes).
Benchmarks print it next to their own speed-ups, so a busy machine shows in the figure.
``alone_s`` is the cores' own speed: a host that slows every core (another tenant of the
machine, clock changes) leaves ``capacity`` near 2 but makes ``alone_s`` grow (bench_ingest.py
prints both; on the 2-core machine of 2026-12-02 it ranged 0.12-0.23 s).
"""

from __future__ import annotations

import multiprocessing
import time

import numpy as np


def _job(_: int = 0, n: int = 12) -> float:
    x = np.random.default_rng(0).standard_normal(1 << 17) + 0j
    t0 = time.perf_counter()
    for _ in range(n):
        x = np.fft.ifft(np.fft.fft(x))
    return time.perf_counter() - t0


def parallel_capacity(n: int = 2) -> dict[str, float]:
    """``{'alone_s', 'parallel_s', 'capacity'}``: the calibration job alone and ``n`` at once."""
    alone = min(_job() for _ in range(2))
    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with (ctx or multiprocessing).Pool(n) as pool:
        par = max(pool.map(_job, range(n)))
    return {"alone_s": alone, "parallel_s": par, "capacity": n * alone / par}
