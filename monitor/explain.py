"""Why a post scored high: the words whose removal lowers its score the most.

For a post x (bag of words) and a class c, the drop of word w is

    drop(w) = p_c(x) − p_c(x without every occurrence of w)

and the explanation is the ``top_k`` words with the largest positive drop.  Words the
vocabulary does not know cannot move the score and never appear.

Leaving w out changes only the first layer, z¹ = W¹x + b¹, by −count(w)·W¹[:, w]; so every
variant of a post is its z¹ minus one column of W¹, and only the hidden layers are
recomputed — one batched forward pass for all the posts of a call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.network import relu

CHUNK = 256  # posts per batched pass (bounds memory: Σ words × n_1 floats)


def explain(model, text: str, label: str, top_k: int = 5) -> list[dict]:
    """[{"word": w, "drop": p − p_without_w}, ...] for ``label``, largest drop first."""
    return explain_many(model, [text], [label], top_k)[0]


def explain_many(model, texts: Sequence[str], labels: Sequence[str],
                 top_k: int = 5) -> list[list[dict]]:
    """``explain`` for many posts at once, one list per (text, label)."""
    result: list[list[dict]] = []
    for start in range(0, len(texts), CHUNK):
        result += _explain_chunk(model, texts[start:start + CHUNK],
                                 labels[start:start + CHUNK], top_k)
    return result


def _explain_chunk(model, texts, labels, top_k) -> list[list[dict]]:
    network = model.network
    bags = model.vocabulary.bag_of_words(list(texts)).tocsr()  # (n, n_vocab)
    z1 = network.first_layer(bags)  # (n, n_1)
    owner = np.repeat(np.arange(len(texts)), np.diff(bags.indptr))  # (n_words,)
    word_ids, counts = bags.indices, bags.data  # (n_words,)
    W1T = network.weights[0].T  # (n_vocab, n_1)
    variants = z1[owner] - counts[:, None] * W1T[word_ids]  # (n_words, n_1)
    columns = np.array([model.label_names.index(label) for label in labels], dtype=int)
    p_full = _label_probabilities(model, z1)[np.arange(len(texts)), columns]  # (n,)
    p_without = _label_probabilities(model, variants)[np.arange(len(owner)), columns[owner]]
    drops = p_full[owner] - p_without  # (n_words,)
    words = model.vocabulary.words
    explanations = []
    for i in range(len(texts)):
        lo, hi = bags.indptr[i], bags.indptr[i + 1]
        order = sorted(range(lo, hi), key=lambda j: (-drops[j], words[word_ids[j]]))
        explanations.append([
            {"word": words[word_ids[j]], "drop": round(float(drops[j]), 4)}
            for j in order[:top_k] if drops[j] > 0
        ])
    return explanations


def _label_probabilities(model, z1: np.ndarray) -> np.ndarray:
    """From first-layer pre-activations (m, n_1) to scores for model.label_names (m, k)."""
    network = model.network
    z = z1
    for W, b in zip(network.weights[1:], network.biases[1:]):
        z = relu(z) @ W.T + b
    p = network.activate_output(z)
    if network.output == "sigmoid":  # one unit: p(class), and other = 1 − p
        return np.hstack([p, 1.0 - p])
    return p
