"""Index arrays changed by another thread while a kernel runs (issue: check-then-use races).

A kernel that checks an index array (max-pool indices, batch bounds) and then uses it in a
GIL-free section must work on a private copy: otherwise a second thread that writes wild
values into the array between the check and the use makes the kernel read or write outside
its arrays.  Each case runs in a subprocess (a segfault must fail the test, not kill the run)
for a fixed number of calls while a thread keeps flipping the array between a valid and a
wild content, with the interpreter switching threads every microsecond.  Every call must
either succeed or raise ValueError; the process must exit cleanly.  A PackedInput cannot be
edited at all: its arrays stay read-only whatever the caller does.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from synaptic._kernels import native, reference as R
from synaptic._kernels.checks import PackedInput

needs_native = pytest.mark.skipif(native is None, reason="native backend not built")

PRELUDE = """
import sys, threading
import numpy as np
from synaptic._kernels import native as K, reference as R
sys.setswitchinterval(1e-6)
rng = np.random.default_rng(0)
def hammer(arr, good, wild, calls):
    done = threading.Event()
    def flip():
        while not done.is_set():
            arr[...] = wild
            arr[...] = good
    t = threading.Thread(target=flip)
    t.start()
    ok = bad = 0
    try:
        for _ in range(calls):
            try:
                call()
                ok += 1
            except ValueError:
                bad += 1
    finally:
        done.set()
        t.join()
    print("calls", ok, bad)
"""

CASES = {
    "max_pool_backward": """
        y = rng.standard_normal((64, 4 * 16 * 16))
        out, idx = np.empty((64, 4 * 64)), np.empty((64, 4 * 64), np.int32)
        K.max_pool(y, (4, 16, 16), 2, 2, out, idx)
        good, back = idx.copy(), np.empty_like(y)
        call = lambda: K.max_pool_backward(out, idx, back)
        hammer(idx, good, 2**30, CALLS)
    """,
    "conv_weight_grad": """
        geom = (1, 12, 12, 3, 3)
        x, w = rng.standard_normal((48, 144)), rng.standard_normal((4, 10))
        out, idx = np.empty((48, 4 * 25)), np.empty((48, 4 * 25), np.int32)
        K.conv_forward(x, w, geom, R.ACT_RELU, (R.POOL_MAX, 2, 2), out, idx)
        good, dz, gw = idx.copy(), rng.standard_normal(out.shape), np.empty_like(w)
        call = lambda: K.conv_weight_grad(dz, idx, x, geom, gw)
        hammer(idx, good, -2**30, CALLS)
    """,
    "conv_input_grad": """
        geom = (1, 12, 12, 3, 3)
        x, w = rng.standard_normal((48, 144)), rng.standard_normal((4, 10))
        out, idx = np.empty((48, 4 * 25)), np.empty((48, 4 * 25), np.int32)
        K.conv_forward(x, w, geom, R.ACT_RELU, (R.POOL_MAX, 2, 2), out, idx)
        good, dz, dx = idx.copy(), rng.standard_normal(out.shape), np.empty_like(x)
        call = lambda: K.conv_input_grad(dz, idx, w, geom, None, R.ACT_LINEAR, dx)
        hammer(idx, good, 2**30, CALLS)
    """,
    "sgd_epoch": """
        x, t = rng.standard_normal((400, 30)), np.eye(3)[rng.integers(0, 3, 400)]
        ws = [rng.standard_normal((20, 31)) * 0.1, rng.standard_normal((3, 21)) * 0.1]
        dws = [np.zeros_like(w) for w in ws]
        bounds = np.arange(0, 401, 40, dtype=np.int64)
        good, wild = bounds.copy(), bounds.copy()
        wild[1:-1] = 10**12
        def call():
            K.sgd_epoch(x, t, bounds, ws, dws, None, [R.ACT_SIGMOID, R.ACT_SOFTMAX],
                        R.DELTA_DIFF, 0.01, np.zeros(10), False, False, None, None, False,
                        R.REG_NONE, 0.0, 1.0, np.zeros(1, np.int32))
        hammer(bounds, good, wild, CALLS)
    """,
}


@needs_native
@pytest.mark.parametrize("case", sorted(CASES))
def test_index_array_changed_by_another_thread(case):
    code = PRELUDE + "CALLS = 300\n" + textwrap.dedent(CASES[case])
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{case}: exit {run.returncode}\n{run.stderr[-2000:]}"
    ok, bad = map(int, run.stdout.split()[1:3])
    assert ok + bad == 300


@needs_native
def test_packed_input_cannot_be_edited():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 40)) * (rng.random((50, 40)) < 0.2)
    p = native.pack_input(x, 16)
    for name in PackedInput.FIELDS:
        arr = getattr(p, name)
        with pytest.raises(ValueError):
            arr.flags.writeable = True
        with pytest.raises(ValueError):
            arr[...] = 0
        if arr.base is not None and isinstance(arr.base, np.ndarray):
            with pytest.raises(ValueError):
                arr.base.flags.writeable = True
    with pytest.raises(AttributeError):
        p.roff = np.zeros_like(p.roff)
    # an object built around the constructor (its arrays swapped in by force) is refused
    roff = p.roff.copy()
    roff[1:] = 10**9
    object.__setattr__(p, "roff", roff)
    w = rng.standard_normal((7, 41))
    with pytest.raises(ValueError, match="inconsistent PackedInput"):
        native.packed_forward(p, w, R.ACT_SIGMOID, np.empty((50, 7)))


def test_packed_input_keeps_the_callers_arrays_theirs():
    """The constructor copies what it is given: the caller's arrays stay writable, and
    writing them afterwards does not change the pack."""
    from synaptic._kernels import reference_packed as RP
    rng = np.random.default_rng(2)
    x = rng.standard_normal((20, 33)) * (rng.random((20, 33)) < 0.3)
    ref = RP.pack_input(x, 8)
    arrays = {f: np.array(getattr(ref, f)) for f in PackedInput.FIELDS}
    p = PackedInput(x, 8, **arrays)
    arrays["roff"][1:] = 10**9
    assert arrays["roff"].flags.writeable
    np.testing.assert_array_equal(p.roff, ref.roff)
