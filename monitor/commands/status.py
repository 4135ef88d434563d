"""``banana-monitor status``: what the daemon has done, read from its state directory."""

from __future__ import annotations

import os
import time

import click

from monitor.commands.common import CommandError, echo_json


@click.command()
@click.option("--config", "config_path", metavar="FILE",
              help="TOML config (default: ./banana-monitor.toml if present).")
@click.option("--feed", metavar="DIR", help="Feed directory [feed].")
@click.option("--state", metavar="DIR", help="State directory [<feed>/.state].")
def status(config_path, feed, state) -> None:
    """JSON: running, uptime, posts, alerts, quarantined, backlog, model version, outbox."""
    from monitor.config import ConfigError, load_settings

    try:
        settings = load_settings(config_path, feed=feed, state=state)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    echo_json(collect(settings))


def collect(settings) -> dict:
    """The status document for ``settings`` (raises CommandError without a ledger)."""
    from monitor import feed
    from monitor.ledger import FILENAME, Ledger

    if not (settings.state / FILENAME).is_file():
        raise CommandError(f"no state in {settings.state} (has the daemon run?)")
    ledger = Ledger(settings.state, readonly=True)
    try:
        counts = ledger.counts()
        meta = ledger.meta()
        outbox = _outbox(ledger)
    finally:
        ledger.close()
    learning = _learning(settings)
    running = _running(meta)
    started = _float(meta.get("started_at"))
    return {
        "running": running,
        "pid": int(meta["pid"]) if running else None,
        "uptime": round(time.time() - started, 3) if running and started else None,
        "source": meta.get("source"),
        "workers": _int(meta.get("workers")) or 1,  # scoring processes (run --workers)
        "worker_pids": _worker_pids(meta) if running else [],
        "model_version": (learning or {}).get("model_version") or _int(meta.get("model_version")),
        "items": counts["items"],
        "posts": counts["posts"],
        "alerts": outbox.pop("alerts", counts["alerts"]),
        "quarantined": {"lines": counts["quarantined_lines"],
                        "files": counts["quarantined_files"]},
        "backlog": len(feed.list_candidates(settings.feed)),
        "prequential_accuracy": (learning or {}).get("prequential_accuracy"),
        "outbox": outbox,
        "learning": learning,  # issue 6: version, updates, prequential metrics
        "state": str(settings.state),
    }


def _learning(settings) -> dict | None:
    """Model version, updates applied, prequential accuracy (overall / recent window),
    per-class recall, paused? — None before the learner has run (issue 6)."""
    from monitor.learn import LearningConfig, read_learning_status

    window = LearningConfig.from_settings(settings).drift_window
    return read_learning_status(settings.state, window)


def _outbox(ledger) -> dict:
    try:
        from monitor.outbox import delivery_counts
    except ImportError:
        return {}
    conn = ledger.conn
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "outbox_alerts" not in tables:
        return {}
    alerts = conn.execute("SELECT COUNT(*) FROM outbox_alerts").fetchone()[0]
    return {"alerts": alerts, "deliveries": delivery_counts(conn)}


def _running(meta: dict) -> bool:
    if meta.get("stopped_at") or not meta.get("pid"):
        return False
    try:
        os.kill(int(meta["pid"]), 0)
    except (OSError, ValueError):
        return False
    return True


def _float(value):
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _worker_pids(meta: dict) -> list[int]:
    """The pids the workers of ``run --workers N`` wrote (worker<i>_pid), by index."""
    count = _int(meta.get("workers")) or 1
    if count < 2:
        return []
    return [_int(meta.get(f"worker{i}_pid")) for i in range(count)]


def _int(value):
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
