"""torch-conv-kan's ``models/ukanet.py`` names: ``UKANet``, ``UKAGNet`` and the ``u*net_18`` factories.

They build :class:`kanconvs.models.UKANet` / :class:`kanconvs.models.UKAGNet` with the reference's configuration and
module paths, so reference checkpoints load. What is kept for them and what differs: docs/migrating.md,
"Differences, module by module".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch  # noqa: F401  (used by the docstring examples)
from torch import nn

from ...models.reskanet import BasicBlock, ResConvs
from ...models.unet import UKAGNet as _UKAGNet
from ...models.unet import UKANet as _UKANet
from .. import attention
from .._generate import ReferenceCheckpoints, Values, exports, reference_init
from .reskanet import _ReferenceBlock, reference_conv, reference_factory

# factory → the reference block class it stacks
_BLOCKS = {
    "ukanet_18": "KANBasicBlock",
    "fast_ukanet_18": "FastKANBasicBlock",
    "ukalnet_18": "KALNBasicBlock",
    "ukagnet_18": "KAGNBasicBlock",
    "ukacnet_18": "KACNBasicBlock",
    "ukagnetnb_18": "BottleneckKAGNBasicBlock",
}


class UKANet(ReferenceCheckpoints, _UKANet):
    """torch-conv-kan's ``UKANet(block, layers, input_channels=3, num_classes=1000, …, **kan_kwargs)``.

    Examples:
        >>> from kanconvs.compat import KAGNBasicBlock
        >>> model = UKANet(KAGNBasicBlock, [1, 1, 1, 1], num_classes=2, fcnv_kernel_size=3, fcnv_padding=1)
        >>> model(torch.randn(1, 3, 16, 16)).shape
        torch.Size([1, 2, 16, 16])
    """

    l1_wrappers = True

    @reference_init("UKANet")
    def __init__(self, v: Values) -> None:
        block, kan_kwargs, k, stride, padding = (v[n] for n in ("block", "kan_kwargs", "fcnv_kernel_size",
                                                               "fcnv_stride", "fcnv_padding"))  # fmt: skip
        if not (isinstance(block, type) and issubclass(block, BasicBlock) and issubclass(block, _ReferenceBlock)):
            raise TypeError(f"block must be a reference basic block class such as KAGNBasicBlock, got {block!r}")
        if stride != 1 or padding != k // 2:
            raise ValueError(
                f"the stem must keep the size (fcnv_stride=1, fcnv_padding=fcnv_kernel_size // 2), got fcnv_stride="
                f"{stride!r}, fcnv_padding={padding!r} for fcnv_kernel_size={k!r}"
            )
        if v["replace_stride_with_dilation"] is not None and any(v["replace_stride_with_dilation"]):
            raise ValueError(
                f"replace_stride_with_dilation is not supported (the decoder upsamples ×2 per level), got "
                f"{v['replace_stride_with_dilation']!r}"
            )
        ref_block: Any = block
        convs = ref_block.reference_convs(kan_kwargs, downsample=ref_block.reference_downsample(kan_kwargs))
        plain = reference_conv(ref_block.spatial_family, kan_kwargs, l1=False)  # stem and merges: no L1 wrapper
        super().__init__(
            v["layers"], "basic", family=ref_block.spatial_family, in_channels=v["input_channels"],
            num_classes=v["num_classes"], width_scale=v["width_scale"], groups=v["groups"],
            width_per_group=v["width_per_group"], stem_kernel_size=k,
            convs=ResConvs(plain, convs.spatial, convs.pointwise, convs.downsample, plain),
        )  # fmt: skip
        # The reference's bug, kept for its checkpoints: later blocks of a stage were built with no options.
        for name in ("layer1e", "layer2e", "layer3e", "layer4e", "layer4d", "layer3d", "layer2d", "layer1d"):
            stage = getattr(self, name)
            for i in range(1, len(stage)):
                planes = stage[i].conv2.out_channels
                stage[i] = ref_block(planes, planes, groups=v["groups"], base_width=v["width_per_group"])


class UKAGNet(ReferenceCheckpoints, _UKAGNet):
    """torch-conv-kan's ``UKAGNet(input_channels=3, num_classes=1, unet_depth=4, unet_layers=2, …)``.

    Examples:
        >>> model = UKAGNet(3, 2, unet_depth=3, unet_layers=1)
        >>> model(torch.randn(1, 3, 16, 16)).shape
        torch.Size([1, 2, 16, 16])
    """

    @reference_init("UKAGNet")
    def __init__(self, v: Values) -> None:
        if v["mixer_type"] not in ("conv", "self-att", "focal"):
            raise ValueError(f"mixer_type must be one of ('conv', 'self-att', 'focal'), got {v['mixer_type']!r}")
        family = "bottleneck_kagn" if v["use_bottleneck"] else "kagn"
        options = {n: v[n] for n in ("degree", "dropout", "norm_layer", "affine")}
        prefix = "BottleNeck" if v["use_bottleneck"] else ""
        mixer: Callable[[int], nn.Module] | None = None
        if v["mixer_type"] == "self-att":
            cls: Any = getattr(attention, f"{prefix}SelfKAGNtention2D")
            mixer = functools.partial(
                _self_attention, cls, v["inner_projection_attention"], groups=v["groups"], padding=1, **options
            )
        elif v["mixer_type"] == "focal":
            cls = getattr(attention, f"{prefix}KAGNFocalModulation2D")
            focal = ("focal_window", "focal_level", "focal_factor", "use_postln_in_modulation",
                     "normalize_modulator", "full_kan")  # fmt: skip
            mixer = functools.partial(cls, **options, **{n: v[n] for n in focal})
        super().__init__(
            v["input_channels"], v["num_classes"], unet_depth=v["unet_depth"], unet_layers=v["unet_layers"],
            width_scale=v["width_scale"], groups=v["groups"], family=family, mixer_type=mixer or "conv",
            conv=reference_conv(family, options),
        )  # fmt: skip


def _self_attention(cls: Any, inner_projection: int | None, channels: int, **kwargs: Any) -> nn.Module:
    return cls(channels, inner_projection, kernel_size=3, **kwargs)


# ---------------------------------------------------------------------------------------------- factories
def _build(block_name: str, **options: Any) -> nn.Module:
    from . import reskanet

    block = getattr(reskanet, block_name)
    return UKANet(block, [2, 2, 2, 2], fcnv_kernel_size=3, fcnv_stride=1, fcnv_padding=1, width_per_group=64,
                  **options)  # fmt: skip


for _name, _block_name in _BLOCKS.items():
    globals()[_name] = reference_factory(
        _name,
        functools.partial(_build, _block_name),
        f"torch-conv-kan's ``{_name}``: a U-KANet of ``{_block_name}`` blocks, two per level.",
        __name__,
    )

__all__ = exports(globals())
