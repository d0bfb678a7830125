"""Magnettech / Bruker ESR5000 XML: identify, read, completeness.

``<ESRXmlFile><Data><Measurement>`` with recipe ``<Param>`` elements
carrying their own units, and ``<Curve>`` elements stored as base64
float64 little-endian (the shared files encode each value separately,
12 characters with padding).  Every curve is sampled in time
(``XOffset + i*XSlope``, s): the field curve (``YType BField``, mT) and the
first-harmonic absorption (``YType MW_Absorption``) have different time
grids, so the field of each absorption point is interpolated from B(t)
(points outside the recorded B(t) are dropped).  ``Measurement@Timestamp``
is the start and ``ESRXmlFile@Timestamp`` (file written) the end;
``Measurement@Temperature`` is in °C; ``MwFreq`` in GHz.  The ESR5000
records no receiver gain (docs/physics.md §6 item 7); ``conversion_time_s`` is
the time per stored absorption point (``XSlope``).

Completeness (:func:`is_complete`): the file ends with the closing
``</ESRXmlFile>`` tag (ESRStudio writes the XML in one piece; a file cut short
lacks it).  Formats: docs/physics.md §5.4.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import numpy as np

from ingest.readers.checks import checked, read_bytes
from ingest.readers.epr_common import FIELD_UNITS, SI_UNITS, parse_iso
from ingest.types import EPRMeta, EPRSpectrum, IngestError

__all__ = ["is_complete", "is_magnettech", "read_magnettech"]


def is_magnettech(path: Path) -> bool:
    """True if ``path`` is XML whose root is ``<ESRXmlFile``."""
    try:
        with open(path, "rb") as fh:
            h = fh.read(1024).lstrip(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False
    return (h.startswith(b"<?xml") and b"<ESRXmlFile" in h) or h.startswith(b"<ESRXmlFile")


def is_complete(path: Path) -> bool:
    """True when the file ends with ``</ESRXmlFile>`` (trailing white space allowed)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 256))
            tail = fh.read()
    except OSError:
        return False
    return tail.rstrip().endswith(b"</ESRXmlFile>")


def _attr_float(path: Path, elem: ET.Element, name: str, scale: float = 1.0, offset: float = 0.0) -> float | None:
    """A numeric XML attribute, None when absent, IngestError naming it when garbled."""
    text = elem.get(name)
    if text is None:
        return None
    try:
        return float(text) * scale + offset
    except ValueError:
        raise IngestError(path, f"<{elem.tag} {name}={text!r}>: not a number") from None


def _attr_time(path: Path, elem: ET.Element, name: str) -> datetime | None:
    text = elem.get(name)
    if not text:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise IngestError(path, f"<{elem.tag} {name}={text!r}>: not an ISO 8601 time") from None




_B64_CHUNK = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _decode_curve(path: Path, curve: ET.Element) -> np.ndarray:
    text = (curve.text or "").strip()
    name = curve.get("Name", "?")
    if not text:
        return np.zeros(0)
    comp = curve.get("Compression", "Base64")
    if comp.lower() == "base64":
        try:
            chunks = _B64_CHUNK.findall(re.sub(r"\s+", "", text))
            raw = b"".join(base64.b64decode(c) for c in chunks)
        except (binascii.Error, ValueError) as exc:
            raise IngestError(path, f"curve {name!r}: invalid base64 data ({exc})") from exc
        if len(raw) % 8:
            raise IngestError(path, f"curve {name!r}: {len(raw)} bytes is not a whole number of float64")
        return np.frombuffer(raw, dtype="<f8").astype(float)
    try:
        return np.array([float(v) for v in re.split(r"[\s;,]+", text) if v], float)
    except ValueError as exc:
        raise IngestError(path, f"curve {name!r}: unknown compression {comp!r}") from exc


def _param_si(path: Path, params: dict[str, tuple[str, str]], name: str) -> float | None:
    """A <Param>'s value in SI (None when absent or not a number); unknown units refused."""
    if name not in params:
        return None
    text, unit = params[name]
    try:
        v = float(text)
    except ValueError:
        return None
    if unit in ("", None):
        return v
    if unit not in SI_UNITS:
        raise IngestError(path, f"parameter {name}: unknown unit {unit!r}")
    return v * SI_UNITS[unit]


def _timed(path: Path, c: ET.Element) -> tuple[np.ndarray, np.ndarray]:
    """A curve's sample times (s, from XOffset and XSlope) and its values."""
    v = _decode_curve(path, c)
    x0 = _attr_float(path, c, "XOffset") or 0.0
    dx = _attr_float(path, c, "XSlope")
    if dx is None or not dx > 0 or not np.isfinite(dx):
        raise IngestError(path, f"curve {c.get('Name', '?')!r}: XSlope {c.get('XSlope')!r} must be a positive time step")
    return x0 + dx * np.arange(v.size), v


def _field_and_absorption(path: Path, curves: dict[str, ET.Element]) -> tuple[np.ndarray, np.ndarray]:
    """Field (T) at each absorption point, interpolated from the recorded B(t), and the absorption.

    Absorption points recorded outside the field curve's time span are dropped.
    """
    tb, b = _timed(path, curves["BField"])
    ta, y = _timed(path, curves["MW_Absorption"])
    if b.size < 2 or y.size < 2:
        raise IngestError(path, "field or absorption curve holds fewer than 2 points")
    bunit = curves["BField"].get("YUnit", "mT")
    if bunit.upper() not in FIELD_UNITS:
        raise IngestError(path, f"unknown field unit {bunit!r}")
    inside = (ta >= tb[0]) & (ta <= tb[-1])
    field_T = np.interp(ta[inside], tb, b) * FIELD_UNITS[bunit.upper()]
    return field_T, y[inside]


@checked()
def read_magnettech(path: str | Path) -> EPRSpectrum:
    """Read a Magnettech / Bruker ESR5000 (MS-5000) XML file.

    Parameters
    ----------
    path : str or Path
        The .xml file written by ESRStudio.

    Returns
    -------
    EPRSpectrum
        Field (T) interpolated from the recorded B(t) at the time of each
        first-harmonic absorption point; meta in SI (see module docstring).

    Raises
    ------
    IngestError
        Not an ESRXmlFile, or the field/absorption curves are missing.
    """
    path = Path(path)
    try:
        root = ET.fromstring(read_bytes(path, what="XML file"))
    except (ET.ParseError, OSError) as exc:
        raise IngestError(path, f"not readable as Magnettech XML: {exc}") from exc
    if root.tag != "ESRXmlFile":
        raise IngestError(path, f"root element is <{root.tag}>, expected <ESRXmlFile>")
    meas = root.find("./Data/Measurement")
    if meas is None:
        raise IngestError(path, "no <Data><Measurement> element")
    params: dict[str, tuple[str, str]] = {}
    for p in meas.iter("Param"):
        params[p.get("Name", "")] = ((p.text or "").strip(), p.get("Unit", ""))

    def param_si(name: str) -> float | None:
        return _param_si(path, params, name)

    curves = {c.get("YType", ""): c for c in meas.iter("Curve")}
    if "BField" not in curves or "MW_Absorption" not in curves:
        names = sorted(c.get("Name", "?") for c in meas.iter("Curve"))
        raise IngestError(path, f"needs curves of YType BField and MW_Absorption, found {names}")
    field_T, y = _field_and_absorption(path, curves)

    attrs = dict(meas.attrib)
    mw_freq = _attr_float(path, meas, "MwFreq", 1e9)
    temp = _attr_float(path, meas, "Temperature", 1.0, 273.15)
    start = _attr_time(path, meas, "Timestamp")
    end = _attr_time(path, root, "Timestamp")
    acc = param_si("Accumulations")
    meta = EPRMeta(
        path=path,
        format="magnettech",
        mw_freq_hz=mw_freq,
        mw_power_W=param_si("MicrowavePower"),
        mod_amp_T=param_si("Modulation"),
        mod_freq_hz=param_si("ModulationFreq"),
        receiver_gain=None,
        receiver_gain_db=None,
        conversion_time_s=_attr_float(path, curves["MW_Absorption"], "XSlope"),
        time_constant_s=None,
        n_scans=None if acc is None else int(acc),
        temperature_K=temp,
        start=start,
        end=end,
        scans_normalised=None,
        extra={
            "measurement": attrs,
            "params": {k: v[0] for k, v in params.items()},
            "param_units": {k: v[1] for k, v in params.items()},
            "curves": sorted(c.get("Name", "?") for c in meas.iter("Curve")),
            "sweep_time_s": param_si("SweepTime"),
            "q_factor": _attr_float(path, meas, "QFactor"),
        },
    )
    return EPRSpectrum(field_T=field_T, intensity=np.asarray(y, float), meta=meta)
