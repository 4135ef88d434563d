"""Metrics checked against a hand-computed example, and the model evaluation's loss."""

from __future__ import annotations

import numpy as np
import pytest

from monitor import seed
from monitor.evaluation import confusion_matrix, evaluate_model, format_table, metrics

# six posts, three labels: truth a a a b b c, predicted a a b b c c
TRUE = [0, 0, 0, 1, 1, 2]
PRED = [0, 0, 1, 1, 2, 2]
LABELS = ["a", "b", "c"]


def test_confusion_rows_are_truth_columns_predictions():
    assert confusion_matrix(TRUE, PRED, 3).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_hand_computed_metrics():
    report = metrics(TRUE, PRED, LABELS)
    # a: P = 2/2, R = 2/3, F1 = 0.8;  b: P = 1/2, R = 1/2, F1 = 0.5;  c: P = 1/2, R = 1, F1 = 2/3
    a, b, c = (report["per_class"][k] for k in LABELS)
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == pytest.approx((1, 2 / 3, 0.8, 3))
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == pytest.approx((0.5, 1, 2 / 3, 1))
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["examples"] == 6
    assert report["confusion"] == {"labels": LABELS, "matrix": [[2, 1, 0], [0, 1, 1], [0, 0, 1]]}


def test_never_predicted_and_absent_labels():
    # "b" has posts but is never predicted: P = R = F1 = 0; "c" occurs nowhere: not averaged
    report = metrics([0, 1], [0, 0], LABELS)
    assert report["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report["per_class"]["a"]["precision"] == 0.5
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_agrees_with_scikit_learn(rng):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    report = metrics(y_true, y_pred, list("wxyz"))
    assert report["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(y_true, y_pred, average="macro"))
    f1 = sklearn_metrics.f1_score(y_true, y_pred, average=None)
    assert [report["per_class"][k]["f1"] for k in "wxyz"] == pytest.approx(f1.tolist())


def test_evaluate_model_loss_is_the_sheets_cross_entropy():
    model = seed.multiclass_model()
    report = evaluate_model(model, seed.TEXTS[:2], ["banana", "cookie"])
    # Exercise 4.1: text 1 / banana costs 0.35; text 2 / cookie: -ln 0.98
    p2 = np.exp(8) / (np.exp(4) + np.exp(8) + np.exp(-4))
    assert report["loss"] == pytest.approx((-np.log(np.e**2 / (np.e**2 + np.e + np.e**-1)) - np.log(p2)) / 2)
    assert report["accuracy"] == 1.0 and report["confusion"]["matrix"][0] == [1, 0, 0]


def test_binary_model_labels_are_class_and_other():
    model = seed.binary_model()  # text 1 scores p(banana) = 0.731 (Exercise 2.3)
    report = evaluate_model(model, [seed.TEXTS[0]], ["other"])
    assert report["confusion"] == {"labels": ["banana", "other"], "matrix": [[0, 0], [1, 0]]}
    assert report["loss"] == pytest.approx(-np.log(1 - 0.7310585786300049))


def test_table_shows_every_figure():
    report = {**metrics(TRUE, PRED, LABELS), "loss": 0.25}
    table = format_table(report)
    assert "0.800" in table and "0.656" in table and "0.667" in table and "0.2500" in table
    assert table.splitlines()[-3].split() == ["a", "2", "1", "0"]
