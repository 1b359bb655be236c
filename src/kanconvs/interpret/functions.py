r"""The learned univariate functions φ of a KA layer, evaluated exactly as the layer computes them, and their plot.

A KA layer expands every input channel ``i`` into features ``f`` (base branch, basis functions) and mixes them with
``weight[o, i, f, p]`` (``p``: kernel tap), so the function it learned for the pair *input i → output o* at tap ``p``
is

.. math:: φ_{o,i,p}(x) = \sum_f w_{o,i,f,p}\, \mathrm{feature}_f(x)

and the response of output ``o`` to a constant input patch of value ``x`` on channel ``i`` is ``Σ_p φ_{o,i,p}(x)``
(``taps="sum"``). φ excludes the bias and whatever follows the mixing (output norm, activation, dropout).

Examples:
    >>> from kanconvs import KACNConv2d
    >>> layer = KACNConv2d(4, 8, 3, degree=3)
    >>> x, phi, pairs = learned_functions(layer, pairs=[(0, 0), (3, 7)], num_points=50)
    >>> x.shape, phi.shape, pairs
    (torch.Size([50]), torch.Size([2, 50]), [(0, 0), (3, 7)])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from ..bases.bspline import BSplineBasis
from ..bases.rbf import RBFBasis
from ..bases.relu import ReLUBasis
from ..bases.wavelet import WaveletBasis, safe_scale
from ..layers.factories import MinMaxSquash
from ..layers.kan_conv import KAConvNd
from ..layers.kan_linear import KALinear, WavKANLinear
from ..layers.wavkan import WavKANConvNd

__all__ = [
    "KA_LAYER_TYPES",
    "LearnedFunctions",
    "Taps",
    "default_pairs",
    "default_range",
    "find_layer",
    "ka_layers",
    "learned_functions",
    "plot_functions",
]

#: ``"sum"``: Σ over kernel taps (the response to a constant patch); ``"center"``: the centre tap (index ``k // 2``
#: per dimension); ``"all"``: every tap, shape ``(P, *kernel_size, N)``. Linear layers have a single tap.
Taps = Literal["sum", "center", "all"]
#: Layers whose univariate functions :func:`learned_functions` can evaluate.
KA_LAYER_TYPES: tuple[type[nn.Module], ...] = (KAConvNd, WavKANConvNd, KALinear, WavKANLinear)
_TAPS = ("sum", "center", "all")


class LearnedFunctions(NamedTuple):
    """``x``: the grid ``(N,)``; ``phi``: ``(P, N)`` (``(P, *kernel_size, N)`` for ``taps="all"``); ``pairs``: the
    ``(input, output)`` channel pairs, one per row of ``phi``."""

    x: Tensor
    phi: Tensor
    pairs: list[tuple[int, int]]


# --------------------------------------------------------------------------------------------------- finding
def ka_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every KA layer in ``model`` (``named_modules`` order; the model itself is ``""``)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, KA_LAYER_TYPES)]


def find_layer(model: nn.Module, spec: int | str) -> tuple[str, nn.Module]:
    """Resolve ``spec`` to ``(name, layer)``: an integer (or integer string, negatives count from the end) indexes
    :func:`ka_layers`; any other string is a ``model.named_modules()`` name such as ``"features.0"``.

    Raises:
        ValueError: the index is out of range, no module has that name, or the module is not a KA layer.
    """
    layers = ka_layers(model)
    index: int | None = spec if isinstance(spec, int) else None
    if isinstance(spec, str):
        try:
            index = int(spec.strip())
        except ValueError:
            index = None
    if index is not None:
        if not layers:
            raise ValueError(f"{type(model).__name__} has no KA layers")
        if not -len(layers) <= index < len(layers):
            raise ValueError(f"layer index {index} is out of range: the model has {len(layers)} KA layers")
        return layers[index]
    name = str(spec)
    modules = dict(model.named_modules())
    if name not in modules:
        raise ValueError(f"no module named {name!r}; KA layers: {_names(layers)}")
    module = modules[name]
    if not isinstance(module, KA_LAYER_TYPES):
        inside = [n for n, _ in layers if n.startswith(f"{name}.")]
        hint = f"; KA layers inside it: {_names([(n, module) for n in inside])}" if inside else ""
        raise ValueError(f"module {name!r} ({type(module).__name__}) is not a KA layer with univariate functions{hint}")
    return name, module


def _names(layers: Sequence[tuple[str, nn.Module]], limit: int = 12) -> str:
    names = [repr(n) for n, _ in layers]
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"


# --------------------------------------------------------------------------------------------------- pairs
def _channels(layer: nn.Module) -> tuple[int, int, int]:
    """``(inputs, outputs, groups)`` of a KA layer."""
    if isinstance(layer, (KAConvNd, WavKANConvNd)):
        return layer.in_channels, layer.out_channels, layer.groups
    if isinstance(layer, (KALinear, WavKANLinear)):
        return layer.in_features, layer.out_features, 1
    raise TypeError(_not_ka(layer))


def _not_ka(layer: nn.Module) -> str:
    return f"{type(layer).__name__} is not a KA layer: expected one of {[t.__name__ for t in KA_LAYER_TYPES]}"


def default_pairs(layer: nn.Module, max_inputs: int = 4, max_outputs: int = 4) -> list[tuple[int, int]]:
    """The first ``max_inputs`` inputs, each with the first ``max_outputs`` outputs it is connected to (its group's)."""
    n_in, n_out, groups = _channels(layer)
    c_in, c_out = n_in // groups, n_out // groups
    pairs = []
    for i in range(min(max_inputs, n_in)):
        first = (i // c_in) * c_out
        pairs += [(i, o) for o in range(first, first + min(max_outputs, c_out))]
    return pairs


def _check_pairs(layer: nn.Module, pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    n_in, n_out, groups = _channels(layer)
    c_in, c_out = n_in // groups, n_out // groups
    checked = []
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
            raise ValueError(f"a pair must be two integers (input, output), got {pair!r}")
        i, o = pair
        if not (0 <= i < n_in and 0 <= o < n_out):
            raise ValueError(f"pair {i}:{o} is out of range: the layer has {n_in} inputs and {n_out} outputs")
        if i // c_in != o // c_out:
            raise ValueError(
                f"input {i} and output {o} are not connected: with groups={groups}, input {i} (group {i // c_in}) "
                f"feeds outputs {i // c_in * c_out}…{(i // c_in + 1) * c_out - 1} only"
            )
        checked.append((i, o))
    if not checked:
        raise ValueError("pairs is empty")
    return checked


# --------------------------------------------------------------------------------------------------- x range
def default_range(layer: nn.Module) -> tuple[float, float]:
    """The x range where the layer's basis lives (see :func:`learned_functions`)."""
    if isinstance(layer, (WavKANConvNd, WavKANLinear)):
        return _wavelet_range(layer.translation, layer.scale)
    if not isinstance(layer, (KAConvNd, KALinear)):
        raise TypeError(_not_ka(layer))
    squash, basis = layer.squash, layer.basis
    if isinstance(squash, nn.Tanh):
        return -3.0, 3.0  # tanh(±3) = ±0.995: the whole of (-1, 1)
    if isinstance(squash, nn.Sigmoid):
        return -6.0, 6.0  # sigmoid(±6) = 0.0025, 0.9975: the whole of (0, 1)
    if isinstance(squash, MinMaxSquash):
        return -1.0, 1.0  # its output range (the squash is bypassed, see learned_functions)
    if not isinstance(squash, nn.Identity):
        return -3.0, 3.0  # a user-given squash
    if isinstance(basis, BSplineBasis):
        k = basis.spline_order
        lo, hi = float(basis.knots[k]), float(basis.knots[-1 - k])
        pad = 0.1 * (hi - lo)  # a margin that shows how the splines end
        return lo - pad, hi + pad
    if isinstance(basis, RBFBasis):
        return float(basis.grid[0]) - basis.denominator, float(basis.grid[-1]) + basis.denominator
    if isinstance(basis, ReLUBasis):
        return float(basis.phase_low.detach().min()), float(basis.phase_high.detach().max())
    if isinstance(basis, WaveletBasis):
        return _wavelet_range(basis.translation, basis.scale)
    return -1.0, 1.0  # polynomials without a squash: their natural interval


def _wavelet_range(translation: Tensor, scale: Tensor) -> tuple[float, float]:
    # ψ((x - t) / s) has decayed 3 scales away from its translation for every wavelet we ship.
    reach = 3 * safe_scale(scale.detach()).abs()
    return float((translation.detach() - reach).min()), float((translation.detach() + reach).max())


def _grid(layer: nn.Module, x: Tensor | tuple[float, float] | None, num_points: int, like: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        if x.dim() != 1 or x.numel() < 1:
            raise ValueError(f"x must be a 1-D tensor of points, got shape {tuple(x.shape)}")
        return x.detach().to(device=like.device, dtype=like.dtype)
    lo, hi = default_range(layer) if x is None else (float(x[0]), float(x[1]))
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"the x range must be finite with low < high, got ({lo}, {hi})")
    if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 2:
        raise ValueError(f"num_points must be an integer >= 2, got {num_points!r}")
    return torch.linspace(lo, hi, num_points, device=like.device, dtype=like.dtype)


# --------------------------------------------------------------------------------------------------- evaluation
def _is_elementwise(norm: nn.Module) -> bool:
    """Whether a norm maps each element on its own in eval mode (identity, or batch/instance norm with running
    statistics); layer, group and plain instance norms use statistics of the whole sample."""
    if isinstance(norm, nn.Identity):
        return True
    return bool(getattr(norm, "track_running_stats", False)) and getattr(norm, "running_mean", None) is not None


@contextmanager
def _evaluating(layer: nn.Module, bypass: Sequence[str]) -> Iterator[None]:
    """Eval mode (no dropout or noise), no grad, and the named sub-modules replaced by identities; all restored."""
    modes = [(m, m.training) for m in layer.modules()]
    saved = {name: getattr(layer, name) for name in bypass}
    layer.eval()
    try:
        for name in bypass:
            setattr(layer, name, nn.Identity())
        with torch.no_grad():
            yield
    finally:
        for name, module in saved.items():
            setattr(layer, name, module)
        for module, mode in modes:
            module.training = mode


def _bypassed(layer: KAConvNd | KALinear) -> list[str]:
    """Maps before the basis that depend on the whole sample: φ is then not a function of one element."""
    bypass = []
    if not _is_elementwise(layer.input_norm):
        bypass.append("input_norm")
    if isinstance(layer.squash, MinMaxSquash):
        bypass.append("squash")
    if bypass:
        what = " and ".join({"input_norm": "input norm", "squash": "min–max squash"}[b] for b in bypass)
        warnings.warn(
            f"{type(layer).__name__}: its {what} uses statistics of the whole input, so φ is not a function of one "
            f"element; it is shown with the {what} left out (x is the value the basis sees, and the base branch is "
            "evaluated at the same x)",
            UserWarning,
            stacklevel=4,
        )
    return bypass


def _select_taps(phi: Tensor, kernel: Sequence[int], taps: str) -> Tensor:
    """``phi`` is ``(P, *kernel, N)``."""
    if taps == "all":
        return phi
    if taps == "sum":
        return phi.sum(dim=tuple(range(1, 1 + len(kernel)))) if kernel else phi
    centre: tuple[slice | int, ...] = (slice(None), *(k // 2 for k in kernel))
    return phi[centre]


def learned_functions(
    layer: nn.Module,
    pairs: Sequence[tuple[int, int]] | None = None,
    x: Tensor | tuple[float, float] | None = None,
    taps: Taps = "sum",
    num_points: int = 201,
) -> LearnedFunctions:
    """Evaluate the univariate functions ``φ_{o,i}(x)`` of a KA layer for ``(input, output)`` channel pairs.

    The values come from the layer's own feature path (``features()`` of :class:`~kanconvs.KAConvNd` and
    :class:`~kanconvs.KALinear`; the wavelet, scale and window of the WavKAN layers) in eval mode without grad, so
    they are exactly what the layer computes; its training flags are restored afterwards. For WavKAN convolutions
    φ includes the 1×1 mixing of the wavelet outputs: ``φ_{o,i}(x) = Σ_{o'} W_{o,o'} Σ_p w_{o',i,p} ψ_{o',i}(x)``
    plus the base term.

    Maps before the basis that use statistics of the whole input (a min–max squash, or an input norm that is not a
    batch/instance norm with running statistics, e.g. FastKAN's instance norm) make φ depend on the other inputs;
    they are left out, with a :class:`UserWarning`, so that ``x`` is the value the basis sees.

    Args:
        layer: a KA layer (see :data:`KA_LAYER_TYPES`; :func:`find_layer` finds one in a model).
        pairs: ``(input, output)`` channel pairs; with ``groups`` an input feeds only its group's outputs. Default:
            :func:`default_pairs` (the first 4 inputs × their first 4 outputs).
        x: the points (a 1-D tensor), or a ``(low, high)`` range for ``num_points`` evenly spaced points. Default
            :func:`default_range`: ``[-3, 3]`` after a tanh squash (``tanh(±3) = ±0.995``), ``[-6, 6]`` after a sigmoid,
            ``[-1, 1]`` for min–max; without a squash the basis' own range: the B-spline grid range with a 10%
            margin, the RBF centres ± one width, the ReLU-KAN bumps' span, wavelet translations ± 3 scales.
        taps: see :data:`Taps`.
        num_points: the number of points when ``x`` is a range.

    Returns:
        :class:`LearnedFunctions` ``(x, phi, pairs)``.
    """
    if taps not in _TAPS:
        raise ValueError(f"taps must be one of {_TAPS}, got {taps!r}")
    _channels(layer)
    checked = default_pairs(layer) if pairs is None else _check_pairs(layer, list(pairs))
    if isinstance(layer, KAConvNd):
        grid = _grid(layer, x, num_points, layer.weight)
        phi = _conv_functions(layer, checked, grid)
        kernel: Sequence[int] = layer.kernel_size
    elif isinstance(layer, WavKANConvNd):
        grid = _grid(layer, x, num_points, layer.wavelet_weight)
        phi = _wavkan_conv_functions(layer, checked, grid)
        kernel = layer.kernel_size
    elif isinstance(layer, KALinear):
        grid = _grid(layer, x, num_points, layer.weight)
        phi, kernel = _linear_functions(layer, checked, grid), ()
    else:
        assert isinstance(layer, WavKANLinear)
        grid = _grid(layer, x, num_points, layer.wavelet_weight)
        phi, kernel = _wavkan_linear_functions(layer, checked, grid), ()
    return LearnedFunctions(grid, _select_taps(phi, kernel, taps), checked)


def _indices(pairs: Sequence[tuple[int, int]], c_in: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Input, output and in-group input indices of the pairs."""
    i = torch.tensor([p[0] for p in pairs], device=device)
    o = torch.tensor([p[1] for p in pairs], device=device)
    return i, o, i % c_in


def _conv_functions(layer: KAConvNd, pairs: Sequence[tuple[int, int]], grid: Tensor) -> Tensor:
    n, c = grid.numel(), layer.in_channels
    # Every channel sees the grid along the first spatial axis: one feature map per point, no neighbours mixed.
    x = grid.view(1, 1, n, *([1] * (layer.ndim - 1))).expand(1, c, n, *([1] * (layer.ndim - 1))).contiguous()
    with _evaluating(layer, _bypassed(layer)):
        feats = layer.features(x).reshape(c, layer.features_per_channel, n)  # channel-major: (C_in, F, N)
        i, o, local = _indices(pairs, c // layer.groups, grid.device)
        weight = layer.weight[o, local].to(feats.dtype)  # (P, F, *k)
        return torch.einsum("pf...,pfn->p...n", weight, feats[i])


def _linear_functions(layer: KALinear, pairs: Sequence[tuple[int, int]], grid: Tensor) -> Tensor:
    n, c = grid.numel(), layer.in_features
    with _evaluating(layer, _bypassed(layer)):
        feats = layer.features(grid.view(n, 1).expand(n, c).contiguous())  # (N, in, F)
        i, o, _ = _indices(pairs, c, grid.device)
        weight = layer.weight[o, i].to(feats.dtype)  # (P, F)
        return torch.einsum("pf,npf->pn", weight, feats[:, i])


def _wavkan_conv_functions(layer: WavKANConvNd, pairs: Sequence[tuple[int, int]], grid: Tensor) -> Tensor:
    c_in, c_out = layer.in_channels // layer.groups, layer.out_channels // layer.groups
    ones = (1,) * layer.ndim
    rows = []
    with _evaluating(layer, ()):
        base = layer.base_activation(grid)
        for i, o in pairs:
            li, group = i % c_in, o // c_out
            mixed = slice(group * c_out, (group + 1) * c_out)  # the outputs o' that the 1×1 mixing combines
            t = layer.translation[mixed, li].view(c_out, 1)
            s = safe_scale(layer.scale[mixed, li]).view(c_out, 1)
            psi = layer.wavelet((grid - t) / s) * layer.channel_window[li]  # (c_out, N)
            tap_weight = layer.out_weight[o].view(c_out, *ones) * layer.wavelet_weight[mixed, li]
            phi = torch.einsum("q...,qn->...n", tap_weight, psi)  # (*k, N)
            if layer.base_weight is not None:
                phi = phi + layer.base_weight[o, li].unsqueeze(-1) * base
            rows.append(phi)
    return torch.stack(rows)


def _wavkan_linear_functions(layer: WavKANLinear, pairs: Sequence[tuple[int, int]], grid: Tensor) -> Tensor:
    with _evaluating(layer, ()):
        i, o, _ = _indices(pairs, layer.in_features, grid.device)
        u = (grid - layer.translation[o, i].unsqueeze(1)) / safe_scale(layer.scale[o, i]).unsqueeze(1)  # (P, N)
        psi = layer.wavelet(u) * layer.input_window[i].unsqueeze(1)
        base = layer.base_activation(grid)
        return layer.wavelet_weight[o, i].unsqueeze(1) * psi + layer.base_weight[o, i].unsqueeze(1) * base


# --------------------------------------------------------------------------------------------------- plotting
def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # an optional dependency: say how to get it
        raise ImportError("plotting needs matplotlib: pip install 'kanconvs[plots]'") from err
    return Figure


def plot_functions(
    layer: nn.Module,
    pairs: Sequence[tuple[int, int]] | None = None,
    *,
    x: Tensor | tuple[float, float] | None = None,
    taps: Taps = "sum",
    num_points: int = 201,
    title: str | None = None,
) -> Any:
    """A matplotlib ``Figure`` with one subplot per pair (``"in i → out o"``) of :func:`learned_functions`.

    Pairs that form a full inputs × outputs grid are laid out with one row per input; others fill rows of 4. With
    ``taps="all"`` every kernel tap is a line. Save it with ``fig.savefig("phi.png")``.
    """
    figure_class = _figure_class()
    grid, phi, checked = learned_functions(layer, pairs, x, taps, num_points)
    ins = list(dict.fromkeys(i for i, _ in checked))
    outs = list(dict.fromkeys(o for _, o in checked))
    full_grid = len(checked) == len(ins) * len(outs) and set(checked) == {(i, o) for i in ins for o in outs}
    if full_grid and len(outs) <= 8:
        nrows, ncols = len(ins), len(outs)
        position = {pair: ins.index(pair[0]) * ncols + outs.index(pair[1]) for pair in checked}
    else:
        ncols = min(4, len(checked))
        nrows = math.ceil(len(checked) / ncols)
        position = {pair: k for k, pair in enumerate(checked)}
    fig = figure_class(figsize=(2.6 * ncols + 0.4, 2.0 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    xs = grid.detach().float().cpu().numpy()
    values = phi.detach().float().cpu()
    for k, (i, o) in enumerate(checked):
        ax = axes.flat[position[(i, o)]]
        ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
        if taps == "all":
            curves = values[k].reshape(-1, values.shape[-1])
            for curve in curves:
                ax.plot(xs, curve.numpy(), linewidth=0.9, alpha=0.7)
        else:
            ax.plot(xs, values[k].numpy(), linewidth=1.5, color="C0")
        ax.set_title(f"in {i} → out {o}", fontsize=9)
        ax.tick_params(labelsize=7)
    for k in range(nrows * ncols):
        ax = axes.flat[k]
        if k not in position.values():
            ax.set_visible(False)
            continue
        if k // ncols == nrows - 1 or k + ncols not in position.values():  # nothing below: label the x axis
            ax.set_xlabel("x", fontsize=8)
            ax.xaxis.set_tick_params(labelbottom=True)
        if k % ncols == 0:
            ax.set_ylabel("φ(x)", fontsize=8)
    taps_note = {"sum": "summed over kernel taps", "center": "centre kernel tap", "all": "one line per kernel tap"}
    note = taps_note[taps] if isinstance(layer, (KAConvNd, WavKANConvNd)) else ""
    heading = title if title is not None else f"{type(layer).__name__}: learned φ"
    fig.suptitle(f"{heading}" + (f" ({note})" if note else ""), fontsize=10)
    return fig
