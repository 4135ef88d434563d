"""What every bench script shares: reading the stream and reporting its timing."""

from __future__ import annotations

import json
import os

CLASSES = ["banana", "cookie", "other"]


def read_labelled(path: str) -> tuple[list[str], list[int]]:
    """A labelled JSON Lines file → (texts, class indices), read before any timing."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            post = json.loads(line)
            texts.append(post["text"])
            labels.append(CLASSES.index(post["label"]))
    return texts, labels


def report(**figures) -> None:
    """Hand posts / seconds / accuracy to bench/perf.py (the file it names in the env)."""
    path = os.environ.get("BENCH_REPORT")
    if path:
        with open(path, "w") as handle:
            json.dump(figures, handle)
    else:
        print(json.dumps(figures))
