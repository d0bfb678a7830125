"""Readers for CW EPR files: Bruker BES3T, Bruker ESP/WinEPR, Magnettech ESR5000 XML, CSV.

Every reader returns an :class:`ingest.types.EPRSpectrum`: the field axis in
tesla, the first-harmonic intensity as stored (arbitrary units, never
rescaled), and an :class:`ingest.types.EPRMeta` in SI units.  The raw vendor
parameters are kept in ``meta.extra`` for provenance only.

Formats (science.md §5.4-5.6) and the vendor quirks handled here
-----------------------------------------------------------------
BES3T (.DSC + .DTA [+ .XGF/.YGF])
    Xepr/Xenon (EMX, EMXplus, ELEXSYS) and the Magnettech ESR5000 export.
    ``BSEQ`` BIG/LIT gives the byte order, ``IRFMT`` C/S/I/F/D the item type
    (int8/int16/int32/float32/float64), ``IKKF`` REAL/CPLX (complex files
    interleave re/im; the real part is returned and the imaginary part kept
    in ``meta.extra['imag']``).  Axes are ``XMIN + i*XWID/(XPTS-1)`` unless
    ``XTYP IGD`` points to a ``.XGF`` file (``YTYP IGD`` → ``.YGF``).
    Units: ``XUNI`` G, mT or T for the field; s or ms for time axes.
    ``RCAG`` is the receiver gain; every real Xepr file seen records it in dB
    (the DSL line ``Gain 40 dB`` confirms it), although the BES3T
    specification calls it unitless (EasySpin issue #101, which also settles
    the linear factor as 10**(dB/20)).  Rule used here: dB when the DSL
    ``Gain`` says ``dB`` or, without a DSL gain, when ``RCAG <= 120``;
    otherwise a linear factor.
    Time stamps: Xepr writes ``DATE``/``TIME`` (MM/DD/YY, local clock, no
    zone) when the dataset is saved, i.e. at the END of the acquisition.  The
    lab notes (.info) of all three shared files agree (e.g. BDPA 1D sweep:
    notes 14:23-14:24, ``TIME 14:23:26``, 30 s sweep).  The start is
    therefore estimated as ``end - n_scans * XPTS * YPTS * SPTP`` (sweep
    overheads ignored; ``extra['start_estimated'] = True``).  Files written
    by :func:`ingest.readers.epr_writers.write_bes3t` carry the exact start and end
    in a ``.DVC flowcell`` device block of the DSL, which takes precedence.
    Times without a zone are taken as UTC.
ESP / WinEPR (.par + .spc)
    The .par file is ASCII with CR-only (or CRLF/LF) line endings.  WinEPR
    writes ``DOS Format`` as its first line and stores float32
    little-endian; the older ESP (Unix/Aspect) stores int32 big-endian and has
    no ``DOS Format`` line.  The decision is made on that key and then checked
    against the file size (4 bytes per point, ``ANZ``/``RES``/``SSX`` points
    when given); WinEPR ``MIN``/``MAX`` keys, when present, are checked too.
    Field axis: ``GST + GSI * linspace(0, 1, n)`` in ``JUN`` (G by default),
    falling back to ``HCF ± HSW/2``.  Units: ``MF`` GHz, ``MP`` mW, ``RMA`` G,
    ``RCT``/``RTC`` ms, ``RRG`` linear, ``TE`` K.  ``JDA``/``JTM`` are taken as
    the end of the acquisition, like Xepr (not verifiable on the shared
    files; the start is estimated as for BES3T).
Magnettech ESR5000 XML
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
    records no receiver gain (science.md §6 item 7); ``conversion_time_s`` is
    the time per stored absorption point (``XSlope``).
CSV / TXT
    Two columns, field and intensity.  The field unit comes from the
    ``field_unit`` argument, else the header (``mT``, ``G``/``Gauss``, ``T``),
    else the magnitude (X-band assumed: values >= 1500 are G, values < 5 are
    T, otherwise mT).  No acquisition parameters: those meta fields are None.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ingest.types import EPRMeta, EPRSpectrum, IngestError, as_utc

__all__ = [
    "read_bes3t",
    "read_esp",
    "read_magnettech",
    "read_epr_csv",
    "split_rows",
    "parse_dsc",
    "gain_db_to_linear",
]

#: Field-unit factors to tesla.
_FIELD_UNITS: dict[str, float] = {"G": 1e-4, "GAUSS": 1e-4, "MT": 1e-3, "T": 1.0, "KG": 0.1}
#: Time-unit factors to seconds.
_TIME_UNITS: dict[str, float] = {"S": 1.0, "MS": 1e-3, "US": 1e-6, "NS": 1e-9, "MIN": 60.0, "H": 3600.0}
#: BES3T item formats → numpy type codes (byte order added later).
_IRFMT: dict[str, str] = {"C": "i1", "S": "i2", "I": "i4", "F": "f4", "D": "f8", "A": "S1"}
#: Units appearing in DSL values ("0.6325 mW", "10.00 ms", "0.100 G") → SI factor.
_SI_UNITS: dict[str, float] = {
    "W": 1.0, "mW": 1e-3, "uW": 1e-6, "µW": 1e-6, "nW": 1e-9,
    "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9,
    "G": 1e-4, "mT": 1e-3, "T": 1.0, "kG": 0.1,
    "Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9,
    "K": 1.0,
}


def gain_db_to_linear(gain_db: float) -> float:
    """Receiver gain in dB → linear amplitude factor, ``10**(dB/20)`` (science.md §1.5)."""
    return float(10.0 ** (gain_db / 20.0))


# --------------------------------------------------------------------------- helpers




def _parse_iso(text: str) -> datetime:
    """ISO 8601 with 'Z' and up to 7 fractional digits (.NET), Python 3.10-safe."""
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants exactly 3 or 6 fractional digits
    s = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], s)
    return as_utc(datetime.fromisoformat(s))


def _value_with_unit(text: str | None) -> float | None:
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
    if unit not in _SI_UNITS:
        return None
    return value * _SI_UNITS[unit]


def _float(d: dict[str, str], key: str) -> float | None:
    v = d.get(key)
    if v is None or v.strip() == "":
        return None
    try:
        return float(v.strip().strip("'\""))
    except ValueError:
        return None


# --------------------------------------------------------------------------- BES3T


def parse_dsc(path: str | Path) -> dict[str, Any]:
    """Parse a BES3T descriptor (.DSC) into its layers.

    Parameters
    ----------
    path : str or Path
        The .DSC file.

    Returns
    -------
    dict
        ``{'DESC': {...}, 'SPL': {...}, 'DSL': {device: {...}}, 'MHL': {...}}``;
        values are raw strings with surrounding quotes removed.  Lines ending
        with a backslash are continued on the next line (BES3T 1.2).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError as exc:
        raise IngestError(path, f"cannot read descriptor: {exc}") from exc
    if "#DESC" not in text:
        raise IngestError(path, "not a BES3T descriptor (no #DESC section)")
    lines = re.split(r"\r\n|\r|\n", text)
    out: dict[str, Any] = {"DESC": {}, "SPL": {}, "DSL": {}, "MHL": {}}
    section = None
    device = "_"
    pending = ""
    for raw in lines:
        line = pending + raw
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + "\n"
            continue
        s = line.strip()
        if not s or s.startswith("*"):
            continue
        if s.startswith("#"):
            name = s[1:].split()[0].upper()
            section = name if name in out else None
            device = "_"
            continue
        if section is None:
            continue
        if s.startswith(".DVC"):
            device = s[4:].split(",")[0].strip()
            out["DSL"].setdefault(device, {})
            continue
        parts = s.split(None, 1)
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if section == "DSL":
            out["DSL"].setdefault(device, {})[key] = value
        else:
            out[section][key] = value
    return out


def _bes3t_paths(path: str | Path) -> tuple[Path, Path]:
    """Return (dsc, dta) for a path given as .DSC, .DTA or the common stem."""
    p = Path(path)
    suffix = p.suffix.lower()
    stem = p.with_suffix("") if suffix in (".dsc", ".dta") else p

    def find(ext: str) -> Path:
        for cand in (ext.upper(), ext.lower()):
            q = stem.with_name(stem.name + cand)
            if q.exists():
                return q
        if suffix == ext.lower():
            return p
        return stem.with_name(stem.name + ext.upper())

    return find(".DSC"), find(".DTA")


def _dtype(fmt: str, order: str, where: Path, key: str) -> np.dtype:
    code = _IRFMT.get(fmt.strip().upper())
    if code is None or code == "S1":
        raise IngestError(where, f"unsupported {key} {fmt!r} (expected C, S, I, F or D)")
    return np.dtype(order + code)


def _read_axis_file(
    path: Path, n: int, fmt: str, order: str, dsc: Path, key: str
) -> np.ndarray:
    if not path.exists():
        raise IngestError(dsc, f"{key} IGD needs the axis file {path.name}, which is missing")
    dt = _dtype(fmt, order, dsc, key.replace("TYP", "FMT"))
    raw = path.read_bytes()
    need = n * dt.itemsize
    if len(raw) < need:
        raise IngestError(path, f"holds {len(raw)} bytes, the .DSC needs {need} ({n} points of {dt})")
    return np.frombuffer(raw[:need], dtype=dt).astype(float)


def _axis(
    desc: dict[str, str], ax: str, n: int, dsc: Path, order: str
) -> tuple[np.ndarray, str, str]:
    """Values (raw units), unit and name of axis ``ax`` ('X' or 'Y')."""
    typ = desc.get(f"{ax}TYP", "IDX").upper()
    unit = desc.get(f"{ax}UNI", "")
    name = desc.get(f"{ax}NAM", "")
    if typ == "IGD":
        ext = f".{ax}GF"
        cand = [dsc.with_suffix(ext), dsc.with_suffix(ext.lower())]
        gf = next((c for c in cand if c.exists()), cand[0])
        values = _read_axis_file(gf, n, desc.get(f"{ax}FMT", "D"), order, dsc, f"{ax}TYP")
        return values, unit, name
    if typ not in ("IDX", "NTUP"):
        raise IngestError(dsc, f"unsupported {ax}TYP {typ!r}")
    xmin, xwid = _float(desc, f"{ax}MIN"), _float(desc, f"{ax}WID")
    for key, val in ((f"{ax}MIN", xmin), (f"{ax}WID", xwid)):
        if val is None:
            raise IngestError(dsc, f"required key {key} missing from the descriptor")
    if n == 1:
        return np.array([xmin], float), unit, name
    return xmin + xwid * np.arange(n) / (n - 1), unit, name


def _is_field(unit: str, name: str) -> bool:
    return unit.strip().upper() in _FIELD_UNITS or name.strip().lower() in ("field", "magnetic field")


def _required_int(desc: dict[str, str], key: str, dsc: Path) -> int:
    if key not in desc:
        raise IngestError(dsc, f"required key {key} missing from the descriptor")
    try:
        n = int(float(desc[key]))
    except ValueError as exc:
        raise IngestError(dsc, f"{key} = {desc[key]!r} is not an integer") from exc
    if n < 1:
        raise IngestError(dsc, f"{key} = {n} must be >= 1")
    return n


def _xepr_datetime(spl: dict[str, str]) -> datetime | None:
    date, time = spl.get("DATE", "").strip(), spl.get("TIME", "").strip()
    if not date:
        return None
    for fmt in ("%m/%d/%y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M", "%d.%m.%Y %H:%M:%S"):
        try:
            return as_utc(datetime.strptime(f"{date} {time}".strip(), fmt))
        except ValueError:
            continue
    return None


def read_bes3t(path: str | Path) -> EPRSpectrum:
    """Read a Bruker BES3T data set (.DSC descriptor + .DTA data).

    Parameters
    ----------
    path : str or Path
        The .DSC, the .DTA, or their common stem.  Lower-case extensions
        (ESR5000 export) are accepted.

    Returns
    -------
    EPRSpectrum
        ``field_T`` (T), ``intensity`` as stored (real part), ``meta`` in SI.
        For a 2D set ``intensity`` has shape (m, n) with the field along the
        last axis and ``y_axis``/``y_unit`` the other axis (time in s when it
        is a time axis).  When the descriptor puts the field on Y (Xenon
        'time-field' experiments: X = time, Y = field), the data are
        transposed so that rows are still spectra (``extra['transposed']``).

    Raises
    ------
    IngestError
        Missing files or keys, unsupported formats, or a .DTA whose size does
        not match the descriptor.

    Notes
    -----
    Format and time-stamp conventions: see the module docstring and
    science.md §5.4.
    """
    dsc, dta = _bes3t_paths(path)
    if not dsc.exists():
        raise IngestError(dsc, "descriptor .DSC not found")
    if not dta.exists():
        raise IngestError(dta, "data file .DTA not found")
    layers = parse_dsc(dsc)
    desc: dict[str, str] = layers["DESC"]
    spl: dict[str, str] = layers["SPL"]
    dsl: dict[str, dict[str, str]] = layers["DSL"]

    order_key = desc.get("BSEQ", "BIG").strip().upper()
    if order_key not in ("BIG", "LIT"):
        raise IngestError(dsc, f"BSEQ {order_key!r} is neither BIG nor LIT")
    order = ">" if order_key == "BIG" else "<"
    if "IRFMT" not in desc:
        raise IngestError(dsc, "required key IRFMT missing from the descriptor")
    irfmt = [s.strip() for s in desc["IRFMT"].split(",")]
    ikkf = [s.strip().upper() for s in desc.get("IKKF", "REAL").split(",")]
    if len(ikkf) > 1 or len(irfmt) > 1:
        raise IngestError(dsc, f"{len(ikkf)} ordinate components (IKKF {desc.get('IKKF')}) not supported")
    if ikkf[0] not in ("REAL", "CPLX"):
        raise IngestError(dsc, f"IKKF {ikkf[0]!r} is neither REAL nor CPLX")
    dt = _dtype(irfmt[0], order, dsc, "IRFMT")

    nx = _required_int(desc, "XPTS", dsc)
    ytyp = desc.get("YTYP", "NODATA").upper()
    ny = _required_int(desc, "YPTS", dsc) if ytyp != "NODATA" else 1
    if desc.get("ZTYP", "NODATA").upper() != "NODATA":
        nz = _required_int(desc, "ZPTS", dsc)
        if nz > 1:
            raise IngestError(dsc, "3D data sets (ZTYP) are not supported")
    ncomp = 2 if ikkf[0] == "CPLX" else 1
    need = nx * ny * ncomp * dt.itemsize
    raw = dta.read_bytes()
    if len(raw) == 0:
        raise IngestError(dta, f"the .DTA is empty, the .DSC says {nx}x{ny} points of {dt.name}")
    if len(raw) != need:
        raise IngestError(
            dta,
            f"the .DTA holds {len(raw)} bytes, the .DSC says {need} "
            f"(XPTS {nx} x YPTS {ny} x {ncomp} x {dt.itemsize} bytes, IRFMT {irfmt[0]})",
        )
    data = np.frombuffer(raw, dtype=dt).astype(float)
    imag = None
    if ncomp == 2:
        imag = data[1::2]
        data = data[0::2]

    x, xunit, xname = _axis(desc, "X", nx, dsc, order)
    y = yunit = yname = None
    if ny > 1 or ytyp != "NODATA":
        y, yunit, yname = _axis(desc, "Y", ny, dsc, order)

    transposed = False
    if y is None:
        if not _is_field(xunit, xname):
            raise IngestError(dsc, f"X axis is {xname!r} in {xunit!r}, not a magnetic field")
        field_raw, funit = x, xunit
        intensity = data.copy()
        imag2 = imag
        y_axis, y_unit = None, None
    else:
        block = data.reshape(ny, nx)
        iblock = imag.reshape(ny, nx) if imag is not None else None
        if _is_field(xunit, xname):
            field_raw, funit = x, xunit
            intensity, imag2 = block.copy(), iblock
            other, ounit = y, yunit or ""
        elif _is_field(yunit or "", yname or ""):
            transposed = True
            field_raw, funit = y, yunit or ""
            intensity = block.T.copy()
            imag2 = iblock.T.copy() if iblock is not None else None
            other, ounit = x, xunit
        else:
            raise IngestError(dsc, f"neither axis is a magnetic field (X {xunit!r}, Y {yunit!r})")
        tu = ounit.strip().upper()
        if tu in _TIME_UNITS:
            y_axis, y_unit = np.asarray(other, float) * _TIME_UNITS[tu], "s"
        else:
            y_axis, y_unit = np.asarray(other, float), ounit
    fu = funit.strip().upper()
    if fu not in _FIELD_UNITS:
        raise IngestError(dsc, f"unknown field unit {funit!r}")
    field_T = np.asarray(field_raw, float) * _FIELD_UNITS[fu]

    meta = _bes3t_meta(dsc, dta, desc, spl, dsl, nx, ny)
    extra = dict(meta.extra)
    extra["transposed"] = transposed
    if imag2 is not None:
        extra["imag"] = imag2
    meta = replace(meta, extra=extra)
    return EPRSpectrum(field_T=field_T, intensity=intensity, meta=meta, y_axis=y_axis, y_unit=y_unit)


def _bes3t_meta(
    dsc: Path,
    dta: Path,
    desc: dict[str, str],
    spl: dict[str, str],
    dsl: dict[str, dict[str, str]],
    nx: int,
    ny: int,
) -> EPRMeta:
    flat: dict[str, str] = {}
    for dev in dsl.values():
        flat.update(dev)

    mw_freq = _float(spl, "MWFQ")
    if mw_freq is None:
        mw_freq = _value_with_unit(flat.get("FrequencyMon")) or _value_with_unit(flat.get("MwFreq"))
    power = _float(spl, "MWPW")
    if power is None:
        power = _value_with_unit(flat.get("Power"))
    mod_amp = _float(spl, "B0MA")
    if mod_amp is None:
        mod_amp = _value_with_unit(flat.get("ModAmp"))
    mod_freq = _float(spl, "B0MF")
    if mod_freq is None:
        mod_freq = _value_with_unit(flat.get("ModFreq"))
    conv = _float(spl, "SPTP")
    if conv is None:
        conv = _value_with_unit(flat.get("ConvTime"))
    tc = _float(spl, "RCTC")
    if tc is None:
        tc = _value_with_unit(flat.get("TimeConst"))
    n_scans: int | None = None
    if flat.get("NbScansDone", "").strip():
        try:
            n_scans = int(float(flat["NbScansDone"]))
        except ValueError:
            n_scans = None
    if n_scans is None and _float(spl, "AVGS") is not None:
        n_scans = int(_float(spl, "AVGS"))  # type: ignore[arg-type]
    temp = _float(spl, "STMP")
    if temp is None:
        temp = _value_with_unit(flat.get("Temperature"))

    # receiver gain
    gain_db: float | None = None
    gain_lin: float | None = None
    rcag = _float(spl, "RCAG")
    dsl_gain = flat.get("Gain", "")
    m = re.match(r"^\s*([-+0-9.eE]+)\s*(dB)?\s*$", dsl_gain)
    if rcag is None and m:
        rcag = float(m.group(1))
    if rcag is not None:
        says_db = bool(m and m.group(2))
        if says_db or (not dsl_gain and rcag <= 120.0):
            gain_db = rcag
            gain_lin = gain_db_to_linear(rcag)
        else:
            gain_lin = rcag
    sct = flat.get("SctNorm")
    scans_norm = None if sct is None else sct.strip().lower() == "true"

    # time stamps
    extra: dict[str, Any] = {"desc": desc, "spl": spl, "dsl": dsl, "dsc_path": str(dsc)}
    start = end = None
    fc = dsl.get("flowcell", {})
    if fc.get("AcqStart") and fc.get("AcqEnd"):
        start, end = _parse_iso(fc["AcqStart"]), _parse_iso(fc["AcqEnd"])
        extra["start_estimated"] = False
    else:
        end = _xepr_datetime(spl)
        if end is not None:
            duration = (conv or 0.0) * nx * ny * (n_scans or 1)
            start = end - timedelta(seconds=duration)
            extra["start_estimated"] = True
    return EPRMeta(
        path=dta,
        format="bes3t",
        mw_freq_hz=mw_freq,
        mw_power_W=power,
        mod_amp_T=mod_amp,
        mod_freq_hz=mod_freq,
        receiver_gain=gain_lin,
        receiver_gain_db=gain_db,
        conversion_time_s=conv,
        time_constant_s=tc,
        n_scans=n_scans,
        temperature_K=temp,
        start=start,
        end=end,
        scans_normalised=scans_norm,
        row=None,
        extra=extra,
    )


# --------------------------------------------------------------------------- ESP / WinEPR


def _parse_par(path: Path) -> dict[str, str]:
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError as exc:
        raise IngestError(path, f"cannot read parameter file: {exc}") from exc
    out: dict[str, str] = {}
    for line in re.split(r"\r\n|\r|\n", text):
        s = line.strip()
        if not s:
            continue
        if s.upper().startswith("DOS") and "FORMAT" in s.upper():
            out["DOS Format"] = "1"
            continue
        parts = s.split(None, 1)
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    if not out:
        raise IngestError(path, "empty parameter file")
    return out


def _esp_datetime(par: dict[str, str]) -> datetime | None:
    date, time = par.get("JDA", "").strip(), par.get("JTM", "").strip()
    if not date:
        return None
    fmts_d = ("%d.%b.%Y", "%d-%b-%Y", "%m/%d/%Y", "%d.%m.%Y", "%m/%d/%y", "%d-%b-%y")
    fmts_t = ("%H:%M:%S", "%H:%M")
    for fd in fmts_d:
        for ft in fmts_t:
            try:
                return as_utc(datetime.strptime(f"{date.title()} {time}", f"{fd} {ft}"))
            except ValueError:
                continue
    return None


def read_esp(path: str | Path) -> EPRSpectrum:
    """Read a Bruker ESP or WinEPR spectrum (.par + .spc).

    Parameters
    ----------
    path : str or Path
        The .par, the .spc, or their common stem.

    Returns
    -------
    EPRSpectrum
        ``meta.format`` is ``'winepr'`` (float32 little-endian) or ``'esp'``
        (int32 big-endian); see the module docstring for how it is decided.

    Raises
    ------
    IngestError
        Missing files, a .spc whose size does not fit, inconsistent MIN/MAX.
    """
    p = Path(path)
    stem = p.with_suffix("") if p.suffix.lower() in (".par", ".spc") else p

    def find(ext: str) -> Path:
        for cand in (ext, ext.upper()):
            q = stem.with_name(stem.name + cand)
            if q.exists():
                return q
        return stem.with_name(stem.name + ext)

    par_path, spc_path = find(".par"), find(".spc")
    if not par_path.exists():
        raise IngestError(par_path, "parameter file .par not found")
    if not spc_path.exists():
        raise IngestError(spc_path, "data file .spc not found")
    par = _parse_par(par_path)
    raw = spc_path.read_bytes()
    if len(raw) == 0:
        raise IngestError(spc_path, "the .spc is empty")
    winepr = "DOS Format" in par
    dt = np.dtype("<f4") if winepr else np.dtype(">i4")
    if len(raw) % 4:
        raise IngestError(spc_path, f"holds {len(raw)} bytes, not a multiple of 4 (float32/int32)")
    n_file = len(raw) // 4
    n = None
    for key in ("ANZ", "RES", "SSX"):
        v = _float(par, key)
        if v is not None:
            n = int(v)
            break
    ny = int(_float(par, "SSY") or 1) if "SSY" in par else 1
    if n is None:
        n = n_file // ny
    if n * ny != n_file:
        raise IngestError(spc_path, f"holds {len(raw)} bytes, the .par says {n * ny} points of 4 bytes")
    data = np.frombuffer(raw, dtype=dt).astype(float)
    if not np.all(np.isfinite(data)):
        raise IngestError(spc_path, f"non-finite values when read as {dt} ({'WinEPR' if winepr else 'ESP'})")
    vmin, vmax = _float(par, "MIN"), _float(par, "MAX")
    if vmin is not None and vmax is not None:
        tol = 1e-5 * max(abs(vmin), abs(vmax), 1.0)
        if abs(data.min() - vmin) > tol or abs(data.max() - vmax) > tol:
            raise IngestError(
                spc_path,
                f"data range [{data.min():g}, {data.max():g}] disagrees with the .par MIN/MAX "
                f"[{vmin:g}, {vmax:g}]: wrong number format?",
            )

    unit = par.get("JUN", "G").strip().upper() or "G"
    if unit not in _FIELD_UNITS:
        raise IngestError(par_path, f"unknown field unit JUN {par.get('JUN')!r}")
    gst, gsi = _float(par, "GST"), _float(par, "GSI")
    hcf, hsw = _float(par, "HCF"), _float(par, "HSW")
    if gst is not None and gsi is not None:
        start_f, width = gst, gsi
    elif hcf is not None and hsw is not None:
        start_f, width = hcf - hsw / 2.0, hsw
    else:
        raise IngestError(par_path, "field axis undefined: need GST/GSI or HCF/HSW")
    field_T = (start_f + width * np.linspace(0.0, 1.0, n)) * _FIELD_UNITS[unit]

    mf = _float(par, "MF")
    mp = _float(par, "MP")
    rma = _float(par, "RMA")
    rct = _float(par, "RCT")
    rtc = _float(par, "RTC")
    rrg = _float(par, "RRG")
    te = _float(par, "TE")
    nsc = _float(par, "JSD") if "JSD" in par else _float(par, "JNS")
    n_scans = int(nsc) if nsc is not None else None
    end = _esp_datetime(par)
    start = None
    if end is not None:
        start = end - timedelta(seconds=(rct or 0.0) * 1e-3 * n * ny * (n_scans or 1))
    meta = EPRMeta(
        path=spc_path,
        format="winepr" if winepr else "esp",
        mw_freq_hz=None if mf is None else mf * 1e9,
        mw_power_W=None if mp is None else mp * 1e-3,
        mod_amp_T=None if rma is None else rma * _FIELD_UNITS[unit],
        mod_freq_hz=None,
        receiver_gain=rrg,
        receiver_gain_db=None,
        conversion_time_s=None if rct is None else rct * 1e-3,
        time_constant_s=None if rtc is None else rtc * 1e-3,
        n_scans=n_scans,
        temperature_K=te,
        start=start,
        end=end,
        scans_normalised=None,
        extra={"par": par, "par_path": str(par_path), "start_estimated": end is not None},
    )
    intensity = data if ny == 1 else data.reshape(ny, n)
    y_axis = None if ny == 1 else np.arange(ny, dtype=float)
    return EPRSpectrum(field_T=field_T, intensity=intensity, meta=meta, y_axis=y_axis,
                       y_unit=None if ny == 1 else "index")


# --------------------------------------------------------------------------- Magnettech XML


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
        root = ET.parse(path).getroot()
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
        if name not in params:
            return None
        text, unit = params[name]
        try:
            v = float(text)
        except ValueError:
            return None
        if unit in ("", None):
            return v
        if unit not in _SI_UNITS:
            raise IngestError(path, f"parameter {name}: unknown unit {unit!r}")
        return v * _SI_UNITS[unit]

    curves = {c.get("YType", ""): c for c in meas.iter("Curve")}
    if "BField" not in curves or "MW_Absorption" not in curves:
        names = sorted(c.get("Name", "?") for c in meas.iter("Curve"))
        raise IngestError(path, f"needs curves of YType BField and MW_Absorption, found {names}")

    def timed(c: ET.Element) -> tuple[np.ndarray, np.ndarray]:
        v = _decode_curve(path, c)
        t = float(c.get("XOffset", 0)) + float(c.get("XSlope", 0)) * np.arange(v.size)
        return t, v

    tb, b = timed(curves["BField"])
    ta, y = timed(curves["MW_Absorption"])
    if b.size < 2 or y.size < 2:
        raise IngestError(path, "field or absorption curve holds fewer than 2 points")
    bunit = curves["BField"].get("YUnit", "mT")
    if bunit.upper() not in _FIELD_UNITS:
        raise IngestError(path, f"unknown field unit {bunit!r}")
    inside = (ta >= tb[0]) & (ta <= tb[-1])
    field_T = np.interp(ta[inside], tb, b) * _FIELD_UNITS[bunit.upper()]
    y = y[inside]

    attrs = dict(meas.attrib)
    mw_freq = float(attrs["MwFreq"]) * 1e9 if "MwFreq" in attrs else None
    temp = float(attrs["Temperature"]) + 273.15 if "Temperature" in attrs else None
    start = _parse_iso(attrs["Timestamp"]) if "Timestamp" in attrs else None
    end = _parse_iso(root.get("Timestamp", "")) if root.get("Timestamp") else None
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
        conversion_time_s=float(curves["MW_Absorption"].get("XSlope", "nan")),
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
            "q_factor": float(attrs["QFactor"]) if "QFactor" in attrs else None,
        },
    )
    return EPRSpectrum(field_T=field_T, intensity=np.asarray(y, float), meta=meta)


# --------------------------------------------------------------------------- CSV


def read_epr_csv(path: str | Path, field_unit: str | None = None) -> EPRSpectrum:
    """Read a two-column (field, intensity) CSV/TXT export.

    Parameters
    ----------
    path : str or Path
    field_unit : {'G', 'mT', 'T'} or None
        Field unit; None detects it from the header, else from the magnitude
        (X-band: >= 1500 → G, < 5 → T, otherwise mT).

    Returns
    -------
    EPRSpectrum
        Acquisition parameters are unknown: meta fields are None
        (science.md §5.6; the normalisation must come from the config).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise IngestError(path, f"cannot read: {exc}") from exc
    header: list[str] = []
    rows: list[tuple[float, float]] = []
    for line in re.split(r"\r\n|\r|\n", text):
        s = line.strip()
        if not s:
            continue
        if ";" in s:
            parts = [q.strip().replace(",", ".") for q in s.split(";")]
        elif "," in s:
            parts = [q.strip() for q in s.split(",")]
        else:
            parts = s.split()
        try:
            vals = [float(q) for q in parts if q != ""]
        except ValueError:
            if rows:
                raise IngestError(path, f"non-numeric line after the data started: {s[:60]!r}")
            header.append(s)
            continue
        if len(vals) < 2:
            raise IngestError(path, f"line with fewer than 2 columns: {s[:60]!r}")
        rows.append((vals[0], vals[1]))
    if len(rows) < 2:
        raise IngestError(path, "fewer than 2 numeric rows: not a two-column EPR export")
    arr = np.array(rows, float)
    unit = field_unit
    how = "argument"
    if unit is None:
        h = " ".join(header)
        if re.search(r"\bmT\b", h):
            unit, how = "mT", "header"
        elif re.search(r"\b(G|Gauss|gauss)\b", h):
            unit, how = "G", "header"
        elif re.search(r"\[T\]|\(T\)|\bTesla\b", h):
            unit, how = "T", "header"
        else:
            med = float(np.median(np.abs(arr[:, 0])))
            unit = "G" if med >= 1500 else ("T" if med < 5 else "mT")
            how = "magnitude"
    if unit.upper() not in _FIELD_UNITS:
        raise IngestError(path, f"unknown field unit {unit!r}")
    meta = EPRMeta(path=path, format="csv",
                   extra={"header": header, "field_unit": unit, "field_unit_from": how})
    return EPRSpectrum(field_T=arr[:, 0] * _FIELD_UNITS[unit.upper()], intensity=arr[:, 1], meta=meta)


# --------------------------------------------------------------------------- 2D → rows


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
