"""The start of a distributed training: every rank's data checked (and sharded), rank 0's
net broadcast.  A problem found on any rank raises the same ValueError on every rank, so no
rank is left waiting in a collective the others never reach."""
import dataclasses

import numpy as np

from ..persist import _fill_state, _optimiser_state
from ..training.records import Stats


def agree(ctx, problem):
    """Raise ValueError on every rank when any rank's ``problem`` (a message or None) is set."""
    problems = ctx.comm.allgather_json(problem, "the start of the training")
    bad = [(r, p) for r, p in enumerate(problems) if p is not None]
    if bad:
        raise ValueError("; ".join(f"rank {r}: {p}" for r, p in bad))


def shard_for(ctx, data):
    """This rank's shard of ``data``: ``data`` itself when it is one, else cut by shard()."""
    from . import shard
    problem = None
    info = data.header.get("shard")
    if info is not None:
        if (info.get("rank"), info.get("size")) != (ctx.rank, ctx.size):
            problem = (f"the training set is shard {info.get('rank')} of {info.get('size')}, "
                       f"this process is rank {ctx.rank} of {ctx.size}")
        agree(ctx, problem)
        return data
    mine = [int(data.x.shape[0]), int(data.x.shape[1]), [list(b) for b in data.batch_bounds]]
    root = ctx.comm.bcast_json(mine, "the training set's shape from rank 0")
    if mine != root:
        problem = (f"the training set ({mine[0]} rows of {mine[1]} in {len(mine[2])} batches) "
                   f"is not rank 0's ({root[0]} rows of {root[1]} in {len(root[2])} "
                   f"batches): give every rank the same set, or each its shard(trset)")
    else:
        try:
            data = shard(data, ctx.rank, ctx.size)
        except ValueError as err:
            problem = str(err)
    agree(ctx, problem)
    return data


def share_net(ctx, net):
    """Rank 0's weights, optimiser state, stats and batch count on every rank, in place."""
    comm, root = ctx.comm, ctx.rank == 0
    training = net.training
    described = None
    arrays = {}
    if root:
        scalars, layout, arrays = _optimiser_state(training.state)
        stats = None if training.stats is None else dataclasses.asdict(training.stats)
        described = {"weights": [list(w.shape) for w in net.weights], "dtype": net.dtype.name,
                     "algo": training.algo, "scalars": scalars, "layout": layout,
                     "arrays": {k: [list(a.shape), a.dtype.str] for k, a in arrays.items()},
                     "stats": stats, "batches": int(net._batches)}
    described = comm.bcast_json(described, "the net from rank 0")
    mine = [list(w.shape) for w in net.weights]
    problem = None
    if mine != described["weights"] or net.dtype.name != described["dtype"] \
            or training.algo != described["algo"]:
        problem = (f"the net ({net.dtype.name}, weights {mine}, {training.algo}) is not rank "
                   f"0's ({described['dtype']}, weights {described['weights']}, "
                   f"{described['algo']}): build the same net on every rank")
    agree(ctx, problem)
    for w in net.weights:
        comm.bcast(w, "the weights from rank 0")
    if not root:
        arrays = {k: np.empty(shape, dtype=np.dtype(dt))
                  for k, (shape, dt) in described["arrays"].items()}
    for key in sorted(arrays):
        comm.bcast(arrays[key], "the optimiser state from rank 0")
    if not root:
        state = training.state
        for key in [k for k in state if k != "state"]:
            del state[key]
        state.update(described["scalars"])
        _fill_state(training, described["layout"], arrays, net.dtype)
        training.stats = None if described["stats"] is None else Stats(**described["stats"])
        net._batches = described["batches"]
