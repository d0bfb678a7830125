"""Is each window's line the line it claims to be?  Checks run on every spectrum.

:func:`assignment_warnings` compares the fitted lines of one spectrum with
what the observables configuration expects of them and returns one
``'<peak>: <reason>'`` string per inconsistency, which the Extractor appends
to the row's ``nmr_warnings`` (and reports show):

* **position**: the fitted centre is further than ``tol_ppm`` from the
  expected position moved by the spectrum's window offset (the common
  bulk-susceptibility shift, docs/physics.md §1.3);
* **same line twice**: two windows' fitted centres are closer than the wider
  line's half width (overlapping windows caught one line);
* **siblings disagree**: lines of one species (``species`` key; e.g. the three
  DHAQ ring protons) must carry the same area per proton, and in slow exchange
  the same width (docs/physics.md §1.4): an area per proton off the species'
  median by more than ``area_factor`` (both lines above ``snr_check``), or a
  width more than ``width_factor`` times the median;
* window edge: reported by the fit itself (:mod:`ingest.processing.peaks`).

Pure computation on :class:`ingest.processing.peaks.PeakFit` results; cheap
(a few comparisons per peak).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

__all__ = ["assignment_warnings", "summarize_warnings"]


def _ok(x: float) -> bool:
    return x is not None and math.isfinite(x)


# The checks below run on every spectrum of a batch (~12 peaks each): ``_ok`` is written out
# in them (``x is not None and isfinite(x)``), and the cheapest tests come first.
_isfinite = math.isfinite


def _plan(peaks: Iterable[Any]) -> tuple[tuple[Any, str, float, float, str | None], ...]:
    """(peak, name, expected ppm, tolerance ppm, species when its siblings are checked) of each
    peak: the same for every spectrum, kept for the last tuple of peaks seen (by identity: a
    configuration's peaks are a tuple of frozen PeakSpecs)."""
    global _PLAN
    if _PLAN[0] is peaks and isinstance(peaks, tuple):
        return _PLAN[1]
    plan = tuple((p, p.name, p.expected_ppm, p.tolerance_ppm, p.species if (p.species and p.n_h) else None)
                 for p in peaks)
    if isinstance(peaks, tuple):
        _PLAN = (peaks, plan)
    return plan


_PLAN: tuple[Any, tuple] = (None, ())


def _same_line(got: list[tuple[str, float, float | None]], sfo1_hz: float) -> list[str]:
    """Same-line check of the fitted lines ``got`` = (name, centre ppm, FWHM Hz or None), in peak order."""
    out: list[str] = []
    mhz = sfo1_hz * 1e-6
    widths = [w for _, _, w in got if w is not None]
    if not widths:
        return out
    cs = sorted(c for _, c, _ in got)
    if min((b - a for a, b in pairwise(cs)), default=math.inf) >= max(0.5 * max(widths) / mhz, 1e-4):
        return out  # no two centres closer than the widest line's half width: nothing to compare
    for i, (a, ca, wa) in enumerate(got):
        for b, cb, wb in got[i + 1:]:
            w = wa if wb is None else wb if wa is None else max(wa, wb)
            if w is None:
                continue
            if abs(ca - cb) < max(0.5 * w / mhz, 1e-4):
                msg = f"same line as {{}} (both at {ca:.4f} ppm): overlapping windows"
                out += [f"{a}: " + msg.format(b), f"{b}: " + msg.format(a)]
    return out


def _siblings(groups: Mapping[str, list[tuple[Any, Any]]], area_factor: float, width_factor: float) -> list[str]:
    """Sibling checks of the lines above ``snr_check`` grouped by species (in peak order)."""
    out = []
    for species, members in groups.items():
        if len(members) < 2:
            continue
        per_h = sorted(f.area / p.n_h for p, f in members)
        med = per_h[len(per_h) // 2] if len(per_h) % 2 else 0.5 * (per_h[len(per_h) // 2 - 1] + per_h[len(per_h) // 2])
        widths = sorted(f.fwhm_hz for _, f in members if _ok(f.fwhm_hz))
        wmed = widths[len(widths) // 2] if widths else float("nan")
        for p, f in members:
            r = (f.area / p.n_h) / med if med > 0 else float("nan")
            if _ok(r) and not (1 / area_factor <= r <= area_factor):
                out.append(f"{p.name}: area per proton {r:.2f}x the {species} median: "
                           f"not a {p.n_h}H line of {species}, or overlapped")
            if _ok(f.fwhm_hz) and _ok(wmed) and wmed > 0 and f.fwhm_hz > width_factor * wmed:
                out.append(f"{p.name}: width {f.fwhm_hz:.1f} Hz is {f.fwhm_hz / wmed:.1f}x its {species} "
                           f"siblings' ({wmed:.1f} Hz)")
    return out


def assignment_warnings(peaks: Iterable[Any], fits: Mapping[str, Any], offset: float = 0.0, *,
                        sfo1_hz: float | None = None, snr_check: float = 10.0, area_factor: float = 1.5,
                        width_factor: float = 3.0) -> list[str]:
    """Assignment inconsistencies of one spectrum.

    Parameters
    ----------
    peaks : iterable of ingest.processing.observables.PeakSpec
    fits : mapping name -> ingest.processing.peaks.PeakFit
    offset : float
        Window offset of this spectrum (followed line's measured - expected), ppm.
    sfo1_hz : float or None
        Spectrometer frequency, Hz (for the same-line check; skipped when None).
    snr_check : float
        Sibling area/width checks only between lines at least this far above the noise.
    area_factor : float
        Allowed ratio of a line's area per proton to its species' median.
    width_factor : float
        Allowed ratio of a line's width to its species' median.

    Returns
    -------
    list of str
        ``'<peak>: <reason>'``: the position warnings, then the same-line ones, then the
        siblings', each in peak order.  One pass over the peaks gathers what the three
        checks read (they run on every spectrum of a batch).
    """
    out: list[str] = []
    got: list[tuple[str, float, float | None]] = []  # fitted lines: (name, centre, FWHM or None)
    groups: dict[str, list[tuple[Any, Any]]] = {}
    for p, name, expected, tol, species in _plan(peaks):
        f = fits.get(name)
        if f is None:
            continue
        if f.success and f.method != "integral":
            c = f.center_ppm
            if c is not None and _isfinite(c):
                expect = expected + offset
                d = c - expect
                if abs(d) > tol:  # position
                    out.append(f"{name}: line at {c:.4f} ppm is {d:+.3f} ppm from the expected "
                               f"{expect:.4f} (tolerance {tol:.3f}): another line in this window? "
                               f"(recalibrate: flowcell calibrate)")
                w = f.fwhm_hz
                got.append((name, c, w if w is not None and _isfinite(w) else None))
        if species is not None:
            a, snr = f.area, f.snr
            if a is not None and _isfinite(a) and snr is not None and _isfinite(snr) and snr >= snr_check:
                groups.setdefault(species, []).append((p, f))
    if sfo1_hz:
        out += _same_line(got, sfo1_hz)
    out += _siblings(groups, area_factor, width_factor)
    return out


_NUM = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def summarize_warnings(rows: Iterable[Any], max_lines: int = 10) -> list[str]:
    """One line per kind of row warning over a table's ``nmr_warnings`` column (for reports).

    Warnings that differ only in their numbers count as one kind; each line
    gives the first example and in how many spectra that kind occurred.
    """
    kinds: dict[str, list[Any]] = {}
    n_rows = 0
    for cell in rows:
        n_rows += 1
        seen = set()
        for w in str(cell or "").split("; "):
            if not w or w == "nan":
                continue
            key = _NUM.sub("#", w)
            if key in seen:
                continue
            seen.add(key)
            kinds.setdefault(key, [w, 0])[1] += 1
    out = [f"NMR row warning in {n} of {n_rows} spectra: {ex}"
           for ex, n in sorted(kinds.values(), key=lambda v: -v[1])[:max_lines]]
    if len(kinds) > max_lines:
        out.append(f"... and {len(kinds) - max_lines} more kinds of NMR row warnings (see the table's nmr_warnings)")
    return out
