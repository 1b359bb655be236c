"""torch-conv-kan's ``models/kan_rdnet.py`` (``KAGNRDNet``, ``kagrdnet_*``): :class:`kanconvs.models.RDNet` configured
as the reference's, with its module paths; the depthwise KAGN v2 weights are converted on load. Where the outputs
differ (the reference was broken): docs/migrating.md, "Differences, module by module".
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ...convert import convert_kagn_v2_layer
from ...models.rdnet import RDNET_CONFIGS, BlockType, RDNet, RDNetBlock
from .._generate import ReferenceCheckpoints, Values, exports, reference_function, reference_init

_BLOCK_TYPES: dict[str, BlockType] = {"Block": "block", "BlockESE": "ese"}


class KAGNRDNet(ReferenceCheckpoints, RDNet):
    """torch-conv-kan's ``KAGNRDNet`` (reference signature); see the module notes for what differs.

    Examples:
        >>> model = KAGNRDNet(8, (8, 8), (1, 1), is_downsample_block=(None, True), block_type="Block", num_classes=3)
        >>> model(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 3])
    """

    @reference_init("KAGNRDNet")
    def __init__(self, v: Values) -> None:
        if v["kwargs"]:
            raise TypeError(f"KAGNRDNet() got unexpected keyword arguments {sorted(v['kwargs'])}")
        block_type, growth_rates = v["block_type"], v["growth_rates"]
        types = [block_type] * len(growth_rates) if isinstance(block_type, str) else list(block_type)
        for t in types:
            if t not in _BLOCK_TYPES:
                raise ValueError(f"block_type entries must be one of {sorted(_BLOCK_TYPES)}, got {t!r}")
        bottleneck: dict[str, Any] = {"dropout_type": "noise"}  # the reference's bottleneck injects noise
        super().__init__(
            "bottleneck_kagn" if v["is_bottleneck"] else "kagn", growth_rates, v["num_blocks_list"],
            [bool(d) for d in v["is_downsample_block"]], [_BLOCK_TYPES[t] for t in types],
            num_init_features=v["num_init_features"], bottleneck_width_ratio=v["bottleneck_width_ratio"],
            transition_compression_ratio=v["transition_compression_ratio"], ls_init_value=v["ls_init_value"],
            drop_path_rate=v["drop_path_rate"], dropout_linear=v["drop_rate"], patch_size=v["patch_size"],
            post_stage_attention=v["post_block_attention"], attention_scale=v["inner_projection_attention_scale"],
            in_channels=v["in_chans"], num_classes=v["num_classes"], zero_head=v["zero_head"],
            head_init_scale=v["head_init_scale"], stem_family="bottleneck_kagn",
            stem_kwargs={"degree": 3, "dropout": 0.0, **bottleneck}, dropout=v["dropout"], degree=v["degree"],
            norm_layer=v["norm_layer"], **(bottleneck if v["is_bottleneck"] else {}),
        )  # fmt: skip
        if v["checkpoint_path"] is not None:
            # weights_only: a checkpoint file must not be able to run code (torch < 2.6 defaults to full pickle).
            self.load_state_dict(torch.load(v["checkpoint_path"], map_location="cpu", weights_only=True))

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
        for name, sub in self.named_modules():
            if isinstance(sub, RDNetBlock) and f"{prefix}{name}.layers.0.poly_conv.weight" in state_dict:
                convert_kagn_v2_layer(state_dict, f"{prefix}{name}.layers.0.")
        super()._load_from_state_dict(state_dict, prefix, *args)

    def get_classifier(self) -> nn.Module:
        return self.head.get_submodule("fc")


def _build(size: str, in_channels: int, num_classes: int, dropout_linear: float, **options: Any) -> KAGNRDNet:
    config = RDNET_CONFIGS[size]
    return KAGNRDNet(
        num_init_features=config["num_init_features"], growth_rates=config["growth_rates"],
        num_blocks_list=config["num_blocks"], in_chans=in_channels, num_classes=num_classes, drop_rate=dropout_linear,
        is_downsample_block=[None, *config["downsample"][1:]],
        block_type=["BlockESE" if t == "ese" else "Block" for t in config["block_types"]], **options,
    )  # fmt: skip


def _factory(size: str) -> Any:
    name = f"kagrdnet_{size}"
    return reference_function(name, partial(_build, size), module=__name__, doc=f"torch-conv-kan's ``{name}``.")


kagrdnet_tiny = _factory("tiny")
kagrdnet_small = _factory("small")
kagrdnet_base = _factory("base")
kagrdnet_large = _factory("large")

__all__ = exports(globals())
