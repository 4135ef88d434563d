"""Posts from a Redis stream, read in a consumer group: N workers share one firehose.

Each worker is one consumer of the group.  ``next_batch`` hands the daemon a batch of
stream entries, in this order of preference:

1. at start, the entries this consumer already holds (its pending list, ``XREADGROUP
   ... 0``): a worker restarted on the same state dir finishes what it had;
2. every ``claim_interval`` seconds, entries another consumer has held longer than
   ``claim_idle`` seconds (``XAUTOCLAIM``): a ``kill -9``'ed worker's work moves on;
3. new entries (``XREADGROUP ... >``, blocking up to the daemon's timeout).

The daemon acks a batch (``XACK``) only after its ledger transaction committed, so an
entry is acknowledged after it was scored, learned from and its alerts accepted.

Entry fields: ``text`` (required), ``id`` (default: the entry id), ``label``
(optional), ``meta`` (optional JSON object); any other field is kept as metadata.

Roles: ``all`` (default) scores and learns; ``scorer`` skips labelled entries (acks them
unscored: the learner owns them) and follows the model the learner publishes;
``learner`` reads the stream in its own group (``GROUP:learner``), so it sees every
labelled entry whatever the number of scorers, skips unlabelled ones, and publishes
each checkpoint.  Settings: the ``[redis]`` table (see ``RedisSettings``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from monitor.posts import Post
from monitor.redis_state import (
    DEFAULT_DEDUP_TTL,
    DEFAULT_PREFIX,
    AlertDedup,
    ModelChannel,
    connect,
)
from monitor.sources.base import BadLine, WorkItem

log = structlog.get_logger("monitor.sources.redis")

ROLES = ("all", "scorer", "learner")
CONSUMER_FILE = "redis-consumer"
START_WAIT = 30.0  # seconds start() waits for an unreachable Redis


@dataclass(frozen=True)
class RedisSettings:
    """The ``[redis]`` table: every key is also ``BANANA_MONITOR_REDIS__KEY``."""

    stream: str = f"{DEFAULT_PREFIX}:posts"
    group: str = DEFAULT_PREFIX
    consumer: str | None = None  # default: hostname-pid, kept in the state dir
    role: str = "all"
    count: int = 500  # entries per batch
    claim_idle: float = 30.0  # seconds before another consumer's pending entry is claimed
    claim_interval: float = 5.0  # seconds between XAUTOCLAIM rounds
    dedup_ttl: int = DEFAULT_DEDUP_TTL  # seconds an alert id stays reserved
    model_poll: float = 0.5  # seconds between checks for a newly published model
    prefix: str = DEFAULT_PREFIX  # of the shared keys (alerts, model)

    @classmethod
    def from_raw(cls, table: dict[str, Any] | None) -> RedisSettings:
        table = dict(table or {})
        unknown = set(table) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown [redis] keys: {', '.join(sorted(unknown))}")
        settings = cls(**table)
        if settings.role not in ROLES:
            raise ValueError(f"redis role must be one of {', '.join(ROLES)}, got {settings.role!r}")
        for name in ("count", "claim_idle", "claim_interval", "dedup_ttl", "model_poll"):
            value = getattr(settings, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"redis.{name} must be a positive number, got {value!r}")
        return settings


def open_source(url: str, settings) -> RedisSource:
    """What ``monitor.sources.open_source`` calls for ``redis://`` URLs."""
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ValueError("--source redis://... needs redis-py: "
                         "pip install 'banana-monitor[redis]'") from None
    options = RedisSettings.from_raw((getattr(settings, "raw", None) or {}).get("redis"))
    return RedisSource(url, options, state_dir=Path(settings.state))


def describe_url(url: str) -> str:
    """The URL without a password, for logs and ``Alert.source``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or '/0'}"


def consumer_name(state_dir: Path, explicit: str | None) -> str:
    """``explicit``, else the name kept in the state dir, else a new ``hostname-pid``."""
    if explicit:
        return explicit
    path = Path(state_dir) / CONSUMER_FILE
    try:
        name = path.read_text().strip()
        if name:
            return name
    except OSError:
        pass
    name = f"{socket.gethostname()}-{os.getpid()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(name + "\n")
    os.replace(tmp, path)
    return name


def entry_to_post(entry_id: str, fields: dict[bytes, bytes]) -> Post:
    """One stream entry → a Post; ValueError with the reason for a bad entry."""
    try:
        decoded = {k.decode("utf-8"): v.decode("utf-8") for k, v in fields.items()}
    except UnicodeDecodeError as error:
        raise ValueError(f"invalid UTF-8 at byte {error.start}") from None
    text = decoded.pop("text", None)
    if text is None:
        raise ValueError("missing 'text' field")
    if "\x00" in text:
        raise ValueError("text contains NUL bytes (binary data?)")
    post_id = decoded.pop("id", None) or entry_id
    label = decoded.pop("label", None) or None
    meta: dict[str, Any] = {}
    if "meta" in decoded:
        try:
            meta = json.loads(decoded.pop("meta"))
        except ValueError:
            raise ValueError("'meta' is not valid JSON") from None
        if not isinstance(meta, dict):
            raise ValueError("'meta' must be a JSON object")
    meta.update(decoded)
    meta["stream_id"] = entry_id
    return Post(id=post_id, text=text, label=label, meta=meta)


class RedisSource:
    """A Source (monitor/sources/base.py) on a Redis stream consumer group."""

    def __init__(self, url: str, options: RedisSettings | None = None,
                 state_dir: str | os.PathLike = ".", client=None):
        self.url = url
        self.options = options or RedisSettings()
        self.state_dir = Path(state_dir)
        self.name = f"{describe_url(url)}#{self.options.stream}"
        self.role = self.options.role
        self.group = self.options.group + (":learner" if self.role == "learner" else "")
        self.client = client
        self.consumer = ""
        self.dedup: AlertDedup | None = None
        self.models: ModelChannel | None = None
        self._recovering = True
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._next_model_poll = 0.0
        self._model_version: int | None = None
        self.counters = {"entries": 0, "claimed": 0, "skipped": 0, "bad": 0, "acked": 0}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        import redis

        if self.client is None:
            self.client = connect(self.url)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.consumer = consumer_name(self.state_dir, self.options.consumer)
        self._create_group(redis)
        self.dedup = AlertDedup(self.client, self.consumer, self.options.prefix,
                                self.options.dedup_ttl, takeover=self.options.claim_idle / 2)
        self.models = ModelChannel(self.client, self.options.prefix)
        self._recovering = True
        self._next_claim = time.monotonic() + self.options.claim_interval
        log.info("redis source started", source=self.name, group=self.group,
                 consumer=self.consumer, role=self.role)

    def _create_group(self, redis) -> None:
        """XGROUP CREATE (MKSTREAM); waits START_WAIT s for Redis, then exits with 3."""
        deadline = time.monotonic() + START_WAIT
        while True:
            try:
                self.client.xgroup_create(self.options.stream, self.group, id="0",
                                          mkstream=True)
                return
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
                return
            except self.transient_errors as error:
                if time.monotonic() >= deadline:
                    log.error("redis unreachable, giving up", source=self.name,
                              error=str(error), waited=START_WAIT)
                    raise SystemExit(3) from None
                log.warning("waiting for redis", source=self.name, error=str(error))
                time.sleep(1.0)

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        log.info("redis source stopped", source=self.name, consumer=self.consumer,
                 **self.counters)

    # ------------------------------------------------------------------ reading

    def next_batch(self, timeout: float) -> WorkItem | None:
        """The next batch of entries (own pending, claimed, or new); None on timeout or
        while Redis is unreachable (redis-py reconnects on the next call)."""
        try:
            return self._next_batch(timeout)
        except self.transient_errors as error:
            log.warning("redis unreachable", source=self.name, error=str(error))
            time.sleep(min(timeout, 1.0))
            return None

    def _next_batch(self, timeout: float) -> WorkItem | None:
        entries = self._own_pending() if self._recovering else []
        if not entries and time.monotonic() >= self._next_claim:
            entries = self._claim_stale()
        if not entries:
            entries = self._read_new(timeout)
        if not entries:
            return None
        return self._work_item(entries)

    def _own_pending(self) -> list:
        reply = self.client.xreadgroup(self.group, self.consumer, {self.options.stream: "0"},
                                       count=self.options.count)
        entries = reply[0][1] if reply else []
        deleted = [eid for eid, fields in entries if not fields]  # XDEL'ed while pending
        if deleted:
            self.client.xack(self.options.stream, self.group, *deleted)
        entries = [(eid, fields) for eid, fields in entries if fields]
        if not entries and not deleted:
            self._recovering = False
        return entries

    def _claim_stale(self) -> list:
        cursor, entries, *_ = self.client.xautoclaim(
            self.options.stream, self.group, self.consumer,
            min_idle_time=int(self.options.claim_idle * 1000),
            start_id=self._claim_cursor, count=self.options.count,
        )
        self._claim_cursor = _text(cursor)
        if self._claim_cursor == "0-0":  # a full pass: rest until the next round
            self._next_claim = time.monotonic() + self.options.claim_interval
        entries = [(eid, fields) for eid, fields in entries if fields]
        if entries:
            self.counters["claimed"] += len(entries)
            log.info("claimed stale entries", source=self.name, consumer=self.consumer,
                     entries=len(entries))
        return entries

    def _read_new(self, timeout: float) -> list:
        block = max(1, int(timeout * 1000))
        reply = self.client.xreadgroup(self.group, self.consumer, {self.options.stream: ">"},
                                       count=self.options.count, block=block)
        return reply[0][1] if reply else []

    def _work_item(self, entries: list) -> WorkItem:
        ids = [_text(eid) for eid, _ in entries]
        posts: list[Post] = []
        errors: list[BadLine] = []
        for position, (entry_id, (_, fields)) in enumerate(zip(ids, entries), start=1):
            try:
                post = entry_to_post(entry_id, fields)
            except ValueError as error:
                errors.append(BadLine(position, f"entry {entry_id}: {error}", _raw(fields)))
                continue
            if self._wanted(post):
                posts.append(post)
            else:
                self.counters["skipped"] += 1
        self.counters["entries"] += len(ids)
        self.counters["bad"] += len(errors)
        return WorkItem(
            key=f"redis:{self.options.stream}:{ids[0]}..{ids[-1]}:{len(ids)}",
            posts=posts,
            errors=errors,
            source_name=self.name,
            name=f"{ids[0]}..{ids[-1]} ({len(ids)} entries)",
            ready_at=_entry_time(ids[0]),
            handle=ids,
        )

    def _wanted(self, post: Post) -> bool:
        if self.role == "scorer":
            return post.label is None
        if self.role == "learner":
            return post.label is not None
        return True

    # ------------------------------------------------------------------ acknowledging

    def ack(self, item: WorkItem) -> None:
        """XACK the item's entries; bad entries go to ``STREAM:quarantine`` in the same MULTI."""
        pipe = self.client.pipeline(transaction=True)
        for bad in item.errors:
            pipe.xadd(f"{self.options.stream}:quarantine", {
                "error": bad.error, "consumer": self.consumer, "raw": bad.raw or b"",
            })
        pipe.xack(self.options.stream, self.group, *item.handle)
        pipe.execute()
        self.counters["acked"] += len(item.handle)

    def backlog(self) -> int | None:
        """Entries of the stream not yet delivered to this worker's group (its lag)."""
        try:
            for info in self.client.xinfo_groups(self.options.stream):
                if _text(info["name"]) == self.group:
                    return info.get("lag")
        except self.transient_errors:
            return None
        return None

    # ------------------------------------------------------------------ shared state

    def filter_alerts(self, alerts: list) -> list:
        """Before staging: the alerts this worker may send (reserved in Redis); an alert
        another worker holds (done, or pending and not yet stale) is dropped."""
        if not alerts:
            return alerts
        mine = self.dedup.reserve(alert.alert_id for alert in alerts)
        kept = [alert for alert in alerts if alert.alert_id in mine]
        if len(kept) < len(alerts):
            log.info("alerts taken by another worker", dropped=len(alerts) - len(kept))
        return kept

    # Alerts that pass ``filter_alerts`` are *staged* inside the ledger transaction and
    # only enter the outbox after ``settle`` confirmed them in Redis, after the commit.
    # A worker killed between commit and settle keeps them staged; on restart it settles
    # them again: still ours → outbox, taken over by a worker that reprocessed the post
    # meanwhile → dropped.  Exactly one worker's outbox ever holds an alert.

    def stage_alerts(self, conn, alerts: list) -> int:
        """Inside the ledger transaction: keep the alerts for ``settle_staged``."""
        from monitor.outbox import alert_payload
        conn.execute(_STAGE_SCHEMA)
        conn.executemany(
            "INSERT OR IGNORE INTO redis_staged_alerts (alert_id, alert) VALUES (?, ?)",
            [(a.alert_id, alert_payload(a)) for a in alerts],
        )
        return len(alerts)

    def settle_staged(self, ledger, outbox) -> int:
        """After a commit (and at start): staged alerts still ours → the outbox."""
        from monitor.alerts import Alert
        from monitor.outbox import load_payload

        with ledger.transaction() as conn:
            conn.execute(_STAGE_SCHEMA)
            rows = conn.execute("SELECT alert_id, alert FROM redis_staged_alerts").fetchall()
        if not rows:
            return 0
        mine = self.dedup.settle(alert_id for alert_id, _ in rows)
        alerts = [Alert.from_dict(load_payload(raw)) for alert_id, raw in rows
                  if alert_id in mine]
        with ledger.transaction() as conn:
            added = outbox.enqueue(conn, alerts) if alerts else 0
            conn.executemany("DELETE FROM redis_staged_alerts WHERE alert_id = ?",
                             [(alert_id,) for alert_id, _ in rows])
        if len(alerts) < len(rows):
            log.info("alerts taken over by another worker", dropped=len(rows) - len(alerts))
        return added

    @property
    def transient_errors(self) -> tuple[type[BaseException], ...]:
        """Errors that mean "Redis is unreachable, retry the item", not "bad input"."""
        import redis

        return (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)

    def release(self, item: WorkItem) -> None:
        """The item was not committed: read our pending entries again first."""
        self._recovering = True

    def model_update(self):
        """Scorers: the newest published model when its version changed, else None."""
        if self.role != "scorer" or time.monotonic() < self._next_model_poll:
            return None
        self._next_model_poll = time.monotonic() + self.options.model_poll
        try:
            version = self.models.version()
            if version is None or version == self._model_version:
                return None
            fetched = self.models.fetch(scratch_dir=self.state_dir)
        except self.transient_errors as error:
            log.warning("redis unreachable", source=self.name, error=str(error))
            return None
        if fetched is None:
            return None
        self._model_version, model = fetched
        log.info("model version picked up", version=self._model_version, consumer=self.consumer)
        return model

    def publish_model(self, model) -> bool:
        """Learner: publish ``model`` unless its version is already the published one."""
        try:
            if self.role != "learner" or self.models.version() == model.version:
                return False
            self.models.publish(model)
        except self.transient_errors as error:
            log.warning("redis unreachable", source=self.name, error=str(error))
            return False
        log.info("model version published", version=model.version)
        return True


_STAGE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS redis_staged_alerts (alert_id TEXT PRIMARY KEY, alert TEXT NOT NULL)"
)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _raw(fields: dict) -> bytes:
    return b"\n".join(k + b"=" + v for k, v in fields.items())[:4096]


def _entry_time(entry_id: str) -> float | None:
    """An entry id's millisecond timestamp → time.time() seconds."""
    try:
        return int(entry_id.split("-", 1)[0]) / 1000.0
    except ValueError:
        return None
