"""Physical ranges and the error every bad experiment value or argument raises.

:class:`ConfigError` (exit 2 in the command line) names the file — or
``command line`` for an argument — the key or option, and the problem.
:data:`PARAM_RANGES` holds the physical range of each kinetic-model
parameter; :func:`check_arg` checks a command-line number, :func:`check_output`
an output path before any work starts.  The experiment file's own keys carry
their ranges in :mod:`flowcell.config`.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from ingest.types import IngestError

__all__ = ["COMMAND_LINE", "PARAM_RANGES", "ConfigError", "check_arg", "check_output"]


class ConfigError(IngestError):
    """An experiment config is wrong.

    Attributes
    ----------
    path : Path
        The TOML file (or ``<dict>`` when built from a dictionary).
    key : str
        Dotted key, e.g. ``flow.rate_mL_min``.
    problem : str
    """

    def __init__(self, path: str | Path | None, key: str, problem: str) -> None:
        self.key = key
        super().__init__(path if path is not None else "<dict>", f"[{key}] {problem}")
        self.problem = problem


#: Physical range of each model parameter: (lowest, highest, lowest excluded).
#: Rate constants and fluxes are >= 0, equilibrium and switch constants > 0,
#: current fractions in [0, 1] (docs/physics.md §2.1, §2.6).
PARAM_RANGES: dict[str, tuple[float, float, bool]] = {
    "Kc": (0.0, math.inf, True), "KD": (0.0, math.inf, False), "KT": (0.0, math.inf, True),
    "Ks": (0.0, math.inf, True), "K_sw": (0.0, math.inf, True),
    "kc": (0.0, math.inf, False), "k1": (0.0, math.inf, False), "k2": (0.0, math.inf, False),
    "kD": (0.0, math.inf, False), "kT": (0.0, math.inf, False),
    "k_dec": (0.0, math.inf, False), "k_dec2": (0.0, math.inf, False), "J_e": (0.0, math.inf, False),
    "eps_dec": (0.0, 1.0, False), "eps_H": (0.0, 1.0, False), "eps_ox1": (0.0, 1.0, False),
    "eps_ox2": (0.0, 1.0, False), "nu_O2": (1.0, 4.0, False), "T": (200.0, 500.0, False),
    "g": (1.5, 2.5, False), "w0_Hz": (0.0, math.inf, False), "dE_V": (-2.0, 2.0, False),
}


def _check_param_range(name: str, value: float, src: Path | None, where: str) -> None:
    rng = PARAM_RANGES.get(name)
    if rng is None:
        return
    lo, hi, strict = rng
    if value < lo or (strict and value == lo):
        raise ConfigError(src, where, f"must be {'>' if strict else '>='} {lo:g}, got {value!r}")
    if value > hi:
        raise ConfigError(src, where, f"must be <= {hi:g}, got {value!r}")


#: What :class:`ConfigError` names as the "file" of a command-line argument.
COMMAND_LINE = "command line"


def check_arg(option: str, value: float, *, min: float | None = None, max: float | None = None,
              strict_min: bool = False, unit: str = "") -> float:
    """A command-line number within its physical range, else ConfigError naming the option (exit 2).

    Parameters
    ----------
    option : str
        The option as typed, e.g. ``'--hours'``.
    value : float
    min, max : float, optional
        Allowed range; ``strict_min`` excludes ``min`` itself.
    unit : str
        Unit named in the message.

    Returns
    -------
    float
        ``value``.
    """
    u = f" {unit}" if unit else ""
    if value is None:
        return value
    if not math.isfinite(value):
        raise ConfigError(COMMAND_LINE, option, f"must be finite, got {value!r}")
    if min is not None and (value < min or (strict_min and value == min)):
        raise ConfigError(COMMAND_LINE, option, f"must be {'>' if strict_min else '>='} {min:g}{u}, got {value:g}")
    if max is not None and value > max:
        raise ConfigError(COMMAND_LINE, option, f"must be <= {max:g}{u}, got {value:g}")
    return value


def check_output(path: str | Path, option: str) -> Path:
    """Check, before any work, that an output file or folder can be written.

    The nearest existing folder on the way to ``path`` must take a new file
    (tried with a temporary file, so read-only media are caught even as root),
    and nothing on the way may be a file.  ConfigError naming the option and
    the path otherwise (exit 2).
    """
    p = Path(path).expanduser()
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        if probe == p and p.is_file():
            probe = p.parent  # an existing output file is replaced: its folder must be writable
        else:
            raise ConfigError(COMMAND_LINE, option, f"{p}: {probe} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".flowcell-write-test-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(COMMAND_LINE, option, f"{p}: cannot write in {probe} ({exc.strerror or exc})") from None
    return p
