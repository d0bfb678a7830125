"""Draw a calibration: the processed spectrum in ppm, every window shaded and labelled.

Uses matplotlib's object interface (no backend is forced: inline in a notebook,
a file with :func:`plot_calibration`'s ``path``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ingest.processing.calibrate import Calibration

__all__ = ["plot_calibration"]


def plot_calibration(cal: Calibration, path: str | Path | None = None, *, ppm_range: tuple[float, float] | None = None,
                     fig: Figure | None = None) -> Figure:
    """Spectrum with windows (assigned: green; expected later / not found: grey) and labels.

    The intensity axis is scaled to the tallest line other than the water
    line (which runs off the top); unassigned lines carry a red marker.

    Parameters
    ----------
    cal : Calibration
    path : path, optional
        Write a PNG there.
    ppm_range : (low, high), optional
        Axis range, ppm (default: around every window and picked line).
    fig : Figure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = fig or Figure(figsize=(11, 4.5))
    ax = fig.add_subplot(111) if not fig.axes else fig.axes[0]
    spans = [p.window_ppm for p in cal.config.nmr.peaks] + [(g.ppm, g.ppm) for g in cal.multiplets]
    lo, hi = ppm_range or (min(s[0] for s in spans) - 0.2, max(s[1] for s in spans) + 0.2) if spans else (0, 10)
    m = (cal.ppm >= lo) & (cal.ppm <= hi)
    ax.plot(cal.ppm[m], cal.real[m], lw=0.7, color="k")
    top = float(np.max(cal.real[m])) if m.any() else 1.0
    water = cal.assigned.get("hdo")
    others = [g.height for g in cal.multiplets if g is not water and lo <= g.ppm <= hi]
    if others:  # scale to the solute lines; the solvent line runs off the top
        top = min(top, 1.3 * max(others))
    for p in cal.config.nmr.peaks:
        ok = p.name in cal.assigned or p.name.startswith("line_")
        ax.axvspan(*p.window_ppm, color="tab:green" if ok else "0.7", alpha=0.25 if ok else 0.15, lw=0)
        ax.text(0.5 * sum(p.window_ppm), top * (1.02 if ok else 0.5), p.name, rotation=90, ha="center",
                va="bottom", fontsize=7, color="tab:green" if ok else "0.4")
    for g, _why in cal.unexplained:
        ax.plot([g.ppm], [g.height], "rv", ms=5)
    ax.set_xlim(hi, lo)
    ax.set_ylim(top * -0.05, top * 1.35)
    ax.set_xlabel("δ / ppm")
    ax.set_ylabel("intensity / a.u.")
    ax.set_title(f"calibration ({cal.quinone or 'no quinone'}): {len(cal.assigned)} assigned, "
                 f"{len(cal.unexplained)} unassigned (red), offset {cal.offset_ppm:+.3f} ppm", fontsize=9)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
