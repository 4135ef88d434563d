"""banana-monitor in the bench: prepare a model, and the learner's prequential loop.

    python bench/peers/ours.py train TRAIN.jsonl VOCABULARY.txt OUT.npz HIDDEN SEED
    python bench/peers/ours.py prequential MODEL.npz LEARN.jsonl

The prequential step is the online learner's: score the post with the live model,
then one single-example SGD step (monitor.train.sgd_update, the function the learner
and ``train --batch-size 1`` share).
"""

from __future__ import annotations

import os
import sys
import time

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


def single_example_step():
    """The learner's SGD step: train.sgd_update once it exists, else network.sgd_step."""
    try:
        from monitor.train import sgd_update
    except ImportError:

        def sgd_update(model, text, label, learning_rate):
            bag = model.vocabulary.bag_of_words([text])
            target = [model.label_index(label)]
            return model.network.sgd_step(bag, target, learning_rate)

    return sgd_update


def prequential(model_path: str, data: str, mode: str = "learner") -> None:
    """``learner``: probabilities([text]) then train.sgd_update, as monitor/learn.py
    does; ``fused``: Model.learn_one, the same numbers from one forward pass."""
    model = Model.load(model_path)
    texts, labels = read_labelled(data)
    names = [CLASSES[k] for k in labels]
    step = single_example_step()
    hits = 0
    start = time.perf_counter()
    if mode == "fused":
        for text, label, name in zip(texts, labels, names):
            scores, _ = model.learn_one(text, name, LEARNING_RATE)
            hits += int(scores.argmax()) == label
    else:
        for text, label, name in zip(texts, labels, names):
            hits += int(model.probabilities([text])[0].argmax()) == label
            step(model, text, name, LEARNING_RATE)
    seconds = time.perf_counter() - start
    report(posts=len(texts), seconds=seconds, accuracy=hits / len(texts))


if __name__ == "__main__":
    {"train": train, "prequential": prequential}[sys.argv[1]](*sys.argv[2:])
