"""run --workers N: partitions, the label inbox, and the real daemon with worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.posts import Post
from monitor.sources import inbox
from monitor.sources.base import WorkItem
from monitor.sources.directory import DirectorySource, partition_of
from monitor.versions import VersionStore
from tests.test_daemon_e2e import (
    all_delivered,
    alert_keys,
    drop,
    expected_alerts,
    jsonl,
    ledger_rows,
    make_posts,
    stream_files,
)

# ---------------------------------------------------------------------- partitions


@given(st.text(min_size=1, max_size=30), st.integers(1, 9))
def test_every_name_has_exactly_one_owner(name, count):
    owner = partition_of(name, count)
    assert 0 <= owner < count
    assert partition_of(name, count) == owner  # stable: no per-process hash salt


def test_partition_is_the_same_in_every_process():
    # the coordinator and each spawned worker compute it apart: a per-process hash salt
    # (str hash and PYTHONHASHSEED) would hand a file to two workers or to none
    import subprocess
    import sys

    names = [f"f{n}.jsonl" for n in range(50)] + ["ünïcode.txt", "a b.jsonl"]
    here = [partition_of(name, 3) for name in names]
    code = ("import sys, json\nfrom monitor.sources.directory import partition_of\n"
            "print(json.dumps([partition_of(n, 3) for n in json.loads(sys.argv[1])]))")
    for seed in ("1", "2"):
        import json

        out = subprocess.run([sys.executable, "-c", code, json.dumps(names)], check=True,
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert json.loads(out) == here
    assert set(here) == {0, 1, 2}  # and the names do spread over the workers
    assert partition_of("a.jsonl", 1) == 0


def test_directory_sources_split_the_feed_between_them(tmp_path):
    names = [f"f{n}.jsonl" for n in range(40)]
    for name in names:
        (tmp_path / name).write_text('{"text": "banana"}\n')
    taken = []
    for index in range(3):
        source = DirectorySource(tmp_path, settle=0.0, partition=(index, 3))
        source._rescan()
        source._ready_names()  # the first look records each size; settle = 0 then passes
        mine = []
        while (item := source._take_ready()) is not None:
            mine.append(item.name)
        assert all(partition_of(name, 3) == index for name in mine)
        taken += mine
    assert sorted(taken) == sorted(names)  # each file by exactly one worker


# ---------------------------------------------------------------------- the inbox


def _item(key: str, name: str, posts: list[Post]) -> WorkItem:
    return WorkItem(key=key, posts=posts, source_name="dir:/feed", name=name)


def test_inbox_hands_over_one_worker_file_at_a_time_and_forgets_it_in_the_txn(make_ledger,
                                                                              tmp_path):
    ledger = make_ledger()
    source = inbox.InboxSource(ledger, tmp_path)
    a = [Post("a1", "banana", "banana"), Post("a2", "cookie", "cookie")]
    b = [Post("b1", "banana bread", "banana")]
    with ledger.transaction() as conn:
        assert inbox.put(conn, _item("sha256:a", "a.jsonl", a), a) == 2
    with ledger.transaction() as conn:
        assert inbox.put(conn, _item("sha256:b", "b.jsonl", b), b) == 1
    assert source.backlog() == 3
    first = source.next_batch(0.0)
    assert first.name == "a.jsonl.labels" and first.source_name == "dir:/feed"
    assert [(p.id, p.text, p.label) for p in first.posts] == [
        ("a1", "banana", "banana"), ("a2", "cookie", "cookie")]
    assert source.next_batch(0.0).key == first.key  # still there until the transaction
    with pytest.raises(RuntimeError):  # a transaction that fails keeps the rows
        with ledger.transaction() as conn:
            source.in_transaction(conn, first)
            raise RuntimeError("killed before COMMIT")
    assert source.backlog() == 3
    with ledger.transaction() as conn:
        source.in_transaction(conn, first)
    second = source.next_batch(0.0)
    assert [p.id for p in second.posts] == ["b1"] and second.key != first.key
    with ledger.transaction() as conn:
        source.in_transaction(conn, second)
    assert source.backlog() == 0 and source.next_batch(0.05) is None


def test_inbox_put_skips_a_file_another_worker_already_committed(make_ledger):
    from monitor.ledger import Ledger

    ledger = make_ledger()
    ledger.register_schema(inbox.create_schema)
    posts = [Post("x1", "banana", "banana")]
    item = _item("sha256:same", "copy.jsonl", posts)
    with ledger.transaction() as conn:
        assert inbox.put(conn, item, posts) == 1
        Ledger.mark_done(conn, item.key, "dir:/feed", "copy.jsonl", ["x1"], [None], 0, 0)
    with ledger.transaction() as conn:  # the same content, read by a second worker
        assert inbox.put(conn, _item("sha256:same", "copy2.jsonl", posts), posts) == 0
    assert ledger.query("SELECT COUNT(*) FROM label_inbox") == [(1,)]


def test_labels_the_learner_refuses_are_quarantined_like_bad_lines(make_ledger, tmp_path):
    import json

    from monitor.sources.base import BadLine

    ledger = make_ledger()
    source = inbox.InboxSource(ledger, tmp_path)
    posts = [Post("u1", "banana", "durian")]
    with ledger.transaction() as conn:
        inbox.put(conn, _item("sha256:u", "u.jsonl", posts), posts)
    item = source.next_batch(0.0)
    item.errors.append(BadLine(0, "post u1: unknown label 'durian'", b'{"id": "u1"}'))
    source.ack(item)
    [reason] = (tmp_path / "quarantine").glob("u.jsonl.labels.*.reason.json")
    record = json.loads(reason.read_text())
    assert record["file"] == "u.jsonl.labels"
    assert record["errors"] == [{"file": "u.jsonl.labels", "line": 0,
                                 "error": "post u1: unknown label 'durian'"}]


# ---------------------------------------------------------------------- end to end

LEARN = "[learning]\ncheckpoint_every = 5\n"


def unsaved(daemon) -> int:
    """Updates the learner made after its latest version: under ``checkpoint_every`` (5
    here) no further version comes until shutdown.  (The checkpoint follows the commit
    that empties the label inbox, so an empty inbox alone can precede the last one.)"""
    return ledger_rows(daemon.state,
                       "SELECT COUNT(*) FROM learn_journal WHERE outcome = 'learned' AND seq >"
                       " (SELECT MAX(journal_seq) FROM model_versions)")[0][0]


def worker_pids(daemon) -> list[int]:
    started = [e for e in daemon.events() if e["event"] == "workers_started"]
    return started[-1]["pids"] if started else []


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def started(daemon) -> bool:
    return any(e["event"] == "workers_started" for e in daemon.events())


@pytest.mark.slow
def test_two_workers_score_every_file_once_and_the_coordinator_learns_every_label(
        daemon_process, rng, cli, json_lines):
    daemon = daemon_process(LEARN)
    daemon.start("--workers", "2", "--learn")
    daemon.wait_for(lambda: started(daemon), what="workers")
    files = {f"w{n:02d}.jsonl": make_posts(f"w{n:02d}", 60, rng) for n in range(12)}
    labelled = []
    for name, posts in files.items():
        for post in posts[:4]:  # four labelled posts in every file
            words = post["text"].split()
            post["label"] = ("banana" if "banana" in words else
                             "cookie" if "cookie" in words else "other")
            labelled.append(post["id"])
        drop(daemon.feed, name, jsonl(posts))
    daemon.wait_for(lambda: len(daemon.processed()) == 12, what="12 files")
    daemon.wait_for(lambda: all_delivered(daemon) and ledger_rows(
        daemon.state, "SELECT COUNT(*) FROM label_inbox") == [(0,)] and unsaved(daemon) < 5,
        what="labels learned and checkpointed")
    # the workers follow the learner: a file dropped now is scored with its latest version
    latest = ledger_rows(daemon.state, "SELECT MAX(version) FROM model_versions")[0][0]
    assert latest >= 2  # 48 updates, a checkpoint after every item that reached 5 more
    time.sleep(1.0)  # a worker looks for a new version every 0.5 s
    late = make_posts("late", 60, rng) + [
        {"id": f"late-b{n}", "text": "banana " * (n + 2)} for n in range(5)]
    drop(daemon.feed, "late.jsonl", jsonl(late))
    daemon.wait_for(lambda: "late.jsonl" in daemon.processed(), what="late.jsonl")
    daemon.wait_for(lambda: all_delivered(daemon), what="late alerts")
    late_alerts = [a for a in daemon.alert_lines() if a["post_id"].startswith("late-")]
    want = expected_alerts(late, VersionStore(daemon.state).path_of(latest))
    assert want and {(a["post_id"], a["label"]) for a in late_alerts} == want
    assert {a["model_version"] for a in late_alerts} == {latest}
    files["late.jsonl"] = late
    status = json_lines(cli("status", "--feed", daemon.feed, "--state", daemon.state).output)[0]
    assert status["workers"] == 2 and status["running"] is True
    pids = worker_pids(daemon)
    assert len(pids) == 2 and all(pid_alive(pid) for pid in pids)
    assert status["worker_pids"] == pids
    assert daemon.signal(signal.SIGTERM) == 0
    assert not any(pid_alive(pid) for pid in pids)  # the workers stopped with it
    # both workers took files, each file once
    done = [e for e in daemon.events() if e["event"] == "item_done" and e.get("worker") is not None]
    assert sorted(e["item"] for e in done) == sorted(files)
    assert {e["worker"] for e in done} == {0, 1}
    assert all(e["worker"] == partition_of(e["item"], 2) for e in done)
    # every labelled post learned exactly once, by the coordinator's learner
    journal = ledger_rows(daemon.state, "SELECT post_id, outcome FROM learn_journal")
    assert sorted(post_id for post_id, _ in journal) == sorted(labelled)
    assert {outcome for _, outcome in journal} == {"learned"}
    # no alert twice, none for labelled posts; workers score with the learner's versions
    keys = alert_keys(daemon)
    assert len(keys) == len(set(keys)) and not {k[0] for k in keys} & set(labelled)
    assert ledger_rows(daemon.state, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_redoes_its_file(daemon_process, rng):
    daemon = daemon_process("[plugins.log]\nenabled = false\n")
    daemon.start("--workers", "2")
    daemon.wait_for(lambda: started(daemon), what="workers")
    files = {f"r{n:02d}.jsonl": make_posts(f"r{n:02d}", 3000, rng) for n in range(10)}
    for name, posts in files.items():
        drop(daemon.feed, name, jsonl(posts))
    time.sleep(0.5)
    victim = worker_pids(daemon)[0]
    os.kill(victim, signal.SIGKILL)  # in the middle of its files
    daemon.wait_for(lambda: any(e["event"] == "worker_restarted" for e in daemon.events()),
                    what="restart")
    daemon.wait_for(lambda: len(daemon.processed()) == 10, timeout=90, what="10 files")
    daemon.wait_for(lambda: all_delivered(daemon), timeout=60, what="deliveries")
    assert daemon.signal(signal.SIGTERM) == 0
    exited = [e for e in daemon.events() if e["event"] == "worker_exited"]
    assert [e["pid"] for e in exited] == [victim] and exited[0]["exitcode"] == -signal.SIGKILL
    posts = [post for batch in files.values() for post in batch]
    ids = [i for (i,) in ledger_rows(daemon.state, "SELECT post_id FROM posts")]
    assert sorted(ids) == sorted(p["id"] for p in posts)
    keys = alert_keys(daemon)
    assert len(keys) == len(set(keys)) and set(keys) == expected_alerts(posts)


@pytest.mark.slow
def test_kill9_loop_of_the_coordinator_with_workers(daemon_process, rng):
    """kill -9 of the coordinator at random moments while files stream in; its workers
    die with it; a clean run ends with every post done once, no alert twice, and every
    labelled post learned once."""
    daemon = daemon_process("[plugins.log]\nenabled = false\n" + LEARN)
    files = {f"k{n:02d}.jsonl": make_posts(f"k{n:02d}", 300, rng) for n in range(30)}
    labelled = []
    for posts in files.values():
        for post in posts[::50]:
            post["label"] = "cookie" if "cookie" in post["text"] else "other"
            labelled.append(post["id"])
    thread = stream_files(daemon.feed, files, rng.uniform(0.1, 0.6, size=len(files)))
    kills, orphans = 0, []
    while kills < 10 or thread.is_alive():
        daemon.start("--workers", "2", "--learn")
        daemon.wait_for(lambda: started(daemon), what="workers")
        time.sleep(float(rng.uniform(0.0, 1.2)))
        pids = worker_pids(daemon)
        daemon.kill()
        kills += 1
        deadline = time.monotonic() + 5
        while any(map(pid_alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        orphans += [pid for pid in pids if pid_alive(pid)]
    thread.join()
    assert orphans == []  # every worker died with its coordinator
    daemon.start("--workers", "2", "--learn")  # the clean run
    daemon.wait_for(lambda: started(daemon), what="workers of the clean run")
    daemon.wait_for(lambda: len(daemon.processed()) == 30, timeout=90, what="all 30 files")
    daemon.wait_for(lambda: all_delivered(daemon) and ledger_rows(
        daemon.state, "SELECT COUNT(*) FROM label_inbox") == [(0,)], timeout=60,
        what="deliveries and labels")
    assert daemon.signal(signal.SIGTERM) == 0
    posts = [post for batch in files.values() for post in batch]
    ids = [i for (i,) in ledger_rows(daemon.state, "SELECT post_id FROM posts")]
    assert sorted(ids) == sorted(p["id"] for p in posts)
    items = ledger_rows(daemon.state, "SELECT name, posts, status FROM items")
    assert len(items) == 30 and all(n == 300 and s == "done" for _, n, s in items)
    journal = [i for (i,) in ledger_rows(daemon.state, "SELECT post_id FROM learn_journal")]
    assert sorted(journal) == sorted(labelled)  # learned once each
    keys = alert_keys(daemon)
    assert len(keys) == len(set(keys))
    outbox = {a for (a,) in ledger_rows(daemon.state, "SELECT alert_id FROM outbox_alerts")}
    assert {f"{p}:{label}" for p, label in keys} == outbox
    unlabelled = {p["id"] for p in posts} - set(labelled)
    assert {a.rsplit(":", 1)[0] for a in outbox} <= unlabelled
    assert ledger_rows(daemon.state, "PRAGMA integrity_check") == [("ok",)]
    assert not any((daemon.feed / name).exists() for name in files)


@pytest.mark.slow
def test_metrics_count_every_workers_items_once(daemon_process, rng):
    import urllib.request

    from tests.test_daemon_e2e import free_port

    daemon = daemon_process("[plugins.log]\nenabled = false\n")
    port = free_port()
    daemon.start("--workers", "2", "--learn", "--metrics-port", str(port))
    daemon.wait_for(lambda: started(daemon), what="workers")
    files = {f"m{n}.jsonl": make_posts(f"m{n}", 25, rng) for n in range(8)}
    for posts in files.values():
        posts[0]["label"] = "banana"  # learned by the coordinator: not a second item
    for name, posts in files.items():
        drop(daemon.feed, name, jsonl(posts))
    daemon.wait_for(lambda: len(daemon.processed()) == 8, what="8 files")
    daemon.wait_for(lambda: all_delivered(daemon) and ledger_rows(
        daemon.state, "SELECT COUNT(*) FROM label_inbox") == [(0,)], what="deliveries")
    new_alerts = ledger_rows(daemon.state, "SELECT SUM(alerts) FROM items")[0][0]
    url = f"http://127.0.0.1:{port}/metrics"

    def metric(name: str) -> float:
        for line in urllib.request.urlopen(url).read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not served")

    daemon.wait_for(lambda: metric("banana_monitor_posts_total") == 200, what="metrics")
    assert metric('banana_monitor_items_total{status="done"}') == 8
    assert metric("banana_monitor_alerts_total") == new_alerts > 0
    assert metric("banana_monitor_item_latency_seconds_count") == 8
    assert daemon.signal(signal.SIGTERM) == 0


def test_workers_need_the_feed_directory(cli, tmp_path):
    result = cli("run", "--feed", str(tmp_path / "feed"), "--state", str(tmp_path / "state"),
                 "--workers", "2", "--source", "redis://127.0.0.1:1/0")
    assert result.exit_code == 2
    assert "workers > 1 needs the feed directory" in result.output


def test_workers_setting_is_a_whole_number(tmp_path):
    from monitor.config import ConfigError, load_settings

    config = tmp_path / "c.toml"
    config.write_text("workers = 2.5\n")
    with pytest.raises(ConfigError, match="whole number"):
        load_settings(str(config))
    config.write_text("workers = 0\n")
    with pytest.raises(ConfigError, match="workers"):
        load_settings(str(config))
    assert load_settings(None, environ={}).workers == 1  # the default: one process
    assert load_settings(None, environ={}, workers=3).workers == 3
    assert load_settings(None, environ={"BANANA_MONITOR_WORKERS": "4"}).workers == 4


class _Exited:
    """A stand-in for a worker process that has exited."""

    pid, exitcode = 4242, 1

    def is_alive(self) -> bool:
        return False


def test_a_worker_that_keeps_dying_is_restarted_less_and_less_often(monkeypatch):
    from monitor import workers

    clock = [1000.0]
    monkeypatch.setattr(workers.time, "monotonic", lambda: clock[0])
    pool = workers.WorkerPool.__new__(workers.WorkerPool)
    pool.count, pool.restarts, pool.stopping = 1, 0, threading.Event()
    pool.processes, pool.restart_at, pool.started_at = [_Exited()], [0.0], [clock[0]]
    pool.delays = [workers.RESTART_SECONDS]
    spawned = []

    def spawn(index):
        spawned.append(clock[0])
        pool.started_at[index] = clock[0]
        pool.processes[index] = _Exited()  # dies again at once

    pool._spawn = spawn
    for _ in range(400):  # 200 s of the daemon loop, every 0.5 s
        pool.check()
        clock[0] += 0.5
    gaps = [later - earlier for earlier, later in zip([1000.0] + spawned, spawned)]
    # each death is seen on the next loop (0.5 s after the start), then the delay
    assert gaps == [1.0, 2.5, 4.5, 8.5, 16.5, 32.5, 60.5, 60.5]  # capped at 60 s
    # alive for 30 s or more: the next death is restarted after 1 s again
    pool.processes[0] = _Exited()
    pool.started_at[0] = clock[0] - 31.0
    pool.restart_at[0] = 0.0
    pool.check()
    assert pool.restart_at[0] == clock[0] + 1.0
