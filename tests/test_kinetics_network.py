"""Networks: parser, validation, conservation laws, generated Jacobians, cache."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from kinetics import library
from kinetics.codegen import compile_network, rate_expressions
from kinetics.network import Network, NetworkError, Reaction, Species

TOY = """
species O charge=-2 electrons=0 active
species R charge=-3 electrons=1 active
species H charge=-4 electrons=2 active
species A charge=-2 electrons=4
param kc = 1e8 1/(M*s) [ASSUMED] : comproportionation
param Kc = 0.1 - [ASSUMED]
param k_dec = 1e-6 1/s [ASSUMED] : decomposition
C1: O + H <=> 2 R ; kc, Kc ; fast
Dec: 2 H -> A + O ; k_dec ; rate = k_dec*H ; solvent
E: O + 2 e- -> H ; electrode
"""


def test_parse_toy_network() -> None:
    net = Network.from_text(TOY, name="toy")
    assert net.species_names == ["O", "R", "H", "A"]
    assert [r.name for r in net.reactions] == ["C1", "Dec", "E"]
    c1 = net.reactions[0]
    assert (c1.reactants, c1.products, c1.k, c1.K, c1.fast, c1.reversible) == (
        {"O": 1, "H": 1}, {"R": 2}, "kc", "Kc", True, True)
    assert net.reactions[2].electrode and net.reactions[2].nu_e == 2
    assert net.params["kc"].unit == "1/(M*s)" and net.params["kc"].tag == "ASSUMED"
    assert net.params["kc"].doc == "comproportionation"
    assert net.defaults == {"kc": 1e8, "Kc": 0.1, "k_dec": 1e-6}
    N = np.array(net.stoichiometry().tolist(), dtype=float)
    np.testing.assert_array_equal(N, [[-1, 1, -1], [2, 0, 0], [-1, -2, 1], [0, 1, 0]])
    # rate laws: reversible mass action with k_rev = k/K; electrode balance i/2
    O, R, H, kc, Kc, k_dec, i = sp.symbols("O R H kc Kc k_dec i")
    rates = rate_expressions(net)
    assert sp.simplify(rates[0] - (kc * O * H - kc / Kc * R**2)) == 0
    assert sp.simplify(rates[1] - k_dec * H) == 0
    assert sp.simplify(rates[2] - i / 2) == 0


def test_text_round_trip() -> None:
    net = library.dhaq()
    again = Network.from_text(net.to_text(), name="dhaq")
    assert again.fingerprint() == net.fingerprint()
    assert again.defaults == net.defaults


def test_terms_without_space_and_empty_side() -> None:
    net = Network.from_text("2H -> A ; k\nX: 2 e- -> 0 ; electrode ; share = f ; sink")
    assert net.reactions[0].reactants == {"H": 2}
    assert net.reactions[1].products == {} and net.reactions[1].nu_e == 2


@pytest.mark.parametrize("text, culprit", [
    ("species O\nO + Q -> O ; k", "unknown species 'Q'"),
    ("O + H <=> 2 R ; kc, Kc\nH + O <=> 2 R ; k2, K2", "duplicate reaction"),
    ("species O electrons=0\nspecies H electrons=2\nO + e- -> H ; electrode", "electron imbalance"),
    ("species O charge=-2\nspecies H charge=-4\nX1: O -> H ; k", "'X1': charge imbalance"),
    ("param k = 1\nH -> A ; k ; rate = k*H*kx", "unknown parameter 'kx'"),
    ("H -> A ; k ; fast", "'fast' needs"),
    ("H => A ; k", "no '->' or '<=>'"),
    ("H -> A ; k ; colour = red", "unknown field 'colour'"),
    ("H -> 2 A + ; k", "cannot read term"),
    ("species O charge=minus\nO -> A ; k", "charge must be an integer"),
    ("param k = fast\nH -> A ; k", "not a number"),
    ("H -> A ; k ; rate = k*(H", "cannot parse"),
    ("species O electrons=0\nspecies R electrons=1\nspecies H electrons=2\n"
     "O + e- -> R ; electrode\nR + e- -> H ; electrode", "more than one electrode reaction"),
])
def test_parser_errors_name_the_culprit(text: str, culprit: str) -> None:
    with pytest.raises(NetworkError, match=culprit.replace("(", r"\(").replace("*", r"\*")):
        Network.from_text(text)


def test_objects_api_and_unknown_species_strict() -> None:
    net = Network([Species("H", electrons=2), Species("A", electrons=2)],
                  [Reaction({"H": 1}, {"A": 1}, k="k_dec")], {"k_dec": 1e-6})
    assert net.param_names == ["k_dec"]
    with pytest.raises(NetworkError, match="unknown species 'Z'"):
        Network([Species("H")], [Reaction("H", "Z", k="k")], strict=True)
    with pytest.raises(KeyError, match="unknown parameters"):
        net.with_defaults(nope=1.0)


def test_conservation_laws_library() -> None:
    net = library.dhaq()
    laws = net.conservation_laws(closed=True)
    units = {"O": 1, "R": 1, "H": 1, "D": 2, "A": 1, "AL": 1, "A2": 2}
    electrons = {"R": 1, "H": 2, "D": 2, "A": 4, "AL": 4, "A2": 6}  # §2.2: 4 e- per anthrone
    assert laws[0] == units and laws[1] == electrons
    N = np.array(net.stoichiometry().tolist(), dtype=float)
    closed = [j for j, r in enumerate(net.reactions)
              if not (r.electrode or r.sink or "e-" in r.reactants or "e-" in r.products)]
    for law in laws:  # every law is in the left nullspace of the closed stoichiometry
        v = np.array([float(law.get(s, 0)) for s in net.species_names])
        np.testing.assert_allclose(v @ N[:, closed], 0, atol=1e-14)
    # with the electrode and O2 running only the quinone units are conserved
    assert net.conservation_laws(closed=False) == [units]
    named = net.conserved()
    assert named["quinone_units"] == units and named["electrons"] == electrons
    assert list(net.conserved(closed=False)) == ["quinone_units"]


def test_reserved_names_rejected() -> None:
    with pytest.raises(NetworkError, match="'sqrt'"):
        Network.from_text("param sqrt = 1\nH -> A ; sqrt")
    with pytest.raises(NetworkError, match="'lambda'"):
        Network.from_text("lambda -> A ; k")


def _fd_jacobian(model, x, I):
    J = np.zeros((len(x), len(x)))
    for k in range(len(x)):
        h = 1e-6 * max(abs(x[k]), 1e-6)
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        J[:, k] = (model.rhs(xp, current_A=I) - model.rhs(xm, current_A=I)) / (2 * h)
    return J


@pytest.mark.parametrize("reduce_fast, KD", [(False, 5.0), (True, 5.0), (True, 0.0)])
def test_analytic_jacobian_equals_finite_differences(reduce_fast: bool, KD: float) -> None:
    # every pathway on, random points; central differences good to ~1e-7 relative.
    # Reduced with KD > 0: implicit-function Jacobian; KD = 0: closed-form (sympy) Jacobian
    net = library.dhaq(KD=KD, eps_ox1=0.1, eps_ox2=0.1, eps_H=0.05, eps_dec=0.01, k_dec2=1e-3)
    model = net.compile(reduce_fast=reduce_fast)
    rng = np.random.default_rng(7)
    for I in (0.03, -0.03, 0.0):
        for _ in range(3):
            x = rng.uniform(0.002, 0.05, len(model.state_names))
            if reduce_fast:  # a physical state: 0 < n_e < 2 C_act
                x[1] = 2 * x[0] * rng.uniform(0.05, 0.95)
            J = model.jacobian(x, current_A=I)
            Jfd = _fd_jacobian(model, x, I)
            assert np.max(np.abs(J - Jfd)) <= 1e-6 * np.max(np.abs(J))


def test_compile_cache_and_reduction_layout() -> None:
    a = compile_network(library.dhaq())
    b = compile_network(library.dhaq(Kc=0.5, KD=5.0))  # same structure, other defaults
    assert a is b
    m = library.dhaq().compile()
    assert m.state_names == ["C_act", "n_e", "A_tot", "A2"]
    assert m.species == ["O", "R", "H", "D", "A", "AL", "A2"]
    full = library.dhaq().compile(reduce_fast=False)
    assert full.state_names == full.species


def test_unreducible_fast_block_is_reported() -> None:
    net = Network.from_text("A + B <=> C ; k1, K1 ; fast\nC <=> D + B ; k2, K2 ; fast\nD -> E ; k3")
    with pytest.raises(NetworkError, match="no fast-equilibrium reduction"):
        net.compile(reduce_fast=True)
    assert net.compile(reduce_fast=False).state_names == ["A", "B", "C", "D", "E"]
