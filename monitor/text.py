"""Tokenizer and bag-of-words, tuned for social-media posts.

Exercise 1 of the sheet: lowercase, ignore punctuation, sum one-hot vectors over a
vocabulary; a word outside the vocabulary contributes the zero vector.  On top of that,
because posts are not textbook sentences:

- Unicode case folding (``"BANANA"``, ``"Banana"`` and ``"ＢＡＮＡＮＡ"`` agree);
- hashtags count as their words: ``#banana`` → banana, ``#BananaBread`` → banana, bread;
- @mentions and links are dropped, so ``@bananaman99`` or ``bit.ly/cookie`` add nothing;
- 🍌 counts as the word banana and 🍪 as cookie; other emoji are tokens of their own;
- apostrophes inside words vanish (``don't`` → dont, ``cookie's`` → cookies → cookie);
- a light plural fold strips one final ``s`` (bananas → banana, cookies → cookie) from
  words of four or more letters that do not end in ``ss``, ``us`` or ``is``.

The same normalisation is applied to vocabulary words, so a vocabulary may be written
in any case or number.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain

import numpy as np
import scipy.sparse as sp

EMOJI_WORDS = {"🍌": "banana", "🍪": "cookie"}

# One alternative per kind of token, tried in this order.  Links and mentions match
# outside the group, so findall gives "" for them; everything else comes back whole
# and _tokens_of (cached) turns it into tokens.
_LINK = r"(?:https?://|www\.)\S+"
_BARE_LINK = r"\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|ly|co|io|me|gl|be)/\S*"
_MENTION = r"@\w+"
_KEPT = r"""(
      \#\w+                                    # hashtag
    | [^\W_]+(?:['’][^\W_]+)*                  # word
    | [\u2600-\u27bf\U0001f000-\U0001faff]     # emoji / pictograph
    )"""
_TOKEN = re.compile("|".join([_LINK, _BARE_LINK, _MENTION, _KEPT]), re.VERBOSE)
# A bare link needs a "/"; posts without one skip trying it at every word (same matches).
_TOKEN_NO_SLASH = re.compile("|".join([_LINK, _MENTION, _KEPT]), re.VERBOSE)


# In plain ASCII text with no link, mention, hashtag or apostrophe marks, the only
# alternative that can match is the word, and a word is a run of letters and digits.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9]+")
_MARKS = re.compile(r"[/@#'’]|www\.")


def _findall(text: str) -> list[str]:
    """Every _TOKEN match of a post, in order ("" for links and mentions)."""
    if text.isascii() and not _MARKS.search(text):
        return _PLAIN_WORD.findall(text)
    return (_TOKEN if "/" in text else _TOKEN_NO_SLASH).findall(text)


_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_]+")
_APOSTROPHE = re.compile(r"['’]")


@lru_cache(maxsize=1 << 17)
def normalize(word: str) -> str:
    """One word → its vocabulary form: NFKC, case-folded, apostrophes out, plural folded."""
    word = _APOSTROPHE.sub("", unicodedata.normalize("NFKC", word).casefold())
    if len(word) >= 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word


def _hashtag_words(tag: str) -> list[str]:
    """``BananaBread`` → [banana, bread]; ``banana`` → [banana]; ``BANANA`` → [banana]."""
    parts = _CAMEL.findall(tag) or [tag]
    return [normalize(part) for part in parts]


def tokenize(text: str) -> list[str]:
    """A post → its tokens in order (links and mentions dropped, emoji mapped)."""
    return list(chain.from_iterable(map(_tokens_of, _findall(text))))


@lru_cache(maxsize=1 << 17)
def _tokens_of(match: str) -> tuple[str, ...]:
    """One match of _TOKEN → its tokens: () for a link or mention, several for a hashtag.

    Posts repeat the same few thousand words, so caching this keeps the per-token work
    of tokenize() in C: findall, then one cache hit per match.
    """
    if not match:
        return ()
    if match[0] == "#":
        return tuple(_hashtag_words(match[1:]))
    if len(match) == 1 and not match.isalnum():  # the emoji alternative: one symbol
        return (EMOJI_WORDS.get(match, match),)
    return (normalize(match),)


class Vocabulary:
    """An ordered word list; word ``v_i`` is column ``i`` of a bag-of-words vector."""

    def __init__(self, words: Sequence[str]):
        normalized = [_normalize_entry(w) for w in words]
        self.index: dict[str, int] = {}
        for i, word in enumerate(normalized):
            if not word:
                raise ValueError(f"vocabulary entry {words[i]!r} is empty after normalisation")
            if word in self.index:
                raise ValueError(
                    f"vocabulary entry {words[i]!r} duplicates {normalized[self.index[word]]!r}"
                )
            self.index[word] = i
        self.words: list[str] = normalized
        self._match_ids = _MatchIds(self.index)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def extend(self, words: Iterable[str]) -> list[str]:
        """Append unseen words (already tokens); return the ones added, in order."""
        added = []
        for word in words:
            if word not in self.index:
                self.index[word] = len(self.words)
                self.words.append(word)
                added.append(word)
        if added:
            self._match_ids.clear()  # a match may now reach a new word
        return added

    def bag_of_words(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Posts → counts, a sparse matrix of shape ``(n_posts, n_vocab)``.

        Row i is the sum of the one-hot vectors of the in-vocabulary tokens of post i.
        The same as ``bag_of_tokens([tokenize(t) for t in texts])``, without building
        the token lists: each distinct match of the tokenizer is mapped to word ids once.
        """
        if len(texts) == 1:  # one post: count in Python, skip scipy's duplicate summing
            return self._one_row(*self.word_counts(texts[0]))
        ids_of = self._match_ids.__getitem__
        indptr = [0]
        ids: list[int] = []
        for text in texts:
            ids.extend(chain.from_iterable(map(ids_of, _findall(text))))
            indptr.append(len(ids))
        return self._counts_matrix(ids, indptr)

    def word_counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One post's bag of words as arrays, without a sparse matrix: (ids, counts).

        ``ids`` (n_words,) are the sorted distinct word ids and ``counts`` (n_words,) how
        often each occurs: exactly ``bag_of_words([text])``'s ``indices`` and ``data``.
        For the one-post-at-a-time paths, where building a scipy matrix costs more than
        the network does.
        """
        ids = sorted(chain.from_iterable(map(self._match_ids.__getitem__, _findall(text))))
        if len(set(ids)) == len(ids):
            return np.array(ids, dtype=np.int32), np.ones(len(ids))
        counted = Counter(ids)  # keeps the sorted order of first appearance
        return (
            np.fromiter(counted.keys(), dtype=np.int32, count=len(counted)),
            np.fromiter(counted.values(), dtype=np.float64, count=len(counted)),
        )

    def bag_of_tokens(self, token_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Tokenized posts → counts ``(n_posts, n_vocab)``; ids sorted within a row."""
        index = self.index
        indptr = [0]
        ids: list[int] = []
        for tokens in token_lists:
            ids.extend(i for i in map(index.get, tokens) if i is not None)
            indptr.append(len(ids))
        return self._counts_matrix(ids, indptr)

    def _one_row(self, ids: np.ndarray, counts: np.ndarray) -> sp.csr_matrix:
        """word_counts → a (1, n_vocab) CSR row; ids are already sorted and distinct."""
        indptr = np.array([0, len(ids)], dtype=np.int32)
        row = sp.csr_matrix((counts, ids, indptr), shape=(1, len(self.words)))
        row.has_canonical_format = True
        return row

    def _counts_matrix(self, ids: list[int], indptr: list[int]) -> sp.csr_matrix:
        """Row-wise word ids → CSR counts, repeated words summed, ids sorted in a row."""
        data = np.ones(len(ids), dtype=np.float64)
        matrix = sp.csr_matrix(
            (data, np.asarray(ids, dtype=np.int32), np.asarray(indptr, dtype=np.int64)),
            shape=(len(indptr) - 1, len(self.words)),
        )
        matrix.sum_duplicates()  # repeated words → one entry with their count
        return matrix

    def dense(self, texts: Sequence[str]) -> np.ndarray:
        """Bag-of-words as a dense ``(n_posts, n_vocab)`` array (small vocabularies only)."""
        return self.bag_of_words(texts).toarray()


class _MatchIds(dict):
    """Tokenizer match → word ids of its in-vocabulary tokens, filled on first sight."""

    LIMIT = 1 << 18  # distinct matches kept; a stream of typos must not grow it forever

    def __init__(self, index: dict[str, int]):
        super().__init__()
        self.index = index

    def __missing__(self, match: str) -> tuple[int, ...]:
        tokens = _tokens_of(match)
        ids = tuple(i for i in map(self.index.get, tokens) if i is not None)
        if len(self) >= self.LIMIT:
            self.clear()
        self[match] = ids
        return ids


def _normalize_entry(word: str) -> str:
    """A vocabulary entry as the tokenizer would produce it (emoji map to their word)."""
    if word.isascii() and word.isalnum() and word.islower() and normalize(word) == word:
        return word  # already a token (a saved model's words): skip the tokenizer
    if word in EMOJI_WORDS:
        return EMOJI_WORDS[word]
    tokens = tokenize(word)
    if len(tokens) == 1:
        return tokens[0]
    return normalize(word.strip())
