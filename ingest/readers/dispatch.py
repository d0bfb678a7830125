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

:func:`read` dispatches (EPR readers live in ``ingest.readers.epr``,
imported lazily); :func:`read_rows` returns 1D rows, splitting Bruker ``ser``
files and EPR 2D sets (``ingest.readers.epr.split_rows`` when it exists, else a plain
split on ``y_axis``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from ingest.types import EPRSpectrum, IngestError, NMRSpectrum

__all__ = ["identify", "read", "read_rows", "FORMATS"]

FORMATS = ("bruker", "bruker-ser", "spinsolve", "jcampdx", "bes3t", "esp", "magnettech", "epr-csv")

_ESP_KEYS = {"HCF", "HSW", "GST", "GSI", "RES", "ANZ", "JSS", "MF", "RRG", "RMA", "JUN", "JEX", "JNS", "MP", "RCT", "SSX"}
_SPINSOLVE_MAGIC = b"SORPATAD1.1V"


def _head(p: Path, n: int = 4096) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _is_text(b: bytes) -> bool:
    if not b:
        return False
    if b"\x00" in b:
        return False
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        try:
            s = b.decode("latin-1")
        except UnicodeDecodeError:
            return False
        bad = sum(1 for c in s if ord(c) < 32 and c not in "\r\n\t\f")
        return bad < 0.01 * len(s)


def _is_bruker_params(p: Path) -> bool:
    """A JCAMP-style Bruker parameter file: text starting '##' with '##$KEY=' lines."""
    h = _head(p, 8192)
    return p.is_file() and _is_text(h[:512]) and h.lstrip().startswith(b"##") and b"##$" in h


def _is_acqu_par(p: Path) -> bool:
    if not p.is_file():
        return False
    h = _head(p, 2048)
    if not _is_text(h):
        return False
    lines = [ln for ln in h.decode("latin-1").splitlines()[:10] if ln.strip()]
    return bool(lines) and all(re.match(r"^\s*[A-Za-z0-9_]+\s*=", ln) for ln in lines[: min(5, len(lines))])


def _is_jcampdx(p: Path) -> bool:
    h = _head(p, 2048)
    return _is_text(h) and re.search(rb"^\s*##JCAMP-DX\s*=", h, re.M | re.I) is not None


def _is_bes3t_dsc(p: Path) -> bool:
    h = _head(p, 256)
    return h.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"#DESC")


def _is_esp_par(p: Path) -> bool:
    h = _head(p, 4096)
    if not _is_text(h):
        return False
    text = h.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
    keys = {ln.split()[0] for ln in text.split("\n") if ln.strip()}
    return len(keys & _ESP_KEYS) >= 3


def _is_magnettech(p: Path) -> bool:
    h = _head(p, 1024).lstrip(b"\xef\xbb\xbf").lstrip()
    return h.startswith(b"<?xml") and b"<ESRXmlFile" in h or h.startswith(b"<ESRXmlFile")


_FIELD_RANGES = ((0.01, 2.0), (10.0, 2000.0), (100.0, 20000.0))


def _is_epr_csv(p: Path) -> bool:
    h = _head(p, 65536)
    if not _is_text(h):
        return False
    lines = h.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(h) == 65536:
        lines = lines[:-1]  # last one may be cut
    rows: list[list[float]] = []
    header_lines = 0
    for ln in lines:
        s = ln.strip()
        if not s:
            continue
        parts = [x for x in re.split(r"[,;\t ]+", s) if x]
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            if rows:
                return False  # text after data: not a plain two-column export
            header_lines += 1
            if header_lines > 3:
                return False
            continue
        if not 2 <= len(vals) <= 3:
            return False
        rows.append(vals)
    if len(rows) < 10 or len({len(r) for r in rows}) != 1:
        return False
    x = [r[0] for r in rows]
    d = [b - a for a, b in zip(x, x[1:])]
    if not (all(v > 0 for v in d) or all(v < 0 for v in d)):
        return False
    lo, hi = min(x), max(x)
    return any(a <= lo and hi <= b for a, b in _FIELD_RANGES)


def _sibling(p: Path, suffixes: tuple[str, ...]) -> Path | None:
    for suf in suffixes:
        q = p.with_suffix(suf)
        if q.is_file():
            return q
    return None


def _identify_dir(d: Path) -> str | None:
    acqus = d / "acqus"
    if acqus.is_file() and _is_bruker_params(acqus):
        if (d / "ser").is_file():
            return "bruker-ser"
        if (d / "fid").is_file():
            return "bruker"
        return None
    if _is_acqu_par(d / "acqu.par"):
        for name in ("data.1d", "fid.1d", "spectrum.1d"):
            if (d / name).is_file() and _head(d / name, 12) == _SPINSOLVE_MAGIC:
                return "spinsolve" if name == "data.1d" else None
        if (d / "nmr_fid.dx").is_file() and _is_jcampdx(d / "nmr_fid.dx"):
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
    p = Path(path)
    if p.is_dir():
        return _identify_dir(p)
    if not p.is_file() or p.stat().st_size == 0:
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
    if _is_jcampdx(p):
        return "jcampdx"
    if _is_bes3t_dsc(p):
        return "bes3t"
    if suf == ".dta":
        dsc = _sibling(p, (".DSC", ".dsc"))
        return "bes3t" if dsc is not None and _is_bes3t_dsc(dsc) else None
    if _is_magnettech(p):
        return "magnettech"
    if suf == ".spc":
        par = _sibling(p, (".par", ".PAR"))
        return "esp" if par is not None and _is_esp_par(par) else None
    if _is_esp_par(p):
        return "esp"
    if _is_epr_csv(p):
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
    size = p.stat().st_size
    if size == 0:
        return "an empty file (0 bytes)"
    return f"a {size}-byte file starting {_head(p, 16)!r}"


def _epr_module():
    import importlib

    try:
        return importlib.import_module("ingest.readers.epr")
    except ImportError as exc:  # pragma: no cover
        raise ImportError(f"EPR readers (ingest.readers.epr) are not available: {exc}") from exc


def read(path: str | Path) -> NMRSpectrum | EPRSpectrum:
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
    p = Path(path)
    fmt = identify(p)
    if fmt is None:
        raise IngestError(p, f"not a recognised NMR or EPR format: found {_describe(p)}")
    if fmt == "bruker":
        from ingest.readers.bruker import read_bruker

        return read_bruker(p)
    if fmt == "bruker-ser":
        from ingest.readers.bruker import read_bruker_ser

        rows = read_bruker_ser(p)
        extra = dict(rows[0].meta.extra) | {"rows": len(rows)}
        meta = rows[0].meta.with_(row=None, start=rows[0].meta.start, end=rows[-1].meta.end, extra=extra)
        return NMRSpectrum(fid=np.stack([r.fid for r in rows]), meta=meta)
    if fmt == "spinsolve":
        from ingest.readers.spinsolve import read_spinsolve

        return read_spinsolve(p)
    if fmt == "jcampdx":
        from ingest.readers.jcampdx import read_jcampdx

        return read_jcampdx(p / "nmr_fid.dx" if p.is_dir() else p)
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
    p = Path(path)
    fmt = identify(p)
    if fmt == "bruker-ser":
        from ingest.readers.bruker import read_bruker_ser

        return list(read_bruker_ser(p))
    spec = read(p)
    if isinstance(spec, EPRSpectrum):
        return list(_split_epr(spec))
    return [spec]
