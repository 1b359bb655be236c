"""Parameter-efficient fine-tuning (PEFT) of Gram KA convolutions: trainable degrees, extra degrees, one conv.

A pretrained :class:`~kanconvs.layers.families.KAGNConvNd` of degree ``D`` is wrapped by :class:`PEFTKAGNConv`:
its own parameters are frozen, and zero-initialised trainable parameters are added:

- ``weight_delta``: weight deltas of the chosen existing degrees (and of the base branch, ``finetune_base=True``);
- ``beta_delta``: deltas of the recurrence coefficients those degrees use;
- ``weight_extra`` and ``beta_extra``: the weights and recurrence coefficients of ``E`` new degrees ``D+1 … D+E``.

Everything added starts at zero, so the wrapped layer computes what the original did, and :meth:`PEFTKAGNConv.fuse`
folds the result back into a plain ``KAGNConvNd`` of degree ``D + E`` with the same outputs.
:func:`wrap_kagn` and :func:`merge_kagn` do the same for every Gram convolution of a model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import Tensor, nn

from ..bases import Basis
from ..bases.gram import GramBasis, gram_functions
from .families import KAGNConvNd
from .kan_conv import as_conv_weight

__all__ = ["PEFTKAGNConv", "count_trainable_parameters", "merge_kagn", "wrap_kagn"]


def _check_degrees(trainable_degrees: Sequence[int], degree: int) -> tuple[int, ...]:
    if isinstance(trainable_degrees, (str, bytes)) or not isinstance(trainable_degrees, Sequence):
        raise ValueError(f"trainable_degrees must be a sequence of ints, got {trainable_degrees!r}")
    out = tuple(trainable_degrees)
    bad = [d for d in out if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= degree]
    if bad:
        raise ValueError(
            f"trainable_degrees must hold degrees of the wrapped layer, integers in [0, {degree}], "
            f"got {list(out)} (invalid: {bad})"
        )
    if len(set(out)) != len(out):
        raise ValueError(f"trainable_degrees must not repeat a degree, got {list(out)}")
    return out


class PEFTKAGNConv(nn.Module):
    r"""A pretrained Gram KA convolution with frozen weights and zero-initialised trainable additions.

    The wrapped layer (degree ``D``) computes ``conv([base, p_0 … p_D], W)`` with Gram polynomials ``p_i`` whose
    recurrence ``p_i = t p_{i-1} - β_i p_{i-2}`` (``i ≥ 2``) uses the coefficient entry ``w_{i-1}``. This module
    evaluates the basis up to degree ``N = D + E`` and runs **one** convolution with the effective weight

    .. math:: W_\mathrm{eff} = [W \oplus W_\mathrm{extra}] + \mathrm{scatter}(\Delta W)

    (``W_extra`` holds degrees ``D+1 … N``; ``ΔW`` is added onto the slices of the trainable degrees and, with
    ``finetune_base``, of the base branch). The effective recurrence coefficients form the vector that a plain
    degree-``N`` layer would hold in ``basis.beta_weights`` (degree ``i`` uses entry ``i - 1``):

    ============================  =====================================================================
    entry                         value
    ============================  =====================================================================
    ``0 … D-1``                   ``w_j``, plus ``beta_delta[k]`` when degree ``j + 1`` is trainable
    ``D … N-1`` (new degrees)     ``beta_extra``: new degree ``D + j`` uses ``beta_extra[j - 1]`` (``D ≥ 1``)
    ``N``                         ``w_D`` (unused by the recurrence, as in the original layer)
    ============================  =====================================================================

    Degrees 0 and 1 have no coefficient, so ``beta_delta`` only has entries for the trainable degrees ``≥ 2``
    (``beta_delta_degrees``) and ``beta_extra`` only for new degrees ``≥ 2`` (``beta_extra_degrees``; all new degrees
    unless ``D = 0``, where degree 2 uses ``beta_extra[0]``): every parameter enters the output (no unused parameters
    under ``DistributedDataParallel``). :meth:`fuse` copies exactly these tensors into a plain layer, so its output
    equals this module's.

    The wrapped layer's parameters are shared, not copied, and frozen in place (``requires_grad=False``); with
    ``freeze_norm=False`` the norm's parameters are made trainable. Running statistics of a batch norm still update
    in training mode (put the norm in ``eval()`` to keep them). The layer's penalties (``activation_l1`` …) apply to
    this module's output and, for the weight penalties, to the new weights as well (:meth:`regularization_loss`).

    Args:
        layer: the pretrained Gram convolution (any ``ndim``, any ``groups``; a compat ``KAGNConv2DLayer`` too).
        trainable_degrees: existing degrees (``0 … D``) whose weights (and coefficient, for degrees ``≥ 2``) get
            a trainable delta.
        extra_degrees: number ``E ≥ 0`` of new degrees ``D+1 … D+E``.
        finetune_base: add a trainable delta to the base-branch weight (the layer must have a base branch).
        freeze_norm: freeze the norm's parameters (``False``: train them).

    Examples:
        >>> from kanconvs import KAGNConv2d
        >>> layer = KAGNConv2d(4, 8, 3, padding=1, degree=3)
        >>> x = torch.randn(2, 4, 6, 6)
        >>> peft = PEFTKAGNConv(layer, trainable_degrees=(2, 3), extra_degrees=2)
        >>> torch.allclose(peft(x), layer(x), atol=1e-5)
        True
        >>> [name for name, p in peft.named_parameters() if p.requires_grad]
        ['weight_delta', 'weight_extra', 'beta_delta', 'beta_extra']
        >>> peft.fuse().basis.degree
        5
    """

    weight_delta: nn.Parameter | None
    weight_extra: nn.Parameter | None
    beta_delta: nn.Parameter | None
    beta_extra: nn.Parameter | None
    weight_index: Tensor
    beta_index: Tensor

    def __init__(
        self,
        layer: KAGNConvNd,
        *,
        trainable_degrees: Sequence[int] = (),
        extra_degrees: int = 1,
        finetune_base: bool = False,
        freeze_norm: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(layer, KAGNConvNd) or not isinstance(layer.basis, GramBasis):
            raise TypeError(f"PEFTKAGNConv wraps a KAGNConvNd (a Gram KA convolution), got {type(layer).__name__}")
        degree = layer.basis.degree
        if isinstance(extra_degrees, bool) or not isinstance(extra_degrees, int) or extra_degrees < 0:
            raise ValueError(f"extra_degrees must be an integer >= 0, got {extra_degrees!r}")
        max_degree = GramBasis.max_degree
        if max_degree is not None and degree + extra_degrees > max_degree[0]:
            raise ValueError(
                f"extra_degrees={extra_degrees} would raise the degree to {degree + extra_degrees}, above the Gram "
                f"basis limit {max_degree[0]} ({max_degree[1]}): fuse() could not build that layer"
            )
        if finetune_base and not layer.use_base:
            raise ValueError("finetune_base=True needs a layer with a base branch, got use_base=False")
        self.layer = layer
        self.degree = degree
        self.extra_degrees = extra_degrees
        self.new_degree = degree + extra_degrees
        self.trainable_degrees = _check_degrees(trainable_degrees, degree)
        self.finetune_base = bool(finetune_base)
        self.freeze_norm = bool(freeze_norm)
        self.beta_delta_degrees = tuple(d for d in self.trainable_degrees if d >= 2)
        self.beta_extra_degrees = tuple(d for d in range(degree + 1, self.new_degree + 1) if d >= 2)
        # Geometry, as on the wrapped layer (models read these).
        self.in_channels, self.out_channels = layer.in_channels, layer.out_channels
        self.kernel_size, self.stride, self.padding = layer.kernel_size, layer.stride, layer.padding
        self.dilation, self.groups, self.ndim = layer.dilation, layer.groups, layer.ndim

        layer.requires_grad_(False)
        if not self.freeze_norm:
            layer.norm.requires_grad_(True)
            layer.input_norm.requires_grad_(True)

        weight, beta = layer.weight, layer.basis.beta_weights
        c_out, c_in, _, *kernel = weight.shape
        offset = int(layer.use_base)  # feature index of p_0
        weight_index = [0] * self.finetune_base + [offset + d for d in self.trainable_degrees]
        beta_index = [d - 1 for d in (*self.beta_delta_degrees, *self.beta_extra_degrees)]

        def zeros(like: Tensor, *shape: int) -> nn.Parameter:
            return nn.Parameter(like.new_zeros(shape))

        n_extra, n_beta_delta, n_beta_extra = extra_degrees, len(self.beta_delta_degrees), len(self.beta_extra_degrees)
        self.weight_delta = zeros(weight, c_out, c_in, len(weight_index), *kernel) if weight_index else None
        self.weight_extra = zeros(weight, c_out, c_in, n_extra, *kernel) if n_extra else None
        self.beta_delta = zeros(beta, n_beta_delta) if n_beta_delta else None
        self.beta_extra = zeros(beta, n_beta_extra) if n_beta_extra else None
        # Derived from the configuration, so not saved.
        self.register_buffer("weight_index", torch.tensor(weight_index, device=weight.device), persistent=False)
        self.register_buffer("beta_index", torch.tensor(beta_index, device=beta.device), persistent=False)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> PEFTKAGNConv:
        return super()._apply(as_conv_weight(fn, self.ndim), recurse)  # weight_delta / weight_extra are stacked

    def reset_parameters(self) -> None:
        """Zero the trainable additions: the module then computes the wrapped layer's output again."""
        for p in (self.weight_delta, self.weight_extra, self.beta_delta, self.beta_extra):
            if p is not None:
                nn.init.zeros_(p)

    @property
    def _gram(self) -> GramBasis:
        return cast(GramBasis, self.layer.basis)  # checked in __init__

    # ------------------------------------------------------------------------------------------ effective tensors
    def effective_weight(self) -> Tensor:
        """The convolution weight of degrees ``0 … N``: ``(C_out, C_in / groups, F + E, *kernel_size)``."""
        weight: Tensor = self.layer.weight
        if self.weight_extra is not None:
            weight = torch.cat([weight, self.weight_extra], dim=2)
        if self.weight_delta is not None:
            weight = weight.index_add(2, self.weight_index, self.weight_delta)
        return weight

    def effective_beta(self) -> Tensor:
        """The recurrence coefficients of a degree-``N`` Gram basis (see the table above): ``(N + 1,)``."""
        beta: Tensor = self._gram.beta_weights
        d = self.degree
        full = torch.cat([beta[:d], beta.new_zeros(self.extra_degrees), beta[d:]])  # w_D moves to the unused end
        added: list[Tensor] = [p for p in (self.beta_delta, self.beta_extra) if p is not None]
        if added:
            full = full.index_add(0, self.beta_index, added[0] if len(added) == 1 else torch.cat(added))
        return full

    # --------------------------------------------------------------------------------------------------- forward
    def _basis(self, h: Tensor, beta: Tensor, prepend: Tensor | None = None) -> Tensor:
        """Gram functions ``0 … N`` of ``h`` with coefficients ``beta``, stacked as :class:`GramBasis` does."""
        return Basis.stack(gram_functions(h, self.new_degree, beta, self._gram.activation), prepend)

    def features(self, x: Tensor) -> Tensor:
        """The wrapped layer's feature maps, with the basis extended to degree ``N``: ``(B, C_in · (F + E), *S)``."""
        beta = self.effective_beta()
        return self.layer.features(x, basis=lambda h, prepend=None: self._basis(h, beta, prepend))

    def forward(self, x: Tensor) -> Tensor:
        layer = self.layer
        layer.check_input(x)
        y = layer.conv(self.features(x), self.effective_weight().flatten(1, 2), layer.bias)
        y = layer.act(layer.norm(y))
        if layer.dropout_placement == "output":
            y = layer.dropout(y)
        return layer._record_activation(y)  # the layer's activation penalties see the PEFT output

    def regularization_loss(self) -> Tensor | None:
        """The wrapped layer's weight penalties (``weight_l1``, ``weight_l2``) on the new weights.

        On ``weight_delta`` they pull the fine-tuned weights toward the pretrained ones. (The wrapped layer reports
        its activation penalty, now of this module's output, and the constant penalty of its frozen weight.)
        """
        l1, l2 = self.layer.weight_l1, self.layer.weight_l2
        terms: list[Tensor] = []
        for p in (self.weight_delta, self.weight_extra):
            if p is not None and l1:
                terms.append(l1 * p.abs().sum())
            if p is not None and l2:
                terms.append(l2 * p.square().sum())
        return torch.stack([t.float() for t in terms]).sum() if terms else None

    # ------------------------------------------------------------------------------------------------------ fuse
    @torch.no_grad()
    def fuse(self) -> KAGNConvNd:
        """A plain layer of degree ``N = D + E`` (the wrapped layer's class and configuration) with this output.

        Its ``weight`` is :meth:`effective_weight`, its ``basis.beta_weights`` :meth:`effective_beta`; every other
        sub-module (norm, activation, …) is copied. All its parameters are trainable. This module is unchanged.
        """
        layer = self.layer
        beta = self.effective_beta()
        basis = GramBasis(self.new_degree, copy.deepcopy(self._gram.activation), device=beta.device, dtype=beta.dtype)
        basis.beta_weights.copy_(beta)
        weight = nn.Parameter(self.effective_weight().detach().clone())
        # deepcopy with the new weight and basis pre-seeded in the memo: the old ones are never copied. A recorded
        # activation penalty is part of an autograd graph, which deepcopy refuses: the copy starts without one.
        memo: dict[int, object] = {id(layer.weight): weight, id(layer.basis): basis}
        if layer._activation_penalty is not None:
            memo[id(layer._activation_penalty)] = None
        fused = copy.deepcopy(layer, memo)
        fused.features_per_channel = weight.shape[2]
        if isinstance(getattr(fused, "degree", None), int):  # the reference-compatible classes record their degree
            setattr(fused, "degree", self.new_degree)  # noqa: B010
        fused.requires_grad_(True)
        return fused

    def extra_repr(self) -> str:
        s = f"degree={self.degree}, extra_degrees={self.extra_degrees}"
        if self.trainable_degrees:
            s += f", trainable_degrees={self.trainable_degrees}"
        if self.finetune_base:
            s += ", finetune_base=True"
        if not self.freeze_norm:
            s += ", freeze_norm=False"
        return s


# ------------------------------------------------------------------------------------------------- whole models
def _replace(model: nn.Module, target: type[nn.Module], build: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """Replace every ``target`` sub-module by ``build(module)``; all are built before any is replaced (atomic).

    Shared sub-modules are built once (and stay shared). Nothing is searched below a replaced module. Returns the
    model, or ``build(model)`` when the model itself is a ``target``.
    """
    if isinstance(model, target):
        return build(model)
    sites: list[tuple[nn.Module, str, nn.Module]] = []

    def visit(parent: nn.Module) -> None:
        for name, child in parent._modules.items():  # not named_children(): it skips repeats of a shared module
            if child is None:
                continue
            if isinstance(child, target):
                sites.append((parent, name, child))
            elif not isinstance(child, PEFTKAGNConv):  # never re-enter a wrapper
                visit(child)

    visit(model)
    built: dict[int, nn.Module] = {}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for _, _, child in sites:
            if id(child) not in built:
                built[id(child)] = build(child)
    except Exception:
        for p, flag in flags:  # building a wrapper freezes its layer: undo that too
            p.requires_grad_(flag)
        raise
    for parent, name, child in sites:
        setattr(parent, name, built[id(child)])
    return model


def wrap_kagn(
    model: nn.Module,
    *,
    trainable_degrees: Sequence[int] = (),
    extra_degrees: int = 1,
    finetune_base: bool = False,
    freeze_norm: bool = True,
) -> nn.Module:
    """Wrap every Gram convolution of ``model``, in place, in a :class:`PEFTKAGNConv` (arguments as there).

    Other modules keep their ``requires_grad``: call ``model.requires_grad_(False)`` first to train only the PEFT
    parameters. If any layer rejects the arguments, nothing is replaced. Returns ``model`` (or the wrapper, when
    ``model`` is itself a Gram convolution).

    Examples:
        >>> from kanconvs import KAGNConv2d
        >>> model = nn.Sequential(KAGNConv2d(3, 8, 3, padding=1), KAGNConv2d(8, 8, 3, padding=1, groups=2))
        >>> model = wrap_kagn(model.requires_grad_(False), trainable_degrees=(3,), extra_degrees=1)
        >>> type(model[1]).__name__, count_trainable_parameters(model)
        ('PEFTKAGNConv', (1012, 3540))
        >>> type(merge_kagn(model)[1]).__name__
        'KAGNConv2d'
    """

    def build(layer: nn.Module) -> nn.Module:
        assert isinstance(layer, KAGNConvNd)
        return PEFTKAGNConv(
            layer,
            trainable_degrees=trainable_degrees,
            extra_degrees=extra_degrees,
            finetune_base=finetune_base,
            freeze_norm=freeze_norm,
        )

    return _replace(model, KAGNConvNd, build)


def merge_kagn(model: nn.Module) -> nn.Module:
    """Replace, in place, every :class:`PEFTKAGNConv` of ``model`` by its :meth:`~PEFTKAGNConv.fuse` result.

    Returns ``model`` (or the fused layer, when ``model`` is itself a wrapper).
    """

    def build(module: nn.Module) -> nn.Module:
        assert isinstance(module, PEFTKAGNConv)
        return module.fuse()

    return _replace(model, PEFTKAGNConv, build)


def count_trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameter elements of ``model`` (shared parameters counted once)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
