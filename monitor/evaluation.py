"""Classification metrics: accuracy, macro-F1, per-class precision/recall/F1, confusion.

Pure functions over integer label indices; ``evaluate_model`` runs a model over
labelled posts and adds the mean cross-entropy.  Conventions (as scikit-learn's
``zero_division=0``): a class never predicted has precision 0, a class with no posts
has recall 0, and F1 is 0 when precision + recall is 0.  Macro-F1 averages the
per-class F1 over the labels that occur, as truth or as prediction (scikit-learn's
default), so a label absent from both does not count as a zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_labels: int) -> np.ndarray:
    """Counts (n_labels, n_labels): row = true label, column = predicted label."""
    matrix = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class figures and the confusion matrix, as plain JSON types."""
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    hits = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = _ratio(hits, predicted.astype(np.float64))
    recall = _ratio(hits, support.astype(np.float64))
    f1 = _ratio(2 * precision * recall, precision + recall)
    total = int(matrix.sum())
    occurring = (support + predicted) > 0
    return {
        "examples": total,
        "accuracy": float(hits.sum() / total) if total else 0.0,
        "macro_f1": float(f1[occurring].mean()) if occurring.any() else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
            }
            for k, label in enumerate(labels)
        },
        "confusion": {"labels": list(labels), "matrix": matrix.tolist()},
    }


def evaluate_model(model, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """A model on labelled posts: ``metrics`` plus the mean cross-entropy ``loss``.

    Predictions are the most probable label (``model.label_names``); the loss is the
    network's cross-entropy for each post's target, averaged over the posts.
    """
    return evaluate_bags(model, model.vocabulary.bag_of_words(texts), labels)


def evaluate_bags(model, bags, labels: Sequence[str]) -> dict[str, Any]:
    """The same for bags of words already built, shape (n_posts, n_vocab)."""
    names = model.label_names
    truth = [names.index(label) for label in labels]  # ValueError: label not in names
    if not len(labels):
        return {**metrics([], [], names), "loss": 0.0}
    trace = model.network.forward(bags)
    output = trace.A[-1]  # (n_posts, n_outputs): sigmoid p(class) or softmax rows
    if model.network.output == "sigmoid":
        predicted = (output[:, 0] < 0.5).astype(np.int64)  # label_names = [class, other]
    else:
        predicted = output.argmax(axis=1)
    targets = np.array([model.label_index(label) for label in labels], dtype=np.int64)
    report = metrics(truth, predicted, names)
    report["loss"] = float(np.mean(model.network.losses_from_logits(trace.Z[-1], targets)))
    return report


def format_table(report: dict[str, Any]) -> str:
    """A report as a table for people: per-class rows, totals, then the confusion matrix."""
    labels = report["confusion"]["labels"]
    width = max([len("macro-F1"), *map(len, labels)])
    lines = [f"{'':<{width}}  precision  recall     f1  support"]
    for label in labels:
        c = report["per_class"][label]
        lines.append(
            f"{label:<{width}}  {c['precision']:9.3f}  {c['recall']:6.3f}  {c['f1']:5.3f}"
            f"  {c['support']:7d}"
        )
    lines.append("")
    lines.append(f"{'accuracy':<{width}}  {report['accuracy']:.3f}   ({report['examples']} posts)")
    lines.append(f"{'macro-F1':<{width}}  {report['macro_f1']:.3f}")
    if "loss" in report:
        lines.append(f"{'loss':<{width}}  {report['loss']:.4f}")
    lines.append("")
    corner = "true \\ predicted"
    first = max(width, len(corner))
    cell = max(7, *(len(label) for label in labels))
    lines.append(f"{corner:<{first}}" + "".join(f"{l:>{cell + 1}}" for l in labels))
    for label, row in zip(labels, report["confusion"]["matrix"]):
        lines.append(f"{label:<{first}}" + "".join(f"{n:>{cell + 1}d}" for n in row))
    return "\n".join(lines)
