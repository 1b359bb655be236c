"""Classifier heads on pooled, flattened features: linear, KAN, hidden-KAN, classic VGG and Matryoshka heads.

Every head is an ``nn.Sequential`` (or a :class:`~kanconvs.models.KANMLP`) whose last module classifies; the
modules before it compute the *pre-logits* (see :func:`head_stages`). The layouts (module indices) are those of
torch-conv-kan's VGG heads, so its checkpoints keep their keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch  # noqa: F401  (used by the docstring examples)
import torch.nn.functional as F
from torch import Tensor, nn

from .kan_mlp import KANMLP

__all__ = ["HEAD_TYPES", "MatryoshkaHead", "create_head", "head_stages", "pre_logits_size", "run_head"]

#: ``linear``: Dropout → Linear. ``kan``: a one-layer KAN MLP (with its input dropout). ``hidden_kan``: KAN → 512,
#: Dropout, Linear. ``vgg``: the classic VGG MLP (Linear 1024, ReLU, Dropout, twice, then Linear).
#: ``matryoshka``: Linear 1024, ReLU, Dropout, then :class:`MatryoshkaHead` over 64…1024 features.
#: ``kan_matryoshka``: KAN → 512, Dropout, then :class:`MatryoshkaHead` over 32…512 features.
HEAD_TYPES = ("linear", "kan", "hidden_kan", "vgg", "matryoshka", "kan_matryoshka")
KANFactory = Callable[[list[int]], nn.Module]


class MatryoshkaHead(nn.Module):
    """Matryoshka classifier (Kusupati et al., 2022): one set of logits per nested prefix of the features.

    For every ``n`` in ``nesting``, ``logits_n = x[:, :n] @ W[:, :n]ᵀ + b`` with a single shared ``nn.Linear``
    (``nesting_classifier_0``, the reference's "efficient" variant). ``forward`` returns a tuple of
    ``len(nesting)`` tensors of shape ``(B, num_classes)``, smallest prefix first; train with the sum of the losses.

    Examples:
        >>> head = MatryoshkaHead((4, 8), num_classes=3)
        >>> [t.shape for t in head(torch.randn(2, 8))]
        [torch.Size([2, 3]), torch.Size([2, 3])]
    """

    def __init__(self, nesting: Sequence[int], num_classes: int) -> None:
        super().__init__()
        sizes = tuple(nesting)
        if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
            raise ValueError(f"nesting must be a non-empty sequence of positive integers, got {nesting!r}")
        if list(sizes) != sorted(set(sizes)):
            raise ValueError(f"nesting must be strictly increasing, got {nesting!r}")
        self.nesting = sizes
        self.num_classes = num_classes
        self.nesting_classifier_0 = nn.Linear(sizes[-1], num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        w, b = self.nesting_classifier_0.weight, self.nesting_classifier_0.bias
        return tuple(F.linear(x[:, :n], w[:, :n], b) for n in self.nesting)

    def extra_repr(self) -> str:
        return f"nesting={self.nesting}, num_classes={self.num_classes}"


def create_head(
    kind: str,
    in_features: int,
    num_classes: int,
    *,
    dropout: float,
    kan: KANFactory,
    kan_classifier: KANFactory | None = None,
) -> nn.Module:
    """Build a head of type ``kind`` (one of :data:`HEAD_TYPES`).

    ``kan(widths)`` builds the hidden KAN MLPs of the KAN heads (it owns their dropout), ``kan_classifier(widths)``
    the classifying one of the ``kan`` head (default ``kan``); ``dropout`` is the head's own.

    Examples:
        >>> head = create_head("vgg", 32, 10, dropout=0.5, kan=lambda widths: KANMLP(widths))
        >>> head(torch.randn(2, 32)).shape
        torch.Size([2, 10])
    """
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
    if kind == "kan":
        return (kan_classifier or kan)([in_features, num_classes])
    if kind == "hidden_kan":
        return nn.Sequential(kan([in_features, 512]), nn.Dropout(dropout), nn.Linear(512, num_classes))
    if kind == "vgg":
        return nn.Sequential(
            nn.Linear(in_features, 1024), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(1024, 1024), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(1024, num_classes),
        )  # fmt: skip
    if kind == "matryoshka":
        nesting = tuple(2**n for n in range(6, 11))
        return nn.Sequential(
            nn.Linear(in_features, 1024), nn.ReLU(True), nn.Dropout(dropout), MatryoshkaHead(nesting, num_classes)
        )
    if kind == "kan_matryoshka":
        nesting = tuple(2**n for n in range(5, 10))
        return nn.Sequential(kan([in_features, 512]), nn.Dropout(dropout), MatryoshkaHead(nesting, num_classes))
    raise ValueError(f"head must be one of {HEAD_TYPES}, got {kind!r}")


def head_stages(head: nn.Module) -> tuple[list[nn.Module], nn.Module]:
    """``(pre-logit modules, classifier)`` of a head built by :func:`create_head`."""
    modules = list(head.layers) if isinstance(head, KANMLP) else list(head.children())
    if not modules:
        raise ValueError(f"head {type(head).__name__} has no modules")
    return modules[:-1], modules[-1]


def run_head(head: nn.Module, x: Tensor, pre_logits: bool = False) -> Tensor | tuple[Tensor, ...]:
    """Apply ``head`` to ``x``; ``pre_logits=True`` stops before its classifier."""
    hidden, classifier = head_stages(head)
    for module in hidden:
        x = module(x)
    return x if pre_logits else classifier(x)


def pre_logits_size(kind: str, in_features: int) -> int:
    """Width of the pre-logits of a head of type ``kind`` on ``in_features`` inputs."""
    return {"hidden_kan": 512, "kan_matryoshka": 512, "vgg": 1024, "matryoshka": 1024}.get(kind, in_features)
