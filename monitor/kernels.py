"""Compiled one-post kernels (numba): the online learner's step, and scoring bags of ids.

One post's predict-then-learn step is a few hundred multiply-adds for the default
network; in numpy it is about 30 calls of ~1–2 µs each, so the calls, not the maths,
were its cost (and the update guard's copies and norms as many again).  Here the same
step is one compiled loop nest: forward pass, loss, backprop and the SGD update, with
the update guard's checks fused in.  ``Network.learn_counts_reference`` is the same
maths in numpy; tests hold the two equal to rounding (1e-12), every one-post path
(``sgd_step`` on a 1-row bag, ``train --batch-size 1``, ``Model.learn_one``, the
daemon's learner) goes through this kernel, so those agree with each other bit for bit.

Shapes: a post is ``ids`` (n_words,) int32, sorted and distinct, with ``counts``
(n_words,) float64.  ``W1T`` is W^1 transposed, (n_vocab, n_1), C order (a view of the
network's Fortran-ordered W^1), ``b1`` (n_1,); ``Ws``/``bs`` are the tuples of the later
layers' W^l (n_l, n_(l-1)) and b^l (n_l,).  ``softmax``: the output is softmax (else one
sigmoid unit).  numba compiles each kernel once per machine (``cache=True``: later
processes load the machine code from ``__pycache__``); it is imported only by the code
that learns one post at a time, so ``score`` and ``--help`` never load it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from monitor.guards import FINE, update_code


def _compiled(**options):
    """``njit`` with the machine code cached on disk (compiled once per machine).

    Where no cache directory is writable (a read-only install and home: numba raises
    "cannot cache function ...: no locator available"), the kernel is compiled in
    memory instead, again at each start; ``NUMBA_CACHE_DIR`` names a writable one.
    """
    def decorate(function):
        try:
            return njit(cache=True, nogil=True, **options)(function)
        except RuntimeError as error:
            if not _UNCACHED:  # one warning, not one per kernel
                import structlog

                structlog.get_logger("monitor.kernels").warning(
                    "kernel_cache_unavailable", error=str(error),
                    hint="set NUMBA_CACHE_DIR to a writable directory")
            _UNCACHED.append(function.__name__)
            return njit(nogil=True, **options)(function)

    return decorate


_UNCACHED: list[str] = []  # kernels compiled in memory only (see _compiled)

_update_code = _compiled()(update_code)  # the guard's verdict, compiled into learn_step


@_compiled()
def _scores_into(z, softmax, p):
    """ŷ of logits z (n_L,) written into p (n_L,); returns softmax's (max z, Σ e^(z−max)),
    which the loss needs (a sigmoid: (0, 0)).  Stable for any size of z."""
    n = z.shape[0]
    if not softmax:  # one sigmoid unit
        e = math.exp(-abs(z[0]))
        p[0] = 1.0 / (1.0 + e) if z[0] >= 0 else e / (1.0 + e)
        return 0.0, 0.0
    top = z[0]
    for k in range(1, n):
        top = max(top, z[k])
    total = 0.0
    for k in range(n):
        p[k] = math.exp(z[k] - top)
        total += p[k]
    for k in range(n):
        p[k] /= total
    return top, total


@_compiled()
def _output(z, softmax, target):
    """Logits z (n_L,) → (ŷ, loss, δ^L = ŷ − y)."""
    p = np.empty(z.shape[0])
    top, total = _scores_into(z, softmax, p)
    delta = p.copy()
    if softmax:
        delta[target] -= 1.0
        loss = math.log(total) - (z[target] - top)
    else:  # target 1 is the positive class
        x = z[0]
        # -[y ln σ(x) + (1-y) ln(1-σ(x))] = ln(1 + e^x) - y x, as np.logaddexp(0, x)
        loss = max(x, 0.0) + math.log1p(math.exp(-abs(x))) - target * x
        delta[0] -= target
    return p, loss, delta


@_compiled()
def word_counts(raw):
    """A post's word ids in text order, repeats included (n_tokens,) → (ids, counts):
    the sorted distinct ids (int32) and how often each occurs (float64), as
    ``Vocabulary.word_counts`` gives them."""
    ordered = np.sort(raw)
    n = 0
    for j in range(ordered.shape[0]):
        if j == 0 or ordered[j] != ordered[j - 1]:
            n += 1
    ids = np.empty(n, dtype=np.int32)
    counts = np.zeros(n)
    k = -1
    for j in range(ordered.shape[0]):
        if j == 0 or ordered[j] != ordered[j - 1]:
            k += 1
            ids[k] = ordered[j]
        counts[k] += 1.0
    return ids, counts


@_compiled()
def learn_tokens(raw, target, learning_rate, W1T, b1, Ws, bs, softmax, guard, max_loss,
                 max_ratio):
    """``learn_step`` on a post given as its word ids in text order (``word_counts``
    first, in the same call); returns learn_step's four values."""
    ids, counts = word_counts(raw)
    return learn_step(ids, counts, target, learning_rate, W1T, b1, Ws, bs, softmax, guard,
                      max_loss, max_ratio)


@_compiled()
def learn_step(ids, counts, target, learning_rate, W1T, b1, Ws, bs, softmax,
               guard, max_loss, max_ratio):
    """Predict, then take one SGD step on one post, in place; the update guard fused in.

    Returns (ŷ before the step (n_L,), loss before the step, ‖Δθ‖/‖θ‖, code).  With
    ``guard``, θ is what the step can touch (the post's rows of W1T, every later W,
    every b); a NaN/inf loss or weight, a loss above ``max_loss`` or a ratio above
    ``max_ratio`` gives a non-FINE code and the step is not taken: every δ is computed
    first, so the guard judges the step before any weight moves (θ stays bit for bit,
    nothing is copied or undone).  Scratch space is three flat buffers (z, ReLU(z) and
    δ of every layer), not one array per layer.
    """
    n_words, n_1 = ids.shape[0], W1T.shape[1]
    n_later = len(Ws)
    # z^1 .. z^L in one buffer: layer l at Z[start[l]:start[l + 1]]; A and D alike
    start = np.empty(n_later + 2, dtype=np.int64)
    start[0], start[1] = 0, n_1
    for l in range(n_later):
        start[l + 2] = start[l + 1] + Ws[l].shape[0]
    Z = np.empty(start[n_later + 1])
    A = np.empty(start[n_later])  # a^l = ReLU(z^l) of the hidden layers
    D = np.empty(start[n_later + 1])  # δ^l = ∂loss/∂z^l

    # forward: z^1 = Σ_j counts_j W1T[ids_j] + b^1, then z^(l+1) = W ReLU(z^l) + b
    z = Z[0:n_1]
    z[:] = 0.0
    for j in range(n_words):
        row, c = ids[j], counts[j]
        for i in range(n_1):
            z[i] += c * W1T[row, i]
    for i in range(n_1):
        z[i] += b1[i]
    for l in range(n_later):
        W, b = Ws[l], bs[l]
        for i in range(start[l], start[l + 1]):
            A[i] = max(Z[i], 0.0)
        a, out = A[start[l]:start[l + 1]], Z[start[l + 1]:start[l + 2]]
        for o in range(W.shape[0]):
            s = 0.0
            for i in range(W.shape[1]):
                s += W[o, i] * a[i]
            out[o] = s + b[o]
    p, loss, delta = _output(Z[start[n_later]:start[n_later + 1]], softmax, target)

    # backward, before any step: δ^l = ReLU'(z^l) ⊙ (W^(l+1))ᵀ δ^(l+1)
    D[start[n_later]:start[n_later + 1]] = delta
    for l in range(n_later - 1, -1, -1):
        W, above, back = Ws[l], D[start[l + 1]:start[l + 2]], D[start[l]:start[l + 1]]
        back[:] = 0.0
        for o in range(W.shape[0]):
            d = above[o]
            for i in range(W.shape[1]):
                back[i] += W[o, i] * d
        for i in range(W.shape[1]):
            back[i] *= 1.0 if Z[start[l] + i] > 0.0 else 0.0

    code, ratio = FINE, 0.0
    if guard:
        ratio, size2 = _step_ratio(ids, counts, learning_rate, W1T, b1, Ws, bs, A, D,
                                   start)
        # finite ‖θ‖² and ‖Δθ‖/‖θ‖: every touched weight and every Δ is finite, and so
        # is every new weight; otherwise the new weights are looked at one by one
        finite = (math.isfinite(ratio) and math.isfinite(size2)) or _finite_after(
            ids, counts, learning_rate, W1T, b1, Ws, bs, A, D, start)
        code = _update_code(loss, ratio, finite, max_loss, max_ratio)
    if code != FINE:  # rejected: no weight moves
        return p, loss, ratio, code

    # the step: W^l -= η δ^l (a^(l-1))ᵀ, b^l -= η δ^l, and the post's rows of W1T
    for l in range(n_later):
        W, b = Ws[l], bs[l]
        a, d = A[start[l]:start[l + 1]], D[start[l + 1]:start[l + 2]]
        for o in range(W.shape[0]):
            step = learning_rate * d[o]
            for i in range(W.shape[1]):
                W[o, i] -= step * a[i]
            b[o] -= step
    for i in range(n_1):
        D[i] *= learning_rate  # η δ^1
    for i in range(n_1):
        b1[i] -= D[i]
    for j in range(n_words):
        row, c = ids[j], counts[j]
        for i in range(n_1):
            W1T[row, i] -= c * D[i]
    return p, loss, ratio, code


@_compiled(fastmath={"reassoc"})
def _step_ratio(ids, counts, learning_rate, W1T, b1, Ws, bs, A, D, start):
    """(‖Δθ‖/‖θ‖, ‖θ‖²) of the step learn_step is about to take, over the parameters it
    touches (summed in any order: it only sizes the step).  Δ of W^1's row j is
    c_j η δ^1, of W^l's row o is η δ^l_o a^(l-1), of b^l is η δ^l; NaN/inf when a Δ is."""
    n_1 = W1T.shape[1]
    size2, step2 = 0.0, 0.0
    for j in range(ids.shape[0]):
        row = ids[j]
        for i in range(n_1):
            size2 += W1T[row, i] * W1T[row, i]
    counts2 = 1.0  # b^1's step, then each row of W^1 at c_j times it
    for j in range(ids.shape[0]):
        counts2 += counts[j] * counts[j]
    for i in range(n_1):
        size2 += b1[i] * b1[i]
        step2 += D[i] * D[i]
    moved2 = counts2 * step2 * learning_rate * learning_rate
    for l in range(len(Ws)):
        W, b = Ws[l], bs[l]
        for v in W.ravel():
            size2 += v * v
        for v in b:
            size2 += v * v
        a2, d2 = 1.0, 0.0  # (1 + ‖a^(l-1)‖²) Σ_o (η δ^l_o)²
        for i in range(start[l], start[l + 1]):
            a2 += A[i] * A[i]
        for o in range(start[l + 1], start[l + 2]):
            d2 += D[o] * D[o]
        moved2 += a2 * d2 * learning_rate * learning_rate
    return math.sqrt(moved2) / max(math.sqrt(size2), 1e-12), size2


@_compiled()
def _finite_after(ids, counts, learning_rate, W1T, b1, Ws, bs, A, D, start):
    """Every parameter the step would touch is finite after it (nothing is written)."""
    n_1 = W1T.shape[1]
    for i in range(n_1):
        step = learning_rate * D[i]
        if not math.isfinite(b1[i] - step):
            return False
        for j in range(ids.shape[0]):
            if not math.isfinite(W1T[ids[j], i] - counts[j] * step):
                return False
    for l in range(len(Ws)):
        W, b = Ws[l], bs[l]
        for o in range(W.shape[0]):
            step = learning_rate * D[start[l + 1] + o]
            if not math.isfinite(b[o] - step):
                return False
            for i in range(W.shape[1]):
                if not math.isfinite(W[o, i] - step * A[start[l] + i]):
                    return False
    return True


@_compiled()
def first_layer_bags(indptr, ids, counts, W1T, b1):
    """z^1 (n_posts, n_1) of posts given as CSR pieces: post r is
    ``ids[indptr[r]:indptr[r+1]]`` with ``counts`` alike; each row summed as
    ``learn_step`` sums it (the later, dense layers are numpy's: BLAS)."""
    n_posts, n_1 = indptr.shape[0] - 1, W1T.shape[1]
    Z = np.zeros((n_posts, n_1))
    for r in range(n_posts):
        z = Z[r]
        for j in range(indptr[r], indptr[r + 1]):
            row, c = ids[j], counts[j]
            for i in range(n_1):
                z[i] += c * W1T[row, i]
        for i in range(n_1):
            z[i] += b1[i]
    return Z


@_compiled(fastmath={"reassoc"})
def forward_bags(indptr, ids, counts, W1T, b1, Ws, bs, softmax):
    """ŷ (n_posts, n_L) of posts given as CSR pieces, every layer compiled: for small
    dense layers (the default model's), where numpy's calls on (n_posts, 64) arrays
    cost more than the arithmetic.  Wide layers go to BLAS instead (first_layer_bags).
    No allocation per post: the layers' activations live in two reused buffers.  The
    dense layers' dot products are summed in any order, as BLAS sums them (one chain
    of dependent additions made them 3/4 of this kernel's time)."""
    n_posts, n_later = indptr.shape[0] - 1, len(Ws)
    Z1 = first_layer_bags(indptr, ids, counts, W1T, b1)
    widest = Z1.shape[1]
    for l in range(n_later):
        widest = max(widest, Ws[l].shape[0])
    below, above = np.empty(widest), np.empty(widest)
    n_out = Ws[n_later - 1].shape[0]
    out = np.empty((n_posts, n_out))
    for r in range(n_posts):
        n = Z1.shape[1]
        for i in range(n):
            below[i] = max(Z1[r, i], 0.0) if not math.isnan(Z1[r, i]) else Z1[r, i]
        for l in range(n_later):
            W, b = Ws[l], bs[l]
            for o in range(W.shape[0]):
                s = 0.0
                for i in range(W.shape[1]):
                    s += W[o, i] * below[i]
                above[o] = s + b[o]
            n = W.shape[0]
            if l < n_later - 1:  # ReLU into the next layer's input
                for o in range(n):
                    below[o] = max(above[o], 0.0) if not math.isnan(above[o]) else above[o]
        _scores_into(above[:n_out], softmax, out[r])
    return out

