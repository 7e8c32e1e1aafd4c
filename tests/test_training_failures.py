"""A watch or an algorithm that raises, at any event of a training: the Future always settles
with that exception (chained to an earlier one), the net's state is always reset, the worker
thread lives on and the next train works (issue 13, item 1)."""
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic
from synaptic.training.backprop import Backprop

SAMPLES = [[1, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1]]
LABELS = ["1", "0", "0", "1", "1", "1", "0", "0"]
TRSET = synaptic.training_set(SAMPLES, LABELS, batch=2, rand=False, nvalid=2)
ALGOS = {"backprop": {"learning_rate": {"epsilon": 0.5}}, "rprop": {}, "lbfgs": {}}
# (the event, whether the transition is the one that starts (True) or ends (False) training)
EVENTS = [("state", "training"), ("init-stats", None), ("weights", None), ("stats", None),
          ("state", None)]
TIMEOUT = 20  # seconds: the old code blocked forever on some of these


class Boom(Exception):
    pass


def fresh(algo="backprop"):
    return synaptic.mlp([3, 2], "sigmoid", synaptic.training(algo, ALGOS[algo]), seed=3)


def bomb(event, state=None, occurrence=1, error=None):
    """A watch that raises ``error`` at the ``occurrence``-th ``event`` (whose new state is
    ``state`` for a "state" event)."""
    error = error if error is not None else Boom(f"{event} {state} #{occurrence}")
    seen = []

    def watch(key, net, old, new):
        if new.event == event and (event != "state" or new.state == state):
            seen.append(1)
            if len(seen) == occurrence:
                raise error
    watch.error = error
    return watch


def assert_usable(net):
    """The net is idle and trains again (on a synaptic worker thread)."""
    assert net.state is None
    for key in list(net._watches):
        net.remove_watch(key)
    threads = []
    net.add_watch("thread", lambda *a: threads.append(threading.current_thread().name))
    epochs = net.stats.epochs if net.stats is not None else 0
    assert synaptic.train(net, TRSET, 2).result(timeout=TIMEOUT) is net
    assert net.state is None and net.stats.epochs > epochs  # L-BFGS: one per evaluation
    assert "synaptic-train" in threads
    net.remove_watch("thread")


@pytest.mark.parametrize("algo", list(ALGOS))
@pytest.mark.parametrize("every_batch", [True, False], ids=["every-batch", "fused"])
@pytest.mark.parametrize("event,state", EVENTS, ids=[f"{e}-{s}" for e, s in EVENTS])
def test_a_watch_raising_at_any_event_settles_the_future_with_its_exception(algo, every_batch,
                                                                           event, state):
    net = fresh(algo)
    watch = bomb(event, state)
    net.add_watch("bomb", watch, every_batch=every_batch)
    future = synaptic.train(net, TRSET, 3)  # the starting event too: a Future, not a raise
    with pytest.raises(Boom) as info:
        future.result(timeout=TIMEOUT)
    assert info.value is watch.error
    assert net.state is None
    assert_usable(net)


def test_a_watch_raising_at_the_final_event_after_a_training_error_chains_to_it():
    net = fresh()
    first, last = bomb("weights", occurrence=2), bomb("state", None)
    net.add_watch("first", first)
    net.add_watch("last", last)
    future = synaptic.train(net, TRSET, 3)
    with pytest.raises(Boom) as info:
        future.result(timeout=TIMEOUT)
    assert info.value is last.error and info.value.__context__ is first.error
    assert_usable(net)


def test_an_algorithm_error_then_a_failing_final_watch(monkeypatch):
    net = fresh()
    algorithm_error = ArithmeticError("the algorithm failed")

    def broken(self, *args, **kwargs):
        raise algorithm_error
    monkeypatch.setattr(Backprop, "step", broken)
    monkeypatch.setattr(Backprop, "epoch", broken)
    last = bomb("state", None)
    net.add_watch("last", last)
    with pytest.raises(Boom) as info:
        synaptic.train(net, TRSET, 3).result(timeout=TIMEOUT)
    assert info.value is last.error and info.value.__context__ is algorithm_error
    monkeypatch.undo()
    assert_usable(net)


def test_a_watch_failing_at_the_start_and_again_at_the_reset():
    net = fresh()
    start, reset = bomb("state", "training"), bomb("state", None)
    net.add_watch("start", start)
    net.add_watch("reset", reset)
    future = synaptic.train(net, TRSET, 3)
    assert net.state is None and future.done()
    with pytest.raises(Boom) as info:
        future.result(timeout=0)
    assert info.value is reset.error and info.value.__context__ is start.error
    assert_usable(net)


def test_an_interrupt_in_a_starting_watch_stays_in_the_callers_thread():
    net = fresh()
    net.add_watch("ctrl-c", bomb("state", "training", error=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        synaptic.train(net, TRSET, 3)
    assert_usable(net)


def test_a_watch_raising_at_stop_reaches_stop_training_and_the_training_still_stops():
    x = np.random.default_rng(0).random((400, 3))
    trset = synaptic.training_set(x, (x[:, 0] > 0.5).astype(int), online=True, rand=False)
    net = fresh()
    net.add_watch("bomb", bomb("stop"))
    future = synaptic.train(net, trset, 100000)
    with pytest.raises(Boom):
        synaptic.stop_training(net)
    assert future.result(timeout=TIMEOUT) is net
    assert net.stats.epochs < 100000
    assert_usable(net)


def test_the_workers_survive_failing_trainings():
    def workers():
        return sum(t.name == "synaptic-train" for t in threading.enumerate())

    net = fresh()
    synaptic.train(net, TRSET, 1).result(timeout=TIMEOUT)
    before = workers()
    for _ in range(5):
        net.add_watch("bomb", bomb("state", None))
        with pytest.raises(Boom):
            synaptic.train(net, TRSET, 1).result(timeout=TIMEOUT)
    assert workers() == before  # the same worker, reused: none died, none was added
    assert_usable(net)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(algo=st.sampled_from(list(ALGOS)), every_batch=st.booleans(),
       event=st.sampled_from(EVENTS), occurrence=st.integers(1, 4),
       error=st.sampled_from([Boom, ValueError, RuntimeError, SystemExit]))
def test_any_watch_failure_anywhere(algo, every_batch, event, occurrence, error):
    net = fresh(algo)
    watch = bomb(*event, occurrence=occurrence, error=error("raised by a watch"))
    net.add_watch("bomb", watch, every_batch=every_batch)
    start = event == ("state", "training") and occurrence == 1  # once per train call
    if start and error is SystemExit:
        with pytest.raises(SystemExit):
            synaptic.train(net, TRSET, 3)
    else:
        future = synaptic.train(net, TRSET, 3)
        try:
            result = future.result(timeout=TIMEOUT)
        except BaseException as exc:  # noqa: BLE001 - compared below
            assert exc is watch.error
        else:  # the event did not occur that many times
            assert result is net and net.stats.epochs > 0
    assert net.state is None
    assert_usable(net)


def test_train_refuses_data_before_changing_the_state():
    net = fresh()
    with pytest.raises(TypeError):
        synaptic.train(net, "not a training set", 1)
    assert net.state is None
    with pytest.raises(RuntimeError, match="already training"):
        future = synaptic.train(net, TRSET, 100000)
        try:
            synaptic.train(net, TRSET, 1)
        finally:
            synaptic.stop_training(net)
            future.result(timeout=TIMEOUT)
    assert_usable(net)
