"""Early stopping: ``params["early_stopping"] = {"errorkind": "cross-entropy", "patience": 10,
"min_delta": 0.0, "restore_best": True}``.

After each epoch's stats, the validation error of ``errorkind`` (default the error_fn; it must
be recorded, see ``stats.errorkinds``) is compared with the best so far: an improvement of more
than ``min_delta`` makes the epoch the best (and, with ``restore_best``, copies its weights);
``patience`` epochs in a row without one stop the training (Keras' rule: patience 0 stops at
the first epoch that does not improve).  Then, with ``restore_best``, the best epoch's weights
are put back.  ``stats.early_stopping`` records ``{"stopped_epoch", "best_epoch", "best",
"errorkind", "restored"}`` (epochs counted from 1, as ``stats.epochs``) and is saved with the
net.  The counters (``es_best``, ``es_best_epoch``, ``es_wait``) and the best weights
(``es_weights``) are optimiser state, so a net saved in the middle resumes exactly; a training
that stopped early clears them, so the next ``train`` starts counting afresh.
"""
import math

import numpy as np

from .. import distributed
from .optimizer import recorded_kind
from .schedules import better

KEYS = ("es_best", "es_best_epoch", "es_wait", "es_weights")


class EarlyStopping:
    def __init__(self, net, data):
        spec = net.training.params["early_stopping"]
        self.net = net
        self.kind = recorded_kind(net, spec.get("errorkind", net.training.params["error_fn"]),
                                  "early stopping")
        self.patience = int(spec.get("patience", 10))
        self.min_delta = float(spec.get("min_delta", 0.0))
        self.restore_best = bool(spec.get("restore_best", True))
        if not distributed.holds_validation(data):  # distributed: rank 0's
            raise ValueError("early_stopping watches the validation set, and this training set "
                             "has none (training_set(..., nvalid=...))")

    def after_epoch(self):
        """Called after an epoch's stats; True when the training should stop (then call
        :meth:`stop`, which puts the best weights back)."""
        net = self.net
        state, stats = net.training.state, net.training.stats
        value = stats.val_err[self.kind][-1]
        best = state.get("es_best")
        if math.isfinite(value) and (best is None or better(self.kind, value, best,
                                                             self.min_delta)):
            state["es_best"], state["es_best_epoch"], state["es_wait"] = float(value), stats.epochs, 0
            if self.restore_best:
                saved = state.get("es_weights")
                if saved is None:
                    state["es_weights"] = [w.copy() for w in net.weights]
                else:
                    for buf, w in zip(saved, net.weights):
                        np.copyto(buf, w)
            return False
        state["es_wait"] = state.get("es_wait", 0) + 1
        return state["es_wait"] >= self.patience

    def stop(self):
        net = self.net
        state, stats = net.training.state, net.training.stats
        restored = self.restore_best and state.get("es_weights") is not None
        if restored:
            for w, buf in zip(net.weights, state["es_weights"]):
                np.copyto(w, buf)
        stats.early_stopping = {"stopped_epoch": stats.epochs,
                                "best_epoch": state.get("es_best_epoch"),
                                "best": state.get("es_best"), "errorkind": self.kind,
                                "restored": restored}
        for key in KEYS:
            state.pop(key, None)
