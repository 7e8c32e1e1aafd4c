"""MLPRegressor: scikit-learn's estimator on synaptic's training."""
import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import column_or_1d, validate_data

from ._base import STOCHASTIC, BaseMLP
from ._params import ATTRIBUTES, COMMON


class MLPRegressor(RegressorMixin, BaseMLP):
    _parameter_constraints = {**BaseMLP._parameter_constraints}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 rprop_variant="rprop-", adaptive_gains=False, weight_decay=0.0,
                 dtype="float32", n_threads=None, layers=None):
        self._keep(locals())

    # -- what the shared loop asks ------------------------------------------------------
    def loss_name(self):
        return self.loss

    def _error_fn(self):
        return "sum-of-squares"

    def _data_loss(self, value):
        # synaptic reports sum over outputs of (o - t)^2, mean over samples, in the
        # standardized units; scikit-learn's squared loss is the mean over both, halved
        return value / (2.0 * self.n_outputs_)

    def _lbfgs_factor(self, n_outputs):
        """synaptic's sum-of-squares C sums (o - t)^2 (its gradient doubled); scikit-learn's
        squared loss is half the mean over the samples and the outputs: factor 2 k."""
        return 2.0 * n_outputs

    def _out_activation(self):
        return "identity"

    def _target_header(self):
        return {"targets": self._targets}

    def _stratify(self):
        return False

    def _val_targets(self, y_val):
        return y_val * self._targets["scale"] + self._targets["offset"]

    def _score_net(self, x, y, sample_weight=None):
        return r2_score(y, self._values(self._outputs(x, check_input=False)),
                        sample_weight=sample_weight)

    def _validate_input(self, X, y, incremental, reset, sample_weight=None):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        sw = self._sample_weight(sample_weight, X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        t = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        first = "net_" not in self.__dict__ or (not self.warm_start and not incremental)
        if first:
            # standardized targets, fitted once per model (partial_fit and warm_start keep it);
            # with sample weights the weighted mean and deviation (as of the rows repeated)
            if sw is None:
                mean, std = t.mean(axis=0), t.std(axis=0)
            else:
                mean = np.average(t, axis=0, weights=sw)
                std = np.sqrt(np.average((t - mean) ** 2, axis=0, weights=sw))
            self._targets = {"scaling": "standard", "ndim": 2, "offset": mean.tolist(),
                             "scale": np.where(std > 0, std, 1.0).tolist()}
        return X, (t - self._targets["offset"]) / self._targets["scale"], sw

    def _values(self, out):
        return out * self._targets["scale"] + self._targets["offset"]

    # -- the public methods -------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (a sparse matrix is densified for the kernels).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets (standardized for training, predictions mapped back).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights (finite, >= 0, not all zero): each sample's loss and gradient
            scaled by its weight, a batch's gradient divided by its weight sum, as
            scikit-learn's; the targets are standardized with the weighted mean and
            deviation.  None: every sample weighs 1.

        Returns
        -------
        self : MLPRegressor
            The fitted estimator.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over the given data (the optimiser state kept between calls).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, as for :meth:`fit`.

        Returns
        -------
        self : MLPRegressor
            The trained estimator.
        """
        if self.solver not in STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values, in the units of the targets.
        """
        values = self._values(self._outputs(X))
        return values.ravel() if self.n_outputs_ == 1 else values


MLPRegressor._parameter_constraints["loss"] = [StrOptions({"squared_error", "poisson"})]

MLPRegressor.__doc__ = f"""A multi-layer perceptron regressor: scikit-learn's, trained by synaptic.

A drop-in for ``sklearn.neural_network.MLPRegressor`` (the same parameters, defaults and
fitted attributes) plus synaptic's own solvers and options: a linear output layer and the
squared error, the targets standardized for training and the predictions mapped back.

Parameters
----------
loss : {{'squared_error'}}, default='squared_error'
    The loss ('poisson' is refused: synaptic has no exponential output).
{COMMON}

Attributes
----------
{ATTRIBUTES}

See Also
--------
MLPClassifier : the classifier.

Notes
-----
``loss_`` and ``loss_curve_`` are in the standardized units of the targets.  Sparse input
is densified before training.  ``fit``, ``partial_fit`` and ``score`` take
``sample_weight`` (see ``synaptic/sklearn/_base.py``).

Examples
--------
>>> import numpy as np
>>> from synaptic.sklearn import MLPRegressor
>>> X = np.linspace(-2, 2, 200).reshape(-1, 1)
>>> reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", solver="lbfgs", random_state=0)
>>> reg.fit(X, 100 + 10 * X.ravel() ** 2).score(X, 100 + 10 * X.ravel() ** 2) > 0.99
True
"""
