"""Update-rule and L-BFGS benchmarks, 2 threads.

* The update kernels (R-prop, RMSprop, backprop's sgd_update, Adam/AdamW), native against their NumPy twin,
  on the 79,510 parameters of a 784-100-10 net (two matrices, 100 x 785 and 10 x 101, one call
  each as in training) and on 1M parameters (one 1000 x 1000 matrix), float32 and float64; with
  PyTorch importable, its Rprop / RMSprop / AdamW ``opt.step()`` on the same 79,510 float32
  parameters and, for AdamW, on the 1M too (torch's default implementation, and its
  ``foreach`` and ``fused`` ones).
* L-BFGS, 50 iterations on W1 (784-100-10 sigmoid/softmax, the 10,000 t10k digits as one
  batch, float32, stats off, the eps test off): ``train`` on the native kernels and on the twin;
  one function evaluation of that run alone; packing the digits (once per run);
  with PyTorch, ``torch.optim.LBFGS`` (history 5 as ours, strong-Wolfe line search, tolerances
  off) on the same net and data.  The function evaluations of each run are in extra_info.
  Each implementation gets one untimed warm-up run: the first seconds of busy work in a
  process run slower here (measured: the first W1 L-BFGS run of a process 0.70 s and its
  evaluations 8.7 ms, then 0.56 s / 6.5 ms; after one second of a busy loop, 6.9 ms at once).

synaptic never imports torch; the torch rows skip without it.  Torch cases run last (their
OpenMP pool would otherwise sit next to ours)::

    .venv/bin/python -m pytest benchmarks/bench_update.py -q
"""
import numpy as np
import pytest

import synaptic
from synaptic import datasets
from synaptic._kernels import native, reference

try:
    import torch
except ImportError:  # the torch rows skip
    torch = None

SIZES = {"79510": [(100, 785), (10, 101)], "1M": [(1000, 1000)]}
DTYPES = [np.float32, np.float64]
BACKENDS = [pytest.param("native", marks=pytest.mark.skipif(native is None, reason="native backend not built")),
            "numpy"]
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
LBFGS_PARAMS = {"stats": {"errorkinds": []}, "lbfgs": {"eps": 0.0}}


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    previous = synaptic.get_num_threads()
    synaptic.set_num_threads(2)
    yield
    synaptic.set_num_threads(previous)


def _state(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [{"w": rng.standard_normal(s).astype(dtype) * dtype(0.05),
             "g": rng.standard_normal(s).astype(dtype),
             "deltaw": rng.standard_normal(s).astype(dtype) * dtype(0.01),
             "aux": rng.uniform(1e-3, 0.1, s).astype(dtype)} for s in shapes]


def _update(kern, rule, arrays):
    """One training step's update of every matrix with ``rule``."""
    if rule == "rprop":
        for a in arrays:
            kern.rprop_update(a["w"], a["g"], a["deltaw"], a["aux"], None, reference.RPROP_ORIGINAL,
                              1.2, 0.5, 1e-6, 50.0, 0.01, True, None, True, False)
    elif rule == "rmsprop":
        for a in arrays:
            kern.rmsprop_update(a["w"], a["g"], a["deltaw"], a["aux"], None, 0.01, 0.9, 0.0, True,
                                None, True, False, None, None)
    elif rule == "adamw":  # AdamW at step 10, batch 100 (the decay fused into the pass)
        for a in arrays:
            kern.adam_update(a["w"], a["g"], a["deltaw"], a["aux"], None, 0.001, 0.9, 0.999,
                             1e-8, 10, 0.01, 1.0 - 0.001 * 0.01)
    else:  # sgd: backprop with momentum, batch 100
        for a in arrays:
            kern.sgd_update(a["w"], a["g"], a["deltaw"], None, 0.1, 0.01, 0.9, True, False, None,
                            None, False)


# the bottom-most parametrize varies slowest: every native case runs before the numpy ones
@pytest.mark.benchmark(max_time=0.3, min_rounds=20)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("rule", ["rprop", "rmsprop", "sgd", "adamw"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_update_kernel(benchmark, backend, rule, size, dtype):
    kern = native if backend == "native" else reference
    arrays = _state(SIZES[size], dtype)
    benchmark.group = f"update {rule} {size} {np.dtype(dtype).name}"
    benchmark.extra_info.update(backend=backend, rule=rule, params=sum(a["w"].size for a in arrays))
    w0 = arrays[0]["w"].copy()
    benchmark(lambda: _update(kern, rule, arrays))
    assert not np.array_equal(w0, arrays[0]["w"]) and np.isfinite(arrays[0]["w"]).all()


@pytest.fixture(scope="module")
def digits(mnist_path):
    x = datasets.read_samples_idx(mnist_path / "t10k-images-idx3-ubyte.gz") / np.float32(255)
    labels = datasets.read_labels_idx(mnist_path / "t10k-labels-idx1-ubyte.gz")
    return x.astype(np.float32), labels


@pytest.mark.parametrize("backend", BACKENDS)
def test_lbfgs_50_iterations(benchmark, digits, backend):
    x, labels = digits
    trset = synaptic.training_set(x, labels, rand=False, dtype=np.float32)   # one batch of 10,000
    nets = []

    def fresh():
        nets.append(synaptic.mlp([784, 100, 10], ["sigmoid", "softmax"],
                                 synaptic.training("lbfgs", LBFGS_PARAMS), dtype=np.float32, seed=1))
        return (nets[-1],), {}

    def run(net):
        with synaptic.backend(backend):
            synaptic.train(net, trset, 50).result()

    benchmark.group = "L-BFGS 50 iterations, W1 784-100-10, 10,000 samples"
    benchmark.pedantic(run, setup=fresh, rounds=3, warmup_rounds=1)
    net = nets[-1]
    assert "ITERATIONS" in net.training.state["lbfgs_status"]
    evaluations = net.stats.epochs - 1
    benchmark.extra_info.update(backend=backend, evaluations=evaluations,
                                cross_entropy=synaptic.training_error("cross-entropy", net, trset))
    assert synaptic.training_error("cross-entropy", net, trset) < 0.5


@pytest.mark.parametrize("backend", BACKENDS)
def test_lbfgs_one_evaluation(benchmark, digits, backend):
    """One L-BFGS function evaluation (C and its gradient) of W1 on the 10,000 digits, as the
    run does it: the native kernels on the input packed once (packed_objective), the twin on x."""
    from synaptic.training import lbfgs
    x, labels = digits
    trset = synaptic.training_set(x, labels, rand=False, dtype=np.float32)
    net = synaptic.mlp([784, 100, 10], ["sigmoid", "softmax"],
                       synaptic.training("lbfgs", LBFGS_PARAMS), dtype=np.float32, seed=1)
    kern = native if backend == "native" else reference
    algo = lbfgs.LBFGS(net)
    packed = lbfgs.pack(algo.gradients, trset.x, kern)
    benchmark.group = "L-BFGS one evaluation (C and gradient), W1 784-100-10, 10,000 samples"
    benchmark.extra_info.update(backend=backend, packed=packed is not None)
    cost, grads = benchmark.pedantic(lambda: algo.cost(trset.x, trset.y, kern, packed),
                                     rounds=10 if backend == "native" else 3, warmup_rounds=1)
    assert np.isfinite(cost) and cost > 0 and all(np.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pack_input(benchmark, digits, backend):
    """Packing the 10,000 digits once for a run (pack_input, blocks of 64 rows)."""
    kern = native if backend == "native" else reference
    benchmark.group = "pack_input, 10,000 x 784 MNIST digits (81 % zeros), float32"
    benchmark.extra_info.update(backend=backend)
    p = benchmark.pedantic(lambda: kern.pack_input(digits[0], 64), rounds=5, warmup_rounds=1)
    assert p.nnz == np.count_nonzero(digits[0])


# ---------------------------------------------------------------------------------------
# PyTorch, for comparison (last: see the module docstring)

def _torch_params(shapes=SIZES["79510"]):
    gen = torch.Generator().manual_seed(0)
    params = []
    for s in shapes:
        p = torch.nn.Parameter(torch.randn(s, generator=gen) * 0.05)
        p.grad = torch.randn(s, generator=gen)
        params.append(p)
    return params


@needs_torch
@pytest.mark.benchmark(max_time=0.3, min_rounds=20)
@pytest.mark.parametrize("rule", ["rprop", "rmsprop"])
def test_torch_optimizer_step(benchmark, rule):
    torch.set_num_threads(2)
    params = _torch_params()
    opt = (torch.optim.Rprop(params, lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)) if rule == "rprop"
           else torch.optim.RMSprop(params, lr=0.01, alpha=0.9))
    benchmark.group = f"update {rule} 79510 float32"
    benchmark.extra_info.update(backend="torch", rule=rule, params=sum(p.numel() for p in params))
    w0 = params[0].detach().clone()
    benchmark(opt.step)
    assert not torch.equal(w0, params[0].detach())


@needs_torch
@pytest.mark.benchmark(max_time=0.3, min_rounds=20)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", ["default", "foreach", "fused"])
def test_torch_adamw_step(benchmark, impl, size):
    torch.set_num_threads(2)
    params = _torch_params(SIZES[size])
    opts = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[impl]
    opt = torch.optim.AdamW(params, lr=0.001, weight_decay=0.01, **opts)
    for _ in range(9):  # to step 10, as the native rows
        opt.step()
    benchmark.group = f"update adamw {size} float32"
    benchmark.extra_info.update(backend=f"torch ({impl})", rule="adamw",
                                params=sum(p.numel() for p in params))
    w0 = params[0].detach().clone()
    benchmark(opt.step)
    assert not torch.equal(w0, params[0].detach())


@needs_torch
def test_torch_lbfgs_one_evaluation(benchmark, digits):
    """The same evaluation in PyTorch: forward, summed cross-entropy, backward."""
    torch.set_num_threads(2)
    x = torch.from_numpy(digits[0])
    y = torch.from_numpy(np.asarray(digits[1], dtype=np.int64))
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.Sigmoid(), torch.nn.Linear(100, 10))

    def evaluate():
        model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss.item()

    benchmark.group = "L-BFGS one evaluation (C and gradient), W1 784-100-10, 10,000 samples"
    benchmark.extra_info.update(backend="torch")
    assert benchmark.pedantic(evaluate, rounds=10, warmup_rounds=1) > 0


@needs_torch
def test_torch_lbfgs_50_iterations(benchmark, digits):
    torch.set_num_threads(2)
    x = torch.from_numpy(digits[0])
    y = torch.from_numpy(np.asarray(digits[1], dtype=np.int64))
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")   # a sum, as synaptic's objective
    runs = []

    def fresh():
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.Sigmoid(), torch.nn.Linear(100, 10))
        opt = torch.optim.LBFGS(model.parameters(), max_iter=50, max_eval=50 * 25, history_size=5,
                                tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
        runs.append({"model": model, "evaluations": 0})
        return (model, opt, runs[-1]), {}

    def run(model, opt, record):
        def closure():
            record["evaluations"] += 1
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            return loss
        opt.step(closure)

    benchmark.group = "L-BFGS 50 iterations, W1 784-100-10, 10,000 samples"
    benchmark.pedantic(run, setup=fresh, rounds=3, warmup_rounds=1)
    with torch.no_grad():
        ce = float(loss_fn(runs[-1]["model"](x), y)) / len(y)
    benchmark.extra_info.update(backend="torch", evaluations=runs[-1]["evaluations"], cross_entropy=ce)
    assert ce < 0.5
