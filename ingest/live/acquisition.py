"""What an acquisition on disk is: its files, and which acquisition a changed path belongs to.

:class:`Acquisition` (one per key: a Bruker expno, a Spinsolve folder, a BES3T or ESP base
path, or a single file; the table is in :mod:`ingest.live.completion`), :func:`acquisition_for`
(the watcher maps every file-system event to its acquisition with it) and :func:`discover`
(every acquisition under a folder).  Pure functions of what is on disk; whether an acquisition
is complete is :func:`ingest.live.completion.check_complete`'s question.  Re-exported by
:mod:`ingest.live.completion`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePath

from ingest.readers import bruker, spinsolve

__all__ = ["IGNORED_SUFFIXES", "Acquisition", "acquisition_for", "discover"]

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
_BRUKER_FILES = bruker.PARAM_FILES
_SPINSOLVE_FILES = spinsolve.DATA_FILES


@dataclass(frozen=True)
class Acquisition:
    """One acquisition on disk (the keys: the table in :mod:`ingest.live.completion`).

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

    @cached_property
    def signature_paths(self) -> tuple[tuple[str, str], ...]:
        """(name, string path) of each file :func:`ingest.live.signature.quick_signature` looks at: the files, and
        for Bruker the closing file ``audita.txt``; made once per acquisition (the watcher
        asks for the signature several times a file)."""
        out = tuple((f.name, str(f)) for f in self.files)
        if self.format.startswith("bruker"):
            out += ((bruker.CLOSING_FILE, os.path.join(str(self.key), bruker.CLOSING_FILE)),)
        return out

    @cached_property
    def data_file(self) -> Path:
        """The file whose size the header declares (fid/ser, data.1d, .DTA, .spc, the file)."""
        return _data_file(self)


# --------------------------------------------------------------------------- discovery


def _is_ignored(p: Path) -> bool:
    n = p.name
    if n.startswith((".", "~")) or n.endswith("~"):
        return True
    return p.suffix.lower() in IGNORED_SUFFIXES


def _bruker(folder: Path | str) -> Acquisition:
    """The expno's Acquisition (``folder`` a Path, or the string of a normalised Path).

    The same object for the same folder and layout (:data:`_EXPNOS`): the watcher maps
    every event path to its expno (~6 per spectrum), and the Path objects of a new one cost
    ~5 us each; an Acquisition is immutable, its layout (fid, or ser with or without acqu2s)
    is looked at on every call."""
    fs = str(folder)
    f = fs + os.sep
    if os.path.exists(f + "ser") and not os.path.exists(f + "fid"):
        layout = "ser+2s" if os.path.exists(f + "acqu2s") else "ser"
    else:
        layout = "fid"
    hit = _EXPNOS.get((fs, layout))
    if hit is not None:
        return hit
    folder = folder if isinstance(folder, Path) else Path(folder)
    if layout == "fid":
        acq = Acquisition(folder, "bruker", (folder / "acqus", folder / "fid"), folder)
    else:
        files = [folder / "acqus", folder / "ser"]
        if layout == "ser+2s":
            files.insert(1, folder / "acqu2s")
        acq = Acquisition(folder, "bruker-ser", tuple(files), folder)
    if len(_EXPNOS) >= 4096:
        _EXPNOS.clear()
    _EXPNOS[(fs, layout)] = acq
    return acq


#: Acquisitions of expnos by (folder string, layout), made once (see :func:`_bruker`).
_EXPNOS: dict[tuple[str, str], Acquisition] = {}


def _holds_expno(d: str) -> bool:
    """``d`` (a folder path ending in the separator) is a Bruker expno: ``acqus``, or
    ``fid``/``ser`` with ``acqu``.  String paths: one stat each, no Path objects."""
    ex = os.path.exists
    return ex(d + "acqus") or (ex(d + "fid") or ex(d + "ser")) and ex(d + "acqu")


def _sibling(base: Path, suffixes: tuple[str, ...]) -> Path | None:
    for s in suffixes:
        p = base.with_name(base.name + s)
        if os.path.exists(p):
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
    hit = _walk_up(path, root)
    if isinstance(hit, Acquisition):
        return hit
    p = Path(path)
    root_p = Path(root) if root is not None else None
    is_dir = os.path.isdir(p)
    # walk up looking for an expno / spinsolve folder (pdata/1/1r -> expno); the watcher asks
    # for every path an event names (~6 per expno), so the checks are on strings
    cur = p if is_dir else p.parent
    stop_depth = len(root_p.parts) if root_p is not None else 0
    for _ in range(0 if hit is _WALKED else 4):
        if root_p is not None and (cur == root_p.parent or len(cur.parts) < stop_depth):
            break
        d = str(cur) + os.sep
        if _holds_expno(d):
            return _bruker(cur)
        if os.path.exists(d + "acqu.par"):
            return Acquisition(cur, "spinsolve", (cur / "acqu.par", cur / "data.1d"), cur)
        if root_p is not None and cur == root_p:
            break
        cur = cur.parent
    if is_dir or _is_ignored(p):
        return None
    if p.name in _BRUKER_FILES or p.name in _SPINSOLVE_FILES:
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


def _nparts(s: str) -> int:
    """``len(Path(s).parts)`` of a normalised absolute path string not starting ``//``."""
    return 1 if s == "/" else s.count("/") + 1


#: :func:`_walk_up` looked and found no expno or Spinsolve folder.
_WALKED = object()


def _walk_up(path: str | Path, root: str | Path | None) -> object:
    """The walk up of :func:`acquisition_for` on strings (the watcher asks for every path an
    event names, ~6 per spectrum): the expno's or Spinsolve folder's Acquisition,
    :data:`_WALKED` when there is none, or None when not looked at here (paths that are not
    absolute, a ``//`` prefix, Windows: the Path walk decides)."""
    sp = str(path) if isinstance(path, PurePath) else str(Path(path))
    if sp[:1] != "/" or sp[:2] == "//" or os.sep != "/":
        return None
    if root is not None:
        rs = str(root) if isinstance(root, PurePath) else str(Path(root))
        if rs[:1] != "/" or rs[:2] == "//":
            return None
        rparent = os.path.dirname(rs) or "/"
        stop_depth = _nparts(rs)
    else:
        rs = rparent = None
        stop_depth = 0
    cur = sp if os.path.isdir(sp) else (os.path.dirname(sp) or "/")
    ex = os.path.exists
    for _ in range(4):
        if rs is not None and (cur == rparent or _nparts(cur) < stop_depth):
            return _WALKED
        d = cur if cur == "/" else cur + "/"
        if ex(d + "acqus") or (ex(d + "fid") or ex(d + "ser")) and ex(d + "acqu"):  # _holds_expno
            return _bruker(cur)
        if os.path.exists(d + "acqu.par"):
            c = Path(cur)
            return Acquisition(c, "spinsolve", (c / "acqu.par", c / "data.1d"), c)
        if rs is not None and cur == rs:
            return _WALKED
        cur = os.path.dirname(cur) or "/"
    return _WALKED


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
        if "acqu.par" in names or ("data.1d" in names and spinsolve.has_magic(d / "data.1d")):
            # a Spinsolve folder without acqu.par is still one: listed, so the
            # batch reports it as incomplete instead of dropping it silently
            out[d] = Acquisition(d, "spinsolve", (d / "acqu.par", d / "data.1d"), d)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(x for x in dirnames if not x.startswith("."))
        for n in sorted(filenames):
            p = d / n
            if _is_ignored(p) or n in _BRUKER_FILES or n in _SPINSOLVE_FILES:
                continue
            a = acquisition_for(p, root)
            if a is not None and a.key not in out:
                out[a.key] = a
    return sorted(out.values(), key=lambda a: str(a.key))


def _data_file(acq: Acquisition) -> Path:
    if acq.format in ("bruker", "bruker-ser") and acq.files[-1].name in ("fid", "ser"):
        return acq.files[-1]  # key / "fid" or key / "ser" (see _bruker), already made
    if acq.format == "bruker":
        return acq.key / "fid"
    if acq.format == "bruker-ser":
        return acq.key / "ser"
    if acq.format == "spinsolve":
        return acq.key / "data.1d"
    if acq.format in ("bes3t", "esp"):
        return acq.files[1]
    return acq.key
