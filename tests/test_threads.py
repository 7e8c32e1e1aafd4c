"""The adaptive thread count of training (training/threads.py): its decisions on a scripted
clock, and that it changes no result."""
import numpy as np
import pytest

import synaptic
from synaptic import _kernels
from synaptic.training import threads as T

native = _kernels.native
needs_native = pytest.mark.skipif(native is None, reason="native backend not built")


class Kernels:
    """Stands in for the native backend: records the thread counts set."""

    def __init__(self):
        self.counts = []

    def set_threads(self, n):
        self.counts.append(n)


def scripted(monkeypatch, kern, epochs):
    """Run the chooser over ``epochs``: a function (threads -> (wall, cpu) seconds) per
    epoch; returns the thread count of each epoch."""
    clock = {"wall": 0.0, "cpu": 0.0}
    monkeypatch.setattr(T.time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(T.time, "process_time", lambda: clock["cpu"])
    monkeypatch.setattr(T._kernels, "native", kern)
    monkeypatch.setattr(T._config, "get_num_threads", lambda: 2)
    chooser, used = T.ThreadChooser(), []
    for cost in epochs:
        count = chooser.begin(kern)
        wall, cpu = cost(count)
        clock["wall"] += wall
        clock["cpu"] += cpu
        chooser.end(kern, 1000)
        used.append(count)
    return used


def quiet(count):          # 2 threads faster, both busy all the time
    return (0.010, 0.020) if count == 2 else (0.014, 0.014)


def busy(count):           # a busy neighbour: 2 threads wait for each other
    return (0.025, 0.025) if count == 2 else (0.014, 0.014)


def test_a_quiet_machine_keeps_every_thread(monkeypatch):
    kern = Kernels()
    assert scripted(monkeypatch, kern, [quiet] * 30) == [2] * 30
    assert kern.counts == []          # never touched


def test_a_busy_machine_moves_to_one_thread_and_probes_back_ever_less(monkeypatch):
    kern = Kernels()
    used = scripted(monkeypatch, kern, [busy] * 120)
    # the first epoch warms up (not judged), the second is contended: 1 thread from the third
    assert used[:3] == [2, 2, 1]
    probes = [i for i, c in enumerate(used) if c == 2 and i > 1]
    assert len(probes) >= 3
    gaps = np.diff(probes)
    assert (gaps[1:] >= gaps[:-1]).all() and gaps[-1] > gaps[0]   # backing off
    assert used.count(1) > 0.8 * len(used)
    # every epoch on 1 thread set the kernels to 1 and put them back to 2 after
    assert kern.counts == [1, 2] * used.count(1)


def test_the_faster_count_wins_when_the_load_goes_away(monkeypatch):
    used = scripted(monkeypatch, Kernels(), [busy] * 10 + [quiet] * 40)
    assert used[-1] == 2 and used[-10:] == [2] * 10


def test_one_thread_no_faster_goes_back(monkeypatch):
    """Contended, but 1 thread is slower still: back to 2 threads at once."""
    slow_one = lambda c: (0.025, 0.025) if c == 2 else (0.030, 0.030)  # noqa: E731
    used = scripted(monkeypatch, Kernels(), [slow_one] * 6)
    assert used[:4] == [2, 2, 1, 2]


def test_off_without_native_or_one_thread_or_when_disabled(monkeypatch):
    kern = Kernels()
    chooser = T.ThreadChooser()
    monkeypatch.setattr(T._kernels, "native", kern)
    assert chooser.begin(object()) == synaptic.get_num_threads()   # not the native backend
    chooser.end(object(), 100)
    with synaptic.num_threads(1):
        assert chooser.begin(kern) == 1
    synaptic.set_adaptive_threads(False)
    try:
        with synaptic.num_threads(2):
            assert chooser.begin(kern) == 2
    finally:
        synaptic.set_adaptive_threads(True)
    assert kern.counts == []


def test_set_adaptive_threads_refuses_a_non_bool():
    with pytest.raises(TypeError, match="bool"):
        synaptic.set_adaptive_threads(1)


@needs_native
def test_an_error_mid_epoch_puts_the_thread_count_back(monkeypatch):
    """An epoch on 1 thread that raises: the kernels get their count back."""
    chooser = T.ThreadChooser()
    chooser.n = chooser.best = 2
    chooser.best, chooser.warm, chooser.wait = 1, True, 5
    with synaptic.num_threads(2):
        assert chooser.begin(native) == 1
        assert native.dense._parallel_config()[3] == 1
        chooser.restore(native)
        assert native.dense._parallel_config()[3] == 2


@needs_native
def test_adapting_changes_no_weight(monkeypatch):
    """Epochs forced to alternate between 1 and 2 threads give the bits of 2 threads."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((600, 40)), rng.integers(0, 3, 600)
    ts = synaptic.training_set(x, y, batch=50, rand=False)

    def train(alternate):
        net = synaptic.mlp([40, 30, 3], ["tanh", "softmax"], synaptic.training(
            "backprop", {"learning_rate": {"epsilon": 0.01}, "momentum": {"alpha": 0.9}}),
            seed=4)
        if alternate:
            flip = {"n": 0}

            def begin(self, kern):
                flip["n"] += 1
                self._count = 1 + flip["n"] % 2
                kern.set_threads(self._count)
                self.n = 2
                return self._count
            monkeypatch.setattr(T.ThreadChooser, "begin", begin)
            monkeypatch.setattr(T.ThreadChooser, "end",
                                lambda self, kern, rows: self.restore(kern))
        with synaptic.num_threads(2):
            synaptic.train(net, ts, 4).result()
        monkeypatch.undo()
        return net.weights
    for a, b in zip(train(False), train(True)):
        assert a.tobytes() == b.tobytes()
