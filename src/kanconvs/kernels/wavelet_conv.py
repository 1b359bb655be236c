"""WavKAN's wavelet branch in tiles of output channels: never the whole ``(B, C_out, C_in/g, *S)`` wavelet map.

``z_o = Σ_i conv(ψ((x_i - t_oi) / s_oi), w_oi)`` needs one wavelet map per (output, input) pair. Evaluated at once
(the reference, and this library before) that is ``C_out·C_in/g`` maps, 16 GiB for one 64→128 layer at batch 64,
32×32. Here outputs are processed a tile at a time — tile ``k`` holds outputs ``k·T … (k+1)·T - 1`` of every group —
so at most ``B·g·T·(C_in/g)·S`` values exist at once; the backward recomputes each tile's maps (nothing but the layer
input is saved) and differentiates that tile alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor

from ..bases.wavelet import safe_scale
from .cpu_compile import compile_enabled, cpu_compiled
from .features import eager_only, get_backend
from .triton_lang import HAS_TRITON
from .triton_wavelet_conv import triton_wavelet_conv

__all__ = ["DEFAULT_TILE_BYTES", "wavelet_conv"]

#: Default memory for one tile's wavelet maps (fp32 intermediates included).
DEFAULT_TILE_BYTES = 256 * 2**20
_HALF = (torch.float16, torch.bfloat16)


class _Geometry:
    """The convolution's arguments and the group layout, fixed per call."""

    def __init__(
        self,
        conv: Callable[..., Tensor],
        stride: Any,
        padding: Any,
        dilation: Any,
        groups: int,
        wavelet: Callable[[Tensor], Tensor],
        tile: int,
    ) -> None:
        self.conv, self.stride, self.padding, self.dilation = conv, stride, padding, dilation
        self.groups, self.wavelet, self.tile = groups, wavelet, tile


def _tile_maps(
    x: Tensor, scale: Tensor, translation: Tensor, weight: Tensor, window: Tensor, geo: _Geometry, lo: int, hi: int
) -> tuple[Tensor, Tensor | None]:
    """``z`` of outputs ``lo … hi - 1`` of every group: ``(B, g·T, *S')``, and their indices (``None``: all)."""
    b, g = x.shape[0], geo.groups
    c_in, c_out = x.shape[1] // g, scale.shape[0] // g
    spatial, ones = x.shape[2:], (1,) * (x.dim() - 2)
    n = hi - lo
    index = None
    if n != c_out:  # rows of every group's outputs lo … hi - 1: (g·T,)
        index = (
            torch.arange(g, device=x.device).unsqueeze(1) * c_out + torch.arange(lo, hi, device=x.device)
        ).flatten()
        scale, translation, weight = scale[index], translation[index], weight[index]
    xg = x.view(b, g, 1, c_in, *spatial)
    t = translation.view(1, g, n, c_in, *ones)
    s = scale.view(1, g, n, c_in, *ones)
    psi = _maps(geo.wavelet, x.device.type)(xg, t, s, window.view(c_in, *ones))
    psi = psi.reshape(b, g * n * c_in, *spatial)  # output-major: groups=g·T convolves c_in → 1
    weight = weight.to(x.dtype)
    conv_args = (None, geo.stride, geo.padding, geo.dilation)
    if x.device.type == "cpu" and not eager_only():
        # oneDNN's grouped convolution with one output channel per group is 2x slower than one plain
        # convolution per output channel (measured; see reports/vs-reference-cpu.md).
        z = torch.cat(
            [geo.conv(p, w, *conv_args, 1) for p, w in zip(psi.split(c_in, 1), weight.split(1), strict=True)], 1
        )
    else:
        z = geo.conv(psi, weight, *conv_args, g * n)
    return z, index


def _wavelet_maps(wavelet: Callable[[Tensor], Tensor], x: Tensor, t: Tensor, s: Tensor, window: Tensor) -> Tensor:
    """``ψ((x - t) / s) · window`` in ``x``'s dtype, evaluated in fp32 for 16-bit ``x``.

    In 16 bits u² overflows for large inputs and inf·0 gives NaN.
    """
    compute = torch.float32 if x.dtype in _HALF else x.dtype
    u = (x.to(compute) - t.to(compute)) / safe_scale(s).to(compute)
    return (wavelet(u) * window.to(compute)).to(x.dtype)


def _maps(wavelet: Callable[[Tensor], Tensor], device: str) -> Callable[..., Tensor]:
    """The map function for ``wavelet``: compiled on CPU (one fused loop per direction instead of ~8 passes over the
    largest tensor of the layer, see :mod:`.cpu_compile`), plain elsewhere and under compilers and exporters."""

    def maps(x: Tensor, t: Tensor, s: Tensor, window: Tensor) -> Tensor:
        return _wavelet_maps(wavelet, x, t, s, window)

    if device != "cpu" or eager_only() or not compile_enabled():
        return maps
    return cpu_compiled(("wavelet_maps", wavelet), maps)


def _tiles(c_out: int, tile: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + tile, c_out)) for lo in range(0, c_out, tile)]


class _TiledWaveletConv(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, scale: Tensor, translation: Tensor, weight: Tensor, window: Tensor, geo: _Geometry
    ) -> Tensor:
        c_out = scale.shape[0] // geo.groups
        parts = [_tile_maps(x, scale, translation, weight, window, geo, lo, hi) for lo, hi in _tiles(c_out, geo.tile)]
        ctx.save_for_backward(x, scale, translation, weight, window)
        ctx.geo = geo
        return _assemble(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, scale, translation, weight, window = ctx.saved_tensors
        geo: _Geometry = ctx.geo
        inputs = (x, scale, translation, weight)
        needs = ctx.needs_input_grad[:4]
        # create_graph=True (a gradient penalty): the recomputed tiles are differentiated from the saved tensors
        # themselves, with a graph, so that the gradient can be differentiated again.
        double = torch.is_grad_enabled()
        leaves = list(inputs) if double else [v.detach().requires_grad_(n) for v, n in zip(inputs, needs, strict=True)]
        wanted = [v for v, n in zip(leaves, needs, strict=True) if n]
        totals: list[Tensor | None] = [None] * len(wanted)
        c_out = scale.shape[0] // geo.groups
        for lo, hi in _tiles(c_out, geo.tile):
            with torch.enable_grad():
                z, index = _tile_maps(leaves[0], leaves[1], leaves[2], leaves[3], window, geo, lo, hi)
            g = grad if index is None else grad.index_select(1, index)
            for i, d in enumerate(torch.autograd.grad(z, wanted, g, allow_unused=True, create_graph=double)):
                if d is not None:
                    prev = totals[i]
                    totals[i] = d if prev is None else prev + d
        found = iter(totals)
        return (*(next(found) if n else None for n in needs), None, None)


def _assemble(parts: list[tuple[Tensor, Tensor | None]]) -> Tensor:
    """The tiles' outputs ``(B, g·T, *S')`` put back in channel order ``(B, C_out, *S')`` (functional: exportable)."""
    if len(parts) == 1:
        return parts[0][0]
    index = torch.cat([cast(Tensor, i) for _, i in parts])
    return torch.cat([p for p, _ in parts], dim=1).index_select(1, torch.argsort(index))


def wavelet_conv(
    x: Tensor,
    scale: Tensor,
    translation: Tensor,
    weight: Tensor,
    window: Tensor,
    wavelet: Callable[[Tensor], Tensor],
    conv: Callable[..., Tensor],
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: int,
    tile_bytes: int = DEFAULT_TILE_BYTES,
    recompute: bool = True,
    triton_wavelet: Any | None = None,
) -> Tensor:
    """The wavelet branch ``(B, C_out, *S')`` of WavKAN: Triton's implicit kernels on CUDA, else tile by tile.

    Args:
        x: ``(B, C_in, *S)``. scale, translation: ``(C_out, C_in/g)``. weight: ``(C_out, C_in/g, *k)``.
        window: ``(C_in/g,)`` weights of the input channels (Shannon's Hamming window; ones otherwise).
        wavelet: the mother wavelet ψ. conv: ``F.convNd``. stride, padding, dilation, groups: the layer's.
        tile_bytes: memory for one tile's maps; the tile holds as many outputs per group as fit (at least one).
        recompute: in training, recompute the maps in the backward pass (saving only the inputs) instead of
            storing every tile's autograd graph.
        triton_wavelet: the wavelet's Triton ``(ψ, ψ')`` function (:data:`kanconvs.bases.wavelet.TRITON_WAVELETS`);
            with it, CUDA inputs (or any under ``use_backend("triton")``) run
            :func:`~kanconvs.kernels.triton_wavelet_conv.triton_wavelet_conv`, which writes no map at all.
    """
    backend = get_backend()
    use_triton = backend == "triton" or (backend == "auto" and x.is_cuda)
    if use_triton and triton_wavelet is not None and HAS_TRITON and not isinstance(padding, str) and not eager_only():
        return triton_wavelet_conv(
            x, scale, translation, weight, window, triton_wavelet, stride, padding, dilation, groups
        )
    b, g = x.shape[0], groups
    c_in, c_out = x.shape[1] // g, scale.shape[0] // g
    per_output = 4 * max(b, 1) * g * c_in * max(math.prod(x.shape[2:]), 1) * 3  # ψ, u and a temporary, fp32
    tile = max(1, min(c_out, tile_bytes // per_output))
    geo = _Geometry(conv, stride, padding, dilation, groups, wavelet, tile)
    grad_needed = torch.is_grad_enabled() and any(v.requires_grad for v in (x, scale, translation, weight))
    if recompute and grad_needed and not eager_only():  # compilers and exporters trace the plain tiles
        out: Tensor = _TiledWaveletConv.apply(x, scale, translation, weight, window, geo)
        return out
    return _assemble([_tile_maps(x, scale, translation, weight, window, geo, lo, hi) for lo, hi in _tiles(c_out, tile)])
