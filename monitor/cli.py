"""The ``banana-monitor`` command line: a click group that loads each command lazily.

Commands live in ``monitor/commands/``; this module only maps names to them, so that
``banana-monitor --help`` starts without importing numpy.  Plugins can add commands
through the ``register_commands`` hook.
"""

from __future__ import annotations

import importlib
import os

import click

# Our matrices are small: OpenBLAS threads only contend for them (on a loaded machine
# they spin, doubling the CPU time of ``score``).  One thread unless the user chose;
# this must run before numpy is imported, which the commands do later.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from monitor import __version__

# name → "module:attribute" of a click command
COMMANDS = {
    "score": "monitor.commands.score:score",
    "run": "monitor.commands.run:run",
    "status": "monitor.commands.status:status",
    "model": "monitor.commands.model:model",
    "train": "monitor.commands.train:train",
    "evaluate": "monitor.commands.evaluate:evaluate",
    "push": "monitor.commands.push:push",
    "plugins": "monitor.commands.plugins:plugins",
    "alerts": "monitor.commands.alerts:alerts",
}

# The first help paragraph of built-in commands, so that ``banana-monitor --help`` lists
# them without importing them (and numpy); tests/test_perf_paths.py keeps these equal
# to the commands' own help.  A command missing here is imported to ask for its help.
SUMMARIES = {
    "score": "Score posts from --text, FILE or stdin (JSON Lines or plain text, one per line).",
    "run": "Watch the feed directory, score every post, send alerts; stop with SIGTERM/SIGINT.",
    "status": "JSON: running, uptime, posts, alerts, quarantined, backlog, model version, outbox.",
    "model": "Create, inspect and manage model files.",
    "train": "Train a model on labelled posts and write it to OUT (atomically).",
    "evaluate": "Evaluate a model on labelled posts.",
    "push": "Append the posts of FILE... (or - for stdin) to a Redis stream.",
    "plugins": "List installed plugins as a JSON array: name, version, hooks, builtin, active.",
    "alerts": "Alert deliveries in the outbox: stats, dead letters, re-send.",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when it is run."""

    plugin_commands_loaded = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_plugin_commands()
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module_name, attribute = COMMANDS[name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        if name not in self.commands:
            self.load_plugin_commands()
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's command list, with SUMMARIES standing in for unimported commands."""
        rows = []
        for name in self.list_commands(ctx):
            if name in SUMMARIES and name not in self.commands:
                rows.append((name, SUMMARIES[name]))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, _short_help(entry, limit)) for name, entry in rows])

    def load_plugin_commands(self) -> None:
        """Once: plugins add their commands through the ``register_commands`` hook."""
        if not self.plugin_commands_loaded:
            self.plugin_commands_loaded = True
            from monitor.plugins import register_commands

            register_commands(self)


def _short_help(entry: str | click.Command, limit: int) -> str:
    if isinstance(entry, str):  # a summary: shortened as click shortens a command's help
        entry = click.Command(None, help=entry)
    return entry.get_short_help_str(limit)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="banana-monitor")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    envvar="BANANA_MONITOR_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Least severe log event to print (stderr).",
)
@click.option(
    "--log-json/--log-console",
    default=None,
    help="Log format; default: JSON when stderr is not a terminal.",
)
def main(log_level: str, log_json: bool | None) -> None:
    """banana-monitor: score social-media posts (banana / cookie / other) and alert."""
    from monitor.logs import configure_logging

    configure_logging(log_level, log_json)
