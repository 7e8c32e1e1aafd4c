"""W1: one epoch of 784-100-10 sigmoid/softmax, cross-entropy, SGD + momentum over the 10,000
MNIST t10k digits, float32, 2 threads, at batch 1, 10, 100, 1000 and full batch; the compiled
kernels against their NumPy twin (stats off: the timing is the training itself)."""
import numpy as np
import pytest

import synaptic
from synaptic import datasets

BATCHES = [1, 10, 100, 1000, None]
PARAMS = {"learning_rate": {"epsilon": 0.1}, "momentum": {"alpha": 0.9},
          "stats": {"errorkinds": []}}
BACKENDS = ["native", "numpy"] if synaptic._kernels.native is not None else ["numpy"]


@pytest.fixture(scope="module")
def digits(mnist_path):
    x = datasets.read_samples_idx(mnist_path / "t10k-images-idx3-ubyte.gz") / np.float32(255)
    labels = datasets.read_labels_idx(mnist_path / "t10k-labels-idx1-ubyte.gz")
    return x.astype(np.float32), labels


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"batch{b or 'full'}")
def test_w1_epoch(benchmark, digits, batch, backend):
    x, labels = digits
    trset = synaptic.training_set(x, labels, batch=batch, rand=False, dtype=np.float32)
    net = synaptic.mlp([784, 100, 10], ["sigmoid", "softmax"], synaptic.training("backprop", PARAMS),
                       dtype=np.float32, seed=1)
    benchmark.group = f"W1 epoch batch {batch or 'full'}"
    rounds = 3 if (batch or 10000) < 100 else 10
    with synaptic.num_threads(2), synaptic.backend(backend):
        benchmark.pedantic(lambda: synaptic.train(net, trset, 1).result(), rounds=rounds,
                           iterations=1, warmup_rounds=1)
    assert net.stats.epochs == rounds + 1
