"""Every module imports, here and on the lowest Python that pyproject declares (3.10).

Three checks:

* every module of flowcell, kinetics and ingest imports in this interpreter;
* no module uses a standard-library name that Python 3.10 lacks (``tomllib``,
  ``typing.Self`` ...) outside an ``if sys.version_info >= (3, 11)`` guard (static, always runs);
* with a Python 3.10 interpreter: every file compiles; with one that also has the
  dependencies (a venv; set ``FLOWCELL_PY310=/path/to/venv/bin/python``), every module
  imports in it.  Skipped cleanly when no such interpreter exists.
"""

from __future__ import annotations

import ast
import glob
import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flowcell", "kinetics", "ingest")
#: Standard-library names added in Python 3.11+ (module, or module.attribute).
NEW_IN_311 = {"tomllib", "wsgiref.types", "typing.Self", "typing.LiteralString", "typing.Never",
              "typing.assert_never", "typing.reveal_type", "typing.Required", "typing.NotRequired",
              "typing.TypeVarTuple", "typing.Unpack", "typing.dataclass_transform", "datetime.UTC",
              "enum.StrEnum", "enum.verify", "hashlib.file_digest", "asyncio.TaskGroup"}
#: modules of an optional extra: importable only with its requirement (and then tested like the rest)
OPTIONAL = {"kinetics.stiff_nb": "numba"}
REQUIRES = ("numpy", "scipy", "sympy", "pandas", "lmfit", "nmrglue", "watchdog", "matplotlib", "tqdm")


def all_modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        names.append(pkg)
        for info in pkgutil.walk_packages([str(ROOT / pkg)], prefix=f"{pkg}."):
            if not info.name.endswith(".__main__"):  # running it is `python -m flowcell`
                names.append(info.name)
    return sorted(names)


def source_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.slow
def test_every_module_imports_here():
    failed = {}
    for name in all_modules():
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - report them all
            failed[name] = f"{type(exc).__name__}: {exc}"
    assert not failed, failed
    assert len(all_modules()) > 60


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``if sys.version_info >= (3, 11)`` (either branch) or a try/except ImportError."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
            return True
        if isinstance(node, ast.Try) and any("ImportError" in ast.unparse(h.type or ast.Name("BaseException"))
                                             or "ModuleNotFoundError" in ast.unparse(h.type or ast.Name("x"))
                                             for h in node.handlers):
            return True
    return False


def new_stdlib_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [f"{node.value.id}.{node.attr}"]
        bad = [n for n in names if n in NEW_IN_311]
        if bad and not _guarded(node, parents):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {', '.join(bad)}")
    return found


def test_no_unguarded_311_only_stdlib():
    found = [hit for p in source_files() for hit in new_stdlib_uses(p)]
    assert not found, "3.11-only names without a version guard (pyproject says >= 3.10):\n" + "\n".join(found)


def test_the_static_check_finds_an_unguarded_tomllib(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport tomllib\nif sys.version_info >= (3, 11):\n    import tomllib as t\n")
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        assert new_stdlib_uses(bad) == ["bad.py:2: tomllib"]
    finally:
        ROOT = old


def _py310_candidates() -> list[str]:
    cands = [os.environ.get("FLOWCELL_PY310", ""), str(Path(sys.prefix).parent / "venv310" / "bin" / "python"),
             shutil.which("python3.10") or ""]
    cands += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python")))
    out = []
    for c in cands:
        if c and Path(c).exists() and c not in out:
            r = subprocess.run([c, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
                               capture_output=True, text=True)
            if r.stdout.strip() == "True":
                out.append(c)
    return out


def test_every_file_compiles_on_310(tmp_path):
    cands = _py310_candidates()
    if not cands:
        pytest.skip("no Python 3.10 interpreter found (set FLOWCELL_PY310)")
    files = [str(p) for p in source_files()]
    code = ("import py_compile, sys\nfor i, f in enumerate(sys.argv[2:]):\n"
            "    py_compile.compile(f, cfile=sys.argv[1] + f'/{i}.pyc', doraise=True)\n")
    r = subprocess.run([cands[0], "-c", code, str(tmp_path), *files], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.slow
def test_every_module_imports_on_310():
    # One interpreter start per candidate: the script first imports the dependencies (exit 3 when
    # one is missing: not a usable venv, try the next), then every module (a separate dependency
    # check cost a second cold import of scipy/pandas/sympy/matplotlib, ~5 s).
    code = ("import importlib, importlib.util, sys\ntry:\n    import " + ", ".join(REQUIRES) + "\n"
            "except ImportError:\n    sys.exit(3)\nbad = {}\nfor n in sys.argv[1:]:\n    try:\n"
            "        importlib.import_module(n)\n    except ImportError as e:\n"
            f"        if n in {OPTIONAL!r} and importlib.util.find_spec({OPTIONAL!r}[n]) is None:\n"
            "            continue\n        bad[n] = f'{type(e).__name__}: {e}'\n    except Exception as e:\n"
            "        bad[n] = f'{type(e).__name__}: {e}'\nprint(bad)\nsys.exit(1 if bad else 0)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    for py in _py310_candidates():
        r = subprocess.run([py, "-c", code, *all_modules()], check=False, capture_output=True, text=True, env=env,
                           cwd=str(ROOT), timeout=600)
        if r.returncode != 3:
            break
    else:
        pytest.skip("no Python 3.10 with the dependencies (a venv; set FLOWCELL_PY310=/path/to/venv/bin/python)")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
