"""The example plugin package (examples/banana-monitor-example-plugin): in-process, and
pip-installed into a fresh venv where a running daemon delivers alerts to it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import site
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import click
import pytest

from monitor.alerts import Alert
from monitor.outbox import Outbox
from monitor.plugins import get_plugin_manager, register_commands
from tests.conftest import ROOT
from tests.test_outbox import enqueue, wait_for

EXAMPLE = ROOT / "examples" / "banana-monitor-example-plugin"


@pytest.fixture
def example():
    spec = importlib.util.spec_from_file_location("banana_monitor_example",
                                                  EXAMPLE / "banana_monitor_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_plugin_in_process(example, make_ledger, tmp_path, runner):
    out = tmp_path / "out" / "alerts.tsv"
    pm = get_plugin_manager(allow=[])
    pm.register(example, name="example")
    settings = SimpleNamespace(raw={"outbox": {"poll_interval": 0.01}},
                               plugins={"example": {"path": str(out)}})
    ledger = make_ledger()
    outbox = Outbox(ledger, pm, settings)
    outbox.start()
    batch = [Alert("p1", "banana", 0.91, "ripe banana", "s", 1,
                   explanation=[{"word": "banana", "drop": 0.4}, {"word": "ripe", "drop": 0.1}]),
             Alert("p2", "cookie", 0.8, "cookie", "s", 1)]
    enqueue(outbox, ledger, batch)
    assert wait_for(lambda: outbox.stats()["example"]["delivered"] == 2)
    outbox.stop(5)
    assert sorted(out.read_text().splitlines()) == ["banana\tp1\t0.910\tbanana,ripe",
                                                    "cookie\tp2\t0.800\t"]
    group = click.Group(name="banana-monitor")
    register_commands(group, pm)
    result = runner.invoke(group, ["example-count", str(out)])
    assert json.loads(result.output) == {"banana": 1, "cookie": 1}


@pytest.fixture(scope="module")
def example_venv(tmp_path_factory):
    """A fresh venv with the example pip-installed (non-editable) into it.

    The venv reaches banana-monitor and its dependencies through a .pth line that adds
    this interpreter's site-packages (no network: nothing is downloaded).
    """
    root = tmp_path_factory.mktemp("example-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    outer = [path for path in site.getsitepackages() if Path(path).is_dir()]
    (Path(purelib) / "_outer_site.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in outer))
    source = root / "example-src"  # build from a copy: the checkout stays clean
    shutil.copytree(EXAMPLE, source)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", str(source)],
        capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stderr
    assert list(Path(purelib).glob("banana_monitor_example_plugin-0.1.0.dist-info"))
    return python


def run_in(python, *args, cwd=None):
    env = {"PATH": "/usr/bin:/bin"}
    return subprocess.run([str(python), "-m", "monitor", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd)


@pytest.mark.slow
def test_installed_example_is_listed_by_the_plugins_command(example_venv, tmp_path):
    result = run_in(example_venv, "plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["example"] == {
        "name": "example", "version": "0.1.0", "distribution": "banana-monitor-example-plugin",
        "hooks": ["monitor_start", "monitor_stop", "register_commands", "send_alert"],
        "builtin": False, "active": True, "module": "banana_monitor_example",
    }
    # not installed in the project's own environment
    assert "example" not in {r["name"] for r in json.loads(run_in(sys.executable, "plugins",
                                                                   cwd=tmp_path).stdout)}


@pytest.mark.slow
def test_installed_example_receives_alerts_from_a_running_daemon(example_venv, daemon_process,
                                                                 rng, monkeypatch):
    from tests.test_daemon_e2e import drop, expected_alerts, jsonl, make_posts

    daemon = daemon_process(config="")
    out = daemon.root / "example-alerts.tsv"
    daemon.config.write_text(daemon.config.read_text() + f'[plugins.example]\npath = "{out}"\n')
    with monkeypatch.context() as patch:  # the daemon runs on the venv's interpreter
        patch.setattr(sys, "executable", str(example_venv))
        daemon.start()
    posts = make_posts("ex", 40, rng)
    want = expected_alerts(posts)
    assert want  # the seed model alerts on some of these posts
    drop(daemon.feed, "posts.jsonl", jsonl(posts))
    daemon.wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= len(want),
                    what="the example plugin's alerts")
    assert daemon.signal(signal.SIGTERM) == 0
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    keys = [(post_id, label) for label, post_id, _, _ in lines]
    assert len(keys) == len(set(keys)) and set(keys) == want
    # the same alerts reached the built-in jsonl plugin too
    assert {(a["post_id"], a["label"]) for a in daemon.alert_lines()} == want
    started = [e for e in daemon.events() if e["event"] == "outbox_started"]
    assert "example" in started[0]["plugins"]
    count = run_in(example_venv, "example-count", out)
    assert json.loads(count.stdout) == {label: sum(1 for _, l in want if l == label)
                                        for label in {l for _, l in want}}
