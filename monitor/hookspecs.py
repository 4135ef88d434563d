"""The plugin contract: every hook a banana-monitor plugin may implement.

Plugins implement any subset with ``from monitor import hookimpl``.  Built-in plugins
(``plugins/``) are registered through the same ``banana_monitor`` entry-point group as
third-party ones.

Order for each active plugin, on its own outbox worker thread: ``monitor_start`` once,
``send_alert`` per alert (one call at a time, each with a timeout) — or, for a plugin that
also implements ``send_alert_batch``, one call per outbox batch — ``monitor_stop`` at
shutdown.  ``register_commands`` runs in the CLI process when the command group loads.
"""

from __future__ import annotations

import pluggy

from monitor import PROJECT

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def send_alert(alert):
    """Deliver one alert (monitor.alerts.Alert) on this plugin's thread; raise to retry it."""


@hookspec
def send_alert_batch(alerts):
    """Optional, beside send_alert: deliver a list of alerts in one call; raise to retry all."""


@hookspec
def monitor_start(plugin_config, settings):
    """The daemon starts: open connections. plugin_config: this plugin's table (or {})."""


@hookspec
def monitor_stop():
    """The daemon stops: flush and close what monitor_start opened."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``banana-monitor`` group ``cli``."""
