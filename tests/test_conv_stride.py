"""Convolution stride and padding, pooling with its own stride, in nets: the spec's keys and
conventions (every pair [width, height]; "same" as TensorFlow; [pw, ph] as PyTorch's
``padding=``; pool floor mode), shapes, errors, the defaults' bits, save/load (JSON + npz)."""
import math

import numpy as np
import pytest

import synaptic
from synaptic._kernels import reference as R

from helpers import BACKENDS, using


def inp(*fieldsize):
    return {"type": "input", "fieldsize": list(fieldsize)}


def conv(k, size, act="hyperbolic-tangent", stride=None, padding=None, pool=None, kind="max",
         pool_stride=None):
    fmap = {"size": list(size), "k": k}
    if stride is not None:
        fmap["stride"] = list(stride)
    if padding is not None:
        fmap["padding"] = list(padding) if isinstance(padding, (list, tuple)) else padding
    layer = {"type": "convolution", "act_fn": act, "feature_map": fmap}
    if pool is not None:
        layer["pool"] = {"kind": kind, "size": list(pool)}
        if pool_stride is not None:
            layer["pool"]["stride"] = list(pool_stride)
    return layer


def fc(n, act="sigmoid"):
    return {"type": "fully-connected", "n": n, "act_fn": act}


def layer_of(*mid, field=(2, 11, 8)):
    return synaptic.neural_net([inp(*field), *mid, fc(1)]).layers[1]


# ---------------------------------------------------------------------------------------
# shapes and conventions

def test_stride_and_padding_pairs_are_width_then_height():
    """An 11-wide, 8-high field, a 3-wide, 2-high kernel, stride 2 across and 3 down, 1 zero
    column each side and no zero rows: (11 + 2 - 3) // 2 + 1 = 6 wide, (8 - 2) // 3 + 1 = 3
    high."""
    layer = layer_of(conv(4, [3, 2], stride=[2, 3], padding=[1, 0]))
    assert layer.fieldsize == [4, 6, 3] and layer.n == 72
    assert layer.geom == (2, 8, 11, 2, 3, 3, 2, 0, 0, 1, 1)
    assert (layer.wc, layer.hc) == (6, 3)


@pytest.mark.parametrize("size", range(1, 12))
@pytest.mark.parametrize("f,s", [(1, 1), (3, 1), (3, 2), (4, 2), (5, 3), (2, 4)])
def test_same_padding_is_tensorflows_rule(size, f, s):
    if f > size + f - 1:
        return
    layer = layer_of(conv(1, [f, 1], stride=[s, 1], padding="same"), field=(1, size, 1))
    out = math.ceil(size / s)
    total = max((out - 1) * s + f - size, 0)
    assert layer.fieldsize == [1, out, 1]
    assert layer.padding == (0, 0, total // 2, total - total // 2)    # the smaller half first


def test_same_with_stride_1_keeps_the_field_and_valid_is_the_default():
    layer = layer_of(conv(3, [5, 4], padding="same"))
    assert layer.fieldsize == [3, 11, 8] and layer.padding == (1, 2, 2, 2)
    for padding in ("valid", ":valid", [0, 0]):
        assert layer_of(conv(3, [5, 4], padding=padding)).fieldsize == [3, 7, 5]


def test_pool_stride_floor_mode_and_overlapping_windows():
    """A 9x6 conv map, 3x3 windows every 2 columns and 1 row: (9-3)//2+1 = 4 by (6-3)//1+1 = 4;
    windows that do not divide the map are fine with a stride (the last column is left out
    with 2x2 windows every 2)."""
    layer = layer_of(conv(2, [3, 3], pool=[3, 3], pool_stride=[2, 1]))
    assert layer.fieldsize == [2, 4, 4] and layer.pool == (R.POOL_MAX, 3, 3, 1, 2)
    layer = layer_of(conv(2, [3, 3], pool=[2, 2], pool_stride=[2, 2]))
    assert layer.fieldsize == [2, 4, 3]
    # no stride: the original rule, and the short pool tuple
    layer = layer_of(conv(2, [2, 3], pool=[2, 3]))
    assert layer.fieldsize == [2, 5, 2] and layer.pool == (R.POOL_MAX, 3, 2)


def test_spec_round_trip_keeps_the_keys_as_given():
    spec = [inp(1, 10, 9),
            {"type": "convolution", "act-fn": "relu",
             "feature-map": {"size": [3, 3], "k": 2, "stride": [2, 1], "padding": ":same"},
             "pool": {"kind": "avg", "size": [2, 3], "stride": [1, 2]}},
            conv(2, [2, 2], padding=[1, 1]), fc(3, "softmax")]
    net = synaptic.neural_net(spec)
    assert net.spec()[1] == {"type": "convolution", "act_fn": "relu",
                             "feature_map": {"size": [3, 3], "k": 2, "stride": [2, 1],
                                             "padding": "same"},
                             "pool": {"kind": "avg", "size": [2, 3], "stride": [1, 2]}}
    assert net.spec()[2]["feature_map"] == {"size": [2, 2], "k": 2, "padding": [1, 1]}
    again = synaptic.neural_net(net.spec())
    assert again.spec() == net.spec()
    assert [l.fieldsize for l in again.layers[1:3]] == [l.fieldsize for l in net.layers[1:3]]
    net.spec()[1]["feature_map"]["stride"][0] = 7                   # a copy: the layer keeps its own
    assert net.spec()[1]["feature_map"]["stride"] == [2, 1]
    # the defaults write nothing new
    assert synaptic.neural_net([inp(1, 6, 6), conv(2, [3, 3]), fc(1)]).spec()[1] == \
        {"type": "convolution", "act_fn": "hyperbolic-tangent", "feature_map": {"size": [3, 3], "k": 2}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_and_load_a_strided_padded_net(backend, tmp_path, monkeypatch):
    """persist.py: JSON + npz; the loaded net has the spec and computes the same bits."""
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    net = synaptic.neural_net(
        [inp(2, 13, 11), conv(3, [3, 3], "relu", stride=[2, 2], padding="same", pool=[2, 2],
                              pool_stride=[1, 1]),
         conv(2, [2, 3], padding=[1, 2], pool=[3, 3], kind="avg", pool_stride=[2, 2]),
         fc(2, "softmax")], synaptic.training("backprop"), dtype=np.float32, seed=4)
    net.header["name"] = "strided"
    synaptic.save_neural_net(net)
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert not any(name.endswith((".pkl", ".pickle")) for name in files)
    back = synaptic.load_neural_net("strided")
    assert back.spec() == net.spec()
    assert [l.fieldsize for l in back.layers] == [l.fieldsize for l in net.layers]
    x = np.random.default_rng(0).random((5, 2 * 13 * 11)).astype(np.float32)
    with using(backend):
        np.testing.assert_array_equal(back.activities(x)[-1], net.activities(x)[-1])


# ---------------------------------------------------------------------------------------
# the defaults: the original layer, bit for bit

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_explicit_defaults_give_the_bits_of_the_original_layer(backend, dtype):
    plain = [inp(2, 12, 12), conv(4, [3, 3], "relu", pool=[2, 2]),
             conv(3, [3, 3], pool=[3, 3], kind="avg"), fc(3, "softmax")]
    explicit = [inp(2, 12, 12),
                conv(4, [3, 3], "relu", stride=[1, 1], padding="valid", pool=[2, 2],
                     pool_stride=[2, 2]),
                conv(3, [3, 3], stride=[1, 1], padding=[0, 0], pool=[3, 3], kind="avg",
                     pool_stride=[3, 3]),
                fc(3, "softmax")]
    nets = [synaptic.neural_net(s, synaptic.training("backprop"), dtype=dtype, seed=3)
            for s in (plain, explicit)]
    assert nets[0].layers[1].geom == (2, 12, 12, 3, 3)
    rng = np.random.default_rng(1)
    x, t = rng.random((9, 288)).astype(dtype), np.eye(3)[rng.integers(0, 3, 9)]
    with using(backend):
        acts = [n.activities(x) for n in nets]
        grads = [synaptic.error_derivatives(n, synaptic.dataset(x, t)) for n in nets]
    for a, b in zip(acts[0] + grads[0], acts[1] + grads[1]):
        assert a.tobytes() == b.tobytes()


# ---------------------------------------------------------------------------------------
# errors

def _raises(layers, match, error=ValueError):
    with pytest.raises(error, match=match):
        synaptic.neural_net(layers)


@pytest.mark.parametrize("mid,match,error", [
    (conv(2, [3, 3], stride=[0, 1]), "stride entry must be a positive integer", ValueError),
    (conv(2, [3, 3], stride=[1, -2]), "stride entry must be a positive integer", ValueError),
    (conv(2, [3, 3], stride=[1.5, 1]), "stride entry must be a positive integer", ValueError),
    (conv(2, [3, 3], stride=[2]), "stride must be a pair", ValueError),
    (conv(2, [3, 3], padding="full"), "unknown padding 'full'", ValueError),
    (conv(2, [3, 3], padding=3), "padding must be 'valid', 'same' or a pair", TypeError),
    (conv(2, [3, 3], padding=[1]), "padding must be a pair", ValueError),
    (conv(2, [3, 3], padding=[-1, 0]), "padding entries must be integers >= 0", ValueError),
    (conv(2, [3, 3], padding=[True, 0]), "padding entries must be integers >= 0", ValueError),
    (conv(2, [3, 3], padding=[3, 0]), "larger than the kernel size - 1", ValueError),
    (conv(2, [3, 1], padding=[0, 1]), "larger than the kernel size - 1", ValueError),
    (conv(2, [12, 3], padding=[0, 1]), "does not fit the 9x9 field below", ValueError),
    (conv(2, [11, 3], padding=[0, 1]), "does not fit the 9x9 field below padded to 9x11",
     ValueError),
    (conv(2, [3, 3], pool=[8, 2], pool_stride=[1, 1]), "pool does not fit the 7x7", ValueError),
    (conv(2, [3, 3], pool=[2, 2], pool_stride=[0, 1]), "pool stride entry must be a positive",
     ValueError),
    (conv(2, [3, 3], pool=[2, 2]), "does not divide", ValueError),   # the default: must divide
    (conv(2, [3, 3], stride=[2, 2], pool=[3, 3]), "does not divide", ValueError),
])
def test_bad_options_raise_a_clear_error(mid, match, error):
    _raises([inp(1, 9, 9), mid, fc(1)], match, error)


def test_a_kernel_larger_than_the_field_fits_with_same_padding():
    layer = layer_of(conv(1, [5, 5], padding="same"), field=(1, 3, 3))
    assert layer.fieldsize == [1, 3, 3] and layer.padding == (2, 2, 2, 2)
    _raises([inp(1, 3, 3), conv(1, [5, 5], padding=[0, 1]), fc(1)], "does not fit")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_stochastic_strided_pooled_layer_samples_then_pools(backend, kind):
    """The sampled path pools with the pool kernels (max_pool / avg_pool and their stride)."""
    net = synaptic.neural_net([inp(1, 9, 8), conv(2, [3, 3], "binary-stochastic", stride=[1, 2],
                                                  padding="same", pool=[3, 2], kind=kind,
                                                  pool_stride=[2, 1]),
                               fc(2, "softmax")], seed=3)
    assert net.layers[1].fieldsize == [2, 4, 3]        # conv map 9x4; (9-3)//2+1, (4-2)//1+1
    x = np.random.default_rng(0).random((5, 72))
    with using(backend):
        a = net.activities(x)[0]
    assert a.shape == (5, 24)
    values = {0.0, 1.0} if kind == "max" else {v / 6 for v in range(7)}
    assert all(min(abs(v - u) for u in values) < 1e-12 for v in np.unique(a))
