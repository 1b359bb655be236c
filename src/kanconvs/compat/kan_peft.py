"""torch-conv-kan's ``kan_peft`` (PEFT for Gram convolutions) with the reference's names and signatures.

``from kanconvs.compat import PEFTKAGNConvNDLayer, PEFTVGGKAGN`` replaces ``from kan_peft import …``. The classes
are thin layers over :class:`kanconvs.layers.peft.PEFTKAGNConv`; ``pretrained_weights`` may be a kanconvs or a
reference state_dict (reference layouts are converted on load), and ``load_state_dict`` also accepts the
reference's PEFT checkpoints (``poly_weights_delta``, ``beta_weights_extra``, …), reproducing their forward exactly.

Deliberate differences from the reference, all bug fixes:

- ``fuse_layer()`` gives exactly the PEFT layer's output: the reference added a trainable degree ``d``'s
  coefficient delta to ``w_d`` (its forward uses ``w_{d-1}``) and shifted the new degrees' coefficients by one.
- New degree ``D + j`` uses ``beta_extra[j - 1]`` (for ``D ≥ 1``); the reference's forward gave degree ``D + 1``
  the *last* extra entry (index ``-1``) and degree ``D + j`` entry ``j - 2``. Loading a reference checkpoint rotates
  the entries, so its outputs are kept.
- Coefficients that no degree uses are not created: the deltas of trainable degrees 0 and 1, and (for ``D = 0``)
  the extra entry of degree 1. One convolution per forward instead of three per group.
- ``wrap_layer`` accepts any Gram convolution (``KAGNConv2d``, ``KAGNConv2DLayer``, …); the PEFT layer is not a
  ``KAGNConvNDLayer`` subclass (the wrapped layer is its ``layer`` attribute).

As in the reference, the norm stays trainable; use :class:`~kanconvs.layers.peft.PEFTKAGNConv` with
``freeze_norm=True`` (its default) to freeze it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.families import KAGNConvNd
from ..layers.peft import PEFTKAGNConv, _replace, merge_kagn
from . import kan_convs
from .kan_convs import _check_rank

__all__ = ["PEFTVGGKAGN", "PEFTKAGNConvNDLayer"]

_CONVS = {1: (nn.Conv1d, F.conv1d), 2: (nn.Conv2d, F.conv2d), 3: (nn.Conv3d, F.conv3d)}
# Keys of a reference PEFT layer: the pretrained layer's and the PEFT additions.
_LAYER_STEMS = ("base_conv", "poly_weights", "beta_weights", "layer_norm")
_PEFT_KEYS = ("poly_weights_delta", "beta_weights_delta", "poly_weights_extra", "beta_weights_extra", "delta_indices")


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

    def __init__(
        self,
        pretrained_weights: MutableMapping[str, Tensor],
        conv_class: type[nn.Module],
        norm_class: Callable[..., nn.Module],
        conv_w_fun: Callable[..., Any],
        input_dim: int,
        output_dim: int,
        degree: int,
        kernel_size: int,
        trainable_degrees: Sequence[int] | None = None,
        extra_degrees: int = 1,
        finetune_base: bool = False,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        dropout: float = 0.0,
        ndim: int = 2,
        **norm_kwargs: Any,
    ) -> None:
        rank = _check_rank(ndim, conv_class, conv_w_fun)
        layer = getattr(kan_convs, f"KAGNConv{rank}DLayer")(
            input_dim, output_dim, kernel_size, degree=degree, groups=groups, padding=padding, stride=stride,
            dilation=dilation, dropout=dropout, norm_layer=norm_class, **norm_kwargs,
        )  # fmt: skip
        layer.load_state_dict(pretrained_weights)
        self._init_peft(layer, trainable_degrees, extra_degrees, finetune_base)
        self.norm_class = norm_class

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
        self.conv_class = _CONVS[self.ndim][0]
        self.norm_class = type(layer.norm)
        self._register_load_state_dict_pre_hook(_load_reference_peft, with_module=True)

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
    """Convert a reference PEFT layer's keys (under ``prefix``) to this module's, in place."""
    is_peft = any(prefix + k in state_dict for k in _PEFT_KEYS)
    if not is_peft and prefix + "poly_weights" not in state_dict:
        return
    # The pretrained layer's keys go under "layer." (where the layer's own hook converts their layout).
    for key in [k for k in state_dict if k.startswith(prefix)]:
        if key[len(prefix) :].split(".", 1)[0] in _LAYER_STEMS:
            state_dict[prefix + "layer." + key[len(prefix) :]] = state_dict.pop(key)
    if not is_peft:
        return
    layer, shape = module.layer, module.layer.weight.shape
    c_out, c_in, _, *kernel = shape
    degrees = module.trainable_degrees
    numel = c_out * c_in * math.prod(kernel)  # of one degree's weights
    state_dict.pop(prefix + "delta_indices", None)
    # Weights: our delta holds [base (finetune_base)] + trainable degrees; the reference trained its base in place.
    parts: list[Tensor] = []
    delta = state_dict.pop(prefix + "poly_weights_delta", None)
    if module.finetune_base:
        parts.append(layer.weight.new_zeros(c_out, c_in, 1, *kernel))
    if degrees:
        if delta is None or delta.numel() != numel * len(degrees):
            error_msgs.append(f"reference PEFT checkpoint: '{prefix}poly_weights_delta' does not fit {degrees=}")
            return
        parts.append(_channel_major(delta, module.groups, len(degrees), shape).to(layer.weight.dtype))
    if parts:
        state_dict[prefix + "weight_delta"] = torch.cat(parts, dim=2)
    extra = state_dict.pop(prefix + "poly_weights_extra", None)
    if module.extra_degrees:
        if extra is None or extra.numel() != numel * module.extra_degrees:
            error_msgs.append(
                f"reference PEFT checkpoint: '{prefix}poly_weights_extra' does not fit extra_degrees="
                f"{module.extra_degrees}"
            )
            return
        state_dict[prefix + "weight_extra"] = _channel_major(extra, module.groups, module.extra_degrees, shape)
    # Coefficients: keep the deltas of degrees >= 2; the reference's degree D + j used extra[j - 2] (wrapping).
    beta_delta = state_dict.pop(prefix + "beta_weights_delta", None)
    if module.beta_delta is not None and beta_delta is not None:
        keep = [k for k, d in enumerate(degrees) if d >= 2]
        state_dict[prefix + "beta_delta"] = beta_delta[keep]
    beta_extra = state_dict.pop(prefix + "beta_weights_extra", None)
    if module.beta_extra is not None and beta_extra is not None:
        state_dict[prefix + "beta_extra"] = beta_extra.roll(1)[-len(module.beta_extra_degrees) :]


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

    def __init__(
        self,
        pretrained_vgg: nn.Module,
        trainable_degrees: Sequence[int] | None = None,
        extra_degrees: int = 1,
        finetune_base: bool = False,
    ) -> None:
        super().__init__()

        def build(layer: nn.Module) -> nn.Module:
            assert isinstance(layer, KAGNConvNd)
            return PEFTKAGNConvNDLayer._wrap(layer, trainable_degrees, extra_degrees, finetune_base)

        model = copy.deepcopy(pretrained_vgg)
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
