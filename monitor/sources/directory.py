"""The feed-directory source: watchdog events + a start-up scan + periodic rescans.

The watchdog callback only puts ``(kind, path)`` on a queue.  ``next_batch`` (the
daemon's thread) turns events into per-file states and hands out the oldest file that
is complete:

- renamed into the directory, or closed after writing (inotify close events) → now;
- seen by a scan or a created event (no writer observed) → once ``settle`` seconds
  passed since its last modification and its size did not change between looks;
- being written (modified events, no close yet) → when closed, or after
  ``write_timeout`` seconds without change (a lost close event).

With ``polling=True`` (NFS, CIFS, Docker bind mounts) watchdog's PollingObserver is
used and there are no close events, so readiness is by settle time.  A periodic rescan
reconciles anything the observer missed (inotify queue overflow); a dead observer
thread is restarted.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import structlog
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from monitor import feed
from monitor.sources.base import WorkItem

log = structlog.get_logger("monitor.sources.directory")

CLOSED, SEEN, WRITING = "closed", "seen", "writing"


@dataclass
class _Pending:
    """What we know about one file: how it was seen, its last size/mtime, since when."""

    status: str
    size: int = -1
    mtime: float = 0.0
    changed_at: float = 0.0  # monotonic time of the last size/mtime change we saw
    ready_at: float | None = None  # wall-clock time it became complete (close/rename)


class _Handler(FileSystemEventHandler):
    """Runs in the observer thread: only enqueue."""

    def __init__(self, events: queue.Queue):
        self.events = events

    def on_moved(self, event):
        if not event.is_directory:
            self.events.put((CLOSED, event.dest_path))

    def on_closed(self, event):
        if not event.is_directory:
            self.events.put((CLOSED, event.src_path))

    def on_created(self, event):
        if not event.is_directory:
            self.events.put((SEEN, event.src_path))

    def on_modified(self, event):
        if not event.is_directory:
            self.events.put((WRITING, event.src_path))


class DirectorySource:
    """A Source over one feed directory (non-recursive)."""

    def __init__(
        self,
        feed_dir: str | Path,
        polling: bool = False,
        settle: float = 1.0,
        write_timeout: float = 30.0,
        rescan_interval: float = 5.0,
        text_field: str = "text",
        id_field: str = "id",
        max_file_bytes: int = 256 * 1024 * 1024,
        partition: tuple[int, int] = (0, 1),
    ):
        self.feed_dir = Path(feed_dir).absolute()
        self.partition = partition  # (index, count): this worker's share of file names
        self.name = f"dir:{self.feed_dir}"
        self.polling = polling
        self.settle = settle
        self.write_timeout = max(write_timeout, settle)
        self.rescan_interval = rescan_interval
        self.text_field = text_field
        self.id_field = id_field
        self.max_file_bytes = max_file_bytes
        # queue.Queue, not SimpleQueue: on CPython 3.11 a SimpleQueue.get(timeout=…)
        # interrupted by a signal whose handler ends after the deadline waits *forever*
        # (it retries with a negative timeout).  Here that was a daemon that took its
        # SIGTERM (handler ran, stop flag set) but never came back to its main loop.
        self._events: queue.Queue = queue.Queue()
        self._pending: dict[str, _Pending] = {}
        self._in_flight: set[str] = set()
        self._observer = None
        self._next_rescan = 0.0
        self.observer_restarts = 0

    @classmethod
    def from_settings(cls, settings) -> DirectorySource:
        return cls(
            settings.feed,
            polling=settings.polling,
            settle=settings.settle,
            write_timeout=settings.write_timeout,
            rescan_interval=settings.rescan_interval,
            text_field=settings.text_field,
            id_field=settings.id_field,
            max_file_bytes=settings.max_file_bytes,
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.feed_dir.mkdir(parents=True, exist_ok=True)
        self._start_observer()
        self._rescan()

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=2)

    def _start_observer(self) -> None:
        observer = (PollingObserver(timeout=min(1.0, self.settle or 1.0))
                    if self.polling else Observer())
        observer.daemon = True
        observer.schedule(_Handler(self._events), str(self.feed_dir), recursive=False)
        observer.start()
        self._observer = observer

    def _check_observer(self) -> None:
        """A dead observer (or emitter) thread is restarted, followed by a rescan."""
        if self._observer is not None and not _alive(self._observer):
            log.warning("observer_restarted", feed=str(self.feed_dir))
            self.observer_restarts += 1
            try:
                self._observer.stop()
            except Exception:  # noqa: BLE001 - it is dead already; best effort
                pass
            self.feed_dir.mkdir(parents=True, exist_ok=True)  # deleted? as at start-up
            self._start_observer()
            self._next_rescan = 0.0

    # ------------------------------------------------------------------ the work

    def next_batch(self, timeout: float) -> WorkItem | None:
        """The oldest complete file, read and parsed; None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_observer()
            self._drain_events(block_until=None)
            if time.monotonic() >= self._next_rescan:
                self._rescan()
            item = self._take_ready()
            if item is not None:
                return item
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._drain_events(block_until=time.monotonic() + min(remaining, 0.05))

    def ack(self, item: WorkItem) -> None:
        """After the ledger commit: quarantine what was bad, move the file away.

        A file replaced under the same name while it was being processed stays in the
        feed directory and is offered again (it is new work).
        """
        path, identity = item.handle
        try:
            if item.rejected is not None:
                moved = feed.quarantine_file(self.feed_dir, path, item.key, item.rejected,
                                             identity)
            else:
                feed.write_quarantine(self.feed_dir, item)
                moved = feed.move_to_processed(self.feed_dir, path, item.key, identity)
        finally:
            self._in_flight.discard(path.name)
        if moved is None and (path.exists() or path.is_symlink()):
            log.info("file_replaced_while_processed", file=path.name)
            self._pending.setdefault(path.name, _Pending(CLOSED, ready_at=time.time()))

    def release(self, item: WorkItem) -> None:
        """Give an item back without acking it (it will be offered again)."""
        path = item.handle.path
        self._in_flight.discard(path.name)
        self._pending.setdefault(path.name, _Pending(CLOSED, ready_at=item.ready_at))

    def backlog(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ events → states

    def _drain_events(self, block_until: float | None) -> None:
        while True:
            try:
                if block_until is None:
                    kind, path = self._events.get_nowait()
                else:
                    wait = block_until - time.monotonic()
                    if wait <= 0:
                        return
                    kind, path = self._events.get(timeout=wait)
                    block_until = None  # got one; take the rest without waiting
            except queue.Empty:
                return
            self._note(kind, Path(path))

    def _note(self, kind: str, path: Path) -> None:
        if path.parent != self.feed_dir or not feed.is_candidate_name(path.name):
            return
        if not self._mine(path.name):
            return
        if path.name in self._in_flight:
            return
        if self.polling and kind != CLOSED:
            kind = SEEN  # polling sees no close events: every write waits for settle
        state = self._pending.get(path.name)
        if state is None:
            state = self._pending[path.name] = _Pending(kind, changed_at=time.monotonic())
        elif kind != SEEN:
            state.status = kind  # a close/rename completes it; a new write reopens it
        if kind == CLOSED:
            state.ready_at = _mtime_or_now(path)  # one clock for events and settled files

    def _rescan(self) -> None:
        self._next_rescan = time.monotonic() + self.rescan_interval
        present = set()
        for path in feed.list_candidates(self.feed_dir):
            if not self._mine(path.name):
                continue
            present.add(path.name)
            if path.name not in self._pending and path.name not in self._in_flight:
                self._pending[path.name] = _Pending(SEEN, changed_at=time.monotonic())
        for name in list(self._pending):
            if name not in present:
                del self._pending[name]

    def _take_ready(self) -> WorkItem | None:
        ready = self._ready_names()
        for name in ready:
            state = self._pending.pop(name)
            path = self.feed_dir / name
            try:
                item = feed.read_feed_file(path, self.feed_dir, self.text_field,
                                           self.id_field, self.max_file_bytes)
            except feed.FileVanished:
                log.warning("file_vanished", file=name)
                continue
            item.source_name = self.name
            item.ready_at = state.ready_at or state.mtime or time.time()
            self._in_flight.add(name)
            return item
        return None

    def _ready_names(self) -> list[str]:
        """Complete files, the earliest completed first.

        Only files not yet known complete are stat'ed; one found complete (settled) is
        promoted to CLOSED, so a large backlog costs one stat per file, not per call.
        """
        now_mono, now = time.monotonic(), time.time()
        ready = []
        for name, state in list(self._pending.items()):
            if state.status != CLOSED:
                try:
                    info = os.lstat(self.feed_dir / name)
                except FileNotFoundError:
                    del self._pending[name]
                    continue
                if (info.st_size, info.st_mtime) != (state.size, state.mtime):
                    state.size, state.mtime = info.st_size, info.st_mtime
                    state.changed_at = now_mono
                    continue  # changed since the last look: not settled
                if not self._is_complete(state, now_mono, now):
                    continue
                state.status, state.ready_at = CLOSED, state.mtime
            ready.append((state.ready_at or 0.0, name))
        ready.sort()
        return [name for _, name in ready]

    def _mine(self, name: str) -> bool:
        """Whether this worker owns the file name (every name has exactly one owner)."""
        index, count = self.partition
        return count == 1 or partition_of(name, count) == index

    def _is_complete(self, state: _Pending, now_mono: float, now: float) -> bool:
        quiet = now_mono - state.changed_at
        if state.status == WRITING:
            return quiet >= self.write_timeout
        return quiet >= self.settle or now - state.mtime >= self.settle + 1.0


def partition_of(name: str, count: int) -> int:
    """The worker (0 … count − 1) that owns a feed file name: a stable hash, the same in
    every process and run (Python's hash() of a str is salted per process)."""
    return zlib.crc32(os.fsencode(name)) % count


def _mtime_or_now(path: Path) -> float:
    """When a file was completed: its mtime (what a settled file is ordered by too)."""
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return time.time()


def _alive(observer) -> bool:
    """The observer's dispatcher thread and its directory emitter both run."""
    emitters = getattr(observer, "emitters", None)
    return observer.is_alive() and (emitters is None or all(e.is_alive() for e in emitters))
