"""Outbox benchmark: enqueue cost, delivery throughput, and isolation from a hung plugin.

    python bench/outbox.py [--alerts 20000] [--plugins 3]

Prints: enqueue µs/alert (inside one ledger transaction), deliveries/s per plugin to
no-op plugins, the p50/p99 latency from commit to delivery, and the same throughput
while one extra plugin hangs on every call.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from types import SimpleNamespace

import numpy as np

from monitor import hookimpl
from monitor.alerts import Alert
from monitor.ledger import Ledger
from monitor.outbox import Outbox
from monitor.plugins import get_plugin_manager


class Sink:
    def __init__(self):
        self.latencies: list[float] = []
        self.committed_at: dict[str, float] = {}

    @hookimpl
    def send_alert(self, alert):
        self.latencies.append(time.perf_counter() - self.committed_at[alert.alert_id])


class Hang:
    release = threading.Event()

    @hookimpl
    def send_alert(self, alert):
        self.release.wait()


def run(n_alerts: int, n_plugins: int, hang: bool) -> dict:
    sinks = {f"sink{i}": Sink() for i in range(n_plugins)}
    pm = get_plugin_manager(allow=[])
    for name, sink in sinks.items():
        pm.register(sink, name=name)
    if hang:
        pm.register(Hang(), name="hang")
    settings = SimpleNamespace(raw={"outbox": {"timeout": 0.5, "poll_interval": 0.01,
                                               "max_hung": 2, "seed": 1}}, plugins={})
    with tempfile.TemporaryDirectory() as state:
        ledger = Ledger(state)
        outbox = Outbox(ledger, pm, settings)
        outbox.start()
        alerts = [Alert(f"p{i}", "banana", 0.9, "ripe banana bread", "bench", 1)
                  for i in range(n_alerts)]
        enqueue_seconds = 0.0
        started = time.perf_counter()
        for start in range(0, n_alerts, 500):  # items of 500 alerts, one transaction each
            batch = alerts[start:start + 500]
            t0 = time.perf_counter()
            with ledger.transaction() as conn:
                outbox.enqueue(conn, batch)
            committed = time.perf_counter()
            enqueue_seconds += committed - t0
            for sink in sinks.values():
                sink.committed_at.update({a.alert_id: committed for a in batch})
            outbox.wake()
        while any(len(s.latencies) < n_alerts for s in sinks.values()):
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        Hang.release.set()
        outbox.stop(2)
        ledger.close()
    latencies = np.concatenate([s.latencies for s in sinks.values()]) * 1000
    return {"enqueue_us_per_alert": 1e6 * enqueue_seconds / n_alerts,
            "deliveries_per_s_per_plugin": n_alerts / elapsed,
            "p50_ms": float(np.percentile(latencies, 50)),
            "p99_ms": float(np.percentile(latencies, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20000)
    parser.add_argument("--plugins", type=int, default=3)
    args = parser.parse_args()
    for hang in (False, True):
        Hang.release = threading.Event()
        result = run(args.alerts, args.plugins, hang)
        label = f"{args.plugins} no-op plugins" + (" + 1 hung plugin" if hang else "")
        print(f"{label}: enqueue {result['enqueue_us_per_alert']:.1f} µs/alert, "
              f"{result['deliveries_per_s_per_plugin']:.0f} deliveries/s per plugin, "
              f"commit→delivery p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()
