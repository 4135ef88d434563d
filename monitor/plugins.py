"""The plugin manager: hookspecs, entry points, and which plugins are switched on.

``get_plugin_manager()`` is the one factory (pluggy's eggsample pattern).  Built-in and
third-party plugins both arrive through the ``banana_monitor`` entry-point group.

Selection (like pytest's ``-p no:NAME``): ``BANANA_MONITOR_PLUGINS="a,b"`` loads only a
and b; ``"-a,no:b"`` blocks a and b.  The config table ``[plugin_selection]`` with
``allow = [...]`` / ``block = [...]`` does the same (the environment adds to the config's
block list and, when it names plugins to allow, replaces the config's allow list).

Activation: a *built-in* plugin (one whose module lives in the ``plugins`` package)
delivers alerts only when it has a ``[plugins.NAME]`` table in the config, except ``log``,
which is on by default; a third-party plugin is on once installed.  Any plugin is off with
``enabled = false`` in its table.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

import pluggy

from monitor import PROJECT, hookspecs

ENV_SELECTION = "BANANA_MONITOR_PLUGINS"
BUILTIN_PACKAGE = "plugins"
DEFAULT_ACTIVE = frozenset({"log"})  # built-ins on without a config table
SELECTION_TABLE = "plugin_selection"  # [plugin_selection] allow = [...], block = [...]


class PluginError(Exception):
    """A plugin does not match the contract (unknown hook, wrong arguments)."""


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


def selection_from(settings: Any = None) -> tuple[set[str] | None, set[str]]:
    """(allow, block) from ``[plugin_selection]`` in settings merged with the environment."""
    table = (getattr(settings, "raw", None) or {}).get(SELECTION_TABLE) or {}
    config_allow = table.get("allow")
    allow = set(config_allow) if isinstance(config_allow, list) else None
    block = set(table.get("block") or []) if isinstance(table.get("block"), list) else set()
    env_allow, env_block = parse_selection(os.environ.get(ENV_SELECTION))
    return (env_allow if env_allow is not None else allow), block | env_block


def get_plugin_manager(
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
    load_entrypoints: bool = True,
    settings: Any = None,
) -> pluggy.PluginManager:
    """A manager with the hookspecs and every installed plugin not switched off.

    An explicit ``allow`` wins over the config (``settings``) and the environment;
    ``block`` adds to them.  Raises PluginError when a plugin breaks the contract.
    """
    config_allow, config_block = selection_from(settings)
    allowed = set(allow) if allow is not None else config_allow
    blocked = set(block) | config_block
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    if allowed is not None:
        for entry in entry_points(group=PROJECT):
            if entry.name not in allowed:
                pm.set_blocked(entry.name)
    if load_entrypoints:
        _load_entrypoints(pm)
    check_plugins(pm)
    return pm


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    """Import every selected entry point first, so a broken one is named in the error."""
    for entry in entry_points(group=PROJECT):
        if pm.is_blocked(entry.name):
            continue
        try:
            entry.load()
        except Exception as error:  # ImportError, SyntaxError, anything at import time
            raise PluginError(
                f"plugin {entry.name!r} ({entry.value}) cannot be imported: "
                f"{type(error).__name__}: {error}"
            ) from None
    try:
        pm.load_setuptools_entrypoints(PROJECT)
    except pluggy.PluginValidationError as error:
        raise PluginError(f"plugin {_name_of(pm, error.plugin)}: {_one_line(error)}") from None


def register_plugin(pm: pluggy.PluginManager, plugin: object, name: str | None = None) -> str:
    """Register ``plugin`` (a module or object with hookimpls) and check it; its name.

    Raises PluginError when an implementation takes arguments its hook does not have or
    implements a hook that does not exist.
    """
    try:
        registered = pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as error:
        raise PluginError(f"plugin {name or _name_of(pm, plugin)}: {_one_line(error)}") from None
    try:
        check_plugins(pm)
    except PluginError:
        pm.unregister(plugin)
        raise
    return registered


def check_plugins(pm: pluggy.PluginManager) -> None:
    """Every hookimpl must implement a known hook, else PluginError.

    pluggy checks arguments at registration (an implementation may take a subset of the
    spec's arguments, never others); ``check_pending`` catches implementations of hooks
    that do not exist (a typo such as ``send_alerts``).
    """
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(f"plugin {_name_of(pm, error.plugin)}: {_one_line(error)}") from None


def _one_line(error: Exception) -> str:
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _name_of(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin) if pm.is_registered(plugin) else None
    return name or getattr(plugin, "__name__", None) or repr(plugin)


def register_commands(cli: Any, pm: pluggy.PluginManager | None = None) -> None:
    """Let every plugin add its commands to the click group ``cli`` (errors are logged)."""
    import structlog

    log = structlog.get_logger("monitor.plugins")
    try:
        pm = pm or get_plugin_manager()
    except PluginError as error:
        log.warning("plugins_not_loaded", error=str(error))
        return
    for impl in pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(*[{"cli": cli}[arg] for arg in impl.argnames])
        except Exception as error:  # a broken plugin must not take the CLI down
            log.warning("plugin_commands_failed", plugin=impl.plugin_name, error=str(error))


def is_builtin(plugin: object) -> bool:
    """True for the plugins shipped in this distribution's ``plugins`` package."""
    module = plugin if inspect.ismodule(plugin) else inspect.getmodule(plugin)
    name = getattr(module, "__name__", "") or ""
    return name == BUILTIN_PACKAGE or name.startswith(BUILTIN_PACKAGE + ".")


def plugin_tables(settings: Any) -> dict[str, dict]:
    """``[plugins.NAME]`` tables from settings (None → none)."""
    tables = getattr(settings, "plugins", None) or {}
    return {name: dict(table) for name, table in tables.items() if isinstance(table, Mapping)}


def is_active(pm: pluggy.PluginManager, name: str, settings: Any) -> bool:
    """Whether plugin ``name`` delivers alerts under ``settings`` (see module docstring)."""
    plugin = pm.get_plugin(name)
    if plugin is None:
        return False
    table = plugin_tables(settings).get(name)
    if table is not None and table.get("enabled", True) is False:
        return False
    if is_builtin(plugin):
        return table is not None or name in DEFAULT_ACTIVE
    return True


def alert_plugins(pm: pluggy.PluginManager, settings: Any) -> list[str]:
    """Names of the active plugins that implement ``send_alert``, sorted."""
    names = {impl.plugin_name for impl in pm.hook.send_alert.get_hookimpls()}
    return sorted(name for name in names if is_active(pm, name, settings))


def call_one(pm: pluggy.PluginManager, plugin_name: str, hook_name: str, **kwargs: Any) -> Any:
    """Call only ``plugin_name``'s implementation of ``hook_name`` (None if it has none).

    Used to isolate plugins: each one gets its own call, its own config, its own errors.
    """
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if impl.plugin_name == plugin_name:
            return impl.function(*[kwargs[arg] for arg in impl.argnames])
    return None


def describe(pm: pluggy.PluginManager, settings: Any = None) -> list[dict[str, Any]]:
    """One dict per registered plugin: name, version, hooks, builtin, active, module."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:  # blocked
            continue
        dist = dists.get(id(plugin))
        rows.append(
            {
                "name": name,
                "version": dist.version if dist is not None else None,
                "distribution": dist.project_name if dist is not None else None,
                "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or []),
                "builtin": is_builtin(plugin),
                "active": is_active(pm, name, settings),
                "module": getattr(plugin, "__name__", type(plugin).__module__),
            }
        )
    return rows
