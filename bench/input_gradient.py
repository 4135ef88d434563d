"""Mini-batch training speed: the first layer's gradient by scipy vs the dense pick.

    python bench/input_gradient.py [--posts 8000]

Runs one epoch of mini-batch SGD (``Network.sgd_step``, as ``train`` does) on the
synthetic stream of bench/perf.py, at the default model's and the seed's hidden sizes
and batches of 16 and 32, with ``network._sparse_input_gradient`` forced to scipy's
sparse product (``PICK_LIMIT = 0``) and with its dense-pick path; prints posts/s of
CPU time (best of two rounds, interleaved).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the banana-monitor CLI runs

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
import monitor.network as network_module  # noqa: E402
from common import CLASSES, read_labelled  # noqa: E402
from monitor.model import Model  # noqa: E402
from perf import generate  # noqa: E402


def epoch(words, texts, labels, hidden, batch_size, limit) -> float:
    network_module.PICK_LIMIT = limit
    rng = np.random.default_rng(7)
    model = Model.create(words, hidden, CLASSES, rng)
    X, y = model.vocabulary.bag_of_words(texts), np.asarray(labels)
    order = rng.permutation(len(y))
    start = time.process_time()
    for first in range(0, len(y), batch_size):
        rows = order[first : first + batch_size]
        model.network.sgd_step(X[rows], y[rows], 0.05)
    return len(y) / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=8000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="banana-input-gradient-"))
    paths = generate(work, 7, args.posts, 1, 1)
    words = paths["vocabulary"].read_text().split()
    texts, labels = read_labelled(str(paths["train"]))
    print(f"load average: {os.getloadavg()}")
    for hidden in ([64], [300, 200]):
        for batch_size in (16, 32):
            best: dict[str, float] = {}
            for _ in range(2):
                for name, limit in (("scipy", 0), ("dense pick", 1 << 16)):
                    rate = epoch(words, texts, labels, hidden, batch_size, limit)
                    best[name] = max(best.get(name, 0.0), rate)
            cells = "  ".join(f"{k} {v:>9,.0f}/s" for k, v in best.items())
            ratio = best["dense pick"] / best["scipy"]
            print(f"hidden {hidden!s:10} batch {batch_size:3}  {cells}  ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
