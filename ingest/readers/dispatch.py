"""Identify a spectrum on disk by its contents and dispatch to the right reader.

:func:`identify` looks at what is on disk (folder contents, magic bytes, the
first lines of text files, sibling files), never at a name alone:

==============  =============================================================
format          evidence
==============  =============================================================
``bruker``      folder (or its ``fid``/``acqus``) with ``acqus`` starting
                ``##`` and a ``fid`` file
``bruker-ser``  same with ``ser`` (and ``acqu2s``)
``spinsolve``   folder (or its ``data.1d``) with ``acqu.par`` (``key = value``)
                and a ``.1d`` file starting ``SORPATAD1.1V``
``jcampdx``     file whose first lines hold ``##JCAMP-DX=`` (hyphenated: Bruker
                ``acqus`` says ``##JCAMPDX=``); a folder holding only ``acqu.par``
                + ``nmr_fid.dx``
``bes3t``       ``.DSC`` starting ``#DESC``, or a ``.DTA`` whose sibling is one
``esp``         ``.par`` of ``KEY value`` lines with ESP/WinEPR keys (HCF, HSW,
                GST, GSI, RES, ANZ, JSS, MF, RRG…; CR-only line ends allowed),
                or a ``.spc`` whose sibling is one
``magnettech``  XML whose root is ``<ESRXmlFile``
``epr-csv``     text with ≥ 10 rows of 2-3 numeric columns (comma, semicolon,
                tab or space), the first monotonic and in an EPR field range
                (0.01-2 T, 10-2000 mT, 100-20000 G), optional one-line header
==============  =============================================================

:func:`read` dispatches to the vendor modules of :mod:`ingest.readers` (each
holds its format's identify / read / completeness / write; the evidence
functions used above live there too); :func:`read_rows` returns 1D rows, splitting Bruker ``ser``
files and EPR 2D sets (``ingest.readers.epr.split_rows`` when it exists, else a plain
split on ``y_axis``).
"""

from __future__ import annotations

import errno
import importlib
import os
import stat
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ingest.readers import bes3t, bruker, csv_epr, esp, jcampdx, magnettech, spinsolve
from ingest.types import EPRSpectrum, IngestError, NMRSpectrum

__all__ = ["FORMATS", "identify", "read", "read_rows"]

FORMATS = ("bruker", "bruker-ser", "spinsolve", "jcampdx", "bes3t", "esp", "magnettech", "epr-csv")

_SPINSOLVE_MAGIC = b"SORPATAD1.1V"
_HERE = Path()  # its type is the concrete Path class of this platform
_TEXT_EXPORTS = (".csv", ".txt", ".asc", ".dat")


def _head(p: Path, n: int = 4096) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _sibling(p: Path, suffixes: tuple[str, ...]) -> Path | None:
    for suf in suffixes:
        q = p.with_suffix(suf)
        if q.is_file():
            return q
    return None


def _is_dir(p: Path) -> bool:
    """``p.is_dir()`` from one ``os.stat`` of its string (pathlib's adds ~3 us)."""
    try:
        return stat.S_ISDIR(os.stat(str(p)).st_mode)
    except OSError as exc:
        if getattr(exc, "errno", None) in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return False  # what pathlib ignores; anything else is raised, as pathlib raises it
        raise


def _identify_dir(d: Path) -> str | None:
    fmt = bruker.identify_dir(d)  # looks at acqus once (it was read twice: ~0.1 ms a spectrum)
    if fmt is not None or bruker.is_params(d / "acqus"):
        return fmt
    if spinsolve.is_acqu_par(d / "acqu.par"):
        for name in ("data.1d", "fid.1d", "spectrum.1d"):
            if (d / name).is_file() and spinsolve.has_magic(d / name):
                return "spinsolve" if name == "data.1d" else None
        if (d / "nmr_fid.dx").is_file() and jcampdx.is_jcampdx(d / "nmr_fid.dx"):
            return "jcampdx"
    return None


def identify(path: str | Path) -> str | None:
    """Name the format of a file or folder from what is on disk.

    Parameters
    ----------
    path : str or Path
        A Bruker expno folder (or its ``fid``/``ser``/``acqus``), a Spinsolve
        folder (or its ``data.1d``), or a data file.

    Returns
    -------
    str or None
        One of :data:`FORMATS`, or None when nothing known is recognised.
    """
    p = path if type(path) is type(_HERE) else Path(path)  # a Path is used as it is
    if _is_dir(p):
        return _identify_dir(p)
    try:
        if not p.is_file() or p.stat().st_size == 0:
            return None
    except OSError:
        return None
    if p.name in ("fid", "ser", "acqus", "acqu2s", "audita.txt", "acqu"):
        fmt = _identify_dir(p.parent)
        if fmt in ("bruker", "bruker-ser"):
            return fmt
    if p.name in ("data.1d", "acqu.par") and _identify_dir(p.parent) == "spinsolve":
        return "spinsolve"
    head = _head(p, 16)
    suf = p.suffix.lower()
    if head.startswith(_SPINSOLVE_MAGIC):
        return "spinsolve" if _identify_dir(p.parent) == "spinsolve" else None
    if jcampdx.is_jcampdx(p):
        return "jcampdx"
    if bes3t.is_descriptor(p):
        return "bes3t"
    if suf == ".dta":
        dsc = _sibling(p, (".DSC", ".dsc"))
        return "bes3t" if dsc is not None and bes3t.is_descriptor(dsc) else None
    if magnettech.is_magnettech(p):
        return "magnettech"
    if suf == ".spc":
        par = _sibling(p, (".par", ".PAR"))
        return "esp" if par is not None and esp.is_par(par) else None
    if esp.is_par(p):
        return "esp"
    if csv_epr.is_epr_csv(p):
        return "epr-csv"
    return None


def _describe(p: Path) -> str:
    if p.is_dir():
        names = sorted(x.name for x in p.iterdir())
        if not names:
            return "an empty folder"
        more = f" and {len(names) - 12} more" if len(names) > 12 else ""
        return f"a folder holding {names[:12]}{more}"
    if not p.exists():
        return "nothing (no such file or folder)"
    if not p.is_file():
        return "a device, FIFO or socket, not a regular file (refused: its size is unknown)"
    size = p.stat().st_size
    if size == 0:
        return "an empty file (0 bytes)"
    return f"a {size}-byte file starting {_head(p, 16)!r}"


def _epr_module():
    """The EPR reader names, looked up at call time (tests substitute the module)."""
    return sys.modules.get("ingest.readers.epr") or importlib.import_module("ingest.readers.epr")


def read(path: str | Path) -> NMRSpectrum | EPRSpectrum:
    """Read any supported spectrum; 2D sets stay 2D (see :func:`_read`)."""
    try:
        return _read(path)
    except IngestError:
        raise
    except Exception as exc:
        raise IngestError(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc


def _read(path: str | Path) -> NMRSpectrum | EPRSpectrum:
    """Read any supported spectrum; 2D sets stay 2D.

    Parameters
    ----------
    path : str or Path
        File or folder (see :func:`identify`).

    Returns
    -------
    NMRSpectrum or EPRSpectrum
        A Bruker ``ser`` stays 2D: ``fid`` of shape (rows, td), ``meta.row``
        None, ``start``/``end`` of the whole set, ``extra['rows']``; use
        :func:`read_rows` for time-stamped 1D rows.

    Raises
    ------
    IngestError
        Unknown, empty or unreadable input; the message names the path and
        what was found there.
    """
    p = path if type(path) is type(_HERE) else Path(path)  # a Path is used as it is
    fmt = identify(p)
    if fmt is None:
        if p.suffix.lower() in _TEXT_EXPORTS and p.is_file():
            csv_epr.read_epr_csv(p)  # a damaged two-column export: its own, precise error
        raise IngestError(p, f"not a recognised NMR or EPR format: found {_describe(p)}")
    if fmt == "bruker":
        return bruker.read_bruker(p)
    if fmt == "bruker-ser":
        rows = bruker.read_bruker_ser(p)
        extra = dict(rows[0].meta.extra) | {"rows": len(rows)}
        meta = rows[0].meta.with_(row=None, start=rows[0].meta.start, end=rows[-1].meta.end, extra=extra)
        return NMRSpectrum(fid=np.stack([r.fid for r in rows]), meta=meta)
    if fmt == "spinsolve":
        return spinsolve.read_spinsolve(p)
    if fmt == "jcampdx":
        return jcampdx.read_jcampdx(p / "nmr_fid.dx" if p.is_dir() else p)
    epr = _epr_module()
    func = {"bes3t": "read_bes3t", "esp": "read_esp", "magnettech": "read_magnettech", "epr-csv": "read_epr_csv"}[fmt]
    return getattr(epr, func)(p)


def _split_epr(spec: EPRSpectrum) -> list[EPRSpectrum]:
    if spec.intensity.ndim == 1:
        return [spec]
    epr = _epr_module()
    split = getattr(epr, "split_rows", None)
    if split is not None:
        return list(split(spec))
    rows = []
    for i in range(spec.intensity.shape[0]):
        rows.append(replace(spec, intensity=spec.intensity[i], meta=spec.meta.with_(row=i), y_axis=None, y_unit=None))
    return rows


def read_rows(path: str | Path) -> list[NMRSpectrum | EPRSpectrum]:
    """Read a file or folder as a list of 1D, time-stamped rows.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of NMRSpectrum or EPRSpectrum
        One item for a 1D acquisition; one per row for a Bruker ``ser``
        (:func:`ingest.readers.bruker.read_bruker_ser`) or an EPR 2D set
        (``ingest.readers.epr.split_rows``).

    Raises
    ------
    IngestError
        As :func:`read`.
    """
    p = path if type(path) is type(_HERE) else Path(path)  # a Path is used as it is
    if _is_dir(p):  # an expno folder, the batch's commonest case: its files stat'ed once
        fmt, seen = bruker.identify_seen(p)
        if fmt == "bruker":
            return [bruker.read_identified(p, seen)]
        if fmt is None and not bruker.is_params(p / "acqus"):
            fmt = _identify_dir(p)  # what identify() gives a folder that is no Bruker expno
    else:
        fmt = identify(p)
    if fmt == "bruker-ser":
        return list(bruker.read_bruker_ser(p))
    if fmt == "bruker":  # the commonest case, without identifying the folder a second time
        return [bruker.read_bruker(p)]
    spec = read(p)
    if isinstance(spec, EPRSpectrum):
        return list(_split_epr(spec))
    return [spec]
