"""Signatures of an acquisition's files: cheap (size, mtime) and content (sha256).

:func:`quick_signature` says whether an acquisition is still being written (any change of
a file's size or mtime); :func:`fingerprint` is the key under which the store keeps its
bytes exactly once (:class:`ingest.live.store.Store`).  Both are re-exported by
:mod:`ingest.live.completion`.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.live.completion import Acquisition

__all__ = ["FingerprintThread", "fingerprint", "quick_signature"]


def quick_signature(acq: Acquisition) -> tuple[tuple[str, int, int], ...]:
    """(name, size in bytes, mtime in ns) of every file that exists: cheap, no hashing.

    A change of signature means the acquisition is still being written.  One ``os.stat``
    per file on its string path (pathlib's ``Path.stat`` adds ~5 us a call; the watcher
    asks several times per acquisition).
    """
    out = []
    for name, f in acq.signature_paths:  # the files (+ Bruker's closing file), as strings, made once
        try:
            st = os.stat(f)
        except OSError:
            continue
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def fingerprint(acq: Acquisition) -> tuple[str, list[dict]]:
    """Content fingerprint of an acquisition.

    The hash is sha256, kept on purpose: it is the key the store's manifest already holds
    (a different hash would give the same bytes a new key, so an acquisition stored before
    would be stored again), and on CPUs with SHA extensions (x86 SHA-NI, ARMv8) OpenSSL's
    sha256 is the fastest hash in :mod:`hashlib`: 0.21 ms for a 64k-point fid (256 kB),
    against 0.48 ms for blake2b and 0.53 ms for md5 (benchmarks/bench_watcher.py machine).
    Each file is stat'ed once and, up to 16 MiB, read in one call.

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
        try:
            st = os.stat(f)
        except FileNotFoundError:
            continue
        digest = _file_sha256(f, st.st_size)
        h.update(f.name.encode())
        h.update(b"\0")
        h.update(digest.encode())
        files.append({"path": str(f), "size": st.st_size, "mtime": st.st_mtime, "mtime_ns": st.st_mtime_ns,
                      "sha256": digest})
    return h.hexdigest(), files


def _file_sha256(path: Path, size: int) -> str:
    """sha256 (hex) of a file's bytes: read whole when small (one syscall), else in 1 MiB chunks."""
    fh = hashlib.sha256()
    with open(path, "rb") as fd:
        if size <= _WHOLE_READ_BYTES:
            fh.update(fd.read())  # everything, even if the file grew since the stat
        else:
            for chunk in iter(lambda: fd.read(1 << 20), b""):
                fh.update(chunk)
    return fh.hexdigest()


#: Files up to this size (bytes) are hashed from one read (a 1D fid is 256 kB-2 MB).
_WHOLE_READ_BYTES = 16 << 20


class FingerprintThread:
    """:func:`fingerprint` on a helper thread while the caller reads and extracts the spectra.

    The live watcher (:class:`ingest.live.watch.Watcher`) starts the hash of an acquisition
    and reads it at the same time: file reads and OpenSSL's sha256 release the GIL, so on two
    cores the fingerprint (~0.6 ms for a 64k-point fid with its parameter files) leaves the
    path from a finished file to its SOC row (issue 13).  The thread is made on first use.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, acq: Acquisition) -> Future:
        """Start ``fingerprint(acq)``; ``.result()`` gives ``(fp, files)`` or raises its OSError."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint")
        return self._pool.submit(fingerprint, acq)

    def close(self) -> None:
        """Let the thread end (after the hash in hand)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
