"""The CPU level of the compiled kernels: which this CPU offers, which one is in use.

Each kernel module holds one copy per level (see c/cpu.h and c/dispatch.h); the level is
chosen once per process, at the first import of a kernel module: the best level this CPU
offers, or a lower one forced with the environment variable ``SYNAPTIC_CPU``
(``baseline``, ``avx2`` or ``avx512``).  This module itself is compiled for the baseline.
"""
import os

cdef extern from "c/cpu.h":
    int SYN_N_LEVELS
    int SYN_COMPILED_LEVELS
    const char *syn_level_names[3]
    int syn_cpu_supports(int level)

LEVELS = tuple(syn_level_names[i].decode() for i in range(SYN_N_LEVELS))
# the levels built into this package's kernel modules (1 on non-x86 machines: baseline)
COMPILED = LEVELS[:SYN_COMPILED_LEVELS]


def supported():
    """The levels this CPU can run, lowest first (whether or not they were compiled)."""
    return tuple(name for i, name in enumerate(LEVELS) if syn_cpu_supports(i))


def best():
    """The highest level that is both compiled and supported by this CPU."""
    usable = [name for name in COMPILED if name in supported()]
    # x86-64-v1 CPUs (no SSE4.2) are not supported; on other machines baseline is portable
    if not usable:
        raise ImportError("synaptic's kernels need an x86-64-v2 CPU (SSE4.2, POPCNT); "
                          f"this one offers none of the levels {COMPILED}")
    return usable[-1]


def _choose():
    forced = os.environ.get("SYNAPTIC_CPU", "").strip().lower()
    top = best()
    if not forced:
        return top
    if forced not in LEVELS:
        raise ValueError(f"SYNAPTIC_CPU={forced!r}: expected one of {', '.join(LEVELS)}")
    if LEVELS.index(forced) > LEVELS.index(top):
        raise ValueError(f"SYNAPTIC_CPU={forced!r}: this build on this CPU runs at most "
                         f"{top!r} (CPU offers {', '.join(supported())}; "
                         f"compiled: {', '.join(COMPILED)})")
    return forced


_level = None


def level():
    """The level in use by every kernel module of this process (chosen on first call)."""
    global _level
    if _level is None:
        _level = _choose()
    return _level


def level_index():
    return LEVELS.index(level())
