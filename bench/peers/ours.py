"""banana-monitor in the bench: prepare a model, and the learner's prequential loop.

    python bench/peers/ours.py train TRAIN.jsonl VOCABULARY.txt OUT.npz HIDDEN SEED
    python bench/peers/ours.py prequential MODEL.npz LEARN.jsonl

The prequential step is the online learner's (``learner``: monitor.learn.OnlineLearner
itself, ledger and journal included) or its numbers alone (``fused``: Model.learn_one,
the one-post kernel that the learner, train.sgd_update and ``train --batch-size 1``
share).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the banana-monitor CLI runs

import numpy as np  # noqa: E402

from common import CLASSES, read_labelled, report  # noqa: E402
from monitor.model import Model  # noqa: E402

LEARNING_RATE = 0.1


def train(data: str, vocabulary_file: str, out: str, hidden: str, seed: str) -> None:
    """A model over the stream's vocabulary, two epochs of mini-batch SGD (untimed)."""
    rng = np.random.default_rng(int(seed))
    words = open(vocabulary_file, encoding="utf-8").read().split()
    model = Model.create(words, [int(h) for h in hidden.split(",")], CLASSES, rng)
    texts, labels = read_labelled(data)
    X, y = model.vocabulary.bag_of_words(texts), np.asarray(labels)
    for _ in range(2):
        order = rng.permutation(len(y))
        for start in range(0, len(y), 32):
            rows = order[start : start + 32]
            model.network.sgd_step(X[rows], y[rows], LEARNING_RATE)
    model.save(out)


def prequential(model_path: str, data: str, mode: str = "learner") -> None:
    """``learner``: the daemon's online learner itself (monitor.learn.OnlineLearner:
    prequential score, the single-example step under the update and drift guards, the
    journal rows), fed files of ``FILE_POSTS`` posts, one ledger transaction per file
    (commits included, as the daemon does), learning one post at a time;
    ``fused``: Model.learn_one alone, the same step's numbers without the bookkeeping."""
    model = Model.load(model_path)
    model.network.warm_kernels()  # like the peers' imports: loading code is not timed
    texts, labels = read_labelled(data)
    names = [CLASSES[k] for k in labels]
    if mode == "fused":
        hits = 0
        start = time.perf_counter()
        for text, label, name in zip(texts, labels, names):
            scores, _ = model.learn_one(text, name, LEARNING_RATE)
            hits += int(scores.argmax()) == label
        seconds = time.perf_counter() - start
        report(posts=len(texts), seconds=seconds, accuracy=hits / len(texts))
    else:
        hits, seconds, updates = _learner(model, texts, names)
        report(posts=len(texts), seconds=seconds, accuracy=hits / len(texts), updates=updates)


FILE_POSTS = 100


def _learner(model: Model, texts: list[str], names: list[str]) -> tuple[int, float, int]:
    """(prequential hits, seconds, updates applied): the learner's guards run as in the
    daemon, so a drift-guard pause (posts then only scored) shows as fewer updates."""
    from types import SimpleNamespace

    from monitor.learn import OnlineLearner
    from monitor.ledger import Ledger
    from monitor.posts import Post

    state = Path(tempfile.mkdtemp(prefix="ours-learner-"))
    settings = SimpleNamespace(  # the daemon's defaults, with a checkpoint only at the end
        state=state, learning=SimpleNamespace(enabled=True, learning_rate=LEARNING_RATE),
        raw={"learning": {"checkpoint_every": 10**9}})
    ledger = Ledger(state)
    learner = OnlineLearner(model, ledger, settings)
    learner.resume()
    posts = [Post(f"p{i}", text, name) for i, (text, name) in enumerate(zip(texts, names))]
    hits = 0
    start = time.perf_counter()
    for first in range(0, len(posts), FILE_POSTS):
        with ledger.transaction() as conn:
            entries = learner.observe(conn, posts[first : first + FILE_POSTS])
        hits += sum(entry["correct"] is True for entry in entries)
    seconds = time.perf_counter() - start
    ledger.close()
    shutil.rmtree(state, ignore_errors=True)
    return hits, seconds, learner.updates


if __name__ == "__main__":
    {"train": train, "prequential": prequential}[sys.argv[1]](*sys.argv[2:])
