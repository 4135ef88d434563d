"""One daemon per state directory (monitor/statelock.py)."""

from __future__ import annotations

import os
import time

import pytest

from monitor import statelock


def test_second_lock_waits_then_refuses_naming_the_holder(tmp_path):
    held = statelock.acquire(tmp_path / "state")
    assert (tmp_path / "state" / "daemon.lock").read_text() == f"{os.getpid()}\n"
    started = time.monotonic()
    with pytest.raises(statelock.StateLocked, match=rf"\(pid {os.getpid()}\) is running"):
        statelock.acquire(tmp_path / "state", wait=0.3)
    assert time.monotonic() - started >= 0.3
    held.close()  # released: the next one gets it and writes its own pid
    again = statelock.acquire(tmp_path / "state", wait=0.0)
    assert (tmp_path / "state" / "daemon.lock").read_text() == f"{os.getpid()}\n"
    again.close()


def test_lock_released_while_waiting_is_taken(tmp_path):
    import threading

    held = statelock.acquire(tmp_path)
    threading.Timer(0.3, held.close).start()
    taken = statelock.acquire(tmp_path, wait=5.0)  # does not raise: the holder let go
    taken.close()


@pytest.mark.parametrize("content", [b"", b"\xff\xfe garbage \x00\n"], ids=["empty", "binary"])
def test_a_lock_file_without_a_pid_still_refuses(tmp_path, content):
    held = statelock.acquire(tmp_path)
    (tmp_path / "daemon.lock").write_bytes(content)
    with pytest.raises(statelock.StateLocked, match=r"daemon is running on the state"):
        statelock.acquire(tmp_path, wait=0.0)
    held.close()
    taken = statelock.acquire(tmp_path, wait=0.0)  # and a free one is taken, pid rewritten
    assert (tmp_path / "daemon.lock").read_text() == f"{os.getpid()}\n"
    taken.close()


def test_a_state_path_that_is_a_file_is_an_os_error(tmp_path):
    (tmp_path / "state").write_text("not a directory")
    with pytest.raises(OSError):  # `run` turns it into a one-line error, exit 2
        statelock.acquire(tmp_path / "state", wait=0.0)
