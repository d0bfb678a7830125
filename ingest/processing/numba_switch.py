"""The one reading of the ``FLOWCELL_NUMBA`` environment variable (numba: the ``fast`` extra).

Rule (docs/conventions.md, "Compiled code: FLOWCELL_NUMBA"):

* ``0`` (or ``false``, ``no``, ``off``): never use numba;
* ``1`` (or ``true``, ``yes``, ``on``): always, when numba is installed;
* unset or empty: each component's documented automatic choice
  (:func:`kinetics.emit.numba_default`; ``flowcell ingest`` from
  :data:`ingest.batch.COMPILE_FROM` acquisitions on; the live watcher loads the compiled line
  fit in a background thread at start, :func:`ingest.processing.lorentz_nb.warm_up`).

Any other value is an error (ValueError naming the variable).  Pure standard library, so
that ``kinetics`` and ``ingest`` both read it without importing anything heavy.
"""

from __future__ import annotations

import importlib.util
import os

__all__ = ["ENV", "numba_installed", "numba_switch"]

#: The environment variable.
ENV = "FLOWCELL_NUMBA"
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def numba_switch() -> bool | None:
    """``FLOWCELL_NUMBA``: True (``1``: always when installed), False (``0``: never) or None
    (unset: the component's automatic choice).

    Raises
    ------
    ValueError
        Any other value.
    """
    raw = os.environ.get(ENV, "").strip().lower()
    if raw == "":
        return None
    if raw in _ON:
        return True
    if raw in _OFF:
        return False
    raise ValueError(f"{ENV}={os.environ[ENV]!r}: expected 1 (always use numba when installed), "
                     f"0 (never) or unset (each component's automatic choice)")


def numba_installed() -> bool:
    """True when numba can be imported (found on the path; not imported here)."""
    return importlib.util.find_spec("numba") is not None
