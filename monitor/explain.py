"""Why a post scored high: the words whose removal lowers its score the most.

For a post x (bag of words) and a class c, the drop of word w is

    drop(w) = p_c(x) − p_c(x without every occurrence of w)

and the explanation is the ``top_k`` words with the largest positive drop (ties: the
word first in alphabetical order).  Words the vocabulary does not know cannot move the
score and never appear.

Leaving w out changes only the first layer, z¹ = W¹x + b¹, by −count(w)·W¹[:, w]; so every
variant of a post is its z¹ minus one column of W¹.  All the variants of all the posts of
a call are stacked into one matrix and only the hidden layers are recomputed — one
batched forward pass — and the top k of every post are picked with one sort.

``explain_bags`` takes bags of words already built (the daemon reuses the ones it scored
with, so a post is tokenized once); ``explain_many`` tokenizes the texts first.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np

from monitor.network import relu

MAX_VARIANTS = 1 << 12  # variant rows per forward pass: rows × n_1 floats stay in cache

_word_ranks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def explain(model, text: str, label: str, top_k: int = 5) -> list[dict]:
    """[{"word": w, "drop": p − p_without_w}, ...] for ``label``, largest drop first."""
    return explain_many(model, [text], [label], top_k)[0]


def explain_many(model, texts: Sequence[str], labels: Sequence[str],
                 top_k: int = 5) -> list[list[dict]]:
    """``explain`` for many posts at once, one list per (text, label)."""
    if len(texts) == 0:
        return []
    return explain_bags(model, model.vocabulary.bag_of_words(list(texts)), labels, top_k)


def explain_bags(model, bags, labels: Sequence[str], top_k: int = 5) -> list[list[dict]]:
    """``explain`` for posts given as bags of words: CSR (n_posts, n_vocab), one label each."""
    bags = bags.tocsr()
    n = bags.shape[0]
    if n == 0 or top_k <= 0:
        return [[] for _ in range(n)]
    names = model.label_names
    columns = np.fromiter((names.index(label) for label in labels), dtype=np.intp, count=n)
    picked, drops = [], []
    n_1 = model.network.weights[0].shape[0]
    chunks = list(_chunks(bags.indptr, MAX_VARIANTS))
    rows = max(int(bags.indptr[hi] - bags.indptr[lo]) for lo, hi in chunks)
    # two scratch buffers for every chunk: fresh multi-MB arrays per chunk would each be
    # a new mmap (and its page faults) in a long-running process
    buffers = (np.empty((rows, n_1)), np.empty((rows, n_1)))
    for lo, hi in chunks:
        chunk_picked, chunk_drops = _top_words(model, bags[lo:hi], columns[lo:hi], top_k,
                                               buffers)
        picked.append(chunk_picked + bags.indptr[lo])
        drops.append(chunk_drops)
    return _as_lists(model, bags, np.concatenate(picked), np.concatenate(drops))


def _chunks(indptr: np.ndarray, max_rows: int):
    """Post ranges [lo, hi) whose words fit in ``max_rows`` (a post is never split)."""
    n, lo = len(indptr) - 1, 0
    while lo < n:
        hi = int(np.searchsorted(indptr, indptr[lo] + max_rows, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        yield lo, hi
        lo = hi


def _top_words(model, bags, columns: np.ndarray, top_k: int,
               buffers: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Entries of ``bags.indices`` that explain their post: (m,) positions, post order and
    largest drop first within a post, at most ``top_k`` per post, drop > 0; and drops (m,).
    ``buffers``: two scratch arrays of at least (n_words, n_1)."""
    network = model.network
    n = bags.shape[0]
    z1 = network.first_layer(bags)  # (n, n_1)
    owner = np.repeat(np.arange(n), np.diff(bags.indptr))  # (n_words,)
    word_ids, counts = bags.indices, bags.data  # (n_words,)
    W1T = network.weights[0].T  # (n_vocab, n_1)
    m = len(owner)
    variants = np.take(z1, owner, axis=0, out=buffers[0][:m])  # (n_words, n_1)
    removed = np.take(W1T, word_ids, axis=0, out=buffers[1][:m])
    if not (counts == 1).all():  # the common case: no word repeated, skip the product
        removed *= counts[:, None]
    variants -= removed
    p_full = _label_probabilities(model, z1)[np.arange(n), columns]  # (n,)
    np.maximum(variants, 0.0, out=variants)  # the first ReLU, in place
    p_without = _label_probabilities(model, variants, activated=True)[
        np.arange(m), columns[owner]]
    drops = p_full[owner] - p_without  # (n_words,)
    positive = np.flatnonzero(drops > 0)
    rank = _alphabetical_rank(model.vocabulary)[word_ids[positive]]
    order = positive[np.lexsort((rank, -drops[positive], owner[positive]))]
    owners = owner[order]  # post, then largest drop, then word
    position = np.arange(len(order)) - np.searchsorted(owners, owners)  # within its post
    order = order[position < top_k]
    return order, drops[order]


def _as_lists(model, bags, picked: np.ndarray, drops: np.ndarray) -> list[list[dict]]:
    """Picked entries → one list of {"word", "drop"} per post."""
    words = model.vocabulary.words
    owner = np.searchsorted(bags.indptr, picked, side="right") - 1
    per_post = np.bincount(owner, minlength=bags.shape[0]).tolist()
    items = [{"word": words[w], "drop": d}
             for w, d in zip(bags.indices[picked].tolist(), np.round(drops, 4).tolist())]
    result, at = [], 0
    for count in per_post:
        result.append(items[at:at + count])
        at += count
    return result


def _alphabetical_rank(vocabulary) -> np.ndarray:
    """rank[word id] = the word's position in alphabetical order (n_vocab,), cached."""
    words = vocabulary.words
    cached = _word_ranks.get(vocabulary)
    if cached is None or len(cached) != len(words):
        cached = np.empty(len(words), dtype=np.intp)
        cached[sorted(range(len(words)), key=words.__getitem__)] = np.arange(len(words))
        _word_ranks[vocabulary] = cached
    return cached


def _label_probabilities(model, z1: np.ndarray, activated: bool = False) -> np.ndarray:
    """From first-layer pre-activations (m, n_1) to scores for model.label_names (m, k);
    ``activated``: z1 already went through the ReLU."""
    network = model.network
    z = z1
    for layer, (W, b) in enumerate(zip(network.weights[1:], network.biases[1:])):
        z = (z if activated and layer == 0 else relu(z)) @ W.T + b
    p = network.activate_output(z)
    if network.output == "sigmoid":  # one unit: p(class), and other = 1 − p
        return np.hstack([p, 1.0 - p])
    return p
