"""Batch reprocessing of NMR series: the per-spectrum numbers of the Extractor, many times faster.

:class:`BatchExtractor` turns a list of spectra into the rows
:class:`ingest.processing.observables.Extractor` gives them one by one, with the work
that does not change within a *series* (same size, spectral width, observe frequency,
carrier, digital-filter delay) done once:

* the first spectrum of each series goes through the Extractor itself (it auto-phases
  when no phase is known yet, and its row is the reference); its noise level, baseline
  mask (signal-free points of the robust polynomial, :func:`ingest.processing.nmr.baseline`)
  and baseline order are kept for the series;
* the digital-filter delay is removed as the per-spectrum path (and TopSpin) removes it, as a
  linear phase of the zero-filled transform (:func:`ingest.processing.nmr.filter_phase`), folded
  into the phase: one transform per spectrum; the apodization weights, the first-point
  correction (spectra without a filter delay), the
  phase and the 2/sw scaling are precomputed once per series, and the FFTs run in place,
  :data:`DEFAULT_CHUNK` spectra per call, in work arrays reused from batch to batch (memory
  bounded by the chunk, no fresh pages to fault in), in complex64 when the series' first FID
  shows the round-off harmless against its noise (:mod:`ingest.processing.fft_precision`;
  complex128 otherwise, and for a batch holding a FID outside that guard);
* only what the rows read is written (:mod:`ingest.processing.slab`): the phased real part on
  one slab holding every window wherever the followed line moves them, and at the baseline's
  points; the rest stays NaN (a spectrum is made whole where a line is too broad for its
  window, and for the extractor's ``last``); the baseline polynomial of each spectrum is a
  least-squares fit on the series' signal-free points, subtracted with the first-point
  correction on the slab by one BLAS matrix-vector product per spectrum, in place
  (:func:`ingest.processing.series_baseline.subtract_rows`); the noise is the series' noise;
* the window offset (the water line's measured position, ``[nmr] follow``) is one argmax
  per spectrum on precomputed indices, and every Lorentzian window is fitted in all
  spectra of a batch at once (:func:`ingest.processing.lorentz_batch.fit_lorentzians`;
  compiled with numba once :func:`ingest.processing.lorentz_batch.load_compiled` ran).

What it does not vectorise it hands to the per-spectrum code on the batch-processed
spectrum (same functions, same numbers): windowed integrals with a local baseline, Voigt
fits, fits whose optimum leaves the bounds, the assignment checks.  A series whose first
spectrum needed a lower baseline order than configured (few signal-free points: the
order, hence every integral, may change from spectrum to spectrum) gets the per-spectrum
noise, baseline and fits for every spectrum; only the FFT work is batched there.
Spectra without a FID (vendor-processed only) and EPR spectra go through the Extractor.

Differences from the per-spectrum path (tests/test_fast_path.py): the noise and the
baseline mask are the series' (per spectrum they are re-estimated), and the transforms
run in complex64 where the series proved it harmless (tests/test_precision.py: within 1e-3
of each standard error of the complex128 numbers; the zero-filled transform then as four
quarter-size ones, :mod:`ingest.processing.zf_fft`).  What a series shares is
:mod:`ingest.processing.batch_series`.
Fitted shifts, widths and areas agree within a small fraction of their
standard errors; ``snr`` within the noise estimate's scatter (a few %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.fft

from ingest.processing import zf_fft_nb
from ingest.processing.assignment import assignment_warnings
from ingest.processing.batch_rows import integral_baseline, window_offsets
from ingest.processing.batch_series import Series, series_from, series_key, stored_words
from ingest.processing.fft_precision import PrecisionCheck, check_precision, fid_norm
from ingest.processing.lorentz_batch import (
    fit_lorentzians,
    window_integrals,
)
from ingest.processing.nmr import (
    ProcessedNMR,
    noise_sigma,
    reference_offset,
)
from ingest.processing.nmr import baseline as robust_baseline
from ingest.processing.observables import (
    Extractor,
    ObservablesConfig,
    _common,
    _peak_fit,
    window_offset,
)
from ingest.processing.peaks import PeakFit
from ingest.processing.row_parts import cfg_note as _cfg_note
from ingest.processing.row_parts import peaks_columns as _peaks_columns
from ingest.processing.series_baseline import (
    subtract_product,
    subtract_rows,
)
from ingest.processing.slab import Slab
from ingest.processing.widths import broadened, refine_widths
from ingest.processing.zf_fft import quarter_fft, split_fft, vendor_real
from ingest.types import NMRSpectrum

__all__ = ["DEFAULT_CHUNK", "BatchExtractor"]

#: Spectra per FFT/fit batch: 16 x 128k complex64 = 16 MB per work array (8 to 32 measured
#: within 15 % of each other; 16 the fastest, benchmarks/bench_ingest.py).
DEFAULT_CHUNK = 16
class BatchExtractor:
    """Rows of many spectra, as :class:`ingest.processing.observables.Extractor` gives them.

    Parameters
    ----------
    cfg : ObservablesConfig, optional
        Default :meth:`ObservablesConfig.default`.
    phase : (p0_deg, p1_deg), optional
        Known phase; None auto-phases the first NMR spectrum (and reuses that phase).
    chunk : int
        Spectra per FFT / fit batch (memory: ~3 x chunk x FFT size x 8 bytes).
    precision : {"auto", "complex128"}
        ``"auto"`` (default): a series' transforms run in complex64 when its first FID shows
        the round-off harmless against the noise (:mod:`ingest.processing.fft_precision`),
        else, and for any batch holding a FID outside that guard, in complex128;
        ``"complex128"``: always double precision.

    Attributes
    ----------
    extractor : Extractor
        The per-spectrum extractor used for first spectra, EPR and processed-only data.
    stats : dict
        Spectra transformed in each precision (``{"complex64": n, "complex128": n}``).
    """

    def __init__(self, cfg: ObservablesConfig | None = None, *, phase: tuple[float, float] | None = None,
                 chunk: int = DEFAULT_CHUNK, precision: str = "auto") -> None:
        if precision not in ("auto", "complex128"):
            raise ValueError(f"precision must be 'auto' or 'complex128', got {precision!r}")
        self.cfg = cfg or ObservablesConfig.default()
        self.precision = precision
        self.stats: dict[str, int] = {}
        self.extractor = Extractor(self.cfg, phase=phase)
        self.chunk = max(1, int(chunk))
        self._series: dict[tuple, Series] = {}
        self._work: dict[tuple, tuple[np.ndarray, ...]] = {}
        self._slab_buf: tuple[Any, np.ndarray] = (None, np.empty((0, 0)))  # (series key, NaN-filled spectra)
        self._split: tuple[np.ndarray, np.ndarray] | None = None  # the last slab batch's transforms
        self._in_check = False  # the precision check's own transforms: whole spectra
        self._last_pending: tuple | None = None  # the last batch's last spectrum, for _settle_last
        self._early: dict[tuple, Any] = {}  # series set up ahead of their first row: its processing
        #: Keep the extractor's ``last`` spectrum (whole, its own arrays) after each :meth:`rows`;
        #: False where nothing reads it (a forked worker of ingest.batch): then it may alias work arrays.
        self.keep_last = True

    def precision_of(self, spec: NMRSpectrum) -> PrecisionCheck | None:
        """The precision check of ``spec``'s series (None before its first spectrum, or when the
        series is not batched)."""
        ser = self._series.get(series_key(spec))
        return None if ser is None else ser.precision

    @property
    def phase(self) -> tuple[float, float] | None:
        """The phase in use (from the first NMR spectrum unless given)."""
        return self.extractor.phase

    def __call__(self, spec: Any) -> dict[str, Any]:
        """One spectrum (the per-spectrum path; batch with :meth:`rows`)."""
        return self.rows([spec])[0]

    # ------------------------------------------------------------------ public
    def prime(self, spec: Any) -> None:
        """Set up the series of ``spec`` from it (phase, noise, baseline mask) without a row.

        Then every spectrum of that series goes through the batch path, including ``spec``
        itself, so the rows do not depend on which spectrum of the series a call starts
        with (screening primes each chunk with its experiment's first NMR spectrum).
        """
        if isinstance(spec, NMRSpectrum) and spec.fid is not None and np.asarray(spec.fid).ndim == 1:
            key = series_key(spec)
            if key not in self._series:
                self._start_series(spec, key)

    def start_series_early(self, spec: Any) -> None:
        """Set the series of ``spec`` up now, as its first row would (phase, noise, baseline
        mask, precision), keeping its processing: the next spectrum of that series given to
        :meth:`rows` (``spec``, read again) then gets the row a series' first spectrum gets, from
        that processing, the same row.  ingest.batch sets the first block's series up this
        way, forks its workers, then makes that block's rows while they work."""
        if isinstance(spec, NMRSpectrum) and spec.fid is not None and np.asarray(spec.fid).ndim == 1:
            key = series_key(spec)
            if key not in self._series and key not in self._early:
                proc = self._process_and_set_up(spec, key)
                if key in self._series:
                    self._early[key] = proc

    def drop_early(self) -> None:
        """Forget the processing kept by :meth:`start_series_early` (its series stay set up)."""
        self._early.clear()

    def primed_copy(self) -> BatchExtractor:
        """A new extractor with this one's configuration, phase and series (those :meth:`prime`
        set up), sharing their precomputed state, with work arrays and statistics of its own:
        what a screening worker reuses from chunk to chunk of one experiment, so that the
        series' set-up (the first spectrum's full processing, its baseline operator and the
        precision check) is paid once per process, not per chunk.
        Its rows are those of a fresh extractor primed with the same spectra."""
        new = BatchExtractor(self.cfg, phase=self.phase, chunk=self.chunk, precision=self.precision)
        new._series = dict(self._series)
        return new

    def rows(self, spectra: Sequence[Any]) -> list[dict[str, Any]]:
        """One row per spectrum, in order (columns of :mod:`ingest.processing.observables`)."""
        out: list[dict[str, Any] | None] = [None] * len(spectra)
        pending: dict[tuple, list[int]] = {}
        for i, s in enumerate(spectra):
            if stored_words(s) is None and (not isinstance(s, NMRSpectrum) or s.fid is None or np.asarray(s.fid).ndim != 1):
                out[i] = self.extractor(s)
                continue
            key = series_key(s)
            if key not in self._series:
                out[i] = self._start_series(s, key)
                continue
            if key in self._early:  # its series set up ahead (start_series_early): the first row
                out[i] = self.extractor.row_from(s, self._early.pop(key))
                continue
            pending.setdefault(key, []).append(i)
            if len(pending[key]) >= self.chunk:
                self._flush(spectra, pending.pop(key), out)
        for idx in pending.values():
            self._flush(spectra, idx, out)
        if self.keep_last:
            self._settle_last()
        return out  # type: ignore[return-value]

    # ------------------------------------------------------------------ series
    def _start_series(self, spec: NMRSpectrum, key: tuple) -> dict[str, Any]:
        """The reference row of a series' first spectrum, its series set up on the way."""
        return self.extractor.row_from(spec, self._process_and_set_up(spec, key))

    def _process_and_set_up(self, spec: NMRSpectrum, key: tuple) -> Any:
        """The reference processing of ``spec`` (it sets the phase), and from it the series
        (when its phase is finite)."""
        proc = self.extractor.process(spec)
        if math.isfinite(proc.p0_deg):
            self._setup_series(spec, key, proc)
        return proc

    def _setup_series(self, spec: NMRSpectrum, key: tuple, proc: Any) -> None:
        """The series of ``spec`` from its reference processing ``proc`` (finite phase), with
        its transforms' precision (:meth:`_check_precision`)."""
        ser = self._series[key] = series_from(spec, key, proc, self.cfg.nmr)
        if self.precision == "auto":
            self._check_precision(ser, np.asarray(spec.fid))

    def _first_real(self, ser: Series, fid: np.ndarray, dtype: Any) -> np.ndarray:
        """One FID's real spectrum (first-point corrected, before baseline) in ``dtype``."""
        fids, U, real = self._buffers(ser, 1, dtype)
        fids[0] = fid
        self._in_check = True
        try:
            r, fp = self._spectra_real(ser, fids, U, real)
        finally:
            self._in_check = False
        return r[0] - (np.stack([fp.real, fp.imag], axis=1).astype(np.float64) @ ser.first_point_rows())[0]

    def _check_precision(self, ser: Series, fid: np.ndarray) -> None:
        """The series' first FID through both precisions: complex64 for the series when the
        difference is within the guard of :mod:`ingest.processing.fft_precision`."""
        got = {dt: self._first_real(ser, fid, dt) for dt in (np.complex128, np.complex64)}
        ser.precision = check_precision(got[np.complex64], got[np.complex128], ser.noise, fid_norm(fid))
        ser.params["fft_dtype"] = ser.precision.label
        self._work.clear()

    def _dtype(self, ser: Series, fids: Sequence[np.ndarray]) -> np.dtype:
        """complex64 when the series passed the guard and every FID of the batch stays within it."""
        p = ser.precision
        single = p is not None and p.single and all(p.holds(fid_norm(f)) for f in fids)
        dt = np.dtype(np.complex64 if single else np.complex128)
        self.stats[dt.name] = self.stats.get(dt.name, 0) + len(fids)
        return dt

    # ------------------------------------------------------------------ batches
    def _buffers(self, ser: Series, b: int, dtype: Any = np.complex64
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Work arrays of a series for ``b`` spectra, reused from batch to batch (fresh pages are
        slow to fault in): FIDs (b, td) and spectra (b, m) in ``dtype`` (complex64 or complex128),
        real spectra (b, m) float64."""
        td = int(ser.apod.size)
        dtype = np.dtype(dtype)
        have = self._work.get((ser.key, dtype.char))
        if have is None or have[0].shape[0] < b:
            n = max(b, self.chunk)
            have = (np.empty((n, td), dtype), np.empty((n, ser.m), dtype), np.empty((n, ser.m)))
            self._work = {(ser.key, dtype.char): have}  # one series' buffers at a time bound the memory
        return have[0][:b], have[1][:b], have[2][:b]

    def _spectra_real(self, ser: Series, fids: np.ndarray, U: np.ndarray, real: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Phased real spectra (vendor order, before baseline) of ``fids`` into ``real``, without
        the first-point correction; returns them and that correction's factor per spectrum
        (``fp``: subtract ``Re(fp * rot)``, :meth:`Series.first_point_rows`).

        ``fids`` (overwritten) and ``U`` are work arrays; every FFT runs in place, in their
        precision (complex64 or complex128).
        """
        m, h, td = ser.m, ser.m // 2, ser.apod.size
        apod, rot, split = ser.consts(U.dtype)
        if split is not None:  # complex64: the zero-filled transform as 2 or 4 shorter ones
            ways, tw, rot2 = split
            np.multiply(fids, apod, out=U[:, :td])
            U[:, td:h] = 0.0
            x0 = U[:, 0].copy()
            Uw = U.reshape(U.shape[0], ways, m // ways)
            R = split_fft(Uw, tw) if ways == 2 else quarter_fft(Uw, tw)
            return self._split_real(ser, R, rot2, real), ser.fp_c * x0
        np.multiply(fids, apod, out=U[:, :td])
        U[:, td:] = 0.0
        x0 = U[:, 0].copy()
        U = scipy.fft.fft(U, axis=1, workers=1, overwrite_x=True)
        U *= rot
        # vendor order (ser.perm: fftshift, then reversed) by two reversed slices, no gather
        if m % 2 == 0 and np.array_equal(ser.perm[[0, h - 1, h, m - 1]], [h - 1, 0, m - 1, h]):
            np.copyto(real[:, :h], U.real[:, h - 1::-1])
            np.copyto(real[:, h:], U.real[:, :h - 1:-1])
        else:
            np.copyto(real, U.real[:, ser.perm])
        return real, ser.fp_c * x0

    def _spectra_compiled(self, ser: Series, specs: list[Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`_spectra_real` of the spectra ``specs`` in complex64 through the compiled preparation
        pass (:mod:`ingest.processing.zf_fft_nb`: copy, norm, apodization and twiddle in one pass; a
        FID still as its stored words, :mod:`ingest.readers.stored_fid`, read as such), when it is
        loaded, the series runs split in complex64 and every FID is within the precision guard;
        None otherwise (the caller then takes the numpy path, which decides afresh)."""
        nb = zf_fft_nb.kernels()
        p = ser.precision
        if nb is None or p is None or not p.single:
            return None
        dt = np.dtype(np.complex64)
        apod, _, split = ser.consts(dt)
        if split is None:
            return None
        src = []  # (values as pairs, scale): the stored words, or the FID's float64 pairs
        for s in specs:
            kept = stored_words(s)
            if kept is None:
                f = np.asarray(s.fid)
                if f.dtype != np.complex128 or not f.flags.c_contiguous:
                    return None
                kept = (f.view(np.float64), 1.0)
            src.append(kept)
        ways, tw, rot2 = split
        b = len(specs)
        _, U, real = self._buffers(ser, b, dt)
        Uw = U.reshape(b, ways, ser.m // ways).view(np.float32)  # rows as float32 pairs
        twv = tw.view(np.float32)
        x0 = np.empty(b, dt)
        for j, (x, scale) in enumerate(src):
            if ways == 2:
                nb.prep_split(x, scale, apod, twv, Uw[j, 0], Uw[j, 1])
                x0[j] = U[j, 0]
            else:
                u = Uw[j]
                nb.prep_quarters(x, scale, apod, twv[1], twv[2], twv[3], u[0], u[1], u[2], u[3],
                                 x0[j:j + 1].view(np.float32), zf_fft_nb.exact_in_float32(x, scale))
            if not p.holds(math.sqrt(nb.sum_squares(x, scale))):
                return None
        self.stats["complex64"] = self.stats.get("complex64", 0) + b
        R = scipy.fft.fft(Uw.view(dt), axis=-1, workers=1, overwrite_x=True)
        return self._split_real(ser, R, rot2, real), ser.fp_c * x0

    def _split_real(self, ser: Series, R: np.ndarray, rot2: np.ndarray, real: np.ndarray) -> np.ndarray:
        """The phased real spectra of the split transforms ``R`` (b, ways, m/ways): whole, in ``real``
        (:func:`ingest.processing.zf_fft.vendor_real`), or, for a series with a slab
        (:mod:`ingest.processing.slab`), on the windows' slab and the baseline's points only, in a
        NaN-filled array of the series (then ``R`` is kept for :meth:`_full_row` until the next batch)."""
        self._split = None
        if ser.slab_at is None or self._in_check:
            return vendor_real(R, rot2, real)
        if ser.slab is None:
            ser.slab = Slab.build(ser.m, *ser.slab_at, ser.fit_idx, rot2)
        b = R.shape[0]
        key, buf = self._slab_buf
        if key != ser.key or buf.shape[0] < b:
            buf = np.full((max(b, self.chunk), ser.m), np.nan)
            self._slab_buf = (ser.key, buf)
        self._split = (R, rot2)
        return ser.slab.fill(R, rot2, buf[:b])

    def _full_row(self, ser: Series, j: int, coef: np.ndarray | None, F: np.ndarray | None) -> np.ndarray:
        """Spectrum ``j`` of the batch whole (baseline, first point subtracted) from :meth:`_split_real`'s transforms."""
        R, rot2 = self._split
        out = np.empty((1, ser.m))
        vendor_real(R[j:j + 1].copy(), rot2, out)
        parts = [] if coef is None else [(coef[j], ser.vander.T)]
        if F is not None:
            parts.append((F[j], ser.first_point_rows()))
        for h, rows in parts:
            out[0] -= h @ rows
        return out[0]

    def _flush(self, spectra: Sequence[Any], idx: list[int], out: list[dict[str, Any] | None]) -> None:
        self._last_pending = None  # this batch's rows replace the extractor's last: never settled
        ser = self._series[series_key(spectra[idx[0]])]
        got = self._spectra_compiled(ser, [spectra[i] for i in idx])
        if got is not None:
            dt = np.dtype(np.complex64)
            real, fp = got
        else:
            dt = self._dtype(ser, [spectra[i].fid for i in idx])
            fids, U, real = self._buffers(ser, len(idx), dt)
            for j, i in enumerate(idx):
                fids[j] = spectra[i].fid
            real, fp = self._spectra_real(ser, fids, U, real)
        params = ser.params if dt.name == ser.params.get("fft_dtype") else dict(ser.params, fft_dtype=dt.name)
        # the first-point correction (FIDs sampled from t = 0; none for digital-filter data)
        F = np.stack([fp.real, fp.imag], axis=1).astype(np.float64) if ser.fp_c else None  # (b, 2)
        rows2 = ser.first_point_rows()
        if ser.exact or ser.pinv is None:
            if F is not None:
                subtract_product(real, F, rows2)
            if ser.exact:
                for j, row in enumerate(self._rows_exact(ser, [spectra[i] for i in idx], real, params)):
                    out[idx[j]] = row
                last = self.extractor.last
                if last is not None and np.shares_memory(last.real, real):
                    self.extractor.last = replace(last, real=last.real.copy())
                return
            coef, blv = None, None
        else:
            # baseline on the corrected signal-free points (read there, or computed there when the
            # slab's fill wrote only the slab); then one product subtracts the baseline polynomial
            # and the first-point correction together (one pass over the spectra)
            yb = real[:, ser.fit_idx] if self._split is None else ser.slab.at_points(*self._split, real)
            if F is None:
                coef = yb @ ser.pinv.T
                if ser.basis is None:
                    ser.basis = np.ascontiguousarray(ser.vander.T)
                H = coef
            else:
                coef = (yb - F @ rows2[:, ser.fit_idx]) @ ser.pinv.T
                if ser.basis is None:
                    ser.basis = np.ascontiguousarray(np.vstack([ser.vander.T, rows2]))
                H = np.hstack([coef, F])
            if self._split is not None:  # the slab only (ingest.processing.slab); the rest stays NaN
                lo, hi = ser.slab_at
                if ser.slab_basis is None:  # ser.basis is set once, just above
                    ser.slab_basis = np.ascontiguousarray(ser.basis[:, lo:hi])
                subtract_rows(real[:, lo:hi], H, ser.slab_basis)
            else:
                subtract_product(real, H, ser.basis)
            # the baselines are not kept (only their presence is read by the rows: the polynomial
            # was fitted at the configured order); NaN, loudly, should anything read the values
            blv = np.broadcast_to(np.nan, real.shape)
        full = None if self._split is None else (lambda j: self._full_row(ser, j, coef, F))
        for j, row in enumerate(self._rows(ser, [spectra[i] for i in idx], real, blv, params, full)):
            out[idx[j]] = row
        last = self.extractor.last  # made whole and its own (no alias of the work arrays) by _settle_last
        self._last_pending = None if last is None else (ser, last, coef, full, real, len(idx) - 1)

    def _settle_last(self) -> None:
        """The extractor's ``last`` (the last spectrum of the last batch) made whole, with its baseline,
        in arrays of its own: once per :meth:`rows` call, not per batch (a later batch replaces it)."""
        pending, self._last_pending = self._last_pending, None
        if pending is None:
            return
        ser, last, coef, full, real, j = pending
        if self.extractor.last is not last:  # replaced since (a series' first spectrum)
            return
        base = None if coef is None else ser.vander @ coef[-1]
        y = last.real.copy() if full is None or not np.shares_memory(last.real, real) else full(j)
        self.extractor.last = replace(last, real=y, baseline=base)

    def _rows_exact(self, ser: Series, specs: list[NMRSpectrum], real: np.ndarray, params0: dict[str, Any]
                    ) -> list[dict[str, Any]]:
        """Rows with the per-spectrum noise, baseline and fits (series whose baseline is marginal)."""
        n_cfg = self.cfg.nmr
        rows = []
        for j, spec in enumerate(specs):
            y = real[j]
            sigma = noise_sigma(y)
            params = dict(params0, noise_sigma=sigma)
            bl = None
            if n_cfg.baseline is not None:
                used: list[int] = []
                bl = robust_baseline(ser.ppm, y, order=int(n_cfg.baseline), noise=sigma, _used=used)
                y = y - bl
                params["baseline"] = f"poly{used[-1] if used else n_cfg.baseline}"
            off = reference_offset(ser.ppm, y, n_cfg.processing_reference())
            proc = ProcessedNMR(ppm=ser.ppm + off if off else ser.ppm, real=y, p0_deg=ser.phase[0],
                                p1_deg=ser.phase[1], sfo1_hz=float(spec.meta.sfo1_hz), reference_offset_ppm=float(off),
                                baseline=bl, params=params)
            offset = window_offset(proc, n_cfg)
            fits = {p.name: _peak_fit(p, proc, n_cfg.snr_min, sigma, offset) for p in n_cfg.peaks}
            rows.append(self._row(spec, proc, fits, offset))
        return rows

    def _rows(self, ser: Series, specs: list[NMRSpectrum], real: np.ndarray, bl: np.ndarray | None,
              params: dict[str, Any], full: Any = None) -> list[dict[str, Any]]:
        """Rows of a batch; ``full(j)``: spectrum ``j`` whole, when ``real`` holds only the
        windows' slab (:meth:`_split_real`; None: ``real`` is whole)."""
        n_cfg = self.cfg.nmr
        ref = n_cfg.processing_reference()
        offs = [reference_offset(ser.ppm, real[j], ref) for j in range(len(specs))]
        shared = all(o == offs[0] for o in offs)
        axes = {o: ser.ppm + o if o else ser.ppm for o in set(offs)}  # one referenced axis an offset
        p0, p1 = ser.phase
        procs = [ProcessedNMR(ppm=axes[o], real=real[j], p0_deg=p0, p1_deg=p1, sfo1_hz=float(specs[j].meta.sfo1_hz),
                              reference_offset_ppm=float(o), baseline=None if bl is None else bl[j], params=params)
                 for j, o in enumerate(offs)]
        woff = window_offsets(self.cfg.nmr, procs, real, shared)
        fits: list[dict[str, PeakFit]] = [{} for _ in specs]
        corr = float(ser.params.get("noise_corr_points", 1.0))
        for p in n_cfg.peaks:
            batch: list[PeakFit | None] = [None] * len(specs)
            wins = [(p.window_ppm[0] + o, p.window_ppm[1] + o) for o in woff]
            if p.method == "fit" and p.shape == "lorentzian" and shared:
                batch = fit_lorentzians(procs[0].ppm, real, wins, sfo1_hz=procs[0].sfo1_hz, snr_min=n_cfg.snr_min,
                                        noise=ser.noise, noise_corr=corr)
            elif p.method == "integral" and shared and integral_baseline(p, procs[0]) == "none":
                batch = window_integrals(procs[0].ppm, real, wins, sfo1_hz=procs[0].sfo1_hz, noise=ser.noise,
                                         noise_corr=corr)
            for j, pf in enumerate(batch):
                fits[j][p.name] = pf if pf is not None else _peak_fit(p, procs[j], n_cfg.snr_min, ser.noise, woff[j])
        notes: dict[Any, str] = {}  # the provenance note of each (offset, sfo1): the same string
        for pr in procs:
            k = (pr.reference_offset_ppm, pr.sfo1_hz)
            if k not in notes:
                notes[k] = pr.processing + _cfg_note(self.cfg.source)
        return [self._row(s, pr, f, o, None if full is None else (lambda j=j: full(j)),
                          note=notes[pr.reference_offset_ppm, pr.sfo1_hz])
                for j, (s, pr, f, o) in enumerate(zip(specs, procs, fits, woff))]

    def _row(self, spec: NMRSpectrum, proc: ProcessedNMR, fits: dict[str, PeakFit], offset: float,
             full: Any = None, note: str | None = None) -> dict[str, Any]:
        """The row of :func:`ingest.processing.observables._nmr_row` from a processed spectrum and its
        fits (a dict of this spectrum's own, kept as ``extractor.last_fits``); ``full()``: the whole
        spectrum when ``proc.real`` holds only the windows' slab (a line too broad for its window is
        re-measured beyond the windows: it gets the whole spectrum); ``note``: ``proc.processing``
        with the observables file's name, when already made for another spectrum of the batch."""
        cfg, meta = self.cfg, spec.meta
        peaks = cfg.nmr.peaks
        if broadened(fits, peaks, sfo1_hz=proc.sfo1_hz, offset=offset):  # else refine_widths changes nothing
            if full is not None:
                proc = replace(proc, real=full())
            fits = refine_widths(fits, peaks, proc.ppm, proc.real, sfo1_hz=proc.sfo1_hz, offset=offset,
                                 noise=proc.params.get("noise_sigma"),
                                 noise_corr=float(proc.params.get("noise_corr_points", 1.0)))  # as the Extractor
        row = _common(meta, "nmr", meta.vendor)
        row["sfo1_MHz"] = meta.sfo1_hz / 1e6
        row["ns"] = int(meta.ns)
        row["window_offset_ppm"] = offset
        row.update(_peaks_columns(peaks, fits))
        notes: list[str] = []
        for p in peaks:
            pf = fits[p.name]
            if pf.warnings:
                notes += [f"{p.name}: {w}" for w in pf.warnings if not (p.optional and w == "no peak above noise")]
        notes += assignment_warnings(peaks, fits, offset, sfo1_hz=proc.sfo1_hz)
        row["processing"] = note if note is not None else proc.processing + _cfg_note(cfg.source)
        row["nmr_warnings"] = "; ".join(notes)
        self.extractor.last, self.extractor.last_fits = proc, fits
        return row
