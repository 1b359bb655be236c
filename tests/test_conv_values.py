"""Every family × ndim × groups against an independent naive implementation written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kanconvs
from naive import (
    WAVELETS,
    bernstein_values,
    bspline_values,
    chebyshev_values,
    conv_loop,
    gram_values,
    hermite_values,
    instance_norm,
    jacobi_values,
    legendre_values,
    rbf_values,
)

FAMILIES = kanconvs.list_families()
NDIMS = [1, 2, 3]
GROUPS = [1, 2]
SPATIAL = {1: (7,), 2: (5, 6), 3: (4, 3, 5)}


def silu(v):
    return v / (1 + np.exp(-v))


def gelu(v):
    return 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))


def minmax_per_sample_group(x: np.ndarray, groups: int) -> np.ndarray:
    out = np.empty_like(x)
    c = x.shape[1] // groups
    for b in range(x.shape[0]):
        for g in range(groups):
            chunk = x[b, g * c : (g + 1) * c]
            out[b, g * c : (g + 1) * c] = 2 * (chunk - chunk.min()) / max(chunk.max() - chunk.min(), 1e-2) - 1
    return out


def naive_features(layer, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray | None]:
    """(basis functions, base feature) per the family's published semantics."""
    fam = layer.family
    basis = layer.basis
    if fam == "kan":
        lo, hi = -1.0, 1.0
        return bspline_values(x, basis.grid_size, basis.spline_order, lo, hi), gelu(x)
    if fam == "fastkan":
        xn = instance_norm(torch.from_numpy(x)).numpy()
        return rbf_values(xn, basis.grid_size, -2.0, 2.0), silu(x)
    if fam == "kaln":
        return legendre_values(minmax_per_sample_group(x, layer.groups), basis.degree), x
    if fam == "kacn":
        return chebyshev_values(np.tanh(x), basis.degree), None
    if fam == "kagn":
        w = basis.beta_weights.detach().double().numpy()
        return gram_values(np.tanh(x), basis.degree, w), silu(x)
    if fam == "kajn":
        return jacobi_values(np.tanh(x), basis.degree, basis.alpha, basis.beta), x
    if fam == "kabn":
        return bernstein_values(1 / (1 + np.exp(-x)), basis.degree), x
    if fam == "kahn":
        return hermite_values(np.tanh(x), basis.degree), silu(x)
    if fam == "relukan":
        low = basis.phase_low.detach().double().numpy()
        high = basis.phase_high.detach().double().numpy()
        # phases are shared across groups: channel c uses row c mod c_in
        c_in = low.shape[0]
        rows = np.arange(x.shape[1]) % c_in
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        r = basis.scale
        vals = []
        for j in range(low.shape[1]):
            a = low[rows, j].reshape(shape)
            b = high[rows, j].reshape(shape)
            vals.append((r * np.maximum(x - a, 0) * np.maximum(b - x, 0)) ** 2)
        return vals, silu(x)
    raise AssertionError(fam)


def naive_kan_conv(layer, x: torch.Tensor) -> torch.Tensor:
    xn = x.numpy()
    basis, base = naive_features(layer, xn)
    feats = basis if base is None else [base, *basis]
    stacked = torch.from_numpy(np.stack(feats, axis=2))  # (B, C, F, *S)
    padding = layer.padding
    y = conv_loop(stacked, layer.weight.detach().double(), layer.groups, layer.stride, padding, layer.dilation)
    fam = layer.family
    if fam == "fastkan":
        return y
    y = instance_norm(y)
    if fam == "kan":
        slopes = layer.act.weight.detach().double().repeat_interleave(layer.out_channels // layer.groups)
        slopes = slopes.view(1, -1, *([1] * layer.ndim))
        return torch.where(y >= 0, y, slopes * y)
    if fam == "kacn":
        return y
    return F.silu(y)


def naive_wavkan(layer, x: torch.Tensor) -> torch.Tensor:
    g, nd = layer.groups, layer.ndim
    c_in, c_out = layer.in_channels // g, layer.out_channels // g
    psi_fn = WAVELETS[layer.wavelet_type]
    window = np.hamming(c_in) if layer.wavelet_type == "shannon" else np.ones(c_in)
    scale = layer.scale.detach().double().numpy()
    trans = layer.translation.detach().double().numpy()
    xn = x.numpy()
    wavelet_out = []
    for o in range(layer.out_channels):
        grp = o // c_out
        maps = []
        for il in range(c_in):
            u = (xn[:, grp * c_in + il] - trans[o, il]) / scale[o, il]
            maps.append(psi_fn(u) * window[il])
        feats = torch.from_numpy(np.stack(maps, 1))[:, :, None]  # (B, c_in, 1, *S)
        w = layer.wavelet_weight.detach().double()[o : o + 1, :, None]  # (1, c_in, 1, *k)
        wavelet_out.append(conv_loop(feats, w, 1, layer.stride, layer.padding, layer.dilation))
    z = torch.cat(wavelet_out, 1)
    out_w = layer.out_weight.detach().double()[:, :, None]
    z = conv_loop(z[:, :, None], out_w, g, (1,) * nd, (0,) * nd, (1,) * nd)
    base = conv_loop(
        F.silu(x)[:, :, None],
        layer.base_weight.detach().double()[:, :, None],
        g,
        layer.stride,
        layer.padding,
        layer.dilation,
    )
    return (z + base) / math.sqrt(1 + 1e-5)  # BatchNorm in eval mode at its initial running statistics


def randomise(layer: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith("norm."):
                continue
            if name.endswith("scale"):
                p.uniform_(0.5, 1.5)
            elif "phase" in name:
                p.add_(0.1 * torch.randn_like(p))
            elif "act" in name:
                p.uniform_(0.1, 0.4)
            else:
                p.normal_(0, 0.5)


@pytest.mark.parametrize("groups", GROUPS)
@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("family", FAMILIES)
def test_matches_naive_formula(family: str, ndim: int, groups: int) -> None:
    kwargs = {"degree": 3} if family in ("kaln", "kacn", "kagn", "kajn", "kabn", "kahn") else {}
    stride = 2 if ndim == 2 else 1
    layer = kanconvs.create_conv(
        family, 4, 6, 3, ndim=ndim, groups=groups, padding=1, stride=stride, dilation=1, dtype=torch.float64, **kwargs
    ).eval()
    randomise(layer)
    x = torch.randn(2, 4, *SPATIAL[ndim], dtype=torch.float64)
    if family == "kan":
        x = x * 0.6  # mostly inside the grid, some outside
    expected = naive_wavkan(layer, x) if family == "wavkan" else naive_kan_conv(layer, x)
    with torch.no_grad():
        got = layer(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_dilation_and_tuple_kernel_match_naive() -> None:
    layer = kanconvs.KAGNConv2d(4, 4, (3, 1), padding=(2, 0), dilation=(2, 1), groups=2, dtype=torch.float64).eval()
    randomise(layer)
    x = torch.randn(1, 4, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x), naive_kan_conv(layer, x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("wavelet_type", sorted(WAVELETS))
def test_wavelets_match_naive(wavelet_type: str) -> None:
    layer = kanconvs.WavKANConv1d(4, 4, 3, padding=1, groups=2, wavelet_type=wavelet_type, dtype=torch.float64).eval()
    randomise(layer)
    x = torch.randn(2, 4, 6, dtype=torch.float64)
    torch.testing.assert_close(layer(x), naive_wavkan(layer, x), rtol=1e-9, atol=1e-9)


def test_output_shape_matches_nn_conv() -> None:
    for ndim, conv in ((1, torch.nn.Conv1d), (2, torch.nn.Conv2d), (3, torch.nn.Conv3d)):
        x = torch.randn(2, 4, *([9] * ndim))
        for kw in ({"stride": 2, "padding": 1}, {"dilation": 2}, {"padding": "same"}, {"padding": "valid"}):
            ours = kanconvs.KAGNConvNd(4, 8, 3, ndim=ndim, **kw)(x)
            assert ours.shape == conv(4, 8, 3, **kw)(x).shape


def naive_basis(basis, t: np.ndarray) -> list[np.ndarray]:
    """Every registered basis, from its parameters, with the formulas of tests/naive.py."""
    name = type(basis).__name__
    if name == "BSplineBasis":
        lo, hi = basis.knots[basis.spline_order].item(), basis.knots[-1 - basis.spline_order].item()
        return bspline_values(t, basis.grid_size, basis.spline_order, lo, hi)
    if name == "RBFBasis":
        return rbf_values(t, basis.grid_size, basis.grid[0].item(), basis.grid[-1].item())
    if name == "LegendreBasis":
        return legendre_values(t, basis.degree)
    if name == "ChebyshevBasis":
        return chebyshev_values(t, basis.degree)
    if name == "HermiteBasis":
        return hermite_values(t, basis.degree)
    if name == "JacobiBasis":
        return jacobi_values(t, basis.degree, basis.alpha, basis.beta)
    if name == "BernsteinBasis":
        return bernstein_values(t, basis.degree)
    if name == "GramBasis":
        return gram_values(t, basis.degree, basis.beta_weights.detach().double().numpy())
    if name in ("ReLUBasis", "WaveletBasis"):
        rows = np.arange(t.shape[1]) % basis.channels
        shape = (1, t.shape[1]) + (1,) * (t.ndim - 2)
        if name == "ReLUBasis":
            lo, hi = basis.phase_low.detach().double().numpy(), basis.phase_high.detach().double().numpy()
            return [
                (
                    basis.scale
                    * np.maximum(t - lo[rows, j].reshape(shape), 0)
                    * np.maximum(hi[rows, j].reshape(shape) - t, 0)
                )
                ** 2
                for j in range(lo.shape[1])
            ]
        s, tr = basis.scale.detach().double().numpy(), basis.translation.detach().double().numpy()
        psi = WAVELETS[basis.wavelet_type]
        return [psi((t - tr[rows, j].reshape(shape)) / s[rows, j].reshape(shape)) for j in range(s.shape[1])]
    raise AssertionError(f"no naive formula for {name}: add one when registering a basis")


@pytest.mark.parametrize("groups", GROUPS)
@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("basis", kanconvs.list_bases())
def test_every_registered_basis_in_the_generic_layer(basis: str, ndim: int, groups: int) -> None:
    layer = kanconvs.KAConvNd(4, 6, 3, padding=1, groups=groups, ndim=ndim, basis=basis, dtype=torch.float64).eval()
    randomise(layer)
    x = torch.randn(2, 4, *SPATIAL[ndim], dtype=torch.float64)
    t = np.tanh(x.numpy())
    feats = [silu(x.numpy()), *naive_basis(layer.basis, t)]
    stacked = torch.from_numpy(np.stack(feats, axis=2))
    one = (1,) * ndim
    y = conv_loop(stacked, layer.weight.detach().double(), groups, one, one, one)
    torch.testing.assert_close(layer(x), F.silu(instance_norm(y)), rtol=1e-9, atol=1e-9)
