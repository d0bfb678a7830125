"""Signatures of an acquisition's files: cheap (size, mtime) and content (sha256).

:func:`quick_signature` says whether an acquisition is still being written (any change of
a file's size or mtime); :func:`fingerprint` is the key under which the store keeps its
bytes exactly once (:class:`ingest.live.store.Store`).  Both are re-exported by
:mod:`ingest.live.completion`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ingest.readers import bruker

if TYPE_CHECKING:
    from ingest.live.completion import Acquisition

__all__ = ["fingerprint", "quick_signature"]



def quick_signature(acq: Acquisition) -> tuple[tuple[str, int, int], ...]:
    """(name, size in bytes, mtime in ns) of every file that exists: cheap, no hashing.

    A change of signature means the acquisition is still being written.
    """
    out = []
    extra = [acq.key / bruker.CLOSING_FILE] if acq.format.startswith("bruker") else []
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
