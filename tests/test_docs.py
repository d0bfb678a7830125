"""The documentation travels with the package (issue 10, item 5).

* No shipped file, test, notebook or benchmark points at a document outside the repository
  (the team's private physics dossier, or ``../shared``); only the fixtures that locate
  the shared instrument files may name ``../shared``.
* Every ``docs/physics.md §X`` citation anywhere in the repository names a section that
  docs/physics.md has, and docs/physics.md keeps the full numbering the code cites.
* The package names, modules and repository paths that docs/physics.md and
  docs/conventions.md mention exist.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PHYSICS = ROOT / "docs" / "physics.md"
CONVENTIONS = ROOT / "docs" / "conventions.md"

SCANNED_DIRS = ("flowcell", "kinetics", "ingest", "tests", "notebooks", "benchmarks", "docs")
TEXT_SUFFIXES = {".py", ".toml", ".md", ".ipynb", ".txt", ".json", ".cfg", ".ini", ".yml", ".yaml", ".rst"}
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
# the fixtures that locate the shared instrument files, and the README examples' runner
SHARED_ALLOWED = {"tests/conftest.py", "tests/test_readme.py", "tests/test_docs.py"}
DOSSIER = "science" + ".md"  # spelt apart so this file does not match itself

# every section number the code cites; keep them when editing docs/physics.md
EXPECTED_SECTIONS = (
    ["0", "1", "2", "3", "4", "5", "6"]
    + [f"1.{i}" for i in range(10)] + ["1.2b"]
    + [f"2.{i}" for i in range(1, 7)]
    + ["4a", "4b", "4c"]
    + [f"5.{i}" for i in range(1, 8)]
)

CITATION = re.compile(r"docs/physics\.md")
SECTION_TOKEN = re.compile(r"§\s?(\d+(?:\.\d+)?[a-z]?)")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _text_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for d in SCANNED_DIRS:
        base = ROOT / d
        if not base.is_dir():
            continue
        for p in base.rglob("*"):
            if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES and not SKIP_PARTS & set(p.parts):
                files.append(p)
    return [p for p in files if p.is_file()]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def physics_sections() -> set[str]:
    """Section numbers of docs/physics.md, from headings such as ``### §1.2b Dimer ...``."""
    heads = re.findall(r"^#{2,4}\s+§(\d+(?:\.\d+)?[a-z]?)\b", _read(PHYSICS), flags=re.MULTILINE)
    return set(heads)


def cited_sections(text: str) -> list[tuple[int, str]]:
    """``(line number, section)`` for every ``docs/physics.md §X`` citation in ``text``.

    A citation runs from ``docs/physics.md`` to the end of its clause (``)``, ``;``, a
    sentence end or the line end), so lists such as ``§1.2/§1.2b`` or
    ``§2.1 Dec-ch, §2.4`` yield every section they name.
    """
    out = []
    for m in CITATION.finditer(text):
        rest = text[m.end():]
        stop = re.search(r"[)\];\n]|\.\s|\.$|\"", rest)
        clause = rest[: stop.start()] if stop else rest
        line = text.count("\n", 0, m.start()) + 1
        for s in SECTION_TOKEN.findall(clause):
            out.append((line, s.rstrip(".")))
    return out


# ---------------------------------------------------------------------------------------------


def test_physics_md_keeps_the_cited_numbering():
    assert PHYSICS.is_file(), "docs/physics.md is missing"
    missing = [s for s in EXPECTED_SECTIONS if s not in physics_sections()]
    assert not missing, f"docs/physics.md lost sections {missing}"


def test_section_parser_on_known_strings():
    # the parser itself, on the shapes that occur in the code
    text = ("(docs/physics.md §2.1 Dec-ch, §2.4; §3 gives)\n"
            "docs/physics.md §1.2/§1.2b and then some.\n"
            "see docs/physics.md §5.3.  Keys\n"
            "(docs/physics.md §9.9) x §7")
    assert cited_sections(text) == [(1, "2.1"), (1, "2.4"), (2, "1.2"), (2, "1.2b"), (3, "5.3"), (4, "9.9")]
    assert {"1.2b", "4a", "5.7", "0"} <= physics_sections()


def test_no_reference_to_files_outside_the_repository():
    bad = []
    for p in _text_files():
        rel = _rel(p)
        if rel == "tests/test_docs.py":
            continue
        for n, line in enumerate(_read(p).splitlines(), 1):
            if DOSSIER in line:
                bad.append(f"{rel}:{n}: {line.strip()[:100]}")
            if "../shared" in line and rel not in SHARED_ALLOWED and rel != "README.md":
                bad.append(f"{rel}:{n}: {line.strip()[:100]}")
    assert not bad, "cite docs/physics.md instead of files users do not have:\n" + "\n".join(bad)


def test_every_physics_citation_names_an_existing_section():
    sections = physics_sections()
    bad, n_cites = [], 0
    for p in _text_files():
        if _rel(p) == "tests/test_docs.py":  # holds a deliberately wrong example
            continue
        text = _read(p)
        for line, s in cited_sections(text):
            n_cites += 1
            if s not in sections:
                bad.append(f"{_rel(p)}:{line}: §{s}")
    assert n_cites > 150, f"only {n_cites} citations of docs/physics.md found; did the scan break?"
    assert not bad, "citations of sections docs/physics.md does not have:\n" + "\n".join(bad)


def test_internal_section_references_of_physics_md_exist():
    sections = physics_sections()
    refs = {s.rstrip(".") for s in SECTION_TOKEN.findall(_read(PHYSICS))}
    assert refs - sections == set()


def _dotted_names(text: str) -> set[str]:
    names = set()
    for m in re.finditer(r"`((?:flowcell|kinetics|ingest)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
        names.add(m.group(1))
    return names


@pytest.mark.parametrize("doc", [PHYSICS, CONVENTIONS], ids=lambda p: p.name)
def test_names_in_the_docs_exist(doc):
    missing = []
    for name in sorted(_dotted_names(_read(doc))):
        parts = name.split(".")
        obj = None
        for i in range(len(parts), 0, -1):  # longest importable module prefix
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for attr in parts[i:]:
                obj = getattr(obj, attr, None)
            break
        if obj is None:
            missing.append(name)
    assert not missing, f"{doc.name} names what the package does not have: {missing}"


@pytest.mark.parametrize("doc", [PHYSICS, CONVENTIONS], ids=lambda p: p.name)
def test_paths_in_the_docs_exist(doc):
    paths = re.findall(r"`((?:flowcell|kinetics|ingest|tests|docs)/[\w./-]*)`", _read(doc))
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"{doc.name} names missing paths: {missing}"
