"""Model.simulate against analytic solutions (docs/physics.md §2.3) and against itself
(full stiff vs fast-equilibrium reduced, tight-tolerance reference)."""

from __future__ import annotations

import numpy as np
import pytest

from kinetics import library
from kinetics.constants import F
from kinetics.model import SimResult, piecewise_current
from kinetics.network import Network

C0, V = 0.1, 0.01  # mol/L, L (docs/physics.md §2.6)
CAP_C = 2 * F * C0 * V  # C for SOC 0 -> 1


def test_first_order_decay_analytic() -> None:
    net = Network.from_text("H -> A ; k")
    t = np.linspace(0, 5e5, 50)
    sim = net.compile().simulate(t, {"k": 1e-5}, {"H": 0.08}, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sim["H"], 0.08 * np.exp(-1e-5 * t), rtol=1e-7)
    np.testing.assert_allclose(sim["H"] + sim["A"], 0.08, rtol=1e-12)


def test_second_order_decay_analytic() -> None:
    # Dec-ch events k [H]^2 consume 2 H: 1/[H] = 1/[H]0 + 2 k t (docs/physics.md §2.3)
    net = Network.from_text("2 H -> A ; k ; rate = k*H**2")
    t = np.linspace(0, 1e5, 40)
    sim = net.compile().simulate(t, {"k": 1e-3}, {"H": 0.1}, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(1 / sim["H"], 1 / 0.1 + 2 * 1e-3 * t, rtol=1e-7)


@pytest.mark.parametrize("reduce_fast", [True, False])
def test_constant_current_coulomb_counting(reduce_fast: bool) -> None:
    # SOC(t) = SOC0 + I t / (2 F C V) with no side reactions (docs/physics.md §1.1, §4b row 8)
    model = library.dhaq(k_dec=0.0, J_e=0.0).compile(reduce_fast=reduce_fast)
    I, soc0 = 0.05, 0.1
    t = np.linspace(0, 3000, 61)
    sim = model.simulate(t, y0=model.y0_from_soc(C0, soc0), current_A=I, volume_L=V)
    np.testing.assert_allclose(sim.soc, soc0 + I * t / CAP_C, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sim.C_act, C0, rtol=1e-12)
    # the species follow the §1.2 closed form at every time
    from kinetics.speciation import radical_fraction
    # LSODA's interpolant holds 1e-8; the compiled RODAS4 loop's order-3 dense output (FLOWCELL_NUMBA=1,
    # docs/architecture.md "Integration") 2.5e-8 of C_tot on the full model's fast radical
    atol = 1e-8 if sim.stats["method"] == "LSODA" else 5e-8
    np.testing.assert_allclose(sim["R"] / C0, radical_fraction(sim.soc, 0.1), rtol=0, atol=atol)


def test_zero_order_o2_self_discharge() -> None:
    # SOC(t) = SOC0 - J_e t / (2 C) while s >> Ks (docs/physics.md §2.3, §2.4)
    J = 1e-8
    model = library.dhaq(k_dec=0.0, J_e=J, Ks=1e-10).compile()
    t = np.linspace(0, 2e5, 41)
    sim = model.simulate(t, y0=model.y0_from_soc(C0, 0.6))
    np.testing.assert_allclose(sim.soc, 0.6 - J * t / (2 * C0), rtol=0, atol=1e-9)


def test_self_discharge_switches_off_at_empty() -> None:
    model = library.dhaq(k_dec=0.0, J_e=1e-7, Ks=1e-4).compile()
    sim = model.simulate(np.linspace(0, 1e6, 21), y0=model.y0_from_soc(C0, 0.3))
    assert sim.soc[-1] >= 0 and sim.soc[-1] < 1e-3
    # never charges: LSODA is monotone to 1e-15, the compiled loop (FLOWCELL_NUMBA=1) to its 1e-14 round-off
    assert np.all(np.diff(sim.soc) <= (1e-15 if sim.stats["method"] == "LSODA" else 1e-13))


@pytest.mark.parametrize("reduce_fast", [True, False])
def test_conservation_laws_hold_at_open_circuit(reduce_fast: bool) -> None:
    # every closed pathway on (dimer, tautomer, first + second order Dec-ch): total
    # quinone units and total stored electrons incl. 4 e- per A (docs/physics.md §2.2) stay
    # constant to 1e-10 mol/L
    net = library.dhaq(KD=5.0, KT=3.0, k_dec=2e-5, k_dec2=1e-3, J_e=0.0)
    model = net.compile(reduce_fast=reduce_fast)
    sim = model.simulate(np.linspace(0, 2e5, 101), y0=model.y0_from_soc(C0, 0.8))
    assert sim["A"][-1] > 1e-3  # the decomposition really ran
    for law in net.conservation_laws(closed=True):
        total = sum(float(c) * sim[s] for s, c in law.items())
        assert np.max(np.abs(total - total[0])) < 1e-10, law


def test_units_conserved_with_current_and_every_side_reaction() -> None:
    net = library.dhaq(KD=5.0, eps_H=0.05, eps_dec=0.02, eps_ox1=0.1, eps_ox2=0.1, k_dec=1e-5)
    model = net.compile()
    steps = piecewise_current([(2400, 0.05), (600, 0.0), (1800, -0.05)])
    sim = model.simulate(np.linspace(0, 5400, 109), y0={"O": C0}, current_A=steps, volume_L=V)
    (units,) = net.conservation_laws(closed=False)
    total = sum(float(c) * sim[s] for s, c in units.items())
    np.testing.assert_allclose(total, C0, rtol=0, atol=1e-10)
    assert sim["A2"].max() > 0 and np.all(sim.conc.to_numpy() >= 0)
    # HER and Dec-ec take their shares: the stored electrons lag the coulomb count
    assert sim.t_s[48] == 2400 and sim.soc[48] < 0.05 * 2400 / CAP_C * 0.95


PROTOCOL = [(3000, 0.05), (1200, 0.0), (2400, -0.05), (600, 0.0)]


@pytest.mark.parametrize("KD", [0.0, 5.0])
def test_reduced_model_matches_full_stiff_model(KD: float) -> None:
    # docs/physics.md §2.2 acceptance test: within 0.1 % (here of C_tot) over charge/rest/discharge
    net = library.dhaq(KD=KD, kc=1e8, k_dec=1e-5, J_e=1e-8)
    t = np.linspace(0, 7200, 241)
    steps = piecewise_current(PROTOCOL)
    red = net.compile(reduce_fast=True).simulate(t, y0={"O": C0}, current_A=steps, volume_L=V)
    full = net.compile(reduce_fast=False).simulate(t, y0={"O": C0}, current_A=steps, volume_L=V)
    assert red.stats["reduced"] and not full.stats["reduced"]
    dev = np.abs(red.conc.to_numpy() - full.conc.to_numpy()).max()
    assert dev < 1e-3 * C0
    assert np.abs(red.soc - full.soc).max() < 1e-3
    assert red["R"].max() > 0.01  # a real radical population was compared


def test_closed_form_and_numeric_reduced_paths_agree() -> None:
    # KD = 0 uses the sympy closed form of §1.2; KD = 1e-12 1/M the numeric §1.2b root
    # + implicit-function Jacobian; they must agree to integration accuracy
    t = np.linspace(0, 7200, 61)
    steps = piecewise_current(PROTOCOL)
    a = library.dhaq(KD=0.0).compile().simulate(t, y0={"O": C0}, current_A=steps, volume_L=V)
    b = library.dhaq(KD=1e-12).compile().simulate(t, y0={"O": C0}, current_A=steps, volume_L=V)
    assert np.abs(a.conc.to_numpy() - b.conc.to_numpy()).max() < 1e-9


def test_default_path_matches_tight_radau_reference() -> None:
    net = library.dhaq(KD=5.0, k_dec=1e-5, J_e=1e-8)
    model = net.compile()
    t = np.linspace(0, 7200, 121)
    steps = piecewise_current(PROTOCOL)
    ref = model.simulate(t, y0={"O": C0}, current_A=steps, volume_L=V, method="Radau",
                         rtol=1e-12, atol=1e-16)
    fast = model.simulate(t, y0={"O": C0}, current_A=steps, volume_L=V)
    assert np.abs(fast.conc.to_numpy() - ref.conc.to_numpy()).max() < 1e-7 * C0
    bdf = model.simulate(t, y0={"O": C0}, current_A=steps, volume_L=V, method="BDF", rtol=1e-9)
    assert np.abs(bdf.conc.to_numpy() - ref.conc.to_numpy()).max() < 1e-6 * C0


def test_current_forms_agree() -> None:
    model = library.dhaq(k_dec=0.0, J_e=0.0).compile()
    t = np.linspace(0, 5400, 55)
    edges, I = piecewise_current([(1800, 0.04), (1800, 0.0), (1800, -0.03)])
    a = model.simulate(t, y0={"O": C0}, current_A=(edges, I), volume_L=V)
    b = model.simulate(t, y0={"O": C0}, current_A=(edges[:-1], I), volume_L=V)  # t_start form
    fun = lambda s: 0.04 if s < 1800 else (0.0 if s < 3600 else -0.03)  # noqa: E731
    c = model.simulate(t, y0={"O": C0}, current_A=fun, volume_L=V, breakpoints=edges)

    class Schedule:  # duck-typed flowcell.simulate.protocol.CurrentSchedule
        t_edges_s, current_A = edges, I

    d = model.simulate(t, y0={"O": C0}, current_A=Schedule(), volume_L=V)
    for other in (b, c, d):
        np.testing.assert_allclose(other.soc, a.soc, rtol=0, atol=1e-8)
    np.testing.assert_allclose(a.current_A[:-1], [fun(s) for s in t[:-1]])
    assert a.current_A[-1] == 0.0  # the (edges, I) table is 0 after its last edge
    expected = (0.04 * 1800 - 0.03 * 1800) / CAP_C  # exact coulomb count, no side reactions
    assert abs(a.soc[-1] - expected) < 1e-9


def test_simresult_contract_and_errors() -> None:
    model = library.dhaq().compile()
    assert model.species == ["O", "R", "H", "D", "A", "AL", "A2"]
    assert {"Kc", "kc", "k1", "k2", "KD", "KT", "k_dec", "k_dec2", "eps_dec", "J_e", "Ks",
            "nu_O2", "eps_H", "T"} <= set(model.param_names)
    assert model.defaults["Kc"] == 0.1 and model.defaults["k_dec"] == 1e-6
    t = np.linspace(0, 86400, 25)
    sim = model.simulate(t, {"k_dec": 1e-5}, {"O": 0.05, "H": 0.05}, None, 0.01)
    assert isinstance(sim, SimResult)
    assert list(sim.conc.columns) == model.species and sim.conc.index.name == "t_s"
    np.testing.assert_array_equal(sim.t_s, t)
    assert sim.soc.shape == sim.soc_active.shape == t.shape
    assert np.all(sim.soc_active >= sim.soc - 1e-15) and sim.C_act[-1] < sim.C_act[0]
    with pytest.raises(KeyError, match="nope"):
        model.simulate(t, {"nope": 1.0}, {"O": 0.1})
    with pytest.raises(KeyError, match="'Q'"):
        model.simulate(t, None, {"Q": 0.1})
    with pytest.raises(ValueError, match="increasing"):
        model.simulate(t[::-1], None, {"O": 0.1})


def test_overdischarge_warns() -> None:
    model = library.dhaq().compile()
    with pytest.warns(RuntimeWarning, match="SOC left"):
        model.simulate(np.linspace(0, 600, 7), y0={"O": C0}, current_A=-0.05, volume_L=V)


def test_dbeaq_network() -> None:
    net = library.dbeaq()
    assert net.defaults["k_dec"] == pytest.approx(1e-4 / (0.5 * 86400), rel=0.01)  # K18 0.01 %/day
    sim = net.compile().simulate([0, 86400], y0=net.compile().y0_from_soc(C0, 0.5))
    fade = 1 - sim.C_act[-1] / sim.C_act[0]
    # first-order Dec-ch removes k_dec [H] per second; [H] at SOC 1/2 from the §1.2 closed form,
    # C (1/2 - f_R(1/2)/2), nearly constant over a day (observed 0.07 % off)
    from kinetics.speciation import radical_fraction
    h_frac = 0.5 - radical_fraction(0.5, net.defaults["Kc"]) / 2
    assert fade == pytest.approx(net.defaults["k_dec"] * h_frac * 86400, rel=0.01)


# ---------------------------------------------------------------------- speed paths (issue 15)
SIX_HOURS = [(2.5 * 3600, 0.019), (1.0 * 3600, 0.0), (2.5 * 3600, -0.017)]  # benchmarks/bench_kinetics.py


def test_every_lsoda_segment_starts_with_a_sensible_first_step() -> None:
    # the 6-hour benchmark: the rest segment used to fail LSODA's own first step
    # ("excess work done", ~20,000 calls) before a retry; now no retry, no BDF fallback
    m = library.dhaq().compile(reduce_fast=False)
    t = np.linspace(0.0, 6 * 3600.0, 2000)
    sim = m.simulate(t, y0={"O": 0.1}, current_A=piecewise_current(SIX_HOURS), volume_L=0.01)
    assert sim.stats["retries"] == 0 and "fallback" not in sim.stats
    assert sim.stats["nfev"] < 5000
    red = library.dhaq().compile(reduce_fast=True).simulate(t, y0={"O": 0.1},
                                                             current_A=piecewise_current(SIX_HOURS), volume_L=0.01)
    assert np.abs(red.soc - sim.soc).max() < 1e-6  # the same physics (docs/physics.md §2.2)


def test_numba_and_pure_reduced_paths_agree() -> None:
    pytest.importorskip("numba")
    from kinetics.emit import numba_enabled
    if not numba_enabled():
        pytest.skip("numba switched off (FLOWCELL_NUMBA=0)")
    m = library.dhaq(KD=0.0).compile(reduce_fast=True)
    p = m.param_vector()
    f_nb, J_nb = m._c.reduced_functions(p, numba=True)
    f_py, J_py = m._c.reduced_functions(p, numba=False)
    assert m._c._numba_pair() is not None, "numba build failed: the fast path is not used"
    rng = np.random.default_rng(3)
    for I in (0.02, 0.0, -0.02):
        cur = m._cur(I, 0.01)
        for _ in range(5):
            C = rng.uniform(0.01, 0.2)
            x = np.array([C, 2 * C * rng.uniform(0.02, 0.98), rng.uniform(0, 0.01), rng.uniform(0, 0.01)])
            np.testing.assert_allclose(f_nb(x, p, cur), f_py(x, p, cur), rtol=1e-12, atol=1e-20)
            np.testing.assert_allclose(J_nb(x, p, cur), J_py(x, p, cur), rtol=1e-12, atol=1e-18)
    t = np.linspace(0.0, 6 * 3600.0, 2000)
    runs = []
    try:
        for flag in (False, True):  # numba is opt-in (kinetics.emit.numba_default)
            m._c.use_numba = flag
            runs.append(m.simulate(t, y0={"O": 0.1}, current_A=piecewise_current(SIX_HOURS), volume_L=0.01))
    finally:
        m._c.use_numba = None
    assert np.abs(runs[0].conc.to_numpy() - runs[1].conc.to_numpy()).max() < 1e-9
    # outside the physical range the numba path falls back like the pure one (no crash, same value)
    bad = np.array([0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(f_nb(bad, p, m._cur(0.0, 0.01)), f_py(bad, p, m._cur(0.0, 0.01)), atol=1e-20)
