"""CSR inputs of a first fully-connected layer: the twin of csr.pyx's csr_forward and
csr_weight_grad (the conventions: csr.pyx's docstring).

The CSR rows X are given as SciPy's three arrays ``data``, ``indices``, ``indptr`` (m + 1
offsets; ``indptr[0]`` need not be 0, so that ``indptr[a:b + 1]`` addresses rows a..b-1 of a
larger matrix without a copy).  ``csr_forward(data, indices, indptr, w, act, out, slope)``
equals ``dense_forward(X.toarray(), w, act, out, slope)`` and
``csr_weight_grad(dz, data, indices, indptr, out)`` equals ``weight_grad(dz, X.toarray(),
out)`` (within float rounding; an entry not stored contributes nothing, as in SciPy).
"""
import numpy as np
import scipy.sparse as sp

from . import reference_dense as _dense

__all__ = ["csr_forward", "csr_weight_grad"]


def _float(a, name, ndim):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} has dtype {a.dtype}, expected float32 or float64")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous, got strides {a.strides}")


def _index(a, name):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype not in (np.int32, np.int64):
        raise TypeError(f"{name} has dtype {a.dtype}, expected int32 or int64")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")


def _same(ref, ref_name, a, name):
    if a.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but {ref_name} has dtype {ref.dtype}: "
                        f"all arrays must share one dtype (float32 or float64)")


def _matrix(data, indices, indptr, m, d):
    """The checked CSR rows as a SciPy matrix (m x d, indptr from 0)."""
    _index(indices, "indices")
    _index(indptr, "indptr")
    if indptr.dtype != indices.dtype:
        raise TypeError(f"indptr has dtype {indptr.dtype} but indices has dtype "
                        f"{indices.dtype}: they must share one integer type")
    nnz = data.shape[0]
    if indices.shape[0] != nnz:
        raise ValueError(f"indices has {indices.shape[0]} entries, data has {nnz}")
    if indptr.shape[0] != m + 1:
        raise ValueError(f"indptr has {indptr.shape[0]} entries, expected {m + 1} (rows + 1)")
    p = indptr.astype(np.int64)
    bad = np.flatnonzero(np.concatenate([[p[0] < 0 or p[0] > nnz],
                                         (np.diff(p) < 0) | (p[1:] > nnz)]))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"indptr[{i}] = {indptr[i]}: indptr must rise monotonically from "
                         f"indptr[0] >= 0 to indptr[{m}] <= {nnz} (the entries)")
    a, b = int(p[0]), int(p[-1])
    cols = indices[a:b]
    out = np.flatnonzero((cols < 0) | (cols >= d))
    if out.size:
        k = a + int(out[0])
        raise ValueError(f"indices[{k}] = {indices[k]} is not a column of 0..{d - 1}")
    return sp.csr_matrix((data[a:b], cols.astype(np.int64), p - a), shape=(m, d))


def csr_forward(data, indices, indptr, w, act, out, slope=_dense.LEAKY_SLOPE):
    """out = f(X . w[:, 1:]^T + w[:, 0]) for the CSR rows X (``data``, ``indices``,
    ``indptr``: m rows of d = w.shape[1] - 1 columns); ``w`` o x (1 + d), ``out`` m x o."""
    _float(w, "w", 2)
    _float(data, "data", 1)
    _same(w, "w", data, "data")
    _float(out, "out", 2)
    _same(w, "w", out, "out")
    if w.shape[1] < 1:
        raise ValueError(f"w has shape {w.shape}: it needs a bias column")
    m, o, d = out.shape[0], w.shape[0], w.shape[1] - 1
    _dense._check_shape("out", out, (m, o))
    _dense._check_act(act, slope)
    x = _matrix(data, indices, indptr, m, d)
    out[...] = x @ w[:, 1:].T
    out += w[:, 0]
    _dense.activate(out, act, out, slope)


def csr_weight_grad(dz, data, indices, indptr, out):
    """out = dz^T . [1 | X] for the CSR rows X (m rows of d = out.shape[1] - 1 columns),
    summed over the rows, overwritten: ``out[:, 0]`` the bias gradient; ``dz`` m x o."""
    _float(dz, "dz", 2)
    _float(data, "data", 1)
    _same(dz, "dz", data, "data")
    _float(out, "out", 2)
    _same(dz, "dz", out, "out")
    m, o = dz.shape
    if out.shape[0] != o or out.shape[1] < 1:
        raise ValueError(f"out has shape {out.shape}, expected ({o}, 1 + d)")
    x = _matrix(data, indices, indptr, m, out.shape[1] - 1)
    out[:, 0] = dz.sum(axis=0, dtype=np.float64)
    out[:, 1:] = (x.T @ dz).T
