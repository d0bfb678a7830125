"""Widths of broadened lines: Lorentzians fitted past their windows, neighbours together.

Exchange broadens the quinone lines with the radical concentration (docs/physics.md §1.4:
``FWHM = w0 + (k1 [R] + kc [H]) / pi`` in slow exchange), from ~2 Hz to tens of Hz.  A
Lorentzian fitted inside a 0.2 ppm window (80 Hz at 400 MHz) loses its wings to the window
and its straight baseline: its width reads low once the line is a sizeable fraction of the
window.  :func:`refine_widths` re-measures such lines (in-window FWHM above
:data:`TRIGGER_FRACTION` of the window) with :func:`ingest.processing.lineshape_fit.fit_lorentzians`
over an extended range (:func:`extended_range`: the window widened by :data:`EXTEND_FWHM` FWHM
on each side, at most :data:`MAX_EXTEND_PPM`), together with the configured lines found in or
near that range, a straight baseline and a common zero-order phase error (the phase of the
first spectrum is reused: 0.17° of error put ±0.5 Hz on 90 Hz lines through their neighbours'
dispersion tails).  Lines wider than :func:`max_fwhm_hz` cannot be told from the baseline
over that range: their width is reported NaN with the warning 'width not measured', and the
fit pipeline (:mod:`flowcell.fit.data`) leaves them out.

Narrow lines keep the in-window fit (bias below 0.05 Hz up to 15 % of the window).  Both the
per-spectrum extractor (:mod:`ingest.processing.observables`) and the batch engine
(:mod:`ingest.processing.batch_nmr`) call :func:`refine_widths` on their processed spectra,
so they give the same widths (tests/test_widths.py).

Measured (benchmarks/bench_widths.py: numpy-generated FIDs, 400 MHz, default windows, all
six DHAQ O and H lines present, autophased): width bias within ±0.04 Hz from 2.5 to 100 Hz
(O lines) and 1.5 to 60 Hz (H lines, 0.1 ppm windows), where the in-window fit alone read
-0.36 Hz at 30 Hz, -2.7 Hz at 60 Hz and -11.8 Hz at 100 Hz.  Cost: one multi-Lorentzian
fit per group of broadened lines, 4-5 ms of CPU per spectrum with all six DHAQ lines
broadened (load average 4.5-7.5 on 2 cores; ~0.07 x the in-window fits of the 12 default
peaks), 0.05 ms when no line is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ingest.processing.lineshape_fit import fit_lorentzians
from ingest.processing.peak_find import peak_widths_at, prominent_peaks
from ingest.processing.peaks import PeakFit

__all__ = [
    "EXTEND_FWHM",
    "MAX_EXTEND_PPM",
    "MAX_POINTS",
    "MIN_HALF_RANGE_FWHM",
    "TRIGGER_FRACTION",
    "broadened",
    "extended_range",
    "max_fwhm_hz",
    "refine_widths",
]

#: An in-window FWHM above this fraction of the window (in Hz) is re-measured over an extended range.
TRIGGER_FRACTION = 0.15
#: The extended range reaches this many FWHM beyond the window on each side ...
EXTEND_FWHM = 3.0
#: ... but at most this far beyond it, ppm (keeps the water line and unrelated lines out).
MAX_EXTEND_PPM = 0.5
#: Widest measurable line: the extended range must hold this many FWHM on each side of the centre.
MIN_HALF_RANGE_FWHM = 2.0
#: Points fitted per group at most (every k-th point beyond).
MAX_POINTS = 512
#: Warnings of an in-window fit that mean "the line is broader than the window can hold".
_BROAD = ("peak wider than half the window",)
_BROAD_SET = frozenset(_BROAD)


def extended_range(window_ppm: Sequence[float], fwhm_ppm: float) -> tuple[float, float]:
    """The window widened by ``EXTEND_FWHM`` FWHM on each side (at most ``MAX_EXTEND_PPM``), ppm."""
    lo, hi = sorted(float(v) for v in window_ppm)
    ext = min(EXTEND_FWHM * max(float(fwhm_ppm), 0.0), MAX_EXTEND_PPM)
    return lo - ext, hi + ext


def max_fwhm_hz(window_ppm: Sequence[float], sfo1_hz: float) -> float:
    """Widest FWHM the extended fit measures for a line in ``window_ppm``, Hz.

    The widest extended range (the window plus :data:`MAX_EXTEND_PPM` on each side) must
    hold :data:`MIN_HALF_RANGE_FWHM` FWHM on each side of the line: 0.6 ppm = 240 Hz for
    a 0.2 ppm window at 400 MHz, i.e. 120 Hz (width bias below 2 % there, tests/test_widths.py).
    """
    lo, hi = sorted(float(v) for v in window_ppm)
    half = 0.5 * (hi - lo) + MAX_EXTEND_PPM
    return half / MIN_HALF_RANGE_FWHM * sfo1_hz * 1e-6


def _at_home(p: Any, pf: PeakFit | None, offset: float, ppm: np.ndarray, real: np.ndarray,
             noise: float | None) -> bool:
    """The window found a line where it expects one: a fitted width, or (a windowed integral) a
    maximum inside the window 5 noise above the line through the window's ends; centre within
    the peak's tolerance of its expected position (moved by the window offset)."""
    if pf is None or not math.isfinite(pf.center_ppm):
        return False
    if abs(pf.center_ppm - (p.expected_ppm + offset)) > p.tolerance_ppm:
        return False
    if math.isfinite(pf.fwhm_hz) and pf.fwhm_hz > 0:
        return True
    if pf.method != "integral" or "no peak above noise" in pf.warnings:
        return False
    lo, hi = p.window_ppm[0] + offset, p.window_ppm[1] + offset
    i = np.flatnonzero((ppm >= lo) & (ppm <= hi))
    if i.size < 10:
        return False
    y = real[i]
    k = int(np.argmax(y))
    edge = max(1, i.size // 10)
    base = y[0] + (y[-1] - y[0]) * k / (i.size - 1)
    return edge <= k < i.size - edge and y[k] - base > 5 * (noise if noise and noise > 0 else 0.0)


def _width_guess(pf: PeakFit, step_hz: float) -> float:
    """Starting FWHM of a neighbour, Hz: its fitted width, else (a windowed integral) 4 points."""
    return float(pf.fwhm_hz) if math.isfinite(pf.fwhm_hz) and pf.fwhm_hz > 0 else 4.0 * step_hz


def _broad(p: Any, pf: PeakFit, sfo1_hz: float, offset: float) -> bool:
    """Whether a line's in-window fit says it is too broad for its window."""
    lo, hi = p.window_ppm
    if not (pf.fwhm_hz > TRIGGER_FRACTION * abs(hi - lo) * sfo1_hz * 1e-6
            or (pf.warnings and any(w in pf.warnings for w in _BROAD))):
        return False  # (the last test below, first: most lines are narrow)
    if getattr(p, "method", "fit") != "fit" or getattr(p, "shape", "lorentzian") != "lorentzian":
        return False
    if not (math.isfinite(pf.fwhm_hz) and math.isfinite(pf.center_ppm)):
        return False
    if abs(pf.center_ppm - (p.expected_ppm + offset)) > p.tolerance_ppm:
        return False
    lo, hi = p.window_ppm
    return pf.fwhm_hz > TRIGGER_FRACTION * abs(hi - lo) * sfo1_hz * 1e-6 or any(w in pf.warnings for w in _BROAD)


def _groups(broad: list[str], ranges: Mapping[str, tuple[float, float]]) -> list[list[str]]:
    """Broadened lines whose extended ranges overlap, grouped (one fit each), in ``broad`` order."""
    groups: list[list[str]] = []
    for name in broad:
        a, b = ranges[name]
        hit = [g for g in groups if any(ranges[o][0] <= b and a <= ranges[o][1] for o in g)]
        merged = [o for g in hit for o in g] + [name]
        groups = [g for g in groups if g not in hit] + [merged]
    return [sorted(g, key=broad.index) for g in groups]


def broadened(fits: Mapping[str, PeakFit], peaks: Sequence[Any], *, sfo1_hz: float, offset: float = 0.0
              ) -> list[str]:
    """The configured lines :func:`refine_widths` re-measures over an extended range (names, in
    ``peaks`` order): found at home with a FWHM above :data:`TRIGGER_FRACTION` of the window,
    or flagged broader than the window; empty for most spectra (then nothing outside the
    windows is read)."""
    broad = []
    for p in peaks:  # _broad's first test written out (most lines are narrow: one comparison each)
        if p.name not in fits:
            continue
        pf = fits[p.name]
        lo, hi = p.window_ppm
        if (pf.fwhm_hz > TRIGGER_FRACTION * abs(hi - lo) * sfo1_hz * 1e-6
                or (pf.warnings and not _BROAD_SET.isdisjoint(pf.warnings))) and _broad(p, pf, sfo1_hz, offset):
            broad.append(p.name)
    return broad


def refine_widths(fits: Mapping[str, PeakFit], peaks: Sequence[Any], ppm: np.ndarray, real: np.ndarray, *,
                  sfo1_hz: float, offset: float = 0.0, noise: float | None = None, noise_corr: float = 1.0
                  ) -> dict[str, PeakFit]:
    """Re-measure the lines too broad for their windows by fits over an extended range.

    A configured Lorentzian line is *broadened* when its in-window fit found it within its
    tolerance of the expected position (:attr:`PeakSpec.tolerance_ppm`) with a FWHM above
    :data:`TRIGGER_FRACTION` of the window.  Broadened lines whose extended ranges overlap are
    fitted together, with every other configured line found near its expected position whose
    centre lies within 3 of its own FWHM of the range (the range then covers it), each centre
    bounded to its own window.  Lines in the range that no window configures (maxima more than
    10 noise above their surroundings, away from the modelled lines) are fitted along too.

    Parameters
    ----------
    fits : mapping name -> PeakFit
        The in-window results of every configured peak.
    peaks : sequence of PeakSpec
        The configured peaks (:class:`ingest.processing.observables.PeakSpec`).
    ppm, real : ndarray
        The processed spectrum (ppm axis, baseline-corrected real part).
    sfo1_hz : float
        Observe frequency, Hz.
    offset : float
        Window offset of this spectrum, ppm (:func:`ingest.processing.observables.window_offset`).
    noise : float, optional
        Noise standard deviation of ``real`` ('no peak above noise' below 3 noise).
    noise_corr : float
        Noise correlation length, points.

    Returns
    -------
    dict name -> PeakFit
        ``fits`` with each broadened line replaced by its extended fit (``method =
        'lorentzian-multi'``, ``window`` = the range fitted); a line the extended fit cannot
        measure keeps its in-window centre and area, with NaN width and the reason in its
        warnings.  Unchanged when no line is broadened.
    """
    broad = broadened(fits, peaks, sfo1_hz=sfo1_hz, offset=offset)
    if not broad:
        return dict(fits)
    spec = {p.name: p for p in peaks}
    out = dict(fits)
    to_ppm = 1e6 / sfo1_hz
    windows = {p.name: (p.window_ppm[0] + offset, p.window_ppm[1] + offset) for p in peaks}
    home = [p.name for p in peaks if p.name in fits and _at_home(p, fits[p.name], offset, ppm, real, noise)]
    ranges = {n: extended_range(windows[n], 1.3 * fits[n].fwhm_hz * to_ppm) for n in broad}
    for group in _groups(broad, ranges):
        out.update(_fit_group(group, spec, fits, windows, home, ppm, real, sfo1_hz=sfo1_hz, noise=noise,
                              noise_corr=noise_corr))
    return out


def _fit_group(group: list[str], spec: Mapping[str, Any], fits: Mapping[str, PeakFit],
               windows: Mapping[str, tuple[float, float]], home: Sequence[str], ppm: np.ndarray,
               real: np.ndarray, *, sfo1_hz: float, noise: float | None, noise_corr: float
               ) -> dict[str, PeakFit]:
    """One fit of a group of broadened lines and their neighbours; refit once over a wider
    range when a width came out well above the guess the range was made for."""
    to_ppm = 1e6 / sfo1_hz
    step_hz = abs(float(ppm[1] - ppm[0])) * sfo1_hz * 1e-6 if len(ppm) > 1 else 1.0
    guess = {n: 1.3 * fits[n].fwhm_hz for n in group}
    guess.update({n: _width_guess(fits[n], step_hz) for n in home if n not in group})
    cap = {n: max_fwhm_hz(spec[n].window_ppm, sfo1_hz) for n in group}
    for _ in range(2):
        lo = min(extended_range(windows[n], guess[n] * to_ppm)[0] for n in group)
        hi = max(extended_range(windows[n], guess[n] * to_ppm)[1] for n in group)
        reach = {n: 3.0 * guess[n] * to_ppm for n in home if n not in group}
        nbrs = [n for n in reach if lo - reach[n] <= fits[n].center_ppm <= hi + reach[n]]
        lo = min([lo] + [fits[n].center_ppm - reach[n] for n in nbrs])
        hi = max([hi] + [fits[n].center_ppm + reach[n] for n in nbrs])
        names = group + nbrs
        centres = [fits[n].center_ppm for n in names]
        extra = _unconfigured_lines(ppm, real, (lo, hi), centres, [guess[n] for n in names], sfo1_hz, noise)
        res = fit_lorentzians(
            ppm, real, centres + [c for c, _, _ in extra], sfo1_hz=sfo1_hz, fit_range_ppm=(lo, hi),
            fwhm_guess_hz=[guess[n] for n in names] + [w for _, w, _ in extra],
            max_fwhm_hz=max(cap.values()),
            centre_bounds_ppm=[windows[n] for n in names] + [b for _, _, b in extra], noise=noise,
            noise_corr=noise_corr, max_points=MAX_POINTS, fit_phase=True)
        got = dict(zip(names, res))
        wider = {n: got[n].fwhm_hz for n in group if math.isfinite(got[n].fwhm_hz) and got[n].fwhm_hz > 1.5 * guess[n]}
        if not wider:
            break
        guess.update(wider)
    for n in group:
        if got[n].fwhm_hz > cap[n]:
            got[n] = replace(got[n], warnings=got[n].warnings + ("wider than the fit range",))
    return {n: got[n] if got[n].success and not got[n].warnings else _unmeasured(fits[n], got[n]) for n in group}


def _unconfigured_lines(ppm: np.ndarray, real: np.ndarray, rng: tuple[float, float], centres: Sequence[float],
                        widths_hz: Sequence[float], sfo1_hz: float, noise: float | None, most: int = 6
                        ) -> list[tuple[float, float, tuple[float, float]]]:
    """Lines in the fit range that no window configures: maxima with a prominence above
    10 noise, farther than a quarter FWHM (and 3 points) from every modelled centre.

    Returns up to ``most`` (the most prominent) as ``(centre ppm, FWHM guess Hz, centre bounds
    ppm)``: they are fitted along (their own results are discarded), so that a strong line just
    outside a window does not bend the fit of the lines that are measured.
    """
    lo, hi = rng
    i = np.flatnonzero((ppm >= lo) & (ppm <= hi))
    if i.size < 10 or not (noise and noise > 0):
        return []
    y = real[i]
    pk, prom, left, right = prominent_peaks(y, 10.0 * noise)  # scipy.signal's find_peaks, without its import
    if pk.size == 0:
        return []
    step_ppm = abs(float(ppm[1] - ppm[0]))
    w_pts = peak_widths_at(y, pk, prom, left, right, rel_height=0.5)
    c_mod = np.asarray(centres, dtype=float)
    w_mod = np.asarray(widths_hz, dtype=float) * 1e6 / sfo1_hz
    out = []
    for j in np.argsort(-prom):
        c = float(ppm[i[pk[j]]])
        if np.any(np.abs(c_mod - c) <= np.maximum(0.25 * w_mod, 3 * step_ppm)):
            continue
        w_ppm = max(float(w_pts[j]), 2.0) * step_ppm
        out.append((c, w_ppm * sfo1_hz * 1e-6, (c - max(w_ppm, 3 * step_ppm), c + max(w_ppm, 3 * step_ppm))))
        if len(out) == most:
            break
    return out


def _unmeasured(inwin: PeakFit, ext: PeakFit) -> PeakFit:
    """The in-window fit without its (window-truncated) width, and why the extended fit failed."""
    why = "; ".join(ext.warnings) or "extended fit failed"
    return replace(inwin, fwhm_hz=math.nan, fwhm_err_hz=math.nan,
                   warnings=tuple(inwin.warnings) + (f"width not measured (extended fit: {why})",))
