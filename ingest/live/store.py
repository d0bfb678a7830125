"""Append-only per-experiment store with a manifest of processed files.

Design (decided here, see the ingest issue): one SQLite database
``<folder>/store.sqlite`` in WAL mode.

* ``manifest``: one entry per processed acquisition: source path, content
  fingerprint (sha256 over the data files, UNIQUE), the files with their size,
  mtime and sha256, the number of rows, when it was processed.
* ``rows``: one row per spectrum, the row dict as JSON (the columns differ
  between NMR and EPR and with the configured peaks, so a fixed schema would
  fight the extractor), plus indexed ``kind``, ``source`` and ``time_mid``.
* ``skipped``: files set aside with the reason (the store's log).

Atomicity: :meth:`Store.append` inserts an acquisition's rows and its
manifest entry in ONE transaction.  SQLite commits are atomic against a
process crash (kill -9) in every journal mode, so after a crash the store
holds either all of an acquisition or none of it; restarting simply
processes it again.  ``synchronous=NORMAL`` under WAL keeps commits durable
against process death (a power cut may lose the last commits, never corrupt
the file); pass ``durable=True`` for ``synchronous=FULL``.  The UNIQUE
fingerprint makes a second insert of the same bytes a no-op, even from a
second process.

Several readers (the live SOC readout, a notebook) may open the same store
while a watcher appends (WAL allows concurrent readers).

One row per acquisition, ever: when the bytes of an already stored
acquisition change (a file rewritten after it was taken), :meth:`Store.append`
stores the new version and marks the old manifest entry ``superseded_by`` the
new one in the same transaction, and logs the change; both entries stay in
the manifest, only the current version's rows are in :meth:`Store.table`.

``Store(folder, readonly=True)`` opens the database read-only (sqlite
``mode=ro``; ``immutable=1`` on read-only media where not even the WAL index
can be created), for commands that only read (``flowcell fit``).  A database
locked by another process gives a :class:`StoreError` that says so.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["Store", "StoreError", "TIME_COLUMNS", "add_t_s", "apply_clock_offset", "COMMON_COLUMNS"]

log = logging.getLogger("ingest.live.store")

#: Columns holding tz-aware UTC timestamps.
TIME_COLUMNS = ("time_start", "time_end", "time_mid")
#: Columns every row has, first in the table (docs/architecture.md).
COMMON_COLUMNS = ("kind", "source", "row", "time_start", "time_end", "time_mid", "t_s", "temperature_K", "format")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS manifest (
    acq_id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    files TEXT NOT NULL,
    n_rows INTEGER NOT NULL,
    processed_at REAL NOT NULL,
    superseded_by INTEGER,
    superseded_at REAL
);
CREATE INDEX IF NOT EXISTS manifest_source ON manifest(source);
CREATE TABLE IF NOT EXISTS rows (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    acq_id INTEGER NOT NULL REFERENCES manifest(acq_id),
    kind TEXT,
    source TEXT,
    time_mid TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rows_acq ON rows(acq_id);
CREATE TABLE IF NOT EXISTS skipped (
    skip_id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    fingerprint TEXT,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS skipped_fp ON skipped(fingerprint);
"""


class StoreError(RuntimeError):
    """The store folder or database is unusable (message names the file)."""


#: Rows of acquisitions that are still current (not superseded by a newer version).
_CURRENT = "acq_id IN (SELECT acq_id FROM manifest WHERE superseded_by IS NULL)"


def _explain(path: Path, exc: sqlite3.Error) -> StoreError:
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        return StoreError(f"{path}: locked by another process ({msg}); stop the other writer or wait")
    if "readonly" in msg or "read-only" in msg:
        return StoreError(f"{path}: the store is on read-only media or not writable ({msg})")
    return StoreError(f"{path}: not a usable store database ({msg})")


# --------------------------------------------------------------------------- JSON


def _encode(v: Any) -> Any:
    if isinstance(v, (pd.Timestamp, datetime)):
        ts = pd.Timestamp(v)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return {"$ts": ts.isoformat()}
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (pd.Timedelta,)):
        return v.total_seconds()
    return str(v)


def _decode(d: dict) -> Any:
    if len(d) == 1 and "$ts" in d:
        return pd.Timestamp(d["$ts"]).tz_convert("UTC")
    return d


def _dumps(row: Mapping[str, Any]) -> str:
    clean = {}
    for k, v in row.items():
        if v is pd.NaT:
            v = None
        clean[str(k)] = v
    return json.dumps(clean, default=_encode, allow_nan=True)


def _loads(s: str) -> dict:
    return json.loads(s, object_hook=_decode)


def apply_clock_offset(row: dict, offsets_s: Mapping[str, float]) -> None:
    """Subtract the instrument's clock offset (s, by the row's ``kind``) from the row's time
    columns in place, and record it as ``clock_offset_s``."""
    off = offsets_s.get(str(row.get("kind")), 0.0)
    row["clock_offset_s"] = off
    if not off:
        return
    d = pd.Timedelta(seconds=off)
    for col in TIME_COLUMNS:
        v = row.get(col)
        if v is not None and v is not pd.NaT:
            try:
                row[col] = pd.Timestamp(v) - d
            except (TypeError, ValueError):
                pass


def add_t_s(df: pd.DataFrame, time_col: str = "time_mid") -> pd.DataFrame:
    """Add (or overwrite) ``t_s``: seconds since the first spectrum of the table.

    Parameters
    ----------
    df : DataFrame
        With a tz-aware ``time_col``.
    time_col : str

    Returns
    -------
    DataFrame
        The same frame (modified in place and returned), ``t_s`` in s (float).
    """
    if time_col in df.columns and len(df):
        t = pd.to_datetime(df[time_col], utc=True)
        df["t_s"] = (t - t.min()).dt.total_seconds()
    else:
        df["t_s"] = pd.Series(dtype=float, index=df.index)
    return df


def tidy(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows (dicts) → tidy DataFrame: common columns first, tz-aware UTC times,
    sorted by ``time_mid``, ``t_s`` added (s since the first spectrum)."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame(columns=list(COMMON_COLUMNS))
    for c in TIME_COLUMNS:
        if c in df.columns and str(df[c].dtype) != "datetime64[ns, UTC]":  # (already so: skip ~1.5 ms a column)
            df[c] = pd.to_datetime(df[c], utc=True)
    if "time_mid" in df.columns:
        df = df.sort_values(["time_mid"], kind="stable", na_position="last").reset_index(drop=True)
    add_t_s(df)
    first = [c for c in COMMON_COLUMNS if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


# --------------------------------------------------------------------------- store


class Store:
    """Append-only store of table rows for one experiment.

    Parameters
    ----------
    folder : path-like
        The experiment's store folder (created if missing).  Holds
        ``store.sqlite`` (+ its WAL files).
    durable : bool
        ``synchronous=FULL`` (survives power loss) instead of ``NORMAL``
        (survives process death; the default).
    timeout_s : float
        How long to wait for a lock held by another process, s.

    Examples
    --------
    >>> st = Store(tmp)                                        # doctest: +SKIP
    >>> st.append([row], source="/data/nmr/12", fingerprint=fp)  # doctest: +SKIP
    >>> st.table()                                              # doctest: +SKIP
    """

    FILENAME = "store.sqlite"

    def __init__(self, folder: str | Path, *, durable: bool = False, timeout_s: float = 30.0,
                 readonly: bool = False) -> None:
        self.folder = Path(folder)
        self.path = self.folder / self.FILENAME
        self._lock = threading.RLock()
        self.readonly = readonly
        if readonly:
            self._con = self._open_readonly(timeout_s)
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{self.folder}: cannot create store folder ({e})") from e
        try:
            self._con = sqlite3.connect(
                str(self.path), timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._con.executescript(_SCHEMA)
            self._con.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('created', ?)",
                (datetime.now(timezone.utc).isoformat(),),
            )
            self._con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1')")
            cols = {r[1] for r in self._con.execute("PRAGMA table_info(manifest)")}
            for col, typ in (("superseded_by", "INTEGER"), ("superseded_at", "REAL")):
                if col not in cols:  # a store written before versions were kept
                    self._con.execute(f"ALTER TABLE manifest ADD COLUMN {col} {typ}")
        except sqlite3.DatabaseError as e:
            raise _explain(self.path, e) from e

    def _open_readonly(self, timeout_s: float) -> sqlite3.Connection:
        """Open without writing anything: ``mode=ro``, else ``immutable=1`` (read-only media)."""
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no store database here")
        uri = self.path.resolve().as_uri()
        last: sqlite3.Error | None = None
        for query in ("mode=ro", "mode=ro&immutable=1"):
            try:
                con = sqlite3.connect(f"{uri}?{query}", uri=True, timeout=timeout_s, isolation_level=None,
                                      check_same_thread=False)
                con.execute("SELECT COUNT(*) FROM manifest").fetchone()
                cols = {r[1] for r in con.execute("PRAGMA table_info(manifest)")}
                self._versioned = "superseded_by" in cols
                return con
            except sqlite3.DatabaseError as e:
                last = e
                if "locked" in str(e) or "busy" in str(e):
                    break
        assert last is not None
        raise _explain(self.path, last) from last

    # -- context / lifetime
    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            try:
                self._con.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.folder)!r})"

    # -- writing
    def append(
        self,
        rows: Iterable[Mapping[str, Any]],
        source: str | Path,
        fingerprint: str,
        files: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[int]:
        """Append one acquisition's rows and its manifest entry atomically.

        Parameters
        ----------
        rows : iterable of dict
            Table rows (docs/architecture.md columns).
        source : path-like
            The acquisition (expno folder, base path, file).
        fingerprint : str
            Content fingerprint (:func:`ingest.live.completion.fingerprint`).
        files : sequence of dict, optional
            Manifest entries ``{'path', 'size', 'mtime', 'sha256'}``.

        Returns
        -------
        list of int
            The new row ids; empty if this fingerprint was already stored
            (nothing is written twice).
        """
        rows = list(rows)
        payload = [(r.get("kind"), str(r.get("source", source)), _time_text(r.get("time_mid")), _dumps(r)) for r in rows]
        with self._lock:
            cur = self._con.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    cur.execute(
                        "INSERT INTO manifest(source, fingerprint, files, n_rows, processed_at) VALUES (?,?,?,?,?)",
                        (str(source), fingerprint, json.dumps(list(files or []), default=_encode), len(rows), time.time()),
                    )
                except sqlite3.IntegrityError:
                    cur.execute("ROLLBACK")
                    return []
                acq_id = cur.lastrowid
                old = cur.execute(
                    "SELECT acq_id, fingerprint FROM manifest WHERE source=? AND acq_id<>? AND superseded_by IS NULL",
                    (str(source), acq_id),
                ).fetchall()
                if old:
                    cur.execute(
                        "UPDATE manifest SET superseded_by=?, superseded_at=? WHERE source=? AND acq_id<>? "
                        "AND superseded_by IS NULL", (acq_id, time.time(), str(source), acq_id))
                    log.warning("%s changed after it was stored: version %s supersedes %s (both kept in the manifest)",
                                source, fingerprint[:12], ", ".join(fp[:12] for _, fp in old))
                ids = []
                for kind, src, tm, data in payload:
                    cur.execute(
                        "INSERT INTO rows(acq_id, kind, source, time_mid, data) VALUES (?,?,?,?,?)",
                        (acq_id, kind, src, tm, data),
                    )
                    ids.append(int(cur.lastrowid))
                cur.execute("COMMIT")
                return ids
            except sqlite3.OperationalError as e:
                if self._con.in_transaction:
                    cur.execute("ROLLBACK")
                raise _explain(self.path, e) from e
            except BaseException:
                if self._con.in_transaction:
                    cur.execute("ROLLBACK")
                raise

    def log_skip(self, path: str | Path, reason: str, fingerprint: str | None = None) -> None:
        """Record a file set aside, with its reason (the store's log).

        A skipped fingerprint is not retried on restart (:meth:`was_skipped`);
        new bytes at the same path give a new fingerprint and are tried again.
        """
        with self._lock:
            try:
                self._con.execute(
                    "INSERT INTO skipped(path, fingerprint, reason, at) VALUES (?,?,?,?)",
                    (str(path), fingerprint, str(reason), time.time()),
                )
            except sqlite3.OperationalError as e:
                raise _explain(self.path, e) from e

    # -- reading
    def seen(self, fingerprint: str) -> bool:
        """True if an acquisition with these bytes is already stored."""
        with self._lock:
            r = self._con.execute("SELECT 1 FROM manifest WHERE fingerprint=?", (fingerprint,)).fetchone()
        return r is not None

    def was_skipped(self, fingerprint: str) -> bool:
        """True if these bytes were already set aside as bad."""
        with self._lock:
            r = self._con.execute("SELECT 1 FROM skipped WHERE fingerprint=?", (fingerprint,)).fetchone()
        return r is not None

    def seen_signature(self, source: str | Path, files: Sequence[tuple[str, int, int]]) -> bool:
        """Cheap check without hashing: is ``source`` stored with exactly these
        files?  ``files`` holds ``(name, size in bytes, mtime in integer ns)``
        triples, compared with the manifest's ``mtime_ns`` (exact).  Used on
        restart to skip the sha256 of files that have not changed."""
        want = {(n, int(s), int(m)) for n, s, m in files}
        with self._lock:
            got = self._con.execute(f"SELECT files FROM manifest WHERE source=? AND {self._current_sql()}",
                                    (str(source),)).fetchall()
        for (fjson,) in got:
            entries = json.loads(fjson)
            if not entries or any("mtime_ns" not in f for f in entries):
                continue
            have = {(Path(f["path"]).name, int(f["size"]), int(f["mtime_ns"])) for f in entries}
            if have == want:
                return True
        return False

    def __len__(self) -> int:
        with self._lock:
            return int(self._con.execute(f"SELECT COUNT(*) FROM rows WHERE {self._current_sql()}").fetchone()[0])

    def rows(self, after_id: int = 0) -> list[tuple[int, dict]]:
        """Raw rows with id > ``after_id``: list of ``(row_id, row dict)``."""
        with self._lock:
            cur = self._con.execute(
                f"SELECT row_id, data FROM rows WHERE row_id > ? AND {self._current_sql()} ORDER BY row_id", (after_id,))
            return [(int(i), _loads(d)) for i, d in cur.fetchall()]

    def table(self, kind: str | None = None) -> pd.DataFrame:
        """All rows as a tidy DataFrame (one row per spectrum).

        Parameters
        ----------
        kind : {'nmr', 'epr'}, optional
            Only that kind.

        Returns
        -------
        DataFrame
            Common columns first, ``time_*`` tz-aware UTC, sorted by
            ``time_mid``, ``t_s`` = seconds since the experiment's first
            spectrum (over the whole store, whatever ``kind``).
        """
        recs = [r for _, r in self.rows()]
        df = tidy(recs)
        if kind is not None and "kind" in df.columns:
            df = df[df["kind"] == kind].reset_index(drop=True)
        return df

    def _current_sql(self) -> str:
        return _CURRENT if getattr(self, "_versioned", True) else "1"

    def manifest(self) -> pd.DataFrame:
        """The manifest: one row per processed acquisition version (``files`` as a
        list of dicts; ``superseded_by`` the acq_id of the newer version, or NaN)."""
        cols = "acq_id, source, fingerprint, files, n_rows, processed_at"
        if getattr(self, "_versioned", True):
            cols += ", superseded_by"
        with self._lock:
            df = pd.read_sql_query(f"SELECT {cols} FROM manifest ORDER BY acq_id", self._con)
        df["files"] = df["files"].map(json.loads)
        df["processed_at"] = pd.to_datetime(df["processed_at"], unit="s", utc=True)
        return df

    def skipped(self) -> pd.DataFrame:
        """The log of files set aside: columns ``path``, ``fingerprint``, ``reason``, ``at`` (UTC)."""
        with self._lock:
            df = pd.read_sql_query("SELECT path, fingerprint, reason, at FROM skipped ORDER BY skip_id", self._con)
        df["at"] = pd.to_datetime(df["at"], unit="s", utc=True)
        return df

    def export(self, path: str | Path) -> Path:
        """Write :meth:`table` to ``.parquet`` or ``.csv`` (atomically: temp file + rename).

        Returns
        -------
        Path
        """
        return write_table(self.table(), path)


def _time_text(v: Any) -> str | None:
    if v is None or v is pd.NaT:
        return None
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT:
        return None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").isoformat()


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table to ``.parquet`` or ``.csv`` atomically (temp file, then rename).

    Raises
    ------
    ValueError
        For any other suffix (the message names the path).
    """
    out = Path(path)
    suf = out.suffix.lower()
    if suf not in (".parquet", ".csv"):
        raise ValueError(f"{out}: unsupported table format {suf!r} (use .parquet or .csv)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    obj = df.copy()
    for c in obj.columns:  # parquet cannot hold mixed object columns
        if obj[c].dtype == object and c not in TIME_COLUMNS:
            vals = obj[c].dropna()
            if len(vals) and not all(isinstance(v, str) for v in vals):
                obj[c] = obj[c].map(lambda v: v if v is None or isinstance(v, str) or (isinstance(v, float) and math.isnan(v)) else json.dumps(v, default=_encode))
    if suf == ".parquet":
        obj.to_parquet(tmp, index=False)
    else:
        obj.to_csv(tmp, index=False)
    tmp.replace(out)
    return out
