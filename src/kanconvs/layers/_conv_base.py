"""Argument handling shared by every N-D KA convolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from .factories import to_ntuple
from .ranks import rank
from .regularization import PenaltyMixin

__all__ = ["ConvBase", "check_input", "check_positive"]

#: Up to this many groups a CPU convolution runs as one plain convolution per group (see ``ConvBase.conv``).
_CPU_SPLIT_GROUPS = 8


def _chunks(bias: Tensor | None, groups: int) -> tuple[Tensor | None, ...]:
    return (None,) * groups if bias is None else bias.chunk(groups)


def check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_input(module: nn.Module, x: Tensor, channels: int, ndim: int) -> None:
    """``x`` must be ``(B, channels, *S)`` with ``ndim`` spatial axes; the error says expected vs got."""
    if x.dim() != ndim + 2:
        dims = ", ".join(("D", "H", "W")[3 - ndim :])
        raise ValueError(
            f"{type(module).__name__} expects a {ndim + 2}-D input (batch, channels, {dims}), "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[1] != channels:
        raise ValueError(
            f"{type(module).__name__} expects {channels} input channels, got {x.shape[1]} "
            f"(input shape {tuple(x.shape)})"
        )


class ConvBase(PenaltyMixin, nn.Module):
    """Validates and stores the ``nn.ConvNd`` arguments; subclasses add the Kolmogorov–Arnold part.

    ``ndim`` is fixed by the class for the ``…1d/2d/3d`` names and given explicitly to the ``…Nd`` ones.
    """

    _ndim: ClassVar[int | None] = None
    #: The constructor takes torch-style arguments (``in_channels, out_channels, kernel_size, …, ndim=``); the
    #: reference-compatible classes, whose constructors are torch-conv-kan's, say ``False``.
    torch_style: ClassVar[bool] = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        ndim: int | None = None,
    ) -> None:
        super().__init__()
        self.ndim = self._resolve_ndim(ndim)
        self.in_channels = check_positive("in_channels", in_channels)
        self.out_channels = check_positive("out_channels", out_channels)
        self.groups = check_positive("groups", groups)
        if in_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"out_channels ({out_channels}) must be divisible by groups ({groups})")
        self.kernel_size = to_ntuple("kernel_size", kernel_size, self.ndim)
        self.stride = to_ntuple("stride", stride, self.ndim)
        self.dilation = to_ntuple("dilation", dilation, self.ndim)
        self.padding: tuple[int, ...] | str
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid', an int or a tuple of ints, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"padding='same' requires stride 1, got stride={stride!r}")
            self.padding = padding
        else:
            self.padding = to_ntuple("padding", padding, self.ndim, minimum=0)
        self._conv = rank(self.ndim).conv_fn

    @classmethod
    def _resolve_ndim(cls, ndim: int | None) -> int:
        if cls._ndim is not None:
            if ndim is not None and ndim != cls._ndim:
                raise ValueError(f"{cls.__name__} is {cls._ndim}-dimensional, got ndim={ndim!r}")
            return cls._ndim
        if isinstance(ndim, bool) or not isinstance(ndim, int) or ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
        return ndim

    def split_groups(self, x: Tensor, groups: int | None = None) -> int:
        """Into how many convolutions :meth:`conv` splits a grouped convolution of ``x``: the groups, or 1."""
        groups = self.groups if groups is None else groups
        # oneDNN's grouped convolution is slower on CPU than one plain convolution per group, above all in the
        # backward pass (layers with groups=2…8 train 1.1–1.5x faster split; reports/vs-reference-cpu.md).
        return groups if x.device.type == "cpu" and 1 < groups <= _CPU_SPLIT_GROUPS else 1

    def conv(
        self, x: Tensor | Sequence[Tensor], weight: Tensor, bias: Tensor | None = None, groups: int | None = None
    ) -> Tensor:
        """``F.convNd`` with this layer's stride, padding and dilation.

        ``x`` may also be the input already split into its ``split_groups(x)`` groups along the channels (contiguous
        parts that need no copy before their convolution).
        """
        groups = self.groups if groups is None else groups
        parts: Sequence[Tensor]
        if isinstance(x, Tensor):
            split = self.split_groups(x, groups)
            if split == 1:
                return self._conv(x, weight, bias, self.stride, self.padding, self.dilation, groups)
            parts = x.chunk(split, 1)
        else:
            parts = x
        if len(parts) != groups:
            raise ValueError(f"conv got the input in {len(parts)} parts, expected one per group ({groups})")
        chunks = zip(parts, weight.chunk(groups, 0), _chunks(bias, groups), strict=True)
        return torch.cat([self._conv(xg, wg, bg, self.stride, self.padding, self.dilation) for xg, wg, bg in chunks], 1)

    def check_input(self, x: Tensor) -> None:
        check_input(self, x, self.in_channels, self.ndim)

    def conv_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.ndim:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.ndim:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s

    def extra_repr(self) -> str:
        return self.conv_repr()
