"""Convolution layers in nets: instrumentation and shapes (SYNAPTIC.md §2.1, §9.5), the forward
pass (§9.3), gradient checks (§9.10, plus average pooling and relu), construction errors,
buffers reused across batches, persistence, and a real-data run on mnist10k."""
import zlib

import numpy as np
import pytest

import synaptic
from synaptic._kernels import reference as R
from synaptic.training.gradients import Gradients

from helpers import BACKENDS, using


def inp(*fieldsize):
    return {"type": "input", "fieldsize": list(fieldsize)}


def conv(k, size, act="hyperbolic-tangent", pool=None, kind="max"):
    layer = {"type": "convolution", "act_fn": act, "feature_map": {"size": list(size), "k": k}}
    if pool is not None:
        layer["pool"] = {"kind": kind, "size": list(pool)}
    return layer


def fc(n, act="sigmoid"):
    return {"type": "fully-connected", "n": n, "act_fn": act}


# ---------------------------------------------------------------------------------------
# instrumentation and shapes

def test_spec_9_5_units_and_weight_shapes():
    net = synaptic.neural_net([inp(3, 28, 28), conv(6, [9, 9]), conv(16, [5, 5], pool=[2, 2]),
                               fc(10, "softmax")])
    assert [l.n for l in net.layers] == [2352, 2400, 1024, 10]
    assert [w.shape for w in net.weights] == [(6, 244), (16, 151), (10, 1025)]
    assert net.layers[1].fieldsize == [6, 20, 20]
    assert net.layers[2].fieldsize == [16, 8, 8]
    net2 = synaptic.neural_net([inp(3, 28, 28), conv(6, [9, 9]), fc(10, "softmax")],
                               synaptic.training("backprop"))
    x = np.random.default_rng(0).random((2, 2352))
    grads = synaptic.error_derivatives(net2, synaptic.dataset(x, np.eye(10)[:2]))
    assert [g.shape for g in grads] == [(6, 244), (10, 2401)]


def test_fieldsize_lists_width_before_height():
    """[k w h]: a 6-wide, 4-high field with a 3-wide, 2-high kernel gives 4 x 3 maps."""
    net = synaptic.neural_net([inp(2, 6, 4), conv(5, [3, 2]), fc(1)])
    layer = net.layers[1]
    assert layer.fieldsize == [5, 4, 3] and layer.n == 60
    assert layer.geom == (2, 4, 6, 2, 3)
    assert net.weights[0].shape == (5, 1 + 2 * 3 * 2)
    assert synaptic.neural_net([inp(24, 24), conv(1, [3, 3]), fc(1)]).layers[0].n == 576


def test_spellings_and_spec_round_trip():
    spec = [{"type": "input", "fieldsize": [1, 8, 6]},
            {"type": ":convolution", "act-fn": ":relu",
             "feature-map": {"size": [3, 3], "k": 2}, "pool": {"kind": ":avg", "size": [2, 2]}},
            {"type": "fully-connected", "n": 3, "act_fn": "softmax"}]
    net = synaptic.neural_net(spec)
    assert net.layers[1].pool == (R.POOL_AVG, 2, 2)
    assert net.spec()[1] == {"type": "convolution", "act_fn": "relu",
                             "feature_map": {"size": [3, 3], "k": 2},
                             "pool": {"kind": "avg", "size": [2, 2]}}
    again = synaptic.neural_net(net.spec())
    assert [l.spec() for l in again.layers] == net.spec()


def _raises(layers, match):
    with pytest.raises(ValueError, match=match):
        synaptic.neural_net(layers)


def test_construction_errors():
    _raises([inp(1, 9, 9), conv(2, [3, 3], pool=[2, 2]), fc(1)], "does not divide")
    _raises([inp(1, 9, 9), conv(2, [3, 3], pool=[4, 3]), fc(1)], "does not divide")
    _raises([inp(1, 9, 9), fc(4), conv(2, [2, 2]), fc(1)], "fully-connected layer has no fieldsize")
    _raises([{"type": "input", "n": 81}, conv(2, [2, 2]), fc(1)], "must follow the input layer")
    _raises([inp(1, 9, 9), conv(2, [2, 2])], "cannot be the last layer")
    _raises([inp(1, 9, 9), conv(2, [10, 2]), fc(1)], "does not fit")
    _raises([inp(1, 9, 9), {**conv(2, [2, 2]), "n": 5}, fc(1)], "unknown key")
    _raises([inp(1, 9, 9), {"type": "convolution", "act_fn": "tanh"}, fc(1)], "feature_map")
    _raises([inp(1, 9, 9), {"type": "convolution", "feature_map": {"size": [2, 2], "k": 1}}, fc(1)],
            "act_fn")
    _raises([inp(1, 9, 9), conv(2, [2, 2], pool=[2, 2], kind="median"), fc(1)], "unknown pool kind")
    bad_fmap = conv(2, [2, 2])
    bad_fmap["feature_map"]["dilation"] = 2
    _raises([inp(1, 9, 9), bad_fmap, fc(1)], "feature_map must be")
    bad_pool = conv(2, [2, 2], pool=[2, 2])
    bad_pool["pool"]["dilation"] = 1
    _raises([inp(1, 9, 9), bad_pool, fc(1)], "pool must be")
    bad_fmap["feature_map"] = {"size": [2, 2], "k": 2, "stride": 2}     # a stride is a pair
    _raises([inp(1, 9, 9), bad_fmap, fc(1)], "stride must be a pair")
    bad_pool["pool"] = {"kind": "max", "size": [2, 2], "stride": 1}
    _raises([inp(1, 9, 9), bad_pool, fc(1)], "pool stride must be a pair")
    _raises([inp(1, 9, 9), conv(0, [2, 2]), fc(1)], "positive integer")
    _raises([inp(1, 9, 9), conv(2, [2]), fc(1)], "pair")
    _raises([{"type": "input", "n": 80, "fieldsize": [1, 9, 9]}, conv(1, [2, 2]), fc(1)],
            "fieldsize")
    with pytest.raises(ValueError, match="unknown activation"):
        synaptic.neural_net([inp(1, 9, 9), conv(2, [2, 2], act="swish"), fc(1)])


# ---------------------------------------------------------------------------------------
# forward pass

X93 = ["1011 0111 0100 1000", "1000 1101 0111 0111", "0111 0110 0010 1101", "0001 0011 0111 1010"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_spec_9_3_through_a_net(backend):
    x = np.array([[int(c) for c in s.replace(" ", "")] for s in X93], float)
    w = np.array([[0, 1, 0, 1, 2], [0, 2, 2, 1, 1], [0, 0, 1, 0, 1]], float)
    net = synaptic.neural_net([inp(4, 4), conv(3, [2, 2], "linear"), fc(1)])
    pooled = synaptic.neural_net([inp(4, 4), conv(3, [2, 2], "linear", pool=[3, 3]), fc(1)])
    net.weights[0][...] = w
    pooled.weights[0][...] = w
    with using(backend):
        a = net.activities(x)[0]
        p = pooled.activities(x)[0]
    assert a[0].tolist() == [3, 3, 4, 2, 2, 1, 1, 1, 0, 3, 4, 6, 3, 5, 4, 3, 2, 0,
                             1, 2, 2, 2, 1, 1, 1, 0, 0]
    assert a.shape == (4, 27)
    np.testing.assert_array_equal(p, [[4, 6, 2]] * 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stochastic_pooled_layer_samples_before_pooling(backend):
    net = synaptic.neural_net([inp(1, 6, 6), conv(2, [3, 3], "binary-stochastic", pool=[2, 2]),
                               fc(2, "softmax")], seed=3)
    x = np.random.default_rng(0).random((5, 36))
    with using(backend):
        a = net.activities(x)[0]
    assert a.shape == (5, 8) and set(np.unique(a)) <= {0.0, 1.0}


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunked_forward_matches_one_pass(backend, monkeypatch):
    net = synaptic.neural_net(
        [inp(1, 7, 7), conv(3, [2, 2], "relu", pool=[3, 3]), fc(4, "softmax")],
        dtype=np.float32, seed=2)
    x = np.random.default_rng(1).random((23, 49)).astype(np.float32)
    with using(backend):
        whole = net.activities(x)[-1]
        monkeypatch.setattr(synaptic.net, "CHUNK_ROWS", 5)
        chunks = [(a, b, acts[-1].copy()) for a, b, acts in net.chunked_forward(x, chunk=5)]
        labels = synaptic.estimate(net, x)
    assert [c[:2] for c in chunks] == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    np.testing.assert_allclose(np.concatenate([c[2] for c in chunks]), whole, rtol=1e-6)
    assert labels.shape == (23,)


# ---------------------------------------------------------------------------------------
# gradient checks

CHECK_NETS = {   # SYNAPTIC.md §9.10, then average pooling and relu
    "conv-fc": ([3, 8, 8], [conv(2, [5, 5])], [(2, 76), (1, 33)]),
    "conv-conv-fc": ([3, 10, 10], [conv(2, [5, 5]), conv(1, [3, 3])], [(2, 76), (1, 19), (1, 17)]),
    "pooled-fc": ([3, 8, 8], [conv(2, [5, 5], pool=[2, 2])], [(2, 76), (1, 9)]),
    "pooled-pooled-fc": ([3, 14, 14], [conv(4, [5, 5], pool=[2, 2]), conv(2, [2, 2], pool=[2, 2])],
                         [(4, 76), (2, 17), (1, 9)]),
    "avg-avg-fc": ([3, 14, 14], [conv(4, [5, 5], pool=[2, 2], kind="avg"),
                                 conv(2, [2, 2], "relu", pool=[2, 2], kind="avg")],
                   [(4, 76), (2, 17), (1, 9)]),
    "relu-max-sigmoid-avg-fc": ([2, 9, 8], [conv(3, [3, 2], "relu", pool=[1, 1]),
                                            conv(2, [2, 2], "sigmoid", pool=[3, 2], kind="avg")],
                                [(3, 13), (2, 13), (1, 13)]),
    "linear-relu-max-fc": ([1, 9, 9],
                           [conv(2, [4, 4], "linear"), conv(3, [3, 3], "relu", pool=[2, 4])],
                           [(2, 17), (3, 19), (1, 7)]),
}


def error_of(net, x, t):
    return R.error_sum(net.activities(x)[-1], t, R.ERR_CROSS_ENTROPY_BINARY)


def numeric_gradient(net, x, t, eps):
    grads = []
    for w in net.weights:
        g = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            keep = w[idx]
            w[idx] = keep + eps
            up = error_of(net, x, t)
            w[idx] = keep - eps
            down = error_of(net, x, t)
            w[idx] = keep
            g[idx] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.fixture(scope="module", params=list(CHECK_NETS))
def checked_net(request):
    """A net of CHECK_NETS, its data (x ~ U[0,1), n = 10, one sigmoid output, 0/1 targets) and
    its numeric gradients (eps 1e-4 as in the original; eps 1e-6 for the tight check)."""
    fieldsize, mid, shapes = CHECK_NETS[request.param]
    rng = np.random.default_rng(zlib.crc32(request.param.encode()))
    net = synaptic.neural_net([inp(*fieldsize)] + mid + [fc(1)], synaptic.training("backprop"),
                              seed=5)
    assert [w.shape for w in net.weights] == shapes
    for w in net.weights:   # weights of order 1: every unit in its sensitive range
        w[...] = rng.normal(0, 0.5, w.shape)
    x = rng.random((10, net.n_inputs))
    t = (rng.random((10, 1)) > 0.5).astype(float)
    with using(BACKENDS[-1]):
        coarse = numeric_gradient(net, x, t, 1e-4)
        fine = numeric_gradient(net, x, t, 1e-6)
    return net, x, t, coarse, fine


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_match_central_differences(checked_net, backend):
    net, x, t, coarse, fine = checked_net
    with using(backend):
        analytic = synaptic.error_derivatives(net, synaptic.dataset(x, t))
    for a, c, f in zip(analytic, coarse, fine):
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-3)        # the original's check
        np.testing.assert_allclose(a, f, rtol=1e-5, atol=1e-7)     # float64, tighter


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_gradients_match_float64(backend):
    spec = [inp(2, 12, 12), conv(4, [3, 3], "relu", pool=[2, 2]), conv(3, [2, 2], pool=[2, 2]),
            fc(3, "softmax")]
    n64 = synaptic.neural_net(spec, synaptic.training("backprop"), seed=4)
    n32 = synaptic.neural_net(spec, synaptic.training("backprop"), dtype=np.float32, seed=4)
    for a, b in zip(n32.weights, n64.weights):
        b[...] = np.random.default_rng(b.size).normal(0, 0.4, b.shape)
        a[...] = b
    rng = np.random.default_rng(0)
    x, t = rng.random((16, 288)), np.eye(3)[rng.integers(0, 3, 16)]
    with using(backend):
        g64 = synaptic.error_derivatives(n64, synaptic.dataset(x, t))
        g32 = synaptic.error_derivatives(n32, synaptic.dataset(x, t))
    for a, b in zip(g32, g64):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4 * np.abs(b).max())


def test_workspace_buffers_are_reused():
    net = synaptic.neural_net(
        [inp(1, 8, 8), conv(2, [3, 3], pool=[2, 2], kind="avg"), fc(2, "softmax")],
        synaptic.training("backprop"), seed=0)
    grads = Gradients(net, "cross-entropy")
    rng = np.random.default_rng(0)
    x, t = rng.random((6, 64)), np.eye(2)[rng.integers(0, 2, 6)]
    first = grads.compute(x, t)[0].copy()
    ws = grads.workspace(6)
    def ids(ws):
        return [id(a) for a in ws.acts + ws.deltas + [ws.bufs[0].work, ws.bufs[0].pre]]
    arrays = ids(ws)
    for _ in range(3):
        np.testing.assert_array_equal(grads.compute(x, t)[0], first)
    assert ids(grads.workspace(6)) == arrays
    assert ws.bufs[0].dz_pre.shape == (6, 2 * 36)


# ---------------------------------------------------------------------------------------
# training, persistence

@pytest.mark.parametrize("backend", BACKENDS)
def test_a_conv_net_trains_and_survives_save_and_load(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    rng = np.random.default_rng(0)
    x = rng.random((60, 2 * 7 * 7)).astype(np.float32)
    labels = np.where(x[:, :49].mean(axis=1) > x[:, 49:].mean(axis=1), "a", "b")
    trset = synaptic.training_set(x, labels, batch=20, rand=False, dtype=np.float32)
    net = synaptic.neural_net(
        [inp(2, 7, 7), conv(3, [3, 3], "relu", pool=[5, 5]), fc(2, "softmax")],
        synaptic.training("backprop", {"learning_rate": {"epsilon": 0.1}}),
        dtype=np.float32, seed=1)
    with using(backend):
        synaptic.train(net, trset, 3).result(timeout=60)
    assert net.stats.epochs == 3
    net.header["name"] = "convnet"
    synaptic.save_neural_net(net)
    back = synaptic.load_neural_net("convnet")
    assert back.spec() == net.spec()
    for a, b in zip(back.weights, net.weights):
        np.testing.assert_array_equal(a, b)
    with using(backend):
        np.testing.assert_array_equal(back.activities(x)[-1], net.activities(x)[-1])


@pytest.fixture(scope="module")
def mnist_batches(mnist_path):
    base = synaptic.mnist10k(scale=True, dtype=np.float32, path=mnist_path)
    labels = np.asarray(base.labels)[np.argmax(base.y, axis=1)]
    trset = synaptic.training_set(base.x, labels, batch=50, rand=False, fieldsize=[28, 28],
                                  dtype=np.float32)
    return synaptic.TrainingSet(trset.header, trset.batches, base.valid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_original_example_net_learns_mnist10k(mnist_batches, backend):
    """The original's example: [28 28] -> conv 3 maps 9x9 tanh, max pool 2x2 -> fc 10 sigmoid,
    backprop; one epoch over the 8,000 training digits."""
    net = synaptic.neural_net(
        [inp(28, 28), conv(3, [9, 9], pool=[2, 2]), fc(10, "sigmoid")],
        synaptic.training("backprop", {"learning_rate": {"epsilon": 0.5},
                                       "stats": {"errorkinds": ["accuracy"]}}),
        dtype=np.float32, seed=1)
    with using(backend):
        synaptic.train(net, mnist_batches, 1).result(timeout=300)
        acc = synaptic.accuracy(net, mnist_batches.valid)
    assert acc > 0.5, acc
    assert net.stats.val_err["accuracy"][-1] == pytest.approx(acc)
