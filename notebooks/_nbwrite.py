"""What every notebook generator here shares: an empty Python 3 notebook and writing it.

The ``make_*.py`` scripts are run from this folder (``python notebooks/make_tutorial.py``),
so they import this module by its plain name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import nbformat
from nbformat.v4 import new_notebook

HERE = Path(__file__).resolve().parent


def python_notebook(cells: Sequence[nbformat.NotebookNode] = ()) -> nbformat.NotebookNode:
    """A notebook with the Python 3 kernel metadata and ``cells`` (no outputs)."""
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write_notebook(nb: nbformat.NotebookNode, name: str) -> Path:
    """Validate ``nb`` and write it as ``notebooks/<name>``; returns the path.

    Cell ids are derived from the notebook name, the cell's position and its source,
    so regenerating an unchanged notebook leaves the file byte-for-byte unchanged.
    """
    path = HERE / name
    for i, cell in enumerate(nb.cells):
        cell["id"] = hashlib.sha1(f"{name}:{i}:{cell.source}".encode()).hexdigest()[:8]
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path
