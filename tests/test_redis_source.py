"""The Redis stream source, the push command and the shared Redis state, on a real server."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from monitor.alerts import Alert
from monitor.model import Model
from monitor.redis_state import AlertDedup, ModelChannel, connect
from monitor.sources.redis import RedisSettings, RedisSource, consumer_name, entry_to_post

STREAM = "banana-monitor:posts"


@pytest.fixture
def client(redis_url):
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture
def make_source(redis_url, tmp_path):
    started = []

    def make(state="w1", **options):
        options.setdefault("consumer", f"consumer-{state}")  # one process: name them apart
        source = RedisSource(redis_url, RedisSettings(**options), state_dir=tmp_path / state)
        source.start()
        started.append(source)
        return source

    yield make
    for source in started:
        source.stop()


def write_posts(path, posts):
    path.write_text("".join(json.dumps(p) + "\n" for p in posts))
    return path


def push(cli, redis_url, *files, stream=STREAM):
    result = cli("push", *files, "--source", redis_url, "--stream", stream)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_push_writes_one_entry_per_post_with_id_text_label_meta(cli, redis_url, client, tmp_path):
    data = write_posts(tmp_path / "posts.jsonl", [
        {"id": "a", "text": "banana bread", "lang": "en"},
        {"text": "cookie time", "label": "cookie"},
    ])
    plain = tmp_path / "more.txt"
    plain.write_text("just a line\n")
    assert push(cli, redis_url, data, plain) == {"pushed": 3, "stream": STREAM, "files": 2}
    entries = client.xrange(STREAM)
    fields = [{k.decode(): v.decode() for k, v in f.items()} for _, f in entries]
    assert fields == [
        {"id": "a", "text": "banana bread", "meta": '{"lang": "en"}'},
        {"id": "2", "text": "cookie time", "label": "cookie"},
        {"id": "1", "text": "just a line"},
    ]


def test_push_reports_a_bad_line_in_one_line_with_exit_2(cli, redis_url, client, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": \n{"text": "never"}\n')
    result = cli("push", bad, "--source", redis_url)
    assert result.exit_code == 2
    assert "bad.jsonl:2: invalid JSON" in result.output
    assert "(1 posts pushed before it)" in result.output
    assert [f[b"text"] for _, f in client.xrange(STREAM)] == [b"fine"]
    assert "Traceback" not in result.output
    result = cli("push", bad, "--source", "http://127.0.0.1:1/0")
    assert result.exit_code == 2 and "redis://" in result.output


def test_a_batch_is_parsed_and_acked_only_when_asked(make_source, client, cli, redis_url, tmp_path):
    push(cli, redis_url, write_posts(tmp_path / "p.jsonl", [
        {"id": f"p{i}", "text": f"banana {i}", "src": i} for i in range(5)
    ]))
    source = make_source(count=3)
    first = source.next_batch(timeout=0.5)
    assert [p.id for p in first.posts] == ["p0", "p1", "p2"]
    assert first.posts[1].meta["src"] == 1 and first.posts[1].meta["stream_id"] == first.handle[1]
    assert first.source_name.startswith("redis://127.0.0.1:") and first.source_name.endswith(STREAM)
    second = source.next_batch(timeout=0.5)
    assert [p.id for p in second.posts] == ["p3", "p4"]
    assert client.xpending(STREAM, "banana-monitor")["pending"] == 5
    source.ack(first)
    assert client.xpending(STREAM, "banana-monitor")["pending"] == 2
    source.ack(second)
    assert client.xpending(STREAM, "banana-monitor")["pending"] == 0
    assert source.next_batch(timeout=0.1) is None


def test_a_restarted_worker_finishes_its_own_pending_entries_first(make_source, client, cli,
                                                                   redis_url, tmp_path):
    push(cli, redis_url, write_posts(tmp_path / "p.jsonl", [
        {"id": f"p{i}", "text": "cookie"} for i in range(4)
    ]))
    crashed = make_source(state="w1", count=2, consumer=None)
    lost = crashed.next_batch(timeout=0.5)  # handed out, never acked (the worker dies)
    again = make_source(state="w1", count=2, consumer=None)  # same state dir → same name
    assert again.consumer == crashed.consumer
    redelivered = again.next_batch(timeout=0.5)
    assert redelivered.handle == lost.handle and redelivered.key == lost.key
    again.ack(redelivered)
    assert [p.id for p in again.next_batch(timeout=0.5).posts] == ["p2", "p3"]


def test_a_dead_workers_entries_are_claimed_after_the_idle_timeout(make_source, client, cli,
                                                                   redis_url, tmp_path):
    push(cli, redis_url, write_posts(tmp_path / "p.jsonl", [
        {"id": f"p{i}", "text": "banana"} for i in range(3)
    ]))
    dead = make_source(state="dead", claim_idle=0.3, claim_interval=0.05)
    taken = dead.next_batch(timeout=0.5)
    alive = make_source(state="alive", claim_idle=0.3, claim_interval=0.05)
    assert alive.next_batch(timeout=0.1) is None  # nothing new, nothing idle long enough yet
    time.sleep(0.4)
    claimed = alive.next_batch(timeout=0.1)
    assert claimed.handle == taken.handle
    assert alive.counters["claimed"] == 3
    alive.ack(claimed)
    assert client.xpending(STREAM, "banana-monitor")["pending"] == 0


def test_roles_split_labelled_and_unlabelled_entries(make_source, client, cli, redis_url, tmp_path):
    push(cli, redis_url, write_posts(tmp_path / "p.jsonl", [
        {"id": "u1", "text": "banana"}, {"id": "l1", "text": "cookie", "label": "cookie"},
        {"id": "u2", "text": "other"},
    ]))
    scorer = make_source(state="s", role="scorer")
    learner = make_source(state="l", role="learner")
    scored = scorer.next_batch(timeout=0.5)
    learned = learner.next_batch(timeout=0.5)
    assert [p.id for p in scored.posts] == ["u1", "u2"]
    assert [(p.id, p.label) for p in learned.posts] == [("l1", "cookie")]
    assert len(scored.handle) == len(learned.handle) == 3  # both groups see every entry
    scorer.ack(scored)
    learner.ack(learned)
    assert client.xpending(STREAM, "banana-monitor")["pending"] == 0
    assert client.xpending(STREAM, "banana-monitor:learner")["pending"] == 0


def test_bad_entries_are_errors_and_go_to_the_quarantine_stream_on_ack(make_source, client):
    client.xadd(STREAM, {"id": "ok", "text": "banana"})
    client.xadd(STREAM, {"id": "no-text"})
    client.xadd(STREAM, {"text": b"\xff\xfe"})
    client.xadd(STREAM, {"text": "x", "meta": "[1, 2]"})
    source = make_source()
    item = source.next_batch(timeout=0.5)
    assert [p.id for p in item.posts] == ["ok"]
    reasons = [bad.error.split(": ", 1)[1] for bad in item.errors]
    assert reasons == ["missing 'text' field", "invalid UTF-8 at byte 0",
                       "'meta' must be a JSON object"]
    assert [bad.line for bad in item.errors] == [2, 3, 4]
    source.ack(item)
    quarantined = client.xrange(f"{STREAM}:quarantine")
    assert [f[b"error"].decode() for _, f in quarantined] == [bad.error for bad in item.errors]
    assert client.xpending(STREAM, "banana-monitor")["pending"] == 0


def test_entry_without_id_takes_the_entry_id():
    post = entry_to_post("17-0", {b"text": b"hi", b"lang": b"en"})
    assert (post.id, post.text, post.label, post.meta) == ("17-0", "hi", None,
                                                           {"lang": "en", "stream_id": "17-0"})


def test_consumer_name_is_kept_in_the_state_dir(tmp_path):
    first = consumer_name(tmp_path, None)
    assert first.rsplit("-", 1)[1].isdigit()
    assert consumer_name(tmp_path, None) == first
    assert consumer_name(tmp_path, "explicit") == "explicit"


def test_settings_reject_unknown_keys_and_roles():
    with pytest.raises(ValueError, match="unknown \\[redis\\] keys: colour"):
        RedisSettings.from_raw({"colour": "red"})
    with pytest.raises(ValueError, match="role must be one of"):
        RedisSettings.from_raw({"role": "boss"})
    with pytest.raises(ValueError, match="claim_idle must be a positive"):
        RedisSettings.from_raw({"claim_idle": 0})
    assert RedisSettings.from_raw({"role": "scorer", "count": 7}).count == 7


def alert(post_id, label="banana"):
    return Alert(post_id=post_id, label=label, score=0.9, text="t", source="s", model_version=1)


def test_alert_dedup_lets_exactly_one_worker_take_an_alert(client):
    a = AlertDedup(client, "worker-a", ttl=60, takeover=0.2)
    b = AlertDedup(client, "worker-b", ttl=60, takeover=0.2)
    assert a.reserve(["p1:banana", "p2:banana"]) == {"p1:banana", "p2:banana"}
    assert b.reserve(["p2:banana", "p3:cookie"]) == {"p3:cookie"}  # a's, and a is alive
    assert a.reserve(["p1:banana", "p3:cookie"]) == {"p1:banana"}  # its own, again
    assert b.state_of("p3:cookie") == ("worker-b", "pending")
    assert 0 < client.ttl("banana-monitor:alert:p1:banana") <= 60
    assert a.settle(["p1:banana"]) == {"p1:banana"}  # a committed p1 (not p2: a "dies")
    assert a.state_of("p1:banana") == ("worker-a", "done")
    time.sleep(0.3)  # a's reservations are now older than the takeover time
    assert b.reserve(["p1:banana", "p2:banana"]) == {"p2:banana"}
    assert b.state_of("p1:banana") == ("worker-a", "done")  # committed: never taken over
    assert b.state_of("p2:banana") == ("worker-b", "pending")
    assert a.reserve(["p1:banana", "p2:banana"]) == {"p1:banana"}  # a came back: p2 is b's
    # a was only slow: it committed p2 after b took it over, so a's settle gives it up
    assert a.settle(["p2:banana"]) == set()
    assert b.settle(["p2:banana"]) == {"p2:banana"}
    assert b.state_of("p2:banana") == ("worker-b", "done")


def test_source_filter_alerts_drops_alerts_another_worker_took(make_source):
    one, two = make_source(state="one"), make_source(state="two")
    assert [x.alert_id for x in one.filter_alerts([alert("p1"), alert("p2")])] == [
        "p1:banana", "p2:banana"]
    assert [x.alert_id for x in two.filter_alerts([alert("p2"), alert("p3")])] == ["p3:banana"]


class RecordingOutbox:
    """Stands in for monitor.outbox.Outbox: records what enters it, in the caller's tx."""

    def __init__(self):
        self.ids: list[str] = []

    def enqueue(self, conn, alerts):
        self.ids.extend(alert.alert_id for alert in alerts)
        return len(alerts)


def stage_and_commit(source, ledger, alerts):
    """What the daemon does up to its COMMIT: reserve, then stage in the transaction."""
    mine = source.filter_alerts(alerts)
    with ledger.transaction() as conn:
        source.stage_alerts(conn, mine)
    return mine


def test_alert_killed_between_commit_and_settle_is_sent_by_exactly_one_worker(
        make_source, make_ledger, tmp_path):
    slow = make_source(state="slow", claim_idle=0.4)  # takeover after 0.2 s pending
    other = make_source(state="other", claim_idle=0.4)
    slow_ledger, other_ledger = make_ledger(tmp_path / "l1"), make_ledger(tmp_path / "l2")
    slow_outbox, other_outbox = RecordingOutbox(), RecordingOutbox()
    # the slow worker commits p1 and p2, then "dies" before settling them
    stage_and_commit(slow, slow_ledger, [alert("p1"), alert("p2")])
    # it comes back in time for p1 ... (its own reservation is still pending)
    assert slow.dedup.state_of("p1:banana") == ("consumer-slow", "pending")
    time.sleep(0.3)
    # ... but another worker reprocessed p2 meanwhile and took the stale reservation
    assert [a.alert_id for a in stage_and_commit(other, other_ledger, [alert("p2")])] == [
        "p2:banana"]
    assert other.settle_staged(other_ledger, other_outbox) == 1
    assert slow.settle_staged(slow_ledger, slow_outbox) == 1  # restart: settle what is staged
    assert slow_outbox.ids == ["p1:banana"] and other_outbox.ids == ["p2:banana"]
    assert slow.settle_staged(slow_ledger, slow_outbox) == 0  # nothing left staged
    # p1 is done: a worker reprocessing p1 later drops it
    assert other.filter_alerts([alert("p1")]) == []


def test_a_staged_alert_is_rolled_back_with_its_transaction(make_source, make_ledger):
    source, ledger = make_source(state="w"), make_ledger()
    with pytest.raises(RuntimeError):
        with ledger.transaction() as conn:
            source.stage_alerts(conn, source.filter_alerts([alert("p9")]))
            raise RuntimeError("killed before COMMIT")
    outbox = RecordingOutbox()
    assert source.settle_staged(ledger, outbox) == 0 and outbox.ids == []
    # its reservation stays pending: the worker that reprocesses p9 may take it
    assert source.dedup.state_of("p9:banana") == ("consumer-w", "pending")


def test_published_model_round_trips_and_scorers_pick_up_new_versions(make_source, client, rng):
    model = Model.create(["chocolate", "sweet", "banana", "cookie"], [3],
                         ["banana", "cookie", "other"], rng)
    channel = ModelChannel(client)
    assert channel.version() is None and channel.fetch() is None
    scorer = make_source(state="s", role="scorer", model_poll=0.01)
    learner = make_source(state="l", role="learner")
    assert scorer.model_update() is None
    model.meta["version"] = 5
    assert learner.publish_model(model) is True
    assert learner.publish_model(model) is False  # that version is already published
    time.sleep(0.02)
    picked = scorer.model_update()
    assert picked.version == 5
    for mine, theirs in zip(model.network.weights, picked.network.weights):
        np.testing.assert_array_equal(mine, theirs)
    time.sleep(0.02)
    assert scorer.model_update() is None  # unchanged version: nothing to swap


def test_backlog_is_the_groups_lag(make_source, client):
    for i in range(7):
        client.xadd(STREAM, {"text": f"post {i}"})
    source = make_source(count=5)
    assert source.backlog() == 7
    source.ack(source.next_batch(timeout=0.5))
    assert source.backlog() == 2


def test_push_reads_stdin_and_trims_with_maxlen(cli, redis_url, client):
    lines = "".join(f"post number {i}\n" for i in range(3000))
    result = cli("push", "-", "--source", redis_url, "--stream", "s", "--maxlen", "100",
                 input=lines)
    assert json.loads(result.output) == {"pushed": 3000, "stream": "s", "files": 1}
    entries = client.xrange("s")
    assert 100 <= len(entries) < 3000  # MAXLEN ~ trims whole macro nodes: about 100
    assert entries[-1][1] == {b"id": b"3000", b"text": b"post number 2999"}


def test_an_entry_deleted_while_pending_is_acked_on_recovery(make_source, client):
    kept = client.xadd(STREAM, {"id": "kept", "text": "banana"})
    gone = client.xadd(STREAM, {"id": "gone", "text": "cookie"})
    first = make_source(state="w", consumer=None, count=1)
    first.next_batch(timeout=0.5)  # "kept", never acked
    first.next_batch(timeout=0.5)  # "gone", never acked
    client.xdel(STREAM, gone)
    again = make_source(state="w", consumer=None, count=5)
    item = again.next_batch(timeout=0.5)
    assert item.handle == [kept.decode()]
    again.ack(item)
    assert again.next_batch(timeout=0.1) is None
    assert client.xpending(STREAM, "banana-monitor")["pending"] == 0


def test_an_unreachable_redis_at_start_exits_with_3_after_waiting(tmp_path, monkeypatch):
    import monitor.sources.redis as module

    monkeypatch.setattr(module, "START_WAIT", 0.3)
    source = RedisSource("redis://127.0.0.1:1/0", RedisSettings(consumer="c"),
                         state_dir=tmp_path)
    with pytest.raises(SystemExit) as exited:
        source.start()
    assert exited.value.code == 3
