"""Mechanisms as data (issue 14 item 1): library variants, network text in the experiment
file, and ``--compare`` ranking candidates fitted to the same data.

Known truths: the analytic decays of docs/physics.md §2.3 (first order ``[H] = [H]0 e^-kt``,
second order ``1/[H] = 1/[H]0 + k t`` for one H per event), electron bookkeeping
(§2.2), and data from ``tests/generators/inline_fit_data.py`` (imports nothing from the
package) written with H -> A.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from generators.inline_fit_data import config, experiment

from flowcell.config import ConfigError, ExperimentConfig
from flowcell.fit.compare import compare_mechanisms
from flowcell.params import model_network, resolve_params
from flowcell.report import write_comparison
from kinetics import library
from kinetics.fit import FitWarning

T = np.linspace(0.0, 2e5, 9)


def _rest(spec: str, y0: dict, **params):
    net = library.mechanism(spec)
    m = net.compile()
    p = dict(m.defaults, J_e=0.0, **params)
    return m.simulate(T, params=p, y0=y0, current_A=0.0, volume_L=0.01).conc


def test_first_and_second_order_H_to_A_are_analytic():
    """At SOC 1 (no O, so no radical) H -> A decays exactly as §2.3 says."""
    c = _rest("dec_H", {"H": 0.1}, k_dec=1e-5)
    np.testing.assert_allclose(c["H"], 0.1 * np.exp(-1e-5 * T), rtol=1e-6)
    np.testing.assert_allclose(c["A"] + c["AL"], 0.1 - c["H"], rtol=1e-6, atol=1e-12)
    c2 = _rest("dec_H_2nd", {"H": 0.1}, k_dec=2e-4)
    np.testing.assert_allclose(1 / c2["H"], 1 / 0.1 + 2e-4 * T, rtol=1e-6)


def test_electron_bookkeeping_of_the_decomposition_variants():
    """2H -> A + O keeps n_e + 4[A] (electrons move into A); H -> A takes 2 e- from outside:
    n_e + 2[A] is kept instead.  The anthranol tautomer holds half of A (KT = 1); without
    it all products are anthrone."""
    y0 = {"O": 0.05, "H": 0.05}
    for spec, per_A in (("dec_2H", 4.0), ("dec_H", 2.0)):
        c = _rest(spec, y0, k_dec=2e-5)
        ne = c["R"] + 2 * c["H"] + 2 * c["D"]
        np.testing.assert_allclose(ne + per_A * (c["A"] + c["AL"]), 0.1, rtol=1e-6)
        assert float(c["A"].iloc[-1]) > 1e-3
    c = _rest("dec_2H+no_tautomer", y0, k_dec=2e-5)
    assert float(c["AL"].abs().max()) < 1e-12 and float(c["A"].iloc[-1]) > 1e-3
    c = _rest("dimer", y0)
    assert float(c["D"].iloc[0]) > 1e-3  # KD = 5 1/M switches the dimer on


def test_network_text_edits_the_library_network():
    """Text lines replace reactions by name, add parameters, 'drop' removes; a text with
    species lines is a whole network; unknown tokens list the known ones."""
    net = library.mechanism(network="Dec_ch: H -> A ; k_dec ; rate = k_dec*H ; solvent ; sink\ndrop T")
    rx = {r.name: r for r in net.reactions}
    assert "T" not in rx and rx["Dec_ch"].reactants == {"H": 1} and rx["Dec_ch"].products == {"A": 1}
    whole = library.mechanism(network="species O electrons=0 active\nspecies H electrons=2 active\n"
                                      "param k = 1e-3 1/s [ASSUMED]\nX: H -> O + 2 e- ; k ; sink")
    assert whole.species_names == ["O", "H"] and whole.defaults == {"k": 1e-3}
    with pytest.raises(KeyError, match="dec_H_2nd"):
        library.mechanism("dec_Q")


def test_experiment_file_mechanism_and_network(tmp_path):
    """[model] mechanism / network reach the one model lookup and the parameter resolution;
    a bad token is a ConfigError naming the key; the text survives a TOML round trip."""
    cfg = ExperimentConfig.from_dict(config(mechanism="dec_H+dimer"))
    net = model_network(cfg)
    assert net.name == "dhaq+dec_H+dimer"
    assert resolve_params(cfg)["KD"] == 5.0
    bad = ExperimentConfig.from_dict(config(mechanism="dec_H+dimmer"))
    with pytest.raises(ConfigError, match=r"model\.mechanism"):
        model_network(bad)
    text = "Dec_ch: H -> A ; k_dec ; rate = k_dec*H ; solvent ; sink"
    d = config()
    d["model"]["network"] = text
    cfg2 = ExperimentConfig.from_dict(d)
    p = cfg2.write_toml(tmp_path / "e.toml")
    back = ExperimentConfig.from_toml(p)
    assert back.model.network == text
    assert {r.name: r for r in model_network(back).reactions}["Dec_ch"].sink


@pytest.mark.slow
def test_compare_ranks_the_true_mechanism_first(tmp_path):
    """Data written with H -> A: --compare ranks dec_H first by AIC (ΔAIC of the package's
    default > 20), its residuals pass, the default's fail; the dimer variant nests dec_H
    and the likelihood-ratio test finds no need for it (KD truly 0)."""
    table, pot, _ = experiment(decomposition="H->A", seed=11, hours=1.0, interval_s=120.0)
    cfg = ExperimentConfig.from_dict(config())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        comp = compare_mechanisms(table, cfg, pot, ["dec_2H", "dec_H", "dec_H+dimer"], multistart=0)
    df = comp.table()
    assert df["mechanism"].iloc[0] in ("dec_H", "dec_H+dimer")
    d = df.set_index("mechanism")
    assert d.loc["dec_2H", "daic"] > 20
    byname = {c.spec: c for c in comp.candidates}
    assert not byname["dec_H"].misfit and byname["dec_2H"].misfit
    assert byname["dec_H"].outcome.result.values["k_dec"] == pytest.approx(3e-5, rel=0.05)
    (lrt,) = comp.lrt
    assert lrt["small"] == "dec_H" and lrt["big"] == "dec_H+dimer" and lrt["p"] > 0.01
    md = write_comparison(tmp_path, comp)
    assert (tmp_path / "compare.png").exists() and (tmp_path / "compare.csv").exists()
    assert "dec_H" in md.read_text()
