"""Built-in reaction networks: DHAQ and DBEAQ anolytes in 1 M KOH.

The scheme is docs/physics.md §2.1 with the electron bookkeeping of §2.2; every parameter
default is a docs/physics.md §2.6 simulator placeholder (tag ``ASSUMED``) unless tagged
otherwise.  Sources (keys as in docs/physics.md §0): Z20 (Zhao et al., Nature 2020), Z21
(Zhao et al., JACS 2021), J22 (Jing et al., Nat. Chem. 2022), G19 (Goulet et al., JACS
2019), K18 (Kwabi et al., Joule 2018).

Species (docs/physics.md §1.0; ``electrons`` = electrons stored relative to DHAQ2-,
``units`` = quinone units, §2.2):

====  =============================  ======  =========  =====  ======
name  species                        charge  electrons  units  active
====  =============================  ======  =========  =====  ======
O     DHAQ2- (oxidised)              -2      0          1      yes
R     DHAQ3-• (radical)              -3      1          1      yes
H     DHAQ4- (reduced)               -4      2          1      yes
D     diamagnetic dimer O·H ≡ R·R    -6      2          2      yes
A     anthrone DHA2-                 -2      4          1      no
AL    anthranol DHAL2- (tautomer)    -2      4          1      no
A2    anthrone dimer (DHA)2 4-       -4      6          2      no
====  =============================  ======  =========  =====  ======

Reactions (ids of docs/physics.md §2.1):

* ``E``: ``O + 2 e- -> H`` at the electrode, taking the balance of the current
  ``i = I_ch/(F V)`` left by the side reactions; comproportionation then sets R.  (E1 and
  E2 of §2.1 combined: the split between them is irrelevant once C1 is fast.)
* ``HER``: ``2 e- -> 0``, a fraction ``eps_H`` of the charging current (electrons lost
  to H2, [G]).
* ``Dec_ec``: ``H + 2 e- -> A``, a fraction ``eps_dec`` of the charging current
  (Z20 [V] electrochemical decomposition; stoichiometry [D]); switched off smoothly as
  H -> 0 by ``H/(H + K_sw)``.
* ``Ox1``/``Ox2``: J22 recomposition on oxidation, ``2 A -> A2 + 2 e-`` then
  ``A2 -> 2 O + 6 e-`` (1 e- then 3 e- per DHAQ, J22 [V]), fractions ``eps_ox1``/``eps_ox2``
  of the discharge current with switches ``X/(X + K_sw)``; off by default.
* ``C1``: ``O + H <=> 2 R`` (``kc``, ``Kc``), fast (Z20/Z21 mechanism [V]; §1.2).
* ``Dm``: ``O + H <=> D`` with ``r = kD (KD [O][H] - [D])``, fast; ``KD = 0`` (default)
  switches the dimer off (Z21 [V-translated]; §1.2b).
* ``T``: ``A <=> AL`` (``kT``, ``KT``), fast keto/enol tautomerism (Z21, W23, J22 [V]).
* ``Dec_ch``: ``2 H -> A + O`` with event rate ``k_dec [H] + k_dec2 [H]^2`` (G19 [U];
  electron-balanced [D]): each event moves 4 e- from the active pool into A and loses one
  active unit, so the capacity fade is ``k_dec [H]`` (≈ 3.7 %/day at SOC 0.5 with Kc = 0.1
  for the §2.6 placeholder 1e-6 1/s, docs/physics.md §3) and H is consumed at ``2 k_dec [H]``.
* ``SD_O2``: ``H -> O + 2 e-`` (electrons to O2), zero-order electron loss
  ``J_e s/(s + Ks)``, ``s = [R]/2 + [H]`` (docs/physics.md §2.4 [D/G]).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from kinetics.network import Network

__all__ = ["dhaq", "dbeaq", "DEFAULTS", "DBEAQ_DEFAULTS", "DHAQ_TEXT", "DBEAQ_TEXT", "VARIANTS", "NESTING", "mechanism"]

_REACTIONS = """
E:      O + 2 e- -> H ; electrode
HER:    2 e- -> 0 ; electrode ; share = eps_H ; charge ; sink
Dec_ec: H + 2 e- -> A ; electrode ; share = eps_dec*H/(H + K_sw) ; charge ; solvent
Ox1:    2 A -> A2 + 2 e- ; electrode ; share = eps_ox1*(A + AL)/(A + AL + K_sw) ; discharge ; solvent
Ox2:    A2 -> 2 O + 6 e- ; electrode ; share = eps_ox2*A2/(A2 + K_sw) ; discharge ; solvent
C1:     O + H <=> 2 R ; kc, Kc ; fast
Dm:     O + H <=> D ; kD, KD ; fast ; rate = kD*(KD*O*H - D)
T:      A <=> AL ; kT, KT ; fast
Dec_ch: 2 H -> A + O ; k_dec ; rate = k_dec*H + k_dec2*H**2 ; solvent
SD_O2:  H -> O + 2 e- ; J_e ; rate = J_e/2*(R/2 + H)/(R/2 + H + Ks)
"""

_COMMON_PARAMS = """
param kc      = 1e8   1/(M*s) [ASSUMED] : comproportionation O + H -> 2R rate constant (docs/physics.md §2.6; full model only)
param k1      = 1e8   1/(M*s) [ASSUMED] : self-exchange R + O (NMR observation model only; Meisel range [V])
param k2      = 1e8   1/(M*s) [ASSUMED] : self-exchange R + H (Z21 determined it [V-translated]; value NOT FOUND)
param KD      = 0     1/M     [ASSUMED] : dimer constant [D]/([O][H]); 0 = off, 5 to switch on (docs/physics.md §1.2b, §2.6)
param kD      = 1e6   1/s     [ASSUMED] : dimer dissociation rate constant (full model only)
param KT      = 1     -       [ASSUMED] : tautomer constant [AL]/[A] (K_T NOT FOUND, docs/physics.md §2.1)
param kT      = 1e3   1/s     [ASSUMED] : tautomerisation rate constant A -> AL (full model only)
param k_dec2  = 0     1/(M*s) [ASSUMED] : second-order Dec-ch rate constant, events k_dec2 [H]^2 (docs/physics.md §2.3)
param eps_dec = 0     -       [ASSUMED] : fraction of the charging current into Dec-ec (H + 2e- -> A)
param J_e     = 1e-9  M/s     [ASSUMED] : O2 self-discharge electron flux, zero order (docs/physics.md §2.4, §2.6)
param Ks      = 1e-3  M       [ASSUMED] : switch constant of the O2 self-discharge, s/(s + Ks) (docs/physics.md §2.4)
param nu_O2   = 4     -       [D]       : electrons per O2 (2 or 4); bookkeeping only, O2 is not tracked (docs/physics.md §2.4)
param eps_H   = 0     -       [ASSUMED] : fraction of the charging current lost to HER (docs/physics.md §2.1)
param eps_ox1 = 0     -       [ASSUMED] : fraction of the discharge current into Ox1, 2A -> A2 + 2e- (J22; off)
param eps_ox2 = 0     -       [ASSUMED] : fraction of the discharge current into Ox2, A2 -> 2O + 6e- (J22; off)
param K_sw    = 1e-4  M       [ASSUMED] : switch constant X/(X + K_sw) of the electrode side reactions
param T       = 298.15 K      [ASSUMED] : temperature (used by the observation model)
"""

DHAQ_TEXT = """
# DHAQ anolyte in 1 M KOH (docs/physics.md §1.0, §2.1, §2.2)
species O  charge=-2 electrons=0 units=1 active : DHAQ2-, oxidised (Z21 [V])
species R  charge=-3 electrons=1 units=1 active : DHAQ3-*, radical anion (Z21 [V])
species H  charge=-4 electrons=2 units=1 active : DHAQ4-, reduced (Z21 [V])
species D  charge=-6 electrons=2 units=2 active : diamagnetic dimer O.H = R.R (Z21 [V-translated]; form NOT FOUND)
species A  charge=-2 electrons=4 units=1 inactive : 2,6-dihydroxyanthrone DHA2- (Z21, J22 [V])
species AL charge=-2 electrons=4 units=1 inactive : 2,6-dihydroxyanthranol DHAL2- (Z21, J22 [V])
species A2 charge=-4 electrons=6 units=2 inactive : anthrone dimer (DHA)2 4- (J22 [V])
param Kc      = 0.1   -       [ASSUMED] : comproportionation constant [R]^2/([O][H]); dE = -60 mV (docs/physics.md §1.2, §2.6)
param k_dec   = 1e-6  1/s     [ASSUMED] : first-order Dec-ch, events k_dec [H] (docs/physics.md §2.6; ~3.7 %/day at SOC 0.5)
""" + _COMMON_PARAMS + _REACTIONS

DBEAQ_TEXT = """
# DBEAQ anolyte (K18; same scheme as DHAQ, docs/physics.md §2.5); charges are labels only (NOT FOUND)
species O  charge=-2 electrons=0 units=1 active : DBEAQ, oxidised
species R  charge=-3 electrons=1 units=1 active : DBEAQ radical anion
species H  charge=-4 electrons=2 units=1 active : DBEAQ, reduced
species D  charge=-6 electrons=2 units=2 active : diamagnetic dimer (assumed, as DHAQ)
species A  charge=-2 electrons=4 units=1 inactive : anthrone analogue (assumed)
species AL charge=-2 electrons=4 units=1 inactive : anthranol analogue (assumed)
species A2 charge=-4 electrons=6 units=2 inactive : anthrone dimer analogue (assumed)
param Kc      = 0.1   -       [ASSUMED] : comproportionation constant (DBEAQ dE NOT FOUND, docs/physics.md §2.5)
param k_dec   = 2.3e-9 1/s    [ASSUMED] : first-order Dec-ch; K18 [V] ~0.01 %/day fade -> k_dec*0.5*86400 = 1e-4
""" + _COMMON_PARAMS + _REACTIONS


@lru_cache(maxsize=None)
def _base(which: str) -> Network:
    if which == "dhaq":
        return Network.from_text(DHAQ_TEXT, name="dhaq", source="kinetics.library.dhaq (docs/physics.md §2)")
    return Network.from_text(DBEAQ_TEXT, name="dbeaq", source="kinetics.library.dbeaq (docs/physics.md §2.5, K18)")


def dhaq(**overrides: float) -> Network:
    """The default DHAQ anolyte network (docs/physics.md §2.1, §2.2; defaults §2.6, ASSUMED).

    Parameters
    ----------
    **overrides : float
        New parameter defaults, e.g. ``dhaq(Kc=0.0968, KD=5.0)``; unknown names raise
        ``KeyError``.  Parameters (units): Kc (–), kc (1/(M s)), k1, k2 (1/(M s)),
        KD (1/M), kD (1/s), KT (–), kT (1/s), k_dec (1/s), k_dec2 (1/(M s)), eps_dec (–),
        J_e (M/s), Ks (M), nu_O2 (–), eps_H (–), eps_ox1, eps_ox2 (–), K_sw (M), T (K).

    Returns
    -------
    Network
        ``net.compile()`` gives the model; ``net.describe()`` lists every parameter with
        its unit, default, provenance tag and description.
    """
    return _base("dhaq").with_defaults(**overrides) if overrides else _base("dhaq")


def dbeaq(**overrides: float) -> Network:
    """DBEAQ anolyte: same scheme as :func:`dhaq` with its own placeholders (docs/physics.md §2.5).

    ``k_dec = 2.3e-9 1/s`` reproduces K18's ~0.01 %/day capacity fade [V] at a mean SOC
    of 0.5 (fade rate = k_dec [H]); Kc, k_ex and the rest are ASSUMED (NOT FOUND).
    """
    return _base("dbeaq").with_defaults(**overrides) if overrides else _base("dbeaq")


DEFAULTS: dict[str, float] = dhaq().defaults
"""DHAQ parameter defaults (docs/physics.md §2.6 placeholders, ASSUMED)."""
DBEAQ_DEFAULTS: dict[str, float] = dbeaq().defaults
"""DBEAQ parameter defaults (ASSUMED)."""


# ---------------------------------------------------------------------------- mechanism variants
#: Named mechanism variants (docs/physics.md §2.1, §2.3, §2.4): token -> (reaction lines
#: replacing the base's reactions of the same name, parameter lines replacing or adding
#: parameters, reactions dropped).  Tokens combine with ``+``: ``"dec_H+dimer"``.
#: The decomposition constant is always ``k_dec`` (unit per variant) and every
#: self-discharge flux ``J_e`` (M/s of electrons at the reference SOC) so that the same
#: free parameters fit every variant (``flowcell fit --compare``).
VARIANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # chemical decomposition of the hydroquinone (docs/physics.md §2.1 Dec-ch, §2.3)
    "dec_2H": ((), (), ()),  # the default: 2 H -> A + O, events k_dec [H] + k_dec2 [H]^2
    "dec_2H_2nd": (("Dec_ch: 2 H -> A + O ; k_dec ; rate = k_dec*H**2 ; solvent",),
                   ("param k_dec = 2e-5 1/(M*s) [ASSUMED] : second-order Dec-ch, events k_dec [H]^2",), ()),
    "dec_H": (("Dec_ch: H -> A ; k_dec ; rate = k_dec*H ; solvent ; sink",),
              ("param k_dec = 1e-6 1/s [ASSUMED] : H -> A, 2 e- from an untracked reductant, events k_dec [H]",), ()),
    "dec_H_2nd": (("Dec_ch: H -> A ; k_dec ; rate = k_dec*H**2 ; solvent ; sink",),
                  ("param k_dec = 2e-5 1/(M*s) [ASSUMED] : H -> A (untracked reductant), events k_dec [H]^2",), ()),
    "dec_H_R": (("Dec_ch: H + 2 R -> A + 2 O ; k_dec ; rate = k_dec*H*R/(R + K_sw) ; solvent",),
                ("param k_dec = 1e-6 1/s [ASSUMED] : H -> A with the radical as reductant, events k_dec [H]",), ()),
    # anthrone/anthranol keto-enol tautomer (docs/physics.md §2.1 T)
    "tautomer": ((), (), ()),
    "no_tautomer": ((), (), ("T",)),
    # diamagnetic dimer O.H (docs/physics.md §1.2b): KD on (5 1/M, ASSUMED)
    "dimer": ((), ("param KD = 5 1/M [ASSUMED] : dimer constant [D]/([O][H]) (docs/physics.md §1.2b)",), ()),
    # self-discharge: O2 ingress, zero order (default) vs H2 evolution, first order in H
    "sd_O2": ((), (), ()),
    "sd_H2": (("SD_O2: H -> O + 2 e- ; J_e ; rate = J_e/2*H/0.05 ; sink",),
              ("param J_e = 1e-9 M/s [ASSUMED] : H2-evolution electron flux at [H] = 0.05 M, first order in H",), ()),
}
#: Variants that extend another by one parameter whose boundary value gives it back
#: (token -> (parameter, value that switches it off)): likelihood-ratio test applies.
NESTING: dict[str, tuple[str, float]] = {"dimer": ("KD", 0.0)}


def _merge_lines(base: str, reactions: Sequence[str], params: Sequence[str], drop: Sequence[str]) -> str:
    """Base network text with reactions (by ``name:``) and params (by name) replaced, added or dropped."""
    rx_new = {ln.split(":", 1)[0].strip(): ln for ln in reactions if ":" in ln.split(";")[0]}
    rx_anon = [ln for ln in reactions if ":" not in ln.split(";")[0]]
    par_new = {ln.split()[1]: ln for ln in params}
    out = []
    for ln in base.splitlines():
        s = ln.split("#", 1)[0].strip()
        head = s.split(None, 1)[0] if s else ""
        if head == "param" and s.split()[1] in par_new:
            out.append(par_new.pop(s.split()[1]))
            continue
        name = s.split(":", 1)[0].strip() if (s and head not in ("species", "param") and ":" in s.split(";")[0]) else None
        if name in drop:
            continue
        if name in rx_new:
            out.append(rx_new.pop(name))
            continue
        out.append(ln)
    insert = [i for i, ln in enumerate(out) if ln.strip().startswith("param")]
    at = (insert[-1] + 1) if insert else 0
    out[at:at] = list(par_new.values())
    return "\n".join(out + list(rx_new.values()) + rx_anon)


def mechanism(spec: str | Sequence[str] = "", *, base: str = "dhaq", network: str | None = None,
              **overrides: float) -> Network:
    """A mechanism variant of a library network, or the library network edited by text.

    Parameters
    ----------
    spec : str or sequence of str
        Variant tokens of :data:`VARIANTS`, ``+``-separated (``"dec_H+dimer"``); empty:
        the base network unchanged.
    base : str
        ``"dhaq"`` or ``"dbeaq"``.
    network : str, optional
        Text in the :mod:`kinetics.network` syntax.  With ``species`` lines it is a whole
        network; otherwise its lines edit the base: a ``NAME: ...`` reaction replaces the
        base reaction of that name (or is added), a ``param`` line replaces or adds a
        parameter, ``drop NAME`` removes a reaction.
    **overrides : float
        New parameter defaults.

    Raises
    ------
    KeyError
        An unknown variant token (the message lists the known ones).
    kinetics.network.NetworkError
        The resulting network does not balance or uses unknown names.
    """
    toks = [t.strip() for t in (spec.split("+") if isinstance(spec, str) else spec) if t.strip()]
    bad = [t for t in toks if t not in VARIANTS]
    if bad:
        raise KeyError(f"unknown mechanism variant(s) {bad}; known: {', '.join(VARIANTS)}")
    if base not in ("dhaq", "dbeaq"):
        raise KeyError(f"unknown base network {base!r}; known: dhaq, dbeaq")
    text = DHAQ_TEXT if base == "dhaq" else DBEAQ_TEXT
    for t in toks:
        text = _merge_lines(text, *VARIANTS[t])
    label = "+".join([base] + toks)
    if network:
        lines = [ln.split("#", 1)[0].strip() for ln in network.splitlines()]
        lines = [ln for ln in lines if ln]
        if any(ln.split()[0] == "species" for ln in lines):
            net = Network.from_text(network, name="custom", source="[model] network text")
            return net.with_defaults(**overrides) if overrides else net
        drop = [ln.split()[1] for ln in lines if ln.split()[0] == "drop"]
        params = [ln for ln in lines if ln.split()[0] == "param"]
        rx = [ln for ln in lines if ln.split()[0] not in ("drop", "param")]
        text = _merge_lines(text, rx, params, drop)
        label += "+text"
    net = Network.from_text(text, name=label, source=f"kinetics.library.mechanism({label!r})")
    return net.with_defaults(**overrides) if overrides else net
