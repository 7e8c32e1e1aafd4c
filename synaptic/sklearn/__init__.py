"""scikit-learn estimators on synaptic: ``MLPClassifier`` and ``MLPRegressor``.

Drop-ins for ``sklearn.neural_network``'s classes of the same names (change the import
line), trained by synaptic's kernels; ``save`` / ``load`` write and read synaptic's own
file format (JSON + .npz, no pickle).  Needs scikit-learn (``pip install synaptic[sklearn]``).

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from synaptic.sklearn import MLPClassifier
>>> X, y = load_iris(return_X_y=True)
>>> model = make_pipeline(StandardScaler(), MLPClassifier((10,), max_iter=300, random_state=0))
>>> model.fit(X, y).score(X, y) > 0.9
True
"""
try:
    import sklearn  # noqa: F401
except ImportError as err:  # pragma: no cover - the message is the point
    raise ImportError("synaptic.sklearn needs scikit-learn: pip install 'synaptic[sklearn]'") \
        from err

from ._classifier import MLPClassifier
from ._files import load, save
from ._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "load", "save"]
