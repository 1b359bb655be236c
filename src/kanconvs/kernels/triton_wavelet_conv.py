"""WavKAN's wavelet branch as Triton kernels that never write a wavelet map (implicit GEMM).

``z[b, o, p] = Σ_i Σ_κ w[o, i, κ] · win[i] · ψ((x[b, i, p·stride - pad + κ·dil] - t[o, i]) / s[o, i])``, zero where
the tap falls in the padding. A program owns ``BLOCK_O`` output channels of one group and ``BLOCK_P`` output
positions of one sample; it loops over the group's input channels and the kernel taps, evaluates ψ for its tile in
registers and accumulates — the ``(B, C_out, C_in/g, *S)`` maps of the reference exist nowhere. The backward
re-evaluates ψ and ψ' the same way and accumulates ``dw``, ``ds``, ``dt`` (per program, then atomically) and ``dx``
(atomically, at the taps' input positions). 1-D and 2-D inputs run as 3-D with unit leading sizes.

ψ is evaluated once per tap, so the kernels do ``k^d`` times the wavelet evaluations of the map-based formulation in
exchange for no memory traffic beyond ``x`` and ``z``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .triton_lang import jit, tl, triton

__all__ = ["triton_wavelet_conv"]


@jit
def _safe(s):
    small = tl.abs(s) < 1e-4
    return tl.where(small, tl.where(s < 0.0, -1e-4, 1e-4), s), small


@jit
def _pair(t_ptr, s_ptr, win_ptr, row, o_mask, c_in, i):
    """Translations, 1 / (floored scales), which scales were floored, and the window of input ``i``."""
    t = tl.load(t_ptr + row * c_in + i, mask=o_mask, other=0.0).to(tl.float32)
    s, floored = _safe(tl.load(s_ptr + row * c_in + i, mask=o_mask, other=1.0).to(tl.float32))
    return t, 1.0 / s, floored, tl.load(win_ptr + i).to(tl.float32)


@jit
def _tile(C_OUT, c_out, DO, HO, WO, BLOCK_O: tl.constexpr, BLOCK_P: tl.constexpr):
    """The program's sample, group, output channels (in the group) and output positions, with their masks."""
    pid = tl.program_id(0).to(tl.int64)
    groups = C_OUT // c_out
    o = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    p = tl.program_id(2) * BLOCK_P + tl.arange(0, BLOCK_P)
    return pid // groups, pid % groups, o, p, o < c_out, p < DO * HO * WO, p // (HO * WO), (p // WO) % HO, p % WO


@jit
def _tap(od, oh, ow, p_mask, kd, kh, kw, D, H, W, sd, sh, sw, pd, ph, pw, dd, dh, dw):
    """Offset of kernel tap ``(kd, kh, kw)`` of each output position in its input map, and whether it is inside."""
    idd = od * sd - pd + kd * dd
    ih = oh * sh - ph + kh * dh
    iw = ow * sw - pw + kw * dw
    valid = p_mask & (idd >= 0) & (idd < D) & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
    return (idd * H + ih) * W + iw, valid


@jit
def _wavkan_fwd_kernel(
    x_ptr, s_ptr, t_ptr, w_ptr, win_ptr, z_ptr,
    C_IN, C_OUT, c_in, c_out,
    D, H, W, DO, HO, WO,
    sd, sh, sw, pd, ph, pw, dd, dh, dw,
    WAVELET: tl.constexpr, KD: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
    BLOCK_O: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    b, grp, o, p, o_mask, p_mask, od, oh, ow = _tile(C_OUT, c_out, DO, HO, WO, BLOCK_O, BLOCK_P)
    row = grp * c_out + o  # global output channels
    acc = tl.zeros([BLOCK_O, BLOCK_P], dtype=tl.float32)
    for i in range(c_in):
        t, inv, _, win = _pair(t_ptr, s_ptr, win_ptr, row, o_mask, c_in, i)
        x_base = x_ptr + (b * C_IN + grp * c_in + i) * D * H * W
        for kd in tl.static_range(KD):
            for kh in tl.static_range(KH):
                for kw in tl.static_range(KW):
                    offset, valid = _tap(od, oh, ow, p_mask, kd, kh, kw, D, H, W, sd, sh, sw, pd, ph, pw, dd, dh, dw)
                    xv = tl.load(x_base + offset, mask=valid, other=0.0).to(tl.float32)
                    u = (xv[None, :] - t[:, None]) * inv[:, None]
                    psi, _ = WAVELET(u)
                    psi = tl.where(valid[None, :], psi * win, 0.0)
                    k = (kd * KH + kh) * KW + kw
                    wv = tl.load(w_ptr + (row * c_in + i) * (KD * KH * KW) + k, mask=o_mask, other=0.0)
                    acc += wv.to(tl.float32)[:, None] * psi
    out = z_ptr + (b * C_OUT + row[:, None]) * (DO * HO * WO) + p[None, :]
    tl.store(out, acc.to(z_ptr.dtype.element_ty), mask=o_mask[:, None] & p_mask[None, :])


@jit
def _wavkan_bwd_kernel(
    x_ptr, s_ptr, t_ptr, w_ptr, win_ptr, gz_ptr,
    dx_ptr, ds_ptr, dt_ptr, dw_ptr,
    C_IN, C_OUT, c_in, c_out,
    D, H, W, DO, HO, WO,
    sd, sh, sw, pd, ph, pw, dd, dh, dw,
    WAVELET: tl.constexpr, KD: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
    BLOCK_O: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    b, grp, o, p, o_mask, p_mask, od, oh, ow = _tile(C_OUT, c_out, DO, HO, WO, BLOCK_O, BLOCK_P)
    row = grp * c_out + o
    tile = o_mask[:, None] & p_mask[None, :]
    gz = tl.load(gz_ptr + (b * C_OUT + row[:, None]) * (DO * HO * WO) + p[None, :], mask=tile, other=0.0)
    gz = gz.to(tl.float32)
    for i in range(c_in):
        t, inv, floored, win = _pair(t_ptr, s_ptr, win_ptr, row, o_mask, c_in, i)
        x_base = x_ptr + (b * C_IN + grp * c_in + i) * D * H * W
        dx_base = dx_ptr + (b * C_IN + grp * c_in + i) * D * H * W
        dt_acc = tl.zeros([BLOCK_O], dtype=tl.float32)
        ds_acc = tl.zeros([BLOCK_O], dtype=tl.float32)
        for kd in tl.static_range(KD):
            for kh in tl.static_range(KH):
                for kw in tl.static_range(KW):
                    offset, valid = _tap(od, oh, ow, p_mask, kd, kh, kw, D, H, W, sd, sh, sw, pd, ph, pw, dd, dh, dw)
                    xv = tl.load(x_base + offset, mask=valid, other=0.0).to(tl.float32)
                    u = (xv[None, :] - t[:, None]) * inv[:, None]
                    psi, slope = WAVELET(u)
                    live = o_mask[:, None] & valid[None, :]
                    k = (kd * KH + kh) * KW + kw
                    w_at = w_ptr + (row * c_in + i) * (KD * KH * KW) + k
                    wv = tl.load(w_at, mask=o_mask, other=0.0).to(tl.float32)
                    # dL/dw: Σ_p gz·ψ·win; dL/du: gz·w·win·ψ'(u).
                    tl.atomic_add(dw_ptr + (row * c_in + i) * (KD * KH * KW) + k,
                                  tl.sum(tl.where(live, gz * psi * win, 0.0), axis=1), mask=o_mask)  # fmt: skip
                    du = tl.where(live, gz * (wv * win)[:, None] * slope, 0.0)
                    dt_acc += tl.sum(du, axis=1)
                    ds_acc += tl.sum(du * u, axis=1)
                    tl.atomic_add(dx_base + offset, tl.sum(du * inv[:, None], axis=0), mask=valid)
        # u = (x - t) / s: du/dt = -1/s, du/ds = -u/s (0 where the scale is floored).
        tl.atomic_add(dt_ptr + row * c_in + i, -dt_acc * inv, mask=o_mask)
        tl.atomic_add(ds_ptr + row * c_in + i, tl.where(floored, 0.0, -ds_acc * inv), mask=o_mask)


def _geometry(x: Tensor, weight: Tensor, stride: Any, padding: Any, dilation: Any) -> tuple[Any, ...]:
    """Sizes as 3-D: ``(D, H, W), (Do, Ho, Wo), strides, pads, dilations, kernel``, leading ones for 1-D/2-D."""
    nd = x.dim() - 2
    lead = (1,) * (3 - nd)
    spatial, kernel = (*lead, *x.shape[2:]), (*lead, *weight.shape[2:])
    stride, dilation = (*lead, *stride), (*lead, *dilation)
    padding = (0,) * 3 if padding == "valid" else (*(0,) * (3 - nd), *padding)
    out = tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, p, d, k, s in zip(spatial, padding, dilation, kernel, stride, strict=True)
    )
    return spatial, out, stride, padding, dilation, kernel


_BLOCK_O, _BLOCK_P = 16, 64


class _TritonWaveletConv(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, scale: Tensor, translation: Tensor, weight: Tensor, window: Tensor, config: tuple[Any, ...]
    ) -> Tensor:
        wavelet, stride, padding, dilation, groups = config
        x, scale, translation, weight = (v.contiguous() for v in (x, scale, translation, weight))
        window = window.float().contiguous()
        spatial, out, st, pad, dil, kernel = _geometry(x, weight, stride, padding, dilation)
        b, c_all_in, c_all_out = x.shape[0], x.shape[1], weight.shape[0]
        z = x.new_empty((b, c_all_out, *out[3 - (x.dim() - 2) :]))
        if z.numel():
            grid = (b * groups, triton.cdiv(c_all_out // groups, _BLOCK_O), triton.cdiv(z[0, 0].numel(), _BLOCK_P))
            _wavkan_fwd_kernel[grid](
                x, scale, translation, weight, window, z, c_all_in, c_all_out, c_all_in // groups,
                c_all_out // groups, *spatial, *out, *st, *pad, *dil, WAVELET=wavelet, KD=kernel[0], KH=kernel[1],
                KW=kernel[2], BLOCK_O=_BLOCK_O, BLOCK_P=_BLOCK_P,
            )  # fmt: skip
        ctx.save_for_backward(x, scale, translation, weight, window)
        ctx.config = config
        return z

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, scale, translation, weight, window = ctx.saved_tensors
        wavelet, stride, padding, dilation, groups = ctx.config
        spatial, out, st, pad, dil, kernel = _geometry(x, weight, stride, padding, dilation)
        b, c_all_in, c_all_out = x.shape[0], x.shape[1], weight.shape[0]
        grads = [torch.zeros(v.shape, device=v.device, dtype=torch.float32) for v in (x, scale, translation, weight)]
        if grad.numel():
            grid = (b * groups, triton.cdiv(c_all_out // groups, _BLOCK_O), triton.cdiv(grad[0, 0].numel(), _BLOCK_P))
            _wavkan_bwd_kernel[grid](
                x, scale, translation, weight, window, grad.contiguous(), *grads, c_all_in, c_all_out,
                c_all_in // groups, c_all_out // groups, *spatial, *out, *st, *pad, *dil, WAVELET=wavelet,
                KD=kernel[0], KH=kernel[1], KW=kernel[2], BLOCK_O=_BLOCK_O, BLOCK_P=_BLOCK_P,
            )  # fmt: skip
        dx, ds, dt, dw = (g.to(v.dtype) for g, v in zip(grads, (x, scale, translation, weight), strict=True))
        needs = ctx.needs_input_grad
        return (
            dx if needs[0] else None,
            ds if needs[1] else None,
            dt if needs[2] else None,
            dw if needs[3] else None,
            None,
            None,
        )


def triton_wavelet_conv(
    x: Tensor,
    scale: Tensor,
    translation: Tensor,
    weight: Tensor,
    window: Tensor,
    wavelet: Any,
    stride: tuple[int, ...],
    padding: tuple[int, ...] | str,
    dilation: tuple[int, ...],
    groups: int,
) -> Tensor:
    """The wavelet branch ``(B, C_out, *S')`` by the implicit kernels; ``wavelet`` returns ``(ψ(u), ψ'(u))``.

    ``padding="same"`` is resolved by the caller (the layer passes explicit pads).
    """
    out: Tensor = _TritonWaveletConv.apply(
        x, scale, translation, weight, window, (wavelet, stride, padding, dilation, groups)
    )
    return out
