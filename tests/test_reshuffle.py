"""Per-epoch reshuffling (issue 14, item 6): ``training_set(..., reshuffle=True, seed=s)`` trains
epoch ``e`` on the rows in the order ``default_rng([s, e]).permutation(n)``, cut into the same
batch bounds; every path (per-batch steps, the whole-epoch kernel, the divergence Guard's
replay) sees the same rows; a net saved and loaded resumes the sequence bit for bit; off
(the default) is the fixed order."""
import warnings

import numpy as np
import pytest

import synaptic
from synaptic import DataSet, TrainingDiverged, TrainingSet, persist
from synaptic.training import divergence, strategy

from helpers import BACKENDS, forced_threads, using

TIMEOUT = 60
SSE = {"error_fn": "sum-of-squares", "stats": {"errorkinds": ["sum-of-squares"]}}
ALGOS = {
    "backprop": ("backprop", {"learning_rate": {"epsilon": 0.3}, "momentum": {"alpha": 0.5},
                              "stats": {"errorkinds": ["cross-entropy", "accuracy"]}}),
    "rprop": ("rprop", {"stats": {"errorkinds": ["cross-entropy"]}}),
    "rmsprop": ("rmsprop", {"learning_rate": {"epsilon": 0.01}}),
}


@pytest.fixture(autouse=True)
def data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path / "data"))


def toy(n=70, d=6, data_seed=0, dtype=np.float64, **kw):
    """Dense samples (no zeros: every path picks the same, dense, kernel), 3 classes."""
    rng = np.random.default_rng(data_seed)
    x = rng.uniform(0.1, 1.0, size=(n, d))
    labels = (x[:, 0] > 0.5).astype(int) + (x[:, 1] > 0.5).astype(int)
    kw = {"batch": 8, "nvalid": 10, "reshuffle": True, "seed": 5, **kw}
    return synaptic.training_set(x, labels, dtype=dtype, **kw)


def build(algo="backprop", dtype=np.float64, watched=False, units=(6, 7, 3)):
    name, params = ALGOS[algo]
    net = synaptic.mlp(list(units), ["sigmoid", "softmax"], synaptic.training(name, params),
                       dtype=dtype, seed=3)
    if watched:
        net.add_watch("every batch", lambda *a: None)
    return net


def train(net, trset, epochs):
    return synaptic.train(net, trset, epochs).result(timeout=TIMEOUT)


def fixed(trset, epoch):
    """The training part of ``trset`` in epoch ``epoch``'s order, as a set that does not
    reshuffle (its validation set kept)."""
    part = trset.for_epoch(epoch)
    header = {k: v for k, v in trset.header.items() if k not in ("reshuffle", "seed")}
    return TrainingSet(header, [DataSet(b.x.copy(), b.y.copy()) for b in part.batches],
                       trset.valid)


def assert_same_weights(a, b):
    for wa, wb in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)


# the set ----------------------------------------------------------------------------------

def test_each_epoch_order_is_the_seeded_permutation_of_the_training_rows():
    trset = toy()
    assert trset.reshuffle and trset.header["reshuffle"] is True and trset.header["seed"] == 5
    n = len(trset.x)
    orders = [trset.epoch_order(e) for e in range(4)]
    for e, order in enumerate(orders):
        np.testing.assert_array_equal(order, np.random.default_rng([5, e]).permutation(n))
        assert sorted(order.tolist()) == list(range(n))
    assert len({tuple(o) for o in orders}) == 4  # a new order every epoch
    part = trset.for_epoch(2)
    np.testing.assert_array_equal(part.x, trset.x[orders[2]])
    np.testing.assert_array_equal(part.y, trset.y[orders[2]])
    assert part.batch_bounds == trset.batch_bounds and part.valid is None
    for (a, b), batch in zip(part.batch_bounds, part.batches):  # consecutive permuted rows
        np.testing.assert_array_equal(batch.x, trset.x[orders[2][a:b]])
        assert np.shares_memory(batch.x, part.x)
    again = trset.for_epoch(3, part)  # the buffer reused
    assert again is part and np.shares_memory(again.batches[0].x, part.x)
    np.testing.assert_array_equal(part.x, trset.x[orders[3]])
    np.testing.assert_array_equal(part.batches[1].y, trset.y[orders[3][8:16]])
    np.testing.assert_array_equal(trset.x, toy().x)  # the set itself is untouched


def test_off_by_default_the_set_is_its_own_epoch_data():
    trset = toy(reshuffle=False)
    assert not trset.reshuffle and "reshuffle" not in trset.header and "seed" not in trset.header
    assert trset.epoch_order(3) is None and trset.for_epoch(3) is trset
    np.testing.assert_array_equal(trset.x, toy(reshuffle=False).x)
    # the initial shuffle with the same seed is the same with reshuffle on or off
    np.testing.assert_array_equal(trset.x, toy().x)


def test_without_a_seed_one_is_drawn_once_and_stored():
    a = toy(seed=None)
    seed = a.header["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2 ** 63
    b = toy(seed=seed)  # the stored seed rebuilds the set and its epoch orders
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.epoch_order(4), b.epoch_order(4))
    assert toy(seed=None).header["seed"] != seed  # (a 2^-63 chance of a false failure)


@pytest.mark.parametrize("value, error, match", [
    ("yes", TypeError, "reshuffle must be True or False, got str"),
    (1, TypeError, "reshuffle must be True or False, got int"),
    (None, TypeError, "reshuffle must be True or False"),
])
def test_reshuffle_must_be_a_bool(value, error, match):
    with pytest.raises(error, match=match):
        toy(reshuffle=value)


@pytest.mark.parametrize("seed, error, match", [
    (1.5, TypeError, "reshuffle needs an int seed .* got float"),
    ("3", TypeError, "got str"),
    (True, TypeError, "got bool"),
    (np.random.default_rng(1), TypeError, "got Generator"),
    (-1, ValueError, "seed must be >= 0, got -1"),
])
def test_a_reshuffled_set_needs_an_int_seed(seed, error, match):
    with pytest.raises(error, match=match):
        toy(seed=seed)


def test_a_seed_that_is_not_an_int_is_refused_without_reshuffle_too():
    with pytest.raises(TypeError, match="got float"):
        toy(reshuffle=False, seed=2.0)
    toy(reshuffle=False, seed=np.random.default_rng(1))  # as before: a Generator works
    toy(reshuffle=False, seed=np.int64(4))


def test_a_header_that_reshuffles_without_a_seed_is_refused():
    trset = toy()
    del trset.header["seed"]
    with pytest.raises(TypeError, match="reshuffle needs an int seed"):
        trset.validate()
    with pytest.raises(TypeError, match="reshuffle needs an int seed"):
        synaptic.train(build(), trset, 1)
    trset.header.update(seed=1, reshuffle="true")
    with pytest.raises(TypeError, match="reshuffle must be True or False"):
        trset.validate()


def test_rebatch_and_astype_keep_the_reshuffle():
    trset = toy()
    for other in (trset.rebatch(5), trset.astype(np.float32)):
        assert other.reshuffle and other.header["seed"] == 5
        np.testing.assert_array_equal(other.epoch_order(1), trset.epoch_order(1))


def test_a_saved_set_keeps_reshuffle_and_seed():
    trset = toy(name="shuffled")
    synaptic.save_training_set(trset)
    loaded = synaptic.load_training_set("shuffled")
    assert loaded.reshuffle and loaded.header["seed"] == 5
    assert synaptic.load_training_set_header("shuffled")["seed"] == 5
    np.testing.assert_array_equal(loaded.for_epoch(7).x, trset.for_epoch(7).x)
    plain = toy(name="plain", reshuffle=False)
    synaptic.save_training_set(plain)
    assert not synaptic.load_training_set("plain").reshuffle


def test_a_saved_set_with_a_bad_reshuffle_entry_is_refused():
    trset = toy(name="bad")
    trset.header["reshuffle"] = "yes"  # as a hand edit would
    synaptic.save_training_set(trset)
    with pytest.raises(persist.FileFormatError, match="reshuffle must be True or False"):
        synaptic.load_training_set("bad")


# training ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("algo, watched", [("backprop", False), ("backprop", True),
                                           ("rprop", False), ("rmsprop", False)])
def test_epoch_e_trains_on_the_rows_in_epoch_e_order(backend, algo, watched):
    """A reshuffled run equals epochs trained one at a time on the permuted sets, fixed."""
    with using(backend):
        trset = toy()
        net = train(build(algo, watched=watched), trset, 4)
        ref = build(algo, watched=watched)
        for e in range(4):
            train(ref, fixed(trset, e), 1)
        assert_same_weights(net, ref)
        assert net.stats.val_err == ref.stats.val_err
        # the stats evaluate the stored order (ref: the permuted one): the same to rounding
        for kind, values in net.stats.tr_err.items():
            np.testing.assert_allclose(values, ref.stats.tr_err[kind], rtol=1e-12)
        plain = train(build(algo, watched=watched), toy(reshuffle=False), 4)
        assert not all(np.array_equal(a, b) for a, b in zip(plain.weights, net.weights))


@pytest.mark.parametrize("backend", BACKENDS)
def test_off_is_the_fixed_order(backend):
    """reshuffle=False trains every epoch on the stored order: the same as one epoch at a
    time on the same set, and as a set built by hand from its batches."""
    with using(backend):
        trset = toy(reshuffle=False)
        net = train(build(), trset, 3)
        ref = build()
        by_hand = TrainingSet(dict(trset.header), [DataSet(b.x.copy(), b.y.copy())
                                                   for b in trset.batches], trset.valid)
        for _ in range(3):
            train(ref, by_hand, 1)
        assert_same_weights(net, ref)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("algo, watched", [("backprop", False), ("backprop", True),
                                           ("rprop", False), ("rmsprop", False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_a_net_saved_and_loaded_resumes_the_shuffle_sequence(backend, algo, watched, dtype):
    with using(backend):
        trset = toy(dtype=dtype, name="resume")
        straight = train(build(algo, dtype, watched), trset, 7)
        net = train(build(algo, dtype, watched), trset, 3)
        synaptic.save_neural_net(net, "half")
        synaptic.save_training_set(trset)
        loaded = synaptic.load_neural_net("half")
        if watched:
            loaded.add_watch("every batch", lambda *a: None)
        train(loaded, synaptic.load_training_set("resume", dtype=dtype), 4)
        assert loaded.stats.epochs == 7
        assert_same_weights(loaded, straight)
        assert loaded.stats.tr_err == straight.stats.tr_err


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_whole_epoch_kernel_and_the_per_batch_path_agree(backend, monkeypatch):
    with using(backend):
        trset = toy(n=130)
        fused = train(build(), trset, 5)
        monkeypatch.setattr(strategy, "FORCE_WHOLE_EPOCH", False)  # per-batch steps
        stepped = train(build(), trset, 5)
    for a, b in zip(fused.weights, stepped.weights):
        if backend == "numpy":
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif("native" not in BACKENDS, reason="needs the compiled kernels")
@pytest.mark.parametrize("algo, watched", [("backprop", False), ("backprop", True),
                                           ("rprop", False), ("rmsprop", False)])
def test_the_kernels_and_their_numpy_twins_agree(algo, watched):
    trset = toy(n=130)
    nets = []
    for backend in ("native", "numpy"):
        with using(backend):
            nets.append(train(build(algo, watched=watched), trset, 5))
    for a, b in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif("native" not in BACKENDS, reason="needs the compiled kernels")
@pytest.mark.parametrize("algo, watched", [("backprop", False), ("backprop", True),
                                           ("rprop", False), ("rmsprop", False)])
def test_one_and_two_threads_give_the_same_bits(algo, watched):
    trset = toy(n=300, d=20, batch=32, nvalid=20)
    nets = []
    for threads in (1, 2):
        with using("native"), forced_threads(threads):
            nets.append(train(build(algo, watched=watched, units=(20, 9, 3)), trset, 4))
    assert_same_weights(*nets)


def test_a_sparse_set_takes_the_same_kernel_path_whatever_epoch_it_resumes_at(monkeypatch):
    """The whole-epoch kernel's sparse-path choice is sampled on the stored rows, not on an
    epoch's order: a resumed run passes sgd_epoch the zeros fraction of the first."""
    from synaptic import _kernels
    seen = []
    kern = _kernels.get_backend()
    real = kern.sgd_epoch

    def spy(*args, **kwargs):
        seen.append(args[-1])           # zeros (the slopes come by keyword)
        return real(*args, **kwargs)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2000, 10)) * (rng.uniform(size=(2000, 10)) > 0.6)  # sampled rows
    trset = synaptic.training_set(x, (x[:, 0] > 0.2).astype(int), batch=100, reshuffle=True,
                                  seed=1)
    monkeypatch.setattr(kern, "sgd_epoch", spy)
    net = train(synaptic.mlp([10, 2], "softmax", synaptic.training("backprop"), seed=1), trset, 2)
    train(net, trset, 3)
    assert len(seen) == 5 and len(set(seen)) == 1
    assert seen[0] == kern.x_zeros(trset.x)


def test_lbfgs_is_unaffected():
    trset = toy()
    nets = []
    for reshuffle in (True, False):
        net = synaptic.mlp([6, 3], "softmax", synaptic.training("lbfgs"), seed=3)
        nets.append(train(net, toy(reshuffle=reshuffle), 3))
    assert_same_weights(*nets)
    assert trset.reshuffle


# divergence -------------------------------------------------------------------------------

def diverging_set(**kw):
    x = np.random.default_rng(0).normal(size=(200, 5))
    return synaptic.training_set(x, (x[:, 0] > 0).astype(int), batch=20, rand=False,
                                 reshuffle=True, seed=11, **kw)


def diverging_net(policy="raise", watched=False):
    params = {**SSE, "learning_rate": {"epsilon": 2.0}, "momentum": {"alpha": 0.5},
              "on_nonfinite": policy}
    net = synaptic.mlp([5, 8, 2], ["relu", "linear"], synaptic.training("backprop", params),
                       seed=1)
    if watched:
        net.add_watch("every batch", lambda *a: None)
    return net


@pytest.mark.parametrize("watched", [False, True], ids=["fused", "watched"])
def test_a_divergence_names_the_batch_of_the_epoch_order(monkeypatch, watched):
    """The Guard replays the epoch in its own order (and the epochs since its copy in
    theirs): copied every epoch or once, the same error, and the batch it names is the first
    of that epoch's order after which the net is not finite."""
    trset = diverging_set()
    results = []
    for budget in (1e9, 1e-9):  # a copy every epoch / kept for many epochs
        monkeypatch.setattr(divergence, "COPY_BUDGET", budget)
        net = diverging_net(watched=watched)
        with pytest.raises(TrainingDiverged) as info:
            train(net, trset, 30)
        results.append((info.value, net))
    (err, net), (again, other) = results
    assert str(err) == str(again) and err.epoch >= 1
    assert_same_weights(net, other)
    assert net.stats.epochs == err.epoch
    for k, expected in ((err.batch, True), (err.batch + 1, False)):
        ref = diverging_net("ignore")
        for e in range(err.epoch):
            train(ref, fixed(trset, e), 1)
        if k:
            part = fixed(trset, err.epoch)
            train(ref, TrainingSet(part.header, part.batches[:k]), 1)
        loss = synaptic.training_error("sum-of-squares", ref, trset)
        assert (all(np.isfinite(w).all() for w in ref.weights) and np.isfinite(loss)) == expected
        if expected:
            assert_same_weights(ref, net)  # the net keeps the weights from before the batch


def test_stop_policy_keeps_the_order_too():
    net = diverging_net("stop")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(net, diverging_set(), 30)
    assert any("on_nonfinite 'stop'" in str(w.message) for w in caught)
    assert net.stats.diverged is not None
