"""``banana-monitor model``: create and inspect model files."""

from __future__ import annotations

import click

from monitor.commands.common import CommandError, echo_json, load_model


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _ints(value: str) -> list[int]:
    try:
        sizes = [int(part) for part in _csv(value)]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if any(size <= 0 for size in sizes):
        raise click.BadParameter("layer sizes must be positive")
    return sizes


@click.group()
def model() -> None:
    """Create, inspect and manage model files."""


@model.command("init")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option(
    "--vocabulary",
    required=True,
    help="Comma-separated words, or @FILE with one word per line.",
)
@click.option("--hidden", default="300,200", show_default=True, help="Hidden layer sizes.")
@click.option(
    "--classes",
    default="banana,cookie,other",
    show_default=True,
    help="One class → sigmoid output; several → softmax.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
def init(out: str, vocabulary: str, hidden: str, classes: str, seed: int) -> None:
    """Write a freshly initialised model to OUT and print its info."""
    import numpy as np

    from monitor.model import Model

    words = _read_words(vocabulary)
    class_names = _csv(classes)
    if not words:
        raise CommandError("--vocabulary is empty")
    if not class_names:
        raise CommandError("--classes is empty")
    try:
        created = Model.create(words, _ints(hidden), class_names, np.random.default_rng(seed))
    except ValueError as error:
        raise CommandError(str(error)) from None
    created.meta["trained"] = {"examples": 0, "seed": seed}
    created.save(out)
    echo_json({"path": out, **created.info()})


def _read_words(value: str) -> list[str]:
    if not value.startswith("@"):
        return _csv(value)
    try:
        with open(value[1:], encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    except OSError as error:
        raise CommandError(f"{value[1:]}: {error.strerror}") from None


@model.command("info")
@click.argument("path")
@click.option("--vocabulary", "show_vocabulary", is_flag=True, help="Include the word list.")
def info(path: str, show_vocabulary: bool) -> None:
    """Print a model's parameters, layers, classes, vocabulary size and version as JSON."""
    loaded = load_model(path)
    described = loaded.info()
    if show_vocabulary:
        described["vocabulary"] = loaded.vocabulary.words
    echo_json({"path": str(path), **described})


# `model history` / `model rollback` (issue 6): the versions kept in the state directory
def _add_version_commands() -> None:
    from monitor.commands.model_versions import history, rollback

    model.add_command(history)
    model.add_command(rollback)


_add_version_commands()
