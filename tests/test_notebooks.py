"""Execute every notebook in notebooks/ (nbclient, kernel python3) and check it is committed clean.

A notebook's cells assert their numbers, so a wrong number fails here.  New notebooks
dropped into the folder are picked up automatically.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p for p in NB_DIR.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
CELL_TIMEOUT_S = 120


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; commit notebooks without outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(NB_DIR)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


GENERATORS = sorted(NB_DIR.glob("make_*.py"))


@pytest.mark.parametrize("gen", GENERATORS, ids=[p.name for p in GENERATORS])
def test_notebook_matches_its_generator(gen: Path, tmp_path: Path) -> None:
    """Each committed notebook is exactly what its ``make_*.py`` writes (cell ids are stable)."""
    import shutil
    import subprocess
    import sys

    shutil.copy(gen, tmp_path / gen.name)
    shutil.copy(NB_DIR / "_nbwrite.py", tmp_path / "_nbwrite.py")
    subprocess.run([sys.executable, gen.name], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    written = [p for p in tmp_path.glob("*.ipynb")]
    assert len(written) == 1, f"{gen.name} wrote {[p.name for p in written]}"
    committed = NB_DIR / written[0].name
    assert written[0].read_text() == committed.read_text(), (
        f"{committed.name} differs from what {gen.name} writes: run `python notebooks/{gen.name}` and commit")
