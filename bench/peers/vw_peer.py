"""Vowpal Wabbit in the bench, in-process (``--oaa 3``), one post at a time.

    python bench/peers/vw_peer.py prequential LEARN.jsonl

Each post becomes a VW line ``LABEL | words`` (lowercased, VW's ``|`` and ``:``
removed), parsed once, predicted, then learned: its prequential step.
"""

from __future__ import annotations

import sys
import time

from vowpalwabbit import Workspace

from common import read_labelled, report

SPECIAL = str.maketrans({"|": " ", ":": " "})


def prequential(data: str) -> None:
    texts, labels = read_labelled(data)
    vw, hits = Workspace("--oaa 3 --quiet"), 0
    start = time.perf_counter()
    for text, label in zip(texts, labels):
        example = vw.parse(f"{label + 1} | {text.lower().translate(SPECIAL)}")
        hits += vw.predict(example) == label + 1
        vw.learn(example)
        vw.finish_example(example)
    seconds = time.perf_counter() - start
    report(posts=len(texts), seconds=seconds, accuracy=hits / len(texts))


if __name__ == "__main__":
    {"prequential": prequential}[sys.argv[1]](*sys.argv[2:])
