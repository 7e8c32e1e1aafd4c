"""Sparse (SciPy CSR) samples kept sparse into the kernels: CsrRows, data sets of sparse x,
training and prediction on them against the same data densified (same weights to rounding:
the CSR kernels sum in another order than the GEMM), and the sklearn estimators."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import synaptic as syn
from synaptic import _kernels
from synaptic.datasets import DataSet, TrainingSet
from synaptic.sparse import CsrRows, as_csr_rows
from synaptic import sklearn as ssk

BACKENDS = ["numpy"] + (["native"] if _kernels.native is not None else [])


def sparse_problem(n=120, d=40, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = sp.random(n, d, density=0.1, format="csr", random_state=seed,
                  data_rvs=lambda k: rng.exponential(1.0, k))
    y = np.asarray(x[:, :classes].argmax(axis=1)).ravel()
    y[np.asarray(x[:, :classes].sum(axis=1)).ravel() == 0] = classes - 1
    return x, y


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """The backend, its CSR kernels counted (backend.calls) so a test can tell that the
    sparse path ran."""
    old = _kernels.backend_name()
    _kernels.set_backend(request.param)
    kern = _kernels.get_backend()
    calls = {"csr_forward": 0, "csr_weight_grad": 0}
    for name in calls:
        def counted(*args, _f=getattr(kern, name), _n=name, **kw):
            calls[_n] += 1
            return _f(*args, **kw)
        monkeypatch.setattr(kern, name, counted)
    yield calls
    _kernels.set_backend(old)


# -- CsrRows -----------------------------------------------------------------------------

def test_csr_rows_views_take_and_dense():
    x = sp.random(9, 5, density=0.4, format="csr", random_state=1)
    rows = as_csr_rows(x)
    np.testing.assert_array_equal(rows.toarray(), x.toarray())
    part = rows[2:7]
    assert part.data is rows.data and part.indices is rows.indices  # a view
    assert part.shape == (5, 5) and len(part) == 5
    np.testing.assert_array_equal(part.toarray(), x.toarray()[2:7])
    np.testing.assert_array_equal(part.tocsr().toarray(), x.toarray()[2:7])
    order = np.random.default_rng(0).permutation(9)
    taken = rows.take(order)
    np.testing.assert_array_equal(taken.toarray(), x.toarray()[order])
    again = rows.take(order[::-1], taken)
    assert again is taken  # the buffer reused
    np.testing.assert_array_equal(again.toarray(), x.toarray()[order[::-1]])
    assert rows.astype(np.float32).dtype == np.float32
    with pytest.raises(TypeError, match="row slices"):
        rows[3]


def test_csr_rows_refuses_bad_matrices():
    with pytest.raises(TypeError, match="SciPy sparse"):
        as_csr_rows(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="complex"):
        as_csr_rows(sp.csr_matrix(np.eye(2) * 1j))
    bad = sp.csr_matrix(np.eye(3))
    bad.indices[1] = 7  # a column past the width
    with pytest.raises(ValueError, match="column index outside"):
        as_csr_rows(bad)
    coo = sp.coo_matrix(np.eye(3))
    assert as_csr_rows(coo).shape == (3, 3)  # other formats converted


def test_dataset_of_sparse_x_is_validated():
    x = sp.csr_matrix(np.array([[0, 1.0], [np.nan, 0], [0, 0]]))
    ds = DataSet(x, np.eye(3))
    assert isinstance(ds.x, CsrRows) and len(ds) == 3
    with pytest.raises(ValueError, match="x row 1 holds NaN or infinity"):
        ds.validate()
    with pytest.raises(ValueError, match="row 1 contains NaN"):
        syn.dataset(x)
    assert isinstance(syn.dataset(sp.csr_matrix(np.eye(2))).x, CsrRows)


def test_training_set_of_sparse_batches_joins_views():
    x, _ = sparse_problem(30, 8)
    rows = as_csr_rows(x)
    y = np.eye(3)[np.arange(30) % 3]
    ts = TrainingSet({"name": "t", "labels": ["a", "b", "c"]},
                     [DataSet(rows[a:b], y[a:b]) for a, b in [(0, 10), (10, 20), (20, 30)]])
    assert ts.x.data is rows.data  # consecutive views: joined without a copy
    np.testing.assert_array_equal(ts.x.toarray(), x.toarray())
    ts2 = TrainingSet({"name": "t", "labels": ["a", "b", "c"]},
                      [DataSet(x[a:b], y[a:b]) for a, b in [(0, 10), (10, 20), (20, 30)]])
    np.testing.assert_array_equal(ts2.x.toarray(), x.toarray())  # copies, concatenated
    assert ts2.astype(np.float32).x.dtype == np.float32
    with pytest.raises(TypeError, match="all dense or all sparse"):
        TrainingSet({"name": "t"}, [DataSet(x[:10], y[:10]), DataSet(x[10:].toarray(), y[10:])])


def test_reshuffled_sparse_epoch_is_the_permuted_rows():
    x, _ = sparse_problem(40, 8)
    y = np.eye(3)[np.arange(40) % 3]
    header = {"name": "t", "labels": ["a", "b", "c"], "reshuffle": True, "seed": 5}
    rows = as_csr_rows(x)
    ts = TrainingSet(header, [DataSet(rows[a:a + 10], y[a:a + 10]) for a in range(0, 40, 10)])
    e1 = ts.for_epoch(1)
    order = ts.epoch_order(1)
    np.testing.assert_array_equal(e1.x.toarray(), x.toarray()[order])
    np.testing.assert_array_equal(e1.y, y[order])
    np.testing.assert_array_equal(e1.batches[2].x.toarray(), x.toarray()[order][20:30])
    e2 = ts.for_epoch(2, e1)
    assert e2 is e1  # rewritten in place
    np.testing.assert_array_equal(e2.batches[1].x.toarray(), x.toarray()[ts.epoch_order(2)][10:20])


# -- nets --------------------------------------------------------------------------------

def test_predict_on_csr_equals_dense(backend):
    x, _ = sparse_problem()
    net = syn.mlp([40, 17, 3], ["tanh", "softmax"], seed=3)
    np.testing.assert_allclose(net.predict_proba(x), net.predict_proba(x.toarray()),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.predict_proba(x.tocsc()), net.predict_proba(x.toarray()),
                               rtol=1e-12, atol=1e-14)
    assert backend["csr_forward"] == 2


def test_sparse_input_needs_a_fully_connected_first_layer():
    net = syn.neural_net([{"type": "input", "fieldsize": [4, 4]},
                          {"type": "convolution", "act_fn": "tanh",
                           "feature_map": {"size": [3, 3], "k": 2}},
                          {"type": "fully-connected", "n": 2, "act_fn": "softmax"}])
    with pytest.raises(ValueError, match="fully connected"):
        net.predict_proba(sp.csr_matrix(np.eye(16)[:3]))


def test_error_derivatives_on_csr_equal_dense(backend):
    x, y = sparse_problem()
    net = syn.mlp([40, 9, 3], ["sigmoid", "softmax"], seed=2)
    t = np.eye(3)[y]
    want = syn.error_derivatives(net, DataSet(x.toarray(), t))
    got = syn.error_derivatives(net, DataSet(x, t))
    assert backend["csr_weight_grad"] == 1
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


SOLVERS = [("sgd", {"batch_size": 16, "momentum": 0.9}), ("adam", {"batch_size": 32}),
           ("rprop", {}), ("lbfgs", {})]


@pytest.mark.parametrize("solver, extra", SOLVERS, ids=[s for s, _ in SOLVERS])
def test_training_on_csr_gives_the_dense_weights(backend, solver, extra):
    """float64, reshuffled epochs (scikit-learn's shuffle=True), L2: the same weights to
    rounding as training on the densified rows, the same predictions."""
    x, y = sparse_problem()
    kw = dict(hidden_layer_sizes=(11,), solver=solver, max_iter=6, random_state=0,
              dtype="float64", alpha=1e-3, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ssk.MLPClassifier(**kw).fit(x, y)
        calls = dict(backend)
        b = ssk.MLPClassifier(**kw).fit(x.toarray(), y)
    assert backend == calls and calls["csr_forward"] > 0 and calls["csr_weight_grad"] > 0
    for wa, wb in zip(a.net_.weights, b.net_.weights):
        np.testing.assert_allclose(wa, wb, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.predict_proba(x), b.predict_proba(x.toarray()),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(a.predict(x.tocsc()), b.predict(x.toarray()))


def test_regressor_fits_csr(backend):
    x, _ = sparse_problem()
    target = np.asarray(x.sum(axis=1)).ravel()
    kw = dict(hidden_layer_sizes=(7,), solver="adam", max_iter=4, random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ssk.MLPRegressor(**kw).fit(x, target)
        b = ssk.MLPRegressor(**kw).fit(x.toarray(), target)
    np.testing.assert_allclose(a.predict(x), b.predict(x.toarray()), rtol=1e-10, atol=1e-12)


def test_sklearn_early_stopping_on_csr(backend):
    x, y = sparse_problem(200)
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", max_iter=5, random_state=0,
              dtype="float64", early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ssk.MLPClassifier(**kw).fit(x, y)
        b = ssk.MLPClassifier(**kw).fit(x.toarray(), y)
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_)
    np.testing.assert_allclose(a.net_.weights[0], b.net_.weights[0], rtol=1e-10, atol=1e-12)


def test_save_training_set_refuses_sparse_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    x, _ = sparse_problem(20, 6)
    y = np.eye(2)[np.arange(20) % 2]
    ts = TrainingSet({"name": "sparse-set", "labels": ["a", "b"]}, [DataSet(x, y)])
    with pytest.raises(TypeError, match="sparse"):
        syn.save_training_set(ts)


def _trset(x, y, batch, **header):
    rows = as_csr_rows(x) if sp.issparse(x) else x
    t = np.eye(3)[y]
    bounds = [(a, min(a + batch, len(y))) for a in range(0, len(y), batch)]
    return TrainingSet({"name": "t", "labels": ["a", "b", "c"], **header},
                       [DataSet(rows[a:b], t[a:b]) for a, b in bounds])


@pytest.mark.parametrize("first", [
    [{"type": "dropout", "p": 0.2, "seed": 3}],                      # on the input: densified
    [{"type": "fully-connected", "n": 6, "act_fn": "tanh"}, {"type": "dropout", "p": 0.3,
                                                             "seed": 4}],
])
def test_core_training_with_dropout_on_csr_equals_dense(backend, first):
    """The core API (neural_net, train) on a TrainingSet of CSR batches, dropout in the net."""
    x, y = sparse_problem()
    specs = [{"type": "input", "n": 40}] + first + [
        {"type": "fully-connected", "n": 5, "act_fn": "sigmoid"},
        {"type": "fully-connected", "n": 3, "act_fn": "softmax"}]
    nets = []
    for data in (x, x.toarray()):
        net = syn.neural_net(specs, syn.training("backprop", {"learning_rate": {"epsilon": 0.1}}),
                             seed=7)
        syn.train(net, _trset(data, y, 25, reshuffle=True, seed=1), 3).result()
        nets.append(net)
    for wa, wb in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(wa, wb, rtol=1e-10, atol=1e-12)
    assert backend["csr_forward"] > 0 or "dropout" == first[0]["type"]
    np.testing.assert_array_equal(syn.estimate(nets[0], DataSet(x)),
                                  syn.estimate(nets[1], DataSet(x.toarray())))


def test_training_set_function_on_csr_matches_dense():
    x, y = sparse_problem(60, 10)
    a = syn.training_set(x, y, batch=20, seed=2)
    b = syn.training_set(x.toarray(), y, batch=20, seed=2)
    assert isinstance(a.x, CsrRows)
    np.testing.assert_array_equal(a.x.toarray(), b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.batch_bounds == b.batch_bounds
    np.testing.assert_array_equal(a.rebatch(7).x.toarray(), b.rebatch(7).x)
    rows = as_csr_rows(x)
    np.testing.assert_array_equal(rows[[3, -1, 0]].toarray(), x.toarray()[[3, -1, 0]])
    mask = np.arange(60) % 4 == 0
    np.testing.assert_array_equal(rows[mask].toarray(), x.toarray()[mask])
    with pytest.raises(IndexError):
        rows[[60]]


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_sample_weight_on_csr_equals_dense(backend, solver):
    x, y = sparse_problem()
    sw = np.random.default_rng(1).uniform(0.2, 2.0, len(y))
    kw = dict(hidden_layer_sizes=(9,), solver=solver, max_iter=4, random_state=0,
              dtype="float64", batch_size=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ssk.MLPClassifier(**kw).fit(x, y, sample_weight=sw)
        b = ssk.MLPClassifier(**kw).fit(x.toarray(), y, sample_weight=sw)
    assert backend["csr_weight_grad"] > 0
    for wa, wb in zip(a.net_.weights, b.net_.weights):
        np.testing.assert_allclose(wa, wb, rtol=1e-10, atol=1e-12)
