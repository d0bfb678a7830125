"""Fit candidate mechanisms to the same data and rank them (``flowcell fit --compare``).

Each candidate is a mechanism spec: variant tokens of ``kinetics.library.VARIANTS``
joined by ``+`` (``"dec_H+dimer"``), ``"default"`` for the experiment file's own model,
or a path to a text file in the ``kinetics.network`` syntax.  Every candidate is fitted
by :func:`flowcell.fit.pipeline.fit_table` with the same free parameters (those its
network has), the extractors' sigmas and no sigma rescaling, so that the χ² values are
comparable: ``AIC = χ² + 2k``, ``BIC = χ² + k ln n`` (:mod:`kinetics.goodness`), the
Akaike weights ``exp(-ΔAIC/2)`` normalised, and the likelihood-ratio test for pairs
that nest (``kinetics.library.NESTING``: ``"dimer"`` adds KD, whose boundary 0 gives
back the other).  The residual tests say, for each candidate, whether it describes
the data at all: the best-ranked candidate can still be wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flowcell.fit.pipeline import DEFAULT_FREE, FitOutcome, fit_table
from flowcell.params import compiled_model
from kinetics import goodness, library

__all__ = ["Candidate", "Comparison", "candidate_config", "compare_mechanisms"]


@dataclass
class Candidate:
    """One fitted mechanism: its spec, the fit, and the criteria."""

    spec: str
    outcome: FitOutcome | None
    free: list[str]
    chi2: float = math.nan
    ndata: int = 0
    k: int = 0
    error: str = ""

    @property
    def criteria(self) -> dict[str, float]:
        return goodness.information_criteria(self.chi2, self.ndata, self.k) if self.outcome else {}

    @property
    def misfit(self) -> bool:
        return bool(self.outcome is not None and self.outcome.misfit)


@dataclass
class Comparison:
    """Candidates ranked by AIC, with nested likelihood-ratio tests.

    Attributes
    ----------
    candidates : list of Candidate
        In the order given.
    lrt : list of dict
        ``small``, ``big``, ``parameter``, ``p`` for every nested pair.
    notes : list of str
    """

    candidates: list[Candidate]
    lrt: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per candidate, best AIC first: spec, k, n, chi2, AIC, ΔAIC, weight, BIC,
        ΔBIC, misfit, the fitted free parameters (natural units)."""
        ok = [c for c in self.candidates if c.outcome is not None]
        rows = []
        for c in self.candidates:
            r: dict[str, Any] = {"mechanism": c.spec, "k": c.k, "n": c.ndata, "chi2": c.chi2}
            r.update(c.criteria)
            r["residuals"] = ("rejects it" if c.misfit else "ok") if c.outcome is not None else f"failed: {c.error}"
            if c.outcome is not None:
                for n in c.free:
                    r[n] = c.outcome.result.values.get(n, math.nan)
            rows.append(r)
        df = pd.DataFrame(rows)
        if ok:
            for crit in ("aic", "bic"):
                best = min(c.criteria[crit] for c in ok)
                df[f"d{crit}"] = df[crit] - best
            w = np.exp(-0.5 * df["daic"].to_numpy(float))
            df["weight"] = w / np.nansum(w)
            df = df.sort_values("aic", kind="stable").reset_index(drop=True)
        return df

    @property
    def best(self) -> Candidate | None:
        ok = [c for c in self.candidates if c.outcome is not None]
        return min(ok, key=lambda c: c.criteria["aic"]) if ok else None

    def report(self) -> str:
        """A plain-text table for the terminal and the report."""
        df = self.table()
        lines = [f"{'mechanism':<26}{'k':>3}{'n':>5}{'chi2':>11}{'dAIC':>9}{'weight':>8}{'dBIC':>9}  residuals"]
        for _, r in df.iterrows():
            if not np.isfinite(r.get("chi2", math.nan)):
                lines.append(f"{r['mechanism']:<26}  {r['residuals']}")
                continue
            lines.append(f"{r['mechanism']:<26}{int(r['k']):>3}{int(r['n']):>5}{r['chi2']:>11.5g}{r['daic']:>9.2f}"
                         f"{r['weight']:>8.3f}{r['dbic']:>9.2f}  {r['residuals']}")
        for t in self.lrt:
            lines.append(f"likelihood-ratio test {t['small']} inside {t['big']} ({t['parameter']} on its boundary): "
                         f"p = {t['p']:.3g}")
        lines += self.notes
        return "\n".join(lines)


def candidate_config(cfg: Any, spec: str) -> Any:
    """The experiment config with ``[model] mechanism`` (or ``network``) set to ``spec``.

    ``"default"`` keeps the file's own model; an existing file path is read as network text.
    """
    if spec in ("default", ""):
        return cfg
    p = Path(spec)
    if p.suffix in (".txt", ".net", ".rxn") and p.exists():
        return replace(cfg, model=replace(cfg.model, network=p.read_text(encoding="utf-8")))
    return replace(cfg, model=replace(cfg.model, mechanism=spec.strip()))


def _tokens(spec: str) -> set[str]:
    return {t.strip() for t in spec.split("+") if t.strip()} - {"dec_2H", "tautomer", "sd_O2", "default"}


def compare_mechanisms(table: pd.DataFrame, cfg: Any, potentiostat: pd.DataFrame, specs: Sequence[str], *,
                       free: Sequence[str] = DEFAULT_FREE, multistart: int = 8,
                       progress: Callable[[str], None] | None = None) -> Comparison:
    """Fit every candidate mechanism to the same data; rank them (see the module docstring).

    Parameters
    ----------
    table, cfg, potentiostat
        As :func:`flowcell.fit.pipeline.fit_table`.
    specs : sequence of str
        Candidate mechanisms (at least two).
    free : sequence of str
        Free parameters; each candidate fits those its network has, plus ``KD`` when
        its spec contains ``dimer``.
    progress : callable, optional
        Called with a line of text before each fit.
    """
    specs = [s.strip() for s in specs if s.strip()]
    if len(specs) < 2:
        raise ValueError(f"--compare needs at least two mechanisms, got {specs}")
    cands = []
    for spec in specs:
        c_cfg = candidate_config(cfg, spec)
        try:
            model = compiled_model(c_cfg)
        except Exception as exc:  # a bad spec: say so, compare the rest
            cands.append(Candidate(spec, None, [], error=str(exc)))
            continue
        names = set(model.param_names)
        fr = [n for n in free if n in names or n not in library.DEFAULTS]
        for tok, (par, _) in library.NESTING.items():
            if tok in _tokens(spec) and par not in fr:
                fr.append(par)
        if progress:
            progress(f"fitting mechanism {spec!r} (free {', '.join(fr)}) ...")
        try:
            out = fit_table(table, c_cfg, potentiostat, free=fr, model=model, conf_interval=False,
                            rescale_sigma=False, multistart=multistart)
        except Exception as exc:
            cands.append(Candidate(spec, None, fr, error=f"{type(exc).__name__}: {exc}"))
            continue
        r = out.result
        cands.append(Candidate(spec, out, fr, chi2=float(r.chi2), ndata=int(r.ndata), k=int(r.nfree)))
    comp = Comparison(cands)
    ok = [c for c in cands if c.outcome is not None]
    if len({c.ndata for c in ok}) > 1:
        comp.notes.append("note: the candidates kept different numbers of points (outliers left out differ); "
                          "their chi2 values are not strictly comparable")
    for a in ok:
        for b in ok:
            extra = _tokens(b.spec) - _tokens(a.spec)
            if _tokens(a.spec) < _tokens(b.spec) and len(extra) == 1 and next(iter(extra)) in library.NESTING:
                par = library.NESTING[next(iter(extra))][0]
                p = goodness.likelihood_ratio(a.chi2, b.chi2, b.k - a.k, boundary=True)
                comp.lrt.append({"small": a.spec, "big": b.spec, "parameter": par, "p": p})
    return comp
