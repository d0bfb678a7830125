"""What the CW EPR readers share: unit tables, value parsing, 2D → rows.

The vendor formats themselves live one per module (:mod:`ingest.readers.bes3t`,
:mod:`ingest.readers.esp`, :mod:`ingest.readers.magnettech`,
:mod:`ingest.readers.csv_epr`); docs/physics.md §5 describes them.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

from ingest.types import EPRSpectrum, as_utc

__all__ = ["FIELD_UNITS", "SI_UNITS", "TIME_UNITS", "gain_db_to_linear", "split_rows"]

#: Field-unit factors to tesla.
FIELD_UNITS: dict[str, float] = {"G": 1e-4, "GAUSS": 1e-4, "MT": 1e-3, "T": 1.0, "KG": 0.1}
#: Time-unit factors to seconds.
TIME_UNITS: dict[str, float] = {"S": 1.0, "MS": 1e-3, "US": 1e-6, "NS": 1e-9, "MIN": 60.0, "H": 3600.0}
#: BES3T item formats → numpy type codes (byte order added later).
IRFMT: dict[str, str] = {"C": "i1", "S": "i2", "I": "i4", "F": "f4", "D": "f8", "A": "S1"}
#: Units appearing in DSL values ("0.6325 mW", "10.00 ms", "0.100 G") → SI factor.
SI_UNITS: dict[str, float] = {
    "W": 1.0, "mW": 1e-3, "uW": 1e-6, "µW": 1e-6, "nW": 1e-9,
    "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9,
    "G": 1e-4, "mT": 1e-3, "T": 1.0, "kG": 0.1,
    "Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9,
    "K": 1.0,
}


def gain_db_to_linear(gain_db: float) -> float:
    """Receiver gain in dB → linear amplitude factor, ``10**(dB/20)`` (docs/physics.md §1.5)."""
    return float(10.0 ** (gain_db / 20.0))




def parse_iso(text: str) -> datetime:
    """ISO 8601 with 'Z' and up to 7 fractional digits (.NET), Python 3.10-safe."""
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants exactly 3 or 6 fractional digits
    s = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], s)
    return as_utc(datetime.fromisoformat(s))


def value_with_unit(text: str | None) -> float | None:
    """Parse a DSL-style value such as ``'0.6325 mW'`` into SI; None if absent/unparseable."""
    if text is None:
        return None
    m = re.match(r"^\s*([-+0-9.eE]+)\s*([^\s]*)\s*$", text)
    if not m:
        return None
    try:
        value = float(m.group(1))
    except ValueError:
        return None
    unit = m.group(2)
    if unit == "":
        return value
    if unit not in SI_UNITS:
        return None
    return value * SI_UNITS[unit]


def float_key(d: dict[str, str], key: str) -> float | None:
    v = d.get(key)
    if v is None or v.strip() == "":
        return None
    try:
        return float(v.strip().strip("'\""))
    except ValueError:
        return None



def split_rows(spec: EPRSpectrum) -> list[EPRSpectrum]:
    """Split a 2D set into 1D spectra, one per row.

    Parameters
    ----------
    spec : EPRSpectrum
        1D (returned as a one-element list, unchanged) or 2D.

    Returns
    -------
    list of EPRSpectrum
        ``meta.row`` is the row index.  When the second axis is time
        (``y_unit == 's'``, seconds since the acquisition start), each row
        gets its own ``start = meta.start + (y_i - y_0)`` and
        ``end = start + row duration``, the duration being
        ``conversion_time * n_points * n_scans`` when known, else the row
        spacing.  Otherwise rows keep the parent times.
    """
    if spec.intensity.ndim == 1:
        return [spec]
    m = spec.intensity.shape[0]
    out: list[EPRSpectrum] = []
    y = spec.y_axis if spec.y_axis is not None else np.arange(m, dtype=float)
    meta = spec.meta
    dur: float | None = None
    if meta.conversion_time_s:
        dur = meta.conversion_time_s * spec.field_T.size * (meta.n_scans or 1)
    elif m > 1 and spec.y_unit == "s":
        dur = float(np.median(np.diff(y)))
    for i in range(m):
        start, end = meta.start, meta.end
        if spec.y_unit == "s" and meta.start is not None:
            start = meta.start + timedelta(seconds=float(y[i] - y[0]))
            end = start + timedelta(seconds=dur) if dur is not None else start
        extra = {k: v for k, v in meta.extra.items() if k != "imag"}
        extra["y_value"] = float(y[i])
        extra["y_unit"] = spec.y_unit
        rmeta = replace(meta, row=i, start=start, end=end, extra=extra)
        out.append(EPRSpectrum(field_T=spec.field_T.copy(), intensity=spec.intensity[i].copy(), meta=rmeta))
    return out
