"""``flowcell ingest`` of a folder never loads the kinetics stack (sympy, lmfit), and
``import flowcell.config`` loads no kinetics either: each checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

KINETICS_STACK = ("kinetics", "sympy", "lmfit")

_PROBE = """
import json, sys
from flowcell.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": sorted(m for m in %r if m in sys.modules)}))
""" % (KINETICS_STACK,)


def _run(code: str, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_flowcell_ingest_does_not_load_kinetics(shared_data, tmp_path):
    out = tmp_path / "nmr.parquet"
    got = _run(_PROBE, "ingest", str(shared_data / "nmr" / "spinsolve-series"), "-o", str(out))
    assert got == {"code": 0, "loaded": []}
    assert len(pd.read_parquet(out)) == 5  # the five spectra of the series, one row each


def test_config_module_does_not_load_kinetics():
    got = _run("import json, sys, flowcell.config\n"
               "print(json.dumps({'loaded': sorted(m for m in %r if m in sys.modules)}))" % (KINETICS_STACK,))
    assert got == {"loaded": []}
