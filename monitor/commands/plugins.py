"""``banana-monitor plugins``: every registered plugin as JSON (name, version, hooks)."""

from __future__ import annotations

import click

from monitor.commands.common import CommandError, echo_json


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML config: decides which built-ins are active.")
def plugins(config_path: str | None) -> None:
    """List installed plugins as a JSON array: name, version, hooks, builtin, active."""
    from monitor.config import ConfigError, load_settings
    from monitor.plugins import PluginError, describe, get_plugin_manager

    try:
        settings = load_settings(config_path)
        pm = get_plugin_manager(settings=settings)
    except (ConfigError, PluginError) as error:
        raise CommandError(str(error)) from None
    echo_json(describe(pm, settings))
