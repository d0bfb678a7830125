"""What every ``flowcell`` subcommand shares: exit codes, the help formatter, usage errors."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["EXIT_OK", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INPUT", "EXIT_TEXT", "Formatter", "Usage", "load_config"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INPUT = 0, 1, 2, 3

_EXIT_TEXT = """\
exit codes:
  0  success
  1  the job failed (fit did not converge / missed its targets, demo checks failed)
  2  bad usage, config or protocol (the message names the file and the key)
  3  input files unreadable (the message names the file)
"""

EXIT_TEXT = _EXIT_TEXT


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the epilog's layout and show defaults."""


class Usage(Exception):
    """Bad usage detected after argparse (exit 2)."""


def load_config(path: Path):
    """Read an experiment file (lazy import: ``--help`` must not load numpy)."""
    from flowcell.config import ExperimentConfig
    return ExperimentConfig.from_toml(path)
