"""The ``flowcell`` command line: help texts, exit codes, simulate -> ingest -> fit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from flowcell.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]
DEMO_CFG = ROOT / "flowcell" / "data" / "demo_experiment.toml"


def test_help_lists_commands_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("demo", "simulate", "watch", "fit", "ingest", "exit codes", "examples"):
        assert word in out
    for cmd in ("demo", "simulate", "watch", "fit", "ingest"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert "exit codes" in text and "examples" in text, cmd


def test_python_dash_m_flowcell_runs():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "flowcell", "--help"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 0 and "flowcell" in r.stdout


def test_no_command_is_usage_error(capsys):
    assert main([]) == EXIT_USAGE


def test_unknown_option_is_exit_2():
    with pytest.raises(SystemExit) as e:
        main(["demo", "--no-such-option"])
    assert e.value.code == EXIT_USAGE


def test_bad_config_is_exit_2_and_names_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[experiment]\nname = "x"\n[electrolyte]\nconcentration_M = -0.1\nvolume_L = 0.01\n')
    assert main(["simulate", str(bad), "--out", str(tmp_path / "o")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "bad.toml" in err and "concentration_M" in err


def test_bad_protocol_is_exit_2(tmp_path, capsys):
    code = main(["simulate", str(DEMO_CFG), "--out", str(tmp_path / "o"), "--protocol", "charge 3 A"])
    assert code == EXIT_USAGE
    assert "unknown kind" in capsys.readouterr().err


def test_missing_input_is_exit_3(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nothing-here"), "--config", str(DEMO_CFG)]) == EXIT_INPUT
    assert "nothing-here" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["ingest", str(empty), "-o", str(tmp_path / "t.csv"), "--no-progress"]) == EXIT_INPUT


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "sim"
    code = main(["simulate", str(DEMO_CFG), "--out", str(out), "--protocol",
                 "rest 6 min; cc +40 mA until soc 0.7 max 2 h; rest 30 min",
                 "--interval-min", "4", "--seed", "2", "--param", "k_dec=3e-6", "--param", "J_e=2e-7",
                 "--no-progress"])
    assert code == EXIT_OK
    return out


def test_simulate_writes_a_complete_experiment(simulated):
    out = simulated
    assert (out / "experiment.toml").exists() and (out / "potentiostat.csv").exists()
    truth = json.loads((out / "truth" / "truth.json").read_text())
    assert truth["params"]["k_dec"] == 3e-6 and truth["params"]["J_e"] == 2e-7
    n_nmr = len([p for p in (out / "nmr").iterdir() if p.is_dir()])
    n_epr = len(list((out / "epr").glob("*.DTA")))
    spectra = pd.read_csv(out / "truth" / "truth_spectra.csv")
    assert n_nmr == (spectra.kind == "nmr").sum() > 10 and n_epr == (spectra.kind == "epr").sum()


def test_ingest_batch_to_parquet(simulated, tmp_path):
    dst = tmp_path / "nmr.parquet"
    assert main(["ingest", str(simulated / "nmr"), "-o", str(dst), "--no-progress"]) == EXIT_OK
    tab = pd.read_parquet(dst)
    spectra = pd.read_csv(simulated / "truth" / "truth_spectra.csv")
    nmr_truth = spectra[spectra.kind == "nmr"].reset_index(drop=True)
    assert len(tab) == len(nmr_truth)
    tab = tab.sort_values("time_mid").reset_index(drop=True)
    # the batch path recovers the simulated water shift (2e-4 ppm ~ 0.04 mM radical)
    assert (tab["hdo_shift_ppm"] - nmr_truth["hdo_shift_ppm"]).abs().max() < 2e-4


@pytest.mark.slow
def test_fit_raw_folder_recovers_truth(simulated, tmp_path, capsys):
    """fit FOLDER: batch ingest -> fit (Kc, k_dec, J_e) -> report; truths inside the 95 % intervals."""
    out = tmp_path / "fit"
    code = main(["fit", str(simulated), "--free", "Kc,k_dec,J_e", "--out", str(out),
                 "--truth", str(simulated / "truth" / "truth.json")])
    text = capsys.readouterr().out
    assert (out / "report.md").exists() and (out / "fit.json").exists()
    assert (out / "observables.png").exists()
    fit = json.loads((out / "fit.json").read_text())
    rows = {r["parameter"]: r for r in fit["parameters"]}
    assert set(rows) >= {"Kc", "k_dec", "J_e"}
    for name in ("Kc", "k_dec", "J_e"):
        r = rows[name]
        assert r["ci95_lo"] <= r["truth"] <= r["ci95_hi"], (name, r, text)
    assert code == EXIT_OK


def test_fit_unknown_free_parameter_is_exit_2(simulated, capsys):
    code = main(["fit", str(simulated), "--free", "Kc,bogus", "--no-intervals"])
    assert code == EXIT_USAGE
    assert "bogus" in capsys.readouterr().err


def test_watch_processes_existing_files_and_stops(simulated, tmp_path, capsys):
    store = tmp_path / "store"
    code = main(["watch", str(simulated / "experiment.toml"), "--store", str(store), "--idle-exit", "2",
                 "--duration", "120"])
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert "SOC" in out
    from ingest.live.store import Store
    n = len(Store(store))
    spectra = pd.read_csv(simulated / "truth" / "truth_spectra.csv")
    assert n == len(spectra)


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_watch_ctrl_c_stops_cleanly_with_exit_0(simulated, tmp_path, inherited):
    """Ctrl-C stops `flowcell watch` with exit 0, also when it was started with SIGINT ignored
    (a background job, or a parent that ignores SIGINT, as a CI test worker did): Python then
    installs no KeyboardInterrupt handler, and the watcher used to run on forever."""
    import signal
    import time
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def _ignore_sigint() -> None:  # in the child, before exec: what a parent's SIG_IGN leaves
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    # -X faulthandler: if it hangs, SIGABRT makes the child print every thread's stack
    p = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "flowcell", "watch",
                          str(simulated / "experiment.toml"), "--store", str(tmp_path / "store")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=_ignore_sigint if inherited == "ignored" else None)
    try:
        first = p.stdout.readline()  # "watching ..." once the watcher runs
        assert "watching" in first
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGABRT)
            out, err = p.communicate(timeout=30)
            pytest.fail(f"flowcell watch still running 45 s after Ctrl-C; its threads:\n{err[-6000:]}")
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == EXIT_OK, err
    assert "rows in" in out


def test_cli_sets_one_blas_thread_unless_the_user_did(monkeypatch, tmp_path):
    """docs/conventions.md: the command line runs numpy's BLAS on one thread; a user's own
    setting wins."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    code = main(["ingest", str(tmp_path / "no-such-folder"), "-o", str(tmp_path / "out.csv")])
    assert code != EXIT_OK
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["MKL_NUM_THREADS"] == "3"
