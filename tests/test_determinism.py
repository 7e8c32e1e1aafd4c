"""Bitwise determinism: the same seed gives the same weights with 1 and 2 threads, and with a
watch attached or not, for every training path, in both dtypes (README: "Determinism").

The native kernels split work over outputs (units, rows, samples, fixed chunks) and never
split one sum between threads in a thread-count-dependent way; a dense backprop epoch runs
through the same whole-epoch kernel watched or not (one call per batch under an every-batch
watch).  The element-wise, loss, convolution and pooling kernels run on the threads at every
size here (their thresholds set to zero); the GEMMs keep their default threshold (parts of at
least 1M multiply-adds: smaller ones would reach OpenBLAS's small-matrix kernels, whose order
differs), and the dense layers are wide enough (200 -> 120 -> 60 at 300-600 rows) to split.
"""
import contextlib

import numpy as np
import pytest

import synaptic as syn
from synaptic import _kernels
from helpers import forced_threads


@contextlib.contextmanager
def threads(n):
    """``n`` threads, the parallel thresholds at zero except the GEMMs'."""
    with forced_threads(n):
        native = _kernels.native
        old = native.dense._set_gemm_threshold(4194304) if native and n > 1 else None
        try:
            yield
        finally:
            if old is not None:
                native.dense._set_gemm_threshold(old)

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
BP = {"learning_rate": {"epsilon": 0.02}, "momentum": {"alpha": 0.9}}
CONV = [{"type": "input", "fieldsize": [12, 12]},
        {"type": "convolution", "act_fn": "relu", "feature_map": {"size": [3, 3], "k": 4},
         "pool": {"kind": "max", "size": [2, 2]}},
        {"type": "fully-connected", "n": 3, "act_fn": "softmax"}]
CASES = {
    "backprop minibatch": ("dense", "backprop", BP, 25),
    "backprop nesterov l2": ("dense", "backprop", {"learning_rate": {"epsilon": 0.02},
                                                   "momentum": {"alpha": 0.9, "nesterov": True},
                                                   "regularization": {"kind": "l2",
                                                                      "lambda": 0.01}}, 25),
    "backprop adaptive": ("dense", "backprop", {"learning_rate": {"epsilon": 0.02,
                                                                  "adaptive": True, "ming": 0.01, "maxg": 10.0}}, 25),
    "backprop full batch": ("dense", "backprop", BP, None),
    "backprop big batches": ("dense", "backprop", BP, 300),
    "rprop": ("dense", "rprop", {}, None),
    "rmsprop": ("dense", "rmsprop", {"learning_rate": {"epsilon": 0.002}}, 50),
    "lbfgs": ("dense", "lbfgs", {}, None),
    "conv backprop": ("conv", "backprop", BP, 20),
    "conv rprop": ("conv", "rprop", {}, None),
    "conv lbfgs": ("conv", "lbfgs", {}, None),
}


def _data(kind, dtype):
    rng = np.random.default_rng(7)
    n, d = (600, 200) if kind == "dense" else (120, 144)
    x = rng.standard_normal((n, d))
    if kind == "dense":
        x[:, ::3] *= rng.random((n, (d + 2) // 3)) < 0.3   # some zeros: sparse paths
    return x.astype(dtype), rng.integers(0, 3, n)


def _train(case, dtype, nthreads, watch):
    kind, algo, params, batch = CASES[case]
    x, y = _data(kind, dtype)
    ts = syn.training_set(x, y, batch=batch, seed=3, dtype=dtype)
    if kind == "dense":
        net = syn.mlp([x.shape[1], 120, 60, 3], ["sigmoid", "relu", "softmax"],
                      syn.training(algo, params), dtype=dtype, seed=5)
    else:
        net = syn.neural_net(CONV, syn.training(algo, params), dtype=dtype, seed=5)
    seen = []
    if watch:
        net.add_watch("w", lambda key, n, old, new: seen.append(new.batches))
    with threads(nthreads):
        syn.train(net, ts, 3 if algo != "lbfgs" else 4).result(timeout=300)
    assert not watch or seen, "the watch was never called"
    return [w.copy() for w in net.weights]


def _same(a, b):
    return all(p.tobytes() == q.tobytes() for p, q in zip(a, b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CASES))
def test_one_and_two_threads_and_a_watch_give_the_same_weights(case, dtype):
    one = _train(case, dtype, 1, False)
    two = _train(case, dtype, 2, False)
    watched = _train(case, dtype, 2, True)
    assert all(np.isfinite(w).all() for w in one)
    assert _same(one, two), f"{case}: 1 and 2 threads differ"
    assert _same(two, watched), f"{case}: watched and unwatched differ"


@pytest.mark.parametrize("dtype", DTYPES)
def test_mnist_sized_epoch_with_default_thresholds(dtype):
    """784-100-10 at batch 100 on 2,000 dense rows: the sizes at which the kernels split by
    themselves."""
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((2000, 784)).astype(dtype), rng.integers(0, 10, 2000)
    results = []
    for threads, watch in ((1, False), (2, False), (2, True)):
        net = syn.mlp([784, 100, 10], ["sigmoid", "softmax"], syn.training("backprop", BP),
                      dtype=dtype, seed=2)
        if watch:
            net.add_watch("w", lambda *a: None)
        with syn.num_threads(threads):
            syn.train(net, syn.training_set(x, y, batch=100, seed=1, dtype=dtype), 2).result()
        results.append(net.weights)
    assert _same(results[0], results[1]) and _same(results[1], results[2])
