"""Bruker TopSpin / XWIN-NMR (1D ``fid`` and serial ``ser``): identify, read, completeness, write.

Parameters come from ``acqus`` (JCAMP-style ``##$KEY= value``), parsed by
:func:`read_acqus` (:mod:`ingest.readers.bruker_params`) exactly as
``nmrglue.bruker.read_jcamp`` parses them (same keys and values;
tests/test_batch_workers.py compares the two on real files) without importing
nmrglue and scipy.signal at start-up; the binary data are read with numpy after this
module has checked that the file size agrees with ``TD``/``DTYPA`` (docs/physics.md §5.1,
nmrglue ``fileio/bruker.py``).  nmrglue is imported only for processed ``pdata`` and
the old-firmware digital-filter table.

Vendor quirks handled here (docs/physics.md §5.1, §6 item 8)
-------------------------------------------------------
* **Block padding.** Each FID starts on a 1024-byte boundary (Bruker
  acquisition manual, parameter NBL, quoted in nmrglue's ``guess_shape``), so a
  1D ``fid`` or each ``ser`` row may be longer than ``TD`` words.  Old
  XWIN-NMR 1D files are padded too (``bruker-array``: TD 12018, 12032 words).
  The padding is cut off; only ``TD/2`` complex points are returned.
* **Scaling.** Integer data (``DTYPA`` 0) are multiplied by ``2**NC`` (the
  TopSpin normalisation constant), so spectra written with different ``NC``
  share one intensity scale.  ``NC`` is -2 in the real shared files; the
  writer in :mod:`ingest.readers.nmr_writers` chooses a power-of-two scale and records
  it in ``NC``, so a round trip is exact up to int32 rounding.
* **Digital filter.** ``group_delay`` (points) is ``GRPDLY`` when it is > 0,
  else nmrglue's ``bruker_dsp_table[DSPFVS][DECIM]`` for the old firmware
  (DSPFVS 10-13), else 0.  The filter is NOT removed here.
* **Time stamps.** ``audita.txt`` is preferred (:mod:`ingest.readers.bruker_audita`): its first entry written by
  ``zg`` holds ``started at <date time zone>`` (start) and its ``WHEN`` field
  (the time the entry was written, i.e. the end of acquisition).  Without
  audita, ``DATE`` (epoch s) is taken as the **end** of acquisition and the
  start is ``DATE - (NS + DS)·(AQ + D1)`` with ``AQ = TD / (2·SW_h)``.
  Evidence for "end": in both real shared data sets the ``$$`` header line of
  ``acqus`` (written by the acquisition software) is 3 s after ``DATE``
  (bruker-1h-d2o: DATE 16:28:22 UTC, header 11:28:25 CDT = 16:28:25 UTC;
  bruker-array/3: DATE 09:32:22 UTC, header 19:32:25 UT+10h), while ``acqu``
  was written 16 s (57 min) earlier, and NMRPy's maintainer describes the
  header line as the file's save time (NMRPy issue #6).  Which one Bruker
  intends is not documented in anything available here (docs/physics.md §6 item 8).
  The chosen source is recorded in ``meta.extra['time_source']``.
* **Serial data.** ``ser`` + ``acqu2s``: ``TD`` of ``acqu2s`` is the number of
  rows.  Row ``i`` spans ``[t0 + i·Δ, t0 + (i+1)·Δ]`` where ``t0`` is the
  start of the whole acquisition and ``Δ`` the row duration: ``(end-start)/rows``
  when both ends are known (audita), else ``(NS + DS)·(AQ + D1)``
  (docs/physics.md §5.1).  Dummy scans that TopSpin runs only before the first
  row make the nominal value slightly long; audita times avoid that.
* **Byte order.** ``BYTORDA`` 0/1 (little/big) is checked against the data:
  a flipped value turns a noise tail of ~1 into ~1e7 and is refused
  (:func:`ingest.readers.checks.byte_order_check`).

Identification and completeness (used by :mod:`ingest.readers.dispatch` and
:mod:`ingest.live.completion`)
--------------------------------------------------------------------------
:func:`identify_dir` names an expno (``'bruker'`` or ``'bruker-ser'``);
:func:`expected_size` is the size the parameter files promise for ``fid``
(``TD`` words of 4 or 8 bytes) or ``ser`` (``TD1`` rows padded to 1024
bytes); TopSpin writes :data:`CLOSING_FILE` (``audita.txt``) when an
acquisition ends, so a full-size data file is finished once that file exists
(:func:`is_closed`); without it one scan time (:func:`scan_time_s`) of
silence is asked for.  Writers: :func:`write_bruker_1d`,
:func:`write_bruker_ser` (implemented in :mod:`ingest.readers.nmr_writers`).
"""

from __future__ import annotations

import errno
import math
import os
import posixpath
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ingest.readers.bruker_audita import CLOSING_FILE, read_audita
from ingest.readers.bruker_fields import (
    _DSP_TABLE_FIRMWARE,  # noqa: F401 (tests/test_bruker_fast_read.py checks it)
    _ITEMSIZE,
    BLOCK_BYTES,
    _check_size,
    _checked_fields,
    _meta_fields,
    _num,
    _scan_time_s,
)
from ingest.readers.bruker_params import cached_head, read_acqus, remember_read
from ingest.readers.bruker_words import _declared_order_evident, read_words  # noqa: F401 (tests use the former)
from ingest.readers.checks import (
    check_meta,
    checked,
    epoch_time,
    read_small,
)
from ingest.readers.nmr_writers import write_bruker_1d, write_bruker_ser
from ingest.readers.stored_fid import WordsSpectrum, deferring
from ingest.types import IngestError, NMRMeta, NMRSpectrum

__all__ = ["BLOCK_BYTES", "CLOSING_FILE", "PARAM_FILES", "expected_size", "identify_dir", "is_closed", "is_params",
           "read_acqus", "read_audita", "read_bruker", "read_bruker_ser", "scan_time_s", "write_bruker_1d",
           "write_bruker_ser"]

#: Files of an expno that are pieces of it, never acquisitions of their own.
PARAM_FILES = frozenset({
    "acqus", "fid", "ser", "acqu2s", CLOSING_FILE, "acqu", "acqu2",
    "pulseprogram", "format.temp", "scon", "scon2", "uxnmr.par", "uxnmr.info",
    "specpar", "precom.output", "shimvalues", "acqum", "acqums", "acqu2m",
    "acqu2ms", "vdlist", "vclist", "vplist", "vtlist", "fq1list", "fq2list",
    "prosol_History", "cpdprg", "cpdprg2", "gradprogram",
})
_HERE = Path()  # its type is the concrete Path class of this platform


# --------------------------------------------------------------------------- #
# parameter files
# --------------------------------------------------------------------------- #
# --------------------------------------------------------------------------- #
# shared metadata
# --------------------------------------------------------------------------- #
#: Errors that mean "not there" to pathlib's ``is_file``/``exists`` (anything else is raised).
_ABSENT_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


def _stat(path: str) -> os.stat_result | None:
    """``os.stat`` of a string path, None where pathlib's ``exists`` says False."""
    try:
        return os.stat(path)
    except OSError as exc:
        if getattr(exc, "errno", None) in _ABSENT_ERRNOS:
            return None
        raise


def _join(folder: Path, name: str) -> str:
    """``str(folder / name)`` without the Path object (~5 us on the live path); on POSIX by
    concatenation, what ``os.path.join`` gives for a relative ``name`` (~1.5 us less a call)."""
    f = str(folder)
    if f == ".":
        return name
    if _POSIX:
        return f + name if f[-1] == "/" else f + "/" + name
    return os.path.join(f, name)


_POSIX = os.sep == "/" and os.path is posixpath


def _expno(path: str | Path) -> Path:
    """The expno folder of ``path`` (the folder, or its fid/ser/acqus/acqu2s/audita.txt):
    one stat instead of pathlib's three (``is_file``, ``exists``, ``is_dir``)."""
    p = path if type(path) is type(_HERE) else Path(path)  # a Path is used as it is (immutable)
    st = _stat(str(p))
    if st is not None and stat.S_ISREG(st.st_mode) and p.name in ("fid", "ser", "acqus", "acqu2s", "audita.txt"):
        return p.parent
    if st is None:
        raise IngestError(p, "no such file or folder")
    if not stat.S_ISDIR(st.st_mode):
        raise IngestError(p, "not a Bruker expno folder or its fid/ser file")
    return p


def _meta_from_acqus(folder: Path, acqus: dict[str, Any], acqus_path: str | Path) -> tuple[NMRMeta, dict[str, Any]]:
    """NMRMeta (without times) plus a dict of derived numbers."""
    fields, derived = _meta_fields(folder, acqus, acqus_path)
    return NMRMeta(**fields, extra=dict(acqus)), derived


def _times(folder: Path, acqus: dict[str, Any], acqus_path: str | Path, duration_s: float) -> tuple[datetime | None, datetime | None, str]:
    start, end = read_audita(_join(folder, CLOSING_FILE))
    if start is not None and end is not None:
        return start, end, "audita.txt"
    date = _num(acqus, "DATE", acqus_path, 0)
    if date:
        end = epoch_time(acqus_path, "DATE", date)
        return end - timedelta(seconds=duration_s), end, "DATE (end) - (NS+DS)*(AQ+D1)"
    return None, None, "none"


def _processed(folder: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """pdata/1/1r + procs -> (ppm, real) or (None, None).

    ppm[i] = OFFSET - i·SW_p/(SF·SI), the TopSpin axis (OFFSET = ppm of the
    first, left-most point; SW_p in Hz, SF in MHz).  Intensities are scaled by
    2**NC_proc (nmrglue ``read_pdata`` scale_data=True).
    """
    pstr = _join(folder, "pdata" + os.sep + "1" + os.sep)
    if not (os.path.isfile(pstr + "1r") and os.path.isfile(pstr + "procs")):
        return None, None  # the live case: one failed stat, no Path object
    pdir = folder / "pdata" / "1"
    procs_path = pdir / "procs"
    procs = read_acqus(procs_path)
    si = int(_num(procs, "SI", procs_path, required=True))
    item = 8 if int(_num(procs, "DTYPP", procs_path, 0)) == 2 else 4
    if (pdir / "1r").stat().st_size < si * item:
        raise IngestError(pdir / "1r", f"1r holds {(pdir / '1r').stat().st_size // item} points but procs SI says {si}")
    import nmrglue as ng  # lazy: only vendor-processed pdata needs it; keeps start-up light
    try:
        _, real = ng.bruker.read_pdata(str(pdir), bin_files=["1r"], read_acqus=False, shape=(si,))
    except Exception as exc:
        raise IngestError(pdir / "1r", f"cannot read processed data ({exc})") from exc
    offset = float(_num(procs, "OFFSET", procs_path, required=True))
    sw_p = float(_num(procs, "SW_p", procs_path, required=True))
    sf = float(_num(procs, "SF", procs_path, required=True))
    ppm = offset - np.arange(si) * (sw_p / sf / si)
    return ppm, np.asarray(real, dtype=float).reshape(-1)[:si]


# --------------------------------------------------------------------------- #
# public readers
# --------------------------------------------------------------------------- #
@checked(meta=False)
def read_bruker(path: str | Path) -> NMRSpectrum:
    """Read one TopSpin 1D experiment (an expno folder, or its ``fid``).

    Parameters
    ----------
    path : str or Path
        The expno folder (holding ``acqus`` and ``fid``) or the ``fid`` file.

    Returns
    -------
    NMRSpectrum
        ``fid``: complex128, shape (TD/2,), block padding removed, integer data
        scaled by ``2**NC``; digital filter NOT removed (``meta.group_delay``
        gives it in points).  ``meta``: ``sfo1_hz`` = SFO1 (Hz), ``bf1_hz`` =
        BF1 (Hz), ``sw_hz`` = SW_h (Hz), ``carrier_ppm`` = O1/BF1 (ppm),
        ``td`` = TD/2 complex points, ``temperature_K`` = TE (K), ``start``,
        ``end`` (UTC; see the module notes on audita.txt and DATE).
        ``processed``/``processed_ppm`` from ``pdata/1/1r`` + ``procs`` when present.

    Raises
    ------
    IngestError
        Missing or broken ``acqus``/``fid``; size of ``fid`` inconsistent with
        TD, DTYPA (e.g. truncated, still being written); a serial ``ser``
        dataset (use :func:`read_bruker_ser`).
    """
    return _read_1d(_expno(path), None, None)


@checked(meta=False)
def read_identified(folder: Path, seen: tuple[tuple, os.stat_result]) -> NMRSpectrum:
    """:func:`read_bruker` of an expno folder that :func:`identify_seen` has just named
    ``'bruker'``, with what it saw (``seen``: the acqus stamp and the fid's stat), so that
    neither the folder nor these two files are stat'ed again (:mod:`ingest.readers.dispatch`)."""
    return _read_1d(folder, seen[1], seen[0])


def _read_1d(folder: Path, st: os.stat_result | None, acqus_stamp: tuple | None) -> NMRSpectrum:
    """The body of :func:`read_bruker` (``st``: the fid's stat, ``acqus_stamp``: the acqus
    stamp of :func:`_params_stamp`, when just taken; None: taken here)."""
    # string paths below, the same text as str(folder / name): ~5 us less per Path object
    acqus_path = _join(folder, "acqus")
    data_path = _join(folder, "fid")
    if st is None:
        try:  # os.path.isfile's answer, and the size _check_size compares with TD
            st = os.stat(data_path)
        except (OSError, ValueError):
            st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        if os.path.isfile(_join(folder, "ser")):
            raise IngestError(folder, "holds a serial 'ser' file, not a 1D 'fid': use read_bruker_ser")
        found = sorted(x.name for x in folder.iterdir())[:12]
        raise IngestError(folder, f"no Bruker 'fid' file here (found: {found})")
    acqus = read_acqus(acqus_path, _stamp=acqus_stamp)  # a fresh dict: it becomes meta.extra
    fields, derived, (words, big, isfloat) = _checked_fields(folder, acqus, acqus_path, data_path, st.st_size)
    scale = 2.0 ** derived["nc"] if not isfloat and derived["nc"] else None  # TopSpin's 2**NC
    data = read_words(data_path, words, big, isfloat, scale, checked=True, keep_words=deferring())
    kept = type(data) is tuple  # (words, scale): the FID converted when first read (stored_fid)
    if not kept:
        data = data[: fields["td"]]
    duration = (fields["ns"] + derived["ds"]) * derived["scan_s"]
    start, end, source = _times(folder, acqus, acqus_path, duration)
    acqus.update(time_source=source, nominal_duration_s=duration, data_file=str(data_path))
    meta = NMRMeta(**fields, extra=acqus, start=start, end=end)  # one NMRMeta, not one and a copy
    ppm, real = _processed(folder)
    if kept:
        w, s = data
        check_meta(NMRSpectrum(fid=None, meta=meta, processed_ppm=ppm, processed=real))  # int32 words: finite
        return WordsSpectrum(meta=meta, processed_ppm=ppm, processed=real, words=w[: 2 * fields["td"]], scale=s)
    spec = NMRSpectrum(fid=data, meta=meta, processed_ppm=ppm, processed=real)
    return check_meta(spec, fid_finite=not isfloat)  # int32 words times 2**NC: finite by making


@checked()
def read_bruker_ser(path: str | Path) -> list[NMRSpectrum]:
    """Read a TopSpin serial / pseudo-2D acquisition, one spectrum per row.

    Parameters
    ----------
    path : str or Path
        The expno folder (holding ``acqus``, ``acqu2s`` and ``ser``) or ``ser``.

    Returns
    -------
    list of NMRSpectrum
        One per row of ``ser`` (``meta.row`` = 0, 1, ...), each with its own
        ``start``/``end``: row ``i`` covers ``[t0 + i·Δ, t0 + (i+1)·Δ]`` with
        ``Δ = (end - start)/rows`` when audita.txt gives both ends, else
        ``Δ = (NS + DS)·(AQ + D1)`` and ``t0 = DATE - rows·Δ`` (DATE taken as
        the end of the whole acquisition).  Data as in :func:`read_bruker`.

    Raises
    ------
    IngestError
        Missing ``acqu2s``/``ser``, or a ``ser`` size that does not hold
        ``TD(acqu2s)`` rows of ``TD(acqus)`` words.
    """
    folder = _expno(path)
    acqus_path = folder / "acqus"
    data_path = folder / "ser"
    if not data_path.is_file():
        raise IngestError(folder, "no Bruker 'ser' file here")
    acqus = read_acqus(acqus_path)
    acqu2s_path = folder / "acqu2s"
    acqu2s = read_acqus(acqu2s_path)
    rows = int(_num(acqu2s, "TD", acqu2s_path, required=True))
    if rows <= 0:
        raise IngestError(acqu2s_path, f"TD = {rows} rows")
    meta, derived = _meta_from_acqus(folder, acqus, acqus_path)
    row_words, big, isfloat = _check_size(data_path, acqus, acqus_path, rows=rows)
    flat = read_words(data_path, rows * row_words, big, isfloat, checked=True)
    data = flat.reshape(rows, row_words // 2)[:, : meta.td]
    if not isfloat and derived["nc"]:
        data *= 2.0 ** derived["nc"]  # in place: read_words returned a fresh array
    row_s = (meta.ns + derived["ds"]) * derived["scan_s"]
    start, end, source = _times(folder, acqus, acqus_path, rows * row_s)
    if start is not None and end is not None and source == "audita.txt":
        row_s = (end - start).total_seconds() / rows
    out = []
    for i in range(rows):
        extra = dict(meta.extra)
        extra.update(time_source=source, row_duration_s=row_s, data_file=str(data_path), acqu2s=acqu2s)
        t0 = None if start is None else start + timedelta(seconds=i * row_s)
        t1 = None if start is None else start + timedelta(seconds=(i + 1) * row_s)
        out.append(NMRSpectrum(fid=np.array(data[i]), meta=meta.with_(row=i, start=t0, end=t1, extra=extra)))
    return out


# --------------------------------------------------------------------------- #
# identification and completeness
# --------------------------------------------------------------------------- #
#: Parameter files up to this size (bytes) are read whole by :func:`is_params` (TopSpin's acqus: 5-30 kB).
_WHOLE_PARAMS = 1 << 16


def is_params(p: str | Path) -> bool:
    """A JCAMP-style Bruker parameter file: text starting ``##`` with ``##$KEY=`` lines.

    Its first 8 kB, from :func:`ingest.readers.bruker_params.read_acqus`'s cache when the
    file was parsed in this very state (the completeness check parses it first), else read.
    """
    return _params_stamp(os.fspath(p)) is not None


def _params_stamp(s: str) -> tuple | None:
    """(path, mtime_ns, size, inode) of the file ``s`` when :func:`is_params` says yes, else None."""
    try:
        st = os.stat(s)
        if not stat.S_ISREG(st.st_mode):
            return None
        stamp = (s, st.st_mtime_ns, st.st_size, st.st_ino)
        h = cached_head(stamp)
        if h is None and st.st_size <= _WHOLE_PARAMS:  # all of it, for read_acqus next (one read less)
            raw = read_small(s, st.st_size)
            if len(raw) == st.st_size:
                remember_read(stamp, raw)
            h = raw[:8192]
        elif h is None:
            h = read_small(s, 8192)
    except OSError:
        return None
    return stamp if b"\x00" not in h[:512] and h.lstrip().startswith(b"##") and b"##$" in h else None


def identify_dir(d: Path) -> str | None:
    """``'bruker'`` (``fid``), ``'bruker-ser'`` (``ser``) or None for a folder."""
    return identify_seen(d)[0]


def identify_seen(d: Path) -> tuple[str | None, tuple[tuple, os.stat_result] | None]:
    """:func:`identify_dir`, and for ``'bruker'`` what it saw: (acqus stamp, the fid's stat),
    which :func:`read_identified` takes instead of stat'ing the files again."""
    stamp = _params_stamp(_join(d, "acqus"))
    if stamp is None:
        return None, None
    if os.path.isfile(_join(d, "ser")):
        return "bruker-ser", None
    try:  # os.path.isfile's answer, from a stat the reader uses
        st = os.stat(_join(d, "fid"))
    except (OSError, ValueError):
        return None, None
    return ("bruker", (stamp, st)) if stat.S_ISREG(st.st_mode) else (None, None)


def _params_or_none(path: str | Path) -> dict[str, Any] | None:
    try:
        return read_acqus(path)
    except IngestError:
        return None


def expected_size(folder: Path, serial: bool = False) -> int | None:
    """Bytes the parameter files promise for ``fid`` (or ``ser``); None if they cannot say yet."""
    acqus = _join(folder, "acqus")  # string paths: the live completeness check asks per spectrum
    par = _params_or_none(acqus)
    if par is None:
        return None
    try:
        td = int(_num(par, "TD", acqus, required=True))
        item = _ITEMSIZE.get(int(_num(par, "DTYPA", acqus, 0)), 4)
    except (IngestError, ValueError, OverflowError):
        return None
    row = td * item
    if not serial:
        return row
    acqu2s = _join(folder, "acqu2s")
    par2 = _params_or_none(acqu2s)
    try:
        td1 = int(_num(par2, "TD", acqu2s, required=True)) if par2 is not None else None
    except (IngestError, ValueError, OverflowError):
        return None
    return None if td1 is None else td1 * (math.ceil(row / BLOCK_BYTES) * BLOCK_BYTES)


def unpadded_ser_size(folder: Path) -> int | None:
    """``TD1 · TD · item`` bytes: a ser written without block padding (accepted too)."""
    par, par2 = _params_or_none(folder / "acqus"), _params_or_none(folder / "acqu2s")
    if par is None or par2 is None:
        return None
    try:
        return int(par2["TD"]) * int(par["TD"]) * _ITEMSIZE.get(int(par.get("DTYPA", 0)), 4)
    except (KeyError, TypeError, ValueError):
        return None


def is_closed(folder: Path) -> bool:
    """True once TopSpin has written :data:`CLOSING_FILE` into the expno."""
    return os.path.isfile(os.path.join(folder, CLOSING_FILE))


def scan_time_s(folder: Path) -> float | None:
    """One scan, AQ + D1 (s), from ``acqus``; None when unknown."""
    acqus = _join(folder, "acqus")
    par = _params_or_none(acqus)
    if par is None:
        return None
    try:
        return _scan_time_s(par, acqus)
    except (IngestError, ValueError, TypeError, ZeroDivisionError):
        return None


def start_time(folder: Path) -> float | None:
    """Cheap ``DATE`` (s since 1970) for ordering; None when absent or implausible."""
    par = _params_or_none(folder / "acqus")
    try:
        return epoch_time(folder / "acqus", "DATE", par["DATE"]).timestamp() if par and par.get("DATE") else None
    except IngestError:
        return None
