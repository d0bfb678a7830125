"""Electrolyte screening at scale: many experiments, reprocessed and fitted on any engine.

A *screen* is a set of experiments (each one a folder holding an ``experiment.toml``
config, the raw NMR/EPR folders it names and the potentiostat log, as
:func:`flowcell.simulate.simulator.simulate_experiment` writes it).  :func:`screen`

1. reprocesses the raw files of every experiment (the ingest batch path,
   :func:`ingest.batch.ingest_paths` with :class:`ingest.processing.observables.Extractor`), one
   task per chunk of ``chunk_size`` acquisitions;
2. fits each experiment's kinetic model with the very function ``flowcell fit`` uses,
   :func:`flowcell.fit.pipeline.fit_table`, one task per experiment, and derives the capacity
   fade per day from the fitted model (:func:`capacity_fade_per_day`);
3. optionally fits groups of experiments globally with shared parameters (e.g. the same
   quinone shares ``Kc``), one task per group, through :func:`flowcell.fit.pipeline.fit_tables`
   (the same code as step 2, with several members);
4. writes one comparison table, plots and ``screen_report.md``
   (:mod:`flowcell.screen.report`).

Engines (the same tasks, the same results): ``'serial'`` (in this process),
``'local'`` (:class:`concurrent.futures.ProcessPoolExecutor`, all cores by default) and
``'dask'`` (a ``distributed.LocalCluster`` started here, or an existing scheduler at
``scheduler_address``).  A failed task is retried ``retries`` times and, if it still
fails, reported in :attr:`ScreenResult.failures` without losing the other tasks.

Determinism (serial and parallel tables are identical): chunk boundaries do not depend
on the engine; the NMR phase is found once per experiment (on its first NMR
acquisition) and handed to every chunk, so the rows do not depend on where a chunk
starts; chunk tables are merged in acquisition order; each fit reads its table back
from the cached parquet file, so a first run and a cached rerun fit identical inputs;
the comparison table is built from the cached JSON results, sorted by experiment.

Cache (per experiment, under ``<out>/cache/<experiment>/``): ``table.parquet`` +
``ingest.json`` keyed by the sha256 of the raw-file fingerprints (relative path, size,
``mtime_ns``; or the sha256 of the content with ``content_hash=True``), the experiment
config and observables config text, and the package version; ``fit.json`` keyed by the
ingest key plus the potentiostat fingerprint, model name, free parameters and fit
options.  Rerunning a screen only redoes what changed: touching one raw file of one
experiment reprocesses and refits that experiment only.

Decisions where the issue was silent (ASSUMED, documented here): fingerprints use
``mtime_ns`` by default (stat only: cheap for thousands of files; a touched file counts
as changed); the capacity fade is the % of active quinone lost in ``fade_days`` (1) day
of rest from SOC ``fade_soc`` (0.5) with the fitted parameters, its interval from the
corners of the k_dec / J_e 95 % intervals (science.md §2.1 Dec-ch, §2.4; §3 gives
4.3 %/day for DHAQ, 0.01 %/day for DBEAQ as references); a global (group) fit starts
from each member's best values of its own fit and applies the same sigma rules as a
single fit (:mod:`flowcell.fit.pipeline`), and members at another temperature get the BMS
factor scaled by T_ref/T (:func:`fit_group`); a group needs at least two fitted members.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import re
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "CACHE_SCHEMA",
    "ExperimentEntry",
    "Task",
    "TaskOutcome",
    "TaskFailure",
    "ScreenResult",
    "SerialExecutor",
    "LocalExecutor",
    "DaskExecutor",
    "make_executor",
    "run_tasks",
    "find_experiments",
    "ingest_key",
    "fit_key",
    "capacity_fade_per_day",
    "phase_task",
    "reprocess_chunk",
    "fit_experiment",
    "fit_group",
    "screen",
    "simulate_screen",
    "add_screen_subcommand",
    "run_screen",
    "main",
]

#: Bump when the cached content changes meaning (invalidates every cache).
CACHE_SCHEMA = 2
#: Default free parameters of a per-experiment fit (same as ``flowcell fit``).
DEFAULT_FREE: tuple[str, ...] = ("Kc", "k_dec", "J_e")
SECONDS_PER_DAY = 86400.0


# ============================================================================ small helpers
def package_version() -> str:
    """Version of the installed ``flowcell`` distribution (or of ``pyproject.toml``)."""
    try:
        from importlib.metadata import version
        return version("flowcell")
    except Exception:  # not installed: read the project file next to the package
        py = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            m = re.search(r'^version\s*=\s*"([^"]+)"', py.read_text(encoding="utf-8"), re.M)
            return m.group(1) if m else "unknown"
        except OSError:
            return "unknown"


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fingerprints(paths: Iterable[Path | None], root: Path, content_hash: bool) -> list[list[Any]]:
    """Sorted ``[relative path, size, mtime_ns or sha256]`` of every file under ``paths``."""
    out: list[list[Any]] = []
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        files = [p] if p.is_file() else (sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [])
        for f in files:
            st = f.stat()
            try:
                rel = str(f.resolve().relative_to(root.resolve()))
            except ValueError:
                rel = str(f.resolve())
            out.append([rel, int(st.st_size), _file_sha(f) if content_hash else int(st.st_mtime_ns)])
    if not out and paths:
        out.append(["<missing>", 0, 0])
    return sorted(out)


def _text(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return f"<unreadable {path}>"


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    from kinetics.fit import jsonable

    tmp.write_text(json.dumps(jsonable(obj, nan_to_none=False), indent=1, allow_nan=True), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ============================================================================ experiments
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


def _entries(configs: Sequence[Path]) -> tuple[list[ExperimentEntry], list[tuple[Path, str]]]:
    from flowcell.config import ExperimentConfig
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


def _load_cfg(config_path: str | Path) -> Any:
    from flowcell.config import ExperimentConfig
    return ExperimentConfig.from_toml(config_path)


def _raw_dirs(cfg: Any) -> list[Path]:
    return [Path(d) for d in (cfg.instruments.nmr_dir, cfg.instruments.epr_dir) if d is not None]


def ingest_key(config_path: str | Path, *, content_hash: bool = False) -> str:
    """Cache key of an experiment's reprocessed table.

    sha256 of: the raw-file fingerprints under ``nmr_dir`` and ``epr_dir`` (relative
    path, size, ``mtime_ns`` or content sha256), the experiment TOML text, the
    observables TOML text (when referenced), the package version and
    :data:`CACHE_SCHEMA`.
    """
    cfg = _load_cfg(config_path)
    folder = Path(config_path).parent
    obs_ref = getattr(getattr(cfg, "observables", None), "config", None)
    return _sha({"stage": "ingest", "schema": CACHE_SCHEMA, "version": package_version(),
                 "files": _fingerprints(_raw_dirs(cfg), folder, content_hash),
                 "config": _text(Path(config_path)), "observables": _text(obs_ref)})


def fit_key(config_path: str | Path, table_key: str, options: Mapping[str, Any], *,
            content_hash: bool = False) -> str:
    """Cache key of an experiment's fit: the ingest key + potentiostat fingerprint,
    config text, model name, free parameters, fit options and package version."""
    cfg = _load_cfg(config_path)
    folder = Path(config_path).parent
    pot = cfg.instruments.potentiostat
    return _sha({"stage": "fit", "schema": CACHE_SCHEMA, "version": package_version(), "table": table_key,
                 "potentiostat": _fingerprints([pot], folder, content_hash) if pot else None,
                 "truth": _fingerprints([folder / "truth" / "truth.json"], folder, content_hash),
                 "config": _text(Path(config_path)), "model": cfg.model.name, "options": dict(options)})


# ============================================================================ task functions
def _obs_cfg(config_path: str | Path) -> Any:
    from flowcell.fit.pipeline import observables_config
    return observables_config(_load_cfg(config_path))


def phase_task(config_path: str, first_nmr: str | None) -> tuple[float, float] | None:
    """Auto-phase of an experiment's first NMR acquisition, (p0_deg, p1_deg), or None.

    Every chunk of the experiment then uses this phase, so the rows do not depend on
    how the acquisitions are chunked (the batch path phases the first spectrum and
    reuses that phase too, ``ingest.processing.observables.Extractor``).
    """
    if first_nmr is None:
        return None
    from ingest.processing.observables import Extractor
    from ingest.readers.dispatch import read_rows
    ex = Extractor(_obs_cfg(config_path))
    for spec in read_rows(first_nmr):
        ex(spec)
        if ex.phase is not None:
            return (float(ex.phase[0]), float(ex.phase[1]))
    return None


def reprocess_chunk(config_path: str, paths: Sequence[str], phase: tuple[float, float] | None
                    ) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Reprocess one chunk of acquisitions (the ingest batch path).

    Parameters
    ----------
    config_path : str
        The experiment TOML (observables config and EPR calibration come from it).
    paths : list of str
        Acquisition paths (Bruker expno folders, .DTA files ...), in acquisition order.
    phase : (p0_deg, p1_deg) or None
        NMR phase of the experiment (:func:`phase_task`).

    Returns
    -------
    table : DataFrame
        One row per spectrum (docs/architecture.md columns).
    skipped : list of (path, reason)
        Unreadable acquisitions (they do not fail the task).
    """
    from ingest.batch import ingest_paths
    from ingest.processing.observables import Extractor
    res = ingest_paths(list(paths), extractor=Extractor(_obs_cfg(config_path), phase=phase))
    return res.table, [(str(p), str(r)) for p, r in res.skipped]


@lru_cache(maxsize=None)
def _model(name: str, reduce_fast: bool = True) -> Any:
    from kinetics import library
    return getattr(library, name)().compile(reduce_fast=reduce_fast)


def _truth(folder: Path) -> dict[str, float]:
    d = _read_json(folder / "truth" / "truth.json")
    if not d or "params" not in d:
        return {}
    return {k: float(v) for k, v in d["params"].items()}


def _fixed_params(model: Any, cfg: Any, values: Mapping[str, float]) -> dict[str, float]:
    p = dict(getattr(model, "defaults", {}) or {})
    p.update({k: float(v) for k, v in (cfg.model.params or {}).items()})
    p.update({k: float(v) for k, v in values.items()})
    names = set(getattr(model, "param_names", p))
    return {k: v for k, v in p.items() if k in names}


def capacity_fade_per_day(model: Any, params: Mapping[str, float], *, C_tot_M: float, volume_L: float,
                          soc: float = 0.5, days: float = 1.0) -> float:
    """Capacity fade of a fitted model: % of active quinone lost per day of rest.

    Simulates ``days`` of open-circuit rest from state of charge ``soc`` (initial
    ``[O] = (1 - soc) C_tot``, ``[H] = soc C_tot``) and returns
    ``100 (1 - C_act(t_end)/C_act(0)) / days`` with ``C_act`` the active quinone
    (``SimResult.C_act``, monomer units).  Every decomposition pathway of the model
    acts (Dec-ch: one active unit lost per event at rate ``k_dec [H]``, science.md
    §2.1/§2.2); O2 self-discharge (``J_e``, §2.4) only lowers the SOC and hence slows
    the decomposition.  For ``Kc -> 0`` and ``J_e = 0`` this is
    ``100 soc/2 (1 - exp(-2 k_dec t))`` (§2.3 first-order decay of H, two H per event).

    Parameters
    ----------
    model : kinetics Model
    params : dict
        Model parameters (missing ones take the model defaults).
    C_tot_M : float
        Total quinone, mol/L.
    volume_L : float
        Circulating volume, L.
    soc : float
        State of charge at the start of the rest.
    days : float
        Rest duration, days.

    Returns
    -------
    float
        Fade, %/day.
    """
    t = np.array([0.0, days * SECONDS_PER_DAY])
    y0 = {"O": C_tot_M * (1 - soc), "H": C_tot_M * soc}
    names = set(getattr(model, "param_names", params))
    sim = model.simulate(t, params={k: float(v) for k, v in params.items() if k in names}, y0=y0,
                         current_A=None, volume_L=volume_L)
    c = np.asarray(sim.C_act, float)
    return float(100.0 * (1.0 - c[-1] / c[0]) / days)


def _fade_with_interval(model: Any, fixed: Mapping[str, float], result: Any, cfg: Any,
                        soc: float, days: float) -> dict[str, float]:
    C, V = float(cfg.electrolyte.concentration_M), float(cfg.electrolyte.volume_L)
    best = capacity_fade_per_day(model, fixed, C_tot_M=C, volume_L=V, soc=soc, days=days)
    corners: list[list[tuple[str, float]]] = [[]]
    lo = hi = math.nan
    ok = True
    for name in ("k_dec", "J_e", "k_dec2"):
        if name not in result.values:
            continue
        ci = (result.ci95 or {}).get(name)
        if ci is None or ci[0] is None or ci[1] is None:
            ok = False
            break
        corners = [c + [(name, float(v))] for c in corners for v in ci]
    if ok and corners != [[]]:
        vals = []
        for c in corners:
            p = dict(fixed)
            p.update(dict(c))
            vals.append(capacity_fade_per_day(model, p, C_tot_M=C, volume_L=V, soc=soc, days=days))
        lo, hi = float(min(vals + [best])), float(max(vals + [best]))
    return {"value": best, "lo": lo, "hi": hi}


def fit_experiment(config_path: str, table_path: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Fit one experiment (the ``flowcell fit`` path) and derive its capacity fade.

    Parameters
    ----------
    config_path : str
        Experiment TOML.
    table_path : str
        Its reprocessed table (parquet).
    options : dict
        ``free`` (list of str), ``conf_interval`` (bool), ``fade_soc``, ``fade_days``.

    Returns
    -------
    dict
        JSON-ready: ``rows`` (one per free parameter: parameter, value, stderr,
        ci95_lo, ci95_hi, truth, truth_inside, flags), ``fade`` (value, lo, hi in
        %/day), ``redchi``, ``chi2``, ``ndata``, ``success``, ``report``, ``notes``.
    """
    from flowcell.potentiostat import read_potentiostat
    from flowcell.fit.pipeline import fit_table

    cfg = _load_cfg(config_path)
    if cfg.instruments.potentiostat is None:
        from ingest.types import IngestError
        raise IngestError(config_path, "[instruments] potentiostat is not set; a fit needs the current")
    table = pd.read_parquet(table_path)
    model = _model(cfg.model.name, bool(cfg.model.reduce_fast))
    truth = _truth(Path(config_path).parent)
    outcome = fit_table(table, cfg, read_potentiostat(cfg.instruments.potentiostat),
                        free=tuple(options["free"]), model=model, truth=truth or None,
                        conf_interval=bool(options["conf_interval"]))
    r = outcome.result
    fixed = _fixed_params(model, cfg, {k: v for k, v in r.values.items()})
    fade = _fade_with_interval(model, fixed, r, cfg, float(options["fade_soc"]), float(options["fade_days"]))
    fade_true = math.nan
    if truth:
        fade_true = capacity_fade_per_day(model, _fixed_params(model, cfg, truth),
                                          C_tot_M=float(cfg.electrolyte.concentration_M),
                                          volume_L=float(cfg.electrolyte.volume_L),
                                          soc=float(options["fade_soc"]), days=float(options["fade_days"]))
    rows = outcome.table().to_dict(orient="records")
    for row in rows:  # inside: None when there is no truth or no interval to test it against
        known = all(math.isfinite(float(row[k])) for k in ("truth", "ci95_lo", "ci95_hi"))
        row["truth_inside"] = bool(row["ci95_lo"] <= row["truth"] <= row["ci95_hi"]) if known else None
    ins = None
    if math.isfinite(fade_true) and math.isfinite(fade["lo"]):
        ins = bool(fade["lo"] <= fade_true <= fade["hi"])
    rows.append({"parameter": "fade_pct_per_day", "value": fade["value"], "stderr": math.nan,
                 "ci95_lo": fade["lo"], "ci95_hi": fade["hi"], "truth": fade_true, "truth_inside": ins,
                 "flags": "" if math.isfinite(fade["lo"]) else "interval unavailable"})
    try:
        report = r.report()
    except Exception:  # noqa: BLE001 - text only
        report = ""
    return {"rows": rows, "fade": fade, "redchi": float(r.redchi), "chi2": float(r.chi2),
            "ndata": int(r.ndata), "success": bool(r.success), "report": report,
            "sigma": {k: float(np.mean(v)) for k, v in outcome.fit_data.sigma.items()},
            "start": {k: float(v) for k, v in r.values.items()},
            "notes": list(outcome.fit_data.notes), "n_rows": int(len(table))}


def fit_group(members: Sequence[tuple[str, str, str] | tuple[str, str, str, Mapping[str, Any]]],
              options: Mapping[str, Any]) -> dict[str, Any]:
    """Global fit of a group of experiments with shared parameters (a screen task).

    Loads each member's config, reprocessed table and potentiostat log and calls
    :func:`flowcell.fit.pipeline.fit_tables`, the same code path as ``flowcell fit``
    (:func:`flowcell.fit.pipeline.fit_table` is its one-member case): the same tank
    referral, sigma rules (floors, then rescaling to the residual scatter of a first
    group fit), bounds and nuisance parameters (``hdo_ref_ppm`` and ``area_scale``,
    always per experiment).  Members at another temperature or geometry get their own
    BMS factor (see :mod:`flowcell.fit.pipeline`).

    Parameters
    ----------
    members : list of (experiment id, config path, table path[, member fit dict])
        The optional dict is the member's :func:`fit_experiment` result; its ``start``
        (best values of the member's own fit) seeds the group fit.
    options : dict
        ``free`` (list), ``shared`` (list of names shared by the group; the other
        free parameters are per experiment), ``conf_interval`` (bool).

    Returns
    -------
    dict
        ``rows``: one per fitted parameter (``parameter``, ``experiment`` ('' when
        shared), value, stderr, ci95_lo, ci95_hi, truth, truth_inside, flags), plus
        ``redchi``, ``chi2``, ``ndata``, ``success``, ``report``, ``members``.
    """
    from flowcell.fit import pipeline as fitting
    from flowcell.potentiostat import read_potentiostat

    free = list(options["free"])
    shared = [s for s in options["shared"] if s in free]
    items, truths, start = [], {}, {}
    model = None
    for member in members:
        ident, cpath, tpath = member[:3]
        prior: Mapping[str, Any] = member[3] if len(member) > 3 else {}  # type: ignore[misc]
        cfg = _load_cfg(cpath)
        model = model or _model(cfg.model.name, bool(cfg.model.reduce_fast))
        items.append((ident, pd.read_parquet(tpath), cfg, read_potentiostat(cfg.instruments.potentiostat)))
        truths[ident] = _truth(Path(cpath).parent)
        if prior.get("start"):
            start[ident] = {k: float(v) for k, v in prior["start"].items()}
    g = fitting.fit_tables(items, free=free, shared=shared, model=model, start=start,
                           conf_interval=bool(options["conf_interval"]), truth=truths)
    res = g.result
    rows = g.table().sort_values(["parameter", "experiment"], kind="stable").to_dict(orient="records")
    try:
        report = res.report()
    except Exception:  # noqa: BLE001
        report = ""
    return {"rows": rows, "redchi": float(res.redchi), "chi2": float(res.chi2), "ndata": int(res.ndata),
            "success": bool(res.success), "report": report, "members": [m[0] for m in members]}


# ============================================================================ executors
@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(*args)``, labelled for retries and failure reports."""

    key: str
    fn: Callable[..., Any]
    args: tuple
    experiment: str = ""
    stage: str = ""


@dataclass
class TaskOutcome:
    """What became of a task: its value or its last error, and how many attempts it took."""

    task: Task
    ok: bool
    value: Any = None
    error: str = ""
    traceback: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class TaskFailure:
    """A task that failed after all its retries (reported, never silently dropped)."""

    key: str
    experiment: str
    stage: str
    attempts: int
    error: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.stage} task {self.key} ({self.experiment}) failed after {self.attempts} attempt(s): {self.error}"


def _call(fn: Callable[..., Any], args: tuple) -> tuple[bool, Any, str, str]:
    """Run in the worker: never raises, returns (ok, value, error, traceback)."""
    try:
        return True, fn(*args), "", ""
    except Exception as exc:  # noqa: BLE001 - reported to the driver
        return False, None, f"{type(exc).__name__}: {exc}", traceback.format_exc()


class SerialExecutor:
    """Run tasks one after the other in this process (the reference path)."""

    name = "serial"
    workers = 1
    #: Tasks see this process's memory (a model compiled here is reused).
    shares_driver_memory = True

    def __enter__(self) -> "SerialExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release."""

    def run_round(self, tasks: Sequence[Task]) -> list[tuple[bool, Any, str, str]]:
        """Run every task once; results in task order."""
        return [_call(t.fn, t.args) for t in tasks]


class LocalExecutor:
    """All local cores with :class:`concurrent.futures.ProcessPoolExecutor`.

    Parameters
    ----------
    workers : int, optional
        Processes (default ``os.cpu_count()``).
    mp_context : str, optional
        Start method; default ``'fork'`` where available (workers inherit the compiled
        kinetic model of the driver, saving the sympy work per worker), else the
        platform default.
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, mp_context: str | None = None) -> None:
        self.workers = int(workers or os.cpu_count() or 1)
        if mp_context is None and "fork" in multiprocessing.get_all_start_methods():
            mp_context = "fork"
        self.mp_context = mp_context
        self._pool: Any = None
        #: Forked workers inherit the driver's compiled models.
        self.shares_driver_memory = mp_context == "fork"

    def _get_pool(self) -> Any:
        from concurrent.futures import ProcessPoolExecutor
        if self._pool is None:
            ctx = multiprocessing.get_context(self.mp_context) if self.mp_context else None
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        return self._pool

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Shut the worker processes down."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run_round(self, tasks: Sequence[Task]) -> list[tuple[bool, Any, str, str]]:
        """Submit every task once; results in task order.  A dead worker (broken pool)
        fails its tasks for this round; the pool is rebuilt for the retries."""
        from concurrent.futures.process import BrokenProcessPool
        pool = self._get_pool()
        futs = [pool.submit(_call, t.fn, t.args) for t in tasks]
        out = []
        broken = False
        for f in futs:
            try:
                out.append(f.result())
            except BrokenProcessPool as exc:
                broken = True
                out.append((False, None, f"BrokenProcessPool: {exc}", traceback.format_exc()))
            except Exception as exc:  # noqa: BLE001 - e.g. unpicklable result
                out.append((False, None, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        if broken:
            self.close()
        return out


class DaskExecutor:
    """Dask distributed: a ``LocalCluster`` started here, an existing scheduler, or a client.

    Parameters
    ----------
    scheduler_address : str, optional
        ``tcp://host:8786`` of a running scheduler (workers must see the same files).
    workers : int, optional
        Workers of the local cluster (default ``os.cpu_count()``), one thread each.
    processes : bool
        Local cluster with worker processes (default) or threads in this process.
    client : distributed.Client, optional
        Use this client (not closed by :meth:`close`).
    """

    name = "dask"

    def __init__(self, scheduler_address: str | None = None, *, workers: int | None = None,
                 processes: bool = True, client: Any = None) -> None:
        self.scheduler_address = scheduler_address
        self.workers = int(workers or os.cpu_count() or 1)
        self.processes = processes
        self._client = client
        self._own_client = client is None
        self._cluster: Any = None
        #: Threads in this process (or a client given: compiling here is harmless then).
        self.shares_driver_memory = client is not None or (not processes and not scheduler_address)

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (started on first use)."""
        if self._client is None:
            import logging

            from distributed import Client, LocalCluster
            if self.scheduler_address:
                self._client = Client(self.scheduler_address)
            else:
                import warnings
                with warnings.catch_warnings():  # "port 8787 in use": another cluster runs, harmless
                    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
                    self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                 processes=self.processes, dashboard_address=None,
                                                 silence_logs=logging.ERROR)
                self._client = Client(self._cluster)
        return self._client

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and the cluster this executor started."""
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def run_round(self, tasks: Sequence[Task]) -> list[tuple[bool, Any, str, str]]:
        """Submit every task once (``pure=False``: a retry is a new task); results in order."""
        c = self.client
        futs = [c.submit(_call, t.fn, t.args, key=f"{t.key}-{uuid.uuid4().hex[:10]}", pure=False)
                for t in tasks]
        out = []
        for f in futs:
            try:
                out.append(f.result())
            except Exception as exc:  # noqa: BLE001 - worker lost, cancelled ...
                out.append((False, None, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        return out


Executor = SerialExecutor | LocalExecutor | DaskExecutor


def make_executor(kind: str | Executor = "local", *, workers: int | None = None,
                  scheduler_address: str | None = None, processes: bool = True) -> Executor:
    """An executor by name: ``'serial'``, ``'local'`` (default, all cores) or ``'dask'``.

    An executor instance is returned as is.  ``scheduler_address`` implies ``'dask'``.
    """
    if not isinstance(kind, str):
        return kind
    if scheduler_address and kind != "dask":
        kind = "dask"
    if kind == "serial":
        return SerialExecutor()
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "dask":
        return DaskExecutor(scheduler_address, workers=workers, processes=processes)
    raise ValueError(f"unknown executor {kind!r}: choose 'serial', 'local' or 'dask'")


def run_tasks(executor: Executor, tasks: Sequence[Task], *, retries: int = 1,
              log: Callable[[str], None] | None = None) -> list[TaskOutcome]:
    """Run tasks on an executor, retrying failures up to ``retries`` times.

    Returns
    -------
    list of TaskOutcome
        In task order; ``ok`` False for a task that failed on every attempt (its last
        error and traceback kept).  A failure never stops the other tasks.
    """
    outcomes = [TaskOutcome(t, False) for t in tasks]
    pending = list(range(len(tasks)))
    for attempt in range(1, retries + 2):
        if not pending:
            break
        res = executor.run_round([tasks[i] for i in pending])
        still = []
        for i, (ok, value, err, tb) in zip(pending, res):
            o = outcomes[i]
            o.attempts = attempt
            if ok:
                o.ok, o.value, o.error, o.traceback = True, value, "", ""
            else:
                o.error, o.traceback = err, tb
                still.append(i)
                if log is not None:
                    log(f"  task {tasks[i].key} failed (attempt {attempt}): {err}")
        pending = still
    return outcomes


# ============================================================================ the screen
@dataclass
class ScreenResult:
    """Outcome of :func:`screen`.

    Attributes
    ----------
    table : DataFrame
        Comparison table, one row per experiment (sorted by ``experiment``): metadata
        (name, quinone, concentration_M, temperature_K, group, n_spectra, n_skipped,
        status, redchi) then, per fitted parameter ``P`` (``Kc`` –, ``k2`` = k_ex
        1/(M s), ``k_dec`` 1/s, ``J_e`` M/s, ``fade_pct_per_day`` %/day): ``P``,
        ``P_lo``, ``P_hi`` (95 % interval), ``P_err`` (covariance stderr), ``P_true`` and
        ``P_inside`` (simulations with a ``truth/truth.json``), ``P_flags``, ``rank_P``
        (1 = smallest value).  See :func:`flowcell.screen.report.comparison_table`.
    long : DataFrame
        The same, one row per (experiment, parameter).
    groups : DataFrame
        Global-fit rows (group, parameter, experiment ('' if shared), value, ...).
    failures : list of TaskFailure
    recomputed : dict
        Stage -> experiments (or groups) computed in this run (the rest came from the cache).
    timings : dict
        Wall times (s) and counts per stage: ``reprocess_s``, ``n_spectra``,
        ``fit_s``, ``n_fits``, ``group_s``, ``n_groups``, ``total_s``.
    out_dir : Path
    report : Path or None
        ``screen_report.md``.
    experiments : list of ExperimentEntry
    executor : str
    workers : int
    """

    table: pd.DataFrame
    long: pd.DataFrame
    groups: pd.DataFrame
    failures: list[TaskFailure]
    recomputed: dict[str, list[str]]
    timings: dict[str, float]
    out_dir: Path
    report: Path | None = None
    experiments: list[ExperimentEntry] = field(default_factory=list)
    executor: str = ""
    workers: int = 1

    def summary(self) -> str:
        """A few lines for a terminal."""
        t = self.timings
        lines = [f"screen of {len(self.experiments)} experiment(s) on {self.executor} ({self.workers} worker(s)): "
                 f"{int(t.get('n_spectra', 0))} spectra reprocessed in {t.get('reprocess_s', 0):.1f} s, "
                 f"{int(t.get('n_fits', 0))} fit(s) in {t.get('fit_s', 0):.1f} s, total {t.get('total_s', 0):.1f} s"]
        for stage, ids in self.recomputed.items():
            if stage == "group" and not ids and not len(self.groups):
                continue
            lines.append(f"  {stage}: recomputed {len(ids)} ({', '.join(ids) if ids else 'none, all cached'})")
        lines += [f"  FAILED {f}" for f in self.failures]
        if self.report is not None:
            lines.append(f"  report: {self.report}")
        return "\n".join(lines)


def _chunks(seq: Sequence[Any], n: int) -> list[list[Any]]:
    n = max(1, int(n))
    return [list(seq[i:i + n]) for i in range(0, len(seq), n)]


def _group_label(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _check_free(free: Sequence[str], models: Sequence[str]) -> None:
    """Unknown free parameters are a usage error, raised before any task runs."""
    from kinetics import library
    from kinetics.observe import ObservationModel
    if not list(free):
        raise ValueError("no free parameters given")
    known = set(ObservationModel().param_names)
    for m in models:
        known |= set(getattr(library, m)().params)
    bad = [f for f in free if f not in known]
    if bad:
        raise ValueError(f"unknown free parameter(s) {bad}; known: {sorted(known)}")


def screen(experiments: str | Path | Sequence[str | Path], out_dir: str | Path, *,
           executor: str | Executor = "local", workers: int | None = None,
           scheduler_address: str | None = None, free: Sequence[str] = DEFAULT_FREE,
           conf_interval: bool = True, group_by: str | Mapping[str, Sequence[str]] | None = None,
           shared: Sequence[str] = ("Kc",), group_conf_interval: bool | None = None,
           chunk_size: int = 50, retries: int = 1, cache: bool = True, content_hash: bool = False,
           fade_soc: float = 0.5, fade_days: float = 1.0, report: bool = True,
           log: Callable[[str], None] | None = None) -> ScreenResult:
    """Reprocess, fit and compare a set of experiments.

    Parameters
    ----------
    experiments : path or list of paths
        Screen folder(s) or experiment folders / TOML files (:func:`find_experiments`).
    out_dir : path
        Output folder: ``cache/``, ``screen_table.csv``, ``screen_long.csv``,
        ``screen_groups.csv``, ``screen_failures.json``, plots, ``screen_report.md``.
    executor : {'local', 'serial', 'dask'} or executor instance
        Where tasks run (default all local cores).  An instance passed in is not closed.
    workers : int, optional
        Worker processes (default all cores).
    scheduler_address : str, optional
        Run on this Dask scheduler (implies ``executor='dask'``).
    free : sequence of str
        Free kinetic parameters per experiment (``hdo_ref_ppm`` is added, as in
        ``flowcell fit``).
    conf_interval : bool
        Profile-likelihood 95 % intervals (costly; needed for the intervals).
    group_by : str or dict, optional
        Global fits: an :class:`ExperimentEntry` attribute (``'quinone'``,
        ``'concentration_M'``, ``'temperature_K'`` ...) or ``{group: [experiment ids]}``.
        Groups with fewer than two fitted members are skipped.
    shared : sequence of str
        Parameters shared inside a group (the other free ones are per experiment).
    group_conf_interval : bool, optional
        Intervals for the global fits (default ``conf_interval``).
    chunk_size : int
        Acquisitions per reprocessing task.
    retries : int
        Extra attempts of a failed task.
    cache : bool
        Reuse cached tables and fits whose keys still match.
    content_hash : bool
        Fingerprint raw files by sha256 of their content instead of size + mtime_ns.
    fade_soc, fade_days : float
        Capacity-fade definition (:func:`capacity_fade_per_day`).
    report : bool
        Write plots and ``screen_report.md``.
    log : callable, optional
        Progress messages (e.g. ``print``).

    Returns
    -------
    ScreenResult
    """
    from ingest.batch import find_acquisitions
    from ingest.live.store import write_table

    t_all = time.perf_counter()
    say = log or (lambda msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = out / "cache"
    configs = find_experiments(experiments, exclude=[out])
    if not configs:
        where = experiments if isinstance(experiments, (str, Path)) else ", ".join(map(str, experiments))
        raise FileNotFoundError(f"{where}: no experiment.toml found (an experiment is a folder with one)")
    entries, bad = _entries(configs)
    _check_free(free, sorted({e.model for e in entries}))
    failures = [TaskFailure(str(c), c.parent.name, "config", 1, err) for c, err in bad]
    fit_opts = {"free": list(free), "conf_interval": bool(conf_interval), "fade_soc": float(fade_soc),
                "fade_days": float(fade_days)}
    recomputed: dict[str, list[str]] = {"reprocess": [], "fit": [], "group": []}
    timings: dict[str, float] = {}
    failed: dict[str, str] = {}

    ex = make_executor(executor, workers=workers, scheduler_address=scheduler_address)
    own = isinstance(executor, str)
    try:
        # ---------------------------------------------------------------- reprocess
        t0 = time.perf_counter()
        ikeys: dict[str, str] = {}
        todo: list[ExperimentEntry] = []
        acqs: dict[str, tuple[list[str], list[str]]] = {}
        for e in entries:
            try:
                ikeys[e.id] = ingest_key(e.config_path, content_hash=content_hash)
                meta = _read_json(cache_dir / e.id / "ingest.json") if cache else None
                if meta and meta.get("key") == ikeys[e.id] and (cache_dir / e.id / "table.parquet").exists():
                    continue
                cfg = _load_cfg(e.config_path)
                nmr = [str(p) for p in find_acquisitions(cfg.instruments.nmr_dir)] if cfg.instruments.nmr_dir else []
                epr = [str(p) for p in find_acquisitions(cfg.instruments.epr_dir)] if cfg.instruments.epr_dir else []
                acqs[e.id] = (nmr, epr)
                todo.append(e)
            except Exception as exc:  # noqa: BLE001 - e.g. a raw folder missing
                failures.append(TaskFailure(f"scan:{e.id}", e.id, "reprocess", 1, f"{type(exc).__name__}: {exc}"))
                failed[e.id] = "reprocess"
        n_spectra = 0
        if todo:
            say(f"reprocessing {len(todo)} experiment(s) on {ex.name} ...")
            ph_tasks = [Task(f"phase:{e.id}", phase_task, (str(e.config_path), (acqs[e.id][0] or [None])[0]),
                             e.id, "reprocess") for e in todo]
            phases = {}
            for o in run_tasks(ex, ph_tasks, retries=retries, log=say):
                if o.ok:
                    phases[o.task.experiment] = o.value
                else:
                    phases[o.task.experiment] = None  # chunks will auto-phase; noted below
                    failures.append(TaskFailure(o.task.key, o.task.experiment, "reprocess", o.attempts,
                                                o.error, o.traceback))
            ch_tasks = []
            for e in todo:
                nmr, epr = acqs[e.id]
                for j, chunk in enumerate(_chunks(nmr + epr, chunk_size)):
                    ch_tasks.append(Task(f"reprocess:{e.id}:{j:04d}", reprocess_chunk,
                                         (str(e.config_path), chunk, phases.get(e.id)), e.id, "reprocess"))
            results: dict[str, list[TaskOutcome]] = {e.id: [] for e in todo}
            for o in run_tasks(ex, ch_tasks, retries=retries, log=say):
                results[o.task.experiment].append(o)
            for e in todo:
                outs = results[e.id]
                bad_o = [o for o in outs if not o.ok]
                for o in bad_o:
                    failures.append(TaskFailure(o.task.key, e.id, "reprocess", o.attempts, o.error, o.traceback))
                if bad_o or any(f.key == f"phase:{e.id}" for f in failures):
                    failed[e.id] = "reprocess"
                    continue
                tables = [o.value[0] for o in outs if len(o.value[0])]
                skipped = [s for o in outs for s in o.value[1]]
                if not tables:
                    failures.append(TaskFailure(f"reprocess:{e.id}", e.id, "reprocess", 1,
                                                f"no spectra read under {e.folder} ({len(skipped)} skipped)"))
                    failed[e.id] = "reprocess"
                    continue
                from ingest.live.store import tidy
                table = tidy(pd.concat(tables, ignore_index=True).to_dict(orient="records"))
                n_spectra += len(table) + len(skipped)
                d = cache_dir / e.id
                d.mkdir(parents=True, exist_ok=True)
                write_table(table, d / "table.parquet")
                _write_json(d / "ingest.json", {"key": ikeys[e.id], "n_rows": len(table), "skipped": skipped,
                                                "phase": phases.get(e.id), "version": package_version()})
                recomputed["reprocess"].append(e.id)
        timings["reprocess_s"] = time.perf_counter() - t0
        timings["n_spectra"] = float(n_spectra)

        # ---------------------------------------------------------------- fits
        t0 = time.perf_counter()
        fkeys: dict[str, str] = {}
        fit_todo = []
        for e in entries:
            if e.id in failed:
                continue
            meta = _read_json(cache_dir / e.id / "ingest.json") or {}
            fkeys[e.id] = fit_key(e.config_path, meta.get("key", ""), fit_opts, content_hash=content_hash)
            fj = _read_json(cache_dir / e.id / "fit.json") if cache else None
            if fj and fj.get("key") == fkeys[e.id]:
                continue
            fit_todo.append(e)
        if fit_todo:
            say(f"fitting {len(fit_todo)} experiment(s) on {ex.name} ...")
            if getattr(ex, "shares_driver_memory", True):
                tc = time.perf_counter()
                for name in sorted({e.model for e in fit_todo}):  # compile once, before forking
                    try:
                        _model(name)
                    except Exception:  # noqa: BLE001 - the fit task reports it
                        pass
                timings["compile_s"] = time.perf_counter() - tc
                t0 += timings["compile_s"]
            tasks = [Task(f"fit:{e.id}", fit_experiment,
                          (str(e.config_path), str(cache_dir / e.id / "table.parquet"), fit_opts), e.id, "fit")
                     for e in fit_todo]
            for o in run_tasks(ex, tasks, retries=retries, log=say):
                eid = o.task.experiment
                if o.ok:
                    _write_json(cache_dir / eid / "fit.json", dict(o.value, key=fkeys[eid]))
                    recomputed["fit"].append(eid)
                else:
                    failures.append(TaskFailure(o.task.key, eid, "fit", o.attempts, o.error, o.traceback))
                    failed[eid] = "fit"
                    try:
                        (cache_dir / eid / "fit.json").unlink()
                    except FileNotFoundError:
                        pass
        timings["fit_s"] = time.perf_counter() - t0
        timings["n_fits"] = float(len(recomputed["fit"]))

        # ---------------------------------------------------------------- group fits
        t0 = time.perf_counter()
        group_of: dict[str, str] = {}
        if isinstance(group_by, Mapping):
            for g, ids in group_by.items():
                for i in ids:
                    group_of[str(i)] = str(g)
        elif group_by:
            for e in entries:
                group_of[e.id] = _group_label(e.attribute(group_by))
        gopts = {"free": list(free), "shared": list(shared),
                 "conf_interval": bool(conf_interval if group_conf_interval is None else group_conf_interval)}
        gtasks, gkeys = [], {}
        for g in sorted(set(group_of.values())):
            members = [e for e in entries if group_of.get(e.id) == g and e.id not in failed]
            if len(members) < 2:
                continue
            gid = re.sub(r"[^\w.-]", "_", g)
            gkeys[g] = _sha({"stage": "group", "fits": [fkeys[m.id] for m in members], "options": gopts})
            gj = _read_json(cache_dir / "_groups" / f"{gid}.json") if cache else None
            if gj and gj.get("key") == gkeys[g]:
                continue
            fits = {m.id: _read_json(cache_dir / m.id / "fit.json") or {} for m in members}
            prior = [{"sigma": fits[m.id].get("sigma"), "start": fits[m.id].get("start")} for m in members]
            gtasks.append(Task(f"group:{gid}", fit_group,
                               ([(m.id, str(m.config_path), str(cache_dir / m.id / "table.parquet"), pr)
                                 for m, pr in zip(members, prior)], gopts), g, "group"))
        if gtasks:
            say(f"global fits of {len(gtasks)} group(s) on {ex.name} ...")
            for o in run_tasks(ex, gtasks, retries=retries, log=say):
                g = o.task.experiment
                gid = re.sub(r"[^\w.-]", "_", g)
                if o.ok:
                    _write_json(cache_dir / "_groups" / f"{gid}.json", dict(o.value, key=gkeys[g], group=g))
                    recomputed["group"].append(g)
                else:
                    failures.append(TaskFailure(o.task.key, g, "group", o.attempts, o.error, o.traceback))
        timings["group_s"] = time.perf_counter() - t0
        timings["n_groups"] = float(len(recomputed["group"]))
    finally:
        if own:
            ex.close()

    # -------------------------------------------------------------------- tables
    from flowcell.screen.report import comparison_table, write_screen_report
    meta_rows, long_rows = [], []
    for e in entries:
        im = _read_json(cache_dir / e.id / "ingest.json") or {}
        fj = _read_json(cache_dir / e.id / "fit.json") if e.id not in failed else None
        status = "ok" if fj else f"failed ({failed.get(e.id, 'fit')})"
        meta_rows.append({"experiment": e.id, "name": e.name, "quinone": e.quinone,
                          "concentration_M": e.concentration_M, "temperature_K": e.temperature_K,
                          "supporting": e.supporting, "group": group_of.get(e.id, ""),
                          "n_spectra": int(im.get("n_rows", 0)) if e.id not in failed else 0,
                          "n_skipped": len(im.get("skipped", [])) if e.id not in failed else 0,
                          "status": status, "redchi": float(fj["redchi"]) if fj else math.nan,
                          "success": bool(fj["success"]) if fj else False})
        for r in (fj or {}).get("rows", []):
            long_rows.append(dict({"experiment": e.id}, **r))
    meta = pd.DataFrame(meta_rows)
    long = pd.DataFrame(long_rows, columns=["experiment", "parameter", "value", "stderr", "ci95_lo", "ci95_hi",
                                            "truth", "truth_inside", "flags"])
    long = long.sort_values(["experiment", "parameter"], kind="stable").reset_index(drop=True)
    table = comparison_table(meta, long)
    grows = []
    for gfile in sorted((cache_dir / "_groups").glob("*.json")) if (cache_dir / "_groups").is_dir() else []:
        gj = _read_json(gfile) or {}
        if gj.get("group") not in gkeys or gj.get("key") != gkeys.get(gj.get("group")):
            continue
        for r in gj.get("rows", []):
            grows.append(dict({"group": gj["group"], "redchi": gj.get("redchi", math.nan)}, **r))
    groups = pd.DataFrame(grows, columns=["group", "parameter", "experiment", "value", "stderr", "ci95_lo",
                                          "ci95_hi", "truth", "truth_inside", "flags", "redchi"])
    table.to_csv(out / "screen_table.csv", index=False)
    long.to_csv(out / "screen_long.csv", index=False)
    groups.to_csv(out / "screen_groups.csv", index=False)
    _write_json(out / "screen_failures.json", [f.__dict__ for f in failures])
    timings["total_s"] = time.perf_counter() - t_all
    res = ScreenResult(table, long, groups, failures, recomputed, timings, out, None, entries, ex.name,
                       int(getattr(ex, "workers", 1)))
    if report:
        res.report = write_screen_report(res, out)
    return res


# ============================================================================ simulated screens
def simulate_screen(out_dir: str | Path, variants: Sequence[Mapping[str, Any]], *, hours: float = 1.5,
                    interval_s: float = 300.0, seed: int = 0, small: bool = True,
                    start: Any = None) -> dict[str, Any]:
    """Write a screen of simulated experiments (one folder per variant) for tests and demos.

    Each experiment is :func:`flowcell.simulate.simulator.simulate_experiment` of the demo cell
    (``flowcell/data/demo_experiment.toml``, ASSUMED numbers, science.md §2.6) under the
    demo protocol (rest / charge / rest / discharge over ``hours``).

    Parameters
    ----------
    out_dir : path
        Screen folder; experiment ``i`` goes to ``<out_dir>/<name>``.
    variants : list of dict
        ``name`` (folder and experiment name), ``params`` (true kinetic parameters,
        e.g. ``{"k_dec": 3e-6, "Kc": 0.1}``), optional ``temperature_K``,
        ``concentration_M``, ``quinone``, ``seed``.
    hours : float
        Simulated duration, h.
    interval_s : float
        Time between spectrum pairs, s.
    seed : int
        Base noise seed (variant ``i`` uses ``seed + i`` unless it gives its own).
    small : bool
        Small acquisitions (4096-point FIDs, 1024-point EPR sweeps) for speed.
    start : datetime, optional
        Experiment start (default 2026-01-01 UTC, fixed for reproducible files).

    Returns
    -------
    dict
        name -> :class:`flowcell.simulate.simulator.SimulationTruth`.
    """
    from dataclasses import replace
    from datetime import datetime, timezone

    from ingest.processing.observables import ObservablesConfig

    from flowcell.demo import demo_protocol, load_demo_config
    from flowcell.simulate.simulator import EPRSettings, NMRSettings, simulate_experiment

    base = load_demo_config()
    st = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
    out: dict[str, Any] = {}
    for i, v in enumerate(variants):
        name = str(v["name"])
        el = replace(base.electrolyte, **{k: v[k] for k in ("temperature_K", "concentration_M", "quinone") if k in v})
        cfg = replace(base, experiment=replace(base.experiment, name=name), electrolyte=el)
        model = _model(cfg.model.name, bool(cfg.model.reduce_fast))
        kw: dict[str, Any] = {}
        if small:
            kw.update(nmr=NMRSettings(td=4096), epr=EPRSettings(n_points=1024))
        out[name] = simulate_experiment(
            cfg, demo_protocol(hours, C_tot_M=el.concentration_M, volume_L=el.volume_L), model,
            Path(out_dir) / name, seed=int(v.get("seed", seed + i)), params=dict(v.get("params", {})),
            interval_s=interval_s, start=st, obs_peaks_cfg=ObservablesConfig.default(), **kw)
    return out


# ============================================================================ command line
def add_screen_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``flowcell screen`` to an ``argparse`` subparsers object (``flowcell.cli``).

    The parser's ``func`` default is :func:`run_screen`.
    """
    p = subparsers.add_parser(
        "screen", help="reprocess, fit and compare many experiments (local cores or Dask)",
        description="Screen a folder (or list) of experiments: reprocess raw NMR/EPR files, fit each "
                    "experiment's kinetic model (and groups globally), write a comparison table and report. "
                    "An experiment is a folder with an experiment TOML, its raw NMR/EPR folders and a "
                    "potentiostat log (what `flowcell simulate` writes). Results are cached per experiment: "
                    "a rerun redoes only experiments whose raw files, model or options changed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  flowcell screen runs/ -o screen/                      # all local cores\n"
               "  flowcell screen runs/ -o screen/ --executor dask -j 2 # a local Dask cluster\n"
               "  flowcell screen runs/ --scheduler tcp://host:8786     # an existing Dask scheduler\n"
               "  flowcell screen runs/ --group-by quinone --shared Kc  # global fits, shared Kc\n"
               "  flowcell screen runs/ --free Kc,k_dec,J_e,k1,kc       # add exchange rates (needs visible lines)\n\n"
               "exit codes: 0 ok, 1 a task failed (the others are kept and reported), 2 bad usage, "
               "3 no experiment found")
    p.add_argument("experiments", nargs="+", type=Path, help="screen folder(s), experiment folders or TOML files")
    p.add_argument("-o", "--out", type=Path, default=None, help="output folder (default ./flowcell-screen)")
    p.add_argument("--executor", choices=("local", "serial", "dask"), default="local",
                   help="where tasks run (default: all local cores)")
    p.add_argument("-j", "--workers", type=int, default=None, help="workers (default: all cores)")
    p.add_argument("--scheduler", dest="scheduler_address", default=None,
                   help="address of a running Dask scheduler (implies --executor dask)")
    p.add_argument("--free", default=",".join(DEFAULT_FREE), help="free parameters, comma-separated")
    p.add_argument("--group-by", default=None,
                   help="global fits over groups: quinone, concentration_M, temperature_K, supporting, model")
    p.add_argument("--shared", default="Kc", help="parameters shared in a group, comma-separated")
    p.add_argument("--no-ci", action="store_true", help="skip profile-likelihood intervals (fast)")
    p.add_argument("--chunk-size", type=int, default=50, help="acquisitions per reprocessing task")
    p.add_argument("--retries", type=int, default=1, help="extra attempts of a failed task")
    p.add_argument("--no-cache", action="store_true", help="recompute everything")
    p.add_argument("--content-hash", action="store_true", help="fingerprint raw files by content (sha256)")
    p.set_defaults(func=run_screen)
    return p


def run_screen(args: argparse.Namespace) -> int:
    """Run ``flowcell screen`` from parsed arguments.

    Returns
    -------
    int
        Exit code as ``flowcell.cli``: 0 every experiment fitted; 1 some task failed
        (the others are in the table) or none could be fitted; 2 usage error (unknown
        executor, parameter or grouping); 3 no experiment found.
    """
    out = args.out or Path.cwd() / "flowcell-screen"
    try:
        res = screen(args.experiments, out, executor=args.executor, workers=args.workers,
                     scheduler_address=args.scheduler_address,
                     free=[s.strip() for s in args.free.split(",") if s.strip()],
                     conf_interval=not args.no_ci, group_by=args.group_by,
                     shared=[s.strip() for s in args.shared.split(",") if s.strip()],
                     chunk_size=args.chunk_size, retries=args.retries, cache=not args.no_cache,
                     content_hash=args.content_hash, log=print)
    except FileNotFoundError as exc:
        print(f"flowcell screen: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:
        print(f"flowcell screen: {exc}", file=sys.stderr)
        return 2
    print(res.summary())
    cols = [c for c in ("experiment", "status", "Kc", "k2", "k_dec", "J_e", "fade_pct_per_day") if c in res.table]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(res.table[cols].to_string(index=False))
    return 1 if (res.failures or not (res.table["status"] == "ok").any()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m flowcell.screen.run ...`` (same arguments as ``flowcell screen``)."""
    ap = argparse.ArgumentParser(prog="flowcell")
    sub = ap.add_subparsers(dest="command", required=True)
    add_screen_subcommand(sub)
    args = ap.parse_args(["screen", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
