"""Explanation cost: alerts explained per second next to posts scored per second.

    python bench/explain.py [--model PATH] [--posts 5000] [--top 5]

Uses the test split of the shipped corpus; every post is explained for its best label.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from monitor.explain import explain_many
from monitor.model import Model, resolve_model_path

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "banana-cookie" / "test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    model = Model.load(resolve_model_path(args.model))
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    texts = (texts * (args.posts // len(texts) + 1))[:args.posts]
    started = time.perf_counter()
    probabilities = model.probabilities(texts)
    scored = time.perf_counter() - started
    labels = [model.label_names[i] for i in probabilities.argmax(axis=1)]
    started = time.perf_counter()
    explained = explain_many(model, texts, labels, args.top)
    explaining = time.perf_counter() - started
    words = sum(len(e) for e in explained) / len(explained)
    print(f"model {model.network.sizes}: scoring {len(texts) / scored:,.0f} posts/s, "
          f"explaining {len(texts) / explaining:,.0f} alerts/s "
          f"({1e6 * explaining / len(texts):.0f} µs/alert, {words:.1f} words each)")


if __name__ == "__main__":
    main()
