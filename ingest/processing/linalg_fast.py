"""``np.linalg.inv`` and ``np.linalg.cholesky`` of small float64 matrices without their wrappers.

The public functions check and convert their argument and set up numpy's error state before
the LAPACK call (~7-10 us each); the live path inverts a few 3x3 and 7x7 matrices per
spectrum (line-fit covariances, :mod:`ingest.processing.peak_lorentz`; the live SOC filter,
:mod:`flowcell.live.estimator`).  These call the same gufuncs (same LAPACK routine, the same
numbers to the last bit) and raise the same :class:`numpy.linalg.LinAlgError` on a singular or
not positive-definite matrix, without a warning.  A numpy without the private module falls
back to the public functions.
"""

from __future__ import annotations

import numpy as np

try:  # the gufuncs behind np.linalg.inv / cholesky
    from numpy.linalg import _umath_linalg
except ImportError:  # pragma: no cover - a numpy without it: the public functions
    _umath_linalg = None

__all__ = ["cholesky", "inv"]


def inv(a: np.ndarray) -> np.ndarray:
    """``np.linalg.inv(a)`` of a float64 square matrix (LinAlgError when singular)."""
    if _umath_linalg is None:  # pragma: no cover
        return np.linalg.inv(a)
    try:
        with np.errstate(invalid="raise", over="ignore", divide="ignore", under="ignore"):
            return _umath_linalg.inv(a, signature="d->d")
    except FloatingPointError:  # numpy flags a singular matrix as invalid
        raise np.linalg.LinAlgError("Singular matrix") from None


def cholesky(a: np.ndarray) -> np.ndarray:
    """``np.linalg.cholesky(a)`` (lower factor) of a float64 symmetric matrix (LinAlgError when
    it is not positive definite)."""
    if _umath_linalg is None:  # pragma: no cover
        return np.linalg.cholesky(a)
    try:
        with np.errstate(invalid="raise", over="ignore", divide="ignore", under="ignore"):
            return _umath_linalg.cholesky_lo(a, signature="d->d")
    except FloatingPointError:
        raise np.linalg.LinAlgError("Matrix is not positive definite") from None
