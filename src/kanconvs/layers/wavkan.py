"""WavKAN convolution: wavelets with a learnable scale and translation per (output, input) channel pair."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..bases.wavelet import TRITON_WAVELETS, get_wavelet
from ..kernels.wavelet_conv import DEFAULT_TILE_BYTES, wavelet_conv
from ._conv_base import ConvBase
from .factories import (
    ActLayer,
    NormLayer,
    create_activation,
    create_dropout,
    create_norm,
    place,
    reset_parameters_of,
)
from .families import register_family
from .spec import FamilySpec, get_spec

__all__ = ["WavKANConv1d", "WavKANConv2d", "WavKANConv3d", "WavKANConvNd"]

Size = int | tuple[int, ...]


@register_family("wavkan", get_spec("wavkan").formula)
class WavKANConvNd(ConvBase):
    r"""Wavelet KA convolution (WavKANConv).

    Options: ``wavelet_type="mexican_hat"`` (see :func:`kanconvs.bases.wavelet.get_wavelet`).

    For output channel ``o`` of a group, ``z_o = Σ_i conv_{o,i}(ψ((x_i - t_{oi}) / s_{oi}))`` over the group's
    inputs ``i``; then a 1×1 grouped convolution mixes the ``z_o``, the base branch ``conv(SiLU(x))`` is added and the
    norm (BatchNorm by default) is applied. Because scales and translations are per (output, input) pair, the
    wavelet maps cannot be shared across outputs: the branch evaluates ``C_out · C_in / g`` maps. They are evaluated
    a tile of output channels at a time (at most ``tile_bytes`` of maps exist at once, see
    :mod:`kanconvs.kernels.wavelet_conv`) and, in training, recomputed tile by tile in the backward pass
    (``checkpoint_wavelets``), so the stored activations are those of an ordinary convolution.

    Parameters: ``(C_in·C_out/g)(2 + 2·k^d) + C_out^2/g`` plus the norm's, as in the reference; ``bias=True`` adds
    ``C_out`` (a bias on the mixed output, before the norm).
    """

    spec: ClassVar[FamilySpec] = get_spec("wavkan")
    family: str
    formula: str
    channel_window: Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size,
        stride: Size = 1,
        padding: Size | str = 0,
        dilation: Size = 1,
        groups: int = 1,
        *,
        wavelet_type: str = "mexican_hat",
        dropout: float = 0.0,
        norm_layer: NormLayer = "batch",
        norm_kwargs: dict[str, Any] | None = None,
        base_activation: ActLayer = "silu",
        activation: ActLayer = None,
        checkpoint_wavelets: bool = True,
        tile_bytes: int = DEFAULT_TILE_BYTES,
        use_base: bool = True,
        bias: bool = False,
        dropout_type: str = "dropout",
        activation_l1: float = 0.0,
        activation_l2: float = 0.0,
        weight_l1: float = 0.0,
        weight_l2: float = 0.0,
        ndim: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, ndim)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        c_in, c_out = in_channels // groups, out_channels // groups
        self.wavelet_type = wavelet_type
        self.wavelet = get_wavelet(wavelet_type)
        self.features_per_channel = 2  # one conv over x plus one over the wavelet maps (per output channel)
        self.use_base = bool(use_base)
        self._init_penalties(activation_l1, activation_l2, weight_l1, weight_l2)
        self.checkpoint_wavelets = checkpoint_wavelets
        if isinstance(tile_bytes, bool) or not isinstance(tile_bytes, int) or tile_bytes < 1:
            raise ValueError(f"tile_bytes must be a positive integer, got {tile_bytes!r}")
        self.tile_bytes = tile_bytes
        self.base_activation = create_activation(base_activation, name="base_activation")
        self.dropout = create_dropout(dropout, self.ndim, dropout_type)
        self.norm = place(create_norm(norm_layer, out_channels, self.ndim, **(norm_kwargs or {})), device, dtype)
        self.act = place(create_activation(activation, out_channels, groups), device, dtype)
        self.scale = nn.Parameter(torch.empty(out_channels, c_in, **factory))
        self.translation = nn.Parameter(torch.empty(out_channels, c_in, **factory))
        self.wavelet_weight = nn.Parameter(torch.empty(out_channels, c_in, *self.kernel_size, **factory))
        self.base_weight = (
            nn.Parameter(torch.empty(out_channels, c_in, *self.kernel_size, **factory)) if use_base else None
        )
        self.out_weight = nn.Parameter(torch.empty(out_channels, c_out, *([1] * self.ndim), **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        window_dtype = dtype or torch.get_default_dtype()
        self.register_buffer("channel_window", torch.empty(c_in, device=device, dtype=window_dtype), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.scale.fill_(1.0)
            self.translation.zero_()
        for w in (self.wavelet_weight, self.out_weight):
            nn.init.kaiming_uniform_(w, nonlinearity="linear")
        # The reference leaves its base conv at PyTorch's default init: U(±1/√fan_in).
        if self.base_weight is not None:
            nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.features_per_channel * self.wavelet_weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)
        # The reference weights the Shannon wavelet by a Hamming window over the group's input channels (a derived
        # buffer, rebuilt here because a meta-device module's to_empty() leaves it undefined).
        c_in = self.channel_window.numel()
        window = torch.hamming_window(c_in, periodic=False, dtype=torch.float64)
        with torch.no_grad():
            self.channel_window.copy_(window if self.wavelet_type == "shannon" else torch.ones_like(window))
        reset_parameters_of(self.norm, self.act)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        base = self.conv(self.base_activation(x), self.base_weight) if self.base_weight is not None else None
        x = self.dropout(x)
        z = wavelet_conv(
            x,
            self.scale,
            self.translation,
            self.wavelet_weight,
            self.channel_window,
            self.wavelet,
            self._conv,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            tile_bytes=self.tile_bytes,
            recompute=self.checkpoint_wavelets,
            triton_wavelet=TRITON_WAVELETS.get(self.wavelet_type),
        )
        z = self._conv(z, self.out_weight, self.bias, 1, 0, 1, self.groups)
        y = self.act(self.norm(z if base is None else z + base))
        return self._record_activation(y)

    def _penalised_weights(self) -> list[Tensor]:
        # The convolution weights, not the wavelets' scales and translations (basis parameters: an L2 term would
        # pull the scales, which divide, towards 0).
        return [w for w in (self.wavelet_weight, self.base_weight, self.out_weight) if w is not None]

    def extra_repr(self) -> str:
        return f"{self.conv_repr()}, wavelet_type={self.wavelet_type!r}" + (
            ", bias=True" if self.bias is not None else ""
        )


class WavKANConv1d(WavKANConvNd):
    _ndim = 1


class WavKANConv2d(WavKANConvNd):
    _ndim = 2


class WavKANConv3d(WavKANConvNd):
    _ndim = 3
