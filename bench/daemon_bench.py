"""Benchmark the daemon end to end: throughput, close→alert latency, memory.

    python bench/daemon_bench.py [--posts 1000000] [--files 100] [--latency-files 200]

1. Throughput: starts ``python -m monitor run`` (jsonl plugin on, log plugin off, no
   learning) on a temp feed, drops ``--files`` files holding ``--posts`` posts in total
   (texts sampled from corpus/banana-cookie/train.jsonl, unlabelled) by atomic rename,
   and times until the ledger has every file done (scored, alerts in the outbox, file
   moved).  Prints posts/s, the daemon's CPU seconds during it (main thread / other
   threads, from /proc: a busy machine stretches the wall clock, not these), and
   separately how long the outbox took to deliver every alert to the jsonl file.
2. Latency on an idle daemon: one small file at a time (5 posts), from the moment the
   file is closed (renamed into the feed) until all its alerts are in the jsonl file;
   p50/p99 over ``--latency-files`` files.  The daemon's own figure (close → alerts
   committed to the outbox, from its item_done log events) is printed beside it.
3. RSS of the daemon process, sampled every 0.25 s over the run (min / max / last).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    texts = [json.loads(line)["text"] for line in open(ROOT / args.corpus, encoding="utf-8")]
    with tempfile.TemporaryDirectory(prefix="daemon-bench-") as tmp:
        root = Path(tmp)
        feed, staging, alerts = root / "feed", root / "staging", root / "alerts.jsonl"
        feed.mkdir()
        staging.mkdir()
        names = stage_files(staging, texts, args.posts, args.files, rng)
        config = root / "bench.toml"
        config.write_text(f'[plugins.jsonl]\npath = "{alerts}"\n[plugins.log]\nenabled = false\n')
        print(f"load before start: {os.getloadavg()}  cpus: {os.cpu_count()}")
        daemon = start_daemon(root, feed, config, args.model, args.workers)
        sampler = RssSampler(daemon.pid)
        sampler.start()
        try:
            wait_for_log(root / "daemon.log", "daemon_started", 60)
            throughput(feed, staging, names, root / "state", alerts, args, daemon.pid)
            latency(feed, root / "state", alerts, root / "daemon.log", texts, args, rng)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(30)
            sampler.stop()
        print(f"daemon exit code after SIGTERM: {code}")
        sampler.report()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--latency-files", type=int, default=200)
    parser.add_argument("--model", default=None, help="default: the shipped default model, "
                        "else models/seed-multiclass.npz")
    parser.add_argument("--corpus", default="corpus/banana-cookie/train.jsonl")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1,
                        help="run --workers N: scoring processes (default 1)")
    return parser.parse_args()


def stage_files(staging: Path, texts, posts: int, files: int, rng) -> list[str]:
    per_file = posts // files
    names = []
    for n in range(files):
        picks = rng.integers(0, len(texts), size=per_file)
        lines = [json.dumps({"id": f"b{n:03d}-{i}", "text": texts[k]}) for i, k in enumerate(picks)]
        name = f"bench-{n:03d}.jsonl"
        (staging / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        names.append(name)
    return names


def start_daemon(root: Path, feed: Path, config: Path, model: str | None,
                 workers: int) -> subprocess.Popen:
    if model is None:
        default = ROOT / "models" / "banana-cookie.npz"
        model = str(default if default.exists() else ROOT / "models" / "seed-multiclass.npz")
    print(f"model: {model}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANANA_MONITOR_")}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--log-json", "run", "--config", str(config),
         "--feed", str(feed), "--state", str(root / "state"), "--model", model, "--no-learn",
         "--workers", str(workers)],
        cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(root / "daemon.log", "wb"),
    )


def throughput(feed, staging, names, state, alerts, args, pid: int) -> None:
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    for name in names:
        os.replace(staging / name, feed / name)
    done_at = poll(lambda: ledger_value(state, "SELECT COUNT(*) FROM items") == len(names),
                   timeout=3600)
    cpu_used = {name: cpu_seconds(pid, name) - cpu_before.get(name, 0.0)
                for name in cpu_seconds(pid)}
    seconds = done_at - started
    n_alerts = ledger_value(state, "SELECT COUNT(*) FROM outbox_alerts")
    print(f"throughput: {args.posts} posts in {len(names)} files: {seconds:.2f} s → "
          f"{args.posts / seconds:,.0f} posts/s  (alerts enqueued: {n_alerts:,})  "
          f"load: {os.getloadavg()}")
    total = sum(cpu_used.values())
    threads = "  ".join(f"{name} {used:.1f}" for name, used in
                        sorted(cpu_used.items(), key=lambda kv: -kv[1]) if used >= 0.05)
    print(f"daemon CPU during it: {total:.1f} s → {args.posts / total:,.0f} posts per CPU-second"
          f"  (by thread, s: {threads})")
    delivered_at = poll(lambda: ledger_value(
        state, "SELECT COUNT(*) FROM outbox_deliveries WHERE status != 'delivered'") == 0,
        timeout=7200)
    print(f"alert delivery: all {n_alerts:,} alerts in the jsonl file "
          f"{delivered_at - started:.2f} s after the first drop "
          f"({n_alerts / (delivered_at - started):,.0f} alerts/s)")


def latency(feed, state, alerts, log_path, texts, args, rng) -> None:
    time.sleep(2.0)  # idle
    offset = alerts.stat().st_size if alerts.exists() else 0
    seen: set[tuple[str, str]] = set()
    samples = []
    alerting = [t for t in texts if "banana" in t.lower() or "cookie" in t.lower()][:500]
    for n in range(args.latency_files):
        ids = [f"lat{n}-{i}" for i in range(5)]
        body = "".join(json.dumps({"id": i, "text": alerting[int(rng.integers(len(alerting)))]})
                       + "\n" for i in ids)
        tmp = feed / f".lat{n}.tmp"
        tmp.write_text(body, encoding="utf-8")
        closed = time.perf_counter()
        os.replace(tmp, feed / f"lat{n}.jsonl")
        processed, expected = feed / "processed" / f"lat{n}.jsonl", None
        while True:
            offset = read_new(alerts, offset, seen)
            if expected is None and processed.exists():  # done: how many alerts it made
                expected = ledger_value(state, "SELECT alerts FROM items WHERE name = ?",
                                        (f"lat{n}.jsonl",))
            if expected is not None and sum(k[0] in ids for k in seen) >= expected:
                break
            if time.perf_counter() - closed > 30:
                raise SystemExit(f"alerts of lat{n} not delivered within 30 s")
            time.sleep(0.001)
        samples.append(time.perf_counter() - closed)
        time.sleep(0.05)
    own = [e["latency"] for e in log_events(log_path)
           if e.get("event") == "item_done" and str(e.get("item", "")).startswith("lat")]
    print(f"latency close→alerts in jsonl ({len(samples)} files of 5 posts): "
          f"p50 {pct(samples, 50):.1f} ms  p99 {pct(samples, 99):.1f} ms  max "
          f"{max(samples) * 1000:.1f} ms")
    if own:
        print(f"daemon's own close→alerts committed: p50 {pct(own, 50):.1f} ms  "
              f"p99 {pct(own, 99):.1f} ms")


def cpu_seconds(pid: int, thread: str | None = None):
    """CPU seconds (user + system) of ``pid``'s main thread, of its other threads
    (outbox, observer, ...) and of its worker processes (--workers N):
    {"main": s, "other threads": s, "workers": s}; with ``thread``, one of them.  A busy
    machine slows the wall clock, not these."""
    totals: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        name = "main" if task.name == str(pid) else "other threads"
        totals[name] = totals.get(name, 0.0) + stat_seconds(task / "stat")
    for child in children(pid):
        totals["workers"] = totals.get("workers", 0.0) + stat_seconds(Path(f"/proc/{child}/stat"))
    return totals if thread is None else totals.get(thread, 0.0)


def stat_seconds(path: Path) -> float:
    """User + system CPU seconds from a /proc …/stat file (0 if the task is gone)."""
    try:
        stat = path.read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (its worker processes)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def read_new(path: Path, offset: int, seen: set[str]) -> int:
    if not path.exists():
        return offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        record = json.loads(line)
        seen.add((record["post_id"], record["label"]))
    return offset + end


def log_events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events


def wait_for_log(path: Path, event: str, timeout: float) -> None:
    poll(lambda: path.exists() and f'"{event}"' in path.read_text(errors="replace"), timeout)


def ledger_value(state: Path, sql: str, params=()):
    try:
        conn = sqlite3.connect(f"file:{state / 'ledger.sqlite3'}?mode=ro", uri=True, timeout=30)
        try:
            row = conn.execute(sql, params).fetchone()
            return row[0] if row else None
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return None


def poll(predicate, timeout: float, interval: float = 0.05) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(interval)
    raise SystemExit("timed out")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


class RssSampler(threading.Thread):
    """VmRSS of a process and its worker processes (summed) every 0.25 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stopping = pid, [], threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.25):
            try:
                total = rss_mib(self.pid)
            except OSError:
                return
            for child in children(self.pid):
                try:
                    total += rss_mib(child)
                except OSError:
                    pass
            self.samples.append(total)

    def stop(self) -> None:
        self.stopping.set()
        self.join(2)

    def report(self) -> None:
        if not self.samples:
            return
        s = self.samples
        tenth = max(len(s) // 10, 1)
        deciles = ", ".join(f"{max(s[i:i + tenth]):.0f}" for i in range(0, len(s), tenth))
        print(f"RSS MiB over the run: start {s[0]:.0f}  max {max(s):.0f}  last {s[-1]:.0f}  "
              f"per tenth of the run (max): {deciles}")


if __name__ == "__main__":
    main()
