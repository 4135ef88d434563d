"""State that Redis workers share: alert deduplication and the published model.

Keys (``prefix`` defaults to ``banana-monitor``):

  {prefix}:alert:{alert_id}   owner|pending|ms or owner|done|ms (EX ttl): who sends it
  {prefix}:model:npz          the latest published model, the bytes of its .npz file
  {prefix}:model:version      its version (an integer, written in the same MULTI)
  {prefix}:model              pub/sub channel: the version, on every publish

Alert deduplication (``AlertDedup``): a worker reserves an alert id before its ledger
transaction, stages the alert in that transaction and, after the commit, settles it
(compare-and-set to ``done``) before it enters the outbox; a reservation left pending by
a worker that died or stalled is taken over by the worker that reprocesses the post, and
the slow owner's settle then fails, so it drops its staged copy.  See README "Scaling
out with Redis" for the exact guarantees.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from monitor.model import Model

DEFAULT_PREFIX = "banana-monitor"
DEFAULT_DEDUP_TTL = 7 * 24 * 3600  # seconds an alert id stays reserved


def connect(url: str, timeout: float = 10.0):
    """A redis-py client for ``redis://HOST:PORT/DB`` (bytes in, bytes out)."""
    import redis

    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )


# KEYS: alert keys; ARGV: owner, takeover_ms, ttl → 1 (ours to send) / 0 per key.
# A key is ours when free, already ours, or another worker's reservation that stayed
# "pending" (never confirmed by a ledger commit) longer than takeover_ms: that worker
# died before committing, so its outbox does not hold the alert.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local result = {}
for i, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  local ours = 0
  if not value then
    ours = 1
  else
    local owner, state, since = string.match(value, '^(.*)|(%a+)|(%d+)$')
    if owner == ARGV[1] then
      if state == 'pending' then ours = 1 else result[i] = 1 end
    elseif state == 'pending' and now - tonumber(since) > tonumber(ARGV[2]) then
      ours = 1
    end
  end
  if ours == 1 then
    redis.call('SET', key, ARGV[1] .. '|pending|' .. now, 'EX', ARGV[3])
    result[i] = 1
  elseif not result[i] then
    result[i] = 0
  end
end
return result
"""


# KEYS: alert keys; ARGV: owner, ttl → 1 (confirmed ours: now done) / 0 per key.
# Runs after the owner's ledger commit.  A reservation another worker took over in the
# meantime stays theirs: the owner drops its staged copy, so exactly one worker sends.
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local result = {}
for i, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  local owner = value and string.match(value, '^(.*)|%a+|%d+$')
  if (not value) or owner == ARGV[1] then
    redis.call('SET', key, ARGV[1] .. '|done|' .. now, 'EX', ARGV[2])
    result[i] = 1
  else
    result[i] = 0
  end
end
return result
"""


class AlertDedup:
    """Cluster-wide "who sends this alert?", two steps around the worker's ledger commit.

    ``reserve`` (before the ledger transaction) marks the alert ``owner|pending|ms``;
    ``settle`` (after COMMIT, before the outbox) turns the owner's reservation into
    ``owner|done|ms``.  Another worker that meets a *pending* reservation older than
    ``takeover`` seconds takes it over (its owner died or stalled); a *done* one is never
    taken: the owner delivers it, after a restart if need be.
    """

    def __init__(self, client, owner: str, prefix: str = DEFAULT_PREFIX,
                 ttl: int = DEFAULT_DEDUP_TTL, takeover: float = 10.0):
        if "|" in owner:
            raise ValueError(f"consumer name must not contain '|': {owner!r}")
        self.client = client
        self.owner = owner
        self.prefix = prefix
        self.ttl = int(ttl)
        self.takeover_ms = int(takeover * 1000)
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)

    def key(self, alert_id: str) -> str:
        return f"{self.prefix}:alert:{alert_id}"

    def reserve(self, alert_ids: Iterable[str]) -> set[str]:
        """The ids this worker may enqueue (free, its own, or a dead worker's pending)."""
        ids = list(dict.fromkeys(alert_ids))
        if not ids:
            return set()
        flags = self._reserve(keys=[self.key(a) for a in ids],
                              args=[self.owner, self.takeover_ms, self.ttl])
        return {alert_id for alert_id, ok in zip(ids, flags) if ok}

    def settle(self, alert_ids: Iterable[str]) -> set[str]:
        """After the ledger commit: mark ours ``done``; returns the ids still ours.

        An id another worker took over while we were slow (our reservation stayed
        pending past ``takeover``) is not ours any more: that worker sends it.
        """
        ids = list(dict.fromkeys(alert_ids))
        if not ids:
            return set()
        flags = self._settle(keys=[self.key(a) for a in ids], args=[self.owner, self.ttl])
        return {alert_id for alert_id, ok in zip(ids, flags) if ok}

    def state_of(self, alert_id: str) -> tuple[str, str] | None:
        """(owner, "pending" | "done") of a reservation, or None."""
        value = self.client.get(self.key(alert_id))
        if value is None:
            return None
        owner, state, _ = value.decode().rsplit("|", 2)
        return owner, state


def model_bytes(model: Model) -> bytes:
    """A model's .npz file as bytes (the same arrays ``Model.save`` writes)."""
    buffer = io.BytesIO()
    np.savez(buffer, **model.arrays())
    return buffer.getvalue()


def model_from_bytes(data: bytes, scratch_dir: str | os.PathLike | None = None) -> Model:
    """Bytes of a .npz → Model, through ``Model.load`` and all its checks (ModelError)."""
    fd, tmp = tempfile.mkstemp(prefix=".published-", suffix=".npz", dir=scratch_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return Model.load(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


class ModelChannel:
    """Publish the learner's checkpoints; let scoring workers fetch the newest one."""

    def __init__(self, client, prefix: str = DEFAULT_PREFIX):
        self.client = client
        self.npz_key = f"{prefix}:model:npz"
        self.version_key = f"{prefix}:model:version"
        self.channel = f"{prefix}:model"

    def publish(self, model: Model, version: int | None = None) -> int:
        """Store ``model`` as the current version (atomically with its number); notify."""
        version = model.version if version is None else int(version)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.npz_key, model_bytes(model))
        pipe.set(self.version_key, version)
        pipe.publish(self.channel, version)
        pipe.execute()
        return version

    def version(self) -> int | None:
        """The published version, or None when nothing was published (one cheap GET)."""
        value = self.client.get(self.version_key)
        return None if value is None else int(value)

    def fetch(self, scratch_dir=None) -> tuple[int, Model] | None:
        """(version, model) of the current publication, read atomically; None if none."""
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.version_key)
        pipe.get(self.npz_key)
        version, data = pipe.execute()
        if version is None or data is None:
            return None
        return int(version), model_from_bytes(data, scratch_dir)
