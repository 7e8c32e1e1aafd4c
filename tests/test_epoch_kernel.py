"""sgd_epoch, one whole epoch of backprop on a dense net in one call: native against its
NumPy twin (reference_epoch.py, the contract), and the twin against the per-layer kernels.

Random shapes from hypothesis (1 row batches, 1 column input, first layers of 1 to 40 units,
1 to 3 layers), sparse and dense x, float32 and float64, 1 and 2 threads, with momentum,
Nesterov, L1 / L2, weight decay and adaptive gains.  The native kernel keeps the first layer
transposed, takes a sparse-input path or a GEMM and splits the units over the threads: its
sums run in another order than the twin's, so the results agree within float tolerance only,
not bit for bit.  Training amplifies such differences, so the cases use small learning
rates and few batches; the tolerances still catch a wrong or missing term (a bias update,
the momentum, the decay, the regularization) by orders of magnitude.
"""
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import synaptic
from synaptic import _kernels
from synaptic._kernels import native, reference as R

from helpers import forced_threads

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
THREADS = [pytest.param(1, id="t1"), pytest.param(2, id="t2")]
BACKENDS = [pytest.param(R, id="numpy"),
            pytest.param(native, id="native", marks=pytest.mark.skipif(
                native is None, reason=f"native backend not built: {_kernels.native_error()}"))]
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}
HIDDEN = [R.ACT_SIGMOID, R.ACT_TANH, R.ACT_RELU, R.ACT_LINEAR, R.ACT_LEAKY_RELU, R.ACT_ELU,
          R.ACT_SOFTPLUS]
OUTPUTS = [(R.ACT_SOFTMAX, R.DELTA_DIFF), (R.ACT_SIGMOID, R.DELTA_DIFF),
           (R.ACT_LINEAR, R.DELTA_SSE), (R.ACT_TANH, R.DELTA_SSE), (R.ACT_RELU, R.DELTA_SSE),
           (R.ACT_LEAKY_RELU, R.DELTA_SSE), (R.ACT_ELU, R.DELTA_SSE), (R.ACT_SOFTPLUS, R.DELTA_SSE)]
NET = dict(acts=[R.ACT_SIGMOID, R.ACT_SOFTMAX], delta_kind=R.DELTA_DIFF)
UPDATED = ("weights", "deltaw", "gain")


def skip_without_native():
    if native is None:
        pytest.skip(f"native backend not built: {_kernels.native_error()}")


def make_case(rng, dtype, units, bounds, acts, delta_kind, n=None, sparse=False, prev=False,
              gain=False, **options):
    """The keyword arguments of sgd_epoch.  x in [0.05, 1), sparse: 70% exact zeros;
    weights ~ N(0, 1) / sqrt(fan in); deltaw small (``prev``) or zero; gains in [0.3, 3)."""
    n = bounds[-1] if n is None else n
    x = rng.uniform(0.05, 1.0, (n, units[0]))
    if sparse:
        x *= (rng.permutation(x.size) >= int(np.ceil(0.7 * x.size))).reshape(x.shape)
    if acts[-1] == R.ACT_SOFTMAX:
        t = np.eye(units[-1])[rng.integers(0, units[-1], n)]
    else:
        t = rng.uniform(0.0, 0.8, (n, units[-1]))
    ws = [rng.standard_normal((o, 1 + i)) / np.sqrt(1 + i) for i, o in zip(units, units[1:])]
    case = dict(x=x.astype(dtype), t=t.astype(dtype), bounds=np.asarray(bounds, np.int64),
                weights=[w.astype(dtype) for w in ws],
                deltaw=[(rng.standard_normal(w.shape) * 0.01 * prev).astype(dtype) for w in ws],
                gain=[rng.uniform(0.3, 3.0, w.shape).astype(dtype) for w in ws] if gain else None,
                acts=list(acts), delta_kind=delta_kind, lr=0.03, alphas=np.zeros(len(bounds) - 1),
                has_prev=prev, has_gain=False, ming=None, maxg=None, nesterov=False,
                reg_kind=R.REG_NONE, reg_lambda=0.0, decay=1.0, stop=np.zeros(1, np.int32))
    case.update(options)
    return case


def copies(case, **options):
    c = dict(case, **options)
    for k in UPDATED:
        c[k] = None if c[k] is None else [a.copy() for a in c[k]]
    return c


def run(kern, case, nthreads=1, **options):
    """sgd_epoch on copies of the updated arrays: (batches trained, the arguments after)."""
    c = copies(case, **options)
    with synaptic.num_threads(nthreads):
        done = kern.sgd_epoch(**c)
    return done, c


def compare(got, want, check):
    for k in UPDATED:
        for layer, (a, b) in enumerate(zip(got[k] or [], want[k] or [])):
            check(a, b, err_msg=f"{k}[{layer}]")


def close(tol):
    return lambda a, b, err_msg: np.testing.assert_allclose(a, b, err_msg=err_msg, **tol)


# native == twin

widths = st.one_of(st.sampled_from([1, 15, 16, 17, 33]), st.integers(1, 40))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.one_of(st.just(1), st.integers(1, 70)),
       units=st.lists(widths, min_size=1, max_size=3), hidden=st.lists(st.sampled_from(HIDDEN),
       min_size=2, max_size=2), out=st.sampled_from(OUTPUTS),
       sizes=st.lists(st.one_of(st.just(1), st.integers(1, 6)), min_size=1, max_size=10),
       start=st.integers(0, 2), extra=st.integers(0, 2), sparse=st.booleans(),
       momentum=st.sampled_from(["none", "constant", "varying"]), prev=st.booleans(),
       nesterov=st.booleans(), reg=st.sampled_from([R.REG_NONE, R.REG_L1, R.REG_L2]),
       decay=st.sampled_from([1.0, 0.999]), gain=st.booleans(), has_gain=st.booleans(),
       clamp=st.sampled_from([(None, None), (0.5, 2.0)]),
       slopes=st.lists(st.one_of(st.just(R.LEAKY_SLOPE), st.floats(0, 0.999)), min_size=3,
                       max_size=3))
def test_native_matches_twin(dtype, nthreads, seed, d, units, hidden, out, sizes, start, extra,
                             sparse, momentum, prev, nesterov, reg, decay, gain, has_gain, clamp,
                             slopes):
    skip_without_native()
    rng = np.random.default_rng(seed)
    bounds, nb = np.cumsum([start] + sizes), len(sizes)
    alphas = {"none": np.zeros(nb), "constant": np.full(nb, 0.9),
              "varying": rng.uniform(0.0, 0.95, nb) * (rng.uniform(size=nb) > 0.3)}[momentum]
    gain = gain and dtype is np.float64   # a gain follows the sign of d * deltaw: float64 only
    case = make_case(rng, dtype, [d] + units, bounds, hidden[:len(units) - 1] + [out[0]], out[1],
                     n=bounds[-1] + extra, sparse=sparse, prev=prev, gain=gain, alphas=alphas,
                     nesterov=nesterov, reg_kind=reg, reg_lambda=0.02 if reg else 0.0,
                     decay=decay, has_gain=gain and has_gain, ming=clamp[0], maxg=clamp[1],
                     slopes=slopes[:len(units)])
    with np.errstate(over="ignore", invalid="ignore"):
        want_done, want = run(R, case)
    # diverging training (a deep linear net with momentum can) amplifies any rounding: skip it
    assume(all(np.abs(w).max() < 10 for w in want["weights"]))
    done, got = run(native, case, nthreads)
    assert done == want_done == nb
    compare(got, want, close(TOL[dtype]))


# the layers above the first split between the threads (by units), phase by phase

@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 30),
       units=st.lists(st.integers(1, 48), min_size=2, max_size=4),
       hidden=st.sampled_from(HIDDEN), out=st.sampled_from(OUTPUTS),
       sizes=st.lists(st.integers(1, 24), min_size=1, max_size=4), sparse=st.booleans(),
       nesterov=st.booleans(), reg=st.sampled_from([R.REG_NONE, R.REG_L2]),
       gain=st.booleans())
def test_split_upper_layers_match_the_twin(dtype, seed, d, units, hidden, out, sizes, sparse,
                                           nesterov, reg, gain):
    """2 threads with every GEMM split (forced_threads): each layer's forward, gradient
    and delta below by parts of its units, the update by the threads of its gradient."""
    skip_without_native()
    rng = np.random.default_rng(seed)
    bounds, nb = np.cumsum([0] + sizes), len(sizes)
    gain = gain and dtype is np.float64
    case = make_case(rng, dtype, [d] + units, bounds, [hidden] * (len(units) - 1) + [out[0]],
                     out[1], sparse=sparse, prev=True, gain=gain, alphas=np.full(nb, 0.9),
                     nesterov=nesterov, reg_kind=reg, reg_lambda=0.02 if reg else 0.0,
                     decay=0.999, has_gain=gain)
    with np.errstate(over="ignore", invalid="ignore"):
        _, want = run(R, case)
    assume(all(np.abs(w).max() < 10 for w in want["weights"]))
    c = copies(case)
    with forced_threads(2):
        done = native.sgd_epoch(**c)
    assert done == nb
    compare(c, want, close(TOL[dtype]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_upper_layers_same_bits_with_one_and_two_threads(dtype):
    """Layers big enough for the default split (GEMM_MIN_MACS): 2 threads give the bits
    of 1 thread, and the twin's values."""
    skip_without_native()
    case = make_case(np.random.default_rng(5), dtype, [64, 256, 256, 10], [0, 128, 256, 300],
                     **dict(NET, acts=[R.ACT_RELU, R.ACT_TANH, R.ACT_SOFTMAX]), prev=True,
                     alphas=np.full(3, 0.9), nesterov=True, reg_kind=R.REG_L2, reg_lambda=0.01)
    _, one = run(native, case, 1)
    _, two = run(native, case, 2)
    compare(two, one, np.testing.assert_array_equal)
    _, want = run(R, case)
    compare(two, want, close(TOL[dtype]))


# the stop flag, the bounds

@pytest.mark.parametrize("kern", BACKENDS)
def test_stop_flag_set_before_the_call_trains_nothing(kern):
    case = make_case(np.random.default_rng(1), np.float64, [9, 17, 4], [0, 3, 7, 12], **NET,
                     prev=True, gain=True, alphas=np.full(3, 0.9), nesterov=True,
                     reg_kind=R.REG_L2, reg_lambda=0.1, decay=0.99, stop=np.ones(1, np.int32))
    done, got = run(kern, case)
    assert done == 0
    compare(got, case, np.testing.assert_array_equal)


@pytest.mark.parametrize("nthreads", THREADS)
def test_stop_flag_set_from_another_thread_stops_between_batches(nthreads):
    """Set while the native epoch runs (without the GIL): the count returned is of whole
    batches, and the weights are those of an epoch over just these batches."""
    skip_without_native()
    bounds = np.arange(0, 60001, 10)
    case = make_case(np.random.default_rng(2), np.float32, [60, 40, 10], bounds, **NET,
                     sparse=True, alphas=np.full(len(bounds) - 1, 0.5), lr=0.01)
    set_at = []
    timer = threading.Timer(0.003, lambda: (case["stop"].__setitem__(0, 1),
                                            set_at.append(time.perf_counter())))
    timer.start()
    done, got = run(native, case, nthreads)
    returned_at = time.perf_counter()
    timer.join()
    if set_at and returned_at - set_at[0] > 0.005:   # some 700 batches after the stop
        assert done < len(bounds) - 1
    assert 0 <= done <= len(bounds) - 1
    _, want = run(native, case, nthreads, bounds=bounds[:done + 1],
                  alphas=case["alphas"][:done], stop=np.zeros(1, np.int32))
    compare(got, want, np.testing.assert_array_equal)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_bounds_select_the_rows_trained(dtype, nthreads, sparse):
    """bounds [2, 5, 9] of 12 rows: the rows outside (NaN, never read) are not trained on."""
    skip_without_native()
    case = make_case(np.random.default_rng(3), dtype, [30, 21, 5], [2, 5, 9], **NET, n=12,
                     sparse=sparse, alphas=np.array([0.0, 0.9]))
    inside = dict(x=case["x"][2:9].copy(), t=case["t"][2:9].copy(), bounds=[0, 3, 7])
    case["x"][[0, 1, 9, 10, 11]] = 0
    case["x"][[0, 1, 9, 10, 11], 0] = np.nan
    case["t"][[0, 1, 9, 10, 11]] = np.nan
    want_done, want = run(R, case)
    done, got = run(native, case, nthreads)
    assert done == want_done == 2
    compare(got, want, close(TOL[dtype]))
    assert all(np.isfinite(w).all() for w in got["weights"])
    compare(got, run(native, case, nthreads, **inside)[1], close(TOL[dtype]))
    _, shifted = run(native, case, nthreads, x=np.nan_to_num(case["x"]),
                     t=np.nan_to_num(case["t"]), bounds=[3, 6, 10])
    assert not np.allclose(shifted["weights"][0], got["weights"][0], **TOL[dtype])


# the twin == the per-layer kernels, as training/backprop.py calls them

def per_layer_epoch(c):
    """The epoch of a 2-layer net, batch after batch, with the per-layer twins."""
    ws, dws, gains = c["weights"], c["deltaw"], c["gain"] or [None, None]
    (f1, f2), prev, has_gain, b = c["acts"], c["has_prev"], c["has_gain"], c["bounds"]
    for i in range(len(b) - 1):
        x, t, alpha = c["x"][b[i]:b[i + 1]], c["t"][b[i]:b[i + 1]], float(c["alphas"][i])
        if c["nesterov"] and prev and alpha:
            for w, dw in zip(ws, dws):
                R.add_scaled(w, dw, alpha)
        h = np.empty((len(x), ws[0].shape[0]), ws[0].dtype)
        y = np.empty((len(x), ws[1].shape[0]), ws[0].dtype)
        R.dense_forward(x, ws[0], f1, h)
        R.dense_forward(h, ws[1], f2, y)
        dy, dh, g1, g2 = (np.empty_like(a) for a in (y, h, ws[0], ws[1]))
        R.output_delta(y, t, f2, c["delta_kind"], dy)
        R.weight_grad(dy, h, g2)
        R.hidden_delta(dy, ws[1], h, f1, dh)
        R.weight_grad(dh, x, g1)
        for w, g, dw, gain in zip(ws, (g1, g2), dws, gains):
            R.regularize(g, w, c["reg_kind"], c["reg_lambda"])
            if c["decay"] != 1.0:
                R.decay_weights(w, c["decay"])
            R.sgd_update(w, g, dw, gain, c["lr"], 1.0 / len(x), alpha, prev, has_gain,
                         c["ming"], c["maxg"], c["nesterov"])
        prev, has_gain = True, gains[0] is not None
    return len(b) - 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [
    dict(),
    dict(prev=True, alphas=np.array([0.9, 0.0, 0.5, 0.9]), nesterov=True, reg_kind=R.REG_L1,
         reg_lambda=0.05, decay=0.999),
    dict(alphas=np.full(4, 0.9), reg_kind=R.REG_L2, reg_lambda=0.05, gain=True, ming=0.5,
         maxg=2.0)], ids=["plain", "nesterov-l1-decay", "momentum-l2-gain"])
def test_twin_is_the_per_layer_kernels(dtype, options):
    case = make_case(np.random.default_rng(4), dtype, [11, 7, 3], [0, 1, 4, 9, 10],
                     [R.ACT_RELU, R.ACT_SIGMOID], R.DELTA_DIFF, sparse=True, **options)
    done, got = run(R, case)
    want = copies(case)
    assert done == per_layer_epoch(want) == 4
    compare(got, want, np.testing.assert_array_equal)
    compare(got, case, lambda a, b, err_msg: np.testing.assert_(not np.array_equal(a, b), err_msg))


# non-finite values: NaN where the twin has NaN, though the sparse path skips x == 0

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("where", ["w0-input", "w0-bias", "w1-input", "x", "deltaw0-nesterov"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan], ids=["inf", "-inf", "nan"])
def test_non_finite_values_propagate_like_the_twin(dtype, nthreads, where, value):
    """One batch, sparse x; "deltaw0-nesterov": finite weights, the jump makes one inf."""
    skip_without_native()
    case = make_case(np.random.default_rng(5), dtype, [20, 37, 5], [0, 8], **NET, sparse=True,
                     prev=True, alphas=np.array([0.9]), nesterov=True)
    case["x"][:, 4] = 0                     # the input of weights[0][:, 5]: 0 * inf, NaN
    if where == "x":
        case["x"][3, 4] = value
    elif where == "deltaw0-nesterov":
        case["deltaw"][0][3, 5] = value
    else:
        layer, col = {"w0-input": (0, 5), "w0-bias": (0, 0), "w1-input": (1, 3)}[where]
        case["weights"][layer][3, col] = value
    with np.errstate(all="ignore"):
        _, want = run(R, case)
        _, got = run(native, case, nthreads)
    assert not all(np.isfinite(w).all() for w in want["weights"])
    for test in (np.isnan, np.isinf):
        compare(got, want, lambda a, b, err_msg: np.testing.assert_array_equal(
            test(a), test(b), err_msg=f"{test.__name__} {err_msg}"))
    compare(got, want, lambda a, b, err_msg: close(TOL[dtype])(
        a[np.isfinite(b)], b[np.isfinite(b)], err_msg))


# bad input

BAD = {
    "deltaw-shape": lambda c: dict(deltaw=[np.zeros((5, 7)), c["deltaw"][1]]),
    "weights-columns": lambda c: dict(weights=[np.zeros((5, 7)), c["weights"][1]],
                                      deltaw=[np.zeros((5, 7)), c["deltaw"][1]]),
    "gain-count": lambda c: dict(gain=[np.ones((5, 8))]),
    "acts-length": lambda c: dict(acts=[R.ACT_SOFTMAX]),
    "hidden-no-derivative": lambda c: dict(acts=[R.ACT_BINARY_THRESHOLD, R.ACT_SOFTMAX]),
    "delta-kind": lambda c: dict(delta_kind=7), "reg-kind": lambda c: dict(reg_kind=7),
    "bounds-repeat": lambda c: dict(bounds=[0, 5, 5]),
    "bounds-decrease": lambda c: dict(bounds=[0, 8, 4]),
    "bounds-beyond": lambda c: dict(bounds=[0, 5, 13]),
    "bounds-negative": lambda c: dict(bounds=[-1, 5, 12]),
    "alphas-length": lambda c: dict(alphas=[0.0]),
    "stop-int64": lambda c: dict(stop=np.zeros(1, np.int64)), "stop-list": lambda c: dict(stop=[0]),
    "slopes-length": lambda c: dict(slopes=[0.1]),
    "slope-negative": lambda c: dict(acts=[R.ACT_LEAKY_RELU, R.ACT_SOFTMAX], slopes=[-0.1, 0.01]),
    "slope-nan": lambda c: dict(slopes=[0.01, float("nan")]),
    "slope-one": lambda c: dict(slopes=[1.0, 0.01]),
}


@pytest.mark.parametrize("kern", BACKENDS)
@pytest.mark.parametrize("name", list(BAD))
def test_bad_arguments_raise(kern, name):
    case = make_case(np.random.default_rng(7), np.float64, [7, 5, 3], [0, 4, 12], **NET)
    with pytest.raises(TypeError if name.startswith("stop") else ValueError):
        run(kern, case, **BAD[name](case))


@pytest.mark.parametrize("name", ["x", "t", "weights", "deltaw", "gain"])
def test_native_refuses_mixed_dtypes(name):
    """Native only, as for the per-layer kernels: the twin casts where NumPy lets it."""
    skip_without_native()
    case = make_case(np.random.default_rng(8), np.float64, [7, 5, 3], [0, 4, 12], **NET,
                     gain=True)
    v = case[name]
    case[name] = [v[0].astype(np.float32)] + v[1:] if isinstance(v, list) else v.astype(np.float32)
    with pytest.raises(TypeError, match="dtype"):
        run(native, case)


def test_native_accepts_read_only_x_like_the_twin():
    """x is only read (checked as such): a read-only x, e.g. memory-mapped data, trains."""
    skip_without_native()
    case = make_case(np.random.default_rng(8), np.float64, [7, 5, 3], [0, 4, 12], **NET)
    case["x"].flags.writeable = False
    compare(run(native, case)[1], run(R, case)[1], close(TOL[np.float64]))


# float32 close to float64 on a small MNIST-like problem

@pytest.mark.parametrize("kern", BACKENDS)
@pytest.mark.parametrize("nthreads", THREADS)
def test_float32_close_to_float64(kern, nthreads):
    """14 x 14 images (a blob of ink, ~77% zeros), 10 classes, 196-32-10, 6 batches of 16."""
    rng = np.random.default_rng(9)
    yy, xx = np.mgrid[:14, :14]
    labels = rng.integers(0, 10, 96)
    centres = rng.uniform(4, 10, (96, 2)) + labels[:, None] * 0.2
    ink = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 12)
    x = np.where(ink > 0.3, ink, 0.0).reshape(96, 196)
    assert 0.7 < np.mean(x == 0) < 0.9
    case = make_case(rng, np.float64, [196, 32, 10], np.arange(0, 97, 16), **NET, x=x,
                     t=np.eye(10)[labels], alphas=np.full(6, 0.9), lr=0.05)
    _, want = run(kern, case, nthreads)
    single = {k: case[k].astype(np.float32) for k in ("x", "t")}
    single.update({k: [w.astype(np.float32) for w in case[k]] for k in ("weights", "deltaw")})
    _, got = run(kern, case, nthreads, **single)
    compare(got, want, close(dict(rtol=1e-5, atol=1e-6)))
    # trained, by far more than the tolerance
    assert min(np.abs(b - a).max() for a, b in zip(case["weights"], want["weights"])) > 1e-3


# Adam's mode and the batches' errors (the loss each batch saw, before its step)

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), d=st.one_of(st.just(1), st.integers(1, 40)),
       units=st.lists(widths, min_size=1, max_size=3), hidden=st.sampled_from(HIDDEN),
       out=st.sampled_from(OUTPUTS),
       sizes=st.lists(st.one_of(st.just(1), st.integers(1, 6)), min_size=1, max_size=8),
       sparse=st.booleans(), reg=st.sampled_from([R.REG_NONE, R.REG_L1, R.REG_L2]),
       decay=st.sampled_from([1.0, 0.999]), first=st.sampled_from([1, 2, 50]),
       sklearn_eps=st.booleans(), with_errors=st.booleans())
def test_adam_mode_and_errors_match_twin(dtype, nthreads, seed, d, units, hidden, out, sizes,
                                         sparse, reg, decay, first, sklearn_eps, with_errors):
    skip_without_native()
    rng = np.random.default_rng(seed)
    bounds, nb = np.cumsum([0] + sizes), len(sizes)
    case = make_case(rng, dtype, [d] + units, bounds, [hidden] * (len(units) - 1) + [out[0]],
                     out[1], sparse=sparse, gain=True, reg_kind=reg,
                     reg_lambda=0.02 if reg else 0.0, decay=decay, lr=0.01)
    case["gain"] = [np.abs(g) * 1e-3 for g in case["gain"]]  # v >= 0, m (deltaw) zero
    steps = R.adam_steps(0.01, 0.9, 0.99, 1e-4, first, nb, sklearn_eps)
    kind = R.ERR_CROSS_ENTROPY_MULTIVARIATE if out[0] == R.ACT_SOFTMAX else R.ERR_SUM_OF_SQUARES
    errs = {}
    results = {}
    for name, kern, threads in (("twin", R, 1), ("native", native, nthreads)):
        errs[name] = np.full(nb, -1.0) if with_errors else None
        results[name] = run(kern, case, threads, adam=(0.9, 0.99, steps), errors=errs[name],
                            error_kind=kind)
    (done, got), (want_done, want) = results["native"], results["twin"]
    assert done == want_done == nb
    compare(got, want, close(TOL[dtype]))
    if with_errors:
        assert (errs["twin"] >= 0).all()
        np.testing.assert_allclose(errs["native"], errs["twin"], **TOL[dtype])


def test_adam_mode_is_adam_update():
    """The twin's Adam mode is adam_update step after step (a missing bias correction or a
    stale step number fails it)."""
    rng = np.random.default_rng(5)
    case = make_case(rng, np.float64, [5, 4, 3], [0, 3, 7, 9], NET["acts"], NET["delta_kind"],
                     gain=True)
    case["gain"] = [np.zeros_like(g) for g in case["gain"]]
    steps = R.adam_steps(0.01, 0.9, 0.999, 1e-8, 3, 3)
    _, got = run(R, case, adam=(0.9, 0.999, steps))
    w = [a.copy() for a in case["weights"]]
    m = [np.zeros_like(a) for a in w]
    v = [np.zeros_like(a) for a in w]
    for i in range(3):
        x, t = case["x"][case["bounds"][i]:case["bounds"][i + 1]], \
            case["t"][case["bounds"][i]:case["bounds"][i + 1]]
        net = synaptic.mlp([5, 4, 3], ["sigmoid", "softmax"], dtype=np.float64)
        for dst, src in zip(net.weights, w):
            dst[...] = src
        grads = synaptic.error_derivatives(net, synaptic.dataset(x, t))
        for a, g, mm, vv in zip(w, grads, m, v):
            R.adam_update(a, g, mm, vv, None, 0.01, 0.9, 0.999, 1e-8, 3 + i, 1.0 / len(x), 1.0)
    for a, b in zip(got["weights"], w):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kern", BACKENDS)
@pytest.mark.parametrize("bad", ["steps-shape", "no-v", "momentum", "betas", "errors-short",
                                 "errors-dtype", "error-kind"])
def test_adam_and_errors_bad_arguments_raise(kern, bad):
    rng = np.random.default_rng(0)
    case = make_case(rng, np.float64, [3, 2], [0, 2, 4], [R.ACT_SOFTMAX], R.DELTA_DIFF,
                     gain=True)
    steps = R.adam_steps(0.01, 0.9, 0.999, 1e-8, 1, 2)
    extra = {"adam": (0.9, 0.999, steps)}
    if bad == "steps-shape":
        extra["adam"] = (0.9, 0.999, steps[:1])
    elif bad == "no-v":
        case["gain"] = None
    elif bad == "momentum":
        case["alphas"] = np.full(2, 0.5)
    elif bad == "betas":
        extra["adam"] = (1.0, 0.999, steps)
    elif bad == "errors-short":
        extra.update(errors=np.zeros(1), error_kind=4)
    elif bad == "errors-dtype":
        extra.update(errors=np.zeros(2, np.float32), error_kind=4)
    else:
        extra.update(errors=np.zeros(2), error_kind=7)
    with pytest.raises((ValueError, TypeError)):
        kern.sgd_epoch(**case, **extra)
