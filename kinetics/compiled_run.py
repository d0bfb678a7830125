"""The compiled path of :meth:`kinetics.model.Model.simulate`: the whole simulation in the
numba-compiled RODAS4 loop (:mod:`kinetics.stiff_nb`).

:func:`compiled_run` decides whether the loop applies (numba switched on, a piecewise-constant
current, the analytic Jacobian, the reduced model's closed form), builds the C callbacks of
the generated right-hand side and Jacobian (:func:`kinetics.emit.build_cfunc`, machine code
cached on disk next to the generated sources, :mod:`kinetics.codecache`), runs the loop and
the compiled speciation of the reduced model, and reports a failure for the caller to redo
the run with LSODA.  numba is imported only here, and only when the loop runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from kinetics import codecache
from kinetics.codegen import Compiled
from kinetics.emit import build_cfunc, numba_enabled

if TYPE_CHECKING:  # pragma: no cover
    from kinetics.model import Model

__all__ = ["callbacks", "compiled_run"]

SOLVER = "RODAS4 (numba-compiled loop, kinetics.stiff_nb)"


def callbacks(c: Compiled, names: tuple[str, str]) -> tuple[Any, Any] | None:
    """C callbacks of the generated right-hand side and Jacobian ``names`` for the compiled
    loop (built once per network; None when numba cannot build them)."""
    key = ("cfunc", *names)
    if key not in c._nb:
        d = codecache.cache_dir()
        n_x = len(c.slow_names) if names[0].startswith("sym_") else len(c.species)
        built = [build_cfunc(c.sources[k], k, n_x, len(c.params),
                             cache_file=d / "numba" / f"{c._disk_key}_{k}_cf.py" if d is not None and c._disk_key
                             else None) for k in names]
        c._nb[key] = tuple(built) if all(b is not None for b in built) else ()
    return c._nb[key] or None


def _why_not(model: Model, p: np.ndarray, piecewise: bool, asked: bool, jac: str | None, span: float) -> str | None:
    """Why the compiled loop does not apply ('' = not switched on, None = it applies)."""
    c = model._c
    if not piecewise or jac != "analytic" or span == 0:
        return "needs a piecewise-constant current, jac='analytic' and a time span"
    if asked and not numba_enabled():
        return "numba is not installed (pip install flowcell-rfb[fast]) or FLOWCELL_NUMBA=0"
    if not asked and c._numba_mode(None) != "on":
        return ""  # FLOWCELL_NUMBA unset or 0: LSODA (the automatic choice keeps the numbers)
    if model.reduced and not c._closed_form_applies(p):
        return "the reduced model has no closed form with these parameters (an active dimer)"
    return None


def compiled_run(model: Model, t_out: np.ndarray, edges: list[float], x: np.ndarray, p: np.ndarray,
                 Ifun: Callable, piecewise: bool, volume_L: float, asked: bool, rtol: float, atol: float,
                 jac: str | None, max_step: float, first_step: float | None, max_nfev: int
                 ) -> tuple[tuple[np.ndarray, dict[str, Any]] | None, str]:
    """The simulation by the compiled RODAS4 loop: ``((X, stats), '')``, or ``(None, why not)``.

    Applies to a piecewise-constant current with the analytic Jacobian, when numba is switched
    on (``FLOWCELL_NUMBA=1`` or ``model._c.use_numba = True``; ``asked``: method='RODAS4',
    numba installed and not switched off).  The automatic choice of
    :func:`kinetics.emit.numba_default` (numba already set up in the process) keeps LSODA, so
    that it never changes the numbers.  A failure of the loop is returned in
    ``stats['compiled_fallback']`` (the caller redoes the simulation with LSODA); the reduced
    model's species at ``t_out`` are in ``stats['_Y']`` (for the caller to pop).
    """
    why = _why_not(model, p, piecewise, asked, jac, float(t_out[-1] - t_out[0]))
    if why is not None:
        return None, why
    pair = callbacks(model._c, ("sym_rhs", "sym_jac") if model.reduced else ("rhs", "jac"))
    if pair is None:
        return None, "the numba build of the generated functions failed"
    from kinetics import (
        stiff_nb,  # lazy: imports numba (the optional 'fast' extra, ~0.3 s)
    )

    wall = time.perf_counter()
    e = np.asarray(edges, float)
    if hasattr(Ifun, "many"):  # the currents at the segments' midpoints, as Model._segments reads them
        curs = np.array([model._cur(v, volume_L) for v in Ifun.many(0.5 * (e[:-1] + e[1:])).tolist()], float)
    else:
        curs = np.array([model._cur(Ifun(0.5 * (a + b)), volume_L) for a, b in pairwise(e)], float)
    status, X, st = stiff_nb.integrate(pair[0], pair[1], x, p, e, curs.reshape(-1, 3), t_out, rtol, atol,
                                       hmax=max_step, h_init=first_step or 0.0, max_steps=max(1, max_nfev // 6),
                                       invariants=_invariants(model, p, curs))
    stats: dict[str, Any] = {k: st[k] for k in ("nfev", "njev", "nlu", "steps", "rejected")}
    stats.update(retries=0, segments=int(np.count_nonzero(np.diff(e) > 0)), method="RODAS4", solver=SOLVER,
                 reduced=model.reduced, jac=jac, wall_s=time.perf_counter() - wall)
    if status != 0:  # (status 0: every row filled, and finite)
        k = st["failed_segment"]
        where = f" on segment {k} [{e[k]:g}, {e[k + 1]:g}] s" if k >= 0 else ""
        stats["compiled_fallback"] = f"RODAS4 (compiled) failed{where}: {stiff_nb.STATUS[status]}; redone with LSODA"
    elif model.reduced:  # the speciation at the output times, compiled too
        stats["_Y"] = _species(model, X, p, stiff_nb)
    return (X, stats), ""


def _species(model: Model, X: np.ndarray, p: np.ndarray, stiff_nb: Any) -> np.ndarray | None:
    """The reduced model's species at the rows of ``X`` by :func:`kinetics.stiff_nb.species_rows`
    (the closed forms, no dimer); None where those do not apply (the caller's numpy path)."""
    c = model._c
    if model._layout is None:
        comp, iso, k = [], [], 0
        for b in c.blocks:
            r = b.roles
            if b.kind == "comproportionation":
                comp.append([k, b.K_idx[0], *(model.species.index(r[q]) if q in r else -1 for q in "ORHD")])
            else:
                iso.append([k, b.K_idx[0], model.species.index(r["X"]), model.species.index(r["Y"])])
            k += b.L.shape[0]
        free = [[k + j, int(i)] for j, i in enumerate(c.free_idx)]
        layout = [np.array(v, np.int64).reshape(-1, w) for v, w in ((comp, 6), (iso, 4), (free, 2))]
        model._layout = (*layout, np.concatenate([layout[0][:, 1], layout[1][:, 1]]))
    comp, iso, free, K_idx = model._layout
    if K_idx.size and p[K_idx].min() < 0:
        return None  # the numpy path raises the error
    return stiff_nb.species_rows(X, p, comp, iso, free, len(model.species))


def _invariants(model: Model, p: np.ndarray, curs: np.ndarray) -> np.ndarray:
    """Per segment, an orthonormal basis (n_state, k) of the integrated state's linear
    conservation laws, zero-padded to (n_seg, n_state, k_max): the left null space of the
    stoichiometry of the reactions that run in that segment (``N``; the reduced model's
    ``P N`` over its slow reactions), so ``Q^T f = 0`` (:func:`_running`)."""
    key = ("Q", (p == 0.0).tobytes(), (curs == 0.0).tobytes())
    if key in model._invariants:
        return model._invariants[key]
    c = model._c
    A = np.asarray(c.PN if model.reduced else c.N, float)
    slow = ~np.asarray(c.fast_reactions, bool) if model.reduced else np.ones(A.shape[1], bool)
    zero_p = tuple(np.flatnonzero(p == 0.0).tolist())
    Qs = []
    for cur in curs:
        runs = slow & _running(model, zero_p, tuple(k for k in range(3) if cur[k] == 0.0))
        laws = runs.tobytes()
        if laws not in model._invariants:
            model._invariants[laws] = _left_null_space(A[:, runs])
        Qs.append(model._invariants[laws])
    out = np.zeros((len(Qs), A.shape[0], max(q.shape[1] for q in Qs)))
    for k, q in enumerate(Qs):
        out[k, :, :q.shape[1]] = q
    model._invariants[key] = out
    return out


def _running(model: Model, zero_p: tuple[int, ...], zero_c: tuple[int, ...]) -> np.ndarray:
    """Reactions whose rate law is not identically zero once the parameters ``zero_p`` and
    the currents ``zero_c`` (indices into i, i_ch, i_dis) are 0 (sympy, once per pattern):
    a zero rate constant, share or current switches a reaction off for every state."""
    key = ("running", zero_p, zero_c)
    if key not in model._invariants:
        c = model._c
        _, ps, cs = c.symbols()
        zero = {**{ps[k]: 0 for k in zero_p}, **{cs[k]: 0 for k in zero_c}}
        model._invariants[key] = np.array([e.xreplace(zero) != 0 for e in c.rate_exprs], bool)
    return model._invariants[key]


def _left_null_space(A: np.ndarray) -> np.ndarray:
    """Orthonormal columns spanning ``{w : w^T A = 0}`` (SVD, rank at the usual tolerance)."""
    if A.shape[1] == 0:
        return np.eye(A.shape[0])
    u, sv, _ = np.linalg.svd(A, full_matrices=True)
    rank = int(np.count_nonzero(sv > max(A.shape) * np.finfo(float).eps * sv.max()))
    return np.ascontiguousarray(u[:, rank:])
