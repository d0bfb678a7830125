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
on the engine; the NMR phase is found on each experiment's first NMR acquisition by
whichever worker runs one of its chunks first (once per worker, no separate phase round
that would hold the chunks back), and every chunk's batch engine
(:class:`ingest.processing.batch_nmr.BatchExtractor`) takes its series noise and baseline
mask from that same acquisition, so the rows do not depend on where a chunk starts; chunk tables are merged in acquisition order; each fit reads its table back
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
corners of the k_dec / J_e 95 % intervals (docs/physics.md §2.1 Dec-ch, §2.4; §3 gives
4.3 %/day for DHAQ, 0.01 %/day for DBEAQ as references); a global (group) fit starts
from each member's best values of its own fit and applies the same sigma rules as a
single fit (:mod:`flowcell.fit.pipeline`), and members at another temperature get the BMS
factor scaled by T_ref/T (:func:`fit_group`); a group needs at least two fitted members.

Layout: this module is the driver (:func:`screen`, :class:`ScreenResult`,
:func:`simulate_screen`); the task functions are in :mod:`flowcell.screen.tasks`, the
executors in :mod:`flowcell.screen.executors`, cache keys in :mod:`flowcell.screen.cache`,
experiment discovery in :mod:`flowcell.screen.experiments`, the command line in
:mod:`flowcell.screen.cli` and the tables / report in :mod:`flowcell.screen.report`.
Scheduling: every module a task needs is imported here, before any worker is forked;
all reprocessing chunks of all experiments go out in one round; fits are submitted
longest first (most spectra first), so the slowest fit does not start last.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from flowcell.params import model_network
from flowcell.screen.cache import (
    CACHE_SCHEMA,
    DEFAULT_FREE,
    _read_json,
    _sha,
    _write_json,
    fit_key,
    ingest_key,
    package_version,
)
from flowcell.screen.cache import load_config as _load_cfg
from flowcell.screen.cli import add_screen_subcommand, main, run_screen
from flowcell.screen.executors import (
    DaskExecutor,
    Executor,
    LocalExecutor,
    SerialExecutor,
    Task,
    TaskFailure,
    TaskOutcome,
    make_executor,
    run_tasks,
)
from flowcell.screen.experiments import ExperimentEntry, find_experiments
from flowcell.screen.experiments import experiment_entries as _entries
from flowcell.screen.report import comparison_table, write_screen_report
from flowcell.screen.tasks import (
    _model,
    capacity_fade_per_day,
    fit_experiment,
    fit_group,
    phase_task,
    reprocess_chunk,
)
from ingest.batch import find_acquisitions
from ingest.live.store import tidy, write_table
from ingest.processing.observables import ObservablesConfig
from kinetics.observe import ObservationModel

__all__ = [
    "CACHE_SCHEMA", "ExperimentEntry", "Task", "TaskOutcome", "TaskFailure", "ScreenResult", "SerialExecutor",
    "LocalExecutor", "DaskExecutor", "make_executor", "run_tasks", "find_experiments", "ingest_key", "fit_key",
    "capacity_fade_per_day", "phase_task", "reprocess_chunk", "fit_experiment", "fit_group", "screen",
    "simulate_screen", "add_screen_subcommand", "run_screen", "main",
]


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
    if not list(free):
        raise ValueError("no free parameters given")
    known = set(ObservationModel().param_names)
    for m in models:
        known |= set(model_network(m).params)
    bad = [f for f in free if f not in known]
    if bad:
        raise ValueError(f"unknown free parameter(s) {bad}; known: {sorted(known)}")


@dataclass
class _Run:
    """State shared by the stages of one :func:`screen` call."""

    entries: list[ExperimentEntry]
    cache_dir: Path
    cache: bool
    content_hash: bool
    retries: int
    say: Callable[[str], None]
    failures: list[TaskFailure] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    recomputed: dict[str, list[str]] = field(default_factory=lambda: {"reprocess": [], "fit": [], "group": []})
    timings: dict[str, float] = field(default_factory=dict)

    def fail(self, o: TaskOutcome, experiment: str, stage: str) -> None:
        self.failures.append(TaskFailure(o.task.key, experiment, stage, o.attempts, o.error, o.traceback))


def _reprocess_todo(run: _Run) -> tuple[dict[str, str], list[ExperimentEntry], dict[str, tuple[list[str], list[str]]]]:
    """Ingest keys; experiments whose cached table is stale; their NMR and EPR acquisitions."""
    ikeys: dict[str, str] = {}
    todo: list[ExperimentEntry] = []
    acqs: dict[str, tuple[list[str], list[str]]] = {}
    for e in run.entries:
        try:
            ikeys[e.id] = ingest_key(e.config_path, content_hash=run.content_hash)
            meta = _read_json(run.cache_dir / e.id / "ingest.json") if run.cache else None
            if meta and meta.get("key") == ikeys[e.id] and (run.cache_dir / e.id / "table.parquet").exists():
                continue
            ins = _load_cfg(e.config_path).instruments
            nmr = [str(p) for p in find_acquisitions(ins.nmr_dir)] if ins.nmr_dir else []
            epr = [str(p) for p in find_acquisitions(ins.epr_dir)] if ins.epr_dir else []
            acqs[e.id] = (nmr, epr)
            todo.append(e)
        except Exception as exc:  # noqa: BLE001 - e.g. a raw folder missing
            run.failures.append(TaskFailure(f"scan:{e.id}", e.id, "reprocess", 1, f"{type(exc).__name__}: {exc}"))
            run.failed[e.id] = "reprocess"
    return ikeys, todo, acqs


def _reprocess(run: _Run, ex: Executor, chunk_size: int) -> None:
    """Stage 1: every chunk of every stale experiment in one round; merge and cache per experiment."""
    t0 = time.perf_counter()
    ikeys, todo, acqs = _reprocess_todo(run)
    n_spectra = 0
    if todo:
        run.say(f"reprocessing {len(todo)} experiment(s) on {ex.name} ...")
        tasks = []
        for e in todo:
            nmr, epr = acqs[e.id]
            first = nmr[0] if nmr else None
            for j, chunk in enumerate(_chunks(nmr + epr, chunk_size)):
                tasks.append(Task(f"reprocess:{e.id}:{j:04d}", reprocess_chunk,
                                  (str(e.config_path), chunk, None, first), e.id, "reprocess"))
        results: dict[str, list[TaskOutcome]] = {e.id: [] for e in todo}
        for o in run_tasks(ex, tasks, retries=run.retries, log=run.say):
            results[o.task.experiment].append(o)
        for e in todo:
            n_spectra += _merge_experiment(run, e, results[e.id], ikeys[e.id])
    run.timings["reprocess_s"] = time.perf_counter() - t0
    run.timings["n_spectra"] = float(n_spectra)


def _merge_experiment(run: _Run, e: ExperimentEntry, outs: list[TaskOutcome], key: str) -> int:
    """Merge an experiment's chunk tables (acquisition order) into its cached table; spectra read."""
    bad = [o for o in outs if not o.ok]
    for o in bad:
        run.fail(o, e.id, "reprocess")
    if bad:
        run.failed[e.id] = "reprocess"
        return 0
    tables = [o.value[0] for o in outs if len(o.value[0])]
    skipped = [s for o in outs for s in o.value[1]]
    if not tables:
        run.failures.append(TaskFailure(f"reprocess:{e.id}", e.id, "reprocess", 1,
                                        f"no spectra read under {e.folder} ({len(skipped)} skipped)"))
        run.failed[e.id] = "reprocess"
        return 0
    table = tidy(pd.concat(tables, ignore_index=True).to_dict(orient="records"))
    d = run.cache_dir / e.id
    d.mkdir(parents=True, exist_ok=True)
    write_table(table, d / "table.parquet")
    _write_json(d / "ingest.json", {"key": key, "n_rows": len(table), "skipped": skipped, "phase": None,
                                    "version": package_version()})
    run.recomputed["reprocess"].append(e.id)
    return len(table) + len(skipped)


def _fit(run: _Run, ex: Executor, fit_opts: Mapping[str, Any]) -> dict[str, str]:
    """Stage 2: one fit task per experiment whose cached fit is stale, longest first."""
    t0 = time.perf_counter()
    fkeys: dict[str, str] = {}
    todo: list[tuple[int, ExperimentEntry]] = []
    for e in run.entries:
        if e.id in run.failed:
            continue
        meta = _read_json(run.cache_dir / e.id / "ingest.json") or {}
        fkeys[e.id] = fit_key(e.config_path, meta.get("key", ""), fit_opts, content_hash=run.content_hash)
        fj = _read_json(run.cache_dir / e.id / "fit.json") if run.cache else None
        if not (fj and fj.get("key") == fkeys[e.id]):
            todo.append((int(meta.get("n_rows", 0)), e))
    if todo:
        run.say(f"fitting {len(todo)} experiment(s) on {ex.name} ...")
        if getattr(ex, "shares_driver_memory", True):
            tc = time.perf_counter()
            for name in sorted({e.model for _, e in todo}):  # compile once, before forking
                try:
                    _model(name)
                except Exception:  # noqa: BLE001 - the fit task reports it
                    pass
            run.timings["compile_s"] = time.perf_counter() - tc
            t0 += run.timings["compile_s"]
        todo.sort(key=lambda ne: -ne[0])  # longest first: the slowest fit must not start last
        tasks = [Task(f"fit:{e.id}", fit_experiment,
                      (str(e.config_path), str(run.cache_dir / e.id / "table.parquet"), dict(fit_opts)), e.id, "fit")
                 for _, e in todo]
        for o in run_tasks(ex, tasks, retries=run.retries, log=run.say):
            eid = o.task.experiment
            if o.ok:
                _write_json(run.cache_dir / eid / "fit.json", dict(o.value, key=fkeys[eid]))
                run.recomputed["fit"].append(eid)
            else:
                run.fail(o, eid, "fit")
                run.failed[eid] = "fit"
                (run.cache_dir / eid / "fit.json").unlink(missing_ok=True)
        run.recomputed["fit"].sort()
    run.timings["fit_s"] = time.perf_counter() - t0
    run.timings["n_fits"] = float(len(run.recomputed["fit"]))
    return fkeys


def _group_of(entries: Sequence[ExperimentEntry], group_by: str | Mapping[str, Sequence[str]] | None) -> dict[str, str]:
    if isinstance(group_by, Mapping):
        return {str(i): str(g) for g, ids in group_by.items() for i in ids}
    if group_by:
        return {e.id: _group_label(e.attribute(group_by)) for e in entries}
    return {}


def _groups(run: _Run, ex: Executor, group_of: Mapping[str, str], fkeys: Mapping[str, str],
            gopts: Mapping[str, Any]) -> dict[str, str]:
    """Stage 3: global fits of groups with at least two fitted members; returns group keys."""
    t0 = time.perf_counter()
    gtasks, gkeys = [], {}
    for g in sorted(set(group_of.values())):
        members = [e for e in run.entries if group_of.get(e.id) == g and e.id not in run.failed]
        if len(members) < 2:
            continue
        gid = re.sub(r"[^\w.-]", "_", g)
        gkeys[g] = _sha({"stage": "group", "fits": [fkeys[m.id] for m in members], "options": dict(gopts)})
        gj = _read_json(run.cache_dir / "_groups" / f"{gid}.json") if run.cache else None
        if gj and gj.get("key") == gkeys[g]:
            continue
        fits = {m.id: _read_json(run.cache_dir / m.id / "fit.json") or {} for m in members}
        prior = [{"sigma": fits[m.id].get("sigma"), "start": fits[m.id].get("start")} for m in members]
        gtasks.append(Task(f"group:{gid}", fit_group,
                           ([(m.id, str(m.config_path), str(run.cache_dir / m.id / "table.parquet"), pr)
                             for m, pr in zip(members, prior)], dict(gopts)), g, "group"))
    if gtasks:
        run.say(f"global fits of {len(gtasks)} group(s) on {ex.name} ...")
        for o in run_tasks(ex, gtasks, retries=run.retries, log=run.say):
            g = o.task.experiment
            if o.ok:
                gid = re.sub(r"[^\w.-]", "_", g)
                _write_json(run.cache_dir / "_groups" / f"{gid}.json", dict(o.value, key=gkeys[g], group=g))
                run.recomputed["group"].append(g)
            else:
                run.fail(o, g, "group")
    run.timings["group_s"] = time.perf_counter() - t0
    run.timings["n_groups"] = float(len(run.recomputed["group"]))
    return gkeys


def _tables(run: _Run, group_of: Mapping[str, str], gkeys: Mapping[str, str]
            ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Comparison table, long table and group table from the cached JSON results."""
    meta_rows, long_rows = [], []
    for e in run.entries:
        ok = e.id not in run.failed
        im = _read_json(run.cache_dir / e.id / "ingest.json") or {}
        fj = _read_json(run.cache_dir / e.id / "fit.json") if ok else None
        meta_rows.append({"experiment": e.id, "name": e.name, "quinone": e.quinone,
                          "concentration_M": e.concentration_M, "temperature_K": e.temperature_K,
                          "supporting": e.supporting, "group": group_of.get(e.id, ""),
                          "n_spectra": int(im.get("n_rows", 0)) if ok else 0,
                          "n_skipped": len(im.get("skipped", [])) if ok else 0,
                          "status": "ok" if fj else f"failed ({run.failed.get(e.id, 'fit')})",
                          "redchi": float(fj["redchi"]) if fj else math.nan,
                          "success": bool(fj["success"]) if fj else False})
        long_rows += [dict({"experiment": e.id}, **r) for r in (fj or {}).get("rows", [])]
    long = pd.DataFrame(long_rows, columns=["experiment", "parameter", "value", "stderr", "ci95_lo", "ci95_hi",
                                            "truth", "truth_inside", "flags"])
    long = long.sort_values(["experiment", "parameter"], kind="stable").reset_index(drop=True)
    table = comparison_table(pd.DataFrame(meta_rows), long)
    gdir = run.cache_dir / "_groups"
    grows = []
    for gfile in sorted(gdir.glob("*.json")) if gdir.is_dir() else []:
        gj = _read_json(gfile) or {}
        if gj.get("group") not in gkeys or gj.get("key") != gkeys.get(gj.get("group")):
            continue
        grows += [dict({"group": gj["group"], "redchi": gj.get("redchi", math.nan)}, **r) for r in gj.get("rows", [])]
    groups = pd.DataFrame(grows, columns=["group", "parameter", "experiment", "value", "stderr", "ci95_lo",
                                          "ci95_hi", "truth", "truth_inside", "flags", "redchi"])
    return table, long, groups


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
    t_all = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    configs = find_experiments(experiments, exclude=[out])
    if not configs:
        where = experiments if isinstance(experiments, (str, Path)) else ", ".join(map(str, experiments))
        raise FileNotFoundError(f"{where}: no experiment.toml found (an experiment is a folder with one)")
    entries, bad = _entries(configs)
    if not entries:  # every experiment file is bad: say why, not "unknown free parameter" (exit 2)
        raise ValueError("no usable experiment file:\n  " + "\n  ".join(f"{c}: {err}" for c, err in bad))
    _check_free(free, sorted({e.model for e in entries}))
    run = _Run(entries, out / "cache", cache, content_hash, retries, log or (lambda msg: None))
    run.failures += [TaskFailure(str(c), c.parent.name, "config", 1, err) for c, err in bad]
    fit_opts = {"free": list(free), "conf_interval": bool(conf_interval), "fade_soc": float(fade_soc),
                "fade_days": float(fade_days)}
    gopts = {"free": list(free), "shared": list(shared),
             "conf_interval": bool(conf_interval if group_conf_interval is None else group_conf_interval)}
    group_of = _group_of(entries, group_by)
    ex = make_executor(executor, workers=workers, scheduler_address=scheduler_address)
    try:
        _reprocess(run, ex, chunk_size)
        fkeys = _fit(run, ex, fit_opts)
        gkeys = _groups(run, ex, group_of, fkeys, gopts)
    finally:
        if isinstance(executor, str):
            ex.close()
    table, long, groups = _tables(run, group_of, gkeys)
    table.to_csv(out / "screen_table.csv", index=False)
    long.to_csv(out / "screen_long.csv", index=False)
    groups.to_csv(out / "screen_groups.csv", index=False)
    _write_json(out / "screen_failures.json", [f.__dict__ for f in run.failures])
    run.timings["total_s"] = time.perf_counter() - t_all
    res = ScreenResult(table, long, groups, run.failures, run.recomputed, run.timings, out, None, entries, ex.name,
                       int(getattr(ex, "workers", 1)))
    if report:
        res.report = write_screen_report(res, out)
    return res


# ============================================================================ simulated screens
def simulate_screen(out_dir: str | Path, variants: Sequence[Mapping[str, Any]], *, hours: float = 1.5,
                    interval_s: float = 300.0, seed: int = 0, small: bool = True,
                    start: Any = None, nmr_td: int | None = None) -> dict[str, Any]:
    """Write a screen of simulated experiments (one folder per variant) for tests and demos.

    Each experiment is :func:`flowcell.simulate.simulator.simulate_experiment` of the demo cell
    (``flowcell/data/demo_experiment.toml``, ASSUMED numbers, docs/physics.md §2.6) under the
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
    nmr_td : int, optional
        Complex points of every FID (overrides ``small``'s 4096; e.g. 65536 for benchmarks).

    Returns
    -------
    dict
        name -> :class:`flowcell.simulate.simulator.SimulationTruth`.
    """
    # lazy: the simulator is for tests and demos, not for a screen's workers
    from flowcell.demo import demo_protocol, load_demo_config
    from flowcell.simulate.simulator import (
        EPRSettings,
        NMRSettings,
        simulate_experiment,
    )

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
        if nmr_td is not None:
            kw["nmr"] = NMRSettings(td=int(nmr_td))
        out[name] = simulate_experiment(
            cfg, demo_protocol(hours, C_tot_M=el.concentration_M, volume_L=el.volume_L), model,
            Path(out_dir) / name, seed=int(v.get("seed", seed + i)), params=dict(v.get("params", {})),
            interval_s=interval_s, start=st, obs_peaks_cfg=ObservablesConfig.default(), **kw)
    return out


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
