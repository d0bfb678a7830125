"""One resolver of model parameters (flowcell.params), used by all four consumers.

Known truths: the values written in the experiment file, the library defaults, and
``Kc = exp(F dE / RT)`` (docs/physics.md §1.2) computed here from CODATA constants
without the package.  Every key that ``flowcell/data/example_experiment.toml`` shows in
``[model.params]`` is uncommented and set to a value that is no default; the simulator,
the fit, screening and the live SOC filter must all see that value (and, for
``dE_V = -0.05 V``, the same Kc = 0.1428).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from flowcell.config import ConfigError, ExperimentConfig
from flowcell.demo import demo_protocol
from flowcell.fit.data import prepare_fit_data
from flowcell.fit.pipeline import fixed_params
from flowcell.live.estimator import LiveSOC
from flowcell.params import compiled_model, model_network, resolve_params
from flowcell.screen.tasks import _fixed_params as screen_fixed_params
from flowcell.simulate.simulator import ExperimentSimulator
from kinetics.library import DEFAULTS

EXAMPLE = Path(__file__).resolve().parents[1] / "flowcell" / "data" / "example_experiment.toml"
F, R = 96485.33212, 8.314462618  # CODATA 2018, C/mol and J/(mol K)


def example_param_keys() -> list[str]:
    """Keys the example file shows (commented) in its [model.params] table."""
    text = EXAMPLE.read_text(encoding="utf-8")
    block = text.split("[model.params]", 1)[1].split("\n[", 1)[0]
    return re.findall(r"^#\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", block, flags=re.M)


def config_with(params: dict[str, float], temperature_K: float = 298.15) -> ExperimentConfig:
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["model"]["params"] = dict(params)
    data["electrolyte"]["temperature_K"] = temperature_K
    return ExperimentConfig.from_dict(data, source=EXAMPLE)


def file_values() -> dict[str, float]:
    """Every example key at a value that is not its default (1.37 x default, or a fixed number)."""
    fixed = {"KD": 2.5, "eps_H": 0.03, "g": 2.0051, "xi": 0.31, "hdo_ref_ppm": 4.81}
    return {k: fixed.get(k, 1.37 * DEFAULTS.get(k, 1.0)) for k in example_param_keys()}


def effective(cfg: ExperimentConfig, tmp_path: Path) -> dict[str, dict[str, float]]:
    """What each of the four consumers uses, by parameter name."""
    model = compiled_model(cfg)
    sim = ExperimentSimulator(cfg, demo_protocol(0.3), model, tmp_path / "sim", interval_s=300.0)
    tr = sim.prepare()
    sp = tr.spectra
    table = pd.DataFrame({"kind": sp["kind"], "time_mid": pd.to_datetime(sp["time_mid"], utc=True),
                          "sfo1_MHz": 400.13, "hdo_shift_ppm": sp["hdo_shift_ppm"],
                          "epr_spin_conc_M": sp["epr_spin_conc_M"]})
    pot = pd.DataFrame({"t_s": tr.t_s, "I_A": tr.current_A})
    pot.attrs["start"] = tr.start
    fit = fixed_params(model, prepare_fit_data(table, cfg, pot))
    live = LiveSOC(cfg)
    assert live.params == resolve_params(cfg)
    live_used = {"Kc": live.K, "g": live.g, "T": live.T}  # K: the centre of its K_c prior
    if live.xi is not None:
        live_used["xi"] = float(live.xi)
    if live.hdo_ref_ppm is not None:
        live_used["hdo_ref_ppm"] = live.hdo_ref_ppm
    return {"simulator": sim.params, "fit": fit, "screen": screen_fixed_params(model, cfg, {}), "live": live_used}


# names the fit calibrates itself (first spectrum, geometry and temperature), not taken from the file
FIT_CALIBRATED = {"hdo_ref_ppm", "xi"}


def test_every_example_key_reaches_every_consumer(tmp_path):
    keys = example_param_keys()
    assert {"Kc", "kc", "k_dec", "J_e", "g", "xi", "hdo_ref_ppm"} <= set(keys)
    values = file_values()
    cfg = config_with(values)
    resolved = resolve_params(cfg)
    assert {k: resolved[k] for k in values} == values  # the file wins over the library
    eff = effective(cfg, tmp_path)
    assert eff["simulator"] == resolved
    model_names = set(model_network(cfg).param_names)
    assert eff["screen"] == {k: resolved[k] for k in model_names}
    for k, v in eff["fit"].items():
        if k in resolved and k not in FIT_CALIBRATED:
            assert v == resolved[k], k
    assert set(values) & model_names <= set(eff["fit"])  # every model key of the file is fixed in the fit
    for k, v in eff["live"].items():
        assert v == resolved[k], k
    assert eff["live"].keys() >= {"Kc", "g", "xi", "hdo_ref_ppm", "T"}


def test_dE_V_gives_the_same_Kc_everywhere(tmp_path):
    T = 310.0
    cfg = config_with({"dE_V": -0.05}, temperature_K=T)
    Kc = math.exp(F * -0.05 / (R * T))
    assert Kc == pytest.approx(0.153862, rel=1e-5)
    eff = effective(cfg, tmp_path)
    for name, used in eff.items():
        assert used["Kc"] == pytest.approx(Kc, rel=1e-12), name
        assert "dE_V" not in used
    assert resolve_params(config_with({"dE_V": -0.05}))["Kc"] == pytest.approx(0.142832, rel=1e-5)


def test_layers_and_temperature():
    cfg = config_with({"Kc": 0.2, "k_dec": 2e-6}, temperature_K=303.0)
    p = resolve_params(cfg, {"k_dec": 5e-6})
    assert (p["Kc"], p["k_dec"], p["J_e"], p["T"]) == (0.2, 5e-6, DEFAULTS["J_e"], 303.0)
    # an override's dE_V replaces the file's Kc, at the file's temperature
    p = resolve_params(cfg, {"dE_V": 0.0356})
    assert p["Kc"] == pytest.approx(math.exp(F * 0.0356 / (R * 303.0)), rel=1e-12)
    assert resolve_params(None) == DEFAULTS


@pytest.mark.parametrize("layer", ["file", "override"])
def test_unknown_names_are_errors_with_a_suggestion(layer):
    if layer == "file":
        cfg = ExperimentConfig.from_dict(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")), source=EXAMPLE)
        object.__setattr__(cfg.model, "params", {"k_dex": 1e-6})  # past the config's own check
        with pytest.raises(ConfigError, match=r"example_experiment.toml.*model.params.k_dex.*'k_dec'"):
            resolve_params(cfg)
    else:
        with pytest.raises(ConfigError, match=r"--param.*param.j_e.*'J_e'"):
            resolve_params(None, {"j_e": 1.0}, overrides_source="--param")
    with pytest.raises(ConfigError, match="not both"):
        resolve_params(None, {"Kc": 0.1, "dE_V": -0.06})
    with pytest.raises(ConfigError, match="finite"):
        resolve_params(None, {"Kc": np.nan})


def test_model_lookup():
    assert model_network("dbeaq").defaults["k_dec"] == pytest.approx(2.3e-9)
    assert model_network(None).name == "dhaq"
    with pytest.raises(ConfigError, match="unknown model 'dhq'.*'dhaq'"):
        model_network("dhq")
