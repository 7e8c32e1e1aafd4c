"""A conv net on the MNIST t10k digits: "same" padding, dropout, Adam, a cosine schedule and
early stopping.  8,000 digits train, 2,000 validate (the mnist10k recipe, in batches of 50).

    python examples/mnist_conv.py            # 20 epochs (about 1.5 min on 2 cores)
    python examples/mnist_conv.py --epochs 2
"""
import argparse
import time

import numpy as np

import synaptic as syn

LAYERS = [
    {"type": "input", "fieldsize": [28, 28]},
    {"type": "convolution", "act_fn": "relu",
     "feature_map": {"size": [5, 5], "k": 32, "padding": "same"},
     "pool": {"kind": "max", "size": [2, 2]}},                        # 32 maps of 14 x 14
    {"type": "convolution", "act_fn": "relu",
     "feature_map": {"size": [5, 5], "k": 64, "padding": "same"},
     "pool": {"kind": "max", "size": [2, 2]}},                        # 64 maps of 7 x 7
    {"type": "dropout", "p": 0.5},
    {"type": "fully-connected", "n": 128, "act_fn": "relu"},
    {"type": "dropout", "p": 0.5},
    {"type": "fully-connected", "n": 10, "act_fn": "softmax"},
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=None, help="train on the first ROWS only")
    args = parser.parse_args(argv)
    trset = syn.load_training_set("mnist10k", scale=True, dtype=np.float32).rebatch(50)
    if args.rows is not None:
        trset = syn.training_set(trset.x[:args.rows], trset.y[:args.rows].argmax(axis=1),
                                 fieldsize=[28, 28], batch=50, nvalid=args.rows // 5,
                                 rand=False, dtype=np.float32)
    params = {"learning_rate": {"epsilon": 0.002,
                                "schedule": {"kind": "cosine", "epochs": args.epochs}},
              "early_stopping": {"errorkind": "accuracy", "patience": 5},
              "stats": {"errorkinds": ["accuracy", "cross-entropy"]}}
    net = syn.neural_net(LAYERS, syn.training("adam", params), dtype=np.float32, seed=1)
    started = time.perf_counter()
    net.add_watch("log", lambda key, n, old, new: new.event == "stats" and print(
        f"epoch {n.stats.epochs:2d}  {time.perf_counter() - started:5.1f} s  "
        f"rate {n.stats.learning_rate[-1]:.5f}  "
        f"validation accuracy {n.stats.val_err['accuracy'][-1]:.4f}", flush=True),
        every_batch=False)
    syn.train(net, trset, args.epochs).result()
    best = max(net.stats.val_err["accuracy"])
    print(f"best validation accuracy {best:.4f} in {time.perf_counter() - started:.0f} s; "
          f"early stopping: {net.stats.early_stopping}")
    return net


if __name__ == "__main__":
    main()
