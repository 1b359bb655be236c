"""Training losses: focal loss (hard, smoothed and soft targets) and soft Dice / Tversky segmentation losses.

Segmentation conventions shared by :class:`DiceLoss`, :class:`DiceBCELoss` and :class:`TverskyLoss`:

* one output channel, logits ``(B, 1, *S)``: sigmoid probabilities, float masks in ``{0, 1}`` of shape
  ``(B, 1, *S)`` (or ``(B, *S)``);
* ``C > 1`` channels, logits ``(B, C, *S)``: softmax probabilities, ``int64`` class-index masks ``(B, *S)``
  (one-hot encoded inside) or float masks / probabilities ``(B, C, *S)``.

Scores are computed per sample and per class (sums over ``S``), then averaged over classes and the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._registry import Registry

__all__ = ["DiceBCELoss", "DiceLoss", "FocalLoss", "TverskyLoss", "create_loss", "list_losses"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_non_negative(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017) on class logits: ``−Σ_c α_c t_c (1 − p_c)^γ log p_c``.

    ``t`` is the target distribution: one-hot for integer targets, or the given probabilities for soft targets
    (MixUp / CutMix), then label-smoothed as ``(1 − ε)·t + ε/C``. With ``gamma=0`` this is exactly
    :func:`torch.nn.functional.cross_entropy` with ``weight=alpha`` and ``label_smoothing=ε``, including the
    reductions: ``"mean"`` divides by ``Σ α_{y_i}`` over non-ignored elements for integer targets and by the number
    of elements for soft targets.

    Args:
        gamma: focusing exponent γ ≥ 0.
        alpha: per-class weights, a 1-D tensor of length ``C``, or ``None``.
        label_smoothing: ε in ``[0, 1]``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(B, *S)``).
        ignore_index: integer target value that contributes nothing (integer targets only).

    Inputs: logits ``(B, C)`` or ``(B, C, *S)``; targets ``int64`` ``(B,)`` / ``(B, *S)`` or float probabilities of
    the logits' shape.

    Examples:
        >>> loss = FocalLoss(gamma=2.0, label_smoothing=0.1)
        >>> logits = torch.tensor([[2.0, 0.0, -1.0]])
        >>> loss(logits, torch.tensor([0])).shape
        torch.Size([])
        >>> soft = torch.tensor([[0.7, 0.3, 0.0]])
        >>> bool(loss(logits, soft) > 0)
        True
    """

    alpha: Tensor | None

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Tensor | None = None,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        _check_non_negative("gamma", gamma)
        if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        _check_reduction(reduction)
        if alpha is not None:
            if not isinstance(alpha, Tensor) or alpha.ndim != 1:
                raise TypeError(f"alpha must be a 1-D tensor of per-class weights or None, got {alpha!r}")
            alpha = alpha.detach().clone().float()
        self.gamma = float(gamma)
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction
        self.ignore_index = int(ignore_index)
        self.register_buffer("alpha", alpha)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if logits.ndim < 2:
            raise ValueError(f"logits must have shape (B, C) or (B, C, *S), got {tuple(logits.shape)}")
        num_classes = logits.shape[1]
        log_p = F.log_softmax(logits, dim=1)
        soft = target.is_floating_point()
        if soft:
            if target.shape != logits.shape:
                raise ValueError(
                    f"soft (float) targets must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}"
                )
            t = target.to(log_p.dtype)
            valid = None
        else:
            expected = (logits.shape[0], *logits.shape[2:])
            if tuple(target.shape) != expected:
                raise ValueError(f"integer targets must have shape {expected}, got {tuple(target.shape)}")
            valid = target != self.ignore_index
            safe = torch.where(valid, target, torch.zeros_like(target))
            t = F.one_hot(safe, num_classes).movedim(-1, 1).to(log_p.dtype)
        if self.label_smoothing > 0:
            t = t * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes

        weight = torch.ones((), dtype=log_p.dtype, device=log_p.device)
        if self.alpha is not None:
            if self.alpha.numel() != num_classes:
                raise ValueError(f"alpha has {self.alpha.numel()} weights but the logits have {num_classes} classes")
            weight = self.alpha.to(log_p).view(1, num_classes, *([1] * (logits.ndim - 2)))
        terms = weight * t * log_p
        if self.gamma != 0:
            # 1 − p = −expm1(log p) is accurate when p → 1; clamp guards rounding below 0.
            terms = terms * (-torch.expm1(log_p)).clamp_min(0).pow(self.gamma)
        loss = -terms.sum(dim=1)

        if valid is not None:
            loss = loss * valid
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        if valid is None:
            return loss.mean()
        if self.alpha is None:
            return loss.sum() / valid.sum()
        # torch's convention for weighted cross-entropy: divide by the summed weights of the targets.
        denom = (self.alpha.to(log_p)[torch.where(valid, target, torch.zeros_like(target))] * valid).sum()
        return loss.sum() / denom


def _probs_and_onehot(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Probabilities and a float target of the logits' shape (see the module docstring)."""
    if logits.ndim < 3:
        raise ValueError(f"segmentation logits must have shape (B, C, *S), got {tuple(logits.shape)}")
    num_classes = logits.shape[1]
    if num_classes == 1:
        if target.shape == logits.shape[:1] + logits.shape[2:]:
            target = target.unsqueeze(1)
        if target.shape != logits.shape:
            shape = tuple(logits.shape)
            raise ValueError(f"binary masks must have shape {shape} (or without channel), got {tuple(target.shape)}")
        return torch.sigmoid(logits), target.to(logits.dtype)
    probs = torch.softmax(logits, dim=1)
    if target.is_floating_point():
        if target.shape != logits.shape:
            shape = tuple(logits.shape)
            raise ValueError(f"float masks must have the logits' shape {shape}, got {tuple(target.shape)}")
        return probs, target.to(logits.dtype)
    if target.ndim == logits.ndim and target.shape[1] == 1:
        target = target.squeeze(1)
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"class-index masks must have shape {expected}, got {tuple(target.shape)}")
    return probs, F.one_hot(target.long(), num_classes).movedim(-1, 1).to(logits.dtype)


def _soft_dice(probs: Tensor, target: Tensor, smooth: float) -> Tensor:
    """Per-sample, per-class soft Dice ``(2·Σpt + s) / (Σp + Σt + s)``, shape ``(B, C)``."""
    dims = tuple(range(2, probs.ndim))
    inter = (probs * target).sum(dims)
    return (2 * inter + smooth) / (probs.sum(dims) + target.sum(dims) + smooth)


class DiceLoss(nn.Module):
    """``1 − mean_{b,c} Dice_{b,c}`` with the soft Dice ``(2·Σ p·t + s) / (Σ p + Σ t + s)``.

    Examples:
        >>> logits = torch.full((1, 1, 2, 2), 10.0)
        >>> round(DiceLoss(smooth=0.0)(logits, torch.ones(1, 1, 2, 2)).item(), 4)
        0.0
    """

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        _check_non_negative("smooth", smooth)
        self.smooth = float(smooth)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        probs, t = _probs_and_onehot(logits, target)
        return 1 - _soft_dice(probs, t, self.smooth).mean()


class DiceBCELoss(nn.Module):
    """``bce_weight · BCE + DiceLoss`` (the reference's weighting: the Dice term is not down-weighted).

    The cross-entropy term is :func:`~torch.nn.functional.binary_cross_entropy_with_logits` for one channel and
    the (softmax) cross-entropy for ``C > 1`` channels.

    Examples:
        >>> loss = DiceBCELoss(bce_weight=0.5)
        >>> bool(loss(torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)) > 0)
        True
    """

    def __init__(self, bce_weight: float = 0.5, smooth: float = 1.0) -> None:
        super().__init__()
        _check_non_negative("bce_weight", bce_weight)
        self.bce_weight = float(bce_weight)
        self.dice = DiceLoss(smooth)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        probs, t = _probs_and_onehot(logits, target)
        # BCE for one channel; for C > 1, cross-entropy with the one-hot (or given) masks as probability targets.
        ce = F.binary_cross_entropy_with_logits(logits, t) if logits.shape[1] == 1 else F.cross_entropy(logits, t)
        return self.bce_weight * ce + 1 - _soft_dice(probs, t, self.dice.smooth).mean()


class TverskyLoss(nn.Module):
    """Focal Tversky loss ``mean_{b,c} (1 − TI_{b,c})^γ`` with ``TI = (TP + s) / (TP + α·FP + β·FN + s)``.

    ``TP = Σ p·t``, ``FP = Σ p·(1 − t)``, ``FN = Σ (1 − p)·t``; ``α = β = 0.5, γ = 1`` (and ``s = 0``) is the
    Dice loss.

    Examples:
        >>> logits, mask = torch.randn(2, 1, 4, 4), (torch.rand(2, 1, 4, 4) > 0.5).float()
        >>> torch.allclose(TverskyLoss(smooth=0.0)(logits, mask), DiceLoss(smooth=0.0)(logits, mask))
        True
    """

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, gamma: float = 1.0, smooth: float = 1.0) -> None:
        super().__init__()
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma), ("smooth", smooth)):
            _check_non_negative(name, value)
        self.alpha, self.beta, self.gamma, self.smooth = float(alpha), float(beta), float(gamma), float(smooth)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        probs, t = _probs_and_onehot(logits, target)
        dims = tuple(range(2, probs.ndim))
        tp = (probs * t).sum(dims)
        fp = (probs * (1 - t)).sum(dims)
        fn = ((1 - probs) * t).sum(dims)
        ti = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        return (1 - ti).clamp_min(0).pow(self.gamma).mean()


_LOSSES: Registry[Callable[..., nn.Module]] = Registry("loss")
_LOSSES.add("cross_entropy", nn.CrossEntropyLoss)
_LOSSES.add("focal", FocalLoss)
_LOSSES.add("dice", DiceLoss)
_LOSSES.add("dice_bce", DiceBCELoss)
_LOSSES.add("tversky", TverskyLoss)
_LOSSES.add("bce", nn.BCEWithLogitsLoss)


def list_losses() -> list[str]:
    """Names accepted by :func:`create_loss`."""
    return _LOSSES.names()


#: Constructor options that take a tensor of per-class weights; a config gives them as lists.
_WEIGHT_OPTIONS = ("alpha", "weight", "pos_weight")


def create_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build a loss by name: ``cross_entropy``, ``focal``, ``dice``, ``dice_bce``, ``tversky`` or ``bce``.

    ``kwargs`` go to the constructor (e.g. ``label_smoothing`` for ``cross_entropy``; ``pos_weight`` for ``bce``);
    lists or tuples given as ``alpha``, ``weight`` or ``pos_weight`` become float tensors.

    Examples:
        >>> create_loss("cross_entropy", label_smoothing=0.1)
        CrossEntropyLoss()
        >>> create_loss("focal", gamma=1.0)
        FocalLoss(gamma=1.0, label_smoothing=0.0, reduction='mean')
        >>> create_loss("cross_entropy", weight=[1, 2]).weight
        tensor([1., 2.])
    """
    build = _LOSSES.get(name)
    for key in _WEIGHT_OPTIONS:
        value = kwargs.get(key)
        if isinstance(value, (list, tuple)):
            try:
                kwargs[key] = torch.tensor(value, dtype=torch.float32)
            except (TypeError, ValueError):
                raise TypeError(f"{key} must be a list of numbers (per-class weights), got {value!r}") from None
    return build(**kwargs)
