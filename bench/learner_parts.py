"""Where the online learner's time per labelled post goes.

    python bench/learner_parts.py DATA_DIR MODEL.npz [--file-posts 100]

DATA_DIR is a ``bench/perf.py --keep DIR`` directory (its ``learn.jsonl``); MODEL.npz
one of the models it prepared there (``ours-h64.npz``).  Runs the daemon's real
``OnlineLearner`` (ledger journal, update and drift guards, one transaction per file
of ``--file-posts`` posts) once over the stream, as ``perf.py``'s learner row does,
with a wall-clock timer around each part, and prints µs per post: the tokenizer, the
compiled step, the drift guard's re-check, the journal, the rest.  The timers cost a
little themselves (≈ 0.3 µs a call), so the total is a bit above perf.py's figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the banana-monitor CLI runs

sys.path.insert(0, str(Path(__file__).with_name("peers")))
from common import CLASSES, read_labelled  # noqa: E402

from monitor import guards, learn, network, text  # noqa: E402
from monitor.ledger import Ledger  # noqa: E402
from monitor.model import Model  # noqa: E402
from monitor.posts import Post  # noqa: E402

PARTS = [  # (class, method, what it is); nested parts are listed after their parent
    (text.Vocabulary, "word_ids_batch", "tokenize (a file's posts in one pass)"),
    (network.Network, "learn_ids", "compiled step (predict + learn + update guard)"),
    (learn.OnlineLearner, "_record_score", "prequential record"),
    (learn.OnlineLearner, "_journal", "journal row (tuple)"),
    (learn.OnlineLearner, "_flush", "journal insert (SQLite)"),
    (learn.OnlineLearner, "_watch", "pause checks (drift guard included)"),
    (guards.DriftGuard, "_retention", "  of which the drift re-check"),
]


def timed(spent: dict, cls, name: str, label: str) -> None:
    function = getattr(cls, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    setattr(cls, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--file-posts", type=int, default=100)
    args = parser.parse_args()

    spent: dict[str, float] = defaultdict(float)
    for cls, name, label in PARTS:
        timed(spent, cls, name, label)
    model = Model.load(args.model)
    model.network.warm_kernels()
    texts, labels = read_labelled(str(args.data / "learn.jsonl"))
    posts = [Post(f"p{i}", t, CLASSES[k]) for i, (t, k) in enumerate(zip(texts, labels))]
    state = Path(tempfile.mkdtemp(prefix="learner-parts-"))
    try:
        settings = SimpleNamespace(
            state=state, learning=SimpleNamespace(enabled=True, learning_rate=0.1),
            raw={"learning": {"checkpoint_every": 10**9}})
        ledger = Ledger(state)
        learner = learn.OnlineLearner(model, ledger, settings)
        learner.resume()
        spent.clear()
        start = time.perf_counter()
        for first in range(0, len(posts), args.file_posts):
            with ledger.transaction() as conn:
                learner.observe(conn, posts[first:first + args.file_posts])
        total = time.perf_counter() - start
        ledger.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)

    per_post = 1e6 / len(posts)
    print(f"{len(posts):,} labelled posts, {learner.updates:,} updates, "
          f"{len(posts) / total:,.0f} posts/s")
    top_level = 0.0
    for _, _, label in PARTS:
        print(f"  {label:48} {spent[label] * per_post:6.1f} µs")
        if not label.startswith(" "):
            top_level += spent[label]
    print(f"  {'the rest (observe loop, entries, commits)':48} "
          f"{(total - top_level) * per_post:6.1f} µs")
    print(f"  {'total':48} {total * per_post:6.1f} µs")


if __name__ == "__main__":
    main()
