"""The directory source: only complete files, each handed out once, nothing missed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from monitor.sources.base import Source
from monitor.sources.directory import DirectorySource


@pytest.fixture
def feed_dir(tmp_path) -> Path:
    path = tmp_path / "feed"
    path.mkdir()
    return path


@pytest.fixture
def make_source(feed_dir):
    started = []

    def make(**options) -> DirectorySource:
        options.setdefault("rescan_interval", 60.0)
        source = DirectorySource(feed_dir, **options)
        source.start()
        started.append(source)
        return source

    yield make
    for source in started:
        source.stop()


def take_all(source, seconds: float) -> list[str]:
    names, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        item = source.next_batch(0.05)
        if item is not None:
            names.append(item.name)
            source.ack(item)
    return names


def test_is_a_source(make_source):
    source = make_source()
    assert isinstance(source, Source) and source.name.startswith("dir:/")


def test_renamed_file_is_ready_at_once(make_source, feed_dir):
    source = make_source(settle=30.0)
    (feed_dir / ".a.jsonl.tmp").write_bytes(b'{"text": "banana"}\n')
    assert source.next_batch(0.3) is None  # a dotfile/.tmp is not a candidate
    os.replace(feed_dir / ".a.jsonl.tmp", feed_dir / "a.jsonl")
    item = source.next_batch(2.0)
    assert item is not None and item.name == "a.jsonl" and len(item.posts) == 1
    assert item.ready_at is not None and item.source_name == source.name
    source.ack(item)
    assert (feed_dir / "processed/a.jsonl").is_file() and not (feed_dir / "a.jsonl").exists()
    assert take_all(source, 0.5) == []


def test_open_writer_is_waited_for_until_close(make_source, feed_dir):
    source = make_source(settle=0.2, write_timeout=30.0)
    handle = open(feed_dir / "slow.jsonl", "wb")
    for n in range(4):
        handle.write(b'{"text": "banana %d"}\n' % n)
        handle.flush()
        assert source.next_batch(0.4) is None  # longer than settle: still not complete
    handle.close()
    item = source.next_batch(2.0)
    assert item is not None and [p.text for p in item.posts] == [f"banana {n}" for n in range(4)]


def test_files_present_before_start_are_found(feed_dir, make_source):
    (feed_dir / "old.txt").write_bytes(b"banana\n")
    past = time.time() - 60
    os.utime(feed_dir / "old.txt", (past, past))
    (feed_dir / "new.txt").write_bytes(b"cookie\n")
    (feed_dir / ".hidden").write_bytes(b"x\n")
    source = make_source(settle=0.3)
    assert sorted(take_all(source, 1.5)) == ["new.txt", "old.txt"]


def test_polling_waits_for_settle(make_source, feed_dir):
    source = make_source(polling=True, settle=0.6)
    (feed_dir / "p.jsonl").write_bytes(b'{"text": "banana"}\n')
    started = time.monotonic()
    item = source.next_batch(5.0)
    assert item is not None and item.name == "p.jsonl"
    assert time.monotonic() - started >= 0.5


def test_rescan_finds_what_the_observer_missed(make_source, feed_dir):
    source = make_source(settle=0.1, rescan_interval=0.3)
    source._observer.stop()  # simulate lost events (e.g. inotify queue overflow)
    source._observer.join()
    source._observer = None
    (feed_dir / "missed.jsonl").write_bytes(b'{"text": "banana"}\n')
    assert take_all(source, 1.5) == ["missed.jsonl"]


def test_dead_observer_is_restarted(make_source, feed_dir):
    source = make_source(settle=30.0)
    source._observer.stop()
    source._observer.join()
    assert source.next_batch(0.1) is None
    assert source.observer_restarts == 1 and source._observer.is_alive()
    os.replace(_tmp(feed_dir, b"banana\n"), feed_dir / "after.txt")
    item = source.next_batch(2.0)
    assert item is not None and item.name == "after.txt"  # events flow again


def test_vanished_file_is_skipped(make_source, feed_dir, monkeypatch):
    from monitor import feed

    source = make_source(settle=30.0)
    real_read = feed.read_feed_file

    def vanish_then_read(path, *args):
        os.unlink(path)
        return real_read(path, *args)

    monkeypatch.setattr(feed, "read_feed_file", vanish_then_read)
    from structlog.testing import capture_logs

    os.replace(_tmp(feed_dir, b"banana\n"), feed_dir / "gone.txt")
    with capture_logs() as logs:
        assert source.next_batch(1.0) is None
    assert source.backlog() == 0
    assert {"event": "file_vanished", "file": "gone.txt", "log_level": "warning"} in logs


def test_oldest_first_and_release(make_source, feed_dir):
    source = make_source(settle=0.1)
    for n, name in enumerate(["b.txt", "a.txt", "c.txt"]):
        (feed_dir / name).write_bytes(b"banana\n")
        os.utime(feed_dir / name, (1000 + n, 1000 + n))
    first = source.next_batch(2.0)
    assert first.name == "b.txt"
    source.release(first)  # not acked: offered again
    assert take_all(source, 1.0) == ["b.txt", "a.txt", "c.txt"]


def _tmp(feed_dir: Path, data: bytes) -> Path:
    path = feed_dir / ".drop.tmp"
    path.write_bytes(data)
    return path


def test_open_source_picks_the_directory(tmp_path):
    from monitor.config import load_settings
    from monitor.sources import open_source

    settings = load_settings(environ={}, feed=str(tmp_path / "a"))
    assert open_source(settings).feed_dir == (tmp_path / "a").absolute()
    other = load_settings(environ={}, feed=str(tmp_path / "a"), source=f"dir:{tmp_path}/b")
    assert open_source(other).feed_dir == tmp_path / "b"
    with pytest.raises(ValueError, match="unknown source"):
        open_source(load_settings(environ={}, source="kafka://x"))


def test_file_replaced_while_in_flight_is_offered_again(make_source, feed_dir):
    source = make_source(settle=30.0)
    os.replace(_tmp(feed_dir, b"banana first\n"), feed_dir / "same.txt")
    first = source.next_batch(2.0)
    assert [p.text for p in first.posts] == ["banana first"]
    # the collector drops a new file under the same name before the first one is acked
    os.replace(_tmp(feed_dir, b"cookie second\n"), feed_dir / "same.txt")
    source.ack(first)
    assert (feed_dir / "same.txt").read_bytes() == b"cookie second\n"  # not moved away
    second = source.next_batch(2.0)
    assert second is not None and [p.text for p in second.posts] == ["cookie second"]
    source.ack(second)
    assert not (feed_dir / "same.txt").exists()
    assert sorted(os.listdir(feed_dir / "processed")) == ["same.txt"]


def test_deleted_feed_directory_is_recreated_and_watched(make_source, feed_dir):
    import shutil

    source = make_source(settle=30.0)
    shutil.rmtree(feed_dir)  # the watch dies with the directory
    assert source.next_batch(0.3) is None
    assert source.observer_restarts >= 1 and feed_dir.is_dir()
    os.replace(_tmp(feed_dir, b"banana\n"), feed_dir / "back.txt")
    item = source.next_batch(2.0)
    assert item is not None and item.name == "back.txt"  # by an event (no rescan: 60 s)


WAIT_THROUGH_A_SIGNAL = """
import json, signal, sys, threading, time
from monitor.sources.directory import DirectorySource

def slow_handler(signum, frame):  # outlasts next_batch's wait for events
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        pass

signal.signal(signal.SIGUSR2, slow_handler)
source = DirectorySource(sys.argv[1], rescan_interval=60.0)
source.start()
main = threading.main_thread().ident
kicks = threading.Thread(target=lambda: [time.sleep(0.02) or signal.pthread_kill(main, signal.SIGUSR2)
                                         for _ in range(5)], daemon=True)
started = time.monotonic()
kicks.start()
item = source.next_batch(0.2)
print(json.dumps({"item": item is not None, "seconds": time.monotonic() - started}))
source.stop()
"""


def test_next_batch_returns_after_a_signal_during_its_wait(feed_dir):
    """A signal handled while next_batch waits for events (the daemon's SIGTERM) must
    not leave it waiting forever: with a SimpleQueue on CPython 3.11 it did, and the
    daemon took SIGTERM but never came back to its loop to stop."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", WAIT_THROUGH_A_SIGNAL, str(feed_dir)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["item"] is False
    # 0.2 s of waiting plus five 0.3 s handlers; forever (killed at 60 s) before the fix
    assert result["seconds"] < 10.0, result
