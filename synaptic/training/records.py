"""The records of a training: its Stats and the Training itself (params.py builds them)."""
from dataclasses import dataclass, field


@dataclass
class Stats:
    """Per-epoch records; they persist across train calls (epochs accumulate).

    Parameters
    ----------
    epochs : int, default 0
        The epochs trained.
    tr_err : dict, default {}
        ``{kind: [value per epoch]}`` on the training set.
    val_err : dict, default {}
        The same on the validation set (empty without one).
    seconds : list, default []
        The training time of each epoch.
    learning_rate : list, default []
        The learning rate in force during each epoch (algorithms with one).
    batch_loss : list, default []
        With ``stats.batch_loss``: each epoch's mean over its training rows of the error_fn's
        loss (summed over the outputs) as each batch saw it, before its step.
    early_stopping : dict, optional
        Where early stopping ended the last training: ``{"stopped_epoch", "best_epoch",
        "best", "errorkind", "restored"}``; None if it did not.
    diverged : dict, optional
        Where the last training that diverged did (``on_nonfinite`` "raise" or "stop"):
        ``{"epoch": int, "batch": int or None, "what": str}``, as the attributes of
        :class:`TrainingDiverged`; None if none did.

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.Stats(1, {"accuracy": [0.9]}, {}, [0.1]).tr_err["accuracy"][-1]
    0.9
    """
    epochs: int = 0
    tr_err: dict = field(default_factory=dict)   # kind -> [value per epoch]
    val_err: dict = field(default_factory=dict)  # kind -> [value per epoch] (empty without a validation set)
    seconds: list = field(default_factory=list)  # wall time of each epoch's training
    diverged: dict = None  # {"epoch", "batch", "what"} of the last divergence (divergence.py)
    learning_rate: list = field(default_factory=list)  # the rate of each epoch (schedules.py)
    early_stopping: dict = None  # where early stopping ended the last training
    batch_loss: list = field(default_factory=list)  # the loss the batches saw (stats.batch_loss)


@dataclass
class Training:
    """``algo``, ``params`` (defaults deep-merged with the user's), the optimiser ``state`` and
    ``stats``.  Build one with :func:`training`, which validates the params.

    Parameters
    ----------
    algo : str
        One of perceptron, backprop, rprop, rmsprop, lbfgs.
    params : dict
        The merged params.
    state : dict, default {}
        The optimiser state (``deltaw``, ``lr_gain``, ...), saved with the net.
    stats : Stats, optional
        Created when training starts.

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.training("rprop").params["rprop"]
    {'mins': 1e-06, 'maxs': 50.0}
    """
    algo: str
    params: dict
    state: dict = field(default_factory=dict)
    stats: Stats = None
