"""Keep Python's cyclic garbage collector out of the time a spectrum is processed.

A live session holds a few hundred thousand objects (pandas, scipy, numba, sympy
modules and their caches).  Python's automatic collector, triggered by allocation
counts, now and then walks all of them in a generation-2 collection: 100-300 ms
with the watcher's imports loaded (measured with ``gc.callbacks`` in
benchmarks/bench_watcher.py), landing on whatever spectrum is being processed
and making it the latency tail.  Three measures, all process-wide:

* :func:`freeze_startup`: at start-up (and again, cheaply, after the warm-ups),
  a collection and :func:`gc.freeze` move every object alive then into the
  permanent generation, which later collections skip (module-level state that
  lives as long as the process anyway; a cycle among them that dies later is
  not reclaimed, the price of never walking them again).
* :func:`no_collection`: automatic collection is suspended while a file is
  processed (a counted pause: several watchers in one process, or nested use,
  resume only when the last one ends).  Reference counting still frees almost
  everything at once; only cycles wait.
* :func:`collect_idle`: the young generations are collected after each file, and
  a full collection (of the objects created since the freeze: a few ms) runs
  when the watcher has been idle long enough or every :data:`FULL_EVERY_S`,
  so cyclic garbage never accumulates.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["FULL_EVERY_S", "collect_idle", "freeze_startup", "no_collection"]

#: A full collection at least this often (s) while the watcher runs.
FULL_EVERY_S = 60.0

_lock = threading.Lock()
_depth = 0
_was_enabled = True
_last_full = time.monotonic()


def freeze_startup(*, full: bool = True) -> None:
    """Freeze every object alive now out of later collections (:func:`gc.freeze`).

    Parameters
    ----------
    full : bool
        Collect everything first (100-300 ms the first time in a process holding the
        scientific stack, a few ms once frozen): at start-up.  ``False`` collects the
        young generations only (cheap), e.g. to freeze what a warm-up loaded later.
    """
    global _last_full
    gc.collect() if full else gc.collect(1)
    gc.freeze()
    if full:
        _last_full = time.monotonic()


@contextmanager
def no_collection() -> Iterator[None]:
    """Suspend automatic cyclic collection for the duration (counted across threads)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def collect_idle(*, full_every_s: float = FULL_EVERY_S) -> int:
    """Collect between files: the young generations always, everything every ``full_every_s``.

    Returns
    -------
    int
        The generation collected (1 or 2); -1 when collection is paused or disabled.
    """
    global _last_full
    with _lock:
        if _depth or not gc.isenabled():
            return -1
    now = time.monotonic()
    if now - _last_full >= full_every_s:
        gc.collect()
        _last_full = time.monotonic()
        return 2
    gc.collect(1)
    return 1
