"""An example banana-monitor plugin: append one tab-separated line per alert to a file.

Config (``banana-monitor.toml``)::

    [plugins.example]
    path = "example-alerts.tsv"

It implements every hook: ``monitor_start`` (open the file), ``send_alert`` (write a
line; raising here would make the outbox retry), ``monitor_stop`` (close the file) and
``register_commands`` (adds ``banana-monitor example-count FILE``).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import click

from monitor import hookimpl

__version__ = "0.1.0"

_lock = threading.Lock()
_state: dict = {}


@hookimpl
def monitor_start(plugin_config, settings):
    """Open the output file named in ``[plugins.example] path``."""
    path = Path(plugin_config.get("path", "example-alerts.tsv"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock:
        _state["file"] = open(path, "a", encoding="utf-8")


@hookimpl
def send_alert(alert):
    """One line: label, post id, score, the words that drove the score."""
    words = ",".join(item["word"] for item in alert.explanation or [])
    line = f"{alert.label}\t{alert.post_id}\t{alert.score:.3f}\t{words}\n"
    with _lock:
        handle = _state.get("file")
        if handle is None:
            raise RuntimeError("example plugin: monitor_start was not called")
        handle.write(line)
        handle.flush()


@hookimpl
def monitor_stop():
    """Close the file."""
    with _lock:
        handle = _state.pop("file", None)
    if handle is not None:
        handle.close()


@hookimpl
def register_commands(cli):
    """Add ``banana-monitor example-count FILE``: alerts per class as JSON."""

    @cli.command(name="example-count")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    def example_count(path):
        """Count the alerts per class in an example plugin output FILE."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        click.echo(json.dumps(dict(Counter(line.split("\t")[0] for line in lines if line))))
