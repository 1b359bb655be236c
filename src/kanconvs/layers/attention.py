"""Self-attention and focal modulation built from KA convolutions, for every family and every rank.

Both blocks are written once, around any convolution of the library: a registered family name
(``family="kagn"``, see :func:`~kanconvs.list_families`) plus its keyword arguments, or any callable that builds a
convolution ``f(in_channels, out_channels, kernel_size, *, padding, dilation, groups, **family_kwargs)`` (e.g. a
bottleneck KA convolution, or a torch-conv-kan-compatible class).

- :class:`KASelfAttentionNd` — ``y = norm(x + γ · proj(softmax(q kᵀ / √d) v))`` with q, k, v from KA convolutions,
  optional 1×1 inner projection, several heads, optional axial rotary position embedding (:class:`AxialRoPE`) for
  any spatial shape, and :func:`torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient kernels).
- :class:`KAFocalModulationNd` — FocalNet's focal modulation (Yang et al., 2022) with KA convolutions, its
  depthwise context convolutions laid out channel-major so channel ``c`` only ever sees channel ``c``.

Differences from torch-conv-kan (``kan_convs/attention_conv.py``), all bugs there: γ scales the attention, not the
residual, so a fresh block is the identity; scores are scaled by 1/√d; q, k, v keep the input's spatial size
(size-preserving padding instead of the default 0); rotary embeddings follow the real feature-map shape instead of
a 14×14 grid with a CLS-token offset; no tensors are stored on the module in ``forward``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._conv_base import ConvBase, check_input, check_positive
from .create import create_conv
from .factories import ActLayer, NormLayer, create_activation, create_norm, place
from .ranks import rank

__all__ = [
    "AxialRoPE",
    "ConvFactory",
    "GlobalContext",
    "KAFocalModulation1d",
    "KAFocalModulation2d",
    "KAFocalModulation3d",
    "KAFocalModulationNd",
    "KASelfAttention1d",
    "KASelfAttention2d",
    "KASelfAttention3d",
    "KASelfAttentionNd",
]

#: A callable that builds a convolution: ``f(in_channels, out_channels, kernel_size, *, padding, dilation, groups,
#: **family_kwargs) -> nn.Module``. It receives ``ndim=`` too when it is a torch-style N-D class of this library
#: such as ``KAGNConvNd``.
ConvFactory = Callable[..., nn.Module]
#: Global context of focal modulation: ``"focalnet"`` GELU of the spatial mean of the last focal level (FocalNet);
#: ``"reference"`` spatial mean of the gated sum of all levels, no activation (torch-conv-kan).
GlobalContext = Literal["focalnet", "reference"]
_GLOBAL_CONTEXTS = ("focalnet", "reference")
# The blocks choose these themselves; accepting them in ``family_kwargs`` would silently break the block's shapes.
_RESERVED = ("stride", "padding", "dilation", "groups", "ndim", "kernel_size")


# ------------------------------------------------------------------------------------------------------ helpers
def _takes_ndim(fn: Callable[..., Any]) -> bool:
    """Whether a conv factory gets ``ndim=``: a torch-style N-D layer class of this library (``KAGNConvNd`` …).

    Other callables build their own rank: functions, partials, the fixed-rank classes and the reference-compatible
    classes (``torch_style = False``, first argument ``input_dim``), which fix it themselves.
    """
    return isinstance(fn, type) and issubclass(fn, ConvBase) and fn.torch_style and fn._ndim is None


def _resolve_ndim(cls_ndim: int | None, ndim: int | None, family: object, owner: str) -> int | None:
    if cls_ndim is not None:
        if ndim is not None and ndim != cls_ndim:
            raise ValueError(f"{owner} is {cls_ndim}-dimensional, got ndim={ndim!r}")
        return cls_ndim
    if ndim is not None:
        if ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
        return ndim
    if isinstance(family, str):
        raise ValueError(f"{owner} needs ndim=1, 2 or 3 when family is given by name ({family!r})")
    return None  # inferred from the first convolution built


class _ConvBuilder:
    """Builds a block's convolutions from a family name or a factory and checks that they agree on the rank."""

    def __init__(
        self,
        family: str | ConvFactory,
        ndim: int | None,
        kwargs: Mapping[str, Any],
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        reserved = sorted(set(_RESERVED) & set(kwargs))
        if reserved:
            raise ValueError(f"family_kwargs must not contain {reserved}: the block sets them itself")
        if isinstance(family, str):
            self.fn: ConvFactory = partial(create_conv, family)
            self.takes_ndim = True
        elif callable(family):
            self.fn, self.takes_ndim = family, _takes_ndim(family)
        else:
            raise TypeError(f"family must be a registered family name or a callable, got {family!r}")
        self.family = family
        self.kwargs = dict(kwargs)
        self.kwargs.update({k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None})
        self.ndim = ndim

    def __call__(self, in_channels: int, out_channels: int, kernel_size: Any, **geometry: Any) -> nn.Module:
        kwargs = {**geometry, **self.kwargs}
        if self.takes_ndim and self.ndim is not None:
            kwargs["ndim"] = self.ndim
        conv = self.fn(in_channels, out_channels, kernel_size, **kwargs)
        if not isinstance(conv, nn.Module):
            raise TypeError(f"family {self.family!r} must build an nn.Module, got {type(conv).__name__}")
        rank = getattr(conv, "ndim", None)
        if isinstance(rank, int) and not isinstance(rank, bool):
            if self.ndim is None:
                self.ndim = rank
            elif rank != self.ndim:
                raise ValueError(f"family {self.family!r} built a {rank}-D convolution, expected ndim={self.ndim}")
        return conv

    def resolved_ndim(self) -> int:
        if self.ndim is None:
            raise ValueError(f"cannot infer ndim from family {self.family!r} (its modules have no .ndim); pass ndim=")
        return self.ndim


def same_padding(kernel_size: int | Sequence[int], dilation: int | Sequence[int]) -> int | tuple[int, ...]:
    """``dilation·(k−1)/2`` per axis: the output keeps the input's size. Odd kernels only (symmetric padding)."""
    ks = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
    ds = (dilation,) if isinstance(dilation, int) else tuple(dilation)
    if len(ks) != len(ds) and 1 not in (len(ks), len(ds)):
        raise ValueError(f"kernel_size {kernel_size!r} and dilation {dilation!r} have different lengths")
    for name, values, given in (("kernel_size", ks, kernel_size), ("dilation", ds, dilation)):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise ValueError(f"{name} must be a positive int or a tuple of positive ints, got {given!r}")
    if any(k % 2 == 0 for k in ks):
        raise ValueError(f"kernel_size must be odd so that the convolutions keep the spatial size, got {kernel_size!r}")
    n = max(len(ks), len(ds))
    ks, ds = (ks * n if len(ks) == 1 else ks), (ds * n if len(ds) == 1 else ds)
    pads = tuple(d * (k - 1) // 2 for k, d in zip(ks, ds, strict=True))
    return pads[0] if isinstance(kernel_size, int) and isinstance(dilation, int) else pads


# ------------------------------------------------------------------------------------------------------- RoPE
class AxialRoPE(nn.Module):
    r"""Rotary position embedding over 1, 2 or 3 spatial axes, for whatever shape the input has.

    The head dimension ``d`` is split into ``d/2`` rotation planes (adjacent pairs ``(2j, 2j+1)``); plane ``j`` turns
    by the angle ``⟨p, f_j⟩`` at position ``p ∈ ℤ^ndim``. Axial frequencies give each axis ``d/(2·ndim)`` planes with
    ``f = e_axis · θ^{-2·ndim·i/d}``; ``mixed=True`` (RoPE-Mixed, Heo et al., 2024) makes the frequency vectors
    learnable, initialised as the axial ones under a random rotation of the axes per head. Either way the score
    ``⟨R_p q, R_{p'} k⟩`` depends on positions only through ``p − p'``. Angles are computed in at least float32
    (positions times frequencies lose too much in 16 bits), and nothing depends on a fixed grid size.

    Args:
        head_dim: features per head; must be divisible by ``2·ndim``.
        ndim: number of spatial axes.
        num_heads: heads (each gets its own learnable frequencies when ``mixed``).
        theta: frequency base θ.
        mixed: learnable, rotated frequencies (``True``) or fixed axial ones.

    Examples:
        >>> rope = AxialRoPE(head_dim=8, ndim=2)
        >>> q = torch.randn(2, 1, 5 * 7, 8)  # (B, heads, H·W, d)
        >>> rope(q, (5, 7)).shape
        torch.Size([2, 1, 35, 8])
    """

    def __init__(
        self,
        head_dim: int,
        ndim: int,
        num_heads: int = 1,
        theta: float = 10.0,
        mixed: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive("head_dim", head_dim)
        check_positive("num_heads", num_heads)
        if ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
        if head_dim % (2 * ndim):
            raise ValueError(
                f"rotary embedding over {ndim} axes needs a head dimension divisible by 2·ndim = {2 * ndim}, "
                f"got head_dim={head_dim} (channels / num_heads)"
            )
        if not theta > 0:
            raise ValueError(f"rope theta must be positive, got {theta!r}")
        self.head_dim, self.ndim, self.num_heads = head_dim, ndim, num_heads
        self.theta, self.mixed = float(theta), bool(mixed)
        self.freqs: nn.Parameter | None = None
        if self.mixed:  # (ndim, heads, d/2): one frequency vector per rotation plane and head
            self.freqs = nn.Parameter(torch.empty(ndim, num_heads, head_dim // 2, device=device, dtype=dtype))
            self.reset_parameters()

    def axial_frequencies(self, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """Axial frequencies ``(ndim, 1, d/2)``: planes ``[a·m, (a+1)·m)`` turn with axis ``a`` (``m = d/(2·ndim)``)."""
        m = self.head_dim // (2 * self.ndim)
        mag = self.theta ** (-torch.arange(m, device=device, dtype=dtype) * (2 * self.ndim) / self.head_dim)
        return torch.block_diag(*([mag] * self.ndim)).unsqueeze(1)  # (ndim, 1, ndim·m)

    def reset_parameters(self) -> None:
        if self.freqs is None:
            return
        device, dtype = self.freqs.device, self.freqs.dtype
        axial = self.axial_frequencies(device, dtype)  # (ndim, 1, d/2)
        # One random orthogonal change of axes per head (a plain rotation by a uniform angle in 2-D, as RoPE-Mixed).
        q, r = torch.linalg.qr(torch.randn(self.num_heads, self.ndim, self.ndim, device=device, dtype=dtype))
        q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
        with torch.no_grad():
            self.freqs.copy_(torch.einsum("hab,bhj->ahj", q, axial.expand(-1, self.num_heads, -1)))

    def angles(
        self, shape: Sequence[int], device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> Tensor:
        """Rotation angles ``(heads or 1, N, d/2)`` for the positions of a ``shape`` grid (row-major order)."""
        freqs = self.freqs.to(dtype) if self.freqs is not None else self.axial_frequencies(device, dtype)
        axes = [torch.arange(s, device=freqs.device, dtype=dtype) for s in shape]
        pos = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.ndim)  # (N, ndim)
        # Broadcast-and-sum rather than a matmul: autocast would run a matmul in 16 bits.
        return (pos[:, :, None, None] * freqs).sum(1).transpose(0, 1)  # (heads, N, d/2)

    def forward(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        """Rotate ``x`` of shape ``(B, heads, N, d)`` whose ``N`` positions form the grid ``shape``."""
        if len(shape) != self.ndim or math.prod(shape) != x.shape[-2] or x.shape[-1] != self.head_dim:
            raise ValueError(
                f"AxialRoPE({self.head_dim}, ndim={self.ndim}) got x of shape {tuple(x.shape)} for grid {tuple(shape)}"
            )
        work = torch.promote_types(x.dtype, torch.float32)  # at least float32: positions × frequencies
        theta = self.angles(shape, x.device, work)
        cos, sin = theta.cos(), theta.sin()
        pairs = x.to(work).unflatten(-1, (-1, 2))  # (B, h, N, d/2, 2)
        x0, x1 = pairs[..., 0], pairs[..., 1]
        out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
        return out.flatten(-2).to(x.dtype)

    def extra_repr(self) -> str:
        shape = f"head_dim={self.head_dim}, ndim={self.ndim}, num_heads={self.num_heads}"
        return f"{shape}, theta={self.theta}, mixed={self.mixed}"


# -------------------------------------------------------------------------------------------- self-attention
class KASelfAttentionNd(nn.Module):
    r"""Self-attention whose queries, keys and values are KA convolutions: ``y = norm(x + γ · proj(attn))``.

    .. math:: \mathrm{attn} = \mathrm{softmax}\!\big(q k^\top / \sqrt{d}\big)\, v, \quad
              q, k, v = \mathrm{KAConv}_{q,k,v}(\mathrm{inner}(x))

    over the ``N = ∏ S`` flattened positions, per head (``d = C / heads``), through
    :func:`~torch.nn.functional.scaled_dot_product_attention`. γ starts at ``gamma_init = 0``: a fresh block is
    the identity (the reference put γ on the residual instead). q, k and v keep the input's spatial size (odd
    kernels, padding ``dilation·(k−1)/2``), for any spatial size.

    Args:
        channels: input and output channels ``C``.
        kernel_size: kernel of the q, k, v convolutions (odd).
        ndim: number of spatial dimensions (fixed by the ``…1d/2d/3d`` classes; inferred from the convolutions when
            ``family`` is a callable).
        family: a registered family name, or a callable building a convolution (see :data:`ConvFactory`).
        inner_projection: if given, 1×1 convolutions (with bias) map ``C → inner_projection`` before q, k, v and
            back after the attention.
        num_heads: attention heads; must divide the attention width.
        dilation, groups: of the q, k, v convolutions.
        attn_dropout: dropout on the attention weights in training.
        gamma_init: initial value of the scalar γ.
        out_norm: norm applied after the residual sum (``None``: none), built with ``out_norm_kwargs``.
        rope: rotate q and k with :class:`AxialRoPE` (``rope_theta``, ``rope_mixed``); the head dimension must be
            divisible by ``2·ndim``.
        **family_kwargs: passed to every q, k, v convolution (``degree=``, ``norm_layer=``, ``dropout=`` …).

    Examples:
        >>> attn = KASelfAttention2d(16, 3, num_heads=2, degree=3)
        >>> x = torch.randn(2, 16, 7, 5)
        >>> torch.equal(attn(x), x)  # γ = 0: identity at initialisation
        True
    """

    _ndim: ClassVar[int | None] = None

    def __init__(
        self,
        channels: int,
        kernel_size: int | tuple[int, ...] = 3,
        *,
        ndim: int | None = None,
        family: str | ConvFactory = "kagn",
        inner_projection: int | None = None,
        num_heads: int = 1,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        attn_dropout: float = 0.0,
        gamma_init: float = 0.0,
        out_norm: NormLayer = None,
        out_norm_kwargs: Mapping[str, Any] | None = None,
        rope: bool = False,
        rope_theta: float = 10.0,
        rope_mixed: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **family_kwargs: Any,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.channels = check_positive("channels", channels)
        if inner_projection is not None:
            check_positive("inner_projection", inner_projection)
        self.dims = inner_projection or channels  # attention width
        self.num_heads = check_positive("num_heads", num_heads)
        if self.dims % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide the attention width ({self.dims})")
        self.head_dim = self.dims // num_heads
        if isinstance(attn_dropout, bool) or not 0.0 <= attn_dropout < 1.0:
            raise ValueError(f"attn_dropout must be a float in [0, 1), got {attn_dropout!r}")
        self.attn_dropout = float(attn_dropout)
        self.kernel_size = kernel_size
        padding = same_padding(kernel_size, dilation)

        ndim = _resolve_ndim(self._ndim, ndim, family, type(self).__name__)
        build = _ConvBuilder(family, ndim, family_kwargs, device, dtype)
        geometry = {"padding": padding, "dilation": dilation, "groups": groups}
        self.proj_q = build(self.dims, self.dims, kernel_size, **geometry)
        self.proj_k = build(self.dims, self.dims, kernel_size, **geometry)
        self.proj_v = build(self.dims, self.dims, kernel_size, **geometry)
        self.ndim = build.resolved_ndim()

        self.inner_proj: nn.Module | None = None
        self.outer_proj: nn.Module | None = None
        if inner_projection is not None:
            conv = rank(self.ndim).conv
            self.inner_proj = conv(channels, self.dims, 1, **factory)
            self.outer_proj = conv(self.dims, channels, 1, **factory)
        self.rope = AxialRoPE(self.head_dim, self.ndim, num_heads, rope_theta, rope_mixed, **factory) if rope else None
        self.gamma_init = float(gamma_init)
        self.gamma = nn.Parameter(torch.full((1,), self.gamma_init, **factory))
        self.norm = place(create_norm(out_norm, channels, self.ndim, **dict(out_norm_kwargs or {})), device, dtype)

    def reset_parameters(self) -> None:
        """Reset γ (and the rotary frequencies); the convolutions keep their own ``reset_parameters``."""
        with torch.no_grad():
            self.gamma.fill_(self.gamma_init)
        if self.rope is not None:
            self.rope.reset_parameters()

    def attention(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Multi-head attention over the positions of ``(B, C, *S)`` maps; returns ``(B, C, *S)``."""
        b, c, *spatial = v.shape

        def heads(t: Tensor) -> Tensor:
            return t.reshape(b, self.num_heads, self.head_dim, math.prod(spatial)).transpose(-1, -2)  # (B, h, N, d)

        q, k, v = heads(q), heads(k), heads(v)
        if self.rope is not None:
            q, k = self.rope(q, spatial), self.rope(k, spatial)
        p = self.attn_dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # scale 1/√d
        return out.transpose(-1, -2).reshape(b, c, *spatial)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.channels, self.ndim)
        a = self.inner_proj(x) if self.inner_proj is not None else x
        q, k, v = self.proj_q(a), self.proj_k(a), self.proj_v(a)
        if not q.shape == k.shape == v.shape == a.shape:
            raise ValueError(
                f"q, k, v must keep the shape of their input {tuple(a.shape)}, got {tuple(q.shape)}, "
                f"{tuple(k.shape)}, {tuple(v.shape)}: the family's convolution ignored the padding it was given"
            )
        out = self.attention(q, k, v)
        if self.outer_proj is not None:
            out = self.outer_proj(out)
        return self.norm(x + self.gamma * out)

    def extra_repr(self) -> str:
        s = f"{self.channels}, kernel_size={self.kernel_size}, ndim={self.ndim}, num_heads={self.num_heads}"
        if self.dims != self.channels:
            s += f", inner_projection={self.dims}"
        if self.attn_dropout:
            s += f", attn_dropout={self.attn_dropout}"
        return s


class KASelfAttention1d(KASelfAttentionNd):
    """:class:`KASelfAttentionNd` over one spatial dimension, input ``(B, C, L)``."""

    _ndim = 1


class KASelfAttention2d(KASelfAttentionNd):
    """:class:`KASelfAttentionNd` over two spatial dimensions, input ``(B, C, H, W)``."""

    _ndim = 2


class KASelfAttention3d(KASelfAttentionNd):
    """:class:`KASelfAttentionNd` over three spatial dimensions, input ``(B, C, D, H, W)``."""

    _ndim = 3


# ------------------------------------------------------------------------------------------ focal modulation
class KAFocalModulationNd(nn.Module):
    r"""FocalNet's focal modulation with KA convolutions (Yang et al., *Focal Modulation Networks*, 2022).

    .. math::
        [q, z_0, g] = f(x), \quad z_\ell = \mathrm{DWConv}_\ell(z_{\ell-1}), \quad
        Z = \textstyle\sum_{\ell=1}^{L} g_\ell z_\ell + g_{L+1} z_{\mathrm{global}}, \quad
        y = \mathrm{proj}\big(\mathrm{norm}(q \odot h(Z / (L+1)))\big)

    ``f`` (``C → 2C + L + 1``), ``h`` (``C → C``) and ``proj`` are 1×1 KA convolutions (``f`` and ``h`` plain
    ``nn.ConvNd`` with bias when ``full_kan=False``); level ``ℓ = 1…L`` is a depthwise KA convolution
    (``groups=C``) of kernel ``focal_factor·(ℓ−1) + focal_window``, followed by its family's own norm and activation
    (plus ``focal_activation``). The channel-major basis layout makes the depthwise convolutions exact: output
    channel ``c`` depends on input channel ``c`` only (torch-conv-kan's v2 Gram layer mixed channels and degrees).

    Args:
        channels: input and output channels ``C``.
        ndim: number of spatial dimensions (fixed by the ``…1d/2d/3d`` classes; inferred when ``family`` is a
            callable).
        family: a registered family name or a conv factory (see :data:`ConvFactory`) for ``f``, ``h``, ``proj``.
        focal_family: family of the depthwise focal convolutions (default: ``family``).
        focal_level: number of focal levels ``L``.
        focal_window: kernel of the first level (odd).
        focal_factor: kernel growth per level (even, so every kernel is odd and keeps the size).
        normalize_modulator: divide the aggregated context by ``L + 1``.
        post_norm: norm of the modulated features before ``proj`` (FocalNet's ``use_postln_in_modulation``;
            ``"layer"`` is a LayerNorm over channels; ``None``: none), built with ``post_norm_kwargs``.
        full_kan: KA convolutions for ``f`` and ``h`` too (otherwise plain 1×1 convolutions with bias).
        global_context: ``"focalnet"`` (GELU of the spatial mean of the last level, as FocalNet) or
            ``"reference"`` (spatial mean of the gated sum of the levels, no activation, as torch-conv-kan).
        focal_activation: extra activation after each focal convolution (FocalNet's GELU after a plain depthwise
            conv; KA convolutions already end in their family's activation, hence ``None``). One module serves
            every level, so a learnable one (``"prelu"``) is shared.
        **family_kwargs: passed to every KA convolution (``degree=``, ``norm_layer=``, ``dropout=`` …).

    Examples:
        >>> fm = KAFocalModulation2d(8, focal_level=2, degree=3)
        >>> fm(torch.randn(2, 8, 9, 7)).shape
        torch.Size([2, 8, 9, 7])
    """

    _ndim: ClassVar[int | None] = None

    def __init__(
        self,
        channels: int,
        *,
        ndim: int | None = None,
        family: str | ConvFactory = "kagn",
        focal_family: str | ConvFactory | None = None,
        focal_level: int = 2,
        focal_window: int = 3,
        focal_factor: int = 2,
        normalize_modulator: bool = True,
        post_norm: NormLayer = "layer",
        post_norm_kwargs: Mapping[str, Any] | None = None,
        full_kan: bool = True,
        global_context: GlobalContext = "focalnet",
        focal_activation: ActLayer = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **family_kwargs: Any,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.channels = check_positive("channels", channels)
        self.focal_level = check_positive("focal_level", focal_level)
        self.focal_window = check_positive("focal_window", focal_window)
        if isinstance(focal_factor, bool) or not isinstance(focal_factor, int) or focal_factor < 0:
            raise ValueError(f"focal_factor must be a non-negative integer, got {focal_factor!r}")
        self.focal_factor = focal_factor
        self.kernel_sizes = [focal_factor * level + focal_window for level in range(focal_level)]
        if any(k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(
                f"focal kernels focal_factor·l + focal_window must all be odd to keep the spatial size, got "
                f"{self.kernel_sizes} (focal_window={focal_window}, focal_factor={focal_factor})"
            )
        if global_context not in _GLOBAL_CONTEXTS:
            raise ValueError(f"global_context must be one of {_GLOBAL_CONTEXTS}, got {global_context!r}")
        self.global_context = global_context
        self.normalize_modulator = bool(normalize_modulator)
        self.full_kan = bool(full_kan)

        ndim = _resolve_ndim(self._ndim, ndim, family, type(self).__name__)
        build = _ConvBuilder(family, ndim, family_kwargs, device, dtype)
        self.proj = build(channels, channels, 1, padding=0)
        self.ndim = build.resolved_ndim()
        if self.full_kan:
            self.f = build(channels, 2 * channels + focal_level + 1, 1, padding=0)
            self.h = build(channels, channels, 1, padding=0)
        else:
            conv = rank(self.ndim).conv
            self.f = conv(channels, 2 * channels + focal_level + 1, 1, **factory)
            self.h = conv(channels, channels, 1, **factory)
        focal_build = build
        if focal_family is not None:
            focal_build = _ConvBuilder(focal_family, self.ndim, family_kwargs, device, dtype)
        self.focal_layers = nn.ModuleList(
            focal_build(channels, channels, k, padding=k // 2, groups=channels) for k in self.kernel_sizes
        )
        self.focal_act = place(create_activation(focal_activation, name="focal_activation"), device, dtype)
        self.global_act = nn.GELU() if global_context == "focalnet" else nn.Identity()
        norm = create_norm(post_norm, channels, self.ndim, **dict(post_norm_kwargs or {}))
        self.post_norm = place(norm, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.channels, self.ndim)
        c, levels = self.channels, self.focal_level
        space = tuple(range(2, x.dim()))
        q, ctx, gates = torch.split(self.f(x), [c, c, levels + 1], dim=1)
        ctx_all = torch.zeros_like(ctx)
        for level, layer in enumerate(self.focal_layers):  # levels are sequential: each widens the last
            ctx = self.focal_act(layer(ctx))
            ctx_all = ctx_all + ctx * gates[:, level : level + 1]
        source = ctx if self.global_context == "focalnet" else ctx_all
        ctx_global = self.global_act(source.mean(space, keepdim=True))
        ctx_all = ctx_all + ctx_global * gates[:, levels:]
        if self.normalize_modulator:
            ctx_all = ctx_all / (levels + 1)
        return self.proj(self.post_norm(q * self.h(ctx_all)))

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, ndim={self.ndim}, focal_level={self.focal_level}, kernel_sizes={self.kernel_sizes}, "
            f"global_context={self.global_context!r}, normalize_modulator={self.normalize_modulator}"
        )


class KAFocalModulation1d(KAFocalModulationNd):
    """:class:`KAFocalModulationNd` over one spatial dimension, input ``(B, C, L)``."""

    _ndim = 1


class KAFocalModulation2d(KAFocalModulationNd):
    """:class:`KAFocalModulationNd` over two spatial dimensions, input ``(B, C, H, W)``."""

    _ndim = 2


class KAFocalModulation3d(KAFocalModulationNd):
    """:class:`KAFocalModulationNd` over three spatial dimensions, input ``(B, C, D, H, W)``."""

    _ndim = 3
