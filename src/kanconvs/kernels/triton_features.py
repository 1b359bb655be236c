"""The Triton skeleton of the fused basis pass: one forward and one backward kernel for every family.

A program handles ``BLOCK`` positions of one ``(sample, channel)`` row of the input ``(B, C, S)``. The forward reads
``x`` once and writes the row's ``F`` feature maps of the channel-major output ``(B, C, F, S)`` (base branch first)
in the convolution's dtype; the arithmetic is fp32. The family's own math comes in as a device function:

``BASIS_FWD(t, out, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, K, ORDER)`` stores the ``K`` functions of the squashed
input ``t`` at ``out + k·S``;

``BASIS_BWD(t, g, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, pg, K, ORDER) -> dt`` reads their gradients at ``g + k·S``,
returns ``dL/dt`` and stores this program's partial sums of the basis-parameter gradients at ``pg[0 … P)``.

``p_ptr``/``q_ptr`` are the basis's tensors (fp32), ``pc`` the row's channel in a per-channel table, ``s0 … s2`` float
and ``ORDER`` integer constants of the family. Each family writes these two functions once, in its basis file.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .triton_lang import HAS_TRITON, jit, tl, triton

__all__ = ["BASE_CODES", "SQUASH_CODES", "launch_backward", "launch_forward"]

#: Pointwise squashes and base activations the kernels evaluate themselves (anything else runs before them).
SQUASH_CODES = {"none": 0, "tanh": 1, "sigmoid": 2}
BASE_CODES = {"none": 0, "identity": 1, "silu": 2, "gelu": 3}


@jit
def _squash(x, SQUASH):
    if SQUASH == 1:
        return 2.0 * tl.sigmoid(2.0 * x) - 1.0  # tanh; no tanh in every Triton's tl.math
    elif SQUASH == 2:
        return tl.sigmoid(x)
    else:
        return x


@jit
def _squash_grad(t, SQUASH):
    if SQUASH == 1:
        return 1.0 - t * t
    elif SQUASH == 2:
        return t * (1.0 - t)
    else:
        return tl.full(t.shape, 1.0, tl.float32)


@jit
def _base(x, BASE):
    if BASE == 2:
        return x * tl.sigmoid(x)
    elif BASE == 3:
        return 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476))
    else:
        return x


@jit
def _base_grad(x, BASE):
    if BASE == 2:
        sig = tl.sigmoid(x)
        return sig * (1.0 + x * (1.0 - sig))
    elif BASE == 3:
        return 0.5 * (1.0 + tl.math.erf(x * 0.7071067811865476)) + x * 0.3989422804014327 * tl.exp(-0.5 * x * x)
    else:
        return tl.full(x.shape, 1.0, tl.float32)


@jit
def _features_fwd_kernel(
    xb_ptr,
    x_ptr,
    out_ptr,
    p_ptr,
    q_ptr,
    s0,
    s1,
    s2,
    S,
    C,
    PC,
    F,
    BASIS: tl.constexpr,
    K: tl.constexpr,
    ORDER: tl.constexpr,
    SQUASH: tl.constexpr,
    BASE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    s = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = s < S
    out = out_ptr + row * F * S + s
    if BASE != 0:
        xb = tl.load(xb_ptr + row * S + s, mask=mask, other=0.0).to(tl.float32)
        tl.store(out, _base(xb, BASE).to(out_ptr.dtype.element_ty), mask=mask)
        out = out + S
    x = tl.load(x_ptr + row * S + s, mask=mask, other=0.0).to(tl.float32)
    t = _squash(x, SQUASH)
    pc = (row % C) % PC
    BASIS(t, out, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, K, ORDER)


@jit
def _features_bwd_kernel(
    xb_ptr,
    x_ptr,
    g_ptr,
    dxb_ptr,
    dx_ptr,
    p_ptr,
    q_ptr,
    pg_ptr,
    s0,
    s1,
    s2,
    S,
    C,
    PC,
    F,
    NBLK,
    P,
    BASIS: tl.constexpr,
    K: tl.constexpr,
    ORDER: tl.constexpr,
    SQUASH: tl.constexpr,
    BASE: tl.constexpr,
    SAME_INPUT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    blk = tl.program_id(1)
    s = blk * BLOCK + tl.arange(0, BLOCK)
    mask = s < S
    g = g_ptr + row * F * S + s
    x = tl.load(x_ptr + row * S + s, mask=mask, other=0.0).to(tl.float32)
    dxb = tl.zeros([BLOCK], dtype=tl.float32)
    if BASE != 0:
        if SAME_INPUT:  # noqa: SIM108 - a compile-time branch, kept explicit for Triton
            xb = x
        else:
            xb = tl.load(xb_ptr + row * S + s, mask=mask, other=0.0).to(tl.float32)
        gb = tl.load(g, mask=mask, other=0.0).to(tl.float32)
        dxb = gb * _base_grad(xb, BASE)
        g = g + S
    t = _squash(x, SQUASH)
    pc = (row % C) % PC
    pg = pg_ptr + (row * NBLK + blk) * P
    dt = BASIS(t, g, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, pg, K, ORDER)
    dx = dt * _squash_grad(t, SQUASH)
    if SAME_INPUT:
        tl.store(dx_ptr + row * S + s, (dx + dxb).to(dx_ptr.dtype.element_ty), mask=mask)
    else:
        tl.store(dx_ptr + row * S + s, dx.to(dx_ptr.dtype.element_ty), mask=mask)
        if BASE != 0:
            tl.store(dxb_ptr + row * S + s, dxb.to(dxb_ptr.dtype.element_ty), mask=mask)


def _block(spatial: int) -> int:
    return max(16, min(1024, triton.next_power_of_2(spatial)))


def _table(t: Tensor | None, like: Tensor) -> Tensor:
    """A basis tensor as the kernels read it (fp32, contiguous); a 1-element dummy when the family has none."""
    if t is None:
        return like.new_zeros(1, dtype=torch.float32)
    return t.detach().to(torch.float32).contiguous()


def launch_forward(
    x_base: Tensor | None,
    x: Tensor,
    out: Tensor,
    functions: Any,
    p: Tensor | None,
    q: Tensor | None,
    scalars: tuple[float, float, float, int],
    per_channel: int,
    squash: str,
    base: str,
) -> Tensor:
    """Fill ``out`` ``(B, C, F, *S)`` with the features of ``x`` ``(B, C, *S)`` (contiguous tensors on one device)."""
    b, c = x.shape[:2]
    spatial = math.prod(x.shape[2:])
    if b * c * spatial == 0:
        return out
    block = _block(spatial)
    grid = (b * c, triton.cdiv(spatial, block))
    s0, s1, s2, order = scalars
    _features_fwd_kernel[grid](
        x if x_base is None else x_base,
        x,
        out,
        _table(p, x),
        _table(q, x),
        s0,
        s1,
        s2,
        spatial,
        c,
        per_channel,
        out.shape[2],
        BASIS=functions,
        K=out.shape[2] - (BASE_CODES[base] != 0),
        ORDER=order,
        SQUASH=SQUASH_CODES[squash],
        BASE=BASE_CODES[base],
        BLOCK=block,
        num_warps=4,
    )
    return out


def launch_backward(
    x_base: Tensor | None,
    x: Tensor,
    grad: Tensor,
    functions: Any,
    p: Tensor | None,
    q: Tensor | None,
    scalars: tuple[float, float, float, int],
    per_channel: int,
    num_partials: int,
    squash: str,
    base: str,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """``(dx, dx_base, partials)``: input gradients and per-program parameter-gradient sums ``(B, C, NBLK, P)``.

    ``dx_base`` is ``None`` when the base branch reads ``x`` itself (its gradient is then already in ``dx``).
    """
    b, c = x.shape[:2]
    spatial = math.prod(x.shape[2:])
    block = _block(max(spatial, 1))
    nblk = triton.cdiv(spatial, block)
    same = x_base is None or x_base is x
    dx = torch.empty_like(x)
    dxb = None if same or base == "none" else torch.empty_like(x)
    partials = x.new_zeros((b, c, nblk, max(num_partials, 1)), dtype=torch.float32)
    if b * c * spatial == 0:
        return dx, dxb, partials
    s0, s1, s2, order = scalars
    _features_bwd_kernel[(b * c, nblk)](
        x if x_base is None else x_base,
        x,
        grad,
        dx if dxb is None else dxb,
        dx,
        _table(p, x),
        _table(q, x),
        partials,
        s0,
        s1,
        s2,
        spatial,
        c,
        per_channel,
        grad.shape[2],
        nblk,
        partials.shape[3],
        BASIS=functions,
        K=grad.shape[2] - (BASE_CODES[base] != 0),
        ORDER=order,
        SQUASH=SQUASH_CODES[squash],
        BASE=BASE_CODES[base],
        SAME_INPUT=same,
        BLOCK=block,
        num_warps=4,
    )
    return dx, dxb, partials


if not HAS_TRITON:  # pragma: no cover

    def _unavailable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the fused basis kernels need Triton, which is not installed")

    launch_forward = _unavailable
    launch_backward = _unavailable
