"""The file-system observer of the live watcher: which events it asks the kernel for.

``watchdog``'s native observer (inotify on Linux) by default subscribes to every event,
including ``IN_OPEN`` and ``IN_CLOSE_NOWRITE``: then every file the watcher itself opens
to check, hash or read an acquisition wakes the observer's two Python threads, which take
the GIL from the worker in the middle of that very acquisition (measured: ~0.3-1.5 ms per
``open()`` of a watched file instead of ~10 us, 16 opens a BES3T file;
benchmarks/bench_watcher.py).  :data:`EVENT_TYPES` asks only for what the watcher acts on:
creation, modification, move/rename (``IN_MOVED_TO``), deletion and close-after-write
(``IN_CLOSE_WRITE``, the event-driven completion of :mod:`ingest.live.watch`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

__all__ = ["EVENT_TYPES", "hidden", "start_observer"]

#: The events the watcher acts on (no opens, no close-without-write, no directory listings).
EVENT_TYPES = (FileCreatedEvent, DirCreatedEvent, FileModifiedEvent, FileMovedEvent, DirMovedEvent,
               FileDeletedEvent, DirDeletedEvent, FileClosedEvent)

#: ``on_event(paths, done)``: the paths an event touched, and the path it says is finished
#: (closed after writing, or renamed into place), or None.
EventSink = Callable[[list[Path], "Path | None"], None]


def hidden(p: Path, root: Path) -> bool:
    """Inside a hidden or temporary folder/file (``.name``), e.g. a folder being
    written before it is renamed into place."""
    s, r = str(p), str(root).rstrip(os.sep) + os.sep
    if not s.startswith(r):  # string prefix: pathlib's relative_to costs ~70 us a call
        return False
    return any(part.startswith((".", "~")) for part in s[len(r):].split(os.sep))


class _Handler(FileSystemEventHandler):
    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    def on_any_event(self, event: Any) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # watchdog < 4 cannot filter them out at the source
        if event.is_directory and event.event_type == "modified":
            return  # a listing changed: the child's own event follows
        raw = [getattr(event, "src_path", None), getattr(event, "dest_path", None)]
        done = None
        if not event.is_directory and event.event_type == "closed":
            done = raw[0]
        elif event.event_type == "moved":
            done = raw[1]
        self.sink([Path(os.fsdecode(p)) for p in raw if p], Path(os.fsdecode(done)) if done else None)


def start_observer(roots: Iterable[Path], sink: EventSink, *, polling: bool, poll_interval_s: float) -> Any:
    """Start a daemon observer (native, or polling every ``poll_interval_s`` s) on ``roots``,
    recursively, calling ``sink`` from its thread; returns it (``stop()``/``join()`` it)."""
    obs = PollingObserver(timeout=poll_interval_s) if polling else Observer()
    handler = _Handler(sink)
    for r in roots:
        try:
            obs.schedule(handler, str(r), recursive=True, event_filter=list(EVENT_TYPES))
        except TypeError:  # watchdog < 4: no event_filter (every event reaches the handler)
            obs.schedule(handler, str(r), recursive=True)
    obs.daemon = True
    obs.start()
    return obs
