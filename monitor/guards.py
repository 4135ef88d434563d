"""Guards for online learning: reject a bad update, pause on a poisoned stream.

Update guard: before the single-example SGD step the learner copies what the step can
touch (the W^1 columns of the post's words, every later layer, every bias: one flat
vector); after it,
``update_problem`` names anything wrong — a NaN/inf loss or weight, a loss above
``max_loss``, or a step whose size ‖Δθ‖ is more than ``max_update_ratio`` times ‖θ‖
over those parameters (an absurd learning rate) — and ``restore`` puts the copies back,
bit for bit.

Drift guard: prequential accuracy (each post scored *before* it is learned) over the
last ``window`` labelled posts, compared with the accuracy over the posts before them;
and the live model's accuracy on those earlier posts now, compared with when they
arrived.  When either falls by more than ``drop``, the stream is probably poisoned
(flipped labels) or the model is being ruined, so the learner pauses.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.network import Network


@dataclass
class Snapshot:
    """Copies of the parameters one single-post step can change, in one flat vector.

    ``flat`` holds, in this order, the rows ``word_ids`` of W^1ᵀ ((n_words, n_1),
    row-major), then W^2..W^L and b^1..b^L, each raveled; ``size2`` is ‖flat‖².
    One vector makes the check after the step four numpy calls instead of four per
    array (each tiny call costs about a microsecond, the same as the step's own).
    """

    word_ids: np.ndarray
    flat: np.ndarray
    size2: float


def _pieces(network: Network, ids: np.ndarray) -> list[np.ndarray]:
    """The touched parameters, each as a 1-d array: W^1ᵀ[ids] (a copy), then views."""
    return [network.weights[0].T[ids].ravel(),
            *[W.ravel() for W in network.weights[1:]], *network.biases]


def snapshot(network: Network, word_ids: np.ndarray) -> Snapshot:
    ids = np.asarray(word_ids)
    flat = np.concatenate(_pieces(network, ids))
    return Snapshot(ids, flat, float(np.dot(flat, flat)))


def restore(network: Network, saved: Snapshot) -> None:
    """Undo a step: write the copies back in place, bit for bit."""
    W1T = network.weights[0].T
    n_1 = W1T.shape[1]
    offset = len(saved.word_ids) * n_1
    W1T[saved.word_ids] = saved.flat[:offset].reshape(-1, n_1)
    for array in [*network.weights[1:], *network.biases]:
        array[...] = saved.flat[offset : offset + array.size].reshape(array.shape)
        offset += array.size


def step_ratio(network: Network, saved: Snapshot) -> float:
    """‖θ_after − θ_before‖ / ‖θ_before‖ over the touched parameters (NaN/inf if any
    weight became NaN/inf)."""
    d = np.concatenate(_pieces(network, saved.word_ids))
    d -= saved.flat
    return math.sqrt(float(np.dot(d, d))) / max(math.sqrt(saved.size2), 1e-12)


def update_problem(
    network: Network, saved: Snapshot, loss: float, max_loss: float, max_ratio: float
) -> str | None:
    """Why the step just taken must be undone, or None when it is fine."""
    if not math.isfinite(loss):
        return f"loss is {loss} (NaN/inf)"
    ratio = step_ratio(network, saved)  # finite only if every touched weight is
    if not math.isfinite(ratio) and not np.isfinite(
            np.concatenate(_pieces(network, saved.word_ids))).all():
        return "NaN/inf in the weights after the update"
    if loss > max_loss:
        return f"loss {loss:.4g} exploded (above learning.max_loss = {max_loss:g})"
    if not math.isfinite(ratio) or ratio > max_ratio:
        return (
            f"update moved the weights by {ratio:.4g} x their size "
            f"(above learning.max_update_ratio = {max_ratio:g}); learning rate too large?"
        )
    return None


class DriftGuard:
    """Two signs of a poisoned stream, over the recent labelled posts.

    1. prequential: accuracy over the last ``window`` posts against the posts before
       them (up to ``reference_windows`` windows) falls by more than ``drop``;
    2. retention (checked every ``window // 2`` posts): the current model's accuracy on
       those earlier posts falls more than ``drop`` below what it was when they arrived.
       A consistent poison (every banana labelled cookie) is learned within a few posts,
       so (1) recovers quickly; (2) still sees the model forgetting what it knew.
    """

    def __init__(self, window: int, drop: float, reference_windows: int = 3):
        self.window = max(int(window), 1)
        self.drop = float(drop)
        self.every = max(self.window // 2, 1)
        self.entries: deque[tuple[Any, str, bool]] = deque(
            maxlen=self.window * (1 + reference_windows))
        self.correct = self.recent_correct = 0  # running counts (see _push)
        self.since_check = 0

    def load(self, entries: Iterable[tuple[Any, str, bool]]) -> None:
        """Start from these (post, label, correct) outcomes, oldest first (the journal).

        ``post`` is whatever ``predict`` takes (the learner: the post's text)."""
        self.entries.clear()
        self.correct = self.recent_correct = 0
        for post, label, correct in entries:
            self._push((post, label, bool(correct)))
        self.since_check = 0

    def _push(self, entry: tuple[Any, str, bool]) -> None:
        """Append, keeping running counts of correct posts: all kept / the last window."""
        if len(self.entries) == self.entries.maxlen:
            self.correct -= self.entries[0][2]
        self.entries.append(entry)
        self.correct += entry[2]
        self.recent_correct += entry[2]
        if len(self.entries) > self.window:
            self.recent_correct -= self.entries[-self.window - 1][2]

    def accuracies(self) -> tuple[float, float] | None:
        """(recent, reference) prequential accuracy, or None until two windows."""
        if len(self.entries) < 2 * self.window:
            return None
        reference = (self.correct - self.recent_correct) / (len(self.entries) - self.window)
        return self.recent_correct / self.window, reference

    def add(self, post: Any, label: str, correct: bool,
            predict: Callable[[list[Any]], list[str]]) -> str | None:
        """Record one prequential outcome; a reason string when the guard fires.

        ``predict``: posts (as added) → the live model's labels (the retention check).
        """
        self._push((post, label, bool(correct)))
        pair = self.accuracies()
        if pair is None:
            return None
        recent, reference = pair
        if recent < reference - self.drop:
            return (
                f"prequential accuracy over the last {self.window} labelled posts fell to "
                f"{recent:.3f} from {reference:.3f} (learning.drift_drop = {self.drop:g})"
            )
        self.since_check += 1
        if self.since_check >= self.every:
            self.since_check = 0
            return self._retention(predict)
        return None

    def _retention(self, predict: Callable[[list[Any]], list[str]]) -> str | None:
        earlier = list(self.entries)[: -self.window]
        then = float(np.mean([c for _, _, c in earlier]))
        predicted = predict([post for post, _, _ in earlier])
        now = float(np.mean([p == label for p, (_, label, _) in zip(predicted, earlier)]))
        if now < then - self.drop:
            return (
                f"after the last {self.window} updates the model gets {now:.3f} of the "
                f"{len(earlier)} labelled posts before them right, against {then:.3f} when "
                f"they arrived (learning.drift_drop = {self.drop:g})"
            )
        return None
