"""Guards for online learning: reject a bad update, pause on a poisoned stream.

Update guard: before the single-example SGD step the learner copies what the step can
touch (the W^1 columns of the post's words, every later layer, every bias); after it,
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

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from monitor.network import Network


@dataclass
class Snapshot:
    """Copies of the parameters one single-post step can change.

    ``first_rows``: (n_words, n_1), the rows ``word_ids`` of W^1ᵀ; ``weights``: W^2..W^L;
    ``biases``: b^1..b^L.
    """

    word_ids: np.ndarray
    first_rows: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]


def snapshot(network: Network, word_ids: np.ndarray) -> Snapshot:
    ids = np.asarray(word_ids, dtype=np.int64)
    return Snapshot(
        ids,
        network.weights[0].T[ids].copy(),
        [W.copy() for W in network.weights[1:]],
        [b.copy() for b in network.biases],
    )


def restore(network: Network, saved: Snapshot) -> None:
    """Undo a step: write the copies back in place."""
    network.weights[0].T[saved.word_ids] = saved.first_rows
    for W, old in zip(network.weights[1:], saved.weights):
        W[...] = old
    for b, old in zip(network.biases, saved.biases):
        b[...] = old


def _touched(network: Network, ids: np.ndarray) -> list[np.ndarray]:
    return [network.weights[0].T[ids], *network.weights[1:], *network.biases]


def step_ratio(network: Network, saved: Snapshot) -> float:
    """‖θ_after − θ_before‖ / ‖θ_before‖ over the touched parameters."""
    before = [saved.first_rows, *saved.weights, *saved.biases]
    after = _touched(network, saved.word_ids)
    change = size = 0.0
    for a, b in zip(after, before):
        d = (a - b).ravel()
        change += float(np.dot(d, d))
        size += float(np.dot(b.ravel(), b.ravel()))
    return float(np.sqrt(change) / max(np.sqrt(size), 1e-12))


def update_problem(
    network: Network, saved: Snapshot, loss: float, max_loss: float, max_ratio: float
) -> str | None:
    """Why the step just taken must be undone, or None when it is fine."""
    if not np.isfinite(loss):
        return f"loss is {loss} (NaN/inf)"
    if not all(np.isfinite(p).all() for p in _touched(network, saved.word_ids)):
        return "NaN/inf in the weights after the update"
    if loss > max_loss:
        return f"loss {loss:.4g} exploded (above learning.max_loss = {max_loss:g})"
    ratio = step_ratio(network, saved)
    if not np.isfinite(ratio) or ratio > max_ratio:
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
        self.entries: deque[tuple[list[str], str, bool]] = deque(
            maxlen=self.window * (1 + reference_windows))
        self.correct = self.recent_correct = 0  # running counts (see _push)
        self.since_check = 0

    def load(self, entries: Iterable[tuple[list[str], str, bool]]) -> None:
        """Start from these (tokens, label, correct) outcomes, oldest first (the journal)."""
        self.entries.clear()
        self.correct = self.recent_correct = 0
        for tokens, label, correct in entries:
            self._push((tokens, label, bool(correct)))
        self.since_check = 0

    def _push(self, entry: tuple[list[str], str, bool]) -> None:
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

    def add(self, tokens: list[str], label: str, correct: bool,
            predict: Callable[[list[list[str]]], list[str]]) -> str | None:
        """Record one prequential outcome; a reason string when the guard fires.

        ``predict``: tokenized posts → the live model's labels (the retention check).
        """
        self._push((tokens, label, bool(correct)))
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

    def _retention(self, predict: Callable[[list[list[str]]], list[str]]) -> str | None:
        earlier = list(self.entries)[: -self.window]
        then = float(np.mean([c for _, _, c in earlier]))
        predicted = predict([tokens for tokens, _, _ in earlier])
        now = float(np.mean([p == label for p, (_, label, _) in zip(predicted, earlier)]))
        if now < then - self.drop:
            return (
                f"after the last {self.window} updates the model gets {now:.3f} of the "
                f"{len(earlier)} labelled posts before them right, against {then:.3f} when "
                f"they arrived (learning.drift_drop = {self.drop:g})"
            )
        return None
