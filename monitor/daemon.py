"""The daemon loop, the same for every source:

    item = source.next_batch()          # a complete file / a batch of stream entries
    ledger done already? → ack, next    # a crash after commit, before ack
    score the posts in batches          # (n_posts, n_labels) probabilities
    alerts = rules.alerts_for(...)
    with ledger.transaction() as conn:  # ONE transaction per item:
        learner.observe(conn, labelled) #   the learner's journal (exactly-once learning)
        ledger.mark_done(conn, ...)     #   the item and its posts are done
        outbox.enqueue(conn, alerts)    #   the alerts are accepted for delivery
    learner.maybe_checkpoint()
    source.ack(item)                    # only now: move the file / XACK

SIGTERM and SIGINT stop taking new items; the item in hand is finished, the outbox
gets a few seconds to deliver, and ``run()`` returns 0.
"""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import threading
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import structlog

from monitor.ledger import Ledger
from monitor.sources.base import Source, WorkItem

log = structlog.get_logger("monitor.daemon")

POLL_SECONDS = 0.2
HEARTBEAT_SECONDS = 5.0
DRAIN_SECONDS = 3.0
# the collector's first-generation threshold while running (CPython's default: 700): every
# post and alert allocates a few container objects, and each collection of the older
# generations walks everything alive; measured: −20 % CPU per post on the benchmark
GC_THRESHOLD = (50_000, 20, 100)


class Daemon:
    """Wires a source, the model, the alert rules, the outbox and the ledger together."""

    def __init__(self, settings, model, source: Source, ledger: Ledger, outbox, rules,
                 learner=None, metrics=None):
        self.settings = settings
        self.model = model
        self.source = source
        self.ledger = ledger
        self.outbox = outbox
        self.rules = rules
        self.learner = learner
        self.metrics = metrics
        self.stopping = threading.Event()
        self.stop_signal: str | None = None
        # with workers > 1 (monitor/workers.py): the coordinator's pool of scoring
        # processes; in a worker, its index, where its labelled posts go, and what
        # brings it the learner's new model versions
        self.pool = None
        self.worker: int | None = None
        self.label_sink = None
        self.follower = None
        self.started_at = time.time()
        self._next_heartbeat = 0.0

    # ------------------------------------------------------------------ lifecycle

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        # No logging here: the handler runs between two bytecodes of the main thread,
        # possibly while that thread holds the log writer's lock (a self-deadlock).
        self.stop_signal = signal.Signals(signum).name
        self.stopping.set()

    def run(self) -> int:
        """Process items until stopped; 0 after a clean drain."""
        # HOOK (learner, issue 6): resume replays the journal before any new item
        if self.learner is not None:
            self.learner.resume()  # logs learning_resumed with what it replayed
        self._write_meta()
        previous = _tune_gc()
        self.outbox.start()
        self.source.start()
        self._settle_staged()  # HOOK (redis workers, issue 8): what a kill left staged
        log.info("daemon_started", source=self.source.name, model_version=self.scoring_model.version,
                 pid=os.getpid(), worker=self.worker)
        if self.pool is not None:
            self.pool.start()
        try:
            while not self.stopping.is_set():
                if self.pool is not None:  # workers > 1: restart a worker that died
                    self.pool.check()
                self._sync_cluster_model()  # HOOK (redis workers, issue 8)
                item = self._next_item()
                if item is not None:
                    self.handle(item)
                self._heartbeat()
        finally:
            log.info("stopping", signal=self.stop_signal)
            self._shutdown()
            gc.set_threshold(*previous)
            gc.unfreeze()
        return 0

    def _next_item(self) -> WorkItem | None:
        """The source's next item; a failing source (feed dir gone, unreadable) is
        logged and retried, it does not stop the daemon."""
        try:
            return self.source.next_batch(POLL_SECONDS)
        except getattr(self.source, "transient_errors", ()) as error:  # HOOK (issue 8)
            log.error("source_unreachable", error=str(error))
        except Exception:  # noqa: BLE001
            log.exception("source_error", source=self.source.name)
        self.stopping.wait(1.0)
        return None

    def _shutdown(self) -> None:
        if self.pool is not None:  # the workers drain first: their alerts reach the outbox
            self.pool.stop()
        self.source.stop()
        self._flush_digests()
        self.outbox.stop(DRAIN_SECONDS)
        # HOOK (learner, issue 6): the final checkpoint
        if self.learner is not None:
            self.learner.maybe_checkpoint(force=True)
        if self.worker is None:
            self.ledger.set_meta(stopped_at=time.time(), heartbeat=time.time())
        log.info("daemon_stopped", uptime=round(time.time() - self.started_at, 3))

    @property
    def scoring_model(self):
        """The live model: the learner's (it may be updated or rolled back) or our own."""
        return self.learner.model if self.learner is not None else self.model

    # ------------------------------------------------------------------ one item

    def handle(self, item: WorkItem) -> None:
        """Process one item; input problems never escape (the item is quarantined)."""
        try:
            self.process(item)
        except sqlite3.Error as error:  # the state store, not the input: retry later
            log.error("ledger_error", item=item.name, error=str(error))
            getattr(self.source, "release", lambda item: None)(item)
            time.sleep(1.0)
        except getattr(self.source, "transient_errors", ()) as error:  # HOOK (issue 8)
            log.error("source_unreachable", item=item.name, error=str(error))
            getattr(self.source, "release", lambda item: None)(item)
            time.sleep(1.0)
        except Exception as error:  # noqa: BLE001 - a bug must not kill the daemon
            if self.ledger.is_done(item.key):  # committed; only the ack failed: retry later
                log.exception("ack_failed", item=item.name)
                getattr(self.source, "release", lambda item: None)(item)
                time.sleep(1.0)
                return
            log.exception("item_failed", item=item.name)
            item.posts, item.errors = [], []
            item.rejected = f"internal error: {type(error).__name__}: {error}"
            self._commit(item, [], None)
            try:
                self.source.ack(item)
            except Exception:  # noqa: BLE001 - stays in the feed; the ledger has it
                log.exception("ack_failed", item=item.name)

    def process(self, item: WorkItem) -> None:
        started = time.perf_counter()
        if self.ledger.is_done(item.key):
            self.source.ack(item)
            log.info("item_already_done", item=item.name, key=item.key)
            return
        if self.learner is not None:  # HOOK (learner, issue 6): adopt a rollback first
            self.learner.poll()
        model = self.scoring_model
        probabilities, bags = self.score_bags(model, item.posts)
        alerts = self.rules.alerts_for(item.posts, probabilities, item.source_name,
                                       model.version, model=model, bags=bags)
        labels = np.asarray(model.label_names)[probabilities.argmax(axis=1)].tolist() \
            if len(item.posts) else []
        new_alerts = self._commit(item, alerts, labels)
        # HOOK (learner, issue 6): checkpoint every N updates, after the commit
        if self.learner is not None:
            self.learner.maybe_checkpoint()
        self.source.ack(item)
        self._log_item(item, len(alerts), new_alerts, started)

    def score(self, model, posts) -> np.ndarray:
        """Posts → probabilities (n_posts, n_labels), scored ``batch_size`` at a time."""
        return self.score_bags(model, posts)[0]

    def score_bags(self, model, posts):
        """Posts → (probabilities (n_posts, n_labels), bags of words CSR (n_posts, n_vocab)),
        tokenized and scored ``batch_size`` at a time; the bags are kept for the
        explanations, so no post is tokenized twice."""
        n_labels = len(model.label_names)
        if not posts:
            return np.zeros((0, n_labels)), None
        size = self.settings.batch_size
        parts, bags = [], []
        for start in range(0, len(posts), size):
            bag = model.vocabulary.bag_of_words([post.text for post in posts[start:start + size]])
            parts.append(model.probabilities_of(bag))
            bags.append(bag)
        return np.vstack(parts), bags[0] if len(bags) == 1 else sp.vstack(bags, format="csr")

    def _commit(self, item: WorkItem, alerts, labels) -> int:
        """The one transaction: learner journal, posts/item done, alerts enqueued."""
        with self.ledger.transaction() as conn:
            # HOOK (learner, issue 6): labelled posts, inside the transaction
            if self.learner is not None:
                labelled = [post for post in item.posts if post.label is not None]
                if labelled:
                    outcomes = self.learner.observe(conn, labelled)
                    item.errors.extend(_quarantined_labels(labelled, outcomes))
            elif self.label_sink is not None:  # a worker: the coordinator's learner learns them
                labelled = [post for post in item.posts if post.label is not None]
                if labelled:
                    self.label_sink(conn, item, labelled)
            in_transaction = getattr(self.source, "in_transaction", None)
            if in_transaction is not None:  # the inbox source: its rows leave with the journal
                in_transaction(conn, item)
            # HOOK (redis workers, issue 8): an alert another worker took is not ours; the
            # rest are staged and enter the outbox once settled in Redis after the COMMIT
            alerts = getattr(self.source, "filter_alerts", lambda alerts: alerts)(alerts)
            stage = getattr(self.source, "stage_alerts", None)
            if stage is not None:
                new_alerts = stage(conn, alerts) if alerts else 0
            else:
                new_alerts = self.outbox.enqueue(conn, alerts) if alerts else 0
            if getattr(self.source, "ledger_items", True):
                Ledger.mark_done(
                    conn, item.key, item.source_name, item.name,
                    [post.id for post in item.posts], labels or [], new_alerts,
                    len(item.errors), status="rejected" if item.rejected else "done",
                    reason=item.rejected,
                )
        self._settle_staged()
        if new_alerts and getattr(self.outbox, "notify", None) is not None:
            self.outbox.notify()  # a worker: the coordinator delivers them
        return new_alerts

    def _flush_digests(self) -> None:
        """At shutdown: the throttle's open windows become digests in the outbox, so
        the alerts they held back are not forgotten with the process's memory."""
        flush = getattr(self.rules, "flush", None)
        if flush is None or not getattr(self.rules, "throttle_max", None):
            return
        digests = flush(force=True, model=self.scoring_model)
        if not digests:
            return
        try:
            with self.ledger.transaction() as conn:
                new = self.outbox.enqueue(conn, digests)
        except sqlite3.Error as error:
            log.error("digest_flush_failed", error=str(error), digests=len(digests))
            return
        log.info("digests_flushed", digests=new)

    def _settle_staged(self) -> None:
        """HOOK (redis workers, issue 8): staged alerts still ours go to the outbox.

        Runs after every commit, at start (alerts a kill left staged) and on the
        heartbeat (after a Redis outage); a Redis error leaves them staged for later.
        """
        settle = getattr(self.source, "settle_staged", None)
        if settle is None:
            return
        try:
            settle(self.ledger, self.outbox)
        except self.source.transient_errors as error:
            log.warning("alerts_settle_deferred", error=str(error))

    def _log_item(self, item: WorkItem, alerts: int, new_alerts: int, started: float) -> None:
        now = time.time()
        latency = now - item.ready_at if item.ready_at else None
        if self.metrics is not None and getattr(self.source, "ledger_items", True):
            self.metrics.observe_item(item, new_alerts, latency)  # not the inbox's again
        event = "item_rejected" if item.rejected else "item_done"
        log.info(
            event,
            item=item.name,
            key=item.key,
            posts=len(item.posts),
            labelled=sum(post.label is not None for post in item.posts),
            alerts=new_alerts,
            duplicate_alerts=alerts - new_alerts,
            quarantined=len(item.errors),
            reason=item.rejected,
            seconds=round(time.perf_counter() - started, 4),
            latency=None if latency is None else round(latency, 4),
        )

    # ------------------------------------------------------------------ redis workers

    def _sync_cluster_model(self) -> None:
        """HOOK (redis workers, issue 8): a scorer swaps in the model version the learner
        published; the learner publishes each new version (checkpoint, rollback, start)."""
        update = getattr(self.source, "model_update", None) or getattr(self.follower, "poll", None)
        model = update() if update is not None else None
        if model is not None and self.learner is None:
            previous, self.model = self.model.version, model
            if self.worker is None:
                self.ledger.set_meta(model_version=model.version)
            log.info("model_swapped", version=model.version, previous=previous)
        publish = getattr(self.source, "publish_model", None)
        if publish is not None and self.learner is not None and self.learner.version:
            if self.learner.version != getattr(self, "_published_version", None):
                from monitor.model import Model

                publish(Model.load(self.learner.store.path_of(self.learner.version)))
                self._published_version = self.learner.version

    # ------------------------------------------------------------------ status

    def _write_meta(self) -> None:
        model = self.scoring_model
        if self.worker is not None:  # the coordinator writes the daemon's meta
            self.ledger.set_meta(**{f"worker{self.worker}_pid": os.getpid()})
            return
        self.ledger.set_meta(
            pid=os.getpid(), started_at=self.started_at, heartbeat=self.started_at,
            stopped_at=None, model_version=model.version, source=self.source.name,
            model_path=self.settings.model, workers=getattr(self.settings, "workers", 1),
        )

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + HEARTBEAT_SECONDS
            if self.learner is not None:  # HOOK (learner, issue 6): rollback while idle
                self.learner.poll()
            self._settle_staged()  # HOOK (redis workers, issue 8): after a Redis outage
            if self.worker is not None:  # the coordinator writes the daemon's heartbeat
                return
            backlog = getattr(self.source, "backlog", lambda: None)()
            self.ledger.set_meta(heartbeat=time.time(), backlog=backlog,
                                 model_version=self.scoring_model.version)


def build(settings, model, pm, metrics=None) -> Daemon:
    """A Daemon for ``settings``: source, ledger, outbox, rules and (optional) learner."""
    if getattr(settings, "workers", 1) > 1:  # the coordinator of N scoring processes
        from monitor.workers import build_coordinator

        return build_coordinator(settings, model, pm, metrics)
    from monitor.outbox import Outbox
    from monitor.rules import AlertRules
    from monitor.sources import open_source

    ledger = Ledger(settings.state)
    outbox = Outbox(ledger, pm, settings)
    learner = make_learner(model, ledger, settings)
    live = learner.model if learner is not None else model
    rules = AlertRules(settings, live)
    source = open_source(settings)
    if getattr(source, "role", None) == "scorer":  # HOOK (redis workers, issue 8):
        learner = None  # scorers do not learn; they follow the learner's published model
    return Daemon(settings, model, source, ledger, outbox, rules, learner, metrics)


def _tune_gc() -> tuple[int, ...]:
    """Fewer collections while running; what exists at start-up (model, vocabulary,
    modules) moves to the permanent generation, so collections no longer walk it.
    Returns the previous thresholds.  Cycles are still collected: memory stays flat."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    return previous


def _quarantined_labels(posts, outcomes) -> list:
    """HOOK (learner, issue 6): labelled posts the learner refused (unknown label) → bad lines."""
    import json

    from monitor.sources.base import BadLine

    by_id = {post.id: post for post in posts}
    bad = []
    for outcome in outcomes:
        if outcome["outcome"] == "quarantined":
            post = by_id[outcome["post_id"]]
            raw = json.dumps({"id": post.id, "text": post.text, "label": post.label},
                             ensure_ascii=False).encode()
            bad.append(BadLine(0, f"post {post.id}: {outcome['reason']}", raw))
    return bad


def make_learner(model, ledger, settings) -> Any:
    """HOOK (learner, issue 6): the OnlineLearner (with learning off it still keeps the
    model versions: the latest one is the live model; labelled posts are only recorded)."""
    try:
        from monitor.learn import OnlineLearner
    except ImportError:
        log.warning("learning_unavailable", reason="monitor.learn is not installed")
        return None
    return OnlineLearner(model, ledger, settings)
