"""One daemon per state directory: an exclusive lock on ``<state>/daemon.lock``.

Two daemons on one state would race for the same feed files and learn into one
journal from two processes (nothing is lost, but each keeps undoing the other's
view); the second one started refuses instead.  The lock is ``flock`` on an open file
kept for the daemon's life: the kernel drops it when the process ends, even by
``kill -9``, so a crash never leaves a stale lock.  The file holds the pid of the
daemon that has it, for the message.  ``status``, ``model`` and ``alerts`` read the
state without the lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO

LOCK_FILE = "daemon.lock"


class StateLocked(Exception):
    """Another process holds the state directory's lock."""


def acquire(state: str | Path, wait: float = 5.0) -> IO[str]:
    """Lock ``state`` for this process; the open lock file (close it to release).

    Retries for ``wait`` seconds (a daemon stopping, or killed a moment ago, lets go),
    then raises StateLocked naming the holder's pid.
    """
    path = Path(state) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # never truncated before we hold it; whatever it holds is only read for the message
    handle = open(path, "a+", encoding="ascii", errors="replace")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _holder(handle)
                handle.close()
                raise StateLocked(
                    f"another banana-monitor daemon{holder} is running on the state "
                    f"directory {Path(state)}; stop it first, or give this one its own "
                    f"--state") from None
            time.sleep(0.1)
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _holder(handle: IO[str]) -> str:
    """`` (pid N)`` from the lock file, or "" when it names none."""
    handle.seek(0)
    text = handle.read().strip()
    return f" (pid {text})" if text.isdigit() else ""
