"""Offline training: labelled posts → vocabulary → mini-batch SGD → the best epoch.

The single-example step, ``sgd_update``, is the one the online learner uses too:
``train --batch-size 1 --no-shuffle --epochs 1 --model IN`` applies it post by post,
so both give bit-identical weights.

Class imbalance: with ``class_weight="balanced"`` a post of class k weighs
n / (n_classes · n_k), so every class carries the same total weight in an epoch.  A
mini-batch's gradient is Σ_i w_i ∇c_i / batch_size (the weights scale the learning rate
of a batch rather than being renormalised inside it).  Balanced weights are the default
only for a fresh model; continuing a model defaults to no weights, which keeps the
``sgd_update`` contract above.

Vocabulary growth (``Options.vocab_cap``, ``train --vocab-cap``): before each post's
step, ``monitor.learn.grow_vocabulary`` — the online learner's policy — may append the
post's new words (zero W^1 columns) while the vocabulary is below the cap.  With the
same cap, ``train --batch-size 1 --epochs 1 --no-shuffle --model IN`` and the daemon
end with identical arrays.  Growth can only happen in the first epoch (afterwards every
post's words are in, or the cap is reached).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager

import numpy as np
import structlog

from monitor.evaluation import evaluate_bags
from monitor.model import OTHER, Model
from monitor.posts import PostError, parse_line
from monitor.text import tokenize

log = structlog.get_logger("monitor.train")

# Defaults: picked among a handful of settings on the banana-cookie corpus and TweetEval
# (bench/README.md); one hidden layer overfitted less than two on short posts.
HIDDEN = (64,)
LEARNING_RATE = 0.05
BATCH_SIZE = 16
EPOCHS = 40
PATIENCE = 8
VOCAB_SIZE = 5000
MIN_COUNT = 2
INPUT_INIT_STD = 0.01  # W^1 starts near zero: see new_model
CLASS_WEIGHTS = ("balanced", "none")


class TrainingError(Exception):
    """Unusable training data or a diverging run; ``str()`` is one line for the user."""


@dataclass
class Examples:
    """Labelled posts from one file: texts, labels and the line each came from."""

    path: str
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Options:
    """How to run SGD; ``class_weight`` is "balanced" or "none"."""

    learning_rate: float = LEARNING_RATE
    batch_size: int = BATCH_SIZE
    epochs: int = EPOCHS
    shuffle: bool = True
    class_weight: str = "none"
    patience: int | None = PATIENCE
    vocab_cap: int = 0  # grow the vocabulary up to this many words (0: never)


@dataclass
class Result:
    """What a run did: per-epoch history, the epoch kept and its validation report."""

    history: list[dict[str, Any]]
    best_epoch: int
    validation: dict[str, Any] | None
    words_added: int = 0


# ---------------------------------------------------------------- the one SGD step


def sgd_update(model: Model, text: str, label: str, learning_rate: float) -> float:
    """One SGD step on one post (Exercise 5); returns its cross-entropy before the step.

    Raises KeyError for a label the model does not know.  The step is the one-post
    kernel ``Network.learn_counts`` (via ``Model.learn_one``), which every one-post
    step goes through: ``sgd_step`` on a 1-row bag of words and the online learner
    too, so they all give bit-identical weights.
    """
    return model.learn_one(text, label, learning_rate)[1]


def _batch_step(network, X, y: np.ndarray, lr: float, weights: np.ndarray | None) -> float:
    """One mini-batch step; unweighted it is exactly ``Network.sgd_step`` (as sgd_update)."""
    if weights is None:
        return network.sgd_step(X, y, lr)
    w = weights[y]
    # backprop normalises by Σw; scaling η by mean(w) makes the step (η/n) Σ w_i ∇c_i
    return network.sgd_step(X, y, lr * float(w.mean()), sample_weight=w)


# ---------------------------------------------------------------- data


def read_examples(path: str | Path) -> Examples:
    """A JSON Lines file of {"text", "label", ...} → Examples; bad lines → TrainingError."""
    examples = Examples(str(path))
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise TrainingError(f"{path}: {error.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                post = parse_line(raw, "jsonl", str(number))
            except PostError as error:
                raise TrainingError(f"{path}:{number}: {error}") from None
            if post is None:
                continue
            if post.label is None:
                raise TrainingError(f"{path}:{number}: missing 'label' field")
            if not post.text.strip():
                raise TrainingError(f"{path}:{number}: empty text")
            examples.texts.append(post.text)
            examples.labels.append(post.label)
            examples.lines.append(number)
    if not examples.texts:
        raise TrainingError(f"{path}: no labelled posts")
    return examples


def targets_for(model: Model, examples: Examples) -> np.ndarray:
    """Labels → the network's targets (n_posts,); an unknown label names its line."""
    targets = np.empty(len(examples), dtype=np.int64)
    for i, (label, line) in enumerate(zip(examples.labels, examples.lines)):
        try:
            targets[i] = model.label_index(label)
        except KeyError as error:
            raise TrainingError(f"{examples.path}:{line}: {error.args[0]}") from None
    return targets


def class_names(labels: Sequence[str]) -> list[str]:
    """Classes for a fresh softmax model: the labels seen, sorted, ``other`` last."""
    names = sorted(set(labels) - {OTHER})
    return names + [OTHER] if OTHER in labels else names


def build_vocabulary(
    texts: Sequence[str], size: int = VOCAB_SIZE, min_count: int = MIN_COUNT
) -> list[str]:
    """The ``size`` most frequent tokens seen at least ``min_count`` times (ties: A→Z)."""
    counts = Counter(token for text in texts for token in tokenize(text))
    kept = [item for item in counts.items() if item[1] >= min_count]
    ranked = sorted(kept, key=lambda kv: (-kv[1], kv[0]))
    return [word for word, _ in ranked[:size]]


def new_model(
    examples: Examples,
    hidden: Sequence[int],
    rng: np.random.Generator,
    classes: Sequence[str] | None = None,
    vocab_size: int = VOCAB_SIZE,
    min_count: int = MIN_COUNT,
) -> Model:
    """A fresh model whose vocabulary comes from the training posts.

    W^1 is drawn from N(0, 0.01²) instead of He's N(0, 2/16): with thousands of words
    and a few thousand posts, large random word vectors act as fixed random features
    that the network memorises (TweetEval emotion: val macro-F1 0.42 against 0.58).
    Starting near zero, every word's vector is learnt from the posts it occurs in.
    """
    words = build_vocabulary(examples.texts, vocab_size, min_count)
    if not words:
        raise TrainingError(
            f"{examples.path}: no word occurs {min_count} times; lower --min-count"
        )
    classes = list(classes) if classes else class_names(examples.labels)
    if len(classes) < 2 and not (len(classes) == 1 and classes[0] != OTHER):
        raise TrainingError(f"{examples.path}: need at least two labels, found {classes}")
    model = Model.create(words, hidden, classes, rng)
    shape = model.network.weights[0].shape  # (n_1, n_vocab)
    model.network.weights[0] = np.asfortranarray(rng.normal(0.0, INPUT_INIT_STD, size=shape))
    return model


def balanced_weights(targets: np.ndarray, n_targets: int) -> np.ndarray:
    """Per-target weights n / (n_targets · n_k), shape (n_targets,); unseen classes get 1."""
    counts = np.bincount(targets, minlength=n_targets).astype(np.float64)
    weights = np.ones(n_targets)
    seen = counts > 0
    weights[seen] = len(targets) / (seen.sum() * counts[seen])
    return weights


# ---------------------------------------------------------------- the loop


def fit(
    model: Model,
    examples: Examples,
    options: Options,
    rng: np.random.Generator,
    validation: Examples | None = None,
    progress: Callable[[int], ContextManager] | None = None,
) -> Result:
    """Train ``model`` in place; with validation, keep the epoch of best macro-F1.

    Logs one ``epoch`` event per epoch (train loss, validation loss/accuracy/macro-F1).
    Stops early after ``options.patience`` epochs without a better validation score.
    ``progress(epoch)``, if given, is a context manager yielding ``update(n_posts)``
    (e.g. a click progress bar), entered once per epoch.
    """
    y = targets_for(model, examples)
    n_words = len(model.vocabulary)
    grow = _grower(model, examples.texts, options.vocab_cap)
    X = None if grow else model.vocabulary.bag_of_words(examples.texts)  # (n_posts, n_vocab)
    n_targets = max(model.network.n_outputs, 2)
    weights = balanced_weights(y, n_targets) if options.class_weight == "balanced" else None
    val_bags = model.vocabulary.bag_of_words(validation.texts) if validation else None
    if validation:
        targets_for(model, validation)  # unknown labels fail before any training
    history: list[dict[str, Any]] = []
    best: tuple | None = None
    for epoch in range(1, options.epochs + 1):
        bar = progress(epoch) if progress else nullcontext(None)
        with bar as update, np.errstate(over="ignore", invalid="ignore"):
            on_batch = getattr(update, "update", update)
            loss = _epoch(model.network, X, y, options, rng, weights, on_batch, grow)
        if not np.isfinite(loss) or not model.network.is_finite():
            raise TrainingError(f"training diverged at epoch {epoch} (loss {loss}); lower --lr")
        if grow:  # every post has been offered its words: the vocabulary is final
            grow = None
            X = model.vocabulary.bag_of_words(examples.texts)
            val_bags = model.vocabulary.bag_of_words(validation.texts) if validation else None
        record: dict[str, Any] = {"epoch": epoch, "loss": loss}
        if validation:
            report = evaluate_bags(model, val_bags, validation.labels)
            record.update(val_loss=report["loss"], val_accuracy=report["accuracy"],
                          val_macro_f1=report["macro_f1"])
            key = (report["macro_f1"], -report["loss"])
            if best is None or key > best[0]:
                best = (key, epoch, model.network.copy(), report)
        history.append(record)
        log.info("epoch", **record)
        if best and options.patience and epoch - best[1] >= options.patience:
            break
    added = len(model.vocabulary) - n_words
    if best is None:
        return Result(history, len(history), None, added)
    model.network = best[2]
    return Result(history, best[1], best[3], added)


def _grower(model: Model, texts: Sequence[str], cap: int) -> Callable | None:
    """With room below ``cap``: batch (post indices) → its bags (len(batch), n_vocab),
    after the learner's growth policy has run on each post in order; else None."""
    if int(cap or 0) <= len(model.vocabulary):
        return None
    from monitor.learn import grow_vocabulary  # the learner's policy (monitor/learn.py)

    def bags(batch: np.ndarray):
        batch_texts = [texts[i] for i in batch]
        for text in batch_texts:
            grow_vocabulary(model, text, cap)
        return model.vocabulary.bag_of_words(batch_texts)

    return bags


def _epoch(network, X, y, options: Options, rng, weights, on_batch, grow=None) -> float:
    """One pass over the posts in mini-batches; returns the mean loss before each step.

    ``grow`` (see ``_grower``), if given, builds each batch's bags instead of ``X``.
    """
    n = len(y)
    order = rng.permutation(n) if options.shuffle else np.arange(n)
    total = 0.0
    for start in range(0, n, options.batch_size):
        batch = order[start : start + options.batch_size]
        rows = grow(batch) if grow else X[batch]
        loss = _batch_step(network, rows, y[batch], options.learning_rate, weights)
        if not np.isfinite(loss):
            return loss  # diverged: the caller stops
        total += loss * len(batch)
        if on_batch:
            on_batch(len(batch))
    return total / n


def trained_meta(
    examples: Examples,
    options: Options,
    result: Result,
    seed: int,
    validation: Examples | None,
    base: str | None,
) -> dict[str, Any]:
    """What meta["trained"] records about a run."""
    metrics = None
    if result.validation:
        metrics = {k: result.validation[k] for k in ("accuracy", "macro_f1", "loss")}
        metrics["per_class_f1"] = {k: v["f1"] for k, v in result.validation["per_class"].items()}
    return {
        "data": examples.path,
        "examples": len(examples),
        "from_model": base,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "validation_data": validation.path if validation else None,
        "validation": metrics,
        "learning_rate": options.learning_rate,
        "batch_size": options.batch_size,
        "shuffle": options.shuffle,
        "class_weight": options.class_weight,
        "vocab_cap": options.vocab_cap,
        "words_added": result.words_added,
        "seed": seed,
        "history": json.loads(json.dumps(result.history)),
    }
