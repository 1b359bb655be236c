"""``wrap``: add RKAN branches around the stages of a torchvision CNN without touching its own modules."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..layers.create import create_conv, declared_options
from .backbones import StageSpec, find_adapter
from .conv import SharedKAConv2d
from .mechanisms import create_mechanism, get_mechanism, list_mechanisms

__all__ = ["RKANBlock", "RKANStages", "load_backbone_state_dict", "rkan_parameters", "wrap"]

_STAGE_SETS: dict[str, tuple[int, ...]] = {"E": (3, 4), "all": (1, 2, 3, 4)}


class RKANBlock(nn.Module):
    """The RKAN branch of one stage and its aggregation with the stage output.

    ``r = BN₂(KA₂(SiLU(expand(BN₁(KA₁(SiLU(reduce(x))))))))`` (``KA₂`` only when ``second_conv``), plus an optional
    projection shortcut of ``x``; then ``mechanism(o, scale·r)``. ``reduce`` is a bias-free 1×1 convolution to
    ``mid_channels`` (narrower for RKAN, wider for RKAN-L), ``KA₁`` carries the stage's stride.

    Args:
        in_channels, mid_channels, out_channels: widths of the stage input, the KA convolution and the stage output.
        stride: the stage's spatial downsampling.
        stage: 1-based stage number (CBAM picks its kernel from it).
        ka_conv: builds a KA convolution from ``(channels, stride, degree)``.
        degree: degrees of ``KA₁`` and ``KA₂``.
        mechanism: aggregation name (see :func:`~kanconvs.rkan.list_mechanisms`).
        second_conv: add ``KA₂`` (stride 1, on ``out_channels``) after the expansion.
        shortcut: add a 1×1 convolution + BN projection of the stage input to the residual.
        learnable_scale: multiply the residual by a learnable scalar (initialised to 1).
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        stride: int,
        stage: int,
        ka_conv: Any,
        degree: tuple[int, int] = (3, 2),
        mechanism: str = "addition",
        second_conv: bool = False,
        shortcut: bool = False,
        learnable_scale: bool = False,
    ) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.act1 = nn.SiLU()
        self.kan1: nn.Module = ka_conv(mid_channels, stride, degree[0])
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.expand = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.act2 = nn.SiLU()
        self.kan2: nn.Module | None = ka_conv(out_channels, 1, degree[1]) if second_conv else None
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module | None = None
        if shortcut:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.scale = nn.Parameter(torch.ones(())) if learnable_scale else None
        self.mechanism = create_mechanism(mechanism, out_channels, stage)

    def zero_init_(self) -> None:
        """Zero the branch's last BN (and the shortcut's), so the block returns the stage output exactly."""
        if not self.mechanism.identity_at_zero:
            ok = [m for m in list_mechanisms() if get_mechanism(m).identity_at_zero]
            raise ValueError(
                f"zero_init needs a mechanism with mechanism(o, 0) == o, one of {ok}; got {self.mechanism.name!r}"
            )
        bns = [self.bn2] + ([self.shortcut[1]] if isinstance(self.shortcut, nn.Sequential) else [])
        for bn in bns:
            assert isinstance(bn, nn.BatchNorm2d)
            nn.init.zeros_(bn.weight)
            nn.init.zeros_(bn.bias)
        self.mechanism.zero_init_()

    def residual(self, x: Tensor, size: Sequence[Any] | None = None) -> Tensor:
        """The branch's output for the stage input ``x``; ``size``: the stage output's spatial size, to which a
        strided KA convolution's output is cropped (its padding rounds odd sizes up, a stage's pooling rounds them
        down: the crop makes the padding effectively (1, 0), so even sizes are untouched)."""
        r = self.kan1(self.act1(self.reduce(x)))
        if size is not None:
            r = _crop(r, size)
        r = self.bn1(r)
        r = self.act2(self.expand(r))
        if self.kan2 is not None:
            r = self.kan2(r)
        r = self.bn2(r)
        if isinstance(self.shortcut, nn.Sequential):
            s = self.shortcut[0](x)
            r = r + self.shortcut[1](s if size is None else _crop(s, size))
        return r

    def forward(self, identity: Tensor, out: Tensor) -> Tensor:
        r = self.residual(identity, out.shape[2:])
        if not isinstance(out, torch.fx.Proxy) and r.shape != out.shape:  # symbolic tracing has no shapes
            raise ValueError(
                f"RKAN residual of shape {tuple(r.shape)} does not match the stage output {tuple(out.shape)}"
            )
        if self.scale is not None:
            r = r * self.scale
        return self.mechanism(out, r)


def _crop(t: Tensor, size: Sequence[Any]) -> Tensor:
    """``t`` cut to the spatial ``size``, at most one row and column less (one stride-2 rounding)."""
    if not isinstance(t, torch.fx.Proxy):
        extra = [have - want for have, want in zip(t.shape[2:], size, strict=True)]
        if any(e not in (0, 1) for e in extra):
            raise ValueError(
                f"RKAN residual of spatial size {tuple(t.shape[2:])} does not match the stage output {tuple(size)}: "
                "the stage's stride does not fit the backbone's downsampling"
            )
    return t[..., : size[0], : size[1]]


class RKANStages(nn.Module):
    """A backbone ``nn.Sequential`` replayed child by child, with RKAN blocks around some of its runs of children.

    The children keep their names (state_dict keys ``<parent>.<child>.*`` are unchanged); the blocks live in
    ``rkan`` (keys ``<parent>.rkan.<stage>.*``). Indexing, slicing (an ``nn.Sequential`` of the selected children,
    without RKAN branches), ``len`` and iteration see the backbone's children only.
    """

    def __init__(self, body: nn.Sequential, specs: Sequence[StageSpec], blocks: Mapping[int, RKANBlock]) -> None:
        super().__init__()
        if type(body).forward is not nn.Sequential.forward:
            raise ValueError(f"cannot wrap {type(body).__name__}: it overrides nn.Sequential.forward")
        self._body_names = tuple(name for name, _ in body.named_children())
        for name, module in body.named_children():
            self.add_module(name, module)
        self.rkan = nn.ModuleDict({str(spec.index): blocks[spec.index] for spec in specs})
        self._taps = {spec.first: str(spec.index) for spec in specs}
        self._joins = {spec.last: str(spec.index) for spec in specs}

    def forward(self, x: Tensor) -> Tensor:
        saved: dict[str, Tensor] = {}
        for name in self._body_names:
            key = self._taps.get(name)
            if key is not None:
                saved[key] = x
            x = self._modules[name](x)  # type: ignore[misc]
            key = self._joins.get(name)
            if key is not None:
                x = self.rkan[key](saved.pop(key), x)
        return x

    def __getitem__(self, idx: int | str | slice) -> nn.Module:
        if isinstance(idx, slice):  # like nn.Sequential: the backbone's children only (a slice may cut a stage)
            return nn.Sequential(OrderedDict((name, self.get_submodule(name)) for name in self._body_names[idx]))
        name = idx if isinstance(idx, str) else self._body_names[idx]
        if name not in self._body_names:
            raise KeyError(name)
        return self.get_submodule(name)

    def __len__(self) -> int:
        return len(self._body_names)

    def __iter__(self) -> Iterator[nn.Module]:
        return (self.get_submodule(name) for name in self._body_names)


def _stage_key(key: object) -> int | None:
    """A mapping key as a stage number: an int, or its decimal string (JSON stores ``{3: …}`` as ``{"3": …}``)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    return None


def _per_stage(name: str, value: Any, stages: Sequence[int], n_stages: int) -> dict[int, Any]:
    """Broadcast a scalar, index a sequence of one value per backbone stage, or look up a stage → value mapping
    (keys: the wrapped stages, as ints or digit strings)."""
    if isinstance(value, Mapping):
        by_stage: dict[int, Any] = {}
        for key, entry in value.items():
            stage = _stage_key(key)
            if stage in by_stage:
                raise ValueError(f"{name} has two entries for stage {stage}; got keys {list(value)}")
            by_stage[stage if stage is not None else key] = entry
        missing = [s for s in stages if s not in by_stage]
        if missing:
            raise ValueError(f"{name} has no entry for stages {missing}; got keys {list(value)}")
        extra = [key for key in value if _stage_key(key) not in stages]
        if extra:
            raise ValueError(
                f"{name} has entries for {extra}, which are not wrapped stages: the keys must be among the wrapped "
                f"stages {list(stages)} (of the backbone's 1..{n_stages}); got keys {list(value)}"
            )
        return {s: by_stage[s] for s in stages}
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n_stages:
            raise ValueError(f"{name} must have one entry per backbone stage ({n_stages}), got {list(value)}")
        return {s: value[s - 1] for s in stages}
    return dict.fromkeys(stages, value)


def _parse_degree(degree: object) -> tuple[int, int]:
    if isinstance(degree, int) and not isinstance(degree, bool):
        degree = (degree, degree)
    if not isinstance(degree, Sequence) or isinstance(degree, str):
        raise TypeError(f"degree must be an int or a pair of ints (first, second KA conv), got {degree!r}")
    if len(degree) != 2:
        raise ValueError(f"degree must be an int or a pair (first, second KA conv), got {degree!r}")
    for d in degree:
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"degree must be an int or a pair of ints (first, second KA conv), got {degree!r}")
        _check_int("degree", d, 0)
    return degree[0], degree[1]


def _parse_stages(stages: Any, n_stages: int) -> tuple[int, ...]:
    if isinstance(stages, str):
        if stages not in _STAGE_SETS:
            raise ValueError(
                f"stages must be a stage number, a list of them or one of {list(_STAGE_SETS)}, got {stages!r}"
            )
        chosen: tuple[int, ...] = _STAGE_SETS[stages]
    elif isinstance(stages, int) and not isinstance(stages, bool):
        chosen = (stages,)
    elif isinstance(stages, Sequence):
        chosen = tuple(stages)
    else:
        chosen = ()
    bad = [s for s in chosen if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= n_stages]
    if not chosen or bad or len(set(chosen)) != len(chosen):
        raise ValueError(f"stages must be distinct stage numbers in 1..{n_stages}, got {stages!r}")
    return tuple(sorted(chosen))


def _check_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


_FIXED_GEOMETRY = frozenset({"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"})


def _ka_conv_factory(
    kan_type: str | None, family: str | None, family_kwargs: Mapping[str, Any] | None, depthwise: bool
) -> Any:
    if family is None:
        if family_kwargs:
            raise ValueError(f"family_kwargs needs a family, got family=None and family_kwargs={dict(family_kwargs)}")
        kind = kan_type or "chebyshev"
        SharedKAConv2d(kan_type=kind, degree=1)  # validate now, not at the first stage

        def shared(channels: int, stride: int, degree: int) -> nn.Module:
            return SharedKAConv2d(3, stride, 1, degree, kind)

        return shared
    if not isinstance(family_kwargs, Mapping | None) or not all(isinstance(k, str) for k in family_kwargs or {}):
        raise TypeError(f"family_kwargs must be a mapping of option names to values (or None), got {family_kwargs!r}")
    if kan_type is not None:
        raise ValueError(
            f"give kan_type (the shared filter's basis) or family (a kanconvs family), not both; "
            f"got kan_type={kan_type!r}, family={family!r}"
        )
    takes_degree = "degree" in declared_options(family)  # raises for unknown families
    if fixed := sorted(_FIXED_GEOMETRY & set(family_kwargs or {})):
        raise ValueError(
            f"family_kwargs cannot set {fixed}: the RKAN branch fixes the KA convolution's shape (3×3, the stage's "
            "stride, padding 1; groups by depthwise=)"
        )
    options = {"norm_layer": None, "activation": None, **(family_kwargs or {})}

    def full(channels: int, stride: int, degree: int) -> nn.Module:
        kw = {"degree": degree, **options} if takes_degree else options
        groups = channels if depthwise else 1
        return create_conv(family, channels, channels, 3, stride=stride, padding=1, groups=groups, **kw)

    return full


def wrap(
    backbone: nn.Module,
    stages: int | str | Sequence[int] = 4,
    mechanism: str | Mapping[int, str] = "addition",
    *,
    kan_type: str | None = None,
    degree: int | tuple[int, int] = (3, 2),
    family: str | None = None,
    family_kwargs: Mapping[str, Any] | None = None,
    depthwise: bool = True,
    reduce_factor: int | Sequence[int] | Mapping[int, int] = 2,
    inverse_bottleneck: bool = False,
    expansion: int = 4,
    second_conv: bool = True,
    shortcut: bool = False,
    learnable_scale: bool = False,
    zero_init: bool = False,
) -> nn.Module:
    """Add RKAN branches (arXiv 2410.05500) around stages of a torchvision CNN, **in place**, and return it.

    Each chosen stage's input ``x`` goes through 1×1 reduce (or expand) → SiLU → 3×3 KA conv (stage stride) → BN →
    1×1 expand → SiLU → [second 3×3 KA conv on the backbone's last stage] → BN [+ shortcut(x)], and the result ``r``
    joins the stage output ``o`` by ``mechanism``. The backbone's modules, forward and state_dict keys stay as they
    are (RKAN parameters are added under ``<stage container>.rkan.<stage>``), so pretrained backbone weights load
    before or after wrapping (see :func:`load_backbone_state_dict`).

    Args:
        backbone: a torchvision ResNet / ResNeXt / Wide ResNet, DenseNet, RegNet X/Y, VGG(-bn) or ConvNeXt.
        stages: 1-based stage numbers (an int, a list), ``"E"`` (stages 3–4) or ``"all"``.
        mechanism: aggregation (:func:`~kanconvs.rkan.list_mechanisms`), or a ``{stage: mechanism}`` mapping with
            one entry per wrapped stage (keys ints or digit strings, as JSON stores them).
        kan_type: basis of the reference's channel-shared 3×3 KA filter (``"chebyshev"`` by default; see
            :data:`~kanconvs.rkan.SHARED_BASES`).
        degree: polynomial degrees of the first and second KA convolutions (an int sets both).
        family: use a kanconvs family (:func:`kanconvs.list_families`) as the KA convolution instead.
        family_kwargs: options of that family (the defaults drop its norm and activation: BN follows anyway).
        depthwise: the family convolution is depthwise (``groups=C``) rather than full.
        reduce_factor: ``C_mid = C_in // reduce_factor``; an int, one per backbone stage, or a mapping (as for
            ``mechanism``).
        inverse_bottleneck: RKAN-L: ``C_mid = C_in · expansion`` instead.
        expansion: RKAN-L width factor (2, 4, 6 give 2×L, 4×L, 6×L).
        second_conv: put the second KA convolution on the backbone's last stage (the reference does).
        shortcut: add a 1×1 conv + BN projection of the stage input to the residual.
        learnable_scale: multiply each residual by a learnable scalar (initialised to 1).
        zero_init: zero the branch's last BN so the wrapped model computes the backbone's function at init
            (needs a mechanism with ``mechanism(o, 0) == o``).

    Examples:
        >>> import torchvision
        >>> model = wrap(torchvision.models.resnet18(num_classes=10), stages="E", mechanism="se")
        >>> model(torch.randn(2, 3, 32, 32)).shape, sorted(model.layer4.rkan)
        (torch.Size([2, 10]), ['4'])
    """
    adapter = find_adapter(backbone)
    for module in backbone.modules():
        if isinstance(module, RKANStages):
            raise ValueError("backbone is already wrapped (it contains RKANStages)")
    specs = adapter.stages(backbone)
    n_stages = len(specs)
    chosen = _parse_stages(stages, n_stages)
    mechanisms = _per_stage("mechanism", mechanism, chosen, n_stages)
    known = list_mechanisms()
    for m in mechanisms.values():
        if m not in known:
            raise ValueError(f"unknown mechanism {m!r}; expected one of {known}")
    factors = {
        s: _check_int("reduce_factor", r)
        for s, r in _per_stage("reduce_factor", reduce_factor, chosen, n_stages).items()
    }
    _check_int("expansion", expansion)
    degrees = _parse_degree(degree)
    make = _ka_conv_factory(kan_type, family, family_kwargs, depthwise)

    ref = next(backbone.parameters(), None)
    device = ref.device if ref is not None else None
    blocks: dict[int, RKANBlock] = {}
    for spec in specs:
        if spec.index not in chosen:
            continue
        mid = spec.in_channels * expansion if inverse_bottleneck else spec.in_channels // factors[spec.index]
        if mid < 1:
            raise ValueError(
                f"reduce_factor {factors[spec.index]} leaves no channels of {spec.in_channels} (stage {spec.index})"
            )
        block = RKANBlock(
            spec.in_channels,
            mid,
            spec.out_channels,
            spec.stride,
            spec.index,
            make,
            degrees,
            mechanisms[spec.index],
            second_conv=second_conv and spec.index == n_stages,
            shortcut=shortcut,
            learnable_scale=learnable_scale,
        )
        if zero_init:
            block.zero_init_()
        blocks[spec.index] = block.to(device=device, dtype=ref.dtype if ref is not None else None)

    by_parent: dict[str, list[StageSpec]] = {}
    for spec in specs:
        if spec.index in blocks:
            by_parent.setdefault(spec.parent, []).append(spec)
    for parent, parent_specs in by_parent.items():
        body = backbone.get_submodule(parent)
        assert isinstance(body, nn.Sequential)
        owner_name, _, attr = parent.rpartition(".")
        owner = backbone.get_submodule(owner_name) if owner_name else backbone
        setattr(owner, attr, RKANStages(body, parent_specs, blocks))
    return backbone


def rkan_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of the RKAN blocks only (e.g. for their own learning rate)."""
    for name, module in model.named_modules():
        if isinstance(module, RKANStages):
            for sub, p in module.rkan.named_parameters():
                yield f"{name}.rkan.{sub}", p


def load_backbone_state_dict(model: nn.Module, state_dict: Mapping[str, Any]) -> None:
    """Load a plain backbone's ``state_dict`` into a wrapped model: every backbone key must match; only RKAN keys
    may be missing (they keep their current values)."""
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    rkan_keys = {k for k in model.state_dict() if ".rkan." in f".{k}"}
    not_rkan = [k for k in missing if k not in rkan_keys]
    if unexpected or not_rkan:
        raise ValueError(f"state_dict does not fit the backbone: missing {not_rkan}, unexpected {unexpected}")
