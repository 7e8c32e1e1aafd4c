"""Learning-rate schedules (step, exponential, cosine, plateau, warmup): the rates against
PyTorch's schedulers, the rate in force recorded and used, exact resume after save/load,
and their option errors."""
import math

import numpy as np
import pytest

import synaptic
from synaptic.training.schedules import Schedule

EPOCHS = 40


def rates(schedule, epsilon=0.1, epochs=EPOCHS):
    s = Schedule({"epsilon": epsilon, "schedule": schedule}, {})
    return [s.rate(e) for e in range(epochs)]


def torch_rates(make, epsilon=0.1, epochs=EPOCHS):
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=epsilon)
    sched = make(torch.optim.lr_scheduler, opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("schedule, make", [
    ({"kind": "step", "step_size": 7, "gamma": 0.5}, lambda s, o: s.StepLR(o, 7, gamma=0.5)),
    ({"kind": "step", "step_size": 3}, lambda s, o: s.StepLR(o, 3)),
    ({"kind": "exponential", "gamma": 0.9}, lambda s, o: s.ExponentialLR(o, 0.9)),
    ({"kind": "cosine", "epochs": 25, "min_epsilon": 0.001},
     lambda s, o: s.CosineAnnealingLR(o, 25, eta_min=0.001)),
    ({"kind": "cosine", "epochs": 10, "warmup": 5, "warmup_start": 0.2},
     lambda s, o: s.SequentialLR(o, [s.LinearLR(o, 0.2, total_iters=5),
                                     s.CosineAnnealingLR(o, 10)], milestones=[5])),
    ({"kind": "step", "step_size": 4, "gamma": 0.5, "warmup": 3},
     lambda s, o: s.SequentialLR(o, [s.LinearLR(o, 0.1, total_iters=3),
                                     s.StepLR(o, 4, gamma=0.5)], milestones=[3])),
], ids=["step", "step-default-gamma", "exponential", "cosine", "cosine-warmup", "step-warmup"])
def test_rates_match_torch_schedulers(schedule, make):
    want = torch_rates(make)
    got = rates(schedule)
    if schedule["kind"] == "cosine":  # torch's recursive form drifts from the closed form
        got = [g for g, e in zip(got, range(EPOCHS)) if e - schedule.get("warmup", 0) <= schedule["epochs"]]
        want = want[:len(got)]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_cosine_stays_at_its_floor_after_its_epochs():
    got = rates({"kind": "cosine", "epochs": 10, "min_epsilon": 0.01})
    assert got[0] == 0.1 and got[10] == pytest.approx(0.01) and set(got[10:]) == {got[10]}
    assert all(a >= b for a, b in zip(got, got[1:]))


def test_plateau_matches_torch_reduce_on_plateau():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    losses = list(np.maximum.accumulate(rng.uniform(0.5, 1.0, 60))[::-1]
                  + rng.uniform(0, 0.05, 60))
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3,
                                                       threshold=0.01, threshold_mode="abs",
                                                       min_lr=0.001)
    state = {}
    ours = Schedule({"epsilon": 0.1, "schedule": {"kind": "plateau", "factor": 0.5, "patience": 3,
                                                 "threshold": 0.01, "min_epsilon": 0.001}},
                    state, "cross-entropy-multivariate")
    stats = synaptic.Stats(0, {"cross-entropy-multivariate": []}, {}, [])
    for loss in losses:
        assert ours.rate(stats.epochs) == pytest.approx(opt.param_groups[0]["lr"])
        stats.epochs += 1
        stats.tr_err["cross-entropy-multivariate"].append(float(loss))
        ours.observe(stats)
        sched.step(loss)
    assert state["plateau_reductions"] > 2


def digits_set():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((240, 8))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 1)
    return synaptic.training_set(x, y, batch=20, nvalid=60, seed=1)


def net_with(algo, lr, dtype=np.float64, **params):
    return synaptic.mlp([8, 10, 3], ["tanh", "softmax"],
                        synaptic.training(algo, {"learning_rate": lr, **params}), seed=2,
                        dtype=dtype)


@pytest.mark.parametrize("algo", ["backprop", "rmsprop", "adam"])
def test_the_rate_in_force_is_recorded_and_used(algo):
    lr = {"epsilon": 0.05, "schedule": {"kind": "step", "step_size": 2, "gamma": 0.5}}
    net = net_with(algo, lr)
    synaptic.train(net, digits_set(), 5).result()
    assert net.stats.learning_rate == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125])
    # the same training with the rate fixed per epoch by hand gives the same weights
    manual = net_with(algo, {"epsilon": 0.05})
    for rate in net.stats.learning_rate:
        manual.training.params["learning_rate"]["epsilon"] = rate
        synaptic.train(manual, digits_set(), 1).result()
    for a, b in zip(net.weights, manual.weights):
        np.testing.assert_array_equal(a, b)


def test_a_constant_rate_is_recorded_too():
    net = net_with("backprop", {"epsilon": 0.05})
    synaptic.train(net, digits_set(), 3).result()
    assert net.stats.learning_rate == [0.05] * 3


@pytest.mark.parametrize("schedule", [
    {"kind": "plateau", "patience": 1, "factor": 0.5, "threshold": 0.05,
     "errorkind": "cross-entropy"},
    {"kind": "cosine", "epochs": 6, "warmup": 2}])
def test_schedules_resume_exactly_after_save_and_load(tmp_path, monkeypatch, schedule):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    lr = {"epsilon": 0.2, "schedule": schedule}
    whole = net_with("backprop", lr, momentum={"alpha": 0.5})
    synaptic.train(whole, digits_set(), 10).result()
    half = net_with("backprop", lr, momentum={"alpha": 0.5})
    synaptic.train(half, digits_set(), 5).result()
    synaptic.save_neural_net(half, "half")
    loaded = synaptic.load_neural_net("half")
    synaptic.train(loaded, digits_set(), 5).result()
    assert loaded.stats.learning_rate == whole.stats.learning_rate
    for a, b in zip(whole.weights, loaded.weights):
        np.testing.assert_array_equal(a, b)
    if schedule["kind"] == "plateau":
        assert len(set(whole.stats.learning_rate)) > 1, "the plateau never reduced the rate"


@pytest.mark.parametrize("schedule, match", [
    ({"kind": "linear"}, "schedule.kind must be one of"),
    ({"kind": "step"}, "needs 'step_size'"),
    ({"kind": "step", "step_size": 0}, "step_size must be >= 1"),
    ({"kind": "exponential", "gamma": 1.5}, "gamma must be in"),
    ({"kind": "cosine"}, "needs 'epochs'"),
    ({"kind": "cosine", "epochs": 5, "min_epsilon": 1.0}, "min_epsilon"),
    ({"kind": "cosine", "epochs": 5, "gamma": 0.5}, "takes no"),
    ({"kind": "plateau", "factor": 1.0}, "factor must be in"),
    ({"kind": "plateau", "errorkind": "nonsense"}, "nonsense"),
    ({"kind": "step", "step_size": 2, "warmup": -1}, "warmup must be >= 0"),
    ({"kind": "step", "step_size": 2, "warmup_start": 0}, "warmup_start"),
])
def test_bad_schedules_are_refused(schedule, match):
    with pytest.raises(ValueError, match=match):
        synaptic.training("backprop", {"learning_rate": {"epsilon": 0.1, "schedule": schedule}})


def test_schedule_types_are_checked():
    with pytest.raises(TypeError, match="step_size"):
        synaptic.training("backprop", {"learning_rate": {"schedule": {"kind": "step",
                                                                      "step_size": 2.5}}})


def test_a_schedule_needs_a_learning_rate():
    with pytest.raises(ValueError, match="learning_rate"):
        synaptic.training("rprop", {"learning_rate": {"schedule": {"kind": "step",
                                                                   "step_size": 2}}})


def test_plateau_on_an_unrecorded_kind_is_refused_at_train_time():
    net = net_with("backprop", {"epsilon": 0.1, "schedule": {"kind": "plateau",
                                                             "errorkind": "accuracy"}})
    with pytest.raises(ValueError, match="stats do not record"):
        synaptic.train(net, digits_set(), 1)
    assert net.state is None
    assert math.isfinite(net.weights[0].sum())
