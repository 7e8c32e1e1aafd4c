"""output_backprop (the output layer's forward, delta, gradient, error and the delta below in
one pass), packed_objective (a whole input -> hidden -> output evaluation on a packed x) and
fused_objective (a whole evaluation of a dense net of any depth on a dense x):
native against the NumPy twin (the contract); Gradients.compute_with_error against compute().

Hypothesis draws 1 row and odd sizes, outputs on both sides of one vector (16 f32 / 8 f64 lanes:
the narrow loops vs the GEMM path, packed_objective's fused path vs its fallback), blocks of 1..64
rows, f32 and f64; each example runs native with 1 and 2 threads (loops forced parallel) for the
same bits.  Sums run in another order than the twin's GEMMs: they agree within a tolerance scaled
to the sum of |terms|, carried through the layers.  Outputs start as NaN (unwritten ones fail).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic
from synaptic import _kernels
from synaptic._kernels import native, reference as R
from synaptic.training import lbfgs

from helpers import forced_threads

needs_native = pytest.mark.skipif(
    native is None, reason=f"native backend not built: {_kernels.native_error()}")
BACKENDS = [pytest.param(R, id="numpy"), pytest.param(native, id="native", marks=needs_native)]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# rtol, and atol as a fraction of the sum of |terms| behind an element; the error's rtol
TOL = {np.float32: (1e-4, 1e-5), np.float64: (1e-10, 1e-13)}
ERR_RTOL = {np.float32: 1e-4, np.float64: 1e-9}
SIG, TANH, SOFT, LIN, RELU = R.ACT_SIGMOID, R.ACT_TANH, R.ACT_SOFTMAX, R.ACT_LINEAR, R.ACT_RELU
LEAKY, ELU, SOFTPLUS = R.ACT_LEAKY_RELU, R.ACT_ELU, R.ACT_SOFTPLUS
DIFF, SSE = R.DELTA_DIFF, R.DELTA_SSE
COUNTS = (R.ERR_MISCLASSIFICATION, R.ERR_ARGMAX_MISCLASSIFICATION)
CROSS = (R.ERR_CROSS_ENTROPY_BINARY, R.ERR_CROSS_ENTROPY_MULTIVARIATE)
SOS = R.ERR_SUM_OF_SQUARES
# (output act, delta kind, error kind): counts need 0/1 targets, cross-entropy outputs in (0, 1)
TOP_CASES = ([(a, DIFF, e) for a in (SIG, SOFT, LIN, TANH) for e in COUNTS + (SOS,)]
             + [(a, DIFF, e) for a in (SIG, SOFT) for e in CROSS]
             + [(a, SSE, e) for a in (SIG, LIN) for e in COUNTS + (SOS,)]
             + [(SIG, SSE, e) for e in CROSS]
             + [(a, SSE, SOS) for a in (RELU, LEAKY, ELU, SOFTPLUS)])
OBJ_CASES = ([(a, e) for a in (SOFT, SIG) for e in CROSS + (SOS,)]
             + [(LIN, SOS)])
HACTS = [SIG, TANH, RELU, LIN, LEAKY, ELU, SOFTPLUS]
seeds = st.integers(0, 2**32 - 1)
slopes = st.one_of(st.just(R.LEAKY_SLOPE), st.floats(0, 0.999))   # leaky-relu's


threads = forced_threads    # tests/helpers.py


def nans(shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


def hidden(rng, shape, hact, dtype):
    """Activities in the range of ``hact`` (relu: a third exact zeros)."""
    z = rng.standard_normal(shape)
    h = {SIG: 1 / (1 + np.exp(-z)), TANH: np.tanh(z), RELU: np.maximum(z + 0.4, 0), LIN: z,
         LEAKY: np.where(z > 0, z, 0.1 * z), ELU: np.where(z > 0, z, np.expm1(z)),
         SOFTPLUS: np.logaddexp(0, z)}[hact]
    return np.ascontiguousarray(h.astype(dtype))


def weights(rng, o, d, dtype, scale=1.5):
    return (rng.standard_normal((o, 1 + d)) * scale / np.sqrt(max(d, 1))).astype(dtype)


def targets(rng, n, o, act, err, dtype):
    if err in COUNTS + CROSS:                            # 0/1: one-hot under softmax
        t = np.eye(o)[rng.integers(0, o, n)] if act == SOFT else rng.integers(0, 2, (n, o))
    else:
        t = rng.uniform(0 if act in (SIG, SOFT) else -1, 1, (n, o))
    return t.astype(dtype)


def make_x(rng, n, d, dtype, zeros):
    """Normal values with a fraction ``zeros`` of exact zeros (a tenth of them -0.0)."""
    x = rng.standard_normal((n, d))
    z = rng.uniform(size=(n, d)) < zeros
    x[z] = np.where(rng.uniform(size=z.sum()) < 0.1, -0.0, 0.0)
    return np.ascontiguousarray(x.astype(dtype))


def assert_close_sum(got, want, mag, dtype, extra=0.0, what=""):
    """got ~ want within rtol plus 2 * frac * (the row's largest |terms| sum) plus ``extra``."""
    rtol, frac = TOL[dtype]
    atol = 2 * frac * mag.max(axis=1, keepdims=True, initial=0) + extra + 1e-30
    err = np.abs(got.astype(np.float64) - want)
    bad = ~(err <= atol + rtol * np.abs(want))
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} differ, first at "
                           f"{np.argwhere(bad)[0]}: got {got[bad][:3]}, want {want[bad][:3]}")


def top_mags(h, hmag, w, dz):
    """Sums of |terms| (float64) behind y (and dz), g and dh of an output layer on ``h``,
    whose elements are uncertain by frac * ``hmag`` themselves (0: exact)."""
    aw = np.abs(w[:, 1:].astype(np.float64))
    ah = np.abs(h.astype(np.float64)) + hmag
    ymag = ah @ aw.T + np.abs(w[:, 0].astype(np.float64))
    dzm = np.abs(dz.astype(np.float64)) + ymag.max(axis=1, keepdims=True)  # softmax: a row
    gmag = dzm.T @ np.hstack([np.ones((h.shape[0], 1)), ah])
    return ymag, gmag, (dzm @ aw) * (1 + 2 * hmag)      # f'(h) <= 1, moves by <= 2 dh


def check_error(got, want, y, t, err, dtype):
    """The returned error is the twin's error_sum of the kernel's own y, and near the twin's."""
    own = R.error_sum(y, t, err)
    assert got == pytest.approx(own, rel=1e-12, abs=1e-12) or (np.isnan(got) and np.isnan(own))
    if err in COUNTS:          # a y rounding the other way flips a count: rare in float32
        assert abs(got - want) <= (1 if dtype == np.float32 else 0)
    else:
        assert got == pytest.approx(want, rel=ERR_RTOL[dtype], abs=ERR_RTOL[dtype] * t.size)


def same_bits(a, b):
    if isinstance(a, np.ndarray):
        return a.tobytes() == b.tobytes()
    return a == b or (a is None and b is None) or bool(np.isnan(a) and np.isnan(b))


def native_twice(fn, *args):
    """fn(*args) with 1 and with 2 threads: the same bits; returns the first run."""
    runs = []
    for nt in (1, 2):
        with threads(nt):
            runs.append(fn(*args))
    assert all(same_bits(a, b) for a, b in zip(*runs))
    return runs[0]


def assert_nan_like(got, want, dtype):
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(got), test(want))
    fin = np.isfinite(want)
    scale = np.abs(want[fin]).max(initial=1.0)
    np.testing.assert_allclose(got[fin], want[fin], rtol=TOL[dtype][0], atol=1e-5 * scale)


# ---------------------------------------------------------------------------------------
# 1. output_backprop

def run_top(kern, h, w, t, act, kind, err, hact, with_dh, fused=True, slope=R.LEAKY_SLOPE,
            hslope=R.LEAKY_SLOPE):
    """output_backprop (``fused``) or the twin's sequence kernel by kernel: y, dz, g, dh, error."""
    n, o, dt = h.shape[0], w.shape[0], h.dtype
    y, dz, g = nans((n, o), dt), nans((n, o), dt), nans(w.shape, dt)
    dh = nans(h.shape, dt) if with_dh else None
    if fused:
        return y, dz, g, dh, kern.output_backprop(h, w, t, act, kind, err, hact, y, dz, g, dh,
                                                  slope, hslope)
    kern.dense_forward(h, w, act, y, slope)
    kern.output_delta(y, t, act, kind, dz, slope)
    kern.weight_grad(dz, h, g)
    if with_dh:
        kern.hidden_delta(dz, w, h, hact, dh, hslope)
    return y, dz, g, dh, kern.error_sum(y, t, err)


def compare_top(got, want, h, w, t, err, dtype):
    ymag, gmag, dhmag = top_mags(h, 0.0, w, want[1])
    for i, mag, what in ((0, ymag, "y"), (1, ymag, "dz"), (2, gmag, "g"), (3, dhmag, "dh")):
        if want[i] is None:
            assert got[i] is None
        else:
            assert_close_sum(got[i], want[i], mag, dtype, what=what)
    check_error(got[4], want[4], got[0], t, err, dtype)


def assert_same_chunks(got, h, t, err):
    """The error and g's bias column: error_sum's and weight_grad's chunks, the same bits."""
    assert got[4] == native.error_sum(got[0], t, err)
    g = nans(got[2].shape, h.dtype)
    native.weight_grad(got[1], h, g)
    assert g[:, 0].tobytes() == got[2][:, 0].tobytes()


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(n=st.one_of(st.sampled_from([1, 2, 7, 64, 255, 300]), st.integers(1, 300)),
       d=st.one_of(st.sampled_from([1, 7, 16, 17, 120]), st.integers(1, 120)),
       o=st.one_of(st.sampled_from([1, 3, 8, 9, 10, 16, 17, 40, 100]), st.integers(1, 40)),
       case=st.sampled_from(TOP_CASES), hact=st.sampled_from(HACTS), with_dh=st.booleans(),
       seed=seeds, slope=slopes, hslope=slopes)
def test_output_backprop_matches_twin(dtype, n, d, o, case, hact, with_dh, seed, slope, hslope):
    act, kind, err = case
    rng = np.random.default_rng(seed)
    h, w = hidden(rng, (n, d), hact, dtype), weights(rng, o, d, dtype)
    t = targets(rng, n, o, act, err, dtype)
    args = (h, w, t, act, kind, err, hact, with_dh, True, slope, hslope)
    got = native_twice(run_top, native, *args)
    compare_top(got, run_top(R, *args), h, w, t, err, dtype)
    assert_same_chunks(got, h, t, err)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,o", [(1, 1, 1), (300, 50, 100), (3000, 40, 10), (4000, 33, 8),
                                   (2500, 20, 16), (2000, 17, 17), (20000, 3, 1),
                                   (500, 600, 600), (0, 5, 3), (6, 0, 3)])
def test_output_backprop_fixed_shapes(dtype, n, d, o):
    """Several row chunks (>= 8192 elements a chunk), narrow and wide: the same bits for 1 and
    2 threads.  Partials over 32 MB (32 chunks of o x d), no rows, no inputs: the separate
    kernels, bit for bit (dense_forward's split GEMM: not the same across thread counts)."""
    fallback = n * d * o == 0 or o == 600
    rng = np.random.default_rng(n + d + o)
    h, w = hidden(rng, (n, d), TANH, dtype), weights(rng, o, d, dtype)
    act, kind = (SOFT, DIFF) if o % 2 == 0 else (SIG, SSE)
    err = R.ERR_CROSS_ENTROPY_BINARY
    t = targets(rng, n, o, act, err, dtype)
    args = (h, w, t, act, kind, err, TANH, True)
    want, runs = run_top(R, *args), []
    for nt in (1, 2):
        with threads(nt):
            runs.append(run_top(native, *args))
            if fallback:
                sep = run_top(native, *args, fused=False)
                assert all(same_bits(a, b) for a, b in zip(runs[-1], sep))
            else:
                assert_same_chunks(runs[-1], h, t, err)
        compare_top(runs[-1], want, h, w, t, err, dtype)
    if not fallback:
        assert all(same_bits(a, b) for a, b in zip(*runs))


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("o", [10, 40])
@pytest.mark.parametrize("case", ["w_nan", "w_bias_nan", "h_nan"])
def test_output_backprop_nan_like_the_twin(dtype, o, case):
    rng = np.random.default_rng(11)
    n, d = 90, 30
    h, w = hidden(rng, (n, d), RELU, dtype), weights(rng, o, d, dtype)
    t = targets(rng, n, o, SIG, SOS, dtype)
    a, at = {"w_nan": (w, (o // 2, 1 + d // 3)), "w_bias_nan": (w, (1, 0)),
             "h_nan": (h, ([7, 50], [4, d - 1]))}[case]
    a[at] = np.nan
    args = (h, w, t, SIG, DIFF, SOS, RELU, True)
    with np.errstate(invalid="ignore"):
        want = run_top(R, *args)
    assert np.isnan(want[0]).any() and np.isnan(want[4])
    got = native_twice(run_top, native, *args)
    for a, b in zip(got[:4], want[:4]):
        assert_nan_like(a, b, dtype)
    assert np.isnan(got[4])


# ---------------------------------------------------------------------------------------
# 2. packed_objective

def twin_objective(x, w1, w2, t, act1, act2, err, block, slope1=R.LEAKY_SLOPE):
    """The twin's intermediates (h, dz, dh) and results (y, g1, g2, error)."""
    n, o1, dt = x.shape[0], w1.shape[0], x.dtype
    h, g1 = nans((n, o1), dt), nans(w1.shape, dt)
    R.dense_forward(x, w1, act1, h, slope1)
    y, dz, g2, dh, e = run_top(R, h, w2, t, act2, DIFF, err, act1, True, slope=0.5, hslope=slope1)
    R.weight_grad(dh, x, g1)
    want = (y, g1, g2, e)            # the twin's packed_objective: the same (its pack rebuilds x)
    assert all(same_bits(a, b) for a, b in zip(run_objective(R, x, w1, w2, t, act1, act2, err,
                                                             block, slope1=slope1), want))
    return h, dz, dh, want


def run_objective(kern, x, w1, w2, t, act1, act2, err, block, fused=True, slope1=R.LEAKY_SLOPE):
    """packed_objective (``fused``) or packed_forward, output_backprop, packed_weight_grad."""
    n, o1, dt = x.shape[0], w1.shape[0], x.dtype
    y, g1, g2 = nans((n, w2.shape[0]), dt), nans(w1.shape, dt), nans(w2.shape, dt)
    p = kern.pack_input(x, block)
    if fused:
        return y, g1, g2, kern.packed_objective(p, w1, w2, t, act1, act2, DIFF, err, y, g1, g2,
                                                slope1, 0.5)
    h, dh, dz = nans((n, o1), dt), nans((n, o1), dt), nans(y.shape, dt)
    kern.packed_forward(p, w1, act1, h, slope1)
    e = kern.output_backprop(h, w2, t, act2, DIFF, err, act1, y, dz, g2, dh, 0.5, slope1)
    kern.packed_weight_grad(dh, p, g1)
    return y, g1, g2, e


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(n=st.one_of(st.sampled_from([1, 5, 63, 64, 65, 200, 300]), st.integers(1, 300)),
       d=st.one_of(st.sampled_from([1, 31, 32, 33, 100]), st.integers(1, 100)),
       o1=st.one_of(st.integers(1, 40), st.just(100)),
       o2=st.one_of(st.sampled_from([1, 8, 9, 16, 17]), st.integers(1, 20)),
       block=st.sampled_from([1, 7, 32, 64]),
       zeros=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.4, 0.9)),
       case=st.sampled_from(OBJ_CASES),
       act1=st.sampled_from([SIG, TANH, RELU, LEAKY, ELU, SOFTPLUS]), seed=seeds, slope1=slopes)
def test_packed_objective_matches_twin(dtype, n, d, o1, o2, block, zeros, case, act1, seed,
                                       slope1):
    act2, err = case
    rng = np.random.default_rng(seed)
    x = make_x(rng, n, d, dtype, zeros)
    w1, w2 = weights(rng, o1, d, dtype), weights(rng, o2, o1, dtype)
    t = targets(rng, n, o2, act2, err, dtype)
    h, dz, dh, want = twin_objective(x, w1, w2, t, act1, act2, err, block, slope1)
    got = native_twice(run_objective, native, x, w1, w2, t, act1, act2, err, block, True, slope1)
    # the hidden layer's error bound (sums of |terms| m1), carried through the output layer
    ax = np.hstack([np.ones((n, 1)), np.abs(x.astype(np.float64))])
    m1 = ax @ np.abs(w1.astype(np.float64)).T
    ymag, g2mag, dhmag = top_mags(h, m1, w2, dz)
    g1mag = (np.abs(dh.astype(np.float64)) + dhmag).T @ ax
    extra = 0.0
    if act1 == RELU:        # z ~ 0: f'(h) may be 1 on one side and 0 on the other
        z1 = x.astype(np.float64) @ w1[:, 1:].T.astype(np.float64) + w1[:, 0]
        amb = np.abs(z1) <= 10 * TOL[dtype][1] * m1.max(axis=1, keepdims=True)
        extra = (amb * (np.abs(dz) @ np.abs(w2[:, 1:]).astype(np.float64))).T @ ax
    assert_close_sum(got[0], want[0], ymag, dtype, what="y")
    assert_close_sum(got[1], want[1], g1mag, dtype, extra, what="g1")
    assert_close_sum(got[2], want[2], g2mag, dtype, what="g2")
    check_error(got[3], want[3], got[0], t, err, dtype)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["wide", "w1_nan", "w1_inf", "w1_bias_nan", "w2_nan", "x_nan",
                                  "x_inf"])
def test_packed_objective_fallback_and_non_finite(dtype, case):
    """A wide output layer or a non-finite W1: the three kernels, bit for bit (dense_forward's
    split GEMM for W1's NaN/inf: not the same bits across thread counts).  NaN / inf anywhere:
    the twin's NaN and inf masks."""
    rng = np.random.default_rng(5)
    n, d, o1, o2 = 130, 70, 12, 40 if case == "wide" else 4
    x = make_x(rng, n, d, dtype, 0.8)
    w1, w2 = weights(rng, o1, d, dtype), weights(rng, o2, o1, dtype)
    t = targets(rng, n, o2, SIG, SOS, dtype)
    # x_inf: sigmoid(inf) = 1, f' = 0, so only g1's column d // 2 gets 0 * inf
    a, at, v = {"wide": (w1, (0, 0), w1[0, 0]), "w1_nan": (w1, (2, 1 + d // 2), np.nan),
                "w1_inf": (w1, (5, 4), -np.inf), "w1_bias_nan": (w1, (0, 0), np.nan),
                "w2_nan": (w2, (1, 4), np.nan), "x_nan": (x, (3, 5), np.nan),
                "x_inf": (x, (40, d // 2), np.inf)}[case]
    a[at] = v
    args = (x, w1, w2, t, SIG, SIG, SOS, 7)
    with np.errstate(invalid="ignore", over="ignore"):
        want = twin_objective(*args)[3]
    runs = []
    for nt in (1, 2):
        with threads(nt):
            runs.append(run_objective(native, *args))
            if case == "wide" or case.startswith("w1"):
                sep = run_objective(native, *args, fused=False)
                assert all(same_bits(a, b) for a, b in zip(runs[-1], sep))
        for a, b in zip(runs[-1][:3], want[:3]):
            assert_nan_like(a, b, dtype)
        assert runs[-1][3] == pytest.approx(want[3], rel=ERR_RTOL[dtype], nan_ok=True)
    if not case.startswith("w1"):
        assert all(same_bits(a, b) for a, b in zip(*runs))


# ---------------------------------------------------------------------------------------
# 3. bad arguments

X = np.zeros((6, 5), np.float32)
X[1, 2] = X[4, 0] = 1.0
BUF = np.zeros(60, np.float32)


def _apply(args, spec):
    """Changes "name=value" to the default arguments: an int, a zero array "6x4" (":f64" for
    float64), another argument's name (the same array), or a special value of ``args``."""
    for item in spec.split():
        name, value = item.split("=")
        if value.lstrip("-").isdigit():
            args[name] = int(value)
        elif value in args:
            args[name] = args[value]
        elif value in SPECIAL:
            args[name] = SPECIAL[value]
        else:
            shape, _, dt = value.partition(":")
            args[name] = np.zeros(tuple(map(int, shape.split("x"))), dt or "float32")
    return list(args.values())


SPECIAL = {"list": [[0.0] * 5] * 6, "X": X, "buf_a": BUF[:18].reshape(6, 3),
           "buf_b": BUF[10:28].reshape(3, 6), "buf_c": BUF[15:30].reshape(3, 5),
           "in_x": X.reshape(-1)[:24].reshape(4, 6)}
# case: (changes, exception, message regex, whether the twin checks it too)
TOP_BAD = {
    "t_shape": ("t=6x4", ValueError, "t has shape", True),
    "y_shape": ("y=6x4", ValueError, "(y|out) has shape", True),
    "dz_shape": ("dz=5x3", ValueError, "(dz|out) has shape", True),
    "g_shape": ("g=3x5", ValueError, "(g|out) has shape", True),
    "dh_shape": ("dh=6x4", ValueError, "(dh|out) has shape", True),
    "w_cols": ("w=3x5", ValueError, "w has 5 columns", True),
    "kind": ("kind=7", ValueError, "unknown output-delta kind", True),
    "err": (f"err={R.N_ERR}", ValueError, "unknown error kind", True),
    "err_negative": ("err=-1", ValueError, "unknown error kind", True),
    "act": ("act=99", ValueError, "unknown activation code", True),
    "hact_no_derivative": (f"hact={R.ACT_BINARY_THRESHOLD}", ValueError, "no derivative", True),
    "sse_no_derivative": (f"kind={SSE} act={R.ACT_BIPOLAR_THRESHOLD}", ValueError,
                          "no derivative", True),
    "h_f64": ("h=6x5:f8", TypeError, "dtype", False),
    "y_f64": ("y=6x3:f8", TypeError, "dtype", False),
    **{f"{a}_f64": (f"{a}={s}:f8", TypeError, f"{a} has dtype", False)
       for a, s in (("t", "6x3"), ("dz", "6x3"), ("g", "3x6"), ("dh", "6x5"))},
    "h_list": ("h=list", TypeError, "numpy array", False),
    **{f"{a}_is_{b}": (f"{a}={b}", ValueError, f"{a} must not share memory with {b}", False)
       for a, b in (("y", "dz"), ("dz", "t"), ("g", "w"), ("dh", "h"))},
    "y_overlaps_g": ("y=buf_a g=buf_b", ValueError, "y must not share memory with g", False),
}
OBJ_BAD = {
    "raw_x": ("p=X", TypeError, "PackedInput", True),
    **{f"{a}_f64": (f"{a}={s}:f8", TypeError, f"{a} (has dtype|must be)", True)
       for a, s in (("w1", "4x6"), ("w2", "3x5"), ("t", "6x3"))},
    "w1_cols": ("w1=4x5", ValueError, "w1? has 5 columns", True),
    "w2_cols": ("w2=3x4", ValueError, "w2 has", True),
    "t_shape": ("t=6x2", ValueError, "t has shape", True),
    **{f"{a}_shape": (f"{a}={s}", ValueError, f"({a}|out) has shape", True)
       for a, s in (("y", "6x2"), ("g1", "4x5"), ("g2", "3x6"))},
    "kind": ("kind=2", ValueError, "unknown output-delta kind", True),
    "err": (f"err={R.N_ERR}", ValueError, "unknown error kind", True),
    "act1_no_derivative": (f"act1={R.ACT_BINARY_PROB}", ValueError, "no derivative", True),
    "act2": ("act2=99", ValueError, "unknown activation code", True),
    **{f"{a}_f64": (f"{a}={s}:f8", TypeError, f"{a} has dtype", False)
       for a, s in (("y", "6x3"), ("g1", "4x6"), ("g2", "3x5"))},
    **{f"{a}_is_{b}": (f"{a}={b}", ValueError, f"{a} must not share memory with {b}", False)
       for a, b in (("y", "t"), ("g1", "w1"), ("g2", "w2"))},
    "y_overlaps_g2": ("y=buf_a g2=buf_c", ValueError, "y must not share memory with g2", False),
    "g1_overlaps_x": ("g1=in_x", ValueError, "g1 must not share memory with x", False),
}


def call_top(kern, spec):
    z = lambda *s: np.zeros(s, np.float32)        # noqa: E731
    return kern.output_backprop(*_apply(dict(
        h=z(6, 5), w=z(3, 6), t=z(6, 3), act=SIG, kind=DIFF, err=SOS, hact=SIG,
        y=z(6, 3), dz=z(6, 3), g=z(3, 6), dh=z(6, 5)), spec))


def call_obj(kern, spec):
    z = lambda *s: np.zeros(s, np.float32)        # noqa: E731
    return kern.packed_objective(*_apply(dict(
        p=kern.pack_input(X, 4), w1=z(4, 6), w2=z(3, 5), t=z(6, 3), act1=SIG, act2=SOFT,
        kind=DIFF, err=SOS, y=z(6, 3), g1=z(4, 6), g2=z(3, 5)), spec))


def bad_params(fn, cases):
    """(call, backend, case): native for every case, the twin for those it checks too."""
    f = fn.__name__[5:]
    return ([pytest.param(fn, R, c, id=f"numpy-{f}-{c}") for c, v in cases.items() if v[3]]
            + [pytest.param(fn, native, c, id=f"native-{f}-{c}", marks=needs_native)
               for c in cases])


@pytest.mark.parametrize("call,kern,case",
                         bad_params(call_top, TOP_BAD) + bad_params(call_obj, OBJ_BAD))
def test_bad_arguments_raise(call, kern, case):
    spec, exc, match, _ = (TOP_BAD if call is call_top else OBJ_BAD)[case]
    with pytest.raises(exc, match=match):
        call(kern, spec)


# output_backprop's messages name its own arguments (it shares dense_forward's checks, which
# once said "out" and "x" for y and h).
@needs_native
@pytest.mark.parametrize("spec,match", [("y=6x4", "y has shape"), ("y=6x3:f8", "y has dtype"),
                                        ("h=6x5:f8", "h has dtype"), ("h=list", "h must be")])
def test_output_backprop_messages_name_y_and_h(spec, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call_top(native, spec)


# ---------------------------------------------------------------------------------------
# 4. Gradients.compute_with_error == compute() + error_sum

NETS = {1: (["softmax"], "cross-entropy"), 2: (["sigmoid", "softmax"], "cross-entropy"),
        3: (["tanh", "relu", "sigmoid"], "sum-of-squares")}


@pytest.mark.parametrize("kern", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layers,pack", [(1, False), (1, True), (2, False), (2, True),
                                         (3, False), (3, True)])
def test_compute_with_error_matches_compute(kern, dtype, layers, pack, monkeypatch):
    rng = np.random.default_rng(layers)
    # o = 2 outputs: "narrow" (o <= one vector of lanes) at every CPU level, down to the
    # baseline's 128-bit float64 vectors, so the fused path is the one expected to run
    n, d, o = 300, 40, 2
    acts, error_fn = NETS[layers]
    net = synaptic.mlp([d, 12, 9][:layers] + [o], acts,
                       synaptic.training("lbfgs", {"error_fn": error_fn}), dtype=dtype, seed=1)
    gradients = lbfgs.LBFGS(net).gradients
    x = make_x(rng, n, d, dtype, 0.7)
    t = np.eye(o, dtype=dtype)[rng.integers(0, o, n)]
    p = kern.pack_input(x, 32) if pack else None
    calls = []
    for name in ("output_backprop", "packed_objective", "fused_objective"):
        real = getattr(kern, name)
        monkeypatch.setattr(kern, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    for err in range(R.N_ERR):
        want = [g.copy() for g in gradients.compute(x, t, kern, p)]
        want_e = kern.error_sum(gradients.workspace(n).acts[-1], t, err)
        got_e, got = gradients.compute_with_error(x, t, err, kern, p)
        check_error(got_e, want_e, gradients.workspace(n).acts[-1], t, err, dtype)
        for a, b in zip(got, want):
            scale = np.abs(b).max()
            np.testing.assert_allclose(a, b, rtol=TOL[dtype][0], atol=10 * TOL[dtype][1] * scale)
    if kern is native:   # (the twin's packed_objective calls its output_backprop by name)
        expected = {1: [], 2: ["packed_objective" if pack else "fused_objective"],
                    3: ["output_backprop" if pack else "fused_objective"]}[layers]
        assert calls == expected * R.N_ERR


# ---------------------------------------------------------------------------------------
# fused_objective: any depth, blocks of 32 rows, fixed parts

FUSED_OUT = [(SOFT, DIFF, R.ERR_CROSS_ENTROPY_MULTIVARIATE), (SIG, DIFF, R.ERR_CROSS_ENTROPY_BINARY),
             (LIN, DIFF, SOS), (SIG, SSE, SOS), (TANH, SSE, SOS), (SOFT, DIFF, R.ERR_ARGMAX_MISCLASSIFICATION)]
widths = st.one_of(st.sampled_from([1, 2, 15, 16, 17, 33, 48, 49]), st.integers(1, 70))


def fused_case(rng, n, sizes, hacts, out, dtype):
    act, kind, err = out
    x = rng.standard_normal((n, sizes[0])).astype(dtype)
    ws = [weights(rng, b, a, dtype) for a, b in zip(sizes, sizes[1:])]
    t = targets(rng, n, sizes[-1], act, err, dtype)
    acts = list(hacts[:len(ws) - 1]) + [act]
    return x, ws, t, acts, kind, err


def run_fused(kern, x, ws, t, acts, slopes, kind, err):
    y = nans((x.shape[0], ws[-1].shape[0]), x.dtype)
    gs = [nans(w.shape, x.dtype) for w in ws]
    e = kern.fused_objective(x, ws, t, acts, slopes, kind, err, y, gs)
    return [e, y] + gs


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(n=st.one_of(st.just(1), st.integers(1, 200)), sizes=st.lists(widths, min_size=2, max_size=5),
       hacts=st.lists(st.sampled_from(HACTS), min_size=4, max_size=4),
       out=st.sampled_from(FUSED_OUT), seed=seeds, slope=slopes)
def test_fused_objective_matches_twin_with_the_same_bits_for_1_and_2_threads(
        dtype, n, sizes, hacts, out, seed, slope):
    """Depths 1..4, widths across the vectors' edges, rows across blocks and parts: the
    twin's outputs, gradients and error; 1 and 2 threads (forced parallel) the same bits."""
    rng = np.random.default_rng(seed)
    x, ws, t, acts, kind, err = fused_case(rng, n, sizes, hacts, out, dtype)
    if out[0] == SOFT and sizes[-1] < 2:
        ws[-1] = weights(rng, 2, sizes[-2], dtype)
        t = targets(rng, n, 2, SOFT, err, dtype)
    slopes = [slope] * len(ws)
    got = native_twice(run_fused, native, x, ws, t, acts, slopes, kind, err)
    want = run_fused(R, x, ws, t, acts, slopes, kind, err)
    check_error(got[0], want[0], got[1], t, err, dtype)
    rtol = {np.float32: 2e-3, np.float64: 1e-9}[dtype]
    for a, b in zip(got[1:], want[1:]):
        scale = np.abs(b).max(initial=0) + 1e-30
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes, n", [([784, 100, 10], 1000), ([20, 64, 64, 3], 3001),
                                      ([50, 100, 1], 4099)])
def test_fused_objective_default_threads_same_bits(dtype, sizes, n):
    """At the default thresholds (2 threads: the parts in parallel) the bits of 1 thread."""
    rng = np.random.default_rng(n)
    x, ws, t, acts, kind, err = fused_case(rng, n, sizes, [RELU, TANH], (SOFT, DIFF, 4)
                                           if sizes[-1] > 1 else (LIN, DIFF, SOS), dtype)
    runs = []
    for nt in (1, 2, 1):
        with synaptic.num_threads(nt):
            runs.append(run_fused(native, x, ws, t, acts, [0.01] * len(ws), kind, err))
    for run in runs[1:]:
        assert all(same_bits(a, b) for a, b in zip(run, runs[0]))
    want = run_fused(R, x, ws, t, acts, [0.01] * len(ws), kind, err)
    assert runs[0][0] == pytest.approx(want[0], rel=ERR_RTOL[dtype])


@pytest.mark.parametrize("kern", BACKENDS)
def test_fused_objective_bad_arguments_raise(kern):
    rng = np.random.default_rng(0)
    x, ws, t, acts, kind, err = fused_case(rng, 9, [5, 4, 3], [TANH], (SOFT, DIFF, 4), np.float64)
    y, gs = nans((9, 3), np.float64), [nans(w.shape, np.float64) for w in ws]
    with pytest.raises(ValueError, match="layers"):
        kern.fused_objective(x, ws, t, acts[:1], [0.0], kind, err, y, gs)
    with pytest.raises(ValueError, match="unknown error kind"):
        kern.fused_objective(x, ws, t, acts, [0.0, 0.0], kind, 99, y, gs)
    if kern is native:
        with pytest.raises(ValueError, match=r"ws\[1\]"):
            kern.fused_objective(x, [ws[0], ws[1][:, :3].copy()], t, acts, [0.0, 0.0], kind, err, y, gs)
        with pytest.raises(ValueError, match=r"gs\[0\]"):
            kern.fused_objective(x, ws, t, acts, [0.0, 0.0], kind, err, y, [gs[0][:3].copy(), gs[1]])
        with pytest.raises(TypeError):
            kern.fused_objective(x.astype(np.float32), ws, t, acts, [0.0, 0.0], kind, err, y, gs)


def test_objective_strategy_takes_fused_for_small_dense_nets_only():
    import scipy.sparse as sp
    from synaptic.sparse import as_csr_rows
    from synaptic.training import strategy
    small = lbfgs.LBFGS(synaptic.mlp([20, 30, 30, 3], ["relu", "relu", "softmax"],
                                     synaptic.training("lbfgs"), seed=1)).gradients
    big = lbfgs.LBFGS(synaptic.mlp([3072, 512, 10], ["relu", "softmax"],
                                   synaptic.training("lbfgs"), dtype=np.float32, seed=1)).gradients
    x = np.zeros((5, 20))
    assert strategy.objective(small, None, x=x) == "fused"
    assert strategy.objective(small, None, weighted=True, x=x) == "layers"
    assert strategy.objective(small, None, x=None) == "top"
    csr = as_csr_rows(sp.random(5, 20, density=0.3, format="csr", random_state=0))
    assert strategy.objective(small, None, x=csr) == "top"      # CSR rows: their own kernels
    assert strategy.objective(big, None, x=np.zeros((5, 3072), np.float32)) == "top"
