"""Training: params, the loop, and one module per algorithm."""
from .divergence import TrainingDiverged
from .gradients import error_derivatives
from .loop import stop_training, train
from .params import Stats, Training, training
from .stats import accuracy, training_error

# The public docstrings of the loop's two entry points, with the package's other numpydoc
# docstrings; loop.py keeps its one-line summaries for readers of that module.
train.__doc__ = """Train ``net`` on ``trset`` for ``epochs`` more epochs in a background thread.

The loop follows the original (SYNAPTIC.md §6): the state is ``training`` before ``train``
returns, the batches are trained in order (no reshuffle), the stats are computed at each
epoch's end with the kinds of ``params["stats"]["errorkinds"]`` (and, with
``params["stats"]["batch_loss"]``, the loss each batch saw is summed during the epoch), every transition notifies the
watches, and the training set's labels and name are stored on the net.  Without a watch that
wants every batch, a dense backprop net trains each epoch in one kernel call (unless its
batches are big enough for the per-layer kernels to be faster: strategy.py).

Parameters
----------
net : Net
    A net with a training (see :func:`training`), idle.
trset : TrainingSet
    Labeled, with as many values per sample as the net has inputs and as many classes as it
    has outputs (converted once to the net's dtype).
epochs : int
    The number of epochs to add (stats accumulate across calls).
after_epoch : callable, optional
    Called with the net in the training thread after each epoch's stats are recorded (and
    after early stopping's test); a true result ends the training there.  It may change
    ``net.training.params["learning_rate"]["epsilon"]``: the base rate of the epochs after
    it.  An exception it raises ends the training and reaches ``future.result()``.  Not for
    L-BFGS (ValueError), whose iterations end on its own tests.

Returns
-------
concurrent.futures.Future
    Its result is the net; an exception raised by the training is re-raised by
    ``future.result()``, and the net is left usable (state reset, the weights of the last
    whole batch).  A NaN or infinite weight or training loss raises
    :class:`TrainingDiverged` there (naming the epoch and the batch; the net keeps the
    weights from before that batch), or with ``params["on_nonfinite"]`` "stop" ends the
    training with a RuntimeWarning and ``stats.diverged``; "ignore" checks nothing.  Each
    epoch is checked once, at its end (see synaptic/training/divergence.py).

Raises
------
ValueError
    No training, a negative ``epochs``, data that does not fit the net, params the algorithm
    cannot use.
TypeError
    ``trset`` is not a TrainingSet, ``after_epoch`` is not callable.
RuntimeError
    The net is already training.

Unless ``on_nonfinite`` is "ignore", a net whose weights hold NaN or infinity is refused
(ValueError).

Examples
--------
>>> import synaptic as syn
>>> trset = syn.training_set([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, [0, 1, 1, 0] * 10, seed=0)
>>> net = syn.mlp([2, 4, 2], ["tanh", "softmax"], syn.training("rprop"), seed=1)
>>> future = syn.train(net, trset, 50)
>>> future.result() is net, net.stats.epochs
(True, 50)
"""

stop_training.__doc__ = """Ask a training net to stop before its next batch.

L-BFGS stops before its next function evaluation and keeps the best weights evaluated.  The
Future of :func:`train` then completes normally.

Parameters
----------
net : Net
    The net.

Returns
-------
Net or None
    The net when it was training (its state becomes ``stopping``), else None.

Examples
--------
>>> import synaptic as syn
>>> syn.stop_training(syn.mlp([2, 1], "sigmoid")) is None  # idle: nothing to stop
True
"""
