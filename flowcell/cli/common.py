"""What every ``flowcell`` subcommand shares: exit codes, the help formatter, usage errors."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["EXIT_OK", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INPUT", "EXIT_MISFIT", "EXIT_TEXT", "Formatter", "Usage",
           "load_config"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INPUT, EXIT_MISFIT = 0, 1, 2, 3, 4

EXIT_TEXT = """\
exit codes:
  0  success
  1  the job failed (no convergence, missed targets, the live estimate failed, output not writable)
  2  bad usage, config or protocol (the message names the file and the key, or the argument)
  3  input files unreadable (the message names the file)
  4  the fit ran but its residuals say the model does not describe the data (see the report)
"""


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the epilog's layout and show defaults."""


class Usage(Exception):
    """Bad usage detected after argparse (exit 2)."""


def load_config(path: Path):
    """Read an experiment file (lazy import: ``--help`` must not load numpy)."""
    from flowcell.config import ExperimentConfig
    return ExperimentConfig.from_toml(path)
