"""One meaning of FLOWCELL_NUMBA (docs/conventions.md, "Compiled code: FLOWCELL_NUMBA"),
and the one module of compiled Lorentzian fits recovering known lines."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from ingest import batch
from ingest.processing import lorentz_nb, lsq_numpy
from ingest.processing.numba_switch import ENV, numba_switch
from kinetics import emit

HAS_NUMBA = importlib.util.find_spec("numba") is not None


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("  ", None), ("1", True), ("on", True), ("TRUE", True), ("yes", True),
    ("0", False), ("off", False), ("False", False), ("no", False)])
def test_switch_values(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    assert numba_switch() is expected


def test_switch_rejects_other_values(monkeypatch):
    monkeypatch.setenv(ENV, "2")
    with pytest.raises(ValueError, match="FLOWCELL_NUMBA='2'"):
        numba_switch()


def test_every_component_follows_zero_and_one(monkeypatch):
    """0: kinetics off, the batch never loads the compiled fits, the loader gives None;
    1: kinetics and the batch on whatever the size (when numba is installed)."""
    monkeypatch.setenv(ENV, "0")
    monkeypatch.setattr(lorentz_nb, "_KERNELS", None)  # not loaded yet in this process
    assert not emit.numba_enabled() and not emit.numba_default() and not emit.numba_requested()
    assert not batch._use_compiled(10**6)
    assert lorentz_nb.load_kernels() is None and lorentz_nb.kernels() is None
    monkeypatch.setenv(ENV, "1")
    assert emit.numba_requested() and emit.numba_default() is HAS_NUMBA
    assert batch._use_compiled(1)
    monkeypatch.delenv(ENV)
    assert batch._use_compiled(batch.COMPILE_FROM) and not batch._use_compiled(batch.COMPILE_FROM - 1)


def _line(x, area, centre, hwhm, slope, icpt):
    return area / math.pi * hwhm / ((x - centre) ** 2 + hwhm**2) + slope * x + icpt


TRUTH = np.array([2.5, 0.013, 0.021, 0.3, -0.05])  # area, centre, HWHM (ppm units), slope, intercept


@pytest.mark.skipif(not HAS_NUMBA, reason="numba (the 'fast' extra) not installed")
def test_both_compiled_drivers_recover_a_known_line(monkeypatch):
    """Noise-free Lorentzian + line: the single-window driver (live) and the row driver
    (batch) both return the generating parameters, and agree with the numpy fit."""
    monkeypatch.delenv(ENV, raising=False)
    if lorentz_nb._KERNELS is False:  # decided once per process: FLOWCELL_NUMBA=0 when first asked
        pytest.skip("compiled line fits switched off in this process (FLOWCELL_NUMBA=0)")
    assert lorentz_nb.warm_up()
    k = lorentz_nb.kernels()
    x = np.linspace(-0.3, 0.3, 801)
    y = _line(x, *TRUTH)
    start = TRUTH * np.array([1.4, 0.0, 1.6, 0.0, 0.0]) + np.array([0.0, 0.005, 0.0, 0.0, 0.0])
    res = lsq_numpy.lm_compiled_lorentz(x, y, start, np.full(5, -np.inf), np.full(5, np.inf), 1e-3)
    assert res.success
    np.testing.assert_allclose(res.x, TRUTH, rtol=1e-8, atol=1e-12)
    q = np.vstack([start, start])
    X = np.vstack([x, x])
    Y = np.vstack([y, y + 0.0])
    W = np.ones_like(X)
    W[1, 700:] = 0.0  # a shorter row, padded: the same line from fewer points
    chi2, ok, jtj = np.zeros(2), np.zeros(2, dtype=bool), np.zeros((2, 5, 5))
    k.lm_rows(q, X, Y, W, np.array([801, 700]), 200, chi2, ok, jtj)
    assert ok.all() and chi2.max() < 1e-20
    np.testing.assert_allclose(q, np.vstack([TRUTH, TRUTH]), rtol=1e-8, atol=1e-12)
    J = lsq_numpy.lorentz_line_jac(x, *TRUTH[:3])
    jtj_ref = J.T @ J
    np.testing.assert_allclose(jtj[0], jtj_ref, rtol=1e-6, atol=1e-12 * np.abs(jtj_ref).max())
    ref = lsq_numpy.lm_numpy(lambda p: _line(x, *p) - y, lambda p: lsq_numpy.lorentz_line_jac(x, *p[:3]), start,
                             np.full(5, -np.inf), np.full(5, np.inf), lam0=1e-3)
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-9, atol=1e-13)
