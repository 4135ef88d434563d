"""Helpers the commands share: clean error exits and JSON output."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any

import click


class CommandError(click.ClickException):
    """Printed as ``Error: message`` with exit code 2, no traceback."""

    exit_code = 2


@contextmanager
def user_errors(*kinds: type[BaseException]):
    """Turn the listed exception types into a one-line CommandError."""
    try:
        yield
    except kinds as error:
        raise CommandError(str(error)) from None


def echo_json(value: Any) -> None:
    """One compact JSON document on stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def load_model(path):
    """``--model`` value (or None for the default) → Model, or a clean CommandError."""
    from monitor.model import Model, ModelError, resolve_model_path

    resolved = resolve_model_path(path)
    try:
        return Model.load(resolved)
    except ModelError as error:
        raise CommandError(str(error)) from None
