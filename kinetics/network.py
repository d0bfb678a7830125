"""Reaction networks written once: species, reactions, parameters, a small text syntax.

A :class:`Network` is plain data.  ``net.compile()`` (see :mod:`kinetics.codegen`
and :mod:`kinetics.model`) turns it into ODEs with sympy, once.

Text syntax (``Network.from_text``)
-----------------------------------
One statement per line; ``#`` starts a comment; blank lines are ignored.

``species NAME [charge=Z] [electrons=N] [units=U] [active|inactive] [: doc]``
    Declares a species.  ``charge`` is a label used only for the charge-balance
    check; ``electrons`` counts the electrons the species stores relative to the
    oxidised quinone (O: 0, R: 1, H: 2, D: 2, anthrone A: 4, A2: 6 — docs/physics.md §2.2);
    ``units`` is the number of quinone units (monomer units, D: 2); ``active`` species
    enter C_act and n_e for the SOC (docs/physics.md §1.1).  Species only used in reactions
    are declared implicitly (no charge, 0 electrons, 1 unit, inactive).

``param NAME = VALUE [UNIT] [TAG] [: doc]``
    Declares a parameter with its default, unit (any token without spaces, e.g.
    ``1/(M*s)``), provenance tag in brackets (``[V]``, ``[D]``, ``[G]``, ``[ASSUMED]``)
    and a description.  When at least one ``param`` line is present every symbol used
    by a reaction must be declared.

Reactions: ``[name:] LHS ARROW RHS [; field]*``
    ``ARROW`` is ``->`` (irreversible) or ``<=>`` (reversible).  A side is ``+``-separated
    terms ``[n] NAME`` (``2 R`` or ``2R``); ``e-`` is an electron; ``0`` (or an empty
    side) means nothing.  Fields, separated by ``;``:

    * ``k`` or ``k, K`` – forward rate-constant name and, for ``<=>``, the equilibrium
      constant name: mass action ``r = k (prod reactants - prod products / K)``.
    * ``rate = EXPR`` – any sympy-parsable rate law (events per L per s) using species,
      parameters and the electrode fluxes ``i``, ``i_ch``, ``i_dis`` (M/s).
    * ``fast`` – reduce to the equilibrium ``K prod(reactants) = prod(products)``.
    * ``electrode`` – an electrochemical source term driven by the current:
      ``i = I_ch/(F V)`` (mol e-/(L s), > 0 on charge).  Its event rate is
      ``share * i / nu_e`` with ``nu_e`` = electrons consumed (left minus right).  An
      electrode reaction without ``share`` takes the balance of the current that the
      other electrode reactions leave.  ``charge`` / ``discharge`` restrict it to
      ``i_ch = max(i, 0)`` or ``-i_dis = min(i, 0)``.
    * ``share = EXPR`` – fraction of the current (electrode reactions).
    * ``solvent`` – H2O/OH- are not tracked: skip the charge check.
    * ``sink`` – electrons leave the tracked system (HER, O2): skip the electron check.
    * ``name = ID`` – alternative to the ``name:`` prefix.

Examples::

    species O charge=-2 electrons=0 active
    param kc = 1e8 1/(M*s) [ASSUMED] : comproportionation rate constant
    C1: O + H <=> 2 R ; kc, Kc ; fast
    Dec: H -> A ; k_dec
    E1: O + 2 e- -> H ; electrode
    HER: 2 e- -> 0 ; electrode ; share = eps_H ; charge ; sink

Validation at build time raises :class:`NetworkError` naming the culprit: unknown
species or parameters, duplicate reactions, charge or electron imbalance.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from typing import Any, Iterable, Mapping

import sympy as sp

from kinetics.reaction import (
    _NAME,
    _RESERVED,
    CURRENT_SYMBOLS,
    ELECTRON,
    NetworkError,
    Parameter,
    Reaction,
    Species,
    _parse_side,
    _symbols_of,
    sympify,
)

__all__ = [
    "NetworkError",
    "Species",
    "Parameter",
    "Reaction",
    "Network",
    "ELECTRON",
    "CURRENT_SYMBOLS",
    "sympify",
]


class Network:
    """Species, reactions, parameters and (derived) conserved quantities.

    Parameters
    ----------
    species : list of Species or str
        Declared species (strings become default :class:`Species`).  Species used in
        reactions but not declared are added (inactive, no charge) unless ``strict``.
    reactions : list of Reaction
    params : list of Parameter or dict name -> default or None
        Parameter table; None = infer names from the reactions (no defaults).  When given,
        every parameter a reaction uses must be in it.
    source : str
        Free text saying where the network came from (kept for provenance).
    n_max : int
        Electrons per active quinone unit at full charge (2 for anthraquinones); the
        SOC is ``n_e / (n_max C_act)`` (docs/physics.md §1.1).
    name : str
    doc : str
    strict : bool
        Species used in reactions must be declared (``from_text`` sets it when the text
        has any ``species`` line).

    Raises
    ------
    NetworkError
        Unknown species (when ``strict``) or parameters, duplicate reactions, charge or
        electron imbalance; the message names the reaction and the culprit.
    """

    def __init__(self, species: Iterable[Species | str], reactions: Iterable[Reaction],
                 params: Iterable[Parameter] | Mapping[str, float | None] | None = None, *,
                 source: str = "", n_max: int = 2, name: str = "network", doc: str = "",
                 strict: bool = False) -> None:
        self.name = name
        self.doc = doc
        self.source = source
        self.n_max = int(n_max)
        sp_list: list[Species] = []
        seen: set[str] = set()
        for s in species:
            s = Species(s) if isinstance(s, str) else s
            if not _NAME.match(s.name) or s.name in _RESERVED:
                raise NetworkError(f"species {s.name!r}: not a valid or allowed name")
            if s.name in seen:
                raise NetworkError(f"species {s.name!r} declared twice")
            seen.add(s.name)
            sp_list.append(s)
        self.reactions: list[Reaction] = list(reactions)
        if not self.reactions:
            raise NetworkError(f"network {name!r} has no reactions")
        for r in self.reactions:
            for s in list(r.reactants) + list(r.products):
                if s == ELECTRON or s in seen:
                    continue
                if strict:
                    raise NetworkError(f"reaction {r.name!r}: unknown species {s!r}")
                if not _NAME.match(s) or s in _RESERVED:
                    raise NetworkError(f"reaction {r.name!r}: bad species name {s!r}")
                seen.add(s)
                sp_list.append(Species(s))
        self.species: list[Species] = sp_list
        self._sp = {s.name: s for s in sp_list}

        # parameters
        declared = params is not None
        plist: list[Parameter] = []
        if params is None:
            params = {}
        if isinstance(params, Mapping):
            plist = [Parameter(k, None if v is None else float(v)) for k, v in params.items()]
        else:
            plist = list(params)
        self.params: dict[str, Parameter] = {}
        for p in plist:
            if p.name in self.params:
                raise NetworkError(f"parameter {p.name!r} declared twice")
            if not _NAME.match(p.name) or p.name in _RESERVED or p.name in self._sp:
                raise NetworkError(f"parameter {p.name!r}: not a valid name or clashes with a species")
            self.params[p.name] = p
        self._validate(declared)

    # ------------------------------------------------------------------ validation
    def _validate(self, declared: bool) -> None:
        seen_eq: dict[tuple, str] = {}
        names: set[str] = set()
        for r in self.reactions:
            if r.name in names:
                raise NetworkError(f"reaction name {r.name!r} used twice")
            names.add(r.name)
            key = (tuple(sorted(r.reactants.items())), tuple(sorted(r.products.items())))
            keys = [key]
            if r.reversible:
                keys.append((key[1], key[0]))
            for kk in keys:
                if kk in seen_eq and not r.electrode:
                    raise NetworkError(f"duplicate reaction {r.name!r}: same as {seen_eq[kk]!r}")
            seen_eq[key] = r.name
            if not r.reactants and not r.products:
                raise NetworkError(f"reaction {r.name!r} is empty")
            if r.fast and not (r.reversible and r.K):
                raise NetworkError(f"reaction {r.name!r}: 'fast' needs '<=>' and an equilibrium constant K")
            if r.reversible and r.rate is None and not r.K:
                raise NetworkError(f"reaction {r.name!r}: reversible mass action needs 'k, K'")
            if r.rate is None and not r.k and not r.electrode:
                raise NetworkError(f"reaction {r.name!r}: no rate constant and no rate law")
            if r.electrode:
                if r.nu_e == 0:
                    raise NetworkError(f"electrode reaction {r.name!r} exchanges no electrons (write e-)")
                if r.fast:
                    raise NetworkError(f"electrode reaction {r.name!r} cannot be 'fast'")
            if r.mode not in ("both", "charge", "discharge"):
                raise NetworkError(f"reaction {r.name!r}: mode must be both/charge/discharge, got {r.mode!r}")
            # electron balance (stored electrons + free electrons)
            if not r.sink:
                left = sum(self._sp[s].electrons * n for s, n in r.reactants.items() if s != ELECTRON)
                right = sum(self._sp[s].electrons * n for s, n in r.products.items() if s != ELECTRON)
                if left + r.reactants.get(ELECTRON, 0) != right + r.products.get(ELECTRON, 0):
                    raise NetworkError(
                        f"reaction {r.name!r}: electron imbalance (left {left + r.reactants.get(ELECTRON, 0)},"
                        f" right {right + r.products.get(ELECTRON, 0)}); mark it 'sink' if electrons leave")
            # charge balance where charges are given
            if not r.solvent:
                involved = [s for s in list(r.reactants) + list(r.products) if s != ELECTRON]
                if involved and all(self._sp[s].charge is not None for s in involved):
                    qa = sum(self._sp[s].charge * n for s, n in r.reactants.items() if s != ELECTRON) \
                        - r.reactants.get(ELECTRON, 0)
                    qb = sum(self._sp[s].charge * n for s, n in r.products.items() if s != ELECTRON) \
                        - r.products.get(ELECTRON, 0)
                    if qa != qb:
                        raise NetworkError(
                            f"reaction {r.name!r}: charge imbalance ({qa} -> {qb}); mark it 'solvent' if "
                            "H2O/OH- balance it")
        # parameter names used by reactions
        allowed = set(self._sp) | set(CURRENT_SYMBOLS)
        for r in self.reactions:
            used: set[str] = set()
            for nm in (r.k, r.K):
                if nm:
                    if not _NAME.match(nm):
                        raise NetworkError(f"reaction {r.name!r}: bad parameter name {nm!r}")
                    used.add(nm)
            for what, expr in (("rate", r.rate), ("share", r.share)):
                if expr:
                    used |= _symbols_of(expr, f"reaction {r.name!r} {what}") - allowed
            for nm in sorted(used):
                if nm in self._sp:
                    continue
                if nm not in self.params:
                    if declared:
                        raise NetworkError(f"reaction {r.name!r}: unknown parameter {nm!r}")
                    self.params[nm] = Parameter(nm)
        balance = [r.name for r in self.reactions if r.electrode and r.share is None]
        if len(balance) > 1:
            raise NetworkError(f"more than one electrode reaction without 'share': {balance}")

    # ------------------------------------------------------------------ text
    @classmethod
    def from_text(cls, text: str, *, name: str = "network", source: str = "", n_max: int = 2,
                  doc: str = "") -> "Network":
        """Build a network from the text syntax described in the module docstring.

        When the text declares any species, every species used must be declared; when it
        declares any parameter, every parameter used must be declared.
        """
        species: list[Species] = []
        params: list[Parameter] = []
        reactions: list[Reaction] = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"line {lineno} ({line!r})"
            head = line.split(None, 1)[0]
            if head == "species":
                species.append(_parse_species(line[len("species"):], where))
            elif head == "param":
                params.append(_parse_param(line[len("param"):], where))
            else:
                reactions.append(_parse_reaction(line, where))
        return cls(species, reactions, params if params else None, source=source or text,
                   n_max=n_max, name=name, doc=doc, strict=bool(species))

    def to_text(self) -> str:
        """Canonical text of the network (used for the compile cache key)."""
        lines = []
        for s in self.species:
            bits = [f"species {s.name}"]
            if s.charge is not None:
                bits.append(f"charge={s.charge}")
            bits += [f"electrons={s.electrons}", f"units={s.units}", "active" if s.active else "inactive"]
            lines.append(" ".join(bits))
        for p in self.params.values():
            d = "nan" if p.default is None else repr(float(p.default))
            lines.append(f"param {p.name} = {d} {p.unit or '-'} [{p.tag or '-'}]")
        lines += [r.to_text() for r in self.reactions]
        lines.append(f"# n_max={self.n_max}")
        return "\n".join(lines)

    def fingerprint(self) -> str:
        """SHA-256 of :meth:`to_text` minus the parameter defaults (the structure)."""
        struct = "\n".join(l for l in self.to_text().splitlines() if not l.startswith("param "))
        struct += "\n" + ",".join(self.params)
        return hashlib.sha256(struct.encode()).hexdigest()

    # ------------------------------------------------------------------ accessors
    @property
    def species_names(self) -> list[str]:
        return [s.name for s in self.species]

    @property
    def param_names(self) -> list[str]:
        return list(self.params)

    @property
    def defaults(self) -> dict[str, float]:
        """Parameter defaults (only those that have one)."""
        return {k: float(p.default) for k, p in self.params.items() if p.default is not None}

    def species_info(self, name: str) -> Species:
        try:
            return self._sp[name]
        except KeyError:
            raise KeyError(f"unknown species {name!r}; have {self.species_names}") from None

    def stoichiometry(self) -> sp.Matrix:
        """Stoichiometric matrix N (species x reactions), products minus reactants."""
        names = self.species_names
        N = sp.zeros(len(names), len(self.reactions))
        for j, r in enumerate(self.reactions):
            for s, n in r.reactants.items():
                if s != ELECTRON:
                    N[names.index(s), j] -= n
            for s, n in r.products.items():
                if s != ELECTRON:
                    N[names.index(s), j] += n
        return N

    def conservation_laws(self, closed: bool = True) -> list[dict[str, sp.Rational]]:
        """Conserved linear combinations of species (left nullspace of N).

        Parameters
        ----------
        closed : bool
            True: laws of the closed system (electrode reactions and reactions that
            exchange electrons with the outside, ``e-`` or ``sink``, left out) — e.g.
            total quinone units and total stored electrons incl. 4 e- per anthrone
            (docs/physics.md §2.2).  False: laws that hold with every reaction running.

        Returns
        -------
        list of dict species -> coefficient
            A basis; known combinations are brought to the forms
            ``sum(units * c)`` and ``sum(electrons * c)`` when they lie in the span.
        """
        names = self.species_names
        N = self.stoichiometry()
        keep = [j for j, r in enumerate(self.reactions)
                if not closed or not (r.electrode or r.sink or ELECTRON in r.reactants or ELECTRON in r.products)]
        Nk = N[:, keep] if keep else sp.zeros(len(names), 1)
        basis = Nk.T.nullspace()
        if not basis:
            return []
        B = sp.Matrix.hstack(*basis).T  # rows = laws
        rank = B.rank()
        chosen: list[sp.Matrix] = []
        cand = [sp.Matrix([[self.species_info(n).units for n in names]]),
                sp.Matrix([[self.species_info(n).electrons for n in names]])]
        for c in cand:
            if any(c):
                if sp.Matrix.vstack(B, c).rank() == rank:  # in the span
                    trial = sp.Matrix.vstack(*chosen, c) if chosen else c
                    if trial.rank() == len(chosen) + 1:
                        chosen.append(c)
        for b in basis:
            row = b.T
            trial = sp.Matrix.vstack(*chosen, row) if chosen else row
            if trial.rank() == len(chosen) + 1:
                # normalise: make it integer with positive leading coefficient
                den = sp.ilcm(*[sp.fraction(x)[1] for x in row]) if any(row) else 1
                row = row * den
                first = next(x for x in row if x != 0)
                if first < 0:
                    row = -row
                chosen.append(row)
            if len(chosen) == rank:
                break
        return [{n: sp.Rational(c[0, k]) for k, n in enumerate(names) if c[0, k] != 0} for c in chosen]

    def conserved(self, closed: bool = True) -> dict[str, dict[str, Any]]:
        """Named conserved quantities: ``'quinone_units'`` (sum units * c),
        ``'electrons'`` (sum electrons * c, docs/physics.md §2.2) when they are conserved, and
        ``'law2'``, ... for the rest of the basis of :meth:`conservation_laws`."""
        units = {s.name: s.units for s in self.species if s.units}
        elec = {s.name: s.electrons for s in self.species if s.electrons}
        out: dict[str, dict[str, Any]] = {}
        for k, law in enumerate(self.conservation_laws(closed=closed)):
            d = {n: int(v) if v == int(v) else v for n, v in law.items()}
            if d == units:
                out["quinone_units"] = d
            elif d == elec:
                out["electrons"] = d
            else:
                out[f"law{k}"] = d
        return out

    def with_defaults(self, **overrides: float) -> "Network":
        """Copy with new parameter defaults (unknown names raise KeyError)."""
        bad = sorted(set(overrides) - set(self.params))
        if bad:
            raise KeyError(f"unknown parameters {bad}; have {sorted(self.params)}")
        new = object.__new__(Network)
        new.__dict__.update(self.__dict__)
        new.params = {k: (replace(p, default=float(overrides[k])) if k in overrides else p)
                      for k, p in self.params.items()}
        return new

    def compile(self, reduce_fast: bool = True) -> "Any":
        """Generate (once, cached) the ODE model; returns a :class:`kinetics.model.Model`."""
        # The one import of this module at call time: kinetics.model builds on Network
        # (model -> codegen -> network), so network never imports it at module level.
        from kinetics.model import Model

        return Model(self, reduce_fast=reduce_fast)

    def describe(self) -> str:
        """Human-readable table of species, reactions and parameters."""
        out = [f"Network {self.name}: {len(self.species)} species, {len(self.reactions)} reactions"]
        for s in self.species:
            out.append(f"  species {s.name:4s} charge={s.charge} e={s.electrons} units={s.units}"
                       f" {'active' if s.active else ''} {s.doc}")
        for r in self.reactions:
            out.append("  " + r.to_text())
        for p in self.params.values():
            out.append(f"  param {p.name:8s} = {p.default!s:10s} {p.unit:10s} [{p.tag}] {p.doc}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"Network({self.name!r}, species={self.species_names}, reactions={len(self.reactions)})"


# ---------------------------------------------------------------------- parser helpers
def _parse_species(text: str, where: str) -> Species:
    text, _, doc = text.partition(":")
    toks = text.split()
    if not toks:
        raise NetworkError(f"{where}: species needs a name")
    kw: dict[str, Any] = {"name": toks[0], "doc": doc.strip()}
    for t in toks[1:]:
        if t in ("active", "inactive"):
            kw["active"] = t == "active"
            continue
        k, eq, v = t.partition("=")
        if not eq or k not in ("charge", "electrons", "units"):
            raise NetworkError(f"{where}: unknown species option {t!r}")
        try:
            kw[k] = int(v)
        except ValueError:
            raise NetworkError(f"{where}: {k} must be an integer, got {v!r}") from None
    return Species(**kw)


_PARAM = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(\S+)\s*(.*)$")


def _parse_param(text: str, where: str) -> Parameter:
    body, _, doc = text.partition(":")
    m = _PARAM.match(body)
    if not m:
        raise NetworkError(f"{where}: expected 'param NAME = VALUE [UNIT] [TAG] [: doc]'")
    name, val, rest = m.groups()
    try:
        default = None if val.lower() in ("none", "nan", "?") else float(val)
    except ValueError:
        raise NetworkError(f"{where}: parameter {name!r} value {val!r} is not a number") from None
    tag = ""
    mt = re.search(r"\[([^\]]*)\]", rest)
    if mt:
        tag = mt.group(1).strip()
        rest = rest[: mt.start()] + rest[mt.end():]
    unit = rest.strip()
    return Parameter(name, default, "" if unit == "-" else unit, "" if tag == "-" else tag, doc.strip())


def _parse_reaction(line: str, where: str) -> Reaction:
    fields = [f.strip() for f in line.split(";")]
    eq = fields[0]
    name = ""
    m = re.match(r"^([A-Za-z][A-Za-z0-9_\-]*)\s*:\s*(.*)$", eq)
    if m and ("->" in m.group(2) or "<=>" in m.group(2)):
        name, eq = m.group(1), m.group(2)
    if "<=>" in eq:
        lhs, rhs = eq.split("<=>", 1)
        reversible = True
    elif "->" in eq:
        lhs, rhs = eq.split("->", 1)
        reversible = False
    else:
        raise NetworkError(f"{where}: no '->' or '<=>' (unknown statement {eq.split()[0]!r}?)")
    kw: dict[str, Any] = dict(reactants=_parse_side(lhs, where), products=_parse_side(rhs, where),
                              reversible=reversible)
    for f in fields[1:]:
        if not f:
            continue
        key, eqs, val = f.partition("=")
        key = key.strip()
        if eqs:
            if key in ("rate", "share"):
                kw[key] = val.strip()
            elif key == "name":
                name = val.strip()
            else:
                raise NetworkError(f"{where}: unknown field {key!r}")
        elif f in ("fast", "electrode", "solvent", "sink"):
            kw[f] = True
        elif f in ("charge", "discharge"):
            kw["mode"] = f
        else:
            ks = [x.strip() for x in f.split(",")]
            if len(ks) > 2 or not all(_NAME.match(x) for x in ks):
                raise NetworkError(f"{where}: cannot read field {f!r} (expected 'k' or 'k, K' or a keyword)")
            kw["k"] = ks[0]
            if len(ks) == 2:
                kw["K"] = ks[1]
    if kw.get("K") and not reversible:
        raise NetworkError(f"{where}: an equilibrium constant needs '<=>'")
    if name:
        kw["name"] = name
    return Reaction(**kw)
