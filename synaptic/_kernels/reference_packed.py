"""Packed sparse inputs: the twin of dense.pyx's pack_input / packed_forward / packed_weight_grad.

An input matrix x that a whole run uses again and again (L-BFGS evaluates the same 10,000
MNIST rows 50+ times) is packed once: its nonzero values without the zeros, and bit masks
saying where they are.  The first layer's forward and weight gradient then read ~7 MB
instead of the 31 MB of x each time (read from memory, not cache: measured, that was a third
of the sparse kernels' time).  Two layouts of the same nonzeros:

* rows (for the forward): ``rmask[i, q]`` bit b set when ``x[i, 32 q + b] != 0``;
  ``rval[roff[i]:roff[i + 1]]`` the nonzeros of row i in column order.
* columns (for the weight gradient), per block of ``block`` rows (at most 64):
  ``cmask[k, j]`` bit b set when ``x[k * block + b, j] != 0``; ``cval[coff[k]:coff[k + 1]]``
  the nonzeros of block k, column after column, each column's in row order
  (so ``coff[k] = roff[k * block]``).

NaN and inf count as nonzero (they are not zeros: they must reach the sums).  ``x`` itself is
kept (not copied) for the dense fallback: it must not change while the pack is in use.
``packed_forward(p, w, act, out)`` equals ``dense_forward(p.x, w, act, out)`` and
``packed_weight_grad(dz, p, out)`` equals ``weight_grad(dz, p.x, out)`` (within float
rounding); the twins rebuild x from the packed arrays, so they check the layout too.

``PackedInput`` (the container) and the argument checks are those of ``checks.py``, shared
with the compiled kernels (dense.pyx), and re-exported here.
"""
from types import SimpleNamespace as _Kernels

import numpy as np

from . import reference_dense as _dense
from .checks import PACK_BLOCK_MAX, PackedInput  # noqa: F401
from .checks import check_pack_args as _check_pack_args
from .checks import packed_objective_steps as _packed_objective_steps


def _bits(mask, width, dtype):
    """Pack a boolean array's last axis (at most ``width`` long) into ints, bit b = index b."""
    pad = width - mask.shape[-1]
    if pad:
        mask = np.concatenate([mask, np.zeros(mask.shape[:-1] + (pad,), dtype=bool)], axis=-1)
    packed = np.packbits(mask, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.dtype(dtype).newbyteorder("<")).astype(dtype)


def pack_input(x, block):
    """The packed nonzeros of ``x`` (n x d), the column layout in blocks of ``block`` rows."""
    _check_pack_args(x, block)
    n, d = x.shape
    nw, nb = (d + 31) // 32, (n + block - 1) // block
    nz = x != 0
    rmask = _bits(nz, nw * 32, np.uint32).reshape(n, nw) if d else np.zeros((n, 0), np.uint32)
    rval = x[nz]
    if rval.base is not None:
        rval = rval.copy()
    roff = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(nz.sum(axis=1), out=roff[1:])
    # blocks of rows, padded with zero rows: (nb, block, d) -> (nb, d, block)
    zb = np.zeros((nb * block, d), dtype=bool)
    zb[:n] = nz
    zb = zb.reshape(nb, block, d).transpose(0, 2, 1)
    cmask = _bits(zb, 64, np.uint64).reshape(nb, d)
    xb = np.zeros((nb * block, d), dtype=x.dtype)
    xb[:n] = x
    cval = xb.reshape(nb, block, d).transpose(0, 2, 1)[zb]
    coff = roff[np.minimum(np.arange(nb + 1) * block, n)]
    return PackedInput(x, block, rmask, rval, roff, cmask, cval, coff, _owned=True)


def _check_packed(p):
    if not isinstance(p, PackedInput):
        raise TypeError(f"a PackedInput (from pack_input) is needed, got {type(p).__name__}")


def _rows_x(p):
    """x rebuilt from the row layout."""
    n, d = p.x.shape
    nz = np.unpackbits(p.rmask.view(np.uint8), axis=1, bitorder="little")[:, :d].astype(bool)
    x = np.zeros((n, d), dtype=p.x.dtype)
    x[nz] = p.rval
    return x


def _cols_x(p):
    """x rebuilt from the column layout."""
    n, d = p.x.shape
    nb, block = p.cmask.shape[0], p.block
    bits = np.unpackbits(p.cmask.view(np.uint8).reshape(nb, d, 8), axis=2, bitorder="little")
    zb = bits[:, :, :block].astype(bool)                 # (nb, d, block)
    xb = np.zeros((nb, d, block), dtype=p.x.dtype)
    xb[zb] = p.cval
    return xb.transpose(0, 2, 1).reshape(nb * block, d)[:n].copy()


def packed_forward(p, w, act, out, slope=_dense.LEAKY_SLOPE):
    """out = f([1 | x] . w^T) for the packed x: as ``dense_forward(p.x, w, act, out, slope)``."""
    _check_packed(p)
    if not isinstance(w, np.ndarray) or w.dtype != p.x.dtype:
        raise TypeError(f"w must be a {p.x.dtype.name} array like the packed x")
    _dense.dense_forward(_rows_x(p), w, act, out, slope)


def packed_weight_grad(dz, p, out):
    """out = dz^T . [1 | x] for the packed x: as ``weight_grad(dz, p.x, out)``."""
    _check_packed(p)
    if not isinstance(dz, np.ndarray) or dz.dtype != p.x.dtype:
        raise TypeError(f"dz must be a {p.x.dtype.name} array like the packed x")
    _dense.weight_grad(dz, _cols_x(p), out)


def packed_objective(p, w1, w2, t, act1, act2, kind, err, y, g1, g2, slope1=_dense.LEAKY_SLOPE,
                     slope2=_dense.LEAKY_SLOPE):
    """A two-layer dense net (input -> hidden ``act1`` -> output ``act2``) on the packed x:
    fills ``y`` (the outputs), ``g1``, ``g2`` (Σ dE/dW of each layer) and returns the error of
    kind ``err`` over the rows: packed_forward, output_backprop (output-delta ``kind``),
    packed_weight_grad."""
    _check_packed(p)
    for name, a in (("w1", w1), ("w2", w2), ("t", t)):
        if not isinstance(a, np.ndarray) or a.dtype != p.x.dtype:
            raise TypeError(f"{name} must be a {p.x.dtype.name} array like the packed x")
    if w1.ndim != 2 or w2.ndim != 2 or w2.shape[1] != 1 + w1.shape[0]:
        raise ValueError(f"w2 has shape {getattr(w2, 'shape', None)}, expected "
                         f"(o2, 1 + {w1.shape[0] if w1.ndim == 2 else '?'})")
    twin = _Kernels(packed_forward=packed_forward, output_backprop=_dense.output_backprop,
                    packed_weight_grad=packed_weight_grad)
    return _packed_objective_steps(twin, p, w1, w2, t, act1, act2, kind, err, y, g1, g2, slope1,
                                   slope2)
