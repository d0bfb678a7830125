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

plus BDF and Radau on the full model for comparison, and the one-off code generation in
a fresh process, cold (empty disk cache) and warm (``kinetics.codecache``).  Times are
medians of ``repeats`` interleaved runs, in CPU seconds of this process (a shared, busy
machine inflates wall time, much less CPU time) with the spread (min-max); each figure is
printed with its ratio to its floor (issue 15: full stiff <= 12 ms, reduced <= 1 ms, a
known network compiles in <= 0.1 s beyond its imports).  LSODA retries (a segment whose
first step failed) are printed: they should be 0.
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


FLOORS = {"full": 0.012, "reduced": 0.001, "warm_compile": 0.1}
_spread: dict[str, tuple[float, float]] = {}


def _median_time(fn: Callable[[], Any], repeats: int, name: str = "") -> tuple[float, Any]:
    times, out = [], None
    fn()  # warm-up (generated code, numba dispatch)
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    if name:
        _spread[name] = (min(times), max(times))
    return statistics.median(times), out


_MODELS: dict[tuple[bool, bool | None], Any] = {}


def _simulate(reduce_fast: bool, numba: bool | None = None, **kw: Any) -> SimResult:
    key = (reduce_fast, numba)
    if key not in _MODELS:  # compiled once: the figure is the simulation, as in a fit
        _MODELS[key] = library.dhaq().compile(reduce_fast=reduce_fast)
    model = _MODELS[key]
    model._c.use_numba = numba
    try:
        return model.simulate(T_OUT, y0={"O": C_TOT_M}, current_A=piecewise_current(PROTOCOL),
                              volume_L=VOLUME_L, **kw)
    finally:
        model._c.use_numba = None


def _ratio(t: float, floor_key: str) -> str:
    return f"{t / FLOORS[floor_key]:.2f}x floor {FLOORS[floor_key] * 1e3:g} ms"


_COLD = """
import time, numpy as np
t0 = time.perf_counter()
from kinetics import library
from kinetics.emit import numba_enabled
numba_enabled()  # imports numba when installed and not switched off: an import, counted as one
t1 = time.perf_counter()
m = library.dhaq().compile()
t2 = time.perf_counter()
m.rhs(np.array([0.1, 0.1, 0.0, 0.0]))  # triggers the lazy closed-form reduced code
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def bench_codegen(repeats: int) -> dict[str, Any]:
    """Code generation in a fresh process: imports, then RHS + Jacobian + reduction, then the
    closed-form reduced RHS/Jacobian (numba build included when installed); cold = empty
    disk cache (the sympy work), warm = the disk cache of the cold run (interleaved)."""
    import tempfile
    root = Path(__file__).resolve().parents[1]
    rows: dict[str, list[list[float]]] = {"cold": [], "warm": [], "warm_pure": []}
    for _ in range(max(1, min(repeats, 3))):
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   "FLOWCELL_CACHE_DIR": d}
            for kind in ("cold", "warm", "warm_pure"):
                e = dict(env, FLOWCELL_NUMBA="0") if kind == "warm_pure" else env
                out = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True, env=e,
                                     check=True, cwd=root).stdout.split()
                rows[kind].append([float(v) for v in out])
    res: dict[str, Any] = {"figure": "codegen, fresh process"}
    for kind, r in rows.items():
        imp, comp, closed = (statistics.median(c) for c in zip(*r))
        res.update({f"{kind}_import_s": imp, f"{kind}_compile_s": comp, f"{kind}_closed_form_s": closed})
    warm = res["warm_compile_s"] + res["warm_closed_form_s"]
    res["warm_beyond_imports"] = f"{warm:.3f} s = {warm / FLOORS['warm_compile']:.2f}x floor 0.1 s"
    return res


def bench_full_fd(repeats: int) -> dict[str, Any]:
    """Full stiff model, LSODA with its finite-difference Jacobian."""
    t, sim = _median_time(lambda: _simulate(False, jac="fd"), repeats, "full_fd")
    _results["full_fd"] = sim
    return {"figure": "full stiff, LSODA + FD Jacobian", "median_s": t, "spread_s": _spread["full_fd"],
            "nfev": sim.stats["nfev"], "retries": sim.stats["retries"]}


def bench_full_analytic(repeats: int) -> dict[str, Any]:
    """Full stiff model, LSODA with the generated Jacobian."""
    t, sim = _median_time(lambda: _simulate(False, jac="analytic"), repeats, "full")
    _results["full_analytic"] = sim
    return {"figure": "full stiff, LSODA + analytic Jacobian", "median_s": t, "spread_s": _spread["full"],
            "nfev": sim.stats["nfev"], "njev": sim.stats["njev"], "retries": sim.stats["retries"],
            "fallback_BDF": sim.stats.get("fallback", 0), "ratio": _ratio(t, "full")}


def bench_reduced(repeats: int) -> dict[str, Any]:
    """Fast-equilibrium reduced model, LSODA."""
    from kinetics.emit import numba_enabled
    tp, sp_ = _median_time(lambda: _simulate(True, numba=False), 3 * repeats, "reduced_pure")
    t, sim = _median_time(lambda: _simulate(True), 3 * repeats, "reduced")
    _results["reduced"], _results["reduced_pure"] = sim, sp_
    return {"figure": "reduced (fast equilibria), LSODA", "median_s": t, "spread_s": _spread["reduced"],
            "compiled_rhs": "numba" if numba_enabled() else "pure (numba not installed)",
            "pure_median_s": tp, "nfev": sim.stats["nfev"], "retries": sim.stats["retries"],
            "ratio": _ratio(t, "reduced")}


def bench_full_bdf_radau(repeats: int) -> dict[str, Any]:
    """Full stiff model with scipy's BDF and Radau (analytic Jacobian), for comparison."""
    tb, sb = _median_time(lambda: _simulate(False, method="BDF"), max(1, repeats // 2))
    tr, sr = _median_time(lambda: _simulate(False, method="Radau"), max(1, repeats // 2))
    if "full" not in _spread:
        _median_time(lambda: _simulate(False), repeats, "full")
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


def _result_lines(res: dict[str, Any]) -> None:
    """Machine-readable summary lines (benchmarks/readme_table.py collects them)."""
    fig = res.get("figure", "")
    if fig.startswith("full stiff, LSODA + analytic"):
        print(f"RESULT | full stiff model, 6 h benchmark (LSODA, analytic Jacobian; {res['retries']} retries) | "
              f"{res['median_s'] * 1e3:.1f} ms CPU | <= {FLOORS['full'] * 1e3:g} ms | {res['median_s'] / FLOORS['full']:.2f}")
    elif fig.startswith("reduced"):
        print(f"RESULT | reduced model, 6 h benchmark ({res['compiled_rhs']}; pure {res['pure_median_s'] * 1e3:.1f} ms) | "
              f"{res['median_s'] * 1e3:.2f} ms CPU | <= {FLOORS['reduced'] * 1e3:g} ms | {res['median_s'] / FLOORS['reduced']:.2f}")
    elif fig.startswith("codegen"):
        warm = res["warm_compile_s"] + res["warm_closed_form_s"]
        pure = res["warm_pure_compile_s"] + res["warm_pure_closed_form_s"]
        print(f"RESULT | DHAQ model in a new process, disk cache warm, numba build (cold cache "
              f"{res['cold_compile_s'] + res['cold_closed_form_s']:.2f} s) | {warm:.3f} s beyond imports | <= 0.1 s | "
              f"{warm / FLOORS['warm_compile']:.2f}")
        print(f"RESULT | the same, pure-Python build (FLOWCELL_NUMBA=0) | {pure:.3f} s beyond imports | <= 0.1 s | "
              f"{pure / FLOORS['warm_compile']:.2f}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, tuple):
        return "(" + "-".join(f"{x:.3g}" for x in v) + ")"
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
            _result_lines(res)
            fig = res.pop("figure", fn.__name__)
            print(f"  {fig}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in res.items()))


if __name__ == "__main__":
    main()
