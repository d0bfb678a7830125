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

from importlib.metadata import distributions

from ingest.batch import BatchResult, ingest_folder, ingest_paths
from ingest.live.pairing import pair
from ingest.live.store import Store
from ingest.live.watch import Watcher
from ingest.processing.observables import Extractor, ObservablesConfig
from ingest.processing.process import process
from ingest.readers.dispatch import identify, read, read_rows
from ingest.types import EPRMeta, EPRSpectrum, IngestError, NMRMeta, NMRSpectrum

# one version for flowcell, kinetics and ingest: the distribution's ("0+unknown" in a bare source tree)
__version__ = next((d.version for d in distributions(name="flowcell-rfb")), "0+unknown")

__all__ = [
    "__version__",
    "read",
    "read_rows",
    "identify",
    "process",
    "IngestError",
    "NMRMeta",
    "NMRSpectrum",
    "EPRMeta",
    "EPRSpectrum",
    "Extractor",
    "ObservablesConfig",
    "BatchResult",
    "ingest_folder",
    "ingest_paths",
    "Store",
    "Watcher",
    "pair",
]
