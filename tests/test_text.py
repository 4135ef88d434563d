"""Tokenizer and bag-of-words: Exercise 1 exactly, and social-media text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.seed import TEXTS, VOCABULARY
from monitor.text import Vocabulary, normalize, tokenize


@pytest.fixture
def sheet_vocab() -> Vocabulary:
    return Vocabulary(VOCABULARY)


def test_exercise_1_vectors(sheet_vocab):
    # the sheet prints x2 = [1,1,0,0]: a typo, cookie is v3 and Solution 3 uses [1,1,0,1]
    assert sheet_vocab.dense(TEXTS).tolist() == [[0, 0, 1, 0], [1, 1, 0, 1], [0, 0, 3, 0]]


def test_sheet_tokens():
    assert tokenize(TEXTS[0]) == ["a", "banana", "a", "day", "keep", "the", "doctor", "away"]
    assert tokenize(TEXTS[2]) == ["banana", "banana", "banana"]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("#banana", ["banana"]),
        ("#BananaBread", ["banana", "bread"]),
        ("#BANANA time", ["banana", "time"]),
        ("#oatmealcookies", ["oatmealcookie"]),
        ("@bananaman99 hi", ["hi"]),
        ("see https://t.co/BaNaNa and www.cookie.com/x", ["see", "and"]),
        ("bit.ly/cookies rocks", ["rock"]),
        ("🍌 smoothie", ["banana", "smoothie"]),
        ("🍪🍪", ["cookie", "cookie"]),
        ("BANANAS", ["banana"]),
        ("Cookies!!", ["cookie"]),
        ("cookie's crumbs", ["cookie", "crumb"]),
        ("don’t", ["dont"]),
        ("ＢＡＮＡＮＡ", ["banana"]),
        ("Straße STRASSE", ["strasse", "strasse"]),
        ("this glass bus", ["this", "glass", "bus"]),
        ("@ Sunrise Bakery", ["sunrise", "bakery"]),
    ],
)
def test_social_media_tokens(text, tokens):
    assert tokenize(text) == tokens


def test_emoji_other_than_food_are_tokens():
    assert tokenize("so good 😋") == ["so", "good", "😋"]


def test_vocabulary_entries_are_normalised_like_text():
    vocab = Vocabulary(["Bananas", "COOKIE"])
    assert vocab.words == ["banana", "cookie"]
    assert vocab.dense(["🍌 and cookies"]).tolist() == [[1, 1]]


def test_vocabulary_rejects_duplicates_after_normalisation():
    with pytest.raises(ValueError, match="duplicates"):
        Vocabulary(["banana", "Bananas"])


def test_out_of_vocabulary_text_is_the_zero_vector(sheet_vocab):
    bags = sheet_vocab.bag_of_words(["nothing known here", ""])
    assert bags.shape == (2, 4)
    assert bags.nnz == 0


def test_extend_appends_new_words_only(sheet_vocab):
    assert sheet_vocab.extend(["bread", "banana", "bread"]) == ["bread"]
    assert sheet_vocab.words[-1] == "bread"
    assert sheet_vocab.dense(["banana bread"]).tolist() == [[0, 0, 1, 0, 1]]


@given(st.lists(st.text(max_size=40), min_size=1, max_size=8))
def test_batch_equals_one_by_one(texts):
    vocab = Vocabulary(["banana", "cookie", "a", "the", "😋", "0"])
    batch = vocab.bag_of_words(texts).toarray()
    singles = np.vstack([vocab.bag_of_words([t]).toarray() for t in texts])
    assert np.array_equal(batch, singles)
    # counts equal the number of in-vocabulary tokens
    for row, text in zip(batch, texts):
        assert row.sum() == sum(token in vocab for token in tokenize(text))


@given(st.text(max_size=30))
def test_normalize_is_idempotent(word):
    assert normalize(normalize(word)) == normalize(word)
