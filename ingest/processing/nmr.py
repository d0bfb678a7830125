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
  discrete transform) and the transform is multiplied by ``2*dt``, so that the
  integral of the real, phased spectrum over frequency (Hz) equals the FID
  amplitude of that component at ``t = 0``.  Peak areas are therefore
  independent of zero filling, spectral width and exponential line broadening
  (all of which leave the ``t = 0`` amplitude unchanged).  Areas are in
  (FID units) and are NOT divided by NS or RG.
* **Phase.**  nmrglue's convention (``ng.proc_base.ps``): the spectrum is
  multiplied by ``exp(1j * radians(p0 + p1 * j / n))``; the ``p1`` pivot is the
  left edge (index 0).
* **Digital filter.**  Bruker's oversampling filter delays the FID by
  ``GRPDLY`` dwell points (docs/physics.md §5.1).  It is removed the standard way,
  as a circular time shift done exactly by a linear phase in the frequency
  domain (the same frequency shift as nmrglue's ``rm_dig_filter``), after
  which the ``ceil(GRPDLY)`` wrapped points at the end are dropped.

References: docs/physics.md §5.1 (Bruker keys, digital filter), §5.2 (Spinsolve),
§1.3 (why the water-peak shift must not be self-referenced).
Automatic phasing is ACME: L. Chen, Z. Weng, L. Goh, M. Garland,
J. Magn. Reson. 158 (2002) 164-168 (entropy of the first derivative plus a
negativity penalty), as in nmrglue's ``autops(fn='acme')``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import scipy.fft
from scipy import ndimage, optimize

from ingest.processing.phase_match import match_vendor_phase
from ingest.types import IngestError, NMRMeta, NMRSpectrum

__all__ = [
    "ProcessedNMR",
    "group_delay_points",
    "remove_digital_filter",
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
    import nmrglue as ng

    dspfvs, decim = int(dspfvs), int(float(decim))
    if dspfvs >= 14:
        return 0.0
    table = ng.bruker.bruker_dsp_table
    if dspfvs not in table or decim not in table[dspfvs]:
        raise IngestError(meta.path, f"digital filter DECIM={decim}, DSPFVS={dspfvs} not in the known table")
    return float(table[dspfvs][decim])


def remove_digital_filter(fid: np.ndarray, group_delay: float) -> np.ndarray:
    """Remove a Bruker digital-filter group delay from a FID.

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


# ------------------------------------------------------------ time domain
def apodize(fid: np.ndarray, sw_hz: float, lb_hz: float) -> np.ndarray:
    """Exponential apodization (line broadening).

    ``fid * exp(-pi * lb_hz * t)``, ``t = k / sw_hz``: adds ``lb_hz`` Hz to the
    FWHM of a Lorentzian line and leaves its area unchanged.

    Parameters
    ----------
    fid : ndarray of complex, shape (n,)
    sw_hz : float
        Spectral width, Hz (1/dwell time).
    lb_hz : float
        Line broadening, Hz (0 = none).

    Returns
    -------
    ndarray of complex
    """
    fid = np.asarray(fid)
    if lb_hz == 0:
        return fid.astype(np.complex128, copy=True)
    t = np.arange(fid.shape[-1]) / float(sw_hz)
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


# ------------------------------------------------------------------ phasing
def phase(spec: np.ndarray, p0_deg: float, p1_deg: float = 0.0) -> np.ndarray:
    """Apply zero- and first-order phase (nmrglue convention, pivot at index 0).

    Parameters
    ----------
    spec : ndarray of complex, shape (n,)
    p0_deg, p1_deg : float
        Degrees; phase at index ``j`` is ``p0 + p1 * j / n``.

    Returns
    -------
    ndarray of complex
    """
    spec = np.asarray(spec)
    if p1_deg == 0:
        return spec * np.exp(1j * np.deg2rad(p0_deg))
    n = spec.shape[-1]
    ph = np.deg2rad(p0_deg + p1_deg * np.arange(n) / n)
    return spec * np.exp(1j * ph)


def _decimate(spec: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Block-sum a complex spectrum to at most ``max_points``; returns (values, fractional positions)."""
    n = spec.shape[-1]
    m = max(1, int(math.ceil(n / max_points)))
    nb = n // m
    blocks = spec[: nb * m].reshape(nb, m).sum(axis=1)
    pos = (np.arange(nb) * m + (m - 1) / 2.0) / n
    return blocks, pos


def _acme(re: np.ndarray, gamma: float) -> float:
    d = np.abs(re[2:] - re[:-2])
    s = d.sum()
    if s == 0:
        return 0.0
    h = d / s
    h = h[h > 0]
    entropy = -np.sum(h * np.log(h))
    neg = re[re < 0]
    return float(entropy + gamma * np.sum(neg * neg))


def autophase(
    spec: np.ndarray,
    *,
    p1: bool = False,
    max_points: int = 4096,
    region: tuple[int, int] | None = None,
    gamma: float = 1000.0,
    refine: bool = True,
) -> tuple[float, float]:
    """Automatic phase correction by ACME entropy minimisation (fast).

    The complex spectrum is block-summed to at most ``max_points`` points (a
    linear operation that commutes with a slowly varying phase, so the optimum
    is unchanged while each objective costs ~0.1 ms), normalised, and the ACME
    objective (entropy of |first derivative| of the real part + ``gamma`` x the
    sum of squared negative intensities, Chen et al. 2002) is minimised: a
    coarse grid in ``p0`` (10 degree steps), then Nelder-Mead on
    ``(p0, p1)``.  Typical cost 10-30 ms for a 64k spectrum (nmrglue's
    ``autops`` ~0.3 s); call it once per series and reuse the phase.

    Parameters
    ----------
    spec : ndarray of complex, shape (n,)
        Spectrum from :func:`fft` (vendor order).
    p1 : bool
        Also optimise the first-order phase (else ``p1 = 0``).  Off by
        default: once the digital filter is removed exactly, ``p1`` is small,
        and on real spectra dominated by a distorted solvent line (the
        presaturated H2O of ``shared/data/nmr/bruker-array``) a free ``p1``
        drives ACME to wrong minima (correlation with TopSpin's ``1r`` fell
        from 0.99 to 0.6-0.9), while ``p0`` alone gave 0.90-0.99.
    max_points : int
        Size of the decimated spectrum used for the search.
    region : (i0, i1) or None
        Index range to phase on (e.g. around the peaks of interest); the
        returned ``p1`` still refers to the full spectrum.
    gamma : float
        Weight of the negativity penalty.
    refine : bool
        Refine ``p0`` (when ``p1`` is not fitted) by making the complex sum
        over the peak regions real and positive (see code); the decimated
        ACME optimum alone scatters by ~2 degrees on sharp lines.

    Returns
    -------
    (p0_deg, p1_deg) : tuple of float
        p0 wrapped to [-180, 180).
    """
    spec = np.asarray(spec)
    n = spec.shape[-1]
    if region is not None:
        i0, i1 = sorted(int(i) for i in region)
        blocks, pos = _decimate(spec[i0:i1], max_points)
        pos = (pos * (i1 - i0) + i0) / n
    else:
        blocks, pos = _decimate(spec, max_points)
    scale = np.max(np.abs(blocks))
    if not np.isfinite(scale) or scale == 0:
        return (0.0, 0.0)
    blocks = blocks / scale

    def cost(x: np.ndarray) -> float:
        p0 = x[0]
        pp1 = x[1] if p1 else 0.0
        re = (blocks * np.exp(1j * np.deg2rad(p0 + pp1 * pos))).real
        return _acme(re, gamma)

    grid = np.arange(-180.0, 180.0, 10.0)
    costs = [cost(np.array([g, 0.0])) for g in grid]
    x0 = np.array([grid[int(np.argmin(costs))], 0.0])
    if p1:
        res = optimize.minimize(
            cost, x0, method="Nelder-Mead",
            options={"xatol": 0.01, "fatol": 1e-10, "maxiter": 2000, "initial_simplex": [x0, x0 + [10, 0], x0 + [0, 20]]},
        )
        p0, pp1 = float(res.x[0]), float(res.x[1])
    else:
        res = optimize.minimize_scalar(lambda a: cost(np.array([a, 0.0])), bracket=(x0[0] - 10, x0[0] + 10), tol=1e-8)
        p0, pp1 = float(res.x), 0.0
    if refine and not p1:
        # Refinement (p0 only): over the peak regions (|S| above 2 % of the
        # maximum, widened), the dispersion parts integrate to ~0, so the
        # correct p0 makes sum(S) real and positive.  Accepted when it stays
        # within 30 degrees of the ACME optimum and raises the ACME cost by
        # < 2 % (distorted solvent lines, e.g. presaturation, fail this).
        full = spec if region is None else spec[i0:i1]
        mag = np.abs(full)
        sig = mag > 0.02 * mag.max()
        sig = ndimage.maximum_filter1d(sig.astype(np.uint8), max(3, full.size // 500)).astype(bool)
        z = np.sum(full[sig])
        if abs(z) > 0:
            p0_int = float(-np.rad2deg(np.angle(z)))
            c_acme, c_int = cost(np.array([p0, 0.0])), cost(np.array([p0_int, 0.0]))
            if abs((p0_int - p0 + 180.0) % 360.0 - 180.0) < 30.0 and c_int <= c_acme + 0.02 * abs(c_acme):
                p0 = p0_int
    p0 = (p0 + 180.0) % 360.0 - 180.0
    return (p0, pp1)


# ------------------------------------------------------------------ baseline
def noise_sigma(y: np.ndarray, lag: int = 16) -> float:
    """Robust noise standard deviation of a spectrum.

    ``1.4826 * median(|d - median(d)|) / sqrt(2)`` with ``d = y[lag:] -
    y[:-lag]``: differences remove a smooth baseline, the MAD ignores the few
    points on peaks, and a lag of several points skips the correlation between
    neighbours that zero filling and apodization introduce (with lag 1 the
    noise of a 2x zero-filled, 0.5 Hz broadened spectrum came out 2.3 times
    too small; with lag 16 it matches :func:`spectrum_noise_sd` within 1 %).

    Parameters
    ----------
    y : ndarray
    lag : int
        Distance of the differenced points.

    Returns
    -------
    float
        Same units as ``y``.
    """
    y = np.asarray(y, dtype=float)
    lag = max(1, min(int(lag), y.size // 4))
    if y.size < 3:
        return float("nan")
    d = y[lag:] - y[:-lag]
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def _signal_mask(resid: np.ndarray, sigma: float, k_lo: float, k_hi: float, dil: int,
                 smooth: int, smooth_sigma: float, widen: float = 3.0) -> np.ndarray:
    """Signal points of a residual: hysteresis detection, then widening.

    A *seed* is a point with ``|r| > k_hi * sigma``, or a point of the
    ``smooth``-point moving average of ``r`` above ``k_hi`` times that
    average's own (robust) noise ``smooth_sigma`` (broad, low lines).
    Candidate points have ``|r| > k_lo * sigma``; candidates closer than
    ``smooth`` points are joined into regions, and only the regions that
    contain a seed are signal.  Isolated noise excursions above ``k_lo``
    (0.27 % of the points at 3 sigma) therefore no longer blank ``2 dil + 1``
    points each (a quarter of a 32k spectrum was masked at random).

    Each signal region of half-width ``h`` (where the line is above ``k_lo``
    sigma) is widened by ``max(dil / 2, widen * h)`` points on each side.  For
    a Lorentzian of peak SNR ``S`` and HWHM ``g``, ``h = g sqrt(S/k_lo - 1)``
    and the wing at ``(1 + widen) h`` is below ``k_lo / 16`` sigma (0.2 sigma):
    large lines get proportionally wide holes, so their 1/d^2 wings, which a
    cubic cannot follow and which summed to half an SNR-50 line's area in a
    0.4 ppm window next to the water line, stay out of the polynomial fit; a
    small line gets a small hole, so masking it barely moves the polynomial.
    (A fixed ``n/200`` widening left a -3 % mean, -6.5 % worst change of an
    SNR-10 line's windowed area; with ``widen = 3``: -0.3 % and -3.4 %; 4 was
    worse again, 2.2 in between.)
    """
    a = np.abs(resid)
    seed = a > k_hi * sigma
    if smooth > 1 and smooth_sigma > 0:
        rs = ndimage.uniform_filter1d(resid, smooth, mode="nearest")
        seed |= np.abs(rs) > k_hi * smooth_sigma
    cand = seed | (a > k_lo * sigma)
    join = max(1, smooth)
    grown = ndimage.maximum_filter1d(cand.astype(np.uint8), 2 * join + 1).astype(bool)
    lab, nlab = ndimage.label(grown)
    out = np.zeros(a.size, dtype=bool)
    if nlab == 0:
        return out
    seeded = np.zeros(nlab + 1, dtype=bool)
    seeded[np.unique(lab[seed])] = True
    ext_min, ext_max = max(1, dil // 2), 8 * max(1, dil)
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None or not seeded[k]:
            continue
        i0, i1 = sl[0].start, sl[0].stop
        ext = min(ext_max, max(ext_min, int(widen * (i1 - i0) / 2)))
        out[max(0, i0 - ext):min(a.size, i1 + ext)] = True
    return out


def _covers(mask: np.ndarray, order: int, min_fraction: float = 0.05, max_gap: float = 0.5) -> bool:
    """True when the signal-free points pin a polynomial of degree ``order`` down everywhere.

    Both end segments (of ``2 (order + 1)`` equal ones) must keep at least
    ``min_fraction`` free points (else the polynomial is extrapolated there),
    and no run of signal points may span more than ``max_gap`` of the axis.
    On ``shared/data/nmr/bruker-array/6`` the whole 0.3-5.2 ppm half was
    signal and the cubic fell to -1700 (55 noise sigma) at 0.3 ppm:
    correlation with TopSpin's ``1r`` 0.92, integrals off by up to 32 % of the
    largest line.  A crowded synthetic spectrum with free points at both ends
    and a 43 % gap in between keeps its cubic (error < 0.2 noise sigma).
    """
    m = np.asarray(mask, dtype=bool)
    if order <= 0 or m.size == 0:
        return True
    segs = np.array_split(m, 2 * (order + 1))
    if segs[0].mean() < min_fraction or segs[-1].mean() < min_fraction:
        return False
    sig = np.r_[False, ~m, False].astype(np.int8)
    d = np.diff(sig)
    runs = np.flatnonzero(d == -1) - np.flatnonzero(d == 1)
    return not (runs.size and runs.max() > max_gap * m.size)


def baseline(
    ppm: np.ndarray,
    y: np.ndarray,
    *,
    order: int = 3,
    k_sigma: float = 3.0,
    k_seed: float | None = None,
    dilate_points: int | None = None,
    max_iter: int = 15,
    max_fit_points: int = 8192,
    return_mask: bool = False,
    noise: float | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Robust polynomial baseline fitted to signal-free points.

    Iterative: fit a polynomial of ``order`` (in a scaled axis) to the current
    signal-free points; mark as signal the regions where the residual rises
    above ``k_sigma`` x the noise (:func:`noise_sigma`) *and* which contain a
    seed above ``k_seed`` x the noise (hysteresis: a line, not a noise
    excursion), each region widened on both sides by three times its own
    half-width, at least ``dilate_points / 2`` (to exclude Lorentzian wings
    down to ~0.2 sigma; see :func:`_signal_mask`); repeat until the mask stops
    changing.  The
    iteration runs on at most ``max_fit_points`` evenly spaced points
    (speed); the final polynomial is evaluated on all.

    Why the seed threshold: with a single 3-sigma threshold, every noise
    excursion (0.27 % of the points) was widened into a ``2*dilate+1``-point
    hole; on a 32k spectrum 25-35 % of the baseline points were discarded at
    random, so the baseline (and the area of every small line integrated over
    it) changed with each noise realisation.  ``k_seed`` defaults to
    ``max(k_sigma, sqrt(2 ln m))`` for ``m`` fitted points (~4.2 at 8192), the
    level that pure noise reaches about once per spectrum.

    Parameters
    ----------
    ppm : ndarray, shape (n,)
    y : ndarray, shape (n,)
        Real spectrum.
    order : int
        Polynomial order (0 = constant offset).
    k_sigma : float
        Threshold for the extent of signal regions, in noise standard deviations.
    k_seed : float or None
        Threshold a region must reach somewhere to count as signal (default above).
    dilate_points : int or None
        Twice the minimum widening of signal regions; default ``n // 200``.
    max_iter : int
    max_fit_points : int
    return_mask : bool
        Also return the final signal-free mask (on all ``n`` points).
    noise : float or None
        Noise standard deviation of ``y`` if already known (default :func:`noise_sigma`).

    Returns
    -------
    ndarray, shape (n,)
        The baseline; subtract it from ``y``.  With ``return_mask``,
        ``(baseline, mask)``; ``mask`` is True on baseline (signal-free) points.
    """
    x = np.asarray(ppm, dtype=float)
    y = np.asarray(y, dtype=float)
    n = y.size
    if n < order + 2:
        z = np.zeros_like(y)
        return (z, np.ones(n, dtype=bool)) if return_mask else z
    xs = (x - x.mean()) / (np.ptp(x) / 2 or 1.0)
    sigma = noise_sigma(y) if noise is None else float(noise)
    if not sigma > 0:
        sigma = 1e-12 * float(np.max(np.abs(y))) or 1.0
    if dilate_points is None:
        dilate_points = max(1, n // 200)
    # Work on every stride-th point (speed: ~10x at 128k points); a line a few points wide
    # still puts at least one sample near its top, and the dilation covers its wings.
    stride = max(1, n // max_fit_points)
    xd, yd = xs[::stride], y[::stride]
    m = yd.size
    dil = max(1, dilate_points // stride)
    k_hi = max(float(k_sigma), math.sqrt(2.0 * math.log(max(m, 3)))) if k_seed is None else float(k_seed)
    smooth = max(1, min(16, dil // 2))
    mask = np.abs(yd - np.median(yd)) < k_sigma * sigma * 10  # first pass: obvious peaks out
    coef = np.zeros(order + 1)
    # Vandermonde matrix once; each iteration is a least-squares solve on the masked rows.
    V = np.polynomial.polynomial.polyvander(xd, order)
    # A spectrum is mostly baseline: when less than ``min_free`` of the points would stay
    # signal-free the noise estimate is meaningless for this purpose (noise-free synthetic
    # data: sigma ~ 1e-13, every Lorentzian wing is "signal" and the cubic came from a
    # handful of points, off by 10x in a window next to a large line), so the threshold
    # is doubled until enough points remain.
    min_free = max(order + 2, int(0.2 * m))
    it = 0
    smooth_sigma: float | None = None
    while it < max_iter:
        if np.count_nonzero(mask) < order + 2:
            break
        coef = np.linalg.lstsq(V[mask], yd[mask], rcond=None)[0]
        resid = yd - V @ coef
        if smooth_sigma is None:  # noise of the smoothed residual: once (it barely changes)
            smooth_sigma = noise_sigma(ndimage.uniform_filter1d(resid, smooth, mode="nearest"), lag=2 * smooth) \
                if smooth > 1 else 0.0
        new = ~_signal_mask(resid, sigma, float(k_sigma), k_hi, dil, smooth, smooth_sigma)
        if np.count_nonzero(new) < min_free and sigma < np.max(np.abs(resid)):
            sigma *= 2.0
            continue
        it += 1
        if np.array_equal(new, mask):
            break
        mask = new
    if order > 0 and not _covers(mask, order):
        # The signal-free points leave part of the axis uncovered: a polynomial of this order
        # would be extrapolated there (a crowded real spectrum: -3.6x TopSpin's integrals).
        return baseline(ppm, y, order=order - 1, k_sigma=k_sigma, k_seed=k_seed, dilate_points=dilate_points,
                        max_iter=max_iter, max_fit_points=max_fit_points, return_mask=return_mask, noise=noise)
    bl = np.polynomial.polynomial.polyval(xs, coef)
    if not return_mask:
        return bl
    full = np.repeat(mask, stride)[:n]
    if full.size < n:
        full = np.r_[full, np.full(n - full.size, mask[-1])]
    return bl, full


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

    Steps: digital-filter removal (:func:`remove_digital_filter`, Bruker
    only), exponential apodization, zero filling, FFT (vendor order), phase
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
        First-point factor in :func:`fft`.
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
    if spec.fid is None:
        raise IngestError(meta.path, "no FID to process (processed-only data; use spec.processed)")
    if not (meta.sw_hz > 0 and meta.sfo1_hz > 0):
        raise IngestError(meta.path, f"bad sw_hz={meta.sw_hz} or sfo1_hz={meta.sfo1_hz}")
    fid = np.asarray(spec.fid)
    if fid.ndim != 1 or fid.size < 8:
        raise IngestError(meta.path, f"FID must be 1D with >= 8 points, got shape {fid.shape}")
    gd = group_delay_points(meta) if group_delay is None else float(group_delay)

    x = remove_digital_filter(fid, gd)
    x = apodize(x, meta.sw_hz, lb_hz)
    x = _zero_fill(x, zero_fill)
    n = x.size
    s = fft(x, meta.sw_hz, first_point=first_point)
    autophased = phase is None
    phase_source = "given"
    if autophased:
        p0, p1, phase_source = _default_phase(spec, s, meta, autophase_p1)
    else:
        p0, p1 = float(phase[0]), float(phase[1])
    s = _phase(s, p0, p1)
    ppm = ppm_axis(n, meta.sw_hz, meta.sfo1_hz, meta.carrier_ppm)
    real = s.real.copy()
    # Noise of the real spectrum (lag differences remove any smooth baseline, so the value
    # holds before and after the baseline subtraction): computed once, used by the baseline
    # and handed to the peak fits via params['noise_sigma'].
    sigma = noise_sigma(real)
    bl = None
    bl_label = "none"
    if baseline is not False and baseline is not None:
        order = 3 if baseline is True else int(baseline)
        bl = _baseline(ppm, real, order=order, noise=sigma)
        real = real - bl
        bl_label = f"poly{order}"
    off = reference_offset(ppm, real, reference)
    if off:
        ppm = ppm + off
    # Noise correlation length of the real spectrum, points: the sum of its noise
    # autocorrelation over all lags, n / (2 sum w_k^2) for white FID noise with apodization
    # weights w_k (checked numerically: lb 0.5 Hz, zf 2 -> 6.4; lb 0, zf 2 -> 1).  Least-squares
    # errors from correlated points must be inflated by sqrt of this (ingest.processing.peaks).
    w = np.exp(-np.pi * float(lb_hz) * np.arange(fid.size - math.ceil(gd)) / meta.sw_hz)
    noise_corr = max(1.0, n / (2.0 * float(np.sum(w * w))))
    params = {
        "noise_corr_points": noise_corr,
        "noise_sigma": sigma,
        "group_delay": gd, "lb_hz": float(lb_hz), "zero_fill": int(zero_fill), "size": n,
        "first_point": first_point, "autophased": autophased, "phase_source": phase_source, "baseline": bl_label,
        "reference": reference,
    }
    return ProcessedNMR(
        ppm=ppm, real=real, p0_deg=p0, p1_deg=p1, sfo1_hz=float(meta.sfo1_hz),
        reference_offset_ppm=float(off), baseline=bl, imag=s.imag.copy(), params=params,
    )


# --------------------------------------------------------------- simulation
def simulate_fid(
    lines: Any,
    *,
    td: int,
    sw_hz: float,
    sfo1_hz: float,
    carrier_ppm: float,
    phase_deg: float = 0.0,
    group_delay: float = 0.0,
    noise_sd: float = 0.0,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Synthetic FID of Lorentzian lines, in the readers' frequency sense.

    ``fid(t) = exp(i*phase) * sum_k a_k exp(2j*pi*(ppm_k - carrier)*sfo1*1e-6*t) exp(-pi*w_k*t)``,
    ``t = j / sw_hz``; processed by :func:`process_fid` each line has area
    ``a_k`` (Hz x FID units), FWHM ``w_k + lb`` Hz, centre ``ppm_k``.

    Parameters
    ----------
    lines : iterable of (ppm, amplitude, fwhm_hz)
    td : int
        Complex points.
    sw_hz, sfo1_hz : float
        Spectral width and observe frequency, Hz.
    carrier_ppm : float
    phase_deg : float
        Zero-order phase error added, degrees.
    group_delay : float
        Simulated Bruker digital-filter delay, points: the ideal FID is
        delayed by this many points as a band-limited circular shift (the
        inverse of :func:`remove_digital_filter`).
    noise_sd : float
        Standard deviation of the white Gaussian noise in each of the real
        and imaginary parts (see :func:`spectrum_noise_sd`).
    seed : int, Generator or None

    Returns
    -------
    ndarray of complex128, shape (td,)
    """
    t = np.arange(int(td)) / float(sw_hz)
    fid = np.zeros(int(td), dtype=np.complex128)
    for ppm, amp, fwhm in lines:
        dnu = (float(ppm) - carrier_ppm) * sfo1_hz * 1e-6
        fid += float(amp) * np.exp((2j * np.pi * dnu - np.pi * float(fwhm)) * t)
    fid *= np.exp(1j * np.deg2rad(phase_deg))
    if group_delay:
        n = fid.size
        f = scipy.fft.fftfreq(n) * n
        fid = scipy.fft.ifft(scipy.fft.fft(fid) * np.exp(-2j * np.pi * float(group_delay) * f / n))
    if noise_sd:
        rng = np.random.default_rng(seed)
        fid = fid + noise_sd * (rng.standard_normal(fid.size) + 1j * rng.standard_normal(fid.size))
    return fid


def spectrum_noise_sd(noise_sd: float, td: int, sw_hz: float, lb_hz: float = 0.0) -> float:
    """Noise standard deviation of the real spectrum from :func:`process_fid`.

    For white FID noise of ``noise_sd`` per component, ``2/sw * noise_sd *
    sqrt(sum_k w_k**2)`` with ``w_k = exp(-pi*lb*k/sw)`` (zero filling adds no
    noise).  A Lorentzian of area ``a`` and FWHM ``W`` Hz has height
    ``2a/(pi*W)``; so the SNR of a simulated line follows.

    Returns
    -------
    float
    """
    w = np.exp(-np.pi * lb_hz * np.arange(int(td)) / sw_hz)
    return float(2.0 / sw_hz * noise_sd * math.sqrt(float(np.sum(w * w))))


# process_fid's keyword names shadow these functions; keep private handles.
_zero_fill = zero_fill
_phase = phase
_baseline = baseline
