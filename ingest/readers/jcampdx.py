"""JCAMP-DX NMR reader (``nmrglue.jcampdx``), tuned on Spinsolve ``nmr_fid.dx``.

docs/physics.md §5.3.  Keys (nmrglue normalises them: upper case, no spaces):

* ``$BF1`` (MHz): the transmitter frequency (Spinsolve writes its ``b1Freq``
  here) -> ``sfo1_hz``; falls back to ``.OBSERVEFREQUENCY``.
* ``$SF`` (MHz): the 0-ppm frequency -> ``bf1_hz``; carrier offset
  ``(BF1 - SF)·1e6`` Hz and ``carrier_ppm = offset / bf1_hz · 1e6`` (the same
  definitions as :mod:`ingest.readers.spinsolve`, so the two readers agree).  Without
  ``$SF``, ``$REFERENCEPOINT`` (Hz, the nmrglue fallback) is used, else 0 ppm.
* ``$SW`` (ppm) × ``$BF1`` -> ``sw_hz``; else 1/dwell from the ``TIME`` axis.
* ``.OBSERVENUCLEUS`` (``^1H`` -> ``1H``), ``.AVERAGES`` -> ``ns``.
* ``LONGDATE`` (``2024/07/25 10:37:33.711``, wall time with no zone: UTC by
  default, ``tz`` overrides) -> ``start``.  The end is not in the file: when
  the folder also holds the Spinsolve ``acqu.par`` its ``CurrentTime`` is
  used (exact); else, for Magritek files, ``start + AVERAGES × repTime`` with
  repTime (ms) the second value of ``.DELAY`` (matches ``repTime`` of acqu.par
  in the shared files; dummy scans are not recorded, so it is a lower bound;
  ``meta.extra['end_estimated'] = True``); else ``None``.

``$REVERSE= yes`` (written by Spinsolve) marks a FID of the opposite
frequency sense to Bruker's: it is conjugated, so the FID equals the one
:func:`ingest.readers.spinsolve.read_spinsolve` returns for the same folder and
``fftshift(fft(fid))[::-1]`` runs from high to low ppm as for every reader.

NTUPLES FID files (``FID/REAL``, ``FID/IMAG`` pages) give ``fid``; a plain
XYDATA spectrum (``DATA TYPE= NMR SPECTRUM``) gives ``processed`` with its
axis in ppm (Hz axes divided by ``sfo1``) and ``fid = None``.
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import numpy as np

from ingest.readers.checks import checked, regular_size
from ingest.readers.spinsolve import parse_local_time, read_acqu_par
from ingest.types import IngestError, IngestWarning, NMRMeta, NMRSpectrum

__all__ = ["is_complete", "is_jcampdx", "read_jcampdx"]

_MAX_BYTES = 256 << 20


def is_jcampdx(p: Path) -> bool:
    """Text whose first lines hold ``##JCAMP-DX=`` (Bruker ``acqus`` says ``##JCAMPDX=``: not this)."""
    try:
        with open(p, "rb") as fh:
            h = fh.read(2048)
    except OSError:
        return False
    return b"\x00" not in h and re.search(rb"^\s*##JCAMP-DX\s*=", h, re.MULTILINE | re.IGNORECASE) is not None


def is_complete(p: Path) -> bool:
    """True when the file's last record is ``##END=`` (a JCAMP-DX file cut short lacks it)."""
    try:
        with open(p, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 512))
            tail = fh.read()
    except OSError:
        return False
    return re.search(rb"##END\s*=[^\n]*\s*$", tail) is not None


def _declared_points(dic: dict[str, Any], is_fid: bool) -> tuple[int | None, str]:
    """Points the header declares: ``VAR_DIM`` (NTUPLES) or ``NPOINTS`` (XYDATA)."""
    for key in (("VARDIM", "NPOINTS") if is_fid else ("NPOINTS", "VARDIM")):
        vals = _tuple(dic, key)
        if vals:
            try:
                return int(float(vals[0])), key
            except ValueError:
                return None, key
    return None, ""


def _first(dic: dict[str, Any], key: str) -> str | None:
    v = dic.get(key)
    if v is None:
        return None
    if isinstance(v, list):
        v = v[0] if v else None
    return None if v is None else str(v).strip()


def _fnum(dic: dict[str, Any], key: str) -> float | None:
    s = _first(dic, key)
    if s is None:
        return None
    try:
        return float(s.split()[0].strip(","))
    except (ValueError, IndexError):
        return None


def _tuple(dic: dict[str, Any], key: str) -> list[str]:
    s = _first(dic, key)
    if s is None:
        return []
    return [x.strip() for x in s.strip("()").split(",")]


def _parse(p: Path) -> tuple[dict[str, Any], Any]:
    """Check ``p`` is a readable JCAMP-DX file of sane size and parse it with nmrglue.

    Parameters
    ----------
    p : Path
        The ``.dx``/``.jdx`` file.

    Returns
    -------
    tuple
        ``(dic, data)`` as :func:`nmrglue.jcampdx.read` returns them.
    """
    if not p.is_file():
        raise IngestError(p, "no such file")
    size = regular_size(p, "JCAMP-DX file")
    if size == 0:
        raise IngestError(p, "file is empty (0 bytes)")
    if size > _MAX_BYTES:
        raise IngestError(p, f"holds {size} bytes, more than the {_MAX_BYTES} a JCAMP-DX spectrum is read at")
    with open(p, "rb") as f:
        head = f.read(2048)
    if b"##" not in head[:200] or not re.search(rb"##JCAMP-?DX\s*=", head, re.IGNORECASE):
        raise IngestError(p, "not a JCAMP-DX file (no ##JCAMP-DX= header)")
    import nmrglue as ng  # lazy: nmrglue imports scipy.signal (~1 s); only this reader needs it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # nmrglue narrates its fallbacks; we judge the result
            dic, data = ng.jcampdx.read(str(p))
    except Exception as exc:
        raise IngestError(p, f"nmrglue cannot parse it ({exc})") from exc
    return dic, data


def _times(
    p: Path, dic: dict[str, Any], tz: tzinfo | str | None, ns: int, extra: dict[str, Any]
) -> tuple[datetime | None, datetime | None]:
    """Acquisition start and end of a JCAMP-DX file.

    Start from ``LONGDATE`` (zone ``tz``); end from a Spinsolve ``acqu.par``
    beside the file, else estimated for Magritek files as start + ns * repetition
    time (``.DELAY``, ms), which sets ``extra['end_estimated']``.

    Returns
    -------
    tuple
        ``(start, end)``; either may be None.
    """
    start = end = None
    longdate = _first(dic, "LONGDATE")
    if longdate:
        try:
            start = parse_local_time(longdate, tz)
        except (ValueError, OverflowError):
            # stacklevel 4: the caller of read_jcampdx, as before this helper was split out
            warnings.warn(f"{p}: LONGDATE {longdate!r} is not a date: the spectrum has no start time",
                          IngestWarning, stacklevel=4)
            start = None
    par = p.parent / "acqu.par"
    if par.is_file():
        try:
            apar = read_acqu_par(par)
            if "CurrentTime" in apar:
                end = parse_local_time(str(apar["CurrentTime"]), tz)
        except (IngestError, ValueError):
            end = None
    if end is None and start is not None and "MAGRITEK" in (_first(dic, "ORIGIN") or "").upper():
        delay = _tuple(dic, ".DELAY")
        try:
            end = start + timedelta(seconds=ns * float(delay[1]) / 1e3)
            extra["end_estimated"] = True
        except (ValueError, IndexError):
            end = None
    return start, end


def _points(p: Path, dic: dict[str, Any], data: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The data points of a parsed JCAMP-DX file, checked against the declared count.

    Returns
    -------
    tuple
        ``(fid, None)`` for an FID (complex128, conjugated when ``$REVERSE``), or
        ``(None, y)`` for an XYDATA spectrum (float, a.u.).
    """
    dtype = (_first(dic, "DATATYPE") or "").upper()
    is_fid = "FID" in dtype or (isinstance(data, list) and len(data) == 2)
    fid = y = None
    if is_fid:
        if isinstance(data, list) and len(data) >= 2:
            re_, im_ = np.asarray(data[0], dtype=float), np.asarray(data[1], dtype=float)
            if re_.size != im_.size:
                raise IngestError(p, f"FID/REAL holds {re_.size} points but FID/IMAG {im_.size}: "
                                     "'?' (missing) values or a truncated page")
            fid = re_ + 1j * im_
        else:
            fid = np.asarray(data, dtype=float).astype(np.complex128)
        if (_first(dic, "$REVERSE") or "").strip("<>").lower() in ("yes", "true", "1"):
            fid = np.conj(fid)
        n = fid.size
    else:
        y = np.asarray(data[0] if isinstance(data, list) else data, dtype=float)
        n = y.size
    if n == 0:
        raise IngestError(p, "no data points")
    declared, key = _declared_points(dic, is_fid)
    if declared is not None and declared != n:
        raise IngestError(p, f"holds {n} data points but {key} declares {declared}: "
                             "'?' (missing) values dropped by the parser, or a truncated file")
    return fid, y


@checked()
def read_jcampdx(path: str | Path, *, tz: tzinfo | str | None = None) -> NMRSpectrum:
    """Read a JCAMP-DX NMR file (FID as NTUPLES, or an XYDATA spectrum).

    Parameters
    ----------
    path : str or Path
        The ``.dx``/``.jdx`` file.
    tz : tzinfo or str, optional
        Zone of the zone-less ``LONGDATE`` (default UTC).

    Returns
    -------
    NMRSpectrum
        ``meta.vendor = 'jcampdx'``; ``fid`` complex128 for FID files.

    Raises
    ------
    IngestError
        Not JCAMP-DX, no data, or no observe frequency.
    """
    p = Path(path)
    dic, data = _parse(p)
    sfo1_mhz = _fnum(dic, "$BF1") or _fnum(dic, ".OBSERVEFREQUENCY")
    if not sfo1_mhz:
        raise IngestError(p, "no observe frequency ($BF1 or .OBSERVE FREQUENCY)")
    sfo1 = sfo1_mhz * 1e6
    sf = _fnum(dic, "$SF")
    if sf:
        car_hz = (sfo1_mhz - sf) * 1e6
    elif _fnum(dic, "$REFERENCEPOINT") is not None:
        car_hz = -float(_fnum(dic, "$REFERENCEPOINT"))  # nmrglue's fallback; sw/2 added below
    else:
        car_hz = 0.0
    bf1 = sfo1 - car_hz

    fid, y = _points(p, dic, data)
    is_fid = fid is not None
    n = fid.size if is_fid else y.size
    ppm = real = None

    sw_ppm = _fnum(dic, "$SW")
    if sw_ppm:
        sw = sw_ppm * sfo1_mhz
    else:
        first, last = _tuple(dic, "FIRST"), _tuple(dic, "LAST")
        try:
            dwell = (float(last[0]) - float(first[0])) / (n - 1)
            sw = 1.0 / dwell
        except (ValueError, IndexError, ZeroDivisionError):
            raise IngestError(p, "no spectral width ($SW) and no time axis (FIRST/LAST)") from None
    if not sf and _fnum(dic, "$REFERENCEPOINT") is not None:
        car_hz += sw / 2
        bf1 = sfo1 - car_hz

    if not is_fid:
        firstx, lastx = _fnum(dic, "FIRSTX"), _fnum(dic, "LASTX")
        units = (_first(dic, "XUNITS") or "").upper()
        x = np.linspace(firstx or 0.0, lastx if lastx is not None else n - 1, n)
        ppm = x / sfo1_mhz if units == "HZ" else x
        real = y

    extra: dict[str, Any] = {k: v for k, v in dic.items() if k != "_comments"}
    ns = int(_fnum(dic, ".AVERAGES") or 1)
    start, end = _times(p, dic, tz, ns, extra)
    nucleus = (_first(dic, ".OBSERVENUCLEUS") or "1H").replace("^", "")
    meta = NMRMeta(
        path=p,
        vendor="jcampdx",
        nucleus=nucleus,
        sfo1_hz=sfo1,
        bf1_hz=bf1,
        sw_hz=float(sw),
        carrier_ppm=car_hz / bf1 * 1e6,
        td=n,
        ns=ns,
        start=start,
        end=end,
        pulse_program=_first(dic, ".PULSESEQUENCE"),
        solvent=_first(dic, ".SOLVENTNAME"),
        extra=extra,
    )
    return NMRSpectrum(fid=fid, meta=meta, processed_ppm=ppm, processed=real)
