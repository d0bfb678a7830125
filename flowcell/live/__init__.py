"""The live state of charge while an experiment runs.

* :mod:`flowcell.live.session` -- :class:`LiveSession`: store + watcher + live SOC +
  potentiostat, the one wiring behind ``flowcell watch`` and ``flowcell demo``;
* :mod:`flowcell.live.estimator` -- :class:`LiveSOC`: coulomb counting fused with the water
  shift and EPR, K_c and the scales learnt online (docs/physics.md §1.9);
* :mod:`flowcell.live.timing` -- row times, and the rows whose time cannot be trusted;
* :mod:`flowcell.live.potlog` -- the potentiostat log on the session clock;
* :mod:`flowcell.live.state` -- :class:`SOCState`, one estimate;
* :mod:`flowcell.live.table`, :mod:`flowcell.live.csvlog`, :mod:`flowcell.live.plot` -- the
  terminal table, ``live_soc.csv`` and the live plot.
"""

from flowcell.live.estimator import LiveSOC
from flowcell.live.session import LiveSession, SessionStatus
from flowcell.live.state import SOCState
from flowcell.live.timing import RowClock

__all__ = ["LiveSession", "SessionStatus", "LiveSOC", "SOCState", "RowClock"]
