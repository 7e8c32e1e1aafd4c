"""A grid search of synaptic's estimator on a Dask cluster of 2 worker processes (joblib's
dask backend) gives the same best parameters and scores as the same search run here."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
distributed = pytest.importorskip("distributed")
import joblib  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from synaptic.sklearn import MLPClassifier  # noqa: E402

GRID = {"hidden_layer_sizes": [(8,), (32,)], "alpha": [1e-4, 1e-1]}


def _search(n_jobs):
    x, y = load_digits(return_X_y=True)
    search = GridSearchCV(MLPClassifier(max_iter=15, learning_rate_init=0.01, random_state=0,
                                        n_threads=1), GRID, cv=3,
                          n_jobs=n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return search.fit(x[:900] / 16.0, y[:900])


def test_dask_grid_search_equals_the_sequential_one():
    sequential = _search(None)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with joblib.parallel_backend("dask"):
            on_dask = _search(-1)
        ran_on = client.run(lambda: __import__("os").getpid())
    assert len(ran_on) == 2
    assert on_dask.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  sequential.cv_results_["mean_test_score"])
    assert on_dask.best_score_ > 0.8
