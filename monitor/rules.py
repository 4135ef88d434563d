"""Alert rules: which scored posts become alerts, with an explanation and a throttle.

A post alerts for class c when c is one of ``settings.alerts.classes``, its score for c
is at least the class's threshold (``alerts.thresholds[c]``, else ``alerts.threshold``),
and the post carries no training label (labelled posts are training data, not news).

Extra ``[alerts]`` keys (read from ``settings.raw``):

    explain = 5                          # words in each alert's explanation (0: none)
    throttle = { max = 20, window = 60 } # at most 20 alerts per class per 60 s window

With a throttle, the alerts past ``max`` in a window are held back and summed up in
one *digest* alert per class (post id ``digest:<class>:<window start>``), emitted by the
first call after that window ended (or by ``flush()``); with ``run --workers N`` every
worker throttles its own files (``digest_scope``).  Throttle counts live in memory:
a restart starts a fresh window (the daemon flushes the digests when it stops).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from monitor.alerts import Alert
from monitor.explain import explain_bags, explain_many
from monitor.posts import Post

DEFAULT_EXPLAIN = 5
DIGEST_SAMPLE = 20  # post ids listed in a digest's text


@dataclass
class _Window:
    """One class's alerts in the current throttle window."""

    start: float
    sent: int = 0
    held: list[Alert] = field(default_factory=list)


class AlertRules:
    """Thresholds per class, explanations, and an optional per-class throttle."""

    def __init__(self, settings, model, clock: Callable[[], float] = time.time):
        names = model.label_names
        alerts = settings.alerts
        raw = (getattr(settings, "raw", None) or {}).get("alerts", {}) or {}
        self.model = model
        self.classes = [c for c in alerts.classes if c in names]
        self.columns = [names.index(c) for c in self.classes]
        self.thresholds = np.array(
            [float(alerts.thresholds.get(c, alerts.threshold)) for c in self.classes]
        )
        self.explain_top = int(raw.get("explain", DEFAULT_EXPLAIN))
        throttle = raw.get("throttle") or {}
        self.throttle_max = int(throttle["max"]) if throttle.get("max") else None
        self.throttle_window = float(throttle.get("window", 60.0))
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        # run --workers N: each worker throttles its own files; its digests carry its
        # name, so two workers' digests of one window are two alerts, not one
        self.digest_scope = ""

    def alerts_for(
        self,
        posts: Sequence[Post],
        probabilities: np.ndarray,
        source: str,
        model_version: int,
        model=None,
        bags=None,
    ) -> list[Alert]:
        """probabilities: (n_posts, n_labels) → alerts (post order, then class order),
        digests of ended throttle windows first.  ``model``: the one that scored (for the
        explanations; default: the model given at construction).  ``bags``: the posts'
        bags of words (CSR (n_posts, n_vocab)) it scored, reused for the explanations
        (default: the texts are tokenized again)."""
        model = model or self.model
        digests = self.flush(model=model) if self.throttle_max else []
        if not self.classes or len(posts) == 0:
            return digests
        scores = probabilities[:, self.columns]  # (n_posts, n_classes)
        hits = scores >= self.thresholds
        unlabelled = np.fromiter((p.label is None for p in posts), bool, len(posts))
        hits &= unlabelled[:, None]
        rows, cols = np.nonzero(hits)  # (n_alerts,) each
        created_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        if self.throttle_max:
            rows, cols = self._admitted(posts, scores, rows, cols, source, model_version,
                                        created_at)
        labels = [self.classes[c] for c in cols.tolist()]
        explanations = self._explanations(posts, rows, labels, model, bags)
        hit_scores = scores[rows, cols].tolist()
        return digests + [
            Alert(post_id=posts[r].id, label=label, score=score, text=posts[r].text,
                  source=source, model_version=model_version, created_at=created_at,
                  explanation=explanation)
            for r, label, score, explanation in zip(rows.tolist(), labels, hit_scores,
                                                    explanations)
        ]

    def _explanations(self, posts, rows: np.ndarray, labels: list[str], model, bags):
        """One explanation per alert (``rows``: its post), [] each when explain = 0."""
        if len(rows) == 0 or self.explain_top <= 0:
            return [[] for _ in range(len(rows))]
        if bags is not None:
            return explain_bags(model, bags[rows], labels, self.explain_top)
        return explain_many(model, [posts[r].text for r in rows.tolist()], labels,
                            self.explain_top)

    def _admitted(self, posts, scores, rows, cols, source, model_version, created_at):
        """The (row, class) hits the throttle lets through; the rest are held as alerts."""
        keep = np.zeros(len(rows), dtype=bool)
        for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
            alert = Alert(post_id=posts[r].id, label=self.classes[c], score=float(scores[r, c]),
                          text=posts[r].text, source=source, model_version=model_version,
                          created_at=created_at)
            keep[i] = self._admit(alert)
        return rows[keep], cols[keep]

    # -------------------------------------------------------------- throttle

    def _window_start(self, now: float) -> float:
        return now - now % self.throttle_window

    def _admit(self, alert: Alert) -> bool:
        """Count the alert in its class's window; False when it is held for the digest."""
        start = self._window_start(self.clock())
        window = self._windows.get(alert.label)
        if window is None or window.start != start:
            window = self._windows[alert.label] = _Window(start)
        if window.sent < self.throttle_max:
            window.sent += 1
            return True
        window.held.append(alert)
        return False

    def flush(self, force: bool = False, model=None) -> list[Alert]:
        """Digest alerts for throttle windows that have ended (all of them if ``force``)."""
        current = self._window_start(self.clock())
        digests = []
        for label, window in list(self._windows.items()):
            if window.start != current or force:
                if window.held:
                    digests.append(self._digest(label, window, model or self.model))
                del self._windows[label]
        return digests

    def _digest(self, label: str, window: _Window, model) -> Alert:
        held = window.held
        top = max(held, key=lambda alert: alert.score)
        start = datetime.fromtimestamp(window.start, timezone.utc).isoformat(timespec="seconds")
        ids = ", ".join(alert.post_id for alert in held[:DIGEST_SAMPLE])
        more = f" and {len(held) - DIGEST_SAMPLE} more" if len(held) > DIGEST_SAMPLE else ""
        text = (f"{len(held)} more '{label}' posts above the threshold in the "
                f"{self.throttle_window:g} s window from {start} (throttled after "
                f"{self.throttle_max}): {ids}{more}.  Highest: {top.text}")
        explanation = (explain_many(model, [top.text], [label], self.explain_top)[0]
                       if self.explain_top > 0 else [])
        scope = f":{self.digest_scope}" if self.digest_scope else ""
        return Alert(post_id=f"digest:{label}:{start}{scope}", label=label, score=top.score,
                     text=text, source=top.source, model_version=top.model_version,
                     explanation=explanation)

