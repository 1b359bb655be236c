"""Optimisers (AdamW, SGD, Lion, L-BFGS), an L-BFGS closure that zeroes gradients, and per-step LR schedules."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "Lion",
    "create_optimizer",
    "create_scheduler",
    "lbfgs_closure",
    "param_groups",
]

OPTIMIZERS = ("adamw", "sgd", "lion", "lbfgs")
SCHEDULERS = ("constant", "exponential", "cosine", "polynomial")


class Lion(Optimizer):
    """Lion, "Symbolic Discovery of Optimization Algorithms" (Chen et al. 2023), Algorithm 2.

    Per step, with gradient ``g`` and momentum ``m``::

        θ ← θ − lr·wd·θ                          (decoupled weight decay)
        θ ← θ − lr·sign(β1·m + (1 − β1)·g)
        m ← β2·m + (1 − β2)·g

    Lion's update has unit magnitude per coordinate, so it usually wants a 3–10× smaller ``lr`` and a
    correspondingly larger ``weight_decay`` than AdamW.

    Examples:
        >>> p = nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = Lion([p], lr=0.1)
        >>> p.grad = torch.tensor([0.5, -0.5])
        >>> _ = opt.step()
        >>> p.data
        tensor([ 0.9000, -1.9000])
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Lion does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m = state["exp_avg"]
                if wd != 0:
                    p.mul_(1 - lr * wd)
                p.add_(torch.lerp(p.grad, m, beta1).sign_(), alpha=-lr)  # lerp(g, m, β1) = β1·m + (1 − β1)·g
                m.lerp_(p.grad, 1 - beta2)  # m ← β2·m + (1 − β2)·g
        return loss


def param_groups(
    model_or_params: nn.Module | Iterable[Tensor] | Iterable[dict[str, Any]],
    weight_decay: float,
    no_decay_1d: bool = True,
) -> list[dict[str, Any]]:
    """Split trainable parameters into a decayed group and, if ``no_decay_1d``, a ``weight_decay=0`` group.

    Parameters with ``ndim <= 1`` (biases, norm scales and shifts, per-channel scalars) get no weight decay, as in
    timm. Explicit param-group dicts are passed through, with ``weight_decay`` filled in where missing.

    Examples:
        >>> groups = param_groups(nn.Linear(3, 2), weight_decay=0.05)
        >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
        [(1, 0.05), (1, 0.0)]
    """
    if isinstance(model_or_params, nn.Module):
        items: list[Any] = [p for p in model_or_params.parameters() if p.requires_grad]
    elif isinstance(model_or_params, Tensor):
        raise TypeError("model_or_params must be a module or an iterable of parameters, got a single tensor")
    else:
        items = list(model_or_params)
    if not items:
        raise ValueError("model_or_params has no trainable parameters")
    if all(isinstance(g, dict) for g in items):
        return [{"weight_decay": weight_decay, **g} for g in items]
    if not all(isinstance(p, Tensor) for p in items):
        raise TypeError("model_or_params must hold only tensors or only param-group dicts")
    if not no_decay_1d or weight_decay == 0:
        return [{"params": items, "weight_decay": weight_decay}]
    decay = [p for p in items if p.ndim > 1]
    no_decay = [p for p in items if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def create_optimizer(
    model_or_params: nn.Module | Iterable[Tensor] | Iterable[dict[str, Any]],
    name: str,
    lr: float,
    weight_decay: float = 0.0,
    *,
    no_decay_1d: bool = True,
    **kwargs: Any,
) -> Optimizer:
    """Build ``adamw``, ``sgd`` (momentum 0.9, Nesterov), ``lion`` (betas (0.9, 0.99)) or ``lbfgs`` (strong Wolfe).

    Args:
        model_or_params: a module (its trainable parameters), an iterable of parameters, or param-group dicts.
        name: the optimiser's name (case-insensitive).
        lr: learning rate.
        weight_decay: decoupled (AdamW, Lion) or L2 (SGD) weight decay; not applied to 1-D parameters when
            ``no_decay_1d`` (see :func:`param_groups`). L-BFGS takes none.
        no_decay_1d: put biases and norm parameters in a ``weight_decay=0`` group.
        kwargs: passed to the optimiser (``betas``, ``eps``, ``momentum``, ``nesterov``, ``max_iter``,
            ``history_size``, ``line_search_fn``, …).

    Examples:
        >>> opt = create_optimizer(nn.Linear(4, 2), "lion", lr=1e-4, weight_decay=0.1)
        >>> type(opt).__name__, [g["weight_decay"] for g in opt.param_groups]
        ('Lion', [0.1, 0.0])
    """
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(weight_decay, (int, float)) or isinstance(weight_decay, bool) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a non-negative number, got {weight_decay!r}")
    key = str(name).lower()
    if key == "lbfgs":
        if weight_decay != 0:
            raise ValueError(f"weight_decay must be 0 for 'lbfgs' (torch's L-BFGS has none), got {weight_decay!r}")
        groups = param_groups(model_or_params, 0.0, no_decay_1d=False)
        if len(groups) != 1:
            raise ValueError(f"'lbfgs' supports a single parameter group, got {len(groups)}")
        params = groups[0]["params"]
        kwargs.setdefault("line_search_fn", "strong_wolfe")
        return torch.optim.LBFGS(params, lr=lr, **kwargs)
    groups = param_groups(model_or_params, weight_decay, no_decay_1d=no_decay_1d)
    if key == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, **kwargs)
    if key == "sgd":
        kwargs.setdefault("momentum", 0.9)
        kwargs.setdefault("nesterov", True)
        return torch.optim.SGD(groups, lr=lr, weight_decay=weight_decay, **kwargs)
    if key == "lion":
        return Lion(groups, lr=lr, weight_decay=weight_decay, **kwargs)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}")


def lbfgs_closure(
    model: nn.Module,
    loss_fn: Callable[[Any, Any], Tensor],
    inputs: Any,
    targets: Any,
    optimizer: Optimizer,
    backward: Callable[[Tensor], None] | None = None,
) -> Callable[[], Tensor]:
    """A closure for ``optimizer.step(closure)`` that zeroes the gradients before every evaluation.

    L-BFGS evaluates the closure several times per step (line search); without zeroing, gradients would
    accumulate across evaluations (the reference's bug). ``backward`` replaces ``loss.backward()``, e.g.
    ``accelerator.backward``.

    Examples:
        >>> model = nn.Linear(2, 1)
        >>> opt = create_optimizer(model, "lbfgs", lr=1.0)
        >>> x, y = torch.randn(8, 2), torch.randn(8, 1)
        >>> loss = opt.step(lbfgs_closure(model, nn.functional.mse_loss, x, y, opt))
        >>> loss.ndim
        0
    """

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=False)
        loss = loss_fn(model(inputs), targets)
        if backward is None:
            loss.backward()
        else:
            backward(loss)
        return loss

    return closure


def _warmup_factor(step: int, warmup_steps: int) -> float:
    return step / warmup_steps


def create_scheduler(
    optimizer: Optimizer,
    name: str,
    total_steps: int,
    warmup_steps: int = 0,
    **kwargs: Any,
) -> LambdaLR:
    """A :class:`~torch.optim.lr_scheduler.LambdaLR` stepped once per optimiser step.

    The factor multiplying each group's initial lr at step ``s`` (``W = warmup_steps``, ``T = total_steps``) is
    ``s / W`` while ``s < W``, then:

    * ``constant``: 1;
    * ``exponential``: ``gamma ** (s // steps_per_epoch)`` (``gamma`` per *epoch*, default 0.975;
      ``steps_per_epoch`` required);
    * ``cosine``: ``r + (1 − r)·(1 + cos(π·q))/2`` with ``q = min(1, (s − W)/(T − W))``, ``r = min_lr_ratio``
      (default 0);
    * ``polynomial``: ``(1 − q)^power·(1 − e) + e`` with ``power`` (default 1) and ``e = end_ratio`` (default 0),
      i.e. the reference's formula with ``lr_end = e·lr0``; ``e`` after ``T``.

    Steps are optimiser steps of this process: the counts are *not* multiplied by the number of processes.

    Examples:
        >>> opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)
        >>> sched = create_scheduler(opt, "cosine", total_steps=10, warmup_steps=2)
        >>> [round(sched.lr_lambdas[0](s), 3) for s in (0, 1, 2, 6, 10)]
        [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    if not isinstance(warmup_steps, int) or isinstance(warmup_steps, bool) or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be an integer in [0, total_steps={total_steps}], got {warmup_steps!r}")
    key = str(name).lower()
    allowed: dict[str, tuple[str, ...]] = {
        "constant": (),
        "exponential": ("gamma", "steps_per_epoch"),
        "cosine": ("min_lr_ratio",),
        "polynomial": ("power", "end_ratio"),
    }
    if key not in allowed:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {list(SCHEDULERS)}")
    unexpected = sorted(set(kwargs) - set(allowed[key]))
    if unexpected:
        raise TypeError(f"scheduler {key!r} got unexpected arguments {unexpected}; it accepts {list(allowed[key])}")
    W, T = warmup_steps, total_steps
    decay_steps = max(1, T - W)

    def after(step: int) -> float:
        return min(1.0, (step - W) / decay_steps)

    decay: Callable[[int], float]
    if key == "constant":

        def decay(step: int) -> float:
            return 1.0

    elif key == "exponential":
        gamma = float(kwargs.get("gamma", 0.975))
        spe = kwargs.get("steps_per_epoch")
        if not isinstance(spe, int) or isinstance(spe, bool) or spe < 1:
            raise ValueError(f"'exponential' needs steps_per_epoch, a positive integer; got {spe!r}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma!r}")

        def decay(step: int) -> float:
            return gamma ** (step // spe)

    elif key == "cosine":
        r = float(kwargs.get("min_lr_ratio", 0.0))
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {r!r}")

        def decay(step: int) -> float:
            return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * after(step)))

    else:
        power = float(kwargs.get("power", 1.0))
        e = float(kwargs.get("end_ratio", 0.0))
        if not power > 0:
            raise ValueError(f"power must be > 0, got {power!r}")
        if not 0.0 <= e <= 1.0:
            raise ValueError(f"end_ratio must be in [0, 1], got {e!r}")

        def decay(step: int) -> float:
            return (1 - after(step)) ** power * (1 - e) + e

    def factor(step: int) -> float:
        return _warmup_factor(step, W) if step < W else decay(step)

    return LambdaLR(optimizer, factor)
