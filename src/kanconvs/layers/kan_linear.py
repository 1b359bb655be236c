"""Kolmogorov–Arnold linear layers: every basis family, one ``F.linear``.

The linear counterpart of :class:`~kanconvs.layers.KAConvNd`: each input feature ``x_i`` is expanded into
``[base_act(x_i), B_1(t_i) … B_K(t_i)]`` with ``t = squash(x)`` and one matrix product mixes them. The named
families (``KANLinear``, ``KAGNLinear`` …) follow the linear layers of torch-conv-kan's ``kans`` package (their
norms, activations and initialisations, and their parameter counts), with its bugs fixed.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import is_real
from .._registry import Registry
from ..bases import Basis
from ..bases.wavelet import get_wavelet, safe_scale
from ._conv_base import check_positive
from .factories import (
    ActLayer,
    NormLayer,
    build_basis,
    create_activation,
    create_norm,
    create_squash,
    place,
    reset_parameters_of,
)
from .spec import FamilySpec, attach_spec, family_signature, get_spec, init_from_spec

__all__ = [
    "BottleNeckKAGNLinear",
    "FamilyLinear",
    "FastKANLinear",
    "KABNLinear",
    "KACNLinear",
    "KAGNLinear",
    "KAHNLinear",
    "KAJNLinear",
    "KALNLinear",
    "KALinear",
    "KANLinear",
    "LinearInit",
    "ReLUKANLinear",
    "WavKANLinear",
    "create_linear",
    "create_linear_norm",
    "get_linear_family",
    "list_linear_families",
    "register_linear_family",
]

#: Weight initialisations; ``fan_in = in_features·n`` and ``fan_out = out_features·n`` with ``n`` the functions of
#: the branch (1 for the base branch, K for the basis):
#: ``"kaiming"`` U(±√(3 / fan_in)) (Kaiming-uniform, gain 1); ``"xavier"`` U(±√(6 / (fan_in + fan_out)));
#: ``"normal"`` N(0, σ = 1 / fan_in); ``"uniform"`` U(±1 / √fan_in) (PyTorch's ``nn.Linear`` default).
LinearInit = Literal["kaiming", "xavier", "normal", "uniform"]
_INITS = ("kaiming", "xavier", "normal", "uniform")
_HALF = (torch.float16, torch.bfloat16)


# --------------------------------------------------------------------------------------------------------- helpers
def _init_weight(weight: Tensor, mode: str, fan_in: int, fan_out: int) -> None:
    with torch.no_grad():
        if mode == "kaiming":
            bound = math.sqrt(3.0 / fan_in)
        elif mode == "xavier":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
        elif mode == "uniform":
            bound = 1.0 / math.sqrt(fan_in)
        else:  # "normal"
            weight.normal_(0.0, 1.0 / fan_in)
            return
        weight.uniform_(-bound, bound)


def _check_init(name: str, mode: str) -> str:
    if mode not in _INITS:
        raise ValueError(f"{name} must be one of {_INITS}, got {mode!r}")
    return mode


_LINEAR_NORMS: dict[str, Callable[..., nn.Module]] = {
    "layer": nn.LayerNorm,
    "batch": nn.BatchNorm1d,
}


def create_linear_norm(norm: NormLayer, num_features: int, **kwargs: Any) -> nn.Module:
    """A norm over the feature axis of ``(N, num_features)``: ``"layer"``, ``"batch"``, ``"none"``/``None``, a class
    or a callable ``f(num_features, **kwargs)``.

    ``"layer"`` is :class:`torch.nn.LayerNorm` with its default ``eps=1e-5`` (the reference's choice).

    Examples:
        >>> create_linear_norm("layer", 8).eps
        1e-05
    """
    if isinstance(norm, str) and norm != "none":
        if norm not in _LINEAR_NORMS:
            valid = sorted([*_LINEAR_NORMS, "none"])
            raise ValueError(
                f"unknown norm_layer {norm!r} for a linear layer; expected one of {valid} or a class/callable"
            )
        norm = _LINEAR_NORMS[norm]
    return create_norm(norm, num_features, ndim=1, **kwargs)


def _flatten_input(layer: nn.Module, x: Tensor, in_features: int) -> Tensor:
    """``(..., in)`` → ``(N, in)``, as ``nn.Linear`` accepts any leading dims."""
    if x.dim() == 0 or x.shape[-1] != in_features:
        raise ValueError(
            f"{type(layer).__name__} expects an input whose last dimension is in_features={in_features}, "
            f"got shape {tuple(x.shape)}"
        )
    return x.reshape(-1, in_features)


# ------------------------------------------------------------------------------------------------ generic layer
class KALinear(nn.Module):
    r"""Kolmogorov–Arnold linear layer over any registered basis.

    Every input feature ``x_i`` is expanded into ``F`` features ``[base_act(x_i), B_1(t_i) … B_K(t_i)]`` with
    ``t = squash(norm_in(x))``; one ``F.linear`` mixes them, then come the norm and the activation:

    .. math:: y = \mathrm{act}\Big(\mathrm{norm}\big(W \cdot [\sigma(x), B(\mathrm{squash}(x))] + b\big)\Big)

    The weight is stored fused as ``weight`` of shape ``(out_features, in_features, F)``; ``weight[:, :, 0]`` is the
    base branch when ``use_base``. Inputs are ``(..., in_features)`` as for ``nn.Linear``.

    Args:
        in_features, out_features: sizes of the last input and output dimension.
        basis: a registered basis name (see :func:`kanconvs.list_bases`) or a :class:`~kanconvs.bases.Basis`.
        basis_kwargs: keyword arguments of the basis (``degree=``, ``grid_size=`` …) when ``basis`` is a name.
        squash: map applied before the basis: ``"tanh"``, ``"sigmoid"``, ``"minmax"`` (per sample), ``"none"`` or a
            callable.
        use_base: whether the base branch ``W_0 · base_act(x)`` exists.
        base_activation: activation of the base branch (``None`` for identity).
        norm_layer: ``"layer"``, ``"batch"``, ``None``, a class or a callable (see :func:`create_linear_norm`);
            ``norm_kwargs`` go to its constructor.
        norm_position: ``"output"`` normalises the ``out_features`` outputs; ``"input"`` normalises the
            ``in_features`` inputs of the basis only (FastKAN).
        activation: final activation (``"prelu"`` learns one slope).
        bias: add a learnable bias.
        base_init, basis_init: initialisation of the two weight blocks (see :data:`LinearInit`).

    Examples:
        >>> layer = KALinear(16, 32, basis="chebyshev", basis_kwargs={"degree": 4})
        >>> layer(torch.randn(8, 16)).shape
        torch.Size([8, 32])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        basis: str | Basis = "gram",
        basis_kwargs: Mapping[str, Any] | None = None,
        squash: ActLayer = "tanh",
        use_base: bool = True,
        base_activation: ActLayer = "silu",
        norm_layer: NormLayer = "layer",
        norm_kwargs: Mapping[str, Any] | None = None,
        norm_position: Literal["output", "input"] = "output",
        activation: ActLayer = "silu",
        bias: bool = False,
        base_init: LinearInit = "kaiming",
        basis_init: LinearInit = "kaiming",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive("in_features", in_features)
        self.out_features = check_positive("out_features", out_features)
        self.basis = build_basis(basis, basis_kwargs, in_features, device, dtype)
        self.use_base = bool(use_base)
        self.features_per_input = self.basis.num_functions + int(self.use_base)
        self.base_activation = create_activation(base_activation, name="base_activation") if use_base else None
        self.squash = create_squash(squash)
        if norm_position not in ("output", "input"):
            raise ValueError(f"norm_position must be 'output' or 'input', got {norm_position!r}")
        norm_features = out_features if norm_position == "output" else in_features
        norm = place(create_linear_norm(norm_layer, norm_features, **dict(norm_kwargs or {})), device, dtype)
        self.input_norm = norm if norm_position == "input" else nn.Identity()
        self.norm = norm if norm_position == "output" else nn.Identity()
        self.act = place(create_activation(activation, out_features), device, dtype)
        self.base_init = _check_init("base_init", base_init)
        self.basis_init = _check_init("basis_init", basis_init)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        # (out, in, F): flattening dims 1–2 gives the (out, in·F) matrix, input-major like the reference layers.
        self.weight = nn.Parameter(torch.empty(out_features, in_features, self.features_per_input, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the weights (per ``base_init`` / ``basis_init``), the bias, the basis and the norm."""
        n_in, n_out, k = self.in_features, self.out_features, self.basis.num_functions
        start = int(self.use_base)
        if self.use_base:
            _init_weight(self.weight[:, :, 0], self.base_init, n_in, n_out)
        _init_weight(self.weight[:, :, start:], self.basis_init, n_in * k, n_out * k)
        if self.bias is not None:
            # As nn.Linear: U(±1/√fan_in) of the branch that owns the bias (the base one when present).
            bound = 1.0 / math.sqrt(n_in * (1 if self.use_base else k))
            with torch.no_grad():
                self.bias.uniform_(-bound, bound)
        self.basis.reset_parameters(fan_in=n_in)
        reset_parameters_of(self.norm, self.input_norm, self.act)

    def features(self, x: Tensor, input_norm: bool = True) -> Tensor:
        """The features fed to the matrix product: ``(N, in_features, F)`` for ``x`` of shape ``(N, in_features)``."""
        base = self.base_activation(x) if self.base_activation is not None else None
        h = self.input_norm(x) if input_norm else x
        if h.dtype in _HALF:  # bases are evaluated in fp32: recurrences lose too much in 16 bits
            h = h.float()
        feats: Tensor = self.basis(self.squash(h), prepend=base)
        return feats.to(x.dtype)

    def _forward(self, x: Tensor, input_norm: bool = True) -> Tensor:
        h = _flatten_input(self, x, self.in_features)  # (N, in)
        y = F.linear(self.features(h, input_norm).flatten(1), self.weight.flatten(1), self.bias)  # (N, out)
        y = self.act(self.norm(y))
        out: Tensor = y.reshape(*x.shape[:-1], self.out_features)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self._forward(x)

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        if not self.use_base:
            s += ", use_base=False"
        if self.bias is not None:
            s += ", bias=True"
        return s


# ------------------------------------------------------------------------------------------------------ registry
_LINEAR_FAMILIES: Registry[type[nn.Module]] = Registry("linear family")
L = TypeVar("L", bound=type[nn.Module])


def register_linear_family(name: str, formula: str) -> Callable[[L], L]:
    """Register a linear family class under ``name``; ``formula`` is its one-line summary."""
    return _LINEAR_FAMILIES.register_class(name, formula)  # type: ignore[return-value]


def list_linear_families() -> list[str]:
    """Names of the registered linear families, in registration order."""
    return _LINEAR_FAMILIES.names()


def get_linear_family(name: str) -> type[nn.Module]:
    """The class of a registered linear family."""
    return _LINEAR_FAMILIES.get(name)


def create_linear(family: str, in_features: int, out_features: int, **kwargs: Any) -> nn.Module:
    """Build a KA linear layer of a registered family.

    Examples:
        >>> create_linear("kagn", 16, 32, degree=4)(torch.randn(2, 16)).shape
        torch.Size([2, 32])
    """
    return get_linear_family(family)(in_features, out_features, **kwargs)


_LINEAR_POSITIONAL = {"in_features": inspect.Parameter.empty, "out_features": inspect.Parameter.empty}


class FamilyLinear(KALinear):
    """A KA linear layer configured by a :class:`~kanconvs.layers.spec.FamilySpec` (its ``linear`` keywords).

    A subclass names its family (``class KAGNLinear(FamilyLinear, family="kagn")``) and is registered under it; the
    family's declared options and any :class:`KALinear` keyword, which overrides the family's choice, are accepted.
    """

    spec: ClassVar[FamilySpec]
    family: str
    formula: str
    #: Keyword arguments that turn the layer into a plain head (no output norm, no activation).
    plain_head_kwargs: ClassVar[dict[str, Any]] = {"norm_layer": None, "activation": None}

    def __init_subclass__(cls, family: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        attach_spec(
            cls,
            family,
            FamilyLinear.__init__,
            lambda s: register_linear_family(s.name, s.linear_formula),
            _LINEAR_POSITIONAL,
        )

    def __init__(self, in_features: int, out_features: int, **kwargs: Any) -> None:
        init_from_spec(self, KALinear, self.spec.linear, (in_features, out_features), kwargs)


# ------------------------------------------------------------------------------------------------------ families
class KANLinear(FamilyLinear, family="kan"):
    """B-spline KA linear layer (the reference's ``KANLayer``): Cox–de Boor splines on a uniform grid.

    Options: ``grid_size=5``, ``spline_order=3``, ``grid_range=(-1, 1)``. Parameters: ``out·in·(G + k + 1)`` plus
    the LayerNorm's ``2·out`` and one PReLU slope.

    Examples:
        >>> KANLinear(4, 6)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """


class FastKANLinear(FamilyLinear, family="fastkan"):
    """Gaussian-RBF KA linear layer (the reference's ``FastKANLayer``).

    Options: ``grid_size=8``, ``grid_range=(-2, 2)``, ``denominator=None`` (the grid spacing), and
    ``spline_weight_init_scale=0.1``. The LayerNorm acts on the basis input (over ``in_features``); there is no
    output norm or activation. The basis weights start truncated-normal with std ``spline_weight_init_scale``; the
    base branch and the bias (present with it unless ``bias=`` says otherwise) keep ``nn.Linear``'s default init.

    Examples:
        >>> FastKANLinear(4, 6)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    plain_head_kwargs: ClassVar[dict[str, Any]] = {"activation": None}  # its norm acts on the input

    def __init__(
        self, in_features: int, out_features: int, *, spline_weight_init_scale: float = 0.1, **kwargs: Any
    ) -> None:
        if not spline_weight_init_scale > 0:
            raise ValueError(f"spline_weight_init_scale must be > 0, got {spline_weight_init_scale!r}")
        self.spline_weight_init_scale = float(spline_weight_init_scale)
        kwargs.setdefault("bias", kwargs.get("use_base", True))
        super().__init__(in_features, out_features, **kwargs)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        start = int(self.use_base)
        s = self.spline_weight_init_scale
        # The reference's SplineLinear: N(0, s) truncated at ±2 (absolute, not ±2s).
        nn.init.trunc_normal_(self.weight[:, :, start:], mean=0.0, std=s, a=-2.0, b=2.0)


FastKANLinear.__signature__ = family_signature(  # type: ignore[attr-defined]
    FastKANLinear.spec, _LINEAR_POSITIONAL, {"spline_weight_init_scale": 0.1}
)


class KALNLinear(FamilyLinear, family="kaln"):
    """Legendre KA linear layer (the reference's ``KALNLayer``).

    Options: ``degree=3``. The inputs are mapped to [-1, 1] by a per-sample min–max (the reference uses the min and
    max of the whole batch: batch-coupled, and NaN on a constant input). Parameters: ``out·in·(D + 2) + 2·out``.

    Examples:
        >>> KALNLinear(4, 6, degree=3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """


class KACNLinear(FamilyLinear, family="kacn"):
    """Chebyshev KA linear layer (the reference's ``ChebyKANLayer``): no base branch, no norm, no activation.

    Options: ``degree=3``. ``T_n(tanh x)`` comes from the three-term recurrence, not ``cos(n·arccos)`` whose slope
    is infinite at ±1.

    Examples:
        >>> KACNLinear(4, 6, degree=3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """


class KAGNLinear(FamilyLinear, family="kagn"):
    """Gram KA linear layer (the reference's ``GRAMLayer``).

    Options: ``degree=3``, ``basis_activation="silu"`` (applied to every polynomial). Gram polynomials of
    ``tanh(x)`` with a learnable three-term recurrence; Xavier-uniform weights. Parameters:
    ``out·in·(D + 2) + (D + 1) + 2·out``.

    Examples:
        >>> KAGNLinear(4, 6, degree=3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """


class KAJNLinear(FamilyLinear, family="kajn"):
    """Jacobi KA linear layer (the reference's ``JacobiKANLayer``).

    Options: ``degree=3``, ``alpha=1.0``, ``beta=1.0``.

    Examples:
        >>> KAJNLinear(4, 6, degree=3, alpha=1.0, beta=1.0)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """


class KABNLinear(FamilyLinear, family="kabn"):
    """Bernstein KA linear layer (the reference's ``BernsteinKANLayer``, whose basis is identically 1 there).

    Options: ``degree=3``.

    Examples:
        >>> KABNLinear(4, 6, degree=3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """


class KAHNLinear(FamilyLinear, family="kahn"):
    """Hermite KA linear layer: physicists' Hermite polynomials of ``tanh(x)`` (no reference linear counterpart).

    Options: ``degree=3``.

    Examples:
        >>> KAHNLinear(4, 6, degree=3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """


class ReLUKANLinear(FamilyLinear, family="relukan"):
    """ReLU-KAN linear layer (the reference's ``ReLUKANLayer``): squared ReLU bumps with per-input phases.

    Options: ``grid_size=5``, ``order=3`` (the reference's ``g`` and ``k``), ``train_phases=True``. No base branch,
    no norm, no activation, a bias. Parameters: ``out·in·(g + k) + out + 2·in·(g + k)``.

    Examples:
        >>> ReLUKANLinear(4, 6, grid_size=5, order=3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """


@register_linear_family("wavkan", get_spec("wavkan").linear_formula)
class WavKANLinear(nn.Module):
    """Wavelet KA linear layer (the reference's ``WavKANLayer``): a scale and translation per (output, input) pair.

    ``y_o = norm(Σ_i w_oi ψ((x_i - t_oi) / s_oi) + Σ_i v_oi SiLU(x_i))``; the Shannon wavelet is weighted by a
    Hamming window over the inputs, as in the reference. Scales are kept away from 0 in the forward pass. The
    wavelet branch evaluates an ``(N, out, in)`` tensor. Parameters: ``4·out·in`` plus the norm's.

    Examples:
        >>> WavKANLinear(4, 6, wavelet_type="morlet").eval()(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    spec: ClassVar[FamilySpec] = get_spec("wavkan")
    family: str
    formula: str
    plain_head_kwargs: ClassVar[dict[str, Any]] = {"norm_layer": None, "activation": None}
    input_window: Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        wavelet_type: str = "mexican_hat",
        base_activation: ActLayer = "silu",
        norm_layer: NormLayer = "batch",
        norm_kwargs: Mapping[str, Any] | None = None,
        activation: ActLayer = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.in_features = check_positive("in_features", in_features)
        self.out_features = check_positive("out_features", out_features)
        self.wavelet_type = wavelet_type
        self.wavelet = get_wavelet(wavelet_type)
        self.base_activation = create_activation(base_activation, name="base_activation")
        self.norm = place(create_linear_norm(norm_layer, out_features, **dict(norm_kwargs or {})), device, dtype)
        self.act = place(create_activation(activation, out_features), device, dtype)
        self.scale = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.translation = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.wavelet_weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        window = torch.hamming_window(in_features, periodic=False, dtype=torch.float64)
        window = window if wavelet_type == "shannon" else torch.ones_like(window)
        self.register_buffer(
            "input_window", window.to(device=device, dtype=dtype or torch.get_default_dtype()), persistent=False
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Scales 1, translations 0, weights U(±1/√in) (``nn.Linear``'s default, as the reference)."""
        with torch.no_grad():
            self.scale.fill_(1.0)
            self.translation.zero_()
        for w in (self.wavelet_weight, self.base_weight):
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        reset_parameters_of(self.norm, self.act)

    def forward(self, x: Tensor) -> Tensor:
        h = _flatten_input(self, x, self.in_features)  # (N, in)
        hw = h.float() if h.dtype in _HALF else h
        u = (hw.unsqueeze(1) - self.translation.to(hw.dtype)) / safe_scale(self.scale).to(hw.dtype)  # (N, out, in)
        psi = self.wavelet(u) * self.input_window.to(hw.dtype)
        wav = (psi * self.wavelet_weight.to(hw.dtype)).sum(dim=2).to(h.dtype)
        y = wav + F.linear(self.base_activation(h), self.base_weight)
        y = self.act(self.norm(y))
        out: Tensor = y.reshape(*x.shape[:-1], self.out_features)
        return out

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, wavelet_type={self.wavelet_type!r}"


@register_linear_family("bottleneck_kagn", "y = SiLU(LN(W·SiLU(x) + P_out·KAGN_{m→m}(tanh(P_in·x))))  (bottleneck)")
class BottleNeckKAGNLinear(nn.Module):
    """Gram KA linear layer through a bottleneck (the reference's ``BottleNeckGRAMLayer``).

    ``x`` is projected to ``m`` features, a bias-free Gram KA map ``m → m`` (no base branch, no norm) acts there,
    and a projection brings it back to ``out_features``; a full-width base branch ``W·act(x)`` is added before the
    norm and the activation. ``m = int(max(in, out) / dim_reduction)``, or ``min(min_internal, in, out)`` when that
    is below ``min_internal``.

    Examples:
        >>> BottleNeckKAGNLinear(64, 40, degree=3).inner_features
        16
    """

    family: str
    formula: str
    plain_head_kwargs: ClassVar[dict[str, Any]] = {"norm_layer": None, "activation": None}

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        degree: int = 3,
        dim_reduction: float = 8.0,
        min_internal: int = 16,
        base_activation: ActLayer = "silu",
        basis_activation: ActLayer = "silu",
        activation: ActLayer = "silu",
        norm_layer: NormLayer = "layer",
        norm_kwargs: Mapping[str, Any] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.in_features = check_positive("in_features", in_features)
        self.out_features = check_positive("out_features", out_features)
        if not is_real(dim_reduction) or not dim_reduction > 0:
            raise ValueError(f"dim_reduction must be a number > 0, got {dim_reduction!r}")
        check_positive("min_internal", min_internal)
        self.degree = degree
        inner = int(max(in_features / dim_reduction, out_features / dim_reduction))
        self.inner_features = inner if inner >= min_internal else min(min_internal, in_features, out_features)
        m = self.inner_features
        self.base_activation = create_activation(base_activation, name="base_activation")
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.inner_proj = nn.Linear(in_features, m, **factory)
        self.inner = KALinear(
            m,
            m,
            basis="gram",
            basis_kwargs={"degree": degree, "activation": create_activation(basis_activation, name="basis_activation")},
            squash="tanh",
            use_base=False,
            norm_layer=None,
            activation=None,
            basis_init="xavier",
            **factory,
        )
        self.outer_proj = nn.Linear(m, out_features, **factory)
        self.norm = place(create_linear_norm(norm_layer, out_features, **dict(norm_kwargs or {})), device, dtype)
        self.act = place(create_activation(activation, out_features), device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights (projection biases keep ``nn.Linear``'s default); β ~ N(0, 1/(in·(D + 1)))."""
        self.inner_proj.reset_parameters()
        self.outer_proj.reset_parameters()
        self.inner.reset_parameters()
        for w in (self.base_weight, self.inner_proj.weight, self.outer_proj.weight):
            nn.init.xavier_uniform_(w)
        # The reference scales β by the layer's full input width, not the bottleneck's.
        self.inner.basis.reset_parameters(fan_in=self.in_features)
        reset_parameters_of(self.norm, self.act)

    def forward(self, x: Tensor) -> Tensor:
        h = _flatten_input(self, x, self.in_features)  # (N, in)
        base = F.linear(self.base_activation(h), self.base_weight)
        y = self.outer_proj(self.inner(self.inner_proj(h)))
        y = self.act(self.norm(y + base))
        out: Tensor = y.reshape(*x.shape[:-1], self.out_features)
        return out

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, inner_features={self.inner_features}"
