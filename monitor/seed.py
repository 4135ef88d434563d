"""The hand-sized networks of exercise sheet 6, exactly as printed.

Exercise 2.3 (binary, sigmoid) and Exercise 3.2 (banana / cookie / other, softmax) share
W1, b1, W2, b2; only the output layer differs.  ``models/seed-*.npz`` are these, saved
by ``python -m monitor.seed``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from monitor.model import Model
from monitor.network import Network
from monitor.text import Vocabulary

VOCABULARY = ["chocolate", "sweet", "banana", "cookie"]
TEXTS = [
    "A banana a day keeps the doctor away.",
    "I would rather have a sweet chocolate cookie now.",
    "Banana! Banana! Banana!",
]

W1 = np.array([[0, 1, -2, 1], [2, 3, 0, -1], [1, 0, -3, 0]], dtype=float)  # (3, 4)
b1 = np.zeros(3)
W2 = np.array([[0, -2, 1], [2, 0, -1]], dtype=float)  # (2, 3)
b2 = np.ones(2)
W3_BINARY = np.array([[-1, 1]], dtype=float)  # (1, 2)
b3_BINARY = np.ones(1)
W3_MULTICLASS = np.array([[1, 1], [-1, 2], [0, -1]], dtype=float)  # (3, 2)
b3_MULTICLASS = np.zeros(3)

META = {"created_at": "2025-11-21T00:00:00+00:00", "source": "exercise sheet 6"}


def binary_model() -> Model:
    """Exercise 2.3: 4 → 3 → 2 → 1, ReLU, ReLU, sigmoid; the class is banana."""
    network = Network([W1, W2, W3_BINARY], [b1, b2, b3_BINARY], "sigmoid")
    return Model(network, Vocabulary(VOCABULARY), ["banana"], {**META, "name": "seed-binary"})


def multiclass_model() -> Model:
    """Exercise 3.2: 4 → 3 → 2 → 3, ReLU, ReLU, softmax over banana, cookie, other."""
    network = Network([W1, W2, W3_MULTICLASS], [b1, b2, b3_MULTICLASS], "softmax")
    classes = ["banana", "cookie", "other"]
    return Model(
        network, Vocabulary(VOCABULARY), classes, {**META, "name": "seed-multiclass"}
    )


def write_models(directory: Path) -> None:
    binary_model().save(directory / "seed-binary.npz")
    multiclass_model().save(directory / "seed-multiclass.npz")


if __name__ == "__main__":
    write_models(Path(sys.argv[1] if len(sys.argv) > 1 else "models"))
