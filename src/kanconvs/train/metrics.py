"""Classification and segmentation metric collections (torchmetrics, the ``train`` extra).

Inputs are always the model's raw outputs (logits) and *hard* targets:

* classification: logits ``(B, C)`` and ``int64`` labels ``(B,)``. With MixUp / CutMix the trainer passes
  ``soft_targets.argmax(1)``; the metrics never see probabilities as targets.
* segmentation: logits ``(B, 1, *S)`` with ``{0, 1}`` masks ``(B, 1, *S)`` or ``(B, *S)`` (binary: a pixel is
  foreground when ``sigmoid(logit) > 0.5``), or logits ``(B, C, *S)`` with ``int64`` class-index masks ``(B, *S)``
  (multi-class: the prediction is ``argmax`` over ``C``). The collection converts logits itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

if TYPE_CHECKING:
    from torchmetrics import Metric, MetricCollection

__all__ = ["classification_metrics", "hausdorff_distance95", "hd95", "segmentation_metrics"]

_INSTALL_HINT = "the training metrics need torchmetrics: pip install 'kanconvs[train]'"


def _torchmetrics() -> Any:
    try:
        import torchmetrics
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(_INSTALL_HINT) from err
    return torchmetrics


def _check_num_classes(num_classes: int, minimum: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < minimum:
        raise ValueError(f"num_classes must be an integer >= {minimum}, got {num_classes!r}")


def classification_metrics(num_classes: int, full: bool = False) -> MetricCollection:
    """``top1`` and ``top5`` accuracy (``k`` clipped to ``num_classes``); with ``full`` also ``f1_macro``,
    ``recall_macro`` and ``auroc`` (macro one-vs-rest).

    Feed logits ``(B, C)`` and integer labels ``(B,)`` (hard labels: ``argmax`` of soft MixUp targets).
    Use ``.clone(prefix="val/")`` for per-split copies.

    Examples:
        >>> metrics = classification_metrics(3)
        >>> metrics.update(torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 2.0]]), torch.tensor([0, 1]))
        >>> {k: round(v.item(), 2) for k, v in metrics.compute().items()}
        {'top1': 0.5, 'top5': 1.0}
    """
    _check_num_classes(num_classes, 2)
    tm = _torchmetrics()
    from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassF1Score, MulticlassRecall

    metrics: dict[str, Metric | MetricCollection] = {
        "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
        "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
    }
    if full:
        metrics["f1_macro"] = MulticlassF1Score(num_classes, average="macro")
        metrics["recall_macro"] = MulticlassRecall(num_classes, average="macro")
        metrics["auroc"] = _present_class_auroc(MulticlassAUROC, num_classes)
    return tm.MetricCollection(metrics, compute_groups=False)


def _present_class_auroc(base: Any, num_classes: int) -> Metric:
    """Macro AUROC over the classes that have both positives and negatives in what was seen (``base`` is
    torchmetrics' ``MulticlassAUROC``): a class absent from the targets has no ROC, and torchmetrics would score it 0
    and average it in (a small or limited validation set lacking one class pulled the macro down). NaN when no class
    qualifies, as scikit-learn."""

    class PresentClassAUROC(base):
        def __init__(self) -> None:
            super().__init__(num_classes, average=None)
            self.add_state("support", default=torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

        def update(self, preds: Tensor, target: Tensor) -> None:
            super().update(preds, target)
            self.support += torch.bincount(target.flatten().long(), minlength=num_classes)[:num_classes]

        def compute(self) -> Tensor:
            per_class = super().compute()
            present = (self.support > 0) & (self.support < self.support.sum())
            return per_class[present].mean() if bool(present.any()) else per_class.new_tensor(float("nan"))

    result: Metric = PresentClassAUROC()
    return result


def _hard_masks(preds: Tensor, target: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Logits → ``int64`` masks: binary ``(B, 1, *S)`` pairs, or class-index ``(B, *S)`` pairs."""
    if preds.ndim < 3:
        raise ValueError(f"segmentation logits must have shape (B, C, *S), got {tuple(preds.shape)}")
    channels = preds.shape[1]
    if channels != num_classes:
        raise ValueError(f"logits have {channels} channels but the metrics were built for num_classes={num_classes}")
    if num_classes == 1:
        if target.shape == preds.shape[:1] + preds.shape[2:]:
            target = target.unsqueeze(1)
        if target.shape != preds.shape:
            raise ValueError(f"binary masks must have shape {tuple(preds.shape)}, got {tuple(target.shape)}")
        return (preds > 0).long(), (target > 0.5).long()  # sigmoid(x) > 0.5 ⇔ x > 0
    if target.ndim == preds.ndim and target.shape[1] == 1:
        target = target.squeeze(1)
    expected = (preds.shape[0], *preds.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"class-index masks must have shape {expected}, got {tuple(target.shape)}")
    return preds.argmax(1), target.long()


def _one_hot(mask: Tensor, num_classes: int) -> Tensor:
    """``(B, 1, *S)`` binary masks stay; ``(B, *S)`` index masks become ``(B, C, *S)``."""
    if num_classes == 1:
        return mask.bool()
    return torch.nn.functional.one_hot(mask, num_classes).movedim(-1, 1).bool()


def _boundary(mask: Tensor) -> Tensor:
    """Foreground pixels with a background (or outside) neighbour along some axis: ``mask`` minus its erosion by
    the cross-shaped structuring element (scipy / medpy's ``binary_erosion`` with zero border)."""
    padded = torch.nn.functional.pad(mask, [1, 1] * mask.ndim, value=False)
    interior = mask.clone()
    for axis in range(mask.ndim):
        interior &= _shifted(padded, axis, 0, mask) & _shifted(padded, axis, 2, mask)
    return mask & ~interior


def _shifted(padded: Tensor, axis: int, start: int, like: Tensor) -> Tensor:
    """The window of ``padded`` (padded by 1 on every axis) aligned with ``like`` but offset by ``start − 1``."""
    index = [slice(1, 1 + n) for n in like.shape]
    index[axis] = slice(start, start + like.shape[axis])
    return padded[tuple(index)]


def hd95(pred: Tensor, target: Tensor) -> Tensor:
    """The 95th-percentile symmetric Hausdorff distance between two boolean masks, in pixels (medpy's ``hd95``).

    Distances are Euclidean between boundary pixels; the 95th percentile (linear interpolation) is taken over the
    pred→target and target→pred nearest-boundary distances together. ``nan`` if either mask is empty.
    """
    a = _boundary(pred.bool()).nonzero().float()
    b = _boundary(target.bool()).nonzero().float()
    if a.numel() == 0 or b.numel() == 0:
        return torch.tensor(float("nan"), device=pred.device)
    d = torch.cdist(a, b)
    both = torch.cat([d.min(1).values, d.min(0).values])
    return torch.quantile(both, 0.95)


@functools.cache
def _hausdorff_metric_class() -> Callable[..., Metric]:
    _torchmetrics()
    from torchmetrics import Metric as MetricBase

    class _HD95(MetricBase):
        is_differentiable = False
        higher_is_better = False
        full_state_update = False
        total: Tensor
        count: Tensor

        def __init__(self, num_classes: int, include_background: bool = True, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.num_classes = num_classes
            self.include_background = include_background
            self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

        def update(self, preds: Tensor, target: Tensor) -> None:
            """``preds`` / ``target``: ``int64`` masks, binary ``(B, 1, *S)`` or class-index ``(B, *S)``."""
            p, t = _one_hot(preds, self.num_classes), _one_hot(target, self.num_classes)
            first = 1 if (self.num_classes > 1 and not self.include_background) else 0
            for b in range(p.shape[0]):
                for c in range(first, p.shape[1]):
                    value = hd95(p[b, c], t[b, c])
                    if not torch.isnan(value):
                        self.total += value.double()
                        self.count += 1

        def compute(self) -> Tensor:
            return (self.total / self.count).float() if self.count > 0 else torch.tensor(float("nan"))

    _HD95.__name__ = _HD95.__qualname__ = "HausdorffDistance95"
    return _HD95


def hausdorff_distance95(num_classes: int, include_background: bool = True) -> Metric:
    """A ``HausdorffDistance95`` metric: the mean over (sample, class) pairs of :func:`hd95`, skipping pairs with an
    empty mask. ``update`` takes ``int64`` masks (not logits): binary ``(B, 1, *S)`` or class-index ``(B, *S)``."""
    _check_num_classes(num_classes, 1)
    return _hausdorff_metric_class()(num_classes, include_background=include_background)


def segmentation_metrics(num_classes: int, include_background: bool = True, hd95: bool = True) -> MetricCollection:
    """``dice`` (:class:`torchmetrics.segmentation.DiceScore`, macro), ``iou``
    (:class:`~torchmetrics.segmentation.MeanIoU`) and, if ``hd95``, ``hd95`` (:func:`hausdorff_distance95`).

    All are per-sample scores averaged over samples and classes. Takes logits (see the module docstring) and
    thresholds / argmaxes them itself: ``num_classes=1`` is the binary sigmoid case. torchmetrics 1.9's
    ``HausdorffDistance`` is the maximum (not the 95th percentile) distance and fails on empty masks, hence our own.
    ``include_background=False`` drops class 0 when ``num_classes > 1``.

    Examples:
        >>> metrics = segmentation_metrics(1)
        >>> logits = torch.tensor([[[[5.0, 5.0], [-5.0, -5.0]]]])  # predicts the top row
        >>> mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
        >>> metrics.update(logits, mask)
        >>> {k: round(v.item(), 3) for k, v in metrics.compute().items()}
        {'dice': 0.667, 'hd95': 0.9, 'iou': 0.5}
    """
    _check_num_classes(num_classes, 1)
    _torchmetrics()
    from torchmetrics import MetricCollection as CollectionBase
    from torchmetrics.segmentation import DiceScore, MeanIoU

    fmt: Literal["one-hot", "index"] = "one-hot" if num_classes == 1 else "index"
    background = True if num_classes == 1 else include_background
    metrics: dict[str, Metric | MetricCollection] = {
        "dice": DiceScore(num_classes, include_background=background, average="macro", input_format=fmt),
        "iou": MeanIoU(num_classes, include_background=background, input_format=fmt),
    }
    if hd95:
        metrics["hd95"] = hausdorff_distance95(num_classes, include_background=background)

    class _FromLogits(CollectionBase):
        """Converts logits to hard masks before ``update`` / ``forward``."""

        def update(self, preds: Tensor, target: Tensor) -> None:  # type: ignore[override]
            super().update(*_hard_masks(preds, target, num_classes))

        def forward(self, preds: Tensor, target: Tensor) -> dict[str, Any]:
            return super().forward(*_hard_masks(preds, target, num_classes))

    _FromLogits.__name__ = _FromLogits.__qualname__ = "SegmentationMetrics"
    return _FromLogits(metrics, compute_groups=False)
