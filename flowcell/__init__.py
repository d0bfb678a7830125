"""flowcell: the in-line experiment, simulator, live state of charge and command line.

``flowcell demo`` (see the README) runs the whole chain on a simulated experiment.
The experiment description is :class:`flowcell.config.ExperimentConfig` (one TOML file)::

    import flowcell
    cfg = flowcell.ExperimentConfig.from_toml("experiment.toml")
    log = flowcell.read_potentiostat("cycling.mpt")          # t_s, I_A, Q_C, ...
    params = flowcell.resolve_params(cfg)                     # library <- file <- overrides
    truth = flowcell.simulate_experiment(cfg, protocol, flowcell.compiled_model(cfg), "sim/")

The public names below are imported on first use: ``import flowcell`` (and so
``flowcell --help``) must not load numpy, pandas, scipy or sympy.  Type checkers and
``dir(flowcell)`` see them all.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import distributions
from typing import TYPE_CHECKING, Any

# one version for flowcell, kinetics and ingest: the distribution's ("0+unknown" in a bare source tree)
__version__ = next((d.version for d in distributions(name="flowcell-rfb")), "0+unknown")

#: public name -> module holding it
_HOME = {
    "ExperimentConfig": "flowcell.config",
    "ConfigError": "flowcell.config",
    "resolve_params": "flowcell.params",
    "model_network": "flowcell.params",
    "compiled_model": "flowcell.params",
    "read_potentiostat": "flowcell.potentiostat",
    "Protocol": "flowcell.simulate.protocol",
    "Step": "flowcell.simulate.protocol",
    "ExperimentSimulator": "flowcell.simulate.simulator",
    "SimulationTruth": "flowcell.simulate.simulator",
    "simulate_experiment": "flowcell.simulate.simulator",
    "prepare_fit_data": "flowcell.fit.pipeline",
    "fit_table": "flowcell.fit.pipeline",
    "fit_tables": "flowcell.fit.pipeline",
    "LiveSOC": "flowcell.live.estimator",
    "LiveSession": "flowcell.live.session",
    "run_demo": "flowcell.demo",
    "screen": "flowcell.screen.run",
}

__all__ = ["__version__", *_HOME]

if TYPE_CHECKING:  # real imports for type checkers and IDEs
    from flowcell.config import ConfigError, ExperimentConfig  # noqa: F401
    from flowcell.demo import run_demo  # noqa: F401
    from flowcell.fit.pipeline import fit_table, fit_tables, prepare_fit_data  # noqa: F401
    from flowcell.live.estimator import LiveSOC  # noqa: F401
    from flowcell.live.session import LiveSession  # noqa: F401
    from flowcell.params import compiled_model, model_network, resolve_params  # noqa: F401
    from flowcell.potentiostat import read_potentiostat  # noqa: F401
    from flowcell.screen.run import screen  # noqa: F401
    from flowcell.simulate.protocol import Protocol, Step  # noqa: F401
    from flowcell.simulate.simulator import ExperimentSimulator, SimulationTruth, simulate_experiment  # noqa: F401


def __getattr__(name: str) -> Any:
    # lazy only because `flowcell --help` imports this package and must start fast
    if name in _HOME:
        value = getattr(import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'flowcell' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
