"""Generated kinetics code cached on disk (kinetics.codecache): same numbers as a fresh
generation, keyed by the network's structure, corrupt entries ignored and rewritten."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kinetics import codecache, codegen, library
from kinetics.model import piecewise_current
from kinetics.network import Network

STEPS = [(1800.0, 0.02), (600.0, 0.0), (1800.0, -0.015)]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(codecache.ENV, str(tmp_path))
    codegen.clear_cache()
    yield tmp_path / "kinetics"
    codegen.clear_cache()


def _entry_files(d):
    return sorted(d.glob("*.json")) if d.is_dir() else []


def _run(reduce_fast: bool):
    m = library.dhaq(KD=0.0).compile(reduce_fast=reduce_fast)
    t = np.linspace(0, 4200, 141)
    return m, m.simulate(t, y0={"O": 0.1}, current_A=piecewise_current(STEPS), volume_L=0.01)


def test_disk_entry_gives_the_fresh_numbers(cache, monkeypatch):
    m1, full1 = _run(False)
    _, red1 = _run(True)  # generates the closed form too, which joins the entry
    files = _entry_files(cache)
    assert len(files) == 1
    data = json.loads(files[0].read_text())["data"]
    assert {"rates", "drates", "sym_rhs", "sym_jac"} <= set(data["sources"]) and data["closed_form_done"]
    x = np.array([0.05, 0.04, 0.0, 0.0][:len(m1.state_names)] + [0.001] * (len(m1.state_names) - 4))
    rhs1, jac1 = m1.rhs(x, current_A=0.02), m1.jacobian(x, current_A=0.02)
    exprs1 = codegen.compile_network(library.dhaq(KD=0.0)).rate_exprs

    codegen.clear_cache()  # a "new process": only the disk entry is left
    monkeypatch.setattr(codegen, "_generate", lambda net: pytest.fail("sympy work redone despite the cache"))
    m2, full2 = _run(False)
    _, red2 = _run(True)
    np.testing.assert_array_equal(m2.rhs(x, current_A=0.02), rhs1)
    np.testing.assert_array_equal(m2.jacobian(x, current_A=0.02), jac1)
    np.testing.assert_allclose(full2.conc.to_numpy(), full1.conc.to_numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(red2.conc.to_numpy(), red1.conc.to_numpy(), rtol=0, atol=1e-15)
    exprs2 = codegen.compile_network(library.dhaq(KD=0.0)).rate_exprs
    assert [e.equals(f) for e, f in zip(exprs1, exprs2)] == [True] * len(exprs1)


def test_key_is_the_structure_not_the_defaults(cache):
    codegen.compile_network(library.dhaq(Kc=0.5))
    codegen.compile_network(library.dhaq(Kc=0.1, k_dec=1e-4))  # same structure: memory hit, one entry
    assert len(_entry_files(cache)) == 1
    a = codecache.entry_key(library.dhaq().fingerprint())
    assert a == codecache.entry_key(library.dhaq(Kc=0.3).fingerprint())
    other = library.dhaq().to_text().replace("species", "species X inactive\nspecies", 1)
    assert a != codecache.entry_key(Network.from_text(other).fingerprint())
    assert len(a) == 64


@pytest.mark.parametrize("garbage", ["{not json", '{"schema": 1, "key": "other", "data": {}}',
                                     '{"schema": 1, "key": "%s", "data": {"species": 3}}'])
def test_corrupt_entry_is_ignored_and_rewritten(cache, garbage):
    net = library.dhaq()
    ref = codegen.compile_network(net)
    x = np.array([0.05, 0.01, 0.03, 0.0] + [0.0] * (len(ref.species) - 4))
    p = np.array([net.defaults[k] for k in ref.params])
    want = ref.rhs_full(x, p, (1e-5, 1e-5, 0.0))
    (f,) = _entry_files(cache)
    key = f.stem
    f.write_text(garbage.replace("%s", key))
    codegen.clear_cache()
    got = codegen.compile_network(net)  # regenerated, not crashed
    np.testing.assert_array_equal(got.rhs_full(x, p, (1e-5, 1e-5, 0.0)), want)
    assert json.loads(f.read_text())["key"] == key  # rewritten whole


def test_cache_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv(codecache.ENV, "off")
    codegen.clear_cache()
    assert codecache.cache_dir() is None
    codegen.compile_network(library.dhaq())
    assert codecache.store("x" * 64, {}) is None
    codegen.clear_cache()


def test_numba_switch_and_source_round_trip(monkeypatch):
    """FLOWCELL_NUMBA=0 (or numba missing) leaves the pure build; the emitted source is exact."""
    import sympy as sp

    from kinetics import emit
    a, b = sp.symbols("a b")
    src = emit.function_source("f", [a], [b], sp.symbols("i i_ch i_dis"), [a ** 2 / b ** 3 + sp.sqrt(a) - 1 / a ** 2])
    f = emit.build_pure(src, "f")
    assert f([2.0], [3.0], 0.0, 0.0, 0.0) == pytest.approx([4 / 27 + 2 ** 0.5 - 0.25], rel=1e-15)
    monkeypatch.setenv("FLOWCELL_NUMBA", "0")
    assert not emit.numba_enabled() and emit.build_numba(src, "f", 1, 1) is None
