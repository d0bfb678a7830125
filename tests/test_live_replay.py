"""``flowcell watch`` on real files: an experiment written to a staging folder (Bruker 1H
experiments, BES3T EPR files, a potentiostat CSV) is copied into EMPTY watched folders
while the command runs; it must store every spectrum, write ``live_soc.csv`` as it goes,
track the true SOC, and exit 0.  Also: an unwritable store gives exit code 1 with the reason.
"""

from __future__ import annotations

import csv
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from flowcell.cli import main
from flowcell.cli.common import EXIT_FAIL, EXIT_OK
from flowcell.demo import DEMO_TRUTH, demo_protocol, load_demo_config
from flowcell.params import compiled_model
from flowcell.simulate.simulator import ExperimentSimulator


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """A 1.5 h charge/rest/discharge written at once to a staging folder."""
    stage = tmp_path_factory.mktemp("stage")
    cfg = load_demo_config()
    protocol = demo_protocol(1.5, C_tot_M=cfg.electrolyte.concentration_M, volume_L=cfg.electrolyte.volume_L)
    sim = ExperimentSimulator(cfg, protocol, compiled_model(cfg), stage, params=DEMO_TRUTH, interval_s=240.0, seed=2)
    truth = sim.prepare()
    sim.setup_files()
    sim.write()
    return stage, sim.cfg_written, truth


def _config(tmp: Path, cfg_sim, pot: Path) -> Path:
    nmr, epr = tmp / "watch" / "nmr", tmp / "watch" / "epr"
    nmr.mkdir(parents=True)
    epr.mkdir(parents=True)
    ins = replace(cfg_sim.instruments, nmr_dir=nmr.resolve(), epr_dir=epr.resolve(), potentiostat=pot.resolve())
    path = tmp / "experiment.toml"
    replace(cfg_sim, instruments=ins).write_toml(path)
    return path


@pytest.mark.slow
def test_replay_into_empty_folders_while_watching(staged, tmp_path):
    stage, cfg_sim, truth = staged
    pot = tmp_path / "potentiostat.csv"
    shutil.copy2(stage / "potentiostat.csv", pot)
    config = _config(tmp_path, cfg_sim, pot)
    out = tmp_path / "out"
    code: list[int] = []
    th = threading.Thread(target=lambda: code.append(main(
        ["watch", str(config), "--store", str(tmp_path / "store"), "--out", str(out), "--idle-exit", "2"])))
    th.start()
    time.sleep(1.5)  # the watcher is up; now the instruments "write"
    items = sorted([p for p in (stage / "nmr").iterdir()] + [p for p in (stage / "epr").iterdir()
                                                            if p.suffix.upper() == ".DTA"],
                   key=lambda p: p.stat().st_mtime)
    for p in items:
        if p.is_dir():
            shutil.copytree(p, tmp_path / "watch" / "nmr" / p.name)
        else:  # BES3T: the .DSC header first, then the data
            shutil.copy2(p.with_suffix(".DSC"), tmp_path / "watch" / "epr" / p.with_suffix(".DSC").name)
            shutil.copy2(p, tmp_path / "watch" / "epr" / p.name)
        time.sleep(0.02)
    th.join(120)
    assert code == [EXIT_OK]
    rows = list(csv.DictReader(open(out / "live_soc.csv")))
    assert len(rows) == len(truth.spectra)
    assert {"time_utc", "soc", "soc_active", "soc_sd", "Kc"} <= set(rows[0])
    t = np.array([float(r["t_s"]) for r in rows])
    soc = np.array([float(r["soc"]) for r in rows])
    charge_start = 0.04 * 1.5 * 3600
    late = t >= charge_start + 1800
    err = np.abs(soc[late] - np.array([truth.soc_at(x) for x in t[late]]))
    assert late.sum() > 5 and err.max() < 0.02, err.max()


def test_unwritable_store_exits_1_with_the_reason(staged, tmp_path, capsys):
    _, cfg_sim, _ = staged
    config = _config(tmp_path, cfg_sim, tmp_path / "none.csv")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["watch", str(config), "--store", str(blocker / "store"), "--duration", "1"]) == EXIT_FAIL
    assert "store" in capsys.readouterr().err
