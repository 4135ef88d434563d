"""The plugin contract: every hook a banana-monitor plugin may implement.

Plugins implement any subset with ``from monitor import hookimpl``.  Built-in plugins
(``plugins/``) are registered through the same ``banana_monitor`` entry-point group as
third-party ones.
"""

from __future__ import annotations

import pluggy

from monitor import PROJECT

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def send_alert(alert):
    """Deliver one alert (a monitor.alerts.Alert); raise to signal failure: it is retried."""


@hookspec
def monitor_start(plugin_config, settings):
    """The daemon starts: open connections. plugin_config: this plugin's table (or {})."""


@hookspec
def monitor_stop():
    """The daemon stops: flush and close what monitor_start opened."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``banana-monitor`` group ``cli``."""
