"""Dense nets on dense data, as users run them: one epoch (stats off, float32, 2 threads) of
fully-connected nets on standardized random features (N(0, 1), a fixed seed; the labels from a
random linear teacher, so that the nets learn), in families:

* 1 hidden layer: 784-100-10 sigmoid/softmax, cross-entropy, SGD + momentum, batch 1, 10, 32,
  128, 1000 and full batch;
* deep relu: 784-256-128-10, 784-512-512-10, 1024-1024-1024-1024-10 at batch 32, 128, 256;
* wide input: 3072-512-10 (a colour image's 32x32x3 values) at batch 128;
* tabular: 20-64-64-2 (softmax) and 8-32-1 (one sigmoid output, binary cross-entropy) at
  batch 32 and 256;
* optimizers on 784-256-128-10 relu: backprop + momentum (the deep family's batch-128 row,
  listed in both), Nesterov and adaptive gains at batch 128, R-prop and RMSprop full batch,
  L-BFGS 5 iterations (a fresh net each round).  The update kernels alone and L-BFGS on MNIST
  are in bench_update.py;
* inference: ``synaptic.estimate`` of 784-512-512-10 relu on 10,000 rows.

Each group has four rows: ``native`` (the compiled kernels), ``numpy`` (their NumPy twin),
``torch`` (PyTorch 2.13 CPU on the same net, data, batches and optimizer, when it is installed:
``make bench-torch``) and ``gemm``, the GEMM floor: only the NumPy matrix products one epoch
needs on the same batches -- each layer's forward product, weight gradient and input gradient
(none for the first layer) -- with no bias, activation, loss or update.  The nets with layers
of 100 units or more record ``flops`` (2mnk per product, bias left out) in extra_info, so that
the report prints GFLOP/s; every row records the CPU level of the kernels
(``synaptic._kernels._cpu.level()``, ``SYNAPTIC_CPU`` forces a lower one) and the core type
OpenBLAS runs (threadpoolctl's ``architecture``, NumPy's and SciPy's libraries).  A timed run
on an AVX-512 CPU refuses to run with a pre-AVX-512 OpenBLAS core type or with
OPENBLAS_L2_SIZE set (``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``, as ``make bench``).

PyTorch's bundled libgomp.so.1 has the system's soname, so in this process it is the libgomp
synaptic loaded: one OpenMP runtime, in which every thread that starts parallel regions owns a
team, and more team threads than cores make every barrier sleep (see synaptic/_workers.py).
So the torch rows run on synaptic's worker thread (``_workers.call``), the thread whose team
synaptic's kernels use: measured on 20-64-64-2 at batch 32, 680 ms an epoch from the main
thread after the native rows, 170-220 ms on the worker or in a process without synaptic's
kernels run.  ``make bench`` runs this file in its own process (after the other files'
PyTorch rows, synaptic's per-layer kernels run slower for the same reason).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python -m pytest benchmarks/bench_dense.py -q
"""
import os
from dataclasses import dataclass

import numpy as np
import pytest
import threadpoolctl

import synaptic
from synaptic import _workers
from synaptic._kernels import _cpu
from synaptic.datasets import DataSet, TrainingSet
from synaptic.utils import partition

NATIVE = synaptic._kernels.native
# the bottom-most parametrize varies slowest: native, then the two on NumPy's OpenBLAS, then torch
IMPLS = (["native"] if NATIVE is not None else []) + ["gemm", "numpy", "torch"]
THREADS = 2
SEED = 20
LR = 0.05   # per row: synaptic sums the gradient over a batch (epsilon = LR / rows), torch averages
AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids"}   # OpenBLAS's AVX-512 core types


@dataclass(frozen=True)
class Case:
    family: str
    sizes: tuple
    acts: tuple              # hidden activation(s) and the output's
    batch: int = None        # None: the whole training set as one batch
    rows: int = 4000
    algo: str = "momentum"   # a key of ALGOS, or "estimate"
    iterations: int = 1      # epochs (L-BFGS: iterations)

    @property
    def arch(self):
        return "-".join(map(str, self.sizes))

    @property
    def workload(self):
        acts = "/".join(dict.fromkeys(self.acts))
        if self.algo == "estimate":
            return f"estimate {self.arch} {acts}, {self.rows:,} rows"
        batch = "full batch" if self.batch is None else f"batch {self.batch}"
        algo = ALGOS[self.algo][0] + (f" {self.iterations} iterations" if self.algo == "lbfgs" else "")
        return f"{self.arch} {acts}, {algo}, {batch}, {self.rows:,} rows"

    @property
    def families(self):
        """The report's tables this row belongs to (the optimizers' baseline is a deep row)."""
        shared = self.sizes == OPTIMIZER_NET and self.batch == 128 and self.algo == "momentum"
        return [self.family] + (["optimizers"] if shared else [])

    @property
    def large(self):
        return min(self.sizes[1:-1] or self.sizes[:1]) >= 100

    def flops(self):
        """The GEMM floor's work: 2mnk a product; forward, weight gradient, input gradient."""
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        if self.algo == "estimate":
            return 2 * self.rows * sum(i * o for i, o in pairs)
        per_row = sum(2 * i * o * (2 if layer == 0 else 3) for layer, (i, o) in enumerate(pairs))
        return per_row * self.rows * self.iterations

    def __str__(self):   # the test id
        return f"{self.arch}-{self.algo}-batch{self.batch or 'full'}"


# name in the tables, synaptic's algo and params (stats off), given the batch's rows
ALGOS = {
    "momentum": ("SGD + momentum", "backprop",
                 lambda n: {"learning_rate": {"epsilon": LR / n}, "momentum": {"alpha": 0.9}}),
    "nesterov": ("Nesterov", "backprop",
                 lambda n: {"learning_rate": {"epsilon": LR / n},
                            "momentum": {"alpha": 0.9, "nesterov": True}}),
    "gains": ("adaptive gains + momentum", "backprop",
              lambda n: {"learning_rate": {"epsilon": LR / n, "adaptive": True, "ming": 0.01,
                                           "maxg": 10.0}, "momentum": {"alpha": 0.9}}),
    "rprop": ("R-prop", "rprop", lambda n: {}),
    "rmsprop": ("RMSprop", "rmsprop",
                lambda n: {"rmsprop": {"alpha": 0.9}, "learning_rate": {"epsilon": 0.001}}),
    "lbfgs": ("L-BFGS", "lbfgs", lambda n: {"lbfgs": {"eps": 0.0}}),
}

OPTIMIZER_NET = (784, 256, 128, 10)
RELU3 = ("relu", "relu", "softmax")
CASES = (
    [Case("1 hidden layer", (784, 100, 10), ("sigmoid", "softmax"), b)
     for b in (1, 10, 32, 128, 1000, None)]
    + [Case("deep relu", sizes, ("relu",) * (len(sizes) - 2) + ("softmax",), b,
            rows=2000 if sizes[1] >= 1024 else 4000)
       for sizes in (OPTIMIZER_NET, (784, 512, 512, 10), (1024, 1024, 1024, 1024, 10))
       for b in (32, 128, 256)]
    + [Case("wide input", (3072, 512, 10), ("relu", "softmax"), 128)]
    + [Case("tabular", sizes, acts, b, rows=10000)
       for sizes, acts in (((20, 64, 64, 2), RELU3), ((8, 32, 1), ("relu", "sigmoid")))
       for b in (32, 256)]
    + [Case("optimizers", OPTIMIZER_NET, RELU3, b, algo=a, iterations=k)
       for a, b, k in (("nesterov", 128, 1), ("gains", 128, 1), ("rprop", None, 1),
                       ("rmsprop", None, 1), ("lbfgs", None, 5))]
    + [Case("inference", (784, 512, 512, 10), RELU3, rows=10000, algo="estimate")]
)
FAMILIES = list(dict.fromkeys(c.family for c in CASES))


# ---------------------------------------------------------------------------------------
# set-up: the BLAS check, the data

def openblas_cores():
    """{"numpy": core type, "scipy": core type} of the OpenBLAS libraries loaded."""
    cores = {}
    for lib in threadpoolctl.threadpool_info():
        if lib.get("internal_api") == "openblas":
            path = lib.get("filepath", "")
            who = "numpy" if "numpy" in path else "scipy" if "scipy" in path else path
            cores[who] = lib.get("architecture")
    return cores


def blas_problem():
    """None, or why a timed run here would not be the users': on an AVX-512 CPU, an OpenBLAS
    core type below SkylakeX, or OPENBLAS_L2_SIZE set."""
    import scipy.linalg  # noqa: F401 - SciPy's OpenBLAS (the native kernels' GEMM) loaded
    cores = openblas_cores()
    slow = {k: v for k, v in cores.items() if str(v).lower() not in AVX512_CORES}
    if "avx512" in _cpu.supported() and (slow or os.environ.get("OPENBLAS_L2_SIZE")):
        return (f"OpenBLAS core types {cores} (OPENBLAS_CORETYPE="
                f"{os.environ.get('OPENBLAS_CORETYPE')!r}, OPENBLAS_L2_SIZE="
                f"{os.environ.get('OPENBLAS_L2_SIZE')!r}) on an AVX-512 CPU: time the benchmarks "
                "as users run them, with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...`")
    return None


@pytest.fixture(scope="module")
def machine(request):
    problem = blas_problem()
    if problem and not request.config.getoption("benchmark_disable", False):
        pytest.fail(problem)
    cores = openblas_cores()
    core = " / ".join(sorted(set(map(str, cores.values()))))
    return {"level": _cpu.level(), "openblas_core": core, "openblas_cores": cores}


_DATA = {}


def data(n_in, n_out, rows):
    """rows x n_in float32 N(0, 1) features and their labels from a random linear teacher
    (0/1 for a single output)."""
    key = (n_in, n_out, rows)
    if key not in _DATA:
        rng = np.random.default_rng(SEED)
        x = rng.standard_normal((rows, n_in), dtype=np.float32)
        teacher = rng.standard_normal((n_in, max(n_out, 2))).astype(np.float32)
        scores = x @ teacher[:, :2] if n_out == 1 else x @ teacher
        labels = scores.argmax(axis=1)
        assert len(np.unique(labels)) == max(n_out, 2)
        _DATA[key] = x, labels
    return _DATA[key]


def training_set(case):
    x, labels = data(case.sizes[0], case.sizes[-1], case.rows)
    if case.sizes[-1] > 1:
        return synaptic.training_set(x, labels, batch=case.batch, rand=False, dtype=np.float32)
    y = labels[:, None].astype(np.float32)            # one sigmoid output: the target is 0/1
    return TrainingSet({"name": "dense-binary", "labels": [1]},
                       [DataSet(x[a:b], y[a:b]) for a, b in partition(case.rows, case.batch)])


def new_net(case, trset):
    name, algo, params = ALGOS["momentum" if case.algo == "estimate" else case.algo]
    rows = max(b - a for a, b in trset.batch_bounds)
    training = synaptic.training(algo, dict(params(rows), stats={"errorkinds": []}))
    return synaptic.mlp(list(case.sizes), list(case.acts), training, dtype=np.float32, seed=1)


def rounds(case, impl):
    if case.batch is not None and case.batch <= 10:
        return 3
    return 3 if impl == "numpy" and case.sizes[1] >= 1024 else 5


# ---------------------------------------------------------------------------------------
# the GEMM floor

def gemm_epoch(case):
    """The matrix products of one epoch (or of ``iterations`` full-batch evaluations, one per
    L-BFGS iteration: its floor), and nothing else.  Weights N(0, 1/fan-in): values that
    stay far from the denormals, which would slow the products down."""
    x, _ = data(case.sizes[0], case.sizes[-1], case.rows)
    rng = np.random.default_rng(SEED + 1)
    ws = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32)
          for i, o in zip(case.sizes[:-1], case.sizes[1:])]
    bounds = partition(case.rows, case.batch) if case.algo != "estimate" else [(0, case.rows)]
    bufs = {}
    for a, b in bounds:
        n = b - a
        if n not in bufs:
            bufs[n] = ([np.empty((n, w.shape[0]), np.float32) for w in ws],    # layer outputs
                       [np.empty((n, w.shape[1]), np.float32) for w in ws],    # input gradients
                       [np.empty(w.shape, np.float32) for w in ws])            # weight gradients
    top = len(ws) - 1

    def forward(xb, outs):
        below = xb
        for w, out in zip(ws, outs):
            np.matmul(below, w.T, out=out)
            below = out

    def epoch():
        for _ in range(case.iterations):
            for a, b in bounds:
                xb = x[a:b]
                outs, dxs, grads = bufs[b - a]
                forward(xb, outs)
                for layer in range(top, -1, -1):
                    delta = outs[top] if layer == top else dxs[layer + 1]
                    np.matmul(delta.T, xb if layer == 0 else outs[layer - 1], out=grads[layer])
                    if layer > 0:
                        np.matmul(delta, ws[layer], out=dxs[layer])

    def estimate():
        outs = bufs[case.rows][0]
        forward(x, outs)
        return outs[-1].argmax(axis=1)

    return estimate if case.algo == "estimate" else epoch


# ---------------------------------------------------------------------------------------
# PyTorch

def _torch():
    try:
        import torch
    except ImportError:
        pytest.skip("PyTorch is not installed (make bench-torch installs torch==2.13.0)")
    torch.set_num_threads(THREADS)
    return torch


def torch_model(torch, case):
    torch.manual_seed(1)
    acts = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}
    layers = []
    for i, (n_in, n_out) in enumerate(zip(case.sizes[:-1], case.sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(case.sizes) - 2:
            layers.append(acts[case.acts[i]]())
    return torch.nn.Sequential(*layers)


def torch_run(torch, case):
    """The same work in PyTorch: a function to time, the setup it needs (or None) and a dict
    of what to record (L-BFGS: the function evaluations of the last run)."""
    x, labels = data(case.sizes[0], case.sizes[-1], case.rows)
    xt = torch.from_numpy(x)
    if case.algo == "estimate":
        model = torch_model(torch, case)

        def estimate():
            with torch.no_grad():
                return model(xt).argmax(dim=1)
        return estimate, None, {}
    binary = case.sizes[-1] == 1
    yt = (torch.from_numpy(labels[:, None].astype(np.float32)) if binary
          else torch.from_numpy(labels.astype(np.int64)))
    reduction = "sum" if case.algo == "lbfgs" else "mean"   # L-BFGS: synaptic's summed objective
    loss_fn = (torch.nn.BCEWithLogitsLoss(reduction=reduction) if binary
               else torch.nn.CrossEntropyLoss(reduction=reduction))
    batches = [(xt[a:b], yt[a:b]) for a, b in partition(case.rows, case.batch)]
    model = torch_model(torch, case)
    params = list(model.parameters())
    if case.algo == "lbfgs":
        info = {}

        def fresh():
            model = torch_model(torch, case)
            opt = torch.optim.LBFGS(model.parameters(), max_iter=case.iterations,
                                    max_eval=case.iterations * 25, history_size=5,
                                    tolerance_grad=0.0, tolerance_change=0.0,
                                    line_search_fn="strong_wolfe")
            return (model, opt), {}

        def run(model, opt):
            info["evaluations"] = 0

            def closure():
                info["evaluations"] += 1
                opt.zero_grad()
                loss = loss_fn(model(xt), yt)
                loss.backward()
                return loss
            opt.step(closure)
        return run, fresh, info
    if case.algo == "gains":
        pytest.skip("PyTorch has no optimizer with the per-weight adaptive gains")
    opt = {"momentum": lambda: torch.optim.SGD(params, lr=LR, momentum=0.9),
           "nesterov": lambda: torch.optim.SGD(params, lr=LR, momentum=0.9, nesterov=True),
           "rprop": lambda: torch.optim.Rprop(params, lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)),
           "rmsprop": lambda: torch.optim.RMSprop(params, lr=0.001, alpha=0.9)}[case.algo]()

    def epoch():
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    return epoch, None, {}


# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("impl", IMPLS)  # bottom-most varies slowest: every native row first
def test_dense(benchmark, machine, case, impl):
    benchmark.group = f"dense {case.family}: {case.workload}"
    benchmark.extra_info.update(machine, impl=impl, family=case.family, families=case.families,
                                workload=case.workload, rows=case.rows, batch=case.batch,
                                threads=THREADS)
    if case.large:
        benchmark.extra_info["flops"] = case.flops()
    timing = dict(rounds=rounds(case, impl), iterations=1, warmup_rounds=1)
    if impl == "torch":
        torch = _torch()
        benchmark.extra_info["torch"] = torch.__version__
        fn, setup, info = torch_run(torch, case)
        # on synaptic's worker thread, whose OpenMP team PyTorch then shares (see the docstring)
        if setup is None:
            benchmark.pedantic(lambda: _workers.call(fn), **timing)
        else:
            benchmark.pedantic(lambda *a: _workers.call(fn, *a), setup=setup,
                               rounds=timing["rounds"], warmup_rounds=1)
        benchmark.extra_info.update(info)
        return
    if impl == "gemm":
        with synaptic.num_threads(THREADS):
            benchmark.pedantic(gemm_epoch(case), **timing)
        return
    trset = training_set(case)
    if case.algo == "estimate":
        net = new_net(case, trset)
        with synaptic.num_threads(THREADS), synaptic.backend(impl):
            labels = benchmark.pedantic(lambda: synaptic.estimate(net, trset.x), **timing)
        assert labels.shape == (case.rows,)
        return
    nets = []
    with synaptic.num_threads(THREADS), synaptic.backend(impl):
        if case.algo == "lbfgs":     # a fresh net each round (a run restarts from its weights)
            def fresh():
                nets.append(new_net(case, trset))
                return (nets[-1],), {}
            benchmark.pedantic(lambda net: synaptic.train(net, trset, case.iterations).result(),
                               setup=fresh, rounds=timing["rounds"], warmup_rounds=1)
            benchmark.extra_info["evaluations"] = nets[-1].stats.epochs - 1
        else:
            nets.append(new_net(case, trset))
            benchmark.pedantic(lambda: synaptic.train(nets[0], trset, case.iterations).result(),
                               **timing)
    net = nets[-1]
    assert net.stats.epochs >= case.iterations
    assert all(np.isfinite(w).all() for w in net.weights)


if __name__ == "__main__":   # make bench: the level and the core types, and the check
    import sys
    problem = blas_problem()
    print(f"synaptic kernels at CPU level {_cpu.level()} (compiled {', '.join(_cpu.COMPILED)}; "
          f"this CPU: {', '.join(_cpu.supported())}); OpenBLAS core types {openblas_cores()}")
    sys.exit(problem)
