"""Kernel backends: ``native`` (compiled Cython/OpenMP) and ``numpy`` (the reference twin).

The compiled modules hold one copy per CPU level, the best this CPU offers chosen at their
first import (``_cpu``; ``SYNAPTIC_CPU=baseline|avx2|avx512`` forces a lower one).
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


def cpu_info():
    """The CPU level of the compiled kernels: {"level": in use (None without them),
    "supported": the levels this CPU offers, "compiled": the levels built in}."""
    try:
        from . import _cpu
    except ImportError:
        return {"level": None, "supported": [], "compiled": []}
    return {"level": _cpu.level() if native is not None else None,
            "supported": list(_cpu.supported()), "compiled": list(_cpu.COMPILED)}


def native_error():
    return _NATIVE_ERROR
