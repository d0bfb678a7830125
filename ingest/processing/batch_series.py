"""What a series of NMR spectra shares in the batch engine, set up once from its first spectrum.

A *series* is the spectra with the same FID size, spectral width, observe frequency, carrier
and digital-filter delay (:func:`series_key`).  :func:`series_from` makes its :class:`Series`
from the reference processing of its first spectrum (:class:`ingest.processing.observables.Extractor`):
the apodization, the phase with the filter phase and the 2/sw scaling folded in (FFT order),
the axis, the noise, the baseline's signal-free points and least-squares operator, and the
windows' slab (:mod:`ingest.processing.slab`).  :meth:`Series.consts` casts what the
transforms need to their precision and, in complex64, lays it out for the split transform
(:mod:`ingest.processing.zf_fft`: :data:`SPLIT_WAYS` ways).  The engine itself is
:class:`ingest.processing.batch_nmr.BatchExtractor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.processing.fft_precision import PrecisionCheck
from ingest.processing.nmr import (
    apodization,
    effective_first_point,
    filter_phase,
    group_delay_points,
    ppm_axis,
)
from ingest.processing.series_baseline import baseline_operator
from ingest.processing.slab import Slab, observed_windows, slab_range
from ingest.processing.zf_fft import (
    even_odd,
    half_twiddle,
    split_layout,
    split_twiddles,
)
from ingest.types import NMRSpectrum

__all__ = ["SPLIT_WAYS", "Series", "series_from", "series_key", "stored_words"]

#: The complex64 zero-filled transform as 4 quarter-size transforms (ingest.processing.zf_fft:
#: quarter_fft), or 2 half-size ones; 4 stay in cache (benchmarks/bench_split_fft.py).
SPLIT_WAYS = 4


@dataclass
class Series:
    """What a series of spectra shares (computed on its first spectrum)."""

    key: tuple
    m: int                       # FFT size
    apod: np.ndarray             # (td,) apodization, time from the filter delay
    rot: np.ndarray              # (m,) complex128 phase * filter phase * 2/sw, FFT order
    fp_c: float                  # 1 - first_point (0: no first-point correction)
    perm: np.ndarray             # FFT order -> vendor order
    ppm: np.ndarray              # raw axis (before referencing), vendor order
    noise: float
    fit_idx: np.ndarray | None   # baseline: signal-free subsample indices (None: no baseline)
    pinv: np.ndarray | None      # (order+1, k) least-squares operator on those points
    vander: np.ndarray | None    # (m, order+1) polynomial basis on the scaled axis
    params: dict[str, Any]
    phase: tuple[float, float]
    exact: bool = False                  # baseline marginal: noise, baseline and fits per spectrum
    fp_rows: np.ndarray | None = None    # (2, m) first-point correction rows (vendor order)
    basis: np.ndarray | None = None      # (order + 3, m) baseline polynomial and fp_rows, stacked (fp_c 0: no fp_rows)
    precision: PrecisionCheck | None = None  # the transforms' precision, proven on the first FID
    cast: dict = field(default_factory=dict)  # dtype char -> :meth:`consts` in that precision
    slab_at: tuple[int, int] | None = None  # the windows' vendor range (None: whole spectra are written)
    slab: Slab | None = None                # its pieces in the split layout (complex64), built once
    slab_basis: np.ndarray | None = None    # basis[:, lo:hi] of the slab, contiguous (built once)

    def consts(self, dtype: Any) -> tuple[Any, ...]:
        """The apodization and phase (filter phase and 2/sw included) in ``dtype``'s precision
        (cached), and for complex64 with the FID inside the first half of the zero-filled
        length, what the split transform (:mod:`ingest.processing.zf_fft`) needs: its number
        of ways (:data:`SPLIT_WAYS` when the length allows), the twiddles and the phase in the
        split layout; else None."""
        dtype = np.dtype(dtype)
        got = self.cast.get(dtype.char)
        if got is None:
            real = np.float32 if dtype == np.complex64 else np.float64
            split = None
            if dtype == np.complex64 and self.m % 2 == 0 and self.apod.size <= self.m // 2:
                if SPLIT_WAYS == 4 and self.m % 4 == 0:
                    split = (4, split_twiddles(self.m, 4, dtype), split_layout(self.rot, 4, dtype))
                else:
                    split = (2, half_twiddle(self.m, dtype), even_odd(self.rot, dtype))
            got = (self.apod.astype(real), self.rot.astype(dtype), split)
            self.cast[dtype.char] = got
        return got

    def first_point_rows(self) -> np.ndarray:
        """(2, m) float64 rows whose combination ``[Re fp, Im fp] @ rows`` is the real part of the
        first-point correction ``fp * rot`` in vendor order (``fp = fp_c * x0`` per spectrum)."""
        if self.fp_rows is None:
            rv = self.rot[self.perm].astype(np.complex128)
            self.fp_rows = np.ascontiguousarray(np.vstack([rv.real, -rv.imag]))
        return self.fp_rows


def stored_words(spec: Any) -> tuple[np.ndarray, float] | None:
    """``(words, scale)`` of a spectrum whose FID is still its stored int32 words
    (:class:`ingest.readers.stored_fid.WordsSpectrum`, not converted yet), else None; reads no ``fid``."""
    w = getattr(spec, "words", None)
    return None if w is None else (w, spec.scale)


def series_key(spec: NMRSpectrum) -> tuple:
    """The series a spectrum belongs to: vendor, FID size, spectral width, observe frequency,
    carrier and digital-filter delay (a FID still as its words: its size without converting it)."""
    m = spec.meta
    kept = stored_words(spec)
    n = kept[0].size // 2 if kept is not None else int(np.asarray(spec.fid).size)
    return (m.vendor, n, float(m.sw_hz), float(m.sfo1_hz), float(m.carrier_ppm),
            float(group_delay_points(m)))


def series_from(spec: NMRSpectrum, key: tuple, proc: Any, n_cfg: Any) -> Series:
    """The :class:`Series` of ``spec`` from its reference processing ``proc`` (finite phase;
    :class:`ingest.processing.nmr.ProcessedNMR`) and the ``[nmr]`` configuration ``n_cfg``;
    its precision is left to the engine (``fft_dtype`` "complex128" until proven)."""
    meta = spec.meta
    td = int(np.asarray(spec.fid).size)
    gd = float(proc.params.get("group_delay", 0.0))
    m = int(proc.params["size"])
    apod = apodization(td, meta.sw_hz, n_cfg.lb_hz, max(gd, 0.0))
    perm = np.fft.fftshift(np.arange(m))[::-1]  # vendor index j <- FFT index perm[j]
    p0, p1 = proc.phase
    ph_vendor = np.exp(1j * np.deg2rad(p0 + p1 * np.arange(m) / m)) * (2.0 / float(meta.sw_hz))
    if gd > 0:  # the filter's delay, as the per-spectrum path removes it
        ph_vendor *= filter_phase(m, gd)
    rot = np.empty(m, dtype=np.complex128)
    rot[perm] = ph_vendor
    ppm = ppm_axis(m, meta.sw_hz, meta.sfo1_hz, meta.carrier_ppm)
    fit_idx = pinv = vander = None
    params = dict(proc.params, autophased=False, phase_source="given")
    marginal = False
    if n_cfg.baseline is not None and proc.baseline is not None:
        fit_idx, pinv, vander, marginal = baseline_operator(ppm, proc, params)
    fp_c = 1.0 - effective_first_point(float(params.get("first_point", 0.5)), gd)
    ser = Series(key, m, apod, rot, fp_c, perm, ppm, float(proc.params["noise_sigma"]), fit_idx, pinv, vander,
                 params, (float(p0), float(p1)))
    # the robust baseline had to lower its order on the first spectrum: the signal-free points
    # barely cover the axis, and the order (hence the integrals) may flip from spectrum to
    # spectrum; then each spectrum gets its own noise, baseline and fits, as per spectrum
    ser.exact = n_cfg.baseline is not None and (marginal or params.get("baseline") != f"poly{n_cfg.baseline}")
    ser.params["fft_dtype"] = "complex128"
    if not ser.exact and ser.pinv is not None and m % 4 == 0:
        ser.slab_at = slab_range(ppm, *observed_windows(n_cfg))
    return ser
