"""``banana-monitor push FILE... --source redis://HOST:PORT/DB``: feed a Redis stream.

For tests and backfills: every post of the files (JSON Lines or plain text, as ``score``
reads them) becomes one stream entry with fields ``id``, ``text``, ``label`` (if any)
and ``meta`` (the other JSON fields, as a JSON object, if any).
"""

from __future__ import annotations

import json
import sys

import click

from monitor.commands.common import CommandError, echo_json

PIPELINE = 1000  # entries per round trip


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--source", "url", required=True, metavar="redis://HOST:PORT/DB",
              envvar="BANANA_MONITOR_SOURCE", help="The Redis server (also BANANA_MONITOR_SOURCE).")
@click.option("--stream", default="banana-monitor:posts", show_default=True,
              help="Stream to append to.")
@click.option("--text-field", default="text", show_default=True, help="JSON field with the text.")
@click.option("--id-field", default="id", show_default=True, help="JSON field with the post id.")
@click.option("--maxlen", type=click.IntRange(min=1), default=None,
              help="Trim the stream to about this many entries (XADD MAXLEN ~).")
def push(files, url, stream, text_field, id_field, maxlen):
    """Append the posts of FILE... (or - for stdin) to a Redis stream."""
    from monitor.posts import InputError, read_posts

    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise CommandError(f"--source must be redis://HOST:PORT/DB, got {url!r}")
    client = _client(url)
    appender = _Appender(client, stream, maxlen)
    try:
        for name in files:
            with _open(name) as handle:
                for post in read_posts(handle, name, text_field=text_field, id_field=id_field):
                    appender.add(post)
        appender.flush()
    except InputError as error:
        appender.flush()  # the posts before the bad line are pushed, and counted
        raise CommandError(f"{error} ({appender.pushed} posts pushed before it)") from None
    except OSError as error:
        raise CommandError(f"{error.filename}: {error.strerror}") from None
    except _redis_errors() as error:
        raise CommandError(f"redis: {error} ({appender.pushed} posts pushed before it)") from None
    finally:
        client.close()
    echo_json({"pushed": appender.pushed, "stream": stream, "files": len(files)})


def entry_fields(post) -> dict[str, str]:
    """A Post → the fields of its stream entry."""
    fields = {"id": post.id, "text": post.text}
    if post.label is not None:
        fields["label"] = post.label
    if post.meta:
        fields["meta"] = json.dumps(post.meta, ensure_ascii=False)
    return fields


class _Appender:
    """XADDs in pipelined round trips of PIPELINE entries; ``pushed`` counts the sent."""

    def __init__(self, client, stream: str, maxlen: int | None):
        self.pipe = client.pipeline(transaction=False)
        self.stream, self.maxlen = stream, maxlen
        self.buffered = self.pushed = 0

    def add(self, post) -> None:
        self.pipe.xadd(self.stream, entry_fields(post), maxlen=self.maxlen, approximate=True)
        self.buffered += 1
        if self.buffered >= PIPELINE:
            self.flush()

    def flush(self) -> None:
        if self.buffered:
            self.pipe.execute()
            self.pushed, self.buffered = self.pushed + self.buffered, 0


def _open(name):
    if name == "-":
        from contextlib import nullcontext

        return nullcontext(sys.stdin.buffer)
    return open(name, "rb")


def _client(url):
    try:
        import redis  # noqa: F401
    except ImportError:
        raise CommandError("push needs redis-py: pip install 'banana-monitor[redis]'") from None
    from monitor.redis_state import connect

    return connect(url)


def _redis_errors():
    import redis

    return (redis.RedisError,)
