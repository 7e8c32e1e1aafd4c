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
"""
import numpy as np

PACK_BLOCK_MAX = 64


class PackedInput:
    """The packed nonzeros of ``x`` (see the module docstring); built by ``pack_input``.

    The constructor checks that the arrays agree with each other (shapes, dtypes, offsets
    against the masks' bit counts) and makes them read-only, so a kernel can trust them."""

    FIELDS = ("rmask", "rval", "roff", "cmask", "cval", "coff")

    def __init__(self, x, block, rmask, rval, roff, cmask, cval, coff, *, _owned=False):
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype not in (np.float32, np.float64):
            raise TypeError("x must be a 2-D float32 or float64 array")
        if not x.flags.c_contiguous:
            raise ValueError("x must be C-contiguous")
        block = int(block)
        if not 1 <= block <= PACK_BLOCK_MAX:
            raise ValueError(f"block must be in 1..{PACK_BLOCK_MAX}, got {block}")
        n, d = x.shape
        nw, nb = (d + 31) // 32, (n + block - 1) // block
        expected = {"rmask": (np.uint32, (n, nw)), "roff": (np.int64, (n + 1,)),
                    "cmask": (np.uint64, (nb, d)), "coff": (np.int64, (nb + 1,))}
        arrays = dict(rmask=rmask, rval=rval, roff=roff, cmask=cmask, cval=cval, coff=coff)
        for name, (dtype, shape) in expected.items():
            a = arrays[name]
            if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
                raise ValueError(f"{name} must be a {np.dtype(dtype).name} array of shape {shape}")
        nnz = int(roff[-1])
        for name in ("rval", "cval"):
            a = arrays[name]
            if not isinstance(a, np.ndarray) or a.dtype != x.dtype or a.shape != (nnz,):
                raise ValueError(f"{name} must be a {x.dtype.name} array of shape ({nnz},)")
        if not _owned:  # pack_input's own arrays agree by construction (tested)
            self._check_counts(x, block, rmask, roff, cmask, coff, nnz)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "block", block)
        for name, a in arrays.items():
            if not _owned:          # the caller's arrays stay theirs (and writable)
                a = a.copy()
            a.flags.writeable = False
            object.__setattr__(self, name, a)

    @staticmethod
    def _check_counts(x, block, rmask, roff, cmask, coff, nnz):
        """The offsets and counts against the masks' bits (what the kernels' walks rely on)."""
        n, d = x.shape
        nb = (n + block - 1) // block
        if roff[0] != 0 or not np.array_equal(np.diff(roff),
                                              np.bitwise_count(rmask).sum(axis=1, dtype=np.int64)):
            raise ValueError("roff does not match the bit counts of rmask")
        if (coff[0] != 0 or coff[-1] != nnz
                or not np.array_equal(np.diff(coff),
                                      np.bitwise_count(cmask).sum(axis=1, dtype=np.int64))):
            raise ValueError("coff does not match the bit counts of cmask")
        if d % 32 and n and (rmask[:, -1] >> np.uint32(d % 32)).any():
            raise ValueError("rmask has bits beyond the last column")
        if n % block and nb and (cmask[-1] >> np.uint64(n % block)).any():
            raise ValueError("cmask has bits beyond the last row")

    def __setattr__(self, name, value):
        raise AttributeError("a PackedInput cannot be changed (pack x again)")

    @property
    def shape(self):
        return self.x.shape

    @property
    def dtype(self):
        return self.x.dtype

    @property
    def nnz(self):
        return self.rval.shape[0]

    def __repr__(self):
        n, d = self.x.shape
        return f"PackedInput({n} x {d} {self.x.dtype.name}, {self.nnz} nonzeros, block {self.block})"


def _check_pack_args(x, block):
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise TypeError("x must be a 2-D numpy array")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)):
        raise TypeError(f"block must be an int, got {type(block).__name__}")
    if not 1 <= block <= PACK_BLOCK_MAX:
        raise ValueError(f"block must be in 1..{PACK_BLOCK_MAX}, got {block}")


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


def packed_forward(p, w, act, out):
    """out = f([1 | x] . w^T) for the packed x: as ``dense_forward(p.x, w, act, out)``."""
    from .reference import dense_forward
    _check_packed(p)
    if not isinstance(w, np.ndarray) or w.dtype != p.x.dtype:
        raise TypeError(f"w must be a {p.x.dtype.name} array like the packed x")
    dense_forward(_rows_x(p), w, act, out)


def packed_weight_grad(dz, p, out):
    """out = dz^T . [1 | x] for the packed x: as ``weight_grad(dz, p.x, out)``."""
    from .reference import weight_grad
    _check_packed(p)
    if not isinstance(dz, np.ndarray) or dz.dtype != p.x.dtype:
        raise TypeError(f"dz must be a {p.x.dtype.name} array like the packed x")
    weight_grad(dz, _cols_x(p), out)


def packed_objective(p, w1, w2, t, act1, act2, kind, err, y, g1, g2):
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
    from . import reference         # the whole twin (it imports this module's kernels)
    return _packed_objective_steps(reference, p, w1, w2, t, act1, act2, kind, err, y, g1, g2)


def _packed_objective_steps(kern, p, w1, w2, t, act1, act2, kind, err, y, g1, g2):
    """packed_objective as three calls into the backend ``kern`` (the twin; the native
    kernel's fallback)."""
    h = np.empty((p.x.shape[0], w1.shape[0]), dtype=p.x.dtype)
    dh = np.empty_like(h)
    dz = np.empty((p.x.shape[0], w2.shape[0]), dtype=p.x.dtype)
    kern.packed_forward(p, w1, act1, h)
    error = kern.output_backprop(h, w2, t, act2, kind, err, act1, y, dz, g2, dh)
    kern.packed_weight_grad(dh, p, g1)
    return error
