"""ingest: read NMR and EPR instrument files and turn spectra into observables.

The entry points are importable from the package itself::

    import ingest
    spec = ingest.read("expno/1")                      # NMRSpectrum or EPRSpectrum
    proc = ingest.process(spec, reference={"window": (4.5, 5.1), "ppm": 4.79})
    proc.ppm, proc.real                                # processed NMR spectrum
    rows = ingest.read_rows("ser/or/2D/set")           # 1D rows, each time-stamped
    table = ingest.ingest_folder("finished/files").table

Layout: ``ingest.readers`` (one module per vendor format, and ``dispatch``),
``ingest.processing`` (NMR, EPR, peaks, observables), ``ingest.live`` (watch,
completion, store, pairing); see docs/architecture.md.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import distributions
from typing import TYPE_CHECKING, Any

# one version for flowcell, kinetics and ingest: the distribution's ("0+unknown" in a bare source tree)
__version__ = next((d.version for d in distributions(name="flowcell-rfb")), "0+unknown")

#: public name -> the module that defines it.  Loaded on first use (PEP 562), so that
#: ``import ingest.processing.lines`` (as kinetics does) or ``flowcell --help`` does not
#: pay for nmrglue, the readers and the watcher.
_HOME = {
    "read": "ingest.readers.dispatch", "read_rows": "ingest.readers.dispatch", "identify": "ingest.readers.dispatch",
    "process": "ingest.processing.process",
    "IngestError": "ingest.types", "NMRMeta": "ingest.types", "NMRSpectrum": "ingest.types",
    "EPRMeta": "ingest.types", "EPRSpectrum": "ingest.types",
    "Extractor": "ingest.processing.observables", "ObservablesConfig": "ingest.processing.observables",
    "BatchResult": "ingest.batch", "ingest_folder": "ingest.batch", "ingest_paths": "ingest.batch",
    "Store": "ingest.live.store", "Watcher": "ingest.live.watch", "pair": "ingest.live.pairing",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the real imports
    from ingest.batch import BatchResult, ingest_folder, ingest_paths
    from ingest.live.pairing import pair
    from ingest.live.store import Store
    from ingest.live.watch import Watcher
    from ingest.processing.observables import Extractor, ObservablesConfig
    from ingest.processing.process import process
    from ingest.readers.dispatch import identify, read, read_rows
    from ingest.types import EPRMeta, EPRSpectrum, IngestError, NMRMeta, NMRSpectrum


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


__all__ = ["__version__", *_HOME]  # the public names, in the order of _HOME
