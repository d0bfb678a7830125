"""Plots for fits and observation models (matplotlib, Agg backend, files only).

Conversions to display units happen here only (h for time axes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["plot_fit", "plot_profiles", "plot_water_shift_vs_soc"]


def pyplot() -> Any:
    """``matplotlib.pyplot``, on the Agg backend unless an interactive one is already in use.

    Plots are written to files; importing this never needs a display.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover - a GUI backend already drawing
            pass
    import matplotlib.pyplot as plt

    return plt


_plt = pyplot


def plot_fit(result: Any, path: str | Path | None = None) -> Any:
    """Data vs best-fit model, one column per observable, residuals (in σ) below.

    Rows: for each experiment, a data/model row and a residual row.

    Parameters
    ----------
    result : kinetics.fit.FitResult
    path : str or Path, optional
        Where to save (PNG/PDF/SVG by suffix).  The figure is returned either way.
    """
    plt = _plt()
    prob = result._prob
    preds = result.predict()
    exps = [b[0] for b in prob.blocks]
    ncol = max(len(e.sigma) for e in exps)
    fig, axes = plt.subplots(2 * len(exps), ncol, figsize=(4.2 * ncol, 5.0 * len(exps)), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1] * len(exps)})
    for i, e in enumerate(exps):
        pred = preds[e.name]
        t_h = np.asarray(e.data["t_s"], dtype=float) / 3600.0
        order = np.argsort(t_h)
        for j, (col, sig) in enumerate(e.sigma.items()):
            ax, axr = axes[2 * i, j], axes[2 * i + 1, j]
            y = np.asarray(e.data[col], dtype=float)
            m = np.asarray(pred[col], dtype=float)
            ok = np.isfinite(y)
            ax.plot(t_h[ok], y[ok], ".", ms=3, color="0.4", label="data")
            ax.plot(t_h[order], m[order], "-", color="C3", lw=1.2, label="model")
            ax.set_title(f"{e.name}: {col}", fontsize=9)
            s = np.broadcast_to(np.asarray(sig, dtype=float), y.shape)
            axr.plot(t_h[ok], ((m - y) / s)[ok], ".", ms=3, color="C0")
            axr.axhline(0, color="k", lw=0.6)
            axr.set_ylabel("resid / σ", fontsize=8)
            axr.set_xlabel("t / h", fontsize=8)
            if j == 0:
                ax.legend(fontsize=7)
        for j in range(len(e.sigma), ncol):
            axes[2 * i, j].axis("off")
            axes[2 * i + 1, j].axis("off")
    fig.suptitle(f"χ²_red = {result.redchi:.3g}", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=80)
        plt.close(fig)
    return fig


def plot_profiles(result: Any, path: str | Path | None = None) -> Any:
    """Profile Δχ² of every free parameter with the 95 % threshold."""
    plt = _plt()
    names = list(result.profiles)
    if not names:
        raise ValueError("the fit has no profiles (conf_interval=False)")
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.2), squeeze=False)
    for ax, n in zip(axes[0], names):
        pr = result.profiles[n]
        ax.plot(pr.x, pr.dchi2, "o-", ms=3)
        ax.axhline(pr.threshold, color="C3", ls="--", lw=0.8)
        if pr.log10:
            ax.set_xscale("log")
        ax.set_xlabel(n)
        ax.set_ylabel("Δχ²")
        ax.set_title(result.interval_text(n), fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=80)
        plt.close(fig)
    return fig


def plot_water_shift_vs_soc(soc: Sequence[float], shifts: dict[str, Sequence[float]],
                            path: str | Path | None = None) -> Any:
    """Water shift (ppm) vs SOC for several curves (label -> values)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for label, y in shifts.items():
        ax.plot(soc, y, label=label)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("SOC")
    ax.set_ylabel("Δδ(HDO) / ppm")
    ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=80)
        plt.close(fig)
    return fig
