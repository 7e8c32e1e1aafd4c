"""synaptic.sklearn against scikit-learn itself: the same initial weights, one epoch, the same
weights after it (float64, shuffle=False), for the solvers whose algorithm is the same."""
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from synaptic.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

CASES = [dict(solver="sgd", momentum=0.0, learning_rate_init=0.1),
         dict(solver="sgd", momentum=0.9, nesterovs_momentum=False, learning_rate_init=0.05),
         dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.05),
         dict(solver="adam", learning_rate_init=0.01),
         dict(solver="adam", learning_rate_init=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-4)]


def _data(n_classes, n=157, d=7, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = (x[:, :n_classes].argmax(axis=1) if n_classes > 2 else (x[:, 0] + x[:, 1] > 0))
    return x, y.astype(int)


def _one_epoch(est, x, y, init):
    """A warm-started fit of one epoch from the weights ``init`` (a new optimiser state)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x, y)  # builds the layers
        est.coefs_ = [c.copy() for c in init[0]]
        est.intercepts_ = [b.copy() for b in init[1]]
        est.fit(x, y)
    return [np.array(c) for c in est.coefs_], [np.array(b) for b in est.intercepts_]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{v}" for v in c.values()))
@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_one_epoch_matches_sklearn(case, n_classes, activation):
    x, y = _data(n_classes)
    common = dict(hidden_layer_sizes=(9, 5), activation=activation, alpha=0.01, batch_size=40,
                  max_iter=1, shuffle=False, warm_start=True, random_state=3, **case)
    sk = SkClassifier(**common)
    ours = MLPClassifier(dtype="float64", **common)
    rng = np.random.default_rng(1)
    sizes = [7, 9, 5, 1 if n_classes == 2 else n_classes]
    init = ([rng.uniform(-0.5, 0.5, (a, b)) for a, b in zip(sizes, sizes[1:])],
            [rng.uniform(-0.5, 0.5, b) for b in sizes[1:]])
    sk_w = _one_epoch(sk, x, y, init)
    our_w = _one_epoch(ours, x, y, init)
    moved = max(np.abs(a - b).max() for a, b in zip(sk_w[0], init[0]))
    assert moved > 1e-3  # the epoch changed the weights: the comparison means something
    for a, b in zip(sk_w[0] + sk_w[1], our_w[0] + our_w[1]):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_initial_weights_are_sklearns(solver):
    """The same random_state draws the same Glorot-uniform weights as scikit-learn."""
    x, y = _data(3)
    kw = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=1, random_state=7,
              learning_rate_init=1e-12)  # (almost) no step: the initial weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkClassifier(**kw).fit(x, y)
        ours = MLPClassifier(dtype="float64", **kw).fit(x, y)
    for a, b in zip(sk.coefs_ + sk.intercepts_, ours.coefs_ + ours.intercepts_):
        np.testing.assert_allclose(b, a, atol=1e-9)


def test_regressor_one_epoch_matches_sklearn_on_standardized_targets():
    """The regressor trains on standardized targets: scikit-learn's on the same standardized
    targets takes the same step."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 5))
    y = 3 * x[:, 0] - x[:, 1] ** 2 + 0.1 * rng.normal(size=120)
    z = (y - y.mean()) / y.std()
    common = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.05, alpha=0.001,
                  batch_size=32, max_iter=1, shuffle=False, warm_start=True, random_state=0)
    init = ([rng.uniform(-0.5, 0.5, (5, 8)), rng.uniform(-0.5, 0.5, (8, 1))],
            [rng.uniform(-0.5, 0.5, 8), rng.uniform(-0.5, 0.5, 1)])
    sk_w = _one_epoch(SkRegressor(**common), x, z, init)
    our_w = _one_epoch(MLPRegressor(dtype="float64", **common), x, y, init)
    for a, b in zip(sk_w[0] + sk_w[1], our_w[0] + our_w[1]):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)


@pytest.mark.parametrize("max_iter", [12, 300])
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
@pytest.mark.parametrize("kind", ["classifier-2", "classifier-4", "regressor-1"])
def test_lbfgs_stops_and_steps_as_sklearn(kind, alpha, max_iter):
    """L-BFGS: the same SciPy minimiser on the same mean objective (lbfgs.scale, the lambda
    factor), so the same iterations, the same stop (gtol = tol, SciPy's ftol, max_iter)
    and the same weights; 300 (and tol 1e-3) lets both converge before max_iter.  One regression output:
    with k > 1, scikit-learn's loss is the mean over the outputs but its gradient their sum
    (k times the loss's), which SciPy's line search is given as they are; synaptic
    minimises the same loss with its true gradient."""
    if kind.startswith("regressor"):
        rng = np.random.default_rng(1)
        x = rng.normal(size=(120, 5))
        y = np.tanh(x @ rng.normal(size=5)) + x[:, 0] * x[:, 1]
        y = (y - y.mean()) / y.std()  # the wrapper's standardization: a no-op
        ours, theirs = MLPRegressor, SkRegressor
    else:
        x, y = _data(int(kind[-1]), n=120)
        ours, theirs = MLPClassifier, SkClassifier
    kw = dict(hidden_layer_sizes=(9,), solver="lbfgs", activation="tanh", alpha=alpha,
              max_iter=max_iter, random_state=3, tol=1e-4 if max_iter == 12 else 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = theirs(**kw).fit(x, y)
        b = ours(dtype="float64", **kw).fit(x, y)
    if max_iter == 300:  # converged: the stop tests, not the limit, ended both
        assert a.n_iter_ < max_iter and b.n_iter_ < max_iter
        np.testing.assert_allclose(b.loss_, a.loss_, rtol=1e-3, atol=1e-4)
        if kind.startswith("regressor"):
            return  # a flat valley: rounding moves the last of ~160 iterations' points
    assert b.n_iter_ == a.n_iter_
    tol = 1e-9 if max_iter == 12 else 1e-5  # rounding grows over many iterations
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(q, p, rtol=tol, atol=tol)
    np.testing.assert_allclose(b.loss_, a.loss_, rtol=1e-8)


def _weighted_epoch(est, x, y, init, sw):
    """As _one_epoch, with ``sample_weight``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x, y, sample_weight=sw)
        est.coefs_ = [c.copy() for c in init[0]]
        est.intercepts_ = [b.copy() for b in init[1]]
        est.fit(x, y, sample_weight=sw)
    return [np.array(c) for c in est.coefs_] + [np.array(b) for b in est.intercepts_]


def _weights(n, seed=5):
    """Fractional weights, a zero-weight batch's worth of zeros (rows 0-39: batch 0 weighs 0
    but for row 39) and some large ones."""
    sw = np.random.default_rng(seed).uniform(0, 3, n)
    sw[:39] = 0.0
    sw[-3:] = 10.0
    return sw


@pytest.mark.parametrize("case", CASES + [dict(solver="lbfgs", max_iter=3)],
                         ids=lambda c: "-".join(f"{v}" for v in c.values()))
@pytest.mark.parametrize("n_classes", [2, 4])
def test_one_epoch_with_sample_weight_matches_sklearn(case, n_classes):
    """With sample_weight: each row's delta scaled, the batch gradient and the L2 term over
    the batch's weight sum (scikit-learn's _backprop); L-BFGS: three iterations of the
    weighted objective."""
    x, y = _data(n_classes)
    sw = _weights(len(y))
    common = dict(hidden_layer_sizes=(9, 5), activation="tanh", alpha=0.01, batch_size=40,
                  max_iter=1, shuffle=False, warm_start=True, random_state=3)
    common.update(case)
    rng = np.random.default_rng(1)
    sizes = [7, 9, 5, 1 if n_classes == 2 else n_classes]
    init = ([rng.uniform(-0.5, 0.5, (a, b)) for a, b in zip(sizes, sizes[1:])],
            [rng.uniform(-0.5, 0.5, b) for b in sizes[1:]])
    sk = SkClassifier(**common)
    ours = MLPClassifier(dtype="float64", **common)
    sk_w = _weighted_epoch(sk, x, y, init, sw)
    our_w = _weighted_epoch(ours, x, y, init, sw)
    unweighted = _one_epoch(SkClassifier(**common), x, y, init)
    # the weights matter: the unweighted epoch ends elsewhere
    assert max(np.abs(a - b).max() for a, b in zip(sk_w, unweighted[0] + unweighted[1])) > 1e-3
    for a, b in zip(sk_w, our_w):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    if case["solver"] == "lbfgs":  # the weighted mean loss plus alpha / (2 sum(sw)) ||W||^2
        assert ours.loss_ == pytest.approx(sk.loss_, rel=1e-10)


def test_regressor_one_epoch_with_sample_weight_matches_sklearn():
    """The regressor standardizes with the weighted mean and deviation: scikit-learn's on the
    same standardized targets, with the same weights, takes the same step."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 5))
    y = 3 * x[:, 0] - x[:, 1] ** 2 + 0.1 * rng.normal(size=120)
    sw = rng.integers(0, 4, size=120).astype(float)
    mean = np.average(y, weights=sw)
    z = (y - mean) / np.sqrt(np.average((y - mean) ** 2, weights=sw))
    common = dict(hidden_layer_sizes=(8,), solver="adam", learning_rate_init=0.01, alpha=0.001,
                  batch_size=32, max_iter=1, shuffle=False, warm_start=True, random_state=0)
    init = ([rng.uniform(-0.5, 0.5, (5, 8)), rng.uniform(-0.5, 0.5, (8, 1))],
            [rng.uniform(-0.5, 0.5, 8), rng.uniform(-0.5, 0.5, 1)])
    sk_w = _weighted_epoch(SkRegressor(**common), x, z, init, sw)
    our_w = _weighted_epoch(MLPRegressor(dtype="float64", **common), x, y, init, sw)
    for a, b in zip(sk_w, our_w):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
