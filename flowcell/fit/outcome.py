"""What a fit through :mod:`flowcell.fit.pipeline` returns: :class:`FitOutcome` (one
experiment), :class:`GroupOutcome` (several, shared parameters) and their
:class:`GoodnessOfFit` (judged with the extractors' own sigmas; :mod:`kinetics.goodness`).

Split from :mod:`flowcell.fit.pipeline`, which re-exports every name here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flowcell.fit.data import FitData
from kinetics import goodness

__all__ = ["NUISANCE", "SIGMA_RESCALE_MAX", "FitOutcome", "GoodnessOfFit", "GroupOutcome"]

#: Nuisance parameters, always per experiment: the zero-radical water shift (ppm) and
#: the product-area scale (1 = the first-spectrum calibration).
NUISANCE = ("hdo_ref_ppm", "area_scale")


def _interval_row(result: Any, disp: str, truth: float) -> dict[str, Any]:
    ci = (result.ci95 or {}).get(disp)
    lo, hi = (ci if ci is not None else (math.nan, math.nan))
    lo = math.nan if lo is None else float(lo)
    hi = math.nan if hi is None else float(hi)
    se = (result.stderr or {}).get(disp)
    inside = bool(np.isfinite(truth) and np.isfinite(lo) and np.isfinite(hi) and lo <= truth <= hi)
    return {"value": float(result.values.get(disp, math.nan)), "stderr": math.nan if se is None else float(se),
            "ci95_lo": lo, "ci95_hi": hi, "truth": truth, "truth_inside": inside if np.isfinite(truth) else None,
            "flags": "; ".join((result.flags or {}).get(disp, []))}


#: Largest factor by which a fit may scale an observable's sigma up to its residual
#: scatter; a column that needs more says the model is wrong (kinetics.goodness.SCATTER_MAX).
SIGMA_RESCALE_MAX = goodness.SCATTER_MAX


@dataclass
class GoodnessOfFit:
    """How well the model describes the data, judged with the extractors' own sigmas.

    Attributes
    ----------
    chi2, redchi, ndata, pvalue : float, float, int, float
        χ² of the first fit with the sigmas of :func:`prepare_fit_data` (the larger of
        the floor and twice the extractor's median error), before any rescaling; its
        reduced value and P(χ² ≥ observed).
    scatter : dict
        ``"<experiment>:<column>"`` -> rms normalised residual with those sigmas.
    rescale : dict
        Same keys -> factor applied to the sigma afterwards (1 .. :data:`SIGMA_RESCALE_MAX`).
    misfit_reasons : list of str
        Residual tests that failed (scatter above the bound, runs, lag-1
        autocorrelation; :mod:`kinetics.goodness`); empty when nothing says the model is wrong.
    excluded : list of dict
        Points left out as outliers (experiment, column, t_s, value, reason).
    """

    chi2: float
    redchi: float
    ndata: int
    pvalue: float
    scatter: dict[str, float] = field(default_factory=dict)
    rescale: dict[str, float] = field(default_factory=dict)
    misfit_reasons: list[str] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)

    @property
    def misfit(self) -> bool:
        return bool(self.misfit_reasons)


@dataclass
class FitOutcome:
    """A finished single-experiment fit plus what it was fitted to."""

    result: Any
    fit_data: FitData
    free: list[str]
    prediction: pd.DataFrame | None = None
    truth: dict[str, float] | None = None
    gof: GoodnessOfFit | None = None

    @property
    def misfit(self) -> bool:
        """True when the residuals say the model does not describe the data."""
        return bool(self.gof.misfit) if self.gof is not None else bool(getattr(self.result, "misfit", False))

    @property
    def status(self) -> str:
        """'MODEL REJECTED by its residuals', 'NOT converged' or 'converged' (in that precedence)."""
        if self.misfit:
            return "MODEL REJECTED by its residuals"
        return "converged" if self.result.success else "NOT converged"

    def table(self) -> pd.DataFrame:
        """Parameter table: parameter, value, stderr, ci95_lo, ci95_hi, truth, truth_inside, flags."""
        rows = [dict(parameter=n, **_interval_row(self.result, n, float((self.truth or {}).get(n, math.nan))))
                for n in self.free]
        return pd.DataFrame(rows)

    def all_inside(self) -> bool:
        """True when every known true value lies inside its 95 % interval."""
        t = self.table()
        known = t[np.isfinite(t["truth"].astype(float))]
        return bool(len(known)) and bool(known["truth_inside"].all())


@dataclass
class GroupOutcome:
    """A finished fit of one or several experiments with shared parameters.

    Attributes
    ----------
    result : kinetics.fit.FitResult
        Per-experiment parameters are named ``<name>__<experiment key>`` when there is
        more than one experiment.
    fit_data : dict
        Experiment id -> :class:`FitData` (sigmas as finally used).
    experiments : list of kinetics.fit.Experiment
        As fitted (same order as ``fit_data``).
    free, shared : list of str
        Free parameters (with the nuisance ones) and those shared by all experiments.
    truth : dict
        Experiment id -> true values (simulations), may be empty.
    """

    result: Any
    fit_data: dict[str, FitData]
    experiments: list[Any]
    free: list[str]
    shared: list[str]
    truth: dict[str, dict[str, float]] = field(default_factory=dict)
    gof: GoodnessOfFit | None = None

    def table(self, *, nuisance: bool = False) -> pd.DataFrame:
        """One row per fitted parameter: parameter, experiment ('' when shared), value,
        stderr, ci95_lo, ci95_hi, truth, truth_inside, flags.

        A shared parameter's truth is used when every member has the same true value.
        ``nuisance=False`` leaves out ``hdo_ref_ppm`` and ``area_scale``.
        """
        key_of = {e.key: ident for ident, e in zip(self.fit_data, self.experiments)}
        rows = []
        for disp in self.result.values:
            base, _, key = disp.partition("__")
            if base in NUISANCE and not nuisance:
                continue
            ident = key_of.get(key, key) if key else ("" if len(self.fit_data) > 1 else next(iter(self.fit_data)))
            if key or len(self.fit_data) == 1:
                tv = float(self.truth.get(ident, {}).get(base, math.nan))
            else:
                vals = {float(t.get(base, math.nan)) for t in self.truth.values()} if self.truth else set()
                tv = vals.pop() if len(vals) == 1 else math.nan
            rows.append(dict(parameter=base, experiment=ident if key else "", **_interval_row(self.result, disp, tv)))
        return pd.DataFrame(rows)

    def values_for(self, ident: str) -> dict[str, float]:
        """All parameter values of one member (its fixed ones plus the fitted shared and own ones)."""
        e = dict(zip(self.fit_data, self.experiments))[ident]
        key = e.key
        p = dict(e.fixed)
        for disp, v in self.result.values.items():
            base, _, k = disp.partition("__")
            if not k or k == key:
                p[base] = float(v)
        return p
