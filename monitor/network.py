"""The banana network: a feed-forward net in the notation of the exercise sheet.

Layer l computes  z^l = W^l a^(l-1) + b^l  and  a^l = f^l(z^l),  with W^l of shape
(n_l, n_(l-1)), a^0 = x the bag-of-words vector, ReLU for every hidden layer and, at the
output L, either one sigmoid unit (binary: p(class)) or a softmax over the classes.

Posts travel in rows, so a batch of activations A^l has shape (n_posts, n_l) and the
layer reads  Z^l = A^(l-1) W^lᵀ + b^l.  The input X is a sparse (n_posts, n_vocab)
count matrix: the first layer gathers only the columns of W^1 that a post's words pick
out instead of multiplying a long vector of zeros.

Training uses the cross-entropy loss  c = -Σ_i y_i ln ŷ_i  (binary: the two-class
version with ŷ = σ(z)).  With that pairing the output error is simply
δ^L = ŷ − y  (Exercise 4.2), and backprop runs it down the layers:

    δ^l = ReLU'(z^l) ⊙ (W^(l+1))ᵀ δ^(l+1)      ReLU'(0) = 0, as in the sheet
    ∂c/∂W^l = δ^l (a^(l-1))ᵀ                  ∂c/∂b^l = δ^l

and SGD moves every parameter against its gradient: W ← W − η ∂c/∂W (Exercise 5).
Over a mini-batch the gradients are averaged (optionally weighted per post).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import is_

import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

OUTPUTS = ("sigmoid", "softmax")


# ---------------------------------------------------------------- activations


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def relu_prime(z: np.ndarray) -> np.ndarray:
    """ReLU'(z): 1 where z > 0, else 0 (so ReLU'(0) = 0, as the sheet uses)."""
    return (z > 0).astype(z.dtype)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^-z), computed without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n_posts, n_classes) logits; shifting by the max is exact."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


_KERNELS = None
SMALL_DENSE = 4096  # predict_proba_bags: dense weights up to this many run compiled


def _kernels():
    """monitor.kernels, imported on first use: numba loads only where one post at a
    time is learned (or the drift guard re-scores), never for ``score`` or ``--help``."""
    global _KERNELS
    if _KERNELS is None:
        from monitor import kernels

        _KERNELS = kernels
    return _KERNELS


# ---------------------------------------------------------------- the network


@dataclass
class Trace:
    """What the forward pass remembers for backprop: Z[l-1] = z^l, A[l] = a^l (A[0] = X)."""

    Z: list[np.ndarray]
    A: list


class Network:
    """A ReLU MLP with a sigmoid or softmax output.

    ``weights[l-1]`` is W^l with shape (n_l, n_(l-1)); ``biases[l-1]`` is b^l, (n_l,).
    W^1 is stored column-major so that W^1ᵀ, shape (n_vocab, n_1), is a C-contiguous
    view: a word's weights are one contiguous row of it.
    """

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        biases: Sequence[np.ndarray],
        output: str = "softmax",
        copy: bool = True,
    ):
        """``copy=False`` adopts float64 arrays as they are (a model file's, just read)."""
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
        if len(weights) != len(biases) or not weights:
            raise ValueError("need one bias per weight matrix and at least one layer")
        # at most one copy each (W^1 straight to column-major: a 20,000-word W^1 is big)
        as_array = np.array if copy else np.asarray
        self.weights = [
            as_array(w, dtype=np.float64, order="F" if l == 0 else "C")
            for l, w in enumerate(weights)
        ]
        self.biases = [as_array(b, dtype=np.float64).reshape(-1) for b in biases]
        self.output = output
        self._kernel_cache: tuple | None = None  # see _kernel_args
        self._check_shapes()

    def _check_shapes(self) -> None:
        for l, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            if W.ndim != 2:
                raise ValueError(f"W{l} must be a matrix, got shape {W.shape}")
            if b.shape != (W.shape[0],):
                raise ValueError(f"b{l} has shape {b.shape}, W{l} needs ({W.shape[0]},)")
            if l > 1 and W.shape[1] != self.weights[l - 2].shape[0]:
                raise ValueError(
                    f"W{l} has shape {W.shape} but layer {l - 1} has "
                    f"{self.weights[l - 2].shape[0]} units"
                )
        if self.output == "sigmoid" and self.n_outputs != 1:
            raise ValueError("a sigmoid output has exactly one unit")
        if self.output == "softmax" and self.n_outputs < 2:
            raise ValueError("a softmax output needs at least two units")

    @classmethod
    def initialize(
        cls,
        sizes: Sequence[int],
        output: str,
        rng: np.random.Generator,
    ) -> Network:
        """Random weights for layer sizes [n_0 (vocabulary), n_1, ..., n_L], zero biases.

        Hidden layers use He initialisation, N(0, 2 / fan_in).  A bag-of-words input has
        only a handful of non-zero entries, so for W^1 the fan-in that matters is the
        number of words in a post, not the vocabulary size: we take 2/16 there.
        """
        weights, biases = [], []
        for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            fan_in = min(n_in, 16) if l == 1 else n_in
            weights.append(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(n_out, n_in)))
            biases.append(np.zeros(n_out))
        return cls(weights, biases, output)

    # -------------------------------------------------------------- sizes

    @property
    def sizes(self) -> list[int]:
        """[n_0, n_1, ..., n_L]: input size then the units of every layer."""
        return [self.weights[0].shape[1]] + [W.shape[0] for W in self.weights]

    @property
    def n_outputs(self) -> int:
        return self.weights[-1].shape[0]

    @property
    def n_parameters(self) -> int:
        """Every weight and bias: Σ_l n_l n_(l-1) + n_l  (Exercise 2.1)."""
        return sum(W.size + b.size for W, b in zip(self.weights, self.biases))

    # -------------------------------------------------------------- forward

    def first_layer(self, X) -> np.ndarray:
        """Z^1 = X W^1ᵀ + b^1 for sparse or dense X of shape (n_posts, n_vocab)."""
        if _issparse(X) and X.shape[0] == 1:  # one post: the word-counts path
            X = X.tocsr()
            return self.first_layer_counts(X.indices, X.data)
        W1T = self.weights[0].T  # (n_vocab, n_1), C-contiguous
        if _issparse(X):
            Z = np.asarray(X @ W1T)
        else:
            Z = np.asarray(X, dtype=np.float64) @ W1T
        return Z + self.biases[0]

    def first_layer_counts(self, ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Z^1 for one post given as word ids and counts (n_words,): shape (1, n_1).

        W^1 x only picks the columns of the post's words, so it is their sum weighted
        by the counts: the rows ``ids`` of W^1ᵀ, one contiguous row per word.
        """
        W1T = self.weights[0].T  # (n_vocab, n_1)
        return (counts @ W1T[ids])[None, :] + self.biases[0]

    def forward(self, X) -> Trace:
        """Run every layer, keeping z^l and a^l for backprop.  X: (n_posts, n_vocab)."""
        return self._forward_from(self.first_layer(X), X)

    def forward_counts(self, ids: np.ndarray, counts: np.ndarray) -> Trace:
        """``forward`` for one post as (ids, counts) (``Vocabulary.word_counts``), no
        sparse matrix; identical numbers to ``forward`` on its 1-row bag of words.
        The trace's A[0] is the pair (ids, counts)."""
        return self._forward_from(self.first_layer_counts(ids, counts), (ids, counts))

    def _forward_from(self, z1: np.ndarray, X) -> Trace:
        Z = [z1]
        A = [X]
        for W, b in zip(self.weights[1:], self.biases[1:]):
            A.append(relu(Z[-1]))
            Z.append(A[-1] @ W.T + b)
        A.append(self.activate_output(Z[-1]))
        return Trace(Z, A)

    def activate_output(self, z: np.ndarray) -> np.ndarray:
        return sigmoid(z) if self.output == "sigmoid" else softmax(z)

    def predict_proba(self, X) -> np.ndarray:
        """Output ŷ: (n_posts, 1) = p(class) for sigmoid, (n_posts, n_classes) for softmax."""
        return self.forward(X).A[-1]

    def predict_proba_counts(self, ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``predict_proba`` of one post as (ids, counts): shape (1, n_outputs)."""
        return self.forward_counts(ids, counts).A[-1]

    # -------------------------------------------------------------- loss

    def losses(self, X, y: np.ndarray) -> np.ndarray:
        """Cross-entropy per post, shape (n_posts,).  y: class indices (binary: 0/1)."""
        return self.losses_from_logits(self.forward(X).Z[-1], y)

    def losses_from_logits(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """-ln ŷ_t from the logits, stable for any size of z (log-sum-exp)."""
        y = np.asarray(y)
        if self.output == "sigmoid":
            z = z[:, 0]
            return np.logaddexp(0.0, z) - y * z  # -[y ln σ(z) + (1-y) ln(1-σ(z))]
        shifted = z - z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        return log_norm - shifted[np.arange(len(y)), y]

    def loss(self, X, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        """Mean (or weighted mean) cross-entropy over the batch."""
        return float(np.average(self.losses(X, y), weights=sample_weight))

    def one_hot(self, y: np.ndarray) -> np.ndarray:
        """Targets as the network's output shape: (n_posts, 1) or (n_posts, n_classes)."""
        y = np.asarray(y)
        if self.output == "sigmoid":
            return y.astype(np.float64).reshape(-1, 1)
        targets = np.zeros((len(y), self.n_outputs))
        targets[np.arange(len(y)), y] = 1.0
        return targets

    # -------------------------------------------------------------- backprop

    def backprop(
        self, X, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[list, list[np.ndarray], Trace]:
        """Gradients of the (weighted) mean loss: (dW, db, trace).

        dW[l-1] is ∂c/∂W^l with W^l's shape, except dW[0], which is returned sparse as
        (word_ids, rows): ∂c/∂(W^1ᵀ)[word_ids] = rows, shape (n_touched, n_1); every other
        column of W^1 has zero gradient (its word is in no post of the batch).
        """
        trace = self.forward(X)
        n = trace.Z[0].shape[0]
        weight = np.full(n, 1.0 / n) if sample_weight is None else (
            np.asarray(sample_weight, dtype=np.float64) / np.sum(sample_weight)
        )
        delta = (trace.A[-1] - self.one_hot(y)) * weight[:, None]  # δ^L = ŷ − y, per post
        dW, db, delta = self._backprop_layers(trace, delta)
        dW[0] = _sparse_input_gradient(X, delta)
        return dW, db, trace

    def _backprop_layers(self, trace: Trace, delta: np.ndarray) -> tuple[list, list, np.ndarray]:
        """Run δ^L down to δ^1: gradients of layers L..2 and both of layer 1's but dW[0].

        delta: δ^L, (n_posts, n_L), already weighted per post.  Returns (dW, db, δ^1)
        with dW[0] left for the caller (it depends on how the input is held).
        """
        dW: list = [None] * len(self.weights)
        db: list[np.ndarray] = [None] * len(self.weights)  # type: ignore[list-item]
        for l in range(len(self.weights) - 1, 0, -1):  # layers L .. 2 (0-based l)
            dW[l] = delta.T @ trace.A[l]  # δ^l (a^(l-1))ᵀ summed over posts
            db[l] = _sum_rows(delta)
            delta = relu_prime(trace.Z[l - 1]) * (delta @ self.weights[l])  # δ^(l-1)
        db[0] = _sum_rows(delta)
        return dW, db, delta

    def sgd_step(
        self, X, y: np.ndarray, learning_rate: float, sample_weight: np.ndarray | None = None
    ) -> float:
        """One SGD update on a mini-batch; returns the batch loss before the update."""
        if sample_weight is None and _is_one_canonical_row(X):
            return self.sgd_step_counts(X.indices, X.data, int(np.ravel(y)[0]), learning_rate)
        dW, db, trace = self.backprop(X, y, sample_weight)
        self.apply_gradients(dW, db, learning_rate)
        return float(np.average(self.losses_from_logits(trace.Z[-1], y), weights=sample_weight))

    def sgd_step_counts(
        self, ids: np.ndarray, counts: np.ndarray, target: int, learning_rate: float
    ) -> float:
        """``sgd_step`` on one post as (ids, counts) with class index ``target``.

        The same update, number for number, as ``sgd_step`` on its 1-row bag of words,
        without a sparse matrix.  Returns the post's loss before the update.
        """
        return self.learn_counts(ids, counts, target, learning_rate)[1]

    def learn_counts(
        self, ids: np.ndarray, counts: np.ndarray, target: int, learning_rate: float
    ) -> tuple[np.ndarray, float]:
        """Predict, then learn, from one post in a single forward pass (prequential).

        Returns (ŷ before the update, shape (n_outputs,), loss before the update); the
        update is ``sgd_step_counts``'s.  ∂c/∂(W^1ᵀ) is count_i δ^1 on row ids_i and zero
        on every other row, so only the post's words' weights move in the first layer.

        Every one-post step goes through here (``sgd_step`` on a 1-row bag,
        ``train.sgd_update``, ``Model.learn_one``, the online learner), so they all give
        bit-identical numbers.  It runs the compiled kernel ``monitor.kernels.learn_step``
        (``learn_counts_reference``'s maths, equal to it up to rounding).
        """
        p, loss, _, _ = self.learn_counts_guarded(ids, counts, target, learning_rate)
        return p, loss

    def learn_counts_guarded(
        self, ids: np.ndarray, counts: np.ndarray, target: int, learning_rate: float,
        max_loss: float | None = None, max_ratio: float | None = None,
    ) -> tuple[np.ndarray, float, float, int]:
        """``learn_counts`` under the update guard: (ŷ, loss, step ratio, code).

        With ``max_loss`` and ``max_ratio`` given, a step with a NaN/inf loss or weight,
        a loss above ``max_loss`` or ‖Δθ‖/‖θ‖ (θ: the parameters the step touched) above
        ``max_ratio`` is not taken (the kernel judges it before any weight moves;
        without a hidden layer the numpy step is put back): θ stays bit for bit, and
        ``code`` says why (monitor.guards: ``FINE`` = 0 when the step stands).  Without
        them the step always stands.
        """
        if len(self.weights) == 1:  # no hidden layer: the numpy path (rare, tiny)
            return self._learn_one_layer(ids, counts, target, learning_rate, max_loss,
                                         max_ratio)
        if ids.dtype != np.int32:
            ids = ids.astype(np.int32)
        if counts.dtype != np.float64:
            counts = counts.astype(np.float64)
        guard = max_loss is not None and max_ratio is not None
        return _kernels().learn_step(
            ids, counts, int(target), float(learning_rate), *self._kernel_args(), guard,
            float(max_loss) if guard else 0.0, float(max_ratio) if guard else 0.0)

    def _learn_one_layer(self, ids, counts, target, learning_rate, max_loss, max_ratio):
        """``learn_counts_guarded`` for a network without a hidden layer: the numpy step
        (``learn_counts_reference``), judged by the same ``guards.update_code`` from the
        touched parameters before and after it, and put back bit for bit if refused."""
        from monitor.guards import FINE, update_code

        W1T, b1 = self.weights[0].T, self.biases[0]  # ids are distinct: rows come back
        before = np.concatenate([W1T[ids].ravel(), b1])
        p, loss = self.learn_counts_reference(ids, counts, target, learning_rate)
        if max_loss is None or max_ratio is None:
            return p, loss, 0.0, FINE
        after = np.concatenate([W1T[ids].ravel(), b1])
        with np.errstate(all="ignore"):
            ratio = float(np.linalg.norm(after - before)
                          / max(float(np.linalg.norm(before)), 1e-12))
        code = update_code(loss, ratio, bool(np.isfinite(after).all()), max_loss, max_ratio)
        if code != FINE:
            W1T[ids] = before[:-b1.size].reshape(len(ids), -1)
            b1[:] = before[-b1.size:]
        return p, loss, ratio, code

    def learn_ids(
        self, raw_ids: np.ndarray, target: int, learning_rate: float,
        max_loss: float | None = None, max_ratio: float | None = None,
    ) -> tuple[np.ndarray, float, float, int]:
        """``learn_counts_guarded`` on a post given as its word ids in text order,
        repeats included (``Vocabulary.word_ids``): counted (as ``word_counts`` counts)
        and stepped in one compiled call; the same four values.  The one-post hot path
        (the learner, ``Model.learn_one``)."""
        if len(self.weights) == 1:
            ids, counts = np.unique(np.asarray(raw_ids, dtype=np.int32), return_counts=True)
            return self.learn_counts_guarded(ids.astype(np.int32), counts.astype(np.float64),
                                             target, learning_rate, max_loss, max_ratio)
        guard = max_loss is not None and max_ratio is not None
        return _kernels().learn_tokens(
            raw_ids, target, learning_rate, *self._kernel_args(), guard,
            max_loss if guard else 0.0, max_ratio if guard else 0.0)

    def predict_proba_bags(self, indptr: np.ndarray, ids: np.ndarray,
                           counts: np.ndarray) -> np.ndarray:
        """ŷ (n_posts, n_outputs) of posts held as CSR pieces: post r is
        ``ids[indptr[r]:indptr[r+1]]``, ``counts`` alike.  The first layer through the
        compiled kernel (no sparse matrix), the dense layers as ``forward``'s (BLAS);
        equal to ``predict_proba`` up to rounding."""
        def arg(a, dtype):  # one compiled variant: C-contiguous, writeable arrays
            return np.require(a, dtype=dtype, requirements=("C", "W"))

        posts = arg(indptr, np.int64), arg(ids, np.int32), arg(counts, np.float64)
        W1T, b1, Ws, bs, softmax = self._kernel_args()
        if Ws and sum(W.size for W in Ws) <= SMALL_DENSE:  # compiled beats numpy's calls
            return _kernels().forward_bags(*posts, W1T, b1, Ws, bs, softmax)
        return self._forward_from(_kernels().first_layer_bags(*posts, W1T, b1), None).A[-1]

    def warm_kernels(self) -> None:
        """Load (or compile, the first time on a machine) the one-post kernels for this
        network's depth and output, on a throwaway network: no weight of ours moves."""
        if len(self.weights) == 1:
            return
        dummy = Network([np.ones((W.shape[0], 2 if l == 0 else W.shape[1]))
                         for l, W in enumerate(self.weights)],
                        [np.zeros(b.shape) for b in self.biases], self.output)
        ids, counts = np.array([1], dtype=np.int32), np.ones(1)
        dummy.learn_counts(ids, counts, 0, 0.1)
        dummy.learn_ids(ids, 0, 0.1, 1.0, 1.0)
        dummy.predict_proba_bags(np.array([0, 1]), ids, counts)  # small: forward_bags
        dummy._forward_from(_kernels().first_layer_bags(  # wide layers: first layer only
            np.array([0, 1]), ids, counts, *dummy._kernel_args()[:2]), None)

    def _kernel_args(self) -> tuple:
        """(W^1ᵀ, b^1, (W^2..W^L), (b^2..b^L), softmax?) as the kernels take them.

        Built again only when an array of the network was replaced (a grown vocabulary,
        a new class): the kernels need W^1 Fortran-ordered (W^1ᵀ C-contiguous), every
        other array C-contiguous, all writeable.
        """
        cache = self._kernel_cache  # (the arrays it was built from, the arguments)
        if cache is not None and len(cache[0]) == len(self.weights) + len(self.biases) \
                and all(map(is_, chain(self.weights, self.biases), cache[0])):
            return cache[1]
        for l, W in enumerate(self.weights):
            wanted = W.flags.f_contiguous if l == 0 else W.flags.c_contiguous
            if not (wanted and W.flags.writeable):
                self.weights[l] = np.array(W, order="F" if l == 0 else "C")
        for l, b in enumerate(self.biases):
            if not (b.flags.c_contiguous and b.flags.writeable):
                self.biases[l] = np.array(b)
        args = (self.weights[0].T, self.biases[0], tuple(self.weights[1:]),
                tuple(self.biases[1:]), self.output == "softmax")
        self._kernel_cache = ((*self.weights, *self.biases), args)
        return args

    def learn_counts_reference(
        self, ids: np.ndarray, counts: np.ndarray, target: int, learning_rate: float
    ) -> tuple[np.ndarray, float]:
        """``learn_counts`` in numpy: the maths the compiled kernel follows, step by step.

        Its forward pass is ``forward_counts``'s, operation for operation (ŷ equals
        ``predict_proba_counts``); the step is ``apply_gradients``'s with η folded into δ
        first (η δ aᵀ rather than η (δ aᵀ): equal up to rounding to the batch path),
        without the Trace, the gradient lists or a second gather of W^1's rows; each
        layer's step is applied as soon as δ has passed below it.  About 30 numpy calls
        for one hidden layer, each ~1 µs: they were its cost, hence the kernel.
        """
        W1T = self.weights[0].T  # (n_vocab, n_1)
        rows = W1T[ids]  # (n_words, n_1): the only columns of W^1 this post touches
        z = (counts @ rows)[None, :] + self.biases[0]  # z^1, (1, n_1)
        Z, A = [z], []
        for W, b in zip(self.weights[1:], self.biases[1:]):
            a = np.maximum(z, 0.0)
            A.append(a)
            z = a @ W.T
            z += b
            Z.append(z)
        if self.output == "softmax":
            shifted = z - max(z[0].tolist())  # exactly z - z.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            total = e.sum(axis=1, keepdims=True)
            p = e / total  # softmax(z), as activate_output computes it
            loss = math.log(total[0, 0]) - shifted[0, target]
            delta = p.copy()  # δ^L = ŷ − y
            delta[0, target] -= 1.0
        else:
            p = sigmoid(z)
            loss = float(self.losses_from_logits(z, [target])[0])
            delta = p - target
        for l in range(len(self.weights) - 1, 0, -1):  # layers L .. 2: δ down, then step
            W = self.weights[l]
            back = delta @ W  # (W^l)ᵀ δ^l with the weights before this step
            step = learning_rate * delta  # η δ^l, (1, n_l)
            W -= step.T @ A[l - 1]
            self.biases[l] -= step[0]
            back *= Z[l - 1] > 0  # ReLU'(z^(l-1)) ⊙ …: δ^(l-1)
            delta = back
        step = learning_rate * delta
        self.biases[0] -= step[0]
        W1T[ids] = rows - counts[:, None] * step
        return p[0], float(loss)

    def apply_gradients(self, dW: list, db: list[np.ndarray], learning_rate: float) -> None:
        """W ← W − η ∂c/∂W and b ← b − η ∂c/∂b for every layer (sparse rows for W^1)."""
        ids, rows = dW[0]
        W1T = self.weights[0].T
        W1T[ids] -= learning_rate * rows
        for W, grad in zip(self.weights[1:], dW[1:]):
            W -= learning_rate * grad
        for b, grad in zip(self.biases, db):
            b -= learning_rate * grad

    def dense_gradients(self, X, y: np.ndarray) -> list[np.ndarray]:
        """∂c/∂W^l as full arrays (for checks and small vocabularies)."""
        dW, _, _ = self.backprop(X, y)
        ids, rows = dW[0]
        full = np.zeros_like(self.weights[0].T)
        full[ids] = rows
        return [full.T] + dW[1:]

    def copy(self) -> Network:
        return Network(self.weights, self.biases, self.output)

    def is_finite(self) -> bool:
        return all(np.isfinite(p).all() for p in self.weights + self.biases)


def _sum_rows(delta: np.ndarray) -> np.ndarray:
    """Σ over posts of (n_posts, n) → (n,); one post's row as it is (a reduction costs
    more than the rest of a small layer's step)."""
    return delta[0].copy() if len(delta) == 1 else delta.sum(axis=0)


def _issparse(X) -> bool:
    """scipy.sparse.issparse without importing scipy: a process that never built a
    sparse matrix (``score --text``, one post at a time) does not load it (≈ 0.12 s)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def _is_one_canonical_row(X) -> bool:
    """A 1-row CSR bag whose ids are sorted and distinct, as bag_of_words makes them."""
    return _issparse(X) and X.format == "csr" and X.shape[0] == 1 and X.has_canonical_format


PICK_LIMIT = 1 << 16  # dense pick matrices up to this many entries (512 kB)


def _sparse_input_gradient(X, delta1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(∂c/∂W^1)ᵀ restricted to the words present: Xᵀ δ^1 on the touched columns only.

    X: (n_posts, n_vocab) counts; delta1: (n_posts, n_1).  Returns (word_ids, rows) with
    rows of shape (n_touched, n_1).  For a training mini-batch (canonical CSR, small)
    the (n_touched, n_posts) matrix mapping each touched word to its posts is built
    dense and multiplied by BLAS: 2–4× faster than scipy's sparse product on batches
    of 16–32 posts (bench: equal up to rounding); larger or unusual inputs use scipy.
    """
    if _issparse(X) and X.format == "csr" and X.has_canonical_format:
        word_ids, column = np.unique(X.indices, return_inverse=True)
        n_posts = X.shape[0]
        if len(word_ids) * n_posts <= PICK_LIMIT:
            pick = np.zeros((len(word_ids), n_posts))
            pick[column, np.repeat(np.arange(n_posts), np.diff(X.indptr))] = X.data
            return word_ids, pick @ delta1
    import scipy.sparse as sp

    if not _issparse(X):
        X = sp.csr_matrix(np.asarray(X, dtype=np.float64))
    X = X.tocoo()
    word_ids, column = np.unique(X.col, return_inverse=True)
    # a (n_touched, n_posts) matrix that maps each touched word to the posts it is in
    pick = sp.csr_matrix((X.data, (column, X.row)), shape=(len(word_ids), X.shape[0]))
    return word_ids, np.asarray(pick @ delta1)
