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

Completion rules (science.md §5.1, §5.2, §5.4, §5.5 give the layouts)
----------------------------------------------------------------------
* Bruker: ``fid`` size >= TD·(4 bytes if DTYPA=0 else 8); a ``ser`` holds
  TD1 rows, each padded to a multiple of 1024 bytes (the TopSpin block
  convention; an unpadded ser of exactly TD1·row bytes is also accepted).
  TopSpin rewrites the fid after every scan (NS only changes the values,
  not the size), so a full-size fid is not yet a finished one: when
  ``audita.txt`` exists (TopSpin writes it when the acquisition ends) the
  acquisition is complete once the sizes are stable for ``settle_s``;
  without it we also wait one scan time (AQ + D1, capped at ``max_scan_wait_s``)
  of silence.
* Spinsolve: ``data.1d`` = 32-byte header + xDim·yDim·zDim·qDim·12 bytes
  (float32 axis + complex64 data, nmrglue's layout).
* BES3T: ``.DTA`` size = XPTS·YPTS·ZPTS·item size (IRFMT D=8, F=4, I=4, S=2,
  C=1) ×2 for IKKF CPLX.
* ESP/WinEPR: ``.spc`` size >= 4·N (N from ANZ, RES or SSX).
* Formats that give no size (XML, JCAMP-DX, CSV) and any descriptor the
  sizes cannot be read from: complete after a quiet period ``quiet_s``
  without change.

"Stable for" is measured by the caller (the watcher tracks how long the size
and mtime signature has been unchanged with a monotonic clock, which is immune
to skew between a file server's clock and ours); the mtime age is used too,
so files already present when the watcher starts are ready at once.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

__all__ = [
    "Acquisition",
    "CompletionCheck",
    "IGNORED_SUFFIXES",
    "acquisition_for",
    "check_complete",
    "discover",
    "expected_size",
    "fingerprint",
    "quick_signature",
    "acquisition_time",
    "sort_key",
]

#: Suffixes (lower case) that are never acquisitions on their own: side files of
#: other formats, notes, logs, temporary names used while a file is written.
IGNORED_SUFFIXES: frozenset[str] = frozenset(
    {
        ".info", ".ygf", ".xgf", ".zgf", ".log", ".md", ".tmp", ".part", ".partial",
        ".swp", ".lock", ".crdownload", ".mpt", ".db", ".sqlite", ".sqlite-wal",
        ".sqlite-shm", ".parquet", ".json", ".toml", ".py", ".pyc", ".png", ".pdf",
    }
)
_SINGLE_FILE_SUFFIXES = {".xml", ".dx", ".jdx", ".jcamp", ".csv", ".txt", ".asc", ".dat"}
_BRUKER_FILES = {
    "acqus", "fid", "ser", "acqu2s", "audita.txt", "acqu", "acqu2",
    # side files TopSpin writes into an expno, often before acqus exists: never
    # acquisitions of their own, always pieces of the expno being created
    "pulseprogram", "format.temp", "scon", "scon2", "uxnmr.par", "uxnmr.info",
    "specpar", "precom.output", "shimvalues", "acqum", "acqums", "acqu2m",
    "acqu2ms", "vdlist", "vclist", "vplist", "vtlist", "fq1list", "fq2list",
    "prosol_History", "cpdprg", "cpdprg2", "gradprogram",
}


@dataclass(frozen=True)
class Acquisition:
    """One acquisition on disk (see the module docstring for the keys).

    Attributes
    ----------
    key : Path
        Expno / Spinsolve folder, BES3T or ESP base path (no suffix), or the file.
    format : str
        ``'bruker'``, ``'bruker-ser'``, ``'spinsolve'``, ``'bes3t'``, ``'esp'``
        or ``'file'`` (single file, format decided by the reader).
    files : tuple of Path
        The files that make it up (those that exist or are expected); their
        bytes define the fingerprint.
    read_path : Path
        What to hand to ``ingest.readers.dispatch.read_rows`` (folder, .DTA, .spc or file).
    """

    key: Path
    format: str
    files: tuple[Path, ...]
    read_path: Path

    @property
    def name(self) -> str:
        return str(self.key)


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


# --------------------------------------------------------------------------- discovery


def _is_ignored(p: Path) -> bool:
    n = p.name
    if n.startswith(".") or n.startswith("~") or n.endswith("~"):
        return True
    return p.suffix.lower() in IGNORED_SUFFIXES


def _bruker(folder: Path) -> Acquisition:
    if (folder / "ser").exists() and not (folder / "fid").exists():
        files = [folder / "acqus", folder / "ser"]
        if (folder / "acqu2s").exists():
            files.insert(1, folder / "acqu2s")
        return Acquisition(folder, "bruker-ser", tuple(files), folder)
    return Acquisition(folder, "bruker", (folder / "acqus", folder / "fid"), folder)


def _sibling(base: Path, suffixes: tuple[str, ...]) -> Path | None:
    for s in suffixes:
        p = base.with_name(base.name + s)
        if p.exists():
            return p
    return None


def acquisition_for(path: str | Path, root: str | Path | None = None) -> Acquisition | None:
    """The acquisition a changed path belongs to (None if it belongs to none).

    Used by the watcher to map a file-system event to a candidate.  A file
    inside a Bruker expno (``acqus``, ``fid``, ``pdata/...``) maps to the expno;
    a ``.DSC`` or ``.DTA`` to its BES3T base; a new folder is left to
    :func:`discover` (returns None).

    Parameters
    ----------
    path : path-like
        File (or folder) that changed.
    root : path-like, optional
        Watched folder; the walk up from ``path`` stops there.
    """
    p = Path(path)
    root_p = Path(root) if root is not None else None
    # walk up looking for an expno / spinsolve folder (pdata/1/1r -> expno)
    cur = p if p.is_dir() else p.parent
    for _ in range(4):
        if root_p is not None and (cur == root_p.parent or len(cur.parts) < len(root_p.parts)):
            break
        if (cur / "acqus").exists() or ((cur / "fid").exists() or (cur / "ser").exists()) and (cur / "acqu").exists():
            return _bruker(cur)
        if (cur / "acqu.par").exists():
            return Acquisition(cur, "spinsolve", (cur / "acqu.par", cur / "data.1d"), cur)
        if root_p is not None and cur == root_p:
            break
        cur = cur.parent
    if p.is_dir() or _is_ignored(p):
        return None
    if p.name in _BRUKER_FILES or p.name in {"acqu.par", "data.1d", "spectrum.1d", "proc.par"}:
        return None  # a Bruker/Spinsolve piece whose parameter file is not there yet
    suf = p.suffix.lower()
    base = p.with_suffix("")
    if suf in (".dsc", ".dta"):
        dsc = _sibling(base, (".DSC", ".dsc")) or base.with_name(base.name + ".DSC")
        dta = _sibling(base, (".DTA", ".dta")) or base.with_name(base.name + (".DTA" if dsc.suffix == ".DSC" else ".dta"))
        return Acquisition(base, "bes3t", (dsc, dta), dta)
    if suf in (".par", ".spc"):
        par = _sibling(base, (".par", ".PAR")) or base.with_name(base.name + ".par")
        spc = _sibling(base, (".spc", ".SPC")) or base.with_name(base.name + ".spc")
        return Acquisition(base, "esp", (par, spc), spc)
    if not p.exists() and suf not in _SINGLE_FILE_SUFFIXES:
        return None
    return Acquisition(p, "file", (p,), p)


def discover(folder: str | Path) -> list[Acquisition]:
    """All acquisitions (complete or not) under ``folder``, recursively.

    A folder that is a Bruker expno or a Spinsolve experiment is one
    acquisition and is not descended into.  Hidden, temporary and side files
    (:data:`IGNORED_SUFFIXES`) are left out.  Order: by path (use
    :func:`acquisition_time` to sort by time).

    Raises
    ------
    FileNotFoundError
        If ``folder`` does not exist.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{root}: folder does not exist")
    if root.is_file():
        a = acquisition_for(root)
        return [a] if a is not None else []
    out: dict[Path, Acquisition] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        names = set(filenames)
        if "acqus" in names or (("fid" in names or "ser" in names) and "acqu" in names):
            out[d] = _bruker(d)
            dirnames[:] = []
            continue
        if "acqu.par" in names:
            out[d] = Acquisition(d, "spinsolve", (d / "acqu.par", d / "data.1d"), d)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(x for x in dirnames if not x.startswith("."))
        for n in sorted(filenames):
            p = d / n
            if _is_ignored(p) or n in _BRUKER_FILES or n in {"data.1d", "spectrum.1d", "proc.par"}:
                continue
            a = acquisition_for(p, root)
            if a is not None and a.key not in out:
                out[a.key] = a
    return sorted(out.values(), key=lambda a: str(a.key))


# --------------------------------------------------------------------------- headers


_JCAMP_RE = re.compile(r"^##\$?([A-Za-z0-9_]+)=\s*(.*)$")


_PARAM_CACHE: dict[tuple[str, str], tuple[tuple[int, int], dict[str, str]]] = {}


def _cached(kind: str, path: Path, parse) -> dict[str, str]:
    """Parse a parameter file once per (size, mtime): the watcher asks about the
    same headers many times while an acquisition settles."""
    st = path.stat()
    key = (kind, str(path))
    stamp = (st.st_size, st.st_mtime_ns)
    hit = _PARAM_CACHE.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    val = parse(path)
    if len(_PARAM_CACHE) > 20000:
        _PARAM_CACHE.clear()
    _PARAM_CACHE[key] = (stamp, val)
    return val


def _jcamp_params(path: Path) -> dict[str, str]:
    return _cached("jcamp", path, _parse_jcamp)


def _space_params(path: Path) -> dict[str, str]:
    return _cached("space", path, _parse_space)


def _parse_jcamp(path: Path) -> dict[str, str]:
    """``##$KEY= value`` pairs of a TopSpin parameter file; array values
    (``(0..63)`` followed by lines of numbers) are joined onto one line."""
    out: dict[str, str] = {}
    key: str | None = None
    with open(path, "r", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            m = _JCAMP_RE.match(line)
            if m:
                key = m.group(1).upper()
                out[key] = m.group(2).strip()
            elif line.startswith("$$") or line.startswith("##"):
                key = None
            elif key is not None and line:
                out[key] += " " + line
    return out


def _parse_space(path: Path) -> dict[str, str]:
    """KEY value lines (BES3T .DSC, ESP .par with CR or LF endings, Spinsolve a = b)."""
    text = path.read_bytes().decode("latin-1")
    out: dict[str, str] = {}
    for line in re.split(r"[\r\n]+", text):
        line = line.strip()
        if not line or line[0] in "*#":
            continue
        if re.match(r"^[\w.]+\s*=", line):
            k, _, v = line.partition("=")
        else:
            parts = line.split(None, 1)
            k, v = parts[0], parts[1] if len(parts) > 1 else ""
        out.setdefault(k.strip(), v.strip().strip('"').strip("'"))
    return out


def _int(d: dict[str, str], key: str) -> int | None:
    try:
        return int(float(d[key]))
    except (KeyError, ValueError):
        return None


def _float(d: dict[str, str], key: str) -> float | None:
    try:
        return float(d[key])
    except (KeyError, ValueError):
        return None


def expected_size(acq: Acquisition) -> int | None:
    """Bytes the header promises for the data file, or None when unknown.

    Parameters
    ----------
    acq : Acquisition

    Returns
    -------
    int or None
        Minimum complete size of the data file (fid/ser, data.1d, .DTA, .spc),
        None when the parameter file is missing, unreadable or lacks the keys,
        or the format gives no size.
    """
    try:
        if acq.format in ("bruker", "bruker-ser"):
            par = _jcamp_params(acq.key / "acqus")
            td = _int(par, "TD")
            if td is None:
                return None
            item = 8 if _int(par, "DTYPA") == 2 else 4
            row = td * item
            if acq.format == "bruker":
                return row
            p2 = acq.key / "acqu2s"
            td1 = _int(_jcamp_params(p2), "TD") if p2.exists() else None
            if td1 is None:
                return None
            return td1 * (math.ceil(row / 1024) * 1024)
        if acq.format == "spinsolve":
            data = acq.key / "data.1d"
            with open(data, "rb") as fh:
                head = fh.read(32)
            if len(head) < 32:
                return None
            dims = [int.from_bytes(head[i : i + 4], "little") for i in range(16, 32, 4)]
            n = 1
            for x in dims:
                n *= max(x, 1)
            return 32 + 12 * n
        if acq.format == "bes3t":
            dsc = acq.files[0]
            par = _space_params(dsc)
            n = 1
            for k in ("XPTS", "YPTS", "ZPTS"):
                v = _int(par, k)
                if k == "XPTS" and v is None:
                    return None
                n *= v if v else 1
            fmt = par.get("IRFMT", "D").split(",")[0].strip().upper()[:1]
            item = {"D": 8, "F": 4, "I": 4, "S": 2, "C": 1}.get(fmt)
            if item is None:
                return None
            if par.get("IKKF", "REAL").split(",")[0].strip().upper() == "CPLX":
                item *= 2
            return n * item
        if acq.format == "esp":
            par = _space_params(acq.files[0])
            for k in ("ANZ", "RES", "SSX"):
                v = _int(par, k)
                if v:
                    return 4 * v
            return None
    except OSError:
        return None
    return None


def _data_file(acq: Acquisition) -> Path:
    if acq.format == "bruker":
        return acq.key / "fid"
    if acq.format == "bruker-ser":
        return acq.key / "ser"
    if acq.format == "spinsolve":
        return acq.key / "data.1d"
    if acq.format in ("bes3t", "esp"):
        return acq.files[1]
    return acq.key


def _scan_time_s(acq: Acquisition) -> float | None:
    """One scan (AQ + D1) of a Bruker acquisition, s; None if unknown."""
    try:
        par = _jcamp_params(acq.key / "acqus")
    except OSError:
        return None
    td, swh = _float(par, "TD"), _float(par, "SW_H")
    if not td or not swh:
        return None
    d1 = 0.0
    m = re.match(r"^\(0\.\.\d+\)\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)", par.get("D", ""))
    if m:
        d1 = float(m.group(2))
    return td / (2.0 * swh) + d1


# --------------------------------------------------------------------------- signatures


def quick_signature(acq: Acquisition) -> tuple[tuple[str, int, int], ...]:
    """(name, size in bytes, mtime in ns) of every file that exists: cheap, no hashing.

    A change of signature means the acquisition is still being written.
    """
    out = []
    extra = [acq.key / "audita.txt"] if acq.format.startswith("bruker") else []
    for f in (*acq.files, *extra):
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((f.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def fingerprint(acq: Acquisition) -> tuple[str, list[dict]]:
    """Content fingerprint of an acquisition.

    Returns
    -------
    fp : str
        sha256 (hex) over the names and the sha256 of every data file, so the
        same bytes always give the same key whatever the mtime or folder.
    files : list of dict
        Manifest entries ``{'path', 'size', 'mtime', 'mtime_ns', 'sha256'}``
        per file (mtime in s since the epoch, mtime_ns in integer ns).

    Raises
    ------
    OSError
        If a file disappears while hashed.
    """
    h = hashlib.sha256()
    files = []
    for f in acq.files:
        if not f.exists():
            continue
        fh = hashlib.sha256()
        st = f.stat()
        with open(f, "rb") as fd:
            for chunk in iter(lambda: fd.read(1 << 20), b""):
                fh.update(chunk)
        digest = fh.hexdigest()
        h.update(f.name.encode())
        h.update(b"\0")
        h.update(digest.encode())
        files.append({"path": str(f), "size": st.st_size, "mtime": st.st_mtime, "mtime_ns": st.st_mtime_ns,
                      "sha256": digest})
    return h.hexdigest(), files


# --------------------------------------------------------------------------- completion


def check_complete(
    acq: Acquisition,
    stable_for_s: float,
    *,
    settle_s: float = 1.0,
    quiet_s: float = 3.0,
    max_scan_wait_s: float = 30.0,
    now: float | None = None,
) -> CompletionCheck:
    """Is this acquisition complete?

    Parameters
    ----------
    acq : Acquisition
    stable_for_s : float
        How long (s) the :func:`quick_signature` has been unchanged, as
        measured by the caller (``math.inf`` for a batch of finished files).
    settle_s : float
        Required stability once the data file has its full size, s.
    quiet_s : float
        Required stability for formats that give no size, s.
    max_scan_wait_s : float
        Cap on the extra silence required for a Bruker expno without
        ``audita.txt`` (one scan time AQ + D1), s.
    now : float, optional
        Wall-clock time (``time.time()``); the age of the newest mtime counts as
        stability too.

    Returns
    -------
    CompletionCheck
    """
    now = time.time() if now is None else now
    missing = [f.name for f in acq.files if not f.exists()]
    data = _data_file(acq)
    try:
        st = data.stat()
        actual: int | None = st.st_size
    except OSError:
        actual = None
    if missing:
        return CompletionCheck(False, f"waiting for {', '.join(missing)}", None, actual, True)
    mtimes = []
    for f in acq.files:
        try:
            mtimes.append(f.stat().st_mtime)
        except OSError:
            return CompletionCheck(False, f"{f.name} vanished", None, actual, True)
    age = max(0.0, now - max(mtimes))
    stable = max(stable_for_s, age)
    exp = expected_size(acq)
    if exp is None:
        need = quiet_s
        if stable < need:
            return CompletionCheck(False, f"no size known; quiet for {stable:.2f} s < {need} s", None, actual, True)
        return CompletionCheck(True, "complete (quiet period)", None, actual, True)
    assert actual is not None
    if actual < exp:
        ok = False
        if acq.format == "bruker-ser":  # also accept an unpadded ser of exactly TD1 rows
            par = _jcamp_params(acq.key / "acqus")
            row = (_int(par, "TD") or 0) * (8 if _int(par, "DTYPA") == 2 else 4)
            td1 = exp // max(math.ceil(row / 1024) * 1024, 1)
            ok = row > 0 and actual == td1 * row
        if not ok:
            return CompletionCheck(False, f"{data.name} holds {actual} of {exp} bytes", exp, actual, True)
    need = settle_s
    if acq.format.startswith("bruker") and not (acq.key / "audita.txt").exists():
        scan = _scan_time_s(acq)
        need = max(settle_s, min(1.5 * scan, max_scan_wait_s)) if scan else max(settle_s, quiet_s)
    if stable < need:
        return CompletionCheck(False, f"full size, settling ({stable:.2f} s < {need:.2f} s)", exp, actual, False)
    return CompletionCheck(True, "complete", exp, actual, False)


# --------------------------------------------------------------------------- ordering


_DSC_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{2,4})$")


def acquisition_time(acq: Acquisition) -> float:
    """Cheap acquisition time (s since the epoch) for ordering, from headers.

    Bruker ``DATE`` (epoch s), Spinsolve ``startTime``, BES3T ``DATE``+``TIME``;
    falls back to the newest mtime of the files.  Only used to order work; the
    table's times come from the readers.
    """
    try:
        if acq.format.startswith("bruker"):
            d = _float(_jcamp_params(acq.key / "acqus"), "DATE")
            if d:
                return d
        elif acq.format == "spinsolve":
            par = _space_params(acq.key / "acqu.par")
            s = par.get("startTime")
            if s:
                t = datetime.fromisoformat(s)
                if t.tzinfo is None:
                    t = t.replace(tzinfo=timezone.utc)
                return t.timestamp()
        elif acq.format == "bes3t":
            par = _space_params(acq.files[0])
            m = _DSC_DATE.match(par.get("DATE", ""))
            if m and par.get("TIME"):
                mm, dd, yy = int(m.group(1)), int(m.group(2)), int(m.group(3))
                yy = yy + 2000 if yy < 100 else yy
                hh, mi, ss = (int(float(x)) for x in par["TIME"].split(":"))
                return datetime(yy, mm, dd, hh, mi, ss, tzinfo=timezone.utc).timestamp()
    except (OSError, ValueError):
        pass
    mt = []
    for f in acq.files:
        try:
            mt.append(f.stat().st_mtime)
        except OSError:
            pass
    return max(mt) if mt else math.inf


def _natural_key(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def sort_key(acq: Acquisition) -> tuple:
    """Sort key: acquisition time, then natural path order (expno 2 before 10)."""
    return (acquisition_time(acq), _natural_key(str(acq.key)))
