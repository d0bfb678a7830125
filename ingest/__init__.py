"""ingest: read NMR and EPR instrument files and turn spectra into observables.

The most used entry points are importable from the package itself::

    import ingest
    spec = ingest.readers.dispatch("expno/1")             # NMRSpectrum or EPRSpectrum
    rows = ingest.read_rows("ser/or/2D/set")  # 1D rows, each time-stamped
    table = ingest.ingest_folder("finished/files").table

Heavier pieces (peak fitting, the watcher) are imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ingest.readers.dispatch import identify, read, read_rows
from ingest.types import EPRMeta, EPRSpectrum, IngestError, NMRMeta, NMRSpectrum

__all__ = [
    "read",
    "read_rows",
    "identify",
    "IngestError",
    "NMRMeta",
    "NMRSpectrum",
    "EPRMeta",
    "EPRSpectrum",
    "Extractor",
    "ObservablesConfig",
    "ingest_folder",
    "ingest_paths",
    "Store",
    "Watcher",
    "pair",
]

_LAZY = {
    "Extractor": "ingest.processing.observables",
    "ObservablesConfig": "ingest.processing.observables",
    "ingest_folder": "ingest.batch",
    "ingest_paths": "ingest.batch",
    "Store": "ingest.live.store",
    "Watcher": "ingest.live.watch",
    "pair": "ingest.live.pairing",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
