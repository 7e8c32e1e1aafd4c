"""Convolution and pooling: each kernel compiled vs its NumPy twin on the layer shapes of W2 and
W3, then whole epochs (float32, 2 threads, stats off), with PyTorch 2.13 CPU on the same
networks when it is installed (``make bench-torch``):

* W2: 28x28 -> conv 3@9x9 tanh, max pool 2x2 -> fc 10 sigmoid, cross-entropy, SGD, batch 100,
  one epoch of the 10,000 MNIST t10k digits.
* W3: 28x28 -> conv 32@5x5 relu, max pool 2 -> conv 64@5x5 relu, max pool 2 -> fc 10 softmax,
  cross-entropy, SGD, batch 64, one epoch of the 10,000 digits.

PyTorch runs the same shapes, operations, batches and optimizer (its own initialisation).
One group times the forward kernel with SciPy's sgemm per sample in place of the micro-kernel
(the alternative conv.pyx measured, see its docstring).
"""
import numpy as np
import pytest

import synaptic
from synaptic import datasets
from synaptic._kernels import reference as R

NATIVE = synaptic._kernels.native
IMPLS = (["native"] if NATIVE is not None else []) + ["numpy"]
PARAMS = {"learning_rate": {"epsilon": 0.01}, "stats": {"errorkinds": []}}


def _torch():
    try:
        import torch
    except ImportError:
        pytest.skip("PyTorch is not installed (make bench-torch installs torch==2.13.0)")
    torch.set_num_threads(2)
    return torch


def _backend(impl):
    return NATIVE if impl == "native" else R


# ---------------------------------------------------------------------------------------
# kernels

LAYERS = {   # name: (geom (c, h, w, fh, fw), K, batch, activation)
    "W2 conv 3@9x9 tanh, batch 100": ((1, 28, 28, 9, 9), 3, 100, R.ACT_TANH),
    "W3 conv1 32@5x5 relu, batch 64": ((1, 28, 28, 5, 5), 32, 64, R.ACT_RELU),
    "W3 conv2 64@5x5x32 relu, batch 64": ((32, 12, 12, 5, 5), 64, 64, R.ACT_RELU),
}
POOL = (R.POOL_MAX, 2, 2)


def _layer_data(name, dtype=np.float32):
    geom, k, n, act = LAYERS[name]
    c, h, w, fh, fw = geom
    rng = np.random.default_rng(0)
    x = rng.random((n, c * h * w)).astype(dtype)
    wts = (rng.standard_normal((k, 1 + c * fh * fw)) / (c * fh * fw)).astype(dtype)
    q = (h - fh + 1) * (w - fw + 1)
    out = np.empty((n, k * q // 4), dtype)
    idx = np.empty(out.shape, np.int32)
    R.conv_forward(x, wts, geom, act, POOL, out, idx)
    g = rng.standard_normal(out.shape).astype(dtype) * (out > 0)   # relu zeros, as in training
    work = np.empty(R.conv_work_size(geom, k, 2), dtype)
    return geom, k, act, x, wts, out, idx, g, work


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layer", list(LAYERS))
def test_conv_forward(benchmark, layer, impl):
    geom, k, act, x, wts, out, idx, g, work = _layer_data(layer)
    kern = _backend(impl)
    benchmark.group = f"conv_forward + max pool: {layer}"
    with synaptic.num_threads(2):
        benchmark(kern.conv_forward, x, wts, geom, act, POOL, out, idx, None, work)


@pytest.mark.skipif(NATIVE is None, reason="native backend not built")
@pytest.mark.parametrize("impl", ["native"])
@pytest.mark.parametrize("layer", list(LAYERS))
def test_conv_forward_with_scipy_sgemm(benchmark, layer, impl):
    """The same kernel with SciPy's sgemm (one BLAS thread, per sample, inside the OpenMP
    loop) in place of the micro-kernel."""
    geom, k, act, x, wts, out, idx, g, work = _layer_data(layer)
    benchmark.group = f"conv_forward + max pool, SciPy sgemm per sample: {layer}"
    old = NATIVE.conv._set_gemm_mode(1)
    try:
        with synaptic.num_threads(2):
            benchmark(NATIVE.conv_forward, x, wts, geom, act, POOL, out, idx, None, work)
    finally:
        NATIVE.conv._set_gemm_mode(old)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layer", list(LAYERS))
def test_conv_weight_grad(benchmark, layer, impl):
    geom, k, act, x, wts, out, idx, g, work = _layer_data(layer)
    gw = np.empty_like(wts)
    benchmark.group = f"conv_weight_grad through the pool indices: {layer}"
    with synaptic.num_threads(2):
        benchmark(_backend(impl).conv_weight_grad, g, idx, x, geom, gw, work)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layer", list(LAYERS)[2:])
def test_conv_input_grad(benchmark, layer, impl):
    geom, k, act, x, wts, out, idx, g, work = _layer_data(layer)
    dx = np.empty_like(x)
    benchmark.group = f"conv_input_grad through the pool indices, * relu': {layer}"
    with synaptic.num_threads(2):
        benchmark(_backend(impl).conv_input_grad, g, idx, wts, geom, x, R.ACT_RELU, dx, work)


@pytest.fixture(scope="module")
def maps():
    """64 samples of 32 maps of 24x24 (W3's first layer before pooling)."""
    rng = np.random.default_rng(1)
    y = rng.standard_normal((64, 32 * 24 * 24)).astype(np.float32)
    out = np.empty((64, 32 * 12 * 12), np.float32)
    idx = np.empty(out.shape, np.int32)
    R.max_pool(y, (32, 24, 24), 2, 2, out, idx)
    return y, out, idx


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op", ["max_pool", "avg_pool", "max_pool_backward", "avg_pool_backward"])
def test_pooling(benchmark, maps, op, impl):
    y, out, idx = maps
    kern = _backend(impl)
    shape = (32, 24, 24)
    benchmark.group = f"{op} 2x2: 64 x 32 maps of 24x24"
    calls = {
        "max_pool": (kern.max_pool, (y, shape, 2, 2, out.copy(), idx.copy())),
        "avg_pool": (kern.avg_pool, (y, shape, 2, 2, out.copy())),
        "max_pool_backward": (kern.max_pool_backward, (out, idx, np.empty_like(y))),
        "avg_pool_backward": (kern.avg_pool_backward,
                              (out, shape, 2, 2, np.tanh(y), R.ACT_TANH, np.empty_like(y))),
    }
    fn, args = calls[op]
    with synaptic.num_threads(2):
        benchmark(fn, *args)


# ---------------------------------------------------------------------------------------
# whole epochs

@pytest.fixture(scope="module")
def digits(mnist_path):
    x = datasets.read_samples_idx(mnist_path / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
    labels = datasets.read_labels_idx(mnist_path / "t10k-labels-idx1-ubyte.gz")
    return x, np.asarray(labels)


def _conv(k, size, act):
    return {"type": "convolution", "act_fn": act, "feature_map": {"size": [size, size], "k": k},
            "pool": {"kind": "max", "size": [2, 2]}}


NETS = {
    "W2": ([{"type": "input", "fieldsize": [28, 28]}, _conv(3, 9, "hyperbolic-tangent"),
            {"type": "fully-connected", "n": 10, "act_fn": "sigmoid"}], 100),
    "W3": ([{"type": "input", "fieldsize": [28, 28]}, _conv(32, 5, "relu"), _conv(64, 5, "relu"),
            {"type": "fully-connected", "n": 10, "act_fn": "softmax"}], 64),
}
ROUNDS = {("W2", "native"): 10, ("W2", "numpy"): 3, ("W2", "torch"): 5,
          ("W3", "native"): 3, ("W3", "numpy"): 1, ("W3", "torch"): 2}
TITLES = {"W2": "W2 epoch: conv 3@9x9 tanh, max pool 2, fc 10 sigmoid, batch 100",
          "W3": "W3 epoch: conv 32@5x5 relu, pool, conv 64@5x5 relu, pool, fc 10 softmax, batch 64"}


def torch_epoch(torch, which, x, labels):
    """The same epoch in PyTorch: the same layers, losses, batches and plain SGD (lr 0.01)."""
    nn = torch.nn
    torch.manual_seed(1)
    if which == "W2":
        net = nn.Sequential(nn.Conv2d(1, 3, 9), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(300, 10), nn.Sigmoid())
        bce = nn.BCELoss(reduction="sum")          # synaptic: CE summed over the units ...

        def loss_fn(out, y):
            return bce(out, y) / len(out)          # ... and a step of -lr/m of the batch sum
        targets = torch.from_numpy(np.eye(10, dtype=np.float32)[labels])
    else:
        net = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(1024, 10))
        loss_fn = nn.CrossEntropyLoss()            # softmax + CE, mean over the batch
        targets = torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    size = NETS[which][1]
    xt = torch.from_numpy(x.reshape(-1, 1, 28, 28))
    batches = [(xt[i:i + size], targets[i:i + size]) for i in range(0, len(x), size)]

    def epoch():
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(net(xb), yb).backward()
            opt.step()
    return epoch


@pytest.mark.parametrize("which", ["W2", "W3"])
@pytest.mark.parametrize("impl", IMPLS + ["torch"])  # bottom-most varies slowest: torch last
def test_epoch(benchmark, digits, which, impl):
    x, labels = digits
    benchmark.group = TITLES[which]
    rounds = ROUNDS[which, impl]
    if impl == "torch":
        benchmark.pedantic(torch_epoch(_torch(), which, x, labels), rounds=rounds, iterations=1,
                           warmup_rounds=1)
        return
    layers, batch = NETS[which]
    trset = synaptic.training_set(x, labels, batch=batch, rand=False, dtype=np.float32)
    net = synaptic.neural_net(layers, synaptic.training("backprop", PARAMS), dtype=np.float32,
                              seed=1)
    with synaptic.num_threads(2), synaptic.backend(impl):
        benchmark.pedantic(lambda: synaptic.train(net, trset, 1).result(), rounds=rounds,
                           iterations=1, warmup_rounds=1 if impl == "native" else 0)
    assert net.stats.epochs >= 1  # every round (and the warm-up) trained one epoch
