"""synaptic: feed-forward neural networks on Cython/OpenMP kernels.

A port of the Clojure library Synaptic: ``mlp``, ``neural_net``, ``training``, ``train``,
``stop_training``, ``estimate`` and the data-set functions, with the original's numbers and
its bugs fixed (see README.md).
"""
from ._config import (backend, get_backend, get_num_threads, num_threads, set_backend,
                      set_num_threads, show_config)
from .api import estimate, mlp, net_activities, neural_net
from .datasets import (DataSet, TrainingSet, dataset, load_training_set, mnist5k, mnist10k,
                       read_labeledsamples_csv, read_labels_idx, read_samples_csv,
                       read_samples_idx, test_set, training_set)
from .net import Net, NetState
from .training import (Stats, Training, accuracy, error_derivatives, stop_training, train,
                       training, training_error)
from .utils import histogram, weight_histograms
from .persist import (FileFormatError, load_neural_net, load_training_set_header,
                      save_neural_net, save_training_set)
from .progress import TrainingStats, watch_progress

__version__ = "0.1.0"
