"""``banana-monitor model history`` and ``model rollback``: the versions in the state dir.

Both read the state directory from the same settings as ``run`` (``--config``,
``--feed``, ``--state``).  A rollback is a new version holding the old weights; a
running daemon adopts it before it scores its next item.
"""

from __future__ import annotations

import click

from monitor.commands.common import CommandError, echo_json

state_options = [
    click.option("--config", "config_path", metavar="FILE",
                 help="TOML config (default: ./banana-monitor.toml if present)."),
    click.option("--feed", metavar="DIR", help="Feed directory [feed]."),
    click.option("--state", metavar="DIR", help="State directory [<feed>/.state]."),
]


def with_state_options(fn):
    for option in reversed(state_options):
        fn = option(fn)
    return fn


def _open_ledger(config_path, feed, state):
    from monitor.config import ConfigError, load_settings
    from monitor.ledger import FILENAME, Ledger
    from monitor.learn import create_schema

    try:
        settings = load_settings(config_path, feed=feed, state=state)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    if not (settings.state / FILENAME).is_file():
        raise CommandError(f"no state in {settings.state} (has the daemon run?)")
    ledger = Ledger(settings.state)
    ledger.register_schema(create_schema)
    return settings, ledger


@click.command("history")
@with_state_options
def history(config_path, feed, state) -> None:
    """JSON Lines: every model version (oldest first) with its metrics."""
    from monitor.versions import VersionStore, get_state

    settings, ledger = _open_ledger(config_path, feed, state)
    try:
        with ledger.transaction() as conn:
            versions = VersionStore(settings.state).history(conn)
            paused = get_state(conn, "paused")
    finally:
        ledger.close()
    latest = versions[-1].version if versions else None
    for version in versions:
        row = version.to_dict()
        row["current"] = version.version == latest
        if row["current"] and paused:
            row["learning_paused"] = paused["reason"]
        echo_json(row)


@click.command("rollback")
@click.argument("version", type=int, required=False)
@with_state_options
def rollback(version, config_path, feed, state) -> None:
    """Restore VERSION (default: the one before the current) as a new version.

    Learning resumes if it was paused; a running daemon picks the model up before its
    next item, without a restart.
    """
    from monitor.learn import journal_max_seq, learned_count
    from monitor.versions import VersionError, VersionStore, set_state

    settings, ledger = _open_ledger(config_path, feed, state)
    try:
        with ledger.transaction() as conn:
            store = VersionStore(settings.state)
            seq = journal_max_seq(conn)
            restored = store.restore(conn, version, seq, learned_count(conn))
            set_state(conn, "paused", None)
    except VersionError as error:
        raise CommandError(str(error)) from None
    finally:
        ledger.close()
    echo_json({"rolled_back_to": restored.parent, **restored.to_dict()})
