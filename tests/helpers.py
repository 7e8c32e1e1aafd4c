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


@contextlib.contextmanager
def forced_threads(n):
    """``n`` threads; with n > 1 the native dense / loss / update / conv / pool kernels run
    their OpenMP loops and split their GEMMs at every size (so that small test shapes
    exercise them)."""
    native = _kernels.native
    with synaptic.num_threads(n):
        if n == 1 or native is None:
            yield
            return
        mods = (native.dense, native.loss, native.update)
        old = [(m, m._set_parallel_threshold(0, 0)) for m in mods]
        old_conv = [(m, m._set_parallel_threshold(0)) for m in (native.conv, native.pool)]
        gemm_old = native.dense._set_gemm_threshold(0)
        try:
            yield
        finally:
            for m, o in old:
                m._set_parallel_threshold(*o)
            for m, o in old_conv:
                m._set_parallel_threshold(o)
            native.dense._set_gemm_threshold(gemm_old)
