"""What is an acquisition on disk, and is it complete?

Spectrometers write an acquisition over seconds to minutes: parameters first,
then the data in chunks, sometimes under a temporary name that is renamed at
the end.  The live watcher must only read an acquisition once it is finished,
and the batch path must know which files belong together.  This module holds
that knowledge, format by format, as pure functions of what is on disk (no
reading of the spectra themselves).

Acquisition keys (one :class:`Acquisition` per key)
----------------------------------------------------
=============  ==========================================  =========================
format         key                                         data files (fingerprint)
=============  ==========================================  =========================
``bruker``     TopSpin expno folder holding ``acqus``      acqus, fid
``bruker-ser`` expno folder with ``ser`` (+ ``acqu2s``)    acqus, acqu2s, ser
``spinsolve``  folder holding ``acqu.par`` + ``data.1d``   acqu.par, data.1d
``bes3t``      base path of ``X.DSC`` + ``X.DTA``          .DSC, .DTA
``esp``        base path of ``X.par`` + ``X.spc``          .par, .spc
``file``       any other single file (.xml, .dx, .csv …)   the file
=============  ==========================================  =========================

Completion rules (each format module says what its files declare; the
layouts are in docs/physics.md §5.1, §5.2, §5.4, §5.5)
----------------------------------------------------------------------
* Bruker (:mod:`ingest.readers.bruker`): ``fid`` size >= TD·(4 bytes if
  DTYPA=0 else 8); a ``ser`` holds TD1 rows, each padded to a multiple of
  1024 bytes (an unpadded ser of exactly TD1·row bytes is also accepted).
  TopSpin rewrites the fid after every scan (NS only changes the values, not
  the size), so a full-size fid is not yet a finished one: once the closing
  file ``audita.txt`` exists the acquisition is complete after ``settle_s``;
  without it one scan time (AQ + D1, capped at ``max_scan_wait_s``) of
  silence is asked for.
* Spinsolve (:mod:`ingest.readers.spinsolve`): ``data.1d`` = 32-byte header
  + xDim·yDim·zDim·qDim·12 bytes.
* BES3T (:mod:`ingest.readers.bes3t`): ``.DTA`` size = XPTS·YPTS·ZPTS·item
  size (×2 for CPLX), AND the descriptor closed (its save time DATE written,
  last line complete) — so a .DTA written before its .DSC, or a .DSC written
  layer by layer, is taken once, with its time.  A descriptor that never
  gets a DATE is taken after :data:`UNSIZED_QUIET_S`.
* ESP/WinEPR (:mod:`ingest.readers.esp`): ``.spc`` size >= 4·N when the .par
  declares N (ANZ, RES or SSX); without one (the real ``ESP.par`` has none),
  :data:`UNSIZED_QUIET_S` of silence.
* Magnettech XML: the closing ``</ESRXmlFile>``; JCAMP-DX: ``##END=``;
  both then ``quiet_s``.  Two-column CSV: last line complete, then
  :data:`UNSIZED_QUIET_S` of silence (nothing in a CSV declares its length).
* Any other single file: ``quiet_s``; the reader decides.

"Stable for" is measured by the caller (the watcher tracks how long the size
and mtime signature has been unchanged with a monotonic clock, which is immune
to skew between a file server's clock and ours); the mtime age is used too,
so files already present when the watcher starts are ready at once.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ingest.live.acquisition import (  # re-exported
    IGNORED_SUFFIXES,
    Acquisition,
    acquisition_for,
    discover,
)
from ingest.live.signature import fingerprint, quick_signature  # re-exported
from ingest.readers import bes3t, bruker, csv_epr, esp, jcampdx, magnettech, spinsolve
from ingest.types import IngestError

__all__ = [
    "IGNORED_SUFFIXES",
    "UNSIZED_QUIET_S",
    "Acquisition",
    "CompletionCheck",
    "acquisition_for",
    "acquisition_time",
    "check_complete",
    "discover",
    "expected_size",
    "fingerprint",
    "quick_signature",
    "sort_key",
]

_TEXT_SUFFIXES = {".csv", ".txt", ".asc", ".dat"}


@dataclass(frozen=True)
class CompletionCheck:
    """Answer of :func:`check_complete`.

    Attributes
    ----------
    complete : bool
    reason : str
        Why not (or ``'complete'``), for logs.
    expected_bytes : int or None
        Size the header promises for the data file, None when unknown.
    actual_bytes : int or None
        Size of the data file now, None when it is missing.
    may_grow : bool
        True when the data file is smaller than promised or no size is known,
        i.e. a read failure could be because it is still being written.
    """

    complete: bool
    reason: str
    expected_bytes: int | None = None
    actual_bytes: int | None = None
    may_grow: bool = True


# --------------------------------------------------------------------------- what each format declares

_MEMO: dict[tuple, tuple[tuple, object]] = {}


def _stat_or_none(f: Path) -> os.stat_result | None:
    try:
        return os.stat(f)
    except OSError:  # missing or unreadable: a stamp that differs from any real one
        return None


def _stat_all(paths: tuple[Path, ...]) -> dict[Path, os.stat_result | None]:
    """``os.stat`` of each path, None when missing; other errors (permission) are raised."""
    out: dict[Path, os.stat_result | None] = {}
    for f in paths:
        try:
            out[f] = os.stat(f)
        except (FileNotFoundError, NotADirectoryError):
            out[f] = None
    return out


def _stamp(paths: tuple[Path, ...], stats: dict[Path, os.stat_result | None] | None = None) -> tuple:
    """(size, mtime in ns, inode) of each path, None when missing; ``stats`` holds stats
    already taken (by :func:`check_complete`), the others are taken here."""
    out = []
    for f in paths:
        st = stats[f] if stats is not None and f in stats else _stat_or_none(f)
        out.append(None if st is None else (st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def _memo(kind: str, acq: Acquisition, deps: tuple[Path, ...], fn, stats: dict | None = None):
    """Ask a format module once per state of its parameter files: the watcher
    asks about the same headers many times while an acquisition settles.  A state is
    (size, mtime_ns, inode) of each file: a rewrite, even within the mtime's resolution,
    changes the size or (written under a temporary name and renamed) the inode."""
    key = (kind, str(acq.key))
    stamp = _stamp(deps, stats)
    hit = _MEMO.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    val = fn()
    if len(_MEMO) > 20000:
        _MEMO.clear()
    _MEMO[key] = (stamp, val)
    return val


def _file_kind(path: Path) -> str | None:
    """The format of a single-file acquisition, from its content (None: not known yet)."""
    if magnettech.is_magnettech(path):
        return "magnettech"
    if jcampdx.is_jcampdx(path):
        return "jcampdx"
    if csv_epr.is_epr_csv(path):
        return "epr-csv"
    return None


def expected_size(acq: Acquisition, stats: dict[Path, os.stat_result | None] | None = None) -> int | None:
    """Bytes the header promises for the data file, or None when unknown.

    Asks the format's own module (:func:`ingest.readers.bruker.expected_size`,
    :func:`ingest.readers.spinsolve.expected_size`,
    :func:`ingest.readers.bes3t.expected_size`,
    :func:`ingest.readers.esp.expected_size`).

    Parameters
    ----------
    acq : Acquisition
    stats : dict, optional
        ``os.stat`` results (None: missing) the caller already has, reused by :func:`_memo`.

    Returns
    -------
    int or None
        Minimum complete size of the data file (fid/ser, data.1d, .DTA, .spc),
        None when the parameter file is missing, unreadable or lacks the keys,
        or the format gives no size.
    """
    k = acq.key
    if acq.format == "bruker":
        return _memo("size", acq, (acq.files[0],), lambda: bruker.expected_size(k), stats)
    if acq.format == "bruker-ser":
        return _memo("size", acq, (k / "acqus", k / "acqu2s"), lambda: bruker.expected_size(k, serial=True), stats)
    if acq.format == "spinsolve":
        return spinsolve.expected_size(k)
    if acq.format == "bes3t":
        return _memo("size", acq, (acq.files[0],), lambda: _bes3t_size(acq), stats)
    if acq.format == "esp":
        return _memo("size", acq, (acq.files[0],), lambda: esp.expected_size(acq.files[0]), stats)
    return None


def _dsc_layers(acq: Acquisition) -> dict | None:
    """The parsed descriptor of a BES3T acquisition (None when unreadable), parsed once per
    state of the file for the closing mark and the time (:func:`_memo`)."""

    def parse() -> dict | None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return bes3t.parse_dsc(acq.files[0])
        except (IngestError, OSError):
            return None

    return _memo("dsc", acq, (acq.files[0],), parse)


def _bes3t_size(acq: Acquisition) -> int | None:
    """:func:`ingest.readers.bes3t.expected_size` from the descriptor parsed once (:func:`_dsc_layers`)."""
    layers = _dsc_layers(acq)
    return None if layers is None else bes3t.expected_size(acq.files[0], layers=layers)


def _descriptor_closed(dsc: Path, layers: dict | None) -> bool:
    """A BES3T descriptor is finished once it holds the save time (DATE, or the
    flowcell device block) and its device layer (#DSL, written last by Xepr) is
    closed by the row of asterisks that ends every layer."""
    if layers is None:
        return False
    try:
        with open(dsc, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 512))
            tail = fh.read().decode("latin-1")
    except OSError:
        return False
    has_time = any("DATE" in blk for blk in (layers["SPL"], layers["DESC"], *layers["DSL"].values()))
    has_time = has_time or "AcqEnd" in layers["DSL"].get("flowcell", {})
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    closed = bool(lines) and len(lines[-1]) >= 20 and set(lines[-1]) == {"*"}
    return has_time and bool(layers["DSL"]) and closed


def _is_text(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return b"\x00" not in head


def _closing_evidence(acq: Acquisition) -> tuple[bool | None, str]:
    """Does the format's own closing mark say the files are finished?

    Returns ``(True, why)`` when it does, ``(False, why)`` when it says they
    are not, ``(None, why)`` when the format has no such mark (quiet period).
    """
    if acq.format == "bes3t":
        ok = _memo("closed", acq, (acq.files[0],), lambda: _descriptor_closed(acq.files[0], _dsc_layers(acq)))
        return (True, "descriptor closed") if ok else (None, "descriptor without DATE/TIME yet")
    if acq.format == "file":
        kind = _file_kind(acq.key)
        if kind == "magnettech":
            return (True, "</ESRXmlFile> present") if magnettech.is_complete(acq.key) else (False, "no </ESRXmlFile> yet")
        if kind == "jcampdx":
            return (True, "##END= present") if jcampdx.is_complete(acq.key) else (False, "no ##END= yet")
        if kind == "epr-csv":
            return (None, "CSV: no declared length") if csv_epr.is_complete(acq.key) else (False, "last line unfinished")
        if acq.key.suffix.lower() in _TEXT_SUFFIXES and _is_text(acq.key) and not csv_epr.is_complete(acq.key):
            return False, "last line unfinished"
        return True, "format unknown to completion (the reader decides)"
    return None, "no closing mark"


# --------------------------------------------------------------------------- completion

#: Quiet period (s) required of data that declare no size and no closing mark
#: (two-column CSV exports, ESP .par without ANZ/RES/SSX, a BES3T descriptor
#: without its save time).  Instruments write a spectrum file in one go or
#: line by line every few seconds at most; 30 s without any change is well
#: beyond either, so a half-written file is never taken for a finished one.
UNSIZED_QUIET_S = 30.0


def check_complete(
    acq: Acquisition,
    stable_for_s: float,
    *,
    settle_s: float = 1.0,
    quiet_s: float = 3.0,
    max_scan_wait_s: float = 30.0,
    unsized_quiet_s: float | None = None,
    now: float | None = None,
) -> CompletionCheck:
    """Is this acquisition complete?

    Complete only from what its format says: the data file has the size the
    header declares (Bruker, Spinsolve, BES3T, ESP with a point count) and the
    vendor's closing mark is there (Bruker ``audita.txt`` or one scan time of
    silence; a BES3T descriptor holding its save time; ``</ESRXmlFile>``;
    JCAMP ``##END=``).  Formats with neither (CSV, ESP without a point count)
    need :data:`UNSIZED_QUIET_S` of silence.

    Parameters
    ----------
    acq : Acquisition
    stable_for_s : float
        How long (s) the :func:`quick_signature` has been unchanged, as
        measured by the caller (``math.inf`` for a batch of finished files).
    settle_s : float
        Required stability once the data file has its full size, s.
    quiet_s : float
        Required stability for a single file whose format is not recognised
        (the reader then decides), s.
    max_scan_wait_s : float
        Cap on the extra silence required for a Bruker expno without
        ``audita.txt`` (one scan time AQ + D1), s.
    unsized_quiet_s : float, optional
        Quiet period for data without a declared size or closing mark, s
        (default :data:`UNSIZED_QUIET_S`).
    now : float, optional
        Wall-clock time (``time.time()``); the age of the newest mtime counts as
        stability too.

    Returns
    -------
    CompletionCheck
    """
    now = time.time() if now is None else now
    unsized = UNSIZED_QUIET_S if unsized_quiet_s is None else unsized_quiet_s
    stats = _stat_all(acq.files)  # one stat per file, shared by every check below
    data = acq.data_file
    st_data = stats[data] if data in stats else _stat_or_none(data)
    actual: int | None = None if st_data is None else st_data.st_size
    missing = [f.name for f in acq.files if stats[f] is None]
    if missing:
        return CompletionCheck(False, f"waiting for {', '.join(missing)}", None, actual, True)
    stable = max(stable_for_s, max(0.0, now - max(st.st_mtime for st in stats.values() if st is not None)))
    closed, why = _closing_evidence(acq)
    if closed is False:
        return CompletionCheck(False, why, None, actual, True)
    exp = expected_size(acq, stats)
    if exp is None:
        need = quiet_s if closed else max(quiet_s, unsized)
        if stable < need:
            return CompletionCheck(False, f"{why}; quiet for {stable:.2f} s < {need} s", None, actual, True)
        return CompletionCheck(True, f"complete ({why}, quiet {need} s)", None, actual, True)
    assert actual is not None
    if actual < exp and not (acq.format == "bruker-ser" and actual == bruker.unpadded_ser_size(acq.key)):
        return CompletionCheck(False, f"{data.name} holds {actual} of {exp} bytes", exp, actual, True)
    need = settle_s
    if acq.format.startswith("bruker") and not bruker.is_closed(acq.key):
        scan = bruker.scan_time_s(acq.key)
        need = max(settle_s, min(1.5 * scan, max_scan_wait_s)) if scan else max(settle_s, quiet_s)
    elif closed is None and acq.format == "bes3t":
        need = max(settle_s, unsized)  # sized data, descriptor without its save time: wait long
    if stable < need:
        return CompletionCheck(False, f"full size, settling ({stable:.2f} s < {need:.2f} s)", exp, actual, False)
    return CompletionCheck(True, "complete", exp, actual, False)


# --------------------------------------------------------------------------- ordering


def acquisition_time(acq: Acquisition) -> float:
    """Cheap acquisition time (s since the epoch) for ordering, from headers.

    Bruker ``DATE`` (epoch s), Spinsolve ``startTime``, BES3T ``DATE``+``TIME``;
    falls back to the newest mtime of the files.  Only used to order work; the
    table's times come from the readers.
    """
    t: float | None = None
    try:
        if acq.format.startswith("bruker"):
            t = _memo("time", acq, (acq.key / "acqus",), lambda: bruker.start_time(acq.key))
        elif acq.format == "spinsolve":
            par = _memo("par", acq, (acq.key / "acqu.par",), lambda: spinsolve.read_acqu_par(acq.key / "acqu.par"))
            if par.get("startTime"):
                t = spinsolve.parse_local_time(str(par["startTime"])).timestamp()
        elif acq.format == "bes3t":  # once per state of the .DSC (parsed once for completion too)
            t = _memo("time", acq, (acq.files[0],), lambda: _bes3t_time(acq))
    except (IngestError, OSError, ValueError, OverflowError):
        t = None
    if t is not None:
        return t
    mt = []
    for f in acq.files:
        try:
            mt.append(f.stat().st_mtime)
        except OSError:
            pass
    return max(mt) if mt else math.inf


def _bes3t_time(acq: Acquisition) -> float | None:
    layers = _dsc_layers(acq)
    if layers is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        end, _ = bes3t.descriptor_time(acq.files[0], layers)
    return end.timestamp() if end is not None else None


def _natural_key(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def sort_key(acq: Acquisition) -> tuple:
    """Sort key: acquisition time, then natural path order (expno 2 before 10)."""
    return (acquisition_time(acq), _natural_key(str(acq.key)))
