"""Resolve ``str | type | callable`` layer arguments (norms, activations, squashes) once, in ``__init__``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import is_real
from ..bases import Basis, get_basis_class
from .ranks import rank
from .regularization import MultiplicativeNoiseInjection, NoiseInjection

__all__ = [
    "ActLayer",
    "GroupPReLU",
    "MinMaxSquash",
    "NormLayer",
    "build_basis",
    "create_activation",
    "create_dropout",
    "create_norm",
    "create_squash",
    "list_activations",
    "list_norms",
    "list_squashes",
    "place",
    "reset_parameters_of",
    "to_ntuple",
]

#: A norm given by name (``"instance"``, ``"batch"``, ``"layer"``, ``"group"``, ``"none"``), by class
#: (``nn.BatchNorm2d``), by a callable ``f(num_features, **kwargs) -> nn.Module``, or ``None`` for no norm.
NormLayer = str | Callable[..., nn.Module] | None
#: An activation given by name (``"silu"``, ``"gelu"``, …), class (``nn.GELU``), module instance, tensor function
#: (``torch.tanh``), or ``None`` for identity.
ActLayer = str | Callable[..., Any] | nn.Module | None


def to_ntuple(name: str, value: int | tuple[int, ...] | list[int], ndim: int, minimum: int = 1) -> tuple[int, ...]:
    """``3 -> (3, 3)`` for ``ndim=2``; tuples must have length ``ndim``; every entry must be ``>= minimum``."""
    items = (value,) * ndim if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, (tuple, list)) or len(items) != ndim:
        raise ValueError(f"{name} must be an int or a tuple of {ndim} ints for ndim={ndim}, got {value!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in items):
        raise ValueError(f"{name} entries must be integers >= {minimum}, got {value!r}")
    return tuple(items)


# ------------------------------------------------------------------------------------------------ shared helpers
def build_basis(
    basis: str | Basis,
    kwargs: Mapping[str, Any] | None,
    channels: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Basis:
    """A basis given by name (with ``kwargs``) or as an instance; per-channel bases get ``channels=``."""
    if isinstance(basis, Basis):
        if kwargs:
            raise ValueError("basis_kwargs must be empty when basis is a Basis instance")
        return basis
    if not isinstance(basis, str):
        raise TypeError(f"basis must be a registered name or a Basis instance, got {type(basis).__name__}")
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype (e.g. torch.float32) or None, got {dtype!r}")
    cls = get_basis_class(basis)
    full = {**dict(kwargs or {}), "device": device, "dtype": dtype}
    if cls.per_channel:
        full["channels"] = channels
    try:
        return cls(**full)
    except TypeError as err:
        raise TypeError(f"invalid basis_kwargs for basis {basis!r}: {err}") from err


def place(module: nn.Module, device: torch.device | str | None, dtype: torch.dtype | None) -> nn.Module:
    """Move a sub-module built without factory kwargs (norms, activations) to the layer's device/dtype."""
    given: dict[str, Any] = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
    return module.to(**given) if given else module


def reset_parameters_of(*modules: nn.Module) -> None:
    """Call ``reset_parameters()`` on the modules that have one (norms, activations with learnable slopes)."""
    for module in modules:
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


# --------------------------------------------------------------------------------------------------------- norms
class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of ``(B, C, *S)`` at every position (timm's LayerNorm2d for any rank).

    Passing ``nn.LayerNorm`` as a conv layer's norm means this: the reference special-cases it and only gets it
    right for 1×1 feature maps.
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


_NORMS: dict[str, Callable[[int], Callable[..., nn.Module]]] = {
    "instance": lambda ndim: rank(ndim).instance_norm,
    "batch": lambda ndim: rank(ndim).batch_norm,
    "layer": lambda ndim: lambda num_features, eps=1e-6, **kw: ChannelLayerNorm(num_features, eps=eps, **kw),
    "group": lambda ndim: lambda num_features, num_groups=32, **kw: nn.GroupNorm(num_groups, num_features, **kw),
}


def list_norms() -> list[str]:
    return sorted([*_NORMS, "none"])


def create_norm(norm: NormLayer, num_features: int, ndim: int, **kwargs: Any) -> nn.Module:
    """Instantiate a norm for ``num_features`` channels; ``kwargs`` (e.g. ``affine=True``) go to its constructor."""
    if norm is None or norm == "none":
        if kwargs:
            raise ValueError(f"norm_kwargs {sorted(kwargs)} given but norm_layer is None")
        return nn.Identity()
    if isinstance(norm, str):
        if norm not in _NORMS:
            raise ValueError(f"unknown norm_layer {norm!r}; expected one of {list_norms()} or a class/callable")
        norm = _NORMS[norm](ndim)
    if norm is nn.LayerNorm and ndim > 0:
        norm = ChannelLayerNorm  # normalise channels, not the last spatial axis
    if not callable(norm):
        raise TypeError(f"norm_layer must be a name, a class or a callable, got {type(norm).__name__}")
    try:
        module = norm(num_features, **kwargs)
    except TypeError as err:
        raise TypeError(f"cannot build norm_layer {norm!r} with norm_kwargs {kwargs}: {err}") from err
    if not isinstance(module, nn.Module):
        raise TypeError(f"norm_layer must build an nn.Module, got {type(module).__name__}")
    return module


# --------------------------------------------------------------------------------------------------- activations
class GroupPReLU(nn.Module):
    """PReLU with one learnable slope per channel group (the reference KAN conv keeps one ``nn.PReLU()`` per group)."""

    def __init__(self, channels: int, groups: int = 1, init: float = 0.25, **factory: Any) -> None:
        super().__init__()
        self.channels, self.groups, self.init = channels, groups, init
        self.weight = nn.Parameter(torch.full((groups,), init, **factory))

    def reset_parameters(self) -> None:
        nn.init.constant_(self.weight, self.init)

    def forward(self, x: Tensor) -> Tensor:
        slope = self.weight.repeat_interleave(self.channels // self.groups).to(x.dtype)
        return torch.where(x >= 0, x, x * slope.view(1, -1, *([1] * (x.dim() - 2))))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"


class Lambda(nn.Module):
    """Wraps a tensor function (e.g. ``torch.tanh``) as a module."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


_ACTIVATIONS: dict[str, Callable[[int, int], nn.Module]] = {
    "identity": lambda c, g: nn.Identity(),
    "silu": lambda c, g: nn.SiLU(),
    "gelu": lambda c, g: nn.GELU(),
    "relu": lambda c, g: nn.ReLU(),
    "leaky_relu": lambda c, g: nn.LeakyReLU(),
    "elu": lambda c, g: nn.ELU(),
    "mish": lambda c, g: nn.Mish(),
    "tanh": lambda c, g: nn.Tanh(),
    "sigmoid": lambda c, g: nn.Sigmoid(),
    "prelu": lambda c, g: GroupPReLU(c, g),
}


def list_activations() -> list[str]:
    return sorted(_ACTIVATIONS)


def create_activation(act: ActLayer, channels: int = 1, groups: int = 1, name: str = "activation") -> nn.Module:
    """Instantiate an activation; ``"prelu"`` gets one slope per group of ``channels``."""
    if act is None or act == "none":
        return nn.Identity()
    if isinstance(act, str):
        if act not in _ACTIVATIONS:
            raise ValueError(f"unknown {name} {act!r}; expected one of {list_activations()}, a class or a callable")
        return _ACTIVATIONS[act](channels, groups)
    if isinstance(act, nn.Module):
        return act
    if isinstance(act, type) and issubclass(act, nn.Module):
        return act()
    if callable(act):
        return Lambda(act)  # type: ignore[arg-type]
    raise TypeError(f"{name} must be a name, an nn.Module class or instance, or a callable, got {act!r}")


# ------------------------------------------------------------------------------------------------------ dropout
DROPOUT_TYPES = ("dropout", "noise", "multiplicative_noise")


def create_dropout(p: float, ndim: int, kind: str = "dropout", name: str = "dropout") -> nn.Module:
    """Identity for ``p == 0``; else ``kind``: channel-wise dropout (``DropoutNd``, as the reference), ``"noise"``
    (:class:`NoiseInjection`) or ``"multiplicative_noise"`` (:class:`MultiplicativeNoiseInjection`)."""
    if not is_real(p) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {p!r}")
    if kind not in DROPOUT_TYPES:
        raise ValueError(f"dropout_type must be one of {DROPOUT_TYPES}, got {kind!r}")
    if p == 0:
        return nn.Identity()
    if kind == "noise":
        return NoiseInjection(p)
    if kind == "multiplicative_noise":
        return MultiplicativeNoiseInjection(p)
    return rank(ndim).dropout(p)


# ----------------------------------------------------------------------------------------------------- squashes
class MinMaxSquash(nn.Module):
    """Affine map of each sample's group of channels from [min, max] to [-1, 1].

    The reference (KALN) rescales by the min and max of the whole batch, which couples samples, differs between
    train and eval and divides by zero on a constant input. Here the statistics are per sample and per group (equal
    to the reference for a batch of one), and the range is floored at ``eps`` so a constant input maps to -1 and
    the gradient (``2 / range`` per element) stays representable in half precision.
    """

    def __init__(self, groups: int = 1, eps: float = 1e-2) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        flat = x.reshape(b, self.groups, (c // self.groups) * math.prod(x.shape[2:]))  # (B, g, c_i · S)
        lo = flat.amin(dim=2, keepdim=True)
        hi = flat.amax(dim=2, keepdim=True)
        out = 2 * (flat - lo) / (hi - lo).clamp_min(self.eps) - 1
        return out.view_as(x)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, eps={self.eps}"


_SQUASHES: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda g: nn.Identity(),
    "tanh": lambda g: nn.Tanh(),
    "sigmoid": lambda g: nn.Sigmoid(),
    "minmax": lambda g: MinMaxSquash(g),
}


def list_squashes() -> list[str]:
    return sorted(_SQUASHES)


def create_squash(squash: ActLayer, groups: int = 1) -> nn.Module:
    """The map applied to ``x`` before the basis: ``"tanh"``, ``"sigmoid"``, ``"minmax"``, ``"none"`` or a callable."""
    if isinstance(squash, str):
        if squash not in _SQUASHES:
            raise ValueError(f"unknown squash {squash!r}; expected one of {list_squashes()} or a callable")
        return _SQUASHES[squash](groups)
    return create_activation(squash, name="squash")
