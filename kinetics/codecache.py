"""On-disk cache of generated kinetics code: a known network compiles without sympy work.

One JSON file per network structure, named by the sha256 of the network's
:meth:`~kinetics.network.Network.fingerprint` (its canonical text without parameter
defaults), the package version, the code generator's own source (with network.py,
reaction.py and the sympy version) and :data:`SCHEMA`.  It holds the generated function
sources (:mod:`kinetics.emit`), the stoichiometric and slow-variable matrices, the
fast-equilibrium blocks and the rate expressions as text.  Numba's compiled machine
code (when the ``fast`` extra is installed) is cached by numba itself next to the
generated sources (``<cache>/kinetics/numba/``).

Where: ``$FLOWCELL_CACHE_DIR/kinetics`` if set (``FLOWCELL_CACHE_DIR=off`` disables the
disk cache), else the user cache folder (``$XDG_CACHE_HOME/flowcell`` or
``~/.cache/flowcell`` on Linux, ``~/Library/Caches/flowcell`` on macOS,
``%LOCALAPPDATA%\\flowcell\\Cache`` on Windows).

Writes are atomic (a temporary file renamed over the entry), so concurrent processes
(screening workers) never read half an entry; an unreadable or inconsistent entry is
ignored (and rewritten by the next compile).  The cache can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import sympy as sp

from kinetics import __version__

__all__ = ["SCHEMA", "cache_dir", "entry_key", "load", "store", "package_version"]

#: Bump when the layout or meaning of an entry changes.
SCHEMA = 1
ENV = "FLOWCELL_CACHE_DIR"


def package_version() -> str:
    """Version of the installed distribution (:data:`kinetics.__version__`)."""
    return __version__


def cache_dir() -> Path | None:
    """Folder of the kinetics code cache, or None when disabled (``FLOWCELL_CACHE_DIR=off``)."""
    env = os.environ.get(ENV)
    if env is not None and env.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    if env:
        root = Path(env).expanduser()
    elif sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "flowcell" / "Cache"
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches" / "flowcell"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flowcell"
    return root / "kinetics"


@lru_cache(maxsize=1)
def _generator_hash() -> str:
    """sha256 of every source the generated code depends on (kinetics/codegen.py, emit.py,
    blocks.py, codecache.py, and network.py / reaction.py, which give reactions their rate
    laws, stoichiometry and electron counts) and of the sympy version (printer, cse): an
    edited generator (a development tree, a patch release) never reuses old entries."""
    h = hashlib.sha256(f"sympy={sp.__version__}\n".encode())
    here = Path(__file__).resolve().parent
    for name in ("codegen.py", "emit.py", "blocks.py", "codecache.py", "network.py", "reaction.py"):
        try:
            h.update((here / name).read_bytes())
        except OSError:  # a zipped install: the package version still keys the entry
            h.update(name.encode())
    return h.hexdigest()


def entry_key(fingerprint: str) -> str:
    """Cache key of a network structure: sha256 of its fingerprint, the package version, the
    generator's source hash and :data:`SCHEMA`."""
    text = f"{fingerprint}\n{package_version()}\n{_generator_hash()}\nschema={SCHEMA}"
    return hashlib.sha256(text.encode()).hexdigest()


def _path(key: str) -> Path | None:
    d = cache_dir()
    return None if d is None else d / f"{key}.json"


def load(key: str) -> dict[str, Any] | None:
    """The cached entry ``key`` (a dict), or None if absent, disabled, unreadable or inconsistent."""
    p = _path(key)
    if p is None:
        return None
    try:
        entry = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or entry.get("schema") != SCHEMA \
            or not isinstance(entry.get("data"), dict):
        return None
    return entry["data"]


def store(key: str, data: dict[str, Any]) -> Path | None:
    """Write entry ``key`` atomically; returns its path (None if disabled or not writable)."""
    p = _path(key)
    if p is None:
        return None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=p.name, suffix=".tmp", dir=p.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"schema": SCHEMA, "key": key, "version": package_version(), "data": data}, fh)
        os.replace(tmp, p)
        return p
    except OSError:  # read-only home, full disk: the in-memory cache still works
        try:
            os.unlink(tmp)  # type: ignore[possibly-undefined]
        except (OSError, NameError):
            pass
        return None
