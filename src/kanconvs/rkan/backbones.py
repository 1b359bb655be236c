"""Where the stages of a torchvision backbone are: one small adapter per architecture family.

A stage is a contiguous run of children of an ``nn.Sequential`` (``parent``), from ``first`` to ``last``: its
input is tapped before ``first`` and the RKAN residual joins the output of ``last``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn
from torchvision import models as tvm

from .._registry import Registry

__all__ = ["BackboneAdapter", "StageSpec", "find_adapter", "list_backbones", "register_backbone"]


@dataclass(frozen=True)
class StageSpec:
    """One stage of a backbone (see the module docstring); ``stride`` is its spatial downsampling."""

    index: int  # 1-based stage number
    parent: str  # dotted path of the nn.Sequential holding the stage
    first: str
    last: str
    in_channels: int
    out_channels: int
    stride: int


@dataclass(frozen=True)
class BackboneAdapter:
    """How to find the stages of ``cls`` models and how to change their stem.

    ``set_stem(model, in_channels, small)`` replaces the first convolution for ``in_channels`` inputs and, when
    ``small``, makes the stem keep 32×32 inputs at full resolution (3×3 stride-1 convolution, no max-pool).
    """

    name: str
    cls: type[nn.Module]
    stages: Callable[[nn.Module], list[StageSpec]]
    set_stem: Callable[[nn.Module, int, bool], None]


_BACKBONES: Registry[BackboneAdapter] = Registry("backbone")


def register_backbone(adapter: BackboneAdapter) -> BackboneAdapter:
    _BACKBONES.add(adapter.name, adapter)
    return adapter


def list_backbones() -> list[str]:
    """Backbone families :func:`~kanconvs.rkan.wrap` accepts (torchvision model classes)."""
    return _BACKBONES.names()


def find_adapter(model: nn.Module) -> BackboneAdapter:
    for name in _BACKBONES:
        adapter = _BACKBONES.get(name)
        if isinstance(model, adapter.cls):
            return adapter
    supported = [f"{_BACKBONES.get(n).cls.__module__}.{_BACKBONES.get(n).cls.__name__}" for n in _BACKBONES]
    raise ValueError(f"backbone of type {type(model).__name__} is not supported; expected one of {supported}")


def _sub(module: nn.Module, path: str) -> Any:
    """``module.get_submodule(path)``, typed loosely: adapters read torchvision attributes (``.stride`` …)."""
    return module.get_submodule(path)


def _names(seq: nn.Module) -> list[str]:
    return [name for name, _ in seq.named_children()]


def _conv_like(old: nn.Conv2d, in_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Conv2d:
    w = old.weight
    return nn.Conv2d(
        in_channels,
        old.out_channels,
        kernel_size,
        stride,
        padding,
        bias=old.bias is not None,
        device=w.device,
        dtype=w.dtype,
    )


# ---------------------------------------------------------------------------------------------- ResNet family
def _resnet_stages(model: nn.Module) -> list[StageSpec]:
    specs = []
    for i in range(1, 5):
        layer = _sub(model, f"layer{i}")
        blocks = list(layer.children())
        head, tail = blocks[0], blocks[-1]
        down = head.downsample
        stride = down[0].stride[0] if down is not None else 1
        out_bn = tail.bn3 if hasattr(tail, "bn3") else tail.bn2
        names = _names(layer)
        specs.append(
            StageSpec(i, f"layer{i}", names[0], names[-1], head.conv1.in_channels, out_bn.num_features, stride)
        )
    return specs


def _resnet_stem(model: nn.Module, in_channels: int, small: bool) -> None:
    conv = _sub(model, "conv1")
    assert isinstance(conv, nn.Conv2d)
    model.conv1 = _conv_like(conv, in_channels, 3, 1, 1) if small else _conv_like(conv, in_channels, 7, 2, 3)
    if small:
        model.maxpool = nn.Identity()


register_backbone(BackboneAdapter("resnet", tvm.ResNet, _resnet_stages, _resnet_stem))


# ---------------------------------------------------------------------------------------------- DenseNet
def _densenet_stages(model: nn.Module) -> list[StageSpec]:
    # The residual taps the dense block's input and joins after the transition (after norm5 for the last block).
    features = _sub(model, "features")
    specs = []
    for i in range(1, 5):
        block = _sub(features, f"denseblock{i}")
        c_in = _sub(block, "denselayer1.norm1").num_features
        if i < 4:
            last, c_out, stride = f"transition{i}", _sub(features, f"transition{i}.conv").out_channels, 2
        else:
            last, c_out, stride = "norm5", _sub(features, "norm5").num_features, 1
        specs.append(StageSpec(i, "features", f"denseblock{i}", last, c_in, c_out, stride))
    return specs


def _densenet_stem(model: nn.Module, in_channels: int, small: bool) -> None:
    features = _sub(model, "features")
    conv = _sub(features, "conv0")
    assert isinstance(conv, nn.Conv2d)
    features.conv0 = _conv_like(conv, in_channels, 3, 1, 1) if small else _conv_like(conv, in_channels, 7, 2, 3)
    if small:
        features.pool0 = nn.Identity()


register_backbone(BackboneAdapter("densenet", tvm.DenseNet, _densenet_stages, _densenet_stem))


# ---------------------------------------------------------------------------------------------- RegNet X / Y
def _regnet_stages(model: nn.Module) -> list[StageSpec]:
    trunk = _sub(model, "trunk_output")
    specs = []
    for i, name in enumerate(_names(trunk), start=1):
        blocks = list(_sub(trunk, name).children())
        head, tail = blocks[0], blocks[-1]
        c_in = _sub(head, "f.a.0").in_channels
        c_out = _sub(tail, "f.c.0").out_channels
        stride = _sub(head, "f.b.0").stride[0]
        specs.append(StageSpec(i, "trunk_output", name, name, c_in, c_out, stride))
    return specs


def _regnet_stem(model: nn.Module, in_channels: int, small: bool) -> None:
    stem = _sub(model, "stem")
    conv = stem[0]
    assert isinstance(conv, nn.Conv2d)
    stem[0] = _conv_like(conv, in_channels, 3, 1 if small else 2, 1)


register_backbone(BackboneAdapter("regnet", tvm.RegNet, _regnet_stages, _regnet_stem))


# ---------------------------------------------------------------------------------------------- VGG-bn
def _vgg_stages(model: nn.Module) -> list[StageSpec]:
    # Stages are the max-pool-delimited segments after the first (64-channel) one, each ending with its pool.
    features = _sub(model, "features")
    children = list(features.children())
    pools = [i for i, m in enumerate(children) if isinstance(m, nn.MaxPool2d)]
    specs = []
    for i in range(1, len(pools)):
        start, end = pools[i - 1] + 1, pools[i]
        convs = [m for m in children[start:end] if isinstance(m, nn.Conv2d)]
        stride = children[end].stride
        stride = stride if isinstance(stride, int) else stride[0]
        specs.append(
            StageSpec(i, "features", str(start), str(end), convs[0].in_channels, convs[-1].out_channels, stride)
        )
    return specs


def _vgg_stem(model: nn.Module, in_channels: int, small: bool) -> None:
    features = _sub(model, "features")
    conv = features[0]
    assert isinstance(conv, nn.Conv2d)
    features[0] = _conv_like(conv, in_channels, 3, 1, 1)
    if small:  # a 1×1 stride-1 pool keeps the pool's place (it delimits the stages) but not its downsampling
        first_pool = next(i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d))
        features[first_pool] = nn.MaxPool2d(1, 1)


register_backbone(BackboneAdapter("vgg", tvm.VGG, _vgg_stages, _vgg_stem))


# ---------------------------------------------------------------------------------------------- ConvNeXt
def _convnext_stages(model: nn.Module) -> list[StageSpec]:
    # features = [stem, stage1, down1, stage2, down2, stage3, down3, stage4]; the residual of stages 1–3 joins
    # after the following downsampling layer.
    features = _sub(model, "features")
    names = _names(features)
    specs = []
    for i, pos in enumerate(range(1, len(names), 2), start=1):
        c_in = _sub(features, f"{names[pos]}.0.block.0").in_channels
        if pos + 1 < len(names):
            down = _sub(features, f"{names[pos + 1]}.1")
            specs.append(StageSpec(i, "features", names[pos], names[pos + 1], c_in, down.out_channels, down.stride[0]))
        else:
            specs.append(StageSpec(i, "features", names[pos], names[pos], c_in, c_in, 1))
    return specs


def _convnext_stem(model: nn.Module, in_channels: int, small: bool) -> None:
    stem = _sub(model, "features.0")
    conv = stem[0]
    assert isinstance(conv, nn.Conv2d)
    stem[0] = _conv_like(conv, in_channels, 1, 1, 0) if small else _conv_like(conv, in_channels, 4, 4, 0)


register_backbone(BackboneAdapter("convnext", tvm.ConvNeXt, _convnext_stages, _convnext_stem))
