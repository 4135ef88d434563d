"""``banana-monitor alerts``: inspect the outbox and re-send dead-lettered deliveries.

A running daemon picks re-queued deliveries up within its poll interval; otherwise they
go out at its next start.
"""

from __future__ import annotations

from contextlib import contextmanager

import click

from monitor.commands.common import CommandError, echo_json

config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             help="TOML config (for the state directory).")
state_option = click.option("--state", type=click.Path(file_okay=False),
                            help="State directory holding ledger.sqlite3.")
plugin_option = click.option("--plugin", help="Only this plugin's deliveries.")


@click.group()
def alerts() -> None:
    """Alert deliveries in the outbox: stats, dead letters, re-send."""


@alerts.command()
@config_option
@state_option
def stats(config_path: str | None, state: str | None) -> None:
    """Per plugin: pending, failed (awaiting retry), delivered, dead — one JSON object."""
    from monitor.outbox import delivery_counts

    with outbox_connection(config_path, state) as conn:
        echo_json(delivery_counts(conn))


@alerts.command()
@config_option
@state_option
@plugin_option
@click.option("--failed", is_flag=True, help="Also list deliveries still being retried.")
def dead(config_path: str | None, state: str | None, plugin: str | None, failed: bool) -> None:
    """Dead-lettered deliveries, one JSON object per line (alert, plugin, last error)."""
    from monitor.outbox import dead_letters

    with outbox_connection(config_path, state) as conn:
        rows = dead_letters(conn, plugin, include_failed=failed)
    for row in rows:
        echo_json(row)


@alerts.command()
@config_option
@state_option
@plugin_option
@click.argument("alert_ids", nargs=-1)
def retry(config_path: str | None, state: str | None, plugin: str | None,
          alert_ids: tuple[str, ...]) -> None:
    """Put dead deliveries back in the queue (all, one plugin's, or the ALERT_IDS given)."""
    from monitor.outbox import requeue

    with outbox_connection(config_path, state) as conn:
        count = requeue(conn, plugin, alert_ids)
    echo_json({"requeued": count})


@contextmanager
def outbox_connection(config_path: str | None, state: str | None):
    """The ledger's connection, inside one transaction, with the outbox tables present."""
    from pathlib import Path

    from monitor.config import ConfigError, load_settings
    from monitor.ledger import Ledger
    from monitor.outbox import create_schema

    try:
        settings = load_settings(config_path, state=state)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    if not (Path(settings.state) / "ledger.sqlite3").is_file():
        raise CommandError(f"no ledger in {settings.state} (has the daemon run there?)")
    ledger = Ledger(settings.state)
    try:
        with ledger.transaction() as conn:
            create_schema(conn)
            yield conn
    finally:
        close = getattr(ledger, "close", None)
        if close is not None:
            close()
