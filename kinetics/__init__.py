"""kinetics: reaction networks written once, sympy-generated models, lmfit fits.

::

    from kinetics import library
    from kinetics.fit import Experiment, fit
    from kinetics.observe import ObservationModel
    model = library.dhaq().compile()       # Network -> Model (sympy work done once, cached)
    sim = model.simulate(t_s, y0={"O": 0.1}, current_A=0.01, volume_L=0.01)
    result = fit(model, [Experiment(...)], free=["Kc", "k_dec", "J_e"], obs=ObservationModel())

Submodules are imported on first use, so ``import kinetics`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "library",
    "Network",
    "Reaction",
    "Species",
    "Model",
    "SimResult",
    "ObservationModel",
    "Experiment",
    "FitResult",
    "estimate_soc",
]

_LAZY = {
    "Network": "kinetics.network",
    "Reaction": "kinetics.network",
    "Species": "kinetics.network",
    "Model": "kinetics.model",
    "SimResult": "kinetics.model",
    "ObservationModel": "kinetics.observe",
    "Experiment": "kinetics.fit",
    "FitResult": "kinetics.fit",
    "estimate_soc": "kinetics.soc",
}


def __getattr__(name: str) -> Any:
    if name == "library":
        return import_module("kinetics.library")
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kinetics' has no attribute {name!r}")
