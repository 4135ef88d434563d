"""Shared fixtures: a click runner, the shipped models, small random networks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
SHARED = ROOT.parent / "shared"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner):
    """Invoke ``banana-monitor ARGS``; returns the click Result (exceptions not caught)."""
    from monitor.cli import main

    def invoke(*args, input=None, env=None):
        return runner.invoke(main, [str(a) for a in args], input=input, env=env)

    return invoke


@pytest.fixture
def json_lines():
    """Parse a command's stdout as JSON Lines."""

    def parse(output: str) -> list:
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    return parse


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20251121)


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip cleanly without it."""
    path = Path(os.environ.get("BANANA_MONITOR_SHARED", SHARED))
    if not path.is_dir():
        pytest.skip("../shared is not present (data for benchmarks only)")
    return path
