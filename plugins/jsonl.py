"""Built-in ``jsonl`` plugin: append every alert to a JSON Lines file.

Each line is exactly the alert FIELDS (monitor.alerts.FIELDS) as one JSON object.
Config::

    [plugins.jsonl]
    path = "alerts.jsonl"     # default: <state>/alerts.jsonl

The plugin implements ``send_alert_batch``: the outbox hands it a batch of alerts, whose
lines are written with one ``write`` and flushed (``send_alert`` does the same for one).
After a crash, the outbox may offer again the alerts of the batch in hand, whose lines
may already be in the file; at start-up the plugin drops a torn last line and remembers
the alert ids of the file's last ``TAIL_LINES`` lines, so such an alert is not written
twice.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
from pathlib import Path

from monitor import hookimpl
from monitor.alerts import FIELDS

try:
    import orjson

    def _line(alert) -> str:
        try:  # orjson writes a dataclass's fields in order: an Alert's are exactly FIELDS
            if dataclasses.is_dataclass(alert) and _field_names(type(alert)) == FIELDS:
                return orjson.dumps(alert).decode() + "\n"
            return orjson.dumps({name: getattr(alert, name) for name in FIELDS}).decode() + "\n"
        except TypeError:  # what orjson refuses (a lone surrogate in the text)
            record = {name: getattr(alert, name) for name in FIELDS}
            return json.dumps(record, ensure_ascii=False) + "\n"

    @functools.cache
    def _field_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in dataclasses.fields(cls))
except ImportError:  # pragma: no cover - orjson is a core dependency
    def _line(alert) -> str:
        record = {name: getattr(alert, name) for name in FIELDS}
        return json.dumps(record, ensure_ascii=False) + "\n"

TAIL_LINES = 10_000
TAIL_BYTES = 8 * 1024 * 1024


class JsonlWriter:
    """An append-only alerts file with crash-restart de-duplication of its tail."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._recent = _repair_and_read_tail(self.path)
        self._handle = open(self.path, "a", encoding="utf-8")

    def write(self, alert) -> bool:
        """Append one alert; False if it was already in the file's tail."""
        return self.write_many([alert]) == 1

    def write_many(self, alerts) -> int:
        """Append alerts (one write, one flush); how many were not already in the tail."""
        recent = self._recent
        lines = [_line(alert) for alert in alerts if alert.alert_id not in recent]
        if lines:
            with self._lock:
                self._handle.write("".join(lines))
                self._handle.flush()
        return len(lines)

    def close(self) -> None:
        with self._lock:
            self._handle.close()


def _repair_and_read_tail(path: Path) -> set[str]:
    """Truncate a torn last line; the alert ids (post_id:label) of the last lines."""
    if not path.exists():
        return set()
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        start = max(0, size - TAIL_BYTES)
        handle.seek(start)
        tail = handle.read()
        if tail and not tail.endswith(b"\n"):
            cut = tail.rfind(b"\n") + 1
            handle.truncate(start + cut)
            tail = tail[:cut]
    ids = set()
    for raw in tail.splitlines()[-TAIL_LINES:]:
        try:
            record = json.loads(raw)
            ids.add(f"{record['post_id']}:{record['label']}")
        except (ValueError, KeyError, TypeError):
            continue
    return ids


_writer: JsonlWriter | None = None


@hookimpl
def monitor_start(plugin_config, settings):
    global _writer
    default = Path(getattr(settings, "state", ".")) / "alerts.jsonl"
    _writer = JsonlWriter(plugin_config.get("path") or default)


@hookimpl
def send_alert(alert):
    if _writer is None:
        raise RuntimeError("jsonl plugin used before monitor_start")
    _writer.write(alert)


@hookimpl
def send_alert_batch(alerts):
    if _writer is None:
        raise RuntimeError("jsonl plugin used before monitor_start")
    _writer.write_many(alerts)


@hookimpl
def monitor_stop():
    global _writer
    if _writer is not None:
        _writer.close()
        _writer = None
