"""Losses of the training stack against direct formulas and torch's cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kanconvs.train.losses import DiceBCELoss, DiceLoss, FocalLoss, TverskyLoss, create_loss, list_losses


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ------------------------------------------------------------------------------------------------ focal


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_focal_gamma0_is_cross_entropy_hard_targets(gen: torch.Generator, smoothing: float, reduction: str) -> None:
    logits = torch.randn(6, 5, generator=gen)
    target = torch.randint(0, 5, (6,), generator=gen)
    got = FocalLoss(gamma=0.0, label_smoothing=smoothing, reduction=reduction)(logits, target)
    _close(got, F.cross_entropy(logits, target, label_smoothing=smoothing, reduction=reduction))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_focal_gamma0_is_cross_entropy_soft_and_spatial(gen: torch.Generator, smoothing: float) -> None:
    logits = torch.randn(3, 4, 5, 2, generator=gen)
    soft = torch.softmax(torch.randn(3, 4, 5, 2, generator=gen), 1)
    _close(
        FocalLoss(gamma=0.0, label_smoothing=smoothing)(logits, soft),
        F.cross_entropy(logits, soft, label_smoothing=smoothing),
    )
    hard = torch.randint(0, 4, (3, 5, 2), generator=gen)
    hard[0, 0, 0] = hard[2, 4, 1] = -100
    for reduction in ("mean", "sum", "none"):
        _close(
            FocalLoss(gamma=0.0, label_smoothing=smoothing, reduction=reduction)(logits, hard),
            F.cross_entropy(logits, hard, label_smoothing=smoothing, reduction=reduction),
        )


@pytest.mark.parametrize("soft", [False, True])
def test_focal_gamma0_with_alpha_is_weighted_cross_entropy(gen: torch.Generator, soft: bool) -> None:
    logits = torch.randn(8, 3, generator=gen)
    alpha = torch.tensor([0.2, 1.0, 3.0])
    target = torch.randint(0, 3, (8,), generator=gen)
    if soft:
        target = torch.softmax(torch.randn(8, 3, generator=gen), 1)
    got = FocalLoss(gamma=0.0, alpha=alpha, label_smoothing=0.1)(logits, target)
    _close(got, F.cross_entropy(logits, target, weight=alpha, label_smoothing=0.1))


def _naive_focal(logits: torch.Tensor, t: torch.Tensor, gamma: float, eps: float) -> torch.Tensor:
    """Mean over rows of −Σ_c t̃_c (1 − p_c)^γ log p_c with t̃ = (1 − ε)·t + ε/C, element by element."""
    n, c = logits.shape
    total = 0.0
    for i in range(n):
        z = [math.exp(v) for v in logits[i].tolist()]
        p = [v / sum(z) for v in z]
        for k in range(c):
            tk = (1 - eps) * float(t[i, k]) + eps / c
            total -= tk * (1 - p[k]) ** gamma * math.log(p[k])
    return torch.tensor(total / n)


@pytest.mark.parametrize(("gamma", "eps"), [(2.0, 0.0), (2.0, 0.1), (0.5, 0.25)])
def test_focal_matches_naive_formula(gen: torch.Generator, gamma: float, eps: float) -> None:
    logits = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    hard = torch.randint(0, 4, (5,), generator=gen)
    soft = torch.softmax(torch.randn(5, 4, generator=gen, dtype=torch.float64), 1)
    loss = FocalLoss(gamma=gamma, label_smoothing=eps)
    _close(loss(logits, hard).float(), _naive_focal(logits, F.one_hot(hard, 4).double(), gamma, eps).float())
    _close(loss(logits, soft).float(), _naive_focal(logits, soft, gamma, eps).float())


def test_focal_down_weights_easy_examples_and_has_finite_grads(gen: torch.Generator) -> None:
    logits = torch.tensor([[8.0, 0.0], [0.1, 0.0]], requires_grad=True)
    target = torch.tensor([0, 0])
    per = FocalLoss(gamma=2.0, reduction="none")(logits, target)
    ce = F.cross_entropy(logits, target, reduction="none")
    assert per[0] < ce[0] * 1e-3 and per[1] > ce[1] * 0.2
    per.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_focal_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        FocalLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        FocalLoss(reduction="avg")
    with pytest.raises(TypeError, match="alpha"):
        FocalLoss(alpha=[1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        FocalLoss()(torch.randn(2, 3), torch.rand(2, 4))
    with pytest.raises(ValueError, match="alpha has 2"):
        FocalLoss(alpha=torch.ones(2))(torch.randn(2, 3), torch.tensor([0, 1]))


# ------------------------------------------------------------------------------------------------ segmentation


def _dice_by_hand(p: torch.Tensor, t: torch.Tensor, s: float) -> float:
    """Mean over (b, c) of (2·Σpt + s)/(Σp + Σt + s) with explicit loops."""
    scores = []
    for b in range(p.shape[0]):
        for c in range(p.shape[1]):
            pp, tt = p[b, c].flatten().tolist(), t[b, c].flatten().tolist()
            inter = sum(x * y for x, y in zip(pp, tt, strict=True))
            scores.append((2 * inter + s) / (sum(pp) + sum(tt) + s))
    return sum(scores) / len(scores)


def test_dice_binary_by_hand(gen: torch.Generator) -> None:
    logits = torch.randn(3, 1, 4, 5, generator=gen)
    mask = (torch.rand(3, 1, 4, 5, generator=gen) > 0.5).float()
    for smooth in (0.0, 1.0):
        expected = 1 - _dice_by_hand(torch.sigmoid(logits), mask, smooth)
        assert DiceLoss(smooth)(logits, mask).item() == pytest.approx(expected, rel=1e-5)
        assert DiceLoss(smooth)(logits, mask[:, 0]).item() == pytest.approx(expected, rel=1e-5)


def test_dice_multiclass_by_hand(gen: torch.Generator) -> None:
    logits = torch.randn(2, 3, 4, 4, generator=gen)
    index = torch.randint(0, 3, (2, 4, 4), generator=gen)
    onehot = F.one_hot(index, 3).permute(0, 3, 1, 2).float()
    expected = 1 - _dice_by_hand(torch.softmax(logits, 1), onehot, 1.0)
    assert DiceLoss()(logits, index).item() == pytest.approx(expected, rel=1e-5)
    assert DiceLoss()(logits, onehot).item() == pytest.approx(expected, rel=1e-5)
    assert DiceLoss()(logits, index[:, None]).item() == pytest.approx(expected, rel=1e-5)


def test_dice_perfect_prediction_is_zero() -> None:
    mask = torch.zeros(1, 1, 3, 3)
    mask[..., 1:, 1:] = 1
    logits = (mask * 2 - 1) * 50
    assert DiceLoss(smooth=0.0)(logits, mask).item() == pytest.approx(0.0, abs=1e-6)


def test_tversky_by_hand(gen: torch.Generator) -> None:
    logits = torch.randn(2, 3, 3, 3, generator=gen)
    index = torch.randint(0, 3, (2, 3, 3), generator=gen)
    p = torch.softmax(logits, 1)
    t = F.one_hot(index, 3).permute(0, 3, 1, 2).float()
    a, b, g, s = 0.7, 0.3, 0.75, 1.0
    terms = []
    for i in range(2):
        for c in range(3):
            tp = float((p[i, c] * t[i, c]).sum())
            fp = float((p[i, c] * (1 - t[i, c])).sum())
            fn = float(((1 - p[i, c]) * t[i, c]).sum())
            terms.append((1 - (tp + s) / (tp + a * fp + b * fn + s)) ** g)
    got = TverskyLoss(alpha=a, beta=b, gamma=g, smooth=s)(logits, index)
    assert got.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_tversky_half_half_is_dice_without_smoothing(gen: torch.Generator) -> None:
    logits = torch.randn(2, 1, 5, 5, generator=gen)
    mask = (torch.rand(2, 1, 5, 5, generator=gen) > 0.3).float()
    _close(TverskyLoss(smooth=0.0)(logits, mask), DiceLoss(smooth=0.0)(logits, mask))


def test_dice_bce(gen: torch.Generator) -> None:
    logits = torch.randn(2, 1, 4, 4, generator=gen)
    mask = (torch.rand(2, 1, 4, 4, generator=gen) > 0.5).float()
    expected = 0.3 * F.binary_cross_entropy_with_logits(logits, mask) + DiceLoss()(logits, mask)
    _close(DiceBCELoss(bce_weight=0.3)(logits, mask), expected)
    logits3 = torch.randn(2, 3, 4, 4, generator=gen)
    index = torch.randint(0, 3, (2, 4, 4), generator=gen)
    expected3 = 0.5 * F.cross_entropy(logits3, index) + DiceLoss()(logits3, index)
    _close(DiceBCELoss()(logits3, index), expected3)


def test_segmentation_shape_errors() -> None:
    with pytest.raises(ValueError, match="binary masks"):
        DiceLoss()(torch.randn(2, 1, 4, 4), torch.ones(2, 1, 4, 5))
    with pytest.raises(ValueError, match="class-index masks"):
        DiceLoss()(torch.randn(2, 3, 4, 4), torch.zeros(2, 5, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, C, \*S\)"):
        TverskyLoss()(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="smooth"):
        DiceLoss(smooth=-1.0)


# ------------------------------------------------------------------------------------------------ factory


def test_create_loss() -> None:
    assert list_losses() == ["cross_entropy", "focal", "dice", "dice_bce", "tversky", "bce"]
    ce = create_loss("cross_entropy", label_smoothing=0.1)
    assert isinstance(ce, nn.CrossEntropyLoss) and ce.label_smoothing == 0.1
    assert isinstance(create_loss("bce"), nn.BCEWithLogitsLoss)
    focal = create_loss("focal", gamma=1.0, alpha=torch.ones(3))
    assert isinstance(focal, FocalLoss) and focal.gamma == 1.0
    assert isinstance(create_loss("dice_bce", bce_weight=1.0), DiceBCELoss)
    assert isinstance(create_loss("tversky", alpha=0.3, beta=0.7), TverskyLoss)
    assert isinstance(create_loss("dice"), DiceLoss)
    with pytest.raises(ValueError, match=r"unknown loss 'focall'.*'cross_entropy'.*did you mean 'focal'"):
        create_loss("focall")


def test_focal_state_dict_and_device_move() -> None:
    loss = FocalLoss(alpha=torch.tensor([1.0, 2.0]))
    assert "alpha" in loss.state_dict()
    loss.double()
    out = loss(torch.randn(3, 2, dtype=torch.float64), torch.tensor([0, 1, 1]))
    assert out.dtype == torch.float64
