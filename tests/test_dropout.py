"""Dropout: the kernel against its twin (bit for bit), its masks (rate, counter-based, the
same for any thread count), the layer in nets (dense and conv, every first-order algorithm,
off in estimate), gradient checks with the masks fixed, save/load and exact resume, errors."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic
from synaptic import losses
from synaptic._kernels import native, reference as R
from synaptic.training.gradients import Gradients
from test_update_kernels import BACKENDS, DTYPES, THREADS, same, skip_without_native

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shapes = st.one_of(st.tuples(st.integers(1, 29), st.integers(1, 23)),
                   st.tuples(st.integers(40, 90), st.integers(100, 150)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), p=st.sampled_from([0.0, 0.1, 0.5, 0.9]),
       key=st.integers(0, 2**64 - 1), inplace=st.booleans())
def test_dropout_native_matches_twin(dtype, n_threads, shape, seed, p, key, inplace):
    skip_without_native()
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    want = np.empty_like(x)
    R.dropout(x, want, p, key)
    got_in = x.copy()
    got = got_in if inplace else np.empty_like(x)
    with synaptic.num_threads(n_threads):
        old = native.loss._set_parallel_threshold(0, 0) if n_threads > 1 else None
        try:
            native.dropout(got_in, got, p, key)
        finally:
            if old is not None:
                native.loss._set_parallel_threshold(*old)
    same(got, want, "out")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_the_masks_drop_p_of_the_units_and_scale_the_rest(backend, p):
    x = np.ones((400, 250))
    out = np.empty_like(x)
    backend.dropout(x, out, p, 12345)
    kept = out != 0
    assert abs(1 - kept.mean() - p) < 0.01
    np.testing.assert_array_equal(out[kept], 1 / (1 - p))
    other = np.empty_like(x)
    backend.dropout(x, other, p, 12346)
    assert (kept != (other != 0)).mean() > 0.2  # another key, another mask
    # the column and row means spread as binomials would (no stripes from the counter):
    # standardized, their spread is 1 and none is beyond 5 sigma
    for axis, n in ((0, x.shape[0]), (1, x.shape[1])):
        z = (kept.mean(axis=axis) - (1 - p)) / np.sqrt(p * (1 - p) / n)
        assert 0.8 < z.std() < 1.25 and np.abs(z).max() < 5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("p, key, error", [(1.0, 1, ValueError), (-0.1, 1, ValueError),
                                           (0.5, -1, TypeError), (0.5, 2**64, TypeError),
                                           (0.5, 1.5, TypeError), (True, 1, ValueError)])
def test_dropout_refuses_bad_scalars(backend, p, key, error):
    x = np.ones((2, 3))
    with pytest.raises(error):
        backend.dropout(x, np.empty_like(x), p, key)


def test_native_dropout_refuses_bad_arrays():
    skip_without_native()
    x = np.ones((4, 6))
    with pytest.raises(ValueError):
        native.dropout(x, np.empty((4, 5)), 0.5, 1)
    with pytest.raises(TypeError):
        native.dropout(x, np.empty((4, 6), np.float32), 0.5, 1)
    with pytest.raises(ValueError):
        native.dropout(x[:, :5], x[:, 1:], 0.5, 1)  # partial overlap


# ---------------------------------------------------------------------------------------
# the layer in nets

def dense_layers(p=0.5, seed=None, where="hidden"):
    drop = {"type": "dropout", "p": p, **({} if seed is None else {"seed": seed})}
    layers = [{"type": "input", "n": 8}]
    if where == "input":
        layers.append(drop)
    layers.append({"type": "fully-connected", "n": 12, "act_fn": "tanh"})
    if where == "hidden":
        layers.append(drop)
    layers.append({"type": "fully-connected", "n": 3, "act_fn": "softmax"})
    return layers


def conv_layers(pool="max"):
    return [{"type": "input", "fieldsize": [2, 8, 8]}, {"type": "dropout", "p": 0.2},
            {"type": "convolution", "act_fn": "tanh", "feature_map": {"size": [3, 3], "k": 3},
             "pool": {"kind": pool, "size": [2, 2]}},
            {"type": "dropout", "p": 0.3},
            {"type": "fully-connected", "n": 7, "act_fn": "sigmoid"},
            {"type": "dropout", "p": 0.4},
            {"type": "fully-connected", "n": 3, "act_fn": "softmax"}]


def data(n_in, n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in))
    t = np.eye(3)[rng.integers(0, 3, n)]
    return x, t


def training_error(grads, x, t, err):
    """The training-mode error (the masks of the current batch count) at the net's weights."""
    ws = grads.workspace(x.shape[0])
    grads.forward_dropout(x, ws, R)
    return R.error_sum(ws.acts[-1], t, err)


@pytest.mark.parametrize("layers", [dense_layers(where="hidden"), dense_layers(where="input"),
                                    conv_layers("max"), conv_layers("avg")],
                         ids=["dense-hidden", "dense-input", "conv-max", "conv-avg"])
@pytest.mark.parametrize("error_fn", ["cross-entropy", "sum-of-squares"])
def test_gradients_with_dropout_match_central_differences(layers, error_fn):
    if error_fn == "sum-of-squares":
        layers = layers[:-1] + [{**layers[-1], "act_fn": "sigmoid"}]
    net = synaptic.neural_net(layers, seed=3)
    net._batches = 17  # a batch number: the masks are that batch's
    x, t = data(net.n_inputs, n=5)
    grads = Gradients(net, error_fn)
    err = losses.KINDS[losses.specific_kind(error_fn, net.layers[-1].act)]
    analytic = [g.copy() for g in grads.compute(x, t, R)]
    h = 1e-6
    rng = np.random.default_rng(0)
    for w, g in zip(net.weights, analytic):
        for flat in rng.choice(w.size, size=min(12, w.size), replace=False):
            i = np.unravel_index(flat, w.shape)
            keep = w[i]
            w[i] = keep + h
            up = training_error(grads, x, t, err)
            w[i] = keep - h
            down = training_error(grads, x, t, err)
            w[i] = keep
            scale = 0.5 if error_fn == "sum-of-squares" else 1.0  # the delta of ½Σ(o − t)²
            numeric = scale * (up - down) / (2 * h)
            assert g[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (i, g[i], numeric)


@pytest.mark.parametrize("layers", [dense_layers(), conv_layers()], ids=["dense", "conv"])
def test_the_native_kernels_give_the_twins_gradients(layers):
    skip_without_native()
    net = synaptic.neural_net(layers, seed=3)
    x, t = data(net.n_inputs, n=9)
    ours = [g.copy() for g in Gradients(net, "cross-entropy").compute(x, t, native)]
    twin = Gradients(net, "cross-entropy").compute(x, t, R)
    for a, b in zip(ours, twin):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_dropout_is_off_in_estimate_and_in_the_stats():
    net = synaptic.neural_net(dense_layers(p=0.7), seed=1)
    plain = synaptic.neural_net([l for l in dense_layers() if l["type"] != "dropout"], seed=1)
    for a, b in zip(net.weights, plain.weights):
        np.testing.assert_array_equal(a, b)  # the dropout's seed leaves the weights alone
    x, _ = data(8)
    np.testing.assert_array_equal(net.predict_proba(x), plain.predict_proba(x))


def trset_for(n_in, seed=0):
    x, t = data(n_in, n=120, seed=seed)
    return synaptic.training_set(x, t.argmax(axis=1), batch=12, nvalid=24, seed=1)


@pytest.mark.parametrize("algo, params", [
    ("backprop", {"learning_rate": {"epsilon": 0.1}, "momentum": {"alpha": 0.5}}),
    ("backprop", {"learning_rate": {"epsilon": 0.1}, "momentum": {"alpha": 0.5, "nesterov": True}}),
    ("rprop", {}), ("rmsprop", {}), ("adam", {})])
def test_every_first_order_algorithm_trains_with_it(algo, params):
    net = synaptic.neural_net(dense_layers(p=0.3), synaptic.training(algo, params), seed=2)
    before = synaptic.training_error("cross-entropy", net, trset_for(8))
    synaptic.train(net, trset_for(8), 30).result()
    assert synaptic.training_error("cross-entropy", net, trset_for(8)) < before


def test_it_changes_the_training_and_p_zero_does_not():
    trset = trset_for(8)
    nets = {p: synaptic.neural_net(dense_layers(p=p), synaptic.training("adam"), seed=2)
            for p in (0.0, 0.5)}
    plain = synaptic.neural_net([l for l in dense_layers() if l["type"] != "dropout"],
                                synaptic.training("adam"), seed=2)
    for net in (*nets.values(), plain):
        synaptic.train(net, trset, 3).result()
    # a net with a dropout layer takes the per-batch path (the small-batch loops at batch
    # 12), the plain one the whole-epoch kernel (GEMMs): the same sums, rounded apart
    np.testing.assert_allclose(nets[0.0].weights[0], plain.weights[0], rtol=1e-12, atol=1e-15)
    assert not np.array_equal(nets[0.5].weights[0], plain.weights[0])


def test_lbfgs_and_the_perceptron_refuse_it():
    net = synaptic.neural_net(dense_layers(), synaptic.training("lbfgs"), seed=1)
    with pytest.raises(ValueError, match="L-BFGS cannot train a net with dropout"):
        synaptic.train(net, trset_for(8), 1)
    layers = [{"type": "input", "n": 8}, {"type": "dropout", "p": 0.5},
              {"type": "fully-connected", "n": 3, "act_fn": "binary-threshold"}]
    net = synaptic.neural_net(layers, synaptic.training("perceptron"), seed=1)
    with pytest.raises(ValueError, match="perceptron"):
        synaptic.train(net, trset_for(8), 1)


def test_one_and_two_threads_give_the_same_weights():
    results = {}
    for n in (1, 2):
        net = synaptic.neural_net(conv_layers(), synaptic.training("adam"), seed=5,
                                  dtype=np.float32)
        with synaptic.num_threads(n):
            synaptic.train(net, trset_for(128), 2).result()
        results[n] = net.weights
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layers", [dense_layers(seed=99), conv_layers()], ids=["dense", "conv"])
def test_saved_and_loaded_it_resumes_with_the_same_masks(tmp_path, monkeypatch, layers):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    trset = trset_for(synaptic.neural_net(layers).n_inputs)
    whole = synaptic.neural_net(layers, synaptic.training("adam"), seed=4)
    synaptic.train(whole, trset, 4).result()
    half = synaptic.neural_net(layers, synaptic.training("adam"), seed=4)
    synaptic.train(half, trset, 2).result()
    synaptic.save_neural_net(half, "half")
    loaded = synaptic.load_neural_net("half")
    assert loaded.spec() == half.spec()
    assert [d.seed for d in loaded.dropouts] == [d.seed for d in half.dropouts]
    synaptic.train(loaded, trset, 2).result()
    for a, b in zip(whole.weights, loaded.weights):
        np.testing.assert_array_equal(a, b)


def test_spec_lists_the_dropout_where_it_was_given():
    net = synaptic.neural_net(dense_layers(p=0.25, seed=7))
    assert net.spec()[2] == {"type": "dropout", "p": 0.25, "seed": 7}
    assert [l["type"] for l in net.spec()] == ["input", "fully-connected", "dropout",
                                               "fully-connected"]
    drawn = synaptic.neural_net(dense_layers(), seed=1).spec()[2]["seed"]
    assert drawn == synaptic.neural_net(dense_layers(), seed=1).spec()[2]["seed"]
    assert drawn != synaptic.neural_net(dense_layers(), seed=2).spec()[2]["seed"]


@pytest.mark.parametrize("layers, match", [
    ([{"type": "input", "n": 4}, {"type": "fully-connected", "n": 2, "act_fn": "softmax"},
      {"type": "dropout"}], "cannot be the last layer"),
    ([{"type": "input", "n": 4}, {"type": "dropout"}, {"type": "dropout"},
      {"type": "fully-connected", "n": 2, "act_fn": "softmax"}], "follows another dropout"),
    ([{"type": "input", "n": 4}, {"type": "dropout", "p": 1.0},
      {"type": "fully-connected", "n": 2, "act_fn": "softmax"}], r"p \(the probability"),
    ([{"type": "input", "n": 4}, {"type": "dropout", "p": "half"},
      {"type": "fully-connected", "n": 2, "act_fn": "softmax"}], r"p \(the probability"),
    ([{"type": "input", "n": 4}, {"type": "dropout", "seed": -3},
      {"type": "fully-connected", "n": 2, "act_fn": "softmax"}], "seed must be"),
    ([{"type": "input", "n": 4}, {"type": "dropout", "rate": 0.5},
      {"type": "fully-connected", "n": 2, "act_fn": "softmax"}], "unknown key"),
    ([{"type": "dropout"}, {"type": "fully-connected", "n": 2, "act_fn": "softmax"}],
     "layer 0 must be of type 'input'"),
])
def test_bad_dropout_layers_are_refused(layers, match):
    with pytest.raises(ValueError, match=match):
        synaptic.neural_net(layers)
