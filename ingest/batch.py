"""Batch path: a folder of finished files → one tidy table.

``ingest_folder(folder)`` finds every acquisition under a folder
(:func:`ingest.live.completion.discover`: Bruker expnos, Spinsolve folders, BES3T
and ESP pairs, single files), reads each with ``ingest.readers.dispatch.read_rows``,
extracts one row per spectrum with the batch engine
(:class:`ingest.processing.batch_nmr.BatchExtractor`: the numbers of
``ingest.processing.observables.Extractor``, :data:`BATCH_ACQUISITIONS` acquisitions at a
time, optionally in forked ``workers`` with the same table) and returns a tidy pandas table (one row per spectrum, tz-aware UTC times, ``t_s``
seconds since the first spectrum, units in the column names, see
docs/architecture.md).  A file that cannot be read (truncated fid, empty
.DTA, .DSC missing a key, wrong format …) never stops the batch: it is listed
in ``BatchResult.skipped`` with the reason, which names the file.

The same :func:`process_acquisition` is used by the live watcher, so both
paths give the same rows for the same files.

Command line: ``flowcell ingest PATH -o table.parquet [--observables obs.toml]``
(``python -m ingest.batch`` runs the same command).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import queue
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ingest.live.completion import (
    Acquisition,
    acquisition_for,
    check_complete,
    discover,
    sort_key,
)
from ingest.live.store import tidy
from ingest.processing import zf_fft_nb
from ingest.processing.batch_nmr import BatchExtractor
from ingest.processing.batch_series import series_key
from ingest.processing.lorentz_batch import load_compiled
from ingest.processing.numba_switch import numba_switch
from ingest.processing.observables import Extractor as _Extractor
from ingest.processing.observables import ObservablesConfig
from ingest.readers.bruker_words import recycled_arrays
from ingest.readers.dispatch import read_rows
from ingest.readers.stored_fid import deferred_fids
from ingest.types import IngestError, NMRSpectrum

__all__ = [
    "BatchResult",
    "find_acquisitions",
    "ingest_folder",
    "ingest_paths",
    "main",
    "make_extractor",
    "process_acquisition",
]

Reader = Callable[[Path], list]
Extractor = Callable[[Any], dict]


@dataclass
class BatchResult:
    """Result of a batch ingest.

    Attributes
    ----------
    table : DataFrame
        One row per spectrum (docs/architecture.md columns), sorted by
        ``time_mid``, with ``t_s`` (s since the first spectrum).
    skipped : list of (Path, str)
        Acquisitions set aside and why (the reason names the file).
    """

    table: pd.DataFrame
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for a terminal: counts, time span, skipped files."""
        t = self.table
        lines = [f"{len(t)} spectra"]
        if len(t) and "kind" in t.columns:
            lines[0] += " (" + ", ".join(f"{k}: {v}" for k, v in t["kind"].value_counts().sort_index().items()) + ")"
        if len(t) and "time_mid" in t.columns and t["time_mid"].notna().any():
            lines.append(f"from {t['time_mid'].min()} to {t['time_mid'].max()} ({t['t_s'].max():.1f} s)")
        lines.append(f"{len(self.skipped)} skipped")
        lines += [f"  skipped {p}: {r}" for p, r in self.skipped]
        return "\n".join(lines)


def make_extractor(cfg: Any = None) -> Extractor:
    """The default row extractor: ``ingest.processing.observables.Extractor(cfg)``.

    ``cfg`` may be an ``ObservablesConfig``, a path to its TOML, or None
    (package default).
    """
    if isinstance(cfg, (str, Path)):
        cfg = ObservablesConfig.from_toml(cfg)
    return _Extractor(cfg)


def _default_reader(path: Path) -> list:
    return read_rows(path)


def find_acquisitions(folder: str | Path) -> list[Path]:
    """Acquisitions under ``folder`` in acquisition order.

    Returns
    -------
    list of Path
        The path to read each one by (expno folder, Spinsolve folder, .DTA,
        .spc or file), ordered by header time then natural path order.
    """
    return [a.read_path for a in sorted(discover(folder), key=sort_key)]


def process_acquisition(
    acq: Acquisition | str | Path,
    extractor: Extractor,
    *,
    reader: Reader | None = None,
) -> list[dict]:
    """Read one acquisition and extract its rows.

    Parameters
    ----------
    acq : Acquisition or path-like
    extractor : callable
        spectrum → row dict.
    reader : callable, optional
        path → list of 1D spectra (default ``ingest.readers.dispatch.read_rows``).

    Returns
    -------
    list of dict
        One row per spectrum; ``source`` set to the acquisition path when the
        extractor leaves it empty.

    Raises
    ------
    IngestError
        For any failure, naming the file (reader errors pass through; other
        exceptions from the extractor are wrapped with their type).
    """
    if not isinstance(acq, Acquisition):
        a = acquisition_for(acq)
        if a is None:
            raise IngestError(acq, "not an acquisition (unknown or side file)")
        acq = a
    spectra = _read_spectra(acq, reader)
    rows = []
    for s in spectra:
        try:
            row = dict(extractor(s))
        except IngestError:
            raise
        except Exception as e:
            raise IngestError(acq.read_path, f"observables failed ({type(e).__name__}: {e})") from e
        row.setdefault("source", str(acq.key))
        if not row.get("source"):
            row["source"] = str(acq.key)
        rows.append(row)
    return rows


def _read_spectra(acq: Acquisition, reader: Reader | None) -> list:
    """The spectra of one acquisition; any failure is an IngestError naming the file."""
    reader = reader or _default_reader
    try:
        spectra = reader(acq.read_path)
    except IngestError:
        raise
    except Exception as e:  # a reader bug must not stop the batch
        raise IngestError(acq.read_path, f"could not be read ({type(e).__name__}: {e})") from e
    if not spectra:
        raise IngestError(acq.read_path, "no spectra in file")
    return spectra


#: Acquisitions read before one batch of rows is extracted (bounds the memory held in FIDs;
#: also the unit of work handed to a forked worker: small enough that the workers finish
#: together, two FFT chunks of :data:`ingest.processing.batch_nmr.DEFAULT_CHUNK` spectra).
BATCH_ACQUISITIONS = 32
#: Formats whose first acquisition ends the first block: it runs in this process before any
#: worker starts and sets the NMR phase and the series every worker shares (meanwhile the
#: other cores idle, so it is kept short).
_NMR_FORMATS = ("bruker", "bruker-ser", "spinsolve")
#: From this many acquisitions on, the compiled line fits are loaded (numba, when installed:
#: ~1 s to start in a new process, ~5 ms saved per spectrum; same optimum as the numpy fits).
COMPILE_FROM = 200


def _use_compiled(n_acquisitions: int) -> bool:
    """Load the compiled line fits?  ``FLOWCELL_NUMBA=1``: yes, ``0``: no, unset: from
    :data:`COMPILE_FROM` acquisitions on (docs/conventions.md, "Compiled code: FLOWCELL_NUMBA")."""
    switch = numba_switch()
    return switch if switch is not None else n_acquisitions >= COMPILE_FROM


def _process_batch(acqs: Sequence[Acquisition], extractor: BatchExtractor, reader: Reader | None,
                   skipped: list[tuple[Path, str]]) -> list[dict]:
    """Rows of a few acquisitions through the batch engine (:class:`BatchExtractor`).

    Unreadable acquisitions are skipped as in :func:`process_acquisition`.  Should the
    batch fail, each acquisition is redone on its own, so the error names its file.
    """
    spectra: list = []
    owner: list[Acquisition] = []
    for a in acqs:
        try:
            sp = _read_spectra(a, reader)
        except IngestError as e:
            skipped.append((a.read_path, str(e)))
            continue
        spectra += sp
        owner += [a] * len(sp)
    try:
        rows = extractor.rows(spectra)
    except Exception:  # noqa: BLE001 - find the culprit acquisition by acquisition
        rows = []
        for a in dict.fromkeys(owner):
            mine = [s for s, o in zip(spectra, owner) if o is a]
            try:
                rows += process_acquisition(a, extractor.extractor, reader=lambda _p, mine=mine: mine)
            except IngestError as e:
                skipped.append((a.read_path, str(e)))
        return rows
    for row, a in zip(rows, owner):
        if not row.get("source"):
            row["source"] = str(a.key)
    return rows


def _progress(it: Sequence, enabled: bool, desc: str, unit: str = "acq") -> Iterable:
    if not enabled:
        return it
    return tqdm(it, desc=desc, unit=unit, leave=False)


def _resolve(paths: Iterable[str | Path | Acquisition]) -> tuple[list[Acquisition], list[tuple[Path, str]]]:
    """Acquisitions of the given paths, and the paths that are none."""
    acqs: list[Acquisition] = []
    skipped: list[tuple[Path, str]] = []
    for p in paths:
        if isinstance(p, Acquisition):
            acqs.append(p)
            continue
        a = acquisition_for(p)
        if a is None:
            skipped.append((Path(p), f"{p}: not an acquisition (unknown or side file)"))
        else:
            acqs.append(a)
    return acqs, skipped


def _incomplete(a: Acquisition) -> str | None:
    """Why an acquisition cannot be read yet (missing or truncated files), or None.

    ``check_complete`` first: it stats every file once, and a complete answer means none is
    missing, so the usual case costs no ``exists()`` per file."""
    try:
        chk = check_complete(a, math.inf)
    except OSError:  # e.g. a symlink loop, which pathlib's exists() below calls missing
        chk = None
    if chk is not None and chk.complete:
        return None
    missing = [f.name for f in a.files if not f.exists()]
    if missing:
        return f"{a.read_path}: incomplete acquisition, missing {', '.join(missing)}"
    if chk is None:
        chk = check_complete(a, math.inf)  # raises as it did before
    if not chk.complete and chk.expected_bytes is not None:
        return f"{a.read_path}: truncated ({chk.reason}, per its parameter file)"
    return None


def _blocks(acqs: Sequence[Acquisition]) -> list[Sequence[Acquisition]]:
    """The partition of ``acqs`` into blocks, the same for any number of workers (a batch's
    rows may depend on the spectra it is transformed with: its precision is the batch's):
    a short first block, up to the first NMR acquisition (at most :data:`BATCH_ACQUISITIONS`),
    then blocks of :data:`BATCH_ACQUISITIONS`; in a run of 8 such blocks or more, the last two
    blocks' worth in quarter blocks (the workers finish closer together)."""
    first = next((j for j, a in enumerate(acqs) if a.format in _NMR_FORMATS), len(acqs))
    head = max(1, min(first + 1, BATCH_ACQUISITIONS))
    n, step = len(acqs), max(1, BATCH_ACQUISITIONS // 4)
    tail = n - 2 * BATCH_ACQUISITIONS if n - head >= 8 * BATCH_ACQUISITIONS else n
    return ([acqs[:head]] + [acqs[i:min(i + BATCH_ACQUISITIONS, tail)] for i in range(head, tail, BATCH_ACQUISITIONS)]
            + [acqs[i:i + step] for i in range(tail, n, step)])


def _run_block(acqs: Sequence[Acquisition], extractor: BatchExtractor, reader: Reader | None
               ) -> tuple[list[dict], list[tuple[Path, str]]]:
    """Rows of one block of acquisitions (completeness checks, reading, the batch engine)."""
    skipped: list[tuple[Path, str]] = []
    todo = []
    for a in acqs:
        why = _incomplete(a)
        if why is None:
            todo.append(a)
        else:
            skipped.append((a.read_path, why))
    return (_process_batch(todo, extractor, reader, skipped) if todo else []), skipped


#: What forked workers read (set by the parent just before it forks; copy-on-write).
_FORK: dict[str, Any] = {}
#: Seconds between the parent's checks that its workers are alive while it waits for their rows.
_POLL_S = 0.5


def _from_primed(ex: BatchExtractor, i: int) -> tuple[int, list[dict], list[tuple[Path, str]], dict[tuple, int]]:
    """Block ``i`` with ``ex`` set to the parent's primed series only (so no block's rows depend
    on which blocks this process ran before); returns the series it started, with the
    acquisition index that started each."""
    ex._series = dict(_FORK["series"])
    ex.drop_early()  # the first block's first rows are the parent's
    ex.keep_last = False  # its rows go back to the parent; its last spectrum is read by no one
    blocks, reader = _FORK["blocks"], _FORK["reader"]
    before = set(ex._series)
    rows, skipped = _run_block(blocks[i], ex, reader)
    started = {k: _FORK["first"](blocks[i], k) for k in set(ex._series) - before}
    return i, rows, skipped, started


def _take() -> int:
    """The next block to run, from the counter the parent and its forked workers share."""
    nxt = _FORK["next"]
    with nxt.get_lock():
        i = nxt.value
        nxt.value = i + 1
    return i


def _worker_loop() -> None:
    """A forked worker: blocks from the shared counter until none is left, each block's rows put
    on the results queue (a block that raised is reported, and the parent redoes it)."""
    q, n = _FORK["results"], len(_FORK["blocks"])
    try:
        while (i := _take()) < n:
            try:
                q.put(("rows", *_from_primed(_FORK["extractor"], i)))
            except Exception as e:  # noqa: BLE001 - the parent redoes the block in order
                q.put(("failed", i, f"{type(e).__name__}: {e}"))
    finally:
        q.close()
        q.join_thread()  # everything put reaches the parent before this process exits


def _set_up_head(block: Sequence[Acquisition], extractor: BatchExtractor, reader: Reader | None) -> None:
    """The series of the first block's NMR spectra set up, their first rows left for
    :func:`_run_block` (:meth:`BatchExtractor.start_series_early`); an acquisition that cannot be
    read or processed here is left to that run, which reports it as a serial run would."""
    for a in block:
        if a.format not in _NMR_FORMATS or _incomplete(a) is not None:
            continue
        try:
            for s in _read_spectra(a, reader):
                extractor.start_series_early(s)
        except Exception:  # noqa: BLE001, S112 - _run_block meets it again and reports it
            continue


def _first_of(block: Sequence[Acquisition], key: tuple) -> int:
    """Index in ``block`` of the first acquisition whose spectra belong to series ``key``."""
    for j, a in enumerate(block):
        try:
            spectra = read_rows(a.read_path)
        except Exception:  # noqa: BLE001, S112 - unreadable: it started nothing
            continue
        if any(isinstance(s, NMRSpectrum) and s.fid is not None and series_key(s) == key for s in spectra):
            return j
    return len(block)


def _parallel(blocks: list[list[Acquisition]], extractor: BatchExtractor, reader: Reader | None, workers: int,
              progress: bool) -> tuple[list[dict], list[tuple[Path, str]]]:
    """Block 0's series set up in this process first (the phase, noise, baseline points and
    precision the workers share; :meth:`BatchExtractor.start_series_early`), then blocks 1.. in
    ``workers - 1`` forked processes and in this one once it has made block 0's rows, each
    taking the next block from a shared counter.  The rows are those of the serial run: a block
    in which a process started a series that an earlier block also holds, or that a worker could
    not finish (it raised, or died), is redone here, in order, with the series the serial run
    would have (see :func:`ingest_paths`)."""
    _set_up_head(blocks[0], extractor, reader)
    if extractor.phase is None:  # no NMR phase: the workers would each auto-phase; stay serial
        extractor.drop_early()
        return _serial(blocks, extractor, reader, progress)
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    _FORK.update(extractor=extractor, series=dict(extractor._series), blocks=blocks, reader=reader, first=_first_of,
                 next=ctx.Value("i", 1), results=results)
    out: dict[int, tuple[list[dict], list[tuple[Path, str]], dict[tuple, int]]] = {}
    bar = tqdm(total=len(blocks) - 1, desc="ingest", unit="block", leave=False) if progress else None
    procs: list[Any] = []
    done = [0]  # blocks finished (or failed) in any process

    def receive(timeout: float | None) -> bool:
        """One worker message into ``out`` (False: none within ``timeout``)."""
        try:
            msg = results.get(timeout=timeout) if timeout else results.get_nowait()
        except queue.Empty:
            return False
        if msg[0] == "rows":
            out[msg[1]] = msg[2:]
        done[0] += 1
        if bar is not None:
            bar.update(1)
        return True

    try:
        for _ in range(workers - 1):
            procs.append(ctx.Process(target=_worker_loop, daemon=True))
            procs[-1].start()
        try:
            rows0, skipped0 = _run_block(blocks[0], extractor, reader)  # the first rows, while they work
        finally:
            extractor.drop_early()  # (a spectrum read differently this time leaves none behind)
        mine = extractor.primed_copy()  # this process's blocks leave the extractor's own state alone
        while (i := _take()) < len(blocks):
            j, rows, skipped, started = _from_primed(mine, i)
            out[j] = (rows, skipped, started)
            done[0] += 1
            if bar is not None:
                bar.update(1)
            while receive(None):
                pass
        # the workers' last blocks; a worker that died leaves its block to be redone below
        while done[0] < len(blocks) - 1:
            if not receive(_POLL_S) and not any(p.is_alive() for p in procs):
                while receive(_POLL_S / 5):  # what a worker put before it ended
                    pass
                break
    finally:
        with _FORK["next"].get_lock():  # should this process have stopped early, the workers stop too
            _FORK["next"].value = len(blocks)
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
        results.close()
        _FORK.clear()
        if bar is not None:
            bar.close()
    rows_all, skipped_all = list(rows0), list(skipped0)
    seen = set(extractor._series)
    for i in range(1, len(blocks)):
        got = out.get(i)
        if got is None or any(k in seen for k in got[2]):
            # the serial run had this series from an earlier block, or no process finished the block
            before = set(extractor._series)
            rows, skipped = _run_block(blocks[i], extractor, reader)
            seen |= set(extractor._series) - before
            if got is not None:
                seen |= set(got[2])
        else:
            rows, skipped, started = got
            for k, j in started.items():  # prime it here as the serial run did, for later redone blocks
                if k not in extractor._series and j < len(blocks[i]):
                    for sp in _read_spectra(blocks[i][j], reader):
                        extractor.prime(sp)
            seen |= set(started)
        rows_all += rows
        skipped_all += skipped
    return rows_all, skipped_all


def ingest_paths(
    paths: Iterable[str | Path | Acquisition],
    cfg: Any = None,
    *,
    progress: bool = False,
    extractor: Extractor | None = None,
    reader: Reader | None = None,
    workers: int = 1,
) -> BatchResult:
    """Ingest given acquisitions (paths or :class:`Acquisition`) into one table.

    Parameters
    ----------
    paths : iterable
        Acquisition paths (expno folder, .DSC/.DTA, .par/.spc, file) or
        Acquisition objects.
    cfg : ObservablesConfig, path or None
        Observables configuration (ignored when ``extractor`` is given).  By default the
        rows come from :class:`ingest.processing.batch_nmr.BatchExtractor` (the
        per-spectrum numbers, with the work shared by a series done once and the line
        fits vectorised; acquisitions are read :data:`BATCH_ACQUISITIONS` at a time).
    progress : bool
        Show a tqdm progress bar.
    extractor, reader : callable, optional
        Replace the default extractor / reader (tests, other pipelines).
    workers : int
        Processes for the batch engine: this one and ``workers - 1`` forked ones (where
        ``fork`` is unavailable, or for fewer than three blocks, this one only).  The table does
        not depend on it: the acquisitions are cut into the same blocks (:func:`_blocks`); the
        first block's series are set up in this process before any fork (the phase and the
        series' noise, baseline points and precision, which every process then shares); and a
        block whose process had to start a series that an earlier block holds, or that a worker
        could not finish, is redone in order here.

    Returns
    -------
    BatchResult
    """
    acqs, skipped = _resolve(paths)
    if extractor is None:
        extractor = make_extractor(cfg)
    if type(extractor) is _Extractor:  # the batch engine: series work once, line fits vectorised
        extractor = BatchExtractor(extractor.cfg, phase=extractor.phase)
    rows: list[dict] = []
    if not isinstance(extractor, BatchExtractor):
        for a in _progress(acqs, progress, "ingest"):
            why = _incomplete(a)
            if why is not None:
                skipped.append((a.read_path, why))
                continue
            try:
                rows.extend(process_acquisition(a, extractor, reader=reader))
            except IngestError as e:
                skipped.append((a.read_path, str(e)))
        return BatchResult(tidy(rows), skipped)
    if _use_compiled(len(acqs)):  # numba's ~1 s start pays back; loaded before any fork
        load_compiled()
    blocks = _blocks(acqs)
    parallel = int(workers) > 1 and len(blocks) >= 3 and "fork" in multiprocessing.get_all_start_methods()
    # the FIDs of a block, dropped before the next: their memory reused; with the compiled kernels
    # the batch transforms a Bruker FID from its stored words (ingest.readers.stored_fid)
    words = deferred_fids() if reader is None and zf_fft_nb.kernels() is not None else contextlib.nullcontext()
    with recycled_arrays(), words:
        r, s = (_parallel(blocks, extractor, reader, int(workers), progress) if parallel
                else _serial(blocks, extractor, reader, progress))
    return BatchResult(tidy(r), skipped + s)


def _serial(blocks: list[Sequence[Acquisition]], extractor: BatchExtractor, reader: Reader | None,
            progress: bool) -> tuple[list[dict], list[tuple[Path, str]]]:
    """The blocks one after the other in this process (rows and set-aside acquisitions)."""
    rows: list[dict] = []
    skipped: list[tuple[Path, str]] = []
    bar = tqdm(total=sum(len(b) for b in blocks), desc="ingest", unit="acq", leave=False) if progress else None
    for blk in blocks:
        r, s = _run_block(blk, extractor, reader)
        rows += r
        skipped += s
        if bar is not None:
            bar.update(len(blk))
    if bar is not None:
        bar.close()
    return rows, skipped


def ingest_folder(
    folder: str | Path,
    cfg: Any = None,
    *,
    progress: bool = True,
    extractor: Extractor | None = None,
    reader: Reader | None = None,
) -> BatchResult:
    """Ingest every acquisition under ``folder`` into one tidy table.

    Parameters
    ----------
    folder : path-like
        Folder of finished files (searched recursively).
    cfg : ObservablesConfig, path to its TOML, or None
    progress : bool
        tqdm progress bar.
    extractor, reader : callable, optional
        See :func:`ingest_paths`.

    Returns
    -------
    BatchResult
        ``table`` (one row per spectrum) and ``skipped`` (path, reason).

    Raises
    ------
    IngestError
        If ``folder`` does not exist.
    """
    try:
        acqs = sorted(discover(folder), key=sort_key)
    except FileNotFoundError as e:
        raise IngestError(folder, "folder does not exist") from e
    return ingest_paths(acqs, cfg, progress=progress, extractor=extractor, reader=reader)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ingest.batch PATH ...`` is ``flowcell ingest PATH ...``: one command line,
    one set of exit codes (see ``flowcell ingest --help``)."""
    from flowcell.cli import (
        main as flowcell_main,  # lazy: the library part of ingest needs no flowcell
    )
    try:
        return flowcell_main(["ingest", *(sys.argv[1:] if argv is None else argv)])
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return int(exc.code or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
