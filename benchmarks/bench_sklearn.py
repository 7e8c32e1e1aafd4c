"""fit of synaptic.sklearn.MLPClassifier / MLPRegressor against scikit-learn's, same data, same
hyper-parameters: (a) 8x8 digits, (b) 50k x 50 dense classification, (c) 20k x 2000 sparse
TF-IDF-like CSR, (d) 20k x 20 regression; solvers sgd, adam, lbfgs.

``pytest benchmarks/bench_sklearn.py`` times each fit once (pytest-benchmark, one round) and
records the test accuracy (R^2) in extra_info; ``make test`` runs them untimed on a 1/20 slice
of each set and 2 epochs (``--benchmark-disable``).  ``python benchmarks/bench_sklearn.py
[repeats]`` prints the table: the median of ``repeats`` fits (default 3) of each, their time
ratio and the scores.  Run it as ``make bench`` does, without the OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE pins of these machines.
"""
import statistics
import sys
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
import scipy.sparse as sp  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.datasets import load_digits, make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from synaptic import sklearn as syn_sklearn  # noqa: E402

SETS = ("digits", "dense", "sparse", "regression")
SOLVERS = ("sgd", "adam", "lbfgs")
EPOCHS = {"digits": 200, "dense": 30, "sparse": 10, "regression": 30}
SGD_RATE = 0.01


def make_set(name, scale=1.0):
    """(x_train, x_test, y_train, y_test) of set ``name``, ``scale`` of its rows."""
    if name == "digits":
        x, y = load_digits(return_X_y=True)
        x = x / 16.0
    elif name == "dense":
        x, y = make_classification(int(50000 * scale), 50, n_informative=30, n_classes=5,
                                   random_state=0)
    elif name == "sparse":
        rng = np.random.default_rng(0)
        n, d = int(20000 * scale), 2000
        x = sp.random(n, d, density=0.01, format="csr", random_state=0,
                      data_rvs=lambda k: rng.exponential(1.0, k))
        topic = rng.integers(0, 4, n)  # each class uses its own 100 words more
        words = rng.integers(0, 100, (n, 6)) + 100 * topic[:, None]
        extra = sp.csr_matrix((np.ones(n * 6), (np.repeat(np.arange(n), 6), words.ravel())),
                              shape=(n, d))
        x = (x + extra).tocsr()
        x = sp.diags(1.0 / np.sqrt(x.multiply(x).sum(axis=1).A.ravel() + 1e-12)) @ x
        y = np.where(rng.random(n) < 0.9, topic, rng.integers(0, 4, n))
        x = x.tocsr()
    else:
        x, y = make_regression(int(20000 * scale), 20, n_informative=15, noise=5.0,
                               random_state=0)
        y = y + 0.01 * y ** 2  # a little non-linearity
        y = (y - y.mean()) / y.std()  # scikit-learn's sgd diverges on the raw scale
    return train_test_split(x, y, test_size=0.2, random_state=0)


def make_model(lib, name, solver, epochs):
    mod = syn_sklearn if lib == "synaptic" else neural_network
    cls = mod.MLPRegressor if name == "regression" else mod.MLPClassifier
    kw = dict(hidden_layer_sizes=(100,), solver=solver, max_iter=epochs, random_state=0)
    if solver == "sgd":
        kw["learning_rate_init"] = SGD_RATE
    return cls(**kw)


def fit_and_score(lib, name, solver, data, epochs):
    xtr, xte, ytr, yte = data
    model = make_model(lib, name, solver, epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(xtr, ytr)
        seconds = time.perf_counter() - start
    return seconds, model.score(xte, yte)


@pytest.fixture(scope="module")
def datasets(request):
    small = request.config.getoption("benchmark_disable", False)
    return {name: make_set(name, 0.05 if small and name != "digits" else 1.0) for name in SETS}


@pytest.mark.parametrize("lib", ["synaptic", "sklearn"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", SETS)
def test_fit(benchmark, datasets, name, solver, lib):
    epochs = 2 if benchmark.disabled else EPOCHS[name]
    benchmark.group = f"sklearn fit {name} {solver}"
    result = {}

    def run():
        result["seconds"], result["score"] = fit_and_score(lib, name, solver, datasets[name],
                                                           epochs)
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(lib=lib, score=result["score"], epochs=epochs)
    assert np.isfinite(result["score"])


def main(repeats=3):
    print("| set | solver | synaptic s | scikit-learn s | ratio | synaptic score | "
          "scikit-learn score | diff (points) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in SETS:
        data = make_set(name)
        for solver in SOLVERS:
            runs = {lib: [fit_and_score(lib, name, solver, data, EPOCHS[name])
                          for _ in range(repeats)] for lib in ("synaptic", "sklearn")}
            t = {lib: statistics.median(r[0] for r in runs[lib]) for lib in runs}
            s = {lib: runs[lib][0][1] for lib in runs}
            print(f"| {name} | {solver} | {t['synaptic']:.2f} | {t['sklearn']:.2f} | "
                  f"{t['sklearn'] / t['synaptic']:.1f}x | {s['synaptic']:.4f} | "
                  f"{s['sklearn']:.4f} | {100 * (s['synaptic'] - s['sklearn']):+.2f} |",
                  flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
