"""AdamW, the learning-rate schedules, gradient clipping, and the state dicts of
optimisers and schedules: resuming from them is bit-identical to never stopping."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest

from ferroconv import nn
from test_nn_optim import adam_reference, assert_histories_close, gradient_sequence, run, start_values


def raises(exc, *fragments):
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


# -------------------------------------------------------------------- AdamW

def adamw_reference(weight_decay=1e-2, **options):
    """torch.optim.AdamW's documented algorithm: decay the weights, then Adam."""
    return adam_reference(weight_decay=weight_decay, decoupled=True, **options)


ADAMW_OPTIONS = [dict(), dict(lr=0.01, weight_decay=0.1), dict(lr=0.02, betas=(0.8, 0.95), amsgrad=True),
                 dict(lr=0.01, weight_decay=0.0)]


@pytest.mark.parametrize("options", ADAMW_OPTIONS, ids=str)
def test_adamw_matches_the_documented_algorithm(options):
    assert_histories_close(run(nn.AdamW, **options), adamw_reference(**options), rtol=1e-12)


def test_adamw_without_decay_is_adam_and_adam_decay_is_coupled():
    assert_histories_close(run(nn.AdamW, lr=0.01, weight_decay=0.0), adam_reference(lr=0.01), rtol=1e-14)
    coupled, decoupled = run(nn.Adam, lr=0.01, weight_decay=0.1), run(nn.AdamW, lr=0.01, weight_decay=0.1)
    assert not np.allclose(coupled[-1][0], decoupled[-1][0], rtol=1e-6)


def torch_trajectory(torch, optimizer_name, options, schedule=None, steps=6):
    params = [torch.tensor(v, requires_grad=True) for v in start_values()]
    optimizer = getattr(torch.optim, optimizer_name)(params, **options)
    scheduler = None if schedule is None else getattr(torch.optim.lr_scheduler, schedule[0])(optimizer, **schedule[1])
    history, lrs = [], []
    rng = np.random.default_rng(9)
    for _ in range(steps):
        for p in params:
            p.grad = torch.tensor(rng.standard_normal(tuple(p.shape)))
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        history.append([p.detach().numpy().copy() for p in params])
    return history, lrs


def ferro_trajectory(optimizer_type, options, schedule=None, steps=6):
    params = [nn.Parameter(v.copy()) for v in start_values()]
    optimizer = optimizer_type(params, **options)
    scheduler = None if schedule is None else getattr(nn, schedule[0])(optimizer, **schedule[1])
    history, lrs = [], []
    rng = np.random.default_rng(9)
    for _ in range(steps):
        for p in params:
            p.grad[...] = rng.standard_normal(p.shape)
        lrs.append(optimizer.lr)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        history.append([p.data.copy() for p in params])
    return history, lrs


@pytest.mark.parametrize("optimizer_name, options, schedule", [
    ("AdamW", dict(lr=0.05, weight_decay=0.1), None),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, amsgrad=True), ("CosineAnnealingLR", dict(T_max=4, eta_min=0.001))),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), ("StepLR", dict(step_size=2, gamma=0.5))),
    ("Adam", dict(lr=0.05), ("LinearLR", dict(start_factor=0.25, total_iters=3))),
    ("Adam", dict(lr=0.05), ("LinearLR", dict())),
])
def test_optimisers_and_schedules_follow_torch(optimizer_name, options, schedule):
    torch = pytest.importorskip("torch")
    expected, expected_lrs = torch_trajectory(torch, optimizer_name, options, schedule)
    got, lrs = ferro_trajectory(getattr(nn, optimizer_name), options, schedule)
    np.testing.assert_allclose(lrs, expected_lrs, rtol=1e-13)
    assert_histories_close(got, expected, rtol=1e-12)


# ---------------------------------------------------------------- schedules

def schedule_lrs(schedule, epochs):
    lrs = []
    for _ in range(epochs):
        lrs.append(schedule.get_last_lr()[0])
        schedule.optimizer.step()
        schedule.step()
    return lrs


def test_schedules_follow_their_closed_forms():
    def optimizer():
        return nn.SGD([nn.Parameter(np.zeros(2))], lr=0.8)

    assert schedule_lrs(nn.StepLR(optimizer(), 3, gamma=0.5), 8) == pytest.approx(
        [0.8 * 0.5 ** (e // 3) for e in range(8)], rel=1e-15)
    assert schedule_lrs(nn.CosineAnnealingLR(optimizer(), T_max=5, eta_min=0.1), 12) == pytest.approx(
        [0.1 + 0.7 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(12)], rel=1e-14)
    assert schedule_lrs(nn.LinearLR(optimizer(), start_factor=0.1, end_factor=0.9, total_iters=4), 7) == \
        pytest.approx([0.8 * (0.1 + 0.8 * min(e, 4) / 4) for e in range(7)], rel=1e-14)


def test_schedule_errors():
    opt = nn.SGD([nn.Parameter(np.zeros(2))], lr=0.1)
    with raises(ValueError, "StepLR", "step_size", "positive"):
        nn.StepLR(opt, 0)
    with raises(ValueError, "CosineAnnealingLR", "T_max"):
        nn.CosineAnnealingLR(opt, T_max=0)
    with raises(ValueError, "LinearLR", "start_factor", "(0, 1]"):
        nn.LinearLR(opt, start_factor=0.0)
    with raises(ValueError, "LinearLR", "end_factor"):
        nn.LinearLR(opt, end_factor=1.5)
    with raises(TypeError, "StepLR", "Optimizer", "list"):
        nn.StepLR([], 2)


# ------------------------------------------------------------ state dicts

def model_and_data(dtype=np.float32):
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1, dtype=dtype, rng=rng), nn.ReLU(), nn.Flatten(),
                          nn.Linear(18, 4, dtype=dtype, rng=rng))
    batches = [(rng.standard_normal((5, 2, 6)).astype(dtype), rng.integers(0, 4, 5)) for _ in range(10)]
    return model, batches


def train(model, optimizer, schedule, batches):
    loss_fn = nn.CrossEntropyLoss()
    for x, y in batches:
        loss_fn(model(x), y)
        optimizer.zero_grad()
        model.backward(loss_fn.backward())
        nn.clip_grad_norm_(model, 5.0)
        optimizer.step()
        if schedule is not None:
            schedule.step()


def through_npz(state):
    """The state as written by numpy.savez and read back."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer) as archive:
        return {key: archive[key] for key in archive.files}


RESUME_CASES = [
    (nn.SGD, dict(lr=0.1, momentum=0.9), None),
    (nn.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3), ("StepLR", dict(step_size=3))),
    (nn.SGD, dict(lr=0.1), None),
    (nn.Adam, dict(lr=0.01), ("CosineAnnealingLR", dict(T_max=7, eta_min=1e-4))),
    (nn.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01), None),
    (nn.AdamW, dict(lr=0.01), ("LinearLR", dict(total_iters=4))),
    (nn.AdamW, dict(lr=0.01, amsgrad=True), ("StepLR", dict(step_size=2, gamma=0.7))),
]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("optimizer_type, options, schedule", RESUME_CASES,
                         ids=[f"{c[0].__name__}-{c[1]}-{c[2] and c[2][0]}" for c in RESUME_CASES])
def test_resuming_from_state_dicts_is_bit_identical(optimizer_type, options, schedule, dtype):
    def make(model):
        optimizer = optimizer_type(model, **options)
        return optimizer, None if schedule is None else getattr(nn, schedule[0])(optimizer, **schedule[1])

    model, batches = model_and_data(dtype)
    optimizer, scheduler = make(model)
    train(model, optimizer, scheduler, batches)

    stopped, _ = model_and_data(dtype)
    first_optimizer, first_scheduler = make(stopped)
    train(stopped, first_optimizer, first_scheduler, batches[:5])
    saved = {"model": through_npz(stopped.state_dict()), "optimizer": through_npz(first_optimizer.state_dict())}
    if first_scheduler is not None:
        saved["schedule"] = through_npz(first_scheduler.state_dict())

    resumed, _ = model_and_data(dtype)
    for p in resumed.parameters():  # a fresh model whose weights differ until the load
        p.data[...] = 0
    new_optimizer, new_scheduler = make(resumed)
    new_optimizer.load_state_dict(saved["optimizer"])  # before the model's: the order does not matter
    resumed.load_state_dict(saved["model"])
    if new_scheduler is not None:
        new_scheduler.load_state_dict(saved["schedule"])
    train(resumed, new_optimizer, new_scheduler, batches[5:])

    for (name, expected), got in zip(model.named_parameters(), resumed.parameters()):
        np.testing.assert_array_equal(got.data.view(np.uint8), expected.data.view(np.uint8), err_msg=name)
    after, resumed_state = optimizer.state_dict(), new_optimizer.state_dict()
    assert after.keys() == resumed_state.keys()
    for key in after:
        np.testing.assert_array_equal(resumed_state[key], after[key], err_msg=key)
    if scheduler is not None:
        assert new_scheduler.get_last_lr() == scheduler.get_last_lr()


def test_state_dict_layout():
    params = [nn.Parameter(np.zeros((2, 3), np.float32)), nn.Parameter(np.zeros(4, np.float16))]
    sgd = nn.SGD(params, lr=0.1, momentum=0.9)
    state = sgd.state_dict()
    assert set(state) == {"lr", "steps", "num_params", "momentum", "dampening", "weight_decay", "nesterov",
                          "state.1.master"}  # momentum buffers appear with the first step
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["lr"].shape == () and state["lr"].dtype == np.float64 and state["steps"].dtype == np.int64
    assert state["nesterov"].dtype == np.bool_ and state["state.1.master"].dtype == np.float32
    for p in params:
        p.grad[...] = 1
    sgd.step()
    state = sgd.state_dict()
    assert state["state.0.momentum_buffer"].shape == (2, 3) and state["state.1.momentum_buffer"].dtype == np.float32
    state["state.0.momentum_buffer"][...] = 7  # a copy
    assert not np.any(sgd.momentum_buffers[0] == 7)
    adam = nn.AdamW(params, amsgrad=True)
    assert {"beta1", "beta2", "eps", "weight_decay", "amsgrad", "state.0.exp_avg", "state.1.exp_avg_sq",
            "state.0.max_exp_avg_sq"} <= set(adam.state_dict())
    schedule = nn.CosineAnnealingLR(adam, T_max=3)
    assert set(schedule.state_dict()) == {"last_epoch", "base_lr", "last_lr", "T_max", "eta_min"}
    assert all(v.shape == () for v in schedule.state_dict().values())


def test_loading_an_sgd_state_without_buffers_forgets_the_buffers():
    params = [nn.Parameter(np.ones(3))]
    before = nn.SGD(params, lr=0.1, momentum=0.9).state_dict()  # no step yet: no buffers
    sgd = nn.SGD(params, lr=0.1, momentum=0.9)
    params[0].grad[...] = 1
    sgd.step()
    sgd.load_state_dict(before)
    assert sgd.momentum_buffers == [None] and sgd.steps == 0


def test_load_state_dict_validates_everything_first():
    params = [nn.Parameter(np.zeros((2, 3))), nn.Parameter(np.zeros(4))]
    adam = nn.Adam(params, lr=0.01, amsgrad=True)
    for p in params:
        p.grad[...] = 1
    adam.step()
    good = adam.state_dict()
    snapshot = {k: v.copy() for k, v in good.items()}

    def check(state, *fragments):
        with raises(ValueError, "Adam.load_state_dict", *fragments):
            adam.load_state_dict(state)
        for key, value in adam.state_dict().items():  # nothing changed
            np.testing.assert_array_equal(value, snapshot[key], err_msg=key)

    check({k: v for k, v in good.items() if k != "state.1.exp_avg_sq"}, "missing keys ['state.1.exp_avg_sq']")
    check({k: v for k, v in good.items() if k != "beta2"}, "missing keys ['beta2']")
    check({**good, "state.2.exp_avg": np.zeros(1)}, "unexpected keys ['state.2.exp_avg']")
    check({**good, "state.0.exp_avg": np.zeros((3, 2)), "lr": np.array(5.0)}, "state.0.exp_avg", "(3, 2)",
          "(2, 3)")
    check({**good, "num_params": np.array(3)}, "num_params is 3", "2 parameters")
    check({**good, "beta1": np.array(1.5)}, "betas", "[0, 1)")
    check({**good, "lr": np.array([0.1])}, "lr", "0-d", "(1,)")
    check({**good, "amsgrad": np.array(False)}, "unexpected keys", "state.0.max_exp_avg_sq")
    check({**good, "state.1.exp_avg": np.zeros(4, np.complex128)}, "state.1.exp_avg", "complex128")
    float32 = nn.Adam([nn.Parameter(np.zeros(4, np.float32))])
    with raises(ValueError, "state.0.exp_avg", "float64", "float32"):
        float32.load_state_dict({**float32.state_dict(), "state.0.exp_avg": np.zeros(4)})
    sgd = nn.SGD(params, lr=0.1, momentum=0.5)
    for p in params:
        p.grad[...] = 1
    sgd.step()
    partial = {k: v for k, v in sgd.state_dict().items() if k != "state.0.momentum_buffer"}
    with raises(ValueError, "SGD.load_state_dict", "state.0.momentum_buffer", "or none"):
        sgd.load_state_dict(partial)
    with raises(ValueError, "SGD.load_state_dict", "nesterov"):
        sgd.load_state_dict({**sgd.state_dict(), "nesterov": np.array(True), "dampening": np.array(0.5)})
    schedule = nn.StepLR(sgd, 2)
    with raises(ValueError, "StepLR.load_state_dict", "missing keys ['gamma']", "unexpected keys ['T_max']"):
        schedule.load_state_dict({**{k: v for k, v in schedule.state_dict().items() if k != "gamma"},
                                  "T_max": np.array(3)})
    with raises(ValueError, "StepLR.load_state_dict", "step_size", "positive"):
        schedule.load_state_dict({**schedule.state_dict(), "step_size": np.array(0)})
    assert schedule.step_size == 2


# --------------------------------------------------------- gradient clipping

@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_scales_to_the_joint_norm(norm_type, max_norm):
    rng = np.random.default_rng(0)
    params = [nn.Parameter(np.zeros(s)) for s in [(3, 4), (5,), (2, 1, 2)]]
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    before = [p.grad.copy() for p in params]
    flat = np.concatenate([g.ravel() for g in before])
    expected = np.max(np.abs(flat)) if math.isinf(norm_type) else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    total = nn.clip_grad_norm_(params, max_norm, norm_type)
    assert total == pytest.approx(expected, rel=1e-13)
    scale = min(1.0, max_norm / (expected + 1e-6))
    for p, g in zip(params, before):
        np.testing.assert_allclose(p.grad, g * scale, rtol=1e-13)


def test_gradient_clipping_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(s) * 3 for s in [(4, 3), (6,)]]
    for norm_type in (2.0, 1.0, math.inf):
        params = [nn.Parameter(np.zeros(g.shape)) for g in grads]
        tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for p, t, g in zip(params, tensors, grads):
            p.grad[...] = g
            t.grad = torch.tensor(g)
        total = nn.clip_grad_norm_(params, 1.5, norm_type)
        expected = torch.nn.utils.clip_grad_norm_(tensors, 1.5, norm_type)
        assert total == pytest.approx(expected.item(), rel=1e-13)
        for p, t in zip(params, tensors):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-13)
    params = [nn.Parameter(np.zeros(g.shape)) for g in grads]
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, t, g in zip(params, tensors, grads):
        p.grad[...] = g
        t.grad = torch.tensor(g)
    nn.clip_grad_value_(params, 0.7)
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    for p, t in zip(params, tensors):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())


def test_gradient_clipping_errors_and_module_input():
    model = nn.Linear(3, 2, dtype=np.float64, rng=0)
    model.weight.grad[...] = np.nan
    with pytest.raises(RuntimeError, match="clip_grad_norm_.*nan"):
        nn.clip_grad_norm_(model, 1.0, error_if_nonfinite=True)
    with raises(ValueError, "clip_grad_norm_", "norm_type", "> 0"):
        nn.clip_grad_norm_(model, 1.0, norm_type=0)
    with raises(TypeError, "clip_grad_value_", "Parameters", "ndarray"):
        nn.clip_grad_value_([np.zeros(2)], 1.0)
    with raises(ValueError, "clip_grad_value_", "clip_value", ">= 0"):
        nn.clip_grad_value_(model, -1.0)
    model.weight.grad[...] = 10.0
    nn.clip_grad_value_(model, 1.0)
    np.testing.assert_array_equal(model.weight.grad, 1.0)
