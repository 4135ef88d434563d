"""The plugin contract: every hook in monitor/hookspecs.py, called as the monitor calls it."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import click
import pytest

from monitor import hookimpl, hookspecs
from monitor.alerts import Alert
from monitor.outbox import Outbox
from monitor.plugins import get_plugin_manager, register_commands
from tests.test_outbox import enqueue, wait_for

HOOKS = {
    "send_alert": ["alert"],
    "send_alert_batch": ["alerts"],
    "monitor_start": ["plugin_config", "settings"],
    "monitor_stop": [],
    "register_commands": ["cli"],
}


def test_the_contract_is_exactly_these_hooks_with_one_line_docstrings():
    specs = {name: fn for name, fn in vars(hookspecs).items()
             if callable(fn) and hasattr(fn, "banana_monitor_spec")}
    assert {name: list(inspect.signature(fn).parameters) for name, fn in specs.items()} == HOOKS
    for fn in specs.values():
        assert fn.__doc__ and "\n" not in fn.__doc__.strip()


class Everything:
    """A plugin implementing every hook, recording how it was called."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def monitor_start(self, plugin_config, settings):
        self.calls.append(("monitor_start", dict(plugin_config), settings.raw["marker"]))

    @hookimpl
    def send_alert(self, alert):
        self.calls.append(("send_alert", alert.alert_id, alert.explanation))

    @hookimpl
    def monitor_stop(self):
        self.calls.append(("monitor_stop",))

    @hookimpl
    def register_commands(self, cli):
        @cli.command(name="fruit-count")
        @click.option("--n", default=3)
        def fruit_count(n):
            """A plugin's own command."""
            click.echo("banana " * n)

        self.calls.append(("register_commands", cli.name))


@pytest.fixture
def everything():
    plugin = Everything()
    pm = get_plugin_manager(allow=[])
    pm.register(plugin, name="everything")
    return plugin, pm


def test_send_alert_start_and_stop_through_the_outbox(make_ledger, everything):
    plugin, pm = everything
    settings = SimpleNamespace(raw={"marker": "m1", "outbox": {"poll_interval": 0.01}},
                               plugins={"everything": {"channel": "#fruit"}})
    ledger = make_ledger()
    outbox = Outbox(ledger, pm, settings)
    outbox.start()
    alert = Alert("p1", "banana", 0.9, "banana", "s", 1, explanation=[{"word": "banana",
                                                                       "drop": 0.3}])
    enqueue(outbox, ledger, [alert])
    assert wait_for(lambda: len(plugin.calls) == 2)
    outbox.stop(5)
    assert plugin.calls == [
        ("monitor_start", {"channel": "#fruit"}, "m1"),
        ("send_alert", "p1:banana", [{"word": "banana", "drop": 0.3}]),
        ("monitor_stop",),
    ]


def test_register_commands_adds_a_working_cli_command(everything, runner):
    plugin, pm = everything
    group = click.Group(name="banana-monitor")
    register_commands(group, pm)
    assert plugin.calls == [("register_commands", "banana-monitor")]
    result = runner.invoke(group, ["fruit-count", "--n", "2"])
    assert result.exit_code == 0 and result.output == "banana banana \n"


def test_register_commands_is_wired_into_the_real_cli(everything, runner, monkeypatch):
    from monitor import cli as cli_module
    from monitor import plugins as plugins_module

    plugin, pm = everything
    monkeypatch.setattr(plugins_module, "get_plugin_manager", lambda *a, **k: pm)
    monkeypatch.setattr(cli_module.main, "plugin_commands_loaded", False)
    try:
        listed = runner.invoke(cli_module.main, ["--help"])
        assert "fruit-count" in listed.output
        result = runner.invoke(cli_module.main, ["fruit-count", "--n", "1"])
        assert result.exit_code == 0 and result.output == "banana \n"
    finally:
        cli_module.main.commands.pop("fruit-count", None)


def test_a_raising_register_commands_does_not_break_the_cli(runner):
    class Broken:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("plugin bug")

    pm = get_plugin_manager(allow=[])
    pm.register(Broken(), name="broken")
    group = click.Group(name="g")
    register_commands(group, pm)  # logged, not raised
    assert group.commands == {}
