"""What a folder holds, before anything is read: spectra, potentiostat logs, spin standards.

``flowcell ingest``, ``flowcell fit`` and the live watcher share these rules:

* a **spin standard** (the EPR calibration sample) is never ingested as a sample: anything
  inside a folder named ``standard`` or ``standards`` (below the folder given), or at or
  under a path named as the standard (``[instruments] epr_standard``);
* a **potentiostat log** (EC-Lab ``.mpr``/``.mpt``, or a CSV/TXT whose header names a time
  and a current column) is not a spectrum: it is listed, never skipped silently, and read
  by ``flowcell.potentiostat`` when asked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.live.completion import Acquisition, discover, sort_key

__all__ = ["STANDARD_FOLDERS", "Selection", "is_spin_standard", "looks_like_potentiostat_log",
           "select_acquisitions"]

#: Folder names whose content is a spin standard, not a sample (case-insensitive).
STANDARD_FOLDERS = ("standard", "standards")

_TIME_NAMES = {"time_s", "t_s", "time/s", "time_min", "time_h"}
_CURRENT_NAMES = {"current_a", "i_a", "i/a", "current_ma", "i_ma", "i/ma", "current_ua", "i/ua"}


def looks_like_potentiostat_log(path: str | Path) -> bool:
    """EC-Lab ``.mpr``/``.mpt``, or a CSV/TXT whose first non-comment line names a time and a current."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".mpr", ".mpt"):
        return True
    if suffix not in (".csv", ".txt"):
        return False
    try:
        with open(p, encoding="utf-8", errors="replace") as fh:
            for _, line in zip(range(200), fh):
                if line.startswith("#") or not line.strip():
                    continue
                names = {n.strip().lower() for n in line.split(",")}
                return bool(names & _TIME_NAMES) and bool(names & _CURRENT_NAMES)
    except OSError:
        return False
    return False


def is_spin_standard(path: str | Path, root: str | Path | None = None, standards: Iterable[str | Path] = ()) -> bool:
    """True for a path inside a ``standard/`` folder below ``root``, or at/under one of ``standards``.

    Paths are compared resolved (symbolic links followed), as strings: the watcher asks
    once per acquisition, and ``Path.resolve``/``relative_to`` cost ~0.3 ms a call there.
    """
    p = os.path.realpath(path)
    for s in standards:
        if s is None:
            continue
        s = os.path.realpath(s)
        if p == s or _under(p, s) or _without_suffix(p) == _without_suffix(s):
            return True
    if root is None:
        return False
    r = os.path.realpath(root)
    if not (p == r or _under(p, r)):
        return False
    parts = [x for x in p[len(r):].split(os.sep) if x]
    return any(part.lower() in STANDARD_FOLDERS for part in parts[:-1] or parts)


def _without_suffix(p: str) -> str:
    """``str(Path(p).with_suffix(""))`` for a resolved path (pathlib's rule for a suffix)."""
    head, name = os.path.split(p)
    i = name.rfind(".")
    return os.path.join(head, name[:i]) if 0 < i < len(name) - 1 else p


def _under(p: str, folder: str) -> bool:
    """``p`` lies strictly below ``folder`` (both resolved)."""
    return p.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass
class Selection:
    """What :func:`select_acquisitions` found.

    Attributes
    ----------
    spectra : list of Acquisition
        NMR/EPR acquisitions to ingest, in acquisition order.
    potentiostat : list of Path
        Potentiostat logs (not spectra).
    standards : list of Path
        Spin-standard acquisitions left out.
    """

    spectra: list[Acquisition] = field(default_factory=list)
    potentiostat: list[Path] = field(default_factory=list)
    standards: list[Path] = field(default_factory=list)

    def listing(self) -> list[str]:
        """Lines for a terminal: the potentiostat logs and the standards, one per line."""
        out = [f"potentiostat log (not a spectrum): {p}" for p in self.potentiostat]
        out += [f"spin standard (not ingested as a sample): {p}" for p in self.standards]
        return out


def _potentiostat_files(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for n in sorted(filenames):
            p = Path(dirpath) / n
            if not n.startswith(".") and looks_like_potentiostat_log(p):
                found.append(p)
    return found


def select_acquisitions(path: str | Path, *, standards: Iterable[str | Path | None] = ()) -> Selection:
    """Sort what ``path`` (a folder, or one file or acquisition) holds into spectra, logs and standards.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder")
    std = [s for s in standards if s is not None]
    sel = Selection()
    logs = [root] if root.is_file() and looks_like_potentiostat_log(root) else (
        _potentiostat_files(root) if root.is_dir() else [])
    sel.potentiostat = logs
    log_set = {p.resolve() for p in logs}
    for a in sorted(discover(root), key=sort_key):
        if a.read_path.resolve() in log_set:
            continue
        if is_spin_standard(a.key, root if root.is_dir() else None, std):
            sel.standards.append(a.key)
            continue
        sel.spectra.append(a)
    return sel
