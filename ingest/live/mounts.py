"""Is a folder on a network share?  (The watcher then polls: change notifications are unreliable there.)"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["NETWORK_FS", "is_network_path"]

#: File-system types treated as network mounts (polling observer).
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "sshfs", "fuse.sshfs", "9p", "afs", "davfs",
     "fuse.davfs2", "ncpfs", "glusterfs", "fuse.glusterfs", "ceph", "fuse.rclone", "fuse.s3fs", "vboxsf", "drvfs"}
)


def is_network_path(path: str | Path, mounts_file: str | Path = "/proc/mounts") -> bool:
    """Heuristic: does ``path`` live on a network share?

    True for UNC-like paths (``//server``, ``\\\\server``), paths under
    ``/mnt/``, and paths whose longest matching mount point in ``/proc/mounts``
    has a network file-system type (:data:`NETWORK_FS`).
    """
    s = str(path)
    if s.startswith("//") or s.startswith("\\\\") or s == "/mnt" or s.startswith("/mnt/"):
        return True
    try:
        real = os.path.realpath(s)
        best, fstype = "", ""
        with open(mounts_file) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mp = parts[1].replace("\\040", " ")
                if (real == mp or real.startswith(mp.rstrip("/") + "/")) and len(mp) > len(best):
                    best, fstype = mp, parts[2]
        return fstype.lower() in NETWORK_FS
    except OSError:
        return False
