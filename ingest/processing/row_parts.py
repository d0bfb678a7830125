"""Pieces of a table row that are the same for every spectrum, made once: the batch engine
(:mod:`ingest.processing.batch_nmr`) builds tens of thousands of rows.

:func:`peak_columns` gives the items of :meth:`ingest.processing.peaks.PeakFit.columns` with
the column names made once a peak (:func:`peaks_columns`: of every configured peak at once); :func:`cfg_note` the ``processing`` suffix naming the
observables file.  tests/test_batch_rows_fast.py compares them with what they replace.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["cfg_note", "peak_columns", "peaks_columns"]


def peak_columns(name: str, pf: Any) -> Iterator[tuple[str, float]]:
    """The items of ``pf.columns(name)`` (``NAME_shift_ppm`` ... ``NAME_area_err``, in its order)."""
    return zip(_column_names(name), (pf.center_ppm, pf.center_err_ppm, pf.fwhm_hz, pf.fwhm_err_hz, pf.area,
                                     pf.area_err))


def peaks_columns(peaks: tuple[Any, ...], fits: Any) -> Iterator[tuple[str, float]]:
    """The items of :func:`peak_columns` of every peak of ``peaks`` (a tuple of PeakSpec, in its
    order; ``fits``: name -> PeakFit), the names made once per peak tuple (kept for the last
    tuple seen, by identity: a configuration's peaks are a tuple of frozen PeakSpecs)."""
    global _LAST
    last = _LAST
    if last[0] is not peaks or not isinstance(peaks, tuple):
        last = (peaks, tuple(c for p in peaks for c in _column_names(p.name)), tuple(p.name for p in peaks))
        _LAST = last
    vals: list[float] = []
    for n in last[2]:
        pf = fits[n]
        vals += (pf.center_ppm, pf.center_err_ppm, pf.fwhm_hz, pf.fwhm_err_hz, pf.area, pf.area_err)
    return zip(last[1], vals)


_LAST: tuple[Any, tuple[str, ...], tuple[str, ...]] = (None, (), ())


@functools.lru_cache(maxsize=1024)
def _column_names(name: str) -> tuple[str, ...]:
    return (f"{name}_shift_ppm", f"{name}_shift_err_ppm", f"{name}_fwhm_Hz", f"{name}_fwhm_err_Hz",
            f"{name}_area", f"{name}_area_err")


@functools.lru_cache(maxsize=64)
def cfg_note(source: str | Path | None) -> str:
    """``;cfg=<file name>`` of the observables file ``source`` ('' without one)."""
    return f";cfg={Path(source).name}" if source else ""
