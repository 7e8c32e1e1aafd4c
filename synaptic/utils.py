"""Small helpers: bit packing, base64, label encoding, histograms and matrix utilities.

The port of ``synaptic.util`` (SYNAPTIC.md §8).  Everything is NumPy-based; bit and byte
vectors come back as ``uint8`` arrays, labels come back as lists in their own type.
"""
import base64
import binascii
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

EPS = 1e-6

__all__ = [
    "Histogram", "bincodes", "decode_sample", "divisors", "encode_sample", "frombase64",
    "frombinary", "histogram", "imgbits2int", "imgint2bits", "label_indices", "m_quasi_equal",
    "pack", "partition", "quasi_equal", "safe_div", "shuffle_vecs", "tobase64", "tobinary",
    "unique", "unpack", "weight_histograms", "with_bias", "without_bias",
]


def _int(value, what, minimum=None):
    """Return ``value`` as an int, raising TypeError/ValueError with ``what`` in the message."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def _vector(values, what):
    """Return ``values`` as a 1-D integer array (an empty input gives an empty array)."""
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a flat vector, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" or (arr.dtype.kind == "f" and np.any(arr != np.round(arr))):
        raise TypeError(f"{what} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


# Bit arrays ---------------------------------------------------------------------------

def pack(bits):
    """Pack 0/1 values into bytes, MSB first; an incomplete last byte is zero-filled."""
    bits = _vector(bits, "bits")
    if np.any((bits != 0) & (bits != 1)):
        raise ValueError("bits must be 0 or 1")
    return np.packbits(bits.astype(np.uint8))


def unpack(ints):
    """Unpack byte values (0-255) into 0/1 values, MSB first, 8 bits per value."""
    ints = _vector(ints, "ints")
    if np.any((ints < 0) | (ints > 255)):
        raise ValueError("ints must be byte values in 0..255")
    return np.unpackbits(ints.astype(np.uint8))


def _image_size(w, h):
    w, h = _int(w, "width w", 1), _int(h, "height h", 1)
    return w, h, (w + 7) // 8


def imgint2bits(ints, w, h):
    """Unpack a w x h binary image stored as bytes (rows padded to whole bytes) into w*h bits."""
    w, h, rowbytes = _image_size(w, h)
    ints = _vector(ints, "ints")
    if len(ints) != rowbytes * h:
        raise ValueError(f"a {w}x{h} image needs {rowbytes * h} bytes, got {len(ints)}")
    return unpack(ints).reshape(h, rowbytes * 8)[:, :w].ravel()


def imgbits2int(bits, w, h):
    """Pack the w*h bits of a binary image into bytes, padding each row with 1-bits."""
    w, h, rowbytes = _image_size(w, h)
    bits = _vector(bits, "bits")
    if len(bits) != w * h:
        raise ValueError(f"a {w}x{h} image needs {w * h} bits, got {len(bits)}")
    padded = np.ones((h, rowbytes * 8), dtype=np.int64)
    padded[:, :w] = bits.reshape(h, w)
    return pack(padded.ravel())


# Base64 -------------------------------------------------------------------------------

def tobase64(ints):
    """Encode byte values (0-255) as standard base64 (A-Z a-z 0-9 + /, '=' padding)."""
    ints = _vector(ints, "ints")
    if np.any((ints < 0) | (ints > 255)):
        raise ValueError("ints must be byte values in 0..255")
    return base64.b64encode(ints.astype(np.uint8).tobytes()).decode("ascii")


def frombase64(encoded):
    """Decode a standard base64 string into a uint8 array."""
    if not isinstance(encoded, str):
        raise TypeError(f"encoded must be a str, got {type(encoded).__name__}")
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error as err:
        raise ValueError(f"invalid base64 string {encoded[:40]!r}: {err}") from None
    return np.frombuffer(data, dtype=np.uint8).copy()


def encode_sample(fieldsize, bits):
    """Encode the bits of a binary image of size ``fieldsize = [w, h]`` as base64."""
    w, h = fieldsize
    return tobase64(imgbits2int(bits, w, h))


def decode_sample(fieldsize, sample):
    """Decode a base64 binary image of size ``fieldsize = [w, h]`` into w*h bits."""
    w, h = fieldsize
    return imgint2bits(frombase64(sample), w, h)


# Labels -------------------------------------------------------------------------------

def _labels_list(labels):
    """Return labels as a list of hashable Python scalars (NumPy scalars unwrapped)."""
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1:
            raise ValueError(f"labels must be a flat vector, got shape {labels.shape}")
        labels = labels.tolist()
    elif isinstance(labels, (str, bytes)) or not hasattr(labels, "__iter__"):
        raise TypeError(f"labels must be a sequence, got {type(labels).__name__}")
    out = [v.item() if isinstance(v, np.generic) else v for v in labels]
    for i, v in enumerate(out):
        try:
            hash(v)
        except TypeError:
            raise TypeError(f"label {i} ({v!r}) is not hashable; labels must be scalars") from None
        if isinstance(v, float) and math.isnan(v):
            raise ValueError(f"label {i} is NaN")
    return out


def _sorted_unique(values, what):
    try:
        return sorted(set(values))
    except TypeError:
        kinds = sorted({type(v).__name__ for v in values})
        raise TypeError(f"{what} cannot be sorted together (types: {', '.join(kinds)})") from None


def unique(values):
    """Return the sorted distinct values as a list (natural order of their own type)."""
    return _sorted_unique(_labels_list(values), "values")


def label_indices(labels):
    """Return (index of each label in the sorted unique labels, the sorted unique labels)."""
    labels = _labels_list(labels)
    uniq = _sorted_unique(labels, "labels")
    position = {v: i for i, v in enumerate(uniq)}
    return np.fromiter((position[v] for v in labels), dtype=np.intp, count=len(labels)), uniq


def bincodes(n):
    """Return the n one-hot codes as the rows of an n x n int array."""
    return np.eye(_int(n, "n", 0), dtype=np.int64)


def tobinary(labels):
    """Encode labels one-hot; return (codes, an n x k int array; sorted unique labels)."""
    idx, uniq = label_indices(labels)
    return bincodes(len(uniq))[idx], uniq


def frombinary(uniquelabels, codes):
    """Decode one-hot codes back into labels, given the sorted unique labels."""
    uniquelabels = list(uniquelabels)
    codes = np.asarray(codes)
    if codes.size == 0:
        return []
    if codes.ndim != 2 or codes.shape[1] != len(uniquelabels):
        raise ValueError(f"codes must be n x {len(uniquelabels)}, got shape {codes.shape}")
    onehot = (codes == 1).sum(axis=1) == 1
    onehot &= ((codes == 0) | (codes == 1)).all(axis=1)
    if not onehot.all():
        raise ValueError(f"code {int(np.argmin(onehot))} is not a one-hot vector")
    return [uniquelabels[i] for i in np.argmax(codes, axis=1)]


# Data manipulation --------------------------------------------------------------------

def divisors(n):
    """Return [n // d, d] for the largest d <= sqrt(n) dividing n (784 -> [28, 28])."""
    n = _int(n, "n", 0)
    for d in range(math.isqrt(n), 0, -1):
        if n % d == 0:
            return [n // d, d]
    return [n, 1]


def partition(n, batchsize=None):
    """Return the (start, stop) bounds of consecutive chunks of ``batchsize`` out of n items.

    A single chunk ``[(0, n)]`` when batchsize is None or not smaller than n.
    """
    n = _int(n, "n", 0)
    if batchsize is None:
        return [(0, n)]
    batchsize = _int(batchsize, "batchsize", 1)
    if batchsize >= n:
        return [(0, n)]
    return [(start, min(start + batchsize, n)) for start in range(0, n, batchsize)]


def shuffle_vecs(*vectors, seed=None):
    """Shuffle several equally long vectors with one permutation drawn from ``seed``.

    ``seed`` is anything ``numpy.random.default_rng`` accepts (None, an int, a Generator).
    Arrays come back as arrays, other sequences as lists.
    """
    if not vectors:
        return []
    lengths = [len(v) for v in vectors]
    if len(set(lengths)) != 1:
        raise ValueError(f"vectors must have the same length, got lengths {lengths}")
    perm = np.random.default_rng(seed).permutation(lengths[0])
    return [v[perm] if isinstance(v, np.ndarray) else [v[i] for i in perm] for v in vectors]


# Matrices -----------------------------------------------------------------------------

def _matrix(a, what):
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D matrix, got shape {a.shape}")
    return a


def with_bias(x):
    """Prepend a column of ones to the matrix x."""
    x = _matrix(x, "x")
    dtype = x.dtype if x.dtype.kind == "f" else np.float64
    out = np.ones((x.shape[0], x.shape[1] + 1), dtype=dtype)
    out[:, 1:] = x
    return out


def without_bias(w):
    """Drop column 0 (the bias) of the weight matrix w (a view)."""
    w = _matrix(w, "w")
    if w.shape[1] < 1:
        raise ValueError("w has no bias column")
    return w[:, 1:]


def safe_div(a, b):
    """Elementwise a / b, giving a where b == 0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return np.divide(a, b, out=a.copy(), where=b != 0)


def quasi_equal(a, b, eps=EPS):
    """True if |a - b| < eps (strictly)."""
    return bool(abs(a - b) < eps)


def m_quasi_equal(data, mat, eps=EPS):
    """True if data and mat have the same shape and are elementwise quasi-equal."""
    data, mat = np.asarray(data, dtype=np.float64), np.asarray(mat, dtype=np.float64)
    return data.shape == mat.shape and bool(np.all(np.abs(data - mat) < eps))


# Histograms ---------------------------------------------------------------------------

@dataclass
class Histogram:
    """Bin centres (``labels``) and counts (``data``) of a histogram."""
    labels: list = field(default_factory=list)
    data: list = field(default_factory=list)


def histogram(samples, nbins=20):
    """Histogram of ``samples`` in ``nbins`` equal bins between their min and max.

    Parameters
    ----------
    samples : array_like
        Any shape (flattened).
    nbins : int, default 20
        The number of bins.

    Returns
    -------
    Histogram
        ``labels``: the bin centres; ``data``: the counts.

    Raises
    ------
    ValueError
        Empty samples, NaN or infinite values, ``nbins`` < 1.

    Examples
    --------
    >>> import synaptic as syn
    >>> h = syn.histogram([0, 1, 1, 2, 4], nbins=2)
    >>> h.labels, h.data
    ([1.0, 3.0], [3, 2])
    """
    nbins = _int(nbins, "nbins", 1)
    s = np.asarray(samples, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("histogram of an empty sample")
    if not np.isfinite(s).all():
        raise ValueError("histogram samples contain NaN or infinite values")
    lo, hi = float(s.min()), float(s.max())
    df = (hi - lo) / nbins if lo < hi else 1.0
    bins = np.minimum(nbins - 1, np.trunc((s - lo) / df).astype(np.int64))
    counts = np.bincount(bins, minlength=nbins)
    return Histogram(labels=[lo + i * df + df / 2 for i in range(nbins)],
                     data=[int(c) for c in counts])


def weight_histograms(weights, nbins=20):
    """One histogram per weight matrix, bias column excluded, values taken row-major.

    Parameters
    ----------
    weights : list of numpy.ndarray
        E.g. ``net.weights``.
    nbins : int, default 20
        The number of bins.

    Returns
    -------
    list of Histogram

    Examples
    --------
    >>> import synaptic as syn
    >>> [sum(h.data) for h in syn.weight_histograms(syn.mlp([4, 3, 2], "sigmoid", seed=1).weights)]
    [12, 6]
    """
    return [histogram(without_bias(w).ravel(), nbins) for w in weights]
