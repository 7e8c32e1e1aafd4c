"""The compiled backend: the Cython modules gathered under the twin's names."""
from .reference import *  # noqa: F401,F403  (the constants: ACT_*, ERR_*, DELTA_*, REG_*)
from .dense import (activate, dense_forward, derivative, fused_objective,  # noqa: F401
                    hidden_delta, output_backprop, pack_input, packed_forward, packed_objective,
                    packed_weight_grad, sgd_epoch,
                    weight_grad)
from .loss import argmax_rows, dropout, error_sum, output_delta  # noqa: F401
from .update import (adam_update, add_scaled, decay_weights, perceptron_error,  # noqa: F401
                     regularize, rmsprop_update, rprop_update, sgd_update)
from .conv import conv_forward, conv_input_grad, conv_weight_grad  # noqa: F401
from .pool import avg_pool, avg_pool_backward, max_pool, max_pool_backward  # noqa: F401
from .checks import x_zeros  # noqa: F401
from .csr import csr_forward, csr_weight_grad  # noqa: F401
from . import conv, csr, dense, loss, pool, update

_MODULES = (dense, loss, update, conv, pool, csr)


def set_threads(n):
    """Set the OpenMP thread count of every compiled kernel."""
    n = int(n)
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    for module in _MODULES:
        module.set_threads(n)
