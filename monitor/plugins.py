"""The plugin manager: hookspecs, entry points, and which plugins are switched off.

``get_plugin_manager()`` is the one factory (pluggy's eggsample pattern).  Built-in and
third-party plugins both arrive through the ``banana_monitor`` entry-point group.
A plugin is blocked by name with ``BANANA_MONITOR_PLUGINS="-name,..."`` (or config),
or only some are allowed with ``BANANA_MONITOR_PLUGINS="name,other"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pluggy

from monitor import PROJECT, hookspecs

ENV_SELECTION = "BANANA_MONITOR_PLUGINS"


def parse_selection(value: str | None) -> tuple[set[str] | None, set[str]]:
    """``"a,b"`` → allow only a, b; ``"-a,no:b"`` → block a and b.  (allow, block)."""
    allow: set[str] = set()
    block: set[str] = set()
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("-") or item.startswith("no:"):
            block.add(item.split(":", 1)[-1].lstrip("-"))
        else:
            allow.add(item)
    return (allow or None), block


def get_plugin_manager(
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
    load_entrypoints: bool = True,
) -> pluggy.PluginManager:
    """A manager with the hookspecs, and every installed plugin not switched off."""
    env_allow, env_block = parse_selection(os.environ.get(ENV_SELECTION))
    allowed = set(allow) if allow is not None else env_allow
    blocked = set(block) | env_block
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    if allowed is not None:
        from importlib.metadata import entry_points

        for entry in entry_points(group=PROJECT):
            if entry.name not in allowed:
                pm.set_blocked(entry.name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(PROJECT)
    pm.check_pending()
    return pm
