"""Fault tests against the real daemon: a raising, a hanging and a slow plugin installed
(through the entry-point group) next to the built-in jsonl plugin; kill -9 and restart."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.test_daemon_e2e import drop, expected_alerts, jsonl, ledger_rows, make_posts

pytestmark = pytest.mark.slow

FAULTY = '''
import os, time
from pathlib import Path
from monitor import hookimpl

ROOT = Path(os.environ["FAULTY_ROOT"])


def record(name, alert):
    with open(ROOT / f"{name}.log", "a") as handle:
        handle.write(f"{alert.post_id}\\t{alert.label}\\n")


class Flaky:
    """Raises on every call while ROOT/flaky-down exists."""

    @hookimpl
    def send_alert(self, alert):
        if (ROOT / "flaky-down").exists():
            raise ConnectionError("flaky channel is down")
        record("flaky", alert)


class Hang:
    @hookimpl
    def send_alert(self, alert):
        time.sleep(3600)


class Slow:
    @hookimpl
    def send_alert(self, alert):
        time.sleep(0.25)
        record("slow", alert)


flaky, hang, slow = Flaky(), Hang(), Slow()
'''

CONFIG = """
[outbox]
timeout = 0.5
backoff_base = 0.1
backoff_max = 0.3
max_attempts = 1000
max_hung = 2
"""


@pytest.fixture
def faulty_site(tmp_path, monkeypatch):
    """An installed distribution with three plugins (a dist-info on PYTHONPATH)."""
    site = tmp_path / "site"
    dist = site / "faulty_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "faulty_plugins.py").write_text(FAULTY)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: faulty-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[banana_monitor]\nflaky = faulty_plugins:flaky\nhang = faulty_plugins:hang\n"
        "slow = faulty_plugins:slow\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("FAULTY_ROOT", str(tmp_path))
    return tmp_path


def lines(path):
    if not path.exists():
        return []
    return [tuple(line.split("\t")) for line in path.read_text().splitlines() if line]


def test_faulty_plugins_do_not_delay_the_others_and_restart_resumes(faulty_site, daemon_process,
                                                                     rng):
    root = faulty_site
    (root / "flaky-down").touch()
    daemon = daemon_process(config=CONFIG)
    daemon.start()
    posts = make_posts("f", 60, rng)
    want = expected_alerts(posts)
    assert len(want) >= 10
    drop(daemon.feed, "posts.jsonl", jsonl(posts))

    # every alert reaches jsonl while the slow plugin is still busy and the hung one hangs
    daemon.wait_for(lambda: len(daemon.alert_lines()) == len(want), what="jsonl alerts")
    slow_so_far = len(lines(root / "slow.log"))
    assert slow_so_far < len(want)
    assert lines(root / "flaky.log") == []
    failing = ("SELECT COUNT(DISTINCT plugin) FROM outbox_deliveries WHERE"
               " (plugin = 'flaky' AND attempts >= 2) OR (plugin = 'hang' AND attempts >= 1)")
    daemon.wait_for(lambda: ledger_rows(daemon.state, failing)[0][0] == 2,
                    what="flaky retried and a hung call timed out")
    daemon.kill()  # kill -9 while flaky is failing and slow/hang are in the middle

    (root / "flaky-down").unlink()
    daemon.start()
    daemon.wait_for(lambda: {(p, l) for p, l in lines(root / "flaky.log")} == want
                    and len(lines(root / "slow.log")) >= len(want), timeout=60,
                    what="flaky and slow catch up after the restart")
    time.sleep(0.5)
    assert daemon.signal(signal.SIGTERM) == 0
    for name in ("flaky", "slow"):
        got = lines(root / f"{name}.log")
        assert len(got) == len(set(got)) and set(got) == want, name  # nothing twice
    keys = [(a["post_id"], a["label"]) for a in daemon.alert_lines()]
    assert len(keys) == len(set(keys)) and set(keys) == want
    states = dict(ledger_rows(daemon.state, "SELECT plugin || ':' || status, COUNT(*)"
                                            " FROM outbox_deliveries GROUP BY 1"))
    assert states["flaky:delivered"] == states["slow:delivered"] == len(want)
    assert states.get("hang:delivered", 0) == 0 and states["hang:pending"] == len(want)
    failures = [e for run in (1, 2) for e in daemon.events(run)
                if e["event"] == "alert_delivery_failed"]
    assert {e["plugin"] for e in failures} == {"flaky", "hang"}
    assert any(e["error"] == "timeout after 0.5s" for e in failures if e["plugin"] == "hang")
    assert json.dumps(failures).count("flaky channel is down") > 0
