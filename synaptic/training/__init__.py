"""Training: params, the loop, and one module per algorithm."""
from .gradients import error_derivatives
from .loop import stop_training, train
from .params import Stats, Training, training
from .stats import accuracy, training_error
