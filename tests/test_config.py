"""Experiment config: parsing, validation messages, path resolution, TOML round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcell.config import ConfigError, ExperimentConfig
from flowcell.params import resolve_params

DATA = Path(__file__).resolve().parents[1] / "flowcell" / "data"

MINIMAL = {"experiment": {"name": "t"}, "electrolyte": {"concentration_M": 0.1, "volume_L": 0.01}}


def _with(table: str, **kv) -> dict:
    d = {k: dict(v) for k, v in MINIMAL.items()}
    d.setdefault(table, {}).update(kv)
    return d


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_demo_and_example_configs_load():
    demo = ExperimentConfig.from_toml(DATA / "demo_experiment.toml")
    assert demo.electrolyte.concentration_M == 0.1
    assert demo.electrolyte.volume_L == 0.010
    assert demo.flow.rate_mL_min == 13.6
    assert demo.instruments.geometry == "parallel"
    assert demo.instruments.nmr_sfo1_MHz == 400.13
    assert demo.instruments.epr_format == "bes3t"
    # reservoir = V_tot - cell - feed - return = 10 - 0.3 - 0.5 - 1.5 mL
    assert demo.reservoir_mL == pytest.approx(7.7, abs=1e-12)
    # relative instrument paths resolve against the file's folder
    assert demo.instruments.nmr_dir == DATA / "nmr"
    example = ExperimentConfig.from_toml(DATA / "example_experiment.toml")
    assert example.experiment.name == "my-experiment"
    assert example.epr_calibration is None


def test_defaults_from_science_2_6():
    cfg = ExperimentConfig.from_dict(MINIMAL)
    assert cfg.flow.rate_mL_min == 13.6
    assert cfg.electrolyte.temperature_K == 298.15
    # one Kc placeholder, the library's (dE = -60 mV rounded to 0.1, docs/physics.md §1.2 table)
    assert resolve_params(cfg)["Kc"] == 0.1
    # dE_V is converted with the Nernst factor
    cfg2 = ExperimentConfig.from_dict(_with("model", params={"dE_V": 0.0356}))
    assert resolve_params(cfg2)["Kc"] == pytest.approx(4.0, rel=2e-3)  # +35.6 mV is the statistical K = 4 (§1.2)


def test_transit_delays_from_config():
    cfg = ExperimentConfig.from_dict(_with("flow", rate_mL_min=12.0, cell_to_nmr_mL=1.0,
                                           cell_to_epr_mL=2.0, nmr_cell_mL=0.4))
    d = cfg.transit_delays()
    assert d.cell_to_nmr_s == pytest.approx(5.0)      # 1 mL at 12 mL/min
    assert d.cell_to_epr_s == pytest.approx(10.0)
    assert d.nmr_to_epr_s == pytest.approx(5.0)
    assert d.nmr_residence_s == pytest.approx(2.0)
    assert d.tank_s == pytest.approx(10.0 / 12.0 * 60.0)  # whole 10 mL in the tank by default


@pytest.mark.parametrize(
    "table, kv, key, words",
    [
        ("flow", {"rate_mL_mn": 10.0}, "flow.rate_mL_mn", "did you mean 'rate_mL_min'"),
        ("electrolyte", {"volume_L": -0.01}, "electrolyte.volume_L", "must be > 0"),
        ("flow", {"cell_to_nmr_mL": -1.0}, "flow.cell_to_nmr_mL", "must be >= 0"),
        ("electrolyte", {"concentration_M": "0.1"}, "electrolyte.concentration_M", "must be a number"),
        ("instruments", {"geometry": "paralel"}, "instruments.geometry", "did you mean 'parallel'"),
        ("instruments", {"current_sign": 2}, "instruments.current_sign", "is not one of"),
        ("live", {"refer_to_outlet": 1}, "live.refer_to_outlet", "true or false"),
        ("model", {"params": {"Kcc": 1.0}}, "model.params.Kcc", "did you mean 'Kc'"),
        ("model", {"name": "dhaqq"}, "model.name", "did you mean 'dhaq'"),
        ("epr_calibration", {"concentration_M": 1e-3}, "epr_calibration.di_norm", "missing required key"),
    ],
)
def test_validation_names_key_and_problem(table, kv, key, words):
    with pytest.raises(ConfigError) as ei:
        ExperimentConfig.from_dict(_with(table, **kv), source="my.toml")
    err = ei.value
    assert err.key == key
    assert words in str(err)
    assert str(err).startswith("my.toml")


def test_missing_required_and_unknown_table(tmp_path):
    p = _write(tmp_path, '[experiment]\nname = "x"\n[electrolyte]\nvolume_L = 0.01\n')
    with pytest.raises(ConfigError) as ei:
        ExperimentConfig.from_toml(p)
    assert ei.value.key == "electrolyte.concentration_M" and "missing required key" in str(ei.value)
    assert str(p) in str(ei.value)
    with pytest.raises(ConfigError, match="did you mean 'electrolyte'") as ei:
        ExperimentConfig.from_dict({**MINIMAL, "electrolite": {}})
    with pytest.raises(ConfigError, match="missing required table"):
        ExperimentConfig.from_dict({"experiment": {"name": "x"}})


def test_bad_toml_and_missing_file(tmp_path):
    p = _write(tmp_path, "[experiment\nname = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ExperimentConfig.from_toml(p)
    with pytest.raises(ConfigError, match="not found"):
        ExperimentConfig.from_toml(tmp_path / "nope.toml")


def test_loop_volumes_must_fit_in_total():
    with pytest.raises(ConfigError, match="leaves no reservoir volume"):
        ExperimentConfig.from_dict(_with("flow", return_mL=12.0))
    with pytest.raises(ConfigError, match="exceeds electrolyte.volume_L"):
        ExperimentConfig.from_dict(_with("flow", reservoir_mL=11.0))


def test_round_trip_through_toml(tmp_path):
    cfg = ExperimentConfig.from_toml(DATA / "demo_experiment.toml")
    # a calibration table and an odd string survive too
    from dataclasses import replace

    from flowcell.config import EPRCalibrationConfig

    cfg = replace(cfg, epr_calibration=EPRCalibrationConfig(concentration_M=1e-3, di_norm=1.2345e5),
                  experiment=replace(cfg.experiment, notes='quote " and back\\slash'))
    out = tmp_path / "sub" / "experiment.toml"
    cfg.write_toml(out)
    text = out.read_text()
    assert "[model.params]" in text
    back = ExperimentConfig.from_toml(out)
    assert back == cfg
    assert back.model.params["Kc"] == 0.0967
    assert back.instruments.nmr_dir == cfg.instruments.nmr_dir  # relative path re-resolved
    # the reservoir (7.7 mL, implied by the loop volumes) survives: 7.7 mL at 13.6 mL/min
    assert back.transit_delays().tank_s == pytest.approx(7.7 / 13.6 * 60.0, rel=1e-12)
    assert back.transit_delays() == cfg.transit_delays()
