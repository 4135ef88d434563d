"""The ledger: one SQLite database (WAL) per state directory, ``<state>/ledger.sqlite3``.

It records which work items (files, stream batches) and posts are done.  Other modules
(outbox, learner) add their own tables with ``register_schema`` and write inside
``transaction()`` when their rows must commit together with the posts.

Tables owned here:
  items(key PK, source, name, status 'done'|'rejected', posts, alerts, quarantined,
        reason, done_at)
  posts(post_id PK, item_key, label)          -- label: the predicted label
  meta(key PK, value)                          -- daemon pid, start time, model version
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

FILENAME = "ledger.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    posts INTEGER NOT NULL,
    alerts INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    reason TEXT,
    done_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS posts (
    post_id TEXT PRIMARY KEY,
    item_key TEXT NOT NULL,
    label TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
"""


class Ledger:
    """The state database; one connection, serialised by a lock (threads may share it)."""

    def __init__(self, state_dir: str | Path, readonly: bool = False):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / FILENAME
        self._lock = threading.RLock()
        self._schemas: list[Callable[[sqlite3.Connection], None]] = []
        if readonly:
            self.conn = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                check_same_thread=False, timeout=30,
            )
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.register_schema(lambda conn: conn.executescript(SCHEMA))

    def register_schema(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``fn(conn)`` now (it creates a module's tables, IF NOT EXISTS)."""
        with self._lock:
            self._schemas.append(fn)
            fn(self.conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; ROLLBACK if the block raises."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # ------------------------------------------------------------------ items and posts

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """A read outside any transaction (a WAL snapshot: never blocks the writers)."""
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def is_done(self, key: str) -> bool:
        with self._lock:
            row = self.conn.execute("SELECT 1 FROM items WHERE key = ?", (key,)).fetchone()
        return row is not None

    @staticmethod
    def mark_done(
        conn: sqlite3.Connection,
        key: str,
        source: str,
        name: str,
        post_ids: Sequence[str],
        labels: Sequence[str | None],
        alerts: int,
        quarantined: int,
        status: str = "done",
        reason: str | None = None,
    ) -> None:
        """Inside a transaction: the item and its posts are done (one executemany)."""
        conn.executemany(
            "INSERT OR IGNORE INTO posts (post_id, item_key, label) VALUES (?, ?, ?)",
            zip(post_ids, _repeat(key, len(post_ids)), labels),
        )
        conn.execute(
            "INSERT OR REPLACE INTO items (key, source, name, status, posts, alerts,"
            " quarantined, reason, done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, source, name, status, len(post_ids), alerts, quarantined, reason, time.time()),
        )

    # ------------------------------------------------------------------ meta and counts

    def set_meta(self, **values) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, None if v is None else str(v)) for k, v in values.items()],
            )

    def meta(self) -> dict[str, str]:
        with self._lock:
            return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def counts(self) -> dict[str, int]:
        """Totals over the items table: files, posts, alerts, quarantined lines/files."""
        with self._lock:
            row = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(posts), 0), COALESCE(SUM(alerts), 0),"
                " COALESCE(SUM(quarantined), 0),"
                " COALESCE(SUM(status = 'rejected'), 0) FROM items"
            ).fetchone()
            distinct_posts = self.conn.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
        return {
            "items": row[0],
            "posts": distinct_posts,
            "post_lines": row[1],
            "alerts": row[2],
            "quarantined_lines": row[3],
            "quarantined_files": row[4],
        }


def _repeat(value, count: int):
    for _ in range(count):
        yield value
