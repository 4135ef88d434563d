"""River in the bench: BagOfWords | SoftmaxRegression, one post at a time.

    python bench/peers/river_peer.py score TRAIN.jsonl FILE.jsonl   # stdout: JSON lines
    python bench/peers/river_peer.py prequential LEARN.jsonl

River models are not saved without pickle, so ``score`` first learns from TRAIN
(untimed) and then times its scoring loop only: read, predict_proba_one, print.
"""

from __future__ import annotations

import json
import sys
import time

from river import feature_extraction, linear_model

from common import CLASSES, read_labelled, report


def pipeline():
    return feature_extraction.BagOfWords() | linear_model.SoftmaxRegression()


def score(train: str, data: str) -> None:
    model = pipeline()
    for text, label in zip(*read_labelled(train)):
        model.learn_one(text, label)
    write, posts = sys.stdout.write, 0
    start = time.perf_counter()
    with open(data, "rb") as handle:
        for line in handle:
            post = json.loads(line)
            proba = model.predict_proba_one(post["text"])
            scores = {name: float(proba.get(k, 0.0)) for k, name in enumerate(CLASSES)}
            best = max(scores, key=scores.get)
            write(json.dumps({"id": post["id"], "label": best, "scores": scores}) + "\n")
            posts += 1
    report(posts=posts, seconds=time.perf_counter() - start)


def prequential(data: str) -> None:
    texts, labels = read_labelled(data)
    model, hits = pipeline(), 0
    start = time.perf_counter()
    for text, label in zip(texts, labels):
        hits += model.predict_one(text) == label
        model.learn_one(text, label)
    seconds = time.perf_counter() - start
    report(posts=len(texts), seconds=seconds, accuracy=hits / len(texts))


if __name__ == "__main__":
    {"score": score, "prequential": prequential}[sys.argv[1]](*sys.argv[2:])
