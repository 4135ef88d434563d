"""A private redis-server for tests: 127.0.0.1, a free port, a temporary directory.

Used by the ``redis_server`` / ``redis_url`` fixtures in conftest.py.  Without a
``redis-server`` binary the Redis tests skip, unless ``BANANA_MONITOR_REQUIRE_REDIS=1``
(set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REQUIRE_ENV = "BANANA_MONITOR_REQUIRE_REDIS"


def redis_server_binary() -> str:
    """Path of redis-server, or skip (fail when BANANA_MONITOR_REQUIRE_REDIS=1)."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
            pytest.fail(f"{message}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(message)
    try:
        import redis  # noqa: F401
    except ImportError:
        if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
            pytest.fail("redis-py is not installed (pip install -e '.[dev]')")
        pytest.skip("redis-py is not installed")
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """One redis-server process; ``url`` is ``redis://127.0.0.1:PORT/0``."""

    def __init__(self, binary: str, directory: Path, *extra_args: str):
        self.binary = binary
        self.extra_args = list(extra_args)  # e.g. "--appendonly", "yes"
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, attempts: int = 5, port: int | None = None) -> RedisServer:
        """Start on a free port (or ``port``: a restart on the same address)."""
        for _ in range(attempts):  # another process may take the free port first
            self.port = port or _free_port()
            self.process = subprocess.Popen(
                [
                    self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", str(self.directory), "--save", "", "--appendonly", "no",
                    "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning",
                    *self.extra_args,
                ],
                stdout=open(self.directory / "redis.log", "ab"),
                stderr=subprocess.STDOUT,
            )
            if self._wait_ready(timeout=10.0):
                return self
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def _wait_ready(self, timeout: float) -> bool:
        import redis

        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if client.ping():
                    client.close()
                    return True
            except redis.RedisError:
                time.sleep(0.02)
        return False

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# --- workers: real `banana-monitor run --source redis://...` processes ---------------


def keyword_model(path: Path):
    """A tiny deterministic model: "banana" → banana, "cookie" → cookie, else other.

    Vocabulary {banana, cookie, bread}, hidden ReLU layer of 2 (h = counts of banana and
    cookie), softmax logits [4h₀ − 1, 4h₁ − 1, 1]: one "banana" scores p(banana) ≈ 0.88.
    """
    import numpy as np

    from monitor.model import Model
    from monitor.network import Network
    from monitor.text import Vocabulary

    W1 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    W2 = np.array([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0]])
    network = Network([W1, W2], [np.zeros(2), np.array([-1.0, -1.0, 1.0])], "softmax")
    model = Model(network, Vocabulary(["banana", "cookie", "bread"]),
                  ["banana", "cookie", "other"], {"version": 1})
    return model.save(path)


def write_worker_config(path: Path, state: Path, alerts: Path, **redis_options) -> Path:
    """A banana-monitor.toml for one worker: its own state dir and a jsonl alert file."""
    import json as _json

    lines = [f"state = {_json.dumps(str(state))}", "[plugins.jsonl]",
             f"path = {_json.dumps(str(alerts))}", "[redis]"]
    lines += [f"{key} = {_json.dumps(value)}" for key, value in redis_options.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_worker(url: str, config: Path, model: Path, log: Path, *extra: str,
                 env: dict | None = None) -> subprocess.Popen:
    """``banana-monitor run --source URL`` as a subprocess (stderr → ``log``)."""
    import sys

    command = [sys.executable, "-m", "monitor", "--log-level", "info", "--log-json", "run",
               "--config", str(config), "--source", url, "--model", str(model), *extra]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL,
                            stderr=open(log, "ab"), env={**os.environ, **(env or {})})


def read_alerts(*paths: Path) -> list[dict]:
    """Every alert line in the jsonl files (missing files count as empty)."""
    import json as _json

    alerts = []
    for path in paths:
        if Path(path).exists():
            alerts += [_json.loads(line) for line in Path(path).read_text().splitlines()
                       if line.strip()]
    return alerts


class Cluster:
    """N worker processes (``run --source redis://...``), each with its own directory
    ``root/NAME`` (state, config, jsonl alerts, log); for the slow tests and the bench."""

    STREAM = "banana-monitor:posts"
    GROUP = "banana-monitor"

    def __init__(self, url: str, root: Path, model: Path, **redis_options):
        import redis

        self.url = url
        self.root = Path(root)
        self.model = model
        self.options = {"count": 500, "claim_idle": 2.0, "claim_interval": 0.5,
                        **redis_options}
        self.client = redis.Redis.from_url(url)
        self.processes: dict[str, subprocess.Popen] = {}
        self.roles: dict[str, str] = {}
        self.starts: dict[str, int] = {}  # "redis source started" lines before a start

    def directory(self, name: str) -> Path:
        return self.root / name

    def start(self, name: str, role: str = "scorer", env: dict | None = None,
              **options) -> subprocess.Popen:
        """Start (or restart) worker ``name``: same state dir, same consumer name."""
        directory = self.directory(name)
        directory.mkdir(parents=True, exist_ok=True)
        config = write_worker_config(directory / "banana-monitor.toml", directory / "state",
                                     directory / "alerts.jsonl",
                                     **{**self.options, "consumer": name, **options})
        extra = ["--role", role]  # a scorer does not learn: the role alone says so
        self.starts[name] = len(self.log_events(name, "redis source started"))
        process = start_worker(self.url, config, self.model, directory / "worker.log",
                               *extra, env=env)
        self.processes[name], self.roles[name] = process, role
        return process

    def is_reading(self, name: str) -> bool:
        """The latest start of ``name`` is connected and reading (its log says so)."""
        return len(self.log_events(name, "redis source started")) > self.starts.get(name, 0)

    def kill9(self, name: str) -> None:
        self.processes[name].kill()  # SIGKILL
        self.processes[name].wait()

    def kill9_holding(self, name: str, timeout: float = 60.0) -> int:
        """``kill -9`` worker ``name`` while it holds unacknowledged entries; how many.

        Seeing entries pending and then killing is a race (the worker may acknowledge
        in between), so the worker is frozen (SIGSTOP) first and the count is read
        while it cannot move; if it held none by then, it is thawed and we try again.
        """
        import signal

        process = self.processes[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending_of(name) > 0:
                process.send_signal(signal.SIGSTOP)
                held = self.pending_of(name)
                if held > 0:
                    self.kill9(name)
                    return held
                process.send_signal(signal.SIGCONT)
            time.sleep(0.005)
        raise AssertionError(f"{name} never held pending entries within {timeout} s")

    def stop_all(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM every live worker; their exit codes."""
        live = {n: p for n, p in self.processes.items() if p.poll() is None}
        for process in live.values():
            process.terminate()
        codes = {}
        for name, process in live.items():
            try:
                codes[name] = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        return codes

    def pending(self, group: str | None = None) -> int:
        return self.client.xpending(self.STREAM, group or self.GROUP)["pending"]

    def pending_of(self, consumer: str, group: str | None = None) -> int:
        for entry in self.client.xpending(self.STREAM, group or self.GROUP)["consumers"]:
            if entry["name"].decode() == consumer:
                return entry["pending"]
        return 0

    def drained(self, group: str | None = None) -> bool:
        """Every entry of the stream was delivered to the group and acknowledged."""
        for info in self.client.xinfo_groups(self.STREAM):
            if info["name"].decode() == (group or self.GROUP):
                return info["lag"] == 0 and info["pending"] == 0
        return False

    def wait_until(self, condition, timeout: float, interval: float = 0.1) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(interval)
        return condition()

    def log_events(self, name: str, event: str) -> list[dict]:
        import json as _json

        path = self.directory(name) / "worker.log"
        if not path.exists():
            return []
        events = []
        for line in path.read_text(errors="replace").splitlines():
            if f'"{event}"' in line:
                try:
                    record = _json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == event:
                    events.append(record)
        return events

    def alerts(self) -> list[dict]:
        return read_alerts(*(self.directory(n) / "alerts.jsonl" for n in self.processes))

    def scored_post_ids(self) -> set[str]:
        """Post ids in any worker's ledger (read-only)."""
        import sqlite3

        ids: set[str] = set()
        for name in self.processes:
            path = self.directory(name) / "state" / "ledger.sqlite3"
            if path.exists():
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                ids.update(row[0] for row in conn.execute("SELECT post_id FROM posts"))
                conn.close()
        return ids

    def _ledger_rows(self, query: str) -> list[tuple]:
        import sqlite3

        rows: list[tuple] = []
        for name in self.processes:
            path = self.directory(name) / "state" / "ledger.sqlite3"
            if path.exists():
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
                try:
                    rows += conn.execute(query).fetchall()
                except sqlite3.OperationalError:  # no outbox table yet
                    pass
                finally:
                    conn.close()
        return rows

    def outbox_alert_ids(self) -> list[str]:
        """Alert ids committed to every worker's outbox (delivered or not)."""
        return [row[0] for row in self._ledger_rows("SELECT alert_id FROM outbox_alerts")]

    def undelivered(self) -> int:
        """Outbox deliveries not delivered yet, over all workers."""
        return sum(row[0] for row in self._ledger_rows(
            "SELECT COUNT(*) FROM outbox_deliveries WHERE status != 'delivered'"))

    def close(self) -> None:
        self.stop_all()
        self.client.close()


def push_posts(url: str, posts: list[dict], stream: str = Cluster.STREAM,
               pipeline: int = 2000) -> None:
    """XADD posts the way ``banana-monitor push`` does (fields id, text, label, meta)."""
    import redis

    from monitor.commands.push import entry_fields
    from monitor.posts import Post

    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for number, raw in enumerate(posts, start=1):
        raw = dict(raw)
        post = Post(id=str(raw.pop("id")), text=raw.pop("text"), label=raw.pop("label", None),
                    meta=raw)
        pipe.xadd(stream, entry_fields(post))
        if number % pipeline == 0:
            pipe.execute()
    pipe.execute()
    client.close()


def keyword_posts(count: int, start: int = 0) -> list[dict]:
    """Posts p<i>: i % 3 == 0 mentions banana, 1 cookie, 2 neither (the keyword model
    alerts on exactly the first two)."""
    texts = ("a banana smoothie for breakfast #{i}", "grandma's cookie recipe #{i}",
             "traffic on the bridge again #{i}")
    return [{"id": f"p{i}", "text": texts[i % 3].format(i=i)} for i in range(start, start + count)]


def expected_alert_ids(posts: list[dict]) -> set[str]:
    labels = ("banana", "cookie", None)
    return {f"{p['id']}:{labels[int(p['id'][1:]) % 3]}" for p in posts
            if labels[int(p["id"][1:]) % 3]}
