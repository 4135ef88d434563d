"""The network: every number of the exercise sheet, and backprop against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from monitor import seed
from monitor.network import Network, sigmoid, softmax
from monitor.text import Vocabulary


@pytest.fixture
def x() -> sp.csr_matrix:
    """The sheet's three texts as bag-of-words rows, (3, 4)."""
    return Vocabulary(seed.VOCABULARY).bag_of_words(seed.TEXTS)


def test_exercise_2_1_parameter_count(rng):
    assert Network.initialize([4, 300, 200, 1], "sigmoid", rng).n_parameters == 61901


def test_exercise_2_3_binary_forward(x):
    network = seed.binary_model().network
    trace = network.forward(x[0])
    assert trace.Z[0].tolist() == [[-2, 0, -3]]  # W1 x_a
    assert trace.Z[1].tolist() == [[1, 1]]  # W2 ReLU(z1) + b2
    assert trace.Z[2].tolist() == [[1]]  # W3 a2 + b3
    assert network.predict_proba(x[0])[0, 0] == pytest.approx(0.731, abs=5e-4)


def test_exercise_3_2_multiclass_forward(x):
    network = seed.multiclass_model().network
    trace = network.forward(x[:2])
    assert trace.Z[2].tolist() == [[2, 1, -1], [4, 8, -4]]
    p = trace.A[-1]
    assert np.round(p[0], 2).tolist() == [0.71, 0.26, 0.04]
    assert np.round(p[1], 2).tolist() == [0.02, 0.98, 0.00]


def test_exercise_4_1_cross_entropy(x):
    network = seed.multiclass_model().network
    loss = network.loss(x[0], np.array([0]))
    assert loss == pytest.approx(-np.log(np.e**2 / (np.e**2 + np.e + np.e**-1)))
    assert round(loss, 2) == 0.35


def test_exercise_4_2_output_delta(x):
    network = seed.multiclass_model().network
    _, db, trace = network.backprop(x[0], np.array([0]))
    delta = trace.A[-1][0] - np.array([1, 0, 0])
    assert np.round(delta, 2).tolist() == [-0.29, 0.26, 0.04]
    assert np.allclose(db[2], delta)  # ∂c/∂b3 = δ3


def test_exercise_5_sgd_step(x):
    network = seed.multiclass_model().network
    W1, W2, b1, b2 = (a.copy() for a in (*network.weights[:2], *network.biases[:2]))
    delta3 = network.predict_proba(x[0])[0] - np.array([1, 0, 0])
    network.sgd_step(x[0], np.array([0]), learning_rate=0.1)
    expected_W3 = [[1.029, 1.029], [-1.026, 1.974], [-0.004, -1.004]]
    assert np.round(network.weights[2], 3).tolist() == expected_W3
    assert np.allclose(network.weights[2], seed.W3_MULTICLASS - 0.1 * np.outer(delta3, [1, 1]))
    assert np.array_equal(network.biases[2], -0.1 * delta3)  # b3 ← b3 − η δ3
    # a1 = ReLU([-2, 0, -3]) = 0 and ReLU'(0) = 0: nothing reaches W2, W1, b1
    assert np.array_equal(network.weights[1], W2)
    assert np.array_equal(network.weights[0], W1)
    assert np.array_equal(network.biases[0], b1)
    # δ2 = ReLU'(z2) ⊙ W3ᵀ δ3 = [-0.55, 0.19] moves b2 (z2 = [1, 1] > 0)
    delta2 = seed.W3_MULTICLASS.T @ delta3
    assert np.round(delta2, 2).tolist() == [-0.55, 0.19]
    assert np.allclose(network.biases[1], b2 - 0.1 * delta2)


def test_sigmoid_and_softmax_are_stable():
    z = np.array([[-1000.0], [0.0], [1000.0]])
    assert sigmoid(z).ravel().tolist() == [0.0, 0.5, 1.0]
    p = softmax(np.array([[1000.0, 0.0, -1000.0]]))
    assert np.isfinite(p).all() and p[0, 0] == 1.0


def test_losses_are_finite_for_extreme_logits(rng):
    network = Network.initialize([3, 2, 3], "softmax", rng)
    z = np.array([[800.0, -800.0, 0.0]])
    assert network.losses_from_logits(z, np.array([1]))[0] == pytest.approx(1600.0)
    binary = Network.initialize([3, 2, 1], "sigmoid", rng)
    assert binary.losses_from_logits(np.array([[-800.0]]), np.array([1]))[0] == 800.0


def _random_case(rng, sizes, output, n_posts=5):
    network = Network.initialize(sizes, output, rng)
    for b in network.biases:
        b += rng.normal(0, 0.3, size=b.shape)  # no exact zeros at the ReLU kinks
    ids = rng.integers(0, sizes[0], size=(n_posts, 6))  # repeated words on purpose
    rows = np.repeat(np.arange(n_posts), ids.shape[1])
    X = sp.csr_matrix((np.ones(ids.size), (rows, ids.ravel())), shape=(n_posts, sizes[0]))
    classes = network.n_outputs if output == "softmax" else 2
    y = rng.integers(0, classes, size=n_posts)
    return network, X, y


def _numeric_gradient(network, X, y, array, eps=1e-6):
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        up = network.loss(X, y)
        array[index] = saved - eps
        down = network.loss(X, y)
        array[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    ("sizes", "output"),
    [
        ([7, 5, 1], "sigmoid"),
        ([7, 5, 3], "softmax"),
        ([9, 6, 4, 2], "softmax"),
        ([9, 6, 4, 1], "sigmoid"),
        ([11, 8, 6, 5, 4], "softmax"),
    ],
)
def test_backprop_matches_finite_differences(rng, sizes, output):
    network, X, y = _random_case(rng, sizes, output)
    assert X.sum() == X.shape[0] * 6 and X.nnz < X.sum()  # some counts above 1
    analytic_W = network.dense_gradients(X, y)
    _, analytic_b, _ = network.backprop(X, y)
    for W, grad in zip(network.weights, analytic_W):
        assert np.allclose(grad, _numeric_gradient(network, X, y, W), atol=1e-6)
    for b, grad in zip(network.biases, analytic_b):
        assert np.allclose(grad, _numeric_gradient(network, X, y, b), atol=1e-6)


def test_weighted_gradient_matches_finite_differences(rng):
    network, X, y = _random_case(rng, [8, 5, 3], "softmax")
    weights = rng.uniform(0.5, 3.0, size=X.shape[0])
    dW, _, _ = network.backprop(X, y, sample_weight=weights)
    ids, rows = dW[0]
    W2 = network.weights[1]
    numeric = np.zeros_like(W2)
    for index in np.ndindex(W2.shape):
        saved = W2[index]
        W2[index] = saved + 1e-6
        up = network.loss(X, y, weights)
        W2[index] = saved - 1e-6
        down = network.loss(X, y, weights)
        W2[index] = saved
        numeric[index] = (up - down) / 2e-6
    assert np.allclose(dW[1], numeric, atol=1e-6)


def test_one_post_and_batch_give_identical_scores(rng):
    network, X, _ = _random_case(rng, [50, 20, 10, 3], "softmax", n_posts=12)
    batch = network.predict_proba(X)
    singles = np.vstack([network.predict_proba(X[i]) for i in range(X.shape[0])])
    assert np.allclose(batch, singles, rtol=0, atol=1e-15)
    dense = network.predict_proba(X.toarray())
    assert np.allclose(batch, dense, rtol=0, atol=1e-15)


def test_sgd_reduces_the_loss(rng):
    network, X, y = _random_case(rng, [30, 16, 3], "softmax", n_posts=20)
    before = network.loss(X, y)
    for _ in range(50):
        network.sgd_step(X, y, learning_rate=0.1)
    assert network.loss(X, y) < before / 2


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="W2 has shape"):
        Network([np.zeros((3, 4)), np.zeros((2, 5))], [np.zeros(3), np.zeros(2)], "sigmoid")
    with pytest.raises(ValueError, match="b1 has shape"):
        Network([np.zeros((3, 4))], [np.zeros(2)], "softmax")
    with pytest.raises(ValueError, match="exactly one unit"):
        Network([np.zeros((3, 4))], [np.zeros(3)], "sigmoid")


def test_input_gradient_dense_pick_equals_sparse_product(rng, monkeypatch):
    """Training batches take the dense-pick path; scipy's product gives the same rows."""
    import monitor.network as network_module

    network, X, y = _random_case(rng, [40, 12, 3], "softmax", n_posts=16)
    assert X.has_canonical_format  # repeated words summed: the pick path applies
    delta = rng.normal(size=(16, 12))
    ids, rows = network_module._sparse_input_gradient(X, delta)
    monkeypatch.setattr(network_module, "PICK_LIMIT", 0)  # force scipy
    ids_sparse, rows_sparse = network_module._sparse_input_gradient(X, delta)
    assert np.array_equal(ids, ids_sparse)
    np.testing.assert_allclose(rows, rows_sparse, rtol=1e-12, atol=1e-14)
    dense = X.toarray().T @ delta  # (n_vocab, n_1): the definition
    np.testing.assert_allclose(rows, dense[ids], rtol=1e-12, atol=1e-14)
    assert not dense[np.setdiff1d(np.arange(40), ids)].any()


def test_one_post_kernel_equals_the_batch_step_up_to_rounding(rng):
    """learn_counts (every one-post step) against backprop + apply_gradients."""
    network, X, y = _random_case(rng, [30, 9, 7, 3], "softmax", n_posts=1)
    X.sum_duplicates()
    twin = network.copy()
    p, loss = network.learn_counts(X.indices, X.data, int(y[0]), 0.3)
    np.testing.assert_allclose(p, twin.predict_proba(X)[0], rtol=1e-12)  # before the step
    dW, db, trace = twin.backprop(X, y)
    twin.apply_gradients(dW, db, 0.3)
    assert loss == pytest.approx(twin.losses_from_logits(trace.Z[-1], y)[0], rel=1e-12)
    for a, b in zip(network.weights + network.biases, twin.weights + twin.biases):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
