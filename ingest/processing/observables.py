"""The named observables: spectrum -> one table row.

A small TOML file (default ``ingest/data/dhaq_observables.toml``) names the
NMR peaks to extract (window, lineshape) and the processing; the
:class:`Extractor` turns each NMR or EPR spectrum into one row dict with the
columns of docs/architecture.md:

* common: ``kind, source, row, time_start, time_end, time_mid`` (tz-aware UTC
  pandas Timestamps, NaT when unknown), ``temperature_K, format``;
* NMR: ``sfo1_MHz, ns``, and for each peak ``NAME``: ``NAME_shift_ppm,
  NAME_shift_err_ppm, NAME_fwhm_Hz, NAME_fwhm_err_Hz, NAME_area,
  NAME_area_err``; ``window_offset_ppm`` (how far this spectrum's windows
  moved, below); plus provenance ``processing`` (processing parameters and
  phase) and ``nmr_warnings`` ('; '-joined peak diagnostics and the
  assignment checks of :mod:`ingest.processing.assignment`).
* EPR: delegated to :func:`ingest.processing.epr.epr_row`.

Windows that move with the sample: with ``[nmr] follow = "hdo"`` (the
default) every window of a spectrum is moved by the measured position of the
followed line minus ``follow_ppm``; the bulk-susceptibility shift is common to
every line of the sample (docs/physics.md §1.3).  One argmax per spectrum.

Physics behind the default windows: docs/physics.md §1.3 (water/HDO shift from bulk
magnetic susceptibility; do not reference the axis to the water peak when the
water shift is the observable), §1.4 (the three DHAQ aromatic protons),
§1.6 (anthrone/anthranol and the acetone/methanol/formamide impurities).
The DHAQ, anthrone and anthranol positions are NOT in the literature file;
the default windows (generated from :mod:`ingest.processing.lines`) are
placeholders that must be calibrated (:func:`ingest.processing.calibrate.calibrate`,
``flowcell calibrate``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (requires-python >= 3.10): the same parser from PyPI
    import tomli as tomllib

import numpy as np
import pandas as pd

from ingest.processing.epr import EPRConfig, epr_row
from ingest.processing.assignment import assignment_warnings
from ingest.processing.nmr import ProcessedNMR, find_peak_ppm, noise_sigma, process_fid, reference_offset
from ingest.processing.nmr_plan import SeriesPlan
from ingest.processing.peak_start import top_ppm
from ingest.processing.peaks import PeakFit, fit_peak, index_window, integrate_window
from ingest.processing.widths import refine_widths
from ingest.types import EPRSpectrum, IngestError, NMRSpectrum

__all__ = ["PeakSpec", "NMRConfig", "ObservablesConfig", "Extractor", "extract_nmr", "extract_epr",
           "process_for_config", "window_offset", "DEFAULT_TOML"]

#: Path of the default configuration file.
DEFAULT_TOML = Path(__file__).with_name("data") / "dhaq_observables.toml"

_PEAK_KEYS = {"name", "window_ppm", "shape", "method", "n_h", "optional", "note", "baseline", "species", "ppm",
              "tol_ppm"}
_NMR_KEYS = {"lb_hz", "zero_fill", "baseline", "snr_min", "reference", "peaks", "autophase_p1", "follow",
             "follow_ppm"}


@dataclass(frozen=True)
class PeakSpec:
    """One named NMR peak.

    Attributes
    ----------
    name : str
        Column prefix (``hdo``, ``dhaq_h1``, ...).
    window_ppm : (float, float)
        Low, high, ppm.
    shape : {'lorentzian', 'voigt'}
    method : {'fit', 'integral'}
        Full lineshape fit (:func:`ingest.processing.peaks.fit_peak`) or windowed sum
        (:func:`ingest.processing.peaks.integrate_window`).
    n_h : int or None
        Protons behind the peak (for quantification, docs/physics.md §1.6).
    optional : bool
        A missing peak is expected: 'no peak above noise' is not reported.
    note : str
    baseline : {'auto', 'none', 'linear'}
        Local baseline of an ``integral`` window (:func:`ingest.processing.peaks.integrate_window`).
        'auto' (default): 'none' when the whole-spectrum robust polynomial ran
        at its configured order (``[nmr] baseline``), 'linear' (a line
        through the window's outer edges) when it had to fall back to a lower
        order because signal-free points did not pin the polynomial down
        (:func:`ingest.processing.nmr.baseline`), or for vendor-processed
        spectra / ``baseline = false``.  The local line roughly doubles the
        noise of a windowed area (so it is not applied on top of a full global
        correction) but removes offsets: on ``shared/data/nmr/bruker-array``,
        where the cubic falls back to a constant, windowed sums agree with
        TopSpin's within 0.9 % of the largest line (tests/test_baseline_topspin.py).
    species : str
        Species of the line (``DHAQ``, ``water``, ...): lines of one species
        must agree in area per proton and width (assignment checks,
        :mod:`ingest.processing.assignment`).
    ppm : float or None
        Expected position at the reference state (default: window centre), ppm.
    tol_ppm : float or None
        Allowed distance of the fitted centre from ``ppm`` (after the window
        offset), ppm; default a quarter of the window width.
    """

    name: str
    window_ppm: tuple[float, float]
    shape: str = "lorentzian"
    method: str = "fit"
    n_h: int | None = None
    optional: bool = False
    note: str = ""
    baseline: str = "auto"
    species: str = ""
    ppm: float | None = None
    tol_ppm: float | None = None

    @property
    def expected_ppm(self) -> float:
        """Where the line is expected (``ppm``, else the window centre), ppm."""
        return float(self.ppm) if self.ppm is not None else 0.5 * (self.window_ppm[0] + self.window_ppm[1])

    @property
    def tolerance_ppm(self) -> float:
        """Allowed distance of the fitted centre from :attr:`expected_ppm` (default a quarter window), ppm."""
        return float(self.tol_ppm) if self.tol_ppm is not None else 0.25 * (self.window_ppm[1] - self.window_ppm[0])


@dataclass(frozen=True)
class NMRConfig:
    """NMR processing and peak list (TOML table ``[nmr]``).

    Attributes
    ----------
    lb_hz : float
        Exponential line broadening, Hz.
    zero_fill : int
        Zero-fill factor.
    baseline : int or None
        Polynomial order of the robust baseline, None for none.
    snr_min : float
        Detection threshold for fits (height / noise).
    reference : dict
        ``{}`` (none), ``{'external': ppm}``, or ``{'peak': name, 'ppm': p}``.
    peaks : tuple of PeakSpec
    autophase_p1 : bool
        Fit a first-order phase in the automatic phasing (default False).
    follow : str or None
        Name of the peak whose measured position moves every window (the
        water line: the bulk-susceptibility shift is common to every line of
        the sample, docs/physics.md §1.3).  None: windows stay put.
    follow_ppm : float or None
        Position of the followed line when the windows were set (default: the
        centre of its window), ppm.  Each spectrum's windows are moved by
        (measured - follow_ppm).
    """

    lb_hz: float = 0.5
    zero_fill: int = 2
    baseline: int | None = 3
    snr_min: float = 5.0
    reference: Mapping[str, Any] = field(default_factory=dict)
    peaks: tuple[PeakSpec, ...] = ()
    autophase_p1: bool = False
    follow: str | None = None
    follow_ppm: float | None = None

    def peak(self, name: str) -> PeakSpec:
        """The peak called ``name`` (KeyError listing the known names otherwise)."""
        for p in self.peaks:
            if p.name == name:
                return p
        raise KeyError(f"no peak {name!r}; configured: {[p.name for p in self.peaks]}")

    def processing_reference(self) -> Any:
        """The reference instruction in :func:`ingest.processing.nmr.reference_offset` form."""
        ref = dict(self.reference or {})
        if not ref:
            return None
        if "external" in ref:
            return {"external": float(ref["external"])}
        pk = self.peak(ref["peak"])
        return {"window": pk.window_ppm, "ppm": float(ref["ppm"])}


def _fail(source: Any, problem: str) -> IngestError:
    return IngestError(source if source is not None else "<observables config>", problem)


def _parse_nmr(d: Mapping[str, Any], source: Any) -> NMRConfig:
    unknown = set(d) - _NMR_KEYS
    if unknown:
        raise _fail(source, f"[nmr]: unknown keys {sorted(unknown)}; allowed {sorted(_NMR_KEYS)}")
    peaks: list[PeakSpec] = []
    for i, p in enumerate(d.get("peaks", [])):
        where = f"[[nmr.peaks]] #{i + 1}"
        if not isinstance(p, Mapping):
            raise _fail(source, f"{where}: must be a table")
        bad = set(p) - _PEAK_KEYS
        if bad:
            raise _fail(source, f"{where}: unknown keys {sorted(bad)}; allowed {sorted(_PEAK_KEYS)}")
        if "name" not in p or "window_ppm" not in p:
            raise _fail(source, f"{where}: needs 'name' and 'window_ppm'")
        name = str(p["name"])
        if not name.isidentifier():
            raise _fail(source, f"{where}: name {name!r} must be a plain identifier (it prefixes column names)")
        w = p["window_ppm"]
        if not (isinstance(w, (list, tuple)) and len(w) == 2 and all(isinstance(v, (int, float)) for v in w)
                and w[0] != w[1]):
            raise _fail(source, f"{where} ({name}): window_ppm must be [low, high] in ppm, got {w!r}")
        shape = p.get("shape", "lorentzian")
        if shape not in ("lorentzian", "voigt"):
            raise _fail(source, f"{where} ({name}): shape must be 'lorentzian' or 'voigt', got {shape!r}")
        method = p.get("method", "fit")
        if method not in ("fit", "integral"):
            raise _fail(source, f"{where} ({name}): method must be 'fit' or 'integral', got {method!r}")
        pbl = p.get("baseline", "auto")
        if pbl not in ("auto", "none", "linear"):
            raise _fail(source, f"{where} ({name}): baseline must be 'auto', 'none' or 'linear', got {pbl!r}")
        for key in ("ppm", "tol_ppm"):
            if key in p and not isinstance(p[key], (int, float)):
                raise _fail(source, f"{where} ({name}): {key} must be a number (ppm), got {p[key]!r}")
        peaks.append(PeakSpec(name=name, window_ppm=(float(min(w)), float(max(w))), shape=shape, method=method,
                              n_h=None if p.get("n_h") is None else int(p["n_h"]),
                              optional=bool(p.get("optional", False)), note=str(p.get("note", "")),
                              baseline=str(pbl), species=str(p.get("species", "")),
                              ppm=None if p.get("ppm") is None else float(p["ppm"]),
                              tol_ppm=None if p.get("tol_ppm") is None else float(p["tol_ppm"])))
    names = [p.name for p in peaks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _fail(source, f"[[nmr.peaks]]: duplicate names {dup}")
    bl = d.get("baseline", 3)
    if bl is True:
        bl = 3
    elif bl is False or bl is None:
        bl = None
    elif not isinstance(bl, int) or bl < 0:
        raise _fail(source, f"[nmr]: baseline must be false or a polynomial order >= 0, got {bl!r}")
    ref = d.get("reference", {})
    if ref in (None, "none", False):
        ref = {}
    if isinstance(ref, (int, float)):
        ref = {"external": float(ref)}
    if not isinstance(ref, Mapping):
        raise _fail(source, f"[nmr]: reference must be a table, got {ref!r}")
    ref = dict(ref)
    if ref and not ("external" in ref or ("peak" in ref and "ppm" in ref)):
        raise _fail(source, f"[nmr]: reference must be {{external = ppm}} or {{peak = name, ppm = value}}, got {ref!r}")
    if "peak" in ref and ref["peak"] not in names:
        raise _fail(source, f"[nmr]: reference peak {ref['peak']!r} is not a configured peak ({names})")
    zf = d.get("zero_fill", 2)
    if not isinstance(zf, int) or zf < 1:
        raise _fail(source, f"[nmr]: zero_fill must be an integer >= 1, got {zf!r}")
    lb = d.get("lb_hz", 0.5)
    if not isinstance(lb, (int, float)) or lb < 0:
        raise _fail(source, f"[nmr]: lb_hz must be a number >= 0 (Hz), got {lb!r}")
    follow = d.get("follow")
    if follow is not None and follow not in names:
        raise _fail(source, f"[nmr]: follow = {follow!r} is not a configured peak ({names})")
    fppm = d.get("follow_ppm")
    if fppm is not None and not isinstance(fppm, (int, float)):
        raise _fail(source, f"[nmr]: follow_ppm must be a number (ppm), got {fppm!r}")
    return NMRConfig(lb_hz=float(lb), zero_fill=zf, baseline=bl, snr_min=float(d.get("snr_min", 5.0)),
                     reference=ref, peaks=tuple(peaks), autophase_p1=bool(d.get("autophase_p1", False)),
                     follow=None if follow is None else str(follow),
                     follow_ppm=None if fppm is None else float(fppm))


def _parse_epr(d: Mapping[str, Any] | None, source: Any) -> Any:
    try:
        return EPRConfig.from_dict(d or {})
    except (ValueError, TypeError) as exc:
        raise _fail(source, str(exc)) from exc


@dataclass(frozen=True)
class ObservablesConfig:
    """What to extract from each spectrum.

    Attributes
    ----------
    nmr : NMRConfig
    epr : ingest.processing.epr.EPRConfig
        (a plain dict if that module is unavailable).
    source : str or None
        File it was read from.
    """

    nmr: NMRConfig
    epr: Any
    source: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str | Path | None = None) -> "ObservablesConfig":
        """Build from a parsed TOML document; errors name the file and the key."""
        unknown = set(d) - {"nmr", "epr"}
        if unknown:
            raise _fail(source, f"unknown top-level tables {sorted(unknown)}; allowed ['epr', 'nmr']")
        return cls(nmr=_parse_nmr(d.get("nmr", {}), source), epr=_parse_epr(d.get("epr"), source),
                   source=None if source is None else str(source))

    @classmethod
    def from_toml(cls, path: str | Path) -> "ObservablesConfig":
        """Read a TOML file (see ``ingest/data/dhaq_observables.toml`` for the documented keys).

        Raises
        ------
        IngestError
            Missing file, TOML syntax error, or a bad key (named).
        """
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh)
        except FileNotFoundError:
            raise IngestError(path, "observables config not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise IngestError(path, f"TOML syntax error: {exc}") from None
        return cls.from_dict(doc, source=path)

    @classmethod
    def default(cls) -> "ObservablesConfig":
        """The DHAQ defaults (``ingest/data/dhaq_observables.toml``)."""
        try:
            text = resources.files("ingest").joinpath("data/dhaq_observables.toml").read_text()
            return cls.from_dict(tomllib.loads(text), source=DEFAULT_TOML)
        except (FileNotFoundError, ModuleNotFoundError):
            return cls.from_toml(DEFAULT_TOML)


# ------------------------------------------------------------------ rows
def _ts(dt: Any) -> pd.Timestamp:
    if dt is None:
        return pd.NaT
    t = pd.Timestamp(dt)
    if t.tzinfo is _UTC:  # already what tz_convert("UTC") gives (same tz object, unit, value): ~5 us less
        return t
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


_UTC = pd.Timestamp(0, tz="UTC").tz_convert("UTC").tzinfo  # the tz object tz_convert("UTC") sets


def _common(meta: Any, kind: str, fmt: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "source": str(meta.path),
        "row": -1 if meta.row is None else int(meta.row),
        "time_start": _ts(meta.start),
        "time_end": _ts(meta.end),
        "time_mid": _ts(meta.mid),
        "temperature_K": float("nan") if meta.temperature_K is None else float(meta.temperature_K),
        "format": fmt,
    }


def process_for_config(spec: NMRSpectrum, cfg: ObservablesConfig | None = None,
                       phase: tuple[float, float] | None = None) -> ProcessedNMR:
    """Process a spectrum with the configuration's parameters (phase reused when given)."""
    cfg = cfg or ObservablesConfig.default()
    n = cfg.nmr
    if spec.fid is None:
        if spec.processed is None or spec.processed_ppm is None:
            raise IngestError(spec.meta.path, "neither a FID nor a processed spectrum")
        ppm = np.asarray(spec.processed_ppm, dtype=float)
        real = np.asarray(spec.processed, dtype=float)
        off = reference_offset(ppm, real, n.processing_reference())
        return ProcessedNMR(ppm=ppm + off, real=real, p0_deg=float("nan"), p1_deg=float("nan"),
                            sfo1_hz=spec.meta.sfo1_hz, reference_offset_ppm=off,
                            params={"baseline": "vendor", "size": real.size, "lb_hz": float("nan")})
    return process_fid(spec, lb_hz=n.lb_hz, zero_fill=n.zero_fill, phase=phase,
                       baseline=False if n.baseline is None else n.baseline,
                       reference=n.processing_reference(), autophase_p1=n.autophase_p1)


def window_offset(proc: ProcessedNMR, nmr: NMRConfig) -> float:
    """How far this spectrum's windows move: measured - expected position of the followed line, ppm.

    The highest point of the followed peak's window (3-point parabola,
    :func:`ingest.processing.nmr.find_peak_ppm`); 0 when ``nmr.follow`` is None
    or the window is empty.  Cheap: one argmax over the window.
    """
    if not nmr.follow:
        return 0.0
    pk = nmr.peak(nmr.follow)
    x, y = proc.ppm, proc.real
    if x.size > 2 and x[0] > x[1] > x[-1]:
        # a vendor-order axis: the window cut by bisection (the points of find_peak_ppm's mask)
        found = top_ppm(x, y, *index_window(x, pk.window_ppm))
    else:
        found = find_peak_ppm(x, y, pk.window_ppm)
    if not math.isfinite(found):
        return 0.0
    ref = nmr.follow_ppm if nmr.follow_ppm is not None else pk.expected_ppm
    return float(found - ref)


def _peak_fit(p: PeakSpec, proc: ProcessedNMR, snr_min: float, noise: float, offset: float = 0.0,
              prev: PeakFit | None = None, fast: bool = False) -> PeakFit:
    """One configured peak of a processed spectrum.  ``fast`` (the live path): the window
    cut by bisection of the (decreasing) axis, and a Lorentzian solved by the numpy
    Levenberg-Marquardt from ``prev`` (the previous spectrum's line, when it was a good
    fit): the same numbers as the default path (tests/test_live_fast.py)."""
    corr = float(proc.params.get("noise_corr_points", 1.0))
    win = (p.window_ppm[0] + offset, p.window_ppm[1] + offset)
    ppm, real = proc.ppm, proc.real
    if fast:
        i0, i1 = index_window(ppm, win)
        ppm, real = ppm[i0:i1], real[i0:i1]
    if p.method == "integral":
        bl = p.baseline
        if bl == "auto":  # global polynomial at the configured order: trust it; else a local line
            full = proc.baseline is not None and proc.params.get("baseline") == f"poly{proc.params.get('order')}"
            bl = "none" if full else "linear"
        return integrate_window(ppm, real, win, sfo1_hz=proc.sfo1_hz, noise=noise,
                                noise_corr=corr, baseline=bl, _whole=fast)  # type: ignore[arg-type]
    if not fast:
        return fit_peak(ppm, real, win, sfo1_hz=proc.sfo1_hz, shape=p.shape,  # type: ignore[arg-type]
                        snr_min=snr_min, noise=noise, noise_corr=corr)
    kw = dict(sfo1_hz=proc.sfo1_hz, shape=p.shape, snr_min=snr_min, noise=noise, noise_corr=corr)
    start = None
    if prev is not None and prev.success and not prev.warnings and prev.method == "lorentzian" \
            and win[0] < prev.center_ppm < win[1]:
        to_ppm = 1e6 / proc.sfo1_hz
        start = (prev.area * to_ppm, prev.center_ppm, 0.5 * prev.fwhm_hz * to_ppm)
    got = fit_peak(ppm, real, win, start=start, solver="numpy", _whole=True, **kw)  # type: ignore[arg-type]
    if got.warnings and got.method == "lorentzian" and math.isfinite(got.center_ppm):
        # a line at the window edge, too broad, ...: such fits can have several optima, and the
        # one found may depend on the start; the default path's fit (from the window's guess)
        return fit_peak(ppm, real, win, _whole=True, **kw)  # type: ignore[arg-type]
    return got


def _nmr_row(spec: NMRSpectrum, cfg: ObservablesConfig, phase: tuple[float, float] | None,
             proc: ProcessedNMR | None = None, prev: Mapping[str, PeakFit] | None = None,
             fast: bool | None = None) -> tuple[dict[str, Any], ProcessedNMR, dict[str, PeakFit]]:
    """The row of one NMR spectrum; ``proc`` given (the live plan) selects the fast fits unless
    ``fast`` is False (``proc`` then is :func:`process_for_config`'s, made beforehand)."""
    meta = spec.meta
    fast = proc is not None if fast is None else fast
    if proc is None:
        proc = process_for_config(spec, cfg, phase)
    row = _common(meta, "nmr", meta.vendor)
    row["sfo1_MHz"] = meta.sfo1_hz / 1e6
    row["ns"] = int(meta.ns)
    noise = proc.params.get("noise_sigma")
    if noise is None:
        noise = noise_sigma(proc.real)
    fits: dict[str, PeakFit] = {}
    notes: list[str] = []
    offset = window_offset(proc, cfg.nmr)
    row["window_offset_ppm"] = offset
    prev = prev or {}
    for p in cfg.nmr.peaks:
        fits[p.name] = _peak_fit(p, proc, cfg.nmr.snr_min, noise, offset, prev.get(p.name), fast)
    fits = refine_widths(fits, cfg.nmr.peaks, proc.ppm, proc.real, sfo1_hz=proc.sfo1_hz, offset=offset,
                         noise=noise, noise_corr=float(proc.params.get("noise_corr_points", 1.0)))  # broad lines
    for p in cfg.nmr.peaks:
        pf = fits[p.name]
        row.update(pf.columns(p.name))
        for w in pf.warnings:
            if p.optional and w == "no peak above noise":
                continue
            notes.append(f"{p.name}: {w}")
    notes += assignment_warnings(cfg.nmr.peaks, fits, offset, sfo1_hz=proc.sfo1_hz)
    row["processing"] = proc.processing + (f";cfg={Path(cfg.source).name}" if cfg.source else "")
    row["nmr_warnings"] = "; ".join(notes)
    return row, proc, fits


def extract_nmr(spec: NMRSpectrum, cfg: ObservablesConfig | None = None,
                phase: tuple[float, float] | None = None) -> dict[str, Any]:
    """One table row from an NMR spectrum.

    Parameters
    ----------
    spec : NMRSpectrum
        With a FID (processed here) or only a vendor-processed spectrum.
    cfg : ObservablesConfig, optional
        Default :meth:`ObservablesConfig.default`.
    phase : (p0_deg, p1_deg) or None
        Reuse a phase; None auto-phases this spectrum.

    Returns
    -------
    dict
        Columns of the module docstring.
    """
    cfg = cfg or ObservablesConfig.default()
    return _nmr_row(spec, cfg, phase)[0]


def extract_epr(spec: EPRSpectrum, cfg: ObservablesConfig | None = None) -> dict[str, Any]:
    """One table row from a 1D EPR spectrum (delegates to :func:`ingest.processing.epr.epr_row`).

    Common columns missing from that row are filled in from the metadata.
    """
    cfg = cfg or ObservablesConfig.default()
    row = dict(epr_row(spec, cfg.epr))
    for k, v in _common(spec.meta, "epr", spec.meta.format).items():
        row.setdefault(k, v)
    return row


class Extractor:
    """Spectrum -> row, phasing the first NMR spectrum and reusing that phase.

    Parameters
    ----------
    cfg : ObservablesConfig, optional
        Default :meth:`ObservablesConfig.default`.
    phase : (p0_deg, p1_deg), optional
        Start with a known phase instead of auto-phasing the first spectrum.
    fast : bool
        The live path (``flowcell watch``): once a spectrum with a FID has fixed the phase
        and the baseline, the next spectra of its series go through a
        :class:`ingest.processing.nmr_plan.SeriesPlan` (digital-filter ramp, apodization,
        phase and axis precomputed; the robust baseline started where the previous
        spectrum's converged), windows are cut by index and the Lorentzian fits start from
        the previous spectrum's lines.  Fitted shifts, widths and areas within 5 % of their
        standard errors, windowed sums of empty windows within one (tests/test_live_fast.py);
        default False (every spectrum processed in full).

    Attributes
    ----------
    phase : (p0_deg, p1_deg) or None
        The phase in use (None until the first NMR spectrum with a FID).
    last : ProcessedNMR or None
        The last processed NMR spectrum (for plots and checks).
    last_fits : dict of PeakFit
        Full diagnostics of the last NMR row.
    """

    def __init__(self, cfg: ObservablesConfig | None = None, *, phase: tuple[float, float] | None = None,
                 fast: bool = False) -> None:
        self.cfg = cfg or ObservablesConfig.default()
        self.phase: tuple[float, float] | None = None if phase is None else (float(phase[0]), float(phase[1]))
        self.last: ProcessedNMR | None = None
        self.last_fits: dict[str, PeakFit] = {}
        self.fast = bool(fast)
        self.plan: SeriesPlan | None = None

    def __call__(self, spec: NMRSpectrum | EPRSpectrum) -> dict[str, Any]:
        if isinstance(spec, EPRSpectrum) or getattr(spec, "kind", None) == "epr":
            return extract_epr(spec, self.cfg)  # type: ignore[arg-type]
        n = self.cfg.nmr
        if self.fast and self.plan is not None and self.plan.matches(spec, n.lb_hz, n.zero_fill, n.baseline):
            row, proc, fits = _nmr_row(spec, self.cfg, self.phase, self.plan.process(spec), self.last_fits)
        else:
            proc = self.process(spec)  # auto-phased while no phase is set; the phase then kept
            row, proc, fits = _nmr_row(spec, self.cfg, self.phase, proc, fast=False)
            if self.fast and spec.fid is not None and math.isfinite(proc.p0_deg) and np.asarray(spec.fid).ndim == 1:
                self.plan = SeriesPlan.from_first(spec, proc, lb_hz=n.lb_hz, zero_fill=n.zero_fill,
                                                  baseline=n.baseline, reference=n.processing_reference())
        self.last, self.last_fits = proc, fits
        return row

    def process(self, spec: NMRSpectrum) -> ProcessedNMR:
        """The processing :meth:`__call__` gives an NMR spectrum (auto-phased while no phase is
        set, the phase then kept), without its row: :meth:`row_from` makes the row later, the
        same row (the batch engine sets a series up between the two, ingest.batch)."""
        proc = process_for_config(spec, self.cfg, self.phase)
        if self.phase is None and spec.fid is not None and math.isfinite(proc.p0_deg):
            self.phase = proc.phase
        return proc

    def row_from(self, spec: NMRSpectrum, proc: ProcessedNMR) -> dict[str, Any]:
        """The row :meth:`__call__` gives ``spec`` (not fast), from its :meth:`process` ``proc``
        (what :meth:`__call__` does, without the live plan)."""
        row, proc, fits = _nmr_row(spec, self.cfg, self.phase, proc, fast=False)
        self.last, self.last_fits = proc, fits
        return row

    def reset_phase(self) -> None:
        """Forget the phase (and the live plan): the next NMR spectrum is auto-phased again."""
        self.phase = None
        self.plan = None
