"""ingest.processing.linalg_fast: numpy's own inverse and Cholesky factor, to the last bit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ingest.processing.linalg_fast import cholesky, inv


@pytest.mark.parametrize("n", [1, 3, 7])
def test_same_bits_as_numpy(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        m = rng.standard_normal((n, n))
        spd = m @ m.T + n * np.eye(n)
        assert np.array_equal(inv(m), np.linalg.inv(m))
        assert np.array_equal(cholesky(spd), np.linalg.cholesky(spd))


def test_failures_raise_linalgerror_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(np.linalg.LinAlgError):
            inv(np.ones((3, 3)))
        with pytest.raises(np.linalg.LinAlgError):
            cholesky(np.diag([1.0, -1.0, 2.0]))
