"""The binary words of a Bruker ``fid``/``ser``: read into float64 pairs, byte order checked.

Used by :mod:`ingest.readers.bruker` once it has compared the file's size with ``TD`` and
``DTYPA`` (docs/physics.md §5.1); kept apart so that module stays a readable size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ingest.readers.checks import MAX_FILE_BYTES, byte_order_check, checked_size
from ingest.types import IngestError

__all__ = ["read_words"]


#: Words :func:`ingest.readers.checks.byte_order_check` looks at (its default ``limit``).
_ORDER_SAMPLE = 1 << 14


def _declared_order_evident(raw: bytes, dt: np.dtype) -> bool:
    """Integer data whose declared byte order is plainly right, without the medians of
    :func:`ingest.readers.checks.byte_order_check` (~0.5 ms a 64k-point fid).

    In the tail that check examines (words ``n//2 .. n`` of its first ``n`` words), more
    than 90 % of the words read as declared have a pure sign-extension top byte
    (``-2**24 <= x < 2**24``) and fewer than 50 % read the other way do.  Then the check
    cannot refuse the data, so it is not run: (1) integers are all "sane" in both orders;
    (2) its sign-extension criterion needs < 10 % over the whole sample, here >= 45 %;
    (3) zeros read the same both ways, so < 50 % of the tail is zero, more than half of the
    declared non-zero tail is <= 2**24 in magnitude and more than half of the other order's
    is >= 2**24: the declared median |tail| is not above the other's, let alone 1000 times
    above.  Anything else (floats, a real flip, a borderline fid) gets the full check.
    """
    if dt.kind != "i" or dt.itemsize != 4:
        return False
    n = min(len(raw) // 4, _ORDER_SAMPLE)
    if n < 8:
        return False
    lo = n // 2 * 4
    lim = 1 << 24
    t = n - n // 2
    declared = np.frombuffer(raw, dtype=dt, count=t, offset=lo)  # views: no copy of the bytes
    if np.count_nonzero((declared >= -lim) & (declared < lim)) <= 0.9 * t:
        return False
    other = np.frombuffer(raw, dtype=dt.newbyteorder(), count=t, offset=lo)
    return bool(np.count_nonzero((other >= -lim) & (other < lim)) < 0.5 * t)


#: Bytes the byte-order check is given (:data:`_ORDER_SAMPLE` words of 8 bytes at most).
_CHUNK = _ORDER_SAMPLE * 8


def read_words(data_path: str | Path, words: int, big: bool, isfloat: bool, scale: float | None = None, *,
                checked: bool = False) -> np.ndarray:
    """``words`` stored words as complex128 pairs; the declared BYTORDA checked against the data.

    The checks and messages of :func:`ingest.readers.checks.read_bytes` (size declared by
    acqus, a file that shrinks while read), then the byte-order check on the first
    :data:`_ORDER_SAMPLE` words.  The file is read straight into the words' array (no bytes
    object in between; ``checked``: the caller has just checked its size, as
    :func:`_check_size` does); ``scale`` (2**NC) is applied in the conversion to float64, which is
    exact (a power of two) and the same numbers as scaling afterwards, one pass fewer.
    """
    dt = np.dtype((">" if big else "<") + ("f8" if isfloat else "i4"))
    what = os.path.basename(data_path)
    nbytes = words * dt.itemsize
    if checked:  # _check_size has just stat'ed it and compared its size with TD: not again
        if nbytes > MAX_FILE_BYTES:
            raise IngestError(data_path, f"acqus (TD, DTYPA {2 if isfloat else 0}) declares {nbytes} bytes, "
                                         f"more than the {MAX_FILE_BYTES} read at most")
    else:
        checked_size(data_path, nbytes, what=what, exact=False, declared_by=f"acqus (TD, DTYPA {2 if isfloat else 0})")
    w = np.empty(words, dtype=dt)
    with open(data_path, "rb", buffering=0) as fh:
        got = _fill(fh, memoryview(w).cast("B"))
    if got < nbytes:
        raise IngestError(data_path, f"{what} shrank while being read (byte offset {got})")
    first = memoryview(w).cast("B")[:_CHUNK]
    if not _declared_order_evident(first, dt):
        byte_order_check(os.path.join(os.path.dirname(data_path), "acqus"), f"BYTORDA {1 if big else 0}", first, dt)
    src = w[: w.size // 2 * 2]
    out = src.astype(np.float64) if scale is None else np.multiply(src, scale, dtype=np.float64)
    return out.view(np.complex128)  # (re, im) pairs


def _fill(fh: Any, view: memoryview) -> int:
    """Fill ``view`` from an unbuffered file: the bytes read, fewer only at its end."""
    got = 0
    while got < len(view):
        k = fh.readinto(view[got:])
        if not k:
            break
        got += k
    return got
