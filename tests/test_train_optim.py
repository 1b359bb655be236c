"""Optimisers, the zero-grad L-BFGS closure and LR schedules against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kanconvs.train.optim import Lion, create_optimizer, create_scheduler, lbfgs_closure, param_groups


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))


# ------------------------------------------------------------------------------------------------ param groups


def test_no_decay_on_1d_parameters() -> None:
    model = _model()
    model[3].weight.requires_grad_(False)
    groups = param_groups(model, 0.05)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    decay_ids = {id(p) for p in groups[0]["params"]}
    assert decay_ids == {id(model[0].weight)}  # the frozen Linear weight is left out
    no_decay_ids = {id(p) for p in groups[1]["params"]}
    assert no_decay_ids == {id(model[0].bias), id(model[1].weight), id(model[1].bias), id(model[3].bias)}
    assert len(param_groups(model, 0.05, no_decay_1d=False)) == 1
    assert len(param_groups(model, 0.0)) == 1
    explicit = param_groups([{"params": list(model.parameters()), "lr": 0.1}], 0.01)
    assert explicit[0]["weight_decay"] == 0.01 and explicit[0]["lr"] == 0.1


@pytest.mark.parametrize("name", ["adamw", "sgd", "lion", "AdamW"])
def test_create_optimizer_groups_and_defaults(name: str) -> None:
    opt = create_optimizer(_model(), name, lr=0.01, weight_decay=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert all(g["lr"] == 0.01 for g in opt.param_groups)
    if name == "sgd":
        assert isinstance(opt, torch.optim.SGD)
        assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["nesterov"] is True
    if name == "lion":
        assert isinstance(opt, Lion) and opt.param_groups[0]["betas"] == (0.9, 0.99)


def test_create_optimizer_kwargs_and_params_iterable() -> None:
    model = _model()
    opt = create_optimizer(model.parameters(), "sgd", lr=0.1, momentum=0.5, nesterov=False)
    assert opt.param_groups[0]["momentum"] == 0.5 and opt.param_groups[0]["nesterov"] is False
    adamw = create_optimizer(model, "adamw", lr=1e-3, betas=(0.8, 0.9), eps=1e-6)
    assert adamw.param_groups[0]["betas"] == (0.8, 0.9) and adamw.param_groups[0]["weight_decay"] == 0.0
    lbfgs = create_optimizer(model, "lbfgs", lr=1.0, history_size=5)
    assert isinstance(lbfgs, torch.optim.LBFGS) and len(lbfgs.param_groups) == 1
    assert lbfgs.param_groups[0]["line_search_fn"] == "strong_wolfe" and lbfgs.param_groups[0]["history_size"] == 5


def test_create_optimizer_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown optimizer 'adam'.*'adamw'"):
        create_optimizer(_model(), "adam", lr=0.1)
    with pytest.raises(ValueError, match="lr must be a positive number, got 0"):
        create_optimizer(_model(), "sgd", lr=0)
    with pytest.raises(ValueError, match="weight_decay must be a non-negative number, got -1"):
        create_optimizer(_model(), "sgd", lr=0.1, weight_decay=-1)
    with pytest.raises(ValueError, match="weight_decay must be 0 for 'lbfgs'"):
        create_optimizer(_model(), "lbfgs", lr=1.0, weight_decay=0.1)
    with pytest.raises(ValueError, match="no trainable parameters"):
        create_optimizer([], "sgd", lr=0.1)
    with pytest.raises(TypeError, match="single tensor"):
        create_optimizer(nn.Parameter(torch.ones(2)), "sgd", lr=0.1)


# ------------------------------------------------------------------------------------------------ Lion


def test_lion_first_steps_match_hand_computation() -> None:
    lr, b1, b2, wd = 0.1, 0.8, 0.9, 0.5
    theta0 = [1.0, -2.0, 0.5]
    grads = [[0.3, -0.2, 0.0], [-0.5, -0.1, 0.4], [0.05, 0.3, -0.1]]
    p = nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    opt = create_optimizer([p], "lion", lr=lr, weight_decay=wd, betas=(b1, b2), no_decay_1d=False)

    def sign(x: float) -> float:
        return (x > 0) - (x < 0)

    theta, m = list(theta0), [0.0, 0.0, 0.0]
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        for i in range(3):
            update = sign(b1 * m[i] + (1 - b1) * g[i])
            theta[i] = theta[i] * (1 - lr * wd) - lr * update
            m[i] = b2 * m[i] + (1 - b2) * g[i]
        torch.testing.assert_close(p.detach(), torch.tensor(theta, dtype=torch.float64))
    torch.testing.assert_close(opt.state[p]["exp_avg"], torch.tensor(m, dtype=torch.float64))


def test_lion_uses_given_weight_decay_not_lr() -> None:
    p = nn.Parameter(torch.full((2, 2), 2.0))
    opt = create_optimizer([p], "lion", lr=0.01, weight_decay=0.0)
    p.grad = torch.zeros(2, 2)  # sign(0) = 0: only weight decay could move θ
    opt.step()
    assert torch.equal(p.detach(), torch.full((2, 2), 2.0))
    opt = create_optimizer([p], "lion", lr=0.01, weight_decay=0.2)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((2, 2), 2.0 * (1 - 0.01 * 0.2)))


def test_lion_rejects_bad_hyperparameters() -> None:
    p = [nn.Parameter(torch.ones(2))]
    with pytest.raises(ValueError, match="betas"):
        Lion(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="lr"):
        Lion(p, lr=0.0)


def test_lion_with_cosine_schedule_minimises_a_quadratic() -> None:
    torch.manual_seed(0)
    p = nn.Parameter(torch.randn(5))
    opt = Lion([p], lr=0.02)
    sched = create_scheduler(opt, "cosine", total_steps=600)
    for _ in range(600):
        opt.zero_grad()
        loss = ((p - 1.0) ** 2).sum()
        loss.backward()
        opt.step()
        sched.step()
    assert ((p - 1.0).abs() < 0.05).all()


# ------------------------------------------------------------------------------------------------ L-BFGS


def test_lbfgs_reaches_least_squares_solution() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]], dtype=torch.float64) + 0.1 * torch.randn(
        40, 1, generator=gen, dtype=torch.float64
    )
    model = nn.Linear(4, 1, bias=False).double()
    opt = create_optimizer(model, "lbfgs", lr=1.0, max_iter=50, tolerance_grad=1e-12, tolerance_change=1e-14)
    closure = lbfgs_closure(model, nn.functional.mse_loss, x, y, opt)
    for _ in range(3):
        opt.step(closure)
    expected = torch.linalg.lstsq(x, y).solution.T
    torch.testing.assert_close(model.weight.detach(), expected, rtol=1e-6, atol=1e-8)


def test_lbfgs_closure_zeroes_gradients_each_evaluation() -> None:
    model = nn.Linear(3, 1)
    x, y = torch.randn(5, 3), torch.randn(5, 1)
    opt = create_optimizer(model, "lbfgs", lr=1.0)
    closure = lbfgs_closure(model, nn.functional.mse_loss, x, y, opt)
    closure()
    assert model.weight.grad is not None
    once = model.weight.grad.clone()
    closure()
    closure()
    torch.testing.assert_close(model.weight.grad, once)


def test_lbfgs_closure_custom_backward() -> None:
    model = nn.Linear(2, 1)
    opt = create_optimizer(model, "lbfgs", lr=1.0)
    calls: list[float] = []

    def backward(loss: torch.Tensor) -> None:
        calls.append(loss.item())
        loss.backward()

    loss = lbfgs_closure(model, nn.functional.mse_loss, torch.randn(4, 2), torch.randn(4, 1), opt, backward)()
    assert calls == [loss.item()]


# ------------------------------------------------------------------------------------------------ schedules


def _factors(name: str, steps: list[int], total: int, warmup: int, **kwargs: float) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=1.0)
    sched = create_scheduler(opt, name, total_steps=total, warmup_steps=warmup, **kwargs)
    return [sched.lr_lambdas[0](s) for s in steps]


STEPS = [0, 1, 4, 5, 6, 10, 37, 99, 100, 130]


def test_constant_schedule() -> None:
    expected = [s / 5 if s < 5 else 1.0 for s in STEPS]
    assert _factors("constant", STEPS, 100, 5) == pytest.approx(expected)
    assert _factors("constant", [0, 50], 100, 0) == [1.0, 1.0]


def test_exponential_schedule_is_per_epoch() -> None:
    expected = [0.975 ** math.floor(s / 10) for s in STEPS]
    assert _factors("exponential", STEPS, 100, 0, steps_per_epoch=10) == pytest.approx(expected)
    expected = [s / 5 if s < 5 else 0.9 ** math.floor(s / 7) for s in STEPS]
    assert _factors("exponential", STEPS, 100, 5, steps_per_epoch=7, gamma=0.9) == pytest.approx(expected)


@pytest.mark.parametrize("min_lr_ratio", [0.0, 0.1])
def test_cosine_schedule(min_lr_ratio: float) -> None:
    W, T = 5, 100

    def f(s: int) -> float:
        if s < W:
            return s / W
        q = min(1.0, (s - W) / (T - W))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * q))

    got = _factors("cosine", STEPS, T, W, min_lr_ratio=min_lr_ratio)
    assert got == pytest.approx([f(s) for s in STEPS])
    assert got[STEPS.index(100)] == pytest.approx(min_lr_ratio)


@pytest.mark.parametrize(("power", "end_ratio"), [(1.0, 0.0), (2.0, 0.01), (0.5, 0.2)])
def test_polynomial_schedule(power: float, end_ratio: float) -> None:
    W, T = 10, 100

    def f(s: int) -> float:
        if s < W:
            return s / W
        if s > T:
            return end_ratio
        return (1 - (s - W) / (T - W)) ** power * (1 - end_ratio) + end_ratio

    got = _factors("polynomial", STEPS, T, W, power=power, end_ratio=end_ratio)
    assert got == pytest.approx([f(s) for s in STEPS])


def test_scheduler_drives_the_optimizer_lr() -> None:
    opt = create_optimizer(_model(), "adamw", lr=0.5, weight_decay=0.1)
    sched = create_scheduler(opt, "polynomial", total_steps=4, warmup_steps=2)
    seen = []
    for _ in range(5):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert seen == [[lr, lr] for lr in (0.0, 0.25, 0.5, 0.25, 0.0)]


def test_scheduler_errors() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=1.0)
    with pytest.raises(ValueError, match="unknown scheduler 'linear'"):
        create_scheduler(opt, "linear", total_steps=10)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        create_scheduler(opt, "exponential", total_steps=10)
    with pytest.raises(TypeError, match=r"unexpected arguments \['power'\]"):
        create_scheduler(opt, "cosine", total_steps=10, power=2.0)
    with pytest.raises(ValueError, match=r"warmup_steps must be an integer in \[0, total_steps=10\], got 11"):
        create_scheduler(opt, "cosine", total_steps=10, warmup_steps=11)
    with pytest.raises(ValueError, match="total_steps must be a positive integer, got 0"):
        create_scheduler(opt, "constant", total_steps=0)
    with pytest.raises(ValueError, match="min_lr_ratio"):
        create_scheduler(opt, "cosine", total_steps=10, min_lr_ratio=2.0)
