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


def _torch_forward(
    basis: Any, plan: FeaturePlan, x_base: Tensor | None, x: Tensor, p: Tensor | None, q: Tensor | None,
    out_dtype: torch.dtype,
) -> Tensor:  # fmt: skip
    """The PyTorch forward: the features ``(B, C, F, *S)`` in ``out_dtype`` (functional: see ``fused_values``)."""
    compute = torch.float32 if x.dtype in _HALF else x.dtype
    values = basis.fused_values(_squash(x.to(compute), plan.squash), p, q)
    base = None if plan.base == "none" else _base((x if x_base is None else x_base).to(compute), plan.base)
    return basis.stack(values, base).to(out_dtype)


def _torch_backward(
    basis: Any, plan: FeaturePlan, x_base: Tensor | None, x: Tensor, p: Tensor | None, q: Tensor | None,
    grad: Tensor,
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:  # fmt: skip
    """The PyTorch backward: ``(dx, dx_base, dp, dq)`` from ``grad`` ``(B, C, F, *S)``."""
    has_base = plan.base != "none"
    compute = torch.float32 if x.dtype in _HALF else x.dtype
    t = _squash(x.to(compute), plan.squash)
    dt, dp, dq = basis.fused_backward(t, grad[:, :, int(has_base) :].to(compute), p, q)
    slope = _squash_grad(t, plan.squash)
    dx = dt if slope is None else dt * slope
    dxb = None
    if has_base:
        xb = (x if x_base is None else x_base).to(compute)
        base_slope = _base_grad(xb, plan.base)
        gb = grad[:, :, 0].to(compute)
        dxb = gb if base_slope is None else gb * base_slope
        if x_base is None:
            dx, dxb = dx + dxb, None
    return dx.to(x.dtype), None if dxb is None or x_base is None else dxb.to(x_base.dtype), dp, dq


def _compiled(basis: Any, plan: FeaturePlan, x: Tensor, out_dtype: torch.dtype) -> tuple[Any, Any] | None:
    """The compiled ``(forward, backward)`` of the PyTorch path on CPU (see :mod:`.cpu_compile`), or ``None``.

    Compiled once per basis configuration (``Basis.fused_key``), plan and dtype, and shared by every layer of that
    configuration: a private copy of the basis holds the constants, the layer's tensors come in as ``p`` and ``q``.
    """
    if x.device.type != "cpu" or _backend != "auto" or not compile_enabled():
        return None
    config = basis.fused_key()
    if config is None:
        return None
    key = ("fused_basis", type(basis), config, plan, x.dtype, out_dtype)
    if key not in _CPU_PASSES:
        proto = copy.deepcopy(basis)

        def forward(x_base: Tensor | None, x: Tensor, p: Tensor | None, q: Tensor | None) -> Tensor:
            return _torch_forward(proto, plan, x_base, x, p, q, out_dtype)

        def backward(
            x_base: Tensor | None, x: Tensor, p: Tensor | None, q: Tensor | None, grad: Tensor
        ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
            return _torch_backward(proto, plan, x_base, x, p, q, grad)

        _CPU_PASSES[key] = (cpu_compiled((*key, "forward"), forward), cpu_compiled((*key, "backward"), backward))
    return _CPU_PASSES[key]


_CPU_PASSES: dict[tuple[Any, ...], tuple[Any, Any]] = {}


class _FusedFeatures(torch.autograd.Function):
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
    ) -> Tensor:
        triton = _use_triton(x, basis)
        out = None
        if triton:
            x = x.contiguous()
            x_base = None if x_base is None or x_base is x else x_base.contiguous()
            shape = (x.shape[0], x.shape[1], basis.num_functions + int(plan.base != "none"), *x.shape[2:])
            out = torch.empty(shape, device=x.device, dtype=out_dtype)
            launched = _triton_or_none(
                basis, triton_features.launch_forward, x_base, x, out, basis.triton_forward, p, q,
                basis.fused_scalars(), basis.fused_channels(), plan.squash, plan.base,
            )  # fmt: skip
            triton = launched is not None
        compiled = None if triton else _compiled(basis, plan, x, out_dtype)
        if not triton:
            if compiled is not None:
                out = compiled[0](x_base, x, p, q)
            else:
                out = _torch_forward(basis, plan, x_base, x, p, q, out_dtype)
        assert out is not None
        ctx.save_for_backward(x_base, x, p, q)
        ctx.basis, ctx.plan, ctx.triton, ctx.compiled = basis, plan, triton, compiled
        return out.flatten(1, 2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x_base, x, p, q = ctx.saved_tensors
        basis, plan = ctx.basis, ctx.plan
        n_feat = basis.num_functions + int(plan.base != "none")
        dxb: Tensor | None
        result = None
        if ctx.triton:
            g = grad.contiguous().view(x.shape[0], x.shape[1], n_feat, *x.shape[2:])  # (B, C, F, *S)
            launched = _triton_or_none(
                basis, triton_features.launch_backward, x_base, x, g, basis.triton_backward, p, q,
                basis.fused_scalars(), basis.fused_channels(), basis.num_partials, plan.squash, plan.base,
            )  # fmt: skip
            if launched is not None:
                dx, dxb, partials = launched
                result = (dx, dxb, *basis.reduce_partials(partials, p, q))
        if result is None:
            g = grad.unflatten(1, (x.shape[1], n_feat))  # (B, C, F, *S)
            if ctx.compiled is not None:
                result = ctx.compiled[1](x_base, x, p, q, g)
            else:
                result = _torch_backward(basis, plan, x_base, x, p, q, g)
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
        )


def fused_features(
    x_base: Tensor | None, x: Tensor, basis: Any, plan: FeaturePlan, out_dtype: torch.dtype | None = None
) -> Tensor:
    """``(B, C·F, *S)`` channel-major features of ``x`` ``(B, C, *S)``: ``[base(x_base), B_1(t) … B_K(t)]``.

    ``t = plan.squash(x)``; ``x_base`` is the base branch's input (``None``: ``x`` itself). ``basis`` implements the
    fused interface of :class:`kanconvs.bases.Basis`. The result is in ``out_dtype`` (default: ``x``'s dtype).
    """
    p, q = basis.fused_tensors(x)
    if x_base is x:
        x_base = None
    out: Tensor = _FusedFeatures.apply(x_base, x, p, q, basis, plan, out_dtype or x.dtype)
    return out


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
