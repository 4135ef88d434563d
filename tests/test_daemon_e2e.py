"""End-to-end: the real daemon (``python -m monitor run``) as a subprocess on a temp feed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from monitor.model import Model
from tests.conftest import MODELS

pytestmark = pytest.mark.slow

WORDS = ["banana", "cookie", "chocolate", "sweet", "bread", "hello", "world", "yummy"]


def make_posts(tag: str, count: int, rng) -> list[dict]:
    """``count`` posts with ids ``tag-i`` and random words (some posts alert, some not)."""
    return [
        {"id": f"{tag}-{i}", "text": " ".join(rng.choice(WORDS, size=rng.integers(1, 6)))}
        for i in range(count)
    ]


def jsonl(posts: list[dict]) -> bytes:
    return "".join(json.dumps(post) + "\n" for post in posts).encode()


def drop(feed: Path, name: str, data: bytes) -> None:
    """The collector's atomic drop: write a dotfile temp, then rename into place."""
    tmp = feed / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, feed / name)


def stream_files(feed: Path, files: dict[str, list[dict]], delays) -> threading.Thread:
    """Drop ``files`` one by one, ``delays[i]`` seconds apart, from a started thread."""

    def writer():
        for (name, posts), delay in zip(files.items(), delays):
            time.sleep(delay)
            drop(feed, name, jsonl(posts))

    thread = threading.Thread(target=writer)
    thread.start()
    return thread


def expected_alerts(posts: list[dict], model_path: Path = MODELS / "seed-multiclass.npz"):
    """{(post_id, label)} for banana/cookie at threshold 0.5, computed with Model directly."""
    model = Model.load(model_path)
    probabilities = model.probabilities([post["text"] for post in posts])
    names = model.label_names
    return {
        (post["id"], label)
        for post, row in zip(posts, probabilities)
        for label in ("banana", "cookie")
        if row[names.index(label)] >= 0.5
    }


def ledger_rows(state: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(state / "ledger.sqlite3")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def alert_keys(daemon) -> list[tuple[str, str]]:
    return [(line["post_id"], line["label"]) for line in daemon.alert_lines()]


def all_delivered(daemon) -> bool:
    rows = ledger_rows(daemon.state, "SELECT COUNT(*) FROM outbox_deliveries"
                                     " WHERE status != 'delivered'")
    return rows[0][0] == 0


def test_rename_slow_writer_and_preexisting_files_each_processed_once(daemon_process, rng):
    daemon = daemon_process()
    before = make_posts("before", 30, rng)
    (daemon.feed / "before.jsonl").write_bytes(jsonl(before))  # present before start
    daemon.start()
    daemon.wait_for(lambda: any(e["event"] == "daemon_started" for e in daemon.events()),
                    what="start-up")  # a writer pausing longer than `settle` before that
    renamed = make_posts("renamed", 40, rng)  # would look complete to the start-up scan
    drop(daemon.feed, "renamed.jsonl", jsonl(renamed))
    slow = make_posts("slow", 30, rng)
    data = jsonl(slow)
    with open(daemon.feed / "slow.jsonl", "wb") as handle:  # one writer, several chunks
        for start in range(0, len(data), len(data) // 4 + 1):
            handle.write(data[start:start + len(data) // 4 + 1])
            handle.flush()
            time.sleep(0.6)  # longer than the settle time: only the close completes it
    posts = before + renamed + slow
    want = expected_alerts(posts)
    daemon.wait_for(lambda: len(daemon.processed()) == 3 and len(daemon.alert_lines()) >= len(want),
                    what="three files processed")
    time.sleep(1.5)  # a rescan or late event must not process anything again
    assert daemon.signal(signal.SIGTERM) == 0
    assert daemon.processed() == ["before.jsonl", "renamed.jsonl", "slow.jsonl"]
    keys = alert_keys(daemon)
    assert len(keys) == len(set(keys)) and set(keys) == want
    done = [e for e in daemon.events() if e["event"] == "item_done"]
    assert sorted(e["item"] for e in done) == ["before.jsonl", "renamed.jsonl", "slow.jsonl"]
    assert {e["item"]: e["posts"] for e in done} == {
        "before.jsonl": 30, "renamed.jsonl": 40, "slow.jsonl": 30}
    ids = ledger_rows(daemon.state, "SELECT post_id FROM posts")
    assert sorted(i for (i,) in ids) == sorted(p["id"] for p in posts)


def test_restart_does_not_reprocess_and_status_reports(daemon_process, rng, cli, json_lines):
    daemon = daemon_process()
    posts = make_posts("a", 25, rng)
    daemon.start()
    drop(daemon.feed, "a.jsonl", jsonl(posts))
    daemon.wait_for(lambda: daemon.processed() == ["a.jsonl"], what="a.jsonl")
    status = json_lines(cli("status", "--feed", daemon.feed, "--state", daemon.state).output)[0]
    assert status["running"] is True and status["uptime"] > 0
    assert status["posts"] == 25 and status["items"] == 1 and status["backlog"] == 0
    assert status["model_version"] == 1
    assert daemon.signal(signal.SIGINT) == 0
    # the same content again under another name: recognised by its hash, no new alerts
    drop(daemon.feed, "again.jsonl", jsonl(posts))
    daemon.start()
    daemon.wait_for(lambda: "again.jsonl" in daemon.processed(), what="again.jsonl")
    daemon.wait_for(lambda: all_delivered(daemon), what="deliveries")
    assert daemon.signal(signal.SIGTERM) == 0
    keys = alert_keys(daemon)
    assert len(keys) == len(set(keys)) == len(expected_alerts(posts))
    assert any(e["event"] == "item_already_done" for e in daemon.events())
    status = json_lines(cli("status", "--feed", daemon.feed, "--state", daemon.state).output)[0]
    assert status["running"] is False and status["posts"] == 25
    assert status["alerts"] == len(keys)


def test_sigterm_while_busy_drains_and_exits_zero_quickly(daemon_process, rng):
    daemon = daemon_process()
    daemon.start()
    daemon.wait_for(lambda: any(e.get("event") == "daemon_started" for e in daemon.events()),
                    what="start")
    for n in range(10):
        drop(daemon.feed, f"f{n}.jsonl", jsonl(make_posts(f"f{n}", 2000, rng)))
    time.sleep(0.3)
    started = time.monotonic()
    assert daemon.signal(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - started < 5.0
    # whatever was taken was finished: every processed file is fully in the ledger
    done = {name: posts for (name, posts) in ledger_rows(daemon.state,
                                                         "SELECT name, posts FROM items")}
    assert set(done) == set(daemon.processed())
    assert all(posts == 2000 for posts in done.values())


def test_sigusr1_prints_every_thread_stack_and_the_daemon_goes_on(daemon_process, rng):
    """`kill -USR1` is how to see where a stuck daemon is: stacks to the log, no stop."""
    daemon = daemon_process()
    daemon.start()
    daemon.wait_for(lambda: any(e.get("event") == "daemon_started" for e in daemon.events()),
                    what="start")
    daemon.proc.send_signal(signal.SIGUSR1)
    daemon.wait_for(lambda: "Current thread" in daemon.log_path.read_text(errors="replace"),
                    what="the stack dump")
    dump = daemon.log_path.read_text(errors="replace")
    assert "monitor/daemon.py" in dump and dump.count("Thread 0x") >= 2  # main + outbox
    drop(daemon.feed, "after.jsonl", jsonl(make_posts("after", 5, rng)))
    daemon.wait_for(lambda: "after.jsonl" in daemon.processed(), what="after.jsonl")
    assert daemon.signal(signal.SIGTERM) == 0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_logs_one_event_per_file_without_post_text_and_metrics(daemon_process, rng):
    import urllib.request

    daemon = daemon_process()
    port = free_port()
    daemon.start("--metrics-port", str(port))
    secret = "bananasecretword cookie"
    drop(daemon.feed, "one.jsonl", jsonl([{"id": "s1", "text": secret}, {"text": "banana"}]))
    drop(daemon.feed, "two.txt", b"cookie cookie\nbanana\n")
    daemon.wait_for(lambda: len(daemon.processed()) == 2, what="two files")
    daemon.wait_for(lambda: all_delivered(daemon), what="deliveries")
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    assert "banana_monitor_posts_total 4.0" in metrics
    assert 'banana_monitor_items_total{status="done"} 2.0' in metrics
    assert "banana_monitor_item_latency_seconds_count 2.0" in metrics
    assert daemon.signal(signal.SIGTERM) == 0
    log_text = daemon.log_path.read_text()
    assert "bananasecretword" not in log_text
    done = [e for e in daemon.events() if e["event"] == "item_done"]
    assert [(e["item"], e["posts"], e["quarantined"]) for e in done] == [
        ("one.jsonl", 2, 0), ("two.txt", 2, 0)]
    assert all(e["level"] == "info" and "seconds" in e and "alerts" in e for e in done)


BAD_CASES = {
    # name: (bytes, expected reason substring, whole file rejected?)
    "invalid-json.jsonl": (b'{"text": "banana"}\n{"text": \n', "invalid JSON", False),
    "invalid-utf8.jsonl": (b'{"text": "banana"}\n{"text": "caf\xe9"}\n', "invalid UTF-8", False),
    "missing-text.jsonl": (b'{"text": "banana"}\n{"body": "cookie"}\n', "missing 'text'", False),
    "huge-line.jsonl": (b'{"text": "banana"}\n{"text": "' + b"a" * (2 << 20) + b'"}\n',
                        "byte limit", False),
    "non-string.jsonl": (b'{"text": "banana"}\n{"text": ["cookie"]}\n', "must be a string",
                         False),
    "binary.jsonl": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary", True),
}


def test_bad_input_corpus_is_quarantined_and_daemon_survives(daemon_process, tmp_path):
    daemon = daemon_process()
    daemon.start()
    quarantine = daemon.feed / "quarantine"
    for name, (data, reason, whole) in BAD_CASES.items():
        drop(daemon.feed, name, data)
        if whole:
            daemon.wait_for(lambda: (quarantine / f"{name}.reason.json").exists(), what=name)
            record = json.loads((quarantine / f"{name}.reason.json").read_text())
            assert reason in record["error"] and record["file"] == name
            assert (quarantine / name).read_bytes() == data
        else:
            daemon.wait_for(lambda: name in daemon.processed(), what=name)
            [path] = quarantine.glob(f"{name}.*.reason.json")
            record = json.loads(path.read_text())
            assert [e["line"] for e in record["errors"]] == [2]
            assert reason in record["errors"][0]["error"]
            assert record["errors"][0]["file"] == name
        assert daemon.alive(), name
    # a symlink pointing out of the feed directory is quarantined (the link, not the target)
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b'{"text": "banana secret"}\n')
    (daemon.feed / "link.jsonl").symlink_to(outside)
    daemon.wait_for(lambda: (quarantine / "link.jsonl.reason.json").exists(), what="symlink")
    record = json.loads((quarantine / "link.jsonl.reason.json").read_text())
    assert "outside the feed directory" in record["error"]
    assert (quarantine / "link.jsonl").is_symlink() and outside.exists()
    # the good first line of every line-level case still went through (5 files)
    daemon.wait_for(lambda: len([k for k in alert_keys(daemon) if k[1] == "banana"]) == 5,
                    what="good lines alerted")
    assert daemon.alive()
    assert daemon.signal(signal.SIGTERM) == 0
    assert "banana secret" not in daemon.log_path.read_text()
    rejected = [e for e in daemon.events() if e["event"] == "item_rejected"]
    assert {e["item"]: e["reason"] for e in rejected} == {
        "binary.jsonl": "binary file (NUL bytes)",
        "link.jsonl": "symlink points outside the feed directory"}
    items = dict(ledger_rows(daemon.state, "SELECT name, status FROM items"))
    assert items["binary.jsonl"] == "rejected" and items["link.jsonl"] == "rejected"


def test_kill9_loop_every_post_done_no_alert_twice(daemon_process, rng):
    """≥ 20 kill -9 at random moments while 50 files stream in, then a clean run."""
    daemon = daemon_process("[plugins.log]\nenabled = false\n")  # jsonl only: less to deliver
    files = {f"k{n:02d}.jsonl": make_posts(f"k{n:02d}", 200, rng) for n in range(50)}
    thread = stream_files(daemon.feed, files, rng.uniform(0.1, 0.7, size=len(files)))
    kills = 0
    while kills < 20 or thread.is_alive():
        daemon.start()
        if kills % 4:  # three kills in four after start-up, at a random moment of the work
            daemon.wait_for(lambda: any(e["event"] == "daemon_started" for e in daemon.events()),
                            what="start-up")
            time.sleep(float(rng.uniform(0.0, 0.8)))
        else:  # and some during start-up (resume, scan, first file)
            time.sleep(float(rng.uniform(0.2, 1.5)))
        daemon.kill()
        kills += 1
    thread.join()
    daemon.start()  # the clean run
    daemon.wait_for(lambda: any(e["event"] == "daemon_started" for e in daemon.events()),
                    what="start-up of the clean run")
    daemon.wait_for(lambda: len(daemon.processed()) == 50, timeout=90, what="all 50 files")
    daemon.wait_for(lambda: all_delivered(daemon), timeout=90, what="all deliveries")
    assert daemon.signal(signal.SIGTERM) == 0
    assert kills >= 20
    posts = [post for batch in files.values() for post in batch]
    # every post done, exactly once in the ledger
    ids = [i for (i,) in ledger_rows(daemon.state, "SELECT post_id FROM posts")]
    assert sorted(ids) == sorted(p["id"] for p in posts)
    items = ledger_rows(daemon.state, "SELECT name, posts, status FROM items")
    assert len(items) == 50 and all(n == 200 and s == "done" for _, n, s in items)
    # no alert twice: the jsonl plugin's file and the outbox agree with the model
    keys = alert_keys(daemon)
    assert len(keys) == len(set(keys))
    want = expected_alerts(posts)
    assert set(keys) == want
    outbox = ledger_rows(daemon.state, "SELECT alert_id FROM outbox_alerts")
    assert sorted(a for (a,) in outbox) == sorted(f"{p}:{label}" for p, label in want)
    # the ledger is consistent
    assert ledger_rows(daemon.state, "PRAGMA integrity_check") == [("ok",)]
    assert ledger_rows(daemon.state, "SELECT SUM(alerts) FROM items") == [(len(want),)]
    assert not any((daemon.feed / name).exists() for name in files)


def test_second_daemon_on_the_same_state_refuses_and_a_killed_one_lets_go(daemon_process,
                                                                          rng):
    """Two daemons on one state directory would race for the same files: the second
    exits 2 naming the first's pid, the first runs on; kill -9 frees the lock at once."""
    import subprocess
    import sys

    first = daemon_process()
    first.start()
    first.wait_for(lambda: any(e.get("event") == "daemon_started" for e in first.events()),
                   what="start")
    second = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--config", str(first.config),
         "--feed", str(first.feed), "--state", str(first.state), "--model", str(first.model),
         "--no-learn"],
        capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert f"another banana-monitor daemon (pid {first.proc.pid}) is running" in second.stderr
    assert "daemon_started" not in second.stderr
    posts = make_posts("s", 10, rng)
    drop(first.feed, "s.jsonl", jsonl(posts))  # the first one is unharmed
    first.wait_for(lambda: first.processed() == ["s.jsonl"], what="s.jsonl")

    first.kill()  # kill -9: the kernel drops the lock with the process
    first.start()
    first.wait_for(lambda: any(e.get("event") == "daemon_started" for e in first.events()),
                   timeout=10, what="restart after kill -9")
    assert first.signal(signal.SIGTERM) == 0
