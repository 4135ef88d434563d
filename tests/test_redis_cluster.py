"""Real worker processes on one real Redis: kill -9 mid-stream, model versions, learner.

Slow: each test starts several ``banana-monitor run --source redis://...`` processes.
The 100,000-post version of the first test is ``bench/redis_workers.py --kill``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

import numpy as np
import pytest

from monitor.model import Model
from tests.redis_server import (
    Cluster,
    expected_alert_ids,
    keyword_model,
    keyword_posts,
    push_posts,
)

pytestmark = pytest.mark.slow

POSTS = int(os.environ.get("BANANA_MONITOR_REDIS_TEST_POSTS", "20000"))
LEARN_ENV = {"BANANA_MONITOR_LEARNING__CHECKPOINT_EVERY": "40",
             "BANANA_MONITOR_LEARNING__DRIFT_GUARD": "false"}


@pytest.fixture
def cluster(redis_url, tmp_path):
    cluster = Cluster(redis_url, tmp_path / "workers", keyword_model(tmp_path / "keyword.npz"))
    yield cluster
    cluster.close()


def started(cluster, *names, timeout=60.0):
    assert cluster.wait_until(
        lambda: all(cluster.is_reading(n) for n in names), timeout
    ), [cluster.directory(n).joinpath("worker.log").read_text()[-2000:] for n in names]


def alert_ids(alerts):
    return [f"{a['post_id']}:{a['label']}" for a in alerts]


def test_three_workers_one_killed_mid_stream_every_post_once_no_duplicate_alert(cluster,
                                                                                redis_url):
    posts = keyword_posts(POSTS)
    for name in ("w1", "w2", "w3"):
        cluster.start(name)
    started(cluster, "w1", "w2", "w3")
    push_posts(redis_url, posts[: POSTS // 2])
    # kill -9 w2 while it holds entries it has not acknowledged
    held = cluster.kill9_holding("w2")
    push_posts(redis_url, posts[POSTS // 2:])
    assert cluster.wait_until(cluster.drained, timeout=600, interval=0.1)
    assert cluster.pending() == 0 and cluster.pending_of("w2") == 0  # XPENDING empty

    # w2's entries were claimed (XAUTOCLAIM) by the live workers
    claimed = sum(e["entries"] for n in ("w1", "w3")
                  for e in cluster.log_events(n, "claimed stale entries"))
    assert claimed >= held > 0

    cluster.start("w2")  # back on its state dir: what its outbox committed gets delivered
    started(cluster, "w2")
    assert cluster.wait_until(lambda: cluster.undelivered() == 0, timeout=600, interval=0.5)
    assert cluster.stop_all() == {"w1": 0, "w2": 0, "w3": 0}
    committed = cluster.outbox_alert_ids()  # over the three workers' outboxes
    assert len(committed) == len(set(committed)) == len(expected_alert_ids(posts))

    assert cluster.scored_post_ids() >= {p["id"] for p in posts}  # every post scored
    alerts = cluster.alerts()
    ids = alert_ids(alerts)
    assert len(ids) == len(set(ids))  # no alert duplicated, across the three workers
    assert set(ids) == expected_alert_ids(posts)  # and none lost
    assert {a["model_version"] for a in alerts} == {1}


def labelled_posts(count, start=0):
    """'bread' posts labelled banana (the keyword model calls them other: it learns)."""
    return [{"id": f"l{i}", "text": f"fresh bread {'bread ' * (i % 3)}#{i}", "label": "banana"}
            for i in range(start, start + count)]


def offline_model(model_path, posts, learning_rate=0.1):
    """The same posts learned one by one, in order, by the single-example SGD step."""
    from monitor.train import sgd_update

    model = Model.load(model_path)
    for post in posts:
        sgd_update(model, post["text"], post["label"], learning_rate)
    return model


def learner_journal(cluster, name="learner"):
    conn = sqlite3.connect(f"file:{cluster.directory(name) / 'state' / 'ledger.sqlite3'}?mode=ro",
                           uri=True)
    rows = conn.execute("SELECT post_id, outcome FROM learn_journal ORDER BY seq").fetchall()
    conn.close()
    return rows


def learner_settled(cluster, published: int, every: int = 40, name="learner") -> bool:
    """The learner made every version it will make before shutdown, and published the
    last: fewer than ``checkpoint_every`` updates after its latest version, which is
    ``published``.  (A checkpoint follows the commit that acknowledges its posts, so a
    drained stream alone can come before the last one.)"""
    conn = sqlite3.connect(f"file:{cluster.directory(name) / 'state' / 'ledger.sqlite3'}?mode=ro",
                           uri=True)
    try:
        latest, seq = conn.execute("SELECT version, journal_seq FROM model_versions"
                                   " ORDER BY version DESC LIMIT 1").fetchone()
        unsaved = conn.execute("SELECT COUNT(*) FROM learn_journal WHERE outcome = 'learned'"
                               " AND seq > ?", (seq,)).fetchone()[0]
    finally:
        conn.close()
    return unsaved < every and latest == published


def status_of(cluster, name):
    from click.testing import CliRunner

    from monitor.cli import main

    result = CliRunner().invoke(main, ["status", "--state",
                                       str(cluster.directory(name) / "state")])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_learner_publishes_versions_scorers_pick_them_up_and_alerts_carry_them(cluster,
                                                                              redis_url):
    cluster.start("learner", role="learner", env=LEARN_ENV)
    for name in ("s1", "s2", "s3"):
        cluster.start(name, model_poll=0.2)
    started(cluster, "learner", "s1", "s2", "s3")
    published = lambda: int(cluster.client.get("banana-monitor:model:version") or 0)  # noqa: E731
    assert cluster.wait_until(lambda: published() >= 1, timeout=30)  # the start version

    push_posts(redis_url, labelled_posts(120))
    assert cluster.wait_until(lambda: cluster.drained("banana-monitor:learner"), timeout=120)
    assert cluster.wait_until(
        lambda: published() >= 2 and learner_settled(cluster, published()), timeout=30)
    version = published()
    at = time.monotonic()
    # all scorers report the new version within a few seconds, without a restart
    assert cluster.wait_until(
        lambda: all(status_of(cluster, n)["model_version"] == version
                    for n in ("s1", "s2", "s3")), timeout=10, interval=0.2)
    assert time.monotonic() - at < 10
    for name in ("s1", "s2", "s3"):
        swaps = cluster.log_events(name, "model_swapped")
        assert swaps and swaps[-1]["version"] == version
        assert cluster.processes[name].poll() is None  # the same process throughout

    # the scorers score with it: "fresh bread" now alerts as banana, with that version
    push_posts(redis_url, [{"id": f"u{i}", "text": "fresh bread bread"} for i in range(30)])
    assert cluster.wait_until(cluster.drained, timeout=60)
    time.sleep(1.5)  # outbox delivery
    alerts = [a for a in cluster.alerts() if a["post_id"].startswith("u")]
    assert sorted(a["post_id"] for a in alerts) == sorted(f"u{i}" for i in range(30))
    assert {(a["label"], a["model_version"]) for a in alerts} == {("banana", version)}
    # scorers skipped the labelled posts: only the learner learned them
    assert all(not cluster.directory(n).joinpath("state", "models").exists()
               for n in ("s1", "s2", "s3"))


def test_learner_kill9_loses_no_labelled_post_and_learns_none_twice(cluster, redis_url):
    posts = labelled_posts(400)
    cluster.start("learner", role="learner", env=LEARN_ENV, count=20)
    started(cluster, "learner")
    push_posts(redis_url, posts)
    kills = 0
    for _ in range(3):  # kill -9 mid-stream, restart on the same state dir
        journal_before = len(learner_journal(cluster))
        assert cluster.wait_until(lambda: len(learner_journal(cluster)) > journal_before + 30,
                                  timeout=60, interval=0.01)
        if cluster.drained("banana-monitor:learner"):
            break
        cluster.kill9("learner")
        kills += 1
        cluster.start("learner", role="learner", env=LEARN_ENV, count=20)
    assert kills >= 1
    assert cluster.wait_until(lambda: cluster.drained("banana-monitor:learner"), timeout=120)
    assert cluster.stop_all() == {"learner": 0}  # the shutdown checkpoint

    journal = learner_journal(cluster)
    assert [post_id for post_id, _ in journal] == [p["id"] for p in posts]  # once each, in order
    assert {outcome for _, outcome in journal} == {"learned"}
    versions = sorted((cluster.directory("learner") / "state" / "models").glob("v*.npz"))
    learned = Model.load(versions[-1])
    expected = offline_model(cluster.model, posts)
    for mine, theirs in zip(learned.network.weights + learned.network.biases,
                            expected.network.weights + expected.network.biases):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)


def test_a_single_worker_of_role_all_scores_and_learns(cluster, redis_url):
    cluster.start("solo", role="all", env=LEARN_ENV)
    started(cluster, "solo")
    posts = keyword_posts(30)
    push_posts(redis_url, posts + labelled_posts(5))
    assert cluster.wait_until(cluster.drained, timeout=60)
    assert cluster.wait_until(lambda: cluster.undelivered() == 0, timeout=60)
    assert cluster.stop_all() == {"solo": 0}
    assert sorted(alert_ids(cluster.alerts())) == sorted(expected_alert_ids(posts))
    assert [post_id for post_id, _ in learner_journal(cluster, "solo")] == [
        f"l{i}" for i in range(5)]
    assert cluster.scored_post_ids() == {p["id"] for p in posts} | {f"l{i}" for i in range(5)}


def test_workers_ride_out_a_redis_kill9_and_restart(tmp_path):
    """Redis itself dies mid-stream (kill -9) and comes back on the same address (AOF,
    fsync always): the workers log, retry, and finish; every post once, no alert twice."""
    from tests.redis_server import RedisServer, redis_server_binary

    server = RedisServer(redis_server_binary(), tmp_path / "redis", "--appendonly", "yes",
                         "--appendfsync", "always").start()
    cluster = Cluster(server.url, tmp_path / "workers", keyword_model(tmp_path / "kw.npz"),
                      count=100)
    try:
        assert cluster.client.config_get("appendonly")["appendonly"] == "yes"
        posts = keyword_posts(3000)
        for name in ("w1", "w2"):
            cluster.start(name)
        started(cluster, "w1", "w2")
        push_posts(server.url, posts)
        assert cluster.wait_until(lambda: len(cluster.scored_post_ids()) > 300, timeout=60,
                                  interval=0.01)
        server.kill9()
        time.sleep(2.0)  # the workers meet a dead server
        server.start(port=server.port)
        assert cluster.wait_until(cluster.drained, timeout=120, interval=0.2)
        assert cluster.wait_until(lambda: cluster.undelivered() == 0, timeout=120)
        assert all(cluster.processes[n].poll() is None for n in ("w1", "w2"))  # never died
        assert any(cluster.log_events(n, "redis unreachable") or
                   cluster.log_events(n, "source_unreachable") for n in ("w1", "w2"))
        assert cluster.stop_all() == {"w1": 0, "w2": 0}
        assert cluster.scored_post_ids() == {p["id"] for p in posts}
        ids = alert_ids(cluster.alerts())
        assert len(ids) == len(set(ids)) and set(ids) == expected_alert_ids(posts)
    finally:
        cluster.close()
        server.stop()
