"""Python source of generated kinetics functions, and building them (pure Python or numba).

:mod:`kinetics.codegen` turns a network into sympy expressions; this module prints them
as the source of one plain function each (common subexpressions eliminated), so the
code can be cached on disk as text (:mod:`kinetics.codecache`) and rebuilt in a new
process without sympy work.  Every function has the signature ``fn(a, b, i, i_ch, i_dis)``
with ``a`` and ``b`` sequences of floats (state and parameters) and returns a list (or a
list of lists for a matrix).

Builds of the same source:

* pure Python (``math`` on Python floats, the reference path, always available), and its
  solver-callback form (:func:`ode_source`: parameters read once, ``fn(t, x)`` for
  ``odeint``), which the integrator calls hundreds of times per simulation;
* numba (``pip install flowcell[fast]``, opt-in with ``FLOWCELL_NUMBA=1``, see
  :func:`numba_default`): the same expressions compiled to machine code with
  ``error_model='numpy'``, taking and returning float arrays and raising
  FloatingPointError when a value is not finite (a domain error of the closed form).
  Used for the right-hand sides and Jacobians of the full and reduced models
  (:meth:`kinetics.codegen.Compiled.ode_functions`), the same numbers as the pure build;
* a numba C callback (:func:`build_cfunc`: ``status = fn(a_ptr, b_ptr, i, i_ch, i_dis,
  out_ptr)``, the values written to ``out``, status 1 when one is not finite), called by
  address from the compiled RODAS4 loop (:mod:`kinetics.stiff_nb`) with no Python layer.
"""

from __future__ import annotations

import math
import os
import sys
import types
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ingest.processing.numba_switch import numba_switch

__all__ = ["function_source", "build_pure", "build_ode", "ode_source", "build_numba", "numba_enabled",
           "numba_default", "numba_requested", "has_machine_code", "cfunc_source", "build_cfunc"]

_ARGS = ("_a", "_b", "i", "i_ch", "i_dis")


class _Printer(PythonCodePrinter):
    """``math.*`` calls; integer powers as products (exact and faster than ``**``)."""

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        b, e = expr.as_base_exp()
        if e.is_Integer and 1 < int(e) <= 4:
            x = self.parenthesize(b, 100)
            return "(" + "*".join([x] * int(e)) + ")"
        if e.is_Integer and -4 <= int(e) < -1:
            x = self.parenthesize(b, 100)
            return "(1.0/(" + "*".join([x] * -int(e)) + "))"
        return super()._print_Pow(expr, rational=rational)


def function_source(name: str, a_syms: Sequence[sp.Symbol], b_syms: Sequence[sp.Symbol],
                    c_syms: Sequence[sp.Symbol], exprs: Sequence[sp.Expr] | sp.Matrix,
                    combine: sp.Matrix | None = None) -> str:
    """Source of ``def name(_a, _b, i, i_ch, i_dis)`` returning ``exprs`` (or ``combine @ exprs``).

    Parameters
    ----------
    name : str
        Function name.
    a_syms, b_syms : sequence of sympy.Symbol
        Symbols read from the first and second argument, by position.
    c_syms : three sympy.Symbol
        Symbols of the last three arguments (the currents ``i``, ``i_ch``, ``i_dis``).
    exprs : list of expressions, or a Matrix
        A list gives a flat list; a Matrix a list of rows.
    combine : Matrix of numbers, optional
        Return ``combine @ exprs`` instead, with every entry of ``exprs`` computed once
        first (e.g. the stoichiometric matrix times the reaction rates: the linear
        combination of rounded rates keeps the conservation laws to the last bit, which a
        symbolically expanded product does not).

    Returns
    -------
    str
        The function's source (uses only ``math``).
    """
    shape = None
    if isinstance(exprs, sp.MatrixBase):
        shape = exprs.shape
        flat = list(exprs)
    else:
        flat = [sp.sympify(e) for e in exprs]
    # safe argument names whatever the species / parameter names are
    ren = {s: sp.Symbol(f"_a{k}") for k, s in enumerate(a_syms)}
    ren.update({s: sp.Symbol(f"_b{k}") for k, s in enumerate(b_syms)})
    ren.update({s: sp.Symbol(n) for s, n in zip(c_syms, _ARGS[2:])})
    flat = [e.xreplace(ren) for e in flat]
    subs, reduced = sp.cse(flat, symbols=sp.numbered_symbols("_x"), optimizations="basic")
    pr = _Printer({"fully_qualified_modules": True, "standard": "python3"})
    vals = None
    if combine is not None:  # the entries become named values _v<k>; return combine @ values
        vs = [sp.Symbol(f"_v{k}") for k in range(len(reduced))]
        subs = subs + list(zip(vs, reduced))
        vals, shape = _combination(combine, vs, shape)
        reduced = vs
    used = set().union(*(e.free_symbols for e in reduced), *(e.free_symbols for _, e in subs)) \
        if (reduced or subs) else set()
    lines = [f"def {name}({', '.join(_ARGS)}):"]
    for k in range(len(a_syms)):
        if sp.Symbol(f"_a{k}") in used:
            lines.append(f"    _a{k} = _a[{k}]")
    for k in range(len(b_syms)):
        if sp.Symbol(f"_b{k}") in used:
            lines.append(f"    _b{k} = _b[{k}]")
    for s, e in subs:
        lines.append(f"    {s} = {pr.doprint(e)}")
    if vals is None:
        vals = [pr.doprint(e) for e in reduced]
    if shape is None:
        lines.append("    return [" + ", ".join(f"float({v})" for v in vals) + "]")
    else:
        rows = [", ".join(f"float({v})" for v in vals[r * shape[1]:(r + 1) * shape[1]]) for r in range(shape[0])]
        lines.append("    return [" + ", ".join(f"[{r}]" for r in rows) + "]")
    return "\n".join(lines) + "\n"


def _combination(combine: sp.Matrix, vs: list[sp.Symbol], shape: tuple[int, int] | None
                 ) -> tuple[list[str], tuple[int, int] | None]:
    """Printed entries of ``combine @ V`` (V: ``vs`` as a column, or reshaped to ``shape``).

    Each entry is summed left to right in column order, skipping zero coefficients, as
    numpy's ``N @ r`` does: with integer coefficients (stoichiometry) every product is exact,
    so the numbers are those of the matrix product to the last bit.
    """
    M = sp.Matrix(combine)
    cols = 1 if shape is None else shape[1]
    V = [vs[k * cols:(k + 1) * cols] for k in range(len(vs) // cols)]
    out = []
    for i in range(M.shape[0]):
        for c in range(cols):
            terms = []
            for j in range(M.shape[1]):
                a = M[i, j]
                if a == 0:
                    continue
                v = str(V[j][c])
                t = v if abs(a) == 1 else f"{float(abs(a))!r}*{v}"
                terms.append(("-" if a < 0 else "+") + t)
            text = "".join(terms).lstrip("+") if terms else "0.0"
            out.append(text)
    return out, (None if shape is None else (M.shape[0], cols))


def build_pure(source: str, name: str) -> Callable:
    """The function defined by ``source`` (pure Python, ``math`` module)."""
    ns: dict[str, Any] = {"math": math}
    exec(compile(source, f"<kinetics generated {name}>", "exec"), ns)  # noqa: S102 - our own generated code
    return ns[name]


def numba_enabled() -> bool:
    """True when numba is importable and not switched off with ``FLOWCELL_NUMBA=0``
    (:func:`ingest.processing.numba_switch.numba_switch`)."""
    if numba_switch() is False:
        return False
    try:
        import numba  # noqa: F401  (lazy: optional extra 'fast', ~0.3 s to import)
    except ImportError:
        return False
    return True


def ode_source(source: str, name: str) -> str:
    """Rewrite a generated source into a factory of solver callbacks (pure Python).

    ``name_ode(_b, i, i_ch, i_dis, _slow)`` reads the parameters once and returns
    ``fn(t, x)`` (``x`` a float array, the signature of ``odeint(..., tfirst=True)``): one
    Python call per evaluation, the state unpacked with one ``tolist``, and ``_slow(x)``
    called instead on a math domain error (numpy's nan/inf semantics, or another path).
    The arithmetic is the source's own, line for line: the same numbers to the last bit.
    """
    body = source.rstrip("\n").split("\n")[1:]
    a_lines = [ln for ln in body if ln.startswith("    _a")]
    b_lines = [ln for ln in body if ln.startswith("    _b")]
    rest = [ln for ln in body if not ln.startswith(("    _a", "    _b"))]
    n_a = 1 + max((int(ln.split("[")[1].split("]")[0]) for ln in a_lines), default=-1)
    unpack = ", ".join(f"_a{k}" for k in range(n_a)) + ("," if n_a == 1 else "")
    out = [f"def {name}_ode(_b, {', '.join(_ARGS[2:])}, _slow):", *b_lines,
           "    def fn(t, _a):", "        try:"]
    if n_a:
        out.append(f"            {unpack} = _a.tolist()")
    *calc, ret = rest
    out += ["        " + ln for ln in calc]
    out.append("        " + ret.replace("float(", "("))  # already floats (odeint converts an int 0)
    out += ["        except (ValueError, ZeroDivisionError, OverflowError):",
            "            return _slow(_a)", "    return fn"]
    return "\n".join(out) + "\n"


def build_ode(source: str, name: str) -> Callable:
    """The factory of :func:`ode_source` (pure Python)."""
    return build_pure(ode_source(source, name), f"{name}_ode")


def numba_default() -> bool:
    """The default of the numba builds (``Compiled.use_numba = None``).

    ``FLOWCELL_NUMBA=1``: on (when numba is installed); ``FLOWCELL_NUMBA=0``: off.  Unset:
    on only when this process has already set numba's compiler up (other code compiled
    with numba, e.g. a numba line fit before a kinetics fit) and the network's machine code
    is cached on disk (by an earlier ``FLOWCELL_NUMBA=1`` run), since loading it then costs
    ~0.05 s; otherwise off, because a new process pays ~1 s to
    set numba up before it can load even cached machine code (``benchmarks/bench_kinetics.py``),
    more than a typical run saves (~1-4 ms per simulation of the 6-hour benchmark).  Both
    builds give the same numbers.  Per model: ``model._c.use_numba = True``.
    """
    switch = numba_switch()  # the one reading of FLOWCELL_NUMBA (docs/conventions.md)
    if switch is not None:
        return switch and numba_enabled()
    return _numba_is_warm()


def numba_requested() -> bool:
    """``FLOWCELL_NUMBA=1`` (numba builds compiled when not cached); unset, :func:`numba_default`
    uses them only when their machine code is cached (no compilation of seconds unasked)."""
    return numba_switch() is True


def _numba_is_warm() -> bool:
    """numba imported and its CPU compiler context already built in this process (no import)."""
    if "numba" not in sys.modules:
        return False
    try:
        from numba.core import registry  # already imported with numba
        return "_toplevel_target_context" in vars(registry.cpu_target)
    except Exception:  # noqa: BLE001 - another numba layout: stay with the pure build
        return False


def _array_source(source: str, name: str) -> str:
    """Rewrite the pure source into an array version: returns a float array, raises
    FloatingPointError on a non-finite value (the caller falls back to another path)."""
    head, *body = source.rstrip("\n").split("\n")
    ret = body[-1].strip()
    assert ret.startswith("return ")
    val = ret[len("return "):].replace("float(", "(")
    out = [head.replace(f"def {name}(", f"def {name}_nb("), *body[:-1],
           f"    _o = np.array({val}, dtype=np.float64)",
           "    if not np.all(np.isfinite(_o)):",
           "        raise FloatingPointError('non-finite value')",
           "    return _o"]
    return "\n".join(out) + "\n"


def has_machine_code(source: str, name: str, cache_file: Path | None) -> bool:
    """True when numba's machine code of ``source`` is cached at ``cache_file`` (a build
    loads it instead of compiling for seconds)."""
    if cache_file is None:
        return False
    try:
        if cache_file.read_text(encoding="utf-8") != _array_source(source, name):
            return False
    except OSError:
        return False
    return any((cache_file.parent / "__pycache__").glob(f"{cache_file.stem}.{name}_nb-*.nbi"))


def build_numba(source: str, name: str, n_a: int, n_b: int, cache_file: Path | None = None) -> Callable | None:
    """The numba build of ``source``: ``fn(a, b, i, i_ch, i_dis) -> array`` (FloatingPointError
    when a value is not finite).

    Compiled eagerly for float64 arrays and floats (so the first call inside a timed loop
    does not pay the compilation).  With ``cache_file`` the array source is written there
    (a module registered in ``sys.modules``) and numba caches the machine code next to it,
    so a new process loads it instead of compiling.  The build is checked against the pure
    one on a probe point.  None when numba is missing or cannot compile the source.
    """
    if not numba_enabled():
        return None
    src = _array_source(source, name)
    cache_file = _write_source(cache_file, src)
    for use_cache in ((True, False) if cache_file is not None else (False,)):
        try:
            fn = _njit(src, name, cache_file if use_cache else None)
        except Exception:  # noqa: BLE001 - a stale or foreign numba cache: compile afresh
            continue
        return fn if _agrees(fn, source, name, n_a, n_b) else None
    return None


def _write_source(cache_file: Path | None, src: str) -> Path | None:
    """Write ``src`` to ``cache_file`` atomically unless it is there already; None when it
    cannot be written (then numba compiles without a disk cache)."""
    if cache_file is None:
        return None
    try:
        if not cache_file.is_file() or cache_file.read_text(encoding="utf-8") != src:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
            tmp.write_text(src, encoding="utf-8")
            os.replace(tmp, cache_file)
    except OSError:
        return None
    return cache_file


def _njit(src: str, name: str, cache_file: Path | None) -> Callable:
    import numba  # lazy: optional extra 'fast' (~0.3 s to import)

    modname = f"kinetics._generated.{cache_file.stem if cache_file else name}"
    mod = types.ModuleType(modname)
    mod.__dict__.update(math=math, np=np)
    if cache_file is not None:
        mod.__file__ = str(cache_file)
        sys.modules[modname] = mod  # numba's cache re-imports the module of its globals
    exec(compile(src, str(cache_file) if cache_file else f"<kinetics generated {name}>", "exec"),  # noqa: S102
         mod.__dict__)
    sig = "float64[:](float64[:], float64[:], float64, float64, float64)"
    if "np.array([[" in src:
        sig = "float64[:, :](float64[:], float64[:], float64, float64, float64)"
    return numba.njit(sig, error_model="numpy", cache=cache_file is not None)(mod.__dict__[f"{name}_nb"])


def _agrees(fn: Callable, source: str, name: str, n_a: int, n_b: int) -> bool:
    """The numba build gives the pure build's numbers (1e-12 relative) on a probe point."""
    try:
        a = np.linspace(0.011, 0.013, n_a) if n_a else np.zeros(0)
        b = np.linspace(0.5, 1.5, n_b) if n_b else np.zeros(0)
        ref = np.asarray(build_pure(source, name)(a.tolist(), b.tolist(), 0.1, 0.1, 0.0), float)
        got = fn(a, b, 0.1, 0.1, 0.0)
        return ref.shape == got.shape and bool(np.allclose(got, ref, rtol=1e-12, atol=0, equal_nan=True))
    except Exception:  # noqa: BLE001
        return False


def cfunc_source(source: str, name: str, n_a: int, n_b: int) -> str:
    """Rewrite the pure source into a C callback ``{name}_cf(_ap, _bp, i, i_ch, i_dis, _op)``:
    the state and parameters read from pointers (``n_a`` and ``n_b`` floats), the values
    (a matrix row by row) written to ``_op``; returns 1 when one is not finite, else 0."""
    head, *body = source.rstrip("\n").split("\n")
    ret = body[-1].strip()
    assert ret.startswith("return [")
    vals = [v for row in _split_top(ret[len("return "):])
            for v in (_split_top(row) if row.startswith("[") else [row])]
    out = [head.replace(f"def {name}(_a, _b,", f"def {name}_cf(_ap, _bp,").rstrip(":")[:-1] + ", _op):",
           f"    _a = carray(_ap, {max(n_a, 1)})", f"    _b = carray(_bp, {max(n_b, 1)})",
           f"    _o = carray(_op, {len(vals)})", *body[:-1]]
    out += [f"    _o[{k}] = {v}" for k, v in enumerate(vals)]
    out += [f"    for _k in range({len(vals)}):",
            "        if not math.isfinite(_o[_k]):",
            "            return 1",
            "    return 0"]
    return "\n".join(out) + "\n"


def _split_top(text: str) -> list[str]:
    """The items of a printed list ``[a, b, ...]`` (commas inside brackets kept)."""
    assert text.startswith("[") and text.endswith("]")
    items, depth, cur = [], 0, []
    for ch in text[1:-1]:
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
            continue
        depth += ch in "([{"
        depth -= ch in ")]}"
        cur.append(ch)
    tail = "".join(cur).strip()
    return items + ([tail] if tail else [])


def build_cfunc(source: str, name: str, n_a: int, n_b: int, cache_file: Path | None = None) -> Any:
    """The numba C callback of ``source`` (:func:`cfunc_source`; ``.address`` is its address).

    With ``cache_file`` the callback source is written there and numba caches the machine
    code next to it (a new process loads it).  Checked against the pure build on a probe
    point; None when numba is missing or the build fails or disagrees.
    """
    if not numba_enabled():
        return None
    src = cfunc_source(source, name, n_a, n_b)
    cache_file = _write_source(cache_file, src)
    for use_cache in ((True, False) if cache_file is not None else (False,)):
        try:
            fn = _cfunc(src, name, cache_file if use_cache else None)
        except Exception:  # noqa: BLE001, S112 - a stale or foreign numba cache: compile afresh
            continue
        return fn if _cfunc_agrees(fn, source, name, n_a, n_b) else None
    return None


def _cfunc(src: str, name: str, cache_file: Path | None) -> Any:
    import numba  # lazy: optional extra 'fast' (~0.3 s to import)
    from numba import types as nbt

    modname = f"kinetics._generated.{cache_file.stem if cache_file else name + '_cf'}"
    mod = types.ModuleType(modname)
    mod.__dict__.update(math=math, np=np, carray=numba.carray)
    if cache_file is not None:
        mod.__file__ = str(cache_file)
        sys.modules[modname] = mod  # numba's cache re-imports the module of its globals
    exec(compile(src, str(cache_file) if cache_file else f"<kinetics generated {name}_cf>", "exec"),  # noqa: S102
         mod.__dict__)
    ptr = nbt.CPointer(nbt.float64)
    sig = nbt.intc(ptr, ptr, nbt.float64, nbt.float64, nbt.float64, ptr)
    return numba.cfunc(sig, error_model="numpy", cache=cache_file is not None)(mod.__dict__[f"{name}_cf"])


def _cfunc_agrees(fn: Any, source: str, name: str, n_a: int, n_b: int) -> bool:
    """The C callback gives the pure build's numbers (1e-12 relative) on a probe point."""
    import ctypes

    try:
        a = np.linspace(0.011, 0.013, n_a) if n_a else np.zeros(1)
        b = np.linspace(0.5, 1.5, n_b) if n_b else np.zeros(1)
        ref = np.asarray(build_pure(source, name)(a.tolist(), b.tolist(), 0.1, 0.1, 0.0), float).ravel()
        out = np.full(ref.size, np.nan)
        p = ctypes.POINTER(ctypes.c_double)
        status = fn.ctypes(a.ctypes.data_as(p), b.ctypes.data_as(p), 0.1, 0.1, 0.0, out.ctypes.data_as(p))
        ok = bool(np.allclose(out, ref, rtol=1e-12, atol=0, equal_nan=True))
        return ok and status == int(not np.isfinite(ref).all())
    except Exception:  # noqa: BLE001
        return False
