"""FIDs kept as their stored words until something reads them (batch reprocessing).

A Bruker fid holds int32 words; :func:`ingest.readers.bruker_words.read_words` converts them to
complex128 (``float64(word) * 2**NC``, exact), a 1 MB array for a 64k-point FID that the batch
engine reads once more, to cast it to complex64 for its transform.  Inside
:func:`deferred_fids` (what :func:`ingest.batch.ingest_paths` uses when the compiled kernels
are loaded), :func:`ingest.readers.bruker.read_bruker` of a 1D expno with native int32 words
returns a :class:`WordsSpectrum` instead: the same spectrum, whose ``fid`` is converted on first
access, while the batch engine's compiled pass reads the words themselves
(:func:`ingest.processing.zf_fft_nb.prep_split` of the words: the same float32 values, hence the same
rows bit for bit; tests/test_stored_fid.py).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from ingest.readers.bruker_words import words_to_complex
from ingest.types import NMRSpectrum

__all__ = ["WordsSpectrum", "deferred_fids", "deferring"]

_STATE = threading.local()


@contextlib.contextmanager
def deferred_fids() -> Iterator[None]:
    """Within this context (this thread), 1D Bruker reads of native int32 data give
    :class:`WordsSpectrum` (the FID converted when first read)."""
    before = getattr(_STATE, "on", False)
    _STATE.on = True
    try:
        yield
    finally:
        _STATE.on = before


def deferring() -> bool:
    """Whether :func:`deferred_fids` is active in this thread."""
    return getattr(_STATE, "on", False)


class WordsSpectrum(NMRSpectrum):
    """An :class:`ingest.types.NMRSpectrum` whose FID is still its stored words.

    Parameters
    ----------
    fid, meta, processed_ppm, processed, kind
        As :class:`ingest.types.NMRSpectrum` (``fid`` None: from the words).
    words : ndarray of int32, shape (2 * td,)
        The stored (re, im) words, native byte order.
    scale : float
        TopSpin's ``2**NC`` (exact in float64).

    ``fid`` is ``float64(words) * scale`` as complex128 pairs (the numbers of
    :func:`ingest.readers.bruker_words.read_words`), computed on first access, after which the
    words are dropped.  Equality, ``repr`` and :func:`dataclasses.replace` see the converted FID.
    """

    def __init__(self, fid: np.ndarray | None = None, meta: Any = None, processed_ppm: np.ndarray | None = None,
                 processed: np.ndarray | None = None, kind: str = "nmr", *, words: np.ndarray | None = None,
                 scale: float = 1.0) -> None:
        self.words = words
        self.scale = float(scale)
        super().__init__(fid, meta, processed_ppm, processed, kind)  # type: ignore[arg-type]

    @property  # type: ignore[override]
    def fid(self) -> np.ndarray | None:
        if self._fid is None and self.words is not None:
            self._fid = words_to_complex(self.words, self.scale)
            self.words = None
        return self._fid

    @fid.setter
    def fid(self, value: np.ndarray | None) -> None:
        self._fid = value
        if value is not None:
            self.words = None
