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
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flowcell.fit.pipeline import SIGMA_RESCALE_MAX, FitData, FitOutcome
from flowcell.fit.truth import compare_series
from kinetics.fit import jsonable
from kinetics.plots import display, plot_comparison
from kinetics.plots import pyplot as _plt

__all__ = [
    "plot_observables",
    "plot_soc",
    "write_comparison",
    "write_report",
    "write_series",
]


# ---------------------------------------------------------------------------- plots
def plot_soc(path: str | Path, *, truth: pd.DataFrame | None = None, live: pd.DataFrame | None = None,
             coulomb: pd.DataFrame | None = None, fitted: pd.DataFrame | None = None) -> Path:
    """SOC against time: true (simulation), coulomb-counted, live estimate with ±2 sd, fitted.

    Parameters
    ----------
    truth : DataFrame with ``t_s``, ``soc`` (and optionally ``soc_coulomb``)
    live : DataFrame with ``t_s``, ``soc``, ``soc_sd``
    coulomb : DataFrame with ``t_s``, ``soc``
    fitted : DataFrame with ``t_s``, ``soc`` (the kinetic fit's tank SOC)
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    if truth is not None:
        ax.plot(truth["t_s"] / 3600, truth["soc"], "k-", lw=1.5, label="true (simulation)")
    if coulomb is not None:
        ax.plot(coulomb["t_s"] / 3600, coulomb["soc"], "C1--", lw=1, label="coulomb counting")
    elif truth is not None and "soc_coulomb" in truth:
        ax.plot(truth["t_s"] / 3600, truth["soc_coulomb"], "C1--", lw=1, label="coulomb counting")
    if fitted is not None and "soc" in fitted:
        ax.plot(fitted["t_s"] / 3600, fitted["soc"], "C3-", lw=1.2, label="kinetic fit (tank)")
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
    """Observables against time, data (± σ) and the fitted model, one panel each, in
    display units (ppm, mM, Hz; :func:`kinetics.plots.display`), with the SOC below."""
    plt = _plt()
    cols = [c for c in fd.data.columns if c != "t_s" and fd.data[c].notna().any()]
    n = len(cols) + (1 if prediction is not None and "soc" in prediction else 0)
    nc = 2 if n > 3 else 1
    nr = -(-n // nc)
    fig, axes = plt.subplots(nr, nc, figsize=(6.5 * nc, 2.3 * nr + 0.6), sharex=True, squeeze=False)
    flat = list(axes.flat)
    for ax, c in zip(flat, cols):
        label, unit, f = display(c)
        d = fd.data[["t_s", c]].dropna()
        s = np.broadcast_to(np.asarray(fd.sigma.get(c, np.nan), float), d[c].shape)
        ax.errorbar(d["t_s"] / 3600, d[c] * f, yerr=s * f, fmt="o", ms=2.5, lw=0.6, color="C0", ecolor="0.6",
                    label="data ± σ")
        if prediction is not None and c in prediction:
            ax.plot(prediction["t_s"] / 3600, prediction[c] * f, "-", color="C3", lw=1.5, label="fit")
        ax.set_ylabel(f"{label} ({unit})" if unit else label)
        ax.grid(alpha=0.3)
    if prediction is not None and "soc" in prediction and len(flat) > len(cols):
        ax = flat[len(cols)]
        ax.plot(prediction["t_s"] / 3600, prediction["soc"], "-", color="C2", lw=1.5, label="fitted SOC (tank)")
        ax.set_ylabel("state of charge")
        ax.grid(alpha=0.3)
    for ax in flat[n:]:
        ax.axis("off")
    flat[0].legend(loc="best", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("time the observed fluid left the cell (h)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_series(out_dir: str | Path, prediction: pd.DataFrame) -> list[Path]:
    """Write the fitted series (``t_s``, ``soc``, tank concentrations ``<species>_M`` in mol/L,
    predicted observables) as ``fit_series.csv`` and, when pyarrow is installed, ``.parquet``."""
    out = Path(out_dir)
    paths = [out / "fit_series.csv"]
    prediction.to_csv(paths[0], index=False, float_format="%.8g")
    try:
        prediction.to_parquet(out / "fit_series.parquet", index=False)
        paths.append(out / "fit_series.parquet")
    except (ImportError, ValueError):  # no parquet engine: the CSV is enough
        pass
    return paths


def _goodness_lines(outcome: FitOutcome) -> list[str]:
    """Markdown: status, χ² with the extractors' sigmas, residual tests, outliers, rescaling."""
    res = outcome.result
    g = outcome.gof
    lines = ["## Goodness of fit", "", f"**Status: {outcome.status}**", ""]
    if g is not None:
        lines += [f"- chi2 with the extractors' own sigmas (before any rescaling): **{g.chi2:.5g}** for N = {g.ndata} "
                  f"points, reduced chi2 **{g.redchi:.4g}** (p = {g.pvalue:.2g})",
                  f"- sigma rescaling allowed only within [1, {SIGMA_RESCALE_MAX:g}]: " + (", ".join(
                      f"{k} x{v:.2f}" for k, v in g.rescale.items()) or "none")]
    lines.append(f"- final fit: chi2 = {res.chi2:.5g}, reduced chi2 = {res.redchi:.4g}, N = {res.ndata}, "
                 f"{res.nfree} free, {res.nfev} evaluations, {res.refits} refit(s) from a profile's lower chi2")
    excl = list(getattr(res, "excluded", []) or [])
    lines.append(f"- outliers left out: {len(excl)}" + ("" if not excl else " (" + ", ".join(
        f"{x['column']} at t = {x['t_s']:.0f} s" for x in excl[:8]) + ")"))
    dropped = getattr(outcome.fit_data, "dropped", {}) or {}
    lines.append("- rows dropped: " + (", ".join(f"{v} ({k})" for k, v in dropped.items()) or "none"))
    lines += ["", "| observable | n | scatter (σ) | sign runs (expected) | lag-1 autocorr. | verdict |",
              "|---|---|---|---|---|---|"]
    for c in getattr(res, "checks", []):
        runs = f"{c.runs:.0f} ({c.runs_expected:.1f})" if np.isfinite(c.runs_expected) else "–"
        rho = f"{c.rho1:+.2f}" if np.isfinite(c.rho1) else "–"
        lines.append(f"| {c.column} | {c.n} | {c.scatter:.3g} | {runs} | {rho} | "
                     f"{'; '.join(c.failed) if c.failed else 'ok'}{(' (' + '; '.join(c.notes) + ')') if c.notes else ''} |")
    if g is not None and g.misfit_reasons:
        lines += ["", "The residuals say the model does not describe the data:"] + [f"- {r}" for r in g.misfit_reasons]
    return lines + [""]


def _fmt(v: Any) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(v):
        return "–"
    return f"{v:.6g}"


def _parameter_lines(outcome: FitOutcome) -> list[str]:
    """Markdown parameter table in natural units; the fitting scale in its own column."""
    tab = outcome.table()
    log10 = getattr(outcome.result, "log10", {}) or {}
    lines = ["## Kinetic fit", "",
             "Parameters in natural units with 95 % profile-likelihood intervals (flags name parameters the data "
             "cannot pin down: unbounded profiles or correlations above 0.95).  'fitted as' is the scale the "
             "optimiser worked on; values and intervals are never given on it.", "",
             "| parameter | value | ± (stderr) | 95 % interval | fitted as | truth | inside | flags |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in tab.iterrows():
        inside = "" if r["truth_inside"] is None else ("yes" if r["truth_inside"] else "**no**")
        if r["truth_inside"] is not None and not (np.isfinite(r["ci95_lo"]) and np.isfinite(r["ci95_hi"])):
            inside = "no interval"
        scale = "log10" if log10.get(r["parameter"]) else "linear"
        lines.append(f"| {r['parameter']} | {_fmt(r['value'])} | {_fmt(r['stderr'])} | "
                     f"[{_fmt(r['ci95_lo'])}, {_fmt(r['ci95_hi'])}] | {scale} | {_fmt(r['truth'])} | {inside} | "
                     f"{r['flags']} |")
    lines += ["", "Sigma per observable (as finally used): " + ", ".join(
        f"{k} = {v:.3g}" for k, v in outcome.fit_data.sigma.items()), ""]
    return lines


def _truth_series_lines(out: Path, outcome: FitOutcome, truth_series: pd.DataFrame) -> tuple[list[str], Any]:
    """Compare the fitted SOC/concentrations with a true series; markdown and the table."""
    if outcome.prediction is None:
        return ["## Truth series", "", "no fitted series (the simulation at the best fit failed)", ""], None
    cmp = compare_series(truth_series, outcome.prediction)
    lines = ["## Fitted series against the truth", "", "| series | n | rms difference | max difference |",
             "|---|---|---|---|"]
    for _, r in cmp.iterrows():
        f, unit = (1.0, "") if r["column"] == "soc" else (1e3, " mM")
        lines.append(f"| {r['column']} | {int(r['n'])} | {r['rms'] * f:.4g}{unit} | {r['max_abs'] * f:.4g}{unit} |")
    return lines + [""], cmp


def write_report(out_dir: str | Path, outcome: FitOutcome | None, *, title: str = "flowcell experiment",
                 live: pd.DataFrame | None = None, truth: pd.DataFrame | None = None,
                 summary: Mapping[str, Any] | None = None, notes: Sequence[str] = (),
                 truth_series: pd.DataFrame | None = None) -> Path:
    """Write ``report.md``, ``fit.json``, ``fit_series.csv`` and the PNG plots into ``out_dir``.

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
    truth_series : DataFrame, optional
        A true time series (``flowcell.fit.truth.read_truth``): the fitted SOC and
        concentrations are compared with it.

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
    if truth is None and truth_series is not None and "soc" in truth_series:
        truth = truth_series
    if truth is not None or live is not None:
        plot_soc(out / "soc.png", truth=truth, live=live, coulomb=coulomb,
                 fitted=outcome.prediction if outcome is not None else None)
        lines += ["## State of charge", "", "![SOC against time](soc.png)", ""]
    payload: dict[str, Any] = {"summary": dict(summary or {})}
    if outcome is not None:
        plot_observables(out / "observables.png", outcome.fit_data, outcome.prediction)
        try:
            outcome.result.plot(out / "fit.png")
            fit_png = True
        except Exception:  # plots are best effort
            fit_png = False
        lines += _goodness_lines(outcome) + _parameter_lines(outcome)
        lines += ["![observables and fit](observables.png)", ""]
        if fit_png:
            lines += ["![fit: data, model and residuals per observable](fit.png)", ""]
        if outcome.prediction is not None:
            files = write_series(out, outcome.prediction)
            lines += ["Fitted series (SOC, tank concentrations in mol/L, predicted observables): "
                      + ", ".join(f"`{f.name}`" for f in files), ""]
        if truth_series is not None:
            tl, cmp = _truth_series_lines(out, outcome, truth_series)
            lines += tl
            payload["truth_series"] = [] if cmp is None else cmp.to_dict(orient="records")
        try:
            lines += ["```", outcome.result.report(), "```", ""]
        except Exception:
            pass
        try:
            payload["fit"] = outcome.result.to_dict()
        except Exception as exc:
            payload["fit"] = {"error": f"to_dict failed: {exc}"}
        payload["status"] = outcome.status
        payload["parameters"] = outcome.table().to_dict(orient="records")
        payload["goodness_of_fit"] = None if outcome.gof is None else asdict(outcome.gof)
        payload["dropped_rows"] = getattr(outcome.fit_data, "dropped", {})
        payload["sigma"] = outcome.fit_data.sigma
        payload["fit_notes"] = outcome.fit_data.notes
        notes = list(notes) + outcome.fit_data.notes
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    (out / "fit.json").write_text(json.dumps(jsonable(payload), indent=2), encoding="utf-8")
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_comparison(out_dir: str | Path, comp: Any, *, title: str = "mechanism comparison") -> Path:
    """Write ``compare.md``, ``compare.csv``, ``compare.json`` and ``compare.png`` for a
    :class:`flowcell.fit.compare.Comparison`; returns the markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = comp.table()
    df.to_csv(out / "compare.csv", index=False, float_format="%.8g")
    curves = {c.spec: c.outcome.prediction for c in comp.candidates if c.outcome is not None}
    best = comp.best
    if best is not None:
        plot_comparison(df, curves, best.outcome.fit_data.data, out / "compare.png")
    lines = [f"# {title}", "", f"Written {datetime.now().astimezone().isoformat(timespec='seconds')} by flowcell.", "",
             "Every mechanism fitted to the same data with the extractors' sigmas (no rescaling), so chi2, "
             "AIC = chi2 + 2k and BIC = chi2 + k ln n compare; ΔAIC < 2 means no real preference.  "
             "'residuals' says whether the mechanism describes the data at all.", "",
             "```", comp.report(), "```", "", "![comparison](compare.png)", ""]
    for c in comp.candidates:
        if c.outcome is None:
            continue
        lines += [f"## {c.spec}", "", f"status: {c.outcome.status}", ""]
        lines += [f"- {r}" for r in (c.outcome.gof.misfit_reasons if c.outcome.gof else [])]
        lines += ["", "```", c.outcome.result.report(), "```", ""]
    (out / "compare.json").write_text(json.dumps(jsonable({
        "table": df.to_dict(orient="records"), "lrt": comp.lrt, "notes": comp.notes,
        "best": None if best is None else best.spec}), indent=2), encoding="utf-8")
    path = out / "compare.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
