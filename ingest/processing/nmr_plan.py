"""The per-series plan of the live NMR path: what the first spectrum fixed, reused on the next ones.

Once the first spectrum of a series (same vendor, size, spectral width, observe
frequency, carrier, digital-filter delay and processing parameters) has been processed
in full by :func:`ingest.processing.nmr.process_fid` (phase found or given, robust
baseline), a :class:`SeriesPlan` keeps:

* the apodization weights (time from the digital filter's delay; the first-point factor
  folded in where it applies, :func:`ingest.processing.nmr.effective_first_point`), and the
  phase with the ``2/sw`` scaling and the filter's linear phase
  (:func:`ingest.processing.nmr.filter_phase`, TopSpin's removal of the delay), as arrays
  in vendor order;
* the ppm axis;
* where the robust baseline's iteration converged (its decimated signal-free mask and
  noise threshold per order, :func:`ingest.processing.nmr_baseline.baseline`) and the
  scaled axis of its polynomial;
* the noise correlation length.

:meth:`SeriesPlan.process` then gives :class:`ingest.processing.nmr.ProcessedNMR` as
``process_fid(spec, phase=plan.phase, ...)`` does: the FFT chain is the same arithmetic
(equal to rounding; scratch arrays reused) in complex128, and runs in complex64 when the
series' first FID proved that harmless (:meth:`SeriesPlan.check_precision`,
:mod:`ingest.processing.fft_precision`: the round-off ~1e-4 of the noise in rms; every later
FID re-checked by its norm, complex128 for one outside the guard); the zero-filled transform
runs as two half-size ones (:mod:`ingest.processing.zf_fft`) in complex64, and in either
precision on two threads when the process may use two cores (:func:`live_fft_workers`); the noise is re-estimated on every spectrum
(:func:`noise_sigma`), and the robust baseline runs in full, with its order fall-backs,
but its iteration starts from where the previous spectrum's converged (2-3 iterations
instead of ~25 from the crude first pass).  That start may end at a slightly different
mask (up to 0.13 noise sd of baseline on the simulated series of the tests): fitted lines
are unaffected, windowed sums of windows with no line move by up to one standard error.
When the converged mask is close to the coverage rules (:func:`comfortable`), another
start could change the polynomial's order, so the iteration starts from scratch exactly
as per spectrum (shared/data/nmr/bruker-array: identical rows).

Agreement with the full per-spectrum path on real files and a noisy simulated series:
tests/test_live_fast.py (shifts, widths and areas within a small fraction of their
standard errors).  Physics of the steps: docs/physics.md §5.1 (digital filter), §1.3
(why the water line is not self-referenced).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft

from ingest.processing.fft_precision import PrecisionCheck, check_precision, fid_norm
from ingest.processing.nmr import (
    ProcessedNMR,
    apodization,
    effective_first_point,
    filter_phase,
    group_delay_points,
    noise_sigma,
    phase,
    ppm_axis,
    reference_offset,
)
from ingest.processing.nmr_baseline import baseline as robust_baseline
from ingest.processing.nmr_baseline import end_free_fractions, longest_signal_run
from ingest.processing.zf_fft import even_odd, half_twiddle, split_fft, vendor_real
from ingest.types import NMRSpectrum

__all__ = ["SeriesPlan", "comfortable", "live_fft_workers", "series_key"]


def live_fft_workers() -> int:
    """Threads for the live plan's zero-filled transform: 2 when this process may run on two
    or more CPUs, else 1.  The transform then runs as its even- and odd-bin halves at once
    (:mod:`ingest.processing.zf_fft`), which shortens the time to the SOC row (issue 13) by
    ~1.8 ms of the 5.9 ms of a 131,072-point complex128 transform with its phase; the live
    path is one file at a time, so the second core is otherwise idle.  The batch engine keeps
    one thread per worker process."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    return 2 if n >= 2 else 1


def series_key(spec: NMRSpectrum, lb_hz: float, zero_fill: int, baseline: Any,
               phase_deg: tuple[float, float]) -> tuple:
    """What must not change for a plan to apply: vendor, FID size, sw, sfo1, carrier, delay,
    processing parameters and phase."""
    m = spec.meta
    return (m.vendor, int(np.asarray(spec.fid).size), float(m.sw_hz), float(m.sfo1_hz), float(m.carrier_ppm),
            float(group_delay_points(m)), float(lb_hz), int(zero_fill), baseline,
            (float(phase_deg[0]), float(phase_deg[1])))


#: A signal-free mask is comfortably inside the coverage rules of the robust baseline
#: (:func:`ingest.processing.nmr_baseline._covers`: 5 % free points in each end segment, no
#: signal run over 50 % of the axis) with 10 % free points at each end and no run over 42 %.
#: Closer to the rules, another spectrum's iteration may end at a different order or mask
#: depending on where it starts (shared/data/nmr/bruker-array: the cubic of the first
#: spectrum, the quadratic of the next ones), so it starts from scratch as per spectrum.
COMFORT_END_FREE, COMFORT_MAX_RUN = 0.10, 0.42


def comfortable(state: dict) -> bool:
    """Whether the converged baseline state (``nmr_baseline.baseline(_state=...)``) may seed the next spectrum."""
    order = state.get("used")
    if order is None or order not in state:
        return False
    mask = state[order][0]
    if order > 0 and min(end_free_fractions(mask, 2 * (order + 1))) < COMFORT_END_FREE:
        return False
    return not longest_signal_run(mask) > COMFORT_MAX_RUN * mask.size


@dataclass
class SeriesPlan:
    """Precomputed processing of one series (see the module docstring).

    Build with :meth:`from_first`; apply with :meth:`process`.
    """

    key: tuple
    td: int
    n: int
    gd: float
    apod: np.ndarray               # (td,) apodization, first-point factor folded in
    rot_re: np.ndarray             # (n,) Re(phase * filter phase) * 2/sw, vendor order
    rot_im: np.ndarray             # (n,) Im(phase * filter phase) * 2/sw, vendor order
    ppm: np.ndarray                # (n,) raw axis, vendor order
    order_cfg: int | None          # the configured baseline order (None: no baseline)
    #: the robust baseline's converged state per order tried: (decimated signal-free mask, threshold noise)
    state: dict = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    phase: tuple[float, float] = (0.0, 0.0)
    reference: Any = None
    #: counts (spectra, cold baseline starts, spectra sent to complex128 by the guard) and the
    #: first FID's round-off in noise sigmas (``fft_rms_roundoff_sigma``, ``fft_max_roundoff_sigma``)
    stats: dict[str, float] = field(default_factory=lambda: {"spectra": 0})
    _rot_re_fft: np.ndarray | None = field(default=None, repr=False)  # rot_re in FFT order
    _rot_im_fft: np.ndarray | None = field(default=None, repr=False)
    #: the transforms' precision, proven on the first FID (:meth:`check_precision`); None: complex128
    precision: PrecisionCheck | None = None
    _bufs: dict = field(default_factory=dict, repr=False)  # scratch per precision (:meth:`_scratch`)
    _comfy: bool | None = field(default=None, repr=False)  # comfortable(state), cached until it changes
    #: threads of the zero-filled transform (:func:`live_fft_workers`); above 1 it runs split
    workers: int = 1

    # ------------------------------------------------------------------ build
    @classmethod
    def from_first(cls, spec: NMRSpectrum, proc: ProcessedNMR, *, lb_hz: float, zero_fill: int,
                   baseline: int | None, reference: Any, first_point: float = 0.5,
                   precision: str = "auto", workers: int | None = None) -> SeriesPlan:
        """The plan of ``spec``'s series from its full processing ``proc`` (phase and baseline fixed).

        ``precision``: ``"auto"`` runs the transforms in complex64 when the first FID shows it
        harmless (:meth:`check_precision`), ``"complex128"`` always in double precision.
        ``workers``: threads of the zero-filled transform (default :func:`live_fft_workers`).
        """
        if precision not in ("auto", "complex128"):
            raise ValueError(f"precision must be 'auto' or 'complex128', got {precision!r}")
        meta = spec.meta
        fid = np.asarray(spec.fid)
        td = fid.size
        gd = float(proc.params.get("group_delay", group_delay_points(meta)))
        n = int(proc.params["size"])
        apod = apodization(td, meta.sw_hz, lb_hz, max(gd, 0.0))
        apod[0] *= effective_first_point(first_point, gd)
        rot = phase(np.ones(n, dtype=complex), proc.p0_deg, proc.p1_deg) * (2.0 / float(meta.sw_hz))
        if gd > 0:
            rot *= filter_phase(n, gd)
        ppm = ppm_axis(n, meta.sw_hz, meta.sfo1_hz, meta.carrier_ppm)
        key = series_key(spec, lb_hz, zero_fill, baseline, proc.phase)
        params = dict(proc.params, autophased=False, phase_source="given")
        plan = cls(key=key, td=td, n=n, gd=gd, apod=apod,
                   rot_re=np.ascontiguousarray(rot.real), rot_im=np.ascontiguousarray(rot.imag), ppm=ppm,
                   order_cfg=baseline, params=params, phase=proc.phase, reference=reference,
                   workers=live_fft_workers() if workers is None else max(1, int(workers)))
        inv = np.fft.ifftshift(np.arange(n)[::-1])  # FFT index k -> vendor index
        plan._rot_re_fft, plan._rot_im_fft = plan.rot_re[inv], plan.rot_im[inv]
        if baseline is not None and proc.baseline is not None:
            # the first spectrum's robust iteration once more, to keep where it converged
            used: list[int] = []
            robust_baseline(ppm, proc.real + proc.baseline, order=int(baseline),
                            noise=float(proc.params["noise_sigma"]), _state=plan.state, _used=used)
            plan.state["used"] = used[-1] if used else int(baseline)
        plan.params["fft_dtype"] = "complex128"
        if precision == "auto":
            plan.check_precision(fid, float(proc.params["noise_sigma"]))
        return plan

    # ------------------------------------------------------------------ apply
    def matches(self, spec: NMRSpectrum, lb_hz: float, zero_fill: int, baseline: Any) -> bool:
        """True when ``spec`` belongs to this plan's series (same shape, parameters and phase)."""
        if spec.fid is None or np.asarray(spec.fid).ndim != 1:
            return False
        return series_key(spec, lb_hz, zero_fill, baseline, self.phase) == self.key

    def _split(self, dtype: np.dtype) -> bool:
        """Whether the zero-filled transform runs as two half-size ones (:mod:`ingest.processing.zf_fft`):
        in complex64 (where that is faster on one thread) or on two threads, with the FID inside
        the first half."""
        return (np.dtype(dtype) == np.complex64 or self.workers > 1) and self.n % 2 == 0 \
            and self.td <= self.n // 2

    def _scratch(self, dtype: np.dtype) -> tuple[np.ndarray, ...]:
        """Scratch arrays and constants of one precision, reused from spectrum to spectrum (no page
        faults): FID (td,) and zero-filled FID (n,; (2, n/2) when split) in ``dtype``, two (n,)
        float64; the apodization and (split) the odd bins' twiddle and the phase
        in the even/odd layout, in that precision."""
        dtype = np.dtype(dtype)
        have = self._bufs.get(dtype.char)
        if have is None:
            real = np.float32 if dtype == np.complex64 else np.float64
            split = self._split(dtype)
            u = np.zeros((2, self.n // 2) if split else self.n, dtype)
            rot2 = even_odd(self._rot_re_fft + 1j * self._rot_im_fft, dtype) if split else None
            have = (np.empty(self.td, dtype), u, np.empty(self.n), np.empty(self.n), self.apod.astype(real),
                    (half_twiddle(self.n, dtype), rot2) if split else None)
            self._bufs[dtype.char] = have
        return have

    def spectrum(self, fid: np.ndarray, dtype: Any = np.complex128) -> np.ndarray:
        """Phased real spectrum (vendor order, before the baseline) of one FID of the series.

        ``dtype``: the transforms' precision, complex128 (``process_fid``'s arithmetic, equal to
        rounding; as two half-size transforms on two threads when :attr:`workers` is 2) or complex64 (what :meth:`process` uses once :meth:`check_precision` proved it
        harmless for the series: :attr:`fft_dtype`); the result is float64 either way.
        """
        x, u, re, tmp, apod, tw = self._scratch(dtype)
        np.copyto(x, fid, casting="same_kind")
        if tw is not None:  # complex64: the zero-filled transform as two half-size ones
            np.multiply(x, apod, out=u[0, :self.td])
            u[0, self.td:] = 0.0
            return vendor_real(split_fft(u, tw[0], self.workers), tw[1], np.empty(self.n))
        np.multiply(x, apod, out=u[:self.td])
        u[self.td:] = 0.0
        S = scipy.fft.fft(u, workers=1, overwrite_x=True)
        # phase applied in FFT order (the same products, in float64), then the real part put in
        # vendor order (fftshift reversed, nmr.fft): one real permutation instead of a complex one
        np.multiply(S.real, self._rot_re_fft, out=re)
        np.multiply(S.imag, self._rot_im_fft, out=tmp)
        re -= tmp
        if self.n % 2:
            return np.fft.fftshift(re)[::-1].copy()
        h = self.n // 2  # fftshift(re)[::-1] = (re[:h] reversed, re[h:] reversed), into a new array
        out = np.empty(self.n)
        out[:h] = re[h - 1::-1]
        out[h:] = re[:h - 1:-1]
        return out

    @property
    def fft_dtype(self) -> np.dtype:
        """The series' transform precision (complex128 until :meth:`check_precision` proved complex64)."""
        return self.precision.dtype if self.precision is not None else np.dtype(np.complex128)

    def check_precision(self, fid: np.ndarray, sigma: float | None = None) -> PrecisionCheck:
        """Compute ``fid``'s spectrum in both precisions and keep complex64 for the series when the
        difference is within the guard of :mod:`ingest.processing.fft_precision`."""
        s128 = self.spectrum(fid, np.complex128)
        s64 = self.spectrum(fid, np.complex64)
        sigma = noise_sigma(s128) if sigma is None else float(sigma)
        self.precision = check_precision(s64, s128, sigma, fid_norm(fid))
        self.params["fft_dtype"] = self.precision.label
        self.stats["fft_rms_roundoff_sigma"] = self.precision.rms_ratio
        self.stats["fft_max_roundoff_sigma"] = self.precision.max_ratio
        if not self.precision.single:  # the complex64 scratch is no longer needed
            self._bufs.pop(np.dtype(np.complex64).char, None)
        return self.precision

    def _baseline(self, raw: np.ndarray, sigma: float) -> tuple[np.ndarray, int]:
        """The robust baseline, its iteration started where the last spectrum's converged when
        that was comfortably inside the coverage rules; from scratch (as per spectrum) otherwise."""
        order = int(self.order_cfg)  # type: ignore[arg-type]
        warm = comfortable(self.state) if self._comfy is None else self._comfy  # cached: same state
        for attempt in ((True, False) if warm else (False,)):
            st = self.state if attempt else {}
            used: list[int] = []
            bl = robust_baseline(self.ppm, raw, order=order, noise=sigma, _used=used, _state=st)
            st["used"] = used[-1] if used else order
            self.state = st
            self._comfy = comfortable(st)
            if not attempt or self._comfy:
                break
            self.stats["cold"] = self.stats.get("cold", 0) + 1
        return bl, int(self.state["used"])

    def process(self, spec: NMRSpectrum) -> ProcessedNMR:
        """``process_fid(spec, phase=self.phase, ...)`` with this plan (see the module docstring)."""
        fid = np.asarray(spec.fid)
        raw = self.spectrum(fid, self.fft_dtype)
        sigma = noise_sigma(raw)
        if self.precision is not None and self.precision.single and not self.precision.holds(fid_norm(fid), sigma):
            raw = self.spectrum(fid, np.complex128)  # this FID is outside the guard: double precision
            sigma = noise_sigma(raw)
            self.stats["complex128"] = self.stats.get("complex128", 0) + 1
            dtype = "complex128"
        else:
            dtype = self.params["fft_dtype"]
        self.stats["spectra"] += 1
        bl = None
        real = raw
        label = "none"
        if self.order_cfg is not None:
            bl, used = self._baseline(raw, sigma)
            real = raw - bl
            label = f"poly{used}"
        ppm = self.ppm
        off = reference_offset(ppm, real, self.reference)
        if off:
            ppm = ppm + off
        params = dict(self.params, noise_sigma=sigma, baseline=label, fft_dtype=dtype)
        return ProcessedNMR(ppm=ppm, real=real, p0_deg=self.phase[0], p1_deg=self.phase[1],
                            sfo1_hz=float(spec.meta.sfo1_hz), reference_offset_ppm=float(off), baseline=bl,
                            imag=None, params=params)
