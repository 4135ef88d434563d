"""The Source protocol: where the daemon's work comes from, and how it is acknowledged.

A source hands the daemon one WorkItem at a time (a file of the feed directory, or a
batch of Redis stream entries).  The daemon scores it, commits the outcome to the
ledger in one transaction keyed by ``item.key``, and only then calls ``source.ack(item)``
(move the file to ``processed/``, XACK the entries).  A crash before ``ack`` means the
source offers the same item again; the ledger then recognises ``item.key`` as done, so
the daemon just acks it without scoring or alerting twice.

Choosing a source: ``monitor.sources.open_source(settings)``; ``settings.source`` of
``redis://...`` imports ``monitor.sources.redis`` and calls its
``open_source(url, settings) -> Source``; anything else is the feed directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from monitor.posts import Post


@dataclass
class BadLine:
    """A line that is not a valid post: its number (1-based), the reason, the raw bytes."""

    line: int
    error: str
    raw: bytes = b""

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "error": self.error}


@dataclass
class WorkItem:
    """One unit of work.

    key:         stable id for the ledger (file content hash, stream entry ids)
    posts:       the valid posts, in order
    errors:      bad lines (the source persists them to quarantine on ack)
    source_name: ``dir:/path`` or ``redis://...`` (becomes Alert.source)
    name:        human-readable name for logs (file name, entry range)
    rejected:    a reason when the whole item is unusable (binary file, symlink out of
                 the feed dir, unreadable): no posts, the source quarantines it on ack
    ready_at:    time.time() when the item became complete (file close/rename), for latency
    handle:      source-private data (path, entry ids, ...)
    """

    key: str
    posts: list[Post]
    errors: list[BadLine] = field(default_factory=list)
    source_name: str = ""
    name: str = ""
    rejected: str | None = None
    ready_at: float | None = None
    handle: Any = None


@runtime_checkable
class Source(Protocol):
    """What the daemon needs from a source; implementations: directory.py, redis.py."""

    name: str

    def start(self) -> None:
        """Begin watching / connect; may scan for work that arrived while stopped."""

    def next_batch(self, timeout: float) -> WorkItem | None:
        """The next complete item, or None after ``timeout`` seconds without one."""

    def ack(self, item: WorkItem) -> None:
        """The item's outcome is committed to the ledger: release it (never before)."""

    def stop(self) -> None:
        """Stop watching; items handed out but not acked are offered again next start."""
