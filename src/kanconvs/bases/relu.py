"""ReLU-KAN bumps with trainable phases (ReLUKAN)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..kernels.triton_lang import jit, tl
from ._base import Basis, broadcast_to_input, check_positive_int, register_basis

__all__ = ["ReLUBasis"]


@jit
def relu_forward(t, out, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, K: tl.constexpr, ORDER: tl.constexpr):
    # p_ptr/q_ptr: phases a, b of shape (channels, K); s0 = r.
    for j in tl.static_range(K):
        low = tl.maximum(t - tl.load(p_ptr + pc * K + j), 0.0)
        high = tl.maximum(tl.load(q_ptr + pc * K + j) - t, 0.0)
        v = s0 * low * high
        tl.store(out + j * S, (v * v).to(out.dtype.element_ty), mask=mask)


@jit
def relu_backward(t, g, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, pg, K: tl.constexpr, ORDER: tl.constexpr):
    # R = v², v = r·relu(t - a)·relu(b - t): dR/dt = 2vr(relu(b - t) - relu(t - a)), dR/da = -2vr·relu(b - t),
    # dR/db = 2vr·relu(t - a) (v = 0 wherever a ReLU is off, so no indicator is needed).
    dt = tl.zeros(t.shape, tl.float32)
    for j in tl.static_range(K):
        low = tl.maximum(t - tl.load(p_ptr + pc * K + j), 0.0)
        high = tl.maximum(tl.load(q_ptr + pc * K + j) - t, 0.0)
        gj = tl.load(g + j * S, mask=mask, other=0.0).to(tl.float32)
        w = gj * 2.0 * s0 * s0 * low * high  # g · 2vr
        dt += w * (high - low)
        tl.store(pg + j, -tl.sum(tl.where(mask, w * high, 0.0), axis=0))
        tl.store(pg + K + j, tl.sum(tl.where(mask, w * low, 0.0), axis=0))
    return dt


@register_basis("relu")
class ReLUBasis(Basis):
    """``R_j(x) = (r · relu(x - a_j) · relu(b_j - x))^2`` with ``r = 4 g^2 / (k + 1)^2``.

    Phases start at ``a_j = (j - k) / g`` and ``b_j = a_j + (k + 1) / g`` for ``j = 0 … g + k - 1`` (each bump peaks
    at 1), one row per channel of a group; a layer with several groups shares them across groups, as the reference
    does. They are real tensors (the reference's stride-0 views break optimisers and ``load_state_dict`` on CPU).
    """

    per_channel = True
    triton_forward = relu_forward
    triton_backward = relu_backward

    def __init__(
        self,
        channels: int,
        grid_size: int = 5,
        order: int = 3,
        train_phases: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        if not isinstance(train_phases, bool):
            raise TypeError(f"train_phases must be a bool, got {train_phases!r}")
        self.channels = check_positive_int("channels", channels)
        self.grid_size = check_positive_int("grid_size", grid_size)
        self.order = check_positive_int("order", order)
        self.num_functions = grid_size + order
        self.num_partials = 2 * self.num_functions  # type: ignore[misc]
        self.scale = 4.0 * grid_size**2 / (order + 1) ** 2
        self.phase_low = nn.Parameter(torch.empty(channels, self.num_functions, **factory), requires_grad=train_phases)
        self.phase_high = nn.Parameter(torch.empty(channels, self.num_functions, **factory), requires_grad=train_phases)
        self.reset_parameters()

    def reset_parameters(self, fan_in: int = 1) -> None:
        low = (torch.arange(self.num_functions, dtype=torch.float64) - self.order) / self.grid_size
        with torch.no_grad():
            self.phase_low.copy_(low.expand_as(self.phase_low))
            self.phase_high.copy_((low + (self.order + 1) / self.grid_size).expand_as(self.phase_high))

    def evaluate(self, x: Tensor) -> Tensor:
        repeats = x.shape[1] // self.channels  # groups share the phases
        low = broadcast_to_input(self.phase_low.to(x.dtype).repeat(repeats, 1), x)
        high = broadcast_to_input(self.phase_high.to(x.dtype).repeat(repeats, 1), x)
        x = x.unsqueeze(2)
        return (self.scale * torch.relu(x - low) * torch.relu(high - x)) ** 2

    def extra_repr(self) -> str:
        return f"channels={self.channels}, grid_size={self.grid_size}, order={self.order}"

    # ---------------------------------------------------------------------------------------- fused pass
    def fused_tensors(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return self.phase_low, self.phase_high

    def fused_scalars(self) -> tuple[float, float, float, int]:
        return self.scale, 0.0, 0.0, 0

    def fused_channels(self) -> int:
        return self.channels

    def fused_key(self) -> tuple[object, ...] | None:
        return (self.channels, self.num_functions, self.scale)

    def _ramps(self, t: Tensor, p: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
        """``relu(t - a)`` and ``relu(b - t)`` as ``(B, g, c, K, *S)`` (groups share the phases)."""
        b, c = t.shape[:2]
        spatial = (1,) * (t.dim() - 2)
        tg = t.reshape(b, c // self.channels, self.channels, 1, *t.shape[2:])
        low = torch.relu(tg - p.to(t.dtype).view(self.channels, -1, *spatial))
        high = torch.relu(q.to(t.dtype).view(self.channels, -1, *spatial) - tg)
        return low, high

    def fused_values(self, t: Tensor, p: Tensor | None, q: Tensor | None) -> Tensor | list[Tensor]:
        assert p is not None and q is not None
        low, high = self._ramps(t, p, q)
        return (low * high * self.scale).square().flatten(1, 2)  # (B, C, K, *S)

    def fused_backward(
        self, t: Tensor, grad: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        assert p is not None and q is not None
        low, high = self._ramps(t, p, q)
        w = grad.reshape(low.shape) * low * high * (2.0 * self.scale * self.scale)  # g · 2vr
        dt = (w * (high - low)).sum(3).reshape(t.shape)
        reduce = (0, 1, *range(4, w.dim()))
        dp = -(w * high).sum(reduce).to(p.dtype) if p.requires_grad else None
        dq = (w * low).sum(reduce).to(q.dtype) if q.requires_grad else None
        return dt, dp, dq

    def reduce_partials(
        self, partials: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        assert p is not None and q is not None
        b, c, nblk, _ = partials.shape
        k = self.num_functions
        sums = partials.view(b, c // self.channels, self.channels, nblk, 2, k).sum(dim=(0, 1, 3))  # (c, 2, K)
        return (
            sums[:, 0].to(p.dtype) if p.requires_grad else None,
            sums[:, 1].to(q.dtype) if q.requires_grad else None,
        )
