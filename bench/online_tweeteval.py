"""Online learning on TweetEval emotion: the daemon against offline `train`, one epoch.

    python bench/online_tweeteval.py [--data ../shared/data/tweeteval] [--file-size 100]

1. ``banana-monitor model init START --vocabulary @VOCAB`` over the training set's
   vocabulary (``monitor.train.build_vocabulary``: the words seen twice, top 5000) with
   train's default hidden sizes;
2. the real daemon (``python -m monitor run --learn``, a subprocess) from START while
   the training set is dropped into its feed directory as labelled JSONL files of
   ``--file-size`` posts, in order, by atomic rename;
3. after SIGTERM: prequential accuracy and macro-F1 (``banana-monitor status``: each
   post scored before it was learned), then test-set accuracy / macro-F1 of its final
   checkpoint;
4. offline from the same START, one epoch: ``train --batch-size 1 --no-shuffle`` (the
   daemon's own update order: its arrays must be identical) and ``train`` with its
   defaults (mini-batches of 8, shuffled); test-set figures for both.

Skips cleanly (exit 0, a message) when the data directory is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.config import DEFAULTS  # noqa: E402
from monitor.evaluation import evaluate_model, metrics  # noqa: E402
from monitor.model import Model  # noqa: E402
from monitor.train import HIDDEN, build_vocabulary  # noqa: E402


def read_split(task_dir: Path, split: str, names: list[str]) -> list[dict]:
    texts = (task_dir / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
    labels = (task_dir / f"{split}_labels.txt").read_text().split()
    return [{"id": f"{split}-{i}", "text": t, "label": names[int(y)]}
            for i, (t, y) in enumerate(zip(texts, labels))]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", *map(str, args)], check=check,
                          capture_output=True, text=True, cwd=ROOT)


def jsonl(posts: list[dict]) -> str:
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts)


def stream_through_daemon(work: Path, start: Path, posts: list[dict], file_size: int) -> dict:
    feed, state = work / "feed", work / "state"
    feed.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANANA_MONITOR_")}
    log = open(work / "daemon.log", "wb")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--log-json", "run", "--feed", str(feed),
         "--state", str(state), "--model", str(start), "--learn"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=log)
    began = time.perf_counter()
    names = []
    for k in range(0, len(posts), file_size):
        name = f"labelled-{k // file_size:05d}.jsonl"
        tmp = feed / f".{name}.tmp"
        tmp.write_text(jsonl(posts[k:k + file_size]), encoding="utf-8")
        os.replace(tmp, feed / name)
        names.append(name)
    processed = feed / "processed"
    while not (processed.is_dir() and len(list(processed.iterdir())) >= len(names)):
        if daemon.poll() is not None:
            raise SystemExit(f"daemon exited: {(work / 'daemon.log').read_text()[-2000:]}")
        time.sleep(0.2)
    seconds = time.perf_counter() - began
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(30)
    status = json.loads(cli("status", "--feed", feed, "--state", state).stdout)
    history = [json.loads(line) for line in
               cli("model", "history", "--feed", feed, "--state", state).stdout.splitlines()]
    return {"status": status["learning"], "seconds": seconds,
            "model": state / "models" / history[-1]["file"], "state": state}


def prequential_macro_f1(state: Path, names: list[str]) -> float:
    import sqlite3

    conn = sqlite3.connect(state / "ledger.sqlite3")
    rows = conn.execute("SELECT label, predicted FROM learn_journal WHERE predicted IS NOT NULL"
                        " ORDER BY seq").fetchall()
    conn.close()
    truth = [names.index(label) for label, _ in rows]
    predicted = [names.index(p) for _, p in rows]
    return metrics(truth, predicted, names)["macro_f1"]


def offline(start: Path, data: Path, out: Path, extra: list[str]) -> Model:
    """`banana-monitor train --model START --epochs 1 --seed 0 ...`."""
    cli("train", "--data", data, "--model", start, "--out", out, "--epochs", "1",
        "--seed", "0", *extra)
    return Model.load(out)


def same_arrays(a: Model, b: Model) -> bool:
    return a.vocabulary.words == b.vocabulary.words and all(
        np.array_equal(x, y) for x, y in zip(a.network.weights + a.network.biases,
                                             b.network.weights + b.network.biases))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "tweeteval")
    parser.add_argument("--file-size", type=int, default=100)
    args = parser.parse_args()
    task = args.data / "emotion"
    if not (task / "train_text.txt").is_file():
        print(f"skipped: {task} not found (TweetEval emotion data)")
        return
    names = [line.split("\t")[1] for line in (task / "mapping.txt").read_text().splitlines()]
    train, test = read_split(task, "train", names), read_split(task, "test", names)
    with tempfile.TemporaryDirectory(prefix="online-tweeteval-") as tmp:
        work = Path(tmp)
        (work / "vocab.txt").write_text("\n".join(build_vocabulary([p["text"] for p in train])))
        start = work / "start.npz"
        cli("model", "init", start, "--vocabulary", f"@{work / 'vocab.txt'}",
            "--hidden", ",".join(map(str, HIDDEN)), "--classes", ",".join(names), "--seed", "0")
        data = work / "train.jsonl"
        data.write_text(jsonl(train), encoding="utf-8")
        print(f"TweetEval emotion: {len(train)} train / {len(test)} test posts, "
              f"vocabulary {len(Model.load(start).vocabulary)}, hidden {HIDDEN}")
        run = stream_through_daemon(work, start, train, args.file_size)
        daemon_model = Model.load(run["model"])
        texts, labels = [p["text"] for p in test], [p["label"] for p in test]
        rows = [("daemon (online, prequential)", run["status"]["prequential_accuracy"],
                 prequential_macro_f1(run["state"], names))]
        rows.append(("daemon final model on test", *_acc_f1(daemon_model, texts, labels)))
        daemon_lr = str(DEFAULTS["learning"]["learning_rate"])  # the daemon's η, not train's
        single = offline(start, data, work / "b1.npz",
                         ["--batch-size", "1", "--no-shuffle", "--lr", daemon_lr])
        rows.append(("train --batch-size 1 --no-shuffle, test", *_acc_f1(single, texts, labels)))
        default = offline(start, data, work / "b8.npz", [])
        rows.append(("train defaults (1 epoch), test", *_acc_f1(default, texts, labels)))
        print(f"daemon: {len(train)} labelled posts in {run['seconds']:.1f} s "
              f"({len(train) / run['seconds']:.0f} posts/s end to end), "
              f"updates {run['status']['updates']}, paused {run['status']['paused']}, "
              f"recent accuracy {run['status']['recent_accuracy']}")
        print(f"{'':42s} {'accuracy':>9s} {'macro-F1':>9s}")
        for name, accuracy, f1 in rows:
            print(f"{name:42s} {accuracy:9.4f} {f1:9.4f}")
        print("daemon final arrays == train --batch-size 1 --no-shuffle:",
              same_arrays(daemon_model, single))


def _acc_f1(model: Model, texts, labels) -> tuple[float, float]:
    report = evaluate_model(model, texts, labels)
    return report["accuracy"], report["macro_f1"]


if __name__ == "__main__":
    main()
