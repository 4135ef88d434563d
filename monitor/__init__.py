"""banana-monitor: a streaming social-media monitor with a small numpy network.

Plugins import the hook marker from here::

    from monitor import hookimpl

    @hookimpl
    def send_alert(alert):
        ...
"""

import pluggy

__version__ = "0.1.0"

PROJECT = "banana_monitor"  # pluggy project name and entry-point group
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "__version__", "hookimpl"]
