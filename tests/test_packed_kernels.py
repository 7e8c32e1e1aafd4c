"""Packed sparse inputs (pack_input / packed_forward / packed_weight_grad): native against its
NumPy twin (reference_packed.py, the contract), the twin against dense_forward / weight_grad,
PackedInput's checks, and L-BFGS's use of a pack.

Random shapes from hypothesis: 1 row, 1 column, rows around the 64-row blocks, columns around
the 32-bit masks, 1 to 150 outputs (more than 8 vectors of 16 floats: the >128-lane path),
all-zero and zero-free inputs (with some -0.0), float32 and float64, 1 and 2 threads (with 2
every OpenMP loop is forced parallel whatever its size).  The pack is integers and copies of
x's values, so native and twin must agree exactly; the native products sum in another order
than the twin's GEMM, so they agree within a tolerance scaled to the sum of |terms|.  Every
output starts as NaN, so an element a kernel forgets to write fails the comparison.
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic
from synaptic import _kernels
from synaptic._kernels import native, reference as R, reference_packed as RP
from synaptic.training import lbfgs

from helpers import forced_threads

needs_native = pytest.mark.skipif(
    native is None, reason=f"native backend not built: {_kernels.native_error()}")
BACKENDS = [pytest.param(R, id="numpy"), pytest.param(native, id="native", marks=needs_native)]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
THREADS = [pytest.param(1, id="t1"), pytest.param(2, id="t2")]
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# rtol, and atol as a fraction of the sum of |terms| of the element's dot product
TOL = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-13)}
ACTS = [R.ACT_LINEAR, R.ACT_SIGMOID, R.ACT_TANH, R.ACT_SOFTMAX, R.ACT_RELU, R.ACT_LEAKY_RELU,
        R.ACT_ELU, R.ACT_SOFTPLUS]
SLOPE = 0.15    # leaky-relu's, not the default (the other activations ignore it)

rows = st.one_of(st.sampled_from([1, 63, 64, 65, 200]), st.integers(1, 200))
cols = st.one_of(st.sampled_from([1, 32, 33, 64, 100]), st.integers(1, 100))
blocks = st.one_of(st.sampled_from([1, 64]), st.integers(1, 64))
zero_fractions = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
outs = st.one_of(st.integers(1, 40), st.sampled_from([100, 130, 150]))
seeds = st.integers(0, 2**32 - 1)


threads = forced_threads    # tests/helpers.py


def make_x(rng, n, d, dtype, zeros):
    """Normal values with a fraction ``zeros`` of exact zeros (a tenth of them -0.0), a zero
    column (an image border) and a zero row when there are zeros at all."""
    x = rng.standard_normal((n, d))
    z = rng.uniform(size=(n, d)) < zeros
    x[z] = np.where(rng.uniform(size=z.sum()) < 0.1, -0.0, 0.0)
    if zeros > 0 and d > 4:
        x[:, d // 5] = 0
    if zeros > 0 and n > 2:
        x[n // 2] = 0
    return np.ascontiguousarray(x.astype(dtype))


def nans(shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


def assert_same_pack(p, q, equal_nan=False):
    assert type(p) is type(q) is RP.PackedInput
    assert p.block == q.block and p.shape == q.shape and p.dtype == q.dtype and p.nnz == q.nnz
    for f in RP.PackedInput.FIELDS:
        a, b = getattr(p, f), getattr(q, f)
        assert a.dtype == b.dtype and a.shape == b.shape, f
        assert np.array_equal(a, b, equal_nan=equal_nan), f


def assert_close_sum(got, want, mag, dtype):
    """got ~ want, the twin's value of a dot product whose |terms| sum to ``mag`` (float64);
    the row's largest sum bounds the error after an activation (softmax mixes a row)."""
    rtol, frac = TOL[dtype]
    atol = 2 * frac * mag.max(axis=1, keepdims=True) + 1e-30
    err = np.abs(got.astype(np.float64) - want)
    bad = ~(err <= atol + rtol * np.abs(want))
    assert not bad.any(), (f"{bad.sum()} of {bad.size} differ, first at {np.argwhere(bad)[0]}: "
                           f"got {got[bad][:3]}, want {want[bad][:3]}")


def forward_mag(x, w):
    return np.abs(x.astype(np.float64)) @ np.abs(w[:, 1:].astype(np.float64)).T + np.abs(w[:, 0])


def grad_mag(dz, x):
    ones = np.ones((x.shape[0], 1))
    return np.abs(dz.astype(np.float64)).T @ np.abs(np.hstack([ones, x.astype(np.float64)]))


def twin(x, w, dz, act):
    """The twin's dense_forward and weight_grad on x itself."""
    y, g = nans((x.shape[0], w.shape[0]), x.dtype), nans(w.shape, x.dtype)
    R.dense_forward(x, w, act, y, SLOPE)
    R.weight_grad(dz, x, g)
    return y, g


def packed(kern, p, w, dz, act):
    y, g = nans((p.shape[0], w.shape[0]), p.dtype), nans(w.shape, p.dtype)
    kern.packed_forward(p, w, act, y, SLOPE)
    kern.packed_weight_grad(dz, p, g)
    return y, g


# ---------------------------------------------------------------------------------------
# 1. pack_input: native == twin, field for field

@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, d=cols, block=blocks, zeros=zero_fractions, seed=seeds)
def test_pack_native_equals_twin(dtype, nthreads, n, d, block, zeros, seed):
    x = make_x(np.random.default_rng(seed), n, d, dtype, zeros)
    xc = x.copy()
    want = R.pack_input(x, block)
    with threads(nthreads):
        got = native.pack_input(x, block)
    assert_same_pack(got, want)
    assert got.x is x and want.x is x                       # kept, not copied
    np.testing.assert_array_equal(x, xc)
    assert got.nnz == np.count_nonzero(x)


@pytest.mark.parametrize("kern", BACKENDS)
@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0), (0, 33)])
@pytest.mark.parametrize("block", [1, 7, 64])
def test_empty_shapes(kern, shape, block):
    x = np.zeros(shape, np.float32)
    p = kern.pack_input(x, block)
    assert_same_pack(p, R.pack_input(x, block))
    assert p.nnz == 0
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 1 + shape[1])).astype(np.float32)
    dz = rng.standard_normal((shape[0], 3)).astype(np.float32)
    got_y, got_g = packed(kern, p, w, dz, R.ACT_SIGMOID)
    want_y, want_g = twin(x, w, dz, R.ACT_SIGMOID)
    np.testing.assert_allclose(got_y, want_y, rtol=1e-6)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------
# 2. the twin: both layouts rebuild x; its packed kernels are its dense ones

@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(n=rows, d=cols, o=st.integers(1, 20), block=blocks, zeros=zero_fractions,
       act=st.sampled_from(ACTS), seed=seeds)
def test_twin_rebuilds_x_and_matches_dense(dtype, n, d, o, block, zeros, act, seed):
    rng = np.random.default_rng(seed)
    x = make_x(rng, n, d, dtype, zeros)
    p = R.pack_input(x, block)
    for rebuilt in (RP._rows_x(p), RP._cols_x(p)):
        assert rebuilt.dtype == x.dtype
        np.testing.assert_array_equal(rebuilt, x)
    w = rng.standard_normal((o, 1 + d)).astype(dtype)
    dz = rng.standard_normal((n, o)).astype(dtype)
    got_y, got_g = packed(R, p, w, dz, act)
    want_y, want_g = twin(x, w, dz, act)
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_g, want_g)


# ---------------------------------------------------------------------------------------
# 3. native packed kernels against the twin's dense ones

@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, d=cols, o=outs, block=blocks, zeros=zero_fractions, act=st.sampled_from(ACTS),
       seed=seeds)
def test_native_packed_matches_twin(dtype, nthreads, n, d, o, block, zeros, act, seed):
    rng = np.random.default_rng(seed)
    x = make_x(rng, n, d, dtype, zeros)
    w = (rng.standard_normal((o, 1 + d)) * 2 / math.sqrt(d)).astype(dtype)
    dz = rng.standard_normal((n, o)).astype(dtype)
    want_y, want_g = twin(x, w, dz, act)
    with threads(nthreads):
        p = native.pack_input(x, block)
        got_y, got_g = packed(native, p, w, dz, act)
    assert_close_sum(got_y, want_y, forward_mag(x, w), dtype)
    assert_close_sum(got_g, want_g, grad_mag(dz, x), dtype)


def mnist_like(rng, n, d, dtype, zeros=0.8):
    """Pixel-like rows: values in (0, 1], a zero border, about ``zeros`` exact zeros."""
    x = rng.uniform(0.05, 1.0, (n, d)) * (rng.uniform(size=(n, d)) >= (zeros - 0.2) / 0.8)
    x[:, : d // 5] = 0
    return x.astype(dtype)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("o", [10, 100, 130])
def test_packed_forward_same_bits_as_the_sparse_dense_forward(dtype, nthreads, o):
    """Same terms in the same order as dense_forward's sparse-input path (taken by default:
    >= 32 rows, >= 50% zeros)."""
    rng = np.random.default_rng(o)
    x = mnist_like(rng, 300, 200, dtype)
    assert np.mean(x == 0) > 0.75
    w = (rng.standard_normal((o, 201)) * 0.1).astype(dtype)
    for act in (R.ACT_SIGMOID, R.ACT_SOFTMAX):
        a, b = nans((300, o), dtype), nans((300, o), dtype)
        with synaptic.num_threads(nthreads):
            native.dense_forward(x, w, act, a)
            native.packed_forward(native.pack_input(x, 64), w, act, b)
        np.testing.assert_array_equal(b, a)


# ---------------------------------------------------------------------------------------
# 4. the same bits for 1 and 2 threads

@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,o,block", [(1, 1, 1, 1), (65, 33, 17, 64), (130, 64, 150, 9),
                                         (500, 300, 100, 54), (2000, 784, 10, 64)])
def test_same_bits_for_1_and_2_threads(dtype, n, d, o, block):
    rng = np.random.default_rng(n + d + o)
    x = mnist_like(rng, n, d, dtype)
    w = (rng.standard_normal((o, 1 + d)) * 0.1).astype(dtype)
    dz = rng.standard_normal((n, o)).astype(dtype)
    runs = []
    for t in (1, 2, 2):
        with threads(t):
            y, g = packed(native, native.pack_input(x, block), w, dz, R.ACT_SIGMOID)
        runs.append((y.tobytes(), g.tobytes()))
    assert runs[0] == runs[1] == runs[2]
    want_y, want_g = twin(x, w, dz, R.ACT_SIGMOID)
    y, g = (np.frombuffer(b, dtype).reshape(a.shape) for b, a in zip(runs[0], (want_y, want_g)))
    assert_close_sum(y, want_y, forward_mag(x, w), dtype)
    assert_close_sum(g, want_g, grad_mag(dz, x), dtype)


# ---------------------------------------------------------------------------------------
# 5. NaN and inf

NON_FINITE = ["w_nan", "w_inf", "w_inf_zero_column", "w_bias_nan", "w_inf_all_zero_x",
              "x_nan", "x_inf", "dz_inf", "dz_nan"]


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("case", NON_FINITE)
def test_non_finite_like_the_twin(dtype, nthreads, case):
    """NaN / inf in x are nonzeros and enter the sums; in W (forward) or dz (gradient) they
    would meet skipped zeros (inf * 0 = NaN in the GEMM): the packed kernel falls back."""
    rng = np.random.default_rng(7)
    n, d, o = 90, 70, 37
    x = mnist_like(rng, n, d, dtype)
    w = (rng.standard_normal((o, 1 + d)) * 0.2).astype(dtype)
    dz = rng.standard_normal((n, o)).astype(dtype)
    if case == "w_nan":
        w[2, 1 + d // 2] = np.nan
    elif case == "w_inf":
        w[9, 1 + d // 2] = -np.inf
    elif case == "w_inf_zero_column":
        w[4, 1 + 3] = np.inf                    # column 3 is in the zero border of every row
    elif case == "w_bias_nan":
        w[5, 0] = np.nan
    elif case == "w_inf_all_zero_x":
        x[:] = 0
        w[1, d] = np.inf
    elif case == "x_nan":
        x[3, 5] = np.nan                        # where x was 0
        x[40, d // 2] = np.nan
    elif case == "x_inf":
        x[3, 5] = np.inf
        x[41, d - 1] = -np.inf
        dz[41, 2] = 0.0                         # inf * 0 in the gradient: NaN
    elif case == "dz_inf":
        dz[5, 3] = np.inf
    else:
        dz[60, 0] = np.nan
    with np.errstate(invalid="ignore", over="ignore"):
        want_y, want_g = twin(x, w, dz, R.ACT_LINEAR)
        want_p = R.pack_input(x, 16)
    assert not (np.isfinite(want_y).all() and np.isfinite(want_g).all())
    with threads(nthreads):
        p = native.pack_input(x, 16)
        got_y, got_g = packed(native, p, w, dz, R.ACT_LINEAR)
    assert_same_pack(p, want_p, equal_nan=True)
    assert p.nnz == np.count_nonzero(x)          # NaN and inf count
    for got, want in ((got_y, want_y), (got_g, want_g)):
        for test in (np.isnan, np.isposinf, np.isneginf):
            np.testing.assert_array_equal(test(got), test(want))
        fin = np.isfinite(want)
        np.testing.assert_allclose(got[fin], want[fin], rtol=TOL[dtype][0], atol=1e-4)


# ---------------------------------------------------------------------------------------
# 6. bad arguments, in both backends

X = np.zeros((6, 5), np.float32)
X[1, 2] = X[4, 0] = 1.0
F32 = np.float32


def _bad_calls(kern):
    """name: (the call, the exception, a regex its message must match)."""
    p, k, sig = kern.pack_input(X, 4), kern, R.ACT_SIGMOID
    w, out, dz, g = (np.zeros(s, F32) for s in ((3, 6), (6, 3), (6, 3), (3, 6)))
    z3, z36 = np.zeros((3, 3), np.int32), np.zeros((3, 6), F32)
    return {
        "x_1d": (lambda: k.pack_input(np.zeros(5, F32), 4), TypeError, "2-D"),
        "x_3d": (lambda: k.pack_input(np.zeros((2, 2, 2), F32), 4), TypeError, "2-D"),
        "x_list": (lambda: k.pack_input([[1.0]], 4), TypeError, "numpy array"),
        "x_int": (lambda: k.pack_input(z3, 4), TypeError, "float32 or float64"),
        "x_strided": (lambda: k.pack_input(z36[:, ::2], 4), ValueError, "C-contiguous"),
        "x_fortran": (lambda: k.pack_input(z36.T, 4), ValueError, "C-contiguous"),
        "block_0": (lambda: k.pack_input(X, 0), ValueError, "block must be in 1..64"),
        "block_65": (lambda: k.pack_input(X, 65), ValueError, "block must be in 1..64"),
        "block_bool": (lambda: k.pack_input(X, True), TypeError, "block must be an int"),
        "block_float": (lambda: k.pack_input(X, 2.0), TypeError, "block must be an int"),
        "fwd_raw_x": (lambda: k.packed_forward(X, w, sig, out), TypeError, "PackedInput"),
        "fwd_w_f64": (lambda: k.packed_forward(p, w.astype(np.float64), sig, out), TypeError,
                      "w .*float"),
        "fwd_w_cols": (lambda: k.packed_forward(p, w[:, 1:].copy(), sig, out), ValueError,
                       "w has 5 columns"),
        "fwd_out_shape": (lambda: k.packed_forward(p, w, sig, out[:, 1:].copy()), ValueError,
                          "out has shape"),
        "fwd_act": (lambda: k.packed_forward(p, w, 99, out), ValueError, "activation"),
        "grad_raw_x": (lambda: k.packed_weight_grad(dz, X, g), TypeError, "PackedInput"),
        "grad_dz_rows": (lambda: k.packed_weight_grad(dz[1:].copy(), p, g), ValueError,
                         "dz has 5 rows"),
        "grad_dz_f64": (lambda: k.packed_weight_grad(dz.astype(np.float64), p, g), TypeError,
                        "dz .*float|float.* dz"),
        "grad_out_shape": (lambda: k.packed_weight_grad(dz, p, g[:, 1:].copy()), ValueError,
                           "out has shape"),
    }


BAD = list(_bad_calls(R))


@pytest.mark.parametrize("kern", BACKENDS)
@pytest.mark.parametrize("case", BAD)
def test_bad_arguments_raise(kern, case):
    call, exc, match = _bad_calls(kern)[case]
    with pytest.raises(exc, match=match):
        call()


@needs_native
def test_native_mixed_output_dtype_raises():
    """(The twin, as for dense_forward, does not check the output's dtype.)"""
    p = native.pack_input(X, 4)
    with pytest.raises(TypeError, match="dtype"):
        native.packed_forward(p, np.zeros((3, 6), F32), R.ACT_SIGMOID, np.zeros((6, 3)))
    with pytest.raises(TypeError, match="dtype"):
        native.packed_weight_grad(np.zeros((6, 3), F32), p, np.zeros((3, 6)))


# ---------------------------------------------------------------------------------------
# 7. PackedInput: frozen, read-only, checked, copies the caller's arrays

@pytest.mark.parametrize("kern", BACKENDS)
def test_packed_input_is_frozen_and_read_only(kern):
    p = kern.pack_input(X, 4)
    for name in ("x", "block", "rval", "nnz_extra"):
        with pytest.raises(AttributeError):
            setattr(p, name, None)
    for f in RP.PackedInput.FIELDS:
        a = getattr(p, f)
        assert not a.flags.writeable, f
        with pytest.raises(ValueError, match="read-only"):
            a[(0,) * a.ndim] = 1
    assert p.block == 4 and p.nnz == 2


def _arrays(x, block):
    """A valid pack's arrays, as writable copies (the constructor's keyword arguments)."""
    p = R.pack_input(x, block)
    return {f: getattr(p, f).copy() for f in RP.PackedInput.FIELDS}


XC = np.arange(1, 51, dtype=np.float64).reshape(10, 5)
XC[::3, 1] = XC[1::4, 3] = 0                   # 10 rows in blocks of 4: the last one half full


def _move_bit(a, row, col_from, bit_from, bit_to):
    """Clear bit ``bit_from`` of a[row, col_from] (set) and set bit_to: the counts stay."""
    one = a.dtype.type(1)
    assert a[row, col_from] >> a.dtype.type(bit_from) & one
    a[row, col_from] ^= (one << a.dtype.type(bit_from)) | (one << a.dtype.type(bit_to))


BROKEN = {
    "roff_counts": (lambda a: a["roff"].__setitem__(2, a["roff"][2] + 1), "roff"),
    "roff_start": (lambda a: a.__setitem__("roff", a["roff"] + 1), "roff|rval"),
    "rmask_dtype": (lambda a: a.__setitem__("rmask", a["rmask"].astype(np.int32)), "rmask"),
    "rmask_shape": (lambda a: a.__setitem__("rmask", a["rmask"][1:]), "rmask"),
    "rval_length": (lambda a: a.__setitem__("rval", a["rval"][:-1]), "rval"),
    "cval_dtype": (lambda a: a.__setitem__("cval", a["cval"].astype(np.float32)), "cval"),
    "coff_counts": (lambda a: a["coff"].__setitem__(1, a["coff"][1] - 1), "coff"),
    "rmask_beyond_last_column": (lambda a: _move_bit(a["rmask"], 0, 0, 0, 7), "last column"),
    "cmask_beyond_last_row": (lambda a: _move_bit(a["cmask"], 2, 0, 0, 3), "last row"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_constructor_rejects_inconsistent_arrays(case):
    arrays = _arrays(XC, 4)
    RP.PackedInput(XC, 4, **arrays)          # the unbroken arrays pass
    breaks, match = BROKEN[case]
    breaks(arrays)
    with pytest.raises(ValueError, match=match):
        RP.PackedInput(XC, 4, **arrays)


def test_constructor_copies_the_callers_arrays():
    arrays = _arrays(XC, 4)
    p = RP.PackedInput(XC, 4, **arrays)
    before = {f: getattr(p, f).copy() for f in RP.PackedInput.FIELDS}
    for f, a in arrays.items():
        assert a.flags.writeable and getattr(p, f) is not a
        assert not np.shares_memory(getattr(p, f), a)
        a[...] = 0                           # the caller's arrays are still theirs
    assert_same_pack(p, R.pack_input(XC, 4))
    for f in RP.PackedInput.FIELDS:
        np.testing.assert_array_equal(getattr(p, f), before[f])


# ---------------------------------------------------------------------------------------
# 8. L-BFGS: when it packs, and gradients with a pack

def _net(d, h=12, o=4):
    return synaptic.mlp([d, h, o], ["sigmoid", "softmax"], synaptic.training("lbfgs"),
                        dtype=np.float32, seed=1)


def _data(rng, n, d, o, zeros=0.8):
    x = mnist_like(rng, n, d, np.float32, zeros)
    t = np.eye(o, dtype=np.float32)[rng.integers(0, o, n)]
    return x, t


@needs_native
def test_lbfgs_packs_only_when_it_pays():
    rng = np.random.default_rng(5)
    gradients = lbfgs.LBFGS(_net(50)).gradients
    x, _ = _data(rng, 300, 50, 4)
    p = lbfgs.pack(gradients, x, native)
    assert isinstance(p, RP.PackedInput) and p.x is x and 1 <= p.block <= 64
    assert_same_pack(p, R.pack_input(x, p.block))
    assert isinstance(lbfgs.pack(gradients, x[:256].copy(), native), RP.PackedInput)
    assert lbfgs.pack(gradients, x, R) is None                            # numpy backend
    assert lbfgs.pack(gradients, x[:255].copy(), native) is None          # too few rows
    dense = rng.uniform(0.1, 1.0, (300, 50)).astype(np.float32)
    dense[rng.uniform(size=dense.shape) < 0.1] = 0
    assert lbfgs.pack(gradients, dense, native) is None                   # few zeros


@needs_native
def test_gradients_with_a_pack_match_without(monkeypatch):
    rng = np.random.default_rng(6)
    d, o = 60, 4
    net = _net(d, o=o)
    gradients = lbfgs.LBFGS(net).gradients
    x, t = _data(rng, 400, d, o)
    p = lbfgs.pack(gradients, x, native)
    assert p is not None
    plain = [g.copy() for g in gradients.compute(x, t, native)]
    with synaptic.backend("numpy"):
        twin_grads = [g.copy() for g in gradients.compute(x, t, R)]
    calls = []
    for name in ("packed_forward", "packed_weight_grad"):
        real = getattr(native, name)
        monkeypatch.setattr(native, name,
                            lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    with_pack = [g.copy() for g in gradients.compute(x, t, native, p)]
    assert sorted(calls) == ["packed_forward", "packed_weight_grad"]      # the pack was read
    for a, b, c in zip(with_pack, plain, twin_grads):
        scale = np.abs(c).max()
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5 * scale)
    with pytest.raises(ValueError, match="same x"):
        gradients.compute(x.copy(), t, native, p)
