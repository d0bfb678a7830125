"""Kinetics benchmarks: print CPU times, their spread and ratios to the targets (not a timed test).

Run::

    python benchmarks/bench_kinetics.py [--repeats 7] [--section simulate]

Sections are lists of functions, one per printed figure; each takes ``repeats`` and
returns a dict that is printed.  To add a section (e.g. fit timing) write functions
``bench_fit_...(repeats) -> dict`` and register them in ``SECTIONS['fit']``.

Simulation section: a 6-hour experiment (2,000 output points; constant-current charge,
rest, constant-current discharge) of the default DHAQ network (docs/physics.md §2.1, §2.6
placeholders, k_c = 1e8 1/(M s)) integrated

* with the full stiff model (LSODA + analytic Jacobian; also its own finite differences),
* with the fast-equilibrium reduced model (docs/physics.md §2.2),

each with the shipped default (LSODA, pure-Python generated code), with the numba build of
the generated code called back by LSODA, and with ``FLOWCELL_NUMBA=1`` (the ``fast`` extra):
the whole simulation in the numba-compiled RODAS4 loop (:mod:`kinetics.stiff_nb`, calling the
compiled right-hand side and Jacobian by address; its machine code is compiled once per
installation, ~7 s, and cached by numba), plus BDF and Radau for
comparison, the solver-callback floor (the same number of right-hand-side calls of a trivial Python
function through the same ``odeint``), and the one-off code generation in a fresh process,
cold (empty disk cache) and warm (``kinetics.codecache``), with the shipped defaults and
with numba.

Times are medians of ``repeats`` runs in CPU seconds of this process, the variants
interleaved (round-robin within each repeat) so that a busy shared machine weighs on all
of them alike; the spread (min-max) and ``uptime``'s load average are printed with them.
Each figure is printed with its ratio to its target (issue 15: full stiff <= 12 ms,
reduced <= 1 ms, a known network built in a new process <= 0.1 s beyond its imports; the
compiled loop's figures also with their ratio to 1 ms), and
``RESULT | figure | measured | floor | ratio`` lines (``benchmarks/readme_table.py``).
LSODA retries (a segment whose first step failed) are printed: they should be 0.
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.integrate import odeint

from kinetics import library
from kinetics.emit import numba_enabled
from kinetics.model import SimResult, piecewise_current

C_TOT_M = 0.1
VOLUME_L = 0.01
T_OUT = np.linspace(0.0, 6 * 3600.0, 2000)
PROTOCOL = [(2.5 * 3600, 0.019), (1.0 * 3600, 0.0), (2.5 * 3600, -0.017)]  # (s, A)
FLOORS = {"full": 0.012, "reduced": 0.001, "warm_compile": 0.1}
ROOT = Path(__file__).resolve().parents[1]

_results: dict[str, SimResult] = {}
_MODELS: dict[bool, Any] = {}


def _load() -> str:
    return "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def _interleaved(variants: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, float, float, Any]]:
    """CPU time of each variant: (median, min, max, last output); one warm-up call each, then
    ``repeats`` rounds running every variant once (interleaved)."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    out: dict[str, Any] = {k: fn() for k, fn in variants.items()}  # warm-up (generated code, numba load)
    for _ in range(repeats):
        for k, fn in variants.items():
            t0 = time.process_time()
            out[k] = fn()
            times[k].append(time.process_time() - t0)
    return {k: (statistics.median(v), min(v), max(v), out[k]) for k, v in times.items()}


def _simulate(reduce_fast: bool, numba: bool = False, **kw: Any) -> SimResult:
    """One 6 h simulation; ``numba=True`` is FLOWCELL_NUMBA=1 for this model (method 'auto':
    the compiled RODAS4 loop; method='LSODA': the numba right-hand side called back by LSODA)."""
    if reduce_fast not in _MODELS:  # compiled once: the figure is the simulation, as in a fit
        _MODELS[reduce_fast] = library.dhaq().compile(reduce_fast=reduce_fast)
    model = _MODELS[reduce_fast]
    model._c.use_numba = numba
    try:
        return model.simulate(T_OUT, y0={"O": C_TOT_M}, current_A=piecewise_current(PROTOCOL),
                              volume_L=VOLUME_L, **kw)
    finally:
        model._c.use_numba = None


def _ratio(t: float, key: str) -> str:
    return f"{t / FLOORS[key]:.2f}x target {FLOORS[key] * 1e3:g} ms"


def _ms(r: tuple[float, float, float, Any]) -> str:
    return f"{r[0] * 1e3:.2f} ms ({r[1] * 1e3:.2f}-{r[2] * 1e3:.2f})"


# ---------------------------------------------------------------------------- code generation
_NEW_PROCESS = """
import os, time, numpy as np
t0 = time.perf_counter()
from kinetics import library
from kinetics.model import piecewise_current
if os.environ.get("FLOWCELL_NUMBA") == "1":
    import numba  # an import, counted as one; its compiler context is set up on first use
t1 = time.perf_counter()
m = library.dhaq().compile()
m.rhs(np.array([0.1, 0.1, 0.0, 0.0]))  # the closed-form reduced code (generated lazily)
t2 = time.perf_counter()
m.simulate(np.linspace(0, 3600, 5), y0={"O": 0.1}, current_A=piecewise_current([(1800, 0.02)]))
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def bench_codegen(repeats: int) -> dict[str, Any]:
    """A new process: imports, then building the DHAQ model (RHS, Jacobian, reduction and the
    closed-form reduced pair), then its first (tiny) simulation, which loads the numba builds
    and the compiled RODAS4 loop when numba is on (their machine code cached on disk: numba
    still sets its compiler up, ~0.3 s, before it can load it).  cold = empty disk cache (the sympy work), warm = the cache of the cold
    run; shipped defaults (numba off) and FLOWCELL_NUMBA=1, interleaved.  Wall seconds."""
    kinds = {"cold": {}, "warm": {}, "warm_numba": {"FLOWCELL_NUMBA": "1"}}  # {}: the shipped default (unset)
    if not numba_enabled():
        kinds.pop("warm_numba")
    rows: dict[str, list[list[float]]] = {k: [] for k in kinds}
    for _ in range(max(1, min(repeats, 3))):
        with tempfile.TemporaryDirectory() as d:
            env = {**{k: v for k, v in os.environ.items() if k != "FLOWCELL_NUMBA"}, "FLOWCELL_CACHE_DIR": d,
                   "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
            if "warm_numba" in kinds:  # numba's own cache of this folder filled once, as by a first run
                subprocess.run([sys.executable, "-c", _NEW_PROCESS], capture_output=True, text=True,
                               env={**env, "FLOWCELL_NUMBA": "1"}, check=True, cwd=ROOT)
            for kind, extra in kinds.items():
                if kind == "cold":
                    for f in Path(d).glob("kinetics/*.json"):
                        f.unlink()
                out = subprocess.run([sys.executable, "-c", _NEW_PROCESS], capture_output=True, text=True,
                                     env={**env, **extra}, check=True, cwd=ROOT).stdout.split()
                rows[kind].append([float(v) for v in out])
    res: dict[str, Any] = {"figure": "DHAQ model in a new process (wall s)", "load": _load()}
    for kind, r in rows.items():
        imp, build, first = (statistics.median(c) for c in zip(*r))
        res[kind] = {"imports": imp, "build": build, "first_simulation": first,
                     "beyond_imports": build + first, "spread": (min(b + f for _, b, f in r),
                                                                 max(b + f for _, b, f in r))}
    return res


# ---------------------------------------------------------------------------- simulations
def bench_simulations(repeats: int) -> dict[str, Any]:
    """Full stiff and reduced models, pure (shipped default) and numba, interleaved."""
    variants: dict[str, Callable[[], Any]] = {"full": lambda: _simulate(False), "reduced": lambda: _simulate(True)}
    if numba_enabled():
        variants.update(full_numba=lambda: _simulate(False, True, method="LSODA"),
                        reduced_numba=lambda: _simulate(True, True, method="LSODA"),
                        full_compiled=lambda: _simulate(False, True), reduced_compiled=lambda: _simulate(True, True))
    r = _interleaved(variants, 3 * repeats)
    res: dict[str, Any] = {"figure": "6 h benchmark, analytic Jacobian (CPU): LSODA pure (shipped default), "
                                     "LSODA + numba RHS, compiled RODAS4 loop (FLOWCELL_NUMBA=1)", "load": _load()}
    for k, v in r.items():
        _results[k] = v[3]
        st = v[3].stats
        res[k] = {"median_s": v[0], "min_s": v[1], "max_s": v[2], "solver": st["method"], "nfev": st["nfev"],
                  "njev": st["njev"], "steps": st.get("steps", 0), "retries": st["retries"],
                  "fallback_BDF": st.get("fallback", 0), "ratio": _ratio(v[0], "full" if k.startswith("full") else "reduced")}
        if k.endswith("_compiled"):
            if st["method"] != "RODAS4":  # never report LSODA's time as the loop's
                raise RuntimeError(f"{k}: the compiled loop did not run: {st.get('compiled_fallback', st['solver'])}")
            res[k].update(rejected=st["rejected"], ratio_to_1ms=f"{v[0] / FLOORS['reduced']:.2f}x 1 ms")
    return res


def bench_callback_floor(repeats: int) -> dict[str, Any]:
    """What the same number of calls of a trivial Python right-hand side costs through the same
    odeint (an exponential decay, its output list prebuilt): the floor of any pure-Python
    RHS on this machine, to read the reduced model's figure against."""
    sim = _results.get("reduced") or _simulate(True)
    n_target = sim.stats["nfev"]
    out = [0.0, 0.0, 0.0, 0.0]
    calls = [0]

    def f(t: float, y: np.ndarray) -> list[float]:
        calls[0] += 1
        return out

    def decay(t: float, y: np.ndarray) -> list[float]:
        return (-1e-3 * y).tolist()

    y0 = np.ones(4)
    tt = np.linspace(0.0, 6 * 3600.0, 2000)
    r = _interleaved({"trivial": lambda: odeint(f, y0, tt, tfirst=True, rtol=1e-8, atol=1e-12),
                      "decay": lambda: odeint(decay, y0, tt, tfirst=True, rtol=1e-8, atol=1e-12, full_output=True)},
                     3 * repeats)
    n_decay = int(r["decay"][3][1]["nfe"][-1])
    per_call = r["decay"][0] / n_decay
    return {"figure": "odeint + Python callback floor", "decay_nfev": n_decay,
            "per_call_us": per_call * 1e6, "floor_for_reduced_nfev_ms": per_call * n_target * 1e3,
            "reduced_nfev": n_target, "load": _load()}


def bench_full_fd(repeats: int) -> dict[str, Any]:
    """Full stiff model, LSODA with its finite-difference Jacobian."""
    r = _interleaved({"fd": lambda: _simulate(False, jac="fd")}, max(1, repeats // 2))["fd"]
    _results["full_fd"] = r[3]
    return {"figure": "full stiff, LSODA + FD Jacobian", "median": _ms(r), "nfev": r[3].stats["nfev"],
            "retries": r[3].stats["retries"]}


def bench_full_bdf_radau(repeats: int) -> dict[str, Any]:
    """Full stiff model with scipy's BDF and Radau (analytic Jacobian), for comparison."""
    r = _interleaved({"BDF": lambda: _simulate(False, method="BDF"),
                      "Radau": lambda: _simulate(False, method="Radau")}, max(1, repeats // 3))
    _results["full_bdf"], _results["full_radau"] = r["BDF"][3], r["Radau"][3]
    return {"figure": "full stiff, BDF / Radau + analytic Jacobian", "BDF": _ms(r["BDF"]), "Radau": _ms(r["Radau"])}


def bench_deviations(repeats: int) -> dict[str, Any]:
    """Max deviations from the full stiff model (pure, analytic Jacobian), mol/L and SOC."""
    ref = _results.get("full")
    if ref is None:
        return {"figure": "deviations", "note": "run the simulate section first"}
    out: dict[str, Any] = {"figure": "max |difference| vs full stiff (pure)"}
    for name, sim in _results.items():
        if name != "full":
            out[name] = f"{np.abs(sim.Y - ref.Y).max():.2g} M, SOC {np.abs(sim.soc - ref.soc).max():.2g}"
    for a, b in (("full_numba", "full"), ("reduced_numba", "reduced"), ("full_compiled", "full"),
                 ("reduced_compiled", "reduced")):
        if a in _results:
            out[f"{a} vs {b}"] = f"{np.abs(_results[a].Y - _results[b].Y).max():.2g} M"
    return out


SECTIONS: dict[str, list[Callable[[int], dict[str, Any]]]] = {
    "simulate": [bench_simulations, bench_callback_floor, bench_codegen, bench_full_fd,
                 bench_full_bdf_radau, bench_deviations],
    # "fit": [...]  (added by the fit benchmark)
}


def _result_lines(res: dict[str, Any]) -> None:
    """Machine-readable summary lines (benchmarks/readme_table.py collects them)."""
    fig = res.get("figure", "")
    if fig.startswith("6 h benchmark"):
        load = res["load"].split("average ")[1].split(",")[0]
        for key, label in (("full", "full stiff model"), ("reduced", "reduced model")):
            r, nb = res[key], res.get(f"{key}_numba")
            extra = f"; numba RHS through LSODA {nb['median_s'] * 1e3:.2f} ms" if nb else ""
            target = FLOORS["full" if key == "full" else "reduced"]
            print(f"RESULT | {label}, 6 h benchmark (LSODA, analytic Jacobian, shipped default; "
                  f"{r['retries']} retries{extra}; load {load}) | {r['median_s'] * 1e3:.2f} ms CPU "
                  f"({r['min_s'] * 1e3:.2f}-{r['max_s'] * 1e3:.2f}) | <= {target * 1e3:g} ms | "
                  f"{r['median_s'] / target:.2f}")
        for key, label in (("reduced", "reduced model"), ("full", "full stiff model")):
            c = res.get(f"{key}_compiled")
            if c is None:
                continue
            target = FLOORS["reduced"]  # the compiled loop's figures against 1 ms (issue 15)
            print(f"RESULT | {label}, 6 h benchmark, compiled RODAS4 loop (numba opt-in FLOWCELL_NUMBA=1; "
                  f"{c['steps']} steps, {c['rejected']} rejected; load {load}) | {c['median_s'] * 1e3:.2f} ms CPU "
                  f"({c['min_s'] * 1e3:.2f}-{c['max_s'] * 1e3:.2f}) | <= {target * 1e3:g} ms | "
                  f"{c['median_s'] / target:.2f}")
    elif fig.startswith("odeint + Python callback"):
        print(f"RESULT | pure-Python RHS floor for the reduced model ({res['reduced_nfev']} calls x "
              f"{res['per_call_us']:.2f} us through odeint) | {res['floor_for_reduced_nfev_ms']:.2f} ms CPU | "
              f"<= 1 ms | {res['floor_for_reduced_nfev_ms']:.2f}")
    elif fig.startswith("DHAQ model in a new process"):
        w, c = res["warm"], res["cold"]
        print(f"RESULT | DHAQ model in a new process, disk cache warm, shipped defaults (cold cache "
              f"{c['beyond_imports']:.2f} s) | {w['beyond_imports']:.3f} s beyond imports | <= 0.1 s | "
              f"{w['beyond_imports'] / FLOORS['warm_compile']:.2f}")
        if "warm_numba" in res:
            n = res["warm_numba"]
            print(f"RESULT | the same with numba (FLOWCELL_NUMBA=1, opt-in; numba import {n['imports'] - w['imports']:.2f} s"
                  f" more; first simulation, loading the compiled RODAS4 loop and callbacks, "
                  f"{n['first_simulation']:.2f} s) | {n['beyond_imports']:.3f} s beyond imports | <= 0.1 s | "
                  f"{n['beyond_imports'] / FLOORS['warm_compile']:.2f}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, tuple):
        return "(" + "-".join(f"{x:.3g}" for x in v) + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (x3 for the simulations)")
    ap.add_argument("--section", choices=[*SECTIONS, "all"], default="all")
    args = ap.parse_args(argv)
    print(f"6 h experiment, {T_OUT.size} output points, protocol (s, A) = {PROTOCOL}, "
          f"C_tot = {C_TOT_M} M, V = {VOLUME_L} L; medians (min-max) of interleaved repeats; {_load()}; "
          f"numba {'installed' if numba_enabled() else 'not installed'} (opt-in: FLOWCELL_NUMBA=1)")
    names = list(SECTIONS) if args.section == "all" else [args.section]
    for sec in names:
        print(f"[{sec}]")
        for fn in SECTIONS[sec]:
            res = fn(args.repeats)
            _result_lines(res)
            fig = res.pop("figure", fn.__name__)
            print(f"  {fig}:")
            for k, v in res.items():
                print(f"    {k}: {_fmt(v)}")


if __name__ == "__main__":
    main()
