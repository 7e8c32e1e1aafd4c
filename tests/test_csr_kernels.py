"""csr.pyx's csr_forward and csr_weight_grad against their twin (reference_csr.py) and
against the dense kernels on the densified rows; the argument checks of both backends.

Random shapes from hypothesis: 1 row, 1 column, empty rows, odd sizes, unsorted and duplicate
indices, indptr views (rows a..b of a larger matrix), int32 and int64 indices, float32 and
float64, 1 and 2 threads (2: every OpenMP loop forced parallel).  Outputs start as NaN.
"""
import contextlib

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic
from synaptic import _kernels
from synaptic._kernels import native, reference as R

needs_native = pytest.mark.skipif(
    native is None, reason=f"native backend not built: {_kernels.native_error()}")
BACKENDS = [pytest.param(R, id="numpy"), pytest.param(native, id="native", marks=needs_native)]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
THREADS = [pytest.param(1, id="t1"), pytest.param(2, id="t2")]
INDEX = [pytest.param(np.int32, id="i32"), pytest.param(np.int64, id="i64")]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
ACTS = [R.ACT_LINEAR, R.ACT_SIGMOID, R.ACT_TANH, R.ACT_SOFTMAX, R.ACT_RELU, R.ACT_LEAKY_RELU,
        R.ACT_ELU, R.ACT_SOFTPLUS]

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def threads(n):
    with synaptic.num_threads(n):
        old = native.csr._set_csr_threshold(0) if n > 1 else None
        try:
            yield
        finally:
            if old is not None:
                native.csr._set_csr_threshold(old)


def nans(shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


def random_csr(rng, m, d, dtype, itype, density, messy):
    """(data, indices, indptr, dense x) of m x d CSR rows; ``messy``: unsorted indices,
    duplicates, stored zeros and an indptr view into larger arrays (rows 2.. of m + 3)."""
    pad = 2 if messy else 0
    counts = rng.binomial(d, density, m + pad + 1)
    if messy:
        counts[rng.integers(0, m + pad + 1)] = 0  # an empty row at least
    cols = [rng.choice(d, c, replace=False) for c in counts]
    if messy:
        cols = [np.concatenate([c, c[:1]]) if len(c) and rng.random() < 0.5 else c
                for c in cols]                      # duplicates add
    indptr = np.zeros(len(cols) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in cols], out=indptr[1:])
    indices = np.concatenate(cols + [np.zeros(0, np.int64)]).astype(itype)
    data = rng.standard_normal(indices.shape[0]).astype(dtype)
    if messy and data.size:
        data[rng.integers(0, data.size)] = 0        # a stored zero
    if not messy:
        indices = np.concatenate([np.sort(c) for c in cols] + [np.zeros(0, int)]).astype(itype)
    ptr = indptr[pad:pad + m + 1].astype(itype)     # rows pad..pad+m-1: a view
    x = np.zeros((m, d), dtype=np.float64)
    for i in range(m):
        a, b = ptr[i], ptr[i + 1]
        np.add.at(x[i], indices[a:b], data[a:b].astype(np.float64))
    return data, indices, ptr, x.astype(dtype)


shapes = dict(m=st.one_of(st.just(1), st.integers(1, 70)), d=st.one_of(st.just(1), st.integers(1, 90)),
              o=st.one_of(st.just(1), st.integers(1, 140)), seed=st.integers(0, 2**32 - 1),
              density=st.sampled_from([0.0, 0.05, 0.3, 1.0]), messy=st.booleans())


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("itype", INDEX)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(act=st.sampled_from(ACTS), **shapes)
def test_csr_forward(dtype, itype, nthreads, m, d, o, seed, density, messy, act):
    rng = np.random.default_rng(seed)
    data, indices, indptr, x = random_csr(rng, m, d, dtype, itype, density, messy)
    w = (rng.standard_normal((o, 1 + d)) / np.sqrt(d)).astype(dtype)
    want, dense, got = nans((m, o), dtype), nans((m, o), dtype), nans((m, o), dtype)
    R.csr_forward(data, indices, indptr, w, act, want)
    R.dense_forward(x, w, act, dense)
    np.testing.assert_allclose(want, dense, **TOL[dtype])
    with threads(nthreads):
        native.csr_forward(data, indices, indptr, w, act, got)
    np.testing.assert_allclose(got, want, **TOL[dtype])


@contextlib.contextmanager
def grad_path(path):
    """csr_weight_grad's walk: "cols" (the column layout) or "rows" (dz streamed)."""
    old = native.csr._set_grad_rows_bytes(0 if path == "rows" else 1 << 62)
    try:
        yield
    finally:
        native.csr._set_grad_rows_bytes(old)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("itype", INDEX)
@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("path", ["cols", "rows"])
@SETTINGS
@given(**shapes)
def test_csr_weight_grad(dtype, itype, nthreads, path, m, d, o, seed, density, messy):
    rng = np.random.default_rng(seed)
    data, indices, indptr, x = random_csr(rng, m, d, dtype, itype, density, messy)
    dz = rng.standard_normal((m, o)).astype(dtype)
    want, dense, got = nans((o, 1 + d), dtype), nans((o, 1 + d), dtype), nans((o, 1 + d), dtype)
    R.csr_weight_grad(dz, data, indices, indptr, want)
    R.weight_grad(dz, x, dense)
    np.testing.assert_allclose(want, dense, **TOL[dtype])
    with threads(nthreads), grad_path(path):
        native.csr_weight_grad(dz, data, indices, indptr, got)
    np.testing.assert_allclose(got, want, **TOL[dtype])
    # the bias column has weight_grad's bits
    ref = nans((o, 1 + d), dtype)
    native.weight_grad(dz, x, ref)
    assert got[:, 0].tobytes() == ref[:, 0].tobytes()


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bits_for_1_and_2_threads(dtype):
    """A benchmark-sized batch (200 x 2000 at 1.3 %, 100 units), both gradient walks; 2
    threads forced parallel (threads())."""
    x = sp.random(200, 2000, density=0.013, format="csr", random_state=3, dtype=dtype)
    rng = np.random.default_rng(4)
    w = (rng.standard_normal((100, 2001)) * 0.05).astype(dtype)
    dz = rng.standard_normal((200, 100)).astype(dtype)
    outs = []
    for n, path in ((1, "cols"), (2, "cols"), (1, "rows"), (2, "rows"), (1, "cols")):
        with threads(n), grad_path(path):
            y, g = nans((200, 100), dtype), nans(w.shape, dtype)
            native.csr_forward(x.data, x.indices, x.indptr, w, R.ACT_RELU, y)
            native.csr_weight_grad(dz, x.data, x.indices, x.indptr, g)
        outs.append(y.tobytes() + g.tobytes())
    assert len(set(outs[:2] + outs[4:])) == 1 and outs[2] == outs[3]  # per path
    want = nans((200, 100), dtype)
    R.csr_forward(x.data, x.indices, x.indptr, w, R.ACT_RELU, want)
    np.testing.assert_allclose(np.frombuffer(outs[0][:want.nbytes], dtype).reshape(want.shape),
                               want, **TOL[dtype])


def _args():
    x = sp.csr_matrix(np.array([[0, 1.5, 0], [2.0, 0, 3.0]]))
    w = np.ones((4, 4))
    return x.data.copy(), x.indices.copy(), x.indptr.copy(), w


@pytest.mark.parametrize("kern", BACKENDS)
@pytest.mark.parametrize("case, error, match", [
    ("index out of range", ValueError, "indices\\[1\\] = 3 is not a column"),
    ("negative index", ValueError, "not a column"),
    ("indptr falls", ValueError, "indptr\\[2\\]"),
    ("indptr past nnz", ValueError, "indptr\\[2\\]"),
    ("indptr negative", ValueError, "indptr\\[0\\]"),
    ("indptr length", ValueError, "indptr has 2 entries, expected 3"),
    ("indices length", ValueError, "indices has 2 entries, data has 3"),
    ("float indices", TypeError, "expected int32 or int64"),
    ("mixed index types", TypeError, "share one integer type"),
    ("data dtype", TypeError, "data has dtype float32"),
    ("w columns", ValueError, "not a column|columns"),
])
def test_bad_csr_is_refused(kern, case, error, match):
    data, indices, indptr, w = _args()
    out, dz = nans((2, 4), np.float64), np.ones((2, 4))
    g = nans((4, 4), np.float64)
    if case == "index out of range":
        indices[1] = 3
    elif case == "negative index":
        indices[0] = -1
    elif case == "indptr falls":
        indptr[1] = 3
        indptr[2] = 2
    elif case == "indptr past nnz":
        indptr[2] = 7
    elif case == "indptr negative":
        indptr[0] = -1
    elif case == "indptr length":
        indptr = indptr[:2]
    elif case == "indices length":
        indices = indices[:2]
    elif case == "float indices":
        indices = indices.astype(np.float64)
    elif case == "mixed index types":
        indptr = indptr.astype(np.int64 if indices.dtype == np.int32 else np.int32)
    elif case == "data dtype":
        data = data.astype(np.float32)
    elif case == "w columns":  # w with 2 input columns: index 2 is out of range
        w, g = np.ones((4, 3)), nans((4, 3), np.float64)
    with pytest.raises(error, match=match):
        kern.csr_forward(data, indices, indptr, w, R.ACT_LINEAR, out)
    with pytest.raises(error, match=match):
        kern.csr_weight_grad(dz, data, indices, indptr, g)
    assert np.isnan(out).all() and np.isnan(g).all()  # nothing written


@pytest.mark.parametrize("kern", BACKENDS)
def test_bad_shapes_are_refused(kern):
    data, indices, indptr, w = _args()
    with pytest.raises(ValueError, match="out has shape"):
        kern.csr_forward(data, indices, indptr, w, R.ACT_LINEAR, nans((2, 3), np.float64))
    with pytest.raises(ValueError, match="out has shape"):
        kern.csr_weight_grad(np.ones((2, 4)), data, indices, indptr, nans((3, 4), np.float64))
    with pytest.raises(ValueError, match="indptr has 3 entries, expected 4"):
        kern.csr_weight_grad(np.ones((3, 4)), data, indices, indptr, nans((4, 4), np.float64))
    with pytest.raises(TypeError, match="numpy array"):
        kern.csr_forward(list(data), indices, indptr, w, R.ACT_LINEAR, nans((2, 4), np.float64))


@pytest.mark.parametrize("kern", BACKENDS)
def test_hand_values(kern):
    """[[0, 1.5, 0], [2, 0, 3]] into 2 linear units: the products by hand."""
    data, indices, indptr, _ = _args()
    w = np.array([[0.5, 1.0, 2.0, 3.0], [-1.0, 0.0, 1.0, 0.0]])
    out = nans((2, 2), np.float64)
    kern.csr_forward(data, indices, indptr, w, R.ACT_LINEAR, out)
    np.testing.assert_allclose(out, [[0.5 + 3.0, -1.0 + 1.5], [0.5 + 2.0 + 9.0, -1.0]])
    g = nans((2, 4), np.float64)
    kern.csr_weight_grad(np.array([[1.0, 2.0], [3.0, -1.0]]), data, indices, indptr, g)
    np.testing.assert_allclose(g, [[4.0, 6.0, 1.5, 9.0], [1.0, -2.0, 3.0, -3.0]])
