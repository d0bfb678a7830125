"""The fast kinetics paths give the reference numbers (issue 15 item 2).

* the folded full-model right-hand side and Jacobian (``N r`` and ``N dr/dy`` generated as
  one function each) equal the matrix products of the generated rates;
* the solver callbacks (:meth:`kinetics.codegen.Compiled.ode_functions`) equal the generated
  functions to the last bit, and fall back on a math domain error;
* numba (opt-in) and pure builds give the same simulations within 1e-9 mol/L;
* the shipped defaults never load numba (a new process pays ~1 s for its compiler context),
  and use it once another module has set it up;
* the simulation of the 6-hour benchmark reproduces an independent integration of the same
  closed-form reduced equations written out here (docs/physics.md §1.2, §2.2).
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from kinetics import library
from kinetics.constants import F
from kinetics.emit import ode_source
from kinetics.model import piecewise_current

ROOT = Path(__file__).resolve().parents[1]
SIX_HOURS = [(2.5 * 3600, 0.019), (1.0 * 3600, 0.0), (2.5 * 3600, -0.017)]  # benchmarks/bench_kinetics.py
T6 = np.linspace(0.0, 6 * 3600.0, 2000)


def _states(m, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    return [rng.uniform(0.0, 0.1, len(m.species)) * rng.choice([1.0, 1e-3, 1e-6], len(m.species))
            for _ in range(n)]


@pytest.mark.parametrize("KD", [0.0, 5.0])
def test_folded_rhs_and_jacobian_equal_the_matrix_products(KD: float) -> None:
    # every electrode side reaction switched on, so each rate and switch is exercised
    m = library.dhaq(KD=KD, eps_H=0.01, eps_dec=0.02, eps_ox1=0.01, eps_ox2=0.01).compile(reduce_fast=False)
    c, p = m._c, m.param_vector()
    rhs, jac = c._pure("rhs", "jac")
    rng = np.random.default_rng(7)
    for y in _states(m, rng, 300):
        cur = m._cur(rng.uniform(-0.03, 0.03), 0.01)
        ref_f = c.N @ np.asarray(c.rates(y, p, *cur))
        ref_J = c.N @ np.asarray(c.drates(y, p, *cur))
        scale = np.abs(c.N) @ np.abs(np.asarray(c.rates(y, p, *cur)))  # size of the cancelling terms
        np.testing.assert_allclose(rhs(y.tolist(), p.tolist(), *cur), ref_f, rtol=0, atol=1e-15 * scale.max() + 1e-300)
        np.testing.assert_array_equal(np.array(jac(y.tolist(), p.tolist(), *cur)), ref_J)  # same sums, same order


@pytest.mark.parametrize("reduced", [False, True])
def test_solver_callbacks_equal_the_generated_functions(reduced: bool) -> None:
    m = library.dhaq().compile(reduce_fast=reduced)
    c, p = m._c, m.param_vector()
    names = ("sym_rhs", "sym_jac") if reduced else ("rhs", "jac")
    f_src, J_src = c._pure(*names)
    rng = np.random.default_rng(11)
    for I in (0.02, 0.0, -0.02):
        cur = m._cur(I, 0.01)
        f, J = c.ode_functions(p, cur, reduced, numba=False)
        for _ in range(20):
            C = rng.uniform(0.01, 0.2)
            x = (np.array([C, 2 * C * rng.uniform(0.02, 0.98), rng.uniform(0, 0.01), rng.uniform(0, 0.01)])
                 if reduced else rng.uniform(1e-6, 0.05, len(m.species)))
            assert f(0.0, x) == f_src(x.tolist(), p.tolist(), *cur)  # bit for bit
            assert J(0.0, x) == J_src(x.tolist(), p.tolist(), *cur)
    if reduced:  # C_act = 0: a division by zero in the closed form -> the numeric speciation
        f, J = c.ode_functions(p, m._cur(0.0, 0.01), True, numba=False)
        x0 = np.zeros(4)
        np.testing.assert_array_equal(f(0.0, x0), c.rhs_red(x0, p, m._cur(0.0, 0.01)))
        np.testing.assert_array_equal(J(0.0, x0), c.jac_red(x0, p, m._cur(0.0, 0.01)))


def test_ode_source_keeps_the_arithmetic() -> None:
    src = ("def g(_a, _b, i, i_ch, i_dis):\n    _a0 = _a[0]\n    _b1 = _b[1]\n"
           "    _x0 = math.sqrt(_a0)\n    return [float(_x0/_b1), float(i)]\n")
    text = ode_source(src, "g")
    assert "float(" not in text and "_x0 = math.sqrt(_a0)" in text
    ns: dict = {"math": math}
    exec(text, ns)  # noqa: S102 - the test's own source
    fn = ns["g_ode"]([0.0, 4.0], 0.5, 0.0, 0.0, lambda x: ["slow"])
    assert fn(0.0, np.array([9.0])) == [0.75, 0.5]
    assert fn(0.0, np.array([-1.0])) == ["slow"]  # math domain error -> the fallback


def test_six_hour_benchmark_matches_an_independent_reduced_integration() -> None:
    """The reduced model with every side reaction off except Dec-ch and the O2 flux, written
    out by hand (docs/physics.md §1.2 speciation, §2.2 slow variables), integrated with
    Radau at tight tolerance: the package's result within 1e-9 mol/L."""
    Kc, k_dec, J_e, Ks, V = 0.1, 1e-6, 1e-9, 1e-3, 0.01
    m = library.dhaq(KT=1.0).compile(reduce_fast=True)
    sim = m.simulate(T6, y0={"O": 0.1}, current_A=piecewise_current(SIX_HOURS), volume_L=V)
    assert sim.stats["retries"] == 0 and sim.stats["nfev"] < 2000

    def spec(C: float, E: float) -> tuple[float, float, float]:
        x = min(max(E / (2 * C), 0.0), 1.0)
        u = x * (1 - x)
        R = C * 2 * Kc * u / (Kc / 2 + math.sqrt(Kc * Kc / 4 + Kc * (4 - Kc) * u))
        return C * (1 - x) - R / 2, R, C * x - R / 2

    def rhs(t: float, z: np.ndarray, I: float) -> list[float]:
        C, E = z[0], z[1]
        _, R, H = spec(C, E)
        dec = k_dec * H                      # events 2 H -> A + O: one active unit, 4 e- lost
        sd = J_e / 2 * (R / 2 + H) / (R / 2 + H + Ks)  # H -> O + 2 e- events
        return [-dec, I / (F * V) - 4 * dec - 2 * sd, dec, 0.0]

    z = np.array([0.1, 0.0, 0.0, 0.0])
    out = []
    edges = np.cumsum([0.0] + [d for d, _ in SIX_HOURS])
    for (a, b), (_, I) in zip(zip(edges[:-1], edges[1:]), SIX_HOURS):
        tt = T6[(T6 >= a) & (T6 <= b)]
        if out:
            tt = tt[tt > out[-1][0]]
        te = np.unique(np.r_[tt, b])
        sol = solve_ivp(rhs, (a, b), z, method="Radau", t_eval=te, args=(I,), rtol=1e-12, atol=1e-16)
        out += [(t, *y) for t, y in zip(sol.t, sol.y.T) if t in tt]
        z = sol.y[:, -1]
    ref = np.array(out)
    np.testing.assert_allclose(ref[:, 0], T6)
    np.testing.assert_allclose(sim.X[:, :3], ref[:, 1:4], rtol=0, atol=1e-9)  # found 2.5e-10
    Y = np.array([spec(C, E) for C, E in ref[:, 1:3]])
    np.testing.assert_allclose(sim.conc[["O", "R", "H"]].to_numpy(), Y, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(sim["R"], sim.conc["R"].to_numpy())


@pytest.mark.parametrize("reduced", [False, True])
def test_numba_and_pure_simulations_agree(reduced: bool) -> None:
    pytest.importorskip("numba")
    from kinetics.emit import numba_enabled
    if not numba_enabled():
        pytest.skip("numba switched off (FLOWCELL_NUMBA=0)")
    m = library.dhaq().compile(reduce_fast=reduced)
    runs = []
    try:
        for flag in (False, True):
            m._c.use_numba = flag
            runs.append(m.simulate(T6, y0={"O": 0.1}, current_A=piecewise_current(SIX_HOURS), volume_L=0.01,
                                   method="LSODA"))  # the same integrator: the compiled RHS alone
    finally:
        m._c.use_numba = None
    names = ("sym_rhs", "sym_jac") if reduced else ("rhs", "jac")
    assert m._c._numba_build(*names), "numba build failed: the fast path was not used"
    assert np.abs(runs[0].Y - runs[1].Y).max() <= 1e-9
    assert runs[0].stats["nfev"] == runs[1].stats["nfev"]


def test_numba_default_follows_the_process() -> None:
    """Shipped defaults (FLOWCELL_NUMBA unset): a new process builds and simulates the DHAQ
    models without importing numba (whose compiler costs ~1 s to set up even for cached
    code); once another module has set numba up, the kinetics build follows where its
    machine code is cached (then ~0.05 s; never a compilation of seconds unasked), with the
    same numbers (kinetics.emit.numba_default)."""
    from kinetics.emit import numba_enabled
    if importlib.util.find_spec("numba") is not None and numba_enabled():  # cache the machine code
        for red, names in ((True, ("sym_rhs", "sym_jac")), (False, ("rhs", "jac"))):
            assert library.dhaq().compile(reduce_fast=red)._c._numba_build(*names)
    code = ("import os, sys, tempfile, numpy as np\nfrom kinetics import library\n"
            "from kinetics.emit import numba_default\nfrom kinetics.model import piecewise_current\n"
            "ms = [library.dhaq().compile(reduce_fast=red) for red in (True, False)]\n"
            "sim = lambda m: m.simulate(np.linspace(0, 7200, 9), y0={'O': 0.1},\n"
            "    current_A=piecewise_current([(3600, 0.02), (3600, -0.02)])).Y\n"
            "a = [sim(m) for m in ms]\nprint('numba' in sys.modules, numba_default())\n"
            "try:\n    import numba\nexcept ImportError:\n    sys.exit(0)\n"
            "after_import = numba_default()\n"
            "numba.njit(lambda x: x + 1.0)(1.0)  # another module's numba code\n"
            "real = os.environ.get('FLOWCELL_CACHE_DIR')\n"
            "os.environ['FLOWCELL_CACHE_DIR'] = tempfile.mkdtemp()  # no machine code there\n"
            "[sim(m) for m in ms]\nuncached = any(m._c._nb for m in ms)\n"
            "if real is None:\n    del os.environ['FLOWCELL_CACHE_DIR']\n"
            "else:\n    os.environ['FLOWCELL_CACHE_DIR'] = real\n"
            "b = [sim(m) for m in ms]\n"
            "print(after_import, numba_default(), uncached, bool(ms[0]._c._nb.get(('sym_rhs', 'sym_jac'))),\n"
            "      bool(ms[1]._c._nb.get(('rhs', 'jac'))), max(abs(x - y).max() for x, y in zip(a, b)))\n")
    env = {k: v for k, v in os.environ.items() if k != "FLOWCELL_NUMBA"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         check=True, timeout=300).stdout.split()
    assert out[:2] == ["False", "False"]
    if len(out) > 2:  # numba installed
        assert out[2:7] == ["False", "True", "False", "True", "True"] and float(out[7]) <= 1e-12


def test_solver_call_counts_skip_unset_entries_after_a_failure() -> None:
    from kinetics.model import _solver_count
    arr = np.array([5, 9, 12, -1717986918, 3, 2_000_000_000], dtype=np.int32)  # odeint's np.empty tail
    assert _solver_count(arr, ok=False) == 12
    assert _solver_count(np.array([5, 9, 12], dtype=np.int32), ok=True) == 12
    assert _solver_count(np.array([5, 9, 12, 40], dtype=np.int32), ok=False) == 40
