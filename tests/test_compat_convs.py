"""Reference (torch-conv-kan) checkpoints → kanconvs: a naive per-group re-implementation of the reference math,
written here from the reference's description, run on reference-layout weights, must match our layers after loading
the same state_dict."""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kanconvs
from kanconvs import compat

G, C_IN, C_OUT, K = 2, 4, 6, 3
CI, CO = C_IN // G, C_OUT // G
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
SPATIAL = {1: (9,), 2: (7, 6), 3: (5, 4, 4)}


def kshape(ndim: int) -> tuple[int, ...]:
    return (K,) * ndim


def instance_norm(y: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(2, y.dim()))
    return (y - y.mean(dims, keepdim=True)) / torch.sqrt(y.var(dims, unbiased=False, keepdim=True) + 1e-5)


def gram(t: torch.Tensor, degree: int, w: torch.Tensor) -> list[torch.Tensor]:
    p = [torch.ones_like(t), t]
    for m in range(2, degree + 1):
        n = m - 1
        p.append(t * p[m - 1] - (m + n) * (m - n) * n**2 / (m**2 / (4.0 * n**2 - 1.0)) * w[n] * p[m - 2])
    return p[: degree + 1]


def legendre(u: torch.Tensor, degree: int) -> list[torch.Tensor]:
    p = [torch.ones_like(u), u]
    for n in range(1, degree):
        p.append(((2 * n + 1) * u * p[n] - n * p[n - 1]) / (n + 1))
    return p[: degree + 1]


def jacobi11(t: torch.Tensor, degree: int) -> list[torch.Tensor]:
    a = b = 1.0
    p = [torch.ones_like(t), ((a - b) + (a + b + 2) * t) / 2]
    for i in range(2, degree + 1):
        A = (2 * i + a + b) * (2 * i + a + b - 1) / (2 * i * (i + a + b))
        B = (2 * i + a + b - 1) * (a * a - b * b) / (2 * i * (i + a + b) * (2 * i + a + b - 2))
        C = (i + a - 1) * (i + b - 1) * (2 * i + a + b) / (i * (i + a + b) * (2 * i + a + b - 2))
        p.append((A * t + B) * p[i - 1] - C * p[i - 2])
    return p[: degree + 1]


def bspline(x: torch.Tensor, grid: int = 5, order: int = 3) -> torch.Tensor:
    h = 2.0 / grid
    t = torch.linspace(-1 - order * h, 1 + order * h, grid + 2 * order + 1, dtype=x.dtype)
    x = x.unsqueeze(-1)
    b = ((x >= t[:-1]) & (x < t[1:])).to(x.dtype)
    for p in range(1, order + 1):
        b = (x - t[: -(p + 1)]) / (t[p:-1] - t[: -(p + 1)]) * b[..., :-1] + (t[p + 1 :] - x) / (
            t[p + 1 :] - t[1:-p]
        ) * b[..., 1:]
    return b  # (..., n)


def channel_major(values: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    v = torch.stack(values, 2) if isinstance(values, list) else values.movedim(-1, 2)
    return v.flatten(1, 2)


def degree_major(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(values, 1)


def reference_state_dict(family: str, ndim: int) -> dict[str, torch.Tensor]:
    k, d = kshape(ndim), torch.float64
    r = lambda *s: torch.randn(*s, dtype=d) * 0.3  # noqa: E731
    sd: dict[str, torch.Tensor] = {}
    if family != "kacn" and family != "wavkan":
        for i in range(G):
            sd[f"base_conv.{i}.weight"] = r(CO, CI, *k)
    if family == "kan":
        for i in range(G):
            sd[f"spline_conv.{i}.weight"] = r(CO, CI * 8, *k)
            sd[f"prelus.{i}.weight"] = torch.rand(1, dtype=d)
    elif family == "fastkan":
        for i in range(G):
            sd[f"spline_conv.{i}.weight"] = r(CO, CI * 8, *k)
        sd["rbf.grid"] = torch.linspace(-2, 2, 8, dtype=d)
    elif family in ("kaln", "kagn", "kajn", "kabn"):
        sd["poly_weights"] = r(G, CO, CI * 4, *k)
        if family == "kagn":
            sd["beta_weights"] = r(4)
    elif family == "kacn":
        sd["arange"] = torch.arange(4).view(1, 1, 4, *([1] * ndim))
        for i in range(G):
            sd[f"poly_conv.{i}.weight"] = r(CO, CI * 4, *k)
    elif family == "relukan":
        low = (torch.arange(8, dtype=d) - 3) / 5 + 0.05 * torch.randn(CI, 8, dtype=d)
        sd["phase_low"] = low.view(1, CI, 8, *([1] * ndim))
        sd["phase_high"] = (low + 0.8).view(1, CI, 8, *([1] * ndim))
        for i in range(G):
            sd[f"relukan_conv.{i}.weight"] = r(CO, CI * 8, *k)
    # affine InstanceNorm per group (FastKAN: over the group's inputs)
    width = CI if family == "fastkan" else CO
    for i in range(G):
        sd[f"layer_norm.{i}.weight"] = 1 + r(width)
        sd[f"layer_norm.{i}.bias"] = r(width)
    return sd


def reference_forward(family: str, sd: dict[str, torch.Tensor], x: torch.Tensor, ndim: int) -> torch.Tensor:
    """The reference's per-group computation (with its bugs fixed where the issue asks: Bernstein basis)."""
    conv = lambda z, w: CONV[ndim](z, w, padding=1)  # noqa: E731
    outs = []
    for i, xi in enumerate(torch.split(x, CI, 1)):

        def norm(y: torch.Tensor, i: int = i) -> torch.Tensor:
            shape = (1, -1) + (1,) * ndim
            return instance_norm(y) * sd[f"layer_norm.{i}.weight"].view(shape) + sd[f"layer_norm.{i}.bias"].view(shape)

        base = lambda z, i=i: conv(z, sd[f"base_conv.{i}.weight"])  # noqa: E731
        if family == "kan":
            y = base(F.gelu(xi)) + conv(channel_major(bspline(xi)), sd[f"spline_conv.{i}.weight"])
            y = F.prelu(norm(y), sd[f"prelus.{i}.weight"])
        elif family == "fastkan":
            z = norm(xi)
            phi = torch.exp(-(((z.unsqueeze(-1) - sd["rbf.grid"]) / (4 / 7)) ** 2))
            y = base(F.silu(xi)) + conv(channel_major(phi), sd[f"spline_conv.{i}.weight"])
        elif family == "kaln":
            u = 2 * (xi - xi.min()) / (xi.max() - xi.min()) - 1
            y = F.silu(norm(base(xi) + conv(degree_major(legendre(u, 3)), sd["poly_weights"][i])))
        elif family == "kagn":
            basis = degree_major(gram(torch.tanh(xi), 3, sd["beta_weights"]))
            y = F.silu(norm(base(F.silu(xi)) + conv(F.silu(basis), sd["poly_weights"][i])))
        elif family == "kajn":
            y = F.silu(norm(base(xi) + conv(degree_major(jacobi11(torch.tanh(xi), 3)), sd["poly_weights"][i])))
        elif family == "kabn":
            t = torch.sigmoid(xi)
            bern = [math.comb(3, j) * t**j * (1 - t) ** (3 - j) for j in range(4)]
            y = F.silu(norm(base(xi) + conv(channel_major(bern), sd["poly_weights"][i])))
        elif family == "kacn":
            cheb = [torch.cos(n * torch.acos(torch.tanh(xi))) for n in range(4)]
            y = norm(conv(channel_major(cheb), sd[f"poly_conv.{i}.weight"]))
        elif family == "relukan":
            lo = sd["phase_low"].view(1, CI, 8, *([1] * ndim))
            hi = sd["phase_high"].view(1, CI, 8, *([1] * ndim))
            xe = xi.unsqueeze(2)
            bumps = (6.25 * torch.relu(xe - lo) * torch.relu(hi - xe)) ** 2
            y = F.silu(norm(base(F.silu(xi)) + conv(bumps.flatten(1, 2), sd[f"relukan_conv.{i}.weight"])))
        outs.append(y)
    return torch.cat(outs, 1)


REFERENCE_CLASSES = {
    "kan": "KANConv{d}DLayer",
    "fastkan": "FastKANConv{d}DLayer",
    "kaln": "KALNConv{d}DLayer",
    "kacn": "KACNConv{d}DLayer",
    "kagn": "KAGNConv{d}DLayer",
    "kajn": "KAJNConv{d}DLayer",
    "kabn": "KABNConv{d}DLayer",
    "relukan": "ReLUKANConv{d}DLayer",
}


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", sorted(REFERENCE_CLASSES))
def test_reference_checkpoint_loads_and_matches(family: str, ndim: int) -> None:
    sd = reference_state_dict(family, ndim)
    x = torch.randn(1 if family == "kaln" else 2, C_IN, *SPATIAL[ndim], dtype=torch.float64)
    expected = reference_forward(family, sd, x, ndim)

    cls = getattr(compat, REFERENCE_CLASSES[family].format(d=ndim))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # exact float64 knots/grids, as in the naive formulas above
    try:
        layer = cls(C_IN, C_OUT, K, groups=G, padding=1, affine=True).eval()
    finally:
        torch.set_default_dtype(default)
    layer.load_state_dict(dict(sd))  # strict: every reference key is consumed, every key of ours provided
    torch.testing.assert_close(layer(x), expected, rtol=1e-9, atol=1e-9)

    # Inside a network of the user's, under a prefix, the layer converts its part of the checkpoint as it loads.
    net = nn.Sequential(nn.Identity(), copy.deepcopy(layer)).eval()
    for p in net.parameters():
        nn.init.zeros_(p)
    net.load_state_dict({f"1.{k}": v for k, v in sd.items()})
    torch.testing.assert_close(net(x), expected, rtol=1e-9, atol=1e-9)

    # The clean torch-style class loads the same checkpoint through the same conversion.
    clean = kanconvs.create_conv(
        family, C_IN, C_OUT, K, ndim=ndim, groups=G, padding=1, norm_kwargs={"affine": True}, dtype=torch.float64
    ).eval()
    clean.load_state_dict(compat.convert_reference_state_dict(sd, clean))
    torch.testing.assert_close(clean(x), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("version", ["base", "fast", "fast_plus_one"])
def test_wavkan_reference_versions_load(version: str) -> None:
    d = torch.float64
    sd: dict[str, torch.Tensor] = {}
    for i in range(G):
        sd[f"base_conv.{i}.weight"] = torch.randn(CO, CI, K, K, dtype=d)
        sd[f"wavelet_conv.{i}.scale"] = 1 + 0.2 * torch.rand(1, CO, CI, 1, 1, dtype=d)
        sd[f"wavelet_conv.{i}.translation"] = 0.2 * torch.randn(1, CO, CI, 1, 1, dtype=d)
        fast = torch.randn(CO, CI, K, K, dtype=d)
        if version == "fast":
            sd[f"wavelet_conv.{i}.wavelet_weights.weight"] = fast
        elif version == "fast_plus_one":
            sd[f"wavelet_conv.{i}.wavelet_weights.weight"] = fast.unsqueeze(1)
        else:
            for o in range(CO):
                sd[f"wavelet_conv.{i}.wavelet_weights.{o}.weight"] = fast[o : o + 1]
        sd[f"wavelet_conv.{i}.wavelet_out.weight"] = torch.randn(CO, CO, 1, 1, dtype=d)
        sd[f"layer_norm.{i}.weight"] = 1 + 0.1 * torch.randn(CO, dtype=d)
        sd[f"layer_norm.{i}.bias"] = 0.1 * torch.randn(CO, dtype=d)
        sd[f"layer_norm.{i}.running_mean"] = 0.1 * torch.randn(CO, dtype=d)
        sd[f"layer_norm.{i}.running_var"] = 1 + 0.1 * torch.rand(CO, dtype=d)
        sd[f"layer_norm.{i}.num_batches_tracked"] = torch.tensor(7)
    x = torch.randn(2, C_IN, 6, 5, dtype=d)

    # Reference math, per group: u = (x - t)/s over (c_out, c_in) pairs, mexican hat, per-output conv, 1x1 out, BN.
    outs = []
    for i, xi in enumerate(torch.split(x, CI, 1)):
        s, t = sd[f"wavelet_conv.{i}.scale"], sd[f"wavelet_conv.{i}.translation"]
        u = (xi.unsqueeze(1) - t) / s  # (B, c_out, c_in, H, W)
        psi = 2 / (math.sqrt(3) * math.pi**0.25) * (u**2 - 1) * torch.exp(-(u**2) / 2)
        w = sd[f"wavelet_conv.{i}.wavelet_weights.weight"] if version != "base" else None
        w = w.squeeze(1) if w is not None and w.dim() == 5 else w
        if w is None:
            w = torch.cat([sd[f"wavelet_conv.{i}.wavelet_weights.{o}.weight"] for o in range(CO)])
        z = torch.cat([F.conv2d(psi[:, o], w[o : o + 1], padding=1) for o in range(CO)], 1)
        z = F.conv2d(z, sd[f"wavelet_conv.{i}.wavelet_out.weight"])
        y = z + F.conv2d(F.silu(xi), sd[f"base_conv.{i}.weight"], padding=1)
        bn = lambda n, i=i: sd[f"layer_norm.{i}.{n}"].view(1, -1, 1, 1)  # noqa: E731
        outs.append((y - bn("running_mean")) / torch.sqrt(bn("running_var") + 1e-5) * bn("weight") + bn("bias"))
    expected = torch.cat(outs, 1)

    layer = compat.WavKANConv2DLayer(C_IN, C_OUT, K, groups=G, padding=1, wav_version=version).double().eval()
    layer.load_state_dict(sd)
    torch.testing.assert_close(layer(x), expected, rtol=1e-9, atol=1e-9)
    assert int(layer.norm.num_batches_tracked) == 7


REFERENCE_SIGNATURES = {
    "KAGNConv2DLayer": "(input_dim, output_dim, kernel_size, degree=3, groups=1, padding=0, stride=1, dilation=1, "
    "dropout=0.0, norm_layer=<class 'torch.nn.modules.instancenorm.InstanceNorm2d'>, **norm_kwargs)",
    "KANConv3DLayer": "(input_dim, output_dim, kernel_size, spline_order=3, groups=1, padding=0, stride=1, dilation=1, "
    "grid_size=5, base_activation=<class 'torch.nn.modules.activation.GELU'>, grid_range=[-1, 1], dropout=0.0, "
    "norm_layer=<class 'torch.nn.modules.instancenorm.InstanceNorm3d'>, **norm_kwargs)",
    "ReLUKANConv1DLayer": "(input_dim, output_dim, kernel_size, g=5, k=3, train_ab=True, groups=1, padding=0, "
    "stride=1, dilation=1, dropout=0.0, norm_layer=<class 'torch.nn.modules.instancenorm.InstanceNorm1d'>, "
    "**norm_kwargs)",
    "WavKANConv2DLayer": "(input_dim, output_dim, kernel_size, groups=1, padding=0, stride=1, dilation=1, dropout=0.0, "
    "wavelet_type='mexican_hat', norm_layer=<class 'torch.nn.modules.batchnorm.BatchNorm2d'>, wav_version='fast', "
    "**norm_kwargs)",
}


@pytest.mark.parametrize("name", sorted(REFERENCE_SIGNATURES))
def test_reference_signatures(name: str) -> None:
    assert str(inspect.signature(getattr(compat, name))) == REFERENCE_SIGNATURES[name]


def test_all_reference_conv_names_exist() -> None:
    families = ["KAN", "FastKAN", "KALN", "KACN", "KAGN", "KAJN", "KABN", "WavKAN", "ReLUKAN"]
    for fam in families:
        for d in (1, 2, 3):
            assert isinstance(getattr(compat, f"{fam}Conv{d}DLayer")(4, 4, 3), nn.Module)


def test_nd_layer_positional_reference_call() -> None:
    layer = compat.KAGNConvNDLayer(nn.Conv2d, nn.InstanceNorm2d, F.conv2d, 4, 6, 3, 3, 2, 1, ndim=2)
    assert layer.degree == 3 and layer.groups == 2 and layer.inputdim == 4 and layer.outdim == 6
    assert layer(torch.randn(1, 4, 5, 5)).shape == (1, 6, 5, 5)
    with pytest.raises(ValueError, match="conv_class"):
        compat.KAGNConvNDLayer(nn.Conv3d, nn.InstanceNorm2d, F.conv2d, 4, 6, 3, 3, ndim=2)


def test_alias_equals_clean_layer() -> None:
    ref = compat.KAGNConv2DLayer(4, 6, 3, degree=2, groups=2, padding=1)
    ours = kanconvs.KAGNConv2d(4, 6, 3, padding=1, groups=2, degree=2)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(ours(x), ref(x))
    assert isinstance(ref, kanconvs.KAGNConvNd)


def test_reference_moe_checkpoints_are_refused_clearly() -> None:
    from kanconvs.layers.moe import MoEBottleneckKAConv2d

    layer = MoEBottleneckKAConv2d(16, 16, 3, padding=1, num_experts=2, k=1, norm_layer="batch")
    reference_like = {"inner_proj.0.weight": torch.zeros(1), "base_conv.0.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match="mixture-of-experts checkpoints cannot be converted"):
        compat.convert_reference_state_dict(reference_like, layer)
