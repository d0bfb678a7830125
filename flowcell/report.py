"""Plots and the written report of a kinetic fit (markdown + PNG + JSON).

The fit itself (store table + config + potentiostat log -> ``kinetics.fit``) lives in
:mod:`flowcell.fit.pipeline`; this module only draws and writes what a
:class:`flowcell.fit.pipeline.FitOutcome` holds.

:func:`write_report` writes ``report.md``, ``fit.json`` and the plots
``soc.png`` (true / coulomb / live SOC), ``observables.png`` (water shift and
EPR [R] against time with the fit) and ``fit.png`` (the fit's own data-vs-model).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from kinetics.fit import jsonable
from kinetics.plots import pyplot as _plt

from flowcell.fit.pipeline import FitData, FitOutcome

__all__ = [
    "plot_soc",
    "plot_observables",
    "write_report",
]


# ---------------------------------------------------------------------------- plots
def plot_soc(path: str | Path, *, truth: pd.DataFrame | None = None, live: pd.DataFrame | None = None,
             coulomb: pd.DataFrame | None = None) -> Path:
    """SOC against time: true (simulation), coulomb-counted, live estimate with ±2 sd.

    Parameters
    ----------
    truth : DataFrame with ``t_s``, ``soc`` (and optionally ``soc_coulomb``)
    live : DataFrame with ``t_s``, ``soc``, ``soc_sd``
    coulomb : DataFrame with ``t_s``, ``soc``
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    if truth is not None:
        ax.plot(truth["t_s"] / 3600, truth["soc"], "k-", lw=1.5, label="true (simulation)")
    if coulomb is not None:
        ax.plot(coulomb["t_s"] / 3600, coulomb["soc"], "C1--", lw=1, label="coulomb counting")
    elif truth is not None and "soc_coulomb" in truth:
        ax.plot(truth["t_s"] / 3600, truth["soc_coulomb"], "C1--", lw=1, label="coulomb counting")
    if live is not None and len(live):
        t = live["t_s"].to_numpy(float) / 3600
        s = live["soc"].to_numpy(float)
        ax.plot(t, s, "C0o", ms=3, label="live SOC (filter)")
        if "soc_sd" in live:
            sd = live["soc_sd"].to_numpy(float)
            ax.fill_between(t, s - 2 * sd, s + 2 * sd, color="C0", alpha=0.2, lw=0, label="live ±2 sd")
    ax.set_xlabel("time (h)")
    ax.set_ylabel("state of charge")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_observables(path: str | Path, fd: FitData, prediction: pd.DataFrame | None = None) -> Path:
    """Water shift and EPR [R] (and product) against time, data and fitted model."""
    plt = _plt()
    cols = [c for c in ("hdo_shift_ppm", "epr_spin_conc_M", "anthrone_area") if c in fd.data]
    labels = {"hdo_shift_ppm": "HDO shift (ppm)", "epr_spin_conc_M": "EPR [R] (mM)",
              "anthrone_area": "anthrone (mM, from area)"}
    scale = {"hdo_shift_ppm": 1.0, "epr_spin_conc_M": 1e3, "anthrone_area": 1e3}
    fig, axes = plt.subplots(len(cols), 1, figsize=(7, 2.4 * len(cols)), sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], cols):
        d = fd.data[["t_s", c]].dropna()
        ax.plot(d["t_s"] / 3600, d[c] * scale[c], "o", ms=3, color="C0", label="data")
        if prediction is not None and c in prediction:
            ax.plot(prediction["t_s"] / 3600, prediction[c] * scale[c], "-", color="C3", lw=1.5, label="fit")
        ax.set_ylabel(labels[c])
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("time the observed fluid left the cell (h)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v: Any) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(v):
        return "–"
    return f"{v:.6g}"


def write_report(out_dir: str | Path, outcome: FitOutcome | None, *, title: str = "flowcell experiment",
                 live: pd.DataFrame | None = None, truth: pd.DataFrame | None = None,
                 summary: Mapping[str, Any] | None = None, notes: Sequence[str] = ()) -> Path:
    """Write ``report.md``, ``fit.json`` and the PNG plots into ``out_dir``.

    Parameters
    ----------
    outcome : FitOutcome or None
        The fit (None: report the live part only).
    live : DataFrame, optional
        Live SOC states (``t_s``, ``soc``, ``soc_sd``, ``soc_coulomb``, ``drift`` ...).
    truth : DataFrame, optional
        Dense truth of a simulation (``t_s``, ``soc``, ``soc_coulomb``).
    summary : dict, optional
        Extra key figures printed at the top and stored in ``fit.json``.

    Returns
    -------
    Path
        The ``report.md`` path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", f"Written {datetime.now().astimezone().isoformat(timespec='seconds')} by flowcell.", ""]
    if summary:
        lines += ["## Summary", ""]
        lines += [f"- **{k}**: {_fmt(v) if isinstance(v, (float, np.floating)) else v}" for k, v in summary.items()]
        lines.append("")
    coulomb = None
    if live is not None and "soc_coulomb" in live:
        coulomb = pd.DataFrame({"t_s": live["t_s"], "soc": live["soc_coulomb"]})
    if truth is not None or live is not None:
        plot_soc(out / "soc.png", truth=truth, live=live, coulomb=coulomb)
        lines += ["## State of charge", "", "![SOC against time](soc.png)", ""]
    payload: dict[str, Any] = {"summary": dict(summary or {})}
    if outcome is not None:
        tab = outcome.table()
        plot_observables(out / "observables.png", outcome.fit_data, outcome.prediction)
        try:
            outcome.result.plot(out / "fit.png")
            fit_png = True
        except Exception:
            fit_png = False
        lines += ["## Kinetic fit", "",
                  "Parameters with 95 % profile-likelihood intervals (flags name parameters the data cannot pin "
                  "down: unbounded profiles or correlations above 0.95).", "",
                  "| parameter | value | ± (stderr) | 95 % interval | truth | inside | flags |",
                  "|---|---|---|---|---|---|---|"]
        for _, r in tab.iterrows():
            inside = "" if r["truth_inside"] is None else ("yes" if r["truth_inside"] else "**no**")
            lines.append(f"| {r['parameter']} | {_fmt(r['value'])} | {_fmt(r['stderr'])} | "
                         f"[{_fmt(r['ci95_lo'])}, {_fmt(r['ci95_hi'])}] | {_fmt(r['truth'])} | {inside} | "
                         f"{r['flags']} |")
        lines += ["", "Sigma per observable: " + ", ".join(f"{k} = {v:.3g}" for k, v in outcome.fit_data.sigma.items()),
                  "", "![observables and fit](observables.png)", ""]
        if fit_png:
            lines += ["![fit residuals](fit.png)", ""]
        try:
            lines += ["```", outcome.result.report(), "```", ""]
        except Exception:
            pass
        try:
            payload["fit"] = outcome.result.to_dict()
        except Exception as exc:
            payload["fit"] = {"error": f"to_dict failed: {exc}"}
        payload["parameters"] = tab.to_dict(orient="records")
        payload["sigma"] = outcome.fit_data.sigma
        payload["fit_notes"] = outcome.fit_data.notes
        notes = list(notes) + outcome.fit_data.notes
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    (out / "fit.json").write_text(json.dumps(jsonable(payload), indent=2), encoding="utf-8")
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
