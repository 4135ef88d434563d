"""CPU time of the hot paths, for before/after comparisons of one code change.

    python bench/perf_paths.py DATA_DIR MODEL.npz

DATA_DIR is a ``bench/perf.py --keep DIR`` directory (score.jsonl, learn.jsonl).
It times, in this process and with ``time.process_time`` (CPU seconds, which a
loaded shared machine disturbs less than wall time), best of a few repeats:
tokenize and bag_of_words over the scoring posts, the batched forward pass, the JSON
lines ``score`` prints, and one-post-at-a-time prequential steps.  Run it against an
older checkout with ``PYTHONPATH=/tmp/old python bench/perf_paths.py ...`` (e.g.
``git archive 3c0a48b monitor | tar -x -C /tmp/old``) to see what a change bought.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import monitor
from monitor.model import Model
from monitor.text import tokenize

PREQUENTIAL_POSTS = 2000


def best_of(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return min(times)


def prequential_learner(model: Model, posts: list[dict]) -> None:
    """The composed one-post path: score, then the single-example SGD step on a bag
    (what monitor/learn.py did before the fused step; public API in every tree)."""
    for post in posts:
        model.probabilities([post["text"]])
        bag = model.vocabulary.bag_of_words([post["text"]])
        model.network.sgd_step(bag, [model.label_index(post["label"])], 0.01)


def prequential_fused(model: Model, posts: list[dict]) -> None:
    for post in posts:
        model.learn_one(post["text"], post["label"], 0.01)


def output_lines(model: Model, probabilities) -> list[str]:
    """The lines ``score`` prints: its formatter if it has one, else json.dumps."""
    try:
        from monitor.commands.score import _plain_lines
    except ImportError:
        return [
            json.dumps({"id": str(i), **line}, ensure_ascii=False)
            for i, line in enumerate(model.results(probabilities))
        ]
    from monitor.posts import Post

    posts = [Post(str(i), "") for i in range(len(probabilities))]
    return _plain_lines(model.label_names, posts, probabilities)


def main(data: str, model_path: str) -> None:
    directory = Path(data)
    texts = [json.loads(line)["text"] for line in open(directory / "score.jsonl")]
    posts = [json.loads(line) for line in open(directory / "learn.jsonl")][:PREQUENTIAL_POSTS]
    model = Model.load(model_path)
    bags = model.vocabulary.bag_of_words(texts)
    probabilities = model.probabilities_of(bags)
    figures = {
        "model load": best_of(lambda: Model.load(model_path), 3),
        "tokenize": best_of(lambda: [tokenize(t) for t in texts]),
        "bag_of_words": best_of(lambda: model.vocabulary.bag_of_words(texts)),
        "forward": best_of(lambda: model.probabilities_of(bags)),
        "score output lines": best_of(lambda: output_lines(model, probabilities)),
        "prequential learner": best_of(lambda: prequential_learner(model, posts), 3),
    }
    if hasattr(model, "learn_one"):
        figures["prequential fused"] = best_of(lambda: prequential_fused(model, posts), 3)
    print(f"monitor from {Path(monitor.__file__).parent}")
    for name, seconds in figures.items():
        n = len(posts) if name.startswith("prequential") else len(texts)
        per_post = "" if name == "model load" else f"{seconds / n * 1e6:8.1f} µs/post"
        print(f"{name:22} {seconds:7.3f} s CPU {per_post}")


if __name__ == "__main__":
    main(*sys.argv[1:])
