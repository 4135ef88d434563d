"""The daemon loop in-process: one transaction per item, ack after commit, hooks, faults."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from monitor import hookimpl
from monitor.alerts import FIELDS, Alert
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.ledger import Ledger
from monitor.model import Model
from monitor.outbox import Outbox
from monitor.plugins import get_plugin_manager
from monitor.posts import Post
from monitor.rules import AlertRules
from monitor.sources.base import BadLine, WorkItem
from monitor.sources.directory import DirectorySource
from tests.conftest import MODELS


class Recorder:
    """An alert plugin that remembers what it was sent."""

    def __init__(self):
        self.alerts: list[Alert] = []

    @hookimpl
    def send_alert(self, alert):
        self.alerts.append(alert)


class ListSource:
    """A Source over a fixed list of items; records acks and whether they were committed."""

    name = "list:test"

    def __init__(self, items, ledger):
        self.items, self.ledger, self.acked = list(items), ledger, []

    def start(self):
        pass

    def next_batch(self, timeout):
        return self.items.pop(0) if self.items else None

    def ack(self, item):
        self.acked.append((item.key, self.ledger.is_done(item.key)))

    def stop(self):
        pass


@pytest.fixture
def model() -> Model:
    return Model.load(MODELS / "seed-multiclass.npz")


@pytest.fixture
def parts(tmp_path, model):
    settings = load_settings(environ={}, feed=str(tmp_path / "feed"),
                             state=str(tmp_path / "state"), batch_size=2,
                             learning__enabled=False)
    ledger = Ledger(settings.state)
    recorder = Recorder()
    pm = get_plugin_manager(allow=[], load_entrypoints=False)
    pm.register(recorder, name="recorder")
    outbox = Outbox(ledger, pm, settings)
    yield settings, ledger, outbox, recorder
    outbox.stop(1.0)
    ledger.close()


def item(key: str, texts, labels=None, errors=()) -> WorkItem:
    labels = labels or [None] * len(texts)
    posts = [Post(f"{key}-{i}", text, label) for i, (text, label) in enumerate(zip(texts, labels))]
    return WorkItem(key=key, posts=posts, errors=list(errors), source_name="list:test", name=key)


def make_daemon(parts, model, items, learner=None):
    settings, ledger, outbox, _ = parts
    source = ListSource(items, ledger)
    daemon = Daemon(settings, model, source, ledger, outbox, AlertRules(settings, model), learner)
    return daemon, source


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)
    assert predicate()


def test_item_committed_before_ack_and_alerts_delivered_once(parts, model):
    settings, ledger, outbox, recorder = parts
    texts = ["banana banana", "chocolate sweet cookie", "cookie", "banana", "nothing here"]
    want = model.probabilities(texts)
    daemon, source = make_daemon(parts, model, [item("k1", texts, errors=[BadLine(6, "bad")])])
    daemon.process(source.next_batch(0))
    assert source.acked == [("k1", True)]  # the ledger had it when the source was acked
    names = model.label_names
    expected = {(f"k1-{i}", label) for i, row in enumerate(want)
                for label in ("banana", "cookie") if row[names.index(label)] >= 0.5}
    outbox.start()
    wait_for(lambda: len(recorder.alerts) == len(expected))
    assert {(a.post_id, a.label) for a in recorder.alerts} == expected
    row = ledger.conn.execute("SELECT posts, alerts, quarantined, status FROM items").fetchone()
    assert row == (5, len(expected), 1, "done")
    labels = dict(ledger.conn.execute("SELECT post_id, label FROM posts").fetchall())
    assert labels == {f"k1-{i}": names[r.argmax()] for i, r in enumerate(want)}
    # the same item again (a crash after commit, before ack): acked, nothing new
    daemon.process(item("k1", texts))
    time.sleep(0.3)
    assert len(recorder.alerts) == len(expected) and source.acked[-1] == ("k1", True)


def test_shutdown_sends_the_digest_of_alerts_the_throttle_held_back(tmp_path, model):
    settings = load_settings(environ={}, feed=str(tmp_path / "feed"),
                             state=str(tmp_path / "state"), learning__enabled=False,
                             alerts__throttle={"max": 1, "window": 3600})
    ledger = Ledger(settings.state)
    recorder = Recorder()
    pm = get_plugin_manager(allow=[], load_entrypoints=False)
    pm.register(recorder, name="recorder")
    outbox = Outbox(ledger, pm, settings)
    texts = ["banana banana", "banana", "banana banana banana"]
    daemon, source = make_daemon((settings, ledger, outbox, recorder), model,
                                 [item("t1", texts)])
    daemon.process(source.next_batch(0))
    outbox.start()
    wait_for(lambda: len(recorder.alerts) == 1)  # max 1: two held back for the digest
    daemon._shutdown()
    assert [a.post_id for a in recorder.alerts][0] == "t1-0"
    (digest,) = recorder.alerts[1:]
    assert digest.post_id.startswith("digest:banana:") and "2 more 'banana'" in digest.text
    ledger.close()


def test_batched_scoring_matches_whole(parts, model):
    daemon, _ = make_daemon(parts, model, [])
    posts = [Post(str(i), t) for i, t in enumerate(["banana", "cookie", "x", "sweet", "a b"])]
    whole = model.probabilities([p.text for p in posts])
    assert daemon.score(model, posts) == pytest.approx(whole)  # batch_size=2 → 3 batches


def test_labelled_posts_never_alert_and_per_class_thresholds(tmp_path, model):
    settings = load_settings(environ={}, state=str(tmp_path),
                             alerts__thresholds={"cookie": 0.99})
    rules = AlertRules(settings, model)
    posts = [Post("1", "banana"), Post("2", "banana", label="banana"),
             Post("3", "chocolate sweet cookie")]
    alerts = rules.alerts_for(posts, model.probabilities([p.text for p in posts]), "s", 1)
    p = model.probabilities(["banana", "chocolate sweet cookie"])
    names = model.label_names
    expected = [("1", label) for label in ("banana", "cookie") if p[0][names.index(label)]
                >= (0.99 if label == "cookie" else 0.5)]
    expected += [("3", label) for label in ("banana", "cookie") if p[1][names.index(label)]
                 >= (0.99 if label == "cookie" else 0.5)]
    assert [(a.post_id, a.label) for a in alerts] == expected
    assert all(a.source == "s" and a.model_version == 1 for a in alerts)


class FakeLearner:
    """Records the learner hook calls and checks observe runs inside the transaction."""

    version = None

    def __init__(self, model, fail=False):
        self.model, self.fail, self.calls = model, fail, []

    def poll(self):  # adopt a rollback (nothing to adopt here)
        pass

    def resume(self):
        self.calls.append(("resume",))
        return 0

    def observe(self, conn, posts):
        assert conn.in_transaction
        self.calls.append(("observe", [p.id for p in posts]))
        if self.fail:
            raise RuntimeError("learner broke")
        return []

    def maybe_checkpoint(self, force=False):
        self.calls.append(("checkpoint", force))


def test_learner_hooks(parts, model):
    learner = FakeLearner(model)
    items = [item("k1", ["banana", "cookie"], labels=[None, "cookie"]), item("k2", ["x"])]
    daemon, source = make_daemon(parts, model, items, learner)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    wait_for(lambda: len(source.acked) == 2)
    daemon.stopping.set()
    thread.join(10)
    assert learner.calls == [("resume",), ("observe", ["k1-1"]), ("checkpoint", False),
                             ("checkpoint", False), ("checkpoint", True)]


def test_a_failing_item_is_rejected_and_the_daemon_goes_on(parts, model):
    settings, ledger, outbox, _ = parts
    learner = FakeLearner(model, fail=True)
    daemon, source = make_daemon(parts, model, [], learner)
    daemon.handle(item("bad", ["banana"], labels=["banana"]))
    daemon.handle(item("good", ["banana"]))
    rows = dict(ledger.conn.execute("SELECT key, status FROM items").fetchall())
    assert rows == {"bad": "rejected", "good": "done"}
    reason = ledger.conn.execute("SELECT reason FROM items WHERE key='bad'").fetchone()[0]
    assert reason == "internal error: RuntimeError: learner broke"
    assert ledger.conn.execute("SELECT post_id FROM posts").fetchall() == [("good-0",)]


def test_unreadable_file_quarantined_daemon_continues(parts, model, monkeypatch):
    settings, ledger, outbox, _ = parts
    feed_dir = settings.feed
    feed_dir.mkdir()
    (feed_dir / "locked.jsonl").write_bytes(b'{"text": "banana"}\n')
    (feed_dir / "fine.jsonl").write_bytes(b'{"text": "banana"}\n')
    real_open = os.open

    def deny(target, flags, *args, **kwargs):
        if Path(target).name == "locked.jsonl":
            raise PermissionError(13, "Permission denied")
        return real_open(target, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    source = DirectorySource(feed_dir, settle=0.1)
    daemon = Daemon(settings, model, source, ledger, outbox, AlertRules(settings, model))
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(lambda: (feed_dir / "processed/fine.jsonl").exists()
                 and (feed_dir / "quarantine/locked.jsonl.reason.json").exists())
    finally:
        daemon.stopping.set()
        thread.join(10)
    record = json.loads((feed_dir / "quarantine/locked.jsonl.reason.json").read_text())
    assert record["error"] == "permission denied" and record["file"] == "locked.jsonl"
    assert ledger.counts()["quarantined_files"] == 1


def test_jsonl_plugin_writes_fields_repairs_and_dedupes(tmp_path):
    from plugins.jsonl import JsonlWriter

    path = tmp_path / "alerts.jsonl"
    alert = Alert("p1", "banana", 0.9, "text", "s", 3, "2026-01-01T00:00:00.000+00:00", ["a"])
    path.write_text(json.dumps({"post_id": "p0", "label": "cookie"}) + "\n" + '{"post_id": "p')
    writer = JsonlWriter(path)  # the torn last line (a kill -9 mid-write) is dropped
    assert writer.write(alert) is True
    writer.close()
    writer = JsonlWriter(path)  # a restart: the tail is remembered
    assert writer.write(alert) is False
    assert writer.write(Alert("p0", "cookie", 0.8, "t", "s", 3)) is False
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2 and list(lines[1]) == list(FIELDS)
    assert lines[1] == {"post_id": "p1", "label": "banana", "score": 0.9, "text": "text",
                        "source": "s", "model_version": 3,
                        "created_at": "2026-01-01T00:00:00.000+00:00", "explanation": ["a"]}


def test_jsonl_plugin_batch_hook_writes_many_lines_and_skips_the_tail(tmp_path):
    from types import SimpleNamespace

    import plugins.jsonl as jsonl

    path = tmp_path / "alerts.jsonl"
    path.write_text(json.dumps({"post_id": "p1", "label": "banana"}) + "\n")
    batch = [Alert(f"p{i}", "banana", 0.5 + i / 10, f"text {i} 🍌", "s", 2,
                   "2026-01-01T00:00:00.000+00:00", [{"word": "banana", "drop": 0.25}])
             for i in range(4)]
    jsonl.monitor_start({"path": str(path)}, SimpleNamespace(state=tmp_path))
    try:
        jsonl.send_alert_batch(batch)  # p1 was written before a crash: not again
        jsonl.send_alert(Alert("p9", "cookie", 0.9, "t", "s", 2))
    finally:
        jsonl.monitor_stop()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["post_id"], r["label"]) for r in lines] == [
        ("p1", "banana"), ("p0", "banana"), ("p2", "banana"), ("p3", "banana"),
        ("p9", "cookie")]
    assert lines[2] == {"post_id": "p2", "label": "banana", "score": 0.7, "text": "text 2 🍌",
                        "source": "s", "model_version": 2,
                        "created_at": "2026-01-01T00:00:00.000+00:00",
                        "explanation": [{"word": "banana", "drop": 0.25}]}
    assert all(list(r) == list(FIELDS) for r in lines[1:])


def test_builtin_plugins_registered_through_entry_points():
    pm = get_plugin_manager()
    assert {"log", "jsonl"} <= {name for name, _ in pm.list_name_plugin()}


def test_metrics_endpoint(parts, model):
    pytest.importorskip("prometheus_client")
    from monitor.prom import Metrics

    metrics = Metrics(0)
    try:
        done = item("k1", ["banana", "cookie", "x"], errors=[BadLine(4, "bad")])
        metrics.observe_item(done, 2, 0.042)
        rejected = WorkItem("k2", [], rejected="binary file (NUL bytes)")
        metrics.observe_item(rejected, 0, None)
        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics.port}/metrics").read().decode()
    finally:
        metrics.close()
    assert "banana_monitor_posts_total 3.0" in body
    assert "banana_monitor_alerts_total 2.0" in body
    assert "banana_monitor_quarantined_lines_total 1.0" in body
    assert 'banana_monitor_items_total{status="rejected"} 1.0' in body
    assert 'banana_monitor_item_latency_seconds_bucket{le="0.05"} 1.0' in body
    assert 'banana_monitor_item_latency_seconds_bucket{le="0.025"} 0.0' in body


def test_a_failing_ack_is_retried_not_rejected(parts, model):
    settings, ledger, outbox, _ = parts

    class FlakyAck(ListSource):
        fail = 1

        def ack(self, item):
            if self.fail:
                self.fail -= 1
                raise PermissionError(13, "processed/ not writable")
            super().ack(item)

        def release(self, item):
            self.items.append(item)

    source = FlakyAck([], ledger)
    daemon = Daemon(settings, model, source, ledger, outbox, AlertRules(settings, model))
    daemon.handle(item("k1", ["banana"]))
    assert ledger.conn.execute("SELECT status FROM items").fetchall() == [("done",)]
    assert source.acked == [] and len(source.items) == 1  # given back
    daemon.handle(source.next_batch(0))
    assert source.acked == [("k1", True)]
    assert ledger.conn.execute("SELECT status FROM items").fetchall() == [("done",)]


def test_a_failing_source_is_retried_not_fatal(parts, model):
    settings, ledger, outbox, _ = parts

    class Broken(ListSource):
        failures = 2

        def next_batch(self, timeout):
            if self.failures:
                self.failures -= 1
                raise PermissionError(13, "feed directory not readable")
            return super().next_batch(timeout)

    source = Broken([item("k1", ["banana"])], ledger)
    daemon = Daemon(settings, model, source, ledger, outbox, AlertRules(settings, model))
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(lambda: source.acked == [("k1", True)], timeout=10)
    finally:
        daemon.stopping.set()
        thread.join(10)
    assert not thread.is_alive() and source.failures == 0


def test_signal_handler_only_sets_the_flag():
    """A handler that logged could deadlock: it interrupts the main thread, which may be
    holding the log writer's lock at that instant (seen as a rare hang on SIGTERM)."""
    import signal as signals

    from structlog.testing import capture_logs

    daemon = Daemon.__new__(Daemon)
    daemon.stopping, daemon.stop_signal = threading.Event(), None
    with capture_logs() as logs:
        daemon._on_signal(signals.SIGTERM, None)
    assert daemon.stopping.is_set() and daemon.stop_signal == "SIGTERM"
    assert logs == []
