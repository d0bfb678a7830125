"""Expected ¹H lines of each species: defined once, read by everything.

The simulator's layout (``flowcell.simulate.settings``), the observation model
(``kinetics.observe.DHAQ_PEAKS``), the default extraction windows
(``ingest/data/dhaq_observables.toml``, generated from this table by
:func:`ingest.processing.calibrate.default_observables`) and the calibration
(:func:`ingest.processing.calibrate.calibrate`) all read this table;
``tests/test_peak_layout.py`` checks they agree.

Positions
---------
Every quinone, reduced-form and decomposition-product position below is an
**ASSUMED placeholder** (``placeholder=True``): no ¹H shifts of DHAQ, DBEAQ,
their reduced forms, 2,6-dihydroxyanthrone or -anthranol in 1 M KOH were found
(docs/physics.md §1.4, §1.6).  What is physics and not placeholder: the number
of protons of each environment, the multiplicity implied by the ring
substitution (H1/5 meta-coupled doublet, H3/7 doublet of doublets, H4/8
ortho-coupled doublet, [G]), and that every line of one compartment shares the
same bulk-susceptibility shift (docs/physics.md §1.3), so a whole pattern may
sit offset from these positions (calibration finds that offset).  The
impurity singlets (acetone ~2.2, methanol ~3.3, formamide ~8.0 ppm in water)
are the docs' rough values (docs/physics.md §1.6).  Calibrate on the user's own
spectrum (``flowcell calibrate``) before trusting any number from a window.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MULTIPLICITY_COMPONENTS", "QUINONES", "SPECIES", "Line", "line", "lines_for"]

#: Number of resolved components of each multiplicity (first-order, equal couplings merged).
MULTIPLICITY_COMPONENTS: dict[str, int] = {"s": 1, "d": 2, "t": 3, "q": 4, "dd": 4, "quint": 5, "m": 0}


@dataclass(frozen=True)
class Line:
    """One expected ¹H line (a proton environment, possibly a multiplet).

    Attributes
    ----------
    name : str
        Column stem in the observables table (``dhaq_h1``, ``hdo``, ...).
    species : str
        Species it belongs to (``DHAQ``, ``DHAQ4``, ``water``, ``anthrone``, ...);
        lines of one species must agree in area per proton and (slow exchange)
        width, docs/physics.md §1.4.
    ppm : float
        Expected position, ppm (ASSUMED placeholder when ``placeholder``).
    n_h : int
        Protons behind the line (relative area).
    multiplicity : str
        's', 'd', 't', 'q', 'dd', 'quint', or 'm' (unresolved / unknown).
    j_hz : tuple of float
        Coupling constants, Hz (typical aromatic values, [G]).
    tol_ppm : float
        How far the line may sit from ``ppm`` once the common offset (BMS
        shift, referencing) is removed, ppm.
    role : {'solvent', 'main', 'reduced', 'product', 'impurity'}
        'main': the oxidised quinone at SOC 0 (must be found by calibration);
        'reduced': appears as the battery charges; 'product': decomposition
        products that appear later (docs/physics.md §1.6); 'impurity': inert
        singlets, optional.
    placeholder : bool
        True: the position is an assumption, not a measured or literature value.
    note : str
    """

    name: str
    species: str
    ppm: float
    n_h: int
    multiplicity: str = "s"
    j_hz: tuple[float, ...] = ()
    tol_ppm: float = 0.15
    role: str = "main"
    placeholder: bool = True
    note: str = ""

    @property
    def optional(self) -> bool:
        """A line a SOC-0 spectrum need not show (reduced forms, products, impurities)."""
        return self.role in ("reduced", "product", "impurity")

    @property
    def components(self) -> int:
        """Resolved components expected (0: unknown)."""
        return MULTIPLICITY_COMPONENTS.get(self.multiplicity, 0)


_J_O, _J_M = 8.5, 2.4  # aromatic ortho / meta couplings, Hz [G]

_WATER = (
    Line("hdo", "water", 4.79, 2, "s", (), 0.6, "solvent", False,
         "HDO/H2O; 4.79 ppm at 298 K (Gottlieb); BMS shift +5.3e-3 ppm per mM radical (docs/physics.md §1.3)"),
)

_IMPURITIES = (
    Line("acetone", "acetone", 2.22, 6, "s", (), 0.1, "impurity", False, "impurity singlet (docs/physics.md §1.6)"),
    Line("methanol", "methanol", 3.34, 3, "s", (), 0.1, "impurity", False, "impurity singlet (docs/physics.md §1.6)"),
    Line("formamide", "formamide", 8.05, 1, "s", (), 0.1, "impurity", False, "impurity singlet (docs/physics.md §1.6)"),
)

_DHAQ = (
    Line("dhaq_h1", "DHAQ", 7.45, 2, "d", (_J_M,), 0.4, "main", True, "DHAQ H1/5 (meta to H3)"),
    Line("dhaq_h3", "DHAQ", 7.05, 2, "dd", (_J_O, _J_M), 0.4, "main", True, "DHAQ H3/7"),
    Line("dhaq_h4", "DHAQ", 7.72, 2, "d", (_J_O,), 0.4, "main", True, "DHAQ H4/8 (ortho to H3)"),
    Line("dhaq4_h1", "DHAQ4", 6.55, 2, "d", (_J_M,), 0.4, "reduced", True, "reduced DHAQ4- H1/5"),
    Line("dhaq4_h3", "DHAQ4", 6.25, 2, "dd", (_J_O, _J_M), 0.4, "reduced", True, "reduced DHAQ4- H3/7"),
    Line("dhaq4_h4", "DHAQ4", 6.45, 2, "d", (_J_O,), 0.4, "reduced", True, "reduced DHAQ4- H4/8"),
    Line("anthrone", "anthrone", 3.95, 2, "s", (), 0.2, "product", True,
         "2,6-dihydroxyanthrone C10 CH2, expected near 4 ppm [G] (docs/physics.md §1.6)"),
    Line("anthranol", "anthranol", 5.92, 1, "s", (), 0.2, "product", True,
         "2,6-dihydroxyanthranol aromatic C10-H, position unknown (docs/physics.md §1.6)"),
)

_DBEAQ = (
    Line("dbeaq_h1", "DBEAQ", 7.55, 2, "d", (_J_M,), 0.4, "main", True, "DBEAQ H1/5"),
    Line("dbeaq_h3", "DBEAQ", 7.20, 2, "dd", (_J_O, _J_M), 0.4, "main", True, "DBEAQ H3/7"),
    Line("dbeaq_h4", "DBEAQ", 7.95, 2, "d", (_J_O,), 0.4, "main", True, "DBEAQ H4/8"),
    Line("dbeaq_och2", "DBEAQ", 4.15, 4, "t", (6.5,), 0.4, "main", True, "O-CH2 of the butyrate chains"),
    Line("dbeaq_ch2", "DBEAQ", 2.05, 4, "quint", (6.5,), 0.4, "main", True, "central CH2 of the chains"),
    Line("dbeaq_ch2coo", "DBEAQ", 2.35, 4, "t", (6.5,), 0.4, "main", True, "CH2-COO- of the chains"),
    Line("dbeaq4_h1", "DBEAQ4", 6.70, 2, "d", (_J_M,), 0.4, "reduced", True, "reduced DBEAQ4- H1/5"),
    Line("dbeaq4_h3", "DBEAQ4", 6.40, 2, "dd", (_J_O, _J_M), 0.4, "reduced", True, "reduced DBEAQ4- H3/7"),
    Line("dbeaq4_h4", "DBEAQ4", 6.95, 2, "d", (_J_O,), 0.4, "reduced", True, "reduced DBEAQ4- H4/8"),
)

#: Lines by quinone (water and impurities included in each).
SPECIES: dict[str, tuple[Line, ...]] = {
    "DHAQ": _WATER + _DHAQ + _IMPURITIES,
    "DBEAQ": _WATER + _DBEAQ + _IMPURITIES[:2],
}
#: Quinones known to the table.
QUINONES: tuple[str, ...] = tuple(SPECIES)


def lines_for(quinone: str | None) -> tuple[Line, ...]:
    """Expected lines of ``quinone`` ('DHAQ', 'DBEAQ'; None: water only).

    Raises
    ------
    KeyError
        Unknown quinone (the message lists the known ones).
    """
    if quinone is None:
        return _WATER
    key = str(quinone).upper()
    if key not in SPECIES:
        raise KeyError(f"unknown quinone {quinone!r}; known: {', '.join(QUINONES)}")
    return SPECIES[key]


def line(name: str) -> Line:
    """The line called ``name`` in any species table."""
    for table in SPECIES.values():
        for ln in table:
            if ln.name == name:
                return ln
    raise KeyError(f"no line {name!r}; known: {sorted({ln.name for t in SPECIES.values() for ln in t})}")
