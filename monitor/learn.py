"""Online learning in the daemon: prequential evaluation, one SGD step per labelled post.

For every labelled post, in order, inside the daemon's ledger transaction:

1. an unknown label is quarantined (or, with ``learning.add_classes``, becomes a new
   output of a softmax model);
2. the post is scored first (prequential evaluation: tested before it is learned);
3. its new words may join the vocabulary (``grow_vocabulary``, the policy ``train``
   shares), then the one SGD step — the very step ``train --batch-size 1 --no-shuffle``
   takes (``monitor.train.sgd_update``), so both end with identical weights.  Both run
   the compiled one-post kernel (monitor/kernels.py, via ``Network.learn_ids``); the
   learner calls it directly on the post's word ids (a file's posts tokenized in one
   pass), so that one tokenization and one forward pass give the prequential score
   and the step (a post that may grow the vocabulary is scored first, then stepped
   with its new words);
4. the guards may refuse the step (it is not taken: the weights stay) or pause learning;
5. one row goes into the journal ``learn_journal``: text, label, learning rate, words
   or class added, outcome, prediction, loss.  It commits with the posts being marked
   done, so the journal is the exactly-once log of what the live model has learned.

Every ``checkpoint_every`` updates and at shutdown the live model becomes a version
(monitor/versions.py) recording the last journal ``seq`` it contains.  ``resume``
loads the latest version and re-applies the journal rows after it: after ``kill -9``
nothing is learned twice and nothing is lost.  A rollback (``banana-monitor model
rollback``) is a new version; the daemon notices it in ``poll``/``observe`` and swaps
``learner.model`` without a restart.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from monitor.guards import DriftGuard, update_problem
from monitor.model import Model
from monitor.posts import Post
from monitor.text import tokenize
from monitor.versions import (
    Version,
    VersionError,
    VersionStore,
    get_state,
    latest_version,
    set_state,
)
from monitor.versions import create_schema as create_version_schema

log = structlog.get_logger("monitor.learn")

NEW_CLASS_MARGIN = 4.0  # a new class's bias starts this far below the lowest bias
RESET_REASONS = ("initial", "new-base", "rollback")  # the drift guard starts afresh


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class LearningConfig:
    """``[learning]`` keys (README "Online learning" documents each)."""

    enabled: bool = True
    learning_rate: float = 0.1
    checkpoint_every: int = 100
    keep_versions: int = 20
    vocabulary_cap: int = 0
    add_classes: bool = False
    max_loss: float = 1000.0
    max_update_ratio: float = 5.0
    max_rejections: int = 20
    drift_guard: bool = True
    drift_window: int = 100
    drift_drop: float = 0.3

    @classmethod
    def from_settings(cls, settings: Any) -> LearningConfig:
        table = dict((getattr(settings, "raw", None) or {}).get("learning") or {})
        learning = getattr(settings, "learning", None)
        if learning is not None:
            table["enabled"] = learning.enabled
            table["learning_rate"] = learning.learning_rate
        known = {name: table[name] for name in cls.__dataclass_fields__ if name in table}
        config = cls(**known)
        config.check()
        return config

    def check(self) -> None:
        for name in ("checkpoint_every", "keep_versions", "max_rejections", "drift_window"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"learning.{name} must be at least 1")
        if int(self.vocabulary_cap) < 0:
            raise ValueError("learning.vocabulary_cap must be 0 (no growth) or more")


# ---------------------------------------------------------------- shared policies


def grow_vocabulary(model: Model, text: str, cap: int | None) -> list[str]:
    """The vocabulary-growth policy, shared by the learner and ``train`` from a model.

    The post's tokens that are not in the vocabulary join it, in order of first
    appearance, while it has fewer than ``cap`` words (``cap`` 0/None: no growth).
    Their W^1 columns start at zero, so no existing score changes.  Returns the words
    added.
    """
    room = int(cap or 0) - len(model.vocabulary)
    if room <= 0:
        return []
    vocabulary = model.vocabulary
    new = list(dict.fromkeys(t for t in tokenize(text) if t not in vocabulary))[:room]
    add_words(model, new)
    return new


def add_words(model: Model, words: list[str]) -> None:
    """Append words to the vocabulary with zero W^1 columns: (n_1, n_0) → (n_1, n_0 + k)."""
    if not words:
        return
    W1 = model.network.weights[0]
    grown = np.zeros((W1.shape[0], W1.shape[1] + len(words)), order="F")
    grown[:, : W1.shape[1]] = W1
    model.network.weights[0] = grown
    model.vocabulary.extend(words)


def can_add_class(model: Model) -> bool:
    return model.network.output == "softmax"


def add_class(model: Model, name: str) -> None:
    """A new softmax output: zero weights, bias ``NEW_CLASS_MARGIN`` below the lowest."""
    network = model.network
    W, b = network.weights[-1], network.biases[-1]
    network.weights[-1] = np.vstack([W, np.zeros((1, W.shape[1]))])
    network.biases[-1] = np.append(b, b.min() - NEW_CLASS_MARGIN)
    model.classes.append(name)


def fingerprint(model: Model) -> str:
    """sha256 of the weights, vocabulary, classes and output (not the metadata)."""
    digest = hashlib.sha256()
    for array in model.network.weights + model.network.biases:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps([model.vocabulary.words, model.classes,
                              model.network.output]).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------- the journal


def create_schema(conn: sqlite3.Connection) -> None:
    """The journal plus the version tables (idempotent); registered with the ledger."""
    create_version_schema(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS learn_journal ("
        " seq INTEGER PRIMARY KEY,"
        " post_id TEXT NOT NULL,"
        " text TEXT NOT NULL,"
        " label TEXT NOT NULL,"
        " outcome TEXT NOT NULL,"  # learned / rejected / paused / skipped / quarantined
        " reason TEXT,"
        " predicted TEXT,"
        " correct INTEGER,"
        " loss REAL,"
        " learning_rate REAL,"
        " new_words TEXT,"
        " new_class TEXT,"
        " version INTEGER,"
        " created_at TEXT NOT NULL)"
    )


def journal_max_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM learn_journal").fetchone()[0])


def learned_count(conn: sqlite3.Connection, up_to_seq: int | None = None) -> int:
    query = "SELECT COUNT(*) FROM learn_journal WHERE outcome = 'learned'"
    if up_to_seq is None:
        return int(conn.execute(query).fetchone()[0])
    return int(conn.execute(query + " AND seq <= ?", (up_to_seq,)).fetchone()[0])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- the learner


class OnlineLearner:
    """The daemon's learner; ``model`` is the live Model the daemon scores with."""

    def __init__(self, model: Model, ledger: Any, settings: Any,
                 config: LearningConfig | None = None):
        from monitor.train import sgd_update  # the one SGD step (monitor/train.py)

        self._sgd_update = sgd_update
        self.model = model
        self.base_model = model
        self.ledger = ledger
        self.config = config or LearningConfig.from_settings(settings)
        self.store = VersionStore(settings.state)
        self.version: int | None = None
        self.head: int | None = None
        self.applied_seq = 0
        self.updates = 0
        self.dirty = False
        self.since_checkpoint = 0
        self.rejections = 0
        self.paused: dict[str, Any] | None = None
        self.checkpoint_reason: str | None = None
        self._pending: list[tuple] = []  # journal rows of the observe call under way
        self._stamp = _now()
        self.drift = DriftGuard(self.config.drift_window, self.config.drift_drop)
        # the kernel's float arguments, converted once
        self._rate = float(self.config.learning_rate)
        self._max_loss = float(self.config.max_loss)
        self._max_ratio = float(self.config.max_update_ratio)
        self._journal_rate = _finite_or_none(self._rate)
        self._base_fingerprint = fingerprint(model)
        ledger.register_schema(create_schema)

    # -------------------------------------------------------------- start-up

    def resume(self) -> int:
        """Load the latest version and re-apply the journal after it; returns how many
        journal rows were replayed."""
        with self.ledger.transaction() as conn:  # holds the lock: no save is under way
            create_schema(conn)
            self.store.remove_partial_files()
            return self._load(conn)

    def _load(self, conn: sqlite3.Connection) -> int:
        version, model = self._current_version(conn)
        rows = conn.execute(
            "SELECT seq, text, label, outcome, learning_rate, new_words, new_class"
            " FROM learn_journal WHERE seq > ? ORDER BY seq",
            (version.journal_seq,),
        ).fetchall()
        for _seq, text, label, outcome, rate, new_words, new_class in rows:
            self._replay(model, text, label, outcome, rate, new_words, new_class)
        self.model = model
        self.version = version.version
        self.head = self.store.latest(conn).version  # newer than version if its file is lost
        self.applied_seq = rows[-1][0] if rows else version.journal_seq
        self.updates = learned_count(conn)
        self.since_checkpoint = sum(1 for row in rows if row[3] == "learned")
        self.dirty = any(row[3] == "learned" or row[5] or row[6] for row in rows)
        self.paused = get_state(conn, "paused")
        self.checkpoint_reason = None
        self._load_guards(conn)
        log.info("learning_resumed", version=version.version, replayed=len(rows),
                 journal_seq=self.applied_seq, updates=self.updates,
                 paused=bool(self.paused))
        return len(rows)

    def _current_version(self, conn: sqlite3.Connection) -> tuple[Version, Model]:
        """The latest version and its model; a new or changed base model becomes one."""
        latest = self.store.latest(conn)
        known = get_state(conn, "base_fingerprint")
        if latest is not None and known == self._base_fingerprint:
            return self._newest_loadable(conn, latest)
        model = self.base_model
        reason = "initial" if latest is None else "new-base"
        version = self.store.save(
            conn, model, journal_seq=journal_max_seq(conn), reason=reason,
            parent=latest.version if latest else None, updates=learned_count(conn),
            metrics={}, fingerprint=self._base_fingerprint,
        )
        set_state(conn, "base_fingerprint", self._base_fingerprint)
        set_state(conn, "paused", None)
        if latest is not None:
            log.warning("learning_new_base_model", version=version.version,
                        previous=latest.version)
        return version, Model.load(self.store.path_of(version.version))

    def _newest_loadable(self, conn: sqlite3.Connection,
                         latest: Version) -> tuple[Version, Model]:
        """The latest version's model; if its file is gone or damaged, the newest
        readable one since the last reset (initial / new-base / rollback) — the journal
        after it gives the same live model."""
        for version in reversed(self.store.history(conn)):
            try:
                return version, self.store.load(version)
            except VersionError as error:
                log.error("model_version_unreadable", version=version.version,
                          error=str(error))
                if version.reason in RESET_REASONS:
                    break
        raise VersionError(
            f"no readable model version since version {version.version}; "
            f"roll back with `banana-monitor model rollback VERSION` (see model history)")

    def _replay(self, model, text, label, outcome, rate, new_words, new_class) -> None:
        if new_class:
            add_class(model, new_class)
        if new_words:
            add_words(model, json.loads(new_words))
        if outcome == "learned":
            with np.errstate(all="ignore"):
                self._sgd_update(model, text, label, rate)

    def _load_guards(self, conn: sqlite3.Connection) -> None:
        """Drift window and rejection streak from the journal since the last reset."""
        row = conn.execute(
            "SELECT COALESCE(MAX(journal_seq), 0) FROM model_versions WHERE reason IN"
            f" ({','.join('?' * len(RESET_REASONS))})",
            RESET_REASONS,
        ).fetchone()
        start = int(row[0])
        recent = conn.execute(
            "SELECT text, label, correct FROM learn_journal WHERE seq > ?"
            " AND correct IS NOT NULL ORDER BY seq DESC LIMIT ?",
            (start, self.drift.entries.maxlen),
        ).fetchall()
        self.drift.load(((text, None, -1), label, c) for text, label, c in reversed(recent))
        tail = conn.execute(
            "SELECT outcome FROM learn_journal WHERE seq > ? AND outcome IN"
            " ('learned', 'rejected') ORDER BY seq DESC LIMIT ?",
            (start, self.config.max_rejections),
        ).fetchall()
        self.rejections = 0
        for (outcome,) in tail:
            if outcome != "rejected":
                break
            self.rejections += 1

    # -------------------------------------------------------------- the daemon's calls

    def poll(self) -> bool:
        """Adopt a rollback (or recover from a rolled-back transaction); True if swapped.

        Cheap: two indexed reads.  The daemon calls it before scoring each batch.
        """
        with self.ledger.transaction() as conn:
            return self._sync(conn)

    def _sync(self, conn: sqlite3.Connection) -> bool:
        latest = self.store.latest(conn)
        if latest is None:
            create_schema(conn)
            self._load(conn)
            return True
        if latest.version == self.head and journal_max_seq(conn) == self.applied_seq:
            return False
        if latest.version != self.head:
            log.warning("model_version_adopted", version=latest.version,
                        previous=self.version, reason=latest.reason)
        self._load(conn)
        return True

    def observe(self, conn: sqlite3.Connection, posts: list[Post]) -> list[dict[str, Any]]:
        """Labelled posts, in order: score, learn, journal (inside the caller's txn).

        Returns one dict per labelled post: post_id, label, outcome (learned, rejected,
        paused, skipped, quarantined), reason, predicted, correct, loss, seq.  The
        journal rows are written together at the end (one ``executemany``).
        """
        labelled = [post for post in posts if post.label is not None]
        if not labelled:
            return []
        self._sync(conn)
        self._pending: list[tuple] = []
        self._stamp = _now()
        # the posts' word ids in one pass, unless the vocabulary may grow on the way
        raws: list[np.ndarray | None] = [None] * len(labelled)
        if self.config.vocabulary_cap <= len(self.model.vocabulary):
            flat, indptr = self.model.vocabulary.word_ids_batch([p.text for p in labelled])
            bounds = indptr.tolist()
            raws = [flat[a:b] for a, b in zip(bounds, bounds[1:])]
        with np.errstate(all="ignore"):  # NaN/inf are the guards' business, not warnings
            entries = [self._observe_one(conn, post, raw) for post, raw in zip(labelled, raws)]
        self._flush(conn)
        return entries

    def _observe_one(self, conn: sqlite3.Connection, post: Post,
                     raw: np.ndarray | None) -> dict[str, Any]:
        """One labelled post; ``raw``: its word ids (``Vocabulary.word_ids``) when the
        caller has them."""
        entry: dict[str, Any] = {"post_id": post.id, "label": post.label, "reason": None,
                                 "predicted": None, "correct": None, "loss": None,
                                 "new_words": [], "new_class": None}
        learning = self.config.enabled and not self.paused
        if not self._knows(post.label):
            if not (learning and self.config.add_classes and can_add_class(self.model)):
                entry.update(outcome="quarantined",
                             reason=f"unknown label {post.label!r}; the model knows "
                                    f"{self.model.label_names}")
                return self._journal(post, entry)
            add_class(self.model, post.label)
            entry["new_class"] = post.label
            self.dirty = True
            log.warning("learning_class_added", label=post.label, post_id=post.id)
        if not learning:
            self._score(post, entry)
            entry["outcome"] = "paused" if self.config.enabled else "skipped"
            return self._journal(post, entry)
        model = self.model
        if self.config.vocabulary_cap > len(model.vocabulary):  # it may grow: score first
            self._score(post, entry)
            entry["new_words"] = grow_vocabulary(model, post.text, self.config.vocabulary_cap)
            self.dirty = self.dirty or bool(entry["new_words"])
            self._learn(post, entry, None, scored=True)
        else:  # the fused step: one tokenization, one forward pass
            self._learn(post, entry, raw, scored=False)
        self._journal(post, entry)
        self._watch(conn, entry)
        return entry

    def _knows(self, label: str) -> bool:
        try:
            self.model.label_index(label)
        except KeyError:
            return False
        return True

    def _score(self, post: Post, entry: dict[str, Any]) -> None:
        """Prequential evaluation: the prediction and loss before any learning."""
        self._record_score(entry, post.label, self.model.probabilities([post.text])[0])

    def _record_score(self, entry: dict[str, Any], label: str, p: np.ndarray) -> None:
        """p: the model's scores of the post before its step, one per label name."""
        names = self.model.label_names
        values = p.tolist()
        best = values.index(max(values))  # argmax: the first of ties
        entry["predicted"] = names[best]
        entry["correct"] = names[best] == label
        entry["loss"] = -math.log(max(values[names.index(label)], 1e-300))

    def _learn(self, post: Post, entry: dict[str, Any], raw: np.ndarray | None,
               scored: bool) -> None:
        """The single-example step (``train.sgd_update``'s: the one-post kernel, via
        ``Network.learn_ids``) under the update guard, which refuses a bad step itself;
        ``scored=False``: its forward pass is also the prequential score.  ``raw``: the
        post's word ids, or None to tokenize it here."""
        model = self.model
        network = model.network
        if raw is None:
            raw = model.vocabulary.word_ids(post.text)
        p, loss, ratio, code = network.learn_ids(
            raw, model.label_index(post.label), self._rate, self._max_loss, self._max_ratio)
        # the drift guard's copy of the word ids, as bytes: _predict joins hundreds at once
        entry["bag"] = (post.text, raw.tobytes(), len(model.vocabulary))
        if not scored:
            if network.output == "sigmoid":
                p = model._with_complement(p[None, :])[0]
            self._record_score(entry, post.label, p)
        if not code:
            entry["outcome"] = "learned"
            self.updates += 1
            self.since_checkpoint += 1
            self.dirty = True
            self.rejections = 0
            return
        config = self.config
        problem = update_problem(code, loss, ratio, config.max_loss, config.max_update_ratio)
        entry.update(outcome="rejected", reason=problem)
        self.rejections += 1
        log.warning("update_rejected", post_id=post.id, reason=problem)

    def _watch(self, conn: sqlite3.Connection, entry: dict[str, Any]) -> None:
        """The pause conditions: a rejection streak, a prequential accuracy collapse."""
        reason = None
        if self.rejections >= self.config.max_rejections:
            reason = f"{self.rejections} updates in a row rejected; last: {entry['reason']}"
        bag = entry.pop("bag")
        if reason is None and self.config.drift_guard:
            reason = self.drift.add(bag, entry["label"], entry["correct"], self._predict)
        if reason:
            self._pause(conn, reason)

    def _predict(self, bags: list[tuple]) -> list[str]:
        """The drift guard's posts → the live model's labels.

        bags: (text, word ids, vocabulary size) as ``_learn`` kept them (the bytes of the
        post's ``Vocabulary.word_ids``, repeats included), so the retention check does not
        tokenize again; a post seen before the vocabulary grew (or read back from the
        journal: (text, None, -1)) is tokenized again.  One join of the bytes (10× a
        concatenate of small arrays), one compiled pass over all of them
        (``Network.predict_proba_bags``, each id counted once per occurrence).
        """
        model = self.model
        vocabulary = model.vocabulary
        size = len(vocabulary)
        ids = [raw if n == size else vocabulary.word_ids(text).tobytes()
               for text, raw, n in bags]
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)) // 4,
                  out=indptr[1:])
        flat = np.frombuffer(b"".join(ids), dtype=np.int32)
        p = model.network.predict_proba_bags(indptr, flat, np.ones(len(flat)))
        names = model.label_names
        return [names[k] for k in model._with_complement(p).argmax(axis=1).tolist()]

    def _pause(self, conn: sqlite3.Connection, reason: str) -> None:
        self.paused = {"reason": reason, "at": _now(), "journal_seq": self.applied_seq,
                       "version": self.version}
        set_state(conn, "paused", self.paused)
        self.checkpoint_reason = "paused"
        log.error("learning_paused", reason=reason, journal_seq=self.applied_seq,
                  version=self.version,
                  hint="inspect `banana-monitor model history`; `model rollback` resumes")

    def _journal(self, post: Post, entry: dict[str, Any]) -> dict[str, Any]:
        """Queue the post's journal row (written by ``_flush``) and give it its seq."""
        seq = self.applied_seq + 1
        correct = entry["correct"]
        self._pending.append(
            (seq, post.id, post.text, post.label, entry["outcome"], entry["reason"],
             entry["predicted"], None if correct is None else int(correct),
             _finite_or_none(entry["loss"]), self._journal_rate,
             json.dumps(entry["new_words"]) if entry["new_words"] else None,
             entry["new_class"], self.version, self._stamp))
        self.applied_seq = seq
        entry["seq"] = seq
        return entry

    def _flush(self, conn: sqlite3.Connection) -> None:
        """Write the queued journal rows, inside the caller's transaction."""
        if self._pending:
            conn.executemany(
                "INSERT INTO learn_journal (seq, post_id, text, label, outcome, reason,"
                " predicted, correct, loss, learning_rate, new_words, new_class, version,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._pending)
        self._pending = []

    # -------------------------------------------------------------- checkpoints

    def maybe_checkpoint(self, force: bool = False) -> Version | None:
        """Write a version every ``checkpoint_every`` updates, on pause, and when forced
        (shutdown) — only if the model changed since the last one."""
        due = force or self.checkpoint_reason or (
            self.since_checkpoint >= self.config.checkpoint_every)
        if not (due and self.dirty):
            return None
        reason = self.checkpoint_reason or ("shutdown" if force else "checkpoint")
        with self.ledger.transaction() as conn:
            if self._sync(conn):  # a rollback or a lost transaction: nothing of ours to save
                return None
            version = self.store.save(
                conn, self.model, journal_seq=self.applied_seq, reason=reason,
                parent=self.version, updates=self.updates,
                metrics=learning_metrics(conn, self.config.drift_window),
            )
            pruned = self.store.prune(conn, self.config.keep_versions)
        self.version = self.head = version.version
        self.since_checkpoint = 0
        self.dirty = False
        self.checkpoint_reason = None
        log.info("checkpoint", version=version.version, journal_seq=version.journal_seq,
                 updates=self.updates, reason=reason, pruned=pruned)
        return version

    # -------------------------------------------------------------- visibility

    def stats(self) -> dict[str, Any]:
        """What ``status`` shows about learning (read from the ledger)."""
        with self.ledger.transaction() as conn:
            return learning_status(conn, self.config.drift_window)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# ---------------------------------------------------------------- metrics from the ledger


def learning_metrics(conn: sqlite3.Connection, window: int = 100) -> dict[str, Any]:
    """Prequential accuracy overall and over the last ``window`` labelled posts,
    per-class recall, and how many posts had each outcome."""
    total, right = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(correct), 0) FROM learn_journal"
        " WHERE correct IS NOT NULL"
    ).fetchone()
    recent = [r[0] for r in conn.execute(
        "SELECT correct FROM learn_journal WHERE correct IS NOT NULL"
        " ORDER BY seq DESC LIMIT ?", (window,))]
    recall = {
        label: round(hits / count, 6)
        for label, count, hits in conn.execute(
            "SELECT label, COUNT(*), SUM(correct) FROM learn_journal"
            " WHERE correct IS NOT NULL GROUP BY label ORDER BY label")
    }
    outcomes = dict(conn.execute(
        "SELECT outcome, COUNT(*) FROM learn_journal GROUP BY outcome").fetchall())
    return {
        "labelled_posts": int(sum(outcomes.values())),
        "updates": int(outcomes.get("learned", 0)),
        "outcomes": outcomes,
        "prequential_accuracy": round(right / total, 6) if total else None,
        "recent_accuracy": round(sum(recent) / len(recent), 6) if recent else None,
        "recent_window": len(recent),
        "per_class_recall": recall,
    }


def learning_status(conn: sqlite3.Connection, window: int = 100) -> dict[str, Any]:
    """Model version, updates, prequential metrics and the pause state."""
    latest = latest_version(conn)
    paused = get_state(conn, "paused")
    return {
        "model_version": latest.version if latest else None,
        "versions": int(conn.execute("SELECT COUNT(*) FROM model_versions").fetchone()[0]),
        **learning_metrics(conn, window),
        "paused": bool(paused),
        "paused_reason": paused["reason"] if paused else None,
    }


def read_learning_status(state_dir: str | Path, window: int = 100) -> dict[str, Any] | None:
    """``learning_status`` from a state directory, read-only; None before any learning.

    For ``banana-monitor status``: opens the ledger without creating or locking anything.
    """
    path = Path(state_dir) / "ledger.sqlite3"
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"learn_journal", "model_versions", "learn_state"} <= tables:
            return None
        return learning_status(conn, window)
    finally:
        conn.close()
