"""scikit-learn in the bench: HashingVectorizer + SGDClassifier (logistic loss).

    python bench/peers/sklearn_peer.py train TRAIN.jsonl OUT.npz
    python bench/peers/sklearn_peer.py score MODEL.npz FILE.jsonl      # stdout: JSON lines
    python bench/peers/sklearn_peer.py prequential LEARN.jsonl BATCH [LIMIT]

``score`` does what ``banana-monitor score FILE.jsonl`` does — read JSON lines, score
in batches of 1000, print {"id", "label", "scores"} per post — so the two are timed as
whole processes.  The trained model is kept as arrays in an .npz (no pickle).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier

from common import CLASSES, read_labelled, report

BATCH = 1000
VECTORIZER = HashingVectorizer(n_features=2**18, alternate_sign=False, norm=None)


def classifier() -> SGDClassifier:
    return SGDClassifier(loss="log_loss", alpha=1e-5, random_state=0)


def train(data: str, out: str) -> None:
    texts, labels = read_labelled(data)
    model = classifier().fit(VECTORIZER.transform(texts), labels)
    np.savez(out, coef=model.coef_, intercept=model.intercept_, classes=model.classes_)


def load(path: str) -> SGDClassifier:
    arrays = np.load(path, allow_pickle=False)
    model = classifier()
    model.coef_, model.intercept_ = arrays["coef"], arrays["intercept"]
    model.classes_ = arrays["classes"]
    return model


def score(model_path: str, data: str) -> None:
    model = load(model_path)
    write = sys.stdout.write
    with open(data, "rb") as handle:
        batch = []
        for line in handle:
            batch.append(json.loads(line))
            if len(batch) == BATCH:
                _score_batch(model, batch, write)
                batch = []
        if batch:
            _score_batch(model, batch, write)


def _score_batch(model, posts: list[dict], write) -> None:
    probabilities = model.predict_proba(VECTORIZER.transform([p["text"] for p in posts]))
    for post, row in zip(posts, probabilities):
        line = {"id": post["id"], "label": CLASSES[int(row.argmax())],
                "scores": dict(zip(CLASSES, map(float, row)))}
        write(json.dumps(line) + "\n")


def prequential(data: str, batch: str, limit: str = "0") -> None:
    """partial_fit in batches of BATCH (1: one post at a time) on the first LIMIT posts."""
    texts, labels = read_labelled(data)
    if int(limit):
        texts, labels = texts[: int(limit)], labels[: int(limit)]
    size, classes = int(batch), np.arange(len(CLASSES))
    model, hits, fitted = classifier(), 0, False
    start = time.perf_counter()
    for first in range(0, len(texts), size):
        X = VECTORIZER.transform(texts[first : first + size])
        y = labels[first : first + size]
        if fitted:
            hits += int((model.predict(X) == y).sum())
        model.partial_fit(X, y, classes=classes)
        fitted = True
    seconds = time.perf_counter() - start
    predicted = max(len(texts) - size, 1)  # the first batch is learned unseen
    report(posts=len(texts), seconds=seconds, accuracy=hits / predicted)


if __name__ == "__main__":
    {"train": train, "score": score, "prequential": prequential}[sys.argv[1]](*sys.argv[2:])
