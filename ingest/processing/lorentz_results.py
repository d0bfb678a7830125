"""Results of the batch Lorentzian fits (:mod:`ingest.processing.lorentz_batch`): PeakFits from
the optimum, fit_peak's standard errors and warnings.

* :func:`_results`: the PeakFits of one stride group (numpy steps);
* :func:`_cov_diag`: the diagonal of ``inv(J^T J)``, batched;
* :func:`_inflation`: fit_peak's factor on the errors, ``sqrt(noise_corr)`` per point kept;
* :func:`_new_fit`: ``PeakFit(*values)`` without the frozen dataclass's ``__init__`` (one
  ``object.__setattr__`` a field; thousands of fits a second).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ingest.processing.peaks import PeakFit

NAN = float("nan")


def _inflation(noise_corr: float, stride: int) -> float:
    """fit_peak's factor on the standard errors: ``sqrt(noise_corr)`` per point kept (every ``stride``-th)."""
    corr = max(1.0, noise_corr / stride) if stride > 1 else noise_corr
    return math.sqrt(max(1.0, float(corr))) if corr != 1.0 else 1.0


def _results(q: np.ndarray, chi2: np.ndarray, ok: np.ndarray, JTJ: np.ndarray, lb: np.ndarray, ub: np.ndarray,
             npts: np.ndarray, c: np.ndarray, wins: np.ndarray, stride: int, sfo1_hz: float, noise: float,
             noise_corr: float) -> list[PeakFit | None]:
    """The PeakFits of one stride group from its optimum ``q`` (x centred on ``c``, ppm),
    chi-square, convergence flags and ``J^T J``: fit_peak's standard errors (``inv(J^T J)``
    scaled by the reduced chi-square, then by ``sqrt(noise_corr)`` per point kept) and
    warnings; None where the optimum is outside the bounds or did not converge."""
    infl = _inflation(noise_corr, stride)
    to_hz = sfo1_hz * 1e-6
    inside = np.all((q >= lb) & (q <= ub), axis=1) & ok
    redchi = chi2 / np.maximum(1, npts - 5)
    dg = _cov_diag(JTJ)
    err = np.sqrt(np.clip(dg * redchi[:, None], 0, None))
    ok_cov = np.isfinite(err).all(1)
    lo, hi = wins[:, 0], wins[:, 1]
    a, sg, cc = q[:, 0], q[:, 2], q[:, 1] + c
    ae, ce, se = err[:, 0] * infl, err[:, 1] * infl, err[:, 2] * infl
    height = a / (math.pi * sg)
    edge = np.maximum(sg, 0.02 * (hi - lo))
    at_edge = (cc - lo < edge) | (hi - cc < edge)
    wide = 2 * sg > 0.5 * (hi - lo)
    cols = zip(inside.tolist(), ok_cov.tolist(), at_edge.tolist(), wide.tolist(), cc.tolist(), ce.tolist(),
               (2 * sg * to_hz).tolist(), (2 * se * to_hz).tolist(), (a * to_hz).tolist(), (ae * to_hz).tolist(),
               height.tolist(), (height / noise).tolist(), redchi.tolist(), lo.tolist(), hi.tolist(), npts.tolist())
    return _peak_fits(cols)


def _cov_diag(JTJ: np.ndarray) -> np.ndarray:
    """Diagonal of ``inv(J^T J)`` of every row (B, 5): one batched LAPACK call, row by row
    when a row is singular (NaN there)."""
    try:
        return np.einsum("bii->bi", np.linalg.inv(JTJ))  # all rows at once
    except np.linalg.LinAlgError:  # one singular row: row by row
        dg = np.full(JTJ.shape[:2], NAN)
        for g in range(JTJ.shape[0]):
            try:
                dg[g] = np.diag(np.linalg.inv(JTJ[g]))
            except np.linalg.LinAlgError:
                pass  # NaN errors: "uncertainties not estimated"
        return dg


def _peak_fits(cols: Any) -> list[PeakFit | None]:
    """PeakFits (None outside the bounds) from the columns of :func:`_results`."""
    res: list[PeakFit | None] = []
    for ins, okc, edg, wd, cc_, ce_, fw, fwe, ar, are, ht, snr, rc, lo_, hi_, n in cols:
        if not ins:
            res.append(None)  # fit_peak's bounded refit decides
            continue
        warn = () if okc else ("uncertainties not estimated",)
        if edg:
            warn += ("peak at window edge",)
        if wd:
            warn += ("peak wider than half the window",)
        res.append(_new_fit(cc_, ce_, fw, fwe, ar, are, ht, snr, rc, okc, (lo_, hi_), int(n), "lorentzian", warn))
    return res


_FIELDS = tuple(f.name for f in dataclasses.fields(PeakFit))
_NO_PEAK = ("no peak above noise",)
_object_new = object.__new__


def _new_fit(*values: Any) -> PeakFit:
    """``PeakFit(*values)`` without the frozen dataclass's ``__init__`` (one ``object.__setattr__``
    a field; thousands of fits a second): the same object, field for field
    (tests/test_lorentz_rows_nb.py; PeakFit has no ``__post_init__`` and no slots)."""
    pf = _object_new(PeakFit)
    pf.__dict__.update(zip(_FIELDS, values))
    return pf
