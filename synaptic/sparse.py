"""Sparse samples: ``CsrRows``, the rows of a CSR matrix as the kernels take them.

A data set's ``x`` may be a SciPy sparse matrix (any format: converted to CSR once).  It is
kept sparse all the way into the kernels: the first fully-connected layer runs
``csr_forward`` / ``csr_weight_grad`` (synaptic/_kernels/csr.pyx) on its three arrays, and
only the activities above it are dense.  ``CsrRows`` holds those arrays with the shape; its
row slices ``rows[a:b]`` are views (``indptr[a:b + 1]`` over the same ``data`` and
``indices``: no copy), so a training set's batches cost nothing to address, and
:meth:`take` gathers the rows of an epoch's order (a reshuffled set) into reused buffers.
"""
import numpy as np

__all__ = ["CsrRows", "is_sparse", "as_csr_rows"]


def is_sparse(x):
    """Whether ``x`` is a CsrRows or a SciPy sparse matrix / array."""
    if isinstance(x, CsrRows):
        return True
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - SciPy is a dependency
        return False
    return sp.issparse(x)


class CsrRows:
    """``shape[0]`` rows of ``shape[1]`` columns in CSR form: row i's values
    ``data[indptr[i]:indptr[i + 1]]`` in the columns ``indices[...]`` (``indptr[0]`` need not
    be 0).  Built by :func:`as_csr_rows` (checked); the constructor trusts its arrays.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> rows = as_csr_rows(sp.csr_matrix(np.array([[0, 1.0], [2.0, 0], [0, 0]])))
    >>> rows, rows[1:3].nnz, rows[1:3].toarray().tolist()
    (CsrRows(3 x 2 float64, 2 stored), 1, [[2.0, 0.0], [0.0, 0.0]])
    """

    __slots__ = ("data", "indices", "indptr", "shape")
    ndim = 2

    def __init__(self, data, indices, indptr, shape):
        self.data, self.indices, self.indptr = data, indices, indptr
        self.shape = (int(shape[0]), int(shape[1]))

    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.shape[0] * self.shape[1])
    nnz = property(lambda self: int(self.indptr[-1] - self.indptr[0]))

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"CsrRows({self.shape[0]} x {self.shape[1]} {self.dtype.name}, {self.nnz} stored)"

    def __getitem__(self, key):
        """rows[a:b]: a view; rows[array of row numbers or booleans]: a copy (take)."""
        if not isinstance(key, slice):
            key = np.asarray(key)
            if key.dtype == bool and key.shape == (self.shape[0],):
                return self.take(np.flatnonzero(key))
            if key.ndim == 1 and key.dtype.kind in "iu":
                if key.size and (key.min() < -self.shape[0] or key.max() >= self.shape[0]):
                    raise IndexError(f"row index out of range for {self.shape[0]} rows")
                return self.take(np.where(key < 0, key + self.shape[0], key))
            raise TypeError("CsrRows takes row slices (rows[a:b]) or 1-D arrays of row "
                            "numbers or a boolean mask")
        a, b, step = key.indices(self.shape[0])
        if step != 1:
            raise TypeError("CsrRows takes row slices of step 1 only")
        b = max(a, b)
        return CsrRows(self.data, self.indices, self.indptr[a:b + 1], (b - a, self.shape[1]))

    def stored(self):
        """(data, indices) of these rows only (views)."""
        a, b = int(self.indptr[0]), int(self.indptr[-1])
        return self.data[a:b], self.indices[a:b]

    def astype(self, dtype):
        """These rows with values of ``dtype`` (self when already so; the indices shared)."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        with np.errstate(over="ignore"):  # an overflow shows up as inf: validate
            return CsrRows(self.data.astype(dtype), self.indices, self.indptr, self.shape)

    def toarray(self):
        """The dense rows (C-contiguous, this dtype)."""
        out = np.zeros(self.shape, dtype=self.dtype)
        data, indices = self.stored()
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        np.add.at(out, (rows, indices), data)
        return out

    def tocsr(self):
        """A SciPy CSR matrix of these rows (its own copy of the arrays)."""
        import scipy.sparse as sp
        data, indices = self.stored()
        return sp.csr_matrix((data.copy(), indices.copy(), self.indptr - self.indptr[0]),
                             shape=self.shape)

    def take(self, order, out=None):
        """The rows in ``order`` (a permutation of the row numbers, or any row numbers):
        row i of the result is row ``order[i]``.  ``out``: a CsrRows that a take of the same
        rows returned, its arrays rewritten (the epoch buffer of a reshuffled set)."""
        order = np.asarray(order, dtype=np.int64)
        lo = self.indptr[order].astype(np.int64)
        counts = self.indptr[order + 1].astype(np.int64) - lo
        nnz = int(counts.sum())
        if out is None or out.data.shape != (nnz,) or out.dtype != self.dtype \
                or out.indices.dtype != self.indices.dtype or out.shape != (len(order), self.shape[1]):
            out = CsrRows(np.empty(nnz, self.dtype), np.empty(nnz, self.indices.dtype),
                          np.empty(len(order) + 1, self.indptr.dtype),
                          (len(order), self.shape[1]))
        out.indptr[0] = 0
        np.cumsum(counts, out=out.indptr[1:])
        # the source position of every stored value of the result, in the result's order
        src = np.repeat(lo - out.indptr[:-1].astype(np.int64), counts) + np.arange(nnz)
        np.take(self.data, src, out=out.data)
        np.take(self.indices, src, out=out.indices)
        return out

    def first_bad_row(self):
        """The first row holding NaN or infinity, or None."""
        data, _ = self.stored()
        bad = np.flatnonzero(~np.isfinite(data))
        if not bad.size:
            return None
        return int(np.searchsorted(self.indptr, int(self.indptr[0]) + int(bad[0]), side="right")) - 1


def as_csr_rows(x, dtype=None, what="x"):
    """``x`` (a SciPy sparse matrix or array of any format, or a CsrRows) as CsrRows: CSR,
    real values (``dtype`` if given, else float64 unless already float32/float64), the
    indices int32 or int64 and in range, indptr monotone.  Values are not checked for
    finiteness here (see :meth:`CsrRows.first_bad_row`)."""
    if isinstance(x, CsrRows):
        return x.astype(dtype) if dtype is not None else x
    import scipy.sparse as sp
    if not sp.issparse(x):
        raise TypeError(f"{what} must be a SciPy sparse matrix, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{what} must be 2-D (samples x inputs), got shape {x.shape}")
    kind = np.dtype(x.dtype).kind
    if kind == "c":
        raise TypeError(f"{what} is complex ({x.dtype}): the net takes real samples")
    if kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got dtype {x.dtype}")
    if dtype is None:
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    x = x.tocsr()
    with np.errstate(over="ignore"):
        data = np.ascontiguousarray(x.data, dtype=dtype)
    indices, indptr = x.indices, x.indptr
    itype = np.int64 if np.int64 in (indices.dtype, indptr.dtype) else np.int32
    indices = np.ascontiguousarray(indices, dtype=itype)
    indptr = np.ascontiguousarray(indptr, dtype=itype)
    n, d = x.shape
    nnz = data.shape[0]
    if indptr.shape != (n + 1,) or indices.shape != (nnz,) or indptr[0] != 0 \
            or indptr[-1] != nnz or (n and (np.diff(indptr) < 0).any()):
        raise ValueError(f"{what} is not a valid CSR matrix (indptr of {indptr.shape[0]} "
                         f"entries for {n} rows, {nnz} values)")
    if nnz and (indices.min() < 0 or indices.max() >= d):
        raise ValueError(f"{what} holds a column index outside 0..{d - 1}")
    return CsrRows(data, indices, indptr, (n, d))
