"""MLPClassifier: scikit-learn's estimator on synaptic's training."""
import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d, validate_data

from ._base import STOCHASTIC, BaseMLP
from ._params import ATTRIBUTES, COMMON


class MLPClassifier(ClassifierMixin, BaseMLP):
    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 rprop_variant="rprop-", adaptive_gains=False, weight_decay=0.0,
                 dtype="float32", n_threads=None, layers=None):
        self._keep(locals())

    # -- what the shared loop asks ------------------------------------------------------
    def loss_name(self):
        return "log_loss"

    def _error_fn(self):
        return "cross-entropy"

    def _data_loss(self, value):
        return value  # synaptic's cross-entropy: summed over outputs, mean over samples

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _target_header(self):
        return {"multilabel": True} if self._label_binarizer.y_type_.startswith("multilabel") \
            else {}

    def _stratify(self):
        return self.n_outputs_ == 1

    def _val_targets(self, y_val):
        return self._label_binarizer.inverse_transform(y_val)

    def _score_net(self, x, y, sample_weight=None):
        return accuracy_score(y, self._predict_outputs(self._outputs(x, check_input=False)),
                              sample_weight=sample_weight)

    def _validate_input(self, X, y, incremental, reset, sample_weight=None):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        sample_weight = self._sample_weight(sample_weight, X)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same "
                                     f"classes as in the previous call to fit. Previously "
                                     f"got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(np.float64), sample_weight

    def _predict_outputs(self, out):
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    # -- the public methods -------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (a sparse matrix is densified for the kernels).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (ints, strings, bools), or a 0/1 indicator matrix (multi-label).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights (finite, >= 0, not all zero): each sample's loss and gradient
            scaled by its weight, a batch's gradient divided by its weight sum, as
            scikit-learn's.  None: every sample weighs 1.

        Returns
        -------
        self : MLPClassifier
            The fitted estimator.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over the given data (the optimiser state kept between calls).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, as for :meth:`fit`.
        classes : array of shape (n_classes,), default=None
            Every class of all the calls; required on the first call.

        Returns
        -------
        self : MLPClassifier
            The trained estimator.
        """
        if self.solver not in STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        return self._predict_outputs(self._outputs(X))

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class, in the order of ``classes_``.
        """
        out = self._outputs(X)
        if self.n_outputs_ == 1:
            out = out.ravel()
            return np.vstack([1 - out, out]).T
        return out

    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


MLPClassifier.__doc__ = f"""A multi-layer perceptron classifier: scikit-learn's, trained by synaptic.

A drop-in for ``sklearn.neural_network.MLPClassifier`` (the same parameters, defaults and
fitted attributes) plus synaptic's own solvers and options.  Softmax output and
cross-entropy for several classes, one logistic unit for two, logistic units for a
multi-label indicator ``y``.

Parameters
----------
{COMMON}

Attributes
----------
classes_ : ndarray or list of ndarray
    The class labels.
{ATTRIBUTES}

See Also
--------
MLPRegressor : the regressor.

Notes
-----
The conventions converted from scikit-learn's to synaptic's are listed in
``synaptic/sklearn/_base.py``.  Sparse input is densified before training (synaptic's
kernels skip zeros of a dense input but take no sparse matrix).  ``fit``, ``partial_fit``
and ``score`` take ``sample_weight`` (see ``synaptic/sklearn/_base.py``).

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from synaptic.sklearn import MLPClassifier
>>> X, y = load_iris(return_X_y=True)
>>> clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=500, random_state=0).fit(X, y)
>>> clf.coefs_[0].shape, clf.score(X, y) > 0.9
((4, 16), True)
"""
