"""docs/architecture.md names only what exists.

Every backticked dotted name starting with ``flowcell``, ``kinetics`` or ``ingest``
(``flowcell.params.resolve_params``, ``ingest.readers.bruker``) must import as a module or
resolve as an attribute of one; every backticked repository path (``flowcell/params.py``)
must exist; and in the module tables (first cell a backticked module) every backticked
name in the last cell must be an attribute of that module.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
TOP = ("flowcell", "kinetics", "ingest")
_TICKED = re.compile(r"`([^`]+)`")
_DOTTED = re.compile(r"^((?:flowcell|kinetics|ingest)(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\(.*\))?$")
_PATH = re.compile(r"^(?:flowcell|kinetics|ingest|tests|docs|benchmarks|notebooks)/[\w./*-]*$")
_BARE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\(.*\))?$")


def resolve(dotted: str) -> object:
    """Import the longest module prefix of ``dotted`` and walk the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)  # AttributeError names the missing piece
        return obj
    raise ModuleNotFoundError(dotted)


def ticked(text: str) -> list[str]:
    return [t.strip() for t in _TICKED.findall(text)]


def doc_text() -> str:
    """The document without its fenced code blocks (their backticks would pair wrongly)."""
    return re.sub(r"^```.*?^```", "", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)


def dotted_names() -> list[str]:
    return sorted({m.group(1) for t in ticked(doc_text()) if (m := _DOTTED.match(t))})


def test_the_document_names_the_layout():
    names = dotted_names()
    assert len(names) > 40
    for must in ("flowcell.params.resolve_params", "ingest.process", "flowcell.read_potentiostat",
                 "kinetics.fit.fit"):
        assert must in names, must


@pytest.mark.parametrize("name", dotted_names())
def test_dotted_name_exists(name):
    resolve(name)


def test_paths_exist():
    missing = [t for t in ticked(doc_text()) if _PATH.match(t) and not list(ROOT.glob(t))]
    assert not missing, missing


def table_rows() -> list[tuple[str, list[str]]]:
    rows = []
    for line in doc_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 2:
            first = ticked(cells[0])
            if len(first) == 1 and (m := _DOTTED.match(first[0])):
                names = [b.group(1) for t in ticked(cells[-1]) if (b := _BARE.match(t))]
                rows.append((m.group(1), names))
    return rows


def test_table_rows_name_real_functions():
    rows = table_rows()
    assert len(rows) > 30
    missing = []
    for module, names in rows:
        mod = resolve(module)
        missing += [f"{module}.{n}" for n in names if not hasattr(mod, n)]
    assert not missing, missing


def test_the_checker_catches_a_missing_name():
    with pytest.raises(AttributeError):
        resolve("flowcell.params.no_such_function")
    with pytest.raises(ModuleNotFoundError):
        resolve("kinetics_nope.x")
