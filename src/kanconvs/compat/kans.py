"""torch-conv-kan's ``kans`` package (linear KAN layers and MLPs) with the reference's names and signatures.

``from kanconvs.compat.kans import KAGN, GRAMLayer`` replaces ``from kans import KAGN, GRAMLayer``; the classes are
thin subclasses of :mod:`kanconvs.layers.kan_linear` and :class:`kanconvs.models.KANMLP` that load the reference's
checkpoints. What differs (all bug fixes): docs/migrating.md, "Differences, module by module".
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import torch
from torch import Tensor, nn

from ..convert import convert_reference_state_dict
from ..layers.factories import create_activation
from ..layers.kan_linear import (
    BottleNeckKAGNLinear,
    FastKANLinear,
    KABNLinear,
    KACNLinear,
    KAGNLinear,
    KAJNLinear,
    KALNLinear,
    KANLinear,
    ReLUKANLinear,
    WavKANLinear,
)
from ..models.kan_mlp import KANMLP
from ._generate import Values, exports, reference_class, reference_function

StateDict = MutableMapping[str, Tensor]


def convert_kans_state_dict(state_dict: StateDict, model: nn.Module) -> dict[str, Tensor]:
    """Convert a reference ``kans`` checkpoint (an MLP or a layer) to the keys and layouts of ``model``
    (:func:`kanconvs.convert_reference_state_dict`, which converts every torch-conv-kan layout).

    Examples:
        >>> ref = {"cheby_coeffs": torch.zeros(4, 6, 4), "arange": torch.arange(4)}
        >>> sorted(convert_kans_state_dict(ref, ChebyKANLayer(4, 6, 3)))
        ['weight']
    """
    return convert_reference_state_dict(state_dict, model)


# ------------------------------------------------------------------------------------------------------ layers
# One row per reference layer: the kanconvs class it becomes, its arguments' names there, the activation it shares
# (the reference builds ``act()`` once and uses that instance in every place listed), the attributes it keeps.
def _layer(
    name: str, base: type, renames: dict[str, str], attrs: dict[str, str] | None = None, *,
    shared_act: tuple[str, ...] = (), note: str = "", example: str = "4, 6, 3", **extra: Any,
) -> Any:  # fmt: skip
    def build(v: Values) -> Values:
        kw = {ours: v[ref] for ref, ours in renames.items()}
        if "grid_range" in kw:
            kw["grid_range"] = (float(kw["grid_range"][0]), float(kw["grid_range"][1]))
        if shared_act:
            act = create_activation(v[shared_act[0]], name=shared_act[0])
            kw.update(dict.fromkeys(shared_act[1:], act))
        return kw

    doc = f"""The reference's ``{name}``: see :class:`~kanconvs.layers.{base.__name__}`.{note}

    Examples:
        >>> {name}({example}).eval()(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """
    return reference_class(name, base, build, module=__name__, doc=doc, attrs=attrs, **extra)


_IO = {"input_dim": "in_features", "output_dim": "out_features", "degree": "degree"}
_IO_ATTRS = {"inputdim": "input_dim", "outdim": "output_dim"}
_SHARED_ACT = ("act", "base_activation", "activation")
KANLayer = _layer(
    "KANLayer", KANLinear,
    {"input_features": "in_features", "output_features": "out_features", "grid_size": "grid_size",
     "spline_order": "spline_order", "grid_range": "grid_range", "base_activation": "base_activation"},
    {k: k for k in ("input_features", "output_features", "grid_size", "spline_order", "grid_range")}, example="4, 6",
)  # fmt: skip
KALNLayer = _layer(
    "KALNLayer", KALNLinear, {"input_features": "in_features", "output_features": "out_features", "degree": "degree"},
    {"input_features": "input_features", "output_features": "output_features", "polynomial_order": "degree"},
    shared_act=("base_activation", "base_activation", "activation"),
    note=" Min–max per sample; ``base_activation`` acts on the base branch and on the output, as in the reference.",
)  # fmt: skip
ChebyKANLayer = _layer("ChebyKANLayer", KACNLinear, _IO, _IO_ATTRS)
GRAMLayer = _layer(
    "GRAMLayer", KAGNLinear, {"in_channels": "in_features", "out_channels": "out_features", "degree": "degree"},
    {"in_channels": "in_channels", "out_channels": "out_channels", "degrees": "degree"},
    shared_act=("act", "base_activation", "basis_activation", "activation"),
    note=" ``act`` is used in all three places.",
)  # fmt: skip


def _fastkan_forward(self: FastKANLinear, x: Tensor, time_benchmark: bool = False) -> Tensor:
    return self._forward(x, input_norm=not time_benchmark)


FastKANLayer = reference_class(
    "FastKANLayer", FastKANLinear,
    lambda v: {"in_features": v["input_dim"], "out_features": v["output_dim"], "grid_size": v["num_grids"],
               "grid_range": (v["grid_min"], v["grid_max"]), "use_base": v["use_base_update"],
               "base_activation": v["base_activation"], "spline_weight_init_scale": v["spline_weight_init_scale"]},
    module=__name__, attrs={"use_base_update": "use_base_update"}, namespace={"forward": _fastkan_forward},
    doc="""The reference's ``FastKANLayer``: see :class:`~kanconvs.layers.FastKANLinear`.

    ``forward(x, time_benchmark=True)`` skips the input LayerNorm, as in the reference.

    Examples:
        >>> FastKANLayer(4, 6)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """,
)  # fmt: skip
WavKANLayer = _layer(
    "WavKANLayer", WavKANLinear, {k: k for k in ("in_features", "out_features", "wavelet_type")}, example="4, 6",
    note=" An unknown ``wavelet_type`` raises ``ValueError`` here, not at the first forward.",
)  # fmt: skip
JacobiKANLayer = _layer(
    "JacobiKANLayer", KAJNLinear, {**_IO, "a": "alpha", "b": "beta"}, {**_IO_ATTRS, "a": "a", "b": "b"},
    shared_act=_SHARED_ACT, note=" ``act`` acts on the base branch and on the output.",
)  # fmt: skip
BernsteinKANLayer = _layer(
    "BernsteinKANLayer", KABNLinear, _IO, _IO_ATTRS, shared_act=_SHARED_ACT, note=" The Bernstein basis works here."
)
ReLUKANLayer = _layer(
    "ReLUKANLayer", ReLUKANLinear,
    {"input_size": "in_features", "output_size": "out_features", "g": "grid_size", "k": "order",
     "train_ab": "train_phases"},
    {k: k for k in ("input_size", "output_size", "g", "k")}, example="4, 5, 3, 6",
    after=lambda self, v: setattr(self, "r", 4 * v["g"] * v["g"] / ((v["k"] + 1) * (v["k"] + 1))),
    note=" Note the argument order: ``(input_size, g, k, output_size)``.",
)  # fmt: skip
BottleNeckGRAMLayer = _layer(
    "BottleNeckGRAMLayer", BottleNeckKAGNLinear,
    {"in_channels": "in_features", "out_channels": "out_features", "degree": "degree",
     "dim_reduction": "dim_reduction", "min_internal": "min_internal"},
    {k: k for k in ("in_channels", "out_channels", "dim_reduction", "min_internal")} | {"degrees": "degree"},
    shared_act=("act", "base_activation", "basis_activation", "activation"),
    after=lambda self, v: setattr(self, "inner_dim", self.inner_features),
)  # fmt: skip


class RadialBasisFunction(nn.Module):
    """The reference's ``RadialBasisFunction``: ``exp(-((x[..., None] - grid) / denominator)^2)``.

    ``grid`` is a buffer (the reference's is a frozen parameter; the state_dict key is the same). The denominator
    defaults to the grid spacing (the full range for a single centre).

    Examples:
        >>> RadialBasisFunction()(torch.zeros(2, 3)).shape
        torch.Size([2, 3, 8])
    """

    grid: Tensor

    def __init__(
        self, grid_min: float = -2.0, grid_max: float = 2.0, num_grids: int = 8, denominator: float | None = None
    ) -> None:
        super().__init__()
        if isinstance(num_grids, bool) or not isinstance(num_grids, int) or num_grids < 1:
            raise ValueError(f"num_grids must be a positive integer, got {num_grids!r}")
        if not grid_min < grid_max:
            raise ValueError(f"grid_min must be < grid_max, got grid_min={grid_min!r}, grid_max={grid_max!r}")
        self.grid_min, self.grid_max = grid_min, grid_max
        self.register_buffer("grid", torch.linspace(grid_min, grid_max, num_grids))
        # As the reference, a falsy denominator (None or 0) means the spacing.
        self.denominator = float(denominator) if denominator else (grid_max - grid_min) / max(num_grids - 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(-(((x.unsqueeze(-1) - self.grid.to(x.dtype)) / self.denominator) ** 2))

    def extra_repr(self) -> str:
        return f"num_grids={self.grid.numel()}, denominator={self.denominator:g}"


# -------------------------------------------------------------------------------------------------------- MLPs
def _reject_kwargs(name: str, kwargs: Values) -> None:
    if kwargs:
        raise TypeError(
            f"{name}() got unexpected keyword arguments {sorted(kwargs)} (the reference silently ignored them; "
            "kanconvs raises so that a misspelt option cannot go unnoticed)"
        )


def _mlp(name: str, layer: type, make: Callable[[int, int, Values], nn.Module], example: str = "") -> Any:
    """The reference MLP ``name``: a :class:`~kanconvs.models.KANMLP` of ``make(in, out, values)`` layers."""

    def build(v: Values) -> Values:
        _reject_kwargs(name, v["kwargs"])
        return {"layers_hidden": v["layers_hidden"], "family": lambda i, o: make(i, o, v), "dropout": v["dropout"],
                "first_dropout": v["first_dropout"], "l1_decay": v["l1_decay"]}  # fmt: skip

    doc = f"""The reference's ``{name}`` MLP of :class:`{layer.__name__}` s: a :class:`~kanconvs.models.KANMLP`.

    Examples:
        >>> {name}([4, 8, 3]{example}).eval()(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """
    return reference_class(name, KANMLP, build, module=__name__, doc=doc)


def _kan_layer(i: int, o: int, v: Values) -> nn.Module:
    return KANLayer(i, o, v["grid_size"], v["spline_order"], v["base_activation"], v["grid_range"])


def _fastkan_layer(i: int, o: int, v: Values) -> nn.Module:
    return FastKANLayer(
        i, o, grid_min=v["grid_range"][0], grid_max=v["grid_range"][1], num_grids=v["grid_size"],
        use_base_update=v["use_base_update"], base_activation=v["base_activation"],
        spline_weight_init_scale=v["spline_weight_init_scale"],
    )  # fmt: skip


KAN = _mlp("KAN", KANLayer, _kan_layer)
KALN = _mlp("KALN", KALNLayer, lambda i, o, v: KALNLayer(i, o, v["degree"], base_activation=v["base_activation"]))
KACN = _mlp("KACN", ChebyKANLayer, lambda i, o, v: ChebyKANLayer(i, o, v["degree"]))
KAGN = _mlp("KAGN", GRAMLayer, lambda i, o, v: GRAMLayer(i, o, v["degree"], act=v["base_activation"]))
FastKAN = _mlp("FastKAN", FastKANLayer, _fastkan_layer)
WavKAN = _mlp("WavKAN", WavKANLayer, lambda i, o, v: WavKANLayer(i, o, wavelet_type=v["wavelet_type"]))
KAJN = _mlp(
    "KAJN", JacobiKANLayer,
    lambda i, o, v: JacobiKANLayer(i, o, v["degree"], a=v["a"], b=v["b"], act=v["base_activation"]),
)  # fmt: skip
KABN = _mlp("KABN", BernsteinKANLayer, lambda i, o, v: BernsteinKANLayer(i, o, v["degree"], act=v["base_activation"]))
# ``g`` grid cells of order ``k``.
ReLUKAN = _mlp(
    "ReLUKAN", ReLUKANLayer, lambda i, o, v: ReLUKANLayer(i, v["g"], v["k"], o, train_ab=v["train_ab"]), ", g=5, k=3"
)
BottleNeckKAGN = _mlp(
    "BottleNeckKAGN", BottleNeckGRAMLayer,
    lambda i, o, v: BottleNeckGRAMLayer(i, o, v["degree"], act=v["base_activation"], dim_reduction=v["dim_reduction"],
                                        min_internal=v["min_internal"]),
)  # fmt: skip


# --------------------------------------------------------------------------------------------------- factories
# The reference's factories (note their GELU defaults, which differ from the classes' SiLU): name → (MLP, note).
_FACTORIES: dict[str, tuple[Any, str]] = {
    "mlp_kan": (KAN, ""),
    "mlp_fastkan": (FastKAN, " Grid 5 on [-1, 1] here, unlike the class's 8 on [-2, 2], as in the reference."),
    "mlp_kaln": (KALN, ""),
    "mlp_kabn": (KABN, ""),
    "mlp_kacn": (KACN, ""),
    "mlp_kajn": (KAJN, " Its activation stays SiLU."),
    "mlp_kagn": (KAGN, ""),
    "mlp_bottleneck_kagn": (BottleNeckKAGN, ""),
    # The reference passed a= and b= to an MLP that ignored them, so it always built g = k = 1 (still the default).
    "mlp_relukan": (ReLUKAN, " ``a`` and ``b`` are the grid size ``g`` and the order ``k``."),
    "mlp_wav_kan": (WavKAN, ""),
}
_RENAMES = {"mlp_relukan": {"a": "g", "b": "k"}}


def _renamed(renames: dict[str, str]) -> Callable[[Values], Values]:
    return lambda v: {renames.get(k, k): x for k, x in v.items()}


for _name, (_mlp_class, _note) in _FACTORIES.items():
    globals()[_name] = reference_function(
        _name, _mlp_class, _renamed(_RENAMES.get(_name, {})),
        module=__name__, doc=f"torch-conv-kan's ``{_name}``: a :class:`{_mlp_class.__name__}` MLP.{_note}",
    )  # fmt: skip


__all__ = exports(globals(), "convert_kans_state_dict")
