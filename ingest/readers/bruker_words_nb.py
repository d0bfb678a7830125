"""Compiled passes of the Bruker fid read (numba): the words to scaled float64, the byte-order counts.

:func:`ingest.readers.bruker_words.read_words` turns the stored words into float64 pairs and
scales integer data by ``2**NC``: numpy does it in two passes over the 1 MB result of a
64k-point fid (``np.copyto``, then ``*=``); :func:`words_to_float` does both in one
(the batch read's arrays are not in cache; benchmarks/bench_bruker_read.py prints both
conversions' costs).  The numbers are numpy's: an int32 converts to float64
exactly and a product with a power of two (``|NC| <= 64``) is exact, whichever pass does it
(tests/test_bruker_read_seen.py compares the two bit for bit).  :func:`order_counts` gives the
byte-order shortcut's five counts in one pass instead of numpy's seven (integers: the same
counts, so the same decision; compared there too).

Used only when the batch engine's compiled kernels are loaded
(:func:`ingest.processing.zf_fft_nb.kernels`: ``flowcell ingest`` of 200 or more
acquisitions, or ``FLOWCELL_NUMBA=1``), so it never imports numba itself before they have;
compiled once per machine (``cache=True``).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

__all__ = ["converter", "counter", "order_counts", "words_to_float"]


def words_to_float(src: np.ndarray, out: np.ndarray, scale: float) -> None:  # pragma: no cover - compiled
    """``out[i] = float64(src[i]) * scale`` (``src`` native int32, ``out`` float64, same size)."""
    for i in range(src.size):
        out[i] = np.float64(src[i]) * scale


def order_counts(u: np.ndarray, h: int, little: bool) -> tuple[int, int, int, int, int]:  # pragma: no cover - compiled
    """The counts of :func:`ingest.readers.bruker_words._declared_order_evident` in one pass over
    ``u`` (the words as little-endian uint32): words of ``u[:h]`` and of ``u[h:]`` whose
    declared top byte is 0x00/0xFF, the same for the other order's top byte, and the non-zero
    words of ``u[h:]``.  File byte 3 (``u >> 24``) is the top byte of little-endian data, byte
    0 (``u & 0xFF``) that of big-endian data."""
    # byte 3 is 0x00/0xFF when adding 1 at bit 24 leaves bits 25-31 clear; byte 0 likewise
    # at bit 0 and bits 1-7 (int64 arithmetic: a carry out of byte 3 lands in bit 32, unmasked)
    h3 = h0 = t3 = t0 = k = 0
    for i in range(h):  # branch-free loops: the compiler runs them on several words at once
        x = np.int64(u[i])
        h3 += ((x + 0x1000000) & 0xFE000000) == 0
        h0 += ((x + 1) & 0xFE) == 0
    for i in range(h, u.size):
        x = np.int64(u[i])
        t3 += ((x + 0x1000000) & 0xFE000000) == 0
        t0 += ((x + 1) & 0xFE) == 0
        k += x != 0
    hd, td, ho, to = (h3, t3, h0, t0) if little else (h0, t0, h3, t3)
    return hd, td, ho, to, k


_LOCK = threading.Lock()
_COMPILED: list[Any] = [None]
_COUNTS: list[Any] = [None]


def converter() -> Any | None:
    """The compiled :func:`words_to_float` when the batch engine's kernels are on
    (:func:`ingest.processing.zf_fft_nb.kernels`), compiled on the first such call; else None.
    Looks the engine's module up in ``sys.modules``: never imports it, nor numba."""
    nb = sys.modules.get("ingest.processing.zf_fft_nb")
    kernels = getattr(nb, "kernels", None)
    if kernels is None or kernels() is None:
        return None
    if _COMPILED[0] is None:
        with _LOCK:
            if _COMPILED[0] is None:
                import numba  # lazy: the engine's kernels have imported it already

                _COUNTS[0] = numba.njit(cache=True, nogil=True)(order_counts)
                _COMPILED[0] = numba.njit(cache=True, nogil=True)(words_to_float)
    return _COMPILED[0]


def counter() -> Any | None:
    """The compiled :func:`order_counts` when :func:`converter` gives its kernel, else None."""
    return _COUNTS[0] if converter() is not None else None
