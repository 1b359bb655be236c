"""Metric collections against naive formulas, including accumulation over several ``update`` calls."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

pytest.importorskip("torchmetrics")

from kanconvs.train.metrics import classification_metrics, hd95, segmentation_metrics


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ------------------------------------------------------------------------------------------------ classification


def _topk_by_hand(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    hits = 0
    for row, label in zip(logits.tolist(), labels.tolist(), strict=True):
        ranked = sorted(range(len(row)), key=lambda c: -row[c])
        hits += label in ranked[:k]
    return hits / len(labels)


def _macro_f1_recall_by_hand(pred: list[int], true: list[int], num_classes: int) -> tuple[float, float]:
    f1s, recalls = [], []
    for c in range(num_classes):
        tp = sum(p == c and t == c for p, t in zip(pred, true, strict=True))
        fp = sum(p == c and t != c for p, t in zip(pred, true, strict=True))
        fn = sum(p != c and t == c for p, t in zip(pred, true, strict=True))
        recalls.append(tp / (tp + fn) if tp + fn else 0.0)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(f1s) / num_classes, sum(recalls) / num_classes


def _auroc_ovr_by_hand(probs: torch.Tensor, labels: list[int]) -> float:
    """Macro one-vs-rest AUC as P(score of a positive > score of a negative), ties counting ½."""
    aucs = []
    for c in range(probs.shape[1]):
        pos = [float(probs[i, c]) for i, t in enumerate(labels) if t == c]
        neg = [float(probs[i, c]) for i, t in enumerate(labels) if t != c]
        wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
        aucs.append(wins / (len(pos) * len(neg)))
    return sum(aucs) / len(aucs)


def test_top1_top5_by_hand_over_several_updates(gen: torch.Generator) -> None:
    logits = torch.randn(30, 10, generator=gen)
    labels = torch.randint(0, 10, (30,), generator=gen)
    metrics = classification_metrics(10)
    assert set(metrics.keys()) == {"top1", "top5"}
    for chunk in range(3):  # states accumulate across update calls
        metrics.update(logits[chunk * 10 : (chunk + 1) * 10], labels[chunk * 10 : (chunk + 1) * 10])
    out = metrics.compute()
    assert out["top1"].item() == pytest.approx(_topk_by_hand(logits, labels, 1))
    assert out["top5"].item() == pytest.approx(_topk_by_hand(logits, labels, 5))
    metrics.reset()
    metrics.update(logits[:10], labels[:10])
    assert metrics.compute()["top1"].item() == pytest.approx(_topk_by_hand(logits[:10], labels[:10], 1))


def test_forward_returns_batch_value_and_accumulates(gen: torch.Generator) -> None:
    logits = torch.randn(16, 4, generator=gen)
    labels = torch.randint(0, 4, (16,), generator=gen)
    metrics = classification_metrics(4)
    batch = metrics(logits[:8], labels[:8])
    assert batch["top1"].item() == pytest.approx(_topk_by_hand(logits[:8], labels[:8], 1))
    metrics(logits[8:], labels[8:])
    assert metrics.compute()["top1"].item() == pytest.approx(_topk_by_hand(logits, labels, 1))


def test_top5_clipped_to_num_classes(gen: torch.Generator) -> None:
    metrics = classification_metrics(3)
    metrics.update(torch.randn(6, 3, generator=gen), torch.randint(0, 3, (6,), generator=gen))
    assert metrics.compute()["top5"].item() == 1.0


def test_full_classification_metrics_by_hand(gen: torch.Generator) -> None:
    logits = torch.randn(40, 4, generator=gen)
    labels = torch.randint(0, 4, (40,), generator=gen)
    labels[:4] = torch.arange(4)  # every class present
    metrics = classification_metrics(4, full=True)
    assert set(metrics.keys()) == {"top1", "top5", "f1_macro", "recall_macro", "auroc"}
    metrics.update(logits[:25], labels[:25])
    metrics.update(logits[25:], labels[25:])
    out = metrics.compute()
    f1, recall = _macro_f1_recall_by_hand(logits.argmax(1).tolist(), labels.tolist(), 4)
    assert out["f1_macro"].item() == pytest.approx(f1, abs=1e-6)
    assert out["recall_macro"].item() == pytest.approx(recall, abs=1e-6)
    assert out["auroc"].item() == pytest.approx(_auroc_ovr_by_hand(logits.softmax(1), labels.tolist()), abs=1e-5)


def test_classification_rejects_bad_num_classes() -> None:
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        classification_metrics(1)


# ------------------------------------------------------------------------------------------------ segmentation


def _dice_iou_by_hand(pred: torch.Tensor, true: torch.Tensor, classes: list[int]) -> tuple[float, float]:
    """Dice: per sample, mean over classes present in either mask, then mean over samples.
    IoU: mean over all (sample, class) pairs present in either mask."""
    dices, ious = [], []
    for p, t in zip(pred, true, strict=True):
        per_sample = []
        for c in classes:
            a = {i for i, v in enumerate(p.flatten().tolist()) if v == c}
            b = {i for i, v in enumerate(t.flatten().tolist()) if v == c}
            if a or b:
                per_sample.append(2 * len(a & b) / (len(a) + len(b)))
                ious.append(len(a & b) / len(a | b))
        dices.append(sum(per_sample) / len(per_sample))
    return sum(dices) / len(dices), sum(ious) / len(ious)


def test_binary_dice_iou_by_hand_over_several_updates(gen: torch.Generator) -> None:
    logits = torch.randn(6, 1, 5, 5, generator=gen)
    masks = (torch.rand(6, 1, 5, 5, generator=gen) > 0.6).float()
    metrics = segmentation_metrics(1, hd95=False)
    metrics.update(logits[:2], masks[:2])
    metrics.update(logits[2:], masks[2:, 0])  # (B, H, W) masks are accepted too
    out = metrics.compute()
    pred = (torch.sigmoid(logits) > 0.5).long()
    dice, iou = _dice_iou_by_hand(pred, masks.long(), [1])
    assert out["dice"].item() == pytest.approx(dice, abs=1e-6)
    assert out["iou"].item() == pytest.approx(iou, abs=1e-6)


def test_binary_small_masks_exact_values() -> None:
    mask = torch.zeros(1, 1, 3, 3)
    mask[0, 0, 0, :] = 1  # 3 foreground pixels
    logits = torch.full((1, 1, 3, 3), -4.0)
    logits[0, 0, 0, :2] = 4.0  # predicts 2 of them
    logits[0, 0, 2, 2] = 4.0  # and one false positive
    out = segmentation_metrics(1)(logits, mask)
    assert out["dice"].item() == pytest.approx(2 * 2 / (3 + 3))
    assert out["iou"].item() == pytest.approx(2 / 4)
    # boundary = all foreground pixels here; pred→true nearest distances [0, 0, 2], true→pred [0, 0, 1]
    sorted_d = sorted([0.0, 0.0, 2.0, 0.0, 0.0, 1.0])
    pos = 0.95 * (len(sorted_d) - 1)
    lo = math.floor(pos)
    expected = sorted_d[lo] + (pos - lo) * (sorted_d[lo + 1] - sorted_d[lo])
    assert out["hd95"].item() == pytest.approx(expected)


def test_multiclass_dice_iou_by_hand(gen: torch.Generator) -> None:
    logits = torch.randn(4, 3, 4, 4, generator=gen)
    masks = torch.randint(0, 3, (4, 4, 4), generator=gen)
    metrics = segmentation_metrics(3, hd95=False)
    metrics.update(logits[:1], masks[:1])
    metrics.update(logits[1:], masks[1:, None])  # (B, 1, H, W) index masks are accepted too
    out = metrics.compute()
    dice, iou = _dice_iou_by_hand(logits.argmax(1), masks, [0, 1, 2])
    assert out["dice"].item() == pytest.approx(dice, abs=1e-6)
    assert out["iou"].item() == pytest.approx(iou, abs=1e-6)
    no_bg = segmentation_metrics(3, include_background=False, hd95=False)
    no_bg.update(logits, masks)
    dice, iou = _dice_iou_by_hand(logits.argmax(1), masks, [1, 2])
    assert no_bg.compute()["dice"].item() == pytest.approx(dice, abs=1e-6)
    assert no_bg.compute()["iou"].item() == pytest.approx(iou, abs=1e-6)


def test_hd95_by_hand() -> None:
    a = torch.zeros(8, 8, dtype=torch.bool)
    b = torch.zeros(8, 8, dtype=torch.bool)
    a[1:4, 1:4] = True  # 3×3 square: boundary is all but the centre (1 interior pixel)
    b[1:4, 4:7] = True  # the same square shifted right by 3
    pa = [(i, j) for i in range(1, 4) for j in range(1, 4) if (i, j) != (2, 2)]
    pb = [(i, j) for i in range(1, 4) for j in range(4, 7) if (i, j) != (2, 5)]

    def nearest(src: list[tuple[int, int]], dst: list[tuple[int, int]]) -> list[float]:
        return [min(math.dist(s, d) for d in dst) for s in src]

    ds = sorted(nearest(pa, pb) + nearest(pb, pa))
    pos = 0.95 * (len(ds) - 1)
    lo = math.floor(pos)
    expected = ds[lo] + (pos - lo) * (ds[lo + 1] - ds[lo])
    assert hd95(a, b).item() == pytest.approx(expected)
    assert hd95(a, a).item() == 0.0
    assert math.isnan(hd95(a, torch.zeros_like(a)).item())


def test_hd95_metric_skips_empty_masks_and_accumulates() -> None:
    logits = torch.full((2, 1, 6, 6), -3.0)
    masks = torch.zeros(2, 1, 6, 6)
    logits[0, 0, 1:3, 1:3] = 3.0
    masks[0, 0, 1:3, 1:3] = 1.0  # sample 0: perfect, HD95 = 0; sample 1: both empty, skipped
    metrics = segmentation_metrics(1)
    metrics.update(logits, masks)
    assert metrics.compute()["hd95"].item() == 0.0
    shifted = torch.zeros(1, 1, 6, 6)
    shifted[0, 0, 1:3, 3:5] = 1.0  # two columns right: nearest distances are 1 or 2, four of each; 95th pct = 2
    metrics.update(logits[:1], shifted)
    assert metrics.compute()["hd95"].item() == pytest.approx((0.0 + 2.0) / 2)


def test_segmentation_errors() -> None:
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1, got 0"):
        segmentation_metrics(0)
    metrics = segmentation_metrics(3)
    with pytest.raises(ValueError, match="logits have 2 channels but the metrics were built for num_classes=3"):
        metrics.update(torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="class-index masks must have shape"):
        metrics.update(torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long))


def test_macro_auroc_averages_the_classes_present() -> None:
    """A class absent from the targets has no ROC: it is left out of the macro average, not scored 0 (checked against
    a naive Mann-Whitney AUC per class)."""
    torch.manual_seed(0)
    logits, target = torch.randn(12, 4), torch.randint(0, 3, (12,))  # class 3 never occurs
    metric = classification_metrics(4, full=True)
    metric.update(logits, target)
    probs = logits.softmax(1)

    def auc(pos: torch.Tensor, neg: torch.Tensor) -> float:
        return float(((pos[:, None] > neg[None]).float() + 0.5 * (pos[:, None] == neg[None]).float()).mean())

    present = [c for c in range(4) if (target == c).any()]
    assert 3 not in present
    naive = [auc(probs[target == c, c], probs[target != c, c]) for c in present]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns about the absent class
        value = metric.compute()["auroc"]
    assert float(value) == pytest.approx(sum(naive) / len(naive), abs=1e-6)
