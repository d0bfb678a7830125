"""Comparison table, plots and ``screen_report.md`` of an electrolyte screen.

:func:`comparison_table` turns the per-(experiment, parameter) fit rows of
:func:`flowcell.screen.run.screen` into one row per experiment with every parameter, its
95 % interval and its rank; :func:`plot_parameters` draws each parameter with its
95 % interval per experiment (log scale for rate and equilibrium constants);
:func:`arrhenius` / :func:`plot_arrhenius` fit and draw ``ln k`` against ``1/T``
when the temperatures differ; :func:`write_screen_report` writes the markdown report.

Parameters and units (docs/physics.md §2; docs/architecture.md): ``Kc`` (–, K of
comproportionation, §1.2), ``k1`` (= k_ex, the O/R electron self-exchange, 1/(M s),
from the oxidised-form line widths, §1.4), ``kc`` (comproportionation rate, 1/(M s)),
``k2`` (R + H self-exchange, 1/(M s)), ``k_dec`` (first-order decomposition of H, 1/s, §2.1 Dec-ch),
``k_dec2`` (1/(M s)), ``J_e`` (O2 self-discharge electron flux, M/s, §2.4) and
``fade_pct_per_day`` (capacity fade, %/day, :func:`flowcell.screen.run.capacity_fade_per_day`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from kinetics.constants import R_GAS
from kinetics.plots import pyplot as _plt

__all__ = [
    "PARAMETER_ORDER",
    "LABELS",
    "comparison_table",
    "ArrheniusFit",
    "arrhenius",
    "plot_parameters",
    "plot_arrhenius",
    "write_screen_report",
]

#: Column order of the comparison table (other fitted parameters follow, sorted).
PARAMETER_ORDER = ("Kc", "k1", "kc", "k2", "k_dec", "k_dec2", "J_e", "fade_pct_per_day")
#: Axis labels with units.
LABELS = {
    "Kc": "K_c (–)",
    "k1": "k_ex(O/R) = k_1 (1/(M s))",
    "kc": "k_c comproportionation (1/(M s))",
    "k2": "k_ex(R/H) = k_2 (1/(M s))",
    "k_dec": "k_dec (1/s)",
    "k_dec2": "k_dec2 (1/(M s))",
    "J_e": "J_e (M/s)",
    "fade_pct_per_day": "capacity fade (%/day)",
}
#: Fitted nuisance parameters left out of the comparison table (kept in the long table).
NUISANCE = ("hdo_ref_ppm",)


def _ordered(params: Sequence[str]) -> list[str]:
    known = [p for p in PARAMETER_ORDER if p in params]
    return known + sorted(p for p in params if p not in PARAMETER_ORDER)


def comparison_table(meta: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment: metadata, then every parameter with its interval and rank.

    Parameters
    ----------
    meta : DataFrame
        One row per experiment; must hold ``experiment``.
    long : DataFrame
        Rows ``experiment, parameter, value, stderr, ci95_lo, ci95_hi, truth,
        truth_inside, flags``.

    Returns
    -------
    DataFrame
        Sorted by ``experiment``.  Per parameter ``P``: ``P``, ``P_lo``, ``P_hi``,
        ``P_err``, ``P_flags``, ``rank_P`` (1 = smallest value; NaN values unranked), and
        ``P_true``, ``P_inside`` when any truth is known.
    """
    out = meta.sort_values("experiment", kind="stable").reset_index(drop=True).copy()
    if long is None or not len(long):
        return out
    for p in _ordered([q for q in dict.fromkeys(long["parameter"]) if q not in NUISANCE]):
        sub = long[long["parameter"] == p].set_index("experiment")
        idx = out["experiment"]
        out[p] = idx.map(sub["value"]).astype(float)
        out[f"{p}_lo"] = idx.map(sub["ci95_lo"]).astype(float)
        out[f"{p}_hi"] = idx.map(sub["ci95_hi"]).astype(float)
        out[f"{p}_err"] = idx.map(sub["stderr"]).astype(float)
        truth = idx.map(sub["truth"]).astype(float)
        if np.isfinite(truth.to_numpy(float)).any():
            out[f"{p}_true"] = truth
            out[f"{p}_inside"] = [None if (v is None or (isinstance(v, float) and math.isnan(v)) or not np.isfinite(t))
                                  else bool(v) for v, t in zip(idx.map(sub["truth_inside"]), truth)]
        out[f"{p}_flags"] = idx.map(sub["flags"]).fillna("").astype(str)
        out[f"rank_{p}"] = out[p].rank(method="min").astype("Int64")
    return out


@dataclass(frozen=True)
class ArrheniusFit:
    """Weighted straight line ``ln k = ln A - Ea/(R T)``.

    Attributes
    ----------
    parameter : str
    Ea_J_mol, Ea_err_J_mol : float
        Activation energy and its standard error, J/mol.
    lnA, lnA_err : float
        Intercept (ln of k's unit).
    n : int
        Points used.
    temperatures_K : tuple of float
    """

    parameter: str
    Ea_J_mol: float
    Ea_err_J_mol: float
    lnA: float
    lnA_err: float
    n: int
    temperatures_K: tuple[float, ...]


def _ln_sigma(table: pd.DataFrame, p: str) -> np.ndarray:
    """sd of ln k from the 95 % interval ((ln hi - ln lo)/(2 x 1.96)); stderr/value otherwise."""
    v = table[p].to_numpy(float)
    lo = table.get(f"{p}_lo", pd.Series(np.nan, index=table.index)).to_numpy(float)
    hi = table.get(f"{p}_hi", pd.Series(np.nan, index=table.index)).to_numpy(float)
    err = table.get(f"{p}_err", pd.Series(np.nan, index=table.index)).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (np.log(hi) - np.log(lo)) / (2 * 1.959964)
        s = np.where(np.isfinite(s) & (s > 0), s, err / v)
    return s


def arrhenius(table: pd.DataFrame, parameter: str = "k_dec") -> ArrheniusFit | None:
    """Fit ``ln k`` against ``1/T`` over the experiments (weighted least squares).

    Weights are ``1/sd(ln k)²`` from each 95 % interval (equal weights when no
    experiment has one).  Returns None when fewer than two distinct temperatures
    have a finite positive value.

    Parameters
    ----------
    table : DataFrame
        :func:`comparison_table` output (``temperature_K`` and the parameter columns).
    parameter : str
    """
    if parameter not in table or "temperature_K" not in table:
        return None
    k = table[parameter].to_numpy(float)
    T = table["temperature_K"].to_numpy(float)
    ok = np.isfinite(k) & (k > 0) & np.isfinite(T) & (T > 0)
    if len(np.unique(T[ok])) < 2:
        return None
    s = _ln_sigma(table, parameter)[ok]
    if not np.isfinite(s).all() or np.any(s <= 0):
        s = np.ones(ok.sum())
    x, y = 1.0 / T[ok], np.log(k[ok])
    X = np.column_stack([np.ones_like(x), x])
    W = 1.0 / s**2
    cov = np.linalg.inv(X.T @ (X * W[:, None]))
    beta = cov @ (X.T @ (W * y))
    n = int(ok.sum())
    if n > 2:  # scale by the reduced chi2 when it exceeds 1 (scatter beyond the intervals)
        chi2 = float(np.sum(W * (y - X @ beta) ** 2)) / (n - 2)
        cov = cov * max(1.0, chi2)
    return ArrheniusFit(parameter, float(-beta[1] * R_GAS), float(math.sqrt(cov[1, 1]) * R_GAS),
                        float(beta[0]), float(math.sqrt(cov[0, 0])), n, tuple(sorted(set(T[ok].tolist()))))


def _fitted_params(table: pd.DataFrame) -> list[str]:
    return _ordered([c for c in table.columns if f"{c}_lo" in table.columns and f"rank_{c}" in table.columns])


def plot_parameters(table: pd.DataFrame, path: str | Path, params: Sequence[str] | None = None) -> Path:
    """Each parameter with its 95 % interval per experiment (true values as red crosses).

    Rate and equilibrium constants on a log axis; one panel per parameter; points
    coloured by ``group`` (or quinone).
    """
    plt = _plt()
    params = list(params or _fitted_params(table))
    n = max(1, len(params))
    fig, axes = plt.subplots(n, 1, figsize=(max(5.0, 0.7 * len(table) + 3), 2.3 * n), squeeze=False, sharex=True)
    x = np.arange(len(table))
    key = "group" if "group" in table and (table["group"].astype(str) != "").any() else "quinone"
    cats = list(dict.fromkeys(table[key].astype(str))) if key in table else [""]
    for ax, p in zip(axes[:, 0], params):
        v = table[p].to_numpy(float)
        lo = table[f"{p}_lo"].to_numpy(float)
        hi = table[f"{p}_hi"].to_numpy(float)
        for ci, cat in enumerate(cats):
            m = (table[key].astype(str) == cat).to_numpy() if key in table else np.ones(len(table), bool)
            yerr = np.vstack([np.where(np.isfinite(lo), v - lo, 0), np.where(np.isfinite(hi), hi - v, 0)])[:, m]
            ax.errorbar(x[m], v[m], yerr=np.clip(yerr, 0, None), fmt="o", ms=4, capsize=3, color=f"C{ci}",
                        label=cat if len(cats) > 1 else None)
        if f"{p}_true" in table:
            ax.plot(x, table[f"{p}_true"].to_numpy(float), "x", color="C3", ms=7, label="true")
        if p != "fade_pct_per_day" and np.all(v[np.isfinite(v)] > 0) and np.isfinite(v).any():
            ax.set_yscale("log")
        ax.set_ylabel(LABELS.get(p, p), fontsize=8)
        ax.grid(alpha=0.3)
        if ax is axes[0, 0] and (len(cats) > 1 or f"{p}_true" in table):
            ax.legend(fontsize=7, loc="best")
    axes[-1, 0].set_xticks(x)
    axes[-1, 0].set_xticklabels(table["experiment"].astype(str), rotation=30, ha="right", fontsize=8)
    fig.suptitle("fitted parameters with 95 % profile-likelihood intervals", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_arrhenius(table: pd.DataFrame, path: str | Path, params: Sequence[str] = ("k_dec", "J_e", "k2")
                   ) -> tuple[Path | None, list[ArrheniusFit]]:
    """``ln k`` against ``1000/T`` with 95 % error bars and the weighted line.

    Returns ``(None, [])`` when fewer than two temperatures have values.
    """
    fits = [f for f in (arrhenius(table, p) for p in params) if f is not None]
    if not fits:
        return None, []
    plt = _plt()
    fig, axes = plt.subplots(1, len(fits), figsize=(4.2 * len(fits), 3.4), squeeze=False)
    for ax, f in zip(axes[0], fits):
        p = f.parameter
        T = table["temperature_K"].to_numpy(float)
        k = table[p].to_numpy(float)
        ok = np.isfinite(k) & (k > 0)
        lo = table[f"{p}_lo"].to_numpy(float)
        hi = table[f"{p}_hi"].to_numpy(float)
        yerr = np.vstack([np.where(np.isfinite(lo) & (lo > 0), np.log(k) - np.log(np.where(lo > 0, lo, 1)), 0),
                          np.where(np.isfinite(hi), np.log(np.where(hi > 0, hi, 1)) - np.log(k), 0)])[:, ok]
        ax.errorbar(1000 / T[ok], np.log(k[ok]), yerr=np.clip(yerr, 0, None), fmt="o", capsize=3)
        xx = np.linspace((1000 / T[ok]).min(), (1000 / T[ok]).max(), 50)
        ax.plot(xx, f.lnA - f.Ea_J_mol / R_GAS * xx / 1000, "C3-",
                label=f"Ea = {f.Ea_J_mol / 1e3:.1f} ± {f.Ea_err_J_mol / 1e3:.1f} kJ/mol")
        ax.set_xlabel("1000/T (1/K)")
        ax.set_ylabel(f"ln {LABELS.get(p, p)}", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path, fits


def _fmt(v: Any) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "–" if not math.isfinite(v) else f"{v:.4g}"


def write_screen_report(result: Any, out_dir: str | Path) -> Path:
    """Write ``parameters.png``, ``arrhenius.png`` (temperatures differ) and ``screen_report.md``.

    Parameters
    ----------
    result : flowcell.screen.run.ScreenResult
    out_dir : path

    Returns
    -------
    Path
        ``screen_report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table: pd.DataFrame = result.table
    ok = table[table["status"] == "ok"].reset_index(drop=True) if "status" in table else table
    lines = ["# Electrolyte screen", "",
             f"Written {datetime.now().astimezone().isoformat(timespec='seconds')} by flowcell.screen.run "
             f"({result.executor}, {result.workers} worker(s)).", "",
             "Parameters with 95 % profile-likelihood intervals, one row per experiment; rank 1 = smallest. "
             "Capacity fade = % of active quinone lost in one day of rest from SOC 0.5 with the fitted model "
             "(interval from the corners of the k_dec / J_e intervals).", ""]
    params = _fitted_params(table)
    head = ["experiment", "quinone", "C (M)", "T (K)", "status"] + [LABELS.get(p, p) for p in params]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        cells = [str(r["experiment"]), str(r.get("quinone", "")), _fmt(r.get("concentration_M")),
                 _fmt(r.get("temperature_K")), str(r.get("status", ""))]
        for p in params:
            c = f"{_fmt(r[p])} [{_fmt(r[f'{p}_lo'])}, {_fmt(r[f'{p}_hi'])}]"
            if f"{p}_true" in table and np.isfinite(float(r[f"{p}_true"])):
                c += f" (true {_fmt(r[f'{p}_true'])}{'' if r[f'{p}_inside'] else ', OUTSIDE'})"
            cells.append(c)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    inside_cols = [c for c in table.columns if c.endswith("_inside")]
    if inside_cols:
        vals = [v for c in inside_cols for v in table[c] if v is not None and not (isinstance(v, float) and math.isnan(v))]
        lines += [f"True values inside their 95 % interval: **{sum(bool(v) for v in vals)} of {len(vals)}**.", ""]
    if len(ok) and params:
        plot_parameters(ok, out / "parameters.png", params)
        lines += ["![parameters with 95 % intervals](parameters.png)", ""]
    if len(ok) and "temperature_K" in ok and ok["temperature_K"].nunique() > 1:
        path, fits = plot_arrhenius(ok, out / "arrhenius.png")
        if path is not None:
            lines += ["## Arrhenius", "", "| parameter | Ea (kJ/mol) | ln A | points |", "|---|---|---|---|"]
            lines += [f"| {f.parameter} | {f.Ea_J_mol / 1e3:.2f} ± {f.Ea_err_J_mol / 1e3:.2f} | "
                      f"{f.lnA:.2f} ± {f.lnA_err:.2f} | {f.n} |" for f in fits]
            lines += ["", "![Arrhenius plot](arrhenius.png)", ""]
    groups = getattr(result, "groups", None)
    if groups is not None and len(groups):
        lines += ["## Global fits (shared parameters)", "",
                  "| group | parameter | experiment | value | 95 % interval | truth | flags |",
                  "|---|---|---|---|---|---|---|"]
        for _, r in groups.iterrows():
            lines.append(f"| {r['group']} | {r['parameter']} | {r['experiment'] or '(shared)'} | {_fmt(r['value'])} | "
                         f"[{_fmt(r['ci95_lo'])}, {_fmt(r['ci95_hi'])}] | {_fmt(r['truth'])} | {r['flags']} |")
        lines.append("")
    t = result.timings
    lines += ["## Run", "",
              f"- reprocessed {int(t.get('n_spectra', 0))} spectra in {t.get('reprocess_s', 0):.1f} s; "
              f"{int(t.get('n_fits', 0))} fit(s) in {t.get('fit_s', 0):.1f} s; "
              f"{int(t.get('n_groups', 0))} global fit(s) in {t.get('group_s', 0):.1f} s",
              *[f"- {stage}: recomputed {', '.join(ids) if ids else 'nothing (cached)'}"
                for stage, ids in result.recomputed.items()], ""]
    if result.failures:
        lines += ["## Failures", ""] + [f"- {f}" for f in result.failures] + [""]
    path = out / "screen_report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
