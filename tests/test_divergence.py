"""Divergence detection of the epoch-based algorithms (issue 13, item 3): a NaN or infinite
weight or training loss ends training with TrainingDiverged naming the epoch and the batch,
the net keeping the weights (and optimiser state) from before that batch; on_nonfinite
"stop" ends normally with a RuntimeWarning, "ignore" does what synaptic 0.1 did.  L-BFGS and
the params are in test_divergence_lbfgs.py."""
import pickle
import warnings

import numpy as np
import pytest

import synaptic
from synaptic import DataSet, TrainingDiverged, TrainingSet
from synaptic.training import divergence

from helpers import BACKENDS, using

TIMEOUT = 60
ROWS, NBATCHES, BAD = 8, 10, 5
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
PATHS = pytest.mark.parametrize("path", ["fused", "watched"])
SSE = {"error_fn": "sum-of-squares", "stats": {"errorkinds": ["sum-of-squares"]}}
ALGOS = {  # relu hidden units and a linear output: a huge input overflows the gradient
    "backprop": ("backprop", {**SSE, "learning_rate": {"epsilon": 0.01}, "momentum": {"alpha": 0.9}}),
    "rmsprop": ("rmsprop", {**SSE, "momentum": {"alpha": 0.5}, "stats": {"errorkinds": []}}),
}
# the huge batch: max ** POWER; the loss is finite, and a step on it makes the loss overflow
# (backprop: the weights grow ~ x^2), or (RMSprop, no loss in its stats) the mean square of
# the gradient (~ x^4) becomes inf, and a step on it inf / inf: NaN weights, in that epoch or
# the next
POWER = {"backprop": 0.45, "rmsprop": 0.5}


def one_hot(x):
    return np.eye(2)[(x[:, 0] > 0).astype(int)]


def batches(dtype=np.float64, bad=None, scale=None, keep=NBATCHES, seed=0, algo="backprop"):
    """NBATCHES batches of ROWS rows of 5 N(0, 1) features (class: x0 > 0), the first ``keep``
    of them; batch ``bad`` times ``scale`` (default the dtype's max ** POWER[algo])."""
    x = np.random.default_rng(seed).normal(size=(NBATCHES * ROWS, 5))
    if bad is not None:
        x[bad * ROWS:(bad + 1) * ROWS] *= (np.finfo(dtype).max ** POWER[algo] if scale is None
                                           else scale)
    y = one_hot(x)
    return TrainingSet({"labels": [0, 1]}, [DataSet(x[i * ROWS:(i + 1) * ROWS], y[i * ROWS:(i + 1) * ROWS])
                                            for i in range(keep)])


def build(algo, dtype, path="fused", policy=None, acts=("relu", "linear")):
    name, params = ALGOS[algo] if algo in ALGOS else (algo, dict(SSE))
    params = dict(params, **({} if policy is None else {"on_nonfinite": policy}))
    net = synaptic.mlp([5, 6, 2], list(acts), synaptic.training(name, params), dtype=dtype, seed=1)
    if path == "watched":
        net.add_watch("every batch", lambda *a: None)
    return net


def train(net, trset, epochs):
    return synaptic.train(net, trset, epochs).result(timeout=TIMEOUT)


def diverges(net, trset, epochs):
    with pytest.raises(TrainingDiverged) as info:
        train(net, trset, epochs)
    assert net.state is None
    return info.value


def finite(net):
    return all(np.isfinite(w).all() for w in net.weights) and all(
        np.isfinite(v).all() for errs in (net.stats.tr_err, net.stats.val_err)
        for v in errs.values())


def first_batches(trset, k):
    return TrainingSet(trset.header, trset.batches[:k])


def assert_first_offending(make, trset, err):
    """``err`` names the first batch after which a weight or the training loss is not finite:
    a net that (not checked) trains err.epoch epochs and then err.batch batches is finite,
    one more batch and it is not.  ``make(policy)`` builds the net."""
    kind = "sum-of-squares" if "sum-of-squares" in str(err) else "cross-entropy"
    for k, expected in ((err.batch, True), (err.batch + 1, False)):
        net = make("ignore")
        if err.epoch:
            train(net, trset, err.epoch)
        if k:
            train(net, first_batches(trset, k), 1)
        loss = synaptic.training_error(kind, net, trset)
        assert (all(np.isfinite(w).all() for w in net.weights) and np.isfinite(loss)) == expected


def assert_same_net(net, ref):
    """The same weights and optimiser state, bit for bit."""
    for a, b in zip(net.weights, ref.weights):
        np.testing.assert_array_equal(a, b)
    state = {k: v for k, v in net.training.state.items() if k != "state"}
    ref_state = {k: v for k, v in ref.training.state.items() if k != "state"}
    assert state.keys() == ref_state.keys()
    for key, value in ref_state.items():
        if isinstance(value, list):
            for a, b in zip(state[key], value):
                np.testing.assert_array_equal(a, b)
        else:
            assert state[key] == value
    assert net._batches == ref._batches


# -- the two cases of the issue: before, inf/nan in the stats and NaN weights, no warning ------

@DTYPES
@PATHS
@pytest.mark.parametrize("batch", [20, None], ids=["batch-20", "full-batch"])
def test_relu_sum_of_squares_with_a_large_learning_rate_raises(dtype, path, batch):
    x = np.random.default_rng(0).normal(size=(200, 5))
    trset = synaptic.training_set(x, (x[:, 0] > 0).astype(int), batch=batch, rand=False)

    def make(policy="raise"):
        params = {**SSE, "learning_rate": {"epsilon": 5.0}, "on_nonfinite": policy}
        net = synaptic.mlp([5, 8, 2], ["relu", "linear"], synaptic.training("backprop", params),
                           dtype=dtype, seed=1)
        if path == "watched":
            net.add_watch("every batch", lambda *a: None)
        return net
    net = make()
    err = diverges(net, trset, 20)
    assert f"epoch {err.epoch}, batch {err.batch}" in str(err)
    assert err.what in ("loss", "weights of layer 1", "weights of layer 2")
    assert finite(net) and net.stats.epochs == err.epoch
    assert net.stats.diverged == {"epoch": err.epoch, "batch": err.batch, "what": err.what}
    assert_first_offending(make, trset, err)


@DTYPES
@PATHS
def test_inputs_of_1e20_raise(dtype, path):
    x = np.random.default_rng(0).normal(size=(200, 5)) * 1e20
    trset = synaptic.training_set(x, (x[:, 0] > 0).astype(int), batch=20, rand=False, dtype=dtype)

    def make(policy="raise"):
        params = {"learning_rate": {"epsilon": 0.1}, "on_nonfinite": policy}
        net = synaptic.mlp([5, 8, 2], ["relu", "softmax"], synaptic.training("backprop", params),
                           dtype=dtype, seed=1)
        if path == "watched":
            net.add_watch("every batch", lambda *a: None)
        return net
    net = make()
    err = diverges(net, trset, 3)
    assert err.epoch == 0 and finite(net)
    assert_first_offending(make, trset, err)


# -- the batch named, and the weights from just before it ---------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@DTYPES
@PATHS
@pytest.mark.parametrize("algo", list(ALGOS))
@pytest.mark.parametrize("before", [0, 2], ids=["first-epoch", "third-epoch"])
def test_the_batch_is_named_and_the_net_is_as_after_the_batches_before_it(backend, dtype, path,
                                                                           algo, before):
    """A run of exactly the batches before the offending one, through the same path, gives
    the same net bit for bit: the replay (one whole-epoch kernel call per batch on the fused
    path) repeats the first pass exactly."""
    net, ref = build(algo, dtype, path), build(algo, dtype, path)
    with using(backend):
        for n in (net, ref):
            if before:
                train(n, batches(), before)
        bad = batches(dtype, bad=BAD, algo=algo)
        err = diverges(net, bad, 3)
        assert err.batch == BAD and err.epoch in ((before,) if algo == "backprop" else
                                                  (before, before + 1))
        if err.epoch > before:
            train(ref, bad, err.epoch - before)
        train(ref, first_batches(bad, BAD), 1)
    assert err.what == "loss" or err.what.startswith("weights of layer")
    assert str(err).startswith(f"training diverged in epoch {err.epoch}, batch {BAD} ")
    assert f"trset.batches[{BAD}]" in str(err)
    assert_same_net(net, ref)
    assert net.stats.epochs == err.epoch  # the diverged epoch is not counted
    assert net.stats.diverged == {"epoch": err.epoch, "batch": BAD, "what": err.what}


@DTYPES
@pytest.mark.parametrize("act", ["binary-threshold", "binary-stochastic"])
def test_the_perceptron(dtype, act):
    """Stochastic units too: the replay draws their random numbers as the first pass did."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(NBATCHES * ROWS, 2))
    x[BAD * ROWS:(BAD + 1) * ROWS] = [np.finfo(dtype).max / 4, -np.finfo(dtype).max / 4]
    y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    y[BAD * ROWS:(BAD + 1) * ROWS] = [1, 0]  # misclassified: their sum overflows

    def net_and_set(keep, kinds=None):
        params = {} if kinds is None else {"stats": {"errorkinds": kinds}}
        net = synaptic.mlp([2, 2], act, synaptic.training("perceptron", params), dtype=dtype,
                           seed=1)
        return net, TrainingSet({"labels": [0, 1]}, [DataSet(x[i:i + ROWS], y[i:i + ROWS])
                                                     for i in range(0, keep * ROWS, ROWS)])
    net, trset = net_and_set(NBATCHES)
    err = diverges(net, trset, 2)
    assert (err.epoch, err.batch, err.what) == (0, BAD, "weights of layer 1")
    ref, part = net_and_set(BAD, kinds=[])  # no stats: no draws after the batches
    train(ref, part, 1)
    assert_same_net(net, ref)
    assert net.rng.bit_generator.state == ref.rng.bit_generator.state


def test_a_stop_after_the_offending_batch_still_finds_it():
    """A stopped (partial) epoch is checked too."""
    net = build("backprop", np.float64, "watched")
    net.add_watch("stop", lambda key, n, old, new: new.event == "weights" and new.batches == 8
                  and synaptic.stop_training(n))
    err = diverges(net, batches(bad=BAD), 3)
    assert (err.epoch, err.batch) == (0, BAD)
    ref = build("backprop", np.float64, "watched")
    train(ref, batches(keep=BAD), 1)
    assert_same_net(net, ref)


# -- a training loss that is not finite while the weights are ------------------------------

def test_a_loss_that_overflows_with_finite_weights_names_its_batch():
    """R-prop's bounded steps keep the weights finite while the float64 sum of squares of the
    outputs on a batch of 1e154s overflows, in the second epoch at batch 4."""
    rprop = ("relu", "linear")
    net = build("rprop", np.float64, acts=rprop)
    err = diverges(net, batches(bad=BAD, scale=1e154), 30)
    assert (err.epoch, err.batch, err.what) == (1, 4, "loss")
    assert "the training loss became NaN or infinite (sum-of-squares: inf)" in str(err)
    ref = build("rprop", np.float64, acts=rprop)
    train(ref, batches(bad=BAD, scale=1e154), 1)
    train(ref, batches(bad=BAD, scale=1e154, keep=4), 1)
    net.training.stats = ref.training.stats = None
    assert_same_net(net, ref)
    assert np.isfinite(synaptic.training_error("sum-of-squares", net, batches(bad=BAD, scale=1e154)))


def test_a_loss_not_finite_from_the_start_names_no_batch():
    net = build("rprop", np.float64)
    start = [w.copy() for w in net.weights]
    err = diverges(net, batches(bad=BAD, scale=1e155), 3)
    assert (err.epoch, err.batch, err.what) == (0, None, "loss")
    assert "already NaN or infinite" in str(err)
    for a, b in zip(net.weights, start):
        np.testing.assert_array_equal(a, b)
    assert net._batches == 0 and "rp_step" not in net.training.state


# -- "stop" and "ignore" ------------------------------------------------------------------

@DTYPES
@PATHS
def test_stop_ends_normally_with_a_warning_and_the_weights_of_raise(dtype, path):
    raised = build("backprop", dtype, path)
    err = diverges(raised, batches(dtype, bad=BAD), 3)
    net = build("backprop", dtype, path, policy="stop")
    with pytest.warns(RuntimeWarning, match=f"epoch 0, batch {BAD} .*on_nonfinite 'stop'"):
        assert train(net, batches(dtype, bad=BAD), 3) is net
    assert net.state is None and finite(net)
    assert net.stats.diverged == {"epoch": 0, "batch": BAD, "what": err.what}
    assert net.stats.epochs == 0
    assert_same_net(net, raised)
    train(net, batches(dtype), 2)  # and it trains on
    assert net.stats.epochs == 2 and finite(net)


@DTYPES
def test_ignore_does_what_synaptic_0_1_did(dtype):
    net = build("backprop", dtype, policy="ignore")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert train(net, batches(dtype, bad=BAD), 3) is net
    assert not [w for w in caught if "diverged" in str(w.message)]
    assert net.stats.epochs == 3 and net.stats.diverged is None
    assert not np.isfinite(net.weights[0]).all()
    assert not np.isfinite(net.stats.tr_err["sum-of-squares"]).any()
    assert train(net, batches(dtype), 1) is net  # NaN weights: still trained


def test_a_net_whose_weights_are_not_finite_is_refused_unless_ignored():
    net = build("backprop", np.float64)
    net.weights[1][0, 2] = np.nan
    with pytest.raises(ValueError, match="layer 2's weights hold NaN or infinity"):
        synaptic.train(net, batches(), 1)
    assert net.state is None
    net.training.params["on_nonfinite"] = "ignore"
    assert train(net, batches(), 1) is net


def test_the_error():
    err = TrainingDiverged(3, None, "loss")
    assert isinstance(err, ArithmeticError) and not isinstance(err, ValueError)
    assert str(err) == "training diverged in epoch 3: the loss became NaN or infinite"
    copy = pickle.loads(pickle.dumps(TrainingDiverged(1, 2, "weights of layer 1", "custom")))
    assert (copy.epoch, copy.batch, copy.what, str(copy)) == (1, 2, "weights of layer 1", "custom")
    assert synaptic.TrainingDiverged is TrainingDiverged and "TrainingDiverged" in synaptic.__all__


@PATHS
@pytest.mark.parametrize("case", ["backprop", "rprop"])
def test_a_copy_kept_for_several_epochs_gives_the_same_result(monkeypatch, path, case):
    """Tiny nets keep the epoch's copy for a few epochs (its cost against the epoch's time):
    a divergence then replays the epochs since the copy first.  Copied once for the whole run
    or at every epoch, the same error and the same net."""
    if case == "backprop":
        x = np.random.default_rng(0).normal(size=(200, 5))
        trset = synaptic.training_set(x, (x[:, 0] > 0).astype(int), rand=False)
        params = {**SSE, "learning_rate": {"epsilon": 5.0}, "momentum": {"alpha": 0.5}}
    else:
        trset, params = batches(bad=BAD, scale=1e154), dict(SSE)
    results = []
    for budget in (1e9, 1e-9):  # every epoch / once (MAX_EVERY epochs)
        monkeypatch.setattr(divergence, "COPY_BUDGET", budget)
        net = synaptic.mlp([5, 8, 2], ["relu", "linear"], synaptic.training(case, params), seed=1)
        if path == "watched":
            net.add_watch("every batch", lambda *a: None)
        results.append((diverges(net, trset, 30), net))
    (first, net), (second, again) = results
    assert (first.epoch, first.batch, first.what) == (second.epoch, second.batch, second.what)
    assert first.epoch >= 1 and str(first) == str(second)
    assert_same_net(again, net)
