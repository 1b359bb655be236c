"""Sparsely-gated mixtures of KA convolution experts, vectorised over experts.

The experts of a layer share one architecture, so their parameters are stored stacked: one tensor of shape
``(num_experts, *shape)`` per expert tensor (:class:`StackedExperts`). A forward pass gathers the ``k`` parameter
sets each sample is routed to and runs them with :func:`torch.vmap` over (sample, slot); vmap turns the per-sample
convolution weights into one grouped convolution. There is no Python loop over experts, the arithmetic is ``k / E``
of running every expert, and every stacked parameter receives a gradient (zero for experts nobody chose), so
``DistributedDataParallel`` needs no ``find_unused_parameters``.

Gating follows Shazeer et al. (2017), "Outrageously large neural networks" (:class:`NoisyTopKGate`), with the
reference's bugs fixed: top-k is taken on the logits and the softmax runs over the kept ``k``; the load estimate
compares logits with logit thresholds; experts start independent (the reference clones them). The balance loss is
reported by ``regularization_loss()``, not returned with the output.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from .._checks import is_real
from ._conv_base import ConvBase, check_positive
from .bottleneck import BottleneckKAConvNd
from .factories import reset_parameters_of
from .families import get_family

__all__ = [
    "MoEBottleneckKAConv1d",
    "MoEBottleneckKAConv2d",
    "MoEBottleneckKAConv3d",
    "MoEBottleneckKAConvNd",
    "MoEKAConv1d",
    "MoEKAConv2d",
    "MoEKAConv3d",
    "MoEKAConvNd",
    "NoisyTopKGate",
    "StackedExperts",
    "cv_squared",
]

Size = int | tuple[int, ...]
# Layer attributes that switch on passes vmap cannot batch (the fused basis pass, checkpointing): off in experts.
_CHECKPOINT_FLAGS = ("fused_basis", "checkpoint_wavelets")
# PenaltyMixin coefficients: a hidden expert's regularization_loss() is never collected, so they must stay zero there.
_PENALTIES = ("activation_l1", "activation_l2", "weight_l1", "weight_l2")


def cv_squared(x: Tensor, eps: float = 1e-10) -> Tensor:
    """Squared coefficient of variation ``var(x) / (mean(x)² + eps)`` (unbiased variance); 0 for one element.

    Examples:
        >>> float(cv_squared(torch.tensor([1.0, 1.0, 1.0])))
        0.0
    """
    if x.numel() < 2:
        return x.new_zeros(())
    return x.var() / (x.mean().square() + eps)


# ------------------------------------------------------------------------------------------------------- gating
class NoisyTopKGate(nn.Module):
    r"""Noisy top-k gating (Shazeer et al., 2017) on a feature vector per sample.

    ``logits = h·W_gate`` (``h = pregate(features)``, or the features themselves); in training with
    ``noisy_gating``, ``logits += ε·(softplus(h·W_noise) + noise_epsilon)`` with ``ε ~ N(0, 1)``. The ``k`` largest
    logits are kept and softmaxed into the mixture weights. The balance loss is ``cv²(importance) + cv²(load)``:
    ``importance_e = Σ_b gate_{b,e}`` and ``load_e = Σ_b P(expert e is in the top k)``, estimated with the normal CDF
    of ``(clean_e − threshold) / σ_e``, where the threshold is the k-th largest noisy logit of the *other* experts.
    Without noise (eval, ``noisy_gating=False``) or when ``k == num_experts`` the load is the selection count, which
    carries no gradient; the importance term always does.

    ``W_gate`` starts uniform in ``±1/√in_features`` so that even without noise samples are routed differently from
    the first step (all-zero gates, the reference's choice, send every sample to the same ``k`` experts).
    ``W_noise`` starts at zero (noise scale ``softplus(0) + 0.01 ≈ 0.70``). ``W_noise`` exists only with
    ``noisy_gating``, so no parameter is left without a gradient in training (in eval no noise is drawn).

    Args:
        in_features: width of the features the gate reads (the pregate must keep it).
        num_experts: number of experts ``E``.
        k: experts per sample, ``1 ≤ k ≤ E``.
        noisy_gating: add the learned noise in training.
        noise_epsilon: floor of the noise scale.
        pregate: optional module applied to the features first (the reference's ``pregate`` KA linear layer).

    Examples:
        >>> gate = NoisyTopKGate(16, num_experts=4, k=2)
        >>> weights, experts, loss = gate(torch.randn(8, 16))
        >>> weights.shape, experts.shape, loss.shape
        (torch.Size([8, 2]), torch.Size([8, 2]), torch.Size([]))
    """

    w_noise: nn.Parameter | None

    def __init__(
        self,
        in_features: int,
        num_experts: int,
        k: int,
        *,
        noisy_gating: bool = True,
        noise_epsilon: float = 1e-2,
        pregate: nn.Module | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive("in_features", in_features)
        self.num_experts = check_positive("num_experts", num_experts)
        self.k = check_positive("k", k)
        if k > num_experts:
            raise ValueError(f"k must be <= num_experts ({num_experts}), got k={k!r}")
        if not isinstance(noisy_gating, bool):
            raise ValueError(f"noisy_gating must be a bool, got {noisy_gating!r}")
        if not is_real(noise_epsilon) or not 0 < noise_epsilon < math.inf:
            raise ValueError(f"noise_epsilon must be a finite number > 0, got {noise_epsilon!r}")
        if pregate is not None and not isinstance(pregate, nn.Module):
            raise TypeError(f"pregate must be an nn.Module or None, got {type(pregate).__name__}")
        pregate_out = getattr(pregate, "out_features", in_features)
        if pregate_out != in_features:
            raise ValueError(f"pregate must keep the width in_features={in_features}, but it outputs {pregate_out}")
        self.noisy_gating = noisy_gating
        self.noise_epsilon = float(noise_epsilon)
        self.pregate = pregate
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.w_gate = nn.Parameter(torch.empty(in_features, num_experts, **factory))
        self.w_noise = nn.Parameter(torch.empty(in_features, num_experts, **factory)) if noisy_gating else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.w_gate, -bound, bound)
        if self.w_noise is not None:
            nn.init.zeros_(self.w_noise)
        if self.pregate is not None:
            reset_parameters_of(self.pregate)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Route a batch.

        Args:
            features: ``(B, in_features)``.

        Returns:
            ``weights`` ``(B, k)`` (softmax over each sample's kept logits, largest first), ``experts`` ``(B, k)``
            (their indices, int64) and the scalar balance loss ``cv²(importance) + cv²(load)`` (not yet scaled).
        """
        if features.dim() != 2 or features.shape[1] != self.in_features:
            raise ValueError(
                f"NoisyTopKGate expects features of shape (batch, {self.in_features}), got {tuple(features.shape)}"
            )
        h = self.pregate(features) if self.pregate is not None else features
        clean = h @ self.w_gate.to(h.dtype)  # (B, E)
        noise_std: Tensor | None = None
        logits = clean
        if self.w_noise is not None and self.training:
            noise_std = F.softplus(h @ self.w_noise.to(h.dtype)) + self.noise_epsilon
            logits = clean + torch.randn_like(clean) * noise_std
        k, num_experts = self.k, self.num_experts
        top_values, top_index = logits.topk(min(k + 1, num_experts), dim=1)  # (B, min(k + 1, E)), descending
        weights = torch.softmax(top_values[:, :k], dim=1)  # (B, k)
        experts = top_index[:, :k]
        importance = torch.zeros_like(logits).scatter(1, experts, weights).sum(0)  # (E,)
        if noise_std is not None and k < num_experts:
            # P(e in top k) under resampled noise: e must beat the k-th largest of the others, which is the
            # (k+1)-th largest overall if e is in the top k and the k-th largest if it is not.
            threshold_in, threshold_out = top_values[:, k : k + 1], top_values[:, k - 1 : k]  # (B, 1)
            is_in = logits > threshold_in
            prob_in = torch.special.ndtr((clean - threshold_in) / noise_std)
            prob_out = torch.special.ndtr((clean - threshold_out) / noise_std)
            load = torch.where(is_in, prob_in, prob_out).sum(0)
        else:
            load = torch.zeros_like(importance).scatter_add(0, experts.reshape(-1), torch.ones_like(weights).view(-1))
        return weights, experts, cv_squared(importance) + cv_squared(load)

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, num_experts={self.num_experts}, k={self.k}"
        return s + f", noisy_gating={self.noisy_gating}"


# ------------------------------------------------------------------------------------------------------ experts
class _Holder(nn.Module):
    """A plain container mirroring one sub-module of the expert; holds that sub-module's stacked tensors."""


class StackedExperts(nn.Module):
    """``num_experts`` independently initialised copies of one module, stored as stacked tensors and run with vmap.

    Every parameter and buffer of the expert is held under the expert's own name with a leading expert axis
    (``weight`` of shape ``(E, C_out, c_in, F, *k)``, ``basis.beta_weights`` of shape ``(E, D + 1)`` …), so the
    ``state_dict`` reads like the expert's. The expert module itself is kept, on the ``meta`` device and outside the
    module tree, only as the function that :func:`torch.func.functional_call` evaluates.

    Restrictions, checked when the experts are built:

    * no running statistics (BatchNorm, ``track_running_stats=True``): vmapped experts cannot update buffers in
      place, and per-expert batch statistics would depend on the routing. Use ``norm_layer="instance"`` (the families'
      default), ``"group"``, ``"layer"`` or ``None``.
    * no penalties of their own (``activation_l1`` … ``weight_l2``): give them to the MoE layer instead.

    Activation checkpointing inside the experts is switched off (its recomputation cannot run inside vmap).

    Args:
        build: builds one expert (called ``num_experts`` times, again on :meth:`reset_parameters`).
        num_experts: number of experts ``E``.

    Examples:
        >>> from kanconvs import KAGNConv2d
        >>> experts = StackedExperts(lambda: KAGNConv2d(4, 8, 3, padding=1), num_experts=3)
        >>> experts(torch.randn(2, 4, 5, 5), torch.tensor([[0, 2], [1, 1]])).shape
        torch.Size([2, 2, 8, 5, 5])
    """

    _template: nn.Module

    def __init__(self, build: Callable[[], nn.Module], num_experts: int) -> None:
        super().__init__()
        self.num_experts = check_positive("num_experts", num_experts)
        self._build = build
        first = build()
        if not isinstance(first, nn.Module):
            raise TypeError(f"the expert factory must build an nn.Module, got {type(first).__name__}")
        self._check_expert(first)
        self._names = [name for name, _ in first.named_parameters()] + [name for name, _ in first.named_buffers()]
        template = copy.deepcopy(first).to("meta")
        self._disabled_flags = _disable_checkpointing(template)
        # Stored outside _modules: not a sub-module (no .to(), no state_dict entry, not visited by modules()).
        self.__dict__["_template"] = template
        for name, tensor in [*first.named_parameters(), *first.named_buffers()]:
            owner_path, _, leaf = name.rpartition(".")
            owner = _holder(self, owner_path)
            stacked = tensor.detach().new_empty(num_experts, *tensor.shape)
            if isinstance(tensor, nn.Parameter):
                owner.register_parameter(leaf, nn.Parameter(stacked, requires_grad=tensor.requires_grad))
            else:
                persistent = leaf not in first.get_submodule(owner_path)._non_persistent_buffers_set
                owner.register_buffer(leaf, stacked, persistent=persistent)
        self._fill(0, first)
        for e in range(1, num_experts):
            self._fill(e, self._build_checked())

    # -- construction helpers
    def _build_checked(self) -> nn.Module:
        expert = self._build()
        shapes = {n: t.shape for n, t in [*expert.named_parameters(), *expert.named_buffers()]}
        if list(shapes) != self._names or any(
            shapes[n] != self.stacked_tensor(n).shape[1:] for n in self._names
        ):  # a factory with state (e.g. a counter) could build different architectures
            raise ValueError("the expert factory built experts with different parameters; all experts must match")
        return expert

    @staticmethod
    def _check_expert(expert: nn.Module) -> None:
        for name, module in expert.named_modules():
            where = f"expert sub-module {name!r}" if name else "the expert"
            if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats:
                raise ValueError(
                    f"norm_layer: {where} is a {type(module).__name__} with running statistics, which mixture-of-"
                    "experts layers do not support (experts run vmapped and per-expert batch statistics would depend "
                    "on the routing); use norm_layer='instance', 'group', 'layer' or None"
                )
            penalties = [p for p in _PENALTIES if getattr(module, p, 0)]
            if penalties:
                raise ValueError(
                    f"{where} has penalties {penalties}; give activation_l1/activation_l2/weight_l1/weight_l2 to the "
                    "mixture-of-experts layer, which applies them to its output and to every expert's weights"
                )

    def _fill(self, index: int, expert: nn.Module) -> None:
        with torch.no_grad():
            for name, tensor in [*expert.named_parameters(), *expert.named_buffers()]:
                self.stacked_tensor(name)[index].copy_(tensor)

    # -- accessors
    def stacked_tensor(self, name: str) -> Tensor:
        """The stacked ``(E, *shape)`` tensor of the expert's parameter or buffer ``name``."""
        owner_path, _, leaf = name.rpartition(".")
        return getattr(self.get_submodule(owner_path), leaf)

    def stacked(self) -> dict[str, Tensor]:
        """Every stacked parameter and buffer, under the expert's names."""
        return {name: self.stacked_tensor(name) for name in self._names}

    @property
    def template(self) -> nn.Module:
        """The expert architecture (on the ``meta`` device, holding no values)."""
        return self._template

    def expert(self, index: int) -> nn.Module:
        """A standalone copy of expert ``index`` (e.g. to inspect or export it alone)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.num_experts:
            raise ValueError(f"index must be an integer in [0, {self.num_experts}), got {index!r}")
        module = copy.deepcopy(self._template)
        for path, attr in self._disabled_flags:
            setattr(module.get_submodule(path), attr, True)
        for name in self._names:
            owner_path, _, leaf = name.rpartition(".")
            owner = module.get_submodule(owner_path)
            value = self.stacked_tensor(name)[index].detach().clone()
            if leaf in owner._parameters:
                requires_grad = owner._parameters[leaf].requires_grad  # type: ignore[union-attr]
                owner._parameters[leaf] = nn.Parameter(value, requires_grad=requires_grad)
            else:
                owner._buffers[leaf] = value
        return module.train(self.training)

    # -- nn.Module API
    def reset_parameters(self) -> None:
        """Re-initialise every expert independently (each one as a freshly built expert)."""
        device = next(iter(self.stacked().values())).device
        for e in range(self.num_experts):
            expert = self._build_checked()
            if device.type != "meta" and any(t.is_meta for t in expert.parameters()):
                # built with device="meta" (deferred initialisation), the stack since materialised (to_empty):
                # initialise the expert where the stack lives
                expert = expert.to_empty(device=device)
                _reset(expert)
            self._fill(e, expert)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> StackedExperts:
        # A stack (E, *shape) of an expert's 4-D tensors is 5-D, which memory formats (channels_last) would read as
        # a 3-D conv weight and refuse: it converts as E·shape[0] 4-D tensors.
        def convert(t: Tensor) -> Tensor:
            return fn(t.flatten(0, 1)).unflatten(0, t.shape[:2]) if t.dim() == 5 else fn(t)

        return super()._apply(convert, recurse)

    def train(self, mode: bool = True) -> StackedExperts:
        super().train(mode)
        self._template.train(mode)
        return self

    def forward(self, x: Tensor, experts: Tensor) -> Tensor:
        """Run sample ``b`` through experts ``experts[b, 0] … experts[b, k-1]``.

        Args:
            x: ``(B, *in_shape)``, one sample per row.
            experts: ``(B, k)`` expert indices.

        Returns:
            ``(B, k, *out_shape)``.
        """
        if x.shape[0] == 0:  # vmap cannot map over an empty axis: run one dummy sample and keep none of it
            return self.forward(x.new_zeros(1, *x.shape[1:]), experts.new_zeros(1, experts.shape[1]))[:0]
        flat = experts.reshape(-1)
        # (B, k, *shape) per tensor; index_select's backward scatters into zeros, so unused experts get 0-gradients.
        chosen = {n: t.index_select(0, flat).unflatten(0, experts.shape) for n, t in self.stacked().items()}
        per_slot = vmap(self._run_one, in_dims=(0, None), randomness="different")  # over the k slots, same sample
        return vmap(per_slot, in_dims=(0, 0), randomness="different")(chosen, x)  # over the batch

    def _run_one(self, tensors: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(self._template, tensors, (x.unsqueeze(0),), strict=True).squeeze(0)

    def __repr__(self) -> str:
        expert = repr(self._template).replace("\n", "\n  ")
        return f"{type(self).__name__}(num_experts={self.num_experts}, expert={expert})"


def _holder(root: nn.Module, path: str) -> nn.Module:
    module = root
    for part in filter(None, path.split(".")):
        if part not in module._modules:
            module.add_module(part, _Holder())
        module = module._modules[part]  # type: ignore[assignment]
    return module


def _reset(module: nn.Module) -> None:
    """``module.reset_parameters()``, or that of each sub-module where the module has none."""
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
        return
    for child in module.children():
        _reset(child)


def _disable_checkpointing(module: nn.Module) -> list[tuple[str, str]]:
    disabled = []
    for path, sub in module.named_modules():
        for attr in _CHECKPOINT_FLAGS:
            if getattr(sub, attr, False) is True:
                setattr(sub, attr, False)
                disabled.append((path, attr))
    return disabled


# ---------------------------------------------------------------------------------------------------- MoE layer
class MoEKAConvNd(ConvBase):
    r"""Sparsely-gated mixture of KA convolution experts, over 1, 2 or 3 spatial dimensions.

    .. math:: y_b = \sum_{j=1}^{k} g_{b,j}\, \mathrm{expert}_{e_{b,j}}(x_b)

    Each sample ``x_b`` (a whole sample, as in the reference) is routed by :class:`NoisyTopKGate` on its global
    average pool to ``k`` of ``num_experts`` experts; ``g_{b,·}`` is the softmax over the kept logits. An expert is a
    complete KA convolution of any family (``create_conv(family, …, **family_kwargs)``), with its own norm and
    activation, or whatever ``expert_factory`` builds; experts are independently initialised and stored stacked
    (:class:`StackedExperts`).

    The balance loss of the last forward pass (``cv²(importance) + cv²(load)``, computed in training and eval) is
    reported, multiplied by ``loss_coef``, by :meth:`regularization_loss`: add
    ``kanconvs.layers.regularization.regularization_loss(model)`` to the task loss. Before any forward pass it is 0.
    Gating runs in at least float32, with autocast off.

    Parameters: ``num_experts · P_expert + in_channels · num_experts · (1 + noisy_gating)`` (+ the pregate's); the
    reference always allocates ``W_noise``, so the counts agree for ``noisy_gating=True``.

    Cost: the expert arithmetic is that of ``k`` dense layers; the gathered parameter sets take
    ``B · k · P_expert`` extra memory per forward pass (plus the same for their gradient in the backward pass).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: as in ``nn.ConvNd``; passed to
            every expert.
        ndim: number of spatial dimensions (fixed by the ``…1d/2d/3d`` classes).
        family: the experts' family (:func:`kanconvs.list_families`), ``"kagn"`` when ``expert_factory`` is None.
            With an ``expert_factory`` it is passed on as ``family=`` if given (e.g. for
            :class:`~kanconvs.layers.bottleneck.BottleneckKAConvNd` experts).
        num_experts: number of experts ``E``.
        k: experts per sample, ``1 ≤ k ≤ E``.
        noisy_gating: learned gating noise in training (Shazeer et al.).
        loss_coef: multiplier of the balance loss in :meth:`regularization_loss`.
        expert_factory: builds an expert instead of ``create_conv``; called as
            ``expert_factory(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, ndim=ndim,
            device=device, dtype=dtype, **family_kwargs)`` — the signature of every family class.
        pregate: optional module applied to the pooled features before the gate (must keep ``in_channels``).
        activation_l1, activation_l2, weight_l1, weight_l2: penalties reported by :meth:`regularization_loss`, on the
            combined output and on every expert's weights (experts may not carry their own).
        family_kwargs: the experts' options (``degree=``, ``norm_layer=``, ``dropout=`` …).

    Examples:
        >>> layer = MoEKAConv2d(8, 16, 3, padding=1, family="kacn", num_experts=4, k=2, degree=3)
        >>> layer(torch.randn(2, 8, 6, 6)).shape
        torch.Size([2, 16, 6, 6])
        >>> layer.regularization_loss().shape
        torch.Size([])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size,
        stride: Size = 1,
        padding: Size | str = 0,
        dilation: Size = 1,
        groups: int = 1,
        *,
        ndim: int | None = None,
        family: str | None = None,
        num_experts: int = 8,
        k: int = 2,
        noisy_gating: bool = True,
        loss_coef: float = 1e-2,
        expert_factory: Callable[..., nn.Module] | None = None,
        pregate: nn.Module | None = None,
        activation_l1: float = 0.0,
        activation_l2: float = 0.0,
        weight_l1: float = 0.0,
        weight_l2: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **family_kwargs: Any,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, ndim)
        check_positive("num_experts", num_experts)
        check_positive("k", k)
        if k > num_experts:
            raise ValueError(f"k must be <= num_experts ({num_experts}), got k={k!r}")
        if not is_real(loss_coef) or not 0 <= loss_coef < math.inf:
            raise ValueError(f"loss_coef must be a finite number >= 0, got {loss_coef!r}")
        self.num_experts, self.k, self.loss_coef = num_experts, k, float(loss_coef)
        self._init_penalties(activation_l1, activation_l2, weight_l1, weight_l2)
        options = {"ndim": self.ndim, "device": device, "dtype": dtype, **family_kwargs}
        geometry: dict[str, Any] = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        build: Callable[[], nn.Module]
        if expert_factory is None:
            self.family: str | None = "kagn" if family is None else family
            layer = get_family(self.family)  # unknown names fail here, listing the valid ones
            build = functools.partial(layer, in_channels, out_channels, kernel_size, **geometry, **options)
        else:
            if not callable(expert_factory):
                raise TypeError(f"expert_factory must be callable, got {type(expert_factory).__name__}")
            self.family = family
            if family is not None:
                options["family"] = family
            build = functools.partial(
                expert_factory, in_channels, out_channels, kernel_size, *geometry.values(), **options
            )
        self.experts = StackedExperts(build, num_experts)
        self.gate = NoisyTopKGate(
            in_channels, num_experts, k, noisy_gating=noisy_gating, pregate=pregate, device=device, dtype=dtype
        )
        self.noisy_gating = noisy_gating
        self.balance_loss: Tensor | None = None  # cv²(importance) + cv²(load) of the last forward pass

    def reset_parameters(self) -> None:
        self.experts.reset_parameters()
        self.gate.reset_parameters()

    def __getstate__(self) -> dict[str, Any]:
        # The recorded losses are non-leaf tensors of the last step's graph: copies and pickles start without them.
        state = super().__getstate__()  # PenaltyMixin drops the recorded penalty
        state["balance_loss"] = None
        return state

    def expert(self, index: int) -> nn.Module:
        """A standalone copy of expert ``index``."""
        return self.experts.expert(index)

    def route(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Gate a batch: mixture weights ``(B, k)``, expert indices ``(B, k)`` and the unscaled balance loss."""
        dims = tuple(range(2, x.dim()))
        # Route in at least fp32. (No autocast context on the meta device, which autocast rejects: shape inference.)
        with torch.autocast(device_type=x.device.type, enabled=False) if x.device.type != "meta" else nullcontext():
            compute = torch.promote_types(torch.promote_types(self.gate.w_gate.dtype, x.dtype), torch.float32)
            return self.gate(x.mean(dim=dims, dtype=compute))  # global average pool: (B, C_in)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_loss(x)[0]

    def forward_with_loss(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The output and the unscaled balance loss of this batch (which :meth:`forward` keeps for the hook)."""
        self.check_input(x)
        weights, experts, balance = self.route(x)
        if not torch.compiler.is_exporting():  # an exported graph has no module state to keep it in
            self.balance_loss = balance
        y = self.experts(x, experts)  # (B, k, C_out, *S_out)
        weights = weights.to(y.dtype).view(*weights.shape, *([1] * (y.dim() - 2)))
        return self._record_activation((y * weights).sum(1)), balance

    def regularization_loss(self) -> Tensor:
        """``loss_coef ·`` the balance loss of the last forward pass (a graph-connected scalar), plus penalties."""
        if self.balance_loss is None:
            loss = self.gate.w_gate.new_zeros((), dtype=torch.float32)
        else:
            loss = self.loss_coef * self.balance_loss.float()
        penalties = super().regularization_loss()
        return loss if penalties is None else loss + penalties

    def _penalised_weights(self) -> list[Tensor]:
        # The expert's own selection rule, applied to the stacked tensors: Σ over experts of each expert's penalty.
        template: Any = self.experts.template
        if not hasattr(template, "_penalised_weights"):
            return []
        names = {id(p): n for n, p in template.named_parameters()}
        return [self.experts.stacked_tensor(names[id(p)]) for p in template._penalised_weights()]

    def extra_repr(self) -> str:
        s = self.conv_repr()
        if self.family is not None:
            s += f", family={self.family!r}"
        s += f", num_experts={self.num_experts}, k={self.k}, noisy_gating={self.noisy_gating}"
        return s + f", loss_coef={self.loss_coef:g}"


class MoEKAConv1d(MoEKAConvNd):
    """:class:`MoEKAConvNd` over one spatial dimension, input ``(B, C, L)``."""

    _ndim = 1


class MoEKAConv2d(MoEKAConvNd):
    """:class:`MoEKAConvNd` over two spatial dimensions, input ``(B, C, H, W)``."""

    _ndim = 2


class MoEKAConv3d(MoEKAConvNd):
    """:class:`MoEKAConvNd` over three spatial dimensions, input ``(B, C, D, H, W)``."""

    _ndim = 3


# ----------------------------------------------------------------------------------------- MoE inside a bottleneck
class MoEBottleneckKAConvNd(BottleneckKAConvNd):
    r"""Bottleneck KA convolution whose inner KA convolution is a mixture of experts.

    As :class:`~kanconvs.layers.bottleneck.BottleneckKAConvNd` (shared base branch, 1×1 squeeze, 1×1 expand, norm,
    activation), with the inner ``m·g → m·g`` KA convolution replaced by a :class:`MoEKAConvNd` of ``num_experts``
    inner convolutions (no base branch, norm or activation of their own), gated on the squeezed features: the
    reference's ``MoEBottleNeckKAGNConv`` for every family. The balance loss is the inner layer's
    (:meth:`regularization_loss` of ``self.inner``, collected with the rest of the model).

    Parameters: the bottleneck's ``+ (E − 1)·P_inner + m·g·E·(1 + noisy_gating)`` (+ the pregate's).

    Args:
        num_experts, k, noisy_gating, loss_coef, pregate: as in :class:`MoEKAConvNd`.
        kwargs: the bottleneck's options (``dim_reduction=``, ``norm_layer=`` …) and the inner family's
            (``degree=`` …).

    Examples:
        >>> layer = MoEBottleneckKAConv2d(32, 32, 3, padding=1, num_experts=4, k=2, degree=3)
        >>> layer(torch.randn(2, 32, 6, 6)).shape
        torch.Size([2, 32, 6, 6])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size,
        stride: Size = 1,
        padding: Size | str = 0,
        dilation: Size = 1,
        groups: int = 1,
        *,
        ndim: int | None = None,
        family: str = "kagn",
        num_experts: int = 8,
        k: int = 2,
        noisy_gating: bool = True,
        loss_coef: float = 1e-2,
        pregate: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        conv_args = (in_channels, out_channels, kernel_size, stride, padding, dilation, groups)
        super().__init__(*conv_args, ndim=ndim, family=family, **kwargs)
        family_kwargs = self.family_kwargs  # the bottleneck's own options are not the experts'
        factory = {n: kwargs[n] for n in ("device", "dtype") if n in kwargs}
        width = self.groups * self.inner_channels
        # Replaces the single inner convolution the bottleneck built (same arguments, plus the experts and gate).
        self.inner = MoEKAConvNd(
            width, width, kernel_size, stride, padding, dilation, groups, ndim=self.ndim, family=family,
            num_experts=num_experts, k=k, noisy_gating=noisy_gating, loss_coef=loss_coef, pregate=pregate,
            use_base=False, norm_layer=None, activation=None, **factory, **family_kwargs,
        )  # fmt: skip

    @property
    def moe(self) -> MoEKAConvNd:
        """The inner mixture of experts (``self.inner``)."""
        return cast(MoEKAConvNd, self.inner)

    def _penalised_weights(self) -> list[Tensor]:
        # The squeeze, expand and base convolutions by the generic rule; the inner experts by their own rule (not
        # their stacked biases or norms); never the router.
        inner = {id(p) for p in self.moe.parameters()}
        own = [p for p in super()._penalised_weights() if id(p) not in inner]
        return own + self.moe._penalised_weights()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", num_experts={self.moe.num_experts}, k={self.moe.k}"


class MoEBottleneckKAConv1d(MoEBottleneckKAConvNd):
    _ndim = 1


class MoEBottleneckKAConv2d(MoEBottleneckKAConvNd):
    _ndim = 2


class MoEBottleneckKAConv3d(MoEBottleneckKAConvNd):
    _ndim = 3
