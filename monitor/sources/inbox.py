"""The label inbox: labelled posts that scoring workers hand to the one learner.

With ``workers > 1`` (monitor/workers.py) the feed is scored by several processes, but
one model learns.  A worker that reads a labelled post does not learn it: inside the
transaction that marks its file done it appends the post here (``put``).  The
coordinator process reads the inbox as a source (``InboxSource``): one item per
worker file, in the order they were committed; inside the transaction where its
learner journals those posts, the rows are deleted (``in_transaction``).  So a
labelled post is learned exactly once whichever worker read it, across kill -9 of any
process.

Table ``label_inbox(seq PK AUTOINCREMENT, item_key, item_name, source, post_id, text,
label)``; AUTOINCREMENT: a seq is never reused, so an item key is never seen twice.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from monitor import feed
from monitor.posts import Post
from monitor.sources.base import WorkItem

SCHEMA = """
CREATE TABLE IF NOT EXISTS label_inbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    item_key  TEXT NOT NULL,
    item_name TEXT NOT NULL,
    source    TEXT NOT NULL,
    post_id   TEXT NOT NULL,
    text      TEXT NOT NULL,
    label     TEXT NOT NULL
)
"""


def create_schema(conn: sqlite3.Connection) -> None:
    conn.execute(SCHEMA)


def put(conn: sqlite3.Connection, item: WorkItem, posts: list[Post]) -> int:
    """Inside a worker's transaction: its file's labelled posts, in order, for the learner.

    Nothing when the item is done already: two workers that read files with the same
    content (the same key) at the same time both commit, and only the first one's
    labels count (the transactions are serialised, so the second one sees it)."""
    if conn.execute("SELECT 1 FROM items WHERE key = ?", (item.key,)).fetchone():
        return 0
    conn.executemany(
        "INSERT INTO label_inbox (item_key, item_name, source, post_id, text, label)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(item.key, item.name, item.source_name, post.id, post.text, post.label)
         for post in posts],
    )
    return len(posts)


class InboxSource:
    """The coordinator's source: the inbox's labelled posts, one worker file at a time."""

    ledger_items = False  # the rows are the record: no items/posts rows for these
    POLL_SECONDS = 0.1

    def __init__(self, ledger, feed_dir: str | Path, name: str = "inbox"):
        self.name = name  # the daemon's source in status: the feed directory
        self.ledger = ledger
        self.feed_dir = Path(feed_dir).absolute()
        ledger.register_schema(create_schema)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def next_batch(self, timeout: float) -> WorkItem | None:
        """The labelled posts of the oldest worker file in the inbox; None after
        ``timeout`` seconds without any."""
        deadline = time.monotonic() + timeout
        while True:
            item = self._oldest()
            if item is not None or time.monotonic() >= deadline:
                return item
            time.sleep(min(self.POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))

    def _oldest(self) -> WorkItem | None:
        rows = self.ledger.query(
            "SELECT seq, item_key, item_name, source, post_id, text, label FROM label_inbox"
            " WHERE item_key = (SELECT item_key FROM label_inbox ORDER BY seq LIMIT 1)"
            " ORDER BY seq")
        if not rows:
            return None
        first, last = rows[0][0], rows[-1][0]
        _, _, name, source, _, _, _ = rows[0]
        return WorkItem(
            key=f"inbox:{first}-{last}",
            posts=[Post(id=post_id, text=text, label=label)
                   for _, _, _, _, post_id, text, label in rows],
            source_name=source,
            name=f"{name}.labels",
            ready_at=None,
            handle=[row[0] for row in rows],
        )

    def in_transaction(self, conn: sqlite3.Connection, item: WorkItem) -> None:
        """With the learner's journal rows: the item's posts leave the inbox."""
        conn.executemany("DELETE FROM label_inbox WHERE seq = ?", [(seq,) for seq in item.handle])

    def ack(self, item: WorkItem) -> None:
        """Labels the learner refused (unknown class) are recorded like bad lines."""
        feed.write_quarantine(self.feed_dir, item)

    def backlog(self) -> int:
        return self.ledger.query("SELECT COUNT(*) FROM label_inbox")[0][0]
