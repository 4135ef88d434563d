"""Redis Streams workers: throughput with 1, 2 and 3 workers, and the kill -9 run at scale.

    python bench/redis_workers.py [--posts 100000] [--workers 1,2,3] [--kill]

Starts a private redis-server (127.0.0.1, free port, temp dir), then for each worker
count: starts that many real ``banana-monitor run --source redis://... --role scorer``
processes (own state dir, jsonl alerts, the keyword model of tests/redis_server.py),
waits until all are reading, pushes ``--posts`` posts (pipelined XADD, as ``push``
does) and times push start → every entry acked (group lag 0, XPENDING empty).
Prints posts/s and the CPU seconds each worker and redis-server used: on this
2-core machine that shows what bounds the figure.

``--kill``: three workers, the posts pushed while one worker is ``kill -9``'ed
mid-stream (restarted at the end so its committed outbox drains), then checks every
post scored, no alert duplicated, every expected alert present, nothing pending.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redis_server import (  # noqa: E402
    Cluster,
    RedisServer,
    expected_alert_ids,
    keyword_model,
    keyword_posts,
    push_posts,
)


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a live process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(cluster: Cluster, names: list[str], timeout: float = 60.0) -> None:
    if not cluster.wait_until(
        lambda: all(cluster.is_reading(n) for n in names), timeout
    ):
        raise SystemExit(f"workers did not start; see {cluster.root}/*/worker.log")


def throughput(server: RedisServer, workdir: Path, model: Path, workers: int, posts: list,
               count: int) -> dict:
    server_client = Cluster(server.url, workdir, model).client
    server_client.flushall()
    cluster = Cluster(server.url, workdir / f"n{workers}", model, count=count)
    names = [f"w{i}" for i in range(1, workers + 1)]
    try:
        for name in names:
            cluster.start(name)
        wait_ready(cluster, names)
        cpu0 = {n: cpu_seconds(cluster.processes[n].pid) for n in names}
        redis0 = cpu_seconds(server.process.pid)
        started = time.perf_counter()
        push_posts(server.url, posts)
        pushed = time.perf_counter() - started
        if not cluster.wait_until(cluster.drained, timeout=3600, interval=0.05):
            raise SystemExit("the workers did not drain the stream")
        elapsed = time.perf_counter() - started
        cpu = {n: cpu_seconds(cluster.processes[n].pid) - cpu0[n] for n in names}
        redis_cpu = cpu_seconds(server.process.pid) - redis0
        scored = len(cluster.scored_post_ids())
    finally:
        cluster.close()
    return {"workers": workers, "posts": len(posts), "scored": scored,
            "seconds": elapsed, "posts_per_s": len(posts) / elapsed,
            "push_per_s": len(posts) / pushed, "worker_cpu": cpu, "redis_cpu": redis_cpu}


def kill_run(server: RedisServer, workdir: Path, model: Path, posts: list, count: int) -> dict:
    Cluster(server.url, workdir, model).client.flushall()
    cluster = Cluster(server.url, workdir / "kill", model, count=count)
    names = ["w1", "w2", "w3"]
    try:
        for name in names:
            cluster.start(name)
        wait_ready(cluster, names)
        half = len(posts) // 2
        started = time.perf_counter()
        push_posts(server.url, posts[:half])
        held = cluster.kill9_holding("w2")
        push_posts(server.url, posts[half:])
        drained = cluster.wait_until(cluster.drained, timeout=3600, interval=0.05)
        elapsed = time.perf_counter() - started
        cluster.start("w2")  # its committed-but-undelivered alerts drain from its outbox
        wait_ready(cluster, ["w2"])
        delivering = time.perf_counter()
        delivered = cluster.wait_until(lambda: cluster.undelivered() == 0, timeout=3600,
                                       interval=0.5)
        delivery_wait = time.perf_counter() - delivering
        codes = cluster.stop_all()
        committed = cluster.outbox_alert_ids()
        alerts = cluster.alerts()
        ids = [a["alert_id"] if "alert_id" in a else f"{a['post_id']}:{a['label']}"
               for a in alerts]
        claimed = sum(e.get("entries", 0) for n in ("w1", "w3")
                      for e in cluster.log_events(n, "claimed stale entries"))
        return {
            "posts": len(posts), "seconds": elapsed, "drained": drained,
            "w2_pending_when_killed": held, "claimed_by_others": claimed,
            "scored": len(cluster.scored_post_ids() & {p["id"] for p in posts}),
            "outbox_alerts": len(committed), "unique_outbox_alerts": len(set(committed)),
            "delivered_all": delivered, "delivery_wait_s": round(delivery_wait, 1),
            "alerts": len(ids), "unique_alerts": len(set(ids)),
            "expected_alerts": len(expected_alert_ids(posts)),
            "missing_alerts": len(expected_alert_ids(posts) - set(ids)),
            "pending": cluster.pending(), "exit_codes": codes,
        }
    finally:
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--count", type=int, default=500, help="entries per batch")
    parser.add_argument("--kill", action="store_true", help="also the kill -9 run")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    posts = keyword_posts(args.posts)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        workdir = Path(tmp)
        model = keyword_model(workdir / "keyword.npz")
        server = RedisServer(binary, workdir / "redis").start()
        try:
            print(f"{'workers':>7} {'posts':>8} {'seconds':>8} {'posts/s':>9} {'push/s':>9}"
                  f"  worker CPU s (each)          redis CPU s")
            for n in [int(w) for w in args.workers.split(",") if w.strip()]:
                r = throughput(server, workdir, model, n, posts, args.count)
                each = " ".join(f"{c:6.1f}" for c in r["worker_cpu"].values())
                print(f"{n:>7} {r['scored']:>8} {r['seconds']:>8.2f} {r['posts_per_s']:>9.0f}"
                      f" {r['push_per_s']:>9.0f}  {each:<28} {r['redis_cpu']:6.1f}")
            if args.kill:
                r = kill_run(server, workdir, model, posts, args.count)
                print("kill -9 run:", r)
        finally:
            server.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
