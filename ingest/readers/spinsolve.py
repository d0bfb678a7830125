"""Magritek Spinsolve reader (``acqu.par`` + ``data.1d``, optional ``spectrum.1d``).

Uses ``nmrglue.spinsolve`` (docs/physics.md §5.2): ``parse_spinsolve_par_line`` for
``acqu.par`` and ``read(dir, specfile=...)`` for the ``.1d`` files (32-byte
header of eight little-endian int32; float32 axis; float32 interleaved
real/imaginary).

Frequencies (checked on the shared files and their JCAMP-DX twins)
-----------------------------------------------------------------
``b1Freq`` (MHz) is the transmitter frequency: the ``nmr_fid.dx`` written by
the same software stores it as ``$BF1`` and the 0-ppm frequency as
``$SF = b1Freq - (lowestFrequency + bandwidth/2)·1e-6`` (exact to 1e-13 in
the shared file).  Hence ``sfo1_hz = b1Freq·1e6``, the carrier offset is
``lowestFrequency + sw/2`` (Hz), ``bf1_hz = sfo1_hz - offset`` and
``carrier_ppm = offset/bf1_hz·1e6`` (4.74 ppm in every shared file, the water
reference ``Shim_ReferencePPM``).  ``sw_hz = bandwidth·1000``.

Time keys (docs/physics.md §6 item 8, found in the shared files)
-----------------------------------------------------------
``startTime`` (start of the acquisition) and ``CurrentTime`` (written when the
data are saved, i.e. the end), both ISO wall-clock times with milliseconds and
**no zone** (``"2025-08-05T10:39:36.371"``).  Checks on the shared data:
series/00000 spans 8.3 s for 1 scan of 6.55 s; jcamp spans 150.3 s =
(8 scans + 2 dummies) × 15 s repTime.  ``totalAcquisitionTime`` is cumulative
over a reaction-monitoring protocol (9.6, 39.6, 69.6 … s) and is not used.
The instrument PC's zone is not recorded: times are read as UTC by default
(the package-wide rule for zone-less files, ingest.types) and the ``tz``
argument (a ``tzinfo`` or an IANA name like ``"Europe/Berlin"``) overrides it.

FID sign convention (checked on the shared files)
-------------------------------------------------
Spinsolve stores the FID with the opposite frequency sense to Bruker: its own
``spectrum.1d`` and the ``nmr_fid.dx`` twin (``$REVERSE= yes``) are mirrored
about the carrier relative to a Bruker-style transform, and the CH2Cl2 line of
spinsolve-series lands at 4.15 ppm instead of 5.32 ppm without the fix.  The
reader therefore returns ``conj(data.1d)``, so every reader in this package
gives FIDs in one convention: ``fftshift(fft(fid))[::-1]`` runs from high to
low ppm (``ingest.processing.nmr.fft``/``ppm_axis``).  :func:`ingest.readers.nmr_writers.write_spinsolve`
conjugates on writing, so round trips are exact.

Temperature: Spinsolve records no sample temperature; the magnet, which
thermostats the sample, is at ``CurrentTemperatureMagnet`` (°C, ~26.5).  That
value (+273.15) is reported as ``temperature_K``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from ingest.readers.checks import checked, regular_size
from ingest.readers.nmr_writers import write_spinsolve
from ingest.types import IngestError, NMRMeta, NMRSpectrum

__all__ = [
    "DATA_FILES",
    "expected_size",
    "identify_dir",
    "is_acqu_par",
    "parse_local_time",
    "read_acqu_par",
    "read_spinsolve",
    "write_spinsolve",
]

#: Files of a Spinsolve experiment folder that are pieces of it, never acquisitions of their own.
DATA_FILES = frozenset({"acqu.par", "data.1d", "fid.1d", "spectrum.1d", "proc.par", "spectrum_processed.1d"})

_MAGIC = b"SORPATAD1.1V"  # 'PROS' 'DATA' 'V1.1' as little-endian int32 words


def _zone(tz: tzinfo | str | None) -> tzinfo:
    if tz is None:
        return timezone.utc
    if isinstance(tz, str):
        return ZoneInfo(tz)
    return tz


def parse_local_time(text: str, tz: tzinfo | str | None = None) -> datetime:
    """Parse a zone-less wall-clock time (ISO or ``YYYY/MM/DD hh:mm:ss``) to aware UTC.

    Parameters
    ----------
    text : str
        e.g. ``"2025-08-05T10:39:36.371"`` or ``"2024/07/25 10:37:33.711"``.
    tz : tzinfo or str, optional
        Zone of the wall clock (default UTC).  Ignored if the text has an offset.

    Returns
    -------
    datetime
        Timezone-aware, in UTC.
    """
    s = text.strip().replace("/", "-")
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone(tz))
    return dt.astimezone(timezone.utc)


def read_acqu_par(path: str | Path) -> dict[str, Any]:
    """Parse a Spinsolve ``acqu.par`` (``key = value`` lines) with nmrglue's line parser.

    Raises
    ------
    IngestError
        Missing, empty, or lines that are not ``key = value``.
    """
    p = Path(path)
    if not p.exists():
        raise IngestError(p, "acqu.par is missing")
    if regular_size(p, "acqu.par") > 1 << 20:
        raise IngestError(p, "acqu.par larger than 1 MB: not a Spinsolve parameter file")
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise IngestError(p, f"cannot read ({exc})") from exc
    import nmrglue as ng  # lazy: nmrglue imports scipy.signal (~1 s); only this reader needs it
    out: dict[str, Any] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if "=" not in line:
            raise IngestError(p, f"line {i} is not 'key = value': {line[:60]!r}")
        try:
            k, v = ng.spinsolve.parse_spinsolve_par_line(line)
        except Exception as exc:
            raise IngestError(p, f"line {i} cannot be parsed ({exc}): {line[:60]!r}") from exc
        out[k] = v
    if not out:
        raise IngestError(p, "acqu.par is empty")
    return out


def _float(par: dict[str, Any], key: str, path: Path, default: float | None = None) -> float:
    if key not in par:
        if default is None:
            raise IngestError(path, f"acqu.par has no {key}")
        return default
    try:
        v = float(par[key])
    except (TypeError, ValueError):
        raise IngestError(path, f"{key} = {par[key]!r} is not a number") from None
    if not math.isfinite(v):
        raise IngestError(path, f"{key} = {par[key]!r} is not a finite number")
    return v


def _check_1d(path: Path) -> int:
    """Validate a .1d file's header and size; return the number of complex points."""
    size = regular_size(path, path.name)
    if size == 0:
        raise IngestError(path, f"{path.name} is empty (0 bytes)")
    if size < 32:
        raise IngestError(path, f"{path.name} has {size} bytes, shorter than the 32-byte header")
    with open(path, "rb") as f:
        head = f.read(32)
    if head[:12] != _MAGIC:
        raise IngestError(path, f"{path.name} does not start with the Spinsolve header 'PROSDATAV1.1' (found {head[:12]!r})")
    dims = np.frombuffer(head[16:32], dtype="<i4")
    n = int(np.prod(dims))
    need = 32 + 12 * n
    if size != need:
        raise IngestError(
            path, f"{path.name} holds {(size - 32) // 12} points but its header says {n} — truncated or still being written"
        )
    return n


def _time_key(par: dict[str, Any], key: str, zone: tzinfo, path: Path) -> datetime | None:
    if key not in par:
        return None
    try:
        return parse_local_time(str(par[key]), zone)
    except (ValueError, OverflowError):
        raise IngestError(path, f"{key} = {par[key]!r} is not a date and time") from None


@checked()
def read_spinsolve(path: str | Path, *, tz: tzinfo | str | None = None) -> NMRSpectrum:
    """Read a Spinsolve experiment folder.

    Parameters
    ----------
    path : str or Path
        The folder holding ``acqu.par`` and ``data.1d`` (or the ``data.1d`` file).
    tz : tzinfo or str, optional
        Zone of the instrument PC's clock (``startTime``/``CurrentTime`` carry
        none); default UTC.

    Returns
    -------
    NMRSpectrum
        ``fid`` complex128 (nrPnts,), float32 precision, conjugated to the
        package (Bruker) frequency sense.  ``meta``: ``sfo1_hz``
        = b1Freq (Hz), ``bf1_hz`` (0 ppm, Hz), ``sw_hz`` (Hz), ``carrier_ppm``,
        ``td``, ``ns`` = nrScans, ``rg`` = rxGain, ``temperature_K`` (magnet),
        ``start`` = startTime, ``end`` = CurrentTime (UTC).  ``processed`` /
        ``processed_ppm`` from ``spectrum.1d`` (real part, axis as stored) when present.

    Raises
    ------
    IngestError
        Missing ``acqu.par``/``data.1d``, bad header, truncated data, missing keys.
    """
    p = Path(path)
    folder = p.parent if p.is_file() else p
    if not folder.is_dir():
        raise IngestError(p, "no such Spinsolve folder")
    par_path = folder / "acqu.par"
    data_path = folder / "data.1d"
    if not data_path.is_file():
        found = sorted(x.name for x in folder.iterdir())[:12]
        raise IngestError(folder, f"no Spinsolve data.1d here (found: {found})")
    par = read_acqu_par(par_path)
    n = _check_1d(data_path)
    import nmrglue as ng  # lazy: nmrglue imports scipy.signal (~1 s); only this reader needs it
    try:
        dic, data = ng.spinsolve.read(str(folder), specfile="data.1d", acqupar="acqu.par", procpar="proc.par")
    except Exception as exc:
        raise IngestError(data_path, f"nmrglue cannot read it ({exc})") from exc
    fid = np.conj(np.asarray(data, dtype=np.complex128)[:n])  # Bruker sense, see module notes

    sfo1 = _float(par, "b1Freq", par_path) * 1e6
    sw = _float(par, "bandwidth", par_path) * 1e3
    if sw <= 0 or sfo1 <= 0:
        raise IngestError(par_path, f"b1Freq and bandwidth must be positive (got {sfo1} Hz, {sw} Hz)")
    car_hz = _float(par, "lowestFrequency", par_path) + sw / 2
    bf1 = sfo1 - car_hz
    npts = int(_float(par, "nrPnts", par_path, float(n)))
    if npts != n:
        raise IngestError(data_path, f"data.1d holds {n} points but acqu.par nrPnts says {npts}")
    zone = _zone(tz)
    start = _time_key(par, "startTime", zone, par_path)
    end = _time_key(par, "CurrentTime", zone, par_path)
    if end is None and start is not None:
        ns_ = int(_float(par, "nrScans", par_path, 1))
        end = start + timedelta(seconds=ns_ * _float(par, "repTime", par_path, 0.0) / 1e3)
    tmag = par.get("CurrentTemperatureMagnet", par.get("StartProtocolTemperatureMagnet"))
    meta = NMRMeta(
        path=folder,
        vendor="spinsolve",
        nucleus=str(par.get("rxChannel", "1H")),
        sfo1_hz=sfo1,
        bf1_hz=bf1,
        sw_hz=sw,
        carrier_ppm=car_hz / bf1 * 1e6,
        td=n,
        ns=int(_float(par, "nrScans", par_path, 1)),
        rg=float(par["rxGain"]) if "rxGain" in par else None,
        temperature_K=None if tmag is None else float(tmag) + 273.15,
        start=start,
        end=end,
        group_delay=0.0,
        pulse_program=str(par.get("Protocol", par.get("experiment", ""))) or None,
        solvent=str(par["Solvent"]) if "Solvent" in par else None,
        extra=dict(par) | {"time_zone": str(zone), "header": dic.get("spectrum", {})},
    )
    ppm = real = None
    spec_path = folder / "spectrum.1d"
    if spec_path.is_file():
        m = _check_1d(spec_path)
        _, sdata = ng.spinsolve.read(str(folder), specfile="spectrum.1d", acqupar="acqu.par", procpar="proc.par")
        raw = np.fromfile(spec_path, dtype="<f4", offset=32)
        ppm = raw[:m].astype(float)
        real = np.asarray(sdata).real[:m].astype(float)
    return NMRSpectrum(fid=fid, meta=meta, processed_ppm=ppm, processed=real)


# --------------------------------------------------------------------------- identification, completeness


def is_acqu_par(p: Path) -> bool:
    """Text whose first lines are ``key = value``."""
    try:
        if not p.is_file():
            return False
        with open(p, "rb") as fh:
            h = fh.read(2048)
    except OSError:
        return False
    if not h or b"\x00" in h:
        return False
    lines = [ln for ln in h.decode("latin-1").splitlines()[:10] if ln.strip()]
    return bool(lines) and all(re.match(r"^\s*[A-Za-z0-9_]+\s*=", ln) for ln in lines[: min(5, len(lines))])


def has_magic(p: Path) -> bool:
    """True if ``p`` starts with the Spinsolve ``PROSDATAV1.1`` header."""
    try:
        with open(p, "rb") as fh:
            return fh.read(12) == _MAGIC
    except OSError:
        return False


def identify_dir(d: Path) -> str | None:
    """``'spinsolve'`` for a folder with ``acqu.par`` and a Spinsolve ``data.1d``, else None."""
    if is_acqu_par(d / "acqu.par") and (d / "data.1d").is_file() and has_magic(d / "data.1d"):
        return "spinsolve"
    return None


def expected_size(folder: Path) -> int | None:
    """Bytes ``data.1d`` must hold per its own header: 32 + 12·xDim·yDim·zDim·qDim."""
    try:
        with open(folder / "data.1d", "rb") as fh:
            head = fh.read(32)
    except OSError:
        return None
    if len(head) < 32 or head[:12] != _MAGIC:
        return None
    n = 1
    for i in range(16, 32, 4):
        n *= max(int.from_bytes(head[i:i + 4], "little", signed=True), 1)
    return 32 + 12 * n
