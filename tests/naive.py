"""Independent, slow reference formulas for the tests (scalar math and explicit loops, no kanconvs code)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from numpy.polynomial import chebyshev, hermite, legendre
from torch import Tensor


# ------------------------------------------------------------------------------------------- univariate bases
def legendre_values(x: np.ndarray, degree: int) -> list[np.ndarray]:
    return [legendre.legval(x, np.eye(degree + 1)[n]) for n in range(degree + 1)]


def chebyshev_values(x: np.ndarray, degree: int) -> list[np.ndarray]:
    return [chebyshev.chebval(x, np.eye(degree + 1)[n]) for n in range(degree + 1)]


def hermite_values(x: np.ndarray, degree: int) -> list[np.ndarray]:
    return [hermite.hermval(x, np.eye(degree + 1)[n]) for n in range(degree + 1)]


def jacobi_values(x: np.ndarray, degree: int, a: float, b: float) -> list[np.ndarray]:
    """Explicit sum: P_n = Σ_s C(n+a, n-s) C(n+b, s) ((x-1)/2)^s ((x+1)/2)^(n-s)."""

    def gbinom(top: float, k: int) -> float:
        return math.gamma(top + 1) / (math.gamma(k + 1) * math.gamma(top - k + 1))

    out = []
    for n in range(degree + 1):
        out.append(
            sum(
                gbinom(n + a, n - s) * gbinom(n + b, s) * ((x - 1) / 2) ** s * ((x + 1) / 2) ** (n - s)
                for s in range(n + 1)
            )
        )
    return out


def bernstein_values(t: np.ndarray, degree: int) -> list[np.ndarray]:
    return [math.comb(degree, j) * t**j * (1 - t) ** (degree - j) for j in range(degree + 1)]


def gram_values(t: np.ndarray, degree: int, w: np.ndarray) -> list[np.ndarray]:
    """Reference recurrence, β written as in torch-conv-kan: beta(n, m) = (m+n)(m-n)n^2 / (m^2 / (4n^2 - 1)) · w_n."""
    p = [np.ones_like(t), t]
    for m in range(2, degree + 1):
        n = m - 1
        beta = (m + n) * (m - n) * n**2 / (m**2 / (4.0 * n**2 - 1.0)) * w[n]
        p.append(t * p[m - 1] - beta * p[m - 2])
    silu = lambda v: v / (1 + np.exp(-v))  # noqa: E731
    return [silu(q) for q in p[: degree + 1]]


def bspline_scalar(x: float, knots: list[float], j: int, p: int) -> float:
    if p == 0:
        return 1.0 if knots[j] <= x < knots[j + 1] else 0.0
    left = (x - knots[j]) / (knots[j + p] - knots[j]) * bspline_scalar(x, knots, j, p - 1)
    right = (knots[j + p + 1] - x) / (knots[j + p + 1] - knots[j + 1]) * bspline_scalar(x, knots, j + 1, p - 1)
    return left + right


def bspline_values(x: np.ndarray, grid_size: int, order: int, lo: float, hi: float) -> list[np.ndarray]:
    h = (hi - lo) / grid_size
    knots = [lo + (j - order) * h for j in range(grid_size + 2 * order + 1)]
    vec = np.vectorize(bspline_scalar, excluded={1, 2, 3})
    return [vec(x, knots, j, order) for j in range(grid_size + order)]


def rbf_values(x: np.ndarray, grid_size: int, lo: float, hi: float) -> list[np.ndarray]:
    h = (hi - lo) / (grid_size - 1)
    return [np.exp(-(((x - c) / h) ** 2)) for c in np.linspace(lo, hi, grid_size)]


def relu_values(x: np.ndarray, g: int, k: int) -> list[np.ndarray]:
    r = 4 * g * g / (k + 1) ** 2
    out = []
    for j in range(g + k):
        a = (j - k) / g
        b = a + (k + 1) / g
        out.append((r * np.maximum(x - a, 0) * np.maximum(b - x, 0)) ** 2)
    return out


def mexican_hat(u: np.ndarray) -> np.ndarray:
    return 2 / (math.sqrt(3) * math.pi**0.25) * (u**2 - 1) * np.exp(-(u**2) / 2)


def morlet(u: np.ndarray) -> np.ndarray:
    return np.cos(5 * u) * np.exp(-(u**2) / 2)


def dog(u: np.ndarray) -> np.ndarray:
    return -u * np.exp(-(u**2) / 2)


def meyer(u: np.ndarray) -> np.ndarray:
    v = np.abs(u)

    def nu(t: np.ndarray) -> np.ndarray:
        return t**4 * (35 - 84 * t + 70 * t**2 - 20 * t**3)

    m = np.where(v <= 0.5, 1.0, np.where(v >= 1, 0.0, np.cos(math.pi / 2 * nu(2 * v - 1))))
    return np.sin(math.pi * v) * m


def shannon(u: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(u == 0, 1.0, np.sin(u) / u)


WAVELETS = {"mexican_hat": mexican_hat, "morlet": morlet, "dog": dog, "meyer": meyer, "shannon": shannon}


# ---------------------------------------------------------------------------------------------- convolution
def conv_loop(feats: Tensor, weight: Tensor, groups: int, stride, padding, dilation) -> Tensor:
    """Naive grouped convolution: explicit loops over output channels, input channels and kernel offsets.

    feats: (B, C_in, F, *S) features per input channel; weight: (C_out, C_in/g, F, *k). Zero padding per side.
    """
    b, _, _, *spatial = feats.shape
    c_out, c_in_g, _, *kernel = weight.shape
    nd = len(spatial)
    padded = F.pad(feats, [p for pad in reversed(padding) for p in (pad, pad)])
    out_size = [
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, p, d, k, st in zip(spatial, padding, dilation, kernel, stride, strict=True)
    ]
    out = torch.zeros(b, c_out, *out_size, dtype=feats.dtype)
    c_out_g = c_out // groups
    for o in range(c_out):
        group = o // c_out_g
        for i_local in range(c_in_g):
            i = group * c_in_g + i_local
            for offset in itertools.product(*[range(k) for k in kernel]):
                index = [slice(None), i, slice(None)]
                for dim in range(nd):
                    start = offset[dim] * dilation[dim]
                    index.append(slice(start, start + stride[dim] * (out_size[dim] - 1) + 1, stride[dim]))
                patch = padded[tuple(index)]  # (B, F, *out)
                w = weight[(o, i_local, slice(None), *offset)]  # (F,)
                out[:, o] += torch.einsum("bf...,f->b...", patch, w)
    return out


def instance_norm(y: Tensor, eps: float = 1e-5) -> Tensor:
    dims = tuple(range(2, y.dim()))
    mean = y.mean(dims, keepdim=True)
    var = y.var(dims, unbiased=False, keepdim=True)
    return (y - mean) / torch.sqrt(var + eps)
