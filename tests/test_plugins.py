"""The plugin manager: entry points, allow/block lists, contract checks, activation,
and ``banana-monitor plugins``."""

from __future__ import annotations

import json
import types
from types import SimpleNamespace

import pytest

from monitor import hookimpl
from monitor.plugins import (
    PluginError,
    alert_plugins,
    describe,
    get_plugin_manager,
    is_active,
    parse_selection,
    register_plugin,
)

BUILTINS = {"log", "jsonl", "webhook", "email", "apprise"}


def settings(plugins=None, raw=None):
    return SimpleNamespace(plugins=plugins or {}, raw=raw or {})


def test_builtins_arrive_through_the_entry_point_group(monkeypatch):
    monkeypatch.delenv("BANANA_MONITOR_PLUGINS", raising=False)
    pm = get_plugin_manager()
    names = {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    assert names == BUILTINS
    assert {dist.project_name for _, dist in pm.list_plugin_distinfo()} == {"banana-monitor"}


@pytest.mark.parametrize("value, allow, block", [
    ("", None, set()),
    ("log,jsonl", {"log", "jsonl"}, set()),
    ("-webhook, no:email", None, {"webhook", "email"}),
    ("log,-email", {"log"}, {"email"}),
])
def test_parse_selection(value, allow, block):
    assert parse_selection(value) == (allow, block)


def test_environment_allow_and_block(monkeypatch):
    monkeypatch.setenv("BANANA_MONITOR_PLUGINS", "log,jsonl")
    assert {n for n, p in get_plugin_manager().list_name_plugin() if p} == {"log", "jsonl"}
    monkeypatch.setenv("BANANA_MONITOR_PLUGINS", "no:webhook,-email")
    assert {n for n, p in get_plugin_manager().list_name_plugin() if p} == BUILTINS - {
        "webhook", "email"}


def test_config_selection_table(monkeypatch):
    monkeypatch.delenv("BANANA_MONITOR_PLUGINS", raising=False)
    config = settings(raw={"plugin_selection": {"block": ["apprise"]}})
    assert {n for n, p in get_plugin_manager(settings=config).list_name_plugin() if p} == \
        BUILTINS - {"apprise"}
    config = settings(raw={"plugin_selection": {"allow": ["log"]}})
    assert {n for n, p in get_plugin_manager(settings=config).list_name_plugin() if p} == {"log"}
    monkeypatch.setenv("BANANA_MONITOR_PLUGINS", "-log")  # the environment adds a block
    assert {n for n, p in get_plugin_manager(settings=config).list_name_plugin() if p} == set()


def test_a_hook_with_a_typo_is_refused():
    class Typo:
        @hookimpl
        def send_alerts(self, alert):
            pass

    pm = get_plugin_manager(allow=[])
    with pytest.raises(PluginError, match="typo.*send_alerts"):
        register_plugin(pm, Typo(), name="typo")
    assert pm.get_plugin("typo") is None


def test_an_implementation_with_unknown_arguments_is_refused():
    class Extra:
        @hookimpl
        def send_alert(self, alert, channel):
            pass

    with pytest.raises(PluginError, match="extra.*channel"):
        register_plugin(get_plugin_manager(allow=[]), Extra(), name="extra")


def test_an_implementation_may_take_fewer_arguments():
    class Fewer:
        @hookimpl
        def monitor_start(self, settings):
            pass

    pm = get_plugin_manager(allow=[])
    assert register_plugin(pm, Fewer(), name="fewer") == "fewer"


def test_activation_rules(monkeypatch):
    monkeypatch.delenv("BANANA_MONITOR_PLUGINS", raising=False)
    pm = get_plugin_manager()

    class External:
        @hookimpl
        def send_alert(self, alert):
            pass

    pm.register(External(), name="external")
    assert alert_plugins(pm, settings()) == ["external", "log"]  # log is on by default
    assert alert_plugins(pm, settings({"webhook": {"url": "http://127.0.0.1:1/"}})) == [
        "external", "log", "webhook"]
    off = settings({"log": {"enabled": False}, "external": {"enabled": False}})
    assert alert_plugins(pm, off) == []
    assert not is_active(pm, "nope", settings())


def test_describe_lists_name_version_and_hooks(monkeypatch):
    monkeypatch.delenv("BANANA_MONITOR_PLUGINS", raising=False)
    rows = {row["name"]: row for row in describe(get_plugin_manager(), settings())}
    assert rows.keys() == BUILTINS
    assert rows["log"]["hooks"] == ["send_alert"] and rows["log"]["active"] is True
    assert rows["webhook"]["hooks"] == ["monitor_start", "monitor_stop", "send_alert"]
    from monitor import __version__
    assert {row["version"] for row in rows.values()} == {__version__}
    assert all(row["builtin"] for row in rows.values())


def test_plugins_command_prints_json(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BANANA_MONITOR_PLUGINS", raising=False)
    result = cli("plugins")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows.keys() == BUILTINS
    assert [n for n, r in sorted(rows.items()) if r["active"]] == ["log"]
    config = tmp_path / "banana-monitor.toml"
    config.write_text('[plugins.webhook]\nurl = "http://127.0.0.1:9/hook"\n')
    rows = {r["name"]: r for r in json.loads(cli("plugins", "--config", config).output)}
    assert rows["webhook"]["active"] is True
    blocked = cli("plugins", env={"BANANA_MONITOR_PLUGINS": "-webhook"})
    assert "webhook" not in {row["name"] for row in json.loads(blocked.output)}


def test_a_plugin_that_cannot_be_imported_is_named(monkeypatch, cli):
    from importlib.metadata import EntryPoint

    import monitor.plugins as plugins_module

    broken = EntryPoint(name="broken", value="no_such_module_xyz", group="banana_monitor")
    monkeypatch.setattr(plugins_module, "entry_points", lambda group: [broken])
    with pytest.raises(PluginError, match="'broken' .*cannot be imported.*no_such_module_xyz"):
        get_plugin_manager()
    result = cli("plugins")
    assert result.exit_code == 2 and "broken" in result.output


def test_module_plugins_from_the_builtin_package_are_builtin():
    from monitor.plugins import is_builtin
    from plugins import log

    assert is_builtin(log)
    assert not is_builtin(types.ModuleType("someone_elses_plugin"))
