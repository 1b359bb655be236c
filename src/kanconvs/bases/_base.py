"""The basis contract and its registry."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from .._registry import Registry

__all__ = ["Basis", "DegreeBasis", "create_basis", "list_bases", "register_basis"]


class Basis(nn.Module):
    """A family of univariate functions applied elementwise to every input channel.

    A basis maps ``(B, C, *S)`` to ``(B, C, K, *S)``: ``K = num_functions`` values per input element, stacked on a new
    axis right after the channel axis. Flattening axes 1 and 2 then gives the channel-major layout
    (feature index ``c * K + k``) that lets ``groups=g`` of a single convolution act as ``g`` independent layers.

    Subclasses implement :meth:`evaluate`, returning either the stacked tensor or a list of ``K`` tensors shaped like
    the input (recurrences produce lists; stacking them once is the only copy).
    """

    #: Bases with per-channel parameters set this; the layer then passes ``channels=`` (the channels of one group).
    per_channel: ClassVar[bool] = False
    #: Constant buffers (grids, knots) that keep at least fp32 when the module is cast to fp16/bf16: rounded to 8
    #: significant bits they would move the functions themselves, not just their precision.
    precise_buffers: ClassVar[tuple[str, ...]] = ()

    num_functions: int

    def evaluate(self, x: Tensor) -> Tensor | list[Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor, prepend: Tensor | None = None) -> Tensor:
        """Evaluate the basis; ``prepend`` (shaped like ``x``) becomes function index 0 (the layer's base branch)."""
        return self.stack(self.evaluate(x), prepend)

    @staticmethod
    def stack(values: Tensor | list[Tensor], prepend: Tensor | None = None, dim: int = 2) -> Tensor:
        """``(B, C, K, *S)`` from a stacked tensor or a list of ``K`` maps, with ``prepend`` as function 0.

        ``dim`` is the functions' axis (2; the fused pass stacks group-major maps ``(g, B, C/g, *S)`` at 3)."""
        if isinstance(values, Tensor):
            if prepend is None:
                return values
            return torch.cat([prepend.unsqueeze(dim).to(values.dtype), values], dim=dim)
        if prepend is not None:
            values = [prepend.to(values[0].dtype), *values]
        return torch.stack(values, dim=dim)

    def reset_parameters(self, fan_in: int = 1) -> None:
        """Re-initialise learnable basis parameters; ``fan_in`` is the number of inputs feeding one output."""

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Basis:
        saved = {name: self._buffers.get(name) for name in self.precise_buffers}
        super()._apply(fn, recurse)
        for name, old in saved.items():
            new = self._buffers.get(name)
            if old is None or new is None:
                continue
            if new.dtype in (torch.float16, torch.bfloat16) and old.dtype != new.dtype:
                self._buffers[name] = old.to(device=new.device)
        return self

    def extra_repr(self) -> str:
        return f"num_functions={self.num_functions}"

    # ------------------------------------------------------------------------------------- the fused pass
    # :func:`kanconvs.kernels.fused_features` evaluates a basis through the methods below, in one pass per
    # direction. The defaults work for any basis (``evaluate`` forward; autograd recomputation backward); a family
    # overrides them with its closed forms and provides Triton device functions (see
    # :mod:`kanconvs.kernels.triton_features` for their contract).

    #: Triton device functions ``(forward, backward)`` of the family; ``None``: the PyTorch path only.
    triton_forward: ClassVar[Any] = None
    triton_backward: ClassVar[Any] = None
    #: Parameter-gradient partial sums one backward program stores (see :meth:`reduce_partials`).
    num_partials: ClassVar[int] = 0

    def supports_fused(self) -> bool:
        """Whether the fused pass can run this basis: one with parameters must name them in :meth:`fused_tensors`."""
        return type(self).fused_tensors is not Basis.fused_tensors or next(self.parameters(), None) is None

    def triton_supported(self) -> bool:
        """Whether this instance's configuration is one the Triton functions implement."""
        return True

    def fused_tensors(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """The tensors ``(p, q)`` the fused pass reads for input ``x``; those that require grad get their gradient."""
        return None, None

    def constant_table(self, name: str, values: Any, device: torch.device, dtype: torch.dtype) -> Tensor:
        """A constant table of the family (from Python floats, rounded once to ``dtype``), cached per device/dtype.

        Derived constants are not buffers: ``module.half()`` would round them, and they need no ``state_dict`` entry.
        """
        cache: dict[tuple[str, torch.device, torch.dtype], Tensor] = self.__dict__.setdefault("_constant_tables", {})
        key = (name, device, dtype)
        if key not in cache:
            # Built under inference_mode it would be an inference tensor, which training cannot save for backward.
            inference = torch.is_inference_mode_enabled()
            with torch.inference_mode(False) if inference else contextlib.nullcontext():
                cache[key] = torch.tensor(values, dtype=torch.float64).to(device=device, dtype=dtype)
        return cache[key]

    def fused_scalars(self) -> tuple[float, float, float, int]:
        """Constants ``(s0, s1, s2, ORDER)`` of the Triton functions."""
        return 0.0, 0.0, 0.0, 0

    def fused_key(self) -> tuple[object, ...] | None:
        """The configuration that fixes :meth:`fused_values`/:meth:`fused_backward` given ``(p, q)``, or ``None``.

        Bases whose fused methods read tensors only through ``p``/``q`` return a key: their CPU pass is then compiled
        once per key and shared by every layer with that configuration (see :mod:`kanconvs.kernels.features`).
        """
        return None

    def fused_channels(self) -> int:
        """Rows of the per-channel tables in ``p``/``q`` (channel ``c`` reads row ``c % rows``)."""
        return 1

    def fused_values(self, t: Tensor, p: Tensor | None, q: Tensor | None) -> Tensor | list[Tensor]:
        """The functions of ``t`` ``(B, C, *S)`` read from ``(p, q)``: ``(B, C, K, *S)`` or a list of ``K`` maps.

        Written as plain functional code: compiled, the whole forward becomes one loop with one store (writing into
        slices of a preallocated output compiles to a pass per slice).
        """
        return self.evaluate(t)

    def fused_backward(
        self, t: Tensor, grad: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(dL/dt, dL/dp, dL/dq)`` from ``grad`` ``(B, C, K, *S)``, the gradient of the functions."""
        live = self.fused_tensors(t)  # the module's own tensors: ``evaluate`` reads these
        wanted = [x for x in live if x is not None and x.requires_grad]
        with torch.enable_grad():
            t = t.detach().requires_grad_()
            values = self.stack(self.evaluate(t))
            grads = torch.autograd.grad(values, [t, *wanted], grad.to(values.dtype), allow_unused=True)
        dt = grads[0] if grads[0] is not None else torch.zeros_like(t)
        found = dict(zip((id(x) for x in wanted), grads[1:], strict=True))
        dp, dq = (found.get(id(x)) if x is not None else None for x in live)
        return dt, dp, dq

    def reduce_partials(
        self, partials: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """``(dL/dp, dL/dq)`` from the Triton backward's partial sums ``(B, C, blocks, num_partials)``."""
        return None, None


class DegreeBasis(Basis):
    """A basis of polynomials of degree 0 … ``degree`` (``degree + 1`` functions) without learnable state.

    ``device`` and ``dtype`` are accepted for a uniform factory interface.
    """

    #: The largest degree the family computes in float32, and why (``None``: no limit).
    max_degree: ClassVar[tuple[int, str] | None] = None

    def __init__(
        self, degree: int = 3, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.degree = check_degree(degree)
        if self.max_degree is not None and degree > self.max_degree[0]:
            limit, reason = self.max_degree
            raise ValueError(f"degree must be <= {limit} for {type(self).__name__} ({reason}), got {degree!r}")
        self.num_functions = degree + 1

    def extra_repr(self) -> str:
        return f"degree={self.degree}"


_BASES: Registry[type[Basis]] = Registry("basis")
B = TypeVar("B", bound=type[Basis])


def register_basis(name: str) -> Callable[[B], B]:
    """Class decorator adding a :class:`Basis` subclass to the registry under ``name``."""

    def decorator(cls: B) -> B:
        _BASES.add(name, cls)
        return cls

    return decorator


def list_bases() -> list[str]:
    """Names of every registered basis, sorted."""
    return sorted(_BASES)


def get_basis_class(name: str) -> type[Basis]:
    return _BASES.get(name)


def create_basis(name: str, **kwargs: Any) -> Basis:
    """Build a registered basis by name, e.g. ``create_basis("gram", degree=3)``."""
    cls = get_basis_class(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"invalid arguments for basis {name!r}: {err}") from err


def check_degree(degree: int) -> int:
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
        raise ValueError(f"degree must be an integer >= 0, got {degree!r}")
    return degree


def check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def check_range(name: str, value: Any) -> tuple[float, float]:
    """``value`` as a pair ``(low, high)`` of finite floats with ``low < high``, else ``ValueError`` naming ``name``."""
    try:
        if isinstance(value, (str, bytes)) or len(value) != 2 or any(isinstance(v, (bool, str, bytes)) for v in value):
            raise TypeError
        lo, hi = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be a pair (low, high) of finite numbers with low < high, got {value!r}")
    return lo, hi


def broadcast_to_input(values: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-function vector ``(K,)`` or per-channel table ``(C, K)`` to broadcast against ``(B, C, 1, *S)``."""
    spatial = (1,) * (x.dim() - 2)
    if values.dim() == 1:
        return values.view(1, 1, -1, *spatial)
    return values.reshape(1, values.shape[0], values.shape[1], *spatial)
