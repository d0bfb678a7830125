"""1D NMR processing: pure functions on arrays, and the one-call ``process_fid``.

Every function here takes plain numpy arrays (and, for ``process_fid``, an
:class:`ingest.types.NMRSpectrum`) and returns new arrays; inputs are never
modified.  Units: time s, frequency Hz, chemical shift ppm, phases degrees.

Conventions (written down once, used everywhere)
------------------------------------------------
* **Spectrum order.**  Spectra are returned in the order vendors display and
  store them: index 0 is the *highest* ppm (left edge), the ppm axis decreases
  with the index.  Bruker TopSpin FIDs (``fid``/``ser``) give this order with
  ``fftshift(fft(fid))[::-1]``; Spinsolve stores the opposite frequency
  sense, and :func:`ingest.readers.spinsolve.read_spinsolve` returns
  ``conj(data.1d)`` so that the same transform applies.  Checked on the real
  files in ``shared/data`` against the vendors' own processed spectra
  (``pdata/1/1r``; ``spectrum.1d`` with its stored, ascending axis).
  Equivalently: a component at ``+dnu`` Hz above the carrier (higher ppm) is
  stored as ``exp(+2j*pi*dnu*t)`` in the FID the readers return.
* **Frequency axis.**  For an FFT of ``n`` points and spectral width ``sw``,
  point ``j`` sits at ``(n/2 - 1 - j) * sw / n`` Hz from the carrier (exactly
  the numpy ``fftfreq`` grid, reversed).  TopSpin's ``OFFSET`` puts point 0 at
  ``+sw/2`` instead, i.e. one point (``sw/n`` Hz, 0.0002 ppm at 64k points and
  12 ppm) apart; we keep the grid that is exact for our own transform.
* **Scaling.**  The first FID point is halved (removes the DC offset of a
  discrete transform; not for digital-filter data, below) and the transform is multiplied by ``2*dt``, so that the
  integral of the real, phased spectrum over frequency (Hz) equals the FID
  amplitude of that component at ``t = 0``.  Peak areas are therefore
  independent of zero filling, spectral width and exponential line broadening
  (all of which leave the ``t = 0`` amplitude unchanged).  Areas are in
  (FID units) and are NOT divided by NS or RG.
* **Phase.**  nmrglue's convention (``ng.proc_base.ps``): the spectrum is
  multiplied by ``exp(1j * radians(p0 + p1 * j / n))``; the ``p1`` pivot is the
  left edge (index 0).
* **Digital filter.**  Bruker's oversampling filter delivers the band-limited FID
  ``GRPDLY`` dwell points late, with the filter's precursor before it
  (docs/physics.md §5.1).  The delay is removed as TopSpin removes it: the raw FID
  (precursor included, nothing shifted or dropped) is zero-filled and transformed,
  and the spectrum multiplied by the linear phase ``exp(2j*pi*GRPDLY*q/n)`` of the
  zero-filled length (:func:`filter_phase`).  On the TopSpin-processed files in
  ``shared/data`` this gives TopSpin's ``|1r + i 1i|`` to 2e-8 (tests/test_topspin_filter.py);
  the exponential apodization counts time from the FID's true start (``GRPDLY``
  points in), and no first-point factor applies (there is no sample at ``t = 0``).
  :func:`remove_digital_filter`, the circular shift over the acquired length that
  this package used before, stays available but is no longer part of processing.

References: docs/physics.md §5.1 (Bruker keys, digital filter), §5.2 (Spinsolve),
§1.3 (why the water-peak shift must not be self-referenced).
Automatic phasing is ACME: L. Chen, Z. Weng, L. Goh, M. Garland,
J. Magn. Reson. 158 (2002) 164-168 (entropy of the first derivative plus a
negativity penalty), as in nmrglue's ``autops(fn='acme')``.

Phasing lives in :mod:`ingest.processing.nmr_phase`, the noise level and baseline in
:mod:`ingest.processing.nmr_baseline`, FID synthesis in :mod:`ingest.processing.nmr_sim`;
their public functions are importable from here too.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import scipy.fft

from ingest.processing.nmr_baseline import baseline, noise_sigma
from ingest.processing.nmr_phase import autophase, phase
from ingest.processing.nmr_sim import simulate_fid, spectrum_noise_sd  # noqa: F401 - re-exported
from ingest.processing.phase_match import match_vendor_phase
from ingest.types import IngestError, NMRMeta, NMRSpectrum

__all__ = [
    "ProcessedNMR",
    "group_delay_points",
    "remove_digital_filter",
    "filter_phase",
    "apodization",
    "apodize",
    "zero_fill",
    "fft",
    "ppm_axis",
    "phase",
    "autophase",
    "noise_sigma",
    "baseline",
    "find_peak_ppm",
    "reference_offset",
    "process_fid",
    "simulate_fid",
    "spectrum_noise_sd",
]


# ---------------------------------------------------------------- containers
@dataclass(frozen=True)
class ProcessedNMR:
    """A processed, phased, real 1D spectrum.

    Attributes
    ----------
    ppm : ndarray, shape (n,)
        Chemical-shift axis, ppm, *decreasing* with the index (vendor order),
        referencing applied.
    real : ndarray, shape (n,)
        Real part of the phased (and baseline-corrected) spectrum.
        Integral over Hz of a line = its FID amplitude at t = 0.
    p0_deg, p1_deg : float
        Zero- and first-order phase applied, degrees (nmrglue convention,
        pivot at index 0).
    sfo1_hz : float
        Observe frequency, Hz (to convert ppm widths to Hz).
    reference_offset_ppm : float
        Offset added to the raw axis by referencing, ppm.
    baseline : ndarray or None
        The subtracted baseline (same units as ``real``), None if not done.
    imag : ndarray or None
        Imaginary part of the phased spectrum (before baseline correction).
    params : dict
        Processing parameters, for provenance (see :attr:`processing`),
        ``noise_corr_points``: the noise correlation length of ``real``
        (points), to pass to the peak fits as ``noise_corr``, and
        ``noise_sigma``: the noise standard deviation of ``real``
        (:func:`noise_sigma`), to pass as ``noise``.
    """

    ppm: np.ndarray
    real: np.ndarray
    p0_deg: float
    p1_deg: float
    sfo1_hz: float
    reference_offset_ppm: float = 0.0
    baseline: np.ndarray | None = field(default=None, repr=False)
    imag: np.ndarray | None = field(default=None, repr=False)
    params: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def p0(self) -> float:
        """Alias of :attr:`p0_deg` (architecture contract name)."""
        return self.p0_deg

    @property
    def p1(self) -> float:
        """Alias of :attr:`p1_deg`."""
        return self.p1_deg

    @property
    def phase(self) -> tuple[float, float]:
        """``(p0_deg, p1_deg)``, ready to pass back to ``process_fid(phase=...)``."""
        return (self.p0_deg, self.p1_deg)

    @property
    def processing(self) -> str:
        """Short provenance string, e.g. ``'gd=72.12;lb=0.5Hz;zf=65536;ph=12.3/0.0;bl=poly3;ref=+0.0000ppm'``."""
        p = self.params
        parts = [
            f"gd={p.get('group_delay', 0.0):.3f}",
            f"lb={p.get('lb_hz', 0.0):g}Hz",
            f"zf={p.get('size', len(self.real))}",
            f"ph={self.p0_deg:.2f}/{self.p1_deg:.2f}{'(auto)' if p.get('autophased') else ''}",
            f"bl={p.get('baseline', 'none')}",
            f"ref={self.reference_offset_ppm:+.4f}ppm",
        ]
        return ";".join(parts)


# ------------------------------------------------------------ digital filter
def group_delay_points(meta: NMRMeta) -> float:
    """Digital-filter group delay of an acquisition, in dwell points.

    Uses ``meta.group_delay`` when the reader filled it (Bruker ``GRPDLY``);
    otherwise, for Bruker data, the ``DECIM``/``DSPFVS`` lookup table of
    nmrglue (older firmware, ``DSPFVS`` < 14, e.g. XWIN-NMR files), read from
    ``meta.extra`` (either flat or under ``'acqus'``).  Returns 0 for other
    vendors (Spinsolve FIDs carry no such delay).

    Parameters
    ----------
    meta : NMRMeta

    Returns
    -------
    float
        Group delay, points (may be fractional).
    """
    if meta.group_delay and meta.group_delay > 0:
        return float(meta.group_delay)
    if meta.vendor != "bruker":
        return 0.0
    extra = meta.extra or {}
    acq = extra.get("acqus", extra) if isinstance(extra.get("acqus", None), Mapping) else extra
    grp = acq.get("GRPDLY", None)
    if grp is not None and float(grp) > 0:
        return float(grp)
    decim, dspfvs = acq.get("DECIM"), acq.get("DSPFVS")
    if decim is None or dspfvs is None:
        return 0.0
    dspfvs, decim = int(dspfvs), int(float(decim))
    if dspfvs >= 14:  # firmware that states GRPDLY (e.g. the files this package writes): no table
        return 0.0
    import nmrglue as ng  # lazy: ~0.4 s on a first spectrum, only for old firmware's table

    table = ng.bruker.bruker_dsp_table
    if dspfvs not in table or decim not in table[dspfvs]:
        raise IngestError(meta.path, f"digital filter DECIM={decim}, DSPFVS={dspfvs} not in the known table")
    return float(table[dspfvs][decim])


def remove_digital_filter(fid: np.ndarray, group_delay: float) -> np.ndarray:
    """Remove a Bruker digital-filter group delay from a FID, in the time domain.

    Not what :func:`process_fid` does (it folds the delay into the zero-filled
    transform as TopSpin does, :func:`filter_phase`; module docstring, *Digital
    filter*): this circular shift treats the FID as periodic over its acquired
    length and cuts the filter's precursor, which leaves a smooth rolling offset
    of ~0.3-2 % of TopSpin's spectrum on real files.  Kept for users who want a
    shifted FID.

    The FID is advanced by ``group_delay`` points as a circular shift, done
    exactly for fractional delays by a linear phase in the frequency domain
    (FFT, multiply by ``exp(2j*pi*group_delay*f/n)``, inverse FFT).  The
    filter's rise, wrapped to the end, is dropped: the result has
    ``len(fid) - ceil(group_delay)`` points.  This is the frequency shift of
    nmrglue's ``rm_dig_filter(..., truncate_grpdly=False)`` without its
    fold-back of end points.

    Parameters
    ----------
    fid : ndarray of complex, shape (n,)
    group_delay : float
        Delay in dwell points (Bruker ``GRPDLY``); 0 returns a copy.

    Returns
    -------
    ndarray of complex
    """
    fid = np.asarray(fid)
    if group_delay < 0:
        raise ValueError(f"group_delay must be >= 0, got {group_delay}")
    if group_delay == 0:
        return fid.astype(np.complex128, copy=True)
    n = fid.shape[-1]
    f = scipy.fft.fftfreq(n) * n
    shifted = scipy.fft.ifft(scipy.fft.fft(fid) * np.exp(2j * np.pi * group_delay * f / n))
    drop = int(math.ceil(group_delay))
    return shifted[: n - drop]


def filter_phase(n: int, group_delay: float) -> np.ndarray:
    """The linear phase that removes a digital-filter delay, in vendor order.

    ``exp(2j*pi*group_delay*q/n)`` with ``q = n/2 - 1 - j`` the signed frequency
    index of vendor point ``j`` (:func:`fft`): multiplying the transform of the
    raw, zero-filled FID by it advances the band-limited FID by ``group_delay``
    points over the zero-filled length, as TopSpin does (module docstring,
    *Digital filter*; docs/physics.md §5.1).

    Parameters
    ----------
    n : int
        Size of the (zero-filled) transform.
    group_delay : float
        Delay, dwell points (Bruker ``GRPDLY``; may be fractional).

    Returns
    -------
    ndarray of complex128, shape (n,)
        Read-only: the same array for the same arguments (kept for the next spectrum of a
        series: 128k complex exponentials are not free).
    """
    return _filter_phase(int(n), float(group_delay))


@functools.lru_cache(maxsize=8)
def _filter_phase(n: int, group_delay: float) -> np.ndarray:
    q = n // 2 - 1 - np.arange(n)
    out = np.exp(2j * np.pi * group_delay * q / n)
    out.flags.writeable = False
    return out


# ------------------------------------------------------------ time domain
def apodization(n: int, sw_hz: float, lb_hz: float, t0_points: float = 0.0) -> np.ndarray:
    """The exponential apodization's weights of an ``n``-point FID, ``exp(-pi * lb_hz * t)`` with
    ``t = (k - t0_points) / sw_hz`` (``t0_points``: the digital-filter delay, where the FID's
    time starts; module docstring, *Digital filter*): what the series plan and the batch engine
    multiply every FID by, and the weights of the spectrum's noise (:func:`_noise_corr_points`).

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    return np.exp(-np.pi * float(lb_hz) * (np.arange(int(n)) - float(t0_points)) / float(sw_hz))


def apodize(fid: np.ndarray, sw_hz: float, lb_hz: float, *, t0_points: float = 0.0) -> np.ndarray:
    """Exponential apodization (line broadening).

    ``fid * exp(-pi * lb_hz * t)``, ``t = (k - t0_points) / sw_hz``: adds ``lb_hz``
    Hz to the FWHM of a Lorentzian line and leaves its area unchanged when time
    counts from the FID's start (``t0_points``: the digital-filter delay of a raw
    Bruker FID, 0 otherwise).

    Parameters
    ----------
    fid : ndarray of complex, shape (n,)
    sw_hz : float
        Spectral width, Hz (1/dwell time).
    lb_hz : float
        Line broadening, Hz (0 = none).
    t0_points : float
        Index (dwell points, may be fractional) of ``t = 0``.

    Returns
    -------
    ndarray of complex
    """
    fid = np.asarray(fid)
    if lb_hz == 0:
        return fid.astype(np.complex128, copy=True)
    t = (np.arange(fid.shape[-1]) - float(t0_points)) / float(sw_hz)
    return fid * np.exp(-np.pi * float(lb_hz) * t)


def zero_fill(fid: np.ndarray, factor: int = 2) -> np.ndarray:
    """Zero-fill to ``factor`` times the next power of two of the FID length.

    Parameters
    ----------
    fid : ndarray of complex, shape (n,)
    factor : int
        1 only rounds up to a power of two; 2 (default) doubles that.

    Returns
    -------
    ndarray of complex, shape (m,), m = factor * 2**ceil(log2(n))
    """
    fid = np.asarray(fid)
    if factor < 1:
        raise ValueError(f"zero_fill factor must be >= 1, got {factor}")
    n = fid.shape[-1]
    size = int(factor) * (1 << max(0, int(math.ceil(math.log2(max(n, 1))))))
    out = np.zeros(size, dtype=np.complex128)
    out[:n] = fid
    return out


def fft(fid: np.ndarray, sw_hz: float, *, first_point: float = 0.5) -> np.ndarray:
    """Fourier transform to a complex spectrum in vendor order (high ppm first).

    ``S = 2 * dt * fftshift(fft(x))[::-1]`` with ``x[0] *= first_point``, so the
    integral over Hz of a line's real part equals its FID amplitude at t = 0
    (module docstring, *Scaling*).

    Parameters
    ----------
    fid : ndarray of complex, shape (n,)
        Apodized, zero-filled FID with the digital filter removed.
    sw_hz : float
        Spectral width, Hz.
    first_point : float
        Factor applied to the first point (0.5 is the standard correction).

    Returns
    -------
    ndarray of complex, shape (n,)
    """
    x = np.array(fid, dtype=np.complex128, copy=True)
    x[0] *= first_point
    spec = scipy.fft.fft(x)
    return scipy.fft.fftshift(spec)[::-1] * (2.0 / float(sw_hz))


def ppm_axis(n: int, sw_hz: float, sfo1_hz: float, carrier_ppm: float) -> np.ndarray:
    """Chemical-shift axis of an ``n``-point spectrum from :func:`fft`.

    ``ppm[j] = carrier_ppm + (n/2 - 1 - j) * sw_hz / n / (sfo1_hz * 1e-6)``,
    decreasing with ``j``.

    Parameters
    ----------
    n : int
    sw_hz : float
        Spectral width, Hz.
    sfo1_hz : float
        Observe frequency, Hz.
    carrier_ppm : float
        Shift of the carrier, ppm.

    Returns
    -------
    ndarray, shape (n,), ppm
    """
    j = np.arange(n)
    return carrier_ppm + (n / 2 - 1 - j) * (float(sw_hz) / n) / (float(sfo1_hz) * 1e-6)


# --------------------------------------------------------------- referencing
def find_peak_ppm(ppm: np.ndarray, y: np.ndarray, window_ppm: tuple[float, float]) -> float:
    """Position of the highest point in a window, refined by a 3-point parabola.

    Parameters
    ----------
    ppm, y : ndarray, shape (n,)
    window_ppm : (float, float)
        Either order.

    Returns
    -------
    float
        ppm; NaN when the window holds fewer than 3 points.
    """
    ppm = np.asarray(ppm, dtype=float)
    y = np.asarray(y, dtype=float)
    lo, hi = sorted(window_ppm)
    idx = np.flatnonzero((ppm >= lo) & (ppm <= hi))
    if idx.size < 3:
        return float("nan")
    i = int(idx[np.argmax(y[idx])])
    if i <= 0 or i >= y.size - 1:
        return float(ppm[i])
    a, b, c = y[i - 1], y[i], y[i + 1]
    den = a - 2 * b + c
    d = 0.5 * (a - c) / den if den != 0 else 0.0
    d = float(np.clip(d, -0.5, 0.5))
    return float(ppm[i] + d * (ppm[i + 1] - ppm[i - 1]) / 2.0)


def reference_offset(ppm: np.ndarray, y: np.ndarray, reference: Any) -> float:
    """Offset (ppm) to add to the axis for a referencing instruction.

    Parameters
    ----------
    ppm, y : ndarray
        Axis and real spectrum.
    reference : None, float, or mapping
        ``None`` or ``{}``: no referencing (0).  A float or
        ``{'external': x}``: add ``x`` ppm (e.g. from a reference capillary
        or an external reference scan).  ``{'window': (lo, hi), 'ppm': p}``:
        shift so that the highest peak in the window sits at ``p``.
        Note (docs/physics.md §1.3): referencing to the water peak makes the water
        shift constant by construction; use an external offset when the
        water shift itself is the observable.

    Returns
    -------
    float
        ppm.
    """
    if reference is None:
        return 0.0
    if isinstance(reference, (int, float)):
        return float(reference)
    if isinstance(reference, Mapping):
        if not reference:
            return 0.0
        if "external" in reference and reference["external"] is not None:
            return float(reference["external"])
        if "window" in reference and "ppm" in reference:
            found = find_peak_ppm(ppm, y, tuple(reference["window"]))
            if not np.isfinite(found):
                raise ValueError(f"reference window {reference['window']} holds no points")
            return float(reference["ppm"]) - found
    raise ValueError(
        f"reference must be None, a float, {{'external': ppm}} or {{'window': (lo, hi), 'ppm': p}}; got {reference!r}"
    )


# ------------------------------------------------------------------ pipeline
def _default_phase(spec: NMRSpectrum, s: np.ndarray, meta: NMRMeta, p1: bool) -> tuple[float, float, str]:
    """Phase when none is given: the operator's (from TopSpin's 1r) when present, else ACME.

    A Bruker set that carries TopSpin's processed ``1r`` was phased by its
    operator; :func:`ingest.processing.phase_match.match_vendor_phase` recovers
    that ``(p0, p1)`` (accepted when the phased spectrum then correlates
    >= 0.98 with ``1r``).  Otherwise :func:`autophase`.
    """
    if meta.vendor == "bruker" and spec.processed is not None and spec.processed_ppm is not None:
        ppm = ppm_axis(s.size, meta.sw_hz, meta.sfo1_hz, meta.carrier_ppm)
        p0, p1v, corr = match_vendor_phase(s, ppm, np.asarray(spec.processed_ppm), np.asarray(spec.processed))
        if corr >= 0.98:
            return p0, p1v, "vendor_1r"
    p0, p1v = autophase(s, p1=p1)
    return p0, p1v, "acme"


def _checked_fid(spec: NMRSpectrum) -> np.ndarray:
    """The spectrum's FID, refused (IngestError) when absent, not 1D, under 8 points, or sw/sfo1 not positive."""
    meta = spec.meta
    if spec.fid is None:
        raise IngestError(meta.path, "no FID to process (processed-only data; use spec.processed)")
    if not (meta.sw_hz > 0 and meta.sfo1_hz > 0):
        raise IngestError(meta.path, f"bad sw_hz={meta.sw_hz} or sfo1_hz={meta.sfo1_hz}")
    fid = np.asarray(spec.fid)
    if fid.ndim != 1 or fid.size < 8:
        raise IngestError(meta.path, f"FID must be 1D with >= 8 points, got shape {fid.shape}")
    return fid


def _subtract_baseline(
    ppm: np.ndarray, real: np.ndarray, baseline: bool | int | None, sigma: float
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Subtract a polynomial baseline (False/None: none; True: cubic; int: that order).

    Returns
    -------
    tuple
        ``(real, bl, label)``: corrected spectrum, the baseline (None when not
        subtracted), and ``'none'`` or ``'poly<order used>'``.
    """
    if baseline is False or baseline is None:
        return real, None, "none"
    order = 3 if baseline is True else int(baseline)
    used: list[int] = []
    bl = _baseline(ppm, real, order=order, noise=sigma, _used=used)
    return real - bl, bl, f"poly{used[-1] if used else order}"


def _noise_corr_points(n: int, fid_size: int, gd: float, lb_hz: float, sw_hz: float) -> float:
    """Noise correlation length of the real spectrum, points (>= 1).

    The sum of its noise autocorrelation over all lags, n / (2 sum w_k^2) for white
    FID noise with apodization weights w_k (checked numerically: lb 0.5 Hz, zf 2 ->
    6.4; lb 0, zf 2 -> 1).  Least-squares errors from correlated points must be
    inflated by sqrt of this (ingest.processing.peaks).  ``n`` is the processed
    size, ``gd`` the group delay in points (every raw point carries noise; time counts
    from ``gd``), ``lb_hz`` and ``sw_hz`` in Hz.
    """
    w = apodization(fid_size, sw_hz, lb_hz, gd)
    return max(1.0, n / (2.0 * float(np.sum(w * w))))


def effective_first_point(first_point: float, group_delay: float) -> float:
    """The first-point factor :func:`process_fid` applies: ``first_point`` for a FID
    sampled from ``t = 0`` (no digital filter), 1 for digital-filter data, whose first
    raw point is the filter's precursor, not the FID at ``t = 0`` (module docstring)."""
    return float(first_point) if group_delay <= 0 else 1.0


def _phased_spectrum(
    spec: NMRSpectrum, fid: np.ndarray, gd: float, *, lb_hz: float, zero_fill: int, first_point: float,
    phase: tuple[float, float] | None, autophase_p1: bool,
) -> tuple[np.ndarray, int, float, float, str]:
    """Apodization (``lb_hz``, Hz), zero filling, FFT, filter removal and phase of one FID.

    Returns
    -------
    tuple
        ``(spectrum, n, p0_deg, p1_deg, phase_source)``: the phased complex spectrum,
        its size, the phase used (degrees) and where it came from.
    """
    meta = spec.meta
    x = apodize(fid, meta.sw_hz, lb_hz, t0_points=gd)
    x = _zero_fill(x, zero_fill)
    n = x.size
    s = fft(x, meta.sw_hz, first_point=effective_first_point(first_point, gd))
    if gd > 0:  # the filter's delay as a linear phase of the zero-filled transform (TopSpin's way)
        s *= filter_phase(n, gd)
    phase_source = "given"
    if phase is None:
        p0, p1, phase_source = _default_phase(spec, s, meta, autophase_p1)
    else:
        p0, p1 = float(phase[0]), float(phase[1])
    return _phase(s, p0, p1), n, p0, p1, phase_source


def process_fid(
    spec: NMRSpectrum,
    *,
    lb_hz: float = 0.5,
    zero_fill: int = 2,
    phase: tuple[float, float] | None = None,
    baseline: bool | int = True,
    reference: Any = None,
    autophase_p1: bool = False,
    first_point: float = 0.5,
    group_delay: float | None = None,
    **kwargs: Any,
) -> ProcessedNMR:
    """FID to a phased, baseline-corrected, referenced real spectrum.

    Steps: exponential apodization, zero filling, FFT (vendor order),
    digital-filter removal (:func:`filter_phase`, Bruker only), phase
    (given, or :func:`autophase` when ``phase`` is None), baseline
    (:func:`baseline`, polynomial order 3, or the given order), referencing
    (:func:`reference_offset`).

    Parameters
    ----------
    spec : NMRSpectrum
        Must carry a FID; for spectra stored only processed use the vendor's
        ``processed``/``processed_ppm`` arrays instead.
    lb_hz : float
        Exponential line broadening, Hz.
    zero_fill : int
        Zero-fill factor (:func:`zero_fill`).
    phase : (p0_deg, p1_deg) or None
        Reuse a phase (fast path); None auto-phases this spectrum.
    baseline : bool or int
        False: none; True: cubic; an int: that polynomial order.
    reference : see :func:`reference_offset`
    autophase_p1 : bool
        Let autophase fit the first-order phase too.
    first_point : float
        First-point factor in :func:`fft`; not applied to digital-filter data
        (``group_delay`` > 0: :func:`effective_first_point`).
    group_delay : float or None
        Override the digital-filter delay (points); default from the metadata.
    zf : int, optional
        Alias of ``zero_fill`` (architecture contract name).

    Returns
    -------
    ProcessedNMR

    Raises
    ------
    IngestError
        When the spectrum has no FID or the metadata make no sense.
    """
    if "zf" in kwargs:
        zero_fill = int(kwargs.pop("zf"))
    if kwargs:
        raise TypeError(f"process_fid() got unexpected keyword arguments {sorted(kwargs)}")
    meta = spec.meta
    fid = _checked_fid(spec)
    gd = group_delay_points(meta) if group_delay is None else float(group_delay)

    s, n, p0, p1, phase_source = _phased_spectrum(spec, fid, gd, lb_hz=lb_hz, zero_fill=zero_fill,
                                                  first_point=first_point, phase=phase,
                                                  autophase_p1=autophase_p1)
    autophased = phase is None
    ppm = ppm_axis(n, meta.sw_hz, meta.sfo1_hz, meta.carrier_ppm)
    real = s.real.copy()
    # Noise of the real spectrum (lag differences remove any smooth baseline, so the value
    # holds before and after the baseline subtraction): computed once, used by the baseline
    # and handed to the peak fits via params['noise_sigma'].
    sigma = noise_sigma(real)
    real, bl, bl_label = _subtract_baseline(ppm, real, baseline, sigma)
    off = reference_offset(ppm, real, reference)
    if off:
        ppm = ppm + off
    noise_corr = _noise_corr_points(n, fid.size, gd, lb_hz, meta.sw_hz)
    params = {
        "noise_corr_points": noise_corr,
        "noise_sigma": sigma,
        "group_delay": gd, "lb_hz": float(lb_hz), "zero_fill": int(zero_fill), "size": n,
        "first_point": effective_first_point(first_point, gd), "autophased": autophased, "phase_source": phase_source, "baseline": bl_label,
        "order": None if bl is None else (3 if baseline is True else int(baseline)),
        "reference": reference,
    }
    return ProcessedNMR(
        ppm=ppm, real=real, p0_deg=p0, p1_deg=p1, sfo1_hz=float(meta.sfo1_hz),
        reference_offset_ppm=float(off), baseline=bl, imag=s.imag.copy(), params=params,
    )


# process_fid's keyword names shadow these functions; keep private handles.
_zero_fill = zero_fill
_phase = phase
_baseline = baseline
