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
  words of four or more letters that do not end in ``ss``, ``us`` or ``is``;
- a run-together word outside the vocabulary (``#oatmealcookies``, ``bakesale``) counts
  as the vocabulary words it is made of, if there are any (Vocabulary.segment).

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

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where a matrix is built: one-post paths never load scipy
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


# Tokens never span whitespace (no alternative of _TOKEN matches or starts with a
# character str.isspace() calls whitespace, and re's \s is exactly that set), so a post's
# matches are those of its whitespace-separated chunks, in order.  Posts repeat the same
# chunks ("cookies", "#bananabread", "I'm", "lol!"), so the word ids of each distinct
# chunk are cached (_ChunkIds) and a batch becomes one str.split and one dict lookup per
# chunk, all in C; only an unseen chunk goes through the regex.
_SEPARATOR = "\x00"  # a chunk of its own between posts; a batch containing it goes post by post
_JOIN = f" {_SEPARATOR} "


_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_]+")
_APOSTROPHE = re.compile(r"['’]")


@lru_cache(maxsize=1 << 17)
def normalize(word: str) -> str:
    """One word → its vocabulary form: NFKC, case-folded, apostrophes out, plural folded."""
    if word.isascii():  # NFKC leaves ASCII alone and casefold is lower there
        word = word.lower().replace("'", "")
    else:
        word = _APOSTROPHE.sub("", unicodedata.normalize("NFKC", word).casefold())
    return _fold_plural(word)


def _fold_plural(word: str) -> str:
    """The light plural fold: one final ``s`` off a word of four or more letters that
    does not end in ``ss``, ``us`` or ``is`` (bananas → banana, cookies → cookie)."""
    if len(word) >= 4 and word[-1] == "s" and not word.endswith(("ss", "us", "is")):
        return word[:-1]
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
        self._token_ids = _TokenIds(self)
        self._match_ids = _MatchIds(self._token_ids)
        self._chunk_ids = _ChunkIds(self._match_ids)

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
        if added:  # a token or match may now reach a new word
            self._token_ids.clear()
            self._match_ids.clear()
            self._chunk_ids.clear()
        return added

    def segment(self, token: str) -> list[str]:
        """The vocabulary words a token counts as: itself, its parts, or none.

        ``[token]`` for a vocabulary word.  An out-of-vocabulary token of ASCII letters
        is split into vocabulary words when it is made of nothing else: ``oatmealcookie``
        → [oatmeal, cookie], ``cookiesandcream`` → [cookie, and, cream] (each part
        plural-folded like a word).  Parts have at least 3 letters; of the possible
        splits the one with the fewest parts wins, then the one with the longest parts.
        Anything else → [].
        """
        return [self.words[i] for i in self._token_ids[token]]

    def token_ids(self, tokens: Iterable[str]) -> list[int]:
        """Tokens (``tokenize``'s) → the word ids they count as, in order (see segment)."""
        return list(chain.from_iterable(map(self._token_ids.__getitem__, tokens)))

    def bag_of_words(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Posts → counts, a sparse matrix of shape ``(n_posts, n_vocab)``.

        Row i is the sum of the one-hot vectors of the in-vocabulary tokens of post i.
        The same as ``bag_of_tokens([tokenize(t) for t in texts])``, without building
        the token lists: each distinct whitespace-separated chunk is tokenized and mapped
        to word ids once (run-together words split as ``segment`` says).
        """
        if len(texts) == 1:  # one post: count in Python, skip scipy's duplicate summing
            return self._one_row(*self.word_counts(texts[0]))
        return self._counts_matrix(*self.word_ids_batch(texts))

    def word_ids_batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Posts → the word ids of their tokens in text order, repeats included, as CSR
        pieces: (ids (n_tokens,) int32, indptr (n_posts + 1,) int64); post i's are
        ``ids[indptr[i]:indptr[i+1]]``, ``word_ids(texts[i])`` each.

        One pass for the batch: one ``str.split`` of the joined posts and one cached
        lookup per whitespace-separated chunk, all in C.
        """
        joined = _JOIN.join(texts)
        if joined.count(_SEPARATOR) != len(texts) - 1:  # a post contains the separator
            pieces = [self.word_ids(text) for text in texts]
            indptr = np.zeros(len(texts) + 1, dtype=np.int64)
            np.cumsum([len(p) for p in pieces], out=indptr[1:])
            return np.concatenate(pieces or [np.zeros(0, np.int32)]), indptr
        chunks = joined.split()
        chunks.append(_SEPARATOR)  # _ChunkIds maps it to (-1,): the end of a post
        flat = np.fromiter(chain.from_iterable(map(self._chunk_ids.__getitem__, chunks)),
                           dtype=np.int32)
        ends = np.flatnonzero(flat < 0)  # (n_posts,): where each post's separator is
        indptr = np.empty(len(ends) + 1, dtype=np.int64)
        indptr[0] = 0
        np.subtract(ends, np.arange(len(ends)), out=indptr[1:])
        return flat[flat >= 0], indptr

    def word_counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One post's bag of words as arrays, without a sparse matrix: (ids, counts).

        ``ids`` (n_words,) are the sorted distinct word ids and ``counts`` (n_words,) how
        often each occurs: exactly ``bag_of_words([text])``'s ``indices`` and ``data``.
        For the one-post-at-a-time paths, where building a scipy matrix costs more than
        the network does.
        """
        ids = sorted(self._ids(text))
        if len(set(ids)) == len(ids):
            return np.array(ids, dtype=np.int32), np.ones(len(ids))
        counted = Counter(ids)  # keeps the sorted order of first appearance
        return (
            np.fromiter(counted.keys(), dtype=np.int32, count=len(counted)),
            np.fromiter(counted.values(), dtype=np.float64, count=len(counted)),
        )

    def word_ids(self, text: str) -> np.ndarray:
        """One post → the word ids of its tokens in text order, repeats included
        (n_tokens,) int32: what ``word_counts`` counts (``Network.learn_ids`` takes it)."""
        return np.fromiter(self._ids(text), dtype=np.int32)

    def _ids(self, text: str) -> Iterable[int]:
        """One post → the word ids of its tokens, in order."""
        if _SEPARATOR in text:  # _ChunkIds keeps that chunk for the end of a post
            return chain.from_iterable(map(self._match_ids.__getitem__, _findall(text)))
        return chain.from_iterable(map(self._chunk_ids.__getitem__, text.split()))

    def bag_of_tokens(self, token_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Tokenized posts → counts ``(n_posts, n_vocab)``; ids sorted within a row."""
        ids_of = self._token_ids.__getitem__
        indptr = [0]
        ids: list[int] = []
        for tokens in token_lists:
            ids.extend(chain.from_iterable(map(ids_of, tokens)))
            indptr.append(len(ids))
        return self._counts_matrix(ids, indptr)

    def _one_row(self, ids: np.ndarray, counts: np.ndarray) -> sp.csr_matrix:
        """word_counts → a (1, n_vocab) CSR row; ids are already sorted and distinct."""
        import scipy.sparse as sp

        indptr = np.array([0, len(ids)], dtype=np.int32)
        row = sp.csr_matrix((counts, ids, indptr), shape=(1, len(self.words)))
        row.has_canonical_format = True
        return row

    def _counts_matrix(self, ids: Sequence[int], indptr: Sequence[int]) -> sp.csr_matrix:
        """Row-wise word ids → CSR counts, repeated words summed, ids sorted in a row."""
        import scipy.sparse as sp

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


class _Bounded(dict):
    """A cache filled on first sight (``__missing__``) that starts afresh at ``LIMIT``
    entries: a stream of unique tokens, links or typos must not grow it forever."""

    LIMIT = 1 << 18

    def _head_start(self, entries: dict[str, tuple[int, ...]]) -> None:
        """Cache these exact entries up front, if they leave room for a stream's own
        (a vocabulary too big for that starts empty)."""
        if len(entries) <= self.LIMIT // 2:
            self.update(entries)

    def _keep(self, key: str, ids: tuple[int, ...]) -> tuple[int, ...]:
        if len(self) >= self.LIMIT:
            self.clear()
        self[key] = ids
        return ids


class _TokenIds(_Bounded):
    """Token → the word ids it counts as (Vocabulary.segment), filled on first sight."""

    def __init__(self, vocabulary: Vocabulary):
        super().__init__()
        self.index = vocabulary.index
        self.longest = max(map(len, vocabulary.words), default=0) + 1  # + a plural "s"
        self._plain: dict[str, tuple[int, ...]] | None = None

    def plain(self) -> dict[str, tuple[int, ...]]:
        """_plain_words of the vocabulary (built once per vocabulary size)."""
        if self._plain is None:
            self._plain = _plain_words(self.index)
        return self._plain

    def __missing__(self, token: str) -> tuple[int, ...]:
        i = self.index.get(token)
        if i is not None:
            ids: tuple[int, ...] = (i,)
        elif token.isascii() and token.isalpha() and 2 * MIN_PART <= len(token) <= MAX_SPLIT:
            ids = self._split(token)
        else:
            ids = ()
        return self._keep(token, ids)

    def clear(self) -> None:
        super().clear()
        self.longest = max(map(len, self.index), default=0) + 1
        self._plain = None  # the vocabulary grew (or this cache overflowed): built again

    def _split(self, word: str) -> tuple[int, ...]:
        """Dynamic programming over prefixes: best[j] is the best split of word[:j] as
        (number of parts, −Σ part length², ids), or None when it has none."""
        best: list[tuple[int, int, tuple[int, ...]] | None] = [None] * (len(word) + 1)
        best[0] = (0, 0, ())
        for end in range(MIN_PART, len(word) + 1):
            for start in range(max(0, end - self.longest), end - MIN_PART + 1):
                if best[start] is None:
                    continue
                i = self._part_id(word[start:end])
                if i is None:
                    continue
                parts, cost, ids = best[start]
                candidate = (parts + 1, cost - (end - start) ** 2, ids + (i,))
                if best[end] is None or candidate[:2] < best[end][:2]:
                    best[end] = candidate
        found = best[len(word)]
        return found[2] if found is not None and found[0] > 1 else ()

    def _part_id(self, part: str) -> int | None:
        """A lowercase ASCII part → its word id after the plural fold, or None."""
        return self.index.get(_fold_plural(part))


MIN_PART = 3  # letters in a part of a run-together word ("bakesale" → bake, sale)
MAX_SPLIT = 40  # longer out-of-vocabulary tokens are not split


class _MatchIds(_Bounded):
    """Tokenizer match → word ids of its tokens (via _TokenIds), filled on first sight."""

    def __init__(self, token_ids: _TokenIds):
        super().__init__()
        self.token_ids = token_ids
        self.clear()

    def clear(self) -> None:
        """Forget every match, and start again from the vocabulary's plain words (a
        word's first sight with punctuation, ``banana.``, is then one regex away)."""
        super().clear()
        self._head_start(self.token_ids.plain())

    def __missing__(self, match: str) -> tuple[int, ...]:
        tokens = _tokens_of(match)
        if len(tokens) == 1:  # the usual case: one word
            ids = self.token_ids[tokens[0]]
        else:
            ids = tuple(chain.from_iterable(map(self.token_ids.__getitem__, tokens)))
        return self._keep(match, ids)


class _ChunkIds(_Bounded):
    """Whitespace-separated chunk of a post → word ids of its matches (via _MatchIds)."""

    def __init__(self, match_ids: _MatchIds):
        super().__init__()
        self.match_ids = match_ids
        self.clear()

    def __missing__(self, chunk: str) -> tuple[int, ...]:
        if chunk.isalnum() and chunk.isascii():  # _findall's plain-word case: one match
            ids = self.match_ids[chunk]
        else:
            ids = tuple(chain.from_iterable(map(self.match_ids.__getitem__, _findall(chunk))))
        return self._keep(chunk, ids)

    def clear(self) -> None:
        """Forget every chunk but _SEPARATOR (→ (-1,), the end of a post in a batch),
        and start again from the vocabulary's own plain words (see _plain_words)."""
        super().clear()
        self[_SEPARATOR] = (-1,)
        self._head_start(self.match_ids.token_ids.plain())


def _plain_words(index: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """{chunk: its word ids} for each vocabulary word that is its own token: lowercase
    ASCII letters and digits that the plural fold leaves alone, alone (``banana``) and
    capitalized (``Banana``, a sentence's first word).  Exactly what _ChunkIds and
    _MatchIds would find for them (one match, one token, that word); cached up front,
    so a stream's first sight of a known word costs a lookup, not the tokenizer
    (≈ 0.5 µs a word, once per model load)."""
    words = [w for w in index if w.isascii() and w.isalnum() and (w.islower() or w.isdigit())
             and (w[-1] != "s" or _fold_plural(w) == w)]
    ids = [(index[w],) for w in words]
    plain = dict(zip(words, ids))
    plain.update(zip(map(str.capitalize, words), ids))
    return plain


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
