"""The shipped default model on short posts, said the way people say it (issue 3).

Every post here is short, none is verbatim (case-folded) a post of the training split,
and the model must label each one right: food posts alert however they are phrased
(compound hashtags, emoji, no keyword at all), and posts that merely contain the word
do not.
"""

from __future__ import annotations

import json

import pytest

from monitor.model import Model, default_model_path
from tests.conftest import ROOT

TRAIN = ROOT / "corpus" / "banana-cookie" / "train.jsonl"

FOOD = [
    ("banana pancakes", "banana"),
    ("🍌 smoothie", "banana"),
    ("#bananabread", "banana"),
    ("#BananaMuffins", "banana"),
    ("#bananawaffles", "banana"),  # run-together hashtag, split into banana + waffle
    ("🍌 bread", "banana"),
    ("frozen 🍌 bites", "banana"),
    ("banana nut muffins", "banana"),
    ("#oatmealcookies", "cookie"),
    ("#oatmealraisincookies", "cookie"),  # split into oatmeal + raisin + cookie
    ("#chocolatechipcookies", "cookie"),
    ("#peanutbuttercookies", "cookie"),
    ("baked a batch for the bake sale", "cookie"),  # no keyword at all
    ("baked cookies for the bake sale", "cookie"),
    ("🍪 and milk", "cookie"),
    ("#snickerdoodles", "cookie"),
]
HARD_NEGATIVES = [
    "this party went bananas",
    "the crowd went bananas",
    "accept all cookies",
    "clear cookies and cache",
    "my dog Cookie",
    "my cat Banana",
    "Banana Republic sale",
    "Banana Republic sale today",
    "#cookieclicker",
    "baked brownies for the bake sale",
]
CASES = FOOD + [(text, "other") for text in HARD_NEGATIVES]


@pytest.fixture(scope="module")
def model() -> Model:
    return Model.load(default_model_path())


def test_cases_are_not_training_posts():
    with open(TRAIN, encoding="utf-8") as handle:
        train = {" ".join(json.loads(line)["text"].casefold().split()) for line in handle}
    assert not [text for text, _ in CASES if text.casefold() in train]


@pytest.mark.parametrize(("text", "label"), CASES)
def test_default_model_labels_short_posts(model, text, label):
    [result] = model.score([text])
    assert result["label"] == label, result["scores"]


def test_batch_and_one_by_one_agree(model):
    texts = [text for text, _ in CASES]
    batch = [line["label"] for line in model.score(texts)]
    assert batch == [label for _, label in CASES]


def test_compound_hashtags_reach_their_words(model):
    vocabulary = model.vocabulary
    assert "bananawaffle" not in vocabulary and "oatmealraisincookie" not in vocabulary
    assert vocabulary.segment("bananawaffle") == ["banana", "waffle"]
    assert vocabulary.segment("oatmealraisincookie") == ["oatmeal", "raisin", "cookie"]
