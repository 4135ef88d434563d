"""Tokenizer and bag-of-words: Exercise 1 exactly, and social-media text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import text
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
    # counts equal the number of vocabulary words the tokens stand for
    for row, text in zip(batch, texts):
        assert row.sum() == sum(len(vocab.segment(token)) for token in tokenize(text))


# text that exercises the tokenizer: marks, links, emoji, apostrophes, Unicode spaces
_POSTY = st.lists(
    st.sampled_from(["banana", "Cookies", "#BananaBread", "#oatmealcookies", "@bob", "a",
                     "bit.ly/x", "https://t.co/a b", "www.x.org", "don't", "’s", "🍌", "🍪",
                     "😋", "0", "the", "x\x00y", "\u3000", "\u2028", "\xa0", "\x1c", "\t",
                     " ", "\n", ".", "!", "'", "#", "/", "ＢＡＮＡＮＡ"])
    | st.text(max_size=6),
    max_size=12,
).map("".join)


@given(st.lists(_POSTY, min_size=1, max_size=8))
def test_batch_ids_equal_the_tokenizer_on_each_whole_post(texts):
    # the batch path reads whitespace-separated chunks (cached); tokenize() runs the
    # regex over the whole post: the counts must be the same, word for word
    vocab = Vocabulary(["banana", "cookie", "a", "the", "😋", "0", "bread", "oatmeal", "dont"])
    expected = vocab.bag_of_tokens([tokenize(t) for t in texts]).toarray()
    assert np.array_equal(vocab.bag_of_words(texts).toarray(), expected)
    for text, row in zip(texts, expected):
        ids, counts = vocab.word_counts(text)
        assert np.array_equal(row[ids], counts) and counts.sum() == row.sum()


@given(st.lists(_POSTY, max_size=8))
def test_word_ids_batch_is_word_ids_post_by_post(texts):
    # the learner's batch tokenization: one pass, the same ids in text order per post
    vocab = Vocabulary(["banana", "cookie", "a", "the", "😋", "0", "bread", "oatmeal", "dont"])
    ids, indptr = vocab.word_ids_batch(texts)
    assert ids.dtype == np.int32 and indptr.dtype == np.int64
    assert indptr.tolist()[0] == 0 and len(indptr) == len(texts) + 1
    for i, text in enumerate(texts):
        assert ids[indptr[i]:indptr[i + 1]].tolist() == vocab.word_ids(text).tolist()
        assert vocab.word_ids(text).tolist() == vocab.token_ids(tokenize(text))


def test_regex_whitespace_is_exactly_str_isspace():
    # the premise of chunking a post with str.split(): no token contains or starts with
    # a character that split() treats as whitespace, because \s is that very set
    import re
    import sys

    space = re.compile(r"\s")
    assert [hex(c) for c in range(sys.maxunicode + 1)
            if bool(space.match(chr(c))) != chr(c).isspace()] == []


def test_chunk_cache_overflow_mid_batch_keeps_post_boundaries(monkeypatch):
    from monitor import text

    monkeypatch.setattr(text._ChunkIds, "LIMIT", 3)  # cleared again and again in a batch
    vocab = Vocabulary(["banana", "cookie"])
    texts = [f"banana w{i} cookie x{i}" for i in range(50)] + ["", "cookie cookie"]
    bags = vocab.bag_of_words(texts)
    assert bags.shape == (52, 2)
    assert bags.toarray().tolist() == [[1, 1]] * 50 + [[0, 0], [0, 2]]


@given(st.text(max_size=30))
def test_normalize_is_idempotent(word):
    assert normalize(normalize(word)) == normalize(word)


SPLIT_VOCABULARY = "oatmeal cookie bake sale and cream banana bread pea nut peanut butter a".split()


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("oatmealcookie", ["oatmeal", "cookie"]),  # #oatmealcookies, plural folded first
        ("cookiesandcream", ["cookie", "and", "cream"]),  # inner plural folded too
        ("bakesale", ["bake", "sale"]),
        ("peanutbutter", ["peanut", "butter"]),  # fewest parts: not pea + nut + butter
        ("banana", ["banana"]),  # a vocabulary word is itself
        ("bananaxyz", []),  # every part must be a vocabulary word
        ("abanana", []),  # parts have at least 3 letters: "a" is not one
        ("banana2bread", []),  # letters only
        ("bananabrot", []),
    ],
)
def test_segment_run_together_words(token, words):
    assert Vocabulary(SPLIT_VOCABULARY).segment(token) == words


def test_run_together_hashtag_counts_as_its_words():
    vocab = Vocabulary(SPLIT_VOCABULARY)
    texts = ["#oatmealcookies", "at the #bakesale", "oatmeal cookie bake sale"]
    bags = vocab.bag_of_words(texts)
    oatmeal, cookie, bake, sale = (vocab.index[w] for w in ("oatmeal", "cookie", "bake", "sale"))
    assert bags[0].indices.tolist() == [oatmeal, cookie]
    assert bags[1].indices.tolist() == [bake, sale]
    assert vocab.bag_of_words(["#oatmealcookies"]).indices.tolist() == [oatmeal, cookie]
    assert vocab.bag_of_tokens([tokenize(t) for t in texts]).toarray().tolist() == (
        bags.toarray().tolist()
    )
    assert vocab.word_counts("#oatmealcookies cookies")[1].tolist() == [1.0, 2.0]


def test_run_together_word_in_the_vocabulary_is_not_split():
    vocab = Vocabulary(SPLIT_VOCABULARY + ["bakesale"])
    assert vocab.segment("bakesale") == ["bakesale"]
    assert vocab.dense(["#bakesale"])[0].sum() == 1


def test_extend_reaches_parts_of_words_already_seen():
    vocab = Vocabulary(["oatmeal"])
    assert vocab.dense(["#oatmealcookies"]).sum() == 0  # "cookie" unknown: no split
    vocab.extend(["cookie"])
    assert vocab.segment("oatmealcookie") == ["oatmeal", "cookie"]
    assert vocab.dense(["#oatmealcookies"]).tolist() == [[1, 1]]


def test_chunk_cache_starts_with_the_vocabularys_plain_words_exactly():
    """The words cached up front map to what the tokenizer finds for them, and only
    words that are their own token are cached (not a plural, an apostrophe, a capital
    inside, non-ASCII, or a word the fold would change)."""
    words = ["banana", "cookie", "boss", "bus", "basis", "2024", "r2d2", "a", "is",
             "cafe", "café", "news", "dont", "x"]
    vocabulary = Vocabulary(words)
    cached = {chunk: ids for chunk, ids in vocabulary._chunk_ids.items()
              if chunk != text._SEPARATOR}
    assert set(cached) == {
        "banana", "Banana", "cookie", "Cookie", "boss", "Boss", "bus", "Bus", "basis", "Basis",
        "2024", "r2d2", "R2d2", "a", "A", "is", "Is", "cafe", "Cafe", "dont", "Dont", "x", "X",
        "new", "New",
    }  # café: not ASCII; "news" is stored folded, as "new"
    for chunk, ids in cached.items():  # the tokenizer's own answer, without the cache
        assert ids == tuple(vocabulary.token_ids(text.tokenize(chunk))), chunk
    assert dict(vocabulary._match_ids) == cached  # the same head start for matches
    assert vocabulary.word_ids("Banana. Boss! (cafe) #new").tolist() == [0, 2, 9, 11]
    vocabulary.extend(["bananabread"])  # caches start again, with the new word too
    assert vocabulary._chunk_ids["Bananabread"] == (len(vocabulary) - 1,)
    assert vocabulary._match_ids["bananabread"] == (len(vocabulary) - 1,)


def test_chunk_cache_head_start_is_skipped_for_a_vocabulary_too_big_for_it(monkeypatch):
    monkeypatch.setattr(text._Bounded, "LIMIT", 8)
    vocabulary = Vocabulary(["banana", "cookie", "bread", "cake", "pie"])  # 10 chunks > 4
    assert dict(vocabulary._chunk_ids) == {text._SEPARATOR: (-1,)}
    assert dict(vocabulary._match_ids) == {}
    assert vocabulary.word_ids("Banana pie").tolist() == [0, 4]
