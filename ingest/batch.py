"""Batch path: a folder of finished files → one tidy table.

``ingest_folder(folder)`` finds every acquisition under a folder
(:func:`ingest.live.completion.discover`: Bruker expnos, Spinsolve folders, BES3T
and ESP pairs, single files), reads each with ``ingest.readers.dispatch.read_rows``,
extracts one row per spectrum with ``ingest.processing.observables.Extractor`` and
returns a tidy pandas table (one row per spectrum, tz-aware UTC times, ``t_s``
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

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
from tqdm.auto import tqdm

from ingest.live.completion import Acquisition, acquisition_for, check_complete, discover, sort_key
from ingest.live.store import tidy
from ingest.processing.batch_nmr import BatchExtractor
from ingest.processing.observables import Extractor as _Extractor, ObservablesConfig
from ingest.readers.dispatch import read_rows
from ingest.types import IngestError

__all__ = [
    "BatchResult",
    "find_acquisitions",
    "ingest_folder",
    "ingest_paths",
    "process_acquisition",
    "make_extractor",
    "main",
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
        except Exception as e:  # noqa: BLE001
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
    except Exception as e:  # noqa: BLE001 - a reader bug must not stop the batch
        raise IngestError(acq.read_path, f"could not be read ({type(e).__name__}: {e})") from e
    if not spectra:
        raise IngestError(acq.read_path, "no spectra in file")
    return spectra


#: Acquisitions read before one batch of rows is extracted (bounds the memory held in FIDs).
BATCH_ACQUISITIONS = 64


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


def _progress(it: Sequence, enabled: bool, desc: str) -> Iterable:
    if not enabled:
        return it
    return tqdm(it, desc=desc, unit="acq", leave=False)


def ingest_paths(
    paths: Iterable[str | Path | Acquisition],
    cfg: Any = None,
    *,
    progress: bool = False,
    extractor: Extractor | None = None,
    reader: Reader | None = None,
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

    Returns
    -------
    BatchResult
    """
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
    if extractor is None:
        extractor = make_extractor(cfg)
    if type(extractor) is _Extractor:  # the batch engine: series work once, line fits vectorised
        extractor = BatchExtractor(extractor.cfg, phase=extractor.phase)
    batched = isinstance(extractor, BatchExtractor)
    rows: list[dict] = []
    todo: list[Acquisition] = []
    for a in _progress(acqs, progress, "ingest"):
        missing = [f.name for f in a.files if not f.exists()]
        if missing:
            skipped.append((a.read_path, f"{a.read_path}: incomplete acquisition, missing {', '.join(missing)}"))
            continue
        chk = check_complete(a, math.inf)
        if not chk.complete and chk.expected_bytes is not None:
            skipped.append((a.read_path, f"{a.read_path}: truncated ({chk.reason}, per its parameter file)"))
            continue
        if batched:
            todo.append(a)
            if len(todo) >= BATCH_ACQUISITIONS:
                rows.extend(_process_batch(todo, extractor, reader, skipped))  # type: ignore[arg-type]
                todo = []
            continue
        try:
            rows.extend(process_acquisition(a, extractor, reader=reader))
        except IngestError as e:
            skipped.append((a.read_path, str(e)))
    if todo:
        rows.extend(_process_batch(todo, extractor, reader, skipped))  # type: ignore[arg-type]
    return BatchResult(tidy(rows), skipped)


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
    from flowcell.cli import main as flowcell_main  # lazy: the library part of ingest needs no flowcell
    try:
        return flowcell_main(["ingest", *(sys.argv[1:] if argv is None else argv)])
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return int(exc.code or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
