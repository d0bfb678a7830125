"""What the live watcher loads before the first spectrum arrives (issue 13: latency).

A spectrometer's first file comes minutes after ``flowcell watch`` starts; whatever the
first spectrum would otherwise import or compile is done at start-up instead:
:func:`warm_up_readers` in the starting thread, :func:`warm_up_compiled` (the numba line
fit, :mod:`ingest.processing.lsq_numpy`, and the robust baseline's kernels,
:mod:`ingest.processing.baseline_nb`) on a background thread.
"""

from __future__ import annotations

import contextlib
import importlib

from ingest.processing.baseline_nb import warm_up as warm_up_baseline
from ingest.processing.lsq_numpy import warm_up_compiled_fit

__all__ = ["READER_MODULES", "warm_up_compiled", "warm_up_readers"]

#: The readers' modules, imported at start (their imports take seconds on a busy machine).
READER_MODULES = ("ingest.readers.dispatch", "ingest.readers.bruker", "ingest.readers.spinsolve",
                  "ingest.readers.jcampdx", "ingest.readers.epr")


def warm_up_readers() -> None:
    """Import the readers now rather than on the first spectrum."""
    for mod in READER_MODULES:
        with contextlib.suppress(Exception):  # a missing optional reader shows up later, per file
            importlib.import_module(mod)


def warm_up_compiled() -> None:
    """Load (compile, or load from numba's disk cache) the compiled line fit, then the robust
    baseline's kernels (same numbers as numpy, ~0.5 ms less a spectrum); nothing without numba."""
    warm_up_compiled_fit()
    warm_up_baseline()
