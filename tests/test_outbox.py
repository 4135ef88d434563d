"""The outbox: persistence, per-plugin isolation, timeouts, retries, dead letters, restarts."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from monitor import hookimpl
from monitor.alerts import Alert
from monitor.outbox import (
    Outbox,
    OutboxSettings,
    backoff_delay,
    dead_letters,
    delivery_counts,
    requeue,
)
from monitor.plugins import get_plugin_manager

FAST = {"timeout": 0.3, "max_attempts": 3, "backoff_base": 0.01, "backoff_max": 0.05,
        "poll_interval": 0.01, "max_hung": 2, "seed": 7}


def settings(plugins=None, **outbox):
    return SimpleNamespace(raw={"outbox": {**FAST, **outbox}}, plugins=plugins or {})


def alerts(n, label="banana", start=0):
    return [Alert(post_id=f"p{i}", label=label, score=0.9, text=f"post {i}", source="test",
                  model_version=1, explanation=["banana"]) for i in range(start, start + n)]


class Recorder:
    def __init__(self):
        self.received: list[str] = []
        self.lock = threading.Lock()

    @hookimpl
    def send_alert(self, alert):
        with self.lock:
            self.received.append(alert.alert_id)


class Raiser:
    calls = 0

    @hookimpl
    def send_alert(self, alert):
        self.calls += 1
        raise RuntimeError("channel down")


class Hanger:
    def __init__(self):
        self.release = threading.Event()
        self.entered = 0

    @hookimpl
    def send_alert(self, alert):
        self.entered += 1
        self.release.wait(30)


class Slow(Recorder):
    def __init__(self, delay=0.2):
        super().__init__()
        self.delay = delay

    @hookimpl
    def send_alert(self, alert):
        time.sleep(self.delay)
        super().send_alert(alert)


def manager(**plugins):
    pm = get_plugin_manager(load_entrypoints=False, allow=[], block=[])
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    return pm


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def enqueue(outbox, ledger, batch):
    with ledger.transaction() as conn:
        return outbox.enqueue(conn, batch)


def test_enqueue_writes_one_delivery_per_plugin_and_ignores_repeats(make_ledger):
    ledger = make_ledger()
    outbox = Outbox(ledger, manager(a=Recorder(), b=Recorder()), settings())
    assert enqueue(outbox, ledger, alerts(3)) == 3
    assert enqueue(outbox, ledger, alerts(4)) == 1  # p0..p2 already there, p3 new
    with ledger.transaction() as conn:
        counts = delivery_counts(conn)
    assert counts == {name: {"pending": 4, "failed": 0, "delivered": 0, "dead": 0}
                      for name in ("a", "b")}


def test_enqueue_rolls_back_with_the_callers_transaction(make_ledger):
    ledger = make_ledger()
    outbox = Outbox(ledger, manager(a=Recorder()), settings())
    with pytest.raises(RuntimeError), ledger.transaction() as conn:
        outbox.enqueue(conn, alerts(2))
        raise RuntimeError("the daemon crashed before commit")
    with ledger.transaction() as conn:
        assert delivery_counts(conn) == {}


def test_inactive_builtin_gets_no_deliveries(make_ledger):
    import types

    builtin = types.ModuleType("plugins.fake")  # a module of the built-in package
    builtin.send_alert = hookimpl(lambda alert: None)
    pm = manager(rec=Recorder())
    pm.register(builtin, name="fruitbox")  # built-in without a [plugins.fruitbox] table: off
    outbox = Outbox(make_ledger(), pm, settings())
    assert outbox.plugins == ["rec"]
    with_table = settings(plugins={"fruitbox": {}})
    assert Outbox(make_ledger(), pm, with_table).plugins == ["fruitbox", "rec"]


def test_every_alert_reaches_a_healthy_plugin(make_ledger):
    ledger = make_ledger()
    recorder = Recorder()
    outbox = Outbox(ledger, manager(rec=recorder), settings())
    outbox.start()
    try:
        enqueue(outbox, ledger, alerts(20))
        assert wait_for(lambda: len(recorder.received) == 20)
    finally:
        outbox.stop(5)
    assert sorted(recorder.received) == sorted(a.alert_id for a in alerts(20))
    assert outbox.stats()["rec"]["delivered"] == 20


def test_raising_hanging_and_slow_plugins_do_not_delay_the_others(make_ledger):
    ledger = make_ledger()
    good, slow, hang, boom = Recorder(), Slow(0.5), Hanger(), Raiser()
    outbox = Outbox(ledger, manager(good=good, slow=slow, hang=hang, boom=boom),
                    settings(timeout=0.2, max_attempts=2))
    outbox.start()
    try:
        enqueue(outbox, ledger, alerts(10))
        assert wait_for(lambda: len(good.received) == 10)
        # the healthy plugin finished while the slow one is still working (10 × 0.5 s)
        # and the hung one has not returned a single call
        assert len(slow.received) < 10
        assert not hang.release.is_set() and hang.entered >= 1
        assert wait_for(lambda: len(slow.received) == 10, timeout=20)
        assert wait_for(lambda: outbox.stats()["boom"]["dead"] == 10)
        stats = outbox.stats()
        assert stats["boom"]["errors"] == 20  # 10 alerts × max_attempts 2
        assert stats["hang"]["timeouts"] >= 1 and stats["hang"]["delivered"] == 0
        # a hung plugin holds at most max_hung abandoned threads, never more
        hung_threads = [t for t in threading.enumerate() if t.name == "outbox-call-hang"]
        assert len(hung_threads) <= FAST["max_hung"] + 1
    finally:
        hang.release.set()
        outbox.stop(5)
    assert sorted(good.received) == sorted(slow.received)


def test_failures_are_retried_then_dead_lettered_and_requeue_resends(make_ledger):
    ledger = make_ledger()
    flaky = Raiser()
    outbox = Outbox(ledger, manager(flaky=flaky), settings(max_attempts=3))
    outbox.start()
    try:
        enqueue(outbox, ledger, alerts(2))
        assert wait_for(lambda: outbox.stats()["flaky"]["dead"] == 2)
    finally:
        outbox.stop(5)
    assert flaky.calls == 6
    with ledger.transaction() as conn:
        dead = dead_letters(conn)
    assert sorted((d["alert_id"], d["attempts"], d["last_error"]) for d in dead) == [
        ("p0:banana", 3, "RuntimeError: channel down"),
        ("p1:banana", 3, "RuntimeError: channel down"),
    ]
    assert {d["alert_id"]: d["alert"]["text"] for d in dead} == {"p0:banana": "post 0",
                                                                 "p1:banana": "post 1"}

    # the channel is fixed: re-send one dead letter through a new outbox
    recorder = Recorder()
    outbox = Outbox(ledger, manager(flaky=recorder), settings())
    with ledger.transaction() as conn:
        assert requeue(conn, plugin="flaky", alert_ids=["p1:banana"]) == 1
    outbox.start()
    try:
        assert wait_for(lambda: recorder.received == ["p1:banana"])
        time.sleep(0.1)
    finally:
        outbox.stop(5)
    assert recorder.received == ["p1:banana"]
    assert outbox.stats()["flaky"] == {"pending": 0, "failed": 0, "delivered": 1, "dead": 1,
                                      "errors": 0, "timeouts": 0, "hung": 0}


def test_restart_resumes_failed_deliveries_and_sends_nothing_twice(make_ledger, tmp_path):
    state = tmp_path / "state"
    ledger = make_ledger(state)
    good, down = Recorder(), Raiser()
    outbox = Outbox(ledger, manager(good=good, down=down), settings(max_attempts=100))
    outbox.start()
    enqueue(outbox, ledger, alerts(5))
    assert wait_for(lambda: len(good.received) == 5 and down.calls >= 5)
    outbox.stop(5)
    ledger.close()

    # restart: a new ledger on the same state dir, the channel works again
    ledger = make_ledger(state)
    good2, back = Recorder(), Recorder()
    outbox = Outbox(ledger, manager(good=good2, down=back), settings())
    outbox.start()
    try:
        enqueue(outbox, ledger, alerts(5) + alerts(2, start=5))  # 5 repeats + 2 new
        expected = sorted(a.alert_id for a in alerts(7))
        assert wait_for(lambda: sorted(back.received) == expected)
        assert wait_for(lambda: len(good2.received) == 2)
        time.sleep(0.1)
    finally:
        outbox.stop(5)
    assert sorted(good2.received) == ["p5:banana", "p6:banana"]  # nothing twice
    assert sorted(back.received) == expected and len(back.received) == 7


def test_an_abandoned_call_that_succeeds_late_counts_as_delivered(make_ledger):
    ledger = make_ledger()

    class Late:
        def __init__(self):
            self.calls = 0
            self.release = threading.Event()

        @hookimpl
        def send_alert(self, alert):
            self.calls += 1
            if self.calls == 1:
                self.release.wait(10)

    late = Late()
    outbox = Outbox(ledger, manager(late=late), settings(timeout=0.05, backoff_base=5,
                                                         backoff_max=5))
    outbox.start()
    try:
        enqueue(outbox, ledger, alerts(1))
        assert wait_for(lambda: outbox.stats()["late"]["timeouts"] == 1)
        assert outbox.stats()["late"]["failed"] == 1
        late.release.set()
        assert wait_for(lambda: outbox.stats()["late"]["delivered"] == 1)
    finally:
        outbox.stop(5)
    assert late.calls == 1  # the retry was never needed


def test_start_and_stop_hooks_get_each_plugins_own_config(make_ledger):
    events = []

    class Lifecycle:
        def __init__(self, name):
            self.name = name

        @hookimpl
        def monitor_start(self, plugin_config, settings):
            events.append(("start", self.name, plugin_config.get("url")))

        @hookimpl
        def send_alert(self, alert):
            events.append(("send", self.name, alert.alert_id))

        @hookimpl
        def monitor_stop(self):
            events.append(("stop", self.name, None))

    tables = {"one": {"url": "http://127.0.0.1:1/one"}, "two": {"url": "http://127.0.0.1:1/two"}}
    ledger = make_ledger()
    outbox = Outbox(ledger, manager(one=Lifecycle("one"), two=Lifecycle("two")),
                    settings(plugins=tables))
    outbox.start()
    enqueue(outbox, ledger, alerts(1))
    assert wait_for(lambda: sum(e[0] == "send" for e in events) == 2)
    outbox.stop(5)
    for name in ("one", "two"):
        mine = [e for e in events if e[1] == name]
        assert mine == [("start", name, tables[name]["url"]), ("send", name, "p0:banana"),
                        ("stop", name, None)]


def test_a_raising_start_hook_is_logged_and_delivery_goes_on(make_ledger):
    class BadStart(Recorder):
        @hookimpl
        def monitor_start(self, plugin_config, settings):
            raise OSError("cannot connect")

    ledger = make_ledger()
    plugin = BadStart()
    outbox = Outbox(ledger, manager(bad=plugin), settings())
    outbox.start()
    try:
        enqueue(outbox, ledger, alerts(1))
        assert wait_for(lambda: plugin.received == ["p0:banana"])
    finally:
        outbox.stop(5)
    assert outbox.stats()["bad"]["errors"] == 1


def test_backoff_grows_exponentially_with_bounded_jitter():
    cfg = OutboxSettings(backoff_base=1.0, backoff_max=60.0)
    rng = np.random.default_rng(3)
    delays = [backoff_delay(n, cfg, rng) for n in range(1, 10)]
    ceilings = [min(60.0, 2.0 ** (n - 1)) for n in range(1, 10)]
    for delay, ceiling in zip(delays, ceilings):
        assert ceiling * 0.5 <= delay < ceiling
    again = [backoff_delay(n, cfg, np.random.default_rng(3)) for n in (1,)]
    assert again == delays[:1]  # the same seed gives the same jitter


def test_settings_are_read_from_the_outbox_table():
    cfg = OutboxSettings.from_settings(SimpleNamespace(raw={"outbox": {"timeout": 2.5,
                                                                       "max_attempts": 4}}))
    assert (cfg.timeout, cfg.max_attempts, cfg.backoff_base) == (2.5, 4, 1.0)
    assert OutboxSettings.from_settings(None) == OutboxSettings()


def test_alerts_commands_list_and_resend_dead_letters(make_ledger, tmp_path, cli, json_lines):
    state = tmp_path / "state"
    ledger = make_ledger(state)
    outbox = Outbox(ledger, manager(down=Raiser(), ok=Recorder()), settings(max_attempts=2))
    outbox.start()
    try:
        enqueue(outbox, ledger, alerts(3))
        assert wait_for(lambda: outbox.stats()["down"]["dead"] == 3
                        and outbox.stats()["ok"]["delivered"] == 3)
    finally:
        outbox.stop(5)

    stats = cli("alerts", "stats", "--state", state)
    assert stats.exit_code == 0, stats.output
    assert json_lines(stats.output) == [{
        "down": {"pending": 0, "failed": 0, "delivered": 0, "dead": 3},
        "ok": {"pending": 0, "failed": 0, "delivered": 3, "dead": 0}}]
    dead = json_lines(cli("alerts", "dead", "--state", state).output)
    assert sorted(row["alert_id"] for row in dead) == ["p0:banana", "p1:banana", "p2:banana"]
    assert {(row["plugin"], row["attempts"], row["last_error"]) for row in dead} == {
        ("down", 2, "RuntimeError: channel down")}
    assert json_lines(cli("alerts", "dead", "--state", state, "--plugin", "ok").output) == []

    retried = cli("alerts", "retry", "--state", state, "p1:banana")
    assert json_lines(retried.output) == [{"requeued": 1}]
    assert json_lines(cli("alerts", "retry", "--state", state, "--plugin", "down").output) == [
        {"requeued": 2}]
    assert json_lines(cli("alerts", "retry", "--state", state).output) == [{"requeued": 0}]

    # the channel works again: the next outbox on this ledger delivers the three
    back = Recorder()
    outbox = Outbox(ledger, manager(down=back, ok=Recorder()), settings())
    outbox.start()
    try:
        assert wait_for(lambda: len(back.received) == 3)
    finally:
        outbox.stop(5)
    assert sorted(back.received) == ["p0:banana", "p1:banana", "p2:banana"]


def test_alerts_commands_need_a_ledger(cli, tmp_path):
    result = cli("alerts", "dead", "--state", tmp_path / "nothing")
    assert result.exit_code == 2 and "no ledger" in result.output


def test_stop_drains_what_is_due_but_not_a_hung_plugin(make_ledger):
    ledger = make_ledger()
    slow, hang = Slow(), Hanger()
    outbox = Outbox(ledger, manager(slow=slow, hang=hang), settings(timeout=5, max_hung=1))
    outbox.start()
    enqueue(outbox, ledger, alerts(5))  # 5 × 0.2 s for the slow plugin
    try:
        assert outbox.stop(4) is False  # the hung call never returns in time
    finally:
        hang.release.set()
    assert sorted(slow.received) == sorted(a.alert_id for a in alerts(5))
    with ledger.transaction() as conn:
        assert delivery_counts(conn)["hang"]["delivered"] <= 1


def test_a_plugin_calling_sys_exit_is_contained(make_ledger):
    class Exits:
        @hookimpl
        def send_alert(self, alert):
            raise SystemExit(3)

    ledger = make_ledger()
    good = Recorder()
    outbox = Outbox(ledger, manager(exits=Exits(), good=good), settings(max_attempts=2))
    outbox.start()
    try:
        enqueue(outbox, ledger, alerts(2))
        assert wait_for(lambda: outbox.stats()["exits"]["dead"] == 2 and len(good.received) == 2)
    finally:
        outbox.stop(5)
    with ledger.transaction() as conn:
        assert {d["last_error"] for d in dead_letters(conn)} == {"SystemExit: 3"}


def test_failing_deliveries_are_listed_with_include_failed(make_ledger):
    ledger = make_ledger()
    outbox = Outbox(ledger, manager(down=Raiser()), settings(max_attempts=100, backoff_base=5,
                                                             backoff_max=5))
    outbox.start()
    try:
        enqueue(outbox, ledger, alerts(1))
        assert wait_for(lambda: outbox.stats()["down"]["failed"] == 1)
    finally:
        outbox.stop(5)
    with ledger.transaction() as conn:
        assert dead_letters(conn) == []
        (row,) = dead_letters(conn, include_failed=True)
    assert (row["alert_id"], row["status"], row["attempts"]) == ("p0:banana", "pending", 1)


# ----------------------------------------------------------------- batches

class BatchRecorder(Recorder):
    """Implements send_alert_batch too: the outbox must prefer it."""

    def __init__(self, fail_first=0):
        super().__init__()
        self.batches: list[list[str]] = []
        self.fail_first = fail_first

    @hookimpl
    def send_alert_batch(self, alerts):
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("channel down")
        with self.lock:
            self.batches.append([alert.alert_id for alert in alerts])


def test_a_batch_hook_gets_whole_batches_and_send_alert_is_not_called(make_ledger):
    ledger = make_ledger()
    plugin, single = BatchRecorder(), Recorder()
    outbox = Outbox(ledger, manager(batch=plugin, single=single), settings(batch=4))
    enqueue(outbox, ledger, alerts(10))  # all due before the workers start
    outbox.start()
    try:
        assert wait_for(lambda: outbox.stats()["batch"]["delivered"] == 10)
        assert wait_for(lambda: len(single.received) == 10)
    finally:
        outbox.stop(5)
    assert [len(batch) for batch in plugin.batches] == [4, 4, 2]
    assert sum(plugin.batches, []) == [a.alert_id for a in alerts(10)]  # oldest first
    assert plugin.received == []  # the per-alert hook of a batch plugin stays unused
    assert sorted(single.received) == sorted(a.alert_id for a in alerts(10))


def test_a_failing_batch_is_retried_whole_and_delivered_once(make_ledger):
    ledger = make_ledger()
    plugin = BatchRecorder(fail_first=2)
    outbox = Outbox(ledger, manager(batch=plugin), settings(batch=10))
    enqueue(outbox, ledger, alerts(3))
    outbox.start()
    try:
        assert wait_for(lambda: outbox.stats()["batch"]["delivered"] == 3)
    finally:
        outbox.stop(5)
    assert plugin.batches == [["p0:banana", "p1:banana", "p2:banana"]]
    assert outbox.stats()["batch"]["errors"] == 2
    with ledger.transaction() as conn:
        attempts = conn.execute("SELECT attempts FROM outbox_deliveries").fetchall()
    assert attempts == [(2,)] * 3


KILLED_WORKER = """
import os, signal, sys, time
from types import SimpleNamespace
from monitor import hookimpl
from monitor.ledger import Ledger
from monitor.outbox import Outbox
from monitor.plugins import get_plugin_manager

state, received, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
batch, mark_interval, delay = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])

class Recording:
    count = 0

    @hookimpl
    def send_alert(self, alert):
        time.sleep(delay)
        with open(received, "a") as handle:
            handle.write(alert.alert_id + "\\n")
        self.count += 1
        if self.count == kill_at:  # kill -9 after this alert reached the channel
            os.kill(os.getpid(), signal.SIGKILL)

pm = get_plugin_manager(load_entrypoints=False, allow=[], block=[])
pm.register(Recording(), name="rec")
settings = SimpleNamespace(raw={"outbox": {"batch": batch, "mark_interval": mark_interval,
                                      "poll_interval": 0.01}}, plugins={})
outbox = Outbox(Ledger(state), pm, settings)
outbox.start()
time.sleep(30)
"""


@pytest.mark.parametrize("batch, kill_at, mark_interval, delay, resent", [
    (5, 8, 60.0, 0.0, 3),   # fast plugin: batches 1-5 marked, 6-8 re-sent
    (5, 5, 60.0, 0.0, 5),   # killed on the last call of a batch: the whole batch
    (1, 3, 60.0, 0.0, 1),   # batch = 1: one alert
    (10, 3, 0.05, 0.06, 1),  # slow plugin: each delivery marked right after its call
])
def test_kill_9_mid_batch_resends_at_most_one_batch(make_ledger, tmp_path, batch, kill_at,
                                                    mark_interval, delay, resent):
    import subprocess
    import sys

    state, received = tmp_path / "state", tmp_path / "received.txt"
    ledger = make_ledger(state)
    outbox = Outbox(ledger, manager(rec=Recorder()), settings())
    enqueue(outbox, ledger, alerts(12))
    ledger.close()
    script = tmp_path / "worker.py"
    script.write_text(KILLED_WORKER)
    args = [sys.executable, str(script), str(state), str(received)]
    options = [str(batch), str(mark_interval), str(delay)]
    first = subprocess.run(args + [str(kill_at)] + options, timeout=60)
    assert first.returncode == -9
    sent_before = received.read_text().split()
    assert len(sent_before) == kill_at

    restarted = subprocess.Popen(args + ["0"] + options)  # 0: never killed
    try:
        assert wait_for(lambda: len(received.read_text().split()) >= 12
                        and _all_delivered(state), timeout=30)
    finally:
        restarted.kill()
        restarted.wait()
    lines = received.read_text().split()
    assert sorted(set(lines)) == sorted(a.alert_id for a in alerts(12))  # nothing lost
    assert len(lines) - 12 == resent <= batch  # only (part of) the batch in hand again
    assert lines[kill_at:kill_at + resent] == sent_before[kill_at - resent:]


def _all_delivered(state) -> bool:
    import sqlite3

    conn = sqlite3.connect(f"file:{state / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute(
            "SELECT COUNT(*) FROM outbox_deliveries WHERE status != 'delivered'").fetchone()
        return row[0] == 0
    finally:
        conn.close()
