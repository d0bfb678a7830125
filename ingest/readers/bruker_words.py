"""The binary words of a Bruker ``fid``/``ser``: read into float64 pairs, byte order checked.

Used by :mod:`ingest.readers.bruker` once it has compared the file's size with ``TD`` and
``DTYPA`` (docs/physics.md §5.1); kept apart so that module stays a readable size.

Cost (a 64k-point int32 fid, the batch read of ``flowcell ingest``): the words are read into
a reused per-thread buffer, the declared byte order is shown by counts where the medians of
:func:`ingest.readers.checks.byte_order_check` cannot refuse it (:func:`_declared_order_evident`),
and the float64 pairs go into a fresh array, or, inside :func:`recycled_arrays` (what
:func:`ingest.batch.ingest_paths` uses), into one of an earlier block nothing refers to any
more (benchmarks/bench_bruker_read.py).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ingest.readers.bruker_words_nb import converter, counter
from ingest.readers.checks import MAX_FILE_BYTES, byte_order_check, checked_size
from ingest.types import IngestError

__all__ = ["read_words", "recycled_arrays", "words_to_complex"]


#: Words :func:`ingest.readers.checks.byte_order_check` looks at (its default ``limit``).
_ORDER_SAMPLE = 1 << 14


def _declared_order_evident(raw: bytes, dt: np.dtype) -> bool:
    """Integer data whose declared byte order :func:`ingest.readers.checks.byte_order_check`
    cannot refuse, shown by counts instead of its medians (~0.35 ms a 64k-point fid).

    For 4-byte integers that check refuses on one of two grounds only (integers are all
    "sane" in both orders, so its first ground never applies): (a) the median non-zero
    |tail| (words ``n//2 .. n`` of its first ``n`` words) read as declared is more than
    1000 times the other order's; (b) sign extension (top byte 0x00/0xFF) in < 10 % of the
    declared words and in 30 % more of the other order's.  Ground (b) is computed here
    exactly.  Ground (a) is ruled out when one of these holds:

    * small data: more than 90 % of the declared tail is a pure sign extension
      (``-2**24 <= x < 2**24``) and fewer than 50 % of the other order's tail is.  Zeros
      read the same both ways, so < 50 % of the tail is zero, more than half of the
      declared non-zero tail is <= 2**24 in magnitude and more than half of the other
      order's is >= 2**24: the declared median is not above the other's;
    * large data (a full-scale signal still in the tail): at most ``(k - 1) // 2`` of the
      other order's ``k`` non-zero tail words lie in ``[-2**24, 2**24)``, so both middle
      values of its sorted non-zero |tail| are >= 2**24, so is its median, and the declared
      median (at most 2**31 < 1000 * 2**24) is not 1000 times above it.

    Anything else (floats, a real flip, a borderline fid) gets the full check.
    """
    if dt.kind != "i" or dt.itemsize != 4:
        return False
    n = min(len(raw) // 4, _ORDER_SAMPLE)
    if n < 8:
        return False
    h = n // 2
    t = n - h
    # The words as little-endian uint32 (native on x86/ARM: no byte swapping, unlike a view
    # in the other order): file byte 3 is the declared top byte of '<' data, byte 0 that of
    # '>' data; a top byte is a pure sign extension (0x00/0xFF, i.e. -2**24 <= x < 2**24
    # read in that order) when adding 1 at its lowest bit leaves its upper 7 bits clear.
    u = np.frombuffer(raw, dtype="<u4", count=n)
    little = dt.byteorder == "<" or (dt.byteorder == "=" and sys.byteorder == "little")
    count = counter()
    if count is not None:  # all five counts in one compiled pass (bruker_words_nb)
        head_d, tail_d, head_o, tail_o, k = count(u, h, little)
    else:
        work = np.empty(n, dtype=np.uint32)
        top_d, top_o = (_B3, _B0) if little else (_B0, _B3)
        head_d, tail_d = _extended_split(u, top_d, work, h)
        tail_o = _extended_split(u[h:], top_o, work[h:], 0)[1]
        head_o = k = -1  # counted below only when needed
    if tail_d > 0.9 * t and tail_o < 0.5 * t:
        return True  # small data: neither ground applies (see above; (b) needs < 10 %)
    s_d = (head_d + tail_d) / n  # checks._sign_extended(declared)
    if s_d < 0.1:  # ground (b) possible: its exact value decides
        if head_o < 0:
            head_o = _extended_split(u[:h], top_o, work[:h], 0)[1]
        if (head_o + tail_o) / n - s_d > 0.3:
            return False  # refused by the full check
    if k < 0:
        k = int(np.count_nonzero(u[h:]))  # non-zero tail words (the same in both orders)
    return k == 0 or tail_o - (t - k) <= (k - 1) // 2  # no non-zero tail, or large data


#: (add, mask) of file byte 3 and byte 0 of a little-endian uint32 for :func:`_extended_split`.
_B3 = (np.uint32(1 << 24), np.uint32(0xFE000000))
_B0 = (np.uint32(1), np.uint32(0xFE))


def _extended_split(u: np.ndarray, byte: tuple[np.uint32, np.uint32], work: np.ndarray, h: int) -> tuple[int, int]:
    """How many of ``u[:h]`` and of ``u[h:]`` have a pure sign-extension byte (0x00/0xFF) where
    ``byte`` says, in two in-place passes: that byte is 0x00 or 0xFF exactly when adding 1 at
    its lowest bit (wrapping within the byte's 8 bits or carrying out of them) clears its
    upper 7 bits, ``(x + add) & mask == 0`` (the carry into higher bits is masked off)."""
    np.add(u, byte[0], out=work)
    np.bitwise_and(work, byte[1], out=work)
    return h - int(np.count_nonzero(work[:h])), (u.size - h) - int(np.count_nonzero(work[h:]))


def _extended(v: np.ndarray, lim: int) -> int:
    """How many words have a pure sign-extension top byte (``-lim <= x < lim``)."""
    return int(np.count_nonzero((v >= -lim) & (v < lim)))


#: Bytes the byte-order check is given (:data:`_ORDER_SAMPLE` words of 8 bytes at most).
_CHUNK = _ORDER_SAMPLE * 8


def read_words(data_path: str | Path, words: int, big: bool, isfloat: bool, scale: float | None = None, *,
                checked: bool = False, keep_words: bool = False) -> np.ndarray | tuple[np.ndarray, float]:
    """``words`` stored words as complex128 pairs; the declared BYTORDA checked against the data.

    The checks and messages of :func:`ingest.readers.checks.read_bytes` (size declared by
    acqus, a file that shrinks while read), then the byte-order check on the first
    :data:`_ORDER_SAMPLE` words.  The file is read straight into the words' array (no bytes
    object in between; ``checked``: the caller has just checked its size, as
    :func:`_check_size` does); ``scale`` (2**NC) is applied in the conversion to float64, which is
    exact (a power of two): the same numbers whether applied in the conversion or after it.
    ``keep_words`` (native int32 data only, else ignored): no conversion; ``(words, scale)``, the
    words in an array of their own (from :func:`recycled_arrays`' pool), for
    :class:`ingest.readers.stored_fid.WordsSpectrum`.
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
    keep = keep_words and not isfloat and dt.isnative
    if keep:  # the words are the result: read into an array of their own
        w = _recycled(words, np.int32)
        w = np.empty(words, dtype=np.int32) if w is None else w
    else:
        w = _scratch(nbytes).view(dt)[:words]  # the stored words, converted to a fresh array below
    got = _fill(data_path, memoryview(w).cast("B"))
    if got < nbytes:
        raise IngestError(data_path, f"{what} shrank while being read (byte offset {got})")
    first = memoryview(w).cast("B")[:_CHUNK]
    if not _declared_order_evident(first, dt):
        byte_order_check(os.path.join(os.path.dirname(data_path), "acqus"), f"BYTORDA {1 if big else 0}", first, dt)
    src = w[: w.size // 2 * 2]
    if keep:
        return src, 1.0 if scale is None else float(scale)
    return words_to_complex(src, 1.0 if scale is None else scale, _recycled(src.size))


def words_to_complex(src: np.ndarray, scale: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """Stored words (int32 or float64, (re, im) pairs) as complex128: ``float64(src) * scale``,
    into ``out`` (float64, ``src.size``) or a fresh array.  Exact for a power of two ``scale``
    (2**NC), whichever pass applies it; native int32 by one compiled pass when the batch
    kernels are loaded (:mod:`ingest.readers.bruker_words_nb`, the same numbers)."""
    if out is None:
        out = np.empty(src.size, dtype=np.float64)
    conv = converter() if src.dtype.kind == "i" and src.dtype.isnative else None
    if conv is not None:
        conv(src, out, scale)
    else:
        np.copyto(out, src)  # int32 or float64 words -> float64: the values of astype
        if scale != 1.0:
            out *= scale  # in place: exact (a power of two)
    return out.view(np.complex128)


#: Reused buffers for the stored words, one per thread (a fresh 512 kB array per 64k-point
#: fid costs ~0.1 ms of page faults); files above :data:`_SCRATCH_MAX` bytes get their own.
_SCRATCH = threading.local()
_SCRATCH_MAX = 16 << 20


def _scratch(nbytes: int) -> np.ndarray:
    """A uint8 work array of at least ``nbytes`` bytes (8-byte aligned, contents undefined)."""
    if nbytes > _SCRATCH_MAX:
        return np.empty(nbytes, dtype=np.uint8)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < nbytes:
        buf = _SCRATCH.buf = np.empty(max(nbytes, 1 << 20), dtype=np.uint8)
    return buf[:nbytes]


@contextlib.contextmanager
def recycled_arrays(max_bytes: int = 64 << 20) -> Iterator[None]:
    """Within this context (this thread), :func:`read_words` converts into float64 arrays it
    made before once nothing refers to them any more (no view, no spectrum holding its FID),
    instead of fresh ones: a fresh 1 MB array per 64k-point fid costs ~0.5 ms of page faults
    when, as in batch reprocessing, the spectra of one block are dropped before the next is
    read.  Up to ``max_bytes`` of arrays are kept for reuse; released on exit.  The numbers
    read are the same; only where they are stored differs."""
    pool = _POOL.__dict__
    outer = pool.get("arrays"), pool.get("room")
    pool["arrays"], pool["room"] = [], max_bytes
    try:
        yield
    finally:
        pool["arrays"], pool["room"] = outer


#: The arrays of :func:`recycled_arrays`, per thread (``arrays`` None outside the context).
_POOL = threading.local()
#: ``sys.getrefcount`` of a pooled array nothing else refers to (the pool's list, the loop's
#: name, the call's argument); CPython only: elsewhere nothing is recycled.
_FREE_REFS = 3
_CAN_RECYCLE = sys.implementation.name == "cpython"


def _recycled(n: int, dtype: type = np.float64) -> np.ndarray | None:
    """An array of ``n`` values of ``dtype`` (float64: converted FIDs; int32: kept words) from the
    pool, or None (outside the context, or none free: then a fresh one, which joins the pool
    while there is room)."""
    arrays = getattr(_POOL, "arrays", None)
    if arrays is None or not _CAN_RECYCLE:
        return None
    for a in arrays:
        if a.size == n and a.dtype == dtype and sys.getrefcount(a) <= _FREE_REFS:
            return a
    if n * np.dtype(dtype).itemsize > _POOL.room:
        return None
    a = np.empty(n, dtype=dtype)
    arrays.append(a)
    _POOL.room -= a.nbytes
    return a


def _fill(path: str | Path, view: memoryview) -> int:
    """Fill ``view`` from the file at ``path`` (``os.readv`` on a descriptor: no file object):
    the bytes read, fewer only at its end."""
    got = 0
    if not hasattr(os, "readv"):  # Windows: a file object's readinto
        with open(path, "rb", buffering=0) as fh:
            while got < len(view) and (k := fh.readinto(view[got:])):
                got += k
        return got
    fd = os.open(path, os.O_RDONLY)
    try:
        while got < len(view) and (k := os.readv(fd, [view[got:]])):
            got += k
    finally:
        os.close(fd)
    return got
