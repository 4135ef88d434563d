"""Sources of work for the daemon: the feed directory, a Redis stream (see base.py)."""

from __future__ import annotations

from monitor.sources.base import BadLine, Source, WorkItem

__all__ = ["BadLine", "Source", "WorkItem", "open_source"]


def open_source(settings) -> Source:
    """The source ``settings`` ask for: ``redis://...`` → sources.redis, else the feed dir."""
    url = getattr(settings, "source", None)
    if url and str(url).startswith(("redis://", "rediss://", "unix://")):
        try:
            from monitor.sources import redis as redis_source
        except ImportError as error:
            raise ValueError(f"the redis source is not available: {error}") from None
        return redis_source.open_source(url, settings)
    from monitor.sources.directory import DirectorySource

    if url:  # dir:PATH or a plain path: that directory instead of settings.feed
        from dataclasses import replace
        from pathlib import Path

        path = str(url)[4:] if str(url).startswith("dir:") else str(url)
        if "://" in path:
            raise ValueError(f"unknown source {url!r} (expected a directory or "
                             "redis://HOST:PORT/DB)")
        settings = replace(settings, feed=Path(path))
    return DirectorySource.from_settings(settings)
