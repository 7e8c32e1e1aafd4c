"""The constructor parameters both estimators document (numpydoc, shared text)."""

COMMON = """hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
    The ith element is the number of units in the ith hidden layer.
activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
    The hidden layers' activation (synaptic's linear, sigmoid, tanh, relu).
solver : {'lbfgs', 'sgd', 'adam', 'rprop', 'rmsprop'}, default='adam'
    'sgd' is synaptic's backprop (momentum, Nesterov), 'adam' its Adam with
    scikit-learn's epsilon convention, 'lbfgs' SciPy's L-BFGS-B on the whole set, 'rprop'
    (full batch by default) and 'rmsprop' synaptic's own.
alpha : float, default=0.0001
    L2 strength: ``alpha / (2 m) * ||W||^2`` per batch of m rows, biases exempt.
batch_size : int or 'auto', default='auto'
    'auto' is ``min(200, n_samples)`` (the whole set for rprop and lbfgs).
learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
    The schedule of 'sgd' (scikit-learn's rules, applied between epochs).
learning_rate_init : float, default=0.001
    The initial learning rate (sgd, adam, rmsprop).
power_t : float, default=0.5
    The exponent of 'invscaling'.
max_iter : int, default=200
    Epochs (stochastic solvers) or iterations (lbfgs).
shuffle : bool, default=True
    A new batch order every epoch (synaptic's reshuffle, seeded from random_state).
random_state : int, RandomState instance or None, default=None
    The initial weights (the same draws as scikit-learn's), the validation split and the
    shuffling seed.
tol : float, default=1e-4
    The improvement of the loss or validation score that counts (and the L-BFGS stop test).
verbose : bool, default=False
    Show synaptic's progress bar (synaptic.watch_progress) and the loss of each epoch.
warm_start : bool, default=False
    Start from the previous fit's weights (a new optimiser state, as scikit-learn).
momentum : float, default=0.9
    The momentum of 'sgd', in [0, 1).
nesterovs_momentum : bool, default=True
    Nesterov's momentum (sgd with momentum > 0).
early_stopping : bool, default=False
    Hold out ``validation_fraction`` of the data and stop when its score does not improve
    by ``tol`` for ``n_iter_no_change`` epochs; the best epoch's weights are kept.
validation_fraction : float, default=0.1
    The held-out fraction with early_stopping.
beta_1, beta_2 : float, default=0.9, 0.999
    Adam's decay rates.
epsilon : float, default=1e-8
    Adam's (and RMSprop's) epsilon.
n_iter_no_change : int, default=10
    The epochs without improvement tolerated.
max_fun : int, default=15000
    The most loss function evaluations of 'lbfgs' (SciPy's maxfun, as scikit-learn's).
rprop_variant : {'rprop-', 'rprop+', 'irprop-', 'irprop+'}, default='rprop-'
    The R-prop variant (solver='rprop').
adaptive_gains : bool, default=False
    Per-weight adaptive gains on the learning rate (sgd, rmsprop).
weight_decay : float, default=0.0
    Decoupled weight decay (AdamW with adam), besides ``alpha``.
dtype : {'float32', 'float64'}, default='float32'
    The dtype of the weights and of every computation (L-BFGS runs in float64).
n_threads : int, default=None
    The kernels' threads during fit and predict (None: synaptic's setting).
layers : list of dict, default=None
    synaptic layer specs (input and hidden layers, see synaptic.neural_net), e.g. an
    input with a ``fieldsize`` and convolution layers; the output layer is added.
    Overrides hidden_layer_sizes."""

ATTRIBUTES = """loss_ : float
    The loss of the last epoch: stochastic solvers, the mean of the losses its batches saw
    (as scikit-learn's), the L2 term at the end-of-epoch weights; lbfgs, the loss at the
    final weights.
best_loss_ : float or None
    The lowest loss_ (None with early_stopping).
loss_curve_ : list of float
    loss_ after each epoch (stochastic solvers).
validation_scores_ : list of float or None
    The validation score after each epoch with early_stopping.
best_validation_score_ : float or None
    The best of them.
t_ : int
    Training samples seen.
coefs_ : list of ndarray
    ``coefs_[i]`` of shape (n_in, n_out): views of ``net_.weights[i][:, 1:].T``.
intercepts_ : list of ndarray
    Views of ``net_.weights[i][:, 0]``.
n_features_in_ : int
    The number of features seen in fit.
feature_names_in_ : ndarray of shape (n_features_in_,)
    The feature names seen in fit (string column names only).
n_iter_ : int
    Epochs (or L-BFGS iterations) of the last fit.
n_layers_ : int
    Layers, input and output included.
n_outputs_ : int
    Output units.
out_activation_ : str
    The output activation ('softmax', 'logistic' or 'identity').
net_ : synaptic.Net
    The trained net."""
