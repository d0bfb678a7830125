"""Live watcher: new NMR/EPR acquisitions → rows in the experiment's store.

How it works (design decided for the ingest issue)
--------------------------------------------------
* A ``watchdog`` observer watches the NMR folder and the EPR folder (they may
  be the same) recursively: the native one (inotify on Linux) by default, a
  ``PollingObserver`` when asked (``polling=True``) or when a folder looks
  like a network mount (``//`` or ``/mnt/`` paths, or nfs/cifs/smb/sshfs… in
  ``/proc/mounts``), where change notifications are unreliable.
* File-system events only mark paths as *dirty*.  ONE worker thread maps them
  to acquisitions (:mod:`ingest.live.completion`), re-checks completion with the
  format's own rules (:func:`ingest.live.completion.check_complete`: the data size
  matches the header; a quiet period ``quiet_s`` for formats with no size), and
  processes ready acquisitions in acquisition order through the same
  :func:`ingest.batch.process_acquisition` as the batch path.
* Event-driven completion: with the native observer, a close-after-write
  (inotify ``IN_CLOSE_WRITE``) of the data file or a rename into the folder
  (``IN_MOVED_TO``), with nothing changed since, means the writer is done: no settle
  wait on top of the format's checks.  The fixed wait ``settle_s`` applies only
  without such an event (polling observer on network shares, writers that keep
  files open).
* A periodic full rescan (``rescan_s``) is a safety net for missed events
  (inotify queue overflow, network shares).  Files already present when the
  watcher starts are processed first, in acquisition order.
* Exactly once: each acquisition's rows and its manifest entry (sha256 of its
  files) go into the store in one transaction (:class:`ingest.live.store.Store`);
  a fingerprint already in the store is never processed again, so a restart
  resumes where it stopped and picks up what arrived meanwhile.  An unchanged
  (path, size, mtime) skips the hashing on restart.
* Bad files: a read failure is retried with exponential backoff (``retry_s``,
  doubling) while the file may still be growing, up to ``max_tries`` tries or
  ``give_up_s`` seconds, then set aside in the store's log with the reason
  (:meth:`Store.skipped`).  New bytes at the same path are tried again.  The
  worker never dies on a bad file (any exception is logged and it carries on).
* Latency (issue 13: a finished file reaches the table in milliseconds): the cyclic
  garbage collector is kept out of a file's processing (:mod:`ingest.live.gcpause`:
  start-up objects frozen at start and after the warm-up, automatic collection suspended
  while a file is processed, young generations collected after it, a full collection
  when idle), ``gc_control=False`` leaves the collector alone; the observer asks the
  kernel only for the events acted on (:mod:`ingest.live.observer`: not the opens and
  reads of the watcher's own checks, which would wake its threads mid-file); the content
  key is hashed on a helper thread while the spectra are read and extracted
  (:class:`ingest.live.signature.FingerprintThread`), and checked against the store
  before anything is stored or shown.
* Clock skew: ``nmr_clock_offset_s`` / ``epr_clock_offset_s`` are the
  instrument PC's clock minus the reference clock, s; they are subtracted from
  the rows' time columns (chosen by the row's ``kind``) and recorded in a
  ``clock_offset_s`` column.

API: ``Watcher(...).run()`` blocks; ``start()``/``stop()`` for a background
thread; ``on_row(row)`` callback (called after the row is committed);
``rows()`` iterates over new rows as they are committed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.batch import Extractor, Reader, make_extractor, process_acquisition
from ingest.live.completion import (
    Acquisition,
    acquisition_for,
    check_complete,
    discover,
    quick_signature,
    sort_key,
)
from ingest.live.gcpause import collect_idle, freeze_startup, no_collection
from ingest.live.mounts import NETWORK_FS, is_network_path
from ingest.live.observer import hidden, start_observer
from ingest.live.signature import FingerprintThread
from ingest.live.store import Store, apply_clock_offset
from ingest.live.warmup import warm_up_compiled, warm_up_readers
from ingest.readers.bruker import CLOSING_FILE
from ingest.selection import is_spin_standard
from ingest.types import IngestError

__all__ = ["NETWORK_FS", "Watcher", "is_network_path"]

log = logging.getLogger("ingest.live.watch")


@dataclass
class _Cand:
    acq: Acquisition
    sig: tuple = ()
    closed_sig: tuple | None = None  # signature when a close-write / moved-to event was seen
    since: float = field(default_factory=time.monotonic)
    tries: int = 0
    first_fail: float | None = None
    next_try: float = 0.0
    last_error: str = ""


class Watcher:
    """Watch an NMR folder and an EPR folder; append new spectra to a store.

    Parameters
    ----------
    nmr_dir : path-like
        Folder the NMR spectrometer writes into (searched recursively).
    epr_dir : path-like or None
        Folder of the EPR spectrometer (may equal ``nmr_dir``; None: none).
    store : Store or path-like
        The experiment's store (a folder path opens/creates one).
    cfg : ObservablesConfig, path to its TOML, or None
        Observables configuration (ignored if ``extractor`` is given).
    polling : bool or None
        Force the polling observer (True), the native one (False), or choose
        automatically (None: polling for network mounts).
    on_row : callable, optional
        Called with each new row dict after it is committed.  Exceptions in it
        are logged, never fatal.
    settle_s : float
        Stability required once the data has its full size, s, when no
        close-write / moved-to event vouches for the files (polling, open writers).
    quiet_s : float
        Quiet period for formats that give no size, s.
    rescan_s : float
        Period of the safety-net full rescan, s.
    poll_interval_s : float
        Polling observer interval, s; also the worker's recheck period while
        candidates are pending.
    retry_s : float
        First retry delay after a failed read, s (doubles each try).
    max_tries : int
        Tries before a failing acquisition is set aside.
    give_up_s : float
        Set a failing acquisition aside after this long anyway, s.
    max_scan_wait_s : float
        Cap on the extra wait for a Bruker expno with no ``audita.txt``, s.
    nmr_clock_offset_s, epr_clock_offset_s : float
        Instrument clock minus reference clock, s (subtracted from the times).
    extractor : callable, optional
        spectrum → row dict (default ``Extractor(cfg, fast=True)``, :mod:`ingest.processing.nmr_plan`).
    reader : callable, optional
        path → list of spectra (default ``ingest.readers.dispatch.read_rows``).
    gc_control : bool
        Keep Python's cyclic garbage collector out of a file's processing
        (:mod:`ingest.live.gcpause`; process-wide: start-up objects frozen,
        collection between files).  A 100-300 ms generation-2 collection otherwise
        lands on a spectrum now and then.
    """

    def __init__(
        self,
        nmr_dir: str | Path | None,
        epr_dir: str | Path | None = None,
        store: Store | str | Path | None = None,
        cfg: Any = None,
        *,
        polling: bool | None = None,
        on_row: Callable[[dict], Any] | None = None,
        settle_s: float = 1.0,
        quiet_s: float = 3.0,
        rescan_s: float = 10.0,
        poll_interval_s: float = 0.5,
        retry_s: float = 1.0,
        max_tries: int = 4,
        give_up_s: float = 120.0,
        max_scan_wait_s: float = 30.0,
        nmr_clock_offset_s: float = 0.0,
        epr_clock_offset_s: float = 0.0,
        extractor: Extractor | None = None,
        reader: Reader | None = None,
        standards: Iterable[str | Path | None] = (),
        gc_control: bool = True,
    ) -> None:
        roots = []
        for d in (nmr_dir, epr_dir):
            if d is None:
                continue
            p = Path(d).resolve()
            if not p.is_dir():
                raise IngestError(p, "watched folder does not exist")
            if p not in roots:
                roots.append(p)
        if not roots:
            raise ValueError("Watcher: give at least one of nmr_dir, epr_dir")
        if store is None:
            raise ValueError("Watcher: a store (Store or folder) is required")
        self.roots: list[Path] = roots
        self.store: Store = store if isinstance(store, Store) else Store(store)
        self.polling = any(is_network_path(r) for r in roots) if polling is None else bool(polling)
        self.on_row = on_row
        self.settle_s, self.quiet_s = float(settle_s), float(quiet_s)
        self.rescan_s, self.poll_interval_s = float(rescan_s), float(poll_interval_s)
        self.retry_s, self.max_tries, self.give_up_s = float(retry_s), int(max_tries), float(give_up_s)
        self.max_scan_wait_s = float(max_scan_wait_s)
        self.clock_offset_s = {"nmr": float(nmr_clock_offset_s), "epr": float(epr_clock_offset_s)}
        self._extractor = extractor
        # spin standards (``standard/`` folders and these paths) are never ingested as samples
        self.standards = tuple(Path(x) for x in standards if x is not None)
        self._cfg = cfg
        self._reader = reader
        self._dirty: set[Path] = set()
        self._closed: set[Path] = set()  # paths with a close-write / moved-to event since the last drain
        self.store_error = ""  # the last failure to write the store ('' after a success)
        self._dirty_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cands: dict[Path, _Cand] = {}
        self._new_dirs: dict[Path, float] = {}
        self._done: dict[Path, tuple] = {}  # key -> signature when finished (stored or set aside)
        self._rows_cond = threading.Condition()
        self._start_row_id = self._max_row_id()
        self._hashing = FingerprintThread()  # the fingerprint beside the read (_process)
        self._observer: Any = None
        self._thread: threading.Thread | None = None
        #: set while the worker is not processing a file (a display may wait for it to draw)
        self.idle = threading.Event()
        self.idle.set()
        self.gc_control = bool(gc_control)
        self._warm: threading.Event | None = None  # set when the warm-up is done; None once frozen
        self._last_rescan = -math.inf
        self.stats = {"processed": 0, "rows": 0, "skipped": 0, "retries": 0, "duplicates": 0, "errors": 0}

    # ------------------------------------------------------------------ lifetime
    def start(self) -> Watcher:
        """Start the observer and the worker thread; returns at once."""
        if self._thread is not None and self._thread.is_alive():
            return self
        if self._extractor is None:
            self._extractor = make_extractor(self._cfg)
            if hasattr(self._extractor, "fast"):  # the live path: ingest.processing.nmr_plan
                self._extractor.fast = True
        if self._reader is None:
            warm_up_readers()
        self._stop.clear()
        if self.gc_control:
            freeze_startup()  # the imports above: out of every later collection
        # the compiled line fit loaded meanwhile, not on the first NMR spectrum
        self._warm = threading.Event()
        threading.Thread(target=self._warm_up, args=(self._warm,), name="warm-up", daemon=True).start()
        self._start_observer()
        self._thread = threading.Thread(target=self._loop, name="ingest-watcher", daemon=True)
        self._thread.start()
        return self

    def _warm_up(self, done: threading.Event) -> None:
        try:
            warm_up_compiled()  # the compiled line fit and baseline kernels (ingest.live.warmup)
        finally:
            done.set()
            self._wake.set()  # the worker freezes what it loaded (_collect_idle)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the worker (after the acquisition in hand) and the observer."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._hashing.close()
        if self._observer is not None:
            with contextlib.suppress(Exception):  # a dead observer thread: nothing to stop
                self._observer.stop()
                self._observer.join(timeout)
            self._observer = None
        with self._rows_cond:
            self._rows_cond.notify_all()

    def run(self, duration_s: float | None = None) -> None:
        """Start and block until :meth:`stop`, Ctrl-C, or ``duration_s`` seconds."""
        self.start()
        try:
            self._stop.wait(duration_s)
        except KeyboardInterrupt:  # pragma: no cover
            pass
        finally:
            self.stop()

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    # ------------------------------------------------------------------ output
    def rows(self, *, include_existing: bool = False, timeout: float | None = None) -> Iterator[dict]:
        """Iterate over rows as they are committed to the store.

        Parameters
        ----------
        include_existing : bool
            Also yield rows already in the store when the watcher was created.
        timeout : float, optional
            Stop iterating after this long without a new row, s (None: until
            the watcher stops).

        Yields
        ------
        dict
            Row dicts (time columns as tz-aware pandas Timestamps).
        """
        last = 0 if include_existing else self._start_row_id
        while True:
            new = self.store.rows(after_id=last)
            if new:
                for rid, row in new:
                    last = rid
                    yield row
                continue
            if self._stop.is_set() and (self._thread is None or not self._thread.is_alive()):
                return
            with self._rows_cond:
                got = self._rows_cond.wait(timeout if timeout is not None else 0.5)
            if not got and timeout is not None and not self.store.rows(after_id=last):
                return

    def pending(self) -> list[tuple[str, str]]:
        """Acquisitions seen but not yet stored or set aside: (key, status)."""
        return [(str(k), c.last_error or "waiting") for k, c in list(self._cands.items())]

    def wait_idle(self, timeout: float = 30.0, *, min_rows: int = 0) -> bool:
        """Block until nothing is pending (and the store holds >= ``min_rows`` rows).

        Returns
        -------
        bool
            False on timeout.
        """
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._dirty_lock:
                dirty = bool(self._dirty)
            if not dirty and not self._cands and self.idle.is_set() and len(self.store) >= min_rows:
                return True
            time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ observer
    def _start_observer(self) -> None:
        self._observer = start_observer(self.roots, self._on_event, polling=self.polling,
                                        poll_interval_s=self.poll_interval_s)
        obs = self._observer
        log.info("watching %s with %s", ", ".join(map(str, self.roots)), type(obs).__name__)

    def _on_event(self, paths: list[Path], done: Path | None) -> None:
        """From the observer's thread: mark the paths dirty (``done``: closed after writing or
        renamed into place) and wake the worker."""
        with self._dirty_lock:
            self._dirty.update(paths)
            if done is not None:
                self._closed.add(done)
        self._wake.set()

    # ------------------------------------------------------------------ worker
    def _max_row_id(self) -> int:
        r = self.store._con.execute("SELECT COALESCE(MAX(row_id), 0) FROM rows").fetchone()
        return int(r[0])

    def _root_of(self, p: Path) -> Path | None:
        s = str(p)  # string prefixes: Path.parents builds a Path per level (~50 us a call)
        return next((r for r in self.roots if s == str(r) or s.startswith(str(r).rstrip(os.sep) + os.sep)), None)

    def _add(self, acq: Acquisition) -> None:
        if acq.key in self._cands:
            return
        if is_spin_standard(acq.key, self._root_of(acq.key), self.standards):
            return
        done = self._done.get(acq.key)
        if done is not None and done == quick_signature(acq):
            return
        self._done.pop(acq.key, None)
        self._cands[acq.key] = _Cand(acq)

    def _rescan(self) -> None:
        found: list[Acquisition] = []
        for r in self.roots:
            try:
                found.extend(discover(r))
            except OSError as e:
                log.warning("rescan of %s failed: %s", r, e)
        for a in found:
            self._add(a)
        self._last_rescan = time.monotonic()

    def _drain_dirty(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
            closed, self._closed = self._closed, set()
        dirs: set[Path] = set()
        for p in dirty:
            root = self._root_of(p)
            if root is None or hidden(p, root):
                continue
            try:
                a = acquisition_for(p, root)
            except OSError:
                a = None
            if a is not None:
                if self._root_of(a.key) is not None:
                    self._add(a)
                    if p in closed:
                        self._mark_closed(a, p)
                continue
            if p.is_dir():
                dirs.add(p)
            elif p.parent != root and p.parent.exists():
                dirs.add(p.parent)
        now = time.monotonic()
        for d in dirs:
            # a new folder may be filled before the observer watches it: look
            # into it again on every step for a while (see _step)
            self._new_dirs[d] = now + max(2.0 * self.quiet_s, 5.0)
        self._scan_new_dirs()

    def _mark_closed(self, acq: Acquisition, path: Path) -> None:
        """A close-write / moved-to event ending the writing (the data file, the largest of the
        acquisition's, closed; the acquisition renamed into place; Bruker's closing file):
        remember the signature it left, any later change voids it.  A header closed while a
        preallocated data file is still being filled does not count."""
        c = self._cands.get(acq.key)
        sig = quick_signature(acq) if c is not None else ()
        data = max(sig, key=lambda t: t[1])[0] if sig else None  # (name, size, mtime_ns)
        if c is not None and (path == acq.key or path.name in (data, "audita.txt")):
            c.closed_sig = sig

    def _scan_new_dirs(self) -> None:
        now = time.monotonic()
        for d, deadline in list(self._new_dirs.items()):
            found = []
            try:
                found = discover(d) if d.is_dir() else []
            except OSError:
                pass
            for a in found:
                self._add(a)
            if found or now > deadline or not d.exists():
                self._new_dirs.pop(d, None)

    def _loop(self) -> None:
        try:
            self._rescan()
        except Exception:
            log.exception("initial scan failed")
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:
                self.stats["errors"] += 1
                log.exception("watcher step failed; carrying on")
                time.sleep(self.poll_interval_s)
            if self._stop.is_set():
                break
            if self.gc_control:
                self._collect_idle()
            wait = self.rescan_s - (time.monotonic() - self._last_rescan)
            if self._cands or self._new_dirs:
                wait = min(wait, self.poll_interval_s / 2)
            self._wake.wait(max(0.0, min(wait, self.rescan_s)))
            self._wake.clear()

    def _step(self) -> None:
        self._drain_dirty()
        if self._new_dirs:
            self._scan_new_dirs()
        if time.monotonic() - self._last_rescan >= self.rescan_s:
            self._rescan()
        now_m, now_w = time.monotonic(), time.time()
        ready: list[_Cand] = []
        for key, c in list(self._cands.items()):
            sig = quick_signature(c.acq)
            if sig != c.sig:
                if c.sig and c.tries:  # new bytes after a failure: start afresh
                    c.tries, c.first_fail, c.next_try = 0, None, 0.0
                c.sig, c.since = sig, now_m
            if not sig:  # everything vanished (renamed away, deleted)
                if not any(f.exists() for f in c.acq.files) and not c.acq.key.exists():
                    del self._cands[key]
                continue
            # a close-write / moved-to event with nothing changed since: the writer is done
            settle = 0.0 if (not self.polling and c.closed_sig == sig) else self.settle_s
            chk = check_complete(
                c.acq, now_m - c.since, settle_s=settle, quiet_s=self.quiet_s,
                max_scan_wait_s=self.max_scan_wait_s, now=now_w,
            )
            c.last_error = c.last_error if c.tries else chk.reason
            if (
                not chk.complete and chk.expected_bytes is not None and chk.actual_bytes is not None
                and chk.actual_bytes < chk.expected_bytes and now_m - c.since >= self.give_up_s
            ):
                # truncated and no longer growing: set aside (new bytes re-open it)
                reason = (f"{c.acq.read_path}: truncated, {chk.reason}; "
                          f"no change for {now_m - c.since:.0f} s")
                log.warning("setting aside %s", reason)
                self.store.log_skip(c.acq.read_path, reason, None)
                self.stats["skipped"] += 1
                self._finish(c)
                continue
            if chk.complete and now_m >= c.next_try:
                ready.append(c)
        if len(ready) > 1:  # acquisition order (reads headers: not for the usual one file)
            ready.sort(key=lambda c: sort_key(c.acq))
        for c in ready:
            if self._stop.is_set():
                return
            self._drain_dirty()  # keep the event set small during long bursts
            self.idle.clear()
            try:
                with no_collection() if self.gc_control else contextlib.nullcontext():
                    self._process(c)
            except Exception as e:
                log.exception("processing %s failed", c.acq.key)
                self._failed(c, f"{c.acq.read_path}: internal error ({type(e).__name__}: {e})", "")
            finally:
                self.idle.set()

    def _collect_idle(self) -> None:
        """Collect between files (:mod:`ingest.live.gcpause`); freeze what the warm-up loaded."""
        if self._warm is not None and self._warm.is_set():
            self._warm = None
            freeze_startup(full=False)  # what the warm-up loaded (numba's compiled fits)
        with self._dirty_lock:
            dirty = bool(self._dirty)
        if not dirty and not self._cands:  # nothing in hand: the next file is not waiting on us
            collect_idle()

    def _finish(self, c: _Cand) -> None:
        self._cands.pop(c.acq.key, None)
        self._done[c.acq.key] = c.sig

    def _process(self, c: _Cand) -> None:
        acq = c.acq
        sig = quick_signature(acq)
        if sig != c.sig:  # changed since the completion check: look again later
            c.sig, c.since = sig, time.monotonic()
            return
        if self.store.seen_signature(str(acq.key), [t for t in sig if t[0] != CLOSING_FILE]):
            self._finish(c)
            return
        hashing = self._hashing.submit(acq)  # the content key, hashed while the spectra are read
        try:
            rows = process_acquisition(acq, self._extractor, reader=self._reader)  # type: ignore[arg-type]
        except (IngestError, OSError) as e:
            rows, err = [], str(e) if isinstance(e, IngestError) else f"{acq.read_path}: {e}"
        else:
            err = ""
        try:
            fp, files = hashing.result()
        except OSError as e:
            self._failed(c, err or f"{acq.read_path}: {e}", "")
            return
        if self.store.seen(fp) or self.store.was_skipped(fp):  # these bytes are stored or set aside
            self.stats["duplicates"] += 1
            self._finish(c)
            return
        if err:
            self._failed(c, err, fp)
            return
        for r in rows:
            apply_clock_offset(r, self.clock_offset_s)
        try:
            ids = self.store.append(rows, str(acq.key), fp, files)
        except Exception as e:
            self.store_error = f"{type(e).__name__}: {e}"
            raise
        self.store_error = ""
        self._finish(c)
        if not ids:
            self.stats["duplicates"] += 1
            return
        self.stats["processed"] += 1
        self.stats["rows"] += len(ids)
        with self._rows_cond:
            self._rows_cond.notify_all()
        if self.on_row is not None:
            for r in rows:
                try:
                    self.on_row(r)
                except Exception:
                    log.exception("on_row callback failed for %s", acq.key)

    def _failed(self, c: _Cand, reason: str, fp: str) -> None:
        now = time.monotonic()
        c.tries += 1
        c.last_error = reason
        if c.first_fail is None:
            c.first_fail = now
        if c.tries < self.max_tries and now - c.first_fail < self.give_up_s:
            c.next_try = now + self.retry_s * 2 ** (c.tries - 1)
            self.stats["retries"] += 1
            log.info("retry %d for %s: %s", c.tries, c.acq.key, reason)
            return
        log.warning("setting aside %s after %d tries: %s", c.acq.key, c.tries, reason)
        self.store.log_skip(c.acq.read_path, reason, fp or None)
        self.stats["skipped"] += 1
        self._finish(c)
