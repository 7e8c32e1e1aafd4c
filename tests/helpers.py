"""Small shared helpers for the tests."""
import contextlib

import numpy as np

import synaptic
from synaptic import _kernels

BACKENDS = ["numpy"] + (["native"] if _kernels.native is not None else [])


@contextlib.contextmanager
def using(backend_name):
    with synaptic.backend(backend_name):
        yield


def set_weights(net, *weights):
    for target, w in zip(net.weights, weights):
        target[...] = np.asarray(w, dtype=net.dtype)
