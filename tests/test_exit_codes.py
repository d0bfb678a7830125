"""Every command's exit code tells the truth (flowcell/cli/common.py EXIT_TEXT).

2 for bad usage, a bad experiment value or argument (the message names the
file and the key, or the argument); 3 only for unreadable input; an unwritable
output path is caught before the work (2, naming the path).  Each case runs
the real ``flowcell`` entry point in-process and fails before any heavy work.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowcell.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "flowcell" / "data" / "demo_experiment.toml"


def _exp(tmp: Path, edit: tuple[str, str] | None = None, name: str = "experiment.toml") -> Path:
    """The demo experiment file, with one ``(regex, replacement)`` edit."""
    text = DEMO.read_text()
    if edit is not None:
        text, n = re.subn(edit[0], edit[1], text, count=1, flags=re.M)
        assert n == 1, edit
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("args", "words"), [
    (["--hours", "0"], ["--hours", "> 0"]),
    (["--hours", "1e6"], ["--hours", "<= 2000"]),
    (["--interval-min", "0"], ["--interval-min"]),
    (["--interval-min", "-2"], ["--interval-min"]),
    (["--speedup", "0"], ["--speedup"]),
    (["--soc0", "1.5"], ["--soc0"]),
    (["--hours", "nan"], ["--hours", "finite"]),
])
def test_simulate_arguments_out_of_range_exit_2(tmp_path: Path, capsys, args, words) -> None:
    code, err = _run(capsys, "simulate", _exp(tmp_path), "--out", tmp_path / "sim", *args)
    assert code == 2, err
    for w in words:
        assert w in err
    assert not (tmp_path / "sim").exists()  # refused before any work


@pytest.mark.parametrize(("edit", "key"), [
    ((r"^Kc = .*$", "Kc = -1"), "model.params.Kc"),
    ((r"^soc0 = .*$", "soc0 = 5.0"), "live.soc0"),
    ((r"^concentration_M = .*$", "concentration_M = 50"), "electrolyte.concentration_M"),
    ((r"^k_dec = .*$", "k_dec = -1e-6"), "model.params.k_dec"),
    ((r"^temperature_K = .*$", "temperature_K = 2.0"), "electrolyte.temperature_K"),
])
def test_experiment_values_out_of_range_exit_2(tmp_path: Path, capsys, edit, key) -> None:
    exp = _exp(tmp_path, edit)
    code, err = _run(capsys, "simulate", exp, "--out", tmp_path / "sim")
    assert code == 2, err
    assert str(exp) in err and key in err


def test_binary_experiment_file_exit_2(tmp_path: Path, capsys) -> None:
    exp = tmp_path / "experiment.toml"
    exp.write_bytes(bytes(range(256)) * 8)
    code, err = _run(capsys, "simulate", exp, "--out", tmp_path / "sim")
    assert code == 2 and str(exp) in err and "binary" in err
    assert "UnicodeDecodeError" not in err


def test_watch_missing_nmr_dir_exit_2_naming_the_key(tmp_path: Path, capsys) -> None:
    exp = _exp(tmp_path)
    (tmp_path / "epr").mkdir()
    code, err = _run(capsys, "watch", exp, "--duration", "0.1")
    assert code == 2, err
    assert "instruments.nmr_dir" in err and str(exp) in err


@pytest.mark.parametrize("command", ["ingest", "fit", "simulate", "demo"])
def test_unwritable_output_exit_2_before_the_work(tmp_path: Path, capsys, command: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "out"
    exp = _exp(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    argv = {
        "ingest": ["ingest", data, "-o", out / "t.parquet"],
        "fit": ["fit", data, "--config", exp, "--out", out],
        "simulate": ["simulate", exp, "--out", out],
        "demo": ["demo", "--out", out, "--no-live", "--quick"],
    }[command]
    code, err = _run(capsys, *argv)
    assert code == 2, err
    assert str(out) in err


def test_unreadable_input_exit_3(tmp_path: Path, capsys) -> None:
    code, err = _run(capsys, "ingest", tmp_path / "no-such-folder", "-o", tmp_path / "t.parquet")
    assert code == 3 and "no-such-folder" in err


def test_demo_bad_speedup_exit_2(tmp_path: Path, capsys) -> None:
    code, err = _run(capsys, "demo", "--speedup", "0", "--out", tmp_path / "d")
    assert code == 2 and "--speedup" in err


def test_screen_with_only_bad_experiments_reports_their_errors(tmp_path: Path, capsys) -> None:
    _exp(tmp_path / "a", (r"^Kc = .*$", "Kc = -1"))
    _exp(tmp_path / "b", (r"^soc0 = .*$", "soc0 = 5.0"))
    code, err = _run(capsys, "screen", tmp_path, "--out", tmp_path / "screen-out")
    assert code == 2, err
    assert "model.params.Kc" in err and "live.soc0" in err
    assert "unknown free parameter" not in err
