"""The fused basis pass: squash + basis (+ base branch) as one autograd node, forward and backward.

The forward writes the channel-major features ``(B, C·F, *S)`` once, in the dtype the convolution runs in, and saves
only its inputs. The backward recomputes from them and returns the input gradient and the gradients of the basis's
own tensors (Gram β, ReLU-KAN phases, …) without any stored intermediate. On CUDA (or anywhere under
``use_backend("triton")``, e.g. with ``TRITON_INTERPRET=1`` on the CPU) both directions are one Triton kernel each;
on CPU the basis's PyTorch implementation runs compiled by inductor (:mod:`.cpu_compile`), elsewhere eagerly.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import triton_features
from .cpu_compile import compile_enabled, cpu_compiled
from .triton_lang import HAS_TRITON

__all__ = [
    "FeaturePlan",
    "base_code",
    "compute_dtype",
    "eager_only",
    "fused_features",
    "get_backend",
    "squash_code",
    "use_backend",
]

Backend = Literal["auto", "triton", "torch"]
_HALF = (torch.float16, torch.bfloat16)
_backend: Backend = "auto"


@contextlib.contextmanager
def use_backend(backend: Backend) -> Iterator[None]:
    """Force the fused pass's implementation: ``"triton"``, ``"torch"`` (eager PyTorch) or ``"auto"`` (Triton on
    CUDA, compiled PyTorch on CPU). Also selects WavKAN's implicit kernels (:mod:`.triton_wavelet_conv`).

    ``"triton"`` on CPU tensors needs Triton's interpreter (``TRITON_INTERPRET=1`` set before Triton is imported);
    the tests use it to run the kernels without a GPU.
    """
    global _backend
    if backend not in ("auto", "triton", "torch"):
        raise ValueError(f"backend must be 'auto', 'triton' or 'torch', got {backend!r}")
    previous, _backend = _backend, backend
    try:
        yield
    finally:
        _backend = previous


def get_backend() -> Backend:
    return _backend


def squash_code(module: nn.Module | None) -> str | None:
    """The kernels' name for a pointwise squash module, or ``None`` if it must run before them."""
    if module is None or type(module) is nn.Identity:
        return "none"
    if type(module) is nn.Tanh:
        return "tanh"
    if type(module) is nn.Sigmoid:
        return "sigmoid"
    return None


def base_code(module: nn.Module | None, use_base: bool) -> str | None:
    """The kernels' name for a base activation, or ``None`` if it must run before them."""
    if not use_base:
        return "none"
    if module is None or type(module) is nn.Identity:
        return "identity"
    if type(module) is nn.SiLU:
        return "silu"
    if type(module) is nn.GELU and module.approximate == "none":
        return "gelu"
    return None


@dataclass(frozen=True)
class FeaturePlan:
    """What the fused pass evaluates besides the basis: the pointwise ``squash`` and the ``base`` activation."""

    squash: str = "none"
    base: str = "none"


def _squash(t: Tensor, code: str) -> Tensor:
    if code == "tanh":
        return torch.tanh(t)
    if code == "sigmoid":
        return torch.sigmoid(t)
    return t


def _squash_grad(t: Tensor, code: str) -> Tensor | None:
    if code == "tanh":
        return 1 - t * t
    if code == "sigmoid":
        return t * (1 - t)
    return None


def _base(x: Tensor, code: str) -> Tensor:
    if code == "silu":
        return F.silu(x)
    if code == "gelu":
        return F.gelu(x)
    return x


def _base_grad(x: Tensor, code: str) -> Tensor | None:
    if code == "silu":
        sig = torch.sigmoid(x)
        return sig * (1 + x * (1 - sig))
    if code == "gelu":
        cdf = 0.5 * (1 + torch.erf(x * math.sqrt(0.5)))
        return cdf + x * torch.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
    return None


_triton_failed: set[type] = set()


def _use_triton(x: Tensor, basis: Any) -> bool:
    if getattr(basis, "triton_forward", None) is None or not HAS_TRITON or not basis.triton_supported():
        return False
    if _backend == "triton":
        return True
    return _backend == "auto" and x.is_cuda and type(basis) not in _triton_failed


def _triton_or_none(basis: Any, launch: Any, *args: Any) -> Any:
    """Run a Triton launch; under ``"auto"``, a kernel that fails to build (an untested Triton or GPU) sends that
    family to the PyTorch path for the rest of the process, with a warning, instead of failing the model."""
    try:
        return launch(*args)
    except Exception as err:
        if _backend == "triton":
            raise
        _triton_failed.add(type(basis))
        warnings.warn(
            f"kanconvs: the Triton kernel of {type(basis).__name__} failed ({type(err).__name__}: {str(err)[:300]}); "
            "using the PyTorch path",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def _parts(x: Tensor, basis: Any, chunks: int) -> int:
    """How many channel groups the PyTorch pass evaluates one by one: ``chunks`` when a group of channels reads
    the per-channel tables as the whole does (``basis.fused_channels()`` divides its size), else 1."""
    return chunks if (x.shape[1] // chunks) % basis.fused_channels() == 0 else 1


def _torch_forward(
    basis: Any, plan: FeaturePlan, x_base: Tensor | None, x: Tensor, p: Tensor | None, q: Tensor | None,
    out_dtype: torch.dtype, chunks: int,
) -> tuple[Tensor, ...]:  # fmt: skip
    """The PyTorch forward: the features ``(B, C·F, *S)`` in ``out_dtype`` (functional: see ``fused_values``), as
    ``chunks`` contiguous tensors along the channels.

    With ``chunks > 1`` the features are stacked group-major, ``(g, B, C/g, F, *S)``, so that each chunk is one
    contiguous block written by the same loop: a split convolution reads its group without a copy.
    """
    compute = torch.float32 if x.dtype in _HALF else x.dtype
    values = basis.fused_values(_squash(x.to(compute), plan.squash), p, q)
    base = None if plan.base == "none" else _base((x if x_base is None else x_base).to(compute), plan.base)
    if chunks == 1:
        return (basis.stack(values, base).to(out_dtype).flatten(1, 2),)

    def grouped(m: Tensor) -> Tensor:
        return m.unflatten(1, (chunks, -1)).movedim(1, 0).to(out_dtype)

    grouped_values = grouped(values) if isinstance(values, Tensor) else [grouped(v) for v in values]
    out = basis.stack(grouped_values, None if base is None else grouped(base), dim=3)  # (g, B, C/g, F, *S)
    return tuple(out.flatten(2, 3).unbind(0))


def _torch_backward(
    basis: Any, plan: FeaturePlan, x_base: Tensor | None, x: Tensor, p: Tensor | None, q: Tensor | None,
    grads: tuple[Tensor, ...],
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:  # fmt: skip
    """The PyTorch backward: ``(dx, dx_base, dp, dq)`` from the gradients of the forward's chunks, evaluated chunk
    by chunk (assembling them into one tensor would be a copy of the whole gradient)."""
    has_base = int(plan.base != "none")
    compute = torch.float32 if x.dtype in _HALF else x.dtype
    parts = _parts(x, basis, len(grads))
    if parts != len(grads):
        grads = (torch.cat(grads, 1),)
    t_all = _squash(x.to(compute), plan.squash)
    dts, dps, dqs, gbs = [], [], [], []
    for t, grad in zip(t_all.chunk(parts, 1), grads, strict=True):
        g = grad.unflatten(1, (t.shape[1], -1))  # (B, C/parts, F, *S)
        dt, dp, dq = basis.fused_backward(t, g[:, :, has_base:].to(compute), p, q)
        dts.append(dt)
        dps.append(dp)
        dqs.append(dq)
        if has_base:
            gbs.append(g[:, :, 0].to(compute))
    dt = dts[0] if parts == 1 else torch.cat(dts, 1)
    dp = None if dps[0] is None else sum(dps[1:], dps[0])
    dq = None if dqs[0] is None else sum(dqs[1:], dqs[0])
    slope = _squash_grad(t_all, plan.squash)
    dx = dt if slope is None else dt * slope
    dxb = None
    if has_base:
        xb = (x if x_base is None else x_base).to(compute)
        base_slope = _base_grad(xb, plan.base)
        gb = gbs[0] if parts == 1 else torch.cat(gbs, 1)
        dxb = gb if base_slope is None else gb * base_slope
        if x_base is None:
            dx, dxb = dx + dxb, None
    return dx.to(x.dtype), None if dxb is None or x_base is None else dxb.to(x_base.dtype), dp, dq


def _compiled(basis: Any, plan: FeaturePlan, x: Tensor, out_dtype: torch.dtype, chunks: int) -> tuple[Any, Any] | None:
    """The compiled ``(forward, backward)`` of the PyTorch path on CPU (see :mod:`.cpu_compile`), or ``None``.

    Compiled once per basis configuration (``Basis.fused_key``), plan and dtype, and shared by every layer of that
    configuration: a private copy of the basis holds the constants, the layer's tensors come in as ``p`` and ``q``.
    """
    if x.device.type != "cpu" or _backend != "auto" or not compile_enabled():
        return None
    config = basis.fused_key()
    if config is None:
        return None
    if x.shape[0] == 0:  # nothing to compute: no graph specialised on it
        return None
    # One compiled code object per rank and memory layout too: each would otherwise recompile the shared one (with
    # batch 1 and size-1 axes, which dynamo specialises) up to its recompile limit, and compilation would stop.
    layout = "contiguous" if x.is_contiguous() else "channels_last" if _is_channels_last(x) else "strided"
    key = ("fused_basis", type(basis), config, plan, x.dtype, out_dtype, chunks, x.dim(), layout)
    if key not in _CPU_PASSES:
        proto = copy.deepcopy(basis)

        def forward(x_base: Tensor | None, x: Tensor, p: Tensor | None, q: Tensor | None) -> tuple[Tensor, ...]:
            return _torch_forward(proto, plan, x_base, x, p, q, out_dtype, chunks)

        def backward(
            x_base: Tensor | None, x: Tensor, p: Tensor | None, q: Tensor | None, grads: tuple[Tensor, ...]
        ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
            return _torch_backward(proto, plan, x_base, x, p, q, grads)

        _CPU_PASSES[key] = (cpu_compiled((*key, "forward"), forward), cpu_compiled((*key, "backward"), backward))
    return _CPU_PASSES[key]


_CPU_PASSES: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _is_channels_last(x: Tensor) -> bool:
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    return x.dim() in formats and x.is_contiguous(memory_format=formats[x.dim()])


class _FusedFeatures(torch.autograd.Function):
    """The pass as one autograd node. Its outputs are ``chunks`` tensors along the channels, each contiguous: a CPU
    convolution split per group reads its group's features without a copy, and in the backward the gradients
    come back as they are (no slicing into, or assembling of, one large tensor)."""

    @staticmethod
    def forward(
        ctx: Any,
        x_base: Tensor | None,
        x: Tensor,
        p: Tensor | None,
        q: Tensor | None,
        basis: Any,
        plan: FeaturePlan,
        out_dtype: torch.dtype,
        chunks: int,
    ) -> tuple[Tensor, ...]:
        triton = _use_triton(x, basis)
        out: tuple[Tensor, ...] | None = None
        if triton:
            x = x.contiguous()
            x_base = None if x_base is None or x_base is x else x_base.contiguous()
            shape = (x.shape[0], x.shape[1], basis.num_functions + int(plan.base != "none"), *x.shape[2:])
            full = torch.empty(shape, device=x.device, dtype=out_dtype)
            launched = _triton_or_none(
                basis, triton_features.launch_forward, x_base, x, full, basis.triton_forward, p, q,
                basis.fused_scalars(), basis.fused_channels(), plan.squash, plan.base,
            )  # fmt: skip
            triton = launched is not None
            if triton:
                flat = full.flatten(1, 2)
                out = (flat,) if chunks == 1 else tuple(part.contiguous() for part in flat.chunk(chunks, 1))
        compiled = None if triton else _compiled(basis, plan, x, out_dtype, chunks)
        if not triton:
            if compiled is not None:
                out = compiled[0](x_base, x, p, q)
            else:
                out = _torch_forward(basis, plan, x_base, x, p, q, out_dtype, chunks)
        assert out is not None
        ctx.save_for_backward(x_base, x, p, q)
        ctx.basis, ctx.plan, ctx.triton, ctx.compiled = basis, plan, triton, compiled
        return out

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        x_base, x, p, q = ctx.saved_tensors
        basis, plan = ctx.basis, ctx.plan
        n_feat = basis.num_functions + int(plan.base != "none")
        result = None
        # create_graph=True (a gradient penalty): only the PyTorch backward builds a graph of its own.
        double = torch.is_grad_enabled()
        if ctx.triton and not double:
            grad = grads[0] if len(grads) == 1 else torch.cat(grads, 1)
            g = grad.contiguous().view(x.shape[0], x.shape[1], n_feat, *x.shape[2:])  # (B, C, F, *S)
            launched = _triton_or_none(
                basis, triton_features.launch_backward, x_base, x, g, basis.triton_backward, p, q,
                basis.fused_scalars(), basis.fused_channels(), basis.num_partials, plan.squash, plan.base,
            )  # fmt: skip
            if launched is not None:
                dx, dxb, partials = launched
                result = (dx, dxb, *basis.reduce_partials(partials, p, q))
        if result is None:
            if ctx.compiled is not None and not double:
                result = ctx.compiled[1](x_base, x, p, q, grads)
            else:
                result = _torch_backward(basis, plan, x_base, x, p, q, grads)
        dx, dxb, dp, dq = result
        needs = ctx.needs_input_grad
        return (
            dxb if needs[0] else None,
            dx if needs[1] else None,
            dp if needs[2] and dp is not None else None,
            dq if needs[3] and dq is not None else None,
            None,
            None,
            None,
            None,
        )


def fused_features(
    x_base: Tensor | None,
    x: Tensor,
    basis: Any,
    plan: FeaturePlan,
    out_dtype: torch.dtype | None = None,
    chunks: int = 1,
) -> Tensor | tuple[Tensor, ...]:
    """``(B, C·F, *S)`` channel-major features of ``x`` ``(B, C, *S)``: ``[base(x_base), B_1(t) … B_K(t)]``.

    ``t = plan.squash(x)``; ``x_base`` is the base branch's input (``None``: ``x`` itself). ``basis`` implements the
    fused interface of :class:`kanconvs.bases.Basis`. The result is in ``out_dtype`` (default: ``x``'s dtype); with
    ``chunks > 1`` it is that many contiguous tensors along the channels (``chunks`` must divide ``C``), the
    features of each group of a grouped convolution.
    """
    if chunks < 1 or x.shape[1] % chunks:
        raise ValueError(f"chunks must be a positive divisor of the {x.shape[1]} channels, got {chunks!r}")
    p, q = basis.fused_tensors(x)
    if x_base is x:
        x_base = None
    out: tuple[Tensor, ...] = _FusedFeatures.apply(x_base, x, p, q, basis, plan, out_dtype or x.dtype, chunks)
    return out[0] if chunks == 1 else out


def eager_only() -> bool:
    """Whether the fused pass must give way to the plain PyTorch math (compile, export, tracing, functorch).

    ``torch.compile`` fuses the eager math itself; exporters need traceable ops; vmap/grad transforms need ops with
    batching rules.
    """
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    compiler = getattr(torch, "compiler", None)
    compiling = getattr(compiler, "is_compiling", lambda: False)() or getattr(compiler, "is_exporting", lambda: False)()
    if compiling:
        return True
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active is not None and active())


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype a convolution of ``x`` runs in: the autocast dtype of ``x``'s device when autocast is on."""
    device = x.device.type
    if device == "meta":  # shape inference (e.g. kanconvs.models.min_input_size): no autocast there
        return x.dtype
    try:
        enabled = torch.is_autocast_enabled(device)
    except TypeError:  # torch < 2.4: no device argument
        enabled = torch.is_autocast_enabled() if device == "cuda" else torch.is_autocast_cpu_enabled()
    if not enabled or not x.is_floating_point():
        return x.dtype
    try:
        return torch.get_autocast_dtype(device)
    except AttributeError:  # torch < 2.4
        return torch.get_autocast_gpu_dtype() if device == "cuda" else torch.get_autocast_cpu_dtype()
