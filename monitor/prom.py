"""Optional Prometheus endpoint (``run --metrics-port N``; needs the ``metrics`` extra).

Metrics (own registry, served on ``metrics_host:metrics_port``, default 127.0.0.1):
  banana_monitor_items_total{status}        files / batches done or rejected
  banana_monitor_posts_total                posts scored
  banana_monitor_alerts_total               new alerts accepted by the outbox
  banana_monitor_quarantined_lines_total    bad lines quarantined
  banana_monitor_item_latency_seconds       from a file's close to its alerts being accepted
"""

from __future__ import annotations

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class MetricsUnavailable(RuntimeError):
    """prometheus-client is not installed."""


class Metrics:
    """The daemon's counters and latency histogram, with an HTTP endpoint."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        try:
            import prometheus_client as prom
        except ImportError:
            raise MetricsUnavailable(
                "--metrics-port needs prometheus-client: pip install 'banana-monitor[metrics]'"
            ) from None
        self.registry = prom.CollectorRegistry()
        self.items = prom.Counter("banana_monitor_items", "Work items handled.", ["status"],
                                  registry=self.registry)
        self.posts = prom.Counter("banana_monitor_posts", "Posts scored.",
                                  registry=self.registry)
        self.alerts = prom.Counter("banana_monitor_alerts", "New alerts accepted.",
                                   registry=self.registry)
        self.quarantined = prom.Counter("banana_monitor_quarantined_lines",
                                        "Bad lines quarantined.", registry=self.registry)
        self.latency = prom.Histogram("banana_monitor_item_latency_seconds",
                                      "From a file's close to its alerts being accepted.",
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.server, self.thread = prom.start_http_server(port, addr=host,
                                                          registry=self.registry)
        self.port = self.server.server_port

    def observe_item(self, item, new_alerts: int, latency: float | None) -> None:
        self.observe(bool(item.rejected), len(item.posts), new_alerts, len(item.errors),
                     latency)

    def observe(self, rejected: bool, posts: int, new_alerts: int, quarantined: int,
                latency: float | None) -> None:
        """One item's figures (also what a worker process sends, monitor/workers.py)."""
        self.items.labels(status="rejected" if rejected else "done").inc()
        self.posts.inc(posts)
        self.alerts.inc(new_alerts)
        self.quarantined.inc(quarantined)
        if latency is not None:
            self.latency.observe(max(latency, 0.0))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
