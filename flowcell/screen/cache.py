"""Screen cache: keys of reprocessed tables and fits, and the JSON files that hold them.

Stdlib only (imported by ``flowcell screen --help``).  Keys are sha256 of the raw-file
fingerprints (relative path, size, ``mtime_ns`` or the content sha256), the config texts,
the package version and :data:`CACHE_SCHEMA`; see :mod:`flowcell.screen.run`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from flowcell import __version__

__all__ = ["CACHE_SCHEMA", "DEFAULT_FREE", "package_version", "ingest_key", "fit_key", "load_config"]

#: Bump when the cached content changes meaning (invalidates every cache).
CACHE_SCHEMA = 2
#: Default free parameters of a per-experiment fit (same as ``flowcell fit``).
DEFAULT_FREE: tuple[str, ...] = ("Kc", "k_dec", "J_e")
SECONDS_PER_DAY = 86400.0

# ============================================================================ small helpers
def package_version() -> str:
    """Version of the installed distribution (:data:`flowcell.__version__`)."""
    return __version__


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fingerprints(paths: Iterable[Path | None], root: Path, content_hash: bool) -> list[list[Any]]:
    """Sorted ``[relative path, size, mtime_ns or sha256]`` of every file under ``paths``."""
    out: list[list[Any]] = []
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        files = [p] if p.is_file() else (sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [])
        for f in files:
            st = f.stat()
            try:
                rel = str(f.resolve().relative_to(root.resolve()))
            except ValueError:
                rel = str(f.resolve())
            out.append([rel, int(st.st_size), _file_sha(f) if content_hash else int(st.st_mtime_ns)])
    if not out and paths:
        out.append(["<missing>", 0, 0])
    return sorted(out)


def _text(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return f"<unreadable {path}>"


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    from kinetics.fit import jsonable  # lazy: numpy, only when a result is written

    tmp.write_text(json.dumps(jsonable(obj, nan_to_none=False), indent=1, allow_nan=True), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_config(config_path: str | Path) -> Any:
    from flowcell.config import (
        ExperimentConfig,  # lazy: numpy (this module serves --help)
    )
    return ExperimentConfig.from_toml(config_path)


def _raw_dirs(cfg: Any) -> list[Path]:
    return [Path(d) for d in (cfg.instruments.nmr_dir, cfg.instruments.epr_dir) if d is not None]


def ingest_key(config_path: str | Path, *, content_hash: bool = False) -> str:
    """Cache key of an experiment's reprocessed table.

    sha256 of: the raw-file fingerprints under ``nmr_dir`` and ``epr_dir`` (relative
    path, size, ``mtime_ns`` or content sha256), the experiment TOML text, the
    observables TOML text (when referenced), the package version and
    :data:`CACHE_SCHEMA`.
    """
    cfg = load_config(config_path)
    folder = Path(config_path).parent
    obs_ref = getattr(getattr(cfg, "observables", None), "config", None)
    return _sha({"stage": "ingest", "schema": CACHE_SCHEMA, "version": package_version(),
                 "files": _fingerprints(_raw_dirs(cfg), folder, content_hash),
                 "config": _text(Path(config_path)), "observables": _text(obs_ref)})


def fit_key(config_path: str | Path, table_key: str, options: Mapping[str, Any], *,
            content_hash: bool = False) -> str:
    """Cache key of an experiment's fit: the ingest key + potentiostat fingerprint,
    config text, model name, free parameters, fit options and package version."""
    cfg = load_config(config_path)
    folder = Path(config_path).parent
    pot = cfg.instruments.potentiostat
    return _sha({"stage": "fit", "schema": CACHE_SCHEMA, "version": package_version(), "table": table_key,
                 "potentiostat": _fingerprints([pot], folder, content_hash) if pot else None,
                 "truth": _fingerprints([folder / "truth" / "truth.json"], folder, content_hash),
                 "config": _text(Path(config_path)), "model": cfg.model.name, "options": dict(options)})


_load_cfg = load_config
