"""The compiled convolution and pooling kernels (``conv.pyx``, ``pool.pyx``) against their NumPy
twin (``reference_conv.py``, the contract), and both backends against the spec's vectors
(SYNAPTIC.md §9.3, §9.4).

Random geometries come from hypothesis: 1 sample, 1 channel, a kernel the size of the field,
odd sizes, pooled and not, float32 and float64, 1 and 2 threads (with 2 threads the pooling
loops are forced parallel at every size).  Every output starts as NaN, so an element a kernel
forgets to write fails the comparison.
"""
import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic
from synaptic._kernels import native, reference as R, reference_conv as RC

from helpers import BACKENDS as BACKEND_NAMES

needs_native = pytest.mark.skipif(native is None, reason="native backend not built")
BACKENDS = [pytest.param(R, id="numpy"), pytest.param(native, id="native", marks=needs_native)]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
THREADS = [pytest.param(1, id="t1"), pytest.param(2, id="t2")]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NEW_ACTS = [R.ACT_LEAKY_RELU, R.ACT_ELU, R.ACT_SOFTPLUS]
ACTS = [R.ACT_LINEAR, R.ACT_SIGMOID, R.ACT_TANH, R.ACT_RELU, R.ACT_SOFTMAX] + NEW_ACTS
DERIV_ACTS = [R.ACT_LINEAR, R.ACT_SIGMOID, R.ACT_TANH, R.ACT_RELU] + NEW_ACTS
SLOPE = 0.15    # leaky-relu's, not the default (the other activations ignore it)


@contextlib.contextmanager
def threads(n):
    """``n`` threads; with n > 1 the OpenMP loops run in parallel at every size."""
    with synaptic.num_threads(n):
        old = ((native.conv._set_parallel_threshold(0), native.pool._set_parallel_threshold(0))
               if n > 1 else None)
        try:
            yield
        finally:
            if old is not None:
                native.conv._set_parallel_threshold(old[0])
                native.pool._set_parallel_threshold(old[1])


def nans(shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


def close(got, want, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"] * scale)


@st.composite
def geometries(draw, pooled=None):
    """(geom, K, n, pool): 1 channel / 1 sample / kernel = field / odd sizes all come up."""
    c = draw(st.one_of(st.just(1), st.integers(1, 3)))
    h = draw(st.integers(1, 11))
    w = draw(st.integers(1, 11))
    fh = draw(st.one_of(st.just(h), st.integers(1, h)))
    fw = draw(st.one_of(st.just(w), st.integers(1, w)))
    k = draw(st.one_of(st.just(1), st.integers(1, 8)))
    n = draw(st.one_of(st.just(1), st.integers(1, 6)))
    hc, wc = h - fh + 1, w - fw + 1
    kinds = [R.POOL_NONE, R.POOL_MAX, R.POOL_AVG] if pooled is None else pooled
    kind = draw(st.sampled_from(kinds))
    ph = draw(st.sampled_from([d for d in range(1, hc + 1) if hc % d == 0]))
    pw = draw(st.sampled_from([d for d in range(1, wc + 1) if wc % d == 0]))
    return (c, h, w, fh, fw), k, n, (kind, ph, pw) if kind != R.POOL_NONE else (kind, 1, 1)


def pooled_shape(geom, k, pool):
    c, h, w, fh, fw = geom
    hc, wc = h - fh + 1, w - fw + 1
    kind, ph, pw = pool
    return k * hc * wc, k * (hc // ph) * (wc // pw)


def data(rng, geom, k, n, dtype):
    c, h, w, fh, fw = geom
    x = rng.standard_normal((n, c * h * w)).astype(dtype)
    wts = (rng.standard_normal((k, 1 + c * fh * fw)) / np.sqrt(c * fh * fw)).astype(dtype)
    return x, wts


def clear_windows(pre, k, hc, wc, ph, pw, gap):
    """Windows whose first maximum cannot move with rounding: every other element is
    either exactly the maximum or below it by more than ``gap``."""
    n = pre.shape[0]
    win = (pre.reshape(n, k, hc // ph, ph, wc // pw, pw).transpose(0, 1, 2, 4, 3, 5)
           .reshape(n, k, hc // ph, wc // pw, ph * pw).astype(np.float64))
    top = win.max(axis=-1, keepdims=True)
    return np.all((win == top) | (win < top - gap), axis=-1).reshape(n, -1)


# ---------------------------------------------------------------------------------------
# native == twin on random geometries

@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(g=geometries(), act=st.sampled_from(ACTS), seed=st.integers(0, 2**32 - 1),
       keep_pre=st.booleans(), mode=st.sampled_from([-1, 0, 1, 2]))
def test_conv_forward(dtype, nthreads, g, act, seed, keep_pre, mode):
    """Every forward mode: chosen per shape, im2col + micro-kernel, im2col + SciPy's GEMM,
    direct."""
    geom, k, n, pool = g
    rng = np.random.default_rng(seed)
    x, wts = data(rng, geom, k, n, dtype)
    units, pooled = pooled_shape(geom, k, pool)
    kind = pool[0]
    outs = []
    for backend in (R, native):
        out = nans((n, pooled), dtype)
        idx = np.full((n, pooled), -7, np.int32) if kind == R.POOL_MAX else None
        want_pre = kind != R.POOL_NONE and (keep_pre or kind == R.POOL_MAX)
        pre = nans((n, units), dtype) if want_pre else None
        old = native.conv._set_gemm_mode(mode)
        try:
            with threads(nthreads):
                backend.conv_forward(x, wts, geom, act, pool, out, idx, pre, slope=SLOPE)
        finally:
            native.conv._set_gemm_mode(old)
        outs.append((out, idx, pre))
    (out_r, idx_r, pre_r), (out_n, idx_n, pre_n) = outs
    close(out_n, out_r, dtype, scale=10)
    if pre_r is not None:
        close(pre_n, pre_r, dtype, scale=10)
    if kind == R.POOL_MAX:
        c, h, w, fh, fw = geom
        hc, wc = h - fh + 1, w - fw + 1
        clear = clear_windows(pre_r, k, hc, wc, pool[1], pool[2], 1e-3)
        np.testing.assert_array_equal(idx_n[clear], idx_r[clear])
        # every index points at its own output value, inside its own map
        np.testing.assert_array_equal(np.take_along_axis(pre_n, idx_n.astype(np.int64), 1), out_n)
        maps = np.arange(pooled) // (pooled // k)
        assert np.all(idx_n // (hc * wc) == maps)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(g=geometries(), seed=st.integers(0, 2**32 - 1), act=st.sampled_from(DERIV_ACTS),
       sparse=st.floats(0.0, 0.9))
def test_conv_gradients(dtype, nthreads, g, seed, act, sparse):
    """conv_weight_grad and conv_input_grad, with a dense dz or through the max-pool indices."""
    geom, k, n, pool = g
    rng = np.random.default_rng(seed)
    x, wts = data(rng, geom, k, n, dtype)
    units, pooled = pooled_shape(geom, k, pool)
    c, h, w, fh, fw = geom
    if pool[0] == R.POOL_MAX:
        out, idx = np.empty((n, pooled), dtype), np.empty((n, pooled), np.int32)
        R.conv_forward(x, wts, geom, R.ACT_TANH, pool, out, idx)
        dz = rng.standard_normal((n, pooled)).astype(dtype)
    else:
        idx = None
        dz = rng.standard_normal((n, units)).astype(dtype)
    dz[rng.random(dz.shape) < sparse] = 0
    y = rng.uniform(-1, 1, x.shape).astype(dtype)
    results = []
    for backend in (R, native):
        gw = nans(wts.shape, dtype)
        dx = nans(x.shape, dtype)
        with threads(nthreads):
            backend.conv_weight_grad(dz, idx, x, geom, gw)
            backend.conv_input_grad(dz, idx, wts, geom, y, act, dx, slope=SLOPE)
        results.append((gw, dx))
    close(results[1][0], results[0][0], dtype, scale=30)
    close(results[1][1], results[0][1], dtype, scale=10)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(k=st.integers(1, 4), ho=st.integers(1, 5), wo=st.integers(1, 19), ph=st.integers(1, 3),
       pw=st.integers(1, 3), n=st.one_of(st.just(1), st.integers(1, 5)),
       seed=st.integers(0, 2**32 - 1), ties=st.booleans(), act=st.sampled_from(DERIV_ACTS))
def test_pooling(dtype, nthreads, k, ho, wo, ph, pw, n, seed, ties, act):
    """max_pool, avg_pool and their backward kernels; integer data gives exact ties."""
    rng = np.random.default_rng(seed)
    hc, wc = ho * ph, wo * pw
    shape = (k, hc, wc)
    y = (rng.integers(0, 3, (n, k * hc * wc)) if ties
         else rng.standard_normal((n, k * hc * wc))).astype(dtype)
    res = []
    for backend in (R, native):
        mx, avg = nans((n, k * ho * wo), dtype), nans((n, k * ho * wo), dtype)
        idx = np.full((n, k * ho * wo), -7, np.int32)
        with threads(nthreads):
            backend.max_pool(y, shape, ph, pw, mx, idx)
            backend.avg_pool(y, shape, ph, pw, avg)
            g = np.linspace(-1, 1, mx.size).reshape(mx.shape).astype(dtype)
            back_max, back_avg = nans(y.shape, dtype), nans(y.shape, dtype)
            backend.max_pool_backward(g, idx, back_max)
            backend.avg_pool_backward(g, shape, ph, pw, np.tanh(y), act, back_avg, slope=SLOPE)
        res.append((mx, idx, avg, back_max, back_avg))
    np.testing.assert_array_equal(res[1][0], res[0][0])      # a max is exact
    np.testing.assert_array_equal(res[1][1], res[0][1])      # the first maximum, same index
    np.testing.assert_array_equal(res[1][2], res[0][2])      # the same sums in the same order
    np.testing.assert_array_equal(res[1][3], res[0][3])
    np.testing.assert_allclose(res[1][4], res[0][4], rtol=1e-6 if dtype == np.float32 else 1e-14)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_skips_nan_and_keeps_the_first_of_ties(dtype):
    y = np.array([[np.nan, 1, 1, 0], [np.nan, np.nan, np.nan, np.nan],
                  [-np.inf, -np.inf, 2, 2]], dtype).reshape(3, 4)
    for backend in (R, native):
        out, idx = nans((3, 1), dtype), np.zeros((3, 1), np.int32)
        backend.max_pool(y, (1, 2, 2), 2, 2, out, idx)
        assert idx.ravel().tolist() == [1, 0, 2]
        assert out[0, 0] == 1 and np.isnan(out[1, 0]) and out[2, 0] == 2


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool", [(R.POOL_NONE, 1, 1), (R.POOL_MAX, 2, 2), (R.POOL_AVG, 2, 2)],
                         ids=["none", "max", "avg"])
def test_large_batch_with_2_threads_and_bits_independent_of_threads(dtype, pool):
    """A batch big enough for every thread; the weight gradient has the same bits for 1 and 2
    threads (fixed chunks added in a fixed order)."""
    rng = np.random.default_rng(3)
    geom, k, n = (3, 14, 12, 5, 3), 6, 203
    x, wts = data(rng, geom, k, n, dtype)
    units, pooled = pooled_shape(geom, k, pool)
    out_r, out_n = nans((n, pooled), dtype), nans((n, pooled), dtype)
    idx = np.empty((n, pooled), np.int32) if pool[0] == R.POOL_MAX else None
    R.conv_forward(x, wts, geom, R.ACT_RELU, pool, out_r, idx)
    dz = rng.standard_normal((n, pooled if idx is not None else units)).astype(dtype)
    grads = []
    with synaptic.num_threads(2):
        native.conv_forward(x, wts, geom, R.ACT_RELU, pool, out_n)
    close(out_n, out_r, dtype, scale=10)
    for t in (1, 2, 1, 2):
        gw = nans(wts.shape, dtype)
        with threads(t):
            native.conv_weight_grad(dz, idx, x, geom, gw)
        grads.append(gw)
    assert all(g.tobytes() == grads[0].tobytes() for g in grads)
    want = nans(wts.shape, dtype)
    R.conv_weight_grad(dz, idx, x, geom, want)
    close(grads[0], want, dtype, scale=100)


@needs_native
def test_work_size_is_the_compiled_layout_and_reused():
    for geom, k in [((1, 28, 28, 9, 9), 3), ((32, 12, 12, 5, 5), 64), ((2, 3, 5, 3, 1), 7)]:
        shared, per = native.conv._layout(geom, k)
        for t in (1, 2, 5):
            assert R.conv_work_size(geom, k, t) == shared + t * per + RC.PAD
    # a work array sized for one thread is enough (the kernel then uses one thread)
    rng = np.random.default_rng(0)
    geom, k = (2, 9, 9, 3, 3), 4
    x, wts = data(rng, geom, k, 5, np.float32)
    work = np.empty(R.conv_work_size(geom, k, 1), np.float32)
    a, b = nans((5, k * 49), np.float32), nans((5, k * 49), np.float32)
    with synaptic.num_threads(2):
        native.conv_forward(x, wts, geom, R.ACT_TANH, (R.POOL_NONE, 1, 1), a, work=work)
    native.conv_forward(x, wts, geom, R.ACT_TANH, (R.POOL_NONE, 1, 1), b)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# the spec's vectors, on both backends

W93 = [[0, 1, 0, 1, 2], [0, 2, 2, 1, 1], [0, 0, 1, 0, 1]]
X93 = ["1011 0111 0100 1000", "1000 1101 0111 0111", "0111 0110 0010 1101", "0001 0011 0111 1010"]
Z93 = ["3 3 4 2 2 1 1 1 0 3 4 6 3 5 4 3 2 0 1 2 2 2 1 1 1 0 0",
       "4 1 2 3 4 3 2 4 4 4 1 1 5 4 4 3 6 6 1 0 1 2 1 2 2 2 2",
       "2 4 2 0 3 2 3 1 3 3 6 5 2 5 3 2 3 3 2 2 1 1 2 0 1 1 1",
       "0 2 3 2 3 4 1 3 2 0 1 4 1 4 6 3 5 5 0 1 2 1 2 2 1 2 1"]


def x93(dtype=np.float64):
    return np.array([[int(ch) for ch in s.replace(" ", "")] for s in X93], dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_spec_9_3_conv_forward(backend, dtype):
    wts = np.array(W93, dtype)
    out = nans((4, 27), dtype)
    backend.conv_forward(x93(dtype), wts, (1, 4, 4, 2, 2), R.ACT_LINEAR, (R.POOL_NONE, 1, 1), out)
    np.testing.assert_array_equal(out, np.array([s.split() for s in Z93], dtype))
    pooled, idx, pre = nans((4, 3), dtype), np.zeros((4, 3), np.int32), nans((4, 27), dtype)
    backend.conv_forward(x93(dtype), wts, (1, 4, 4, 2, 2), R.ACT_LINEAR, (R.POOL_MAX, 3, 3),
                         pooled, idx, pre)
    np.testing.assert_array_equal(pooled, [[4, 6, 2]] * 4)
    np.testing.assert_array_equal(idx, [[2, 11, 19], [0, 16, 21], [1, 10, 18], [5, 14, 20]])
    np.testing.assert_array_equal(pre, out)


C94 = ["3 4 4 0 4 1 1 1 0 2 0 0 4 3 2 0 3 4 1 1 3 4 2 0",
       "0 0 0 2 3 3 1 0 0 3 0 1 4 0 2 2 3 1 0 0 4 2 1 0",
       "3 4 2 0 3 2 2 3 0 2 3 4 1 1 1 0 1 3 0 0 1 0 2 3",
       "3 3 2 1 1 0 1 3 2 1 0 3 4 3 0 2 2 4 3 0 3 3 3 4"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_spec_9_4_pooling_kernel(backend, dtype):
    """K = 1, a 6-row x 4-column map, pw = 2, ph = 3: wout = hout = 2."""
    c = np.array([s.split() for s in C94], dtype)
    out, idx = nans((4, 4), dtype), np.zeros((4, 4), np.int32)
    backend.max_pool(c, (1, 6, 4), 3, 2, out, idx)
    np.testing.assert_array_equal(out, [[4, 4, 4, 2], [3, 2, 4, 2], [4, 4, 3, 3], [3, 3, 4, 4]])
    np.testing.assert_array_equal(idx, [[1, 2, 12, 14], [4, 3, 12, 14], [1, 11, 17, 23],
                                        [0, 7, 12, 23]])
    back = nans(c.shape, dtype)
    backend.max_pool_backward(out, idx, back)
    expected = np.zeros_like(c)
    np.put_along_axis(expected, idx.astype(np.int64), out, 1)
    np.testing.assert_array_equal(back, expected)


# ---------------------------------------------------------------------------------------
# bad input: a clear error before any work, never a crash

def _args():
    rng = np.random.default_rng(0)
    geom = (2, 6, 5, 3, 2)
    x = rng.standard_normal((3, 60))
    w = rng.standard_normal((4, 13))
    return geom, x, w


def _forward_cases():
    geom, x, w = _args()
    out = np.empty((3, 4 * 16))
    pooled, idx = np.empty((3, 4 * 4)), np.empty((3, 4 * 4), np.int32)
    none, mx = (R.POOL_NONE, 1, 1), (R.POOL_MAX, 2, 2)
    f = "conv_forward"
    return [
        (f, (x.astype(np.float32), w, geom, 1, none, out), TypeError),        # mixed dtypes
        (f, (x.astype(np.int64), w, geom, 1, none, out), TypeError),          # not float
        (f, (x.astype(np.float16), w, geom, 1, none, out), TypeError),
        (f, (list(x), w, geom, 1, none, out), TypeError),                      # not an array
        (f, (x, w, (2, 6, 5, 7, 2), 1, none, out), ValueError),              # kernel > field
        (f, (x, w, (2, 6, 5, 0, 2), 1, none, out), ValueError),
        (f, (x, w, (2, 6, 5, 3), 1, none, out), ValueError),                  # geom length
        (f, (x, w, (2, 6, 6, 3, 2), 1, none, out), ValueError),              # x width
        (f, (x, w[:, :12], geom, 1, none, out), ValueError),                 # w width
        (f, (x, w, geom, 99, none, out), ValueError),                         # activation
        (f, (x, w, geom, 1, (R.POOL_MAX, 3, 2), pooled, idx), ValueError),   # 3 does not divide 4
        (f, (x, w, geom, 1, (7, 2, 2), pooled), ValueError),                 # pool kind
        (f, (x, w, geom, 1, none, out[:, :-1]), ValueError),                  # out shape
        (f, (x, w, geom, 1, mx, pooled, idx.astype(np.int64)), TypeError),  # idx dtype
        (f, (x, w, geom, 1, mx, pooled, idx[:, 1:]), ValueError),            # idx shape
        (f, (x, w, geom, 1, none, out, idx), ValueError),                    # idx without pooling
        (f, (x, w, geom, 1, (R.POOL_AVG, 2, 2), pooled, idx), ValueError),  # idx with avg
        (f, (x, w, geom, 1, mx, pooled, idx, np.empty((3, 5))), ValueError),  # pre shape
        (f, (x, w, geom, 1, none, out, None, None, np.empty(5)), ValueError),  # work too small
        (f, (x, w, geom, 1, none, out, None, None,
             np.empty(10**6, np.float32)), TypeError),                        # work dtype
    ]


def _grad_cases():
    geom, x, w = _args()
    dz = np.ones((3, 64))
    g, idx = np.ones((3, 32)), np.zeros((3, 32), np.int32)
    for o in range(32):
        idx[:, o] = (o // 8) * 16          # a valid index in the map of unit o
    bad = idx.copy()
    bad[1, 9] = 0                           # unit 9 belongs to map 1: index 0 is map 0
    gw, dx = np.empty((4, 13)), np.empty((3, 60))
    wg, ig = "conv_weight_grad", "conv_input_grad"
    return [
        (wg, (dz[:, :-1], None, x, geom, gw), ValueError),
        (wg, (dz, None, x[:2], geom, gw), ValueError),
        (wg, (g, bad, x, geom, gw), ValueError),
        (wg, (g, idx.astype(np.int64), x, geom, gw), TypeError),
        (wg, (g[:, :-1], idx[:, :-1], x, geom, gw), ValueError),             # not K columns each
        (wg, (dz, None, x, geom, gw[:, :-1]), ValueError),
        (wg, (dz.astype(np.float32), None, x, geom, gw), TypeError),
        (ig, (dz, None, w, geom, x, R.ACT_TANH, dx[:, :-1]), ValueError),
        (ig, (g, bad, w, geom, x, R.ACT_TANH, dx), ValueError),
        (ig, (dz, None, w, geom, None, R.ACT_TANH, dx), ValueError),         # y needed
        (ig, (dz, None, w, geom, x, R.ACT_BINARY_THRESHOLD, dx), ValueError),  # no derivative
        (ig, (dz, None, w, geom, x, R.ACT_TANH, x), ValueError),             # out is y
    ]


def _pool_cases():
    y = np.ones((2, 24))
    out, idx = np.empty((2, 4)), np.zeros((2, 4), np.int32)
    return [
        ("max_pool", (y, (1, 6, 4), 4, 2, out, idx), ValueError),            # 4 does not divide 6
        ("max_pool", (y, (2, 6, 4), 3, 2, out, idx), ValueError),            # y width
        ("max_pool", (y, (1, 6, 4), 3, 2, out[:, :3], idx), ValueError),
        ("max_pool", (y, (1, 6, 4), 3, 2, out, idx.astype(np.uint32)), TypeError),
        ("avg_pool", (y.astype(np.float32), (1, 6, 4), 3, 2, out), TypeError),
        ("avg_pool", (y, (1, 6, 4), 0, 2, out), ValueError),
        ("max_pool_backward", (out, idx + 24, y), ValueError),               # index past the row
        ("max_pool_backward", (out, idx - 1, y), ValueError),
        ("max_pool_backward", (out, idx, y[:1]), ValueError),
        ("avg_pool_backward", (out, (1, 6, 4), 3, 2, y, R.ACT_TANH, y), ValueError),  # out is y
        ("avg_pool_backward", (out, (1, 6, 4), 3, 2, None, R.ACT_TANH, np.empty((2, 24))),
         ValueError),
    ]


CASES = _forward_cases() + _grad_cases() + _pool_cases()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_bad_arguments_raise(backend, case):
    name, args, error = CASES[case]
    with pytest.raises(error):
        getattr(backend, name)(*args)


@pytest.mark.parametrize("backend", BACKENDS)
def test_overlapping_outputs_raise(backend):
    geom, x, w = _args()
    big = np.empty(3 * 60 + 3 * 64)
    xs, out = big[:180].reshape(3, 60), big[180:].reshape(3, 64)
    xs[...] = x
    with pytest.raises(ValueError):                        # out overlaps x
        backend.conv_forward(xs, w, geom, 1, (R.POOL_NONE, 1, 1), big[:192].reshape(3, 64))
    work = np.empty(R.conv_work_size(geom, 4, 1) + 192)
    with pytest.raises(ValueError):                        # work holds out
        backend.conv_forward(x, w, geom, 1, (R.POOL_NONE, 1, 1), work[:192].reshape(3, 64),
                             work=work)


@needs_native
def test_read_only_and_strided_outputs_raise_in_native():
    """The twin writes through any view; the compiled kernels need C-contiguous, writable
    outputs and say so."""
    geom, x, w = _args()
    out = np.empty((3, 64))
    out.flags.writeable = False
    with pytest.raises(ValueError):
        native.conv_forward(x, w, geom, 1, (R.POOL_NONE, 1, 1), out)
    with pytest.raises(ValueError):
        native.conv_forward(x, w, geom, 1, (R.POOL_NONE, 1, 1), np.empty((64, 3)).T)


def test_both_backends_are_listed():
    assert "numpy" in BACKEND_NAMES


# ---------------------------------------------------------------------------------------
# strides and padding (the long geom), strided pooling (the long pool)

@st.composite
def strided_geometries(draw, pooled=None):
    """(geom, K, n, pool, (hc, wc)) with strides 1-3, paddings 0..f-1 on each side (the
    kernel must fit the padded field), and a pool of any fitting size and stride 1-3 (so
    overlapping windows, and windows that leave trailing rows out)."""
    c = draw(st.one_of(st.just(1), st.integers(1, 3)))
    h = draw(st.one_of(st.just(1), st.integers(1, 11)))
    w = draw(st.integers(1, 11))
    fh, fw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pt, pb = draw(st.integers(0, fh - 1)), draw(st.integers(0, fh - 1))
    pl, pr = draw(st.integers(0, fw - 1)), draw(st.integers(0, fw - 1))
    fh, fw = min(fh, h + pt + pb), min(fw, w + pl + pr)
    pt, pb, pl, pr = min(pt, fh - 1), min(pb, fh - 1), min(pl, fw - 1), min(pr, fw - 1)
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    geom = (c, h, w, fh, fw, sh, sw, pt, pb, pl, pr)
    hc, wc = RC.conv_map(RC.check_geom(geom))
    k = draw(st.one_of(st.just(1), st.integers(1, 6)))
    n = draw(st.one_of(st.just(1), st.integers(1, 5)))
    kinds = [R.POOL_NONE, R.POOL_MAX, R.POOL_AVG] if pooled is None else pooled
    kind = draw(st.sampled_from(kinds))
    if kind == R.POOL_NONE:
        pool = (kind, 1, 1)
    else:
        pool = (kind, draw(st.integers(1, hc)), draw(st.integers(1, wc)),
                draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return geom, k, n, pool, (hc, wc)


def strided_shape(geom, k, pool):
    hc, wc = RC.conv_map(RC.check_geom(geom))
    _, _, _, _, _, ho, wo = RC.check_pool(pool, hc, wc)
    return k * hc * wc, k * ho * wo


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(g=strided_geometries(), act=st.sampled_from(ACTS), seed=st.integers(0, 2**32 - 1),
       mode=st.sampled_from([-1, 0, 1, 2]))
def test_strided_padded_conv_forward(dtype, nthreads, g, act, seed, mode):
    """Every forward mode (a forced direct mode falls back to im2col with a stride)."""
    geom, k, n, pool, (hc, wc) = g
    rng = np.random.default_rng(seed)
    x, wts = data(rng, geom[:5], k, n, dtype)
    units, pooled = strided_shape(geom, k, pool)
    kind = pool[0]
    outs = []
    for backend in (R, native):
        out = nans((n, pooled), dtype)
        idx = np.full((n, pooled), -7, np.int32) if kind == R.POOL_MAX else None
        pre = nans((n, units), dtype) if kind != R.POOL_NONE else None
        old = native.conv._set_gemm_mode(mode)
        try:
            with threads(nthreads):
                backend.conv_forward(x, wts, geom, act, pool, out, idx, pre)
        finally:
            native.conv._set_gemm_mode(old)
        outs.append((out, idx, pre))
    (out_r, idx_r, pre_r), (out_n, idx_n, pre_n) = outs
    close(out_n, out_r, dtype, scale=10)
    if pre_r is not None:
        close(pre_n, pre_r, dtype, scale=10)
    if kind == R.POOL_MAX:
        np.testing.assert_array_equal(np.take_along_axis(pre_n, idx_n.astype(np.int64), 1), out_n)
        maps = np.arange(pooled) // (pooled // k)
        assert np.all(idx_n // (hc * wc) == maps)
        # the index of a unit lies inside its window
        _, ph, pw, sh, sw = pool
        _, _, _, _, _, ho, wo = RC.check_pool(pool, hc, wc)
        o = np.arange(pooled) % (ho * wo)
        ii, jj = idx_n % (hc * wc) // wc, idx_n % wc
        assert np.all((ii >= o // wo * sh) & (ii < o // wo * sh + ph))
        assert np.all((jj >= o % wo * sw) & (jj < o % wo * sw + pw))


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(g=strided_geometries(pooled=[R.POOL_NONE, R.POOL_MAX]), seed=st.integers(0, 2**32 - 1),
       act=st.sampled_from(DERIV_ACTS), sparse=st.floats(0.0, 0.9))
def test_strided_padded_conv_gradients(dtype, nthreads, g, seed, act, sparse):
    """conv_weight_grad and conv_input_grad with strides and padding, a dense dz or one
    routed by the indices of a strided (maybe overlapping) max pool."""
    geom, k, n, pool, (hc, wc) = g
    rng = np.random.default_rng(seed)
    x, wts = data(rng, geom[:5], k, n, dtype)
    units, pooled = strided_shape(geom, k, pool)
    if pool[0] == R.POOL_MAX:
        out, idx = np.empty((n, pooled), dtype), np.empty((n, pooled), np.int32)
        R.conv_forward(x, wts, geom, R.ACT_TANH, pool, out, idx)
        dz = rng.standard_normal((n, pooled)).astype(dtype)
    else:
        idx = None
        dz = rng.standard_normal((n, units)).astype(dtype)
    dz[rng.random(dz.shape) < sparse] = 0
    y = rng.uniform(-1, 1, x.shape).astype(dtype)
    results = []
    for backend in (R, native):
        gw, dx = nans(wts.shape, dtype), nans(x.shape, dtype)
        with threads(nthreads):
            backend.conv_weight_grad(dz, idx, x, geom, gw)
            backend.conv_input_grad(dz, idx, wts, geom, y, act, dx)
        results.append((gw, dx))
    close(results[1][0], results[0][0], dtype, scale=30)
    close(results[1][1], results[0][1], dtype, scale=10)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(k=st.integers(1, 4), hc=st.one_of(st.just(1), st.integers(1, 9)), wc=st.integers(1, 19),
       data_=st.data(), n=st.one_of(st.just(1), st.integers(1, 5)),
       seed=st.integers(0, 2**32 - 1), ties=st.booleans(), act=st.sampled_from(DERIV_ACTS))
def test_strided_pooling(dtype, nthreads, k, hc, wc, data_, n, seed, ties, act):
    """max_pool, avg_pool, avg_pool_backward with ``stride``: overlapping windows, floor mode."""
    ph, pw = data_.draw(st.integers(1, hc)), data_.draw(st.integers(1, wc))
    stride = (data_.draw(st.integers(1, 4)), data_.draw(st.integers(1, 4)))
    ho, wo = (hc - ph) // stride[0] + 1, (wc - pw) // stride[1] + 1
    rng = np.random.default_rng(seed)
    shape = (k, hc, wc)
    y = (rng.integers(0, 3, (n, k * hc * wc)) if ties
         else rng.standard_normal((n, k * hc * wc))).astype(dtype)
    res = []
    for backend in (R, native):
        mx, avg = nans((n, k * ho * wo), dtype), nans((n, k * ho * wo), dtype)
        idx = np.full((n, k * ho * wo), -7, np.int32)
        with threads(nthreads):
            backend.max_pool(y, shape, ph, pw, mx, idx, stride)
            backend.avg_pool(y, shape, ph, pw, avg, stride)
            g = np.linspace(-1, 1, mx.size).reshape(mx.shape).astype(dtype)
            back_max, back_avg = nans(y.shape, dtype), nans(y.shape, dtype)
            backend.max_pool_backward(g, idx, back_max)
            backend.avg_pool_backward(g, shape, ph, pw, np.tanh(y), act, back_avg, stride)
        res.append((mx, idx, avg, back_max, back_avg))
    np.testing.assert_array_equal(res[1][0], res[0][0])      # a max is exact
    np.testing.assert_array_equal(res[1][1], res[0][1])      # the first maximum, same index
    np.testing.assert_array_equal(res[1][2], res[0][2])      # the same sums in the same order
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(res[1][3], res[0][3], rtol=tol, atol=tol)   # repeats add up
    np.testing.assert_allclose(res[1][4], res[0][4], rtol=tol, atol=tol)
    # the max against a plain scan of every window
    yy = y.astype(np.float64).reshape(n, k, hc, wc)
    sh, sw = stride
    want = np.array([[[[yy[s, m, i * sh:i * sh + ph, j * sw:j * sw + pw].max()
                        for j in range(wo)] for i in range(ho)] for m in range(k)]
                     for s in range(n)]).reshape(n, -1)
    np.testing.assert_array_equal(res[0][0], want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_long_forms_of_the_defaults_give_the_same_bits(backend, dtype):
    """geom with stride 1 and no padding, a pool whose stride is its size: the bits of the
    short forms (forward, both gradients, the pool kernels)."""
    rng = np.random.default_rng(5)
    short, long_ = (3, 12, 10, 3, 3), (3, 12, 10, 3, 3, 1, 1, 0, 0, 0, 0)
    x, wts = data(rng, short, 4, 7, dtype)
    for kind in (R.POOL_NONE, R.POOL_MAX, R.POOL_AVG):
        pools = [(kind, 1, 1), (kind, 1, 1, 1, 1)] if kind == R.POOL_NONE else \
            [(kind, 2, 4), (kind, 2, 4, 2, 4)]
        units, pooled = pooled_shape(short, 4, pools[0])
        runs = []
        for geom, pool in [(short, pools[0]), (long_, pools[1])]:
            out, pre = nans((7, pooled), dtype), nans((7, units), dtype)
            idx = np.empty((7, pooled), np.int32) if kind == R.POOL_MAX else None
            backend.conv_forward(x, wts, geom, R.ACT_TANH, pool, out, idx,
                                 pre if kind else None)
            dz = np.linspace(-1, 1, 7 * (pooled if idx is not None else units)).astype(dtype)
            dz = dz.reshape(7, -1)
            gw, dx = nans(wts.shape, dtype), nans(x.shape, dtype)
            backend.conv_weight_grad(dz, idx, x, geom, gw)
            backend.conv_input_grad(dz, idx, wts, geom, np.tanh(x), R.ACT_TANH, dx)
            runs.append([out, gw, dx] + ([idx] if idx is not None else []))
            if kind != R.POOL_NONE:
                stride = None if pool is pools[0] else pool[3:]
                a, b = nans((7, pooled), dtype), nans((7, units), dtype)
                backend.avg_pool(pre, (4, 10, 8), 2, 4, a, stride)
                backend.avg_pool_backward(a, (4, 10, 8), 2, 4, pre, R.ACT_TANH, b, stride)
                runs[-1] += [a, b]
        for a, b in zip(*runs):
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_conv_by_hand(backend):
    """A 1-channel 4x5 field, a 2x2 kernel of ones, stride 2 down and 3 across, one zero
    row above and below: the window sums at rows -1, 1, 3 and columns 0, 3."""
    x = np.arange(20, dtype=np.float64).reshape(1, 20)
    w = np.array([[0.5, 1, 1, 1, 1]])
    out = nans((1, 6), np.float64)
    backend.conv_forward(x, w, (1, 4, 5, 2, 2, 2, 3, 1, 1, 0, 0), R.ACT_LINEAR,
                         (R.POOL_NONE, 1, 1), out)
    xp = np.pad(x.reshape(4, 5), ((1, 1), (0, 0)))
    want = [xp[i:i + 2, j:j + 2].sum() + 0.5 for i in (0, 2, 4) for j in (0, 3)]
    np.testing.assert_array_equal(out[0], want)


def _strided_cases():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 60)), rng.standard_normal((4, 13))
    out = np.empty((3, 4 * 16))
    f, none = "conv_forward", (R.POOL_NONE, 1, 1)
    y = np.ones((2, 24))
    p4 = np.empty((2, 4))
    return [
        (f, (x, w, (2, 6, 5, 3, 2, 0, 1, 0, 0, 0, 0), 1, none, out), ValueError),   # stride 0
        (f, (x, w, (2, 6, 5, 3, 2, 1, -2, 0, 0, 0, 0), 1, none, out), ValueError),  # stride < 0
        (f, (x, w, (2, 6, 5, 3, 2, 1, 1, -1, 0, 0, 0), 1, none, out), ValueError),  # padding < 0
        (f, (x, w, (2, 6, 5, 3, 2, 1, 1, 0, 3, 0, 0), 1, none, out), ValueError),   # pad > fh - 1
        (f, (x, w, (2, 6, 5, 3, 2, 1, 1, 0, 0, 0, 2), 1, none, out), ValueError),   # pad > fw - 1
        (f, (x, w, (2, 6, 5, 3, 2, 1.5, 1, 0, 0, 0, 0), 1, none, out), ValueError),  # not int
        (f, (x, w, (2, 6, 5, 3, 2, 1, 1, 0, 0), 1, none, out), ValueError),         # length
        (f, (x, w, (2, 6, 5, 3, 2, 2, 2, 0, 0, 0, 0), 1, none, out), ValueError),   # out shape
        (f, (x, w, (2, 6, 5, 3, 2), 1, (R.POOL_MAX, 5, 2, 1, 1), np.empty((3, 16))),
         ValueError),                                                              # pool > map
        (f, (x, w, (2, 6, 5, 3, 2), 1, (R.POOL_MAX, 2, 2, 0, 1), np.empty((3, 4 * 12))),
         ValueError),                                                              # pool stride 0
        (f, (x, w, (2, 6, 5, 3, 2), 1, (R.POOL_MAX, 2, 2, 1), np.empty((3, 4 * 12))),
         ValueError),                                                              # pool length
        ("conv_weight_grad", (out, None, x, (2, 6, 5, 3, 2, 1, 0, 0, 0, 0, 0),
                              np.empty((4, 13))), ValueError),
        ("conv_input_grad", (out, None, w, (2, 6, 5, 3, 2, 1, 1, 0, 0, 9, 0), x, R.ACT_TANH,
                             np.empty((3, 60))), ValueError),
        ("max_pool", (y, (1, 6, 4), 7, 2, p4, None, (1, 1)), ValueError),          # 7 > 6 rows
        ("max_pool", (y, (1, 6, 4), 3, 2, p4, None, (0, 1)), ValueError),          # stride 0
        ("max_pool", (y, (1, 6, 4), 3, 2, p4, None, (2, 2, 2)), ValueError),       # length
        ("max_pool", (y, (1, 6, 4), 3, 2, p4[:, :3], None, (3, 2)), ValueError),   # out shape
        ("avg_pool", (y, (1, 6, 4), 3, 2, p4, (-1, 2)), ValueError),
        ("avg_pool_backward", (p4, (1, 6, 4), 3, 5, None, R.ACT_LINEAR, np.empty((2, 24)),
                               (3, 2)), ValueError),                              # 5 > 4 columns
    ]


STRIDED_CASES = _strided_cases()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(len(STRIDED_CASES)))
def test_bad_strides_and_paddings_raise(backend, case):
    name, args, error = STRIDED_CASES[case]
    with pytest.raises(error):
        getattr(backend, name)(*args)


@needs_native
def test_work_size_of_strided_padded_geometries():
    for geom, k in [((1, 28, 28, 9, 9, 2, 2, 4, 4, 4, 4), 3), ((32, 12, 12, 5, 5, 1, 1, 2, 2, 2, 2), 64),
                    ((2, 3, 5, 3, 1, 3, 1, 1, 2, 0, 0), 7)]:
        shared, per = native.conv._layout(geom, k)
        for t in (1, 2, 5):
            assert R.conv_work_size(geom, k, t) == shared + t * per + RC.PAD
