"""Training through the Python API: vocabulary, weights, the SGD contract, the loop."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor import seed
from monitor.model import Model
from monitor.train import (
    Examples,
    Options,
    TrainingError,
    balanced_weights,
    build_vocabulary,
    class_names,
    fit,
    new_model,
    read_examples,
    sgd_update,
)

SEPARABLE = [
    ("banana bread this morning", "banana"),
    ("ripe banana smoothie", "banana"),
    ("🍌 and peanut butter", "banana"),
    ("fresh cookie from the oven", "cookie"),
    ("chocolate chip cookie dough", "cookie"),
    ("🍪 and milk", "cookie"),
    ("traffic on the way to work", "other"),
    ("rain again all week", "other"),
    ("the game went to overtime", "other"),
    ("new phone who dis", "other"),
]


def _examples(pairs, path="mem.jsonl") -> Examples:
    examples = Examples(path)
    for line, (text, label) in enumerate(pairs, start=1):
        examples.texts.append(text)
        examples.labels.append(label)
        examples.lines.append(line)
    return examples


def test_vocabulary_is_top_words_by_frequency_with_a_minimum_count():
    texts = ["Banana banana cookie", "banana, cookie! rain", "cookies and bananas and rain", "solo"]
    # counts: banana 4, cookie 3, and 2, rain 2, solo 1 (ties alphabetical)
    assert build_vocabulary(texts, size=10, min_count=2) == ["banana", "cookie", "and", "rain"]
    assert build_vocabulary(texts, size=2, min_count=1) == ["banana", "cookie"]
    assert build_vocabulary(texts, size=10, min_count=1)[-1] == "solo"


def test_class_names_put_other_last():
    assert class_names(["other", "cookie", "banana", "other"]) == ["banana", "cookie", "other"]
    assert class_names(["joy", "anger"]) == ["anger", "joy"]


def test_balanced_weights_equalise_class_totals():
    targets = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    weights = balanced_weights(targets, 3)
    assert weights.tolist() == pytest.approx([12 / 18, 12 / 6, 12 / 12])
    assert np.bincount(targets, weights=weights[targets]).tolist() == pytest.approx([4, 4, 4])


def test_sgd_update_is_exercise_5():
    model = seed.multiclass_model()
    loss = sgd_update(model, seed.TEXTS[0], "banana", 0.1)
    assert round(loss, 2) == 0.35
    expected = [[1.029, 1.029], [-1.026, 1.974], [-0.004, -1.004]]
    assert np.round(model.network.weights[2], 3).tolist() == expected
    assert np.array_equal(model.network.weights[1], seed.W2)
    assert np.array_equal(model.network.weights[0], seed.W1)


def test_sgd_update_rejects_unknown_labels():
    with pytest.raises(KeyError, match="unknown label 'pie'"):
        sgd_update(seed.multiclass_model(), "pie", "pie", 0.1)


def test_batch_size_one_in_file_order_is_sgd_update_post_by_post(rng):
    examples = _examples(SEPARABLE * 2)
    start = new_model(examples, (5, 4), rng, min_count=1)
    trained = Model(start.network.copy(), start.vocabulary, start.classes)
    fit(trained, examples, Options(0.3, 1, 1, shuffle=False, class_weight="none"), rng)
    stepped = Model(start.network.copy(), start.vocabulary, start.classes)
    for text, label in zip(examples.texts, examples.labels):
        sgd_update(stepped, text, label, 0.3)
    for a, b in zip(trained.network.weights + trained.network.biases,
                    stepped.network.weights + stepped.network.biases):
        assert np.array_equal(a, b)
    assert not np.array_equal(trained.network.weights[0], start.network.weights[0])


def test_training_reduces_the_loss_on_a_separable_set(rng):
    examples = _examples(SEPARABLE)
    model = new_model(examples, (16, 8), rng, min_count=1)
    before = model.network.loss(model.vocabulary.bag_of_words(examples.texts),
                                np.array([model.label_index(l) for l in examples.labels]))
    result = fit(model, examples, Options(0.5, 2, 60, class_weight="balanced"), rng)
    after = model.network.loss(model.vocabulary.bag_of_words(examples.texts),
                               np.array([model.label_index(l) for l in examples.labels]))
    assert before == pytest.approx(np.log(3), abs=0.05)  # W1 ≈ 0: every class about 1/3
    assert after < 0.05 and result.history[-1]["loss"] < result.history[0]["loss"]
    assert [r["label"] for r in model.score(examples.texts)] == examples.labels


def test_validation_keeps_the_best_epoch(rng):
    examples = _examples(SEPARABLE)
    held_out = _examples([("banana muffins", "banana"), ("cookie jar", "cookie"), ("rain", "other")])
    model = new_model(examples, (8,), rng, min_count=1)
    result = fit(model, examples, Options(0.5, 2, 12, patience=None), rng, held_out)
    scores = [(r["val_macro_f1"], -r["val_loss"]) for r in result.history]
    assert result.best_epoch == 1 + scores.index(max(scores))
    from monitor.evaluation import evaluate_model

    kept = evaluate_model(model, held_out.texts, held_out.labels)
    assert kept["loss"] == result.history[result.best_epoch - 1]["val_loss"]


def test_patience_stops_early(rng):
    examples = _examples(SEPARABLE)
    held_out = _examples([("zzz", "other")])  # no known word: the score never changes much
    model = new_model(examples, (4,), rng, min_count=1)
    result = fit(model, examples, Options(0.5, 5, 50, patience=3), rng, held_out)
    assert len(result.history) == result.best_epoch + 3 < 50


def test_divergence_is_an_error(rng):
    examples = _examples(SEPARABLE)
    model = new_model(examples, (8, 8), rng, min_count=1)
    with pytest.raises(TrainingError, match="training diverged at epoch [12] .*lower --lr"):
        fit(model, examples, Options(1e200, 10, 3), rng)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "ok", "label": "banana"', "bad.jsonl:2: invalid JSON"),
        ('{"text": "   ", "label": "banana"}', "bad.jsonl:2: empty text"),
        ('{"text": "no label"}', "bad.jsonl:2: missing 'label' field"),
        ('{"label": "banana"}', "bad.jsonl:2: missing 'text' field"),
    ],
)
def test_bad_training_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "fine", "label": "other"}) + "\n" + line + "\n")
    with pytest.raises(TrainingError, match=message):
        read_examples(path)


def test_read_examples_skips_blank_lines_and_keeps_line_numbers(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y", "id": 3}\n')
    examples = read_examples(path)
    assert (examples.texts, examples.labels, examples.lines) == (["a", "b"], ["x", "y"], [1, 3])


# ---------------------------------------------------------------- vocabulary growth


def _jsonl(path, pairs):
    path.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in pairs))
    return path


GROWING = [("banana pancakes with maple syrup", "banana"), ("oatmeal cookie", "cookie"),
           ("thunder and rain all week", "other"), ("maple banana bread", "banana")]


def test_train_vocab_cap_grows_like_the_learner_policy(cli, tmp_path, rng):
    from monitor.learn import grow_vocabulary

    start = new_model(_examples(SEPARABLE), (6,), rng, min_count=1)
    path = start.save(tmp_path / "start.npz")
    cap = len(start.vocabulary) + 5
    data = _jsonl(tmp_path / "more.jsonl", GROWING + SEPARABLE[:3])
    out = tmp_path / "out.npz"
    result = cli("train", "--data", data, "--model", path, "--out", out, "--lr", "0.2",
                 "--batch-size", "1", "--epochs", "1", "--no-shuffle", "--vocab-cap", cap)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["words_added"] == 5
    expected = Model.load(path)
    for text, label in GROWING + SEPARABLE[:3]:
        grow_vocabulary(expected, text, cap)
        sgd_update(expected, text, label, 0.2)
    trained = Model.load(out)
    assert trained.vocabulary.words == expected.vocabulary.words
    assert trained.vocabulary.words[-5:] == ["pancake", "with", "maple", "syrup", "oatmeal"]
    for a, b in zip(trained.network.weights + trained.network.biases,
                    expected.network.weights + expected.network.biases):
        assert np.array_equal(a, b)
    assert trained.meta["trained"]["vocab_cap"] == cap


def test_vocab_cap_with_batches_epochs_and_validation(rng):
    examples = _examples(SEPARABLE + GROWING)
    model = new_model(_examples(SEPARABLE), (6,), rng, min_count=1)
    n_words = len(model.vocabulary)
    held_out = _examples([("maple syrup pancakes", "banana"), ("oatmeal", "cookie")])
    result = fit(model, examples, Options(0.3, 4, 3, patience=None, vocab_cap=n_words + 100),
                 rng, held_out)
    added = ["pancake", "with", "maple", "syrup", "oatmeal", "thunder"]
    assert sorted(model.vocabulary.words[n_words:]) == sorted(added)  # shuffled order
    assert result.words_added == len(added) and len(result.history) == 3
    assert model.network.weights[0].shape[1] == len(model.vocabulary)
    from monitor.evaluation import evaluate_model

    kept = evaluate_model(model, held_out.texts, held_out.labels)  # scored with the new words
    assert kept["loss"] == result.history[result.best_epoch - 1]["val_loss"]


def test_vocab_cap_needs_a_model(cli, tmp_path):
    data = _jsonl(tmp_path / "d.jsonl", SEPARABLE)
    result = cli("train", "--data", data, "--out", tmp_path / "o.npz", "--vocab-cap", "10")
    assert result.exit_code == 2
    assert "--vocab-cap applies when continuing a model (with --model)" in result.output
