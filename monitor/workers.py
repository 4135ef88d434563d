"""Several scoring processes over one feed directory: ``workers = N`` (``run --workers N``).

One Python process scores on one core.  With ``workers > 1`` the ``run`` process
becomes the *coordinator* and starts N scoring *workers* (spawned processes):

    coordinator (the run process)              worker i of N (spawned, restarted if it dies)
      learner: labelled posts from the inbox     DirectorySource over the files whose name
      outbox: delivers every worker's alerts       hashes to i (partition_of)
      meta/status, metrics, the worker pool      score, alert rules, explanations
                                                 ONE transaction per file: posts done,
                                                   alerts → outbox, labelled posts → inbox
                                                 follows the learner's model versions

The rules hold as with one process: every file is owned by exactly one worker, whose
transaction is all or nothing; a labelled post reaches the learner through the inbox
(monitor/sources/inbox.py) inside that transaction, and leaves it inside the learner's;
alerts enter the shared outbox with INSERT OR IGNORE.  ``kill -9`` of a worker: the
coordinator starts it again and it redoes the file it had in hand.  ``kill -9`` of the
coordinator: the workers die with it (PR_SET_PDEATHSIG on Linux; elsewhere they notice
within half a second and stop), and the next start picks everything up.

What differs: a worker scores with the learner's latest *checkpoint* (a version, every
``learning.checkpoint_every`` updates), not with the weights of the last labelled post.
"""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import multiprocessing.connection
import os
import signal
import sqlite3
import threading
import time
from typing import Any

import structlog

log = structlog.get_logger("monitor.workers")

RESTART_SECONDS = 1.0  # a worker that died is started again after this, doubled up to
RESTART_MAX_SECONDS = 60.0  # this while it keeps dying within HEALTHY_SECONDS of a start
HEALTHY_SECONDS = 30.0
STOP_SECONDS = 6.0  # how long a worker may drain after SIGTERM before it is killed
FOLLOW_SECONDS = 0.5  # how often a worker looks for a new model version


# ---------------------------------------------------------------------- coordinator

def build_coordinator(settings, model, pm, metrics=None):
    """The Daemon of the ``run`` process when ``settings.workers > 1``."""
    from monitor.daemon import Daemon, make_learner
    from monitor.ledger import Ledger
    from monitor.outbox import Outbox
    from monitor.rules import AlertRules
    from monitor.sources import open_source
    from monitor.sources.directory import DirectorySource
    from monitor.sources.inbox import InboxSource

    directory = open_source(settings)
    if not isinstance(directory, DirectorySource):
        raise ValueError("workers > 1 needs the feed directory; for a Redis stream, "
                         "start one daemon per worker instead (README: Scaling out)")
    ledger = Ledger(settings.state)
    outbox = Outbox(ledger, pm, settings)
    learner = make_learner(model, ledger, settings)
    rules = AlertRules(settings, learner.model if learner is not None else model)
    source = InboxSource(ledger, directory.feed_dir, name=directory.name)
    daemon = Daemon(settings, model, source, ledger, outbox, rules, learner, metrics)
    daemon.pool = WorkerPool(settings, settings.workers, outbox, metrics)
    return daemon


class WorkerPool:
    """The coordinator's N worker processes: started after the learner resumed, checked
    on every loop of the daemon (a dead one is restarted), stopped first at shutdown."""

    def __init__(self, settings, count: int, outbox, metrics=None):
        from monitor.logs import CONFIGURED

        self.settings = settings
        self.count = count
        self.outbox = outbox
        self.metrics = metrics
        self.context = multiprocessing.get_context("spawn")  # no inherited threads or locks
        self.log_config = CONFIGURED
        self.processes: list[Any] = [None] * count
        # one pipe per worker process, worker → coordinator: ("wake",) after a commit with
        # new alerts, ("item", ...) an item's figures for the metrics.  Never a lock shared
        # between processes: a worker killed mid-message breaks only its own pipe.
        self._pipes: list[Any] = []
        self._pipes_lock = threading.Lock()
        self.restart_at = [0.0] * count
        self.started_at = [0.0] * count
        self.delays = [RESTART_SECONDS] * count
        self.restarts = 0
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.count):
            self._spawn(index)
        self._thread(self._listen, "workers-listen")
        log.info("workers_started", workers=self.count,
                 pids=[process.pid for process in self.processes])

    def check(self) -> None:
        """Restart a worker that exited while the pool runs (from the daemon's loop:
        PR_SET_PDEATHSIG follows the thread that started a process)."""
        if self.stopping.is_set():
            return
        now = time.monotonic()
        for index, process in enumerate(self.processes):
            if process is None or process.is_alive():
                continue
            if not self.restart_at[index]:
                if now - self.started_at[index] >= HEALTHY_SECONDS:
                    self.delays[index] = RESTART_SECONDS
                log.error("worker_exited", worker=index, pid=process.pid,
                          exitcode=process.exitcode, restart_in=self.delays[index])
                self.restart_at[index] = now + self.delays[index]
                self.delays[index] = min(2 * self.delays[index], RESTART_MAX_SECONDS)
            elif now >= self.restart_at[index]:
                self.restart_at[index] = 0.0
                self.restarts += 1
                self._spawn(index)
                log.warning("worker_restarted", worker=index, pid=self.processes[index].pid)

    def stop(self) -> None:
        """SIGTERM every worker (each finishes its file and commits), wait, then kill."""
        self.stopping.set()
        alive = [p for p in self.processes if p is not None and p.is_alive()]
        for process in alive:
            os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in alive:
            process.join(max(deadline - time.monotonic(), 0.0))
            if process.is_alive():  # its stacks to stderr (faulthandler), then SIGKILL:
                log.error("worker_stop_timeout", pid=process.pid)  # as safe as a crash
                os.kill(process.pid, signal.SIGUSR1)
                process.join(0.5)
                process.kill()
                process.join(5)
        for thread in self._threads:
            thread.join(2)
        log.info("workers_stopped", workers=self.count, restarts=self.restarts)

    def _spawn(self, index: int) -> None:
        reader, writer = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=worker_main, name=f"banana-monitor-worker-{index}", daemon=False,
            args=(self.settings, index, self.count, writer, self.metrics is not None,
                  os.getpid(), self.log_config),
        )
        process.start()
        self.started_at[index] = time.monotonic()
        writer.close()  # the worker has its copy: EOF here when it exits
        with self._pipes_lock:
            self._pipes.append(reader)
        self.processes[index] = process

    def _thread(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _listen(self) -> None:
        """The workers' messages: a commit with alerts → the outbox looks for due
        deliveries now; an item's figures → the metrics."""
        while not self.stopping.is_set():
            with self._pipes_lock:
                pipes = list(self._pipes)
            for pipe in multiprocessing.connection.wait(pipes, timeout=0.5):
                try:
                    message = pipe.recv()
                except (EOFError, OSError):  # the worker exited (or died mid-message)
                    with self._pipes_lock:
                        self._pipes.remove(pipe)
                    pipe.close()
                    continue
                try:
                    if message[0] == "wake":
                        self.outbox.wake()
                    elif message[0] == "item" and self.metrics is not None:
                        self.metrics.observe(*message[1:])
                except Exception:  # noqa: BLE001 - a bad message must not end the thread
                    log.exception("worker_message_failed", message=repr(message)[:200])


# ---------------------------------------------------------------------- worker

def worker_main(settings, index: int, count: int, pipe, metrics: bool, parent_pid: int,
                log_config: tuple[str, bool]) -> None:
    """A spawned worker process: score the files of partition ``index`` until stopped."""
    from monitor.logs import configure_logging

    configure_logging(*log_config)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # WorkerPool.stop: why stuck?
    _die_with_parent(parent_pid)
    structlog.contextvars.bind_contextvars(worker=index)
    daemon = build_worker(settings, index, count, pipe, metrics)
    daemon.install_signal_handlers()
    watcher = threading.Thread(target=_watch_parent, args=(parent_pid, daemon.stopping),
                               name="parent-watch", daemon=True)
    watcher.start()
    raise SystemExit(daemon.run())


def build_worker(settings, index: int, count: int, pipe=None, metrics: bool = False):
    """A worker's Daemon: the directory partition ``index`` of ``count``, no learner,
    labelled posts to the inbox, alerts enqueued for the coordinator to deliver."""
    from monitor.commands.common import load_model
    from monitor.daemon import Daemon
    from monitor.ledger import Ledger
    from monitor.outbox import Outbox
    from monitor.plugins import get_plugin_manager
    from monitor.rules import AlertRules
    from monitor.sources import inbox, open_source

    ledger = Ledger(settings.state)
    ledger.register_schema(inbox.create_schema)
    follower = VersionFollower(ledger, settings.state)
    model = follower.poll(force=True) or load_model(settings.model)
    pm = get_plugin_manager(settings=settings)  # the active plugins: one delivery row each
    outbox = Outbox(ledger, pm, settings,
                    notify=(lambda: _send(pipe, ("wake",))) if pipe is not None else _no_wake)
    source = open_source(settings)
    source.partition = (index, count)
    proxy = _MetricsProxy(pipe) if metrics and pipe is not None else None
    rules = AlertRules(settings, model)
    rules.digest_scope = f"worker{index}"  # the throttle is per worker (README)
    daemon = Daemon(settings, model, source, ledger, outbox, rules, None, proxy)
    daemon.worker = index
    daemon.label_sink = inbox.put
    daemon.follower = follower
    return daemon


def _no_wake() -> None:
    pass


def _send(pipe, message: tuple) -> None:
    """To the coordinator; if it is gone, nothing (this worker is being stopped)."""
    try:
        pipe.send(message)
    except OSError:
        pass


class VersionFollower:
    """A worker's view of the learner's model versions: ``poll`` returns the newest
    version's Model when it changed (a checkpoint or a rollback), else None."""

    def __init__(self, ledger, state_dir):
        from monitor.versions import VersionStore

        self.ledger = ledger
        self.store = VersionStore(state_dir)
        self.version: int | None = None
        self._next = 0.0

    def poll(self, force: bool = False):
        from monitor.model import Model, ModelError

        now = time.monotonic()
        if not force and now < self._next:
            return None
        self._next = now + FOLLOW_SECONDS
        try:
            rows = self.ledger.query("SELECT version FROM model_versions"
                                     " ORDER BY version DESC LIMIT 1")
        except sqlite3.OperationalError:  # no versions table yet
            return None
        if not rows or rows[0][0] == self.version:
            return None
        try:
            model = Model.load(self.store.path_of(rows[0][0]))
        except (ModelError, OSError) as error:  # being written or pruned: next time
            log.warning("model_version_unreadable", version=rows[0][0], error=str(error))
            return None
        self.version = rows[0][0]
        return model


class _MetricsProxy:
    """In a worker: the Metrics interface the daemon calls, sent to the coordinator."""

    def __init__(self, pipe):
        self.pipe = pipe

    def observe_item(self, item, new_alerts: int, latency: float | None) -> None:
        _send(self.pipe, ("item", bool(item.rejected), len(item.posts), new_alerts,
                          len(item.errors), latency))


def _die_with_parent(parent_pid: int) -> None:
    """Linux: the kernel SIGKILLs this process when the coordinator dies (kill -9 too),
    as a crash of one process would: the next start redoes what was not committed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: _watch_parent stops the worker instead
    if os.getppid() != parent_pid:  # it died before prctl took effect
        os._exit(1)


def _watch_parent(parent_pid: int, stopping: threading.Event) -> None:
    while not stopping.wait(0.5):
        if os.getppid() != parent_pid:
            log.warning("coordinator_gone", parent=parent_pid)
            stopping.set()
            return
