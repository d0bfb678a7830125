"""Rows of two processing paths compared observable by observable, against the standard errors.

Shared by the tests that hold a faster path to the per-spectrum reference: the live plan
(tests/test_live_fast.py), complex64 transforms (tests/test_precision.py) and the batch
engine (tests/test_fast_path.py).  Fitted lines (a finite width) must agree within ``frac``
of the reference's standard error; windowed sums (integral windows, and windows with no
line above noise, whose value is noise and baseline) within ``windowed`` of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pytest

__all__ = ["assert_rows_close"]


def assert_rows_close(ref: Sequence[dict], got: Sequence[dict], peaks: Iterable[Any], *, frac: float,
                      windowed: float | None = None, err_rel: float | None = None,
                      same_keys: bool = False) -> None:
    """Each shift, width and area of ``got`` within its tolerance of ``ref`` (see the module
    docstring), NaN exactly where ``ref`` has NaN, the same warnings; ``err_rel``: the standard
    errors themselves within that relative difference; ``same_keys``: the same columns."""
    assert len(ref) == len(got)
    peaks = list(peaks)
    windowed = frac if windowed is None else windowed
    for k, (r, g) in enumerate(zip(ref, got)):
        if same_keys:
            assert set(r) == set(g), k
        assert r["nmr_warnings"] == g["nmr_warnings"], k
        for p in peaks:
            for col, err in ((f"{p.name}_shift_ppm", f"{p.name}_shift_err_ppm"),
                             (f"{p.name}_fwhm_Hz", f"{p.name}_fwhm_err_Hz"),
                             (f"{p.name}_area", f"{p.name}_area_err")):
                a, b, e = r[col], g[col], r[err]
                assert np.isnan(a) == np.isnan(b), (k, col, a, b)
                if np.isfinite(a) and np.isfinite(e):
                    tol = (frac if np.isfinite(r[f"{p.name}_fwhm_Hz"]) else windowed) * e
                    assert abs(a - b) <= tol, (k, col, a, b, e)
                    if err_rel is not None:
                        assert g[err] == pytest.approx(e, rel=err_rel), (k, err)
