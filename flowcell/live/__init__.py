"""The live state of charge while an experiment runs.

* :mod:`flowcell.live.session` -- :class:`LiveSession`: store + watcher + live SOC +
  potentiostat, the one wiring behind ``flowcell watch`` and ``flowcell demo``;
* :mod:`flowcell.live.estimator` -- :class:`LiveSOC`: coulomb counting fused with the water
  shift and EPR, K_c and the scales learnt online (docs/physics.md §1.9);
* :mod:`flowcell.live.timing` -- row times, and the rows whose time cannot be trusted;
* :mod:`flowcell.live.potlog` -- the potentiostat log on the session clock;
* :mod:`flowcell.live.state` -- :class:`SOCState` (one estimate), :class:`SessionStatus`;
* :mod:`flowcell.live.table`, :mod:`flowcell.live.csvlog`, :mod:`flowcell.live.plot` -- the
  terminal table, ``live_soc.csv`` and the live plot.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_HOME = {"LiveSession": "flowcell.live.session", "LiveSOC": "flowcell.live.estimator",
         "SOCState": "flowcell.live.state", "SessionStatus": "flowcell.live.state",
         "RowClock": "flowcell.live.timing"}

__all__ = list(_HOME)

if TYPE_CHECKING:  # real imports for type checkers and IDEs
    from flowcell.live.estimator import LiveSOC  # noqa: F401
    from flowcell.live.session import LiveSession  # noqa: F401
    from flowcell.live.state import SessionStatus, SOCState  # noqa: F401
    from flowcell.live.timing import RowClock  # noqa: F401


def __getattr__(name: str) -> Any:
    # lazy: the table alone (rich) must not pull in the watcher, the fit and kinetics
    if name in _HOME:
        return getattr(import_module(_HOME[name]), name)
    raise AttributeError(f"module 'flowcell.live' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
