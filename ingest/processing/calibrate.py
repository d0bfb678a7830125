"""Calibrate the observables windows on the user's own reference spectrum.

:func:`calibrate` processes a reference ¹H spectrum (SOC 0 ideally; any state
is accepted), picks its lines (:mod:`ingest.processing.picking`: noise-aware,
multiplets grouped), assigns them to the expected lines of the species
(:mod:`ingest.processing.lines`) and builds an :class:`ObservablesConfig`
whose windows are centred on the measured lines and sized from their measured
widths and SNR.  What could not be assigned is reported with the reason,
never invented.

Assignment
----------
Every line of one sample shares the bulk-susceptibility shift (docs/physics.md
§1.3), and the tabulated positions are placeholders, so the expected pattern
may sit at a common offset ``Δ`` from the table.  For each candidate ``Δ``
(every pairing of an expected line with a picked multiplet, and 0), the
expected lines are matched to multiplets by a minimum-cost assignment
(:func:`scipy.optimize.linear_sum_assignment`) with

* position: ``((δ_obs - δ_exp - Δ) / tol)²``, forbidden beyond ``tol``;
* pattern: the component offsets (Hz) of the observed multiplet against the
  first-order pattern of the expected couplings (a doublet of 8.5 Hz is not a
  doublet of 2.4 Hz), so lines in another order than the table's are still
  told apart;
* area per proton against the median of the other solute lines (second pass);
* water: the tallest multiplet within its tolerance.

Leaving a required line unassigned costs more than a poor match, an optional
one less.  The ``Δ`` of lowest total cost wins (ties: the smaller ``|Δ|``).
Reduced forms and decomposition products are not looked for in the reference
spectrum (they appear later); their windows sit at the table's position + ``Δ``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from ingest.processing.lines import Line, lines_for
from ingest.processing.nmr import ProcessedNMR, noise_sigma
from ingest.processing.observables import (
    NMRConfig,
    ObservablesConfig,
    PeakSpec,
    process_for_config,
)
from ingest.processing.picking import Multiplet, group_multiplets, pick_peaks
from ingest.types import NMRSpectrum

__all__ = ["Calibration", "assign", "calibrate", "default_observables", "pattern_offsets_hz"]

_INF = 1e9
_LOOKED_FOR = ("solvent", "main", "impurity")


@dataclass
class Calibration:
    """Result of :func:`calibrate`.

    Attributes
    ----------
    quinone : str or None
    offset_ppm : float
        Common offset of the measured pattern from the table (BMS shift + referencing +
        the placeholders' error), ppm.
    assigned : dict name -> Multiplet
    missing : dict name -> str
        Expected lines not found, with the reason.
    unexplained : list of (Multiplet, str)
        Picked lines no expected line accounts for, with the reason.
    config : ObservablesConfig
        The calibrated windows (write with :func:`ingest.processing.observables_toml.write_observables`).
    ppm, real : ndarray
        The processed spectrum the lines were picked on.
    noise : float
        Its noise standard deviation.
    sfo1_hz : float
    multiplets : list of Multiplet
        Everything picked.
    """

    quinone: str | None
    offset_ppm: float
    assigned: dict[str, Multiplet]
    missing: dict[str, str]
    unexplained: list[tuple[Multiplet, str]]
    config: ObservablesConfig
    ppm: np.ndarray = field(repr=False)
    real: np.ndarray = field(repr=False)
    noise: float = float("nan")
    sfo1_hz: float = float("nan")
    multiplets: list[Multiplet] = field(default_factory=list, repr=False)

    def report(self) -> str:
        """Plain-text summary: assigned lines, missing ones and unexplained ones, with reasons."""
        out = [(f"calibration for {self.quinone or 'no quinone (lines as found)'}: "
                f"common offset {self.offset_ppm:+.4f} ppm from the line table")]
        for name, g in self.assigned.items():
            out.append(f"  assigned  {name:<14} {g.ppm:8.4f} ppm  {g.n} comp.  {g.fwhm_hz:6.2f} Hz  SNR {g.snr:8.1f}")
        for name, why in self.missing.items():
            tag = "later    " if why.startswith(("reduced form", "decomposition product")) else "MISSING  "
            out.append(f"  {tag} {name:<14} {why}")
        for g, why in self.unexplained:
            out.append(f"  unassigned line at {g.ppm:8.4f} ppm (SNR {g.snr:.0f}, {g.n} comp.): {why}")
        return "\n".join(out)


def pattern_offsets_hz(ln: Line) -> np.ndarray:
    """First-order component offsets from the centre, Hz, sorted (merged within 0.5 Hz)."""
    if ln.multiplicity in ("t", "q", "quint") and ln.j_hz:
        k = {"t": 3, "q": 4, "quint": 5}[ln.multiplicity]
        return (np.arange(k) - (k - 1) / 2) * ln.j_hz[0]
    offs = [0.0]
    for j in ln.j_hz:
        offs = [o + s * j / 2 for o in offs for s in (-1, 1)]
    offs = np.sort(np.array(offs))
    merged = [offs[0]]
    for o in offs[1:]:
        if o - merged[-1] > 0.5:
            merged.append(o)
    return np.array(merged)


def _pattern_cost(ln: Line, g: Multiplet, sfo1_hz: float) -> float:
    exp = pattern_offsets_hz(ln)
    if ln.multiplicity == "m":
        return 0.0
    if g.n != exp.size:
        if g.n > 1:  # resolved into another pattern: not this line
            return _INF
        # one component: an unresolved multiplet only if the line is broad enough to hide it
        if ln.j_hz and g.fwhm_hz < 0.5 * min(ln.j_hz):
            return 2.5
        return 0.3 if (ln.j_hz and g.fwhm_hz > min(ln.j_hz)) else 1.5
    if exp.size == 1:
        return 0.0
    obs = np.sort([(p.ppm - g.ppm) * sfo1_hz * 1e-6 for p in g.peaks])
    rms = float(np.sqrt(np.mean((obs - exp) ** 2)))
    return min(rms / 1.0, 2.0)


def _costs(lines: list[Line], groups: list[Multiplet], delta: float, sfo1_hz: float,
           scale: float | None) -> np.ndarray:
    C = np.full((len(lines), len(groups)), _INF)
    for i, ln in enumerate(lines):
        inside = [j for j, g in enumerate(groups) if abs(g.ppm - ln.ppm - delta) <= ln.tol_ppm]
        if ln.role == "solvent":
            if inside:
                top = max(inside, key=lambda j: groups[j].height)
                for j in inside:
                    C[i, j] = ((groups[j].ppm - ln.ppm - delta) / ln.tol_ppm) ** 2 + (0.0 if j == top else 3.0)
            continue
        for j in inside:
            g = groups[j]
            c = ((g.ppm - ln.ppm - delta) / ln.tol_ppm) ** 2 + _pattern_cost(ln, g, sfo1_hz)
            if ln.role != "main":  # impurities: their own concentration, no area prior
                pass
            elif scale and g.area > 0:
                c += min(abs(math.log(g.area / (scale * ln.n_h))), 3.0)
            elif g.area <= 0:
                c += 3.0
            C[i, j] = c
    return C


def _solve(lines: list[Line], groups: list[Multiplet], delta: float, sfo1_hz: float,
           scale: float | None) -> tuple[float, dict[int, int]]:
    C = _costs(lines, groups, delta, sfo1_hz, scale)
    skip = np.array([3.5 if ln.role in ("main", "solvent") else 1.0 for ln in lines])
    dummy = np.full((len(lines), len(lines)), _INF)
    np.fill_diagonal(dummy, skip)
    rows, cols = linear_sum_assignment(np.hstack([C, dummy]))
    total = float(np.hstack([C, dummy])[rows, cols].sum())
    return total, {int(r): int(c) for r, c in zip(rows, cols) if c < len(groups)}


def _water(groups: list[Multiplet], look: list[Line]) -> tuple[Line, Multiplet] | None:
    """The solvent line: the tallest multiplet within the water line's tolerance."""
    w = next((ln for ln in look if ln.role == "solvent"), None)
    if w is None:
        return None
    near = [g for g in groups if abs(g.ppm - w.ppm) <= w.tol_ppm]
    return (w, max(near, key=lambda g: g.height)) if near else None


def _patterns_only(m: dict[int, int], look: list[Line], groups: list[Multiplet],
                   area_factor: float = 1.6) -> tuple[dict[int, int], dict[str, str]]:
    """Keep a species only when enough of its lines matched, with consistent areas per proton.

    Lines whose area per proton is off the species' median by more than
    ``area_factor`` are dropped first; then a species of ``n >= 2`` main
    lines needs ``max(2, ceil(n/2))`` of them (one coincidence is no pattern).
    """
    dropped: dict[str, str] = {}
    by_species: dict[str, list[int]] = {}
    for i in m:
        if look[i].role == "main":
            by_species.setdefault(look[i].species, []).append(i)
    for sp, idx in list(by_species.items()):
        per_h = {i: groups[m[i]].area / look[i].n_h for i in idx}
        med = float(np.median(list(per_h.values())))
        for i, a in per_h.items():
            if len(idx) >= 2 and not (med > 0 and a > 0 and 1 / area_factor <= a / med <= area_factor):
                dropped[look[i].name] = (f"a line at {groups[m[i]].ppm:.4f} ppm fits the position, but its area per proton is "
                                         f"{a / med if med else float('nan'):.2f}x that of the other {sp} lines; "
                                         "not assigned")
        by_species[sp] = [i for i in idx if look[i].name not in dropped]
    for sp, idx in by_species.items():
        n_main = sum(1 for ln in look if ln.role == "main" and ln.species == sp)
        need = max(2, math.ceil(n_main / 2)) if n_main >= 2 else 1
        if len(idx) < need:
            for i in idx:
                dropped[look[i].name] = (f"only {len(idx)} of the {n_main} {sp} lines matched (this one at "
                                         f"{groups[m[i]].ppm:.4f} ppm): a coincidence, not the pattern; not assigned")
    kept = {i: j for i, j in m.items() if look[i].name not in dropped}
    if not any(look[i].role in ("main", "solvent") for i in kept):
        for i in kept:  # nothing pins the common offset: an impurity singlet alone proves nothing
            dropped[look[i].name] = (f"a singlet at {groups[kept[i]].ppm:.4f} ppm, but neither the water nor the "
                                     "quinone pattern was found to pin the common offset; not assigned")
        kept = {}
    return kept, dropped


def assign(groups: list[Multiplet], lines: list[Line], *, sfo1_hz: float, max_offset_ppm: float = 1.0,
           water: bool = True) -> tuple[float, dict[str, Multiplet], dict[str, str]]:
    """Match expected ``lines`` to picked ``groups`` (module docstring).

    When the water line is found (the tallest line within its tolerance;
    ``water=False`` for presaturated spectra) the common offset is pinned to
    its offset from the table; otherwise every offset within
    ``max_offset_ppm`` that puts an expected line on a picked one is tried.

    Returns
    -------
    (offset_ppm, assigned, rejected) : float, dict name -> Multiplet, dict name -> reason
    """
    look = [ln for ln in lines if ln.role in _LOOKED_FOR and (water or ln.role != "solvent")]
    if not look or not groups:
        return 0.0, {}, {}
    wat = _water(groups, look)
    if wat is not None:
        cands = {round(wat[1].ppm - wat[0].ppm, 6)}
    else:
        cands = {0.0} | {round(g.ppm - ln.ppm, 4) for ln, g in itertools.product(look, groups)
                         if ln.role == "main" and abs(g.ppm - ln.ppm) <= max_offset_ppm}
    best: tuple[float, float, dict[int, int]] | None = None
    for d in sorted(cands, key=abs):
        total, m = _solve(look, groups, d, sfo1_hz, None)
        total += 0.05 * abs(d)
        if best is None or total < best[0] - 1e-9:
            best = (total, d, m)
    assert best is not None
    _, delta, m = best
    solute = [groups[j].area / look[i].n_h for i, j in m.items() if look[i].role == "main" and groups[j].area > 0]
    if len(solute) >= 2:  # second pass with the area per proton
        _, m = _solve(look, groups, delta, sfo1_hz, float(np.median(solute)))
    m, rejected = _patterns_only(m, look, groups)
    solvent = [groups[j].ppm - look[i].ppm for i, j in m.items() if look[i].role == "solvent"]
    offset = solvent[0] if solvent else delta
    return float(offset), {look[i].name: groups[j] for i, j in m.items()}, rejected


# ------------------------------------------------------------------ windows
def _half_width(g: Multiplet, sfo1_hz: float) -> float:
    w_ppm = g.fwhm_hz / (sfo1_hz * 1e-6)
    k = float(np.clip(math.sqrt(max(g.snr, 1.0)), 4.0, 15.0))
    return max(0.5 * (g.hi_ppm - g.lo_ppm) + k * w_ppm, 0.01)


def _spec(name: str, centre: float, half: float, tol: float, ln: Line | None, note: str) -> PeakSpec:
    centre, half, tol = round(centre, 4), round(half, 4), round(tol, 4)
    if ln is None:
        return PeakSpec(name=name, window_ppm=(round(centre - half, 4), round(centre + half, 4)), ppm=centre,
                        tol_ppm=tol,
                        optional=True, note=note)
    return PeakSpec(name=name, window_ppm=(round(centre - half, 4), round(centre + half, 4)),
                    method="integral" if ln.role == "product" else "fit", n_h=ln.n_h, optional=ln.optional,
                    note=note, species=ln.species, ppm=centre, tol_ppm=tol)


def _separate(specs: list[PeakSpec], keep: str | None) -> list[PeakSpec]:
    """Shrink overlapping windows symmetrically about their lines (the followed line's may hold others).

    Symmetric, so a window's centre stays on its line (the simulator puts lines at window centres).
    """
    out = {s.name: s for s in specs}
    order = sorted((s for s in specs if s.name != keep), key=lambda s: s.expected_ppm)
    for a, b in itertools.pairwise(order):
        a, b = out[a.name], out[b.name]
        if a.window_ppm[1] > b.window_ppm[0]:
            half = 0.5 * (b.expected_ppm - a.expected_ppm) - 1e-4
            for s in (a, b):
                h = min(half, 0.5 * (s.window_ppm[1] - s.window_ppm[0]))
                c = s.expected_ppm
                out[s.name] = replace(s, window_ppm=(round(c - h, 4), round(c + h, 4)),
                                      tol_ppm=round(min(s.tol_ppm or h, 0.5 * h), 4))
    return [out[s.name] for s in specs]


def _clear_of(spec: PeakSpec, groups: list[Multiplet], sfo1_hz: float) -> PeakSpec:
    """Shrink a table-placed window so that no line present at calibration sits in it.

    A window for a line that appears later (reduced form, product) must not
    integrate a neighbour that was already there (the issue's 'anthrone' area
    at 3.93 ppm from an unrelated line).  When the expected position itself is
    inside such a line, the window stays and its note says so.
    """
    lo, hi = spec.window_ppm
    c = spec.expected_ppm
    for g in groups:
        pad = 3.0 * g.fwhm_hz / (sfo1_hz * 1e-6)
        a, b = g.lo_ppm - pad, g.hi_ppm + pad
        if b <= lo or a >= hi:
            continue
        if a <= c <= b:
            return replace(spec, note=spec.note + f"; a line present at calibration ({g.ppm:.4f} ppm) "
                                                  "lies on this position: its area is not this species'")
        if b < c:
            lo = max(lo, round(b + 1e-4, 4))
        else:
            hi = min(hi, round(a - 1e-4, 4))
    if (lo, hi) == spec.window_ppm:
        return spec
    return replace(spec, window_ppm=(lo, hi), note=spec.note + "; shrunk clear of lines present at calibration")


def _windows(lines: list[Line], assigned: dict[str, Multiplet], offset: float, sfo1_hz: float,
             extra: list[Multiplet], groups: list[Multiplet] = ()) -> list[PeakSpec]:
    specs = []
    for ln in lines:
        g = assigned.get(ln.name)
        if g is not None:
            half = _half_width(g, sfo1_hz)
            if ln.role == "solvent":
                half = max(half, 0.5)  # followed line: room for the BMS drift while charging
            tol = max(0.5 * half, 2 * g.fwhm_hz / (sfo1_hz * 1e-6)) if ln.role != "solvent" else half
            note = f"calibrated: {g.ppm:.4f} ppm, {g.fwhm_hz:.2f} Hz, SNR {g.snr:.0f}"
            spec = _spec(ln.name, g.ppm, half, tol, ln, note)
            if g.n > 1:  # a resolved multiplet is not one Lorentzian: windowed integral + centroid
                spec = replace(spec, method="integral", baseline="linear",
                               note=note + f"; resolved {g.n}-line multiplet: windowed integral (no width); "
                                           "method = 'fit' once exchange broadening merges it")
            specs.append(spec)
        else:
            half = 0.05 if ln.role != "solvent" else 0.6
            note = ("not in the reference spectrum: table position + common offset"
                    + (" (PLACEHOLDER)" if ln.placeholder else ""))
            specs.append(_clear_of(_spec(ln.name, ln.ppm + offset, half, 0.5 * half, ln, note), list(groups),
                                   sfo1_hz))
    for g in extra:
        name = "line_" + f"{g.ppm:.3f}".replace("-", "m").replace(".", "p")
        half = _half_width(g, sfo1_hz)
        specs.append(_spec(name, g.ppm, half, max(0.5 * half, 2 * g.fwhm_hz / (sfo1_hz * 1e-6)), None,
                           f"picked line, no species: {g.ppm:.4f} ppm, SNR {g.snr:.0f}"))
    keep = next((ln.name for ln in lines if ln.role == "solvent"), None)
    return _separate(specs, keep)


def _missing_reason(ln: Line, offset: float, groups: list[Multiplet]) -> str:
    near = [g for g in groups if abs(g.ppm - ln.ppm - offset) <= ln.tol_ppm]
    where = f"{ln.ppm + offset:.3f} +- {ln.tol_ppm:.2f} ppm"
    if ln.role == "reduced":
        return f"reduced form, appears while charging: window at {where} (table + offset)"
    if ln.role == "product":
        return f"decomposition product, appears later: window at {where} (table + offset)"
    if not near:
        return f"no line above the noise threshold within {where}"
    return (f"{len(near)} line(s) within {where}, none matching a {ln.multiplicity} of {ln.n_h}H "
            f"(couplings {ln.j_hz} Hz) better than leaving it out")


def _presaturated(spectrum: object) -> str:
    """The pulse program's name when it presaturates the solvent (Bruker 'zgpr', 'zgprse', 'noesypr1d'...)."""
    meta = getattr(spectrum, "meta", None)
    pp = str(getattr(meta, "pulse_program", "") or "")
    return pp if ("pr" in pp.lower() and pp.lower().startswith(("zg", "noesy"))) or "presat" in pp.lower() else ""


def calibrate(spectrum: NMRSpectrum | ProcessedNMR, quinone: str | None = "DHAQ", *,
              base: ObservablesConfig | None = None, snr_min: float = 8.0, join_hz: float = 12.0,
              max_offset_ppm: float = 1.0) -> Calibration:
    """Find, assign and window the lines of a reference spectrum.

    Parameters
    ----------
    spectrum : NMRSpectrum or ProcessedNMR
        A spectrum (processed here with ``base``'s settings) or an already processed one.
    quinone : {'DHAQ', 'DBEAQ'} or None
        Species table (:func:`ingest.processing.lines.lines_for`); None: water
        only, and every other picked line gets its own window (``line_<ppm>``).
    base : ObservablesConfig, optional
        Processing settings to keep (default :meth:`ObservablesConfig.default`).
    snr_min : float
        Peak-picking threshold, noise standard deviations.
    join_hz : float
        Multiplet grouping distance, Hz.
    max_offset_ppm : float
        Largest common offset of the pattern from the table, ppm.

    Returns
    -------
    Calibration
    """
    base = base or ObservablesConfig.default()
    proc = spectrum if isinstance(spectrum, ProcessedNMR) else process_for_config(spectrum, base)
    sfo1 = float(proc.sfo1_hz)
    noise = float(proc.params.get("noise_sigma") or noise_sigma(proc.real))
    picks = pick_peaks(proc.ppm, proc.real, sfo1_hz=sfo1, snr_min=snr_min, noise=noise)
    groups = group_multiplets(picks, proc.ppm, proc.real, sfo1_hz=sfo1, join_hz=join_hz)
    lines = list(lines_for(quinone))
    presat = _presaturated(spectrum)
    offset, assigned, rejected = assign(groups, lines, sfo1_hz=sfo1, max_offset_ppm=max_offset_ppm,
                                        water=not presat)
    used = {id(g) for g in assigned.values()}
    rest = [g for g in groups if id(g) not in used]
    missing = {ln.name: _missing_reason(ln, offset, groups) for ln in lines if ln.name not in assigned}
    missing |= rejected
    if presat and "hdo" in missing:
        missing["hdo"] = (f"water presaturated (pulse program {presat}): its line is suppressed and distorted, "
                          "not used to follow the windows")
    why = (f"matches no expected line of {quinone} (positions, multiplicity, area per proton)" if quinone
           else "no species given: windowed as found (line_<ppm>)")
    unexplained = [(g, why) for g in rest]
    specs = _windows(lines, assigned, offset, sfo1, [] if quinone else rest, groups)
    follow = "hdo" if "hdo" in assigned else None
    nmr = replace(base.nmr, peaks=tuple(specs), follow=follow,
                  follow_ppm=round(assigned["hdo"].ppm, 6) if follow else None)
    if nmr.reference and "peak" in nmr.reference and nmr.reference["peak"] not in {s.name for s in specs}:
        nmr = replace(nmr, reference={})
    cfg = ObservablesConfig(nmr=nmr, epr=base.epr, source=None)
    return Calibration(quinone=quinone, offset_ppm=offset, assigned=assigned, missing=missing,
                       unexplained=unexplained, config=cfg, ppm=proc.ppm, real=proc.real, noise=noise,
                       sfo1_hz=sfo1, multiplets=groups)


def default_observables(quinone: str = "DHAQ", base: NMRConfig | None = None, half_ppm: float = 0.1) -> NMRConfig:
    """Placeholder windows straight from the line table (what ``dhaq_observables.toml`` holds).

    Each line gets ``ppm +- half_ppm`` (the water line +- 0.6 ppm), windows
    shrunk where neighbours overlap; ``follow = 'hdo'``.
    """
    lines = list(lines_for(quinone))
    specs = []
    for ln in lines:
        half = 0.6 if ln.role == "solvent" else half_ppm
        note = ln.note + (" [PLACEHOLDER position: calibrate]" if ln.placeholder else "")
        specs.append(_spec(ln.name, ln.ppm, half, 0.5 * half if ln.role != "solvent" else half, ln, note))
    specs = _separate(specs, "hdo")
    base = base or NMRConfig()
    return replace(base, peaks=tuple(specs), follow="hdo", follow_ppm=next(ln.ppm for ln in lines if ln.name == "hdo"))

