"""Three-term recurrences ``P_n = (α_n t + β_n) P_{n-1} - γ_n P_{n-2}`` in the fused pass (``P_0 = 1``, ``P_{-1} = 0``).

Legendre, Chebyshev, Hermite, Jacobi and Gram are all this recurrence with their own coefficient table; Gram's
``γ_n`` are learnable and its functions pass through SiLU. The table ``(D + 1, 3)`` (row ``n`` = ``α_n, β_n, γ_n``;
row 0 unused) is the basis tensor ``p`` of the kernels; ``ORDER`` carries two flags: ``POST_SILU`` and ``GRAD_GAMMA``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..kernels.triton_lang import jit, tl
from ._base import DegreeBasis

__all__ = [
    "GRAD_GAMMA",
    "POST_SILU",
    "RecurrenceBasis",
    "recurrence_backward",
    "recurrence_backward_torch",
    "recurrence_forward",
    "recurrence_values",
]

POST_SILU = 1
GRAD_GAMMA = 2


# ----------------------------------------------------------------------------------------------- Triton (device)
@jit
def _silu_grad(v):
    sig = tl.sigmoid(v)
    return sig * (1.0 + v * (1.0 - sig))


@jit
def recurrence_forward(t, out, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, K: tl.constexpr, ORDER: tl.constexpr):
    dtype = out.dtype.element_ty
    prev = tl.zeros(t.shape, tl.float32)
    cur = tl.full(t.shape, 1.0, tl.float32)
    for n in tl.static_range(K):
        if n > 0:
            nxt = (tl.load(p_ptr + 3 * n) * t + tl.load(p_ptr + 3 * n + 1)) * cur - tl.load(p_ptr + 3 * n + 2) * prev
            prev = cur
            cur = nxt
        if ORDER % 2 == 1:
            tl.store(out + n * S, (cur * tl.sigmoid(cur)).to(dtype), mask=mask)
        else:
            tl.store(out + n * S, cur.to(dtype), mask=mask)


@jit
def recurrence_backward(t, g, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, pg, K: tl.constexpr, ORDER: tl.constexpr):
    # dL/dt by forward mode: P'_n = α_n P_{n-1} + (α_n t + β_n) P'_{n-1} - γ_n P'_{n-2}.
    dt = tl.zeros(t.shape, tl.float32)
    prev = tl.zeros(t.shape, tl.float32)
    cur = tl.full(t.shape, 1.0, tl.float32)
    dprev = tl.zeros(t.shape, tl.float32)
    dcur = tl.zeros(t.shape, tl.float32)
    for n in tl.static_range(1, K):
        a = tl.load(p_ptr + 3 * n)
        c = tl.load(p_ptr + 3 * n + 2)
        step = a * t + tl.load(p_ptr + 3 * n + 1)
        nxt = step * cur - c * prev
        dnxt = a * cur + step * dcur - c * dprev
        prev = cur
        cur = nxt
        dprev = dcur
        dcur = dnxt
        gn = tl.load(g + n * S, mask=mask, other=0.0).to(tl.float32)
        if ORDER % 2 == 1:
            gn = gn * _silu_grad(cur)
        dt += gn * dcur
    if ORDER // 2 == 1:
        # dL/dγ_j by forward mode too: ∂P_n/∂γ_j is 0 below n = j, -P_{j-2} at n = j, then the same recurrence.
        for j in tl.static_range(K):
            acc = tl.zeros(t.shape, tl.float32)
            if j >= 2:
                prev = tl.zeros(t.shape, tl.float32)
                cur = tl.full(t.shape, 1.0, tl.float32)
                qprev = tl.zeros(t.shape, tl.float32)
                qcur = tl.zeros(t.shape, tl.float32)
                for n in tl.static_range(1, K):
                    c = tl.load(p_ptr + 3 * n + 2)
                    step = tl.load(p_ptr + 3 * n) * t + tl.load(p_ptr + 3 * n + 1)
                    nxt = step * cur - c * prev
                    if n >= j:
                        qnxt = step * qcur - c * qprev
                        if n == j:
                            qnxt = qnxt - prev
                        gn = tl.load(g + n * S, mask=mask, other=0.0).to(tl.float32)
                        if ORDER % 2 == 1:
                            gn = gn * _silu_grad(nxt)
                        acc += gn * qnxt
                        qprev = qcur
                        qcur = qnxt
                    prev = cur
                    cur = nxt
            tl.store(pg + j, tl.sum(tl.where(mask, acc, 0.0), axis=0))
    return dt


# --------------------------------------------------------------------------------------------- PyTorch (any device)
def _rows(table: Tensor | list[tuple[float, float, float]], n: int) -> tuple[Any, Any, Any]:
    row = table[n]
    return row[0], row[1], row[2]


def recurrence_values(
    t: Tensor, count: int, table: Tensor | list[tuple[float, float, float]], post_silu: bool
) -> list[Tensor]:
    """``P_0 … P_{count-1}`` of ``t`` (through SiLU with ``post_silu``).

    ``table`` is a list of Python-float rows when the coefficients are constants (no device reads), else a tensor.
    """
    values = [torch.ones_like(t)]
    for n in range(1, count):
        a, b, c = _rows(table, n)
        values.append((t * a + b) * values[n - 1] - c * values[n - 2] if n > 1 else t * a + b)
    return [F.silu(v) for v in values] if post_silu else values


def recurrence_backward_torch(
    t: Tensor, grad: Tensor, table: Tensor | list[tuple[float, float, float]], post_silu: bool, grad_gamma: bool
) -> tuple[Tensor, Tensor | None]:
    """``(dL/dt, dL/dtable)`` by reverse mode through the recurrence (``dL/dtable`` only when ``grad_gamma``)."""
    k = grad.shape[2]
    values: list[Tensor] = [torch.ones_like(t)]
    steps: list[Any] = [None]
    for n in range(1, k):
        a, b, c = _rows(table, n)
        step = t * a + b
        steps.append(step)
        values.append(step * values[n - 1] - c * values[n - 2] if n > 1 else step)
    # Adjoints a_n = dL/dP_n (through the later steps): a_n = G_n + step_{n+1} a_{n+1} - γ_{n+2} a_{n+2}.
    dt = torch.zeros_like(t)
    dgamma: list[Tensor] = [t.new_zeros(()) for _ in range(k)]
    nxt: Tensor | None = None
    nxt2: Tensor | None = None
    for n in range(k - 1, 0, -1):
        adj = grad[:, :, n]
        if post_silu:
            sig = torch.sigmoid(values[n])
            adj = adj * sig * (1 + values[n] * (1 - sig))
        if nxt is not None:
            adj = adj + steps[n + 1] * nxt
        if nxt2 is not None:
            adj = adj - _rows(table, n + 2)[2] * nxt2
        dt = dt + adj * values[n - 1] * _rows(table, n)[0]
        if grad_gamma and n >= 2:
            dgamma[n] = -(adj * values[n - 2]).sum()
        nxt, nxt2 = adj, nxt
    if not grad_gamma:
        return dt, None
    gamma = torch.stack(dgamma)
    dtable = torch.stack([torch.zeros_like(gamma), torch.zeros_like(gamma), gamma], dim=1)
    return dt, dtable


class RecurrenceBasis(DegreeBasis):
    """A polynomial basis given by a three-term recurrence with constant coefficients (see the module docstring).

    Subclasses implement :meth:`coefficients`; ``evaluate`` stays the family's own (the reference formula), the
    fused pass runs the shared recurrence kernels on the coefficient table.
    """

    triton_forward = recurrence_forward
    triton_backward = recurrence_backward

    def __init__(
        self, degree: int = 3, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__(degree)
        self._rows = [(0.0, 0.0, 0.0)] + [self.coefficients(n) for n in range(1, self.degree + 1)]

    def coefficients(self, n: int) -> tuple[float, float, float]:
        """``(α_n, β_n, γ_n)`` of ``P_n = (α_n t + β_n) P_{n-1} - γ_n P_{n-2}`` for ``n >= 1``."""
        raise NotImplementedError

    def fused_tensors(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return self.constant_table("recurrence", self._rows, x.device, torch.float32), None

    def fused_key(self) -> tuple[object, ...] | None:
        return tuple(self._rows)

    def fused_values(self, t: Tensor, p: Tensor | None, q: Tensor | None) -> Tensor | list[Tensor]:
        return recurrence_values(t, self.num_functions, self._rows, post_silu=False)

    def fused_backward(
        self, t: Tensor, grad: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        dt, _ = recurrence_backward_torch(t, grad, self._rows, post_silu=False, grad_gamma=False)
        return dt, None, None
