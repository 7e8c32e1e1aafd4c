"""Kernel backends: ``native`` (compiled Cython/OpenMP) and ``numpy`` (the reference twin).

Both expose the same functions with the same signatures (see ``reference.py``).  Layers
fetch the active backend with :func:`get_backend` and call into it; nothing else here knows
about nets or training.
"""
from . import reference

try:
    from . import native
    _NATIVE_ERROR = None
except ImportError as exc:  # not built: the twin still works, and show_config says why
    native = None
    _NATIVE_ERROR = exc

BACKENDS = {"numpy": reference}
if native is not None:
    BACKENDS["native"] = native

_active = native if native is not None else reference


def get_backend():
    """The module of kernels in use."""
    return _active


def backend_name():
    return "native" if _active is native and native is not None else "numpy"


def set_backend(name):
    """Select ``"native"`` or ``"numpy"`` for every kernel call made after this."""
    global _active
    if name not in ("native", "numpy"):
        raise ValueError(f"unknown backend {name!r}: expected 'native' or 'numpy'")
    if name == "native" and native is None:
        raise RuntimeError(f"the native backend is not built: {_NATIVE_ERROR}")
    _active = BACKENDS[name]


def native_error():
    return _NATIVE_ERROR
