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
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

EMOJI_WORDS = {"🍌": "banana", "🍪": "cookie"}

_TOKEN = re.compile(
    r"""
      (?:https?://|www\.)\S+                                   # link: dropped
    | \b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|ly|co|io|me|gl|be)/\S*  # bare link: dropped
    | @\w+                                                     # mention: dropped
    | \#(\w+)                                                  # 1: hashtag
    | ([^\W_]+(?:['’][^\W_]+)*)                                # 2: word
    | ([\u2600-\u27bf\U0001f000-\U0001faff])                   # 3: emoji / pictograph
    """,
    re.VERBOSE,
)
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
    tokens: list[str] = []
    for hashtag, word, emoji in _TOKEN.findall(text):
        if word:
            tokens.append(normalize(word))
        elif hashtag:
            tokens.extend(_hashtag_words(hashtag))
        elif emoji:
            tokens.append(EMOJI_WORDS.get(emoji, emoji))
    return tokens


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
        return added

    def bag_of_words(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Posts → counts, a sparse matrix of shape ``(n_posts, n_vocab)``.

        Row i is the sum of the one-hot vectors of the in-vocabulary tokens of post i.
        """
        return self.bag_of_tokens([tokenize(t) for t in texts])

    def bag_of_tokens(self, token_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Tokenized posts → counts ``(n_posts, n_vocab)``; ids sorted within a row."""
        index = self.index
        indptr = [0]
        ids: list[int] = []
        for tokens in token_lists:
            ids.extend(i for i in map(index.get, tokens) if i is not None)
            indptr.append(len(ids))
        data = np.ones(len(ids), dtype=np.float64)
        matrix = sp.csr_matrix(
            (data, np.asarray(ids, dtype=np.int32), np.asarray(indptr, dtype=np.int64)),
            shape=(len(token_lists), len(self.words)),
        )
        matrix.sum_duplicates()  # repeated words → one entry with their count
        return matrix

    def dense(self, texts: Sequence[str]) -> np.ndarray:
        """Bag-of-words as a dense ``(n_posts, n_vocab)`` array (small vocabularies only)."""
        return self.bag_of_words(texts).toarray()


def _normalize_entry(word: str) -> str:
    """A vocabulary entry as the tokenizer would produce it (emoji map to their word)."""
    if word in EMOJI_WORDS:
        return EMOJI_WORDS[word]
    tokens = tokenize(word)
    if len(tokens) == 1:
        return tokens[0]
    return normalize(word.strip())
