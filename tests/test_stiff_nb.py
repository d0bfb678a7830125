"""The numba-compiled RODAS4 loop (kinetics.stiff_nb; issue 15 item 2) against known truths.

* a closed-form solution: constant-current charging O + 2 e- -> H with first-order
  decomposition H -> A, then a rest (solved by hand below), to within the tolerances;
* the DHAQ reduced and full models on the 6-hour benchmark protocol agree with the LSODA
  path (and with a tight-tolerance LSODA reference) to 1e-7 C_tot, ten times the local
  tolerance rtol = 1e-8 (global errors accumulate over ~100-400 steps); the compiled
  speciation equals the numpy one;
* the conservation laws of the running reactions hold to rounding (the projection);
* the stiff full model (k_c = 1e10 1/(M s): eigenvalues ~ -6e9 1/s) is integrated in a
  few hundred steps where an explicit method would need > 1e12;
* failures of the loop are returned (step-size underflow on a finite-time blow-up) and
  make simulate() redo the run with LSODA, reported in the stats.

numba compiles the loop once (~8 s CPU, cached on disk by numba); every test after that loads it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("numba")

from kinetics import library
from kinetics.constants import F
from kinetics.emit import build_cfunc, numba_enabled
from kinetics.model import piecewise_current
from kinetics.network import Network

if not numba_enabled():
    pytest.skip("numba switched off (FLOWCELL_NUMBA=0)", allow_module_level=True)

from kinetics import stiff_nb

SIX_HOURS = [(2.5 * 3600, 0.019), (1.0 * 3600, 0.0), (2.5 * 3600, -0.017)]  # benchmarks/bench_kinetics.py
T6 = np.linspace(0.0, 6 * 3600.0, 2000)
C_TOT = 0.1

CHARGE_DECAY = """
species O electrons=0 active
species H electrons=2 active
species A electrons=2
param k = 2e-3 1/s [ASSUMED]
E: O + 2 e- -> H ; electrode
Dec: H -> A ; k
"""


def test_charge_with_first_order_decay_matches_the_closed_form() -> None:
    """dH/dt = i/2 - k H with i = I/(F V) on charge (H(0) = 0): H = i/(2k) (1 - e^{-kt});
    O = O0 - i t/2; then at rest H decays as e^{-k(t - t1)}."""
    k, I, V, O0, t1, t2 = 2e-3, 0.02, 0.01, 0.1, 1500.0, 3000.0
    model = Network.from_text(CHARGE_DECAY, name="charge_decay").compile(reduce_fast=False)
    t = np.linspace(0.0, t2, 301)
    sim = model.simulate(t, y0={"O": O0}, current_A=piecewise_current([(t1, I), (t2 - t1, 0.0)]), volume_L=V,
                         method="RODAS4", rtol=1e-8, atol=1e-12)
    i = I / (F * V)
    H1 = i / (2 * k) * (1 - math.exp(-k * t1))
    H = np.where(t <= t1, i / (2 * k) * (1 - np.exp(-k * t)), H1 * np.exp(-k * (t - t1)))
    O = O0 - i * np.minimum(t, t1) / 2
    assert sim.stats["method"] == "RODAS4" and "compiled_fallback" not in sim.stats
    assert sim.stats["steps"] < 200 and sim.stats["nfev"] >= 6 * sim.stats["steps"]
    np.testing.assert_allclose(sim["H"], H, rtol=1e-7, atol=1e-12)  # found 9e-9 relative
    np.testing.assert_allclose(sim["O"], O, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sim["O"] + sim["H"] + sim["A"], O0, rtol=1e-12)


@pytest.mark.parametrize("reduced", [True, False])
def test_dhaq_six_hours_agrees_with_lsoda(reduced: bool) -> None:
    m = library.dhaq().compile(reduce_fast=reduced)
    kw = {"y0": {"O": C_TOT}, "current_A": piecewise_current(SIX_HOURS), "volume_L": 0.01}
    ref = m.simulate(T6, method="LSODA", rtol=1e-12, atol=1e-16, **kw)
    lsoda = m.simulate(T6, method="LSODA", **kw)
    m._c.use_numba = True  # FLOWCELL_NUMBA=1 for this model: method='auto' runs the loop
    try:
        rodas = m.simulate(T6, **kw)
    finally:
        m._c.use_numba = None
    st = rodas.stats
    assert st["method"] == "RODAS4" and st["solver"].startswith("RODAS4") and "compiled_fallback" not in st
    assert st["retries"] == 0 and 0 < st["steps"] < 600 and st["njev"] == st["steps"]  # one Jacobian a step
    assert np.abs(rodas.Y - lsoda.Y).max() <= 1e-7 * C_TOT  # found 1.5e-9 M (full), 1.0e-10 M (reduced)
    assert np.abs(rodas.Y - ref.Y).max() <= 1e-7 * C_TOT
    assert np.abs(rodas.soc - ref.soc).max() <= 1e-7
    if reduced:  # the compiled speciation (stiff_nb.species_rows) is the numpy one
        np.testing.assert_allclose(rodas.Y, m._c.y_of_z_many(rodas.X, m.param_vector()), rtol=1e-14, atol=1e-18)


def test_conservation_laws_hold_to_rounding() -> None:
    """Full model, side reactions off, constant current: C_act = O + R + H + 2D is a law of the
    running reactions; the stiff solves alone would let it drift by ~1e-11 mol/L."""
    model = library.dhaq(k_dec=0.0, J_e=0.0).compile(reduce_fast=False)
    t = np.linspace(0, 3000, 61)
    sim = model.simulate(t, y0=model.y0_from_soc(C_TOT, 0.1), current_A=0.05, volume_L=0.01, method="RODAS4")
    assert sim.stats["method"] == "RODAS4"
    np.testing.assert_allclose(sim.C_act, C_TOT, rtol=1e-14)  # found 6e-17 mol/L
    np.testing.assert_allclose(sim.soc, 0.1 + 0.05 * t / (2 * F * C_TOT * 0.01), rtol=0, atol=1e-9)


def test_stiff_full_model_takes_implicit_steps() -> None:
    """k_c = 1e10 1/(M s): the comproportionation relaxes at ~k_c C ~ 1e9 1/s; an explicit
    method stable only for h |lambda| < ~3 would need > 21600 s x 1e9 / 3 steps."""
    m = library.dhaq(kc=1e10).compile(reduce_fast=False)
    kw = {"y0": {"O": C_TOT}, "current_A": piecewise_current(SIX_HOURS), "volume_L": 0.01}
    sim = m.simulate(T6, method="RODAS4", **kw)
    x_mid = sim.Y[len(T6) // 3]
    lam = np.linalg.eigvals(m.jacobian(x_mid, current_A=0.019))
    assert np.abs(lam).max() > 1e8
    explicit_steps = T6[-1] * np.abs(lam).max() / 3.0
    assert sim.stats["steps"] < 1000 and explicit_steps > 1e12
    red = library.dhaq(kc=1e10).compile(reduce_fast=True).simulate(T6, method="LSODA", **kw)
    assert np.abs(sim.Y - red.Y).max() <= 1e-7 * C_TOT  # the fast-equilibrium limit (docs/physics.md §2.2); found 2e-9 M


BLOW_UP = ("def g(_a, _b, i, i_ch, i_dis):\n    _a0 = _a[0]\n    _b0 = _b[0]\n"
           "    return [float(_b0*(_a0*_a0))]\n")
BLOW_UP_J = ("def gj(_a, _b, i, i_ch, i_dis):\n    _a0 = _a[0]\n    _b0 = _b[0]\n"
             "    return [[float(2*_b0*_a0)]]\n")


def test_loop_reports_a_failure_instead_of_numbers() -> None:
    """dx/dt = k x^2 blows up at t* = 1/(k x0) = 100 s: integrating to 150 s must fail
    (status != 0), never return finite numbers past t*; before t* it is x0/(1 - k x0 t)."""
    f, j = build_cfunc(BLOW_UP, "g", 1, 1), build_cfunc(BLOW_UP_J, "gj", 1, 1)
    assert f is not None and j is not None
    p, x0 = np.array([0.1]), np.array([0.1])
    t = np.array([0.0, 50.0, 90.0, 150.0])
    status, X, st = stiff_nb.integrate(f, j, x0, p, np.array([0.0, 150.0]), np.zeros((1, 3)), t, 1e-8, 1e-12)
    assert status in (1, 2, 4) and st["failed_segment"] == 0 and np.isnan(X[-1]).all()
    np.testing.assert_allclose(X[:3, 0], 0.1 / (1 - 0.01 * t[:3]), rtol=1e-7)
    ok, X2, _ = stiff_nb.integrate(f, j, x0, p, np.array([0.0, 90.0]), np.zeros((1, 3)), t[:3], 1e-8, 1e-12)
    assert ok == 0
    np.testing.assert_allclose(X2[:, 0], 0.1 / (1 - 0.01 * t[:3]), rtol=1e-7)


def test_simulate_falls_back_to_lsoda_and_says_so() -> None:
    """Too few steps allowed for the loop (max_nfev // 6 per segment) but enough for LSODA's
    steps per output interval: the run is redone with LSODA, the same numbers as LSODA's own."""
    m = library.dhaq().compile(reduce_fast=True)
    kw = {"y0": {"O": C_TOT}, "current_A": piecewise_current(SIX_HOURS), "volume_L": 0.01, "max_nfev": 60}
    sim = m.simulate(T6, method="RODAS4", **kw)
    st = sim.stats
    assert st["method"] == "LSODA" and "RODAS4 (compiled) failed on segment 0" in st["compiled_fallback"]
    assert "more than max_steps steps" in st["compiled_fallback"] and "LSODA" in st["solver"]
    np.testing.assert_array_equal(sim.Y, m.simulate(T6, method="LSODA", **kw).Y)


def test_auto_follows_the_numba_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """method='auto' (default): LSODA unless numba is switched on for the model; RODAS4 where
    it cannot run (a callable current) is an error naming why."""
    monkeypatch.delenv("FLOWCELL_NUMBA", raising=False)
    m = library.dhaq().compile(reduce_fast=True)
    kw = {"y0": {"O": C_TOT}, "current_A": piecewise_current(SIX_HOURS[:1]), "volume_L": 0.01}
    t = np.linspace(0, 3600.0, 5)
    assert m.simulate(t, **kw).stats["method"] == "LSODA"  # unset: the same numbers as without numba
    monkeypatch.setenv("FLOWCELL_NUMBA", "1")
    assert m.simulate(t, **kw).stats["method"] == "RODAS4"
    m._c.use_numba = False
    try:
        assert m.simulate(t, **kw).stats["method"] == "LSODA"
    finally:
        m._c.use_numba = None
    with pytest.raises(ValueError, match="piecewise-constant current"):
        m.simulate(t, y0={"O": C_TOT}, current_A=lambda s: 0.01, method="RODAS4")
