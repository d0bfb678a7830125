"""kinetics: reaction networks written once, sympy-generated models, lmfit fits.

::

    import kinetics
    model = kinetics.library.dhaq().compile()      # Network -> Model (sympy work done once, cached)
    sim = model.simulate(t_s, y0={"O": 0.1}, current_A=0.01, volume_L=0.01)
    result = kinetics.fit.fit(model, [kinetics.Experiment(...)], free=["Kc", "k_dec", "J_e"],
                              obs=kinetics.ObservationModel())

Physics and conventions: docs/physics.md; layout: docs/architecture.md.
"""

from __future__ import annotations

from importlib.metadata import distributions

# one version for flowcell, kinetics and ingest: the distribution's ("0+unknown" in a bare source tree)
__version__ = next((d.version for d in distributions(name="flowcell-rfb")), "0+unknown")

# after __version__: kinetics.codecache reads it while these load
from kinetics import constants, fit, library
from kinetics.constants import Kc_from_dE, dE_from_Kc
from kinetics.fit import Experiment, FitResult
from kinetics.model import Model, SimResult
from kinetics.network import Network, NetworkError, Reaction, Species
from kinetics.observe import ObservationModel
from kinetics.speciation import radical_fraction, speciate

__all__ = [
    "__version__",
    "constants",
    "library",
    "Network",
    "NetworkError",
    "Reaction",
    "Species",
    "Model",
    "SimResult",
    "ObservationModel",
    "Experiment",
    "FitResult",
    "fit",  # the module kinetics.fit (its function is kinetics.fit.fit)
    "radical_fraction",
    "speciate",
    "Kc_from_dE",
    "dE_from_Kc",
]
