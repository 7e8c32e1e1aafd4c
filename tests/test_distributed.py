"""synaptic.distributed: 2 ranks under ``mpiexec -n 2`` (tests/mpi_cases.py) give the weights
of one process, stop together, resume exactly, and end with a clear error when a rank dies
or hangs; shard() and emulate() in this process.

"One process" is two things here, and each test says which:
* ``emulate(2)``: one process computing each rank's part of every batch in turn and adding the
  parts in rank order -- the deterministic mode's reference, equal **bit for bit**;
* plain ``train`` in one process: it sums all B rows of a batch inside one matrix product (in
  another order), so it is equal to rounding: <= 1e-12 relative in float64.

Skipped outside CI when mpi4py is missing; under CI (CI=true) that fails.
"""
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import synaptic as syn
from synaptic import distributed

import mpi_cases as cases

HERE = pathlib.Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None
MPIEXEC = (shutil.which("mpiexec", path=str(pathlib.Path(sys.executable).parent))
           or shutil.which("mpiexec"))
RTOL = 1e-12

needs_mpi = pytest.mark.skipif(not IN_CI and (not HAVE_MPI or MPIEXEC is None),
                               reason="mpi4py / mpiexec not installed (pip install synaptic[mpi])")


def mpi_env(**extra):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_mpi_yield_when_idle="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    env.update(extra)
    return env


def mpiexec(args, timeout=60, **env):
    """Run ``mpiexec -n 2 ARGS``; returns (CompletedProcess, seconds)."""
    if IN_CI:
        assert HAVE_MPI and MPIEXEC, "CI: mpi4py and mpiexec must be installed (the test extra)"
    started = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", "2", "--oversubscribe", *args], env=mpi_env(**env),
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.monotonic() - started


def run_ranks(scenario, tmp_path, timeout=60):
    """Both ranks' (arrays, info) of a scenario of tests/mpi_cases.py."""
    proc, _ = mpiexec([sys.executable, str(HERE / "mpi_cases.py"), scenario, str(tmp_path)],
                      timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [(dict(np.load(tmp_path / f"rank{r}.npz")),
             json.loads((tmp_path / f"rank{r}.json").read_text())) for r in (0, 1)]


def relative(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def one_process():
    """{case: (plain train's net, emulate(2)'s net)}, trained in this process."""
    out = {}
    for case in cases.CASES:
        plain = cases.trained(case)
        with distributed.emulate(2):
            out[case] = (plain, cases.trained(case))
    return out


@needs_mpi
@pytest.mark.parametrize("mode", ["deterministic", "fast"])
def test_two_ranks_give_the_weights_of_one_process(mode, tmp_path, one_process):
    (w0, info0), (w1, info1) = run_ranks(mode, tmp_path)
    assert info0["size"] == info1["size"] == 2
    assert info0["threads"] == info1["threads"] == 1  # one thread per rank by default
    for case, (plain, emulated) in one_process.items():
        assert info0[case] == info1[case], f"{case}: the ranks' stats differ"
        stats = plain.training.stats
        rtol = RTOL if plain.dtype == np.float64 else 1e-4  # float32: rounding, amplified
        assert info0[case]["epochs"] == stats.epochs
        for kind, values in stats.val_err.items():
            np.testing.assert_allclose(info0[case]["val"][kind], values, rtol=rtol)
            np.testing.assert_allclose(info0[case]["train"][kind], stats.tr_err[kind], rtol=rtol)
        for i, w in enumerate(plain.weights):
            mine, other = w0[f"{case}_{i}"], w1[f"{case}_{i}"]
            assert mine.dtype == w.dtype
            assert np.array_equal(mine, other), f"{case}: the ranks' weights differ"
            assert relative(mine, w) <= rtol, f"{case}: not plain train's weights"
            assert not np.array_equal(mine, cases.net(case).weights[i])  # it trained
            if mode == "deterministic":
                assert np.array_equal(mine, emulated.weights[i]), f"{case}: not bitwise"


@needs_mpi
def test_a_stop_on_one_rank_stops_both_after_the_same_step(tmp_path):
    (w0, info0), (w1, info1) = run_ranks("stop", tmp_path)
    # rank 1 asked after its 5th step; the 6th step carried the request to rank 0
    assert info0["batches"] == info1["batches"] == 6
    assert info0["epochs"] == info1["epochs"] == 0
    ref = cases.net("backprop")
    ref.add_watch("stop", lambda k, n, old, new: new.event == "weights" and new.batches == 6
                  and syn.stop_training(n))
    with distributed.emulate(2):
        syn.train(ref, cases.data(batch=10), 50).result()
    assert ref._batches == 6
    for i, w in enumerate(ref.weights):
        assert np.array_equal(w0[f"stop_{i}"], w) and np.array_equal(w1[f"stop_{i}"], w)
    # a divergence is found at the same batch on both ranks (their checks agree), and the
    # weights from before it are kept
    diverged = cases.diverging()
    with distributed.emulate(2), pytest.warns(RuntimeWarning, match="diverged"):
        syn.train(diverged, cases.data(batch=10), 5).result()
    assert info0["diverged"] == info1["diverged"] == diverged.training.stats.diverged
    assert info0["diverged"]["batch"] is not None
    for i, w in enumerate(diverged.weights):
        assert np.isfinite(w).all()
        assert np.array_equal(w0[f"diverged_{i}"], w) and np.array_equal(w1[f"diverged_{i}"], w)


@needs_mpi
def test_a_saved_net_resumes_exactly_and_only_rank_0_writes(tmp_path):
    (w0, info0), (w1, info1) = run_ranks("resume", tmp_path)
    assert info0["files"] == ["neuralnet.half", "neuralnet.written-by-rank0"]
    assert info0["epochs"] == info1["epochs"] == 4
    straight = cases.net("backprop")
    with distributed.emulate(2):
        syn.train(straight, cases.data(batch=25), 4).result()
    for i, w in enumerate(straight.weights):
        assert np.array_equal(w0[f"resume_{i}"], w) and np.array_equal(w1[f"resume_{i}"], w)


@needs_mpi
def test_a_killed_rank_ends_the_run_within_30_s(tmp_path):
    proc, _ = mpiexec([sys.executable, str(HERE / "mpi_cases.py"), "kill", str(tmp_path)],
                      timeout=120)
    out = proc.stdout + proc.stderr
    # from the moment rank 1 died (the start of the ranks is not counted: a loaded machine)
    assert time.time() - float((tmp_path / "failed_at").read_text()) < 30, out
    assert proc.returncode != 0, out
    assert "rank 1" in out and "signal 9" in out, out
    assert not (tmp_path / "rank0.json").exists()  # rank 0 never finished


@needs_mpi
def test_a_hung_rank_makes_the_other_fail_with_a_clear_error(tmp_path):
    proc, _ = mpiexec([sys.executable, str(HERE / "mpi_cases.py"), "hang", str(tmp_path)],
                      timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert time.time() - float((tmp_path / "failed_at").read_text()) < 30, out
    assert "rank 0: DistributedError" in out and "did not complete in 3 s" in out, out
    assert not (tmp_path / "rank0.json").exists()


@needs_mpi
def test_the_command_line_trains_distributed(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path / "data"))
    syn.save_training_set(cases.data(batch=20), "tiny")
    proc, _ = mpiexec([sys.executable, "-m", "synaptic", "train", "--distributed",
                       "--deterministic", "--data", "tiny", "--arch", "12-10-3", "--epochs", "3",
                       "--seed", "1", "--save", "cli", "--quiet"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("validation accuracy:") == 1  # rank 0 prints, rank 1 does not
    net = syn.load_neural_net("cli")
    assert net.training.stats.epochs == 3
    assert len(net.training.stats.val_err["accuracy"]) == 3


# In this process ---------------------------------------------------------------------------

def test_shard_gives_each_rank_its_part_of_every_batch():
    trset = cases.data(rows=53, batch=10)  # 23 training rows: batches of 10, 10, 3
    parts = [distributed.shard(trset, r, 3) for r in range(3)]
    assert [p.batch_bounds for p in parts] == [[(0, 3), (3, 6), (6, 7)],
                                              [(0, 3), (3, 6), (6, 7)],
                                              [(0, 4), (4, 8), (8, 9)]]
    rows = np.concatenate([np.concatenate([p.batches[b].x for p in parts])
                           for b in range(trset.nbatches)])
    assert np.array_equal(rows, trset.x)  # the ranks' batches together are the global ones
    assert parts[0].valid is trset.valid and parts[1].valid is None and parts[2].valid is None
    assert parts[2].header["shard"] == {"rank": 2, "size": 3, "rows": 23}


@pytest.mark.parametrize("call, error, match", [
    (lambda t: distributed.shard(t, 0, 4), ValueError, "batch 2 has 3 rows, fewer than the 4"),
    (lambda t: distributed.shard(t, 2, 2), ValueError, "rank must be in"),
    (lambda t: distributed.shard(t, 0, 2.0), ValueError, "size must be an int"),
    (lambda t: distributed.shard(t), ValueError, "outside a distributed run"),
    (lambda t: distributed.shard(distributed.shard(t, 0, 2), 0, 2), ValueError, "already a shard"),
    (lambda t: distributed.shard(t.x, 0, 2), TypeError, "needs a TrainingSet"),
    (lambda t: syn.save_training_set(distributed.shard(t, 0, 2), "s"), ValueError, "shard"),
])
def test_bad_shards_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call(cases.data(rows=53, batch=10))


def test_a_reshuffled_set_is_not_sharded():
    x = np.arange(40.0).reshape(20, 2)
    trset = syn.training_set(x, [0, 1] * 10, batch=5, reshuffle=True, seed=0)
    with pytest.raises(ValueError, match="reshuffles"):
        distributed.shard(trset, 0, 2)


def test_emulation_refuses_what_cannot_be_split_or_summed():
    with pytest.raises(ValueError, match="size must be an int >= 1"):
        with distributed.emulate(0):
            pass
    perceptron = syn.mlp([2, 2], "binary-threshold", syn.training("perceptron"), seed=1)
    tiny = syn.training_set([[0, 0], [1, 1]], [0, 1], rand=False)
    with distributed.emulate(2):
        with pytest.raises(ValueError, match="cannot be distributed"):
            syn.train(perceptron, tiny, 1)
        net = cases.net("backprop")
        with pytest.raises(ValueError, match="batch 0 has fewer rows than the 2 ranks"):
            syn.train(net, cases.data(rows=32, batch=1), 1)
    assert distributed.current() is None  # the emulation ended with its block


def test_emulation_equals_plain_training_to_rounding_and_skips_the_fused_kernel(one_process):
    for case, (plain, emulated) in one_process.items():
        for w, e in zip(plain.weights, emulated.weights):
            assert relative(e, w) <= (RTOL if w.dtype == np.float64 else 1e-4)
    # the fused whole-epoch kernel sums each batch in one product: the emulation must not use it
    calls = []
    net = cases.net("backprop")  # dense backprop on batches of 25 rows: fusable
    from synaptic.training import backprop
    original = backprop.Backprop.epoch
    backprop.Backprop.epoch = lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    try:
        syn.train(net, cases.data(batch=25), 1).result()
        assert calls, "the plain run was expected to take the fused kernel"
        calls.clear()
        with distributed.emulate(2):
            syn.train(cases.net("backprop"), cases.data(batch=25), 1).result()
        assert not calls
    finally:
        backprop.Backprop.epoch = original


def test_emulated_lbfgs_packs_each_rank_s_rows(monkeypatch):
    """On mostly-zero inputs L-BFGS packs x once a run; emulated, each part is packed (as
    each rank packs its shard) and evaluated by the packed kernel."""
    from synaptic import _kernels
    if _kernels.native is None:
        pytest.skip("the packed path is the native kernels'")
    rng = np.random.default_rng(1)
    x = rng.random((700, cases.N_IN)) * (rng.random((700, cases.N_IN)) < 0.2)
    trset = syn.training_set(x, (x[:, 0] > x[:, 1]).astype(int), nvalid=100, rand=False)
    calls = []
    packed = _kernels.native.packed_objective
    monkeypatch.setattr(_kernels.native, "packed_objective",
                        lambda *a, **k: calls.append(a[0].x.shape[0]) or packed(*a, **k))

    def lbfgs():
        return syn.mlp([cases.N_IN, 8, 2], ["tanh", "softmax"], syn.training("lbfgs"), seed=2)
    plain, emulated = lbfgs(), lbfgs()
    syn.train(plain, trset, 5).result()
    assert set(calls) == {600}
    calls.clear()
    with distributed.emulate(2):
        syn.train(emulated, trset, 5).result()
    assert set(calls) == {300}  # each part packed and evaluated on its own
    for w, e in zip(plain.weights, emulated.weights):
        assert relative(e, w) <= RTOL


def test_importing_synaptic_does_not_import_mpi4py():
    code = "import synaptic, synaptic.distributed, sys; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items()
                              if k not in distributed.LAUNCH_SIZE_VARS})
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("name", distributed.__all__)
def test_public_names_have_numpydoc_docstrings(name):
    import inspect
    doc = inspect.getdoc(getattr(distributed, name))
    assert doc and "Examples\n--------" in doc, name
    if inspect.isfunction(getattr(distributed, name)):
        assert "Parameters\n----------" in doc or not inspect.signature(
            getattr(distributed, name)).parameters, name
        assert "Returns\n-------" in doc or "Yields\n------" in doc, name


def test_the_examples_of_synaptic_distributed_run():
    import doctest
    failures, tried = doctest.testmod(distributed, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
