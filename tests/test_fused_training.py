"""The trainer's whole-epoch path (Backprop.epoch -> sgd_epoch) against its per-batch path.

A dense backprop net trains each epoch in one kernel call (with a watch that wants every
batch: one call per batch, so watched or not gives the same bits, test_determinism.py); the
per-batch path through the per-layer kernels is what every other net takes (here forced by
strategy.FORCE_WHOLE_EPOCH = False).  Same seed, same data, same options: the two paths must give the same
net -- bit for bit on
the NumPy backend (the twin of sgd_epoch runs the per-layer twins in the trainer's order),
within float rounding on the native one (its sums run in another order).
"""
import time

import numpy as np
import pytest

import synaptic
from synaptic.training import strategy
from synaptic.training.backprop import Backprop

from helpers import BACKENDS, using

OPTIONS = {
    "momentum": {"momentum": {"alpha": 0.9}},
    "schedule": {"momentum": {"alpha": 0.9, "alpha_start": 0.5, "alpha_step": 0.01}},
    "nesterov": {"momentum": {"alpha": 0.8, "nesterov": True}},
    "gains": {"learning_rate": {"epsilon": 0.02, "adaptive": True, "ming": 0.1, "maxg": 5.0}},
    "l2_decay": {"regularization": {"kind": "l2", "lambda": 1e-3}, "weight_decay": 1e-3},
    "l1": {"regularization": {"kind": "l1", "lambda": 1e-3}},
    "plain": {},
}


def data(n=60, d=30, classes=4, seed=0, zeros=0.7):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, d)) * (rng.uniform(size=(n, d)) > zeros)
    labels = rng.integers(0, classes, n).astype(str)
    return x, labels


def build(options, dtype, acts=("sigmoid", "softmax"), units=(30, 17, 4)):
    params = {"learning_rate": {"epsilon": 0.05}, "stats": {"errorkinds": ["cross-entropy"]}}
    for key, value in options.items():
        params[key] = {**params.get(key, {}), **value} if isinstance(value, dict) else value
    return synaptic.mlp(list(units), list(acts), synaptic.training("backprop", params),
                        dtype=dtype, seed=7)


def run(net, trset, epochs, watched):
    if watched:
        net.add_watch("w", lambda *a: None)
    synaptic.train(net, trset, epochs).result(timeout=60)
    return net


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("option", list(OPTIONS))
def test_whole_epoch_path_equals_the_per_batch_path(backend, dtype, option, monkeypatch):
    x, labels = data()
    trset = synaptic.training_set(x, labels, batch=7, rand=False, nvalid=10, dtype=dtype)
    with using(backend):
        fused = run(build(OPTIONS[option], dtype), trset, 3, watched=False)
        monkeypatch.setattr(strategy, "FORCE_WHOLE_EPOCH", False)
        plain = run(build(OPTIONS[option], dtype), trset, 3, watched=True)
    assert fused._batches == plain._batches == 3 * trset.nbatches
    exact = backend == "numpy"
    tol = {"rtol": 2e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}
    for a, b in zip(fused.weights, plain.weights):
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, **tol)
    state_f, state_p = fused.training.state, plain.training.state
    assert state_f.keys() == state_p.keys()
    if "alpha" in state_p:
        assert state_f["alpha"] == state_p["alpha"]
    for a, b in zip(state_f["deltaw"], state_p["deltaw"]):
        np.testing.assert_allclose(a, b, **({"rtol": 0, "atol": 0} if exact else tol))
    np.testing.assert_allclose(fused.stats.tr_err["cross-entropy-multivariate"],
                               plain.stats.tr_err["cross-entropy-multivariate"],
                               rtol=0 if exact else 1e-4)


def test_the_epoch_path_is_taken_only_when_it_applies(monkeypatch):
    calls = []
    original = Backprop.epoch
    monkeypatch.setattr(Backprop, "epoch", lambda self, *a, **k: calls.append(1) or
                        original(self, *a, **k))
    x, labels = data()
    small = synaptic.training_set(x, labels, batch=5, rand=False)
    synaptic.train(build({}, np.float64), small, 1).result(timeout=60)
    assert len(calls) == 1
    run(build({}, np.float64), small, 1, watched=True)   # watched: a call per batch
    assert len(calls) == 1 + small.nbatches
    del calls[1:]
    # a batch past the rule of strategy.whole_epoch: the per-layer kernels
    rows = max(strategy.EPOCH_ROWS_PER_UNIT * 17, strategy.EPOCH_MIN_PACK // 30) + 1
    big = synaptic.training_set(np.tile(x, (rows // len(x) + 1, 1)),
                                np.tile(labels, rows // len(x) + 1), batch=rows, rand=False)
    assert not strategy.whole_epoch(build({}, np.float64), big.batch_bounds)
    assert strategy.whole_epoch(build({}, np.float64), [(0, 3 * 17 + 1)])  # m * d small
    synaptic.train(build({}, np.float64), big, 1).result(timeout=60)
    assert len(calls) == 1
    conv = synaptic.neural_net(
        [{"type": "input", "fieldsize": [6, 5]},
         {"type": "convolution", "act_fn": "sigmoid", "feature_map": {"size": [3, 3], "k": 2}},
         {"type": "fully-connected", "n": 4, "act_fn": "softmax"}],
        synaptic.training("backprop", {"learning_rate": {"epsilon": 0.05}}))
    assert not Backprop(conv).fusable(small.batch_bounds)
    assert Backprop(build({}, np.float64)).fusable(small.batch_bounds)


def test_stop_training_stops_a_whole_epoch_call_promptly():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(4000, 200)) * (rng.uniform(size=(4000, 200)) > 0.7)
    labels = rng.integers(0, 10, 4000).astype(str)
    trset = synaptic.training_set(x, labels, online=True, rand=False, dtype=np.float32)
    net = synaptic.mlp([200, 300, 10], ["sigmoid", "softmax"],
                       synaptic.training("backprop", {"learning_rate": {"epsilon": 0.01},
                                                      "stats": {"errorkinds": []}}),
                       dtype=np.float32, seed=1)
    future = synaptic.train(net, trset, 10_000)
    time.sleep(0.3)
    started = time.perf_counter()
    synaptic.stop_training(net)
    assert future.result(timeout=30) is net
    assert time.perf_counter() - started < 2.0
    assert net.state is None
    assert 0 < net._batches < 10_000 * trset.nbatches
    assert all(np.isfinite(w).all() for w in net.weights)
    # the net trains again afterwards, from where it stopped
    before = net._batches
    synaptic.train(net, synaptic.training_set(x[:50], labels[:50], batch=10, rand=False,
                                              dtype=np.float32), 1).result(timeout=60)
    assert net._batches == before + 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_coarse_watch_keeps_the_whole_epoch_path(backend, monkeypatch):
    """A watch added with every_batch=False gets a "weights" event every few batches (the
    batches done in between in new.batches - old.batches) and the net trains exactly as
    without any watch."""
    calls = []
    original = Backprop.epoch
    monkeypatch.setattr(Backprop, "epoch", lambda self, *a, **k: calls.append(1) or
                        original(self, *a, **k))
    x, labels = data(n=200)
    trset = synaptic.training_set(x, labels, batch=3, rand=False, dtype=np.float32)
    with using(backend):
        alone = run(build(OPTIONS["schedule"], np.float32), trset, 2, watched=False)
        assert len(calls) == 2
        events = []
        net = build(OPTIONS["schedule"], np.float32)
        net.add_watch("coarse", lambda k, n, old, new: events.append(
            (new.event, new.batches - old.batches)), every_batch=False)
        synaptic.train(net, trset, 2).result(timeout=60)
    steps = [d for e, d in events if e == "weights"]
    assert len(calls) == 2 + len(steps) and 2 < len(steps) <= 2 * 16
    assert sum(steps) == 2 * trset.nbatches == net._batches
    for a, b in zip(alone.weights, net.weights):
        np.testing.assert_array_equal(a, b)
    assert alone.training.state["alpha"] == net.training.state["alpha"]


def test_progress_counts_the_batches_of_the_whole_epoch_path():
    x, labels = data(n=120)
    trset = synaptic.training_set(x, labels, batch=4, rand=False, dtype=np.float32)
    net = build({}, np.float32)
    with synaptic.watch_progress(net, trset, 3, use_tqdm=False, quiet=True) as shown:
        assert not net.watched_every_batch
        synaptic.train(net, trset, 3).result(timeout=60)
    assert shown.batches == 3 * trset.nbatches
    assert len(shown.lines) == 3


ADAM_OPTIONS = {
    "plain": {},
    "l2_decay": {"regularization": {"kind": "l2", "lambda": 1e-3}, "weight_decay": 1e-2},
    "sklearn_eps": {"adam": {"eps": 1e-4, "eps_before_correction": True, "beta1": 0.8}},
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("option", list(ADAM_OPTIONS))
def test_adam_whole_epoch_path_equals_the_per_batch_path(backend, dtype, option, monkeypatch):
    """Adam through sgd_epoch's Adam mode against Adam.step batch after batch; and the loss
    the batches saw (stats.batch_loss) the same on both paths."""
    x, labels = data()
    trset = synaptic.training_set(x, labels, batch=7, rand=False, dtype=dtype)
    params = {"learning_rate": {"epsilon": 0.01}, "stats": {"errorkinds": [], "batch_loss": True},
              **ADAM_OPTIONS[option]}
    nets = {}
    calls = []
    with using(backend):
        from synaptic import _kernels
        kern = _kernels.get_backend()
        orig = kern.sgd_epoch
        monkeypatch.setattr(kern, "sgd_epoch", lambda *a, **k: calls.append(1) or orig(*a, **k))
        for fused in (True, False):
            monkeypatch.setattr(strategy, "FORCE_WHOLE_EPOCH", fused)
            net = synaptic.mlp([30, 17, 5, 4], ["tanh", "relu", "softmax"],
                               synaptic.training("adam", params), dtype=dtype, seed=7)
            synaptic.train(net, trset, 3).result(timeout=60)
            nets[fused] = net
    assert len(calls) == 3  # the fused run: one call an epoch; the other none
    exact = backend == "numpy"
    tol = {"rtol": 2e-4, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-11}
    for a, b in zip(nets[True].weights, nets[False].weights):
        np.testing.assert_allclose(a, b, **({"rtol": 0, "atol": 0} if exact else tol))
    sf, sp = nets[True].training.state, nets[False].training.state
    assert sf["adam_t"] == sp["adam_t"] == 3 * trset.nbatches
    for key in ("adam_m", "adam_v"):
        for a, b in zip(sf[key], sp[key]):
            np.testing.assert_allclose(a, b, **({"rtol": 0, "atol": 0} if exact else tol))
    loss_f, loss_p = nets[True].stats.batch_loss, nets[False].stats.batch_loss
    assert len(loss_f) == len(loss_p) == 3 and loss_f[1] < loss_f[0]
    np.testing.assert_allclose(loss_f, loss_p, rtol=0 if exact else 1e-5)


def test_amsgrad_keeps_the_per_batch_path(monkeypatch):
    from synaptic.training.adam import Adam
    net = synaptic.mlp([3, 4, 2], ["tanh", "softmax"],
                       synaptic.training("adam", {"adam": {"amsgrad": True}}))
    assert not Adam(net).fusable([(0, 4), (4, 8)])
    net.training = synaptic.training("adam")
    assert Adam(net).fusable([(0, 4), (4, 8)])
