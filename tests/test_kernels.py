"""The compiled one-post kernels (monitor/kernels.py) against the numpy maths.

``Network.learn_counts`` runs ``kernels.learn_step``; ``learn_counts_reference`` is the
same step in numpy.  Over sequences of steps, for every output and depth, the two agree
to rounding; the fused update guard computes the same ratio as the numpy definition,
and a rejected step leaves every parameter as it was, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import guards, kernels
from monitor.network import Network

SHAPES = [[40, 9, 3], [40, 9, 7, 3], [40, 6, 5, 4, 3], [40, 8, 1]]


def _network(rng, sizes):
    output = "sigmoid" if sizes[-1] == 1 else "softmax"
    network = Network.initialize(sizes, output, rng)
    for b in network.biases:
        b += rng.normal(0, 0.3, size=b.shape)  # no exact zeros at the ReLU kinks
    return network


def _post(rng, n_vocab):
    ids = np.unique(rng.integers(0, n_vocab, size=rng.integers(1, 9))).astype(np.int32)
    counts = rng.integers(1, 4, size=len(ids)).astype(np.float64)
    return ids, counts


def _params(network):
    return [a.copy() for a in network.weights + network.biases]


@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_kernel_follows_the_numpy_step_over_a_stream(rng, sizes):
    compiled = _network(rng, sizes)
    reference = compiled.copy()
    start = _params(compiled)
    classes = 2 if sizes[-1] == 1 else sizes[-1]
    for _ in range(200):
        ids, counts = _post(rng, sizes[0])
        target = int(rng.integers(0, classes))
        p, loss = compiled.learn_counts(ids, counts, target, 0.2)
        p_ref, loss_ref = reference.learn_counts_reference(ids, counts, target, 0.2)
        np.testing.assert_allclose(p, p_ref, rtol=1e-12, atol=1e-15)
        assert loss == pytest.approx(loss_ref, rel=1e-12, abs=1e-15)
    for a, b in zip(_params(compiled), _params(reference)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    for before, after in zip(start, _params(compiled)):  # every layer learned something
        assert not np.array_equal(before, after)


def test_the_reference_score_is_the_forward_pass(rng):
    network = _network(rng, [40, 9, 7, 3])
    ids, counts = _post(rng, 40)
    p, _ = network.copy().learn_counts_reference(ids, counts, 1, 0.3)
    assert np.array_equal(p, network.predict_proba_counts(ids, counts)[0])


def _ratio_by_definition(before: Network, after: Network, ids) -> float:
    """‖θ_after − θ_before‖ / ‖θ_before‖ over the post's W^1 columns, later W's, all b's."""
    def flat(n):
        return np.concatenate([n.weights[0][:, ids].T.ravel(),
                               *[W.ravel() for W in n.weights[1:]], *n.biases])
    theta = flat(before)
    return float(np.linalg.norm(flat(after) - theta) / np.linalg.norm(theta))


@pytest.mark.parametrize("sizes", [*SHAPES, [40, 3]], ids=lambda s: "-".join(map(str, s)))
def test_guarded_step_reports_the_step_ratio_and_keeps_a_fine_step(rng, sizes):
    network = _network(rng, sizes)
    before = network.copy()
    ids, counts = _post(rng, sizes[0])
    unguarded = network.copy()
    p, loss, ratio, code = network.learn_counts_guarded(ids, counts, 0, 0.05, 1000.0, 5.0)
    assert code == guards.FINE
    assert ratio == pytest.approx(_ratio_by_definition(before, network, ids), rel=1e-9)
    assert 0 < ratio < 5
    unguarded.learn_counts(ids, counts, 0, 0.05)  # the guard changes no number
    for a, b in zip(_params(network), _params(unguarded)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "case, code",
    [("huge rate", guards.STEP_TOO_LARGE), ("loss cap", guards.LOSS_TOO_LARGE),
     ("nan count", guards.LOSS_NOT_FINITE), ("inf rate", guards.WEIGHTS_NOT_FINITE)],
)
@pytest.mark.parametrize("sizes", [[40, 9, 7, 3], [40, 3]], ids=["hidden", "no-hidden"])
def test_a_rejected_step_is_undone_bit_for_bit(rng, case, code, sizes):
    network = _network(rng, sizes)
    ids, counts = _post(rng, 40)
    rate, max_loss = {"huge rate": (1e6, 1e9), "loss cap": (0.1, 1e-9),
                      "nan count": (0.1, 1e9), "inf rate": (np.inf, 1e9)}[case]
    if case == "nan count":
        counts[0] = np.nan
    saved = _params(network)
    p, loss, ratio, got = network.learn_counts_guarded(ids, counts, 2, rate, max_loss, 5.0)
    assert got == code
    for a, b in zip(_params(network), saved):
        assert np.array_equal(a, b, equal_nan=True)
    if case == "huge rate":
        assert ratio > 5 and math.isfinite(loss)


@pytest.mark.parametrize("small_dense", [4096, 0], ids=["compiled", "blas"])
def test_predict_proba_bags_equals_predict_proba(rng, monkeypatch, small_dense):
    import scipy.sparse as sp

    from monitor import network as network_module

    monkeypatch.setattr(network_module, "SMALL_DENSE", small_dense)
    for sizes in [*SHAPES, [40, 3]]:  # no hidden layer too: the first layer is the output
        network = _network(rng, sizes)
        posts = [_post(rng, sizes[0]) for _ in range(25)]
        indptr = np.cumsum([0] + [len(ids) for ids, _ in posts])
        ids = np.concatenate([i for i, _ in posts])
        counts = np.concatenate([c for _, c in posts])
        X = sp.csr_matrix((counts, ids, indptr), shape=(25, sizes[0]))
        got = network.predict_proba_bags(indptr, ids, counts)
        np.testing.assert_allclose(got, network.predict_proba(X), rtol=1e-12, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rate=st.floats(1e-4, 2.0))
def test_kernel_equals_reference_for_any_post_and_rate(seed, rate):
    rng = np.random.default_rng(seed)
    sizes = SHAPES[seed % len(SHAPES)]
    compiled = _network(rng, sizes)
    reference = compiled.copy()
    ids, counts = _post(rng, sizes[0])
    target = int(rng.integers(0, 2 if sizes[-1] == 1 else sizes[-1]))
    p, loss = compiled.learn_counts(ids, counts, target, rate)
    p_ref, loss_ref = reference.learn_counts_reference(ids, counts, target, rate)
    np.testing.assert_allclose(p, p_ref, rtol=1e-12, atol=1e-15)
    assert loss == pytest.approx(loss_ref, rel=1e-12, abs=1e-14)
    for a, b in zip(_params(compiled), _params(reference)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)


def test_word_counts_kernel_equals_the_vocabulary_s(rng):
    from monitor.text import Vocabulary

    vocabulary = Vocabulary(["banana", "bread", "cookie", "oatmeal", "bake", "sale"])
    for text in ["banana bread banana", "", "Cookies! #OatmealCookie bake sale sale sale",
                 "nothing known here", "banana"]:
        ids, counts = kernels.word_counts(vocabulary.word_ids(text))
        want_ids, want_counts = vocabulary.word_counts(text)
        assert ids.dtype == np.int32 and counts.dtype == np.float64
        assert np.array_equal(ids, want_ids) and np.array_equal(counts, want_counts)
    raw = rng.integers(0, 50, size=400).astype(np.int32)
    ids, counts = kernels.word_counts(raw)
    want_ids, want_counts = np.unique(raw, return_counts=True)
    assert np.array_equal(ids, want_ids) and np.array_equal(counts, want_counts)


@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_learn_ids_is_word_counts_then_learn_counts_bit_for_bit(rng, sizes):
    fused = _network(rng, sizes)
    split = fused.copy()
    for _ in range(50):
        raw = rng.integers(0, sizes[0], size=rng.integers(0, 12)).astype(np.int32)
        target = int(rng.integers(0, 2 if sizes[-1] == 1 else sizes[-1]))
        p, loss, ratio, code = fused.learn_ids(raw, target, 0.1, 1000.0, 5.0)
        want_ids, want_counts = kernels.word_counts(raw)
        p2, loss2, ratio2, code2 = split.learn_counts_guarded(want_ids, want_counts, target,
                                                              0.1, 1000.0, 5.0)
        assert np.array_equal(p, p2) and loss == loss2 and ratio == ratio2 and code == code2
    for a, b in zip(_params(fused), _params(split)):
        assert np.array_equal(a, b)


def test_kernel_arguments_follow_replaced_arrays(rng):
    """A grown vocabulary or a new class replaces arrays: the kernels see the new ones."""
    from monitor.learn import add_class, add_words
    from monitor.model import Model

    model = Model.create(["banana", "cookie", "bread"], [5], ["banana", "cookie", "other"],
                         rng)
    model.learn_one("banana bread", "banana", 0.1)
    add_words(model, ["waffle"])
    add_class(model, "waffle")
    scores, _ = model.learn_one("waffle waffle", "waffle", 0.5)
    assert scores.shape == (4,)
    assert model.network.weights[0][:, 3].any()  # the new word's column moved
    assert model.network.weights[-1][3].any() and model.network.weights[-1].shape == (4, 5)


@pytest.mark.slow
def test_without_a_writable_cache_directory_the_kernels_still_compile():
    """A read-only install and home: numba finds no cache directory ("no locator
    available"); the kernels compile in memory, warn once, and compute the same step."""
    import subprocess
    import sys

    code = """
import numpy as np
from numba.core import caching
for locator in caching.CacheImpl._locator_classes:  # as if nothing were writable
    locator.from_function = classmethod(lambda cls, py_func, path: None)
from monitor import kernels
from monitor.network import Network
network = Network.initialize([12, 5, 3], "softmax", np.random.default_rng(1))
reference = network.copy()
ids, counts = np.array([1, 4, 7], dtype=np.int32), np.array([1.0, 2.0, 1.0])
p, loss = network.learn_counts(ids, counts, 2, 0.3)
p_ref, loss_ref = reference.learn_counts_reference(ids, counts, 2, 0.3)
assert np.allclose(p, p_ref, rtol=1e-12) and abs(loss - loss_ref) < 1e-12
assert all(np.allclose(a, b, rtol=1e-12, atol=1e-15)
           for a, b in zip(network.weights, reference.weights))
print(len(kernels._UNCACHED))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 8  # every kernel, compiled in memory
    log = result.stdout + result.stderr
    assert log.count("kernel_cache_unavailable") == 1 and "NUMBA_CACHE_DIR" in log
