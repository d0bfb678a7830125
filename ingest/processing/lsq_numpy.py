"""Small nonlinear least squares in plain numpy: the per-spectrum line fits of the live path.

:func:`lm_numpy` is Levenberg-Marquardt for a few parameters with an analytic Jacobian
(the Lorentzian of :func:`ingest.processing.peaks.fit_peak` with ``solver='numpy'``, the
EPR line of :func:`ingest.processing.epr_linefit.fit_line`): the same optimum as MINPACK's
``lmder`` without scipy's or lmfit's per-call set-up, which dominated fits of a few
hundred points (tests/test_live_fast.py compares both).  Also the NMR line model
(:func:`lorentz_line`, :func:`lorentz_line_jac`) and :func:`lm_compiled_lorentz`, the same
fit compiled with numba (:mod:`ingest.processing.lorentz_nb`, the optional ``fast``
extra; None without numba, then the numpy version is used).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from ingest.processing import lorentz_nb

__all__ = ["LMResult", "lm_compiled_lorentz", "lm_numpy", "lorentz_line", "lorentz_line_jac",
           "warm_up_compiled_fit"]


@dataclass
class LMResult:
    """The fields of scipy's ``OptimizeResult`` that the line fits read."""

    x: np.ndarray
    fun: np.ndarray
    jac: np.ndarray
    success: bool


def lm_numpy(resid: Callable[[np.ndarray], np.ndarray], jac: Callable[[np.ndarray], np.ndarray], p0: np.ndarray,
             lb: np.ndarray, ub: np.ndarray, *, max_iter: int = 100, rtol: float = 1e-9,
             lam0: float = 1e-6) -> LMResult:
    """Levenberg-Marquardt in plain numpy for a few parameters (the per-spectrum line fits).

    The same least-squares problem and the same optimum as MINPACK's ``lmder``
    (``scipy.optimize.least_squares(method='lm')``) within ``rtol`` of each parameter,
    without scipy's per-call set-up (~0.6 ms, most of a warm-started fit of a few hundred
    points).  Marquardt's diagonal scaling; a step is accepted when it lowers the sum of
    squares; converged when the step is below ``rtol`` of the parameters (norms scaled by
    the Jacobian's column norms, MINPACK's ``xtol`` test) or the sum of squares moves by less
    than ``1e-14`` (relative).  Returns an object with ``x``,
    ``fun``, ``jac`` (at ``x``) and ``success``; ``success`` is False when it did not
    converge or left the bounds ``lb``/``ub`` (the caller then uses MINPACK/TRF).

    Parameters
    ----------
    resid, jac : callable
        Parameters -> residuals (m,), and -> Jacobian (m, k).
    p0, lb, ub : ndarray, shape (k,)
        Start and bounds (the bounds are checked, not enforced).
    max_iter : int
    rtol : float
        Relative step of convergence (scaled norms).
    lam0 : float
        Initial damping: small (1e-6) from a start near the optimum (the previous spectrum's
        line), MINPACK-like (1e-3) from a rough guess.
    """
    q = np.array(p0, dtype=float)
    r = resid(q)
    cost = float(r @ r)
    lam = lam0
    ok = False
    prev_ratio = math.inf
    J = jac(q)
    for _ in range(max_iter):
        A = J.T @ J
        g = J.T @ r
        d = np.diag(A).copy()
        d[d <= 0] = 1.0
        moved = False
        while lam < 1e12:
            try:
                step = np.linalg.solve(A + lam * np.diag(d), -g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            qn = q + step
            rn = resid(qn)
            cn = float(rn @ rn)
            if np.isfinite(cn) and cn <= cost:
                # the step small against the parameters, both scaled by the Jacobian's column
                # norms (MINPACK's xtol test; a parameter near zero does not stall it).  Once
                # the steps shrink quadratically (undamped Gauss-Newton near the optimum: each
                # ~ the previous one squared), a step of relative size e leaves ~e^2: below
                # 1e-4 the optimum is then within ~1e-8, and one more step is saved
                sd = np.sqrt(d)
                ratio = float(np.linalg.norm(sd * step) / (np.linalg.norm(sd * qn) or 1.0))
                quad = lam <= 1e-6 and ratio <= 1e-4 and ratio <= 10.0 * prev_ratio * prev_ratio
                small = ratio <= rtol or quad
                prev_ratio = ratio
                flat = cost - cn <= 1e-14 * cost
                q, r, cost, moved = qn, rn, cn, True
                lam = max(lam * 0.1, 1e-12)
                ok = small or flat
                break
            lam *= 10.0
        J = jac(q)
        if not moved or ok:
            ok = ok or not moved and cost == 0.0
            break
    inside = bool(np.all(q >= lb) and np.all(q <= ub))
    return LMResult(q, r, J, bool(ok and inside and np.all(np.isfinite(q))))


def lorentz_line(x, amplitude, center, sigma, slope, intercept):
    """Area-normalised Lorentzian (HWHM ``sigma``) + straight line; x centred on the window."""
    return amplitude / np.pi * sigma / ((x - center) ** 2 + sigma**2) + slope * x + intercept


def lorentz_line_jac(x, amplitude, center, sigma):
    """Columns d/d(amplitude, center, sigma, slope, intercept) of :func:`lorentz_line`."""
    u = x - center
    uu = u * u
    d = uu + sigma * sigma
    k = (amplitude / np.pi) / (d * d)
    J = np.empty((x.size, 5))
    J[:, 0] = (sigma / np.pi) / d
    J[:, 1] = (2.0 * sigma) * k * u
    J[:, 2] = k * (uu - sigma * sigma)
    J[:, 3] = x
    J[:, 4] = 1.0
    return J


def lm_compiled_lorentz(xc: np.ndarray, y: np.ndarray, q0: np.ndarray, lb: np.ndarray, ub: np.ndarray,
                        lam0: float) -> Any:
    """:func:`ingest.processing.lorentz_nb.lm_lorentz` (numba, all five parameters free) in
    the form of :func:`lm_numpy`'s result (``jac`` and ``fun`` None, ``jtj`` and the sum of
    squares ``chi2`` given); None without numba
    or with ``FLOWCELL_NUMBA=0`` (the numpy version is used).

    Unset ``FLOWCELL_NUMBA``: numba is loaded on the first call (or earlier by
    :func:`warm_up_compiled_fit`, which the live watcher starts in a background thread).
    """
    k = lorentz_nb.load_kernels()
    if k is None:
        return None
    q = np.array(q0, dtype=float)
    jtj = np.empty((5, 5))
    xs, ys = np.ascontiguousarray(xc, dtype=float), np.ascontiguousarray(y, dtype=float)
    ok, chi2 = k.lm_lorentz(q, xs, ys, np.ones_like(xs), float(lam0), 1e-9, 100, jtj)
    inside = bool((q >= lb).all() and (q <= ub).all())
    # ``chi2``: the kernel's sum of squared residuals at the optimum (the residual vector itself,
    # ~10 array operations over the window, is not needed by the line fit)
    return SimpleNamespace(x=q, fun=None, chi2=float(chi2), jac=None, jtj=jtj,
                           success=bool(ok and inside and np.isfinite(q).all()))


def warm_up_compiled_fit() -> bool:
    """Load (or compile, the first time on a machine: seconds) the numba line fits now rather
    than on the first spectrum of a live run (:func:`ingest.processing.lorentz_nb.warm_up`);
    True when they are available."""
    return lorentz_nb.warm_up()
