"""Compiled kernels of the robust NMR baseline (numba; the optional ``fast`` extra).

Two kernels, each the compiled twin of a numpy function of
:mod:`ingest.processing.nmr_baseline` with the same numbers (tests/test_baseline_speedups.py):

* :func:`signal_mask` -- ``nmr_baseline._signal_mask`` after its moving average: the seed and
  candidate thresholds, the regions, their widening and painting in one pass (integer and
  comparison arithmetic only: identical masks);
* :func:`polyval` -- ``nmr_baseline._polyval`` up to a cubic: Horner's scheme per point, the
  same products and sums in the same order (no fused multiply-add: numba compiles without
  fast-math), bit-identical, one pass instead of six over a 131,072-point axis (~2.5x faster).

numba is imported by :func:`load_kernels` only, honouring ``FLOWCELL_NUMBA``
(:mod:`ingest.processing.numba_switch`; :func:`kernels`): unset, the baseline uses the
kernels in a process that loaded the compiled line fits (the live path; the watcher loads
both at start on its warm-up thread, :func:`warm_up`), ``1`` always, ``0`` never.  Machine
code is cached on disk (``cache=True``).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np

from ingest.processing import lorentz_nb
from ingest.processing.numba_switch import numba_installed, numba_switch

__all__ = ["kernels", "load_kernels", "polyval", "signal_mask", "warm_up"]


def _paint(out, c0, c1, join, ext_min, ext_max, widen):  # pragma: no cover - compiled
    """Mark the region of candidates ``c0 .. c1`` (indices) joined by ``join`` points and
    widened as ``nmr_baseline._signal_mask`` does."""
    m = out.size
    start = max(c0 - join, 0)
    stop = min(c1 + join + 1, m)
    ext = min(ext_max, max(ext_min, int(widen * (stop - start) / 2)))
    for i in range(max(0, start - ext), min(m, stop + ext)):
        out[i] = True


def signal_mask(resid, rs, t_hi, t_lo, t_rs, join, dil, widen, out):  # pragma: no cover - compiled
    """Signal points of ``resid`` into ``out`` (bool, zeroed here): seeds ``|r| > t_hi`` or
    ``|rs| > t_rs`` (``rs`` empty: none from it), candidates also ``|r| > t_lo``; candidates at
    most ``2 join + 1`` apart share a region; regions holding a seed are painted, widened."""
    m = resid.size
    use_rs = rs.size == m
    ext_min = max(1, dil // 2)
    ext_max = 8 * max(1, dil)
    gap = 2 * join + 1
    for i in range(m):
        out[i] = False
    have = False
    r0 = 0
    r1 = 0
    seeded = False
    for i in range(m):
        a = abs(resid[i])
        s = a > t_hi
        if use_rs and abs(rs[i]) > t_rs:
            s = True
        if not (s or a > t_lo):
            continue
        if have and i - r1 <= gap:
            r1 = i
            seeded = seeded or s
        else:
            if have and seeded:
                _paint(out, r0, r1, join, ext_min, ext_max, widen)
            have = True
            r0 = i
            r1 = i
            seeded = s
    if have and seeded:
        _paint(out, r0, r1, join, ext_min, ext_max, widen)


def polyval(x, n, c0, c1, c2, c3, out):  # pragma: no cover - compiled
    """``out[i] = c0 + x (c1 + x (c2 + x c3))`` for the first ``n`` (2 to 4) coefficients, in
    the order of ``nmr_baseline._polyval``: ``x c[-1] + c[-2]``, then ``* x + c[j]``.  The
    coefficients as scalars, one loop per degree (an array of coefficients left the loop
    unoptimised: 4x slower)."""
    if n == 4:
        for i in range(x.size):
            xi = x[i]
            out[i] = ((xi * c3 + c2) * xi + c1) * xi + c0
    elif n == 3:
        for i in range(x.size):
            xi = x[i]
            out[i] = (xi * c2 + c1) * xi + c0
    else:
        for i in range(x.size):
            out[i] = x[i] * c1 + c0


_LOCK = threading.Lock()
_KERNELS: SimpleNamespace | bool | None = None  # None: not tried; False: unavailable


def load_kernels() -> SimpleNamespace | None:
    """The compiled kernels (``signal_mask``, ``polyval``), importing numba on the first call;
    None without numba or with ``FLOWCELL_NUMBA=0``."""
    global _KERNELS, _paint
    if _KERNELS is None:
        with _LOCK:
            if _KERNELS is None:
                if numba_switch() is False or not numba_installed():
                    _KERNELS = False
                else:
                    import numba  # lazy: the optional 'fast' extra, ~1 s to import

                    jit = numba.njit(cache=True, nogil=True)
                    _paint = jit(_paint)  # before signal_mask compiles: it calls it
                    _KERNELS = SimpleNamespace(signal_mask=jit(signal_mask), polyval=jit(polyval))
    return _KERNELS or None


def kernels() -> SimpleNamespace | None:
    """The compiled kernels when this process uses numba, else None (the numpy baseline).

    ``FLOWCELL_NUMBA=1``: loaded now; ``0``: never; unset: once the compiled line fits are
    loaded (:func:`ingest.processing.lorentz_nb.kernels`: the live path, which imported
    numba), never importing numba itself.
    """
    if _KERNELS is None:
        switch = numba_switch()
        if switch is True or (switch is None and lorentz_nb.kernels() is not None):
            return load_kernels()
    return _KERNELS or None


def warm_up() -> bool:
    """Load and compile (or load from numba's disk cache) the kernels now, not on the first
    spectrum; True when they are available.  A failing numba leaves the numpy baseline."""
    global _KERNELS
    try:
        k = load_kernels()
        if k is None:
            return False
        r = np.array([0.0, 5.0, 0.5, 0.0])
        k.signal_mask(r, r[:0], 3.0, 1.0, 1.0, 1, 1, 3.0, np.zeros(4, dtype=bool))
        k.polyval(r, 4, 1.0, 2.0, 3.0, 4.0, np.empty(4))
        return True
    except Exception:  # noqa: BLE001 - numba present but failing: the numpy baseline is used
        _KERNELS = False
        return False
