"""flowcell: the in-line experiment, simulator, live state of charge and command line.

``flowcell demo`` (see the README) runs the whole chain on a simulated experiment.
The experiment description is :class:`flowcell.config.ExperimentConfig` (one TOML file).
"""

from __future__ import annotations

__version__ = "0.1.0"
