"""ObservablesConfig -> TOML text (the writer that ``flowcell calibrate`` uses).

``ObservablesConfig.from_toml(path)`` reads back exactly what :func:`to_toml`
writes (tests/test_calibrate.py checks the round trip).  Only the keys that
differ from the readers' defaults are written for peaks; comments (``#``
lines) carry the calibration's provenance.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from ingest.processing.observables import NMRConfig, ObservablesConfig, PeakSpec

__all__ = ["to_toml", "write_observables"]

_PEAK_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PeakSpec) if f.default is not dataclasses.MISSING}


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v!r} to TOML")
        return repr(round(v, 6))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _nmr_lines(n: NMRConfig) -> list[str]:
    out = ["[nmr]", f"lb_hz = {_value(n.lb_hz)}", f"zero_fill = {n.zero_fill}",
           f"baseline = {_value(False if n.baseline is None else int(n.baseline))}",
           f"snr_min = {_value(n.snr_min)}", f"autophase_p1 = {_value(n.autophase_p1)}"]
    if n.reference:
        out.append(f"reference = {_value(dict(n.reference))}")
    if n.follow:
        out.append(f"follow = {_value(n.follow)}")
        if n.follow_ppm is not None:
            out.append(f"follow_ppm = {_value(n.follow_ppm)}")
    for p in n.peaks:
        out += ["", "[[nmr.peaks]]", f"name = {_value(p.name)}", f"window_ppm = {_value(list(p.window_ppm))}"]
        for key in ("shape", "method", "n_h", "optional", "baseline", "species", "ppm", "tol_ppm", "note"):
            v = getattr(p, key)
            if v is None or v == _PEAK_DEFAULTS.get(key):
                continue
            out.append(f"{key} = {_value(v)}")
    return out


def _epr_lines(epr: Any) -> list[str]:
    if epr is None:
        return []
    d = dataclasses.asdict(epr) if dataclasses.is_dataclass(epr) else dict(epr)
    cal = d.pop("calibration", None)
    ov = d.pop("overrides", None) or {}
    out = ["[epr]"] + [f"{k} = {_value(v)}" for k, v in d.items() if v is not None]
    if ov:
        out += ["", "[epr.overrides]"] + [f"{k} = {_value(v)}" for k, v in ov.items() if v is not None]
    if cal:
        out += ["", "[epr.calibration]"] + [f"{k} = {_value(v)}" for k, v in cal.items() if v is not None]
    return out


def to_toml(cfg: ObservablesConfig, header: str = "") -> str:
    """TOML text of ``cfg`` (``header`` lines become ``#`` comments at the top)."""
    lines = [f"# {h}".rstrip() for h in header.splitlines()] if header else []
    if lines:
        lines.append("")
    lines += _nmr_lines(cfg.nmr)
    epr = _epr_lines(cfg.epr)
    if epr:
        lines += [""] + epr
    return "\n".join(lines) + "\n"


def write_observables(cfg: ObservablesConfig, path: str | Path, header: str = "") -> Path:
    """Write ``cfg`` as TOML to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(cfg, header), encoding="utf-8")
    return path
