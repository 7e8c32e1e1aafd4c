"""scikit-learn's own estimator checks over both estimators: every check, none an expected
failure (the sample-weight equivalence checks in float64: FLOAT64_CHECKS)."""
import warnings

import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_sample_weight_equivalence_on_dense_data, check_sample_weight_equivalence_on_sparse_data,
    parametrize_with_checks)

from sklearn.base import clone  # noqa: E402

from synaptic.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# The sample-weight equivalence checks compare a fit with integer weights against a fit on the
# rows repeated, to rtol 1e-7.  In float32 (the default dtype) a row of weight k and k copies
# of the row give the same gradient only to float32 rounding (a weighted sum against repeated
# terms, and here another kernel path: weighted sets train batch by batch, the repeated set in
# the whole-epoch kernel), so predictions differ by ~1e-7..1e-6 relative after the check's
# epochs.  scikit-learn runs these checks on its own MLPs with per-check parameters
# (PER_ESTIMATOR_CHECK_PARAMS); these run ours in float64, where they pass -- no check is an
# expected failure.
FLOAT64_CHECKS = ("check_sample_weight_equivalence_on_dense_data",
                  "check_sample_weight_equivalence_on_sparse_data")


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_compatible(estimator, check):
    if getattr(check, "func", check).__name__ in FLOAT64_CHECKS:
        estimator = clone(estimator).set_params(dtype="float64")  # not the shared instance
    check(estimator)


@pytest.mark.parametrize("check", [check_sample_weight_equivalence_on_dense_data,
                                   check_sample_weight_equivalence_on_sparse_data])
@pytest.mark.parametrize("estimator", [
    MLPClassifier(dtype="float64"), MLPRegressor(dtype="float64"),
    # the parameters scikit-learn checks its own MLPs with (PER_ESTIMATOR_CHECK_PARAMS)
    MLPClassifier(solver="lbfgs", dtype="float64"),
    MLPRegressor(solver="sgd", tol=1e-2, random_state=42, dtype="float64")], ids=repr)
def test_sample_weight_equivalence_float64(estimator, check):
    """Integer sample weights train as the rows repeated (weight 0 as the row removed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of the check's short fits
        check(type(estimator).__name__, estimator)
