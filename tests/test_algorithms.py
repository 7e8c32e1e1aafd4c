"""The training algorithms (SYNAPTIC.md §5, §9.6-§9.8): perceptron, R-prop and its variants,
RMSprop, L-BFGS, regularization, weight decay and the Nesterov dispatch."""
import time

import numpy as np
import pytest

import synaptic
from synaptic import datasets
from synaptic._kernels import reference as R
from synaptic.training import lbfgs, loop, regularization
from synaptic.training.backprop import Backprop
from synaptic.training.perceptron import Perceptron
from synaptic.training.rmsprop import RMSprop
from synaptic.training.rprop import Rprop
from synaptic.training.stats import init_stats, update_stats

from helpers import BACKENDS, set_weights, using


def ds(x, y):
    return synaptic.dataset(np.asarray(x, float), np.asarray(y, float))


# ---------------------------------------------------------------------------------------
# §9.6 perceptron and the training error

PX = np.array([[2, 0], [1, 1], [0, 1], [4, 1], [1, 2]], float)
PT = np.array([[1], [1], [0], [0], [0]], float)


@pytest.mark.parametrize("backend", BACKENDS)
def test_perceptron_update_vector(backend):
    net = synaptic.mlp([2, 1], "binary-threshold", synaptic.training("perceptron"))
    set_weights(net, [[1, -1, 2]])
    with using(backend):
        dw = Perceptron(net).step(PX, PT)
    np.testing.assert_array_equal(dw, [[-1, 1, -3]])
    np.testing.assert_array_equal(net.weights[0], [[0, 0, -1]])
    assert net.training.state == {}   # the raw rule keeps no state (as the original)


def test_perceptron_train_batch_gives_the_same_weights():
    net = synaptic.mlp([2, 1], "binary-threshold", synaptic.training("perceptron"))
    set_weights(net, [[1, -1, 2]])
    # labels "0"/"1" with one output unit would not be one-hot: build the set from its parts
    trset = datasets.TrainingSet({"labels": [1], "name": "p"}, [ds(PX, PT)])
    synaptic.train(net, trset, 1).result(timeout=30)
    np.testing.assert_array_equal(net.weights[0], [[0, 0, -1]])


def test_perceptron_misclassification_after_one_batch():
    net = synaptic.mlp([2, 2], "binary-threshold", synaptic.training("perceptron"))
    set_weights(net, [[1, -1, -1], [1, 1, 1]])
    trset = synaptic.training_set([[2, 0], [0, 1], [2, 1], [4, 1], [1, 2]], ["1", "1", "0", "0", "0"],
                                  rand=False)
    assert synaptic.training_error("misclassification", net, trset) == pytest.approx(0.8)
    synaptic.train(net, trset, 1).result(timeout=30)
    assert synaptic.training_error("misclassification", net, trset) == pytest.approx(0.4)
    assert net.stats.tr_err == {"misclassification": [pytest.approx(0.4)]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_perceptron_update_stats_vector(backend):
    net = synaptic.mlp([2, 2], "binary-threshold", synaptic.training("perceptron"))
    set_weights(net, [[1, -1, 2], [1, 1, 0]])
    trset = synaptic.training_set([[2, 0], [1, 1], [0, 1], [4, 1], [1, 2], [1, 0], [1, 2]],
                                  list("bbaaaab"), online=True, rand=False, nvalid=2)
    data = trset.astype(net.dtype)
    with using(backend):
        init_stats(net)
        update_stats(net, data, 0.0)
        rule = Perceptron(net)
        for batch in data.batches[:2]:
            rule.step(batch.x, batch.y)
            update_stats(net, data, 0.0)
    assert net.stats.tr_err["misclassification"] == pytest.approx([0.8, 0.8, 0.6])
    assert net.stats.val_err["misclassification"] == [1.0, 1.0, 1.0]


PSAMPLES = [[1, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1]]
PLABELS = ["1", "0", "0", "1", "1", "1", "0", "0"]


def test_perceptron_train_counts_and_stop():
    trset = synaptic.training_set(PSAMPLES, PLABELS, online=True, rand=False, nvalid=2)
    net = synaptic.mlp([3, 2], "binary-threshold", synaptic.training("perceptron"), seed=1)
    for epochs, total in ((1, 1), (2, 3), (10, 13)):
        synaptic.train(net, trset, epochs).result(timeout=30)
        assert len(net.stats.tr_err["misclassification"]) == total
        assert len(net.stats.val_err["misclassification"]) == total
    future = synaptic.train(net, trset, 1000)
    time.sleep(0.02)
    assert synaptic.stop_training(net) is net
    assert net.state in ("stopping", None)
    future.result(timeout=30)
    assert net.state is None and net.stats.epochs < 13 + 1000


def test_perceptron_needs_a_single_layer():
    trset = synaptic.training_set(PSAMPLES, PLABELS, rand=False)
    net = synaptic.mlp([3, 4, 2], "binary-threshold", synaptic.training("perceptron"))
    with pytest.raises(ValueError, match="single layer"):
        synaptic.train(net, trset, 1)
    assert net.state is None


# ---------------------------------------------------------------------------------------
# §9.7 rprop and rmsprop, whole steps

RX = np.array([[1, 0], [0, 0], [0, 1], [1, 1]], float)
RY = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], float)
RSTEP = [[1, 0.5, 0.1], [9.99, 0.95, 0.5]]
RSTEP_NEW = [[1.2, 0.25, 0.1], [10.0, 1.14, 0.6]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_rprop_full_deltaw_vector(backend):
    net = synaptic.mlp([2, 2], "sigmoid", synaptic.training("rprop", {"rprop": {"mins": 0.1, "maxs": 10.0}}))
    w0 = np.array([[0.0023498, 0.0013089, -0.0085562], [-0.0013064, -0.0131069, 0.0112939]])
    set_weights(net, w0)
    state = net.training.state
    state["deltaw"] = [np.array([[1, 1, -1], [1, 1, -1]], float)]
    state["rp_step"] = [np.array(RSTEP)]
    with using(backend):
        g = synaptic.error_derivatives(net, ds(RX, RY))[0]
        np.testing.assert_array_equal(np.sign(-g), [[1, -1, 1], [1, 1, -1]])
        Rprop(net).step(RX, RY)
    np.testing.assert_allclose(state["rp_step"][0], RSTEP_NEW, atol=1e-12)
    np.testing.assert_allclose(state["deltaw"][0], np.multiply(RSTEP_NEW, np.sign(-g)), atol=1e-12)
    np.testing.assert_allclose(net.weights[0] - w0, state["deltaw"][0], atol=1e-15)


RW1 = [[0.1, 0.4, 0.2], [0.4, 0.5, 0.2]]
RW2 = [[0.05, 0.1, 0.08], [0.06, 0.05, 0.12]]
RG = [[[0.0035863, 0.0254964, 0.0134786], [0.0023672, 0.0180946, 0.0268664]],
      [[0.1634931, 0.1938329, 0.2195971], [0.1706227, 0.1500576, 0.1591071]]]
RMS_PREV = [[[1.0, 1.5, 0.8], [2.0, 1.2, 1.5]], [[1.2, 0.8, 0.5], [2.1, 0.5, 1.6]]]
RMS_NEW = [[[0.9000013, 1.3500650, 0.7200182], [1.8000006, 1.0800327, 1.3500722]],
           [[1.0826730, 0.7237571, 0.4548223], [1.8929112, 0.4522517, 1.4425315]]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_rmsprop_full_deltaw_vector(backend):
    net = synaptic.mlp([2, 2, 2], "sigmoid", synaptic.training("rmsprop"))
    set_weights(net, RW1, RW2)
    state = net.training.state
    state["ms_grad"] = [np.array(m) for m in RMS_PREV]
    with using(backend):
        grads = synaptic.error_derivatives(net, ds(RX, RY))
        RMSprop(net).step(RX, RY)
    for g, expected in zip(grads, RG):
        np.testing.assert_allclose(g, expected, atol=1e-7)
    for ms, expected, g, w0, dw, w in zip(state["ms_grad"], RMS_NEW, grads, (RW1, RW2),
                                          state["deltaw"], net.weights):
        np.testing.assert_allclose(ms, expected, atol=1e-7)
        np.testing.assert_allclose(dw, -0.01 * g / np.sqrt(ms), rtol=1e-12)
        np.testing.assert_allclose(w - np.array(w0), dw, atol=1e-15)


def test_momentum_with_rprop_and_rmsprop_is_added_after_the_rule():
    """SYNAPTIC.md §5: rule, then momentum; the next step compares with the stored update."""
    x, y = RX, RY
    for algo, extra in (("rprop", {}), ("rmsprop", {"learning_rate": {"epsilon": 0.05}})):
        net = synaptic.mlp([2, 2, 2], "sigmoid", synaptic.training(algo, {"momentum": {"alpha": 0.5}, **extra}))
        set_weights(net, RW1, RW2)
        rule = Rprop(net) if algo == "rprop" else RMSprop(net)
        rule.step(x, y)
        first = [d.copy() for d in net.training.state["deltaw"]]
        g = synaptic.error_derivatives(net, ds(x, y))
        rule.step(x, y)
        for i, (d1, gi, d2) in enumerate(zip(first, g, net.training.state["deltaw"])):
            if algo == "rprop":
                step = np.clip(np.where(-gi * d1 > 0, 0.01 * 1.2, 0.01 * 0.5), 1e-6, 50)
                rule_step = step * np.sign(-gi)
            else:
                rule_step = 0.05 * -gi / np.sqrt(net.training.state["ms_grad"][i])
            np.testing.assert_allclose(d2, rule_step + 0.5 * d1, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------
# R-prop variants against NumPy transcriptions of the papers' pseudo-code

def _sign(v):
    return float(v > 0) - float(v < 0)


def transcribed_rprop(variant, w, grad, error, steps, d0, dmin=1e-6, dmax=50.0, up=1.2, down=0.5):
    """Per-weight loops, as printed: Synaptic's Rprop- (SYNAPTIC.md §5); Rprop+ (Riedmiller &
    Braun 1993, with weight backtracking); iRprop- and iRprop+ (Igel & Hüsken 2000)."""
    w = w.copy()
    n = w.size
    delta, gprev, dwprev = [d0] * n, [0.0] * n, [0.0] * n
    events = {"backtracked": 0, "flipped_kept": 0}
    e_prev = np.inf
    for t in range(steps):
        g, e = grad(w), error(w)
        for i in range(n):
            if variant == "rprop-":
                d = -g[i]
                if t > 0:
                    delta[i] = min(max(delta[i] * (up if d * dwprev[i] > 0 else down), dmin), dmax)
                dw = delta[i] * _sign(d)
                w[i] += dw
                dwprev[i] = dw
            elif gprev[i] * g[i] > 0:
                delta[i] = min(delta[i] * up, dmax)
                dwprev[i] = -_sign(g[i]) * delta[i]
                w[i] += dwprev[i]
                gprev[i] = g[i]
            elif gprev[i] * g[i] < 0:
                delta[i] = max(delta[i] * down, dmin)
                if variant == "rprop+" or (variant == "irprop+" and e > e_prev):
                    w[i] -= dwprev[i]
                    events["backtracked"] += 1
                else:
                    events["flipped_kept"] += 1
                gprev[i] = 0.0       # iRprop-: no step (-sign(0) * delta); all: forget g
            else:
                dwprev[i] = -_sign(g[i]) * delta[i]
                w[i] += dwprev[i]
                gprev[i] = g[i]
        e_prev = e
    return w, events


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", ["rprop-", "rprop+", "irprop-", "irprop+"])
def test_rprop_variants_match_the_papers(backend, variant):
    rng = np.random.default_rng(5)
    x = rng.random((30, 4))
    labels = list(rng.integers(0, 3, 30))
    trset = synaptic.training_set(x, labels, rand=False)
    params = {"rprop": {"variant": variant, "step_init": 0.5}}
    net = synaptic.mlp([4, 5, 3], ["sigmoid", "softmax"], synaptic.training("rprop", params), seed=2)
    probe = synaptic.mlp([4, 5, 3], ["sigmoid", "softmax"], synaptic.training("rprop", params), seed=2)
    data = ds(x, trset.y)

    def grad(flat):
        lbfgs.unflatten(flat, probe.weights)
        return lbfgs.flatten(synaptic.error_derivatives(probe, data))

    def error(flat):
        lbfgs.unflatten(flat, probe.weights)
        return synaptic.training_error("cross-entropy", probe, trset) * 30

    with using(backend):
        want, events = transcribed_rprop(variant, lbfgs.flatten(net.weights), grad, error, 25, d0=0.5)
        synaptic.train(net, trset, 25).result(timeout=60)
    np.testing.assert_allclose(lbfgs.flatten(net.weights), want, rtol=1e-12, atol=1e-14)
    if variant in ("rprop+", "irprop+"):
        assert events["backtracked"] > 0     # the comparison exercised the backtracking
    if variant == "irprop+":
        assert events["flipped_kept"] > 0


def test_irprop_plus_keeps_the_previous_error_in_the_state():
    trset = synaptic.training_set(RX, ["a", "b", "a", "b"], rand=False)
    net = synaptic.mlp([2, 2], "softmax", synaptic.training("rprop", {"rprop": {"variant": "irprop+"}}))
    synaptic.train(net, trset, 3).result(timeout=30)
    state = net.training.state
    assert sorted(state) == ["deltaw", "rp_err", "rp_grad", "rp_step", "state"]
    assert isinstance(state["rp_err"], float)


@pytest.mark.parametrize("algo,params", [
    ("rprop", {"rprop": {"variant": "irprop+"}}),
    ("rprop", {"rprop": {"variant": "irprop-"}, "momentum": {"alpha": 0.5}}),
    ("rmsprop", {"rmsprop": {"eps": 1e-6}, "momentum": {"alpha": 0.9, "alpha_start": 0.5, "alpha_step": 0.05},
                 "learning_rate": {"epsilon": 0.02, "adaptive": True, "ming": 0.01, "maxg": 10.0}}),
])
def test_resume_is_exact(tmp_path, monkeypatch, algo, params):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    rng = np.random.default_rng(0)
    trset = synaptic.training_set(rng.random((40, 5)), list(rng.integers(0, 3, 40)), batch=8, seed=1)

    def fresh():
        return synaptic.mlp([5, 6, 3], ["sigmoid", "softmax"], synaptic.training(algo, params), seed=4)

    straight = fresh()
    synaptic.train(straight, trset, 6).result(timeout=60)
    half = fresh()
    synaptic.train(half, trset, 3).result(timeout=60)
    synaptic.save_neural_net(half, "half")
    resumed = synaptic.load_neural_net("half")
    synaptic.train(resumed, trset, 3).result(timeout=60)
    for a, b in zip(straight.weights, resumed.weights, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# §9.8 regularization

RW = [np.array([[1.0, -2, 3], [-4, 5, -6]]), np.array([[7.0, 8, -9]])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_regularization_penalties_and_derivatives(backend):
    # L1: the original's derivative, the penalty it is the gradient of (2 x the original's 0.825)
    assert regularization.penalty(RW, "l1", 0.05) == pytest.approx(2 * 0.825)
    assert regularization.penalty(RW, "l2", 0.01) == pytest.approx(1.095)
    with using(backend):
        kern = synaptic._kernels.get_backend()
        l1 = regularization.derivatives(RW, "l1", 0.05, kern)
        l2 = regularization.derivatives(RW, "l2", 0.01, kern)
    np.testing.assert_allclose(l1[0], [[0, -.05, .05], [0, .05, -.05]])
    np.testing.assert_allclose(l1[1], [[0, .05, -.05]])
    np.testing.assert_allclose(l2[0], [[0, -.02, .03], [0, .05, -.06]])
    np.testing.assert_allclose(l2[1], [[0, .08, -.09]])
    zero = regularization.derivatives([np.array([[0.0, 0.0, -0.0]])], "l1", 0.05)
    np.testing.assert_array_equal(zero[0], 0.0)        # sign(0) = 0
    with pytest.raises(ValueError, match="unknown regularization kind"):
        regularization.penalty(RW, "l3", 0.1)          # the original returned 0.0


def _first_steps(algo, reg, backend):
    net = synaptic.mlp([2, 2, 2], "sigmoid", synaptic.training(algo, {"regularization": reg} if reg else {}))
    # every non-bias weight has the sign opposite to its gradient's: the penalty can flip steps
    set_weights(net, [[0.1, 0.4, -0.2], [0.4, -0.5, 0.2]], [[0.05, -0.1, 0.08], [0.06, 0.05, -0.12]])
    with using(backend):
        g = synaptic.error_derivatives(net, ds(RX, RY))
        w0 = [w.copy() for w in net.weights]
        loop.make_algorithm(net).step(RX, RY)
    return g, w0, net.training.state["deltaw"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("algo", ["backprop", "rprop", "rmsprop"])
@pytest.mark.parametrize("kind,lam", [("l1", 0.3), ("l2", 2.0)])
def test_every_gradient_algorithm_adds_the_derivative_to_the_summed_gradient(backend, algo, kind, lam):
    g, w0, dw = _first_steps(algo, {"kind": kind, "lambda": lam}, backend)
    for gi, wi, dwi in zip(g, w0, dw):
        reg = lam * (np.sign(wi) if kind == "l1" else wi)
        reg[:, 0] = 0                                   # the bias is exempt
        total = gi + reg
        expected = {"backprop": -0.01 * total / len(RX), "rprop": 0.01 * np.sign(-total),
                    "rmsprop": -0.01 * np.sign(total)}[algo]
        np.testing.assert_allclose(dwi, expected, rtol=1e-12, atol=1e-15)
        assert np.any(np.sign(total) != np.sign(gi))     # the penalty really changed the step


def test_weight_decay_is_decoupled_and_matches_l2_for_plain_sgd():
    """W <- (1 - eps wd) W + dW(g(W)), bias exempt; without momentum that is L2 with lambda = wd * m."""
    net = synaptic.mlp([2, 2, 2], "sigmoid", synaptic.training(
        "backprop", {"learning_rate": {"epsilon": 0.5}, "weight_decay": 0.1}))
    set_weights(net, RW1, RW2)
    g = synaptic.error_derivatives(net, ds(RX, RY))
    Backprop(net).step(RX, RY)
    for w, w0, gi in zip(net.weights, (RW1, RW2), g):
        decayed = np.array(w0)
        decayed[:, 1:] *= 1 - 0.5 * 0.1
        np.testing.assert_allclose(w, decayed - 0.5 * gi / 4, rtol=1e-13)
    rng = np.random.default_rng(3)
    trset = synaptic.training_set(rng.random((40, 3)), list(rng.integers(0, 2, 40)), batch=10, rand=False)
    nets = [synaptic.mlp([3, 4, 2], ["sigmoid", "softmax"], synaptic.training("backprop", p), seed=1)
            for p in ({"learning_rate": {"epsilon": 0.5}, "weight_decay": 0.1},
                      {"learning_rate": {"epsilon": 0.5}, "regularization": {"kind": "l2", "lambda": 1.0}})]
    for net in nets:
        synaptic.train(net, trset, 5).result(timeout=30)
    for a, b in zip(*(n.weights for n in nets)):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_weight_decay_with_rprop_scales_by_one_minus_lambda():
    net = synaptic.mlp([2, 2, 2], "sigmoid", synaptic.training("rprop", {"weight_decay": 0.2}))
    set_weights(net, RW1, RW2)
    g = synaptic.error_derivatives(net, ds(RX, RY))
    Rprop(net).step(RX, RY)
    for w, w0, gi in zip(net.weights, (RW1, RW2), g):
        decayed = np.array(w0)
        decayed[:, 1:] *= 0.8
        np.testing.assert_allclose(w, decayed + 0.01 * np.sign(-gi), rtol=1e-13)


# ---------------------------------------------------------------------------------------
# Nesterov dispatch and refused combinations

def test_nesterov_replaces_rprop_and_rmsprop_by_gradient_descent():
    nesterov = {"learning_rate": {"epsilon": 0.5}, "momentum": {"alpha": 0.9, "nesterov": True}}
    trset = synaptic.training_set(RX, ["a", "b", "a", "b"], rand=False)
    nets = {}
    for algo in ("backprop", "rprop", "rmsprop"):
        net = synaptic.mlp([2, 3, 2], ["sigmoid", "softmax"], synaptic.training(algo, nesterov), seed=1)
        assert isinstance(loop.make_algorithm(net), Backprop)
        synaptic.train(net, trset, 4).result(timeout=30)
        nets[algo] = net
    for algo in ("rprop", "rmsprop"):
        for a, b in zip(nets[algo].weights, nets["backprop"].weights):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("algo,params,match", [
    ("perceptron", {"learning_rate": {"epsilon": 1.0}, "momentum": {"alpha": 0.5, "nesterov": True}},
     "cannot replace 'perceptron'"),
    ("lbfgs", {"learning_rate": {"epsilon": 1.0}, "momentum": {"alpha": 0.5, "nesterov": True}},
     "cannot replace 'lbfgs'"),
    ("rprop", {"momentum": {"alpha": 0.9, "nesterov": True}}, "Nesterov momentum needs learning_rate.epsilon"),
    ("rprop", {"learning_rate": {"epsilon": 0.1}}, "does not apply to 'rprop'"),
    ("perceptron", {"momentum": {"alpha": 0.5}}, "does not apply to 'perceptron'"),
    ("perceptron", {"regularization": {"kind": "l2", "lambda": 0.1}}, "no gradient"),
    ("lbfgs", {"weight_decay": 0.1}, "does not apply to 'lbfgs'"),
    ("backprop", {"rmsprop": {"alpha": 0.5}}, "does not apply to 'backprop'"),
    ("rprop", {"rprop": {"variant": "rprop+"}, "momentum": {"alpha": 0.5}}, "backtracking"),
    ("rprop", {"rprop": {"variant": "irprop"}}, "rprop.variant"),
    ("rprop", {"rprop": {"eta_minus": 1.5}}, "eta_minus"),
    ("rprop", {"rprop": {"mins": 1.0, "maxs": 0.5}}, "mins <= maxs"),
    ("rmsprop", {"rmsprop": {"eps": -1.0}}, "rmsprop.eps"),
    ("lbfgs", {"lbfgs": {"m": 0}}, "lbfgs.m"),
    ("backprop", {"weight_decay": 5.0, "learning_rate": {"epsilon": 0.5}}, "weight_decay"),
])
def test_combinations_that_cannot_work_raise_at_training_time(algo, params, match):
    with pytest.raises(ValueError, match=match):
        synaptic.training(algo, params)


def test_lbfgs_option_types():
    with pytest.raises(TypeError, match="lbfgs.m' must be an integer"):
        synaptic.training("lbfgs", {"lbfgs": {"m": 5.0}})
    assert synaptic.training("lbfgs", {"lbfgs": {"m": 7, "eps": 0.0}}).params["lbfgs"] == {"m": 7, "eps": 0.0}


# ---------------------------------------------------------------------------------------
# §9.8 L-BFGS

def lbfgs_case(seed=0, dtype=np.float64, params=None):
    rng = np.random.default_rng(seed)
    x = (rng.random((25, 20)) > 0.5).astype(float)
    labels = list(range(10)) + list(rng.integers(0, 10, 15))       # every label present
    trset = synaptic.training_set(x, labels, rand=False)
    net = synaptic.mlp([20, 30, 10], ["sigmoid", "softmax"], synaptic.training("lbfgs", params), seed=1,
                       dtype=dtype)
    return net, trset


def test_flattening_round_trip_and_layout():
    net, _ = lbfgs_case()
    flat = lbfgs.flatten(net.weights)
    assert flat.shape == (30 * 21 + 10 * 31,) == (940,) and flat.dtype == np.float64
    np.testing.assert_array_equal(flat[:21], net.weights[0][0])           # row-major
    np.testing.assert_array_equal(flat[630:661], net.weights[1][0])       # layers concatenated
    back = lbfgs.unflatten(flat, [np.empty_like(w) for w in net.weights])
    for a, b in zip(back, net.weights):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="940"):
        lbfgs.unflatten(flat[:-1], net.weights)


def test_error_and_derivatives_shapes():
    net, trset = lbfgs_case()
    cost, grads = lbfgs.cost_and_derivatives(net, trset.batches[0])
    assert isinstance(cost, float) and cost > 0
    assert [g.shape for g in grads] == [(30, 21), (10, 31)]
    assert cost == pytest.approx(25 * synaptic.training_error("cross-entropy", net, trset), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_lbfgs_epoch_lowers_the_error(dtype):
    net, trset = lbfgs_case(dtype=dtype)
    before = [w.copy() for w in net.weights]
    e0 = synaptic.training_error("cross-entropy-multivariate", net, trset)
    synaptic.train(net, trset, 1).result(timeout=30)
    assert [w.shape for w in net.weights] == [w.shape for w in before]
    assert all(w.dtype == dtype for w in net.weights)
    assert not np.array_equal(before[0], net.weights[0])
    assert synaptic.training_error("cross-entropy-multivariate", net, trset) < e0


@pytest.mark.parametrize("out_act,error_fn", [("softmax", "cross-entropy"), ("sigmoid", "cross-entropy"),
                                              ("sigmoid", "sum-of-squares")])
@pytest.mark.parametrize("reg", [None, {"kind": "l1", "lambda": 0.7}, {"kind": "l2", "lambda": 0.7}])
def test_lbfgs_gradient_is_the_gradient_of_its_objective(out_act, error_fn, reg):
    """Central differences of C = sum of the error + penalty against its gradient."""
    rng = np.random.default_rng(4)
    params = {"error_fn": error_fn, **({"regularization": reg} if reg else {})}
    net = synaptic.mlp([5, 4, 3], ["hyperbolic-tangent", out_act], synaptic.training("lbfgs", params), seed=3)
    for w in net.weights:
        w[...] = rng.uniform(0.2, 1.0, w.shape) * rng.choice([-1, 1], w.shape)   # |w| >= 0.2: L1 smooth here
    data = ds(rng.random((12, 5)), np.eye(3)[rng.integers(0, 3, 12)])
    cost, grads = lbfgs.cost_and_derivatives(net, data)
    h = 1e-6
    for w, g in zip(net.weights, grads):
        numeric = np.empty_like(w)
        for idx in np.ndindex(w.shape):
            keep = w[idx]
            w[idx] = keep + h
            up = lbfgs.cost_and_derivatives(net, data)[0]
            w[idx] = keep - h
            down = lbfgs.cost_and_derivatives(net, data)[0]
            w[idx] = keep
            numeric[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-7)


def test_lbfgs_watches_stats_and_status():
    net, trset = lbfgs_case()
    events = []
    net.add_watch("log", lambda key, ref, old, new: events.append(new.event))
    synaptic.train(net, trset, 3).result(timeout=30)
    evaluations = (len(events) - 5) // 2
    assert evaluations >= 4                       # x0 + one accepted point per iteration at least
    assert events == (["state", "init-stats"] + ["weights", "stats"] * evaluations
                      + ["weights", "stats", "state"])
    assert net.stats.epochs == evaluations + 1    # one entry per evaluation + the final one
    errors = net.stats.tr_err["cross-entropy-multivariate"]
    assert errors[-1] == min(errors) < errors[0]  # the result is the best point evaluated
    assert "ITERATIONS" in net.training.state["lbfgs_status"]


def test_lbfgs_eps_test_and_zero_epochs():
    net, trset = lbfgs_case(params={"lbfgs": {"eps": 1e6}})
    synaptic.train(net, trset, 0).result(timeout=30)
    assert net.stats.epochs == 0 and "lbfgs_status" not in net.training.state
    synaptic.train(net, trset, 50).result(timeout=30)
    assert net.training.state["lbfgs_status"].startswith("converged")
    assert net.stats.epochs <= 1 + 20 + 1         # stopped after the first iteration


def test_lbfgs_leaves_the_best_weights_when_the_objective_raises(monkeypatch):
    net, trset = lbfgs_case()
    calls = []
    real = lbfgs.LBFGS.cost

    def failing(self, x, t, kern=None, packed=None):
        calls.append(1)
        if len(calls) == 6:
            raise FloatingPointError("boom")
        return real(self, x, t, kern, packed)

    monkeypatch.setattr(lbfgs.LBFGS, "cost", failing)
    with pytest.raises(FloatingPointError, match="boom"):
        synaptic.train(net, trset, 100).result(timeout=30)
    assert net.state is None
    best = min(net.stats.tr_err["cross-entropy-multivariate"])
    assert synaptic.training_error("cross-entropy-multivariate", net, trset) == pytest.approx(best, rel=1e-12)


# ---------------------------------------------------------------------------------------
# real data: mnist10k (dense)

@pytest.fixture(scope="module")
def digits(mnist_path):
    full = datasets.mnist10k(scale=True, path=mnist_path)
    labels = [full.labels[i] for i in np.argmax(full.y, axis=1)]
    return synaptic.training_set(full.x[:1000], labels[:1000], batch=100, rand=False, name="digits")


DENSE_CASES = {
    "backprop": ("backprop", {"learning_rate": {"epsilon": 2.0}}),
    "nesterov": ("backprop", {"learning_rate": {"epsilon": 0.5}, "momentum": {"alpha": 0.9, "nesterov": True}}),
    "rprop-": ("rprop", {}),
    "rprop+": ("rprop", {"rprop": {"variant": "rprop+"}}),
    "irprop-": ("rprop", {"rprop": {"variant": "irprop-"}, "momentum": {"alpha": 0.3}}),
    "irprop+": ("rprop", {"rprop": {"variant": "irprop+"}}),
    "rmsprop": ("rmsprop", {}),
    "rmsprop-eps-adaptive": ("rmsprop", {"rmsprop": {"eps": 1e-8}, "learning_rate": {
        "epsilon": 0.01, "adaptive": True, "ming": 0.01, "maxg": 10.0}}),
    "lbfgs": ("lbfgs", {}),
}


@pytest.mark.parametrize("case", list(DENSE_CASES))
def test_every_algorithm_lowers_the_training_error_on_mnist(digits, case):
    algo, params = DENSE_CASES[case]
    net = synaptic.mlp([784, 30, 10], ["sigmoid", "softmax"], synaptic.training(algo, params), seed=3,
                       dtype=np.float32)
    e0 = synaptic.training_error("cross-entropy", net, digits)
    synaptic.train(net, digits, 4).result(timeout=60)
    e1 = synaptic.training_error("cross-entropy", net, digits)
    assert e1 < 0.75 * e0, (e0, e1)
    assert synaptic.accuracy(net, digits.batches[0]) > 0.5


def test_perceptron_lowers_the_misclassification_on_mnist(digits):
    net = synaptic.mlp([784, 10], "binary-threshold", synaptic.training("perceptron"), seed=3)
    e0 = synaptic.training_error("misclassification", net, digits)
    synaptic.train(net, digits, 3).result(timeout=60)
    assert synaptic.training_error("misclassification", net, digits) < 0.5 * e0


def test_stop_training_under_lbfgs_returns_promptly_with_usable_weights(digits):
    # eps 0: no convergence test, so only the stop can end it early (it runs for seconds otherwise)
    net = synaptic.mlp([784, 30, 10], ["sigmoid", "softmax"], synaptic.training("lbfgs", {"lbfgs": {"eps": 0.0}}),
                       seed=3)
    e0 = synaptic.training_error("cross-entropy", net, digits)
    future = synaptic.train(net, digits, 100000)
    deadline = time.perf_counter() + 60       # some iterations first, however busy the machine
    while (net.stats.epochs if net.stats else 0) < 40 and time.perf_counter() < deadline \
            and not future.done():
        time.sleep(0.01)
    stopped_at = time.perf_counter()
    assert synaptic.stop_training(net) is net, net.training.state
    future.result(timeout=30)
    assert time.perf_counter() - stopped_at < 1.0
    assert net.state is None and net.training.state["lbfgs_status"] == "stopped by stop_training"
    assert all(np.isfinite(w).all() for w in net.weights)
    e1 = synaptic.training_error("cross-entropy", net, digits)
    assert e1 < 0.5 * e0
    assert e1 == pytest.approx(min(net.stats.tr_err["cross-entropy-multivariate"]), rel=1e-9)


def test_l2_shrinks_and_l1_zeroes_weights(digits):
    def first_layer(reg):
        params = {"regularization": reg} if reg else {}
        net = synaptic.mlp([784, 30, 10], ["sigmoid", "softmax"], synaptic.training("rprop", params), seed=3)
        synaptic.train(net, digits, 5).result(timeout=60)
        return np.abs(net.weights[0][:, 1:])

    none = first_layer(None)
    l2 = first_layer({"kind": "l2", "lambda": 1.0})
    l1 = first_layer({"kind": "l1", "lambda": 0.1})
    assert l2.mean() < 0.2 * none.mean()
    assert (l1 < 1e-4).mean() > 0.8 > 0.1 > (none < 1e-4).mean()


# ---------------------------------------------------------------------------------------
# convolution nets (they run once convolution layers exist)

CONV_LAYERS = [
    {"type": "input", "fieldsize": [8, 8]},
    {"type": "convolution", "feature_map": {"size": [3, 3], "k": 3}, "act_fn": "hyperbolic-tangent",
     "pool": {"kind": "max", "size": [2, 2]}},
    {"type": "fully-connected", "n": 3, "act_fn": "softmax"},
]


def conv_net(algo, params=None):
    try:
        return synaptic.neural_net(CONV_LAYERS, synaptic.training(algo, params), seed=2)
    except ValueError as err:
        if "not available" in str(err):
            pytest.skip(f"convolution layers are not available yet: {err}")
        raise


def bars(n=90, seed=0):
    """8x8 images of a horizontal, a vertical or a diagonal bar, with noise: 3 classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = rng.random((n, 8, 8)) * 0.3
    for img, label in zip(x, labels):
        k = rng.integers(1, 7)
        if label == 0:
            img[k, :] += 1
        elif label == 1:
            img[:, k] += 1
        else:
            img[np.arange(8), np.arange(8)] += 1
    return synaptic.training_set(x.reshape(n, 64), list(labels), batch=30, rand=False)


CONV_CASES = {"backprop": ("backprop", {"learning_rate": {"epsilon": 0.3}}),
              **{k: DENSE_CASES[k] for k in ("rprop-", "irprop+", "rmsprop", "lbfgs")}}


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_every_algorithm_lowers_the_training_error_on_a_conv_net(case):
    algo, params = CONV_CASES[case]
    net = conv_net(algo, params)
    trset = bars()
    e0 = synaptic.training_error("cross-entropy", net, trset)
    synaptic.train(net, trset, 5).result(timeout=60)
    assert synaptic.training_error("cross-entropy", net, trset) < 0.8 * e0


def test_lbfgs_gradient_on_a_conv_net():
    net = conv_net("lbfgs", {"regularization": {"kind": "l2", "lambda": 0.1}})
    data = bars(10).batches[0]
    flat = lbfgs.flatten(net.weights)
    assert flat.size == sum(w.size for w in net.weights) == 3 * 10 + 3 * 28
    _, grads = lbfgs.cost_and_derivatives(net, data)
    g = lbfgs.flatten(grads)
    rng = np.random.default_rng(0)
    for i in rng.choice(flat.size, 25, replace=False):
        shifted = flat.copy()
        shifted[i] += 1e-6
        lbfgs.unflatten(shifted, net.weights)
        up = lbfgs.cost_and_derivatives(net, data)[0]
        shifted[i] -= 2e-6
        lbfgs.unflatten(shifted, net.weights)
        down = lbfgs.cost_and_derivatives(net, data)[0]
        lbfgs.unflatten(flat, net.weights)
        assert (up - down) / 2e-6 == pytest.approx(g[i], rel=1e-5, abs=1e-6)
