"""What a kinetic fit returns: :class:`FitResult` (values, profile intervals, flags,
goodness of fit) and :class:`Profile`; :func:`jsonable` makes any of it JSON-safe."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import lmfit
import numpy as np
import pandas as pd
from scipy import stats

from kinetics import goodness
from kinetics.fit_problem import FitWarning

__all__ = ["FitResult", "Profile", "jsonable"]


def significant_digits(value: float, width: float) -> int:
    """Significant digits (4 to 9) that resolve an interval of ``width`` around ``value``.

    Four digits unless the interval is narrower than that shows: a water reference of
    4.7900 ± 1e-4 ppm must not print as ``[4.79, 4.79]``.
    """
    if not (np.isfinite(value) and np.isfinite(width)) or width <= 0 or value == 0:
        return 4
    return int(min(9, max(4, np.ceil(np.log10(abs(value) / width)) + 2)))

@dataclass
class Profile:
    """Profile likelihood of one parameter (natural units).

    ``lo``/``hi`` are the 95 % limits or None on a side where Δχ² never reached
    ``threshold`` inside the bounds (unbounded).  ``x`` and ``dchi2`` hold the scan.
    """

    name: str
    lo: float | None
    hi: float | None
    x: np.ndarray
    dchi2: np.ndarray
    threshold: float
    log10: bool



def jsonable(obj: Any, *, nan_to_none: bool = True) -> Any:
    """Make ``obj`` JSON-safe: numpy scalars to Python, paths and times to strings.

    Parameters
    ----------
    obj : any
        Nested dicts / lists / tuples of numbers, strings, numpy scalars, paths, datetimes.
    nan_to_none : bool
        Replace NaN and inf by None (strict JSON); False keeps them (Python's json writes NaN).
    """
    from datetime import datetime as _dt
    from pathlib import Path as _Path

    if isinstance(obj, dict):
        return {str(k): jsonable(v, nan_to_none=nan_to_none) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, nan_to_none=nan_to_none) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if (np.isfinite(obj) or not nan_to_none) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (_dt, pd.Timestamp)):
        return obj.isoformat()
    if isinstance(obj, _Path):
        return str(obj)
    return obj



@dataclass
class FitResult:
    """Result of :func:`fit`.

    Attributes
    ----------
    values : dict[str, float]
        Best-fit values of the free parameters, natural units (per-experiment
        ones as ``name__experiment``).
    stderr : dict[str, float or None]
        Covariance (delta-method) standard errors, natural units.  Only meaningful
        for parameters without flags; prefer ``ci95``.
    ci95 : dict[str, (lo, hi) or None]
        Profile-likelihood 95 % intervals; None when unbounded on either side or
        not computed.
    profiles : dict[str, Profile]
    correlations : DataFrame
        Correlation matrix of the free parameters (internal, i.e. log10, scale).
    flags : dict[str, list[str]]
    chi2, redchi : float
    ndata, nfree, nfev : int
    success : bool
    message : str
    log10 : dict[str, bool]
        Whether each parameter was fitted as log10.
    fixed : dict[str, float]
        The base values of every non-free parameter used.
    elapsed_s : float
    """

    values: dict[str, float]
    stderr: dict[str, float | None]
    ci95: dict[str, tuple[float, float] | None]
    profiles: dict[str, Profile]
    correlations: pd.DataFrame
    flags: dict[str, list[str]]
    chi2: float
    redchi: float
    ndata: int
    nfree: int
    nfev: int
    success: bool
    message: str
    log10: dict[str, bool]
    fixed: dict[str, float]
    elapsed_s: float
    warnings: list[str] = field(default_factory=list)
    _prob: Any = field(default=None, repr=False)
    _params: Any = field(default=None, repr=False)
    mcmc_summary: dict[str, tuple[float, float, float]] | None = None
    mcmc_result: Any = field(default=None, repr=False)
    checks: list[Any] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    refits: int = 0
    starts: list[dict[str, Any]] = field(default_factory=list)

    # -- goodness of fit ---------------------------------------------------
    @property
    def misfit_reasons(self) -> list[str]:
        """Why the residuals say the model does not describe the data (empty: no evidence);
        see :mod:`kinetics.goodness`."""
        return goodness.summarise_checks(self.checks)

    @property
    def misfit(self) -> bool:
        """True when a residual-structure test of some observed column fails."""
        return bool(self.misfit_reasons)

    @property
    def criteria(self) -> dict[str, float]:
        """AIC, AICc and BIC (:func:`kinetics.goodness.information_criteria`)."""
        return goodness.information_criteria(self.chi2, self.ndata, self.nfree)

    @property
    def chi2_pvalue(self) -> float:
        """P(χ² ≥ observed) for ``ndata - nfree`` degrees of freedom (with the σ given)."""
        return float(stats.chi2.sf(self.chi2, max(self.ndata - self.nfree, 1)))

    @property
    def status(self) -> str:
        """'MODEL REJECTED by its residuals', 'NOT converged' or 'converged' (in that precedence)."""
        if self.misfit:
            return "MODEL REJECTED by its residuals"
        return "converged" if self.success else "NOT converged"

    # -- access -----------------------------------------------------------
    @property
    def params(self) -> dict[str, float]:
        """Alias of :attr:`values` (architecture contract)."""
        return self.values

    @property
    def ci(self) -> dict[str, tuple[float, float] | None]:
        """Alias of :attr:`ci95`."""
        return self.ci95

    def predict(self) -> dict[str, pd.DataFrame]:
        """Best-fit predictions on each experiment's data times (name -> DataFrame)."""
        preds = self._prob.predictions(self._params)
        out = {}
        for (e, *_), pred in zip(self._prob.blocks, preds):
            pred = pred.copy()
            pred["t_s"] = np.asarray(e.data["t_s"], dtype=float)
            out[e.name] = pred
        return out

    def _digits(self, name: str) -> int:
        """:func:`significant_digits` for ``name``'s value and its profile interval."""
        pr = self.profiles.get(name)
        if pr is None or pr.lo is None or pr.hi is None:
            return 4
        return significant_digits(self.values.get(name, np.nan), pr.hi - pr.lo)

    def interval_text(self, name: str) -> str:
        """The 95 % interval as text, e.g. ``[1.2e-06, 3.4e-06]`` or ``[2.0e+05, ∞)``."""
        pr = self.profiles.get(name)
        if pr is None:
            return "not computed"
        sig = self._digits(name)
        lo = "0" if (pr.lo is None and pr.log10) else ("-inf" if pr.lo is None else f"{pr.lo:.{sig}g}")
        hi = "inf" if pr.hi is None else f"{pr.hi:.{sig}g}"
        lb = "(" if pr.lo is None else "["
        rb = ")" if pr.hi is None else "]"
        return f"{lb}{lo}, {hi}{rb}"

    def report(self) -> str:
        """A readable table: value, ± (covariance), 95 % profile interval, flags; goodness of fit."""
        logs = [n for n in self.values if self.log10.get(n)]
        lines = [
            f"fit: {self.status} ({self.message}); chi2 = {self.chi2:.4g}, reduced chi2 = {self.redchi:.4g} "
            f"(p = {self.chi2_pvalue:.2g}), N = {self.ndata}, free = {self.nfree}, nfev = {self.nfev}, "
            f"{self.elapsed_s:.2f} s",
            "values in natural units" + (f"; fitted on a log10 scale: {', '.join(logs)}" if logs else ""),
            f"{'parameter':<20}{'value':>12}{'± (covar)':>12}  {'95% profile interval':<28}flags",
        ]
        for n, v in self.values.items():
            se = self.stderr.get(n)
            se_s = "n/a" if se is None or not np.isfinite(se) else f"{se:.3g}"
            fl = "; ".join(self.flags.get(n, [])) or "-"
            lines.append(f"{n:<20}{v:>12.{self._digits(n)}g}{se_s:>12}  {self.interval_text(n):<28}{fl}")
        if any(self.flags.values()):
            lines.append("Flagged parameters: do not quote the covariance ± for them; "
                         "use the profile interval (unbounded means not identifiable from these data).")
        if self.checks:
            lines.append(f"{'residuals':<20}{'n':>5}{'scatter':>9}{'runs (exp.)':>14}{'lag-1 r':>9}  verdict")
            for c in self.checks:
                runs = f"{c.runs:.0f} ({c.runs_expected:.1f})" if np.isfinite(c.runs_expected) else "-"
                rho = f"{c.rho1:+.2f}" if np.isfinite(c.rho1) else "-"
                verdict = "; ".join(c.failed) if c.failed else ("ok (" + "; ".join(c.notes) + ")" if c.notes else "ok")
                lines.append(f"{c.column:<20}{c.n:>5}{c.scatter:>9.3g}{runs:>14}{rho:>9}  {verdict}")
        if self.excluded:
            lines.append(f"{len(self.excluded)} point(s) left out as outliers (see 'excluded')")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.report()

    def to_frame(self) -> pd.DataFrame:
        """One row per free parameter: value, stderr, ci_lo, ci_hi, log10, flags."""
        rows = []
        for n, v in self.values.items():
            pr = self.profiles.get(n)
            rows.append({
                "parameter": n,
                "value": v,
                "stderr": self.stderr.get(n),
                "ci_lo": None if pr is None else pr.lo,
                "ci_hi": None if pr is None else pr.hi,
                "log10": self.log10.get(n, False),
                "flags": "; ".join(self.flags.get(n, [])),
            })
        return pd.DataFrame(rows).set_index("parameter")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (NaN/inf become None)."""
        d = {
            "values": self.values,
            "stderr": self.stderr,
            "ci95": {k: (None if v is None else list(v)) for k, v in self.ci95.items()},
            "profile_limits": {k: [p.lo, p.hi] for k, p in self.profiles.items()},
            "correlations": self.correlations.to_dict(),
            "flags": self.flags,
            "chi2": self.chi2,
            "redchi": self.redchi,
            "ndata": self.ndata,
            "nfree": self.nfree,
            "nfev": self.nfev,
            "success": self.success,
            "message": self.message,
            "log10": self.log10,
            "fixed": self.fixed,
            "elapsed_s": self.elapsed_s,
            "warnings": self.warnings,
            "mcmc": self.mcmc_summary,
            "status": self.status,
            "misfit": self.misfit,
            "misfit_reasons": self.misfit_reasons,
            "chi2_pvalue": self.chi2_pvalue,
            "criteria": self.criteria,
            "residual_checks": [c.to_dict() for c in self.checks],
            "excluded": self.excluded,
            "refits": self.refits,
            "starts": self.starts,
        }
        out = jsonable(d)
        json.dumps(out)  # guarantee
        return out

    def plot(self, path: Any = None) -> Any:
        """Data vs model per observable with residuals (matplotlib Agg); saves to ``path``."""
        from kinetics.plots import plot_fit

        return plot_fit(self, path)

    def mcmc(self, steps: int = 1000, *, nwalkers: int | None = None, burn: int | None = None,
             thin: int = 1, seed: int = 0, progress: bool = False) -> dict[str, tuple[float, float, float]]:
        """Posterior sampling with emcee (lmfit ``Minimizer.emcee``).

        Uniform priors on the fitted (log10 for rate constants) scale inside the
        bounds; the likelihood uses the given σ (``is_weighted=True``).

        Returns
        -------
        dict name -> (median, 2.5 %, 97.5 %) in natural units; also stored in
        :attr:`mcmc_summary` and the raw lmfit result in ``self.mcmc_result``.
        """
        params = self._params.copy()
        for p in params.values():
            if not np.isfinite(p.min) or not np.isfinite(p.max):
                warnings.warn(f"parameter {p.name} has an infinite bound: the flat prior is improper", FitWarning)
        nw = nwalkers or max(4 * len(params), 16)
        nw += nw % 2
        mini = lmfit.Minimizer(self._prob.residual, params, nan_policy="raise")
        res = mini.emcee(params=params, steps=steps, nwalkers=nw, burn=burn if burn is not None else steps // 4,
                         thin=thin, is_weighted=True, seed=seed, progress=progress)
        summ = {}
        for disp, iname in self._prob.internal.items():
            ch = res.flatchain[iname].to_numpy()
            if iname.startswith("log10_"):
                ch = 10.0**ch
            q = np.percentile(ch, [50, 2.5, 97.5])
            summ[disp] = (float(q[0]), float(q[1]), float(q[2]))
        self.mcmc_summary = summ
        self.mcmc_result = res
        return summ

