"""Explanations: the score drop when each word is left out, checked by re-scoring."""

from __future__ import annotations

import pytest

from monitor.explain import explain, explain_many
from monitor.model import Model
from monitor.text import tokenize
from tests.conftest import MODELS

WORDS = ["banana", "bread", "cookie", "chocolate", "sweet", "ripe", "oven", "monkey"]


@pytest.fixture
def model(rng):
    return Model.create(WORDS, [16, 8], ["banana", "cookie", "other"], rng)


def rescored_drops(model, text, label):
    """Independent path: re-tokenize without each word and score the text again."""
    column = model.label_names.index(label)
    tokens = tokenize(text)
    full = model.probabilities([" ".join(tokens)])[0, column]
    drops = {}
    for word in set(tokens) & set(model.vocabulary.words):
        kept = " ".join(t for t in tokens if t != word)
        drops[word] = full - model.probabilities([kept])[0, column]
    return drops


@pytest.mark.parametrize("label", ["banana", "cookie", "other"])
def test_drops_match_rescoring_without_each_word(model, label):
    text = "Ripe banana bread, banana again, and a chocolate cookie from the oven"
    expected = rescored_drops(model, text, label)
    result = explain(model, text, label, top_k=10)
    positive = {w: d for w, d in expected.items() if d > 0}
    assert {item["word"] for item in result} == set(positive)
    for item in result:
        assert item["drop"] == pytest.approx(positive[item["word"]], abs=1e-4)
    assert [item["drop"] for item in result] == sorted((i["drop"] for i in result), reverse=True)


def test_top_k_keeps_the_largest_drops(model):
    text = "banana bread cookie chocolate sweet ripe oven monkey"
    expected = sorted((d for d in rescored_drops(model, text, "banana").values() if d > 0),
                      reverse=True)
    result = explain(model, text, "banana", top_k=2)
    assert [item["drop"] for item in result] == pytest.approx(expected[:2], abs=1e-4)


def test_unknown_words_never_explain(model):
    assert explain(model, "nothing here is in the vocabulary", "banana") == []
    assert {i["word"] for i in explain(model, "zzz banana qqq", "banana", 5)} <= {"banana"}


def test_many_posts_at_once_equal_one_by_one(model):
    texts = ["banana bread", "cookie chocolate sweet", "no known words", "ripe banana monkey"]
    labels = ["banana", "cookie", "other", "banana"]
    assert explain_many(model, texts, labels, 3) == [
        explain(model, t, l, 3) for t, l in zip(texts, labels)
    ]


def test_binary_sigmoid_model_explains_both_labels():
    model = Model.load(MODELS / "seed-binary.npz")
    text = "banana banana chocolate cookie sweet"
    for label in model.label_names:
        expected = {w: d for w, d in rescored_drops(model, text, label).items() if d > 0}
        got = {i["word"]: i["drop"] for i in explain(model, text, label, 4)}
        assert got.keys() == expected.keys()
        for word, drop in got.items():
            assert drop == pytest.approx(expected[word], abs=1e-4)


def test_seed_network_text_1_has_no_driving_word_and_text_2_does():
    model = Model.load(MODELS / "seed-multiclass.npz")
    # sheet text 1 (x = [0,0,3,0]): a¹ = 0 under ReLU, so the score is the empty post's
    assert explain(model, "banana banana banana", "banana") == []
    # sheet text 2 (x = [1,1,0,1]): the cookie score rests on its words
    expected = rescored_drops(model, "chocolate sweet cookie", "cookie")
    result = explain(model, "chocolate sweet cookie", "cookie")
    assert len(result) >= 1
    assert {i["word"]: i["drop"] for i in result} == {
        w: round(float(d), 4) for w, d in expected.items() if d > 0
    }


def test_bags_in_small_chunks_equal_one_post_at_a_time(model, monkeypatch):
    import monitor.explain as explain_module

    texts = ["banana bread", "cookie chocolate sweet oven", "no known words",
             "ripe banana monkey banana", "sweet sweet cookie", "oven"] * 3
    labels = ["banana", "cookie", "other", "banana", "cookie", "other"] * 3
    bags = model.vocabulary.bag_of_words(texts)
    one_pass = explain_module.explain_bags(model, bags, labels, 3)
    monkeypatch.setattr(explain_module, "MAX_VARIANTS", 3)  # a chunk per post or two
    assert explain_module.explain_bags(model, bags, labels, 3) == one_pass
    assert one_pass == [explain(model, t, l, 3) for t, l in zip(texts, labels)]
    assert sum(map(len, one_pass)) > 0
    for text, label, items in zip(texts, labels, one_pass):
        expected = rescored_drops(model, text, label)
        assert {i["word"]: i["drop"] for i in items} == pytest.approx(
            {w: d for w, d in sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
             if d > 0}, abs=1e-4)


def test_equal_drops_are_ordered_alphabetically(rng):
    model = Model.create(["zebra", "apple", "mango"], [4], ["banana", "cookie", "other"], rng)
    W1 = model.network.weights[0]
    W1[:, 1] = W1[:, 0]  # the three words have the same weights: the same drop
    W1[:, 2] = W1[:, 0]
    # the drops of one word over the labels sum to 0, so some label has positive drops
    results = [explain(model, "zebra mango apple", label, 3) for label in model.label_names]
    explained = [items for items in results if items]
    assert explained
    for items in explained:
        assert [i["word"] for i in items] == ["apple", "mango", "zebra"]
        assert len({i["drop"] for i in items}) == 1
