"""What MLPClassifier and MLPRegressor share: parameters, the net, the training loop.

The estimators map scikit-learn's MLP onto synaptic's training API; they do not re-implement
the training.  A fit is one ``synaptic.train(net, trset, max_iter, after_epoch=...)`` call;
after each epoch, in the training thread, ``after_epoch`` applies scikit-learn's rules, which
synaptic's early stopping and schedules do not reproduce exactly: the ``tol`` / ``n_iter_no_change`` test on the training loss or the
validation score, ``learning_rate='invscaling'`` and ``'adaptive'``, the ConvergenceWarning.

Conventions converted here (scikit-learn's on the left, synaptic's on the right):

* weights: ``coefs_[i]`` is ``n_in x n_out`` and ``intercepts_[i]`` separate; synaptic's
  ``net.weights[i]`` is ``n_out x (1 + n_in)`` with the bias in column 0.  ``coefs_`` and
  ``intercepts_`` are views of the net's weights (``W[:, 1:].T`` and ``W[:, 0]``).
* loss and gradient: scikit-learn's mean over the batch of the loss plus
  ``alpha / (2 m) * ||W||^2`` (biases not penalised) has the gradient ``(sum of the per-sample
  gradients + alpha * W) / m``; synaptic's backprop, Adam and RMSprop divide the summed
  gradient by the batch size, and its L2 regularization adds ``lambda * W`` to the summed
  gradient with the bias column exempt, so ``lambda = alpha`` is the same gradient.  L-BFGS:
  synaptic's objective is the sum over the samples plus ``lambda / 2 * ||W||^2``, ``n`` times
  scikit-learn's mean objective: the same minimiser.
* Adam: scikit-learn adds ``epsilon`` to ``sqrt(v)`` before the bias correction, synaptic
  (as PyTorch) after it: ``adam.eps_before_correction`` selects scikit-learn's form.
* Nesterov momentum: scikit-learn keeps the look-ahead point ``w + momentum * v`` as its
  parameters, synaptic the point itself; the same trajectory, so after training the net's
  weights are moved to scikit-learn's point (and back before training resumes).
* the reported loss (``loss_``, ``loss_curve_``): as scikit-learn, the mean of the losses the
  batches saw before their steps (synaptic's ``stats.batch_loss``: no extra pass over the
  data), plus the L2 term -- taken at the end-of-epoch weights, where scikit-learn adds each
  batch's.
* ``sample_weight``: scikit-learn scales each row's output delta by its weight and divides
  a batch's gradient (and the L2 term) by the batch's weight sum instead of its size; the
  weights go into the training set (``DataSet.w``) and synaptic's training does the same
  (backprop, Adam, RMSprop, R-prop; L-BFGS minimises the weighted sum of the losses plus
  the penalty, the weight sum times scikit-learn's objective: the same minimiser).  The
  reported loss is then, as scikit-learn's, each batch's weighted mean loss (plus the L2
  term over its weight sum) weighted by its rows.
  The regressor standardizes its targets with the weighted mean and deviation.
"""
import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import _config, api, progress
from ..datasets import DataSet, TrainingSet
from ..sparse import as_csr_rows
from ..training import TrainingDiverged, train, training
from ..utils import partition

ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
STOCHASTIC = ("sgd", "adam", "rprop", "rmsprop")
RPROP_VARIANTS = ("rprop-", "rprop+", "irprop-", "irprop+")
DTYPES = {"float32": np.float32, "float64": np.float64}
LBFGS_FTOL = 2.220446049250313e-09  # scipy.optimize.minimize's default for L-BFGS-B

PARAMETER_CONSTRAINTS = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "solver": [StrOptions({"lbfgs", *STOCHASTIC})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="right")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
    "rprop_variant": [StrOptions(set(RPROP_VARIANTS))],
    "adaptive_gains": ["boolean"],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "dtype": [StrOptions(set(DTYPES)), type, np.dtype],
    "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    "layers": [list, None],
}
# momentum: scikit-learn allows 1 (closed both); synaptic's momentum needs alpha < 1
PARAMETER_CONSTRAINTS["momentum"] = [Interval(Real, 0, 1, closed="left")]


class BaseMLP(BaseEstimator):
    """The shared machinery; use :class:`MLPClassifier` or :class:`MLPRegressor`."""

    _parameter_constraints = PARAMETER_CONSTRAINTS

    def _keep(self, params):
        """Store the constructor's arguments as they are (scikit-learn's rule: no logic in
        ``__init__``); the subclasses' explicit signatures are what get_params reads."""
        for name, value in params.items():
            if name != "self":
                setattr(self, name, value)

    # -- fitted views of the net --------------------------------------------------------
    @property
    def coefs_(self):
        """``n_in x n_out`` weight matrices, views of ``net_.weights`` (writable)."""
        return [w[:, 1:].T for w in self._fitted_net().weights]

    @coefs_.setter
    def coefs_(self, values):
        self._set_weights(values, lambda w: w[:, 1:].T, "coefs_")

    @property
    def intercepts_(self):
        """Bias vectors, views of column 0 of ``net_.weights`` (writable)."""
        return [w[:, 0] for w in self._fitted_net().weights]

    @intercepts_.setter
    def intercepts_(self, values):
        self._set_weights(values, lambda w: w[:, 0], "intercepts_")

    def _fitted_net(self):
        net = self.__dict__.get("net_")
        if net is None:
            raise AttributeError(f"this {type(self).__name__} is not fitted yet (no net_)")
        return net

    def _set_weights(self, values, view, what):
        weights = self._fitted_net().weights
        if len(values) != len(weights):
            raise ValueError(f"{what} needs {len(weights)} arrays, got {len(values)}")
        for i, (w, v) in enumerate(zip(weights, values)):
            target = view(w)
            v = np.asarray(v)
            if v.shape != target.shape:
                raise ValueError(f"{what}[{i}] must have shape {target.shape}, got {v.shape}")
            target[...] = v

    def __sklearn_is_fitted__(self):
        return "net_" in self.__dict__

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- fit ----------------------------------------------------------------------------
    def _dtype(self):
        name = np.dtype(self.dtype).name
        if name not in DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        return DTYPES[name]

    def _threads(self):
        return _config.num_threads(self.n_threads) if self.n_threads else _NoThreads()

    def _sample_weight(self, sample_weight, X):
        """``sample_weight`` checked against the validated ``X`` (float64, 1-D, one per
        sample, finite, >= 0, not all zero), or None."""
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=np.float64,
                                    ensure_non_negative=True)

    def _fit(self, X, y, incremental=False, sample_weight=None):
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        if self.loss_name() == "poisson":
            raise ValueError("loss='poisson' is not available in synaptic (no exponential "
                             "output layer); use loss='squared_error'")
        first_pass = "net_" not in self.__dict__ or (not self.warm_start and not incremental)
        X, Y, sw = self._validate_input(X, y, incremental, reset=first_pass,
                                        sample_weight=sample_weight)
        x = self._as_input(X)
        Y = np.ascontiguousarray(Y, dtype=x.dtype)
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, x.shape[1], hidden)
        elif x.shape[1] != self.net_.n_inputs or Y.shape[1] != self.net_.n_outputs:
            raise ValueError(f"the data has {x.shape[1]} features and {Y.shape[1]} outputs, "
                             f"the fitted net {self.net_.n_inputs} and {self.net_.n_outputs}")
        with self._threads():
            if self.solver == "lbfgs":
                self._fit_lbfgs(x, Y, sw)
            else:
                self._fit_stochastic(x, Y, incremental, sw)
        if not all(np.isfinite(w).all() for w in self.net_.weights):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _as_input(self, X):
        """Samples as the net takes them: C-contiguous in the net's dtype; a sparse matrix
        stays sparse, as a SciPy CSR matrix (CSC, COO ... converted; indices sorted, the
        values in the net's dtype), which the data sets keep as CSR rows and the first layer
        reads through the CSR kernels."""
        dtype = self._dtype()
        if sp.issparse(X):
            X = sp.csr_matrix(X, dtype=dtype)  # a copy when converted, else X's arrays
            if not X.has_sorted_indices:
                X = X.copy()
                X.sort_indices()
            return X
        return np.ascontiguousarray(X, dtype=dtype)

    def _layer_specs(self, n_features, hidden):
        act = ACTIVATIONS[self.activation]
        if self.layers is None:
            specs = [{"type": "input", "n": n_features}]
            specs += [{"type": "fully-connected", "n": int(n), "act_fn": act} for n in hidden]
            return specs
        specs = [dict(s) for s in self.layers]
        if not all(isinstance(s, dict) for s in specs):
            raise TypeError("layers must be a list of synaptic layer dicts")
        if not specs or specs[0].get("type") != "input":
            specs.insert(0, {"type": "input", "n": n_features})
        if "fieldsize" not in specs[0]:
            specs[0].setdefault("n", n_features)
        return specs

    def _initialize(self, Y, n_features, hidden):
        """A new net with scikit-learn's Glorot-uniform initial weights (the same draws from
        ``random_state``: the same initial coefs_ as scikit-learn's) and fresh attributes."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.out_activation_ = self._out_activation()
        specs = self._layer_specs(n_features, hidden)
        specs.append({"type": "fully-connected", "n": self.n_outputs_,
                      "act_fn": ACTIVATIONS[self.out_activation_]
                      if self.out_activation_ in ACTIVATIONS else self.out_activation_})
        seed = int(self._random_state.randint(np.iinfo(np.int32).max)) \
            if self.layers is not None else None
        net = api.neural_net(specs, dtype=self._dtype(), seed=seed)
        if net.n_inputs != n_features:
            raise ValueError(f"layers take {net.n_inputs} inputs, the data has {n_features} "
                             f"features")
        factor = 2.0 if self.activation == "logistic" else 6.0
        for w in net.weights:
            if w.shape[1] - 1 == _fan_in(net, w):  # a fully-connected layer: Glorot-uniform
                fan_out, fan_in = w.shape[0], w.shape[1] - 1
                bound = math.sqrt(factor / (fan_in + fan_out))
                coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
                intercept = self._random_state.uniform(-bound, bound, fan_out)
                w[:, 1:] = coef.T
                w[:, 0] = intercept
        self.net_ = net
        self.n_layers_ = len(net.layers)
        self._lookahead = 0.0
        if self.solver in STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _training(self):
        """The synaptic training record of these parameters."""
        params = {"error_fn": self._error_fn(), "stats": {"errorkinds": [], "batch_loss": True}}
        if self.alpha > 0:
            params["regularization"] = {"kind": "l2", "lambda": float(self.alpha)}
        if self.weight_decay > 0:
            params["weight_decay"] = float(self.weight_decay)
        lr = {"epsilon": float(self.learning_rate_init)}
        if self.adaptive_gains:
            lr.update(adaptive=True, ming=0.01, maxg=10.0)
        solver = self.solver
        if solver == "sgd":
            params["learning_rate"] = lr
            if self.momentum > 0:
                params["momentum"] = {"alpha": float(self.momentum),
                                      "nesterov": bool(self.nesterovs_momentum)}
            return training("backprop", params)
        if solver == "adam":
            params["learning_rate"] = {"epsilon": lr["epsilon"]}
            params["adam"] = {"beta1": float(self.beta_1), "beta2": float(self.beta_2),
                              "eps": float(self.epsilon), "eps_before_correction": True}
            return training("adam", params)
        if solver == "rmsprop":
            params["learning_rate"] = lr
            params["rmsprop"] = {"eps": float(self.epsilon)}
            return training("rmsprop", params)
        if solver == "rprop":
            params["rprop"] = {"variant": self.rprop_variant}
            return training("rprop", params)
        params.pop("weight_decay", None)
        params["stats"] = {"errorkinds": []}  # (and no batch_loss: L-BFGS has no batches)
        # scikit-learn's SciPy call: history 10, gtol = tol, SciPy's default ftol, maxfun =
        # max_fun, on the mean objective (lbfgs.scale, set by _fit_lbfgs); the original's
        # ||g|| / max(1, ||w||) test off
        params["lbfgs"] = {"m": 10, "eps": 0.0, "gtol": float(self.tol), "ftol": LBFGS_FTOL,
                           "maxfun": int(self.max_fun)}
        return training("lbfgs", params)

    def _training_set(self, x, Y, batch, shuffle, sample_weight=None):
        bounds = partition(x.shape[0], batch)
        if sp.issparse(x):  # CSR rows once: the batches are views of them
            x = as_csr_rows(x)
        header = {"name": "sklearn", **self._target_header()}
        if shuffle:
            header.update(reshuffle=True, seed=int(self._random_state.randint(2 ** 31 - 1)))
        sw = sample_weight
        return TrainingSet(header, [DataSet(x[a:b], Y[a:b], None if sw is None else sw[a:b])
                                    for a, b in bounds])

    def _batch_size(self, n):
        if self.batch_size == "auto":
            return n if self.solver == "rprop" else min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped")
        return int(np.clip(self.batch_size, 1, n))

    def _run(self, net, trset, epochs, after_epoch=None):
        try:
            train(net, trset, epochs, after_epoch=after_epoch).result()
        except TrainingDiverged:
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.") from None

    def _fit_lbfgs(self, x, Y, sample_weight=None):
        net = self.net_
        net.training = self._training()
        factor = self._lbfgs_factor(Y.shape[1])
        params = net.training.params
        rows = x.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        params["lbfgs"]["scale"] = 1.0 / (factor * rows)  # the (weighted) mean objective
        if "regularization" in params:
            params["regularization"]["lambda"] *= factor
        trset = self._training_set(x, Y, None, False, sample_weight)
        with self._progress(trset, self.max_iter):
            self._run(net, trset, self.max_iter)
        self.n_iter_ = int(net.training.state.get("lbfgs_iterations", self.max_iter))
        t = trset.astype(net.dtype)
        self.loss_ = self._loss(t.x, t.y, 1, t)
        status = str(net.training.state.get("lbfgs_status", ""))
        if not status.startswith("CONVERGENCE"):  # scikit-learn: any SciPy status but 0
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status: {status})", ConvergenceWarning)

    def _lbfgs_factor(self, n_outputs):
        """synaptic's L-BFGS objective C (the summed loss plus lambda/2 ||W||^2) is
        ``factor * n`` times scikit-learn's mean objective when lambda = factor * alpha:
        1 for the classifier's cross-entropy (summed over the outputs, as scikit-learn's)."""
        return 1.0

    def _fit_stochastic(self, x, Y, incremental, sample_weight=None):
        net = self.net_
        if not incremental or net.training is None:
            net.training = self._training()  # a new optimiser, as scikit-learn's
            self._lookahead = 0.0
        self._from_lookahead()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        x_val = y_val = sw_val = None
        sw = sample_weight
        if self.early_stopping:
            stratify = Y if self._stratify() else None
            split = train_test_split(x, Y, *([] if sw is None else [sw]),
                                     random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            x, x_val, Y, y_val = split[:4]
            if sw is not None:  # the weights split with their rows
                sw, sw_val = split[4:]
            if x_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._val_targets(y_val)
        self._best_weights = [w.copy() for w in net.weights]
        n = x.shape[0]
        batch = self._batch_size(n)
        trset = self._training_set(x if sp.issparse(x) else np.ascontiguousarray(x),
                                   np.ascontiguousarray(Y), batch, self.shuffle,
                                   None if sw is None else np.ascontiguousarray(sw))
        nbatches = trset.nbatches
        lr = net.training.params.get("learning_rate")
        self.n_iter_ = 0
        epochs = 1 if incremental else self.max_iter

        def after_epoch(net):
            """scikit-learn's rules after each epoch (in the training thread): True stops."""
            self.n_iter_ += 1
            self.t_ += n
            self.loss_ = self._epoch_loss(nbatches, n, trset)
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(x_val, y_val, sw_val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                lr["epsilon"] = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self.solver == "sgd" and self.learning_rate == "adaptive" \
                        and lr["epsilon"] > 1e-6:
                    lr["epsilon"] /= 5.0  # the rate in force from the next epoch
                    self._no_improvement_count = 0
                else:
                    if self.verbose:
                        print(msg)
                    return True
            return False

        with self._progress(trset, epochs):
            self._run(net, trset, epochs, after_epoch)
        if not incremental and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                          f"reached and the optimization hasn't converged yet.",
                          ConvergenceWarning)
        if self.early_stopping:
            for w, best in zip(net.weights, self._best_weights):
                np.copyto(w, best)
        else:
            self._to_lookahead()

    def _lookahead_rate(self):
        mom = self.net_.training.params.get("momentum") if self.net_.training else None
        return float(mom["alpha"]) if mom and mom.get("nesterov") else 0.0

    def _to_lookahead(self):
        """Nesterov: the net's weights moved to scikit-learn's parameters w + momentum * v."""
        rate = self._lookahead_rate()
        velocity = self.net_.training.state.get("deltaw")
        if rate and velocity is not None:
            for w, v in zip(self.net_.weights, velocity):
                w += w.dtype.type(rate) * v
            self._lookahead = rate

    def _from_lookahead(self):
        """Back to synaptic's point before training resumes with the same velocity."""
        velocity = self.net_.training.state.get("deltaw")
        if self._lookahead and velocity is not None:
            for w, v in zip(self.net_.weights, velocity):
                w -= w.dtype.type(self._lookahead) * v
        self._lookahead = 0.0

    def _penalty(self, nbatches, n, trset=None):
        """scikit-learn's L2 term as its epoch loss averages it: alpha / (2 m) ||W||^2 per
        batch of m rows, weighted by m and divided by n; with per-row weights (``trset.w``)
        alpha / (2 s) ||W||^2 per batch of weight sum s (a batch of weight 0 left out)."""
        if not self.alpha:
            return 0.0
        total = sum(float(np.square(w[:, 1:], dtype=np.float64).sum()) for w in self.net_.weights)
        per_row = nbatches / n
        if trset is not None and trset.w is not None:
            sums = [float(np.sum(trset.w[a:b], dtype=np.float64)) for a, b in trset.batch_bounds]
            per_row = sum((b - a) / s for (a, b), s in zip(trset.batch_bounds, sums) if s) / n
        return 0.5 * self.alpha * total * per_row

    def _epoch_loss(self, nbatches, n, trset=None):
        """scikit-learn's epoch loss: the mean of the loss each batch saw before its step
        (stats.batch_loss; each batch's weighted mean on a weighted set), plus the L2 term at
        the end-of-epoch weights."""
        value = self.net_.training.stats.batch_loss[-1]
        return self._data_loss(value) + self._penalty(nbatches, n, trset)

    def _loss(self, x, Y, nbatches, trset=None):
        from ..training.stats import evaluate
        kind = self._error_kind()
        w = None if trset is None else trset.w
        value = evaluate(self.net_, x, Y, [kind], w=w)[kind]
        return self._data_loss(value) + self._penalty(nbatches, x.shape[0], trset)

    def _error_kind(self):
        from ..losses import specific_kind
        return specific_kind(self._error_fn(), self.net_.layers[-1].act)

    def _update_no_improvement_count(self, x_val, y_val, sw_val=None):
        if self.early_stopping:
            score = self._score_net(x_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_weights = [w.copy() for w in self.net_.weights]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _progress(self, trset, epochs):
        if not self.verbose:
            return _NoThreads()
        return progress.watch_progress(self.net_, trset, epochs)

    # -- predict ------------------------------------------------------------------------
    def _outputs(self, X, check_input=True):
        """The output layer's activities for ``X`` (float64)."""
        check_is_fitted(self)
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32))
        with self._threads():
            out = self.net_.predict_proba(self._as_input(X))
        return out.astype(np.float64)

    # -- pickling -----------------------------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_random_state", None)  # a fit's working state
        return state


class _NoThreads:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _fan_in(net, w):
    """The inputs of the layer whose weights are ``w``, when it is fully connected."""
    from ..layers import FullyConnected
    for layer, weights in zip(net.layers[1:], net.weights):
        if weights is w:
            return w.shape[1] - 1 if isinstance(layer, FullyConnected) else -1
    return -1
