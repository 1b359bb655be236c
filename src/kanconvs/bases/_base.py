"""The basis contract and its registry."""

from __future__ import annotations

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

    num_functions: int

    def evaluate(self, x: Tensor) -> Tensor | list[Tensor]:
        raise NotImplementedError

    def forward(self, x: Tensor, prepend: Tensor | None = None) -> Tensor:
        """Evaluate the basis; ``prepend`` (shaped like ``x``) becomes function index 0 (the layer's base branch)."""
        return self.stack(self.evaluate(x), prepend)

    @staticmethod
    def stack(values: Tensor | list[Tensor], prepend: Tensor | None = None) -> Tensor:
        """``(B, C, K, *S)`` from a stacked tensor or a list of ``K`` maps, with ``prepend`` as function 0."""
        if isinstance(values, Tensor):
            if prepend is None:
                return values
            return torch.cat([prepend.unsqueeze(2).to(values.dtype), values], dim=2)
        if prepend is not None:
            values = [prepend.to(values[0].dtype), *values]
        return torch.stack(values, dim=2)

    def reset_parameters(self, fan_in: int = 1) -> None:
        """Re-initialise learnable basis parameters; ``fan_in`` is the number of inputs feeding one output."""

    def extra_repr(self) -> str:
        return f"num_functions={self.num_functions}"


class DegreeBasis(Basis):
    """A basis of polynomials of degree 0 … ``degree`` (``degree + 1`` functions) without learnable state.

    ``device`` and ``dtype`` are accepted for a uniform factory interface.
    """

    def __init__(
        self, degree: int = 3, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.degree = check_degree(degree)
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


def check_range(name: str, value: tuple[float, float] | list[float]) -> tuple[float, float]:
    if len(value) != 2 or not float(value[0]) < float(value[1]):
        raise ValueError(f"{name} must be a pair (low, high) with low < high, got {value!r}")
    return float(value[0]), float(value[1])


def broadcast_to_input(values: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-function vector ``(K,)`` or per-channel table ``(C, K)`` to broadcast against ``(B, C, 1, *S)``."""
    spatial = (1,) * (x.dim() - 2)
    if values.dim() == 1:
        return values.view(1, 1, -1, *spatial)
    return values.reshape(1, values.shape[0], values.shape[1], *spatial)
