"""What a family *is*, as data: one :class:`FamilySpec` per family drives its conv layers of every rank, its linear
layer and every variant built around it (bottleneck, mixture of experts, attention, RKAN).

A spec names the basis, declares the family's own options (their names and defaults: ``degree``, ``grid_size`` …;
they configure the basis) and fixes where the squash, base branch, norm, activation and dropout sit in the conv
layer (:class:`~kanconvs.KAConvNd` keywords) and in the linear layer (:class:`~kanconvs.KALinear` keywords). Users
override any of those keywords per layer; options are declared here rather than read from constructor signatures.

The configurations follow the reference implementation (torch-conv-kan) with its bugs fixed. One deliberate
departure: where the reference drops out the *squashed* input of a polynomial basis (KALN, KAGN, KABN, KAHN),
dropout here acts before the squash (``"basis_input"``). Inverted dropout scales the kept values by ``1/(1-p)``,
which pushes them out of the basis' domain ([-1, 1], or [0, 1] for Bernstein) in training only; the polynomials then
see different distributions in training and evaluation and the BatchNorm statistics no longer fit (the seed's
KALN + BatchNorm collapse). Before the squash the values stay in the domain either way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._registry import Registry, unexpected_user_keyword
from .factories import create_activation

__all__ = ["FamilyOption", "FamilySpec", "get_spec", "list_specs", "register_spec"]


@dataclass(frozen=True)
class FamilyOption:
    """A declared family option whose basis keyword differs from its name or whose value needs building."""

    default: Any
    basis_key: str | None = None  # the basis keyword it sets; its own name when None
    build: Callable[[str, Any], Any] | None = None  # (option name, value) -> basis keyword value


@dataclass(frozen=True)
class FamilySpec:
    """One family, described once.

    Args:
        name: registry name (``"kagn"``).
        basis: registered basis name (:func:`kanconvs.list_bases`).
        options: the family's own options and their defaults (a :class:`FamilyOption` where the basis keyword differs).
        conv: :class:`~kanconvs.KAConvNd` keywords of the conv layers; ``None`` when the family has its own conv
            layer class (WavKAN).
        linear: :class:`~kanconvs.KALinear` keywords of the linear layer; ``None`` for an own class.
        formula, linear_formula: one-line summaries (README, ``kanconvs list``).
    """

    name: str
    basis: str
    options: Mapping[str, Any]
    conv: Mapping[str, Any] | None
    linear: Mapping[str, Any] | None
    formula: str
    linear_formula: str
    _options: Mapping[str, FamilyOption] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        opts = {k: v if isinstance(v, FamilyOption) else FamilyOption(v) for k, v in self.options.items()}
        object.__setattr__(self, "_options", MappingProxyType(opts))

    def defaults(self) -> dict[str, Any]:
        """The declared options with their default values."""
        return {name: opt.default for name, opt in self._options.items()}

    def split(self, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``kwargs`` of a family layer → (the basis keywords, from the options and their defaults; the rest)."""
        values = {**self.defaults(), **{k: v for k, v in kwargs.items() if k in self._options}}
        basis: dict[str, Any] = {}
        for name, value in values.items():
            opt = self._options[name]
            basis[opt.basis_key or name] = opt.build(name, value) if opt.build is not None else value
        return basis, {k: v for k, v in kwargs.items() if k not in self._options}


def _activation(name: str, value: Any) -> Any:
    return create_activation(value, name=name)


def family_signature(
    spec: FamilySpec, positional: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> inspect.Signature:
    """The signature a family class shows to ``help()`` and IDEs: the positional arguments, then the family's
    declared options and a class's ``extra`` keywords with their defaults, then ``**kwargs`` (the generic layer's
    keywords)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [
        inspect.Parameter(n, kind, **({} if d is inspect.Parameter.empty else {"default": d}))
        for n, d in positional.items()
    ]
    params += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d)
        for n, d in {**spec.defaults(), **(extra or {})}.items()
    ]
    params.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(params)


def attach_spec(
    cls: type, family: str | None, generic_init: Callable[..., None],
    register: Callable[[FamilySpec], Callable[[type], Any]], positional: Mapping[str, Any],
) -> None:  # fmt: skip
    """``__init_subclass__`` of the family classes: a class naming its ``family`` gets the spec, is registered
    (``register(spec)`` returns the registry's class decorator) and shows the family's signature; a subclass with a
    constructor of its own (the compat classes) shows that constructor's signature instead of the inherited one."""
    if family is None:
        init = next(k.__dict__["__init__"] for k in cls.__mro__ if "__init__" in k.__dict__)
        if init is not generic_init:
            cls.__signature__ = None  # type: ignore[attr-defined]
        return
    spec = get_spec(family)
    cls.spec = spec  # type: ignore[attr-defined]
    register(spec)(cls)
    cls.__signature__ = family_signature(spec, positional)  # type: ignore[attr-defined]


def init_from_spec(
    layer: Any, generic: type, config: Mapping[str, Any] | None, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> None:
    """Run ``generic.__init__`` (``KAConvNd`` or ``KALinear``) on a family layer: ``args``, the spec's basis with the
    declared options, the family's ``config`` and the user's keywords, which win. A user's unknown keyword is
    reported with the family class's name and options rather than the generic layer's."""
    spec: FamilySpec = type(layer).spec
    assert config is not None, f"family {spec.name!r} has its own {generic.__name__} class"
    basis_kwargs, rest = spec.split(kwargs)
    init: Callable[..., None] = vars(generic)["__init__"]
    try:
        init(layer, *args, basis=spec.basis, basis_kwargs=basis_kwargs, **{**config, **rest})
    except TypeError as err:
        if (unknown := unexpected_user_keyword(err, rest)) is None:
            raise
        raise TypeError(
            f"{type(layer).__name__}() got an unexpected keyword argument {unknown!r}; it accepts its options "
            f"{sorted(spec.defaults())} and the keywords of {generic.__name__} (help(kanconvs.{generic.__name__}))"
        ) from None


_SPECS: Registry[FamilySpec] = Registry("family")


def register_spec(spec: FamilySpec) -> FamilySpec:
    """Add a family description. Declaring ``class MyConvNd(FamilyConvNd, family=spec.name)`` (and ``FamilyLinear``)
    then gives its layers, ``create_conv(spec.name, …)``, the variants and ``create_linear``."""
    _SPECS.add(spec.name, spec)
    return spec


def get_spec(name: str) -> FamilySpec:
    """The description of a registered family (a ``ValueError`` naming the valid ones otherwise)."""
    return _SPECS.get(name)


def list_specs() -> list[str]:
    """Names of the registered family descriptions, in registration order."""
    return _SPECS.names()


_POLY_CONV = {"activation": "silu", "dropout_placement": "basis_input", "basis_init": "kaiming_stacked"}
_POLY_LINEAR = {"base_activation": "silu", "activation": "silu", "base_init": "xavier", "basis_init": "normal"}

#: Every built-in family. Norms default to InstanceNorm in the conv layers and LayerNorm in the linear ones.
FAMILY_SPECS: tuple[FamilySpec, ...] = (
    FamilySpec(
        "kan", "bspline", {"grid_size": 5, "spline_order": 3, "grid_range": (-1.0, 1.0)},
        conv={"squash": "none", "base_activation": "gelu", "activation": "prelu", "dropout_placement": "output",
              "basis_init": "kaiming"},
        linear={"squash": "none", "base_activation": "gelu", "activation": "prelu"},
        formula="y = PReLU(norm(conv[GELU(x), B-splines_{G,k}(x)]))",
        linear_formula="y = PReLU(LN(W·[GELU(x), B-splines_{G,k}(x)]))",
    ),
    FamilySpec(
        "fastkan", "rbf", {"grid_size": 8, "grid_range": (-2.0, 2.0), "denominator": None},
        conv={"squash": "none", "base_activation": "silu", "norm_position": "input", "activation": None,
              "dropout_placement": "basis_input", "basis_init": "kaiming"},
        linear={"squash": "none", "base_activation": "silu", "norm_position": "input", "activation": None,
                "base_init": "uniform"},
        formula="y = conv[SiLU(x), exp(-((norm(x) - c_j)/h)^2)]  (Gaussian RBF, input norm)",
        linear_formula="y = W·[SiLU(x), exp(-((LN(x) - c_j)/h)^2)] + b  (Gaussian RBF)",
    ),
    FamilySpec(
        "kaln", "legendre", {"degree": 3},
        conv={"squash": "minmax", "base_activation": None, **_POLY_CONV},
        linear={"squash": "minmax", "base_activation": "silu", "activation": "silu"},
        formula="y = SiLU(norm(conv[x, P_0…P_D(minmax(x))]))  (Legendre)",
        linear_formula="y = SiLU(LN(W·[SiLU(x), P_0…P_D(minmax(x))]))  (Legendre)",
    ),
    FamilySpec(
        "kacn", "chebyshev", {"degree": 3},
        conv={"squash": "tanh", "use_base": False, "activation": None, "dropout_placement": "output",
              "basis_init": "normal"},
        linear={"squash": "tanh", "use_base": False, "activation": None, "norm_layer": None, "basis_init": "normal"},
        formula="y = norm(conv[T_0…T_D(tanh x)])  (Chebyshev, no base branch)",
        linear_formula="y = W·T_0…T_D(tanh x)  (Chebyshev, no base branch)",
    ),
    FamilySpec(
        "kagn", "gram",
        {"degree": 3, "basis_activation": FamilyOption("silu", basis_key="activation", build=_activation)},
        conv={"squash": "tanh", "base_activation": "silu", **_POLY_CONV},
        linear={"squash": "tanh", "base_activation": "silu", "activation": "silu", "base_init": "xavier",
                "basis_init": "xavier"},
        formula="y = SiLU(norm(conv[SiLU(x), SiLU(p_0…p_D(tanh x))]))  (Gram, learnable β)",
        linear_formula="y = SiLU(LN(W·[SiLU(x), SiLU(p_0…p_D(tanh x))]))  (Gram, learnable β)",
    ),
    FamilySpec(
        "kabn", "bernstein", {"degree": 3},
        conv={"squash": "sigmoid", "base_activation": None, **_POLY_CONV},
        linear={"squash": "sigmoid", **_POLY_LINEAR},
        formula="y = SiLU(norm(conv[x, b_{0,D}…b_{D,D}(sigmoid x)]))  (Bernstein)",
        linear_formula="y = SiLU(LN(W·[SiLU(x), b_{0,D}…b_{D,D}(sigmoid x)]))  (Bernstein)",
    ),
    FamilySpec(
        "kahn", "hermite", {"degree": 3},
        conv={"squash": "tanh", "base_activation": "silu", **_POLY_CONV, "basis_init": "normal"},
        linear={"squash": "tanh", **_POLY_LINEAR},
        formula="y = SiLU(norm(conv[SiLU(x), H_0…H_D(tanh x)]))  (Hermite)",
        linear_formula="y = SiLU(LN(W·[SiLU(x), H_0…H_D(tanh x)]))  (Hermite)",
    ),
    FamilySpec(
        "kajn", "jacobi", {"degree": 3, "alpha": 1.0, "beta": 1.0},
        conv={"squash": "tanh", "base_activation": None, "activation": "silu", "dropout_placement": "basis",
              "basis_init": "normal"},
        linear={"squash": "tanh", **_POLY_LINEAR},
        formula="y = SiLU(norm(conv[x, P_0^(a,b)…P_D^(a,b)(tanh x)]))  (Jacobi)",
        linear_formula="y = SiLU(LN(W·[SiLU(x), P_0^(a,b)…P_D^(a,b)(tanh x)]))  (Jacobi)",
    ),
    FamilySpec(
        "relukan", "relu", {"grid_size": 5, "order": 3, "train_phases": True},
        conv={"squash": "none", "base_activation": "silu", "activation": "silu", "dropout_placement": "full",
              "basis_init": "kaiming"},
        linear={"squash": "none", "use_base": False, "norm_layer": None, "activation": None, "bias": True,
                "basis_init": "uniform"},
        formula="y = SiLU(norm(conv[SiLU(x), (r·relu(x-a_j)·relu(b_j-x))^2]))  (ReLU-KAN)",
        linear_formula="y = W·(r·relu(x - a_ij)·relu(b_ij - x))^2 + b  (ReLU-KAN)",
    ),
    FamilySpec(
        "wavkan", "wavelet", {"wavelet_type": "mexican_hat"}, conv=None, linear=None,
        formula="y = norm(conv(SiLU x) + W_out · conv_o[ψ((x_i - t_oi)/s_oi)])  (wavelets)",
        linear_formula="y = BN(Σ_i w_oi·ψ((x_i - t_oi)/s_oi) + W·SiLU(x))  (wavelets)",
    ),
)  # fmt: skip
for _spec in FAMILY_SPECS:
    register_spec(_spec)
