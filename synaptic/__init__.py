"""synaptic: feed-forward neural networks on Cython/OpenMP kernels.

A port of the Clojure library Synaptic: ``mlp``, ``neural_net``, ``training``, ``train``,
``stop_training``, ``estimate`` and the data-set functions, with the original's numbers and
its bugs fixed (see README.md).  Every public name has a numpydoc docstring;
``help(synaptic.training)`` lists the algorithms and every option with its default.

Files: saved nets and training sets live in the data folder (``$SYNAPTIC_DATA``, else
``./data``); the MNIST t10k files are looked for in ``$SYNAPTIC_MNIST_DIR``, the data folder,
then ``../shared/data/mnist`` beside the source checkout (see :mod:`synaptic.datafolder`).

Examples
--------
>>> import numpy as np, synaptic as syn
>>> trset = syn.training_set([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, [0, 1, 1, 0] * 10, seed=0)
>>> net = syn.mlp([2, 4, 2], ["tanh", "softmax"], syn.training("rprop"), seed=1)
>>> syn.train(net, trset, 100).result().stats.epochs
100
"""
from ._config import (adaptive_threads, backend, get_backend, get_num_threads, num_threads,
                      set_adaptive_threads, set_backend, set_num_threads, show_config)
from .api import estimate, mlp, net_activities, neural_net
from .datasets import (DataSet, DataWarning, TrainingSet, dataset, load_training_set, mnist5k, mnist10k,
                       read_labeledsamples_csv, read_labels_idx, read_samples_csv,
                       read_samples_idx, test_set, training_set)
from .net import Net, NetState
from .training import (Stats, Training, TrainingDiverged, accuracy, error_derivatives,
                       stop_training, train, training, training_error)
from .utils import histogram, weight_histograms
from .persist import (FileFormatError, load_neural_net, load_training_set_header,
                      save_neural_net, save_training_set)
from .progress import TrainingStats, watch_progress

__version__ = "0.1.0"

__all__ = [
    "DataSet", "DataWarning", "FileFormatError", "Net", "NetState", "Stats", "Training",
    "TrainingDiverged", "TrainingSet", "TrainingStats", "accuracy", "adaptive_threads",
    "backend", "dataset", "error_derivatives", "estimate", "get_backend", "get_num_threads",
    "histogram", "load_neural_net",
    "load_training_set", "load_training_set_header", "mlp", "mnist10k", "mnist5k",
    "net_activities", "neural_net", "num_threads", "read_labeledsamples_csv", "read_labels_idx",
    "read_samples_csv", "read_samples_idx", "save_neural_net", "save_training_set",
    "set_adaptive_threads", "set_backend", "set_num_threads", "show_config", "stop_training",
    "test_set", "train",
    "training", "training_error", "training_set", "watch_progress", "weight_histograms",
]
