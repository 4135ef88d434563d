"""Shared fixtures: a click runner, the shipped models, small random networks."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    """Compile the numba learning kernels (monitor/kernels.py) once, before any test.

    The first compile on a machine takes ~10 s per network depth; done here, the
    daemons that tests start load the machine code from the cache instead of compiling
    it while a test waits on them.  Depths 1 and 2 cover the shipped and seed models.
    """
    from monitor.network import Network

    rng = np.random.default_rng(0)
    for sizes in ([4, 3, 3], [4, 3, 3, 2]):
        Network.initialize(sizes, "softmax", rng).warm_kernels()


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


@pytest.fixture
def make_ledger(tmp_path):
    """make_ledger(state_dir=tmp_path/"state") → a monitor.ledger.Ledger, closed at the end."""
    from monitor.ledger import Ledger

    opened = []

    def make(state_dir=None):
        ledger = Ledger(Path(state_dir or tmp_path / "state"))
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


# --- Redis (issue 8): a private redis-server per test session -------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server on 127.0.0.1 (free port, temp dir); skips without the binary,
    fails instead when BANANA_MONITOR_REQUIRE_REDIS=1 (CI)."""
    from tests.redis_server import RedisServer, redis_server_binary

    server = RedisServer(redis_server_binary(), tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """``redis://127.0.0.1:PORT/0`` of the session's server, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


# --- the daemon (issue 4): `python -m monitor run` as a real subprocess ----------------


def _signal_masks(pid: int) -> str:
    """The Sig* lines of /proc/PID/status and of each of its threads (for a failure)."""
    lines = []
    for status in [Path(f"/proc/{pid}/status"), *Path(f"/proc/{pid}/task").glob("*/status")]:
        try:
            text = status.read_text()
        except OSError:
            continue
        lines.append(f"{status}: " + " ".join(
            line.replace("\t", "") for line in text.splitlines()
            if line.startswith(("Sig", "ShdPnd", "Name"))))
    return "\n".join(lines)


class DaemonProcess:
    """One ``python -m monitor run`` over ``root/feed`` with state in ``root/state``.

    Alerts go to ``root/alerts.jsonl`` (the jsonl plugin); logs (JSON) to ``root/log-N``.
    """

    def __init__(self, root: Path, model: Path, config: str = ""):
        self.root = root
        self.feed = root / "feed"
        self.state = root / "state"
        self.alerts = root / "alerts.jsonl"
        self.model = model
        self.config = root / "banana-monitor.toml"
        self.config.write_text(
            f'settle = 0.3\nrescan_interval = 1.0\n[plugins.jsonl]\npath = "{self.alerts}"\n'
            + config
        )
        self.feed.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.runs = 0
        self.log_path = None

    def start(self, *args: str) -> DaemonProcess:
        import subprocess
        import sys

        self.runs += 1
        self.log_path = self.root / f"log-{self.runs}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANANA_MONITOR_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--log-json", "run", "--config", str(self.config),
             "--feed", str(self.feed), "--state", str(self.state), "--model", str(self.model),
             "--no-learn", *args],
            cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"),
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int, timeout: float = 10.0) -> int:
        """Send ``signum`` and wait for the exit code.  A daemon that does not exit in
        time fails the test with its stacks (SIGUSR1: faulthandler) and log tail."""
        import signal as signals
        import subprocess

        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Seen before: the handler ran but the main loop sat in a
            # SimpleQueue.get(timeout) that a signal had turned into a wait forever
            # (CPython 3.11; monitor/sources/directory.py uses queue.Queue since).
            masks = _signal_masks(self.proc.pid)  # blocked, ignored, caught, per thread
            self.proc.send_signal(signals.SIGUSR1)
            time.sleep(1.0)
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"daemon did not exit {timeout} s after {signum}:\n"
                                 f"{masks}\n"
                                 f"{self.log_path.read_text(errors='replace')[-6000:]}")

    def kill(self) -> None:
        import signal as signals

        self.proc.send_signal(signals.SIGKILL)
        self.proc.wait(10)

    def events(self, run: int | None = None) -> list[dict]:
        """The JSON log events of run ``run`` (default: the latest)."""
        path = self.root / f"log-{run or self.runs}"
        events = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def alert_lines(self) -> list[dict]:
        if not self.alerts.exists():
            return []
        return [json.loads(line) for line in self.alerts.read_text().splitlines() if line]

    def processed(self) -> list[str]:
        directory = self.feed / "processed"
        return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition") -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) waiting for {what}:"
                                     f"\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self) -> None:
        import signal as signals

        if self.alive():
            self.proc.send_signal(signals.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def daemon_process(tmp_path):
    """A factory for DaemonProcess on tmp_path (seed-multiclass model); killed at the end."""
    made = []

    def make(config: str = "", model: Path = MODELS / "seed-multiclass.npz") -> DaemonProcess:
        process = DaemonProcess(tmp_path, model, config)
        made.append(process)
        return process

    yield make
    for process in made:
        process.stop()
