"""scikit-learn's own estimator checks over both estimators (every check; the expected
failures, with their reasons, in EXPECTED_FAILURES)."""
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from synaptic.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# None needed: every check passes (the issue allows at most 2, each with its reason here).
EXPECTED_FAILURES = {}


@parametrize_with_checks([MLPClassifier(), MLPRegressor()],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILURES)
def test_sklearn_compatible(estimator, check):
    check(estimator)
