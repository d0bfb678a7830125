"""The README's Python examples run as written (so the README cannot rot).

They read the real instrument files in ``../shared/data``, so the test runs from the
repository root and skips when that folder is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_examples() -> None:
    assert len(_python_blocks()) >= 1


def test_readme_python_examples_run(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shared_data.resolve() != (ROOT.parent / "shared" / "data").resolve():
        pytest.skip("README examples use the relative path ../shared/data")
    monkeypatch.chdir(ROOT)
    for block in _python_blocks():
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    # the example's numbers are the ones the README states
    spec = namespace["spec"]
    assert spec.meta.sfo1_hz == pytest.approx(400.1318806e6, rel=1e-9)
    assert spec.meta.td == 16384
    table = namespace["result"].table
    assert namespace["result"].skipped == [] and len(table) == 10  # the ten ESR5000 modulation-sweep files
    sim = namespace["sim"]
    # 10 mA for 1 h into 0.1 M x 10 mL: SOC = I t / (2 F C V) = 0.1866 (docs/physics.md §2.3), less side reactions
    assert sim.soc[-1] == pytest.approx(0.01 * 3600 / (2 * 96485.332 * 0.1 * 0.01), rel=0.01)
