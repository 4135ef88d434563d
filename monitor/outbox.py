"""The persistent outbox: alerts wait in the ledger until every active plugin has them.

``enqueue()`` writes each alert and one delivery row per active plugin inside the
caller's ledger transaction, before any plugin is called.  ``start()`` runs one worker
thread per plugin; it calls only that plugin's ``send_alert`` on a call thread with a
per-call timeout, and on an error or a timeout schedules a retry with exponential
backoff and jitter, dead-lettering the row after ``max_attempts``.  A raising, hanging or
slow plugin only delays itself.

Delivery works in batches of up to ``batch`` due rows: a plugin that implements the
``send_alert_batch`` hook gets the whole batch in one call (all delivered, or all retried);
one that only implements ``send_alert`` gets one call per alert.  The rows delivered in a
batch are marked delivered together, in one transaction after the batch (and before any
failure of the batch is recorded) — or right after a call, once the unmarked deliveries
span ``mark_interval`` seconds, so a slow plugin's deliveries are marked one by one.  So
the at-least-once window is at most one batch, and at most ``mark_interval`` seconds of
calls: a crash (kill -9) between a plugin call and that commit re-offers at most those
alerts of the batch in hand, never more; in normal operation and after a clean stop
nothing is sent twice.  ``batch = 1`` gives a one-alert window at a lower delivery rate.

A call abandoned at its timeout keeps its (daemon) thread; at most ``max_hung`` such
threads per plugin exist at once — beyond that the plugin is paused until one returns.
If an abandoned call later succeeds, the row is marked delivered then.

Settings (``[outbox]`` table, all optional): ``timeout`` (s per call, 10),
``max_attempts`` (8), ``backoff_base`` (s, 1.0), ``backoff_max`` (s, 300),
``poll_interval`` (s, 0.05), ``max_hung`` (2), ``batch`` (rows per fetch, 100),
``mark_interval`` (s, 0.05), ``seed`` (int, for the jitter; default from the OS).

Delivery states per (alert_id, plugin): ``pending`` (attempts = 0: never tried;
attempts > 0: *failed*, waiting for a retry), ``delivered``, ``dead``.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any

import numpy as np
import structlog

from monitor.alerts import FIELDS, Alert
from monitor.plugins import alert_plugins, call_one, plugin_tables

try:  # several times faster than json for the payload of every alert
    import orjson

    _loads = orjson.loads
    # orjson encodes a dataclass as its fields, in order: when those are exactly FIELDS,
    # the alert itself is the payload (no intermediate dict)
    _DIRECT = tuple(f.name for f in dataclasses.fields(Alert)) == FIELDS

    def _payload(alert: Alert) -> str:
        """The alert's FIELDS as JSON (json for what orjson refuses: lone surrogates)."""
        try:
            if _DIRECT:
                return orjson.dumps(alert).decode()
            return orjson.dumps({name: getattr(alert, name) for name in FIELDS}).decode()
        except TypeError:
            return json.dumps({name: getattr(alert, name) for name in FIELDS},
                              ensure_ascii=False)
except ImportError:  # pragma: no cover - orjson is a core dependency
    _loads = json.loads

    def _payload(alert: Alert) -> str:
        """The alert's FIELDS as JSON (a plain getattr: dataclasses.asdict deep-copies)."""
        return json.dumps({name: getattr(alert, name) for name in FIELDS}, ensure_ascii=False)

# the payload format, public for sources that keep alerts before they enter the outbox
alert_payload = _payload
load_payload = _loads

log = structlog.get_logger("monitor.outbox")

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_alerts (
    alert_id   TEXT PRIMARY KEY,
    payload    TEXT NOT NULL,          -- JSON of Alert.to_dict()
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_deliveries (
    alert_id        TEXT NOT NULL,
    plugin          TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    updated_at      REAL NOT NULL,
    PRIMARY KEY (alert_id, plugin)
);
CREATE INDEX IF NOT EXISTS outbox_pending  -- partial: only what still waits
    ON outbox_deliveries (plugin, next_attempt_at) WHERE status = 'pending';
"""

ERROR_CHARS = 500  # longest error message kept in last_error


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the outbox tables (idempotent); registered with the ledger."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


@dataclass(frozen=True)
class OutboxSettings:
    timeout: float = 10.0
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    poll_interval: float = 0.05
    max_hung: int = 2
    batch: int = 100
    mark_interval: float = 0.05
    seed: int | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> OutboxSettings:
        """Read ``settings.raw["outbox"]`` (missing keys → defaults)."""
        raw = (getattr(settings, "raw", None) or {}).get("outbox", {}) or {}
        known = {name: raw[name] for name in cls.__dataclass_fields__ if name in raw}
        return cls(**known)


def backoff_delay(attempts: int, cfg: OutboxSettings, rng: np.random.Generator) -> float:
    """Seconds before retry number ``attempts``: base·2^(attempts−1), capped, × U[0.5, 1)."""
    ceiling = min(cfg.backoff_max, cfg.backoff_base * 2.0 ** max(attempts - 1, 0))
    return float(ceiling * rng.uniform(0.5, 1.0))


class CallLane:
    """One plugin's call thread: runs calls one at a time; gives up on one after a timeout.

    A call that times out keeps running on its (daemon) thread, which exits when the call
    returns; the lane starts a fresh thread for the next call.  ``hung`` counts them.
    """

    def __init__(self, name: str, on_late: Callable[[Future, Any], None] | None = None):
        self.name = name
        self.hung = 0
        self._lock = threading.Lock()
        self._jobs: SimpleQueue | None = None
        self._on_late = on_late

    def run(self, fn: Callable[[], Any], timeout: float, tag: Any = None) -> tuple[str, Any]:
        """("ok", result) | ("error", exception) | ("timeout", None)."""
        if self._jobs is None:
            self._jobs = self._spawn()
        future: Future = Future()
        self._jobs.put((fn, future))
        try:
            return "ok", future.result(timeout)
        except FutureTimeout:
            self._abandon(future, tag)
            return "timeout", None
        except BaseException as error:  # the plugin's own failure (even SystemExit)
            return "error", error

    def _abandon(self, future: Future, tag: Any) -> None:
        jobs, self._jobs = self._jobs, None
        jobs.put(None)  # the hung thread exits once its call returns
        with self._lock:
            self.hung += 1
        future.add_done_callback(lambda done: self._released(done, tag))

    def _released(self, future: Future, tag: Any) -> None:
        with self._lock:
            self.hung -= 1
        if self._on_late is not None:
            self._on_late(future, tag)

    def _spawn(self) -> SimpleQueue:
        jobs: SimpleQueue = SimpleQueue()
        thread = threading.Thread(
            target=_serve, args=(jobs,), daemon=True, name=f"outbox-call-{self.name}"
        )
        thread.start()
        return jobs


def _serve(jobs: SimpleQueue) -> None:
    while (job := jobs.get()) is not None:
        fn, future = job
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(fn())
        except BaseException as error:  # noqa: BLE001 — handed to the waiting worker
            future.set_exception(error)


class Outbox:
    """Persistent, per-plugin alert delivery (see the module docstring)."""

    def __init__(self, ledger: Any, pm: Any, settings: Any = None,
                 notify: Callable[[], None] | None = None):
        """``notify``: enqueue only, never deliver (a scoring worker, monitor/workers.py);
        the daemon calls it after committing new alerts, to wake the process that
        delivers them."""
        self.ledger = ledger
        self.notify = notify
        self.pm = pm
        self.settings = settings
        self.cfg = OutboxSettings.from_settings(settings)
        self.plugins = alert_plugins(pm, settings)
        self.counters = {name: {"errors": 0, "timeouts": 0} for name in self.plugins}
        self._workers: list[_PluginWorker] = []
        ledger.register_schema(create_schema)

    # -- writing, inside the caller's transaction ------------------------------------
    def enqueue(self, conn: sqlite3.Connection, alerts: Iterable[Alert]) -> int:
        """Store alerts + one pending delivery per active plugin; return how many were new.

        Both inserts are INSERT OR IGNORE on the primary keys, so an alert offered again
        (a post reprocessed after a crash) never gets a second delivery to a plugin.
        """
        alerts = list(alerts)
        if not alerts:
            return 0
        now = time.time()
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO outbox_alerts (alert_id, payload, created_at) VALUES (?, ?, ?)",
            [(a.alert_id, _payload(a), now) for a in alerts],
        )
        new = conn.total_changes - before
        if new:
            conn.executemany(
                "INSERT OR IGNORE INTO outbox_deliveries"
                " (alert_id, plugin, next_attempt_at, updated_at) VALUES (?, ?, ?, ?)",
                [(a.alert_id, name, now, now) for a in alerts for name in self.plugins],
            )
            self.wake()
        return new

    def wake(self) -> None:
        """Nudge the workers to look for due deliveries now (e.g. after a commit)."""
        for worker in self._workers:
            worker.wake.set()

    # -- the worker threads ----------------------------------------------------------
    def start(self) -> None:
        """Start one delivery worker per active plugin (each calls monitor_start first)."""
        if self._workers or self.notify is not None:
            return
        seeds = np.random.SeedSequence(self.cfg.seed).spawn(max(len(self.plugins), 1))
        tables = plugin_tables(self.settings)
        for name, seed in zip(self.plugins, seeds):
            worker = _PluginWorker(self, name, tables.get(name, {}), np.random.default_rng(seed))
            self._workers.append(worker)
            worker.start()
        log.info("outbox_started", plugins=self.plugins)

    def stop(self, timeout: float = 5.0) -> bool:
        """Drain what is due (for up to half of ``timeout``), then stop the workers (each
        calls monitor_stop); True when all ended in time.  Undelivered rows stay pending."""
        deadline = time.monotonic() + timeout
        self._drain(time.monotonic() + timeout / 2)
        for worker in self._workers:
            worker.stopping.set()
            worker.wake.set()
        for worker in self._workers:
            worker.join(max(deadline - time.monotonic(), 0.0))
        alive = [worker.name for worker in self._workers if worker.is_alive()]
        if alive:
            log.warning("outbox_stop_timeout", busy=alive)
        self._workers = []
        return not alive

    def _drain(self, until: float) -> None:
        """Wait while a working (not paused, alive) plugin still has due deliveries."""
        while time.monotonic() < until:
            working = [w.plugin for w in self._workers
                       if w.is_alive() and w.lane.hung < self.cfg.max_hung]
            if not working or not self._has_due(working):
                return
            time.sleep(self.cfg.poll_interval)

    def _has_due(self, plugins: list[str]) -> bool:
        marks = ",".join("?" * len(plugins))
        rows = self.ledger.query(
            "SELECT 1 FROM outbox_deliveries WHERE status = 'pending'"
            f" AND next_attempt_at <= ? AND plugin IN ({marks}) LIMIT 1",
            (time.time(), *plugins),
        )
        return bool(rows)

    # -- reading ---------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, int]]:
        """Per plugin: pending, failed (waiting for a retry), delivered, dead, errors,
        timeouts (calls since start), hung (abandoned calls still running)."""
        with self.ledger.transaction() as conn:
            counts = delivery_counts(conn)
        hung = {worker.plugin: worker.lane.hung for worker in self._workers}
        for name in self.plugins:
            row = counts.setdefault(name, _empty_counts())
            row.update(self.counters[name])
            row["hung"] = hung.get(name, 0)
        return counts

    # -- used by the workers ---------------------------------------------------------
    def due(self, plugin: str, limit: int) -> list[tuple[str, int, Alert]]:
        """Up to ``limit`` deliveries of ``plugin`` whose time has come, oldest first."""
        rows = self.ledger.query(  # a snapshot read: never waits for a writer's commit
            "SELECT d.alert_id, d.attempts, a.payload FROM outbox_deliveries d"
            " JOIN outbox_alerts a ON a.alert_id = d.alert_id"
            " WHERE d.plugin = ? AND d.status = 'pending' AND d.next_attempt_at <= ?"
            " ORDER BY d.next_attempt_at, d.rowid LIMIT ?",
            (plugin, time.time(), limit),
        )
        return [(row[0], row[1], Alert.from_dict(_loads(row[2]))) for row in rows]

    def mark_delivered(self, plugin: str, alert_id: str) -> None:
        self.mark_delivered_many(plugin, [alert_id])

    def mark_delivered_many(self, plugin: str, alert_ids: list[str]) -> None:
        """The rows of ``alert_ids`` for ``plugin`` are delivered: one transaction."""
        if not alert_ids:
            return
        now = time.time()
        with self.ledger.transaction() as conn:  # one statement: the ids as a JSON array
            conn.execute(
                "UPDATE outbox_deliveries SET status = 'delivered', last_error = NULL,"
                " updated_at = ? WHERE plugin = ?"
                " AND alert_id IN (SELECT value FROM json_each(?))",
                (now, plugin, _json_array(alert_ids)),
            )

    def mark_failed(self, plugin: str, alert_id: str, attempts: int, error: str,
                    delay: float) -> str:
        """Record a failed attempt; returns the new status (pending or dead)."""
        return self.mark_failed_many(plugin, [(alert_id, attempts)], error, delay)[0]

    def mark_failed_many(self, plugin: str, failures: list[tuple[str, int]], error: str,
                         delay: float) -> list[str]:
        """Record failed attempts [(alert_id, attempts)], all due again at the same time
        (one transaction); returns the new statuses (pending or dead)."""
        statuses = ["dead" if attempts >= self.cfg.max_attempts else "pending"
                    for _, attempts in failures]
        now = time.time()
        with self.ledger.transaction() as conn:
            conn.executemany(
                "UPDATE outbox_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
                " last_error = ?, updated_at = ?"
                " WHERE alert_id = ? AND plugin = ? AND status = 'pending'",
                [(status, attempts, now + delay, error[:ERROR_CHARS], now, alert_id, plugin)
                 for status, (alert_id, attempts) in zip(statuses, failures)],
            )
        return statuses


def _json_array(strings: list[str]) -> str:
    return json.dumps(strings, ensure_ascii=False)


class _PluginWorker(threading.Thread):
    """Delivers one plugin's due rows, one call at a time, until told to stop."""

    def __init__(self, outbox: Outbox, plugin: str, table: dict, rng: np.random.Generator):
        super().__init__(name=f"outbox-{plugin}", daemon=True)
        self.outbox = outbox
        self.plugin = plugin
        self.table = table
        self.rng = rng
        self.cfg = outbox.cfg
        self.lane = CallLane(plugin, on_late=self._late_result)
        self.batch_hook = implements(outbox.pm, plugin, "send_alert_batch")
        self.wake = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        self._lifecycle("monitor_start", plugin_config=self.table,
                        settings=self.outbox.settings)
        while not self.stopping.is_set():
            try:
                busy = self._round()
            except Exception:  # the ledger is unavailable: log, wait, try again
                log.exception("outbox_worker_error", plugin=self.plugin)
                busy = False
            if not busy:
                self.wake.wait(self.cfg.poll_interval)
                self.wake.clear()
        self._lifecycle("monitor_stop")

    def _round(self) -> bool:
        """Deliver what is due; False when there was nothing to do (or the lane is full)."""
        if self.lane.hung >= self.cfg.max_hung:
            return False
        due = self.outbox.due(self.plugin, self.cfg.batch)
        if due and self.batch_hook:
            self._deliver_batch(due)
            return True
        delivered: list[str] = []
        failed: list[tuple[str, int, str, str]] = []
        oldest = 0.0  # when the first call of the unmarked deliveries started
        try:
            for alert_id, attempts, alert in due:
                if self.stopping.is_set() or self.lane.hung >= self.cfg.max_hung:
                    break
                started = time.monotonic()
                outcome, value = self.lane.run(
                    lambda alert=alert: call_one(self.outbox.pm, self.plugin, "send_alert",
                                                 alert=alert),
                    self.cfg.timeout,
                    tag=alert_id,
                )
                if outcome == "ok":
                    oldest = oldest if delivered else started
                    delivered.append(alert_id)
                    if time.monotonic() - oldest >= self.cfg.mark_interval:  # a slow plugin
                        self.outbox.mark_delivered_many(self.plugin, delivered)
                        delivered = []
                else:
                    failed.append((alert_id, attempts, outcome, value))
        finally:  # the batch's deliveries commit first: its whole at-least-once window
            self.outbox.mark_delivered_many(self.plugin, delivered)
        for alert_id, attempts, outcome, value in failed:
            self._failed(alert_id, attempts, outcome, value)
        return bool(due)

    def _deliver_batch(self, due: list[tuple[str, int, Alert]]) -> None:
        """One ``send_alert_batch`` call for the whole batch: all delivered or all retried."""
        ids = [alert_id for alert_id, _, _ in due]
        outcome, value = self.lane.run(
            lambda: call_one(self.outbox.pm, self.plugin, "send_alert_batch",
                             alerts=[alert for _, _, alert in due]),
            self.cfg.timeout,
            tag=ids,
        )
        if outcome == "ok":
            self.outbox.mark_delivered_many(self.plugin, ids)
            return
        self._count(outcome)
        error = self._error(outcome, value)
        # one retry time for the whole batch, so it is retried as one batch again
        delay = backoff_delay(max(attempts for _, attempts, _ in due) + 1, self.cfg, self.rng)
        statuses = self.outbox.mark_failed_many(
            self.plugin, [(alert_id, attempts + 1) for alert_id, attempts, _ in due], error,
            delay)
        log.warning("alert_batch_delivery_failed", plugin=self.plugin, alerts=len(due),
                    first=ids[0], error=error, dead=statuses.count("dead"),
                    retry_in=round(delay, 3))

    def _error(self, outcome: str, value: Any) -> str:
        return (f"timeout after {self.cfg.timeout:g}s" if outcome == "timeout"
                else f"{type(value).__name__}: {value}")

    def _failed(self, alert_id: str, attempts: int, outcome: str, value: Any) -> None:
        """Record a failed send_alert call (error or timeout); schedule its retry."""
        self._count(outcome)
        error = self._error(outcome, value)
        delay = backoff_delay(attempts + 1, self.cfg, self.rng)
        status = self.outbox.mark_failed(self.plugin, alert_id, attempts + 1, error, delay)
        log.warning("alert_delivery_failed", plugin=self.plugin, alert_id=alert_id,
                    attempts=attempts + 1, error=error, status=status,
                    retry_in=None if status == "dead" else round(delay, 3))

    def _count(self, outcome: str) -> None:
        kind = "timeouts" if outcome == "timeout" else "errors"
        self.outbox.counters[self.plugin][kind] += 1

    def _late_result(self, future: Future, alert_id: Any) -> None:
        """An abandoned call returned: if it succeeded, its rows are delivered after all.
        ``alert_id``: one id (send_alert) or a list of ids (send_alert_batch)."""
        if alert_id is None or future.exception() is not None:
            return
        ids = alert_id if isinstance(alert_id, list) else [alert_id]
        now = time.time()
        try:
            with self.outbox.ledger.transaction() as conn:
                conn.executemany(
                    "UPDATE outbox_deliveries SET status = 'delivered', updated_at = ?"
                    " WHERE alert_id = ? AND plugin = ? AND status != 'delivered'",
                    [(now, one, self.plugin) for one in ids],
                )
        except Exception:
            log.exception("outbox_late_result_error", plugin=self.plugin)

    def _lifecycle(self, hook: str, **kwargs: Any) -> None:
        """monitor_start / monitor_stop for this plugin, with the call timeout; errors logged."""
        outcome, value = self.lane.run(
            lambda: call_one(self.outbox.pm, self.plugin, hook, **kwargs), self.cfg.timeout
        )
        if outcome != "ok":
            self.outbox.counters[self.plugin]["errors"] += 1
            error = "timeout" if outcome == "timeout" else f"{type(value).__name__}: {value}"
            log.error("plugin_hook_failed", plugin=self.plugin, hook=hook, error=error)


def implements(pm: Any, plugin: str, hook: str) -> bool:
    """Whether ``plugin`` has an implementation of ``hook`` (False for an unknown hook)."""
    caller = getattr(pm.hook, hook, None)
    return caller is not None and any(
        impl.plugin_name == plugin for impl in caller.get_hookimpls())


def _empty_counts() -> dict[str, int]:
    return {"pending": 0, "failed": 0, "delivered": 0, "dead": 0}


def delivery_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """{plugin: {pending, failed, delivered, dead}} from the delivery table."""
    counts: dict[str, dict[str, int]] = {}
    rows = conn.execute(
        "SELECT plugin, CASE WHEN status = 'pending' AND attempts > 0 THEN 'failed'"
        " ELSE status END AS state, COUNT(*) FROM outbox_deliveries GROUP BY plugin, state"
    ).fetchall()
    for plugin, state, count in rows:
        counts.setdefault(plugin, _empty_counts())[state] = count
    return counts


def dead_letters(conn: sqlite3.Connection, plugin: str | None = None,
                 include_failed: bool = False) -> list[dict[str, Any]]:
    """Dead (and optionally failing) deliveries with their alert, oldest first."""
    states = "(d.status = 'dead' OR (d.status = 'pending' AND d.attempts > 0))" \
        if include_failed else "d.status = 'dead'"
    query = (
        "SELECT d.alert_id, d.plugin, d.status, d.attempts, d.last_error, d.updated_at,"
        f" a.payload FROM outbox_deliveries d JOIN outbox_alerts a ON a.alert_id = d.alert_id"
        f" WHERE {states}" + (" AND d.plugin = ?" if plugin else "") +
        " ORDER BY d.updated_at, d.rowid"
    )
    rows = conn.execute(query, (plugin,) if plugin else ()).fetchall()
    return [
        {
            "alert_id": alert_id, "plugin": name, "status": status, "attempts": attempts,
            "last_error": error, "updated_at": updated, "alert": json.loads(payload),
        }
        for alert_id, name, status, attempts, error, updated, payload in rows
    ]


def requeue(conn: sqlite3.Connection, plugin: str | None = None,
            alert_ids: Iterable[str] = ()) -> int:
    """Dead deliveries (of ``plugin``, or only ``alert_ids``) back to pending, attempts 0."""
    now = time.time()
    query = ("UPDATE outbox_deliveries SET status = 'pending', attempts = 0,"
             " next_attempt_at = ?, updated_at = ? WHERE status = 'dead'")
    params: list[Any] = [now, now]
    if plugin:
        query += " AND plugin = ?"
        params.append(plugin)
    ids = list(alert_ids)
    if ids:
        query += f" AND alert_id IN ({','.join('?' * len(ids))})"
        params.extend(ids)
    return conn.execute(query, params).rowcount
