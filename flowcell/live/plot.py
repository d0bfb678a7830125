"""The updating live plot: SOC ± 2 sd, the coulomb count, the radical concentration and K_c."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np

from flowcell.live.state import SOCState

__all__ = ["LivePlot", "has_display"]

_FILE_BACKENDS = ("agg", "pdf", "svg", "ps", "cairo", "template")


def has_display() -> bool:
    """Can a plot window open here (a display, an interactive matplotlib backend)?"""
    import matplotlib  # lazy: matplotlib costs ~0.3 s and only --plot needs it

    backend = matplotlib.get_backend().lower()
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return not (headless or backend in _FILE_BACKENDS or "inline" in backend)


class LivePlot:
    """An updating plot of the live estimate.

    A window that refreshes where a display exists (``interactive=None`` detects it);
    otherwise a PNG at ``path`` rewritten on every :meth:`update` (at most every
    ``every`` states; :meth:`close` writes the last one).

    Parameters
    ----------
    path : path-like, optional
        PNG to write (default ``live_soc.png`` in the working directory when not interactive).
    interactive : bool or None
    title : str, optional
    every : int
        Redraw every this many states.
    """

    def __init__(self, path: str | Path | None = None, *, interactive: bool | None = None,
                 title: str | None = None, every: int = 1) -> None:
        self.interactive = has_display() if interactive is None else interactive
        self.path = Path(path) if path is not None else (None if self.interactive else Path("live_soc.png"))
        if self.interactive:
            import matplotlib.pyplot as plt  # lazy, see has_display

            plt.ion()
            self.fig = plt.figure(figsize=(8, 6))
        else:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            self.fig = Figure(figsize=(8, 6))
            FigureCanvasAgg(self.fig)
        self.ax_soc, self.ax_r, self.ax_k = self.fig.subplots(3, 1, sharex=True)
        self.fig.subplots_adjust(left=0.1, right=0.97, top=0.93, bottom=0.08, hspace=0.1)
        self.title = title
        self.every = max(int(every), 1)
        self.states: list[SOCState] = []
        self.truth: list[float] = []

    def add(self, state: SOCState, true_soc: float = math.nan) -> None:
        """Remember a state without drawing."""
        self.states.append(state)
        self.truth.append(true_soc)

    def update(self, state: SOCState, true_soc: float = math.nan) -> Path | None:
        """Add a state and redraw (every ``every`` states); the PNG path when one was written."""
        self.add(state, true_soc)
        if len(self.states) % self.every:
            return None
        return self.draw()

    def draw(self) -> Path | None:
        """Redraw from every state so far."""
        def arr(name: str) -> np.ndarray:
            return np.array([getattr(s, name) for s in self.states], dtype=float)

        t = arr("t_s") / 60.0
        soc, sd = 100 * arr("soc"), 100 * arr("soc_sd")
        a, b, k = self.ax_soc, self.ax_r, self.ax_k
        for ax in (a, b, k):
            ax.clear()
        a.fill_between(t, soc - 2 * sd, soc + 2 * sd, color="C0", alpha=0.25, lw=0, label="±2 sd")
        a.plot(t, soc, "C0-", label="SOC (filter)")
        a.plot(t, 100 * arr("soc_coulomb"), "C1--", label="SOC (coulomb count)")
        tr = 100 * np.array(self.truth, dtype=float)
        if np.isfinite(tr).any():
            a.plot(t, tr, "k:", label="true SOC")
        a.set_ylabel("SOC (%)")
        a.legend(loc="best", fontsize=8)
        if self.title:
            a.set_title(self.title)
        b.plot(t, 1e3 * arr("radical_M"), "C2-")
        b.set_ylabel("[R] (mM)")
        k.fill_between(t, arr("Kc_lo"), arr("Kc_hi"), color="C3", alpha=0.25, lw=0)
        k.plot(t, arr("Kc"), "C3-")
        k.set_yscale("log")
        k.set_ylabel("K_c (learnt)")
        k.set_xlabel("time (min)")
        if self.interactive:
            self.fig.canvas.draw_idle()
            self.fig.canvas.flush_events()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fig.savefig(self.path, dpi=90)
            return self.path
        return None

    def close(self) -> None:
        """Draw the last states and release the figure."""
        if self.states:
            self.draw()
        if self.interactive:
            import matplotlib.pyplot as plt  # lazy, see has_display

            plt.close(self.fig)
