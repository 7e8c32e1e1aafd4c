"""Activation functions by name (SYNAPTIC.md §2.4): an explicit registry, no name lookup magic.

The registry is the table of ``synaptic._kernels.acts`` (one row per activation: name,
aliases, kernel code, NumPy forward and derivative, whether backprop can differentiate it,
the error functions it pairs with, its options); this module reads it.  ``binary-stochastic``
is the sigmoid followed by a draw from the net's random generator; it and the threshold
units are forward-only.  ``leaky-relu`` takes a ``slope`` option (a layer spec key; default
0.01), the other activations none.
"""
from ._kernels import acts as _table

STOCHASTIC = "binary-stochastic"

CODES = {row.name: row.code for row in _table.TABLE}
ALIASES = dict(_table.ALIASES)

# Activations backprop can differentiate (through the output y).  A softmax hidden layer
# uses the original's diagonal approximation y(1 - y), which is not its true Jacobian.
DIFFERENTIABLE = frozenset(row.name for row in _table.TABLE if row.backprop)


def canonical(name):
    """The registry spelling of an activation name; accepts ``foo_bar`` and ``:foo-bar``."""
    if not isinstance(name, str):
        raise TypeError(f"an activation is named by a string, got {type(name).__name__}")
    key = name.lstrip(":").replace("_", "-").lower()
    key = ALIASES.get(key, key)
    if key not in CODES:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(CODES))}")
    return key


def code(name):
    return CODES[canonical(name)]


def row(name):
    """The table row of an activation (any accepted spelling)."""
    return _table.BY_NAME[canonical(name)]


def options(name, given, where="layer"):
    """The activation's options: its defaults updated with ``given`` (a dict of layer-spec
    keys), each checked; a ValueError for an option it does not take."""
    act = row(name)
    unknown = sorted(set(given) - set(act.options))
    if unknown:
        takes = (f"it takes {', '.join(sorted(act.options))}" if act.options
                 else "it takes none")
        raise ValueError(f"{where}: activation {act.name!r} has no option(s) {unknown}; {takes}")
    opts = dict(act.options)
    opts.update(given)
    if "slope" in opts:
        try:
            opts["slope"] = _table.check_slope(opts["slope"])
        except (TypeError, ValueError) as e:
            raise type(e)(f"{where}: {e}") from None
    return opts


OPTION_KEYS = frozenset(key for r in _table.TABLE for key in r.options)


def apply_stochastic(out, rng):
    """Turn sigmoid outputs into binary samples in place: 1 where u < p (u ~ U[0,1))."""
    u = rng.random(out.shape)
    out[...] = u < out
