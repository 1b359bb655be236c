"""RKAN's KA convolution: one 3×3 polynomial KAN filter shared by every channel (depthwise, no channel mixing)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bases import create_basis

__all__ = ["SHARED_BASES", "SharedKAConv2d"]

#: Polynomial bases of the reference's channel-shared filter; every one has ``B_0 = 1``.
SHARED_BASES: tuple[str, ...] = ("chebyshev", "legendre", "hermite", "jacobi")


class SharedKAConv2d(nn.Module):
    r"""A k×k KAN filter applied to every channel separately, its weights shared across channels.

    For channel ``c`` at output position ``p`` with kernel taps ``j``:

    .. math:: y_{c,p} = \sum_j a_j\,x_{c,p+j} + \sum_j \sum_{d=0}^{D} s_j\,w_{j,d}\,B_d(\tanh x_{c,p+j})

    (base filter ``a``, coefficients ``w``, per-tap scaler ``s``: ``k²·(D + 3)`` parameters, 54 for 3×3 and D = 3).
    Padding zero-pads ``x`` before the basis, so padded taps contribute ``B_d(0)``, as in the reference's unfold.
    Since ``B_0 = 1`` everywhere, the ``d = 0`` term is a scalar bias ``Σ_j s_j w_{j,0}``; the other ``D + 1``
    feature planes (``x`` and ``B_1 … B_D``) go through one grouped convolution (``groups=C``).

    Args:
        kernel_size: filter size ``k``.
        stride: stride (RKAN uses the stage's stride).
        padding: zero padding of ``x``; ``None`` gives ``k // 2``.
        degree: polynomial degree ``D``.
        kan_type: the polynomial basis, one of :data:`SHARED_BASES`.
        basis_kwargs: extra basis arguments (Jacobi's ``alpha``/``beta``, 0.5 by default as in the reference).

    Examples:
        >>> conv = SharedKAConv2d(stride=2, degree=3)
        >>> sum(p.numel() for p in conv.parameters()), conv(torch.randn(2, 5, 8, 8)).shape
        (54, torch.Size([2, 5, 4, 4]))
    """

    def __init__(
        self,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        degree: int = 3,
        kan_type: str = "chebyshev",
        basis_kwargs: dict[str, float] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if kan_type not in SHARED_BASES:
            raise ValueError(f"kan_type must be one of {list(SHARED_BASES)}, got {kan_type!r}")
        for name, value in (("kernel_size", kernel_size), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        padding = kernel_size // 2 if padding is None else padding
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be an integer >= 0 or None, got {padding!r}")
        kwargs = dict(basis_kwargs or {})
        if kan_type == "jacobi":
            kwargs = {"alpha": 0.5, "beta": 0.5, **kwargs}
        self.basis = create_basis(kan_type, degree=degree, **kwargs)
        self.kan_type, self.degree = kan_type, degree
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        k = kernel_size
        self.base_weight = nn.Parameter(torch.empty(k, k, device=device, dtype=dtype))
        self.coefficients = nn.Parameter(torch.empty(degree + 1, k, k, device=device, dtype=dtype))
        self.scale = nn.Parameter(torch.empty(k, k, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference's initialisation: Kaiming-normal base filter (ReLU gain), N(0, 1/√(k²(D+1))) coefficients,
        unit scalers."""
        taps = self.kernel_size**2
        nn.init.normal_(self.base_weight, 0.0, math.sqrt(2.0 / taps))
        nn.init.normal_(self.coefficients, 0.0, 1.0 / math.sqrt(taps * (self.degree + 1)))
        nn.init.ones_(self.scale)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, torch.fx.Proxy) and x.dim() != 4:  # symbolic tracing (FX) has no dims
            raise ValueError(f"SharedKAConv2d expects input of shape (B, C, H, W), got {tuple(x.shape)}")
        c = x.shape[1]
        p = self.padding
        x = F.pad(x, (p, p, p, p))  # pad x, not the basis planes: padded taps see B_d(tanh 0)
        planes = [x, *self.basis.evaluate(torch.tanh(x))[1:]]
        features = torch.stack(planes, dim=2).flatten(1, 2)  # (B, C·(D+1), H+2p, W+2p), channel-major
        weight = torch.cat([self.base_weight[None], self.coefficients[1:] * self.scale], dim=0)  # (D+1, k, k)
        bias = (self.coefficients[0] * self.scale).sum()
        # one grouped conv with the shared filter broadcast to every channel (≈2× faster on CUDA than a
        # single-filter conv over a B·C batch); expand() makes no copy and sums the channels' gradients
        weight = weight[None].expand(c, -1, -1, -1).to(features.dtype)  # (C, D+1, k, k)
        return F.conv2d(features, weight, bias.expand(c).to(features.dtype), self.stride, groups=c)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"kan_type={self.kan_type!r}, degree={self.degree}"
        )
