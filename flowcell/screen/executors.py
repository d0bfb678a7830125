"""Where screen tasks run: in this process, on local cores, or on Dask; retries and failures.

All executors run the same :class:`Task` objects and return results in task order.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["Task", "TaskOutcome", "TaskFailure", "SerialExecutor", "LocalExecutor", "DaskExecutor",
           "Executor", "make_executor", "run_tasks"]


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
