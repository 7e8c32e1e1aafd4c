"""Backprop gradients against central differences for every supported activation/loss pairing,
on 2- and 3-layer nets, and for the activations added later (leaky-relu with its slope, elu,
softplus) in convolution layers too (no pooling, max, average), on both backends (float64)."""
import zlib

import numpy as np
import pytest

import synaptic
from synaptic import _kernels
from synaptic._kernels import reference as R

from helpers import BACKENDS, using
from test_conv_stride import conv

HIDDEN = ["sigmoid", "hyperbolic-tangent", "relu", "linear", "leaky-relu", "elu", "softplus"]
SSE_ERROR = lambda y, t: 0.5 * R.error_sum(y, t, R.ERR_SUM_OF_SQUARES)  # noqa: E731
# (output activation, error_fn, the error E whose gradient backprop computes)
PAIRS = [
    ("softmax", "cross-entropy", lambda y, t: R.error_sum(y, t, R.ERR_CROSS_ENTROPY_MULTIVARIATE)),
    ("sigmoid", "cross-entropy", lambda y, t: R.error_sum(y, t, R.ERR_CROSS_ENTROPY_BINARY)),
    # the original's SSE delta is the gradient of 1/2 sum (o - t)^2 (SYNAPTIC.md §4)
    ("sigmoid", "sum-of-squares", lambda y, t: 0.5 * R.error_sum(y, t, R.ERR_SUM_OF_SQUARES)),
    ("hyperbolic-tangent", "sum-of-squares", lambda y, t: 0.5 * R.error_sum(y, t, R.ERR_SUM_OF_SQUARES)),
    ("linear", "sum-of-squares", lambda y, t: 0.5 * R.error_sum(y, t, R.ERR_SUM_OF_SQUARES)),
    ("relu", "sum-of-squares", SSE_ERROR),
    ("leaky-relu", "sum-of-squares", SSE_ERROR),
    ("elu", "sum-of-squares", SSE_ERROR),
    ("softplus", "sum-of-squares", SSE_ERROR),
]


def _targets(rng, n, c, act):
    if act == "softmax":
        return np.eye(c)[rng.integers(0, c, n)]
    if act == "sigmoid":
        return (rng.random((n, c)) > 0.5).astype(float)
    return rng.uniform(-1, 1, (n, c))


def numeric_gradient(net, x, t, error, eps=1e-6):
    grads = []
    for w in net.weights:
        g = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            keep = w[idx]
            w[idx] = keep + eps
            up = error(net.activities(x)[-1], t)
            w[idx] = keep - eps
            down = error(net.activities(x)[-1], t)
            w[idx] = keep
            g[idx] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("out_act,error_fn,error", PAIRS, ids=[f"{a}+{e}" for a, e, _ in PAIRS])
@pytest.mark.parametrize("hidden", [[], ["sigmoid"], ["hyperbolic-tangent"], ["relu"], ["linear"],
                                    ["sigmoid", "hyperbolic-tangent"], ["relu", "sigmoid"],
                                    ["leaky-relu"], ["elu"], ["softplus"],
                                    ["elu", "leaky-relu"], ["softplus", "elu"]],
                         ids=lambda h: "-".join(h) or "none")
def test_gradients_match_central_differences(backend, out_act, error_fn, error, hidden):
    rng = np.random.default_rng(zlib.crc32(repr((out_act, error_fn, hidden)).encode()))
    sizes = [5] + [4, 3][:len(hidden)] + [3]
    net = synaptic.mlp(sizes, hidden + [out_act],
                       synaptic.training("backprop", {"error_fn": error_fn}), seed=7)
    for w in net.weights:  # weights of order 1 so every unit is in its sensitive range
        w[...] = rng.normal(0, 0.8, w.shape)
    x = rng.uniform(-1, 1, (6, 5))
    t = _targets(rng, 6, 3, out_act)
    _check(net, x, t, error, [backend])


def test_the_gradient_check_can_fail():
    """A wrong pairing (SSE gradient checked against the full SSE) must be caught."""
    rng = np.random.default_rng(0)
    net = synaptic.mlp([4, 3, 2], ["sigmoid", "sigmoid"],
                       synaptic.training("backprop", {"error_fn": "sum-of-squares"}), seed=1)
    x, t = rng.random((5, 4)), (rng.random((5, 2)) > 0.5).astype(float)
    analytic = synaptic.error_derivatives(net, synaptic.dataset(x, t))
    numeric = numeric_gradient(net, x, t, lambda y, tt: R.error_sum(y, tt, R.ERR_SUM_OF_SQUARES))
    assert not np.allclose(analytic[0], numeric[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(2 * analytic[0], numeric[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("pair", [("softmax", "sum-of-squares"), ("hyperbolic-tangent", "cross-entropy"),
                                  ("linear", "cross-entropy"), ("binary-threshold", "cross-entropy")])
def test_unsupported_pairings_raise_a_clear_error(pair):
    act, error_fn = pair
    net = synaptic.mlp([3, 2], act, synaptic.training("backprop", {"error_fn": error_fn}))
    with pytest.raises(ValueError, match="backprop cannot train"):
        synaptic.error_derivatives(net, synaptic.dataset(np.zeros((2, 3)), np.eye(2)))


@pytest.mark.parametrize("hidden", ["binary-threshold", "bipolar-threshold", "binary-prob",
                                    "binary-stochastic"])
def test_forward_only_hidden_layers_raise(hidden):
    net = synaptic.mlp([3, 2, 2], [hidden, "softmax"], synaptic.training("backprop"))
    with pytest.raises(ValueError, match="has no derivative"):
        synaptic.error_derivatives(net, synaptic.dataset(np.zeros((2, 3)), np.eye(2)))


# ---------------------------------------------------------------------------------------
# convolution stride and padding, pooling with its own stride (every option of the spec)

STRIDED_NETS = {
    "stride-2x3": ([2, 9, 8], [conv(3, [3, 2], stride=[2, 3])]),
    "same": ([1, 7, 6], [conv(2, [4, 3], padding="same")]),
    "same-stride-2": ([2, 8, 7], [conv(2, [3, 3], "sigmoid", stride=[2, 2], padding="same")]),
    "padding-1x2": ([2, 6, 6], [conv(2, [2, 3], "sigmoid", padding=[1, 2])]),
    "max-pool-stride-overlapping": ([1, 9, 9], [conv(2, [3, 3], pool=[3, 2], pool_stride=[1, 2])]),
    "avg-pool-stride-overlapping": ([2, 8, 9], [conv(2, [2, 2], "relu", pool=[3, 3], kind="avg",
                                                      pool_stride=[2, 1])]),
    "pool-floor-mode": ([1, 8, 8], [conv(2, [2, 2], pool=[2, 2], pool_stride=[2, 2])]),
    "stacked": ([2, 11, 10], [conv(3, [3, 3], stride=[2, 1], padding=[1, 1], pool=[2, 2],
                                    pool_stride=[1, 1]),
                              conv(2, [2, 2], "sigmoid", stride=[1, 2], padding="same",
                                    pool=[2, 2], kind="avg", pool_stride=[1, 1])]),
}


def _strided_error(y, t):
    return R.error_sum(y, t, R.ERR_CROSS_ENTROPY_BINARY)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(STRIDED_NETS))
def test_strided_padded_conv_gradients_match_central_differences(backend, name):
    """dE/dW of every layer (the strided/padded convolution's weights and, through its
    input gradient, the layer below's) against central differences (float64, eps 1e-6)."""
    fieldsize, mid = STRIDED_NETS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    net = synaptic.neural_net([{"type": "input", "fieldsize": fieldsize}] + mid
                              + [{"type": "fully-connected", "n": 2, "act_fn": "sigmoid"}],
                              synaptic.training("backprop"), seed=5)
    for w in net.weights:   # weights of order 1: every unit in its sensitive range
        w[...] = rng.normal(0, 0.5, w.shape)
    x = rng.random((6, net.n_inputs))
    t = (rng.random((6, 2)) > 0.5).astype(float)
    with using(backend):
        analytic = synaptic.error_derivatives(net, synaptic.dataset(x, t))
    with using("numpy"):
        numeric = numeric_gradient(net, x, t, _strided_error)
    for a, n in zip(analytic, numeric):
        assert np.abs(n).max() > 1e-3          # the check sees a gradient
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-7)


def _check(net, x, t, error, backends=BACKENDS):
    for backend in backends:
        with using(backend):
            analytic = synaptic.error_derivatives(net, synaptic.dataset(x, t))
        with using("numpy"):
            numeric = numeric_gradient(net, x, t, error)
        for a, n in zip(analytic, numeric):
            np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-7)


def _leaky(n, slope):
    return {"type": "fully-connected", "n": n, "act_fn": "leaky-relu", "slope": slope}


@pytest.mark.parametrize("slope", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("error_fn", ["cross-entropy", "sum-of-squares"])
def test_leaky_relu_slope_gradients(slope, error_fn):
    """A non-default slope reaches every kernel: hidden (fused and per layer), output (SSE)."""
    rng = np.random.default_rng(int(slope * 10) + len(error_fn))
    out = ({"type": "fully-connected", "n": 3, "act_fn": "softmax"} if error_fn == "cross-entropy"
           else _leaky(3, slope))
    net = synaptic.neural_net([{"type": "input", "n": 5}, _leaky(4, slope), _leaky(4, slope), out],
                              synaptic.training("backprop", {"error_fn": error_fn}), seed=3)
    for w in net.weights:
        w[...] = rng.normal(0, 0.8, w.shape)
    x = rng.uniform(-1, 1, (6, 5))
    if error_fn == "cross-entropy":
        t, error = _targets(rng, 6, 3, "softmax"), PAIRS[0][2]
    else:
        t, error = rng.uniform(-1, 1, (6, 3)), SSE_ERROR
    _check(net, x, t, error)


def test_the_slope_matters():
    """The same weights with another slope: other gradients (the slope is not ignored)."""
    rng = np.random.default_rng(5)
    grads = []
    for slope in (0.01, 0.5):
        net = synaptic.neural_net([{"type": "input", "n": 3}, _leaky(4, slope), _leaky(2, slope)],
                                  synaptic.training("backprop", {"error_fn": "sum-of-squares"}),
                                  seed=1)
        for w in net.weights:
            w[...] = np.random.default_rng(w.size).normal(0, 1, w.shape)
        x, t = rng.uniform(-1, 1, (8, 3)), rng.uniform(-1, 1, (8, 2))
        grads.append(synaptic.error_derivatives(net, synaptic.dataset(x, t)))
    assert not np.allclose(grads[0][0], grads[1][0])


NEW_ACTS = [("leaky-relu", {"slope": 0.2}), ("elu", {}), ("softplus", {})]


@pytest.mark.parametrize("pool", [None, "max", "avg"])
@pytest.mark.parametrize("act,options", NEW_ACTS, ids=[a for a, _ in NEW_ACTS])
def test_convolution_gradients_match_central_differences(act, options, pool):
    """Two convolution layers with the activation (the first one's f' applied by the second
    one's input gradient, through the pooling), a fully-connected hidden layer with it, a
    sigmoid output with cross-entropy."""
    rng = np.random.default_rng(zlib.crc32(repr((act, pool)).encode()))
    first = {"type": "convolution", "act_fn": act, **options,
             "feature_map": {"size": [3, 3], "k": 2}}
    if pool:
        first["pool"] = {"kind": pool, "size": [2, 2]}
    spec = [{"type": "input", "fieldsize": [2, 8, 8]}, first,
            {"type": "convolution", "act_fn": act, **options, "feature_map": {"size": [2, 2], "k": 2}},
            {"type": "fully-connected", "n": 3, "act_fn": act, **options},
            {"type": "fully-connected", "n": 2, "act_fn": "sigmoid"}]
    net = synaptic.neural_net(spec, synaptic.training("backprop"), seed=2)
    for w in net.weights:
        w[...] = rng.normal(0, 0.5, w.shape)
    x = rng.random((5, net.n_inputs))
    t = (rng.random((5, 2)) > 0.5).astype(float)
    _check(net, x, t, PAIRS[1][2])
