"""Goodness of fit: does the model describe the data, and which model describes it best?

Residual-structure tests per observable (residuals normalised by their sigma, in time
order):

* **runs test** (Wald–Wolfowitz) on the signs: a model that misses a trend leaves long
  runs of one sign, i.e. too few runs.  One-sided p-value from the normal approximation
  ``z = (runs - mu) / sd`` with ``mu = 2 n+ n- / n + 1``.
* **lag-1 autocorrelation** ``rho1 = sum r_i r_{i+1} / sum r_i^2`` (residuals centred);
  for white noise ``rho1 sqrt(n)`` is ~N(0, 1).  One-sided p-value (positive correlation).
* **scatter** ``rms(r)``: with the extractors' own sigmas it should be ~1; a column
  whose scatter exceeds :data:`SCATTER_MAX` is not described by the model (or its
  sigma is wrong by more than the stated bound).

A column fails when either p-value is below :data:`MISFIT_ALPHA` (1e-3: about 0.8 %
false alarms over four observables and two tests on correct models) and the structured
part of its residuals is at least :data:`STRUCTURE_MIN` sigma, or when its scatter is
above :data:`SCATTER_MAX`.

Model comparison (Gaussian errors of known sigma, so ``-2 ln L = chi2 + const``):
``AIC = chi2 + 2k``, ``AICc = AIC + 2k(k+1)/(n-k-1)``, ``BIC = chi2 + k ln n``; nested
models by the likelihood-ratio test ``chi2_small - chi2_big ~ chi2(ddof)`` (a parameter
on its boundary, e.g. a dimer constant of 0: the 50:50 mixture of chi2(0) and chi2(1)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "MIN_POINTS",
    "MISFIT_ALPHA",
    "SCATTER_MAX",
    "STRUCTURE_MIN",
    "ResidualCheck",
    "check_residuals",
    "information_criteria",
    "lag1_autocorrelation",
    "likelihood_ratio",
    "runs_test",
]

#: Significance level of each residual-structure test (one-sided).
MISFIT_ALPHA = 1e-3
#: Largest rms of normalised residuals accepted as "sigma slightly underestimated" (and
#: the largest factor a fit may rescale a sigma by); above it the model is rejected.
SCATTER_MAX = 3.0
#: Fewer points in a column than this: the structure tests are not run on it.
MIN_POINTS = 8
#: Size (in sigma) of the structured part of the residuals, ``rms sqrt(max(rho1, 0))``, from
#: which significant structure rejects the model; smaller structure (e.g. a processing
#: systematic at a tenth of a conservative sigma) is reported but cannot move a parameter
#: beyond its interval.
STRUCTURE_MIN = 1.0


@dataclass
class ResidualCheck:
    """Residual diagnostics of one observed column of one experiment.

    Attributes
    ----------
    experiment, column : str
    n : int
        Points used.
    chi2 : float
        Sum of squared normalised residuals.
    scatter : float
        rms of the normalised residuals (1 when the sigma is right).
    runs, runs_expected : float
        Sign runs observed and expected for white noise.
    runs_p : float
        One-sided p-value of too few runs (NaN when not tested).
    rho1, rho1_p : float
        Lag-1 autocorrelation and its one-sided p-value.
    failed : list of str
        Why the column says the model is wrong (empty: no evidence).
    notes : list of str
        Significant residual structure too small to matter (below :data:`STRUCTURE_MIN` σ).
    """

    experiment: str
    column: str
    n: int
    chi2: float
    scatter: float
    runs: float
    runs_expected: float
    runs_p: float
    rho1: float
    rho1_p: float
    failed: list[str]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def runs_test(r: np.ndarray) -> tuple[int, float, float]:
    """Wald–Wolfowitz runs test on the signs of ``r`` (zeros dropped).

    Returns
    -------
    (runs, expected, p) : (int, float, float)
        Observed runs, expected runs, one-sided p-value of as few runs or fewer
        (normal approximation; NaN with fewer than 2 of either sign).
    """
    s = np.sign(np.asarray(r, float))
    s = s[s != 0]
    n1, n2 = int((s > 0).sum()), int((s < 0).sum())
    n = n1 + n2
    runs = int(1 + np.count_nonzero(s[1:] != s[:-1])) if n else 0
    if n1 < 2 or n2 < 2:
        return runs, math.nan, math.nan
    mu = 2.0 * n1 * n2 / n + 1.0
    var = 2.0 * n1 * n2 * (2.0 * n1 * n2 - n) / (n * n * (n - 1.0))
    z = (runs - mu + 0.5) / math.sqrt(var) if var > 0 else 0.0  # continuity correction
    return runs, mu, float(stats.norm.cdf(z))


def lag1_autocorrelation(r: np.ndarray) -> tuple[float, float]:
    """Lag-1 autocorrelation of ``r`` and its one-sided p-value (``rho1 sqrt(n)`` ~ N(0, 1))."""
    x = np.asarray(r, float)
    x = x[np.isfinite(x)]
    if x.size < 3:
        return math.nan, math.nan
    x = x - x.mean()
    den = float(np.sum(x * x))
    if den <= 0:
        return 0.0, 1.0
    rho = float(np.sum(x[:-1] * x[1:]) / den)
    return rho, float(stats.norm.sf(rho * math.sqrt(x.size)))


def check_residuals(experiment: str, column: str, t: np.ndarray, r: np.ndarray, *,
                    alpha: float = MISFIT_ALPHA, scatter_max: float = SCATTER_MAX,
                    scatter: float | None = None) -> ResidualCheck:
    """Residual diagnostics of one column: scatter, runs test, lag-1 autocorrelation.

    Parameters
    ----------
    t : ndarray
        Times (s), to order the residuals.
    r : ndarray
        Normalised residuals ``(model - data) / sigma``; NaN entries are ignored.
    scatter : float, optional
        The rms to judge against ``scatter_max`` (e.g. with the extractors' sigmas,
        before any rescaling); default the rms of ``r``.
    """
    t = np.asarray(t, float)
    r = np.asarray(r, float)
    ok = np.isfinite(r) & np.isfinite(t)
    t, r = t[ok], r[ok]
    order = np.argsort(t, kind="stable")
    r = r[order]
    n = int(r.size)
    chi2 = float(np.sum(r * r))
    rms = math.sqrt(chi2 / n) if n else math.nan
    sc = rms if scatter is None else float(scatter)
    failed: list[str] = []
    notes: list[str] = []
    runs, mu, p_runs, rho, p_rho = 0, math.nan, math.nan, math.nan, math.nan
    if n >= MIN_POINTS:
        runs, mu, p_runs = runs_test(r)
        rho, p_rho = lag1_autocorrelation(r)
        structure = []
        if np.isfinite(p_runs) and p_runs < alpha:
            structure.append(f"{runs} sign runs where {mu:.1f} are expected (p = {p_runs:.1e})")
        if np.isfinite(p_rho) and p_rho < alpha:
            structure.append(f"lag-1 autocorrelation {rho:+.2f} (p = {p_rho:.1e})")
        # the structured part of the residuals, in sigma: what a wrong model leaves
        size = rms * math.sqrt(max(rho, 0.0)) if np.isfinite(rho) else rms
        if structure and size >= STRUCTURE_MIN:
            failed += structure
        elif structure:
            notes += [f"{x}, but only {size:.2g} sigma in size" for x in structure]
    if np.isfinite(sc) and sc > scatter_max:
        failed.append(f"scatter {sc:.3g}x its sigma (> {scatter_max:g})")
    return ResidualCheck(experiment, column, n, chi2, sc, float(runs), float(mu), float(p_runs), float(rho),
                         float(p_rho), failed, notes)


def information_criteria(chi2: float, n: int, k: int) -> dict[str, float]:
    """AIC, AICc and BIC of a least-squares fit with known sigmas (``-2 ln L = chi2 + const``).

    Parameters
    ----------
    chi2 : float
        Minimum chi2.
    n, k : int
        Data points and free parameters.
    """
    aic = chi2 + 2.0 * k
    aicc = aic + (2.0 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else math.inf)
    return {"aic": aic, "aicc": aicc, "bic": chi2 + k * math.log(max(n, 1))}


def likelihood_ratio(chi2_small: float, chi2_big: float, ddof: int, *, boundary: bool = False) -> float:
    """p-value of the likelihood-ratio test of a nested model (``small`` inside ``big``).

    Parameters
    ----------
    chi2_small, chi2_big : float
        Minimum chi2 of the restricted and the general model (same data, same sigmas).
    ddof : int
        Extra free parameters of the general model.
    boundary : bool
        The restriction puts one parameter on its boundary (e.g. KD = 0): the statistic
        follows 0.5 chi2(0) + 0.5 chi2(1) (Self & Liang 1987).
    """
    lr = max(float(chi2_small) - float(chi2_big), 0.0)
    p = float(stats.chi2.sf(lr, ddof))
    return 0.5 * p if boundary and ddof == 1 else p


def summarise_checks(checks: Sequence[ResidualCheck]) -> list[str]:
    """One line per failed column: ``"<experiment> <column>: reason; reason"``."""
    return [f"{c.experiment} {c.column}: " + "; ".join(c.failed) for c in checks if c.failed]
