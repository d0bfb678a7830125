"""The experiments of a screen: finding their configs and describing each one."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from flowcell.config import ExperimentConfig

__all__ = ["ExperimentEntry", "find_experiments", "experiment_entries"]


@dataclass(frozen=True)
class ExperimentEntry:
    """One experiment of a screen.

    Attributes
    ----------
    id : str
        Unique label (folder name, or its relative path when names clash); names the
        cache folder and the table row.
    folder : Path
        Folder of the experiment TOML.
    config_path : Path
    name, quinone : str
        From ``[experiment] name`` and ``[electrolyte] quinone``.
    concentration_M, temperature_K : float
        ``[electrolyte]`` total quinone (mol/L) and temperature (K).
    supporting : str
    model : str
        ``[model] name``.
    """

    id: str
    folder: Path
    config_path: Path
    name: str = ""
    quinone: str = ""
    concentration_M: float = math.nan
    temperature_K: float = math.nan
    supporting: str = ""
    model: str = "dhaq"

    def attribute(self, key: str) -> Any:
        """Value used by ``group_by`` (``quinone``, ``concentration_M``, ``temperature_K`` ...)."""
        if not hasattr(self, key):
            raise ValueError(f"cannot group by {key!r}: choose one of quinone, concentration_M, "
                             "temperature_K, supporting, model, name")
        return getattr(self, key)


def find_experiments(spec: str | Path | Sequence[str | Path], *, config_name: str = "experiment.toml",
                     exclude: Sequence[str | Path] = ()) -> list[Path]:
    """Experiment TOML files of a screen, sorted.

    Parameters
    ----------
    spec : path or list of paths
        A folder holding ``config_name`` (one experiment), a folder of experiment
        folders (searched recursively), a TOML file, or a list of these.
    config_name : str
        File name of the experiment config.
    exclude : paths
        Folders not to search (the screen's own output folder).

    Returns
    -------
    list of Path
        Resolved config paths, sorted, without duplicates.

    Raises
    ------
    FileNotFoundError
        If a given path does not exist.
    """
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    ex = [Path(e).resolve() for e in exclude]
    found: set[Path] = set()
    for it in items:
        p = Path(it)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such experiment folder or config")
        if p.is_file():
            found.add(p.resolve())
        elif (p / config_name).is_file():
            found.add((p / config_name).resolve())
        else:
            for f in p.rglob(config_name):
                r = f.resolve()
                if not any(r.is_relative_to(e) for e in ex):
                    found.add(r)
    return sorted(found)


def experiment_entries(configs: Sequence[Path]) -> tuple[list[ExperimentEntry], list[tuple[Path, str]]]:
    ok: list[tuple[Path, Any]] = []
    bad: list[tuple[Path, str]] = []
    for c in configs:
        try:
            ok.append((c, ExperimentConfig.from_toml(c)))
        except Exception as exc:  # ConfigError names the file and key
            bad.append((c, f"{type(exc).__name__}: {exc}"))
    names = [c.parent.name for c, _ in ok]
    root = Path(os.path.commonpath([str(c.parent) for c, _ in ok])) if ok else Path(".")
    out = []
    for (c, cfg), nm in zip(ok, names):
        ident = nm if names.count(nm) == 1 else re.sub(r"[^\w.-]", "_", str(c.parent.relative_to(root)))
        el = cfg.electrolyte
        out.append(ExperimentEntry(ident, c.parent, c, cfg.experiment.name, el.quinone,
                                   float(el.concentration_M), float(el.temperature_K), el.supporting,
                                   cfg.model.name))
    return out, bad
