"""The part of a batch's spectra the observables read: the windows' slab and the baseline's points.

The batch engine (:class:`ingest.processing.batch_nmr.BatchExtractor`) fits lines and sums
integrals in configured windows; the series' baseline is fitted on a few thousand signal-free
points.  Writing the whole phased real spectrum in vendor order and subtracting the baseline
everywhere (two passes over 16 MB a batch of 16 64k-point spectra) serves nothing else.  So,
after the split transform (:mod:`ingest.processing.zf_fft`):

* :func:`slab_range`: one contiguous range of vendor indices holding every window (peaks,
  the followed line, a reference peak) wherever the window offset may move it (the followed
  line's window bounds the offset), with a margin;
* :class:`Slab` (per series and transform layout) and :meth:`Slab.fill`: the phased real part
  on that range (the same strided pieces and the same complex product as
  :func:`ingest.processing.zf_fft.vendor_real`, on contiguous parts of each row: the same
  numbers to the bit); :meth:`Slab.at_points`: its values at the baseline's points (outside
  the slab computed there, not written); every other point of the work array is NaN
  (allocated so, never written), so that a reader outside the slab gets NaN, loudly, rather
  than a stale value;
* :meth:`Slab.full`: one spectrum's whole real part from the same transform (the rows a caller
  needs in full: a line too broad for its window, whose extended fit reaches beyond the
  windows, ingest.processing.widths.refine_widths; the spectrum the extractor keeps as
  ``last``).  The transform is not modified by :meth:`Slab.fill`, so this is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.processing.zf_fft import _pieces

__all__ = ["Slab", "observed_windows", "slab_range"]

#: Points added on each side of the slab (window slices round, padded gathers read a little past
#: a window's end).
MARGIN_POINTS = 64
#: Spectra whose slabs :meth:`Slab.fill` writes together (all their pieces, then the next ones).
FILL_GROUP = 4


def observed_windows(nmr: Any) -> tuple[list[tuple[float, float]], tuple[float, float]]:
    """Every window the rows read (peaks, the followed line, a reference peak), ppm, and the
    window offsets the followed line can give (its window minus its expected shift), ppm, of an
    :class:`ingest.processing.observables.NMRConfig`."""
    wins = [tuple(p.window_ppm) for p in nmr.peaks]
    ref = nmr.processing_reference()
    if isinstance(ref, dict) and "window" in ref:
        wins.append(tuple(ref["window"]))
    if not nmr.follow:
        return wins, (0.0, 0.0)
    pk = nmr.peak(nmr.follow)
    exp = nmr.follow_ppm if nmr.follow_ppm is not None else pk.expected_ppm
    return wins, (min(pk.window_ppm) - exp, max(pk.window_ppm) - exp)


def slab_range(ppm: np.ndarray, windows: Sequence[tuple[float, float]], offsets: tuple[float, float]
               ) -> tuple[int, int]:
    """Vendor index range ``[lo, hi)`` of ``ppm`` (decreasing) holding every window moved by any
    offset in ``offsets`` = (most negative, most positive) ppm, plus :data:`MARGIN_POINTS`."""
    a = min(min(w) for w in windows) + min(offsets[0], 0.0)
    b = max(max(w) for w in windows) + max(offsets[1], 0.0)
    n = ppm.size
    rev = ppm[::-1]
    i0 = n - int(np.searchsorted(rev, b, side="right"))
    i1 = n - int(np.searchsorted(rev, a, side="left"))
    return max(0, i0 - MARGIN_POINTS), min(n, i1 + MARGIN_POINTS)


@dataclass
class Slab:
    """What :meth:`fill` needs for one series: the slab's pieces in the split layout, and the
    baseline points outside the slab as flat indices of that layout with their phase factors."""

    lo: int
    hi: int
    pieces: list[tuple[slice, int, slice]]   # (vendor slice, row, forward column slice of the row)
    out_idx: np.ndarray                      # baseline points outside the slab, vendor indices
    out_flat: np.ndarray                     # the same, flat indices of the split layout
    out_rot: np.ndarray                      # the phase factor at those flat indices
    in_idx: np.ndarray                       # baseline points inside the slab, vendor indices
    in_pos: np.ndarray                       # positions in fit_idx of the points inside the slab
    out_pos: np.ndarray                      # ... and of those outside it

    @classmethod
    def build(cls, m: int, lo: int, hi: int, fit_idx: np.ndarray | None, rot2: np.ndarray) -> Slab:
        """The slab ``[lo, hi)`` of an ``m``-point spectrum (``m`` a multiple of 4) whose phase
        in the split layout is ``rot2`` (ways, m/ways: 2 or 4 ways, :mod:`ingest.processing.zf_fft`);
        ``fit_idx`` the baseline's points."""
        ways = rot2.shape[0]
        h, q = m // 2, m // ways
        pieces = []
        for sl, row, first, cnt in _pieces(m, ways):
            s0 = sl.start
            t0 = max(0, -(-(lo - s0) // ways))         # first t with s0 + ways t >= lo
            t1 = min(cnt, -(-(hi - s0) // ways))       # first t with s0 + ways t >= hi
            if t1 <= t0:
                continue
            # vendor s0 + ways t <- R[row, first - t]: columns first-t1+1 .. first-t0, read backwards
            pieces.append((slice(s0 + ways * t0, s0 + ways * t1, ways), row, slice(first - t1 + 1, first - t0 + 1)))
        idx = np.asarray(fit_idx if fit_idx is not None else [], dtype=np.intp)
        outside = (idx < lo) | (idx >= hi)
        out = idx[outside]
        fft_i = (h - 1 - out) % m                      # vendor j <- FFT index (m/2 - 1 - j) mod m
        flat = (fft_i % ways) * q + fft_i // ways
        return cls(lo, hi, pieces, out, flat, rot2.reshape(-1)[flat], idx[~outside], np.flatnonzero(~outside),
                   np.flatnonzero(outside))

    def fill(self, R: np.ndarray, rot2: np.ndarray, real: np.ndarray) -> np.ndarray:
        """``real[:, lo:hi]`` = the phased real part of the split transforms ``R`` (b, ways, m/ways), in
        vendor order; ``R`` is not modified.  Returns ``real``.

        Four spectra at a time: the strided pieces of each spectrum's slab are written while
        that part of ``real`` is still in cache (its cost: the ``fill`` line of
        ``benchmarks/bench_batch_stages.py --profile``)."""
        for j in range(0, R.shape[0], FILL_GROUP):
            Rj, rj = R[j:j + FILL_GROUP], real[j:j + FILL_GROUP]
            for vs, row, cs in self.pieces:
                prod = Rj[:, row, cs] * rot2[row, cs]  # contiguous: numpy's product, vendor_real's bits
                np.copyto(rj[:, vs], prod.real[:, ::-1])
        return real

    def at_points(self, R: np.ndarray, rot2: np.ndarray, real: np.ndarray) -> np.ndarray:
        """(b, k): the phased real part at the baseline's points (``fit_idx`` order), the values
        :func:`ingest.processing.zf_fft.vendor_real` gives there: read from ``real`` inside the
        slab (after :meth:`fill`), from ``R`` outside it (nothing written to ``real`` there)."""
        b = R.shape[0]
        out = np.empty((b, self.in_pos.size + self.out_pos.size))
        out[:, self.in_pos] = real[:, self.in_idx]
        if self.out_idx.size:
            out[:, self.out_pos] = (R.reshape(b, -1)[:, self.out_flat] * self.out_rot).real
        return out
