"""SYNAPTIC.md §9.7: backprop, momentum schedule, Nesterov and adaptive gains, on both backends."""
import numpy as np
import pytest

import synaptic
from synaptic import _kernels
from synaptic.training.backprop import Backprop

from helpers import BACKENDS, set_weights, using

X = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
T = np.array([[1, 0], [0, 1], [0, 1], [1, 0], [0, 1]], dtype=float)  # "1" -> [1 0], "2" -> [0 1]
W1 = [[0.1, 0.11, 0.09, 0.095], [-0.1, -0.11, -0.09, -0.095]]
W2 = [[1.05, 0.098, 1.03], [-1.05, -0.098, -1.03]]
DW1 = [[-0.02070832, 0.00337117, -0.01595879, -0.00454830],
       [-0.21764871, 0.03543173, -0.16773012, -0.04780355]]
DW2 = [[-0.42621045, -0.231439954, -0.19477050], [0.42621045, 0.231439954, 0.19477050]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backprop_step_matches_the_original(backend):
    net = synaptic.mlp([3, 2, 2], "sigmoid",
                       synaptic.training("backprop", {"learning-rate": {"epsilon": 1.0}}))
    set_weights(net, W1, W2)
    with using(backend):
        Backprop(net).step(X, T)
    dw = net.training.state["deltaw"]
    np.testing.assert_allclose(dw[0], DW1, atol=1e-7)
    np.testing.assert_allclose(dw[1], DW2, atol=1e-7)
    np.testing.assert_allclose(net.weights[0], np.add(W1, DW1), atol=1e-7)
    np.testing.assert_allclose(net.weights[1], np.add(W2, DW2), atol=1e-7)


def test_backprop_step_through_train_and_a_training_set():
    trset = synaptic.training_set(X, ["1", "2", "2", "1", "2"], rand=False)
    net = synaptic.mlp([3, 2, 2], "sigmoid",
                       synaptic.training("backprop", {"learning_rate": {"epsilon": 1.0}}))
    set_weights(net, W1, W2)
    synaptic.train(net, trset, 1).result(timeout=30)
    np.testing.assert_allclose(net.weights[0], np.add(W1, DW1), atol=1e-7)
    np.testing.assert_allclose(net.weights[1], np.add(W2, DW2), atol=1e-7)


def _alpha(momentum, state_alpha=None):
    net = synaptic.mlp([2, 2], "sigmoid", synaptic.training("backprop", {"momentum": momentum}))
    if state_alpha is not None:
        net.training.state["alpha"] = state_alpha
    return Backprop(net).next_alpha()


def test_momentum_schedule():
    assert Backprop(synaptic.mlp([2, 2], "sigmoid", synaptic.training("backprop"))).next_alpha() is None
    assert _alpha({"alpha": 0.9}) == 0.9
    assert _alpha({"alpha": 0.9, "alpha-start": 0.5, "alpha-step": 0.1}) == 0.5
    assert _alpha({"alpha": 0.9, "alpha_start": 0.5, "alpha_step": 0.1}, 0.6) == pytest.approx(0.7)
    assert _alpha({"alpha": 0.99, "alpha_start": 0.5, "alpha_step": 0.1}, 0.9) == 0.99


@pytest.mark.parametrize("backend", BACKENDS)
def test_momentum_has_no_effect_on_the_first_step_then_adds_alpha_times_the_last(backend):
    def make(params):
        net = synaptic.mlp([3, 2, 2], "sigmoid", synaptic.training("backprop", params))
        set_weights(net, W1, W2)
        return net

    net = make({"learning_rate": {"epsilon": 1.0}, "momentum": {"alpha": 0.5}})
    with using(backend):
        algo = Backprop(net)
        algo.step(X, T)
        np.testing.assert_allclose(net.training.state["deltaw"][0], DW1, atol=1e-7)
        first = [d.copy() for d in net.training.state["deltaw"]]
        algo.step(X, T)
        # the plain gradient step taken from the weights after the first step
        check = make({"learning_rate": {"epsilon": 1.0}})
        set_weights(check, np.add(W1, first[0]), np.add(W2, first[1]))
        Backprop(check).step(X, T)
    for i in range(2):
        expected = 0.5 * first[i] + check.training.state["deltaw"][i]
        np.testing.assert_allclose(net.training.state["deltaw"][i], expected, atol=1e-12)


NW = [[1, -1, 2], [1, 1, 0]]
NPREV = [[-0.5, -0.1, 0.5], [-0.1, 0, 0.5]]
NX = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=float)
NY = np.array([[0, 1], [1, 0], [1, 1], [1, 0]], dtype=float)
NDW = [[0.04352089, -0.05980168, 0.04410168], [-0.3233762, 0.05381376, -0.17737138]]
NJUMP = [[-0.45, -0.09, 0.45], [-0.09, 0, 0.45]]


def _nesterov_net():
    net = synaptic.mlp([2, 2], "sigmoid", synaptic.training(
        "backprop", {"learning_rate": {"epsilon": 1.0}, "momentum": {"alpha": 0.9, "nesterov": True}}))
    set_weights(net, NW)
    return net


@pytest.mark.parametrize("backend", BACKENDS)
def test_nesterov_step_with_a_previous_update(backend):
    net = _nesterov_net()
    net.training.state["deltaw"] = [np.array(NPREV, dtype=float)]
    with using(backend):
        Backprop(net).step(NX, NY)
    jumped = np.add(NW, NJUMP)
    np.testing.assert_allclose(jumped, [[0.55, -1.09, 2.45], [0.91, 1.0, 0.45]], atol=1e-12)
    np.testing.assert_allclose(net.training.state["deltaw"][0], np.add(NJUMP, NDW), atol=1e-7)
    np.testing.assert_allclose(net.weights[0], jumped + NDW, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nesterov_without_a_previous_update_does_not_jump(backend):
    net = _nesterov_net()
    plain = synaptic.mlp([2, 2], "sigmoid",
                         synaptic.training("backprop", {"learning_rate": {"epsilon": 1.0}}))
    set_weights(plain, NW)
    with using(backend):
        Backprop(net).step(NX, NY)
        Backprop(plain).step(NX, NY)
    np.testing.assert_allclose(net.weights[0], plain.weights[0], atol=1e-15)
    np.testing.assert_allclose(net.training.state["deltaw"][0], plain.training.state["deltaw"][0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_gain_vector(backend):
    kern = _kernels.BACKENDS[backend]
    d = np.array([[1, -1, 1], [-1, -1, 1]], dtype=float)
    prev = np.array([[1, 1, -1], [-1, -1, 1]], dtype=float)
    gain = np.array([[1, 0.5, 0.1], [9.99, 0.95, 0.5]])
    w = np.zeros((2, 3))
    deltaw = prev.copy()
    # g = -d with inv_m = 1 gives d; no momentum
    kern.sgd_update(w, -d, deltaw, gain, 0.01, 1.0, 0.0, True, True, 0.1, 10.0, False)
    np.testing.assert_allclose(gain, [[1.05, 0.475, 0.1], [10.0, 1.0, 0.55]], atol=1e-12)
    expected = [[0.0105, -0.00475, 0.001], [-0.1, -0.01, 0.0055]]
    np.testing.assert_allclose(deltaw, expected, atol=1e-12)
    np.testing.assert_allclose(w, expected, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_gain_starts_at_one(backend):
    net = synaptic.mlp([3, 2, 2], "sigmoid", synaptic.training(
        "backprop", {"learning_rate": {"epsilon": 1.0, "adaptive": True, "ming": 0.01, "maxg": 10.0}}))
    set_weights(net, W1, W2)
    with using(backend):
        Backprop(net).step(X, T)
    for gain in net.training.state["lr_gain"]:
        np.testing.assert_array_equal(gain, 1.0)
    np.testing.assert_allclose(net.training.state["deltaw"][0], DW1, atol=1e-7)
