"""``flowcell fit`` end to end on files the package did not write (issue 14).

A store (``ingest.live.store.Store``) filled with rows from
``tests/generators/inline_fit_data.py`` (imports nothing from the package), a plain CSV
potentiostat log and an experiment file: the documented exit codes (2 too few points,
3 a non-finite current naming the log, 4 the residuals reject the model) and what the
report folder holds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from generators.inline_fit_data import config, experiment

from flowcell.cli import main
from flowcell.cli.common import EXIT_INPUT, EXIT_MISFIT, EXIT_USAGE
from flowcell.config import ExperimentConfig
from ingest.live.store import Store


def _write(tmp_path, table, pot, *, name="run"):
    d = tmp_path / name
    d.mkdir()
    log = d / "potentiostat.csv"
    with log.open("w") as f:
        f.write(f"# start: {pot.attrs['start'].isoformat()}\n# current: interval-mean\ntime_s,current_A\n")
        for t, i in zip(pot["t_s"], pot["I_A"]):
            f.write(f"{t!r},{i!r}\n")
    store = Store(d / "store")
    for k, row in table.iterrows():
        r = {c: v for c, v in row.items() if not (isinstance(v, float) and np.isnan(v))}
        r["time_mid"] = row["time_mid"].isoformat()
        store.append([r], source=f"spectrum-{k}", fingerprint=f"fp-{k}")
    store.close()
    d_cfg = config()
    d_cfg["instruments"] = {"potentiostat": str(log)}
    toml = ExperimentConfig.from_dict(d_cfg).write_toml(d / "experiment.toml")
    return d / "store", toml, log


def test_wrong_mechanism_exits_4_with_a_report(tmp_path, capsys):
    table, pot, _ = experiment(decomposition="H->A", seed=2)
    store, toml, _ = _write(tmp_path, table, pot)
    out = tmp_path / "fit"
    code = main(["fit", str(store), "--config", str(toml), "--no-intervals", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == EXIT_MISFIT, text
    assert "MODEL REJECTED" in text and "before rescaling" in text
    js = json.loads((out / "fit.json").read_text())
    assert js["status"] == "MODEL REJECTED by its residuals" and js["goodness_of_fit"]["misfit_reasons"]
    assert {r["parameter"] for r in js["parameters"]} >= {"Kc", "k_dec", "J_e"}
    for f in ("report.md", "fit.png", "observables.png", "fit_series.csv"):
        assert (out / f).exists(), f


def test_non_finite_current_and_too_few_points(tmp_path, capsys):
    table, pot, _ = experiment(hours=0.5, interval_s=120.0)
    bad = pot.copy()
    bad.attrs = dict(pot.attrs)
    bad.loc[5, "I_A"] = np.inf
    store, toml, log = _write(tmp_path, table, bad, name="inf")
    assert main(["fit", str(store), "--config", str(toml), "--no-intervals"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert str(log) in err or log.name in err
    few = table[table["kind"].eq("nmr")].head(2)
    store, toml, _ = _write(tmp_path, few, pot, name="few")
    assert main(["fit", str(store), "--config", str(toml), "--no-intervals"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "too few data points" in err and "Improper input" not in err


@pytest.mark.parametrize("spec", ["dec_X"])
def test_compare_rejects_an_unknown_mechanism_plainly(tmp_path, capsys, spec):
    """A misspelt candidate is reported as failed (with the known tokens) while the others are fitted."""
    from flowcell.fit.compare import candidate_config
    from flowcell.params import model_network
    cfg = ExperimentConfig.from_dict(config())
    with pytest.raises(Exception, match="dec_H"):
        model_network(candidate_config(cfg, spec))
