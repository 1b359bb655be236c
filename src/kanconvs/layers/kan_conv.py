"""The N-dimensional Kolmogorov–Arnold convolution: every basis family, one grouped convolution."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn

from ..bases import Basis
from ..kernels import FeaturePlan, base_code, compute_dtype, eager_only, fused_features, squash_code
from ._conv_base import ConvBase
from .factories import (
    ActLayer,
    NormLayer,
    build_basis,
    create_activation,
    create_dropout,
    create_norm,
    create_squash,
    place,
    reset_parameters_of,
)

__all__ = ["BasisInit", "DropoutPlacement", "KAConv1d", "KAConv2d", "KAConv3d", "KAConvNd"]

#: Where dropout acts: ``"full"`` on the input of both branches, ``"basis_input"`` on the basis branch's input
#: only, ``"squashed"`` after the squash, ``"basis"`` on the basis functions, ``"output"`` after the activation.
DropoutPlacement = Literal["full", "basis_input", "squashed", "basis", "output"]
#: Initialisation of the basis weights (the base weights are always Kaiming-uniform with gain 1):
#: ``"kaiming"`` U(±√(3 / fan_in)) with fan_in = c_in·K·k^d (a conv over the basis maps); ``"kaiming_stacked"`` the
#: same with fan_in multiplied by c_out (the reference's stacked-parameter fan-in, ~√c_out smaller);
#: ``"normal"`` N(0, σ) with σ = 1 / (C_in·K·k^d).
BasisInit = Literal["kaiming", "kaiming_stacked", "normal"]
_PLACEMENTS = ("full", "basis_input", "squashed", "basis", "output")
_INITS = ("kaiming", "kaiming_stacked", "normal")
_HALF = (torch.float16, torch.bfloat16)


def as_conv_weight(fn: Callable[[Tensor], Tensor], ndim: int) -> Callable[[Tensor], Tensor]:
    """``fn`` (a ``Module._apply`` conversion) applied to stacked KA weights ``(C_out, C_in / g, F, *k)`` as the
    convolution sees them, ``(C_out, C_in·F / g, *k)``: they have one dim more than a conv weight, so memory formats
    (``model.to(memory_format=torch.channels_last)``) would refuse them otherwise."""
    stacked = ndim + 3

    def convert(t: Tensor) -> Tensor:
        return fn(t.flatten(1, 2)).unflatten(1, t.shape[1:3]) if t.dim() == stacked else fn(t)

    return convert


class KAConvNd(ConvBase):
    r"""Kolmogorov–Arnold convolution over 1, 2 or 3 spatial dimensions.

    Every input channel ``x_c`` is expanded into features ``[base_act(x_c), B_1(t_c) … B_K(t_c)]`` with
    ``t = squash(x)``; one (grouped) convolution mixes them, then come the norm and the activation:

    .. math:: y = \mathrm{act}\Big(\mathrm{norm}\big(\mathrm{conv}([\sigma(x), B(\mathrm{squash}(x))])\big)\Big)

    Features are channel-major (index ``c·F + f``), so ``groups=g`` equals ``g`` independent layers. The convolution
    weight is stored as ``weight`` of shape ``(C_out, C_in / groups, F, *kernel_size)``; ``weight[:, :, 0]`` is the
    base branch when ``use_base``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: as in ``nn.ConvNd``
            (``padding="same"`` works). Padding zero-pads the feature maps.
        ndim: number of spatial dimensions (fixed by the ``…1d/2d/3d`` classes).
        basis: a registered basis name (see :func:`kanconvs.list_bases`) or a :class:`~kanconvs.bases.Basis`.
        basis_kwargs: keyword arguments for the basis (``degree=``, ``grid_size=``, …) when ``basis`` is a name.
        squash: map applied to ``x`` before the basis: ``"tanh"``, ``"sigmoid"``, ``"minmax"``, ``"none"`` or a
            callable.
        use_base: whether the base branch ``conv(base_act(x))`` exists.
        base_activation: activation of the base branch (``None`` for identity).
        norm_layer: norm after the convolution (or before the basis, with ``norm_position="input"``): a name,
            a class, a callable or ``None``. ``norm_kwargs`` go to its constructor (e.g. ``affine=True``).
        activation: final activation (``"prelu"`` learns one slope per group).
        dropout: probability of the regulariser ``dropout_type`` (``"dropout"``: channel-wise dropout,
            ``"noise"``: :class:`NoiseInjection`, ``"multiplicative_noise"``), applied at ``dropout_placement``.
        bias: add a learnable bias to the convolution.
        activation_l1, activation_l2, weight_l1, weight_l2: penalty coefficients, reported by
            ``regularization_loss()`` (see :class:`~kanconvs.layers.regularization.PenaltyMixin`).
        basis_init: initialisation of the basis weights (see :data:`BasisInit`).
        fused_basis: evaluate squash, basis and base branch as one fused pass per direction
            (:mod:`kanconvs.kernels`: Triton on CUDA, in-place PyTorch elsewhere) that stores only the layer input
            for the backward pass. ``False`` runs the plain differentiable math (it stores every recurrence step).
            Under ``torch.compile``, export, tracing and ``torch.func`` transforms the plain math runs either way.

    Examples:
        >>> layer = KAConv2d(16, 32, 3, padding=1, basis="chebyshev", basis_kwargs={"degree": 4})
        >>> layer(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        *,
        ndim: int | None = None,
        basis: str | Basis = "gram",
        basis_kwargs: Mapping[str, Any] | None = None,
        squash: ActLayer = "tanh",
        use_base: bool = True,
        base_activation: ActLayer = "silu",
        norm_layer: NormLayer = "instance",
        norm_kwargs: Mapping[str, Any] | None = None,
        norm_position: Literal["output", "input"] = "output",
        activation: ActLayer = "silu",
        dropout: float = 0.0,
        dropout_placement: DropoutPlacement = "squashed",
        dropout_type: str = "dropout",
        bias: bool = False,
        basis_init: BasisInit = "kaiming",
        fused_basis: bool = True,
        activation_l1: float = 0.0,
        activation_l2: float = 0.0,
        weight_l1: float = 0.0,
        weight_l2: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, ndim)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        c_in = in_channels // self.groups
        self.basis = build_basis(basis, basis_kwargs, c_in, device, dtype)
        self.use_base = bool(use_base)
        self.features_per_channel = self.basis.num_functions + int(self.use_base)
        self.base_activation = create_activation(base_activation, name="base_activation") if use_base else None
        self.squash = create_squash(squash, self.groups)
        if dropout_placement not in _PLACEMENTS:
            raise ValueError(f"dropout_placement must be one of {_PLACEMENTS}, got {dropout_placement!r}")
        self.dropout = create_dropout(dropout, self.ndim, dropout_type)
        self.dropout_placement = dropout_placement
        if norm_position not in ("output", "input"):
            raise ValueError(f"norm_position must be 'output' or 'input', got {norm_position!r}")
        norm_channels = out_channels if norm_position == "output" else in_channels
        norm = place(create_norm(norm_layer, norm_channels, self.ndim, **dict(norm_kwargs or {})), device, dtype)
        self.input_norm = norm if norm_position == "input" else nn.Identity()
        self.norm = norm if norm_position == "output" else nn.Identity()
        self.act = place(create_activation(activation, out_channels, self.groups), device, dtype)
        if basis_init not in _INITS:
            raise ValueError(f"basis_init must be one of {_INITS}, got {basis_init!r}")
        self.basis_init = basis_init
        self.fused_basis = bool(fused_basis)
        self._init_penalties(activation_l1, activation_l2, weight_l1, weight_l2)

        # (C_out, C_in / g, F, *k): flattening dims 1–2 gives the grouped conv weight with no copy.
        self.weight = nn.Parameter(
            torch.empty(out_channels, c_in, self.features_per_channel, *self.kernel_size, **factory)
        )
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> KAConvNd:
        return super()._apply(as_conv_weight(fn, self.ndim), recurse)

    def reset_parameters(self) -> None:
        receptive = math.prod(self.kernel_size)
        c_in, c_out = self.in_channels // self.groups, self.out_channels // self.groups
        n_basis = self.basis.num_functions
        with torch.no_grad():
            if self.use_base:
                bound = math.sqrt(3.0 / (c_in * receptive))
                self.weight[:, :, 0].uniform_(-bound, bound)
            poly = self.weight[:, :, int(self.use_base) :]
            if self.basis_init == "normal":
                poly.normal_(0.0, 1.0 / (self.in_channels * n_basis * receptive))
            else:
                fan_in = c_in * n_basis * receptive * (c_out if self.basis_init == "kaiming_stacked" else 1)
                bound = math.sqrt(3.0 / fan_in)
                poly.uniform_(-bound, bound)
            if self.bias is not None:
                bound = 1.0 / math.sqrt(c_in * self.features_per_channel * receptive)
                self.bias.uniform_(-bound, bound)
        self.basis.reset_parameters(fan_in=self.in_channels * receptive)
        reset_parameters_of(self.norm, self.input_norm, self.act)

    def features(self, x: Tensor, basis: Callable[..., Tensor] | None = None) -> Tensor:
        """The feature maps fed to the convolution: ``(B, C_in · F, *S)``, channel-major.

        ``basis(h, prepend=None)`` replaces ``self.basis`` (PEFT evaluates an extended basis through the same path).
        """
        return cast(Tensor, self._features(x, basis))  # one part: a tensor

    def _features(
        self, x: Tensor, basis: Callable[..., Tensor] | None = None, chunks: int = 1
    ) -> Tensor | tuple[Tensor, ...]:
        """:meth:`features`; the fused pass writes them as ``chunks`` contiguous parts (one per group of a split
        convolution, see ``ConvBase.split_groups``), the plain path as one tensor."""
        if basis is None and self._can_fuse():
            return self._fused_features(x, chunks)
        basis = self.basis if basis is None else basis
        placement = self.dropout_placement
        if placement == "full":
            x = self.dropout(x)
        base = self.base_activation(x) if self.base_activation is not None else None
        h = self.dropout(x) if placement == "basis_input" else x
        h = self.input_norm(h)
        if h.dtype in _HALF:  # bases are evaluated in fp32: recurrences lose too much in 16 bits
            h = h.float()
        h = self.squash(h)
        if placement == "squashed":
            h = self.dropout(h)
        if placement == "basis":
            values = basis(h)  # (B, C, K, *S)
            values = self.dropout(values.flatten(1, 2)).view_as(values)
            feats = values if base is None else torch.cat([base.unsqueeze(2).to(values.dtype), values], dim=2)
        else:
            feats = basis(h, base)  # (B, C, F, *S)
        return feats.flatten(1, 2).to(x.dtype)

    def _dropout_active(self) -> bool:
        return self.training and not isinstance(self.dropout, nn.Identity)

    def _can_fuse(self) -> bool:
        if not self.fused_basis or not self.basis.supports_fused() or eager_only():
            return False
        return not (self.dropout_placement == "basis" and self._dropout_active())

    def _fused_features(self, x: Tensor, chunks: int = 1) -> Tensor | tuple[Tensor, ...]:
        """:meth:`features` through :func:`kanconvs.kernels.fused_features`: squash, basis and base in one pass.

        What is not pointwise-fusable (dropout before the basis, an input norm, a min–max squash, a custom
        activation) runs before the pass, as in the plain path.
        """
        placement = self.dropout_placement
        out_dtype = compute_dtype(x)
        if placement == "full":
            x = self.dropout(x)
        base = base_code(self.base_activation, self.use_base)
        x_base = x
        if base is None:  # an activation the kernels do not know: evaluated here, copied in as is
            x_base, base = cast(nn.Module, self.base_activation)(x), "identity"
        h = self.dropout(x) if placement == "basis_input" else x
        h = self.input_norm(h)
        squash = squash_code(self.squash)
        if squash is None or (placement == "squashed" and self._dropout_active()):
            h = self.squash(h.float() if h.dtype in _HALF else h)
            if placement == "squashed":
                h = self.dropout(h)
            squash = "none"
        return fused_features(x_base, h, self.basis, FeaturePlan(squash, base), out_dtype, chunks)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        y = self.conv(self._features(x, chunks=self.split_groups(x)), self.weight.flatten(1, 2), self.bias)
        y = self.act(self.norm(y))
        if self.dropout_placement == "output":
            y = self.dropout(y)
        return self._record_activation(y)

    def extra_repr(self) -> str:
        s = self.conv_repr()
        if not self.use_base:
            s += ", use_base=False"
        if self.bias is not None:
            s += ", bias=True"
        if not isinstance(self.dropout, nn.Identity):
            s += f", dropout_placement={self.dropout_placement!r}"
        return s


class KAConv1d(KAConvNd):
    """:class:`KAConvNd` over one spatial dimension, input ``(B, C, L)``."""

    _ndim = 1


class KAConv2d(KAConvNd):
    """:class:`KAConvNd` over two spatial dimensions, input ``(B, C, H, W)``."""

    _ndim = 2


class KAConv3d(KAConvNd):
    """:class:`KAConvNd` over three spatial dimensions, input ``(B, C, D, H, W)``."""

    _ndim = 3
