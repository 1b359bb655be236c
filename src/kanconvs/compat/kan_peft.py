"""torch-conv-kan's ``kan_peft`` (PEFT for Gram convolutions), reference names and signatures, over
:class:`kanconvs.layers.peft.PEFTKAGNConv`, with the reference's trainable tensors (``poly_weights_delta``,
``beta_weights_delta``, ``poly_weights_extra``, ``beta_weights_extra``) and checkpoints. The bugs fixed (``fuse_layer``
is exact): docs/migrating.md, "Differences, module by module".
"""

from __future__ import annotations

import copy
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..layers.families import KAGNConvNd
from ..layers.peft import PEFTKAGNConv, _replace, merge_kagn
from ..layers.ranks import RANKS
from . import kan_convs
from ._generate import Values, check_rank, exports, reference_init

_CONVS = {n: (r.conv, r.conv_fn) for n, r in RANKS.items()}
# Keys of a reference PEFT layer: the pretrained layer's and the PEFT additions.
_LAYER_STEMS = ("base_conv", "poly_weights", "beta_weights", "layer_norm")
# The reference's trainable tensors (this layer's too).
_REFERENCE_PARAMS = ("poly_weights_delta", "beta_weights_delta", "poly_weights_extra", "beta_weights_extra")
_PEFT_KEYS = (*_REFERENCE_PARAMS, "delta_indices")


def _view_of(source: str) -> Callable[[Callable[[Any], Tensor | None]], Any]:
    """A property computing one of PEFTKAGNConv's tensors from the reference's ``source`` parameter. Assigning
    ``None`` (what PEFTKAGNConv's ``__init__`` does where there is nothing to train) is accepted, anything else is an
    error pointing at ``source``."""

    def view(getter: Callable[[Any], Tensor | None]) -> property:
        def setter(self: Any, value: nn.Parameter | None) -> None:
            if value is not None:
                raise AttributeError(f"{getter.__name__} is a view of the reference's {source}: set that instead")

        return property(getter, setter)

    return view


class PEFTKAGNConvNDLayer(PEFTKAGNConv):
    """torch-conv-kan's ``PEFTKAGNConvNDLayer``: a pretrained Gram convolution with trainable degrees and new ones.

    The pretrained layer is built as ``KAGNConv{ndim}DLayer`` from the arguments and loaded (strictly) from
    ``pretrained_weights``. The norm stays trainable, as in the reference.

    Examples:
        >>> from kanconvs.compat import KAGNConv2DLayer
        >>> pretrained = KAGNConv2DLayer(4, 8, 3, padding=1)
        >>> peft = PEFTKAGNConvNDLayer.wrap_layer(pretrained, trainable_degrees=[3], extra_degrees=2)
        >>> x = torch.randn(2, 4, 6, 6)
        >>> torch.allclose(peft(x), pretrained(x), atol=1e-5)
        True
        >>> fused = peft.fuse_layer()
        >>> type(fused).__name__, fused.degree
        ('KAGNConv2DLayer', 5)
    """

    conv_class: type[nn.Module]
    norm_class: Callable[..., nn.Module]

    @reference_init("PEFTKAGNConvNDLayer")
    def __init__(self, v: Values) -> None:
        rank = check_rank(v["ndim"], v["conv_class"], v["conv_w_fun"])
        geometry = ("degree", "groups", "padding", "stride", "dilation", "dropout")
        layer = getattr(kan_convs, f"KAGNConv{rank}DLayer")(
            v["input_dim"], v["output_dim"], v["kernel_size"], norm_layer=v["norm_class"],
            **{n: v[n] for n in geometry}, **v["norm_kwargs"],
        )  # fmt: skip
        layer.load_state_dict(v["pretrained_weights"])
        self._init_peft(layer, v["trainable_degrees"], v["extra_degrees"], v["finetune_base"])
        self.norm_class = v["norm_class"]

    def _init_peft(
        self, layer: KAGNConvNd, trainable_degrees: Sequence[int] | None, extra_degrees: int, finetune_base: bool
    ) -> None:
        PEFTKAGNConv.__init__(
            self,
            layer,
            trainable_degrees=() if trainable_degrees is None else trainable_degrees,
            extra_degrees=extra_degrees,
            finetune_base=finetune_base,
            freeze_norm=False,
        )
        # The trainable tensors are the reference's, under its names and in its layout (code written for it reads
        # and writes them); PEFTKAGNConv's weight_delta … are views of them (the properties below).
        for name in ("weight_delta", "weight_extra", "beta_delta", "beta_extra"):
            self._parameters.pop(name, None)
        weight, beta = layer.weight, self._gram.beta_weights
        c_out, c_in, _, *kernel = weight.shape
        g, n_delta, n_extra = self.groups, len(self.trainable_degrees), self.extra_degrees

        def zeros(count: int, like: Tensor, *shape: int) -> nn.Parameter | None:
            return nn.Parameter(like.new_zeros(shape)) if count else None

        self.poly_weights_delta = zeros(n_delta, weight, g, c_out // g, c_in * n_delta, *kernel)
        self.beta_weights_delta = zeros(n_delta, beta, n_delta)
        self.poly_weights_extra = zeros(n_extra, weight, g, c_out // g, c_in * n_extra, *kernel)
        self.beta_weights_extra = zeros(n_extra, beta, n_extra)
        # The reference trains the base convolution in place; here the frozen base gets a delta of its own.
        self.base_weight_delta = zeros(int(finetune_base), weight, c_out, c_in, 1, *kernel)
        # Entries of beta_weights_delta that a degree uses (degrees 0 and 1 have no coefficient).
        self._beta_delta_rows = [k for k, d in enumerate(self.trainable_degrees) if d >= 2]
        self.conv_class = _CONVS[self.ndim][0]
        self.norm_class = type(layer.norm)
        self._register_load_state_dict_pre_hook(_load_reference_peft, with_module=True)

    def reset_parameters(self) -> None:
        """Zero the trainable additions: the module then computes the wrapped layer's output again."""
        for name in (*_REFERENCE_PARAMS, "base_weight_delta"):
            p = getattr(self, name)
            if p is not None:
                nn.init.zeros_(p)

    # PEFTKAGNConv's tensors, as differentiable views of the reference's.
    def _poly(self, w: Tensor, n: int) -> Tensor:
        return _channel_major(w, self.groups, n, self.layer.weight.shape)

    @_view_of("poly_weights_delta")
    def weight_delta(self) -> Tensor | None:
        parts: list[Tensor] = [] if self.base_weight_delta is None else [self.base_weight_delta]
        if self.poly_weights_delta is not None:
            parts.append(self._poly(self.poly_weights_delta, len(self.trainable_degrees)))
        return torch.cat(parts, dim=2) if parts else None

    @_view_of("poly_weights_extra")
    def weight_extra(self) -> Tensor | None:
        w = self.poly_weights_extra
        return None if w is None else self._poly(w, self.extra_degrees)

    @_view_of("beta_weights_delta")
    def beta_delta(self) -> Tensor | None:
        if not self.beta_delta_degrees or self.beta_weights_delta is None:
            return None
        return self.beta_weights_delta[self._beta_delta_rows]

    @_view_of("beta_weights_extra")
    def beta_extra(self) -> Tensor | None:
        # The reference's forward gives new degree D + j the entry j - 2 (wrapping): its checkpoints keep their
        # outputs. PEFTKAGNConv's entry j - 1 is that entry.
        if not self.beta_extra_degrees or self.beta_weights_extra is None:
            return None
        return self.beta_weights_extra.roll(1)[-len(self.beta_extra_degrees) :]

    @classmethod
    def _wrap(
        cls,
        layer: KAGNConvNd,
        trainable_degrees: Sequence[int] | None = None,
        extra_degrees: int = 1,
        finetune_base: bool = False,
    ) -> PEFTKAGNConvNDLayer:
        """Wrap ``layer`` itself (no copy)."""
        peft = cls.__new__(cls)
        peft._init_peft(layer, trainable_degrees, extra_degrees, finetune_base)
        return peft

    @staticmethod
    def wrap_layer(
        layer: KAGNConvNd,
        trainable_degrees: Sequence[int] | None = None,
        extra_degrees: int = 1,
        finetune_base: bool = False,
    ) -> PEFTKAGNConvNDLayer:
        """Wrap a copy of a Gram convolution (``layer`` itself is left as it is, trainable)."""
        if not isinstance(layer, KAGNConvNd):
            raise TypeError(f"wrap_layer wraps a Gram convolution (KAGNConv…), got {type(layer).__name__}")
        return PEFTKAGNConvNDLayer._wrap(copy.deepcopy(layer), trainable_degrees, extra_degrees, finetune_base)

    def fuse_layer(self) -> KAGNConvNd:
        """The plain layer of degree ``degree + extra_degrees`` with this layer's output (see :meth:`fuse`)."""
        return self.fuse()

    # Attributes the reference's PEFT layer has (read by its training scripts).
    @property
    def inputdim(self) -> int:
        return self.in_channels

    @property
    def outdim(self) -> int:
        return self.out_channels

    @property
    def p_dropout(self) -> float:
        return float(getattr(self.layer, "p_dropout", getattr(self.layer.dropout, "p", 0.0)))

    @property
    def norm_kwargs(self) -> dict[str, Any]:
        return dict(getattr(self.layer, "norm_kwargs", {}))

    @property
    def conv_w_fun(self) -> Callable[..., Any]:
        return getattr(self.layer, "conv_w_fun", _CONVS[self.ndim][1])


def _channel_major(w: Tensor, groups: int, n: int, shape: torch.Size) -> Tensor:
    """Reference poly weights ``(g, c_out/g, c_in·n, *k)``, degree-major (``j·c_in + c``) → ``(c_out, c_in, n, *k)``."""
    c_out, c_in, _, *kernel = shape
    return w.reshape(groups, c_out // groups, n, c_in, *kernel).transpose(2, 3).reshape(c_out, c_in, n, *kernel)


def _load_reference_peft(
    module: PEFTKAGNConvNDLayer,
    state_dict: MutableMapping[str, Tensor],
    prefix: str,
    local_metadata: Any,
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """A reference PEFT layer's checkpoint (under ``prefix``) → this module's keys, in place: the pretrained layer's
    keys go under ``layer.`` (where their layout is converted); the PEFT tensors keep their names."""
    is_peft = any(prefix + k in state_dict for k in _PEFT_KEYS)
    if not is_peft and prefix + "poly_weights" not in state_dict:
        return
    for key in [k for k in state_dict if k.startswith(prefix)]:
        if key[len(prefix) :].split(".", 1)[0] in _LAYER_STEMS:
            state_dict[prefix + "layer." + key[len(prefix) :]] = state_dict.pop(key)
    state_dict.pop(prefix + "delta_indices", None)
    # The reference trained its base convolution in place (loaded above into the layer): no delta on top of it.
    if module.base_weight_delta is not None and prefix + "base_weight_delta" not in state_dict:
        state_dict[prefix + "base_weight_delta"] = torch.zeros_like(module.base_weight_delta)


class PEFTVGGKAGN(nn.Module):
    """torch-conv-kan's ``PEFTVGGKAGN``: every Gram convolution of a pretrained model wrapped for fine-tuning.

    The convolutions in ``pretrained_vgg.features`` are wrapped (in the whole model when it has no ``features``)
    as :class:`PEFTKAGNConvNDLayer`; the pretrained model itself is not changed (a copy is wrapped). The wrapped
    model is ``self.model`` and its attributes are reachable on this module (``peft.classifier``).

    Examples:
        >>> from kanconvs.compat import KAGNConv2DLayer
        >>> net = nn.Sequential(KAGNConv2DLayer(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> peft = PEFTVGGKAGN(net, trainable_degrees=[2], extra_degrees=1)
        >>> type(peft.model[0]).__name__, peft(torch.randn(2, 3, 8, 8)).shape
        ('PEFTKAGNConvNDLayer', torch.Size([2, 8]))
        >>> peft.merge()[0].degree
        4
    """

    @reference_init("PEFTVGGKAGN")
    def __init__(self, v: Values) -> None:
        super().__init__()

        def build(layer: nn.Module) -> nn.Module:
            assert isinstance(layer, KAGNConvNd)
            return PEFTKAGNConvNDLayer._wrap(layer, v["trainable_degrees"], v["extra_degrees"], v["finetune_base"])

        model = copy.deepcopy(v["pretrained_vgg"])
        features = getattr(model, "features", None)
        if isinstance(features, nn.Module):
            model.features = _replace(features, KAGNConvNd, build)
        else:
            model = _replace(model, KAGNConvNd, build)
        self.model = model
        self._register_load_state_dict_pre_hook(_nest_under_model, with_module=True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def merge(self) -> nn.Module:
        """A copy of the model with every PEFT layer fused into a plain Gram convolution (exactly this output)."""
        return merge_kagn(copy.deepcopy(self.model))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "model":
                raise
            return getattr(self.model, name)


def _nest_under_model(module: nn.Module, state_dict: MutableMapping[str, Tensor], prefix: str, *args: Any) -> None:
    """The reference's PEFT VGG is the VGG itself: its checkpoints have no ``model.`` level."""
    keys = [k for k in state_dict if k.startswith(prefix)]
    if keys and not any(k.startswith(prefix + "model.") for k in keys):
        for key in keys:
            state_dict[prefix + "model." + key[len(prefix) :]] = state_dict.pop(key)


__all__ = exports(globals())
