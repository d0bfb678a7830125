"""The parts a reaction network is made of: species, parameters, reactions.

Plain data and the small parsers of the text syntax's terms (sides of a reaction, rate
expressions); :class:`kinetics.network.Network` assembles and validates them.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import sympy as sp

__all__ = ["NetworkError", "Species", "Parameter", "Reaction", "ELECTRON", "CURRENT_SYMBOLS", "sympify"]

ELECTRON = "e-"
CURRENT_SYMBOLS = ("i", "i_ch", "i_dis")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# names the generated code needs for itself (current fluxes, time, math functions)
_RESERVED = set(CURRENT_SYMBOLS) | set(keyword.kwlist) | {
    "t", "sqrt", "exp", "log", "Max", "Min", "Abs", "tanh", "Heaviside", "Piecewise", "math",
    "numpy"}


class NetworkError(ValueError):
    """A network definition is invalid; the message names the culprit."""


@dataclass(frozen=True)
class Species:
    """A chemical species.

    Attributes
    ----------
    name : str
        Identifier (valid Python name), e.g. ``'O'``.
    charge : int or None
        Charge label (e.g. -2 for DHAQ2-); None skips the charge check.
    electrons : int
        Electrons stored relative to the oxidised quinone (docs/physics.md §2.2).
    units : int
        Quinone units (monomer units), e.g. 2 for a dimer.
    active : bool
        Counted in C_act and n_e for the SOC (docs/physics.md §1.1).
    doc : str
    """

    name: str
    charge: int | None = None
    electrons: int = 0
    units: int = 1
    active: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Parameter:
    """A model parameter with unit, default value, provenance tag and description."""

    name: str
    default: float | None = None
    unit: str = ""
    tag: str = ""
    doc: str = ""


def _as_stoich(x: Mapping[str, int] | Iterable[str] | str) -> dict[str, int]:
    if isinstance(x, str):
        return _parse_side(x, "<reaction>")
    if isinstance(x, Mapping):
        return {str(k): int(v) for k, v in x.items() if int(v) != 0}
    out: dict[str, int] = {}
    for n in x:
        out[n] = out.get(n, 0) + 1
    return out


@dataclass(frozen=True)
class Reaction:
    """One reaction.

    Parameters
    ----------
    reactants, products : dict[str, int] or str
        Stoichiometry, e.g. ``{'O': 1, 'H': 1}`` or ``'O + H'``; ``'e-'`` is an electron.
    rate : str or None
        Rate law (events / (L s)); None = mass action from ``k`` (and ``K``).
    k : str or None
        Forward rate-constant parameter name.
    K : str or None
        Equilibrium-constant parameter name (reversible: ``k_rev = k / K``).
    fast : bool
        Reduce to the equilibrium ``K prod(reactants) = prod(products)``.
    reversible : bool or None
        Defaults to ``K is not None``.
    electrode : bool
        Electrochemical source term driven by ``i = I_ch / (F V)``.
    share : str or None
        Fraction of the current (electrode reactions); None = balance of the current.
    mode : {'both', 'charge', 'discharge'}
        Electrode reaction active always, on charge only or on discharge only.
    solvent, sink : bool
        Skip the charge check (H2O/OH- untracked) / the electron check (electrons leave).
    name : str
    doc : str
    """

    reactants: dict[str, int]
    products: dict[str, int]
    rate: str | None = None
    k: str | None = None
    K: str | None = None
    fast: bool = False
    reversible: bool | None = None
    electrode: bool = False
    share: str | None = None
    mode: str = "both"
    solvent: bool = False
    sink: bool = False
    name: str = ""
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reactants", _as_stoich(self.reactants))
        object.__setattr__(self, "products", _as_stoich(self.products))
        if self.reversible is None:
            object.__setattr__(self, "reversible", self.K is not None)
        if not self.name:
            object.__setattr__(self, "name", self.equation())

    @property
    def nu_e(self) -> int:
        """Electrons consumed per event (left minus right)."""
        return self.reactants.get(ELECTRON, 0) - self.products.get(ELECTRON, 0)

    def equation(self) -> str:
        """Canonical text of the equation, e.g. ``'O + H <=> 2 R'``."""

        def side(d: dict[str, int]) -> str:
            if not d:
                return "0"
            return " + ".join((f"{n} {s}" if n != 1 else s) for s, n in d.items())

        return f"{side(self.reactants)} {'<=>' if self.reversible else '->'} {side(self.products)}"

    def to_text(self) -> str:
        """One line of the text syntax (round-trips through :meth:`Network.from_text`)."""
        f = [f"{self.name}: {self.equation()}"]
        if self.k or self.K:
            f.append(", ".join(x for x in (self.k or "", self.K) if x is not None) if self.K else str(self.k))
        if self.rate:
            f.append(f"rate = {self.rate}")
        if self.fast:
            f.append("fast")
        if self.electrode:
            f.append("electrode")
        if self.share:
            f.append(f"share = {self.share}")
        if self.mode != "both":
            f.append(self.mode)
        if self.solvent:
            f.append("solvent")
        if self.sink:
            f.append("sink")
        return " ; ".join(f)


_TERM = re.compile(r"^\s*(\d+)?\s*([A-Za-z][A-Za-z0-9_]*-?)\s*$")


def _parse_side(text: str, where: str) -> dict[str, int]:
    text = text.strip()
    if text in ("", "0", "∅"):
        return {}
    out: dict[str, int] = {}
    # split on '+' that is not part of a name; names never contain '+'
    for term in text.split("+"):
        m = _TERM.match(term)
        if not m:
            raise NetworkError(f"{where}: cannot read term {term.strip()!r}")
        n = int(m.group(1) or 1)
        s = m.group(2)
        if s.endswith("-") and s != ELECTRON:
            raise NetworkError(f"{where}: bad species name {s!r} (only 'e-' may end in '-')")
        if n == 0:
            continue
        out[s] = out.get(s, 0) + n
    return out


def _symbols_of(expr: str, where: str) -> set[str]:
    try:
        e = sp.sympify(expr, locals=_sympy_locals(expr))
    except (sp.SympifyError, SyntaxError, TypeError) as exc:
        raise NetworkError(f"{where}: cannot parse {expr!r}: {exc}") from None
    return {str(s) for s in e.free_symbols}


def _sympy_locals(expr: str) -> dict[str, Any]:
    # make every identifier a plain Symbol (so 'S', 'E', 'N', 'O' ... are not sympy objects)
    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr))
    funcs = {"exp", "log", "sqrt", "Max", "Min", "Abs", "tanh", "Heaviside", "Piecewise"}
    return {n: sp.Symbol(n) for n in names if n not in funcs}


def sympify(expr: str) -> sp.Expr:
    """Parse a rate expression with every identifier a plain sympy Symbol."""
    return sp.sympify(expr, locals=_sympy_locals(expr))
