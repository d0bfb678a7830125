"""NMR noise level and baseline correction of a real spectrum (see :func:`baseline`).

The signal mask and the final polynomial run compiled (:mod:`ingest.processing.baseline_nb`)
in a process that loaded numba's line fits (the live path), with the same numbers as the numpy
code here; the noise estimate's medians are exact selections (:mod:`ingest.processing.median_select`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import ndimage
from scipy.linalg.lapack import dgesv as _gesv

from ingest.processing import baseline_nb
from ingest.processing.median_select import median_inplace, scratch

__all__ = ["baseline", "end_free_fractions", "longest_signal_run", "noise_sigma"]


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
    d = np.subtract(y[lag:], y[:-lag], out=scratch("noise_sigma", y.size - lag))  # kept between calls
    # np.median's NaN propagation; a NaN makes the sum NaN (one reduction instead of a boolean
    # array and a scan), and the exact test decides when the sum is NaN without one (+inf, -inf)
    # (not np.dot(d, d): with more than one BLAS thread it took 4 ms instead of 20 us)
    with np.errstate(invalid="ignore"):  # inf - inf in the sum: decided by the exact test
        total = float(d.sum())
    if math.isnan(total) and np.isnan(d).any():
        return float("nan")
    # the two medians in place on one scratch array (the same values as np.median, which
    # copies and partitions twice: 4x slower on a 128k-point spectrum, once per spectrum live),
    # each selected on a bracketed few percent of the points (median_select: exact)
    m = median_inplace(d)
    np.subtract(d, m, out=d)
    np.abs(d, out=d)
    return float(1.4826 * median_inplace(d) / math.sqrt(2.0))


def _signal_mask(resid: np.ndarray, sigma: float, k_lo: float, k_hi: float, dil: int,
                 smooth: int, smooth_sigma: float, widen: float = 3.0, rs: np.ndarray | None = None
                 ) -> np.ndarray:
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
    worse again, 2.2 in between.)  ``rs``: that moving average, if already computed.
    """
    use_rs = smooth > 1 and smooth_sigma > 0
    if use_rs and rs is None:
        rs = ndimage.uniform_filter1d(resid, smooth, mode="nearest")
    k = baseline_nb.kernels()
    if k is not None and resid.ndim == 1 and resid.dtype == np.float64:  # compiled: the same comparisons
        out = np.empty(resid.size, dtype=bool)
        k.signal_mask(np.ascontiguousarray(resid, dtype=float),
                      np.ascontiguousarray(rs, dtype=float) if use_rs else _NO_RS,
                      k_hi * sigma, k_lo * sigma, k_hi * smooth_sigma, max(1, smooth), int(dil), float(widen), out)
        return out
    a = np.abs(resid)
    seed = a > k_hi * sigma
    if use_rs:
        seed |= np.abs(rs) > k_hi * smooth_sigma
    cand = seed | (a > k_lo * sigma)
    m = a.size
    out = np.zeros(m, dtype=bool)
    # the regions are the runs of ``cand`` dilated by ``join`` points (a maximum filter of
    # ``2 join + 1`` points), found from the candidate indices: two candidates share a region
    # when at most ``2 join + 1`` apart; each seed lies in exactly one region (seed <= cand)
    join = max(1, smooth)
    ci = np.flatnonzero(cand)
    if ci.size == 0:
        return out
    brk = np.flatnonzero(np.diff(ci) > 2 * join + 1)
    first = np.empty(brk.size + 1, dtype=np.intp)
    first[0], first[1:] = 0, brk + 1
    keep = np.logical_or.reduceat(seed[ci], first)  # the regions holding a seed
    last = np.empty(brk.size + 1, dtype=np.intp)
    last[:-1], last[-1] = brk, ci.size - 1
    c0, c1 = ci[first[keep]], ci[last[keep]]  # first and last candidate of each seeded region
    ext_min, ext_max = max(1, dil // 2), 8 * max(1, dil)
    if c0.size <= _PAINT_LOOP:  # a few regions: Python integers and slices (the same arithmetic)
        for i, j in zip(c0.tolist(), c1.tolist()):
            start, stop = max(i - join, 0), min(j + join + 1, m)
            ext = min(ext_max, max(ext_min, int(widen * (stop - start) / 2)))
            out[max(0, start - ext):min(m, stop + ext)] = True
        return out
    starts, stops = np.maximum(c0 - join, 0), np.minimum(c1 + join + 1, m)
    ext = np.minimum(ext_max, np.maximum(ext_min, (widen * (stops - starts) / 2).astype(np.int64)))
    paint = np.zeros(m + 1, dtype=np.int32)  # +1 from each widened start, -1 past each stop
    np.add.at(paint, np.maximum(0, starts - ext), 1)
    np.add.at(paint, np.minimum(m, stops + ext), -1)
    return np.cumsum(paint[:-1]) > 0


_NO_RS = np.empty(0)  # the compiled signal mask without a moving average

#: Up to this many signal regions are painted slice by slice (cheaper than the cumulative sum).
_PAINT_LOOP = 64


def end_free_fractions(mask: np.ndarray, segments: int) -> tuple[float, float]:
    """Free fractions of the first and last of ``np.array_split(mask, segments)``.

    The same values without splitting the array into ``segments`` views (the coverage rules
    of :func:`baseline` and of the live plan, ingest.processing.nmr_plan.comfortable).

    Parameters
    ----------
    mask : ndarray of bool, shape (n,)
        Signal-free mask (True on baseline points).
    segments : int
        Number of equal segments (``np.array_split`` sizes).

    Returns
    -------
    (float, float)
        Fractions of True points in the first and last segment; NaN for an empty segment.
    """
    n = mask.size
    q, r = divmod(n, segments)
    first = q + (1 if r > 0 else 0)
    last = q + (1 if segments - 1 < r else 0)
    f0 = np.count_nonzero(mask[:first]) / first if first else float("nan")
    f1 = np.count_nonzero(mask[n - last:]) / last if last else float("nan")
    return f0, f1


def longest_signal_run(mask: np.ndarray) -> int:
    """Length of the longest run of signal (False) points of a signal-free mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (n,)
        Signal-free mask (True on baseline points).

    Returns
    -------
    int
        Points in the longest run of False; 0 when there is none.
    """
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return 0
    # the run boundaries (where the value changes), then the lengths of the False runs
    cut = np.flatnonzero(m[1:] != m[:-1])
    bounds = np.empty(cut.size + 2, dtype=np.intp)
    bounds[0], bounds[1:-1], bounds[-1] = 0, cut + 1, m.size
    lengths = np.diff(bounds)[~m[bounds[:-1]]]
    return int(lengths.max()) if lengths.size else 0


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
    (pybaselines 1.2 was tried first, default parameters, on the same 8 sets:
    correlation with ``1r`` fabc 0.95, dietrich 0.85, arpls 0.69, snip 0.59,
    worst set; benchmarks/bench_baseline_topspin.py.)
    """
    m = np.asarray(mask, dtype=bool)
    if order <= 0 or m.size == 0:
        return True
    f0, f1 = end_free_fractions(m, 2 * (order + 1))
    if f0 < min_fraction or f1 < min_fraction:
        return False
    return not longest_signal_run(m) > max_gap * m.size


def _polyval(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``numpy.polynomial.polynomial.polyval(x, c)`` (Horner, the same operations in the same
    order: bit-identical) in one array instead of a temporary per degree."""
    if len(c) == 1:
        return np.full(x.shape, float(c[0]))
    k = baseline_nb.kernels()
    if k is not None and x.ndim == 1 and len(c) <= 4:  # compiled: one pass, the same operations
        out = np.empty(x.size)
        cs = [float(v) for v in c] + [0.0] * (4 - len(c))
        k.polyval(np.ascontiguousarray(x, dtype=float), len(c), *cs, out)
        return out
    out = np.multiply(x, float(c[-1]))  # c_n x: the first step, without filling c_n first
    out += c[-2]
    for ci in c[-3::-1]:
        out *= x
        out += ci
    return out


@functools.lru_cache(maxsize=16)
def _hankel(order: int) -> np.ndarray:
    """Index array ``i + j`` (``i, j = 0 .. order``) of the Hankel normal matrix."""
    i = np.arange(order + 1)
    h = i[:, None] + i[None, :]
    h.flags.writeable = False  # cached: shared by every call
    return h


def _masked_lsq(P: np.ndarray, y: np.ndarray, mask: np.ndarray, order: int) -> np.ndarray:
    """Polynomial coefficients (degree ``order``) fitted to ``y`` on the ``mask`` points, from the
    Vandermonde matrix ``P`` of degree ``2 order``: the normal matrix of the masked rows is the
    Hankel matrix of the masked power sums ``sum x^(i+j)`` (one matrix-vector product instead of
    copying the masked rows and multiplying them; the same equations to rounding, cond ~1e3 for a
    cubic on the scaled axis); SVD ``lstsq`` on the masked rows when they are singular."""
    mom = P.T @ mask.astype(float)  # sum over the mask of x^p, p = 0 .. 2 order
    G = mom[_hankel(order)]
    b = P[:, :order + 1].T @ np.where(mask, y, 0.0)
    # LAPACK's gesv directly (what np.linalg.solve calls, without its ~15 us of wrapping)
    coef, info = _gesv(G, b, overwrite_a=True, overwrite_b=True)[2:]
    if info == 0:
        return coef
    return np.linalg.lstsq(P[mask, :order + 1], y[mask], rcond=None)[0]


def _fit_signal_free(xd: np.ndarray, yd: np.ndarray, mask: np.ndarray, order: int, sigma: float,
                     k_sigma: float, k_hi: float, dil: int, smooth: int,
                     max_iter: int, state: dict | None = None, P: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Iterate polynomial fit and signal mask until the mask stops changing.

    Returns the polynomial coefficients (in the scaled axis ``xd``) and the final
    signal-free mask (True on baseline points) of the decimated spectrum ``yd``.
    ``sigma`` is the noise standard deviation (spectrum units); ``k_sigma``/``k_hi`` the
    extent and seed thresholds and ``dil``/``smooth`` the widening and smoothing (points)
    of :func:`_signal_mask`.  ``P``: the Vandermonde matrix of ``xd`` of degree ``2 order``
    if already known (a series).
    """
    m = yd.size
    coef = np.zeros(order + 1)
    # Vandermonde matrix once; each iteration is a least-squares solve on the masked rows.
    if P is None:
        P = np.polynomial.polynomial.polyvander(xd, 2 * order)
    V = P[:, :order + 1]
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
        coef = _masked_lsq(P, yd, mask, order)
        resid = yd - V @ coef
        rs = None
        if smooth_sigma is None:  # noise of the smoothed residual: once (it barely changes)
            smooth_sigma = 0.0
            if smooth > 1:
                rs = ndimage.uniform_filter1d(resid, smooth, mode="nearest")  # reused by _signal_mask
                smooth_sigma = noise_sigma(rs, lag=2 * smooth)
        new = ~_signal_mask(resid, sigma, k_sigma, k_hi, dil, smooth, smooth_sigma, rs=rs)
        if np.count_nonzero(new) < min_free and sigma < np.max(np.abs(resid)):
            sigma *= 2.0
            continue
        it += 1
        if np.array_equal(new, mask):
            break
        mask = new
    if state is not None:  # where it converged, to start the next spectrum of a series from
        state[order] = (mask.copy(), sigma)
    return coef, mask


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
    _used: list[int] | None = None,
    _state: dict | None = None,
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
        When the signal-free points do not pin a polynomial of ``order`` down
        (:func:`_covers`: an end of the axis or more than half of it is
        signal), the order is lowered until they do: the baseline is never
        extrapolated over signal.

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
    if _state is not None and _state.get("_axis") is ppm:  # a series: the scaled axis once
        xs = _state["_xs"]
    else:
        xs = (x - x.mean()) / (np.ptp(x) / 2 or 1.0)
        if _state is not None:
            _state["_axis"], _state["_xs"] = ppm, xs
            for key in [k for k in _state if isinstance(k, tuple) and k[0] == "_V"]:  # of another axis
                del _state[key]
    sigma = noise_sigma(y) if noise is None else float(noise)
    if not sigma > 0:
        sigma = 1e-12 * float(np.max(np.abs(y))) or 1.0
    if dilate_points is None:
        dilate_points = max(1, n // 200)
    # Work on every stride-th point (speed: ~10x at 128k points); a line a few points wide
    # still puts at least one sample near its top, and the dilation covers its wings.
    stride = max(1, n // max_fit_points)
    xd, yd = xs[::stride], np.ascontiguousarray(y[::stride])  # contiguous: read ~6 times an iteration
    m = yd.size
    dil = max(1, dilate_points // stride)
    k_hi = max(float(k_sigma), math.sqrt(2.0 * math.log(max(m, 3)))) if k_seed is None else float(k_seed)
    smooth = max(1, min(16, dil // 2))
    if _state is not None and order in _state and _state[order][0].size == yd.size:
        # a series (ingest.processing.nmr_plan): start from where the previous spectrum's
        # iteration converged (its mask and noise threshold), not from the crude first pass
        mask, sigma = _state[order][0].copy(), float(_state[order][1])
    else:
        mask = np.abs(yd - np.median(yd)) < k_sigma * sigma * 10  # first pass: obvious peaks out
    P = None
    if _state is not None:  # a series: the Vandermonde matrix of the fixed decimated axis once per order
        P = _state.get(("_V", order, stride))
        if P is None:
            P = _state[("_V", order, stride)] = np.polynomial.polynomial.polyvander(xd, 2 * order)
    coef, mask = _fit_signal_free(xd, yd, mask, order, sigma, float(k_sigma), k_hi, dil, smooth, max_iter,
                                  _state, P)
    if order > 0 and not _covers(mask, order):
        # The signal-free points leave part of the axis uncovered: a polynomial of this order
        # would be extrapolated there (a crowded real spectrum: -3.6x TopSpin's integrals).
        if _used is not None:
            _used.append(order)
        return baseline(ppm, y, order=order - 1, k_sigma=k_sigma, k_seed=k_seed, dilate_points=dilate_points,
                        max_iter=max_iter, max_fit_points=max_fit_points, return_mask=return_mask, noise=noise,
                        _used=_used, _state=_state)
    if _used is not None:
        _used.append(order)
    bl = _polyval(xs, coef)
    if not return_mask:
        return bl
    full = np.repeat(mask, stride)[:n]
    if full.size < n:
        full = np.r_[full, np.full(n - full.size, mask[-1])]
    return bl, full
