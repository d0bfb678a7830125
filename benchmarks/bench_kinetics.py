"""Kinetics benchmarks: print wall times and deviations (not a timed test).

Run::

    python benchmarks/bench_kinetics.py [--repeats 5] [--section simulate]

Sections are lists of functions, one per printed figure; each takes ``repeats`` and
returns a dict that is printed.  To add a section (e.g. fit timing) write functions
``bench_fit_...(repeats) -> dict`` and register them in ``SECTIONS['fit']``.

Simulation section: a 6-hour experiment (2,000 output points; constant-current charge,
rest, constant-current discharge) of the default DHAQ network (docs/physics.md §2.1, §2.6
placeholders, k_c = 1e8 1/(M s)) integrated

* with the full stiff model and LSODA's own finite-difference Jacobian,
* with the full stiff model and the sympy-generated analytic Jacobian,
* with the fast-equilibrium reduced model (docs/physics.md §2.2),

plus BDF and Radau on the full model for comparison, and the one-off sympy code
generation time.  Wall times are medians of ``repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kinetics import library
from kinetics.model import SimResult, piecewise_current

C_TOT_M = 0.1
VOLUME_L = 0.01
T_OUT = np.linspace(0.0, 6 * 3600.0, 2000)
PROTOCOL = [(2.5 * 3600, 0.019), (1.0 * 3600, 0.0), (2.5 * 3600, -0.017)]  # (s, A)

_results: dict[str, SimResult] = {}


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _simulate(reduce_fast: bool, **kw: Any) -> SimResult:
    model = library.dhaq().compile(reduce_fast=reduce_fast)
    return model.simulate(T_OUT, y0={"O": C_TOT_M}, current_A=piecewise_current(PROTOCOL),
                          volume_L=VOLUME_L, **kw)


_COLD = """
import time, numpy as np
t0 = time.perf_counter()
from kinetics import library
t1 = time.perf_counter()
m = library.dhaq().compile()
t2 = time.perf_counter()
m.rhs(np.array([0.1, 0.1, 0.0, 0.0]))  # triggers the lazy closed-form reduced code
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def bench_codegen(repeats: int) -> dict[str, Any]:
    """One-off sympy work in a fresh process: imports, RHS + Jacobian + reduction +
    lambdify, then the closed-form reduced RHS/Jacobian (generated on first use)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rows = []
    for _ in range(max(1, min(repeats, 3))):
        out = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True, env=env,
                             check=True, cwd=root).stdout.split()
        rows.append([float(v) for v in out])
    imp, comp, closed = (statistics.median(c) for c in zip(*rows))
    return {"figure": "codegen, fresh process", "import_s": imp, "compile_s": comp,
            "closed_form_s": closed}


def bench_full_fd(repeats: int) -> dict[str, Any]:
    """Full stiff model, LSODA with its finite-difference Jacobian."""
    t, sim = _median_time(lambda: _simulate(False, jac="fd"), repeats)
    _results["full_fd"] = sim
    return {"figure": "full stiff, LSODA + FD Jacobian", "median_s": t, "nfev": sim.stats["nfev"]}


def bench_full_analytic(repeats: int) -> dict[str, Any]:
    """Full stiff model, LSODA with the generated Jacobian."""
    t, sim = _median_time(lambda: _simulate(False, jac="analytic"), repeats)
    _results["full_analytic"] = sim
    return {"figure": "full stiff, LSODA + analytic Jacobian", "median_s": t,
            "nfev": sim.stats["nfev"], "njev": sim.stats["njev"]}


def bench_reduced(repeats: int) -> dict[str, Any]:
    """Fast-equilibrium reduced model, LSODA."""
    t, sim = _median_time(lambda: _simulate(True), repeats)
    _results["reduced"] = sim
    return {"figure": "reduced (fast equilibria), LSODA", "median_s": t, "nfev": sim.stats["nfev"]}


def bench_full_bdf_radau(repeats: int) -> dict[str, Any]:
    """Full stiff model with scipy's BDF and Radau (analytic Jacobian), for comparison."""
    tb, sb = _median_time(lambda: _simulate(False, method="BDF"), max(1, repeats // 2))
    tr, sr = _median_time(lambda: _simulate(False, method="Radau"), max(1, repeats // 2))
    _results["full_bdf"], _results["full_radau"] = sb, sr
    return {"figure": "full stiff, BDF / Radau + analytic Jacobian", "BDF_median_s": tb,
            "Radau_median_s": tr}


def bench_deviations(repeats: int) -> dict[str, Any]:
    """Max deviations between the runs above (mol/L, and SOC)."""
    ref = _results.get("full_analytic")
    if ref is None:
        return {"figure": "deviations", "note": "run the simulate section first"}
    out: dict[str, Any] = {"figure": "max |difference| vs full stiff + analytic Jacobian"}
    for name, sim in _results.items():
        if name == "full_analytic":
            continue
        out[f"{name}_conc_M"] = float(np.abs(sim.conc.to_numpy() - ref.conc.to_numpy()).max())
        out[f"{name}_soc"] = float(np.abs(sim.soc - ref.soc).max())
    return out


SECTIONS: dict[str, list[Callable[[int], dict[str, Any]]]] = {
    "simulate": [bench_codegen, bench_full_fd, bench_full_analytic, bench_reduced,
                 bench_full_bdf_radau, bench_deviations],
    # "fit": [...]  (added by the fit benchmark)
}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--section", choices=[*SECTIONS, "all"], default="all")
    args = ap.parse_args(argv)
    print(f"6 h experiment, {T_OUT.size} output points, protocol (s, A) = {PROTOCOL}, "
          f"C_tot = {C_TOT_M} M, V = {VOLUME_L} L; medians of {args.repeats} runs")
    names = list(SECTIONS) if args.section == "all" else [args.section]
    for sec in names:
        print(f"[{sec}]")
        for fn in SECTIONS[sec]:
            res = fn(args.repeats)
            fig = res.pop("figure", fn.__name__)
            print(f"  {fig}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in res.items()))


if __name__ == "__main__":
    main()
