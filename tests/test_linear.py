"""KA linear layers, the KAN MLP and the ``kans`` compat names, against independent formulas written here.

Two independent descriptions are checked: our clean layers (fused ``(out, in, F)`` weight) against per-feature
loops, and the compat classes loaded with hand-built *reference-layout* state_dicts against the reference's math
written with its own parameter names and layouts.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from kanconvs.compat import kans
from kanconvs.layers import (
    KAJNConv2d,
    KALinear,
    KANLinear,
    WavKANLinear,
    create_linear,
    get_linear_family,
    list_linear_families,
)
from kanconvs.models import KANMLP, create_kan_mlp
from naive import (
    WAVELETS,
    bernstein_values,
    bspline_values,
    chebyshev_values,
    gram_values,
    hermite_values,
    jacobi_values,
    legendre_values,
    rbf_values,
)

FAMILIES = list_linear_families()
IN, OUT = 4, 6
# Non-default options, so the tests also see that family keywords reach the basis.
CASES: dict[str, dict] = {
    "kan": {"grid_size": 4, "spline_order": 2, "grid_range": (-1.5, 1.0)},
    "fastkan": {"grid_size": 5, "grid_range": (-1.0, 2.0)},
    "kaln": {"degree": 3},
    "kacn": {"degree": 4},
    "kagn": {"degree": 3},
    "kajn": {"degree": 3, "alpha": 0.5, "beta": 1.5},
    "kabn": {"degree": 3},
    "kahn": {"degree": 3},
    "relukan": {"grid_size": 3, "order": 2},
    "wavkan": {"wavelet_type": "mexican_hat"},
    "bottleneck_kagn": {"degree": 3, "dim_reduction": 2, "min_internal": 2},
}


# ------------------------------------------------------------------------------------------- scalar helpers
def silu(v: np.ndarray) -> np.ndarray:
    return v / (1 + np.exp(-v))


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def gelu(v: np.ndarray) -> np.ndarray:
    return 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))


def layer_norm(y: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = y.mean(-1, keepdims=True)
    var = y.var(-1, keepdims=True)
    return (y - mean) / np.sqrt(var + eps) * w + b


def prelu(y: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return np.where(y >= 0, y, slope * y)


def minmax_rows(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for n in range(x.shape[0]):
        out[n] = 2 * (x[n] - x[n].min()) / max(x[n].max() - x[n].min(), 1e-6) - 1
    return out


def feature_sum(feats: list[np.ndarray], w: np.ndarray) -> np.ndarray:
    """y[n, o] = Σ_i Σ_f w[o, i, f] · feats[f][n, i], written as explicit loops."""
    n_out, n_in, n_feat = w.shape
    y = np.zeros((feats[0].shape[0], n_out))
    for o in range(n_out):
        for i in range(n_in):
            for f in range(n_feat):
                y[:, o] += w[o, i, f] * feats[f][:, i]
    return y


def np_(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


# --------------------------------------------------------------------------------- naive clean-layer formulas
def naive_clean(layer: nn.Module, family: str, cfg: dict, x: np.ndarray) -> np.ndarray:
    if family == "wavkan":
        return naive_wavkan_clean(layer, cfg["wavelet_type"], x)
    if family == "bottleneck_kagn":
        z = np.tanh(x @ np_(layer.inner_proj.weight).T + np_(layer.inner_proj.bias))
        inner = feature_sum(gram_values(z, cfg["degree"], np_(layer.inner.basis.beta_weights)), np_(layer.inner.weight))
        y = inner @ np_(layer.outer_proj.weight).T + np_(layer.outer_proj.bias) + silu(x) @ np_(layer.base_weight).T
        return silu(layer_norm(y, np_(layer.norm.weight), np_(layer.norm.bias)))
    base: np.ndarray | None = silu(x)
    if family == "kan":
        base = gelu(x)
        basis = bspline_values(x, cfg["grid_size"], cfg["spline_order"], *cfg["grid_range"])
    elif family == "fastkan":
        xn = layer_norm(x, np_(layer.input_norm.weight), np_(layer.input_norm.bias))
        basis = rbf_values(xn, cfg["grid_size"], *cfg["grid_range"])
    elif family == "kaln":
        basis = legendre_values(minmax_rows(x), cfg["degree"])
    elif family == "kacn":
        base, basis = None, chebyshev_values(np.tanh(x), cfg["degree"])
    elif family == "kagn":
        basis = gram_values(np.tanh(x), cfg["degree"], np_(layer.basis.beta_weights))
    elif family == "kajn":
        basis = jacobi_values(np.tanh(x), cfg["degree"], cfg["alpha"], cfg["beta"])
    elif family == "kabn":
        basis = bernstein_values(sigmoid(x), cfg["degree"])
    elif family == "kahn":
        basis = hermite_values(np.tanh(x), cfg["degree"])
    elif family == "relukan":
        g, k = cfg["grid_size"], cfg["order"]
        r = 4 * g * g / (k + 1) ** 2
        lo, hi = np_(layer.basis.phase_low), np_(layer.basis.phase_high)  # (in, g + k), one row per input
        base = None
        basis = [(r * np.maximum(x - lo[:, j], 0) * np.maximum(hi[:, j] - x, 0)) ** 2 for j in range(g + k)]
    else:
        raise AssertionError(family)
    y = feature_sum(([] if base is None else [base]) + list(basis), np_(layer.weight))
    if layer.bias is not None:
        y = y + np_(layer.bias)
    if family in ("fastkan", "kacn", "relukan"):
        return y
    y = layer_norm(y, np_(layer.norm.weight), np_(layer.norm.bias))
    return prelu(y, np_(layer.act.weight)) if family == "kan" else silu(y)


def naive_wavkan_clean(layer: nn.Module, wavelet: str, x: np.ndarray) -> np.ndarray:
    psi_fn = WAVELETS[wavelet]
    s, t = np_(layer.scale), np_(layer.translation)
    w, v = np_(layer.wavelet_weight), np_(layer.base_weight)
    window = np.hamming(x.shape[1]) if wavelet == "shannon" else np.ones(x.shape[1])
    y = np.zeros((x.shape[0], w.shape[0]))
    for o in range(w.shape[0]):
        for i in range(w.shape[1]):
            y[:, o] += w[o, i] * psi_fn((x[:, i] - t[o, i]) / s[o, i]) * window[i] + v[o, i] * silu(x[:, i])
    bn = layer.norm  # eval mode: running statistics
    return (y - np_(bn.running_mean)) / np.sqrt(np_(bn.running_var) + bn.eps) * np_(bn.weight) + np_(bn.bias)


def randomise(module: nn.Module) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("scale") or "norm" in name:
                p.uniform_(0.5, 1.5)
            elif "phase" in name:
                p.add_(0.1 * torch.randn_like(p))
            elif name.startswith("act"):
                p.uniform_(0.1, 0.4)
            else:
                p.normal_(0, 0.5)
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0, 0.3)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 2.0)


def build(family: str, in_features: int = IN, out_features: int = OUT) -> nn.Module:
    layer = create_linear(family, in_features, out_features, dtype=torch.float64, **CASES[family]).eval()
    randomise(layer)
    return layer


# ------------------------------------------------------------------------------------------ values, gradients
@pytest.mark.parametrize("family", FAMILIES)
def test_matches_naive_formula(family: str) -> None:
    layer = build(family)
    x = torch.randn(5, IN, dtype=torch.float64) * (0.8 if family == "kan" else 1.0)
    expected = torch.from_numpy(naive_clean(layer, family, CASES[family], x.numpy()))
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-9, atol=1e-9)
        # Leading dimensions are flattened, as nn.Linear does.
        x3 = torch.randn(2, 3, IN, dtype=torch.float64)
        torch.testing.assert_close(layer(x3), layer(x3.reshape(6, IN)).reshape(2, 3, OUT), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wavelet", sorted(WAVELETS))
def test_wavelets_match_naive(wavelet: str) -> None:
    layer = WavKANLinear(IN, OUT, wavelet_type=wavelet, dtype=torch.float64).eval()
    randomise(layer)
    x = torch.randn(5, IN, dtype=torch.float64)
    expected = torch.from_numpy(naive_wavkan_clean(layer, wavelet, x.numpy()))
    torch.testing.assert_close(layer(x), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_gradcheck_inputs_and_parameters(family: str) -> None:
    layer = build(family, 3, 2)
    names = [n for n, p in layer.named_parameters() if p.requires_grad]
    params = [layer.get_parameter(n).detach().clone().requires_grad_() for n in names]
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)

    def fn(inp: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return functional_call(layer, dict(zip(names, ps, strict=True)), (inp,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_finite_under_autocast_extremes_and_empty(family: str) -> None:
    layer = create_linear(family, IN, OUT, **CASES[family]).eval()
    x = torch.randn(6, IN)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.shape == (6, OUT) and torch.isfinite(y).all()
    for inp in (torch.full((3, IN), 1e4), torch.full((3, IN), -1e4), x * 1e4, torch.full((3, IN), 0.7)):
        out = layer(inp)
        assert torch.isfinite(out).all(), inp[0]
    empty = layer(torch.empty(0, IN))
    assert empty.shape == (0, OUT)
    # Gradients stay finite at the extremes too (saturated squashes, splines outside their grid).
    inp = (x * 1e4).requires_grad_()
    layer.train()(inp).sum().backward()
    assert inp.grad is not None and torch.isfinite(inp.grad).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_state_dict_round_trip(family: str) -> None:
    a, b = build(family), build(family)
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, IN, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


# ----------------------------------------------------------------------------------------- parameter counts
def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def bottleneck_count(i: int, o: int, d: int = 3, r: float = 8, mi: int = 16) -> int:
    m = int(max(i / r, o / r))
    m = m if m >= mi else min(mi, i, o)
    return (d + 1) + m * m * (d + 1) + o * i + (m * i + m) + (o * m + o) + 2 * o


def test_reference_parameter_counts() -> None:
    # The numbers printed by the reference's kans layers for in=4, out=6, D=3 (§6 of the reference spec).
    assert trainable(kans.KANLayer(4, 6)) == 229
    assert trainable(kans.KALNLayer(4, 6, 3)) == 132
    assert trainable(kans.ChebyKANLayer(4, 6, 3)) == 96
    assert trainable(kans.GRAMLayer(4, 6, 3)) == 136
    assert trainable(kans.FastKANLayer(4, 6)) == 230
    assert trainable(kans.WavKANLayer(4, 6)) == 108
    assert trainable(kans.JacobiKANLayer(4, 6, 3)) == 132
    assert trainable(kans.BernsteinKANLayer(4, 6, 3)) == 132
    assert trainable(kans.ReLUKANLayer(4, 5, 3, 6)) == 262
    assert trainable(kans.BottleNeckGRAMLayer(4, 6)) == bottleneck_count(4, 6) == 154
    for (i, o), m in {(4, 6): 4, (64, 40): 16, (256, 40): 32}.items():
        layer = kans.BottleNeckGRAMLayer(i, o)
        assert layer.inner_dim == m
        assert trainable(layer) == bottleneck_count(i, o)


@pytest.mark.parametrize(("i", "o", "d", "g", "k"), [(7, 5, 4, 6, 2), (1, 3, 0, 1, 1), (12, 9, 5, 3, 3)])
def test_parameter_count_formulas(i: int, o: int, d: int, g: int, k: int) -> None:
    # Reference formulas (from the reference's parameter shapes); the clean families count the same.
    expected = {
        "kan": (kans.KANLayer(i, o, g, k), o * i * (g + k + 1) + 2 * o + 1),
        "kaln": (kans.KALNLayer(i, o, d), o * i * (d + 2) + 2 * o),
        "kacn": (kans.ChebyKANLayer(i, o, d), i * o * (d + 1)),
        "kagn": (kans.GRAMLayer(i, o, d), (d + 1) + i * o * (d + 1) + o * i + 2 * o),
        "fastkan": (kans.FastKANLayer(i, o, num_grids=g), 2 * i + o * i * g + o * i + o),
        "wavkan": (kans.WavKANLayer(i, o), 4 * o * i + 2 * o),
        "kajn": (kans.JacobiKANLayer(i, o, d), o * i + i * o * (d + 1) + 2 * o),
        "kabn": (kans.BernsteinKANLayer(i, o, d), o * i + i * o * (d + 1) + 2 * o),
        "relukan": (kans.ReLUKANLayer(i, g, k, o), 2 * i * (g + k) + o * (g + k) * i + o),
        "bottleneck_kagn": (kans.BottleNeckGRAMLayer(i, o, d), bottleneck_count(i, o, d)),
    }
    clean_kwargs = {
        "kan": {"grid_size": g, "spline_order": k},
        "fastkan": {"grid_size": g},
        "relukan": {"grid_size": g, "order": k},
        "wavkan": {},
    }
    for family, (layer, count) in expected.items():
        assert trainable(layer) == count, family
        kwargs = clean_kwargs.get(family, {"degree": d})
        assert trainable(create_linear(family, i, o, **kwargs)) == count, family


def test_mlp_parameter_counts() -> None:
    assert trainable(kans.KAGN([4, 6, 3])) == 136 + (4 + 6 * 3 * 4 + 3 * 6 + 2 * 3) == 236
    assert trainable(kans.KAN([4, 6, 3], dropout=0.1, l1_decay=0.01)) == 229 + (3 * 6 * 9 + 2 * 3 + 1)
    assert trainable(kans.ReLUKAN([4, 6, 3])) == (2 * 4 * 2 + 6 * 2 * 4 + 6) + (2 * 6 * 2 + 3 * 2 * 6 + 3)
    widths = [5, 8, 3]
    for family in FAMILIES:
        layers = [create_linear(family, i, o) for i, o in itertools.pairwise(widths)]
        assert trainable(KANMLP(widths, family, dropout=0.2)) == sum(trainable(m) for m in layers), family


# ----------------------------------------------------------------------------------------------- the MLP
@pytest.mark.parametrize(
    ("dropout", "first", "kan_at", "length"),
    [(0.0, True, [0, 1, 2], 3), (0.1, True, [1, 3, 5], 6), (0.1, False, [0, 2, 4], 5)],
)
def test_mlp_layout_matches_reference_indices(dropout: float, first: bool, kan_at: list[int], length: int) -> None:
    model = KANMLP([4, 5, 6, 3], "kacn", dropout=dropout, first_dropout=first)
    assert len(model.layers) == length
    assert [i for i, m in enumerate(model.layers) if not isinstance(m, nn.Dropout)] == kan_at
    assert [type(m).__name__ for m in model.kan_layers()] == ["KACNLinear"] * 3


def test_mlp_forward_is_the_layer_chain() -> None:
    model = create_kan_mlp("kagn", [4, 7, 3], degree=2).eval()
    x = torch.randn(5, 4)
    first, last = model.kan_layers()
    torch.testing.assert_close(model(x), last(first(x)))
    assert first.basis.degree == 2


def test_mlp_regularization_loss_is_explicit_l1() -> None:
    model = KANMLP([4, 6, 5, 3], "kagn", l1_decay=0.1)
    layers = model.kan_layers()
    expected = 0.1 * sum(p.abs().sum() for m in layers[:2] for p in m.parameters())
    torch.testing.assert_close(model.regularization_loss(), expected)
    model.regularization_loss().backward()
    w = layers[0].weight
    assert w.grad is not None
    torch.testing.assert_close(w.grad, 0.1 * torch.sign(w.detach()))
    assert layers[2].weight.grad is None  # the last layer is not penalised, as in the reference
    assert KANMLP([4, 3], "kagn").regularization_loss().item() == 0.0


def test_mlp_plain_head() -> None:
    torch.manual_seed(1)
    x = torch.randn(256, 4) * 3
    bounded = KANMLP([4, 8, 3], "kagn").eval()
    assert bounded(x).min() >= -0.2785  # SiLU outputs: the reference's normalised, activated logits
    plain = KANMLP([4, 8, 3], "kagn", plain_head=True).eval()
    head = plain.kan_layers()[-1]
    assert isinstance(head.norm, nn.Identity) and isinstance(head.act, nn.Identity)
    assert not isinstance(plain.kan_layers()[0].norm, nn.Identity)
    assert plain(x).min() < -0.2785
    # FastKAN keeps its input norm; WavKAN drops its BatchNorm.
    assert not isinstance(KANMLP([4, 3], "fastkan", plain_head=True).kan_layers()[0].input_norm, nn.Identity)
    assert isinstance(KANMLP([4, 3], "wavkan", plain_head=True).kan_layers()[0].norm, nn.Identity)


# ------------------------------------------------------------------------------------------------ error paths
@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "4"])
def test_bad_sizes_raise(bad: object) -> None:
    for family in FAMILIES:
        with pytest.raises(ValueError, match="in_features must be a positive integer"):
            create_linear(family, bad, 3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="out_features must be a positive integer"):
            create_linear(family, 3, bad)  # type: ignore[arg-type]


def test_error_messages() -> None:
    with pytest.raises(ValueError, match=r"unknown linear family 'nope'; expected one of \['kan'"):
        create_linear("nope", 4, 6)
    with pytest.raises(ValueError, match="unknown linear family 'nope'"):
        KANMLP([4, 3], "nope")
    with pytest.raises(ValueError, match="unknown basis 'nope'"):
        KALinear(4, 6, basis="nope")
    with pytest.raises(TypeError, match="invalid basis_kwargs for basis 'gram'"):
        KALinear(4, 6, basis="gram", basis_kwargs={"grid_size": 3})
    with pytest.raises(ValueError, match="unknown norm_layer 'instance' for a linear layer"):
        KALinear(4, 6, norm_layer="instance")
    with pytest.raises(ValueError, match="basis_init must be one of"):
        KALinear(4, 6, basis_init="zeros")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown wavelet_type 'nope'"):
        WavKANLinear(4, 6, wavelet_type="nope")
    with pytest.raises(ValueError, match=r"last dimension is in_features=4, got shape \(5, 3\)"):
        KANLinear(4, 6)(torch.randn(5, 3))
    for family in FAMILIES:
        with pytest.raises(TypeError, match=r"unexpected keyword argument.*'colour'"):
            create_linear(family, 4, 6, colour="red")
    # The family class is named, with its declared options.
    with pytest.raises(TypeError, match=r"KAGNLinear\(\) got an unexpected keyword argument 'colour'; it accepts its "
                       r"options \['basis_activation', 'degree'\]"):  # fmt: skip
        create_linear("kagn", 4, 6, colour="red")
    with pytest.raises(TypeError, match=r"KAJNConv2d\(\) got an unexpected keyword argument 'colour'.*'alpha', 'beta'"):
        KAJNConv2d(4, 6, 3, colour="red")
    with pytest.raises(ValueError, match="layers_hidden must hold at least two positive integers"):
        KANMLP([4])
    with pytest.raises(ValueError, match="dropout must be a float in"):
        KANMLP([4, 3], dropout=1.0)
    with pytest.raises(ValueError, match="l1_decay must be a float >= 0"):
        KANMLP([4, 3], l1_decay=-1.0)
    with pytest.raises(ValueError, match="plain_head needs a registered family name"):
        KANMLP([4, 3], lambda i, o: nn.Linear(i, o), plain_head=True)
    with pytest.raises(TypeError, match=r"KAGN\(\) got unexpected keyword arguments \['colour'\]"):
        kans.KAGN([4, 3], colour="red")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        kans.mlp_kagn([4, 3], colour="red")  # type: ignore[call-arg]


# ----------------------------------------------------------------------------------------- compat signatures
# The reference's signatures, written literally (torch-conv-kan kans/layers.py, kans/kan.py, kans/utils.py).
# fmt: off
REFERENCE_SIGNATURES = {
    "KANLayer": lambda input_features, output_features, grid_size=5, spline_order=3, base_activation=nn.GELU, grid_range=[-1, 1]: None,  # noqa: E501
    "KALNLayer": lambda input_features, output_features, degree=3, base_activation=nn.SiLU: None,
    "ChebyKANLayer": lambda input_dim, output_dim, degree: None,
    "GRAMLayer": lambda in_channels, out_channels, degree=3, act=nn.SiLU: None,
    "FastKANLayer": lambda input_dim, output_dim, grid_min=-2., grid_max=2., num_grids=8, use_base_update=True, base_activation=nn.SiLU, spline_weight_init_scale=0.1: None,  # noqa: E501
    "WavKANLayer": lambda in_features, out_features, wavelet_type='mexican_hat': None,
    "JacobiKANLayer": lambda input_dim, output_dim, degree, a=1.0, b=1.0, act=nn.SiLU: None,
    "BernsteinKANLayer": lambda input_dim, output_dim, degree, act=nn.SiLU: None,
    "ReLUKANLayer": lambda input_size, g, k, output_size, train_ab=True: None,
    "BottleNeckGRAMLayer": lambda in_channels, out_channels, degree=3, act=nn.SiLU, dim_reduction=8, min_internal=16: None,  # noqa: E501
    "RadialBasisFunction": lambda grid_min=-2., grid_max=2., num_grids=8, denominator=None: None,
    "KAN": lambda layers_hidden, dropout=0.0, grid_size=5, spline_order=3, base_activation=nn.GELU, grid_range=[-1, 1], l1_decay=0.0, first_dropout=True, **kwargs: None,  # noqa: E501
    "KALN": lambda layers_hidden, dropout=0.0, l1_decay=0.0, degree=3, base_activation=nn.SiLU, first_dropout=True, **kwargs: None,  # noqa: E501
    "KACN": lambda layers_hidden, dropout=0.0, l1_decay=0.0, degree=3, first_dropout=True, **kwargs: None,
    "KAGN": lambda layers_hidden, dropout=0.0, l1_decay=0.0, degree=3, base_activation=nn.SiLU, first_dropout=True, **kwargs: None,  # noqa: E501
    "FastKAN": lambda layers_hidden, dropout=0.0, l1_decay=0.0, grid_range=[-2, 2], grid_size=8, use_base_update=True, base_activation=nn.SiLU, spline_weight_init_scale=0.1, first_dropout=True, **kwargs: None,  # noqa: E501
    "WavKAN": lambda layers_hidden, dropout=0.0, l1_decay=0.0, first_dropout=True, wavelet_type='mexican_hat', **kwargs: None,  # noqa: E501
    "KAJN": lambda layers_hidden, dropout=0.0, l1_decay=0.0, degree=3, a=1, b=1, base_activation=nn.SiLU, first_dropout=True, **kwargs: None,  # noqa: E501
    "KABN": lambda layers_hidden, dropout=0.0, l1_decay=0.0, degree=3, base_activation=nn.SiLU, first_dropout=True, **kwargs: None,  # noqa: E501
    "ReLUKAN": lambda layers_hidden, dropout=0.0, l1_decay=0.0, g=1, k=1, train_ab=True, first_dropout=True, **kwargs: None,  # noqa: E501
    "BottleNeckKAGN": lambda layers_hidden, dropout=0.0, l1_decay=0.0, degree=3, base_activation=nn.SiLU, first_dropout=True, dim_reduction=8, min_internal=16, **kwargs: None,  # noqa: E501
    "mlp_kan": lambda layers_hidden, dropout=0.0, grid_size=5, spline_order=3, base_activation=nn.GELU, grid_range=[-1, 1], l1_decay=0.0: None,  # noqa: E501
    "mlp_fastkan": lambda layers_hidden, dropout=0.0, grid_size=5, base_activation=nn.GELU, grid_range=[-1, 1], l1_decay=0.0: None,  # noqa: E501
    "mlp_kaln": lambda layers_hidden, dropout=0.0, degree=3, base_activation=nn.GELU, l1_decay=0.0: None,
    "mlp_kabn": lambda layers_hidden, dropout=0.0, degree=3, base_activation=nn.GELU, l1_decay=0.0: None,
    "mlp_kacn": lambda layers_hidden, dropout=0.0, degree=3, l1_decay=0.0: None,
    "mlp_kajn": lambda layers_hidden, dropout=0.0, degree=3, l1_decay=0.0, a=1.0, b=1.0: None,
    "mlp_kagn": lambda layers_hidden, dropout=0.0, degree=3, base_activation=nn.GELU, l1_decay=0.0: None,
    "mlp_bottleneck_kagn": lambda layers_hidden, dropout=0.0, degree=3, base_activation=nn.GELU, l1_decay=0.0, dim_reduction=8, min_internal=16: None,  # noqa: E501
    "mlp_relukan": lambda layers_hidden, dropout=0.0, a=1, b=1, train_ab=True, l1_decay=0.0: None,
    "mlp_wav_kan": lambda layers_hidden, dropout=0.0, wavelet_type='mexican_hat', l1_decay=0.0: None,
}
# fmt: on


def shape_of(obj: object) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(REFERENCE_SIGNATURES))
def test_compat_signature_equals_reference(name: str) -> None:
    assert name in kans.__all__
    ours, reference = shape_of(getattr(kans, name)), shape_of(REFERENCE_SIGNATURES[name])
    assert ours == reference
    # Defaults compare equal; also check their types, so 1 vs 1.0 or a list vs a tuple would show.
    assert [type(d) for _, _, d in ours] == [type(d) for _, _, d in reference]


def test_compat_exports_and_extras() -> None:
    assert set(REFERENCE_SIGNATURES) <= set(kans.__all__)
    assert "time_benchmark" in inspect.signature(kans.FastKANLayer.forward).parameters
    rbf = kans.RadialBasisFunction(-1.0, 1.0, 5)
    x = torch.randn(3, 2)
    torch.testing.assert_close(rbf(x), torch.exp(-(((x[..., None] - torch.linspace(-1, 1, 5)) / 0.5) ** 2)))
    assert list(rbf.state_dict()) == ["grid"]


def test_compat_factories() -> None:
    relu = kans.mlp_relukan([4, 6, 3], a=5, b=3).kan_layers()[0]
    assert (relu.g, relu.k, relu.basis.grid_size, relu.basis.order) == (5, 3, 5, 3)  # the reference lost a and b
    fast = kans.mlp_fastkan([4, 3]).kan_layers()[0]
    assert fast.basis.grid_size == 5 and fast.basis.grid.tolist() == pytest.approx(np.linspace(-1, 1, 5).tolist())
    assert isinstance(fast.base_activation, nn.GELU)
    gram = kans.mlp_kagn([4, 3], dropout=0.2).kan_layers()[0]
    assert isinstance(gram.base_activation, nn.GELU) and isinstance(gram.act, nn.GELU)
    assert isinstance(gram.basis.activation, nn.GELU)
    assert isinstance(kans.mlp_kajn([4, 3]).kan_layers()[0].act, nn.SiLU)
    assert isinstance(kans.mlp_kaln([4, 3]).kan_layers()[0].act, nn.GELU)  # the reference's KALN: act == base act
    model = kans.mlp_bottleneck_kagn([64, 40, 3], dropout=0.1, dim_reduction=4)
    assert [m.inner_dim for m in model.kan_layers()] == [16, 3]
    assert isinstance(model.layers[0], nn.Dropout)  # the factories keep first_dropout=True


# -------------------------------------------------------------------- reference checkpoints → compat layers
def rnd(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64) * 0.5


def norm_sd(prefix: str, n: int) -> dict[str, torch.Tensor]:
    return {f"{prefix}.weight": 1 + rnd(n), f"{prefix}.bias": rnd(n)}


def reference_layer(name: str, i: int, o: int) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A float64 compat layer and a random state_dict with the reference's keys, shapes and layouts for it."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # built in float64, so the B-spline knots are exact too
    try:
        return _reference_layer(name, i, o)
    finally:
        torch.set_default_dtype(previous)


def _reference_layer(name: str, i: int, o: int) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    d = 3
    if name == "KANLayer":
        sd = {"base_weight": rnd(o, i), "spline_weight": rnd(o, i, 8), **norm_sd("layer_norm", o)}
        return kans.KANLayer(i, o), {**sd, "prelu.weight": torch.tensor([0.2], dtype=torch.float64)}
    if name == "KALNLayer":
        return kans.KALNLayer(i, o, d), {
            "base_weight": rnd(o, i),
            "poly_weight": rnd(o, i * 4),
            **norm_sd("layer_norm", o),
        }
    if name == "ChebyKANLayer":
        return kans.ChebyKANLayer(i, o, d), {"cheby_coeffs": rnd(i, o, 4), "arange": torch.arange(4)}
    if name == "GRAMLayer":
        sd = {"beta_weights": rnd(4), "grams_basis_weights": rnd(i, o, 4), "base_weights": rnd(o, i)}
        return kans.GRAMLayer(i, o, d), {**sd, **norm_sd("norm", o)}
    if name == "FastKANLayer":
        sd = {**norm_sd("layernorm", i), "rbf.grid": torch.linspace(-2, 2, 8, dtype=torch.float64)}
        sd.update({"spline_linear.weight": rnd(o, i * 8), "base_linear.weight": rnd(o, i), "base_linear.bias": rnd(o)})
        return kans.FastKANLayer(i, o), sd
    if name == "WavKANLayer":
        sd = {"scale": 0.5 + torch.rand(o, i, dtype=torch.float64), "translation": rnd(o, i)}
        sd.update({"weight1": rnd(o, i), "wavelet_weights": rnd(o, i), **norm_sd("bn", o)})
        sd.update({"bn.running_mean": rnd(o), "bn.running_var": 0.5 + torch.rand(o, dtype=torch.float64)})
        return kans.WavKANLayer(i, o), {**sd, "bn.num_batches_tracked": torch.tensor(7)}
    if name in ("JacobiKANLayer", "BernsteinKANLayer"):
        key = "jacobi_coeffs" if name == "JacobiKANLayer" else "bernstein_coeffs"
        layer = kans.JacobiKANLayer(i, o, d) if name == "JacobiKANLayer" else kans.BernsteinKANLayer(i, o, d)
        return layer, {"base_weights": rnd(o, i), key: rnd(i, o, 4), **norm_sd("norm", o)}
    if name == "ReLUKANLayer":
        g, k = 5, 3
        low = torch.arange(-k, g, dtype=torch.float64) / g
        sd = {  # stride-0 views, as the reference's parameters are
            "phase_low": (low + 0.05 * rnd(g + k))[None].expand(i, -1),
            "phase_high": (low + (k + 1) / g + 0.05 * rnd(g + k))[None].expand(i, -1),
        }
        return kans.ReLUKANLayer(i, g, k, o), {
            **sd,
            "equal_size_conv.weight": rnd(o, 1, g + k, i),
            "equal_size_conv.bias": rnd(o),
        }
    if name == "BottleNeckGRAMLayer":
        layer = kans.BottleNeckGRAMLayer(i, o, d, min_internal=3)
        m = layer.inner_dim
        sd = {"beta_weights": rnd(4), "grams_basis_weights": rnd(m, m, 4), "base_weights": rnd(o, i)}
        sd.update({"inner_proj.weight": rnd(m, i), "inner_proj.bias": rnd(m), "outer_proj.weight": rnd(o, m)})
        return layer, {**sd, "outer_proj.bias": rnd(o), **norm_sd("norm", o)}
    raise AssertionError(name)


def reference_forward(name: str, sd: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The reference's forward, with its own parameter names and layouts (bugs fixed where noted)."""
    n, d = x.shape[0], 3
    if name == "KANLayer":
        basis = np.stack(bspline_values(x, 5, 3, -1.0, 1.0), -1)  # (N, in, G + k) → in-major flatten
        y = (
            gelu(x) @ sd["base_weight"].T
            + basis.reshape(n, -1) @ sd["spline_weight"].reshape(len(sd["base_weight"]), -1).T
        )
        return prelu(layer_norm(y, sd["layer_norm.weight"], sd["layer_norm.bias"]), sd["prelu.weight"])
    if name == "KALNLayer":
        u = 2 * (x - x.min()) / (x.max() - x.min()) - 1  # the reference's batch-global min-max (equal for N = 1)
        basis = np.stack(legendre_values(u, d), -1)
        y = silu(x) @ sd["base_weight"].T + basis.reshape(n, -1) @ sd["poly_weight"].T
        return silu(layer_norm(y, sd["layer_norm.weight"], sd["layer_norm.bias"]))
    if name == "ChebyKANLayer":
        theta = np.arccos(np.tanh(x))[..., None] * np.arange(d + 1)
        return np.einsum("bid,iod->bo", np.cos(theta), sd["cheby_coeffs"])
    if name in ("GRAMLayer", "JacobiKANLayer", "BernsteinKANLayer"):
        if name == "GRAMLayer":
            basis, coeffs = gram_values(np.tanh(x), d, sd["beta_weights"]), sd["grams_basis_weights"]
        elif name == "JacobiKANLayer":
            basis, coeffs = jacobi_values(np.tanh(x), d, 1.0, 1.0), sd["jacobi_coeffs"]
        else:  # the reference's basis is identically 1; the Bernstein basis it meant to compute
            basis, coeffs = bernstein_values(sigmoid(x), d), sd["bernstein_coeffs"]
        y = np.einsum("bld,lod->bo", np.stack(basis, -1), coeffs) + silu(x) @ sd["base_weights"].T
        return silu(layer_norm(y, sd["norm.weight"], sd["norm.bias"]))
    if name == "FastKANLayer":
        grid = sd["rbf.grid"]
        xn = layer_norm(x, sd["layernorm.weight"], sd["layernorm.bias"])
        phi = np.exp(-(((xn[..., None] - grid) / ((grid[-1] - grid[0]) / (len(grid) - 1))) ** 2))
        y = phi.reshape(n, -1) @ sd["spline_linear.weight"].T
        return y + silu(x) @ sd["base_linear.weight"].T + sd["base_linear.bias"]
    if name == "WavKANLayer":
        u = (x[:, None, :] - sd["translation"]) / sd["scale"]
        y = (WAVELETS["mexican_hat"](u) * sd["wavelet_weights"]).sum(2) + silu(x) @ sd["weight1"].T
        y = (y - sd["bn.running_mean"]) / np.sqrt(sd["bn.running_var"] + 1e-5)
        return y * sd["bn.weight"] + sd["bn.bias"]
    if name == "ReLUKANLayer":
        g, k = 5, 3
        r = 4 * g * g / (k + 1) ** 2
        xe = x[..., None]
        feats = (r * np.maximum(xe - sd["phase_low"], 0) * np.maximum(sd["phase_high"] - xe, 0)) ** 2  # (N, in, g+k)
        w = sd["equal_size_conv.weight"]  # (out, 1, g + k, in), fed with the *reshaped* basis
        return np.einsum("nab,oab->no", feats.reshape(n, g + k, -1), w[:, 0]) + sd["equal_size_conv.bias"]
    if name == "BottleNeckGRAMLayer":
        z = np.tanh(x @ sd["inner_proj.weight"].T + sd["inner_proj.bias"])
        y = np.einsum("bld,lod->bo", np.stack(gram_values(z, d, sd["beta_weights"]), -1), sd["grams_basis_weights"])
        y = y @ sd["outer_proj.weight"].T + sd["outer_proj.bias"] + silu(x) @ sd["base_weights"].T
        return silu(layer_norm(y, sd["norm.weight"], sd["norm.bias"]))
    raise AssertionError(name)


@pytest.fixture(autouse=True)
def _restore_default_dtype() -> Iterator[None]:
    previous = torch.get_default_dtype()
    yield
    torch.set_default_dtype(previous)


COMPAT_LAYERS = [
    "KANLayer",
    "KALNLayer",
    "ChebyKANLayer",
    "GRAMLayer",
    "FastKANLayer",
    "WavKANLayer",
    "JacobiKANLayer",
    "BernsteinKANLayer",
    "ReLUKANLayer",
    "BottleNeckGRAMLayer",
]


@pytest.mark.parametrize("name", COMPAT_LAYERS)
def test_reference_checkpoint_loads_and_matches(name: str) -> None:
    layer, sd = reference_layer(name, IN, OUT)
    layer = layer.eval()
    layer.load_state_dict(sd)  # strict: every reference key is consumed, every key of ours is provided
    batch = 1 if name == "KALNLayer" else 5  # KALN: our per-sample min-max equals the reference's only for N = 1
    x = torch.randn(batch, IN, dtype=torch.float64) * (0.7 if name == "KANLayer" else 1.0)
    expected = reference_forward(name, {k: v.double().numpy() for k, v in sd.items()}, x.numpy())
    with torch.no_grad():
        torch.testing.assert_close(layer(x), torch.from_numpy(expected), rtol=1e-9, atol=1e-9)
    # The pure converter gives the same result, and our own state_dict loads back unchanged.
    converted = kans.convert_kans_state_dict(sd, layer)
    fresh, _ = reference_layer(name, IN, OUT)
    fresh = fresh.eval()
    fresh.load_state_dict(converted)
    fresh.load_state_dict(layer.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), layer(x), rtol=0, atol=0)


def test_reference_kaln_batch_uses_per_sample_minmax() -> None:
    layer, sd = reference_layer("KALNLayer", IN, OUT)
    layer.load_state_dict(sd)
    x = torch.randn(4, IN, dtype=torch.float64)
    np_sd = {k: v.numpy() for k, v in sd.items()}
    rows = [reference_forward("KALNLayer", np_sd, x[n : n + 1].numpy()) for n in range(4)]
    torch.testing.assert_close(layer(x), torch.from_numpy(np.concatenate(rows)), rtol=1e-9, atol=1e-9)
    assert torch.isfinite(layer(torch.ones(3, IN, dtype=torch.float64))).all()  # the reference gives NaN here


@pytest.mark.parametrize(
    ("mlp", "dropout", "l1", "first", "index"),
    [
        (kans.KAN, 0.1, 0.01, True, lambda j: f"layers.{2 * j + 1}." + ("module." if j == 0 else "")),
        (kans.KAGN, 0.0, 0.0, True, lambda j: f"layers.{j}."),
        (kans.ReLUKAN, 0.2, 0.0, False, lambda j: f"layers.{2 * j}."),
    ],
)
def test_reference_mlp_checkpoint_loads_and_matches(mlp: type, dropout: float, l1: float, first: bool, index) -> None:
    name = {kans.KAN: "KANLayer", kans.KAGN: "GRAMLayer", kans.ReLUKAN: "ReLUKANLayer"}[mlp]
    widths = [IN, OUT, 3]
    kwargs = {"g": 5, "k": 3} if mlp is kans.ReLUKAN else {}
    torch.set_default_dtype(torch.float64)  # restored by the autouse fixture below
    model = mlp(widths, dropout=dropout, l1_decay=l1, first_dropout=first, **kwargs).eval()
    sd, layer_sds = {}, []
    for j, (i, o) in enumerate(itertools.pairwise(widths)):
        _, layer_sd = reference_layer(name, i, o)
        layer_sds.append(layer_sd)
        sd.update({index(j) + k: v for k, v in layer_sd.items()})
    model.load_state_dict(sd)
    x = torch.randn(5, IN, dtype=torch.float64) * 0.7
    y = x.numpy()
    for layer_sd in layer_sds:
        y = reference_forward(name, {k: v.double().numpy() for k, v in layer_sd.items()}, y)
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.from_numpy(y), rtol=1e-9, atol=1e-9)
    # The pure converter agrees, and yields our keys only.
    converted = kans.convert_kans_state_dict(sd, model)
    assert set(converted) == set(model.state_dict())
    # ... and also maps a reference checkpoint onto the clean MLP of the same family.
    family = {kans.KAN: "kan", kans.KAGN: "kagn", kans.ReLUKAN: "relukan"}[mlp]
    clean_kwargs = {"grid_size": 5, "order": 3} if family == "relukan" else {}
    clean = KANMLP(widths, family, dropout=dropout, first_dropout=first, dtype=torch.float64, **clean_kwargs).eval()
    clean.load_state_dict(kans.convert_kans_state_dict(sd, clean))
    with torch.no_grad():
        torch.testing.assert_close(clean(x), model(x), rtol=1e-12, atol=1e-12)


def test_compat_layers_backpropagate_and_step() -> None:
    # The reference's Bernstein layer raised in backward and its ReLU-KAN phases broke optimisers on CPU.
    for layer in (kans.BernsteinKANLayer(4, 3, 3), kans.ReLUKANLayer(4, 5, 3, 3), kans.ChebyKANLayer(4, 3, 3)):
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        x = torch.randn(5, 4, requires_grad=True)
        layer(x).square().sum().backward()
        opt.step()
        assert x.grad is not None and torch.isfinite(x.grad).all()
    # Chebyshev at saturation: arccos had an infinite slope there.
    x = torch.full((2, 4), 30.0, requires_grad=True)
    kans.ChebyKANLayer(4, 3, 3)(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_family_registry() -> None:
    assert FAMILIES == [
        "kan",
        "fastkan",
        "kaln",
        "kacn",
        "kagn",
        "kajn",
        "kabn",
        "kahn",
        "relukan",
        "wavkan",
        "bottleneck_kagn",
    ]
    for family in FAMILIES:
        cls = get_linear_family(family)
        assert cls.family == family and isinstance(cls.formula, str)
