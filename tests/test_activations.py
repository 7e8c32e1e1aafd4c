"""The activation table (synaptic/_kernels/acts.py) and the activations added through it:
leaky-relu (its slope), elu, softplus.

The table against the C codes (c/acts.h) and the names, pairings and options read from it;
each derivative "from the output" against central differences of the forward; the forward
and the derivative against torch.nn.functional (when torch is installed) on both backends and
dtypes, and a whole net's gradients against torch autograd; the expm1 of the kernels near 0;
the slope saved and loaded with a net and refused when bad, in the layer specs, in a saved
file and by every kernel.  The kernel-vs-twin suites (test_kernels.py, test_output_kernels.py,
test_epoch_kernel.py, test_packed_kernels.py, test_conv_kernels.py) include these activations.
"""
import importlib.util
import json
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import synaptic
from synaptic import activations, losses, persist
from synaptic._kernels import acts, native, reference as R

from helpers import BACKENDS, using

KERNELS = [pytest.param(R, id="numpy"),
           pytest.param(native, id="native", marks=pytest.mark.skipif(
               native is None, reason="native backend not built"))]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}
HEADER = pathlib.Path(synaptic.__file__).parent / "_kernels" / "c" / "acts.h"
NEW = {"leaky-relu": R.ACT_LEAKY_RELU, "elu": R.ACT_ELU, "softplus": R.ACT_SOFTPLUS}


# ---------------------------------------------------------------------------------------
# the table

def test_the_header_has_the_table_codes():
    enum = re.search(r"enum\s*{(.*?)}", HEADER.read_text(), re.S).group(1)
    enum = re.sub(r"/\*.*?\*/", "", enum, flags=re.S)
    codes = dict((name, int(value)) for name, value in re.findall(r"(ACT_\w+|N_ACT)\s*=\s*(\d+)",
                                                                    enum))
    table = {name: getattr(acts, name) for name in dir(acts) if re.fullmatch(r"ACT_\w+|N_ACT", name)}
    assert codes == table
    assert sorted(acts.BY_CODE) == list(range(acts.N_ACT))
    default = re.search(r"#define SYN_LEAKY_SLOPE (\S+)", HEADER.read_text()).group(1)
    assert float(default) == acts.LEAKY_SLOPE


def test_activations_and_losses_read_the_table():
    assert set(activations.CODES) == {row.name for row in acts.TABLE}
    assert activations.DIFFERENTIABLE == {
        "linear", "sigmoid", "hyperbolic-tangent", "softmax", "relu", "leaky-relu", "elu",
        "softplus"}
    assert losses.OUTPUTS["cross-entropy"] == ("sigmoid", "softmax")
    assert set(losses.SSE_OUTPUTS) == {"linear", "sigmoid", "hyperbolic-tangent", "relu",
                                       "leaky-relu", "elu", "softplus"}
    for row in acts.TABLE:
        assert (row.derivative is not None) >= row.backprop, row.name
        assert set(row.losses) <= {"cross-entropy", "sum-of-squares"}
        for alias in row.aliases:
            assert activations.canonical(alias) == row.name
    assert activations.canonical("Leaky_ReLU") == "leaky-relu"
    assert activations.canonical(":leaky-rectifier") == "leaky-relu"
    assert R.ACT_LEAKY_RELU == acts.ACT_LEAKY_RELU   # the twins' codes are the table's


@pytest.mark.parametrize("name", sorted(NEW))
def test_pairings_of_the_new_activations(name):
    assert losses.delta_kind(name, "sum-of-squares") == R.DELTA_SSE
    with pytest.raises(ValueError, match="supported: .*leaky-relu.*sum-of-squares"):
        losses.delta_kind(name, "cross-entropy")


def _forward(kern, name, z, slope=acts.LEAKY_SLOPE):
    out = np.full_like(z, np.nan)
    kern.activate(z, NEW[name], out, slope)
    return out


def _derivative(kern, name, y, slope=acts.LEAKY_SLOPE):
    out = np.full_like(y, np.nan)
    kern.derivative(y, NEW[name], out, slope)
    return out


@pytest.mark.parametrize("kern", KERNELS)
@pytest.mark.parametrize("name", sorted(NEW))
@pytest.mark.parametrize("slope", [0.01, 0.37])
def test_derivative_from_the_output_is_the_derivative(kern, name, slope):
    """f'(z) computed from y = f(z) against central differences of f, away from the kink."""
    z = np.linspace(-6, 6, 241).reshape(1, -1)
    z = z[np.abs(z) > 1e-3].reshape(1, -1)
    h = 1e-6
    numeric = (_forward(kern, name, z + h, slope) - _forward(kern, name, z - h, slope)) / (2 * h)
    got = _derivative(kern, name, _forward(kern, name, z, slope), slope)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kern", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_expm1_near_zero(kern, dtype):
    """elu's e^z - 1 and softplus' 1 - e^-y keep their relative accuracy near 0 (no
    cancellation), and the limits: elu(-inf) = -1, softplus(-inf) = 0, softplus(inf) = inf."""
    tiny = np.array([[-1e-30, -1e-12, -1e-7, -3e-3, -0.49, -0.5, -0.51, -2.0, -30.0]], dtype)
    np.testing.assert_allclose(_forward(kern, "elu", tiny), np.expm1(tiny), **TOL[dtype])
    y = -tiny
    np.testing.assert_allclose(_derivative(kern, "softplus", y), -np.expm1(-y), **TOL[dtype])
    edges = np.array([[-np.inf, np.inf, np.nan]], dtype)
    np.testing.assert_array_equal(_forward(kern, "elu", edges), [[-1, np.inf, np.nan]])
    np.testing.assert_array_equal(_forward(kern, "softplus", edges), [[0, np.inf, np.nan]])
    np.testing.assert_array_equal(_forward(kern, "leaky-relu", edges, 0.25),
                                  [[-np.inf, np.inf, np.nan]])


# ---------------------------------------------------------------------------------------
# against PyTorch (synaptic itself never imports torch; nor does this test process: torch
# runs in a child, so that its libraries and memory stay out of the other tests)

TORCH_SLOPES = [0.01, 0.2, 0.0]
NET_SPEC = [{"type": "input", "n": 4},
            {"type": "fully-connected", "n": 8, "act_fn": "leaky-relu", "slope": 0.2},
            {"type": "fully-connected", "n": 6, "act_fn": "elu"},
            {"type": "fully-connected", "n": 3, "act_fn": "softplus"}]
TORCH_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import torch
    F = torch.nn.functional
    fns = {"leaky-relu": lambda z, s: F.leaky_relu(z, negative_slope=s),
           "elu": lambda z, s: F.elu(z, alpha=1.0),
           "softplus": lambda z, s: F.softplus(z, beta=1.0, threshold=1000.0)}
    inp = dict(np.load(sys.argv[1]))
    out = {}
    for key in [k for k in inp if k.startswith("z ")]:
        for name, fn in fns.items():
            for slope in [float(s) for s in sys.argv[3:]]:
                z = torch.tensor(inp[key], requires_grad=True)
                y = fn(z, slope)
                y.sum().backward()
                out[f"{key} {name} {slope} y"] = y.detach().numpy()
                out[f"{key} {name} {slope} dy"] = z.grad.numpy()
    ws = [torch.tensor(inp[f"w{i}"], requires_grad=True) for i in range(3)]
    a = torch.tensor(inp["x"])
    for w, f in zip(ws, [lambda z: F.leaky_relu(z, 0.2), F.elu, F.softplus]):
        a = f(a @ w[:, 1:].T + w[:, 0])
    (0.5 * ((a - torch.tensor(inp["t"])) ** 2).sum()).backward()
    out["net y"] = a.detach().numpy()
    for i, w in enumerate(ws):
        out[f"net g{i}"] = w.grad.numpy()
    np.savez(sys.argv[2], **out)
""")


def _torch_inputs():
    rng = np.random.default_rng(7)
    z = np.concatenate([rng.normal(0, 3, 500), [0.0, -0.0, 1e-8, -1e-8, 40.0, -40.0]])
    inputs = {f"z {np.dtype(dt).name}": z.astype(dt).reshape(2, -1)
              for dt in (np.float32, np.float64)}
    net = synaptic.neural_net(NET_SPEC, synaptic.training("backprop",
                                                          {"error_fn": "sum-of-squares"}), seed=11)
    for i, w in enumerate(net.weights):
        w[...] = rng.normal(0, 0.7, w.shape)
        inputs[f"w{i}"] = w
    inputs["x"], inputs["t"] = rng.normal(size=(9, 4)), rng.uniform(0, 2, (9, 3))
    return inputs, net


@pytest.fixture(scope="module")
def torch_results(tmp_path_factory):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    folder = tmp_path_factory.mktemp("torch")
    inputs, net = _torch_inputs()
    np.savez(folder / "in.npz", **inputs)
    done = subprocess.run([sys.executable, "-c", TORCH_CHILD, str(folder / "in.npz"),
                           str(folder / "out.npz"), *map(str, TORCH_SLOPES)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return inputs, net, dict(np.load(folder / "out.npz"))


@pytest.mark.parametrize("kern", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NEW))
@pytest.mark.parametrize("slope", TORCH_SLOPES)
def test_forward_and_derivative_match_torch(torch_results, kern, dtype, name, slope):
    """torch.nn.functional.leaky_relu / elu / softplus and their autograd derivatives."""
    inputs, _, torch_out = torch_results
    key = f"z {np.dtype(dtype).name}"
    y = _forward(kern, name, inputs[key], slope)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y, torch_out[f"{key} {name} {slope} y"], **tol)
    np.testing.assert_allclose(_derivative(kern, name, y, slope),
                               torch_out[f"{key} {name} {slope} dy"], **tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_net_gradients_match_torch_autograd(torch_results, backend):
    """A 4-8-6-3 net (leaky-relu slope 0.2, elu, softplus output with sum-of-squares): the
    forward pass and dE/dW against torch autograd of 1/2 sum (y - t)^2."""
    inputs, net, torch_out = torch_results
    x, t = inputs["x"], inputs["t"]
    with using(backend):
        ours = synaptic.error_derivatives(net, synaptic.dataset(x, t))
        y = synaptic.net_activities(net, x)[-1]
    np.testing.assert_allclose(y, torch_out["net y"], rtol=1e-12, atol=1e-14)
    for i, g in enumerate(ours):
        np.testing.assert_allclose(g, torch_out[f"net g{i}"], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# the slope: layer specs, save/load, bad values

def _spec(slope=0.3, act="leaky-relu", default=False):
    opt = {} if default else {"slope": slope}
    return [{"type": "input", "fieldsize": [1, 6, 6]},
            {"type": "convolution", "act_fn": act, **opt, "feature_map": {"size": [3, 3], "k": 2},
             "pool": {"kind": "avg", "size": [2, 2]}},
            {"type": "fully-connected", "n": 4, "act_fn": act, **opt},
            {"type": "fully-connected", "n": 2, "act_fn": "softmax"}]


@pytest.fixture
def data(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("SYNAPTIC_DATA", str(folder))
    return folder


def test_slope_is_in_the_spec_and_the_default_is_explicit():
    net = synaptic.neural_net(_spec(0.3), seed=1)
    assert [layer.slope for layer in net.layers[1:3]] == [0.3, 0.3]
    assert net.spec()[1]["slope"] == net.spec()[2]["slope"] == 0.3
    net = synaptic.mlp([3, 4, 2], ["leaky_relu", "softmax"])
    assert net.spec()[1] == {"type": "fully-connected", "n": 4, "act_fn": "leaky-relu",
                             "slope": acts.LEAKY_SLOPE}
    assert "slope" not in net.spec()[2]
    assert synaptic.neural_net(_spec(default=True), seed=1).layers[2].slope == acts.LEAKY_SLOPE


def test_save_and_load_keep_the_slope(data):
    net = synaptic.neural_net(_spec(0.3), seed=1)
    x = np.random.default_rng(0).random((5, 36))
    synaptic.save_neural_net(net, "leaky")
    loaded = synaptic.load_neural_net("leaky")
    assert loaded.spec() == net.spec()
    assert [layer.slope for layer in loaded.layers[1:3]] == [0.3, 0.3]
    np.testing.assert_array_equal(synaptic.net_activities(loaded, x)[-1],
                                  synaptic.net_activities(net, x)[-1])
    other = synaptic.neural_net(_spec(0.05), seed=1)       # the slope changes the outputs
    assert not np.allclose(synaptic.net_activities(other, x)[1],
                           synaptic.net_activities(net, x)[1])


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.5, float("nan"), float("inf"), "0.2", None, True])
def test_a_bad_slope_in_a_saved_file_is_refused(data, bad):
    synaptic.save_neural_net(synaptic.neural_net(_spec(0.3), seed=1), "leaky")
    path = data / "neuralnet.leaky"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    doc = json.loads(arrays["__meta__"].tobytes())
    doc["layers"][2]["slope"] = bad
    arrays["__meta__"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(persist.FileFormatError, match="slope"):
        persist.load_neural_net_file(path)


@pytest.mark.parametrize("bad,error", [(-0.1, ValueError), (1.0, ValueError), (7, ValueError),
                                       (float("nan"), ValueError), (float("-inf"), ValueError),
                                       ("0.2", TypeError), (None, TypeError), (True, TypeError),
                                       ([0.2], TypeError)])
def test_a_bad_slope_in_a_layer_spec_raises(bad, error):
    with pytest.raises(error, match=r"layer 2 \(fully-connected\): the leaky-relu slope"):
        synaptic.neural_net(_spec(0.3)[:2] + [{"type": "fully-connected", "n": 4,
                                               "act_fn": "leaky-relu", "slope": bad}]
                            + _spec()[3:])
    with pytest.raises(error, match=r"layer 1 \(convolution\): the leaky-relu slope"):
        synaptic.neural_net(_spec(bad))


def test_options_of_other_activations_and_unknown_names_raise():
    with pytest.raises(ValueError, match=r"activation 'relu' has no option\(s\) \['slope'\]"):
        synaptic.neural_net(_spec(0.2, act="relu"))
    with pytest.raises(ValueError, match="unknown key"):
        synaptic.neural_net([{"type": "input", "n": 2},
                             {"type": "fully-connected", "n": 2, "act_fn": "elu", "alpha": 2}])
    with pytest.raises(ValueError, match="unknown activation 'swish'; known: .*elu.*leaky-relu.*"
                                         "softplus"):
        synaptic.mlp([2, 3], "swish")
    with pytest.raises(TypeError, match="named by a string"):
        synaptic.mlp([2, 3], [3])


def _kernel_calls(kern, slope):
    """Every kernel that takes an activation, called with ``slope`` (leaky-relu)."""
    L = R.ACT_LEAKY_RELU
    z, w, t = np.zeros((2, 3)), np.zeros((3, 4)), np.zeros((2, 3))
    geom, wc = (1, 3, 3, 2, 2), np.zeros((2, 5))
    p = kern.pack_input(np.zeros((2, 3)), 2)
    return {
        "activate": lambda: kern.activate(z, L, np.empty((2, 3)), slope),
        "dense_forward": lambda: kern.dense_forward(z, w, L, np.empty((2, 3)), slope),
        "derivative": lambda: kern.derivative(z, L, np.empty((2, 3)), slope),
        "hidden_delta": lambda: kern.hidden_delta(z, w, z, L, np.empty((2, 3)), slope),
        "output_delta": lambda: kern.output_delta(z, t, L, R.DELTA_SSE, np.empty((2, 3)), slope),
        "output_backprop": lambda: kern.output_backprop(
            z, w, t, L, R.DELTA_SSE, R.ERR_SUM_OF_SQUARES, L, np.empty((2, 3)), np.empty((2, 3)),
            np.empty((3, 4)), np.empty((2, 3)), slope, slope),
        "packed_forward": lambda: kern.packed_forward(p, w, L, np.empty((2, 3)), slope),
        "packed_objective": lambda: kern.packed_objective(
            p, w, w, t, L, L, R.DELTA_SSE, R.ERR_SUM_OF_SQUARES, np.empty((2, 3)),
            np.empty((3, 4)), np.empty((3, 4)), slope, 0.01),
        "sgd_epoch": lambda: kern.sgd_epoch(
            z, t, [0, 2], [w.copy()], [np.zeros((3, 4))], None, [L], R.DELTA_SSE, 0.1, [0.0],
            False, False, None, None, False, R.REG_NONE, 0.0, 1.0, np.zeros(1, np.int32),
            slopes=[slope]),
        "conv_forward": lambda: kern.conv_forward(np.zeros((2, 9)), wc, geom, L,
                                                  (R.POOL_NONE, 1, 1), np.empty((2, 8)),
                                                  slope=slope),
        "conv_input_grad": lambda: kern.conv_input_grad(np.zeros((2, 8)), None, wc, geom,
                                                        np.zeros((2, 9)), L, np.empty((2, 9)),
                                                        slope=slope),
        "avg_pool_backward": lambda: kern.avg_pool_backward(np.zeros((2, 4)), (2, 2, 2), 2, 1,
                                                            np.zeros((2, 8)), L, np.empty((2, 8)),
                                                            slope=slope),
    }


CALLS = list(_kernel_calls(R, 0.01))


@pytest.mark.parametrize("kern", KERNELS)
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("bad,error", [(-0.5, ValueError), (1.0, ValueError),
                                       (float("nan"), ValueError), ("x", TypeError)])
def test_kernels_refuse_a_bad_slope(kern, call, bad, error):
    _kernel_calls(kern, 0.3)[call]()            # a good slope: no error
    with pytest.raises(error):
        _kernel_calls(kern, bad)[call]()


@pytest.mark.parametrize("algo", ["backprop", "lbfgs", "rprop"])
def test_training_with_the_new_activations_on_both_backends(algo):
    """The whole-epoch kernel (backprop), the packed objective (L-BFGS) and the per-layer
    kernels (R-prop) train a leaky-relu (slope 0.2) / elu / softplus net to the same weights
    on both backends."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 6))
    labels = (x[:, 0] * x[:, 1] > 0).astype(int)
    spec = [{"type": "input", "n": 6},
            {"type": "fully-connected", "n": 10, "act_fn": "leaky-relu", "slope": 0.2},
            {"type": "fully-connected", "n": 2, "act_fn": "softmax"}]
    if algo == "rprop":
        spec[2:2] = [{"type": "fully-connected", "n": 5, "act_fn": "elu"},
                     {"type": "fully-connected", "n": 4, "act_fn": "softplus"}]
    results = []
    for backend in BACKENDS:
        with using(backend):
            net = synaptic.neural_net(spec, synaptic.training(algo), seed=4)
            before = [w.copy() for w in net.weights]
            synaptic.train(net, synaptic.training_set(x, labels), 3).result()
            results.append(net.weights)
    assert not np.allclose(before[0], results[0][0])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


def test_the_docs_list_every_activation():
    """README's list and neural_net's docstring name every activation of the table."""
    path = pathlib.Path(__file__).parent.parent / "README.md"
    if not path.is_file():  # the suite run against an installed wheel
        pytest.skip("the README is checked from the checkout")
    readme = path.read_text()
    listed = re.search(r"\* Activations: (.*?)\n\* ", readme, re.S).group(1)
    doc = " ".join(synaptic.neural_net.__doc__.split())
    for row in acts.TABLE:
        assert f"`{row.name}`" in listed, row.name
        assert row.name in doc, row.name
