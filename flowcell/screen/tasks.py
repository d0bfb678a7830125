"""The work of a screen, one function per task: reprocess a chunk, fit an experiment, fit a group.

Each task function takes only paths and plain options (picklable for any executor) and
returns plain data; the driver (:mod:`flowcell.screen.run`) caches what they return.
"""

from __future__ import annotations

import math
import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from flowcell.fit.pipeline import fit_table, fit_tables, observables_config
from flowcell.params import known_params, model_network, resolve_params
from flowcell.potentiostat import read_potentiostat
from flowcell.screen.cache import SECONDS_PER_DAY, _read_json
from flowcell.screen.cache import load_config as _load_cfg
from ingest.batch import ingest_paths
from ingest.processing.batch_nmr import BatchExtractor
from ingest.processing.observables import Extractor
from ingest.readers.dispatch import read_rows
from ingest.types import IngestError

__all__ = ["phase_task", "reprocess_chunk", "capacity_fade_per_day", "fit_experiment", "fit_group"]


def _obs_cfg(config_path: str | Path) -> Any:
    return observables_config(_load_cfg(config_path))


def phase_task(config_path: str, first_nmr: str | None) -> tuple[float, float] | None:
    """Auto-phase of an experiment's first NMR acquisition, (p0_deg, p1_deg), or None.

    Every chunk of the experiment then uses this phase, so the rows do not depend on
    how the acquisitions are chunked (the batch path phases the first spectrum and
    reuses that phase too, ``ingest.processing.observables.Extractor``).
    """
    if first_nmr is None:
        return None
    ex = Extractor(_obs_cfg(config_path))
    for spec in read_rows(first_nmr):
        ex(spec)
        if ex.phase is not None:
            return (float(ex.phase[0]), float(ex.phase[1]))
    return None


@lru_cache(maxsize=64)
def _experiment_phase(config_path: str, first_nmr: str, stamp: tuple = ()) -> tuple[float, float] | None:
    """:func:`phase_task`, once per process and experiment (every chunk of an experiment asks);
    ``stamp`` (:func:`_stamp` of both) makes a rewritten file a new experiment."""
    return phase_task(config_path, first_nmr)


def _stamp(*paths: str) -> tuple:
    """(name, mtime_ns, size) of each path and, for a folder (a Bruker expno), of the files in it:
    what a per-process cache keys on besides the paths, so that a long-lived worker (Dask) never
    reuses what it computed from an older version of the files."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((p, st.st_mtime_ns, st.st_size))
            if stat.S_ISDIR(st.st_mode):
                with os.scandir(p) as it:
                    files = [(e.name, e.stat()) for e in it if e.is_file()]
                out += sorted((name, es.st_mtime_ns, es.st_size) for name, es in files)
        except OSError:
            out.append((p, None, None))
    return tuple(out)


#: Extractors primed on an experiment's first NMR acquisition, per process (:func:`_primed`).
_PRIMED: dict[tuple, BatchExtractor] = {}
_PRIMED_MAX = 4


def _primed(config_path: str, first_nmr: str, phase: tuple[float, float] | None, stamp: tuple = ()
            ) -> BatchExtractor:
    """A :class:`BatchExtractor` primed on ``first_nmr`` (its series set up: noise, baseline
    points, precision), once per process and experiment; chunks take
    :meth:`BatchExtractor.primed_copy` of it, so every chunk's rows are those of a fresh
    extractor primed the same way, whichever chunks the process ran before; ``stamp``
    (:func:`_stamp`) makes rewritten files a new key."""
    key = (config_path, first_nmr, phase, stamp)
    base = _PRIMED.get(key)
    if base is None:
        base = BatchExtractor(_obs_cfg(config_path), phase=phase)
        for spec in read_rows(first_nmr):
            base.prime(spec)
        if len(_PRIMED) >= _PRIMED_MAX:
            _PRIMED.pop(next(iter(_PRIMED)))
        _PRIMED[key] = base
    return base


def reprocess_chunk(config_path: str, paths: Sequence[str], phase: tuple[float, float] | None,
                    first_nmr: str | None = None) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Reprocess one chunk of acquisitions (the ingest batch path, :class:`BatchExtractor`).

    Parameters
    ----------
    config_path : str
        The experiment TOML (observables config and EPR calibration come from it).
    paths : list of str
        Acquisition paths (Bruker expno folders, .DTA files ...), in acquisition order.
    phase : (p0_deg, p1_deg) or None
        NMR phase of the experiment (:func:`phase_task`).
    first_nmr : str, optional
        The experiment's first NMR acquisition: when ``phase`` is None, the phase is found
        on it (once per worker process and experiment), so every chunk uses the same phase
        without a separate phase round before the chunks.

    Returns
    -------
    table : DataFrame
        One row per spectrum (docs/architecture.md columns).
    skipped : list of (path, reason)
        Unreadable acquisitions (they do not fail the task).
    """
    stamp = () if first_nmr is None else _stamp(str(config_path), str(first_nmr))
    if phase is None and first_nmr is not None:
        phase = _experiment_phase(str(config_path), str(first_nmr), stamp)
    if first_nmr is None:
        bx = BatchExtractor(_obs_cfg(config_path), phase=phase)
    else:  # the series is set up on the experiment's first spectrum, whatever the chunk
        bx = _primed(str(config_path), str(first_nmr), phase, stamp).primed_copy()
    res = ingest_paths(list(paths), extractor=bx)
    return res.table, [(str(p), str(r)) for p, r in res.skipped]


@lru_cache(maxsize=None)
def _model(name: str, reduce_fast: bool = True) -> Any:
    """The compiled model, with its reduced right-hand side built (numba included when installed),
    so that workers forked after the driver's call inherit it instead of building it each."""
    m = model_network(name).compile(reduce_fast=reduce_fast)
    if m.reduced:
        m._c.reduced_functions(m.param_vector())
    return m


def _truth(folder: Path) -> dict[str, float]:
    d = _read_json(folder / "truth" / "truth.json")
    if not d or "params" not in d:
        return {}
    return {k: float(v) for k, v in d["params"].items()}


def _fixed_params(model: Any, cfg: Any, values: Mapping[str, float]) -> dict[str, float]:
    known = known_params(model.network)
    p = resolve_params(cfg, {k: float(v) for k, v in values.items() if k in known}, network=model.network)
    names = set(model.param_names)
    return {k: v for k, v in p.items() if k in names}


def capacity_fade_per_day(model: Any, params: Mapping[str, float], *, C_tot_M: float, volume_L: float,
                          soc: float = 0.5, days: float = 1.0) -> float:
    """Capacity fade of a fitted model: % of active quinone lost per day of rest.

    Simulates ``days`` of open-circuit rest from state of charge ``soc`` (initial
    ``[O] = (1 - soc) C_tot``, ``[H] = soc C_tot``) and returns
    ``100 (1 - C_act(t_end)/C_act(0)) / days`` with ``C_act`` the active quinone
    (``SimResult.C_act``, monomer units).  Every decomposition pathway of the model
    acts (Dec-ch: one active unit lost per event at rate ``k_dec [H]``, docs/physics.md
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

    cfg = _load_cfg(config_path)
    if cfg.instruments.potentiostat is None:
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
    g = fit_tables(items, free=free, shared=shared, model=model, start=start,
                           conf_interval=bool(options["conf_interval"]), truth=truths)
    res = g.result
    rows = g.table().sort_values(["parameter", "experiment"], kind="stable").to_dict(orient="records")
    try:
        report = res.report()
    except Exception:  # noqa: BLE001
        report = ""
    return {"rows": rows, "redchi": float(res.redchi), "chi2": float(res.chi2), "ndata": int(res.ndata),
            "success": bool(res.success), "report": report, "members": [m[0] for m in members]}
