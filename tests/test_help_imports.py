"""``flowcell --help`` and every subcommand's ``--help`` stay light: no numpy, pandas, scipy, sympy.

Each help runs in a fresh interpreter (a subprocess), which then reports the heavy modules
found in ``sys.modules``.  The subcommands are read from the parser itself, so a new
subcommand is checked too.  Start-up time is measured by benchmarks/bench_cli_startup.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "scipy", "sympy", "matplotlib", "numba")

_PROBE = """
import contextlib, io, json, sys
from flowcell.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "chars": len(out.getvalue()),
                  "heavy": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


def _subcommands() -> list[str]:
    from flowcell.cli import build_parser
    p = build_parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


def _probe(args: list[str]) -> dict:
    r = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_subcommands_are_known():
    assert {"demo", "simulate", "watch", "fit", "ingest", "screen"} <= set(_subcommands())


@pytest.mark.parametrize("cmd", [[]] + [[c] for c in ("demo", "simulate", "watch", "fit", "ingest", "screen")])
def test_help_imports_nothing_heavy(cmd):
    got = _probe([*cmd, "--help"])
    assert got["code"] == 0 and got["chars"] > 200  # the help was printed
    assert got["heavy"] == [], f"flowcell {' '.join(cmd)} --help imported {got['heavy']}"


def test_every_registered_subcommand_is_light():
    """Subcommands added later (by anyone) are held to the same rule."""
    for c in _subcommands():
        assert _probe([c, "--help"])["heavy"] == [], c


def test_import_kinetics_leaves_the_readers_alone() -> None:
    """``import kinetics`` needs one line table from ingest, not nmrglue, the readers or the watcher
    (``ingest`` loads its public names on first use)."""
    code = ("import sys, kinetics; print(sorted(m for m in ('nmrglue', 'watchdog', 'ingest.readers.dispatch', "
            "'ingest.live.watch', 'ingest.batch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
