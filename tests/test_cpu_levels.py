"""CPU levels: the kernels run at every level this CPU offers, and on older CPUs.

Each kernel module holds one copy per level (baseline x86-64-v2, avx2, avx512), chosen at
import (synaptic._kernels._cpu).  Here: the choice and SYNAPTIC_CPU, one small training at
every level giving the native result, and the installed package training under
``qemu-x86_64 -cpu Haswell`` (AVX2, no AVX-512) and ``-cpu Nehalem`` (SSE4.2 only).  The
kernel-vs-twin suites run at every level through ``make test`` (SYNAPTIC_CPU per run).
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from synaptic import _kernels

_cpu = pytest.importorskip("synaptic._kernels._cpu", reason="native backend not built")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
USABLE = [level for level in _cpu.COMPILED if level in _cpu.supported()]

# A small net trained by a fresh process; prints the level it ran at and the weights.
TRAIN = """
import json, sys
import numpy as np, synaptic
from synaptic._kernels import _cpu
rng = np.random.default_rng(0)
x = rng.standard_normal((300, 12))
y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
trset = synaptic.training_set(x, y, batch=50, rand=False, dtype=np.float32)
params = {"learning_rate": {"epsilon": 0.1}, "momentum": {"alpha": 0.9},
          "stats": {"errorkinds": []}}
net = synaptic.mlp([12, 16, 2], ["sigmoid", "softmax"], synaptic.training("backprop", params),
                   dtype=np.float32, seed=1)
synaptic.train(net, trset, 5).result()
print(json.dumps({"level": _cpu.level(), "backend": synaptic.get_backend(),
                  "weights": [w.tolist() for w in net.weights]}))
"""


def run(code, level=None, prefix=(), env_drop=()):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env.pop("SYNAPTIC_CPU", None)
    if level is not None:
        env["SYNAPTIC_CPU"] = level
    return subprocess.run([*prefix, sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600)


def trained(level=None, prefix=(), env_drop=()):
    proc = run(TRAIN, level, prefix, env_drop)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["level"], out["backend"], [np.array(w) for w in out["weights"]]


@pytest.fixture(scope="module")
def reference():
    """The result at the best level, in a fresh process like the others."""
    return trained()


def assert_same(weights, want):
    for got, w in zip(weights, want):
        # float32 training, 30 batches: the levels' BLAS and vector widths round differently
        np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5)


def test_level_in_use_is_the_best_compiled_and_supported():
    assert _cpu.level() == USABLE[-1]
    assert _cpu.best() == USABLE[-1]
    assert set(_cpu.COMPILED) <= set(_cpu.LEVELS) and _cpu.COMPILED[0] == "baseline"
    assert _kernels.backend_name() == "native"


@pytest.mark.parametrize("level", USABLE)
def test_forced_level_trains_to_the_native_result(level, reference):
    got_level, backend, weights = trained(level)
    assert (got_level, backend) == (level, "native")
    assert_same(weights, reference[2])


@pytest.mark.parametrize("value", ["sse2", "AVX-512", "native"])
def test_unknown_level_is_a_clear_error(value):
    proc = run("import synaptic", value)
    assert proc.returncode != 0
    assert "SYNAPTIC_CPU" in proc.stderr and "expected one of baseline, avx2, avx512" in proc.stderr


def test_level_above_the_cpu_is_refused():
    higher = [level for level in _cpu.LEVELS if level not in USABLE]
    if not higher:
        pytest.skip("this CPU runs every level")
    proc = run("import synaptic", higher[0])
    assert proc.returncode != 0 and "runs at most" in proc.stderr


def test_show_config_reports_the_levels():
    proc = run("import synaptic; c = synaptic.show_config(); print(c['cpu_level'], c['cpu_levels'])",
               "baseline")
    assert proc.returncode == 0, proc.stderr
    assert "CPU level: baseline" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == f"baseline {list(_cpu.supported())}"


QEMU = shutil.which("qemu-x86_64")


@pytest.mark.skipif(sys.platform != "linux" or os.uname().machine != "x86_64",
                    reason="qemu-x86_64 emulates older x86-64 CPUs on an x86-64 Linux host")
@pytest.mark.parametrize("cpu,level", [("Haswell", "avx2"), ("Nehalem", "baseline")])
def test_older_cpu_under_qemu(cpu, level, reference):
    """The installed package imports and trains on a CPU without AVX-512 (Haswell) and one
    without AVX (Nehalem), at the best level that CPU has, to the native result."""
    if QEMU is None:
        if IN_CI:
            pytest.fail("qemu-x86_64 is missing: CI installs Debian's qemu-user (.ci/run)")
        pytest.skip("qemu-x86_64 not installed (apt-get install qemu-user)")
    # the machine's OPENBLAS_CORETYPE pin would make OpenBLAS run kernels the emulated CPU
    # lacks; a user of that CPU has no pin (OpenBLAS detects the core)
    got_level, backend, weights = trained(None, (QEMU, "-cpu", cpu),
                                          ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
    assert (got_level, backend) == (level, "native")
    assert_same(weights, reference[2])
