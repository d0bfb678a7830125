"""Bruker BES3T (.DSC + .DTA [+ .XGF/.YGF]): identify, read, completeness, write.

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
by :func:`write_bes3t` carry the exact start and end
in a ``.DVC flowcell`` device block of the DSL, which takes precedence.
Times without a zone are taken as UTC.

Xepr writes ``DATE``/``TIME`` in the ``#SPL`` layer; some versions and the
Xenon exports put them in ``#DESC`` or in a device block of the ``#DSL`` layer:
all three are searched, and a file with none gets an
:class:`ingest.types.IngestWarning` (its rows then carry no time).

Completeness (:func:`expected_size`): the .DTA holds exactly
``XPTS·YPTS·ZPTS`` items of ``IRFMT`` (×2 for ``IKKF CPLX``); a .DTA of that
size with its .DSC present is complete whichever was written first.
Formats: docs/physics.md §5.4.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ingest.readers.checks import byte_order_check, checked, read_bytes, regular_size
from ingest.readers.epr_common import (
    FIELD_UNITS,
    IRFMT,
    TIME_UNITS,
    float_key,
    gain_db_to_linear,
    parse_iso,
    value_with_unit,
)
from ingest.readers.epr_writers import write_bes3t
from ingest.types import EPRMeta, EPRSpectrum, IngestError, IngestWarning, as_utc

__all__ = ["descriptor_time", "expected_size", "is_descriptor", "parse_dsc", "read_bes3t", "write_bes3t"]


def is_descriptor(path: Path) -> bool:
    """True if ``path`` starts with ``#DESC`` (a BES3T descriptor), whatever its name."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return False
    return head.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"#DESC")


def expected_size(dsc: Path, layers: dict[str, Any] | None = None) -> int | None:
    """Bytes the descriptor promises for the .DTA; None when it cannot say (yet).

    A descriptor still being written (no ``XPTS`` or ``IRFMT`` yet) gives None.
    ``layers``: the descriptor already parsed by :func:`parse_dsc` (not read again).
    """
    try:
        desc = (parse_dsc(dsc) if layers is None else layers)["DESC"]
    except IngestError:
        return None
    n = 1
    for k in ("XPTS", "YPTS", "ZPTS"):
        v = desc.get(k)
        if v is None:
            if k == "XPTS":
                return None
            continue
        try:
            n *= max(int(float(v)), 1)
        except ValueError:
            return None
    fmt = desc.get("IRFMT", "").split(",")[0].strip().upper()[:1]
    item = {"D": 8, "F": 4, "I": 4, "S": 2, "C": 1}.get(fmt)
    if item is None:
        return None
    if desc.get("IKKF", "REAL").split(",")[0].strip().upper() == "CPLX":
        item *= 2
    return n * item


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
        size = regular_size(path, "descriptor")
        if size > 16 << 20:
            raise IngestError(path, f"descriptor holds {size} bytes: not a BES3T .DSC (at most a few kB)")
        text = read_bytes(path, what="descriptor").decode("latin-1")
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
    code = IRFMT.get(fmt.strip().upper())
    if code is None or code == "S1":
        raise IngestError(where, f"unsupported {key} {fmt!r} (expected C, S, I, F or D)")
    return np.dtype(order + code)


def _read_axis_file(
    path: Path, n: int, fmt: str, order: str, dsc: Path, key: str
) -> np.ndarray:
    if not path.exists():
        raise IngestError(dsc, f"{key} IGD needs the axis file {path.name}, which is missing")
    dt = _dtype(fmt, order, dsc, key.replace("TYP", "FMT"))
    need = n * dt.itemsize
    raw = read_bytes(path, need, what=f"axis file {path.name}", exact=False,
                     declared_by=f"the .DSC ({n} points of {dt})")
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
    xmin, xwid = float_key(desc, f"{ax}MIN"), float_key(desc, f"{ax}WID")
    for key, val in ((f"{ax}MIN", xmin), (f"{ax}WID", xwid)):
        if val is None:
            raise IngestError(dsc, f"required key {key} missing from the descriptor")
    if n == 1:
        return np.array([xmin], float), unit, name
    return xmin + xwid * np.arange(n) / (n - 1), unit, name


def _is_field(unit: str, name: str) -> bool:
    return unit.strip().upper() in FIELD_UNITS or name.strip().lower() in ("field", "magnetic field")


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
    for fmt in ("%m/%d/%y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M", "%d.%m.%Y %H:%M:%S",
                "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S"):
        try:
            return as_utc(datetime.strptime(f"{date} {time}".strip(), fmt))
        except ValueError:
            continue
    return None


def descriptor_time(dsc: Path, layers: dict[str, Any]) -> tuple[datetime | None, str]:
    """The Xepr save time (DATE/TIME) wherever the descriptor holds it.

    Searched in order: ``#SPL``, ``#DESC``, then every ``#DSL`` device block.
    Returns ``(time, where)``; ``(None, reason)`` when there is none, or when a
    DATE is there but cannot be parsed (then an IngestWarning names it).
    """
    places = [("#SPL", layers["SPL"]), ("#DESC", layers["DESC"])]
    places += [(f"#DSL .DVC {dev}", blk) for dev, blk in layers["DSL"].items()]
    for where, blk in places:
        keys = {k.upper(): k for k in blk}
        if "DATE" not in keys:
            continue
        sub = {"DATE": blk[keys["DATE"]], "TIME": blk.get(keys.get("TIME", "TIME"), "")}
        t = _xepr_datetime(sub)
        if t is None:
            warnings.warn(f"{dsc}: DATE {sub['DATE']!r} TIME {sub['TIME']!r} in {where} is not a "
                          "date Xepr writes: the spectrum has no time", IngestWarning, stacklevel=3)
            return None, f"unparseable DATE in {where}"
        return t, where
    warnings.warn(f"{dsc}: no DATE/TIME anywhere in the descriptor (#SPL, #DESC, #DSL): "
                  "the spectrum has no time", IngestWarning, stacklevel=3)
    return None, "none"


def _read_ordinate(
    dsc: Path, dta: Path, desc: dict[str, str]
) -> tuple[str, int, int, str, np.ndarray, np.ndarray | None]:
    """Read the .DTA ordinate as the descriptor declares it, size and byte order checked.

    Returns
    -------
    tuple
        ``(order, nx, ny, ytyp, data, imag)``: byte order ('>' or '<'), XPTS,
        YPTS (1 when no Y axis), YTYP, the real part (float, flat, a.u.) and the
        imaginary part (None unless IKKF is CPLX).
    """
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
    size = regular_size(dta, "the .DTA")  # before any read: a device or FIFO is refused here
    if size == 0:
        raise IngestError(dta, f"the .DTA is empty, the .DSC says {nx}x{ny} points of {dt.name}")
    if size != need:
        raise IngestError(
            dta,
            f"the .DTA holds {size} bytes, the .DSC says {need} "
            f"(XPTS {nx} x YPTS {ny} x {ncomp} x {dt.itemsize} bytes, IRFMT {irfmt[0]})",
        )
    raw = read_bytes(dta, need, what="the .DTA")
    byte_order_check(dsc, f"BSEQ {order_key}", raw, dt)
    data = np.frombuffer(raw, dtype=dt).astype(float)
    imag = None
    if ncomp == 2:
        imag = data[1::2]
        data = data[0::2]
    return order, nx, ny, ytyp, data, imag


@checked()
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
    docs/physics.md §5.4.
    """
    dsc, dta = _bes3t_paths(path)
    if not dsc.exists():
        raise IngestError(dsc, "descriptor .DSC not found")
    if not dta.exists():
        raise IngestError(dta, "data file .DTA not found")
    layers = parse_dsc(dsc)
    desc: dict[str, str] = layers["DESC"]

    order, nx, ny, ytyp, data, imag = _read_ordinate(dsc, dta, desc)

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
        if tu in TIME_UNITS:
            y_axis, y_unit = np.asarray(other, float) * TIME_UNITS[tu], "s"
        else:
            y_axis, y_unit = np.asarray(other, float), ounit
    fu = funit.strip().upper()
    if fu not in FIELD_UNITS:
        raise IngestError(dsc, f"unknown field unit {funit!r}")
    field_T = np.asarray(field_raw, float) * FIELD_UNITS[fu]

    meta = _bes3t_meta(dsc, dta, layers, nx, ny)
    extra = dict(meta.extra)
    extra["transposed"] = transposed
    if imag2 is not None:
        extra["imag"] = imag2
    meta = replace(meta, extra=extra)
    return EPRSpectrum(field_T=field_T, intensity=intensity, meta=meta, y_axis=y_axis, y_unit=y_unit)


def _spl_or_device(spl: dict[str, str], key: str, flat: dict[str, str], name: str) -> float | None:
    """SPL value ``key`` (SI, as Xepr writes it), else the device layer's ``name`` (value with unit, SI)."""
    v = float_key(spl, key)
    return value_with_unit(flat.get(name)) if v is None else v


def _bes3t_meta(dsc: Path, dta: Path, layers: dict[str, Any], nx: int, ny: int) -> EPRMeta:
    desc, spl, dsl = layers["DESC"], layers["SPL"], layers["DSL"]
    flat: dict[str, str] = {}
    for dev in dsl.values():
        flat.update(dev)

    mw_freq = float_key(spl, "MWFQ")
    if mw_freq is None:
        mw_freq = value_with_unit(flat.get("FrequencyMon")) or value_with_unit(flat.get("MwFreq"))
    power = _spl_or_device(spl, "MWPW", flat, "Power")
    mod_amp = _spl_or_device(spl, "B0MA", flat, "ModAmp")
    mod_freq = _spl_or_device(spl, "B0MF", flat, "ModFreq")
    conv = _spl_or_device(spl, "SPTP", flat, "ConvTime")
    tc = _spl_or_device(spl, "RCTC", flat, "TimeConst")
    n_scans: int | None = None
    if flat.get("NbScansDone", "").strip():
        try:
            n_scans = int(float(flat["NbScansDone"]))
        except ValueError:
            n_scans = None
    if n_scans is None and float_key(spl, "AVGS") is not None:
        n_scans = int(float_key(spl, "AVGS"))  # type: ignore[arg-type]
    temp = float_key(spl, "STMP")
    if temp is None:
        temp = value_with_unit(flat.get("Temperature"))

    # receiver gain
    gain_db: float | None = None
    gain_lin: float | None = None
    rcag = float_key(spl, "RCAG")
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
        start, end = parse_iso(fc["AcqStart"]), parse_iso(fc["AcqEnd"])
        extra["start_estimated"] = False
    else:
        end, extra["time_source"] = descriptor_time(dsc, layers)
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
