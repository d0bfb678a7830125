"""Plots for fits and observation models (matplotlib, Agg backend, files only).

Conversions to display units happen here only (h for time axes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DISPLAY", "display", "plot_comparison", "plot_fit", "plot_profiles", "plot_water_shift_vs_soc"]


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


#: Display of observed columns: column -> (label, unit, factor from the column's unit).
#: Concentrations are shown in mM everywhere.
DISPLAY: dict[str, tuple[str, str, float]] = {
    "hdo_shift_ppm": ("HDO shift", "ppm", 1.0),
    "epr_spin_conc_M": ("EPR [R]", "mM", 1e3),
    "anthrone_area": ("anthrone", "mM", 1e3),
    "anthranol_area": ("anthranol", "mM", 1e3),
    "dhaq_h1_area": ("DHAQ H1 area", "a.u.", 1.0),
    "dhaq4_h1_area": ("DHAQ4- H1 area", "a.u.", 1.0),
    "dhaq_h1_fwhm_Hz": ("H1 line width", "Hz", 1.0),
    "dhaq_h3_fwhm_Hz": ("H3 line width", "Hz", 1.0),
    "dhaq_h4_fwhm_Hz": ("H4 line width", "Hz", 1.0),
    "dhaq4_h1_fwhm_Hz": ("DHAQ4- H1 line width", "Hz", 1.0),
}


def display(column: str) -> tuple[str, str, float]:
    """``(label, unit, factor)`` of an observed column (:data:`DISPLAY`; else the column name)."""
    if column in DISPLAY:
        return DISPLAY[column]
    if column.endswith("_M"):
        return column[:-2], "mM", 1e3
    return column, "", 1.0


def _panel(ax: Any, axr: Any, t_h: np.ndarray, y: np.ndarray, s: np.ndarray, m: np.ndarray, used: np.ndarray,
           excl: list[tuple[float, float]], column: str) -> None:
    """One observable: data with error bars, the model where data are used, excluded points, residuals."""
    label, unit, f = display(column)
    order = np.argsort(t_h)
    ax.errorbar(t_h[used], y[used] * f, yerr=s[used] * f, fmt="o", ms=2.5, lw=0.6, color="0.35",
                ecolor="0.6", label="data ± σ")
    ou = order[used[order]]  # the model through the fitted rows only (not across excluded ones)
    ax.plot(t_h[ou], m[ou] * f, "-", color="C3", lw=1.3, label="model")
    if excl:
        te, ye = np.array(excl).T
        ax.plot(te / 3600.0, ye * f, "x", color="C1", ms=6, mew=1.5, label="excluded (outlier)")
    ax.set_ylabel(f"{label} ({unit})" if unit else label, fontsize=8)
    ax.tick_params(labelsize=7, labelbottom=False)
    ax.grid(alpha=0.3)
    with np.errstate(invalid="ignore", divide="ignore"):
        axr.plot(t_h[used], ((m - y) / s)[used], ".", ms=3, color="C0")
    axr.axhline(0, color="k", lw=0.6)
    axr.set_ylabel("resid./σ", fontsize=7)
    axr.set_xlabel("time (h)", fontsize=8)
    axr.tick_params(labelsize=7)
    axr.grid(alpha=0.3)


def plot_fit(result: Any, path: str | Path | None = None, *, ncols: int = 3) -> Any:
    """Data vs best-fit model: a grid of panels (one per experiment and observable), each
    with its unit, error bars (σ as fitted), excluded points marked, and its residuals
    (in σ) underneath.  Concentrations in mM, time in h.

    Parameters
    ----------
    result : kinetics.fit.FitResult
    path : str or Path, optional
        Where to save (PNG/PDF/SVG by suffix).  The figure is returned either way.
    ncols : int
        Panels per row.
    """
    plt = _plt()
    prob = result._prob
    preds = result.predict()
    panels = []
    for e, t_sim, idx, cols, temp in prob.blocks:
        for c, used_mask, _, _ in cols:
            panels.append((e, c, used_mask))
    n = len(panels)
    nc = max(1, min(ncols, n))
    nr = -(-n // nc)
    height = 3.8 * nr + 0.6
    fig = plt.figure(figsize=(4.3 * nc, height))
    outer = fig.add_gridspec(nr, nc, hspace=0.32, wspace=0.34, left=0.08, right=0.98, top=1 - 0.4 / height,
                             bottom=0.55 / height)
    excluded = getattr(result, "excluded", []) or []
    multi = len(prob.blocks) > 1
    for k, (e, c, used) in enumerate(panels):
        i, j = divmod(k, nc)
        inner = outer[i, j].subgridspec(2, 1, height_ratios=[3, 1.1], hspace=0.06)
        ax = fig.add_subplot(inner[0])
        axr = fig.add_subplot(inner[1], sharex=ax)
        t_h = np.asarray(e.data["t_s"], dtype=float) / 3600.0
        y = np.asarray(e.data[c], dtype=float)
        s = np.broadcast_to(np.asarray(e.sigma[c], dtype=float), y.shape)
        m = np.asarray(preds[e.name][c], dtype=float)
        ex = [(x["t_s"], x["value"]) for x in excluded if x["column"] == c and x["experiment"] == e.name]
        _panel(ax, axr, t_h, y, s, m, np.asarray(used, bool), ex, c)
        if multi:
            ax.set_title(e.name, fontsize=8)
        if k == 0:
            ax.legend(fontsize=7, loc="best")
    status = getattr(result, "status", "")
    fig.suptitle(f"χ²_red = {result.redchi:.3g}; {status}", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=100)
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


def plot_comparison(table: Any, curves: dict[str, Any], data: Any, path: str | Path | None = None,
                    columns: Sequence[str] = ("hdo_shift_ppm", "epr_spin_conc_M", "anthrone_area")) -> Any:
    """Mechanism comparison: ΔAIC and ΔBIC per candidate, and each candidate's model over the data.

    Parameters
    ----------
    table : DataFrame
        ``flowcell.fit.compare.Comparison.table()`` (columns mechanism, daic, dbic).
    curves : dict
        Mechanism -> DataFrame of model curves (``t_s`` and observed columns).
    data : DataFrame
        The fitted data (``t_s`` and observed columns).
    """
    plt = _plt()
    cols = [c for c in columns if c in data]
    fig, axes = plt.subplots(1, 1 + len(cols), figsize=(4.2 * (1 + len(cols)), 3.6), squeeze=False)
    ax = axes[0, 0]
    ok = table[np.isfinite(table["chi2"].astype(float))] if "chi2" in table else table
    ypos = np.arange(len(ok))
    ax.barh(ypos - 0.2, ok["daic"], height=0.4, color="C0", label="ΔAIC")
    ax.barh(ypos + 0.2, ok["dbic"], height=0.4, color="C2", label="ΔBIC")
    ax.set_yticks(ypos)
    ax.set_yticklabels(ok["mechanism"], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(2, color="k", ls=":", lw=0.8)
    ax.set_xlabel("Δ from the best (χ² units)", fontsize=8)
    ax.legend(fontsize=7)
    for a, c in zip(axes[0, 1:], cols):
        label, unit, f = display(c)
        d = data[["t_s", c]].dropna()
        a.plot(d["t_s"] / 3600, d[c] * f, "o", ms=2.5, color="0.4", label="data")
        for k, (name, cur) in enumerate(curves.items()):
            if cur is not None and c in cur:
                a.plot(cur["t_s"] / 3600, cur[c] * f, "-", lw=1.2, color=f"C{k + 1}", label=name)
        a.set_xlabel("time (h)", fontsize=8)
        a.set_ylabel(f"{label} ({unit})" if unit else label, fontsize=8)
        a.grid(alpha=0.3)
    axes[0, 1].legend(fontsize=6) if cols else None
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
