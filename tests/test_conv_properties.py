"""Generated over the family registry: gradients, numerics, parameter counts, errors, aliases, export."""

from __future__ import annotations

import io
import itertools

import pytest
import torch
from torch import nn
from torch.func import functional_call

import kanconvs

FAMILIES = kanconvs.list_families()
POLYNOMIAL = ["kaln", "kacn", "kagn", "kajn", "kabn", "kahn"]


def make(family: str, ndim: int = 2, groups: int = 2, c_in: int = 4, c_out: int = 4, **kw) -> nn.Module:
    return kanconvs.create_conv(family, c_in, c_out, 3, ndim=ndim, groups=groups, padding=1, **kw)


# ---------------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_gradcheck_float64(family: str, ndim: int, groups: int) -> None:
    kw = {"degree": 2} if family in POLYNOMIAL else {}
    if family == "kan":
        kw = {"grid_size": 3, "spline_order": 2}
    layer = make(family, ndim, groups=groups, c_in=2, c_out=2, dtype=torch.float64, **kw).eval()
    names, params = zip(
        *[(n, p.detach().clone().requires_grad_(True)) for n, p in layer.named_parameters()], strict=True
    )
    x = torch.randn(1, 2, *([4, 3, 3][:ndim]), dtype=torch.float64, requires_grad=True)

    def f(inp: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return functional_call(layer, dict(zip(names, ps, strict=True)), (inp,))

    trainable = tuple(p for p, orig in zip(params, layer.parameters(), strict=True) if orig.requires_grad)
    assert torch.autograd.gradcheck(lambda inp, *ps: f(inp, *_merge(params, ps, layer)), (x, *trainable))


def _merge(all_params: tuple, trainable: tuple, layer: nn.Module) -> tuple:
    it = iter(trainable)
    return tuple(next(it) if orig.requires_grad else p for p, orig in zip(all_params, layer.parameters(), strict=True))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_parameter_gets_a_gradient_and_optimizer_steps(family: str) -> None:
    layer = make(family, norm_kwargs={"affine": True} if family != "wavkan" else None)
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-2)
    before = {n: p.detach().clone() for n, p in layer.named_parameters()}
    layer(torch.randn(2, 4, 6, 6)).square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    opt.step()  # the reference's stride-0 ReLU-KAN phases fail here on CPU
    changed = {n for n, p in layer.named_parameters() if not torch.equal(before[n], p)}
    assert changed == {n for n, p in layer.named_parameters() if p.requires_grad}


# ----------------------------------------------------------------------------------------------------- numerics
INPUTS = {
    "extreme": lambda shape: (torch.rand(shape) * 2 - 1) * 1e4,
    "constant": lambda shape: torch.full(shape, 3.0),
    "zeros": lambda shape: torch.zeros(shape),
    "normal": lambda shape: torch.randn(shape),
}


@pytest.mark.parametrize("precision", ["fp32", "autocast-bf16", "autocast-fp16", "bf16", "fp16"])
@pytest.mark.parametrize("family", FAMILIES)
def test_finite_forward_backward(family: str, precision: str) -> None:
    layer = make(family, c_in=2, c_out=4, groups=2)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is not None:
        layer = layer.to(dtype)
    for kind, gen in INPUTS.items():
        x = gen((2, 2, 6, 5))
        x = x.to(dtype) if dtype is not None else x
        x.requires_grad_(True)
        layer.zero_grad()
        if precision.startswith("autocast"):
            amp = torch.bfloat16 if precision.endswith("bf16") else torch.float16
            with torch.autocast("cpu", dtype=amp):
                y = layer(x)
        else:
            y = layer(x)
        assert torch.isfinite(y).all(), (kind, y)
        (y.float() * torch.randn(y.shape)).sum().backward()
        assert torch.isfinite(x.grad).all(), kind
        for name, p in layer.named_parameters():
            grad = p.grad
            if grad is None:
                continue
            if kind == "extreme" and "fp16" in precision:
                # The base branch is an ordinary conv of x (up to 1e4): its weight gradient sums B·S such values,
                # which overflows fp16 for nn.Conv2d just the same (that is what bf16 / loss scaling are for).
                # Everything the KA basis contributes must stay finite.
                if name == "base_weight":
                    continue
                if name == "weight" and layer.use_base:
                    grad = grad[:, :, 1:]
            assert torch.isfinite(grad).all(), (kind, name)


@pytest.mark.parametrize("family", FAMILIES)
def test_empty_batch(family: str) -> None:
    layer = make(family, norm_layer="batch" if family == "wavkan" else "instance").eval()
    x = torch.randn(0, 4, 5, 5, requires_grad=True)
    y = layer(x)
    assert y.shape == (0, 4, 5, 5)
    y.sum().backward()


def test_chebyshev_saturated_half_gradients_are_finite() -> None:
    """The reference's arccos form gives NaN gradients once tanh saturates in fp16/bf16."""
    layer = kanconvs.KACNConv2d(2, 2, 3, padding=1).to(torch.bfloat16)
    x = torch.full((1, 2, 4, 4), 20.0, dtype=torch.bfloat16, requires_grad=True)
    layer(x).float().sum().backward()
    assert torch.isfinite(x.grad).all()


def test_legendre_constant_input_is_finite() -> None:
    """The reference's global min-max gives NaN on a constant input."""
    y = kanconvs.KALNConv2d(2, 4, 3, padding=1)(torch.ones(2, 2, 5, 5))
    assert torch.isfinite(y).all()


def test_legendre_minmax_is_per_sample() -> None:
    layer = kanconvs.KALNConv2d(2, 4, 3, padding=1).eval()
    a, b = torch.randn(1, 2, 5, 5), 100 * torch.randn(1, 2, 5, 5)
    torch.testing.assert_close(layer(torch.cat([a, b]))[:1], layer(a))


# ------------------------------------------------------------------------------------------- parameter counts
def expected_parameters(family: str, c_in: int, c_out: int, g: int, k: int, nd: int, affine: bool) -> int:
    """The reference's parameter laws (torch-conv-kan), defaults: G=5,k=3 (KAN), G=8 (FastKAN), D=3, g=5,k=3."""
    w = c_in * c_out // g * k**nd
    norm = 2 * c_out if affine else 0
    laws = {
        "kan": w * 9 + g + norm,
        "fastkan": w * 9 + (2 * c_in if affine else 0),
        "kaln": w * 5 + norm,
        "kajn": w * 5 + norm,
        "kabn": w * 5 + norm,
        "kahn": w * 5 + norm,
        "kacn": w * 4 + norm,
        "kagn": w * 5 + 4 + norm,
        "relukan": w * 9 + 2 * (c_in // g) * 8 + norm,
        "wavkan": c_in * c_out // g * (2 + 2 * k**nd) + c_out * c_out // g + 2 * c_out,
    }
    return laws[family]


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_parameter_counts_follow_reference_laws(family: str, ndim: int, groups: int, affine: bool) -> None:
    kw = {} if family == "wavkan" else {"norm_kwargs": {"affine": affine}}
    layer = make(family, ndim, groups=groups, c_in=8, c_out=12, **kw)
    expected = expected_parameters(family, 8, 12, groups, 3, ndim, affine and family != "wavkan")
    assert sum(p.numel() for p in layer.parameters()) == expected


# 4-layer MNIST networks of the seed experiments (widths 32/64/128/256, 1 input channel, linear head to 10).
PUBLISHED_4_LAYER = {
    ("kan", 1, False): 3_488_814,
    ("kan", 1, True): 3_489_774,
    ("fastkan", 1, False): 3_488_810,
    ("fastkan", 1, True): 3_489_260,
    ("kaln", 1, False): 1_939_370,
    ("kaln", 1, True): 1_940_330,
    ("kagn", 4, False): 487_866,
    ("kagn", 4, True): 488_826,
    ("kacn", 4, True): 391_754,
    ("wavkan", 1, False): 951_370,
}


@pytest.mark.parametrize(("family", "groups", "affine"), sorted(PUBLISHED_4_LAYER))
def test_published_four_layer_counts(family: str, groups: int, affine: bool) -> None:
    widths = [1, 32, 64, 128, 256]
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        kw = {} if family == "wavkan" else {"norm_kwargs": {"affine": affine}}
        layers.append(kanconvs.create_conv(family, a, b, 3, padding=1, groups=1 if i == 0 else groups, **kw))
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10))
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_4_LAYER[(family, groups, affine)]


# -------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_channels": 5, "groups": 2}, r"in_channels \(5\) must be divisible by groups \(2\)"),
        ({"out_channels": 7, "groups": 2}, r"out_channels \(7\) must be divisible by groups \(2\)"),
        ({"kernel_size": (3, 3, 3)}, r"kernel_size must be an int or a tuple of 2 ints"),
        ({"stride": 0}, r"stride entries must be integers >= 1"),
        ({"padding": -1}, r"padding entries must be integers >= 0"),
        ({"padding": "full"}, r"padding must be 'same', 'valid'"),
        ({"padding": "same", "stride": 2}, r"padding='same' requires stride 1"),
        ({"groups": 0}, r"groups must be a positive integer, got 0"),
        ({"degree": -1}, r"degree must be an integer >= 0, got -1"),
        ({"norm_layer": "bogus"}, r"unknown norm_layer 'bogus'; expected one of"),
        ({"activation": "bogus"}, r"unknown activation 'bogus'"),
        ({"base_activation": "bogus"}, r"unknown base_activation 'bogus'"),
        ({"squash": "bogus"}, r"unknown squash 'bogus'"),
        ({"dropout": 1.5}, r"dropout must be a float in \[0, 1\), got 1.5"),
        ({"dropout_placement": "middle"}, r"dropout_placement must be one of"),
        ({"ndim": 4}, r"KAGNConv2d is 2-dimensional, got ndim=4"),
    ],
)
def test_constructor_errors_name_the_argument(kwargs: dict, match: str) -> None:
    args = {"in_channels": 4, "out_channels": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        kanconvs.KAGNConv2d(**args)


def test_other_constructor_errors() -> None:
    with pytest.raises(ValueError, match="grid_size must be an integer >= 1, got 0"):
        kanconvs.KANConv2d(4, 4, 3, grid_size=0)
    with pytest.raises(ValueError, match="grid_size must be an integer >= 1, got 0"):
        kanconvs.FastKANConv2d(4, 4, 3, grid_size=0)
    with pytest.raises(ValueError, match="unknown wavelet_type 'haar'; expected one of"):
        kanconvs.WavKANConv2d(4, 4, 3, wavelet_type="haar")
    with pytest.raises(ValueError, match=r"unknown basis 'fourier'; expected one of \['bernstein'"):
        kanconvs.KAConv2d(4, 4, 3, basis="fourier")
    with pytest.raises(ValueError, match="unknown family 'nope'"):
        kanconvs.create_conv("nope", 4, 4, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'degre'"):
        kanconvs.KAGNConv2d(4, 4, 3, degre=3)
    with pytest.raises(TypeError, match="invalid basis_kwargs for basis 'gram'"):
        kanconvs.KAConv2d(4, 4, 3, basis="gram", basis_kwargs={"grid_size": 3})
    with pytest.raises(ValueError, match="ndim must be 1, 2 or 3"):
        kanconvs.KAGNConvNd(4, 4, 3)


@pytest.mark.parametrize(
    ("family", "kwargs", "error", "match"),
    [
        ("kagn", {"ndim": 2.0}, ValueError, r"ndim must be 1, 2 or 3, got 2.0"),
        ("kajn", {"alpha": float("inf")}, ValueError, r"alpha must be a finite number > -1, got inf"),
        ("kajn", {"beta": True}, ValueError, r"beta must be a finite number > -1, got True"),
        ("kajn", {"alpha": 200, "degree": 40}, ValueError, r"degree=40 with alpha=200.*beyond float32"),
        ("kan", {"grid_range": 1.0}, ValueError, r"grid_range must be a pair \(low, high\) of finite numbers"),
        ("kan", {"grid_range": "ab"}, ValueError, r"grid_range must be a pair .* got 'ab'"),
        ("fastkan", {"grid_range": (None, 1)}, ValueError, r"grid_range must be a pair .* got \(None, 1\)"),
        ("fastkan", {"grid_range": (True, 2)}, ValueError, r"grid_range must be a pair"),
        ("fastkan", {"denominator": float("inf")}, ValueError, r"denominator must be a finite number > 0, got inf"),
        ("fastkan", {"denominator": True}, ValueError, r"denominator must be a finite number > 0, got True"),
        ("relukan", {"train_phases": "no"}, TypeError, r"train_phases must be a bool, got 'no'"),
        ("kagn", {"dtype": "float32"}, TypeError, r"dtype must be a torch.dtype \(e.g. torch.float32\) or None"),
        ("kagn", {"weight_l1": float("nan")}, ValueError, r"weight_l1 must be a finite number >= 0, got nan"),
        ("kagn", {"weight_l2": float("inf")}, ValueError, r"weight_l2 must be a finite number >= 0, got inf"),
    ],
)
def test_bad_option_values_are_refused_when_built(family: str, kwargs: dict, error: type, match: str) -> None:
    """Values that used to pass silently (then NaN outputs or an obscure error later) are refused at construction."""
    with pytest.raises(error, match=match):
        kanconvs.create_conv(family, 4, 4, 3, **{"ndim": 2, **kwargs})


def test_jacobi_degree_limit_keeps_outputs_finite() -> None:
    """Just below the float32 bound of max |P_D| the layer is built and its output is finite."""
    layer = kanconvs.create_conv("kajn", 4, 4, 3, ndim=2, degree=20, alpha=5.0)
    assert torch.isfinite(layer(torch.randn(2, 4, 6, 6) * 3)).all()


# ------------------------------------------------------------------------------- meta device, inference mode
@pytest.mark.parametrize("family", FAMILIES)
def test_meta_device_then_reset_parameters_equals_a_fresh_layer(family: str) -> None:
    """The deferred-initialisation flow of FSDP and accelerate (build on ``meta``, ``to_empty``, then
    ``reset_parameters()`` on every module) restores the derived buffers (knots, grids, windows) and the learnable
    activation slopes, not just the weights."""
    kw = {"wavelet_type": "shannon"} if family == "wavkan" else {}
    if family in ("kan", "fastkan"):
        kw["activation"] = "prelu"  # a learnable slope (GroupPReLU)
    fresh = make(family, **kw)
    deferred = make(family, device="meta", **kw)
    repr(deferred)  # raised for B-spline layers, whose repr read the (meta) knots
    deferred = deferred.to_empty(device="cpu")
    for module in deferred.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    fresh_buffers = dict(fresh.named_buffers())
    for name, buf in deferred.named_buffers():
        if buf.is_floating_point() and "running" not in name:
            torch.testing.assert_close(buf, fresh_buffers[name], msg=name)
    for name, p in deferred.named_parameters():
        if "act" in name:
            torch.testing.assert_close(p, dict(fresh.named_parameters())[name], msg=name)
    deferred.eval()
    assert torch.isfinite(deferred(torch.randn(2, 4, 6, 6))).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_first_forward_under_inference_mode_does_not_break_training(family: str) -> None:
    """A validation pass under ``torch.inference_mode()`` before the first training step (Lightning's sanity check)
    must not leave cached tensors that training cannot save for backward."""
    layer = make(family, norm_layer=None)
    with torch.inference_mode():
        layer.eval()(torch.randn(2, 4, 6, 6))
    layer.train()(torch.randn(2, 4, 6, 6)).square().sum().backward()
    assert all(p.grad is not None for p in layer.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", FAMILIES)
def test_channels_last_model_gives_the_same_outputs_and_gradients(family: str) -> None:
    """``model.to(memory_format=torch.channels_last)`` (timm's ``--channels-last``) works on the stacked 5-D KA
    weight, and the layer then computes what it computed before, gradients included."""
    torch.manual_seed(0)
    layer = make(family, norm_layer=None)
    x = torch.randn(2, 4, 6, 6)
    y = layer(x)
    grads = torch.autograd.grad(y.square().sum(), list(layer.parameters()))
    layer = layer.to(memory_format=torch.channels_last)
    x_cl = x.to(memory_format=torch.channels_last)
    y_cl = layer(x_cl)
    torch.testing.assert_close(y_cl, y, rtol=1e-5, atol=1e-5)
    for g_cl, g in zip(torch.autograd.grad(y_cl.square().sum(), list(layer.parameters())), grads, strict=True):
        torch.testing.assert_close(g_cl, g, rtol=1e-4, atol=1e-5)


def test_wavkan_bias_is_added_before_the_norm() -> None:
    """``bias=False`` (the usual ``nn.Conv2d`` swap before a BatchNorm) is accepted, and ``bias=True`` adds one
    learnable value per output channel to the mixed output."""
    torch.manual_seed(0)
    plain = kanconvs.WavKANConv2d(4, 6, 3, padding=1, norm_layer=None, bias=False)
    with_bias = kanconvs.WavKANConv2d(4, 6, 3, padding=1, norm_layer=None, bias=True)
    state = {k: v for k, v in with_bias.state_dict().items() if k != "bias"}
    plain.load_state_dict(state)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(with_bias(x) - plain(x), with_bias.bias.view(1, -1, 1, 1).expand(2, 6, 5, 5))
    assert sum(p.numel() for p in with_bias.parameters()) - sum(p.numel() for p in plain.parameters()) == 6
    with_bias(x).sum().backward()
    torch.testing.assert_close(with_bias.bias.grad, torch.full((6,), 50.0))


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_errors_say_expected_and_got(family: str) -> None:
    layer = make(family)
    with pytest.raises(ValueError, match=r"expects 4 input channels, got 3 \(input shape \(2, 3, 5, 5\)\)"):
        layer(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"expects a 4-D input \(batch, channels, H, W\), got shape \(4, 5, 5\)"):
        layer(torch.randn(4, 5, 5))


# ----------------------------------------------------------------------------------------- aliases, state, misc
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_fixed_rank_class_equals_nd_class(family: str, ndim: int) -> None:
    nd_cls = kanconvs.layers.get_family(family)
    fixed = getattr(kanconvs, nd_cls.__name__.replace("Nd", f"{ndim}d"))
    torch.manual_seed(1)
    a = fixed(4, 4, 3, padding=1, groups=2).eval()
    b = nd_cls(4, 4, 3, padding=1, groups=2, ndim=ndim).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, *([5] * ndim))
    torch.testing.assert_close(a(x), b(x))


def test_family_equals_generic_layer() -> None:
    a = kanconvs.KAGNConv2d(4, 6, 3, padding=1, degree=4).eval()
    b = kanconvs.KAConv2d(4, 6, 3, padding=1, basis="gram", basis_kwargs={"degree": 4}, basis_init="kaiming_stacked")
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(a(x), b.eval()(x))


def test_groups_equal_independent_layers() -> None:
    """groups=g in one conv equals g separate layers on the channel chunks (channel-major layout)."""
    whole = kanconvs.KAJNConv2d(4, 6, 3, padding=1, groups=2).eval()
    parts = [kanconvs.KAJNConv2d(2, 3, 3, padding=1).eval() for _ in range(2)]
    with torch.no_grad():
        for i, p in enumerate(parts):
            p.weight.copy_(whole.weight[3 * i : 3 * (i + 1)])
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(whole(x), torch.cat([p(c) for p, c in zip(parts, x.chunk(2, 1), strict=True)], 1))


@pytest.mark.parametrize("family", FAMILIES)
def test_state_dict_round_trip(family: str) -> None:
    a = make(family, norm_kwargs={"affine": True} if family != "wavkan" else None).eval()
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.1 * torch.randn_like(p))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = make(family, norm_kwargs={"affine": True} if family != "wavkan" else None).eval()
    b.load_state_dict(torch.load(buf, weights_only=True))
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(a(x), b(x))


def test_registries_list_and_describe() -> None:
    assert set(kanconvs.list_bases()) >= {"bspline", "rbf", "legendre", "chebyshev", "gram", "jacobi", "bernstein"}
    assert set(kanconvs.list_bases()) >= {"hermite", "wavelet", "relu"}
    for family in FAMILIES:
        assert kanconvs.layers.get_family(family).formula


def test_create_basis() -> None:
    basis = kanconvs.create_basis("jacobi", degree=4, alpha=0.5, beta=2.0)
    assert basis(torch.randn(2, 3, 5)).shape == (2, 3, 5, 5)
    with pytest.raises(TypeError, match="invalid arguments for basis 'legendre'"):
        kanconvs.create_basis("legendre", grid_size=3)


def test_bspline_basis_is_twice_differentiable() -> None:
    """Gradient penalties differentiate the B-spline backward again (it was ``once_differentiable``: the second
    derivative came out silently wrong)."""
    basis = kanconvs.create_basis("bspline", grid_size=3, spline_order=3).double()
    x = (torch.rand(1, 2, 6, dtype=torch.float64) * 2.4 - 1.2).requires_grad_(True)
    assert torch.autograd.gradgradcheck(basis, (x,))
    linear = kanconvs.create_linear("kan", 3, 2).double()
    assert torch.autograd.gradgradcheck(linear, (torch.randn(4, 3, dtype=torch.float64, requires_grad=True),))


# ------------------------------------------------------------------------------------------ compile and export
@pytest.fixture
def fresh_dynamo():
    # Every family compiles the same forward code object: without a reset, dynamo's recompile limit is reached.
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("family", FAMILIES)
def test_torch_compile_fullgraph(family: str, fresh_dynamo: None) -> None:
    layer = make(family).eval()
    x = torch.randn(2, 4, 6, 6)
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), layer(x))


@pytest.mark.slow
@pytest.mark.parametrize("family", POLYNOMIAL)
def test_torch_compile_inductor(family: str, fresh_dynamo: None) -> None:
    layer = make(family)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    compiled = torch.compile(layer, fullgraph=True)
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-4, atol=1e-5)
    compiled(x).sum().backward()


@pytest.mark.parametrize("family", FAMILIES)
def test_torch_export(family: str) -> None:
    layer = make(family).eval()
    x = torch.randn(2, 4, 6, 6)
    program = torch.export.export(layer, (x,))
    torch.testing.assert_close(program.module()(x), layer(x))


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_export_matches_onnxruntime(family: str, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    layer = make(family).eval()
    x = torch.randn(2, 4, 6, 6)
    path = tmp_path / f"{family}.onnx"
    torch.onnx.export(layer, (x,), str(path), dynamo=True, verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), layer(x), rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("family", FAMILIES)
def test_cuda_matches_cpu(family: str) -> None:
    layer = make(family).eval()
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(layer.cuda()(x.cuda()).cpu(), layer.cpu()(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "wavkan"])
def test_fused_basis_pass_gives_the_plain_gradients(family: str) -> None:
    torch.manual_seed(3)
    a = make(family, fused_basis=True).train()
    b = make(family, fused_basis=False).train()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, 5, 5)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    w = torch.randn(2, 4, 5, 5)
    (a(xa) * w).sum().backward()
    (b(xb) * w).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)


def test_top_level_exports_every_layer_name() -> None:
    assert set(kanconvs.layers.__all__) <= set(kanconvs.__all__)
    for name in kanconvs.__all__:
        assert hasattr(kanconvs, name), name


def test_layer_norm_class_normalises_channels() -> None:
    layer = kanconvs.KAGNConv2d(4, 6, 3, padding=1, norm_layer=nn.LayerNorm, activation=None).eval()
    y = layer(torch.randn(2, 4, 5, 7))
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 5, 7), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(1, unbiased=False), torch.ones(2, 5, 7), atol=1e-2, rtol=0)  # eps 1e-5


# ------------------------------------------------------------------------------------------ numerical limits
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize(("family", "limit"), [("kagn", 26), ("kahn", 49), ("kabn", 100)])
def test_degree_limit_is_refused_above_and_finite_at_it(family: str, limit: int, fused: bool) -> None:
    with pytest.raises(ValueError, match=f"degree must be <= {limit} for .*got {limit + 1}"):
        kanconvs.create_conv(family, 4, 4, 3, degree=limit + 1)
    torch.manual_seed(0)
    # fan-in 1: the largest initial β of Gram
    layer = kanconvs.create_conv(family, 1, 2, 1, ndim=1, degree=limit, fused_basis=fused)
    x = torch.linspace(-6, 6, 97).view(1, 1, 97).requires_grad_(True)
    y = layer(x)
    y.square().sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("family", ["kan", "fastkan"])
def test_infinite_grid_range_is_refused(family: str) -> None:
    with pytest.raises(ValueError, match=r"grid_range must be a pair \(low, high\) of finite numbers"):
        kanconvs.create_conv(family, 4, 4, 3, grid_range=(-float("inf"), 1.0))


@pytest.mark.parametrize("wavelet", ["mexican_hat", "morlet", "dog", "meyer", "shannon"])
def test_wavelets_stay_finite_for_huge_inputs(wavelet: str) -> None:
    """|u| ≳ 1.8e19 overflows u² in fp32; the wavelets are evaluated on a clamped u (their value there is ~0)."""
    layer = kanconvs.create_conv("wavkan", 2, 4, 3, padding=1, wavelet_type=wavelet).train()
    x = torch.tensor([-1e30, -1e20, -3.0, 0.0, 3.0, 1e20, 1e30]).repeat(2, 2, 7, 1).requires_grad_(True)
    y = layer(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_one_rank_table_for_the_library() -> None:
    """Every per-rank class comes from kanconvs.layers.ranks: ranks 1-3, named as PyTorch names them."""
    from kanconvs.layers.ranks import RANKS, rank

    assert sorted(RANKS) == [1, 2, 3]
    for n, r in RANKS.items():
        assert r.ndim == n
        for field, cls in vars(r).items():
            if field != "ndim":
                assert f"{n}d" in getattr(cls, "__name__", ""), (field, cls)
    for bad in (0, 4, True, 2.0):
        with pytest.raises(ValueError, match=r"ndim must be 1, 2 or 3, got"):
            rank(bad)  # type: ignore[arg-type]
