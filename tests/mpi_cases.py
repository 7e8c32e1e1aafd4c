"""The nets and sets of tests/test_distributed.py, and the program each rank runs under
``mpiexec -n 2 python tests/mpi_cases.py SCENARIO OUTDIR``.

Each rank writes ``OUTDIR/rank<r>.npz`` (the weights of every case it trained, ``<case>_<i>``)
and ``OUTDIR/rank<r>.json`` (batches, epochs, threads, ...); the test compares them with the
same cases trained in one process.
"""
import json
import os
import pathlib
import signal
import sys
import time

import numpy as np

import synaptic as syn

N_IN, N_HIDDEN, N_OUT = 12, 10, 3


def data(rows=150, batch=None, seed=0):
    """A random 3-class set of ``rows`` rows (30 validate), ``batch`` rows a batch."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_IN))
    labels = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int) + (x[:, 3] > 0.8)
    return syn.training_set(x, labels, nvalid=30, batch=batch, rand=False)


L2 = {"regularization": {"kind": "l2", "lambda": 0.01}}
CASES = {  # name: (algorithm, params, batch rows, epochs, dtype)
    "backprop": ("backprop", {"learning_rate": {"epsilon": 0.3}, "momentum": {"alpha": 0.9},
                              **L2}, 25, 4, np.float64),
    "rprop": ("rprop", L2, None, 12, np.float64),
    "lbfgs": ("lbfgs", L2, None, 8, np.float64),
    # float32: the error sum travels apart from the gradients, in float64
    "lbfgs32": ("lbfgs", L2, None, 8, np.float32),
}


def net(case):
    algo, params, _, _, dtype = CASES[case]
    params = dict(params, stats={"errorkinds": ["cross-entropy", "accuracy"]})
    return syn.mlp([N_IN, N_HIDDEN, N_OUT], ["tanh", "softmax"], syn.training(algo, params),
                   dtype=dtype, seed=3)


def trained(case):
    """The net of ``case`` trained on its set (in whatever run is in force)."""
    trset = data(batch=CASES[case][2])
    n = net(case)
    syn.train(n, trset, CASES[case][3]).result()
    return n


def diverging():
    """A net whose training diverges in its first epoch (on_nonfinite "stop")."""
    params = {"error_fn": "sum-of-squares", "learning_rate": {"epsilon": 5000.0},
              "on_nonfinite": "stop", "stats": {"errorkinds": ["sum-of-squares"]}}
    return syn.mlp([N_IN, N_HIDDEN, N_OUT], ["tanh", "linear"], syn.training("backprop", params),
                   seed=3)


def _save(out, rank, arrays, info):
    np.savez(out / f"rank{rank}.npz", **arrays)
    (out / f"rank{rank}.json").write_text(json.dumps(info))


def _weights(prefix, n):
    return {f"{prefix}_{i}": w for i, w in enumerate(n.weights)}


def main(scenario, out):
    from synaptic import distributed
    out = pathlib.Path(out)
    arrays, info = {}, {}
    if scenario in ("deterministic", "fast"):
        if scenario == "deterministic":
            distributed.init(deterministic=True)  # "fast" is detected from mpiexec's env
        for case in CASES:
            n = trained(case)
            arrays.update(_weights(case, n))
            stats = n.training.stats
            info[case] = {"epochs": stats.epochs, "val": stats.val_err, "train": stats.tr_err}
    elif scenario == "stop":
        ctx = distributed.init(deterministic=True)
        n = net("backprop")
        if ctx.rank == 1:  # this rank asks, after its 5th step
            n.add_watch("stop", lambda k, nt, old, new: new.event == "weights"
                        and new.batches == 5 and syn.stop_training(nt))
        syn.train(n, data(batch=10), 50).result()
        arrays.update(_weights("stop", n))
        info["batches"], info["epochs"] = n._batches, n.training.stats.epochs
        n = diverging()
        syn.train(n, data(batch=10), 5).result()  # a RuntimeWarning, the weights kept
        arrays.update(_weights("diverged", n))
        info["diverged"] = n.training.stats.diverged
    elif scenario == "resume":
        ctx = distributed.init(deterministic=True)
        folder = out / "data"
        os.environ["SYNAPTIC_DATA"] = str(folder)
        trset = data(batch=25)
        n = net("backprop")
        syn.train(n, trset, 2).result()
        syn.save_neural_net(n, "half")
        syn.save_neural_net(n, f"written-by-rank{ctx.rank}")
        ctx.comm.comm.Barrier()
        # rank 0 resumes the saved net, rank 1 a fresh one: train() shares rank 0's
        n = syn.load_neural_net("half") if ctx.rank == 0 else net("backprop")
        syn.train(n, trset, 2).result()
        arrays.update(_weights("resume", n))
        info["epochs"] = n.training.stats.epochs
        info["files"] = sorted(p.name for p in folder.iterdir())
    elif scenario in ("kill", "hang"):
        ctx = distributed.init(timeout=3.0)
        n = net("backprop")
        if ctx.rank == 1:  # after its 3rd step, this rank dies, or hangs outside MPI
            def fail():
                (out / "failed_at").write_text(repr(time.time()))
                if scenario == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(600)
            n.add_watch("fail", lambda k, nt, old, new: new.event == "weights"
                        and new.batches == 3 and fail())
        started = time.monotonic()
        try:
            syn.train(n, data(batch=10), 1000).result()
        except distributed.DistributedError as err:
            print(f"rank {ctx.rank}: DistributedError after "
                  f"{time.monotonic() - started:.1f} s: {err}", flush=True)
            raise SystemExit(3)
    info["threads"] = syn.get_num_threads()
    info["size"] = distributed.current().size
    _save(out, distributed.current().rank, arrays, info)


if __name__ == "__main__":
    main(*sys.argv[1:])
