"""synaptic.sklearn: the estimators' own behaviour (parity with scikit-learn and its checks
are in test_sklearn_parity.py and test_sklearn_checks.py)."""
import io
import pickle
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest

pytest.importorskip("sklearn")
import scipy.sparse as sp  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from synaptic.sklearn import MLPClassifier, MLPRegressor, load, save  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x / 16.0, y


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs", "rprop", "rmsprop"])
def test_every_solver_learns_digits(digits, solver):
    x, y = digits
    clf = quiet(MLPClassifier((32,), solver=solver, random_state=0, max_iter=60,
                              learning_rate_init=0.01 if solver != "sgd" else 0.1).fit,
                x[:1400], y[:1400])
    assert clf.score(x[1400:], y[1400:]) > 0.85
    assert clf.coefs_[0].shape == (64, 32) and clf.intercepts_[1].shape == (10,)
    assert clf.net_.dtype == np.float32 and clf.out_activation_ == "softmax"


@pytest.mark.parametrize("variant", ["rprop+", "irprop-", "irprop+"])
def test_rprop_variants(digits, variant):
    x, y = digits
    clf = quiet(MLPClassifier((16,), solver="rprop", rprop_variant=variant, max_iter=40,
                              random_state=0).fit, x, y)
    assert clf.net_.training.params["rprop"]["variant"] == variant
    assert clf.score(x, y) > 0.8


def test_labels_kinds_and_pandas():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    for labels in (np.where(x[:, 0] > 0, "yes", "no"), x[:, 0] > 0, (x[:, 0] > 0) * 5 - 2):
        clf = quiet(MLPClassifier((8,), random_state=0, max_iter=80, learning_rate_init=0.02).fit,
                    x, labels)
        assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
        assert set(clf.predict(x)) <= set(labels) and clf.score(x, labels) > 0.9
        assert clf.predict_proba(x).shape == (200, 2)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    clf = quiet(MLPClassifier((8,), random_state=0, max_iter=30).fit, frame,
                pd.Series(x[:, 0] > 0))
    assert list(clf.feature_names_in_) == ["a", "b", "c"]


def test_multilabel_and_multioutput():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 0] + x[:, 1] > 0], axis=1).astype(int)
    clf = quiet(MLPClassifier((16,), random_state=0, max_iter=200,
                              learning_rate_init=0.01).fit, x, y)
    assert clf.out_activation_ == "logistic" and clf.predict(x).shape == (300, 3)
    assert clf.score(x, y) > 0.8  # subset accuracy
    t = np.stack([x[:, 0] * 10 + 100, x[:, 1] ** 2], axis=1)
    reg = quiet(MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", random_state=0, max_iter=300).fit, x, t)
    assert reg.predict(x).shape == (300, 2) and reg.score(x, t) > 0.95


def test_regression_targets_are_standardized_and_mapped_back():
    x, y = make_regression(400, 10, noise=1.0, random_state=0)
    y = 1000 + 50 * y
    reg = quiet(MLPRegressor(hidden_layer_sizes=(32,), random_state=0, max_iter=300,
                             learning_rate_init=0.01).fit, x, y)
    assert reg.score(x, y) > 0.95
    assert abs(reg.predict(x).mean() - y.mean()) < 0.05 * y.std()
    assert reg.loss_ < 0.1  # the standardized units' loss


def test_sparse_csr_gives_the_dense_result(digits):
    x, y = digits
    kw = dict(hidden_layer_sizes=(16,), random_state=0, max_iter=10)
    dense = quiet(MLPClassifier(**kw).fit, x, y)
    sparse = quiet(MLPClassifier(**kw).fit, sp.csr_matrix(x), y)
    # kept sparse into the CSR kernels, which sum in another order than the dense GEMM: the
    # same weights to float32 rounding
    np.testing.assert_allclose(sparse.coefs_[0], dense.coefs_[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(sparse.predict(sp.csr_matrix(x)), dense.predict(x))


def test_pickle_and_clone(digits):
    x, y = digits
    clf = quiet(MLPClassifier((16,), random_state=0, max_iter=5).fit, x, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(x), clf.predict_proba(x))
    quiet(back.partial_fit, x, y)  # the optimiser state came along
    assert back.net_.training.state["adam_t"] == clf.net_.training.state["adam_t"] + 9
    fresh = clone(clf)
    assert "net_" not in fresh.__dict__ and fresh.get_params() == clf.get_params()


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_save_load_round_trip(tmp_path, digits, cls):
    x, y = digits
    est = quiet(cls(hidden_layer_sizes=(16,), random_state=0, max_iter=5, early_stopping=True).fit, x, y)
    path = tmp_path / "model"
    save(est, path)
    back = load(path)
    assert type(back) is cls and back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.predict(x), est.predict(x))
    for key in ("n_iter_", "t_", "loss_curve_", "validation_scores_", "n_layers_"):
        assert getattr(back, key) == getattr(est, key)
    assert b"pickle" not in path.read_bytes()[:200]
    with pytest.raises(ValueError, match="not a saved estimator"):
        import synaptic as syn
        from synaptic.persist import save_neural_net_file
        save_neural_net_file(syn.mlp([2, 1], "sigmoid"), tmp_path / "net")
        load(tmp_path / "net")


def test_partial_fit_and_warm_start(digits):
    x, y = digits
    clf = MLPClassifier((16,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(x, y)
    for _ in range(3):
        clf.partial_fit(x[:900], y[:900], classes=np.arange(10))
    assert clf.n_iter_ == 1 and clf.t_ == 2700 and len(clf.loss_curve_) == 3
    with pytest.raises(AttributeError, match="stochastic"):
        MLPClassifier(solver="lbfgs").partial_fit(x, y, classes=np.arange(10))
    warm = MLPClassifier((16,), random_state=0, max_iter=3, warm_start=True)
    quiet(warm.fit, x, y)
    first = [c.copy() for c in warm.coefs_]
    quiet(warm.fit, x, y)
    assert len(warm.loss_curve_) == 6 and not np.array_equal(first[0], warm.coefs_[0])


def test_tol_stops_training_and_max_iter_warns(digits):
    x, y = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier((8,), random_state=0, max_iter=3).fit(x, y)
    clf = MLPClassifier((8,), random_state=0, max_iter=500, tol=1.0, n_iter_no_change=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(x, y)
    assert clf.n_iter_ == 4  # epoch 1 improves on inf; 2, 3, 4 do not: 3 > 2
    assert clf.best_loss_ == min(clf.loss_curve_)


def test_early_stopping_keeps_the_best_epoch(digits):
    x, y = digits
    clf = quiet(MLPClassifier((32,), random_state=0, max_iter=200, early_stopping=True,
                              n_iter_no_change=3, learning_rate_init=0.05).fit, x, y)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    with pytest.raises(ValueError, match="early_stopping"):
        clf.partial_fit(x, y)


def test_learning_rate_schedules(digits):
    x, y = digits
    inv = quiet(MLPClassifier((8,), solver="sgd", learning_rate="invscaling", power_t=0.5,
                              learning_rate_init=0.5, max_iter=4, random_state=0).fit, x, y)
    rates = inv.net_.training.stats.learning_rate
    n = len(x)
    np.testing.assert_allclose(rates, [0.5] + [0.5 / (k * n + 1) ** 0.5 for k in (1, 2, 3)])
    ada = quiet(MLPClassifier((8,), solver="sgd", learning_rate="adaptive", tol=10.0,
                              n_iter_no_change=1, learning_rate_init=0.1, max_iter=8,
                              random_state=0).fit, x, y)
    rates = ada.net_.training.stats.learning_rate
    assert rates[0] == 0.1 and rates[-1] < 0.1 / 4  # divided by 5 after each plateau


def test_verbose_shows_the_progress(digits, capsys):
    x, y = digits
    out = io.StringIO()
    with redirect_stdout(out):
        quiet(MLPClassifier((8,), random_state=0, max_iter=2, verbose=True).fit, x, y)
    text = out.getvalue() + capsys.readouterr().err
    assert "Iteration 2, loss" in text and "epoch 2/2" in text


def test_layers_param_builds_a_conv_net(digits):
    x, y = digits
    layers = [{"type": "input", "fieldsize": [8, 8]},
              {"type": "convolution", "act_fn": "relu", "feature_map": {"size": [3, 3], "k": 4},
               "pool": {"kind": "max", "size": [2, 2]}}]
    clf = quiet(MLPClassifier(layers=layers, random_state=0, max_iter=30,
                              learning_rate_init=0.01).fit, x, y)
    assert [type(layer).__name__ for layer in clf.net_.layers[1:]] == ["Convolution",
                                                                       "FullyConnected"]
    assert clf.score(x, y) > 0.8


def test_bad_parameters_are_named(digits):
    x, y = digits
    with pytest.raises(ValueError, match="solver"):
        MLPClassifier(solver="newton").fit(x, y)
    with pytest.raises(ValueError, match="dtype"):
        MLPClassifier(dtype="float16").fit(x, y)
    with pytest.raises(ValueError, match="poisson"):
        MLPRegressor(loss="poisson").fit(x, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(4, 0)).fit(x, y)


def test_pipeline_grid_search(digits):
    x, y = digits
    grid = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(max_iter=20, random_state=0)),
                        {"mlpclassifier__hidden_layer_sizes": [(8,), (32,)]}, cv=2)
    quiet(grid.fit, x[:600], y[:600])
    assert grid.best_params_["mlpclassifier__hidden_layer_sizes"] == (32,)
