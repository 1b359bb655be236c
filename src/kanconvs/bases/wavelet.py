"""Mother wavelets ψ(u), and a per-channel wavelet basis with learnable scales and translations."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..kernels.triton_lang import jit, tl
from ._base import Basis, broadcast_to_input, check_positive_int, register_basis

__all__ = ["TRITON_WAVELETS", "WAVELETS", "WaveletBasis", "get_wavelet", "safe_scale"]

_MEXICAN_HAT_NORM = 2.0 / (math.sqrt(3.0) * math.pi**0.25)
#: Every wavelet is evaluated at ``u`` clamped to ±U_MAX: beyond it the wavelets are 0 (or, for Shannon's sinc,
#: below 1e-6) to float precision, while ``u²`` of a larger ``u`` overflows fp32 (|u| ≳ 1.8e19) and ``inf · 0``
#: would turn the exact zero into NaN.
U_MAX = 1e6


def mexican_hat(u: Tensor) -> Tensor:
    # The reference's sign convention: (u^2 - 1), the negative of the usual Ricker wavelet.
    u = u.clamp(-U_MAX, U_MAX)
    return _MEXICAN_HAT_NORM * (u * u - 1) * torch.exp(-0.5 * u * u)


def morlet(u: Tensor) -> Tensor:
    u = u.clamp(-U_MAX, U_MAX)
    return torch.cos(5.0 * u) * torch.exp(-0.5 * u * u)


def dog(u: Tensor) -> Tensor:
    """Derivative of a Gaussian (up to sign): ``-u exp(-u^2 / 2)``."""
    u = u.clamp(-U_MAX, U_MAX)
    return -u * torch.exp(-0.5 * u * u)


def meyer(u: Tensor) -> Tensor:
    """``sin(π|u|) m(|u|)`` with Meyer's smooth window ``m`` (1 below 1/2, 0 above 1)."""
    v = u.clamp(-U_MAX, U_MAX).abs()
    s = (2 * v - 1).clamp(0, 1)
    nu = s**4 * (35 - 84 * s + 70 * s * s - 20 * s**3)
    window = torch.cos(0.5 * math.pi * nu)  # equals 1 for v <= 1/2 and 0 for v >= 1 because of the clamp
    return torch.sin(math.pi * v) * window


def shannon(u: Tensor) -> Tensor:
    """``sin(u) / u`` (safe at 0). WavKAN additionally weights it by a Hamming window over input channels."""
    return torch.sinc(u.clamp(-U_MAX, U_MAX) / math.pi)


WAVELETS: dict[str, Callable[[Tensor], Tensor]] = {
    "mexican_hat": mexican_hat,
    "morlet": morlet,
    "dog": dog,
    "meyer": meyer,
    "shannon": shannon,
}


# Triton device functions ψ(u) and ψ'(u) of the wavelets the fused WavKAN kernels evaluate
# (kanconvs.kernels.triton_wavelet_conv); the others run through the tiled PyTorch path.
@jit
def _mexican_hat_tl(u):
    u = tl.minimum(tl.maximum(u, -1e6), 1e6)  # U_MAX
    e = tl.exp(-0.5 * u * u)
    return 0.8673250705840776 * (u * u - 1.0) * e, 0.8673250705840776 * u * (3.0 - u * u) * e


@jit
def _morlet_tl(u):
    u = tl.minimum(tl.maximum(u, -1e6), 1e6)  # U_MAX
    e = tl.exp(-0.5 * u * u)
    c = tl.cos(5.0 * u)
    return c * e, (-5.0 * tl.sin(5.0 * u) - u * c) * e


@jit
def _dog_tl(u):
    u = tl.minimum(tl.maximum(u, -1e6), 1e6)  # U_MAX
    e = tl.exp(-0.5 * u * u)
    return -u * e, (u * u - 1.0) * e


#: name -> Triton function returning ``(ψ(u), ψ'(u))``.
TRITON_WAVELETS: dict[str, Any] = {"mexican_hat": _mexican_hat_tl, "morlet": _morlet_tl, "dog": _dog_tl}


def get_wavelet(name: str) -> Callable[[Tensor], Tensor]:
    try:
        return WAVELETS[name]
    except KeyError:
        raise ValueError(f"unknown wavelet_type {name!r}; expected one of {sorted(WAVELETS)}") from None


def safe_scale(scale: Tensor, eps: float = 1e-4) -> Tensor:
    """Keep learnable scales away from 0 (same sign, magnitude at least ``eps``): u = (x - t) / s stays finite."""
    floor = torch.full_like(scale, eps)
    floor = torch.where(scale < 0, -floor, floor)  # not copysign: it has no ONNX lowering
    return torch.where(scale.abs() < eps, floor, scale)


@register_basis("wavelet")
class WaveletBasis(Basis):
    """``ψ((x - t_{c,j}) / s_{c,j})`` for ``j = 0 … num_wavelets - 1`` with per-channel learnable ``s`` and ``t``.

    A channel-wise wavelet dictionary that plugs into the generic KA convolution (cost like any other basis).
    Translations start evenly spread over ``[-1, 1]``, scales at the spacing. The reference WavKAN layer, whose
    scales and translations are per (output, input) pair, is :class:`~kanconvs.WavKANConv2d`.
    """

    per_channel = True

    def __init__(
        self,
        channels: int,
        num_wavelets: int = 4,
        wavelet_type: str = "mexican_hat",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.channels = check_positive_int("channels", channels)
        self.num_functions = check_positive_int("num_wavelets", num_wavelets)
        self.wavelet_type = wavelet_type
        self.wavelet = get_wavelet(wavelet_type)
        self.scale = nn.Parameter(torch.empty(channels, num_wavelets, **factory))
        self.translation = nn.Parameter(torch.empty(channels, num_wavelets, **factory))
        self.reset_parameters()

    def reset_parameters(self, fan_in: int = 1) -> None:
        n = self.num_functions
        with torch.no_grad():
            self.translation.copy_(torch.linspace(-1, 1, n, dtype=torch.float64).expand_as(self.translation))
            self.scale.fill_(2.0 / max(n - 1, 1))

    def evaluate(self, x: Tensor) -> Tensor:
        repeats = x.shape[1] // self.channels
        s = broadcast_to_input(safe_scale(self.scale).to(x.dtype).repeat(repeats, 1), x)
        t = broadcast_to_input(self.translation.to(x.dtype).repeat(repeats, 1), x)
        return self.wavelet((x.unsqueeze(2) - t) / s)

    def fused_tensors(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return self.scale, self.translation  # the generic fused pass differentiates ``evaluate`` for them

    def extra_repr(self) -> str:
        return f"channels={self.channels}, num_wavelets={self.num_functions}, wavelet_type={self.wavelet_type!r}"
