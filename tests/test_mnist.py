"""Real data: a 784-100-10 net learns mnist10k (the t10k IDX files, found through the fixture)."""
import numpy as np
import pytest

import synaptic
from synaptic import datasets, demo

from helpers import BACKENDS, using


@pytest.fixture(scope="module")
def mnist_batches(mnist_path):
    base = datasets.mnist10k(scale=True, dtype=np.float32, path=mnist_path)
    labels = np.asarray(base.labels)[np.argmax(base.y, axis=1)]
    trset = synaptic.training_set(base.x, labels, batch=50, rand=False, dtype=np.float32)
    return synaptic.TrainingSet(trset.header, trset.batches, base.valid)


@pytest.mark.parametrize("backend", BACKENDS)
def test_784_100_10_reaches_90_percent_in_three_epochs(mnist_batches, backend):
    net = synaptic.mlp([784, 100, 10], ["sigmoid", "softmax"],
                       synaptic.training("backprop", demo.SETTINGS), dtype=np.float32, seed=1)
    with using(backend):
        synaptic.train(net, mnist_batches, 3).result(timeout=300)
    acc = synaptic.accuracy(net, mnist_batches.valid)
    assert acc >= 0.90, acc
    assert net.stats.val_err["accuracy"][-1] == pytest.approx(acc)
    labels = synaptic.estimate(net, mnist_batches.valid)
    truth = np.argmax(mnist_batches.valid.y, axis=1)
    assert np.mean(labels == truth) == pytest.approx(acc)


def test_the_demo_reaches_92_percent(mnist_path, monkeypatch):
    monkeypatch.setenv("SYNAPTIC_MNIST_DIR", str(mnist_path))
    lines = []
    net, acc = demo.run(epochs=10, seed=1, out=lines.append)
    assert acc >= 0.92
    assert len([l for l in lines if l.split()[0].isdigit()]) == 10
    assert lines[-1].startswith("final validation accuracy")
