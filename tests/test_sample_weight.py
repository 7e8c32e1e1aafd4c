"""Per-row weights (scikit-learn's sample_weight) in the core: DataSet.w / TrainingSet.w,
their checks, carrying them (astype, batches, for_epoch, rebatch, the validation split,
save/load), and training on them: a row of integer weight k trains as k copies of the row in
the same batch (full batch: backprop, rprop, adam, rmsprop, lbfgs), a row of weight 0 as no
row; the stats are weighted means."""
import numpy as np
import pytest

import synaptic
from synaptic import DataSet, TrainingDiverged, TrainingSet, distributed
from synaptic.training import backprop, strategy
from synaptic.training.gradients import Gradients

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 4))
LABELS = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
W = RNG.integers(0, 4, size=30)
W[:2] = (0, 3)  # a zero and a repeat for sure

ALGOS = {
    "backprop": {"learning_rate": {"epsilon": 0.1}, "momentum": {"alpha": 0.5},
                 "regularization": {"kind": "l2", "lambda": 0.01}},
    "nesterov": {"learning_rate": {"epsilon": 0.1}, "momentum": {"alpha": 0.5, "nesterov": True}},
    "rprop": {"regularization": {"kind": "l2", "lambda": 0.01}},
    "irprop+": {"rprop": {"variant": "irprop+"}},
    "adam": {"learning_rate": {"epsilon": 0.01}},
    "rmsprop": {"learning_rate": {"epsilon": 0.01}},
    "lbfgs": {"regularization": {"kind": "l2", "lambda": 0.01}},
}


def repeated(**kw):
    return synaptic.training_set(X.repeat(W, axis=0), LABELS.repeat(W), rand=False, **kw)


def weighted(**kw):
    return synaptic.training_set(X, LABELS, rand=False, sample_weight=W, **kw)


def trained(trset, case, epochs=4, dtype=np.float64):
    name = {"nesterov": "backprop", "irprop+": "rprop"}.get(case, case)
    net = synaptic.mlp([4, 5, 2], ["tanh", "softmax"], synaptic.training(name, ALGOS[case]),
                       seed=1, dtype=dtype)
    synaptic.train(net, trset, epochs).result(timeout=60)
    return net


def max_diff(a, b):
    return max(float(np.abs(p - q).max()) for p, q in zip(a.weights, b.weights))


# -- the data -------------------------------------------------------------------------------

def test_weights_follow_the_rows():
    trset = synaptic.training_set(X, LABELS, sample_weight=W, batch=7, nvalid=6, seed=3)
    perm = np.random.default_rng(3).permutation(30)
    np.testing.assert_array_equal(trset.w, W[perm][:24])
    np.testing.assert_array_equal(trset.valid.w, W[perm][24:])
    for batch, (a, b) in zip(trset.batches, trset.batch_bounds):
        assert batch.w.base is trset.w or batch.w.base is trset.w.base  # views
        np.testing.assert_array_equal(batch.w, trset.w[a:b])
    f32 = trset.astype(np.float32)
    assert f32.w.dtype == np.float32 and f32.valid.w.dtype == np.float32
    np.testing.assert_array_equal(f32.w, trset.w)
    assert trset.astype(np.float32) is f32  # cached
    np.testing.assert_array_equal(trset.rebatch(5).w, trset.w)
    # a DataSet built from integer weights holds float64 ones
    assert DataSet(X, np.eye(2)[LABELS], W).w.dtype == np.float64


def test_for_epoch_permutes_the_weights_with_the_rows():
    w = np.arange(1.0, 31.0)  # row i weighs i + 1: the weight names its row
    trset = synaptic.training_set(np.arange(30.0).reshape(30, 1), LABELS, rand=False,
                                  sample_weight=w, batch=8, reshuffle=True, seed=4)
    for epoch in range(3):
        data = trset.for_epoch(epoch)
        np.testing.assert_array_equal(data.w, data.x[:, 0] + 1)
        assert data.batches[1].w.base is data.w or data.batches[1].w.base is data.w.base


@pytest.mark.parametrize("bad, error, match", [
    ([1.0, -1.0, 1.0], ValueError, "must be >= 0, row 1"),
    ([1.0, np.nan, 1.0], ValueError, "NaN or infinity at row 1"),
    ([1.0, np.inf, 1.0], ValueError, "NaN or infinity"),
    ([0.0, 0.0, 0.0], ValueError, "all zero"),
    ([1.0, 1.0], ValueError, "one weight per sample \\(3\\)"),
    ([[1.0], [1.0], [1.0]], ValueError, "1-D"),
    (["a", "b", "c"], TypeError, "real numbers"),
    ([1j, 1, 1], TypeError, "real numbers"),
])
def test_bad_weights_raise(bad, error, match):
    with pytest.raises(error, match=match):
        synaptic.training_set([[0], [1], [2]], [0, 1, 0], sample_weight=bad)


def test_dataset_weights_checked():
    x, y = np.zeros((3, 2)), np.eye(2)[[0, 1, 0]]
    with pytest.raises(ValueError, match="w \\(the per-row weights\\) must be 1-D with 3"):
        DataSet(x, y, np.ones(2))
    with pytest.raises(ValueError, match="1-D with 3"):
        DataSet(x, y, np.ones((3, 1)))
    with pytest.raises(TypeError, match="real numbers"):
        DataSet(x, y, np.ones(3, dtype=complex))
    with pytest.raises(TypeError, match="NumPy array"):
        DataSet(x, y, [1, 1, 1])
    with pytest.raises(ValueError, match="must be >= 0"):
        DataSet(x, y, np.array([1.0, -2.0, 1.0])).validate()
    with pytest.raises(ValueError, match="valid.w .*all zero"):
        TrainingSet({"labels": [0, 1]}, [DataSet(x, y)], DataSet(x, y, np.zeros(3))).validate()
    with pytest.raises(ValueError, match="all weighted .* or all unweighted"):
        TrainingSet({"labels": [0, 1]}, [DataSet(x, y, np.ones(3)), DataSet(x, y)])
    # a batch of weight 0 is fine, the training part all zero is not
    TrainingSet({"labels": [0, 1]}, [DataSet(x, y, np.zeros(3)), DataSet(x, y, np.ones(3))]
                ).validate()
    with pytest.raises(ValueError, match="all zero"):
        TrainingSet({"labels": [0, 1]}, [DataSet(x, y, np.zeros(3))]).validate()
    # training checks the weights too
    net = synaptic.mlp([2, 2], "softmax", synaptic.training("backprop"), seed=1)
    with pytest.raises(ValueError, match="must be >= 0"):
        synaptic.train(net, TrainingSet({"labels": [0, 1]},
                                        [DataSet(x, y, np.array([1.0, -1.0, 1.0]))]), 1)


def test_save_and_load_keep_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    trset = synaptic.training_set(X, LABELS, sample_weight=W * 0.5, batch=7, nvalid=5, seed=2)
    synaptic.save_training_set(trset, "weighted")
    loaded = synaptic.load_training_set("weighted")
    np.testing.assert_array_equal(loaded.w, trset.w)
    np.testing.assert_array_equal(loaded.valid.w, trset.valid.w)
    assert loaded.batch_bounds == trset.batch_bounds
    assert loaded.batches[2].w.base is loaded.w or loaded.batches[2].w.base is loaded.w.base
    assert synaptic.load_training_set("weighted", dtype=np.float32).w.dtype == np.float32
    plain = synaptic.training_set(X, LABELS, batch=7)
    synaptic.save_training_set(plain, "plain")
    assert synaptic.load_training_set("plain").w is None  # a file without weights: unweighted


# -- training -------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(ALGOS))
def test_weighted_full_batch_equals_repeated_rows(case):
    """One batch: Σ w_i g_i / Σ w_i is the repeated rows' mean gradient; L-BFGS's weighted
    sum their sum; the stats the same means."""
    ours, theirs = trained(weighted(), case), trained(repeated(), case)
    assert max_diff(ours, theirs) < 1e-12
    a, b = ours.training.stats.tr_err, theirs.training.stats.tr_err
    assert list(a) == list(b)
    for kind in a:
        np.testing.assert_allclose(a[kind], b[kind], rtol=1e-12, atol=0)
    # the weights matter: the unweighted set ends elsewhere
    plain = trained(synaptic.training_set(X, LABELS, rand=False), case)
    assert max_diff(ours, plain) > 1e-4


def test_perceptron_weighted_equals_repeated_rows():
    def run(trset):
        net = synaptic.mlp([4, 2], "sigmoid", synaptic.training("perceptron"), seed=1)
        synaptic.train(net, trset, 3).result(timeout=60)
        return net
    assert max_diff(run(weighted()), run(repeated())) < 1e-12


def test_zero_weight_rows_are_ignored():
    """Rows of weight 0 (here: wild ones) change nothing, mini-batches included, as long as
    the batches of the other rows are the same."""
    keep = np.ones(30, dtype=bool)
    keep[[3, 4, 5]] = False
    x = X.copy()
    x[~keep] *= 1e3
    w = np.where(keep, 1.0, 0.0)
    # the clean set's batches of 10 rows; the padded set's first batch holds the 3 zeros too
    order = np.r_[np.flatnonzero(keep)[:10], np.flatnonzero(~keep), np.flatnonzero(keep)[10:]]
    xs, ys, ws = x[order], np.eye(2)[LABELS[order]], w[order]
    padded = TrainingSet({"labels": [0, 1]}, [DataSet(xs[a:b], ys[a:b], ws[a:b])
                                              for a, b in ((0, 13), (13, 23), (23, 30))])
    clean = synaptic.training_set(X[keep], LABELS[keep], rand=False, batch=10)
    for case in ("backprop", "adam", "rmsprop", "rprop"):
        a, b = trained(padded, case), trained(clean, case)
        assert max_diff(a, b) < 1e-12, case
        np.testing.assert_allclose(a.training.stats.tr_err["cross-entropy-multivariate"],
                                   b.training.stats.tr_err["cross-entropy-multivariate"],
                                   rtol=1e-12)


def test_unit_weights_equal_no_weights_on_minibatches_with_reshuffle(monkeypatch):
    """Weights of 1 are the unweighted arithmetic (the per-batch path for both), reshuffled
    mini-batches included."""
    monkeypatch.setattr(strategy, "FORCE_WHOLE_EPOCH", False)
    kw = dict(batch=7, reshuffle=True, seed=9, rand=False)
    ones = synaptic.training_set(X, LABELS, sample_weight=np.ones(30), **kw)
    plain = synaptic.training_set(X, LABELS, **kw)
    for case in ("backprop", "adam"):
        assert max_diff(trained(ones, case), trained(plain, case)) == 0.0


def test_whole_epoch_kernel_not_taken_for_a_weighted_set(monkeypatch):
    """sgd_epoch takes no weights: fusable says no, the per-batch path trains the set."""
    monkeypatch.setattr(strategy, "FORCE_WHOLE_EPOCH", True)
    net = synaptic.mlp([4, 5, 2], ["tanh", "softmax"], synaptic.training("backprop"), seed=1)
    algo = backprop.Backprop(net)
    assert algo.fusable([(0, 10)]) and not algo.fusable([(0, 10)], weighted=True)
    calls = []
    monkeypatch.setattr(backprop.Backprop, "epoch", lambda self, *a, **k: calls.append(1))
    trained(weighted(batch=10), "backprop", epochs=2)
    assert not calls


def test_weighted_objective_takes_the_layers_path():
    net = synaptic.mlp([4, 5, 2], ["tanh", "softmax"], seed=1)
    g = Gradients(net, "cross-entropy")
    assert strategy.objective(g, None) == "top"
    assert strategy.objective(g, None, weighted=True) == "layers"


def test_error_derivatives_and_cost_of_a_weighted_dataset():
    net = synaptic.mlp([4, 5, 2], ["tanh", "softmax"],
                       synaptic.training("lbfgs", ALGOS["lbfgs"]), seed=1)
    y = np.eye(2)[LABELS]
    wset = DataSet(X, y, W.astype(float))
    rset = DataSet(X.repeat(W, axis=0), y.repeat(W, axis=0))
    for a, b in zip(synaptic.error_derivatives(net, wset), synaptic.error_derivatives(net, rset)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    from synaptic.training.lbfgs import cost_and_derivatives
    (ca, ga), (cb, gb) = cost_and_derivatives(net, wset), cost_and_derivatives(net, rset)
    assert ca == pytest.approx(cb, rel=1e-12)
    for a, b in zip(ga, gb):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_weighted_validation_errors():
    """The validation set's stats are weighted means too."""
    vx = RNG.normal(size=(8, 4))
    vl = (vx[:, 0] > 0).astype(int)
    vw = np.array([0.0, 1, 2, 3, 0, 1, 1, 2])

    def with_valid(valid):
        trset = synaptic.training_set(X, LABELS, rand=False)
        return TrainingSet(trset.header, trset.batches, valid)
    a = trained(with_valid(DataSet(vx, np.eye(2)[vl], vw)), "adam", epochs=2)
    rep = vw.astype(int)
    b = trained(with_valid(DataSet(vx.repeat(rep, axis=0), np.eye(2)[vl.repeat(rep)])), "adam",
                epochs=2)
    for kind in a.training.stats.val_err:
        np.testing.assert_allclose(a.training.stats.val_err[kind], b.training.stats.val_err[kind],
                                   rtol=1e-12)


def test_divergence_replay_with_weights(monkeypatch):
    """The divergence guard replays a weighted epoch batch by batch with the weights: the
    same diverged batch as the unweighted set of unit weights."""
    monkeypatch.setattr(strategy, "FORCE_WHOLE_EPOCH", False)
    x = np.random.default_rng(0).normal(size=(60, 4))
    x[30:40] *= 1e150
    y = (x[:, 0] > 0).astype(int)

    def run(**kw):
        net = synaptic.mlp([4, 5, 2], ["relu", "linear"], synaptic.training(
            "backprop", {"error_fn": "sum-of-squares", "learning_rate": {"epsilon": 0.1}}),
            seed=1)
        with pytest.raises(TrainingDiverged) as info:
            synaptic.train(net, synaptic.training_set(x, y, rand=False, batch=10, **kw),
                           3).result(timeout=60)
        assert all(np.isfinite(w).all() for w in net.weights)
        return info.value, net
    (a, na), (b, nb) = run(sample_weight=np.ones(60)), run()
    assert (a.epoch, a.batch, a.what) == (b.epoch, b.batch, b.what) and a.batch == 3
    assert max_diff(na, nb) == 0.0


def test_distributed_refuses_weighted_sets():
    trset = weighted(batch=10)
    with pytest.raises(ValueError, match="distributed training does not support per-row"):
        distributed.shard(trset, rank=0, size=2)
    net = synaptic.mlp([4, 5, 2], ["tanh", "softmax"], synaptic.training("backprop"), seed=1)
    with distributed.emulate(2):
        with pytest.raises(ValueError, match="does not support per-row weights"):
            synaptic.train(net, trset, 1).result(timeout=60)


# -- the scikit-learn estimators ------------------------------------------------------------

def _sklearn():
    return pytest.importorskip("sklearn")


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_with_sample_weight_matches_sklearn(solver):
    _sklearn()
    from sklearn.neural_network import MLPClassifier as SkClassifier

    from synaptic.sklearn import MLPClassifier
    sw = W.astype(float) + 0.5
    kw = dict(hidden_layer_sizes=(6,), solver=solver, batch_size=8, shuffle=False,
              random_state=2, learning_rate_init=0.05, alpha=0.01)
    sk, ours = SkClassifier(**kw), MLPClassifier(dtype="float64", **kw)
    for _ in range(3):
        sk.partial_fit(X, LABELS, sample_weight=sw, classes=[0, 1])
        ours.partial_fit(X, LABELS, sample_weight=sw, classes=[0, 1])
    for a, b in zip(sk.coefs_ + sk.intercepts_, ours.coefs_ + ours.intercepts_):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    plain = MLPClassifier(dtype="float64", **kw)
    for _ in range(3):
        plain.partial_fit(X, LABELS, classes=[0, 1])
    assert np.abs(plain.coefs_[0] - ours.coefs_[0]).max() > 1e-4


def test_early_stopping_splits_the_weights_with_the_rows():
    """Unit weights: the same split, the same epochs and scores as no weights; other weights
    change the weighted validation score."""
    _sklearn()
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from synaptic.sklearn import MLPClassifier
    x = np.random.default_rng(1).normal(size=(200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    kw = dict(hidden_layer_sizes=(5,), early_stopping=True, max_iter=15, random_state=0,
              dtype="float64", n_iter_no_change=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**kw).fit(x, y, sample_weight=np.ones(200))
        b = MLPClassifier(**kw).fit(x, y)
        c = MLPClassifier(**kw).fit(x, y, sample_weight=np.where(y == 1, 5.0, 0.2))
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=0, atol=1e-12)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)
    assert not np.allclose(a.validation_scores_, c.validation_scores_)


def test_estimators_refuse_bad_sample_weight():
    _sklearn()
    from synaptic.sklearn import MLPClassifier, MLPRegressor
    for est, y in ((MLPClassifier(max_iter=2), LABELS), (MLPRegressor(max_iter=2), X[:, 0])):
        with pytest.raises(ValueError, match="sample_weight"):
            est.fit(X, y, sample_weight=np.ones(29))
        with pytest.raises(ValueError, match="[Nn]egative|>= 0"):
            est.fit(X, y, sample_weight=-np.ones(30))
        with pytest.raises(ValueError, match="zero"):
            est.fit(X, y, sample_weight=np.zeros(30))


@pytest.mark.filterwarnings("ignore:lbfgs failed to converge")
def test_regressor_weighted_score_and_lbfgs_loss():
    _sklearn()
    from sklearn.metrics import r2_score

    from synaptic.sklearn import MLPRegressor
    y = X[:, 0] - 2 * X[:, 1]
    sw = W.astype(float)
    reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50, random_state=0,
                       dtype="float64").fit(X, y, sample_weight=sw)
    assert reg.score(X, y, sample_weight=sw) == pytest.approx(
        r2_score(y, reg.predict(X), sample_weight=sw))
    rep = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50, random_state=0,
                       dtype="float64").fit(X.repeat(W, axis=0), y.repeat(W))
    np.testing.assert_allclose(reg.predict(X), rep.predict(X), rtol=1e-7, atol=1e-9)
    assert reg.loss_ == pytest.approx(rep.loss_, rel=1e-7)
