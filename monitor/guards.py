"""Guards for online learning: reject a bad update, pause on a poisoned stream.

Update guard: the single-example SGD step (``Network.learn_counts_guarded``: the
compiled kernel, monitor/kernels.py) computes the whole step before any weight moves;
``update_code`` then judges it — a NaN/inf loss or weight, a loss above ``max_loss``, or
a step whose size ‖Δθ‖ is more than ``max_update_ratio`` times ‖θ‖ over the parameters
it touches (an absurd learning rate) — and a rejected step is not taken: the weights
stay bit for bit.  ``update_problem`` words what it found.

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
from itertools import islice
from operator import eq
from typing import Any


# what the update guard finds in a step (FINE: the step stands)
FINE, LOSS_NOT_FINITE, WEIGHTS_NOT_FINITE, LOSS_TOO_LARGE, STEP_TOO_LARGE = range(5)


def update_code(loss: float, ratio: float, weights_finite: bool, max_loss: float,
                max_ratio: float) -> int:
    """The update guard's verdict on a step: the first problem found, or FINE.

    ``ratio`` is ‖Δθ‖/‖θ‖ (NaN/inf when a Δ is); ``weights_finite``: every weight the
    step touches is finite after it.  Plain arithmetic, so that monitor.kernels compiles
    this very function into the one-post kernel.
    """
    if not math.isfinite(loss):
        return LOSS_NOT_FINITE
    if not weights_finite:
        return WEIGHTS_NOT_FINITE
    if loss > max_loss:
        return LOSS_TOO_LARGE
    if not math.isfinite(ratio) or ratio > max_ratio:
        return STEP_TOO_LARGE
    return FINE


def update_problem(code: int, loss: float, ratio: float, max_loss: float,
                   max_ratio: float) -> str | None:
    """Why the guard refused the step (its ``code``), or None when the step stands."""
    if code == LOSS_NOT_FINITE:
        return f"loss is {loss} (NaN/inf)"
    if code == WEIGHTS_NOT_FINITE:
        return "NaN/inf in the weights after the update"
    if code == LOSS_TOO_LARGE:
        return f"loss {loss:.4g} exploded (above learning.max_loss = {max_loss:g})"
    if code == STEP_TOO_LARGE:
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
        earlier = list(islice(self.entries, len(self.entries) - self.window))
        then = (self.correct - self.recent_correct) / len(earlier)  # the running counts
        predicted = predict([post for post, _, _ in earlier])
        now = sum(map(eq, predicted, [label for _, label, _ in earlier])) / len(earlier)
        if now < then - self.drop:
            return (
                f"after the last {self.window} updates the model gets {now:.3f} of the "
                f"{len(earlier)} labelled posts before them right, against {then:.3f} when "
                f"they arrived (learning.drift_drop = {self.drop:g})"
            )
        return None
