"""torch-conv-kan's ``kans`` package (linear KAN layers and MLPs) with the reference's names and signatures.

``from kanconvs.compat.kans import KAGN, GRAMLayer`` replaces ``from kans import KAGN, GRAMLayer``. Every class is a
thin subclass of the clean layers in :mod:`kanconvs.layers.kan_linear` and :class:`kanconvs.models.KANMLP`, and
``load_state_dict`` accepts the reference's checkpoints directly (their keys and layouts are converted on the way
in; :func:`convert_kans_state_dict` does the same as a pure function).

Deliberate differences from the reference, all bug fixes:

- unknown keyword arguments of the MLPs raise ``TypeError`` instead of being silently ignored;
- ``mlp_relukan(a=, b=)`` passes ``a`` and ``b`` on as the grid size ``g`` and the order ``k`` (the reference's
  MLP swallowed them, so it always built ``g = k = 1``);
- ``KALNLayer`` min–max scales each sample on its own, not by the min and max of the whole batch (identical for a
  batch of one; no NaN on constant inputs);
- ``BernsteinKANLayer`` evaluates the Bernstein basis (the reference's is identically 1 and cannot backpropagate);
- ``ChebyKANLayer`` uses the Chebyshev recurrence (no NaN gradient at ±1), ``ReLUKANLayer``'s phases are real
  tensors (trainable and loadable on CPU), the B-spline knots are a buffer, wavelet scales are kept away from 0;
- ``l1_decay`` is an explicit penalty returned by ``model.regularization_loss()`` (add it to the loss), not a
  gradient hook.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..layers.factories import ActLayer, create_activation
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

__all__ = [
    "KABN",
    "KACN",
    "KAGN",
    "KAJN",
    "KALN",
    "KAN",
    "BernsteinKANLayer",
    "BottleNeckGRAMLayer",
    "BottleNeckKAGN",
    "ChebyKANLayer",
    "FastKAN",
    "FastKANLayer",
    "GRAMLayer",
    "JacobiKANLayer",
    "KALNLayer",
    "KANLayer",
    "RadialBasisFunction",
    "ReLUKAN",
    "ReLUKANLayer",
    "WavKAN",
    "WavKANLayer",
    "convert_kans_state_dict",
    "mlp_bottleneck_kagn",
    "mlp_fastkan",
    "mlp_kabn",
    "mlp_kacn",
    "mlp_kagn",
    "mlp_kajn",
    "mlp_kaln",
    "mlp_kan",
    "mlp_relukan",
    "mlp_wav_kan",
]

StateDict = MutableMapping[str, Tensor]


# ------------------------------------------------------------------------------------ reference key conversion
def _rename(sd: StateDict, prefix: str, mapping: dict[str, str]) -> None:
    """Rename every key starting with ``prefix + old`` to ``prefix + new + rest``."""
    for old, new in mapping.items():
        for key in [k for k in sd if k.startswith(prefix + old)]:
            sd[prefix + new + key[len(prefix + old) :]] = sd.pop(key)


def _fill_buffers(module: nn.Module, sd: StateDict, prefix: str) -> None:
    """Add our persistent buffers that the reference keeps outside its state_dict (e.g. the B-spline knots)."""
    buffers = {name for name, _ in module.named_buffers()}
    for name, value in module.state_dict().items():
        if name in buffers and prefix + name not in sd:
            sd[prefix + name] = value.detach().clone()


def _fuse(base: Tensor | None, basis: Tensor) -> Tensor:
    """Base ``(out, in)`` and basis ``(out, in, K)`` weights → our fused ``(out, in, F)``."""
    return basis if base is None else torch.cat([base.unsqueeze(2), basis], dim=2)


def _num_functions(layer: nn.Module) -> int:
    return int(getattr(layer.basis, "num_functions"))  # noqa: B009 (typed access to a Basis attribute)


def _convert_kan(layer: nn.Module, sd: StateDict, p: str) -> None:
    if p + "spline_weight" not in sd:
        return
    sd[p + "weight"] = _fuse(sd.pop(p + "base_weight"), sd.pop(p + "spline_weight"))
    _rename(sd, p, {"layer_norm.": "norm.", "prelu.weight": "act.weight"})
    _fill_buffers(layer, sd, p)


def _convert_kaln(layer: nn.Module, sd: StateDict, p: str) -> None:
    if p + "poly_weight" not in sd:
        return
    poly = sd.pop(p + "poly_weight")  # (out, in·(D + 1)), input-major
    sd[p + "weight"] = _fuse(sd.pop(p + "base_weight"), poly.reshape(poly.shape[0], -1, _num_functions(layer)))
    _rename(sd, p, {"layer_norm.": "norm."})


def _convert_einsum(coeffs: str, base: str | None) -> Callable[[nn.Module, StateDict, str], None]:
    """Layers whose basis weights are ``(in, out, K)`` einsum operands (ChebyKAN, GRAM, Jacobi, Bernstein)."""

    def convert(layer: nn.Module, sd: StateDict, p: str) -> None:
        if p + coeffs not in sd:
            return
        basis = sd.pop(p + coeffs).permute(1, 0, 2)  # (in, out, K) → (out, in, K)
        sd[p + "weight"] = _fuse(sd.pop(p + base) if base else None, basis).contiguous()
        if p + "beta_weights" in sd:
            sd[p + "basis.beta_weights"] = sd.pop(p + "beta_weights")
        sd.pop(p + "arange", None)  # ChebyKAN's constant 0…D

    return convert


def _convert_fastkan(layer: nn.Module, sd: StateDict, p: str) -> None:
    if p + "spline_linear.weight" not in sd:
        return
    spline = sd.pop(p + "spline_linear.weight")  # (out, in·G), input-major
    spline = spline.reshape(spline.shape[0], -1, _num_functions(layer))
    sd[p + "weight"] = _fuse(sd.pop(p + "base_linear.weight", None), spline)
    if p + "base_linear.bias" in sd:
        sd[p + "bias"] = sd.pop(p + "base_linear.bias")
    _rename(sd, p, {"layernorm.": "input_norm.", "rbf.grid": "basis.grid"})


def _convert_wavkan(layer: nn.Module, sd: StateDict, p: str) -> None:
    if p + "weight1" not in sd:
        return
    _rename(sd, p, {"weight1": "base_weight", "wavelet_weights": "wavelet_weight", "bn.": "norm."})


def _convert_relukan(layer: nn.Module, sd: StateDict, p: str) -> None:
    if p + "equal_size_conv.weight" not in sd:
        return
    w = sd.pop(p + "equal_size_conv.weight")  # (out, 1, K, in) fed with a *reshaped* (in, K) basis
    sd[p + "weight"] = w.reshape(w.shape[0], -1, _num_functions(layer))
    sd[p + "bias"] = sd.pop(p + "equal_size_conv.bias")
    for phase in ("phase_low", "phase_high"):  # the reference's are stride-0 views: materialise them
        sd[p + "basis." + phase] = sd.pop(p + phase).contiguous()


def _convert_bottleneck(layer: nn.Module, sd: StateDict, p: str) -> None:
    if p + "grams_basis_weights" not in sd:
        return
    sd[p + "inner.weight"] = sd.pop(p + "grams_basis_weights").permute(1, 0, 2).contiguous()
    sd[p + "inner.basis.beta_weights"] = sd.pop(p + "beta_weights")
    sd[p + "base_weight"] = sd.pop(p + "base_weights")


_CONVERTERS: dict[str, Callable[[nn.Module, StateDict, str], None]] = {
    "kan": _convert_kan,
    "kaln": _convert_kaln,
    "kacn": _convert_einsum("cheby_coeffs", None),
    "kagn": _convert_einsum("grams_basis_weights", "base_weights"),
    "kajn": _convert_einsum("jacobi_coeffs", "base_weights"),
    "kabn": _convert_einsum("bernstein_coeffs", "base_weights"),
    "fastkan": _convert_fastkan,
    "wavkan": _convert_wavkan,
    "relukan": _convert_relukan,
    "bottleneck_kagn": _convert_bottleneck,
}
_L1_SEGMENT = r"layers\.(\d+)\.module\."


def _convert_module(module: nn.Module, sd: StateDict, prefix: str) -> None:
    """Rewrite, in place, the reference keys of ``module``'s own level (not its children's)."""
    if isinstance(module, KANMLP):
        # The reference wraps L1-regularised layers as ``L1(layer)``: drop the extra ``module.`` segment.
        pattern = re.compile(re.escape(prefix) + _L1_SEGMENT)
        for key in list(sd):
            if m := pattern.match(key):
                sd[f"{prefix}layers.{m.group(1)}.{key[m.end() :]}"] = sd.pop(key)
        return
    family = getattr(module, "family", None)
    if isinstance(family, str) and family in _CONVERTERS and isinstance(module, nn.Module):
        _CONVERTERS[family](module, sd, prefix)


def convert_kans_state_dict(state_dict: StateDict, model: nn.Module) -> dict[str, Tensor]:
    """Convert a reference ``kans`` checkpoint (an MLP or a layer) to the keys and layouts of ``model``.

    ``model`` may be a compat class of this module or the matching clean one (:class:`~kanconvs.models.KANMLP`,
    :class:`~kanconvs.layers.KAGNLinear` …). Keys already in our layout pass through unchanged.

    Examples:
        >>> ref = {"cheby_coeffs": torch.zeros(4, 6, 4), "arange": torch.arange(4)}
        >>> sorted(convert_kans_state_dict(ref, ChebyKANLayer(4, 6, 3)))
        ['weight']
    """
    sd = dict(state_dict)
    for name, module in model.named_modules():  # parents first: the MLP renames its keys before its layers
        _convert_module(module, sd, f"{name}." if name else "")
    return sd


def _reference_pre_hook(module: nn.Module, state_dict: StateDict, prefix: str, *_: Any) -> None:
    _convert_module(module, state_dict, prefix)


def _accept_reference_checkpoints(module: nn.Module) -> None:
    module.register_load_state_dict_pre_hook(_reference_pre_hook)


def _one_activation(act: ActLayer, name: str) -> nn.Module:
    """The reference builds ``act()`` once and uses that instance everywhere in the layer."""
    return create_activation(act, name=name)


# ------------------------------------------------------------------------------------------------------ layers
class KANLayer(KANLinear):
    """The reference's ``KANLayer``: see :class:`~kanconvs.layers.KANLinear`.

    Examples:
        >>> KANLayer(4, 6)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    def __init__(
        self,
        input_features: int,
        output_features: int,
        grid_size: int = 5,
        spline_order: int = 3,
        base_activation: ActLayer = nn.GELU,
        grid_range: Sequence[float] = [-1, 1],  # the reference's default, never mutated
    ) -> None:
        super().__init__(
            input_features,
            output_features,
            grid_size=grid_size,
            spline_order=spline_order,
            grid_range=(float(grid_range[0]), float(grid_range[1])),
            base_activation=base_activation,
        )
        self.input_features, self.output_features = input_features, output_features
        self.grid_size, self.spline_order, self.grid_range = grid_size, spline_order, list(grid_range)
        _accept_reference_checkpoints(self)


class KALNLayer(KALNLinear):
    """The reference's ``KALNLayer``: see :class:`~kanconvs.layers.KALNLinear` (min–max per sample).

    ``base_activation`` acts on the base branch and on the output, as in the reference.

    Examples:
        >>> KALNLayer(4, 6, 3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    def __init__(
        self, input_features: int, output_features: int, degree: int = 3, base_activation: ActLayer = nn.SiLU
    ) -> None:
        act = _one_activation(base_activation, "base_activation")
        super().__init__(input_features, output_features, degree=degree, base_activation=act, activation=act)
        self.input_features, self.output_features, self.polynomial_order = input_features, output_features, degree
        _accept_reference_checkpoints(self)


class ChebyKANLayer(KACNLinear):
    """The reference's ``ChebyKANLayer``: see :class:`~kanconvs.layers.KACNLinear`.

    Examples:
        >>> ChebyKANLayer(4, 6, 3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    def __init__(self, input_dim: int, output_dim: int, degree: int) -> None:
        super().__init__(input_dim, output_dim, degree=degree)
        self.inputdim, self.outdim = input_dim, output_dim
        _accept_reference_checkpoints(self)


class GRAMLayer(KAGNLinear):
    """The reference's ``GRAMLayer``: see :class:`~kanconvs.layers.KAGNLinear`; ``act`` is used in all three places.

    Examples:
        >>> GRAMLayer(4, 6, 3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    def __init__(self, in_channels: int, out_channels: int, degree: int = 3, act: ActLayer = nn.SiLU) -> None:
        a = _one_activation(act, "act")
        super().__init__(in_channels, out_channels, degree=degree, base_activation=a, basis_activation=a, activation=a)
        self.in_channels, self.out_channels, self.degrees = in_channels, out_channels, degree
        _accept_reference_checkpoints(self)


class FastKANLayer(FastKANLinear):
    """The reference's ``FastKANLayer``: see :class:`~kanconvs.layers.FastKANLinear`.

    ``forward(x, time_benchmark=True)`` skips the input LayerNorm, as in the reference.

    Examples:
        >>> FastKANLayer(4, 6)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        grid_min: float = -2.0,
        grid_max: float = 2.0,
        num_grids: int = 8,
        use_base_update: bool = True,
        base_activation: ActLayer = nn.SiLU,
        spline_weight_init_scale: float = 0.1,
    ) -> None:
        super().__init__(
            input_dim,
            output_dim,
            grid_size=num_grids,
            grid_range=(grid_min, grid_max),
            use_base=use_base_update,
            base_activation=base_activation,
            spline_weight_init_scale=spline_weight_init_scale,
        )
        self.use_base_update = use_base_update
        _accept_reference_checkpoints(self)

    def forward(self, x: Tensor, time_benchmark: bool = False) -> Tensor:
        return self._forward(x, input_norm=not time_benchmark)


class WavKANLayer(WavKANLinear):
    """The reference's ``WavKANLayer``: see :class:`~kanconvs.layers.WavKANLinear`.

    An unknown ``wavelet_type`` raises ``ValueError`` here, not at the first forward.

    Examples:
        >>> WavKANLayer(4, 6).eval()(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    def __init__(self, in_features: int, out_features: int, wavelet_type: str = "mexican_hat") -> None:
        super().__init__(in_features, out_features, wavelet_type=wavelet_type)
        _accept_reference_checkpoints(self)


class JacobiKANLayer(KAJNLinear):
    """The reference's ``JacobiKANLayer``: see :class:`~kanconvs.layers.KAJNLinear`; ``act`` on base and output.

    Examples:
        >>> JacobiKANLayer(4, 6, 3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    def __init__(
        self, input_dim: int, output_dim: int, degree: int, a: float = 1.0, b: float = 1.0, act: ActLayer = nn.SiLU
    ) -> None:
        m = _one_activation(act, "act")
        super().__init__(input_dim, output_dim, degree=degree, alpha=a, beta=b, base_activation=m, activation=m)
        self.inputdim, self.outdim, self.a, self.b = input_dim, output_dim, a, b
        _accept_reference_checkpoints(self)


class BernsteinKANLayer(KABNLinear):
    """The reference's ``BernsteinKANLayer`` with a working Bernstein basis: see :class:`~kanconvs.layers.KABNLinear`.

    Examples:
        >>> BernsteinKANLayer(4, 6, 3)(torch.randn(5, 4)).shape
        torch.Size([5, 6])
    """

    def __init__(self, input_dim: int, output_dim: int, degree: int, act: ActLayer = nn.SiLU) -> None:
        m = _one_activation(act, "act")
        super().__init__(input_dim, output_dim, degree=degree, base_activation=m, activation=m)
        self.inputdim, self.outdim = input_dim, output_dim
        _accept_reference_checkpoints(self)


class ReLUKANLayer(ReLUKANLinear):
    """The reference's ``ReLUKANLayer`` (note the argument order): see :class:`~kanconvs.layers.ReLUKANLinear`.

    Examples:
        >>> ReLUKANLayer(4, 5, 3, 6)(torch.randn(2, 4)).shape
        torch.Size([2, 6])
    """

    def __init__(self, input_size: int, g: int, k: int, output_size: int, train_ab: bool = True) -> None:
        super().__init__(input_size, output_size, grid_size=g, order=k, train_phases=train_ab)
        self.input_size, self.output_size = input_size, output_size
        self.g, self.k, self.r = g, k, 4 * g * g / ((k + 1) * (k + 1))
        _accept_reference_checkpoints(self)


class BottleNeckGRAMLayer(BottleNeckKAGNLinear):
    """The reference's ``BottleNeckGRAMLayer``: see :class:`~kanconvs.layers.BottleNeckKAGNLinear`.

    Examples:
        >>> BottleNeckGRAMLayer(64, 40).inner_dim
        16
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        degree: int = 3,
        act: ActLayer = nn.SiLU,
        dim_reduction: float = 8,
        min_internal: int = 16,
    ) -> None:
        a = _one_activation(act, "act")
        super().__init__(
            in_channels,
            out_channels,
            degree=degree,
            dim_reduction=dim_reduction,
            min_internal=min_internal,
            base_activation=a,
            basis_activation=a,
            activation=a,
        )
        self.in_channels, self.out_channels, self.degrees = in_channels, out_channels, degree
        self.dim_reduction, self.min_internal, self.inner_dim = dim_reduction, min_internal, self.inner_features
        _accept_reference_checkpoints(self)


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
def _reject_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(
            f"{name}() got unexpected keyword arguments {sorted(kwargs)} (the reference silently ignored them; "
            "kanconvs raises so that a misspelt option cannot go unnoticed)"
        )


class _KansMLP(KANMLP):
    def _init_mlp(
        self,
        name: str,
        kwargs: dict[str, Any],
        layers_hidden: Sequence[int],
        layer: Callable[[int, int], nn.Module],
        dropout: float,
        l1_decay: float,
        first_dropout: bool,
    ) -> None:
        _reject_kwargs(name, kwargs)
        KANMLP.__init__(self, layers_hidden, layer, dropout=dropout, first_dropout=first_dropout, l1_decay=l1_decay)
        _accept_reference_checkpoints(self)


class KAN(_KansMLP):
    """The reference's ``KAN`` MLP of :class:`KANLayer` s: see :class:`~kanconvs.models.KANMLP`.

    Examples:
        >>> KAN([4, 8, 3])(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        grid_size: int = 5,
        spline_order: int = 3,
        base_activation: ActLayer = nn.GELU,
        grid_range: Sequence[float] = [-1, 1],  # the reference's default, never mutated
        l1_decay: float = 0.0,
        first_dropout: bool = True,
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return KANLayer(i, o, grid_size, spline_order, base_activation, grid_range)

        self._init_mlp("KAN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


class KALN(_KansMLP):
    """The reference's ``KALN`` MLP of :class:`KALNLayer` s.

    Examples:
        >>> KALN([4, 8, 3])(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        degree: int = 3,
        base_activation: ActLayer = nn.SiLU,
        first_dropout: bool = True,
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return KALNLayer(i, o, degree, base_activation=base_activation)

        self._init_mlp("KALN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


class KACN(_KansMLP):
    """The reference's ``KACN`` MLP of :class:`ChebyKANLayer` s.

    Examples:
        >>> KACN([4, 8, 3])(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        degree: int = 3,
        first_dropout: bool = True,
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return ChebyKANLayer(i, o, degree)

        self._init_mlp("KACN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


class KAGN(_KansMLP):
    """The reference's ``KAGN`` MLP of :class:`GRAMLayer` s.

    Examples:
        >>> KAGN([4, 8, 3])(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        degree: int = 3,
        base_activation: ActLayer = nn.SiLU,
        first_dropout: bool = True,
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return GRAMLayer(i, o, degree, act=base_activation)

        self._init_mlp("KAGN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


class FastKAN(_KansMLP):
    """The reference's ``FastKAN`` MLP of :class:`FastKANLayer` s.

    Examples:
        >>> FastKAN([4, 8, 3])(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        grid_range: Sequence[float] = [-2, 2],  # the reference's default, never mutated
        grid_size: int = 8,
        use_base_update: bool = True,
        base_activation: ActLayer = nn.SiLU,
        spline_weight_init_scale: float = 0.1,
        first_dropout: bool = True,
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return FastKANLayer(
                i,
                o,
                grid_min=grid_range[0],
                grid_max=grid_range[1],
                num_grids=grid_size,
                use_base_update=use_base_update,
                base_activation=base_activation,
                spline_weight_init_scale=spline_weight_init_scale,
            )

        self._init_mlp("FastKAN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


class WavKAN(_KansMLP):
    """The reference's ``WavKAN`` MLP of :class:`WavKANLayer` s.

    Examples:
        >>> WavKAN([4, 8, 3]).eval()(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        first_dropout: bool = True,
        wavelet_type: str = "mexican_hat",
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return WavKANLayer(i, o, wavelet_type=wavelet_type)

        self._init_mlp("WavKAN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


class KAJN(_KansMLP):
    """The reference's ``KAJN`` MLP of :class:`JacobiKANLayer` s.

    Examples:
        >>> KAJN([4, 8, 3])(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        degree: int = 3,
        a: float = 1,
        b: float = 1,
        base_activation: ActLayer = nn.SiLU,
        first_dropout: bool = True,
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return JacobiKANLayer(i, o, degree, a=a, b=b, act=base_activation)

        self._init_mlp("KAJN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


class KABN(_KansMLP):
    """The reference's ``KABN`` MLP of :class:`BernsteinKANLayer` s.

    Examples:
        >>> KABN([4, 8, 3])(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        degree: int = 3,
        base_activation: ActLayer = nn.SiLU,
        first_dropout: bool = True,
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return BernsteinKANLayer(i, o, degree, act=base_activation)

        self._init_mlp("KABN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


class ReLUKAN(_KansMLP):
    """The reference's ``ReLUKAN`` MLP of :class:`ReLUKANLayer` s (``g`` grid cells, order ``k``).

    Examples:
        >>> ReLUKAN([4, 8, 3], g=5, k=3)(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        g: int = 1,
        k: int = 1,
        train_ab: bool = True,
        first_dropout: bool = True,
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return ReLUKANLayer(i, g, k, o, train_ab=train_ab)

        self._init_mlp("ReLUKAN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


class BottleNeckKAGN(_KansMLP):
    """The reference's ``BottleNeckKAGN`` MLP of :class:`BottleNeckGRAMLayer` s.

    Examples:
        >>> BottleNeckKAGN([4, 8, 3])(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        degree: int = 3,
        base_activation: ActLayer = nn.SiLU,
        first_dropout: bool = True,
        dim_reduction: float = 8,
        min_internal: int = 16,
        **kwargs: Any,
    ) -> None:
        def layer(i: int, o: int) -> nn.Module:
            return BottleNeckGRAMLayer(
                i, o, degree, act=base_activation, dim_reduction=dim_reduction, min_internal=min_internal
            )

        self._init_mlp("BottleNeckKAGN", kwargs, layers_hidden, layer, dropout, l1_decay, first_dropout)


# --------------------------------------------------------------------------------------------------- factories
# The reference's factories; note their GELU defaults, which differ from the classes' SiLU.
def mlp_kan(
    layers_hidden: Sequence[int],
    dropout: float = 0.0,
    grid_size: int = 5,
    spline_order: int = 3,
    base_activation: ActLayer = nn.GELU,
    grid_range: Sequence[float] = [-1, 1],  # the reference's default, never mutated
    l1_decay: float = 0.0,
) -> KAN:
    """A :class:`KAN` MLP. Example: ``mlp_kan([784, 64, 10], dropout=0.1)``."""
    return KAN(
        layers_hidden,
        dropout=dropout,
        grid_size=grid_size,
        spline_order=spline_order,
        base_activation=base_activation,
        grid_range=grid_range,
        l1_decay=l1_decay,
    )


def mlp_fastkan(
    layers_hidden: Sequence[int],
    dropout: float = 0.0,
    grid_size: int = 5,
    base_activation: ActLayer = nn.GELU,
    grid_range: Sequence[float] = [-1, 1],  # the reference's default, never mutated
    l1_decay: float = 0.0,
) -> FastKAN:
    """A :class:`FastKAN` MLP (grid 5 on [-1, 1] here, unlike the class's 8 on [-2, 2], as in the reference)."""
    return FastKAN(
        layers_hidden,
        dropout=dropout,
        grid_size=grid_size,
        base_activation=base_activation,
        grid_range=grid_range,
        l1_decay=l1_decay,
    )


def mlp_kaln(
    layers_hidden: Sequence[int],
    dropout: float = 0.0,
    degree: int = 3,
    base_activation: ActLayer = nn.GELU,
    l1_decay: float = 0.0,
) -> KALN:
    """A :class:`KALN` MLP. Example: ``mlp_kaln([784, 64, 10], degree=3)``."""
    return KALN(layers_hidden, dropout=dropout, degree=degree, base_activation=base_activation, l1_decay=l1_decay)


def mlp_kabn(
    layers_hidden: Sequence[int],
    dropout: float = 0.0,
    degree: int = 3,
    base_activation: ActLayer = nn.GELU,
    l1_decay: float = 0.0,
) -> KABN:
    """A :class:`KABN` MLP. Example: ``mlp_kabn([784, 64, 10], degree=3)``."""
    return KABN(layers_hidden, dropout=dropout, degree=degree, base_activation=base_activation, l1_decay=l1_decay)


def mlp_kacn(layers_hidden: Sequence[int], dropout: float = 0.0, degree: int = 3, l1_decay: float = 0.0) -> KACN:
    """A :class:`KACN` MLP. Example: ``mlp_kacn([784, 64, 10], degree=3)``."""
    return KACN(layers_hidden, dropout=dropout, degree=degree, l1_decay=l1_decay)


def mlp_kajn(
    layers_hidden: Sequence[int],
    dropout: float = 0.0,
    degree: int = 3,
    l1_decay: float = 0.0,
    a: float = 1.0,
    b: float = 1.0,
) -> KAJN:
    """A :class:`KAJN` MLP (its activation stays SiLU). Example: ``mlp_kajn([784, 64, 10], a=0.5, b=0.5)``."""
    return KAJN(layers_hidden, dropout=dropout, degree=degree, l1_decay=l1_decay, a=a, b=b)


def mlp_kagn(
    layers_hidden: Sequence[int],
    dropout: float = 0.0,
    degree: int = 3,
    base_activation: ActLayer = nn.GELU,
    l1_decay: float = 0.0,
) -> KAGN:
    """A :class:`KAGN` MLP. Example: ``mlp_kagn([784, 64, 10], degree=3)``."""
    return KAGN(layers_hidden, dropout=dropout, degree=degree, base_activation=base_activation, l1_decay=l1_decay)


def mlp_bottleneck_kagn(
    layers_hidden: Sequence[int],
    dropout: float = 0.0,
    degree: int = 3,
    base_activation: ActLayer = nn.GELU,
    l1_decay: float = 0.0,
    dim_reduction: float = 8,
    min_internal: int = 16,
) -> BottleNeckKAGN:
    """A :class:`BottleNeckKAGN` MLP. Example: ``mlp_bottleneck_kagn([784, 256, 10], dim_reduction=4)``."""
    return BottleNeckKAGN(
        layers_hidden,
        dropout=dropout,
        degree=degree,
        base_activation=base_activation,
        l1_decay=l1_decay,
        dim_reduction=dim_reduction,
        min_internal=min_internal,
    )


def mlp_relukan(
    layers_hidden: Sequence[int],
    dropout: float = 0.0,
    a: int = 1,
    b: int = 1,
    train_ab: bool = True,
    l1_decay: float = 0.0,
) -> ReLUKAN:
    """A :class:`ReLUKAN` MLP with grid size ``g = a`` and order ``k = b``.

    The reference passed ``a=`` and ``b=`` to an MLP that ignored them, so it always built ``g = k = 1``; here they
    take effect (the defaults still give ``g = k = 1``). Example: ``mlp_relukan([784, 64, 10], a=5, b=3)``.
    """
    return ReLUKAN(layers_hidden, dropout=dropout, g=a, k=b, train_ab=train_ab, l1_decay=l1_decay)


def mlp_wav_kan(
    layers_hidden: Sequence[int], dropout: float = 0.0, wavelet_type: str = "mexican_hat", l1_decay: float = 0.0
) -> WavKAN:
    """A :class:`WavKAN` MLP. Example: ``mlp_wav_kan([784, 64, 10], wavelet_type="dog")``."""
    return WavKAN(layers_hidden, dropout=dropout, wavelet_type=wavelet_type, l1_decay=l1_decay)
