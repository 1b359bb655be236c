"""The fused basis pass (kanconvs.kernels) against the plain differentiable math, for every family.

Without a GPU the Triton kernels run under Triton's interpreter (``TRITON_INTERPRET=1``, set in conftest) on CPU
tensors; with one they run compiled on CUDA. ``use_backend("torch")`` checks the in-place PyTorch path the same way.
The plain path (``fused_basis=False``) has its own naive-formula and gradcheck tests (test_conv_values.py,
test_conv_properties.py).
"""

from __future__ import annotations

import os

import pytest
import torch

import kanconvs
from kanconvs.bases import create_basis, list_bases
from kanconvs.kernels import FeaturePlan, fused_features, use_backend

# sigmoid(±1e4) in the interpreter (numpy) overflows exp to inf on the way to an exact 0 or 1.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
FAMILIES = [f for f in kanconvs.list_families() if f != "wavkan"]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
TRITON = pytest.mark.skipif(
    DEVICE == "cpu" and not INTERPRETED, reason="Triton kernels need CUDA or TRITON_INTERPRET=1"
)
# Spatial shapes whose sizes are not multiples of any block size (the kernels' blocks are powers of two >= 16).
SHAPES = {1: (13,), 2: (5, 7), 3: (3, 4, 5)}


def pair(family: str, ndim: int, groups: int, **kw) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The same layer twice, fused and plain, with identical perturbed parameters (learnable bases off their init)."""
    torch.manual_seed(0)
    fused = kanconvs.create_conv(family, 4, 6, 3, ndim=ndim, groups=groups, padding=1, **kw)
    with torch.no_grad():
        for name, p in fused.named_parameters():
            if name.startswith("basis."):
                p.add_(0.05 * torch.randn_like(p))
    plain = kanconvs.create_conv(family, 4, 6, 3, ndim=ndim, groups=groups, padding=1, fused_basis=False, **kw)
    plain.load_state_dict(fused.state_dict())
    return fused.to(DEVICE), plain.to(DEVICE)


def run(layer: torch.nn.Module, x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    x = x.detach().clone().requires_grad_(True)
    y = layer(x)
    (y.float() * weight).sum().backward()
    grads = [x.grad] + [p.grad for p in layer.parameters() if p.requires_grad]
    return y, grads


def check(family: str, ndim: int, groups: int, x: torch.Tensor, backend: str, dtype: torch.dtype, tol: float) -> None:
    fused, plain = pair(family, ndim, groups)
    fused.train()
    plain.train()
    if dtype != torch.float32:
        fused, plain = fused.to(dtype), plain.to(dtype)
        x = x.to(dtype)
    weight = torch.randn(x.shape[0], 6, *x.shape[2:], device=x.device)
    with use_backend(backend):
        y_f, g_f = run(fused, x, weight)
    y_p, g_p = run(plain, x, weight)
    assert y_f.dtype == y_p.dtype and torch.isfinite(y_f).all()
    torch.testing.assert_close(y_f.float(), y_p.float(), rtol=tol, atol=tol)
    names = ["input"] + [n for n, p in fused.named_parameters() if p.requires_grad]
    for name, a, b in zip(names, g_f, g_p, strict=True):
        assert a is not None and b is not None, name
        assert torch.isfinite(a).all(), name
        scale = b.float().abs().max().clamp_min(1.0)
        torch.testing.assert_close(a.float() / scale, b.float() / scale, rtol=tol, atol=tol, msg=name)


@TRITON
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_triton_matches_plain_fp32(family: str, ndim: int, groups: int) -> None:
    x = torch.randn(3, 4, *SHAPES[ndim], device=DEVICE)
    check(family, ndim, groups, x, "triton", torch.float32, 2e-4)


@TRITON
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_triton_matches_plain_bf16(family: str, ndim: int) -> None:
    """bf16 layers: the features (fp32 math, one rounding to bf16) and their gradients.

    Whole-layer outputs are not compared: a one-ulp difference in a bf16 feature, amplified by the instance norm's
    division by a small deviation, says nothing about the kernels.
    """
    fused, plain = (m.to(torch.bfloat16).train() for m in pair(family, ndim, 2))
    x = torch.randn(2, 4, *SHAPES[ndim], device=DEVICE, dtype=torch.bfloat16)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    with use_backend("triton"):
        fa = fused.features(xa)
    fb = plain.features(xb)
    assert fa.dtype == fb.dtype == torch.bfloat16
    torch.testing.assert_close(fa.float(), fb.float(), rtol=1.6e-2, atol=1e-2)
    w = torch.randn_like(fa)
    pa = [p for p in fused.basis.parameters() if p.requires_grad]
    pb = [p for p in plain.basis.parameters() if p.requires_grad]
    for a, b in zip(torch.autograd.grad(fa, [xa, *pa], w), torch.autograd.grad(fb, [xb, *pb], w), strict=True):
        scale = b.float().abs().max().clamp_min(1.0)
        torch.testing.assert_close(a.float() / scale, b.float() / scale, rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_torch_path_matches_plain(family: str, ndim: int, groups: int) -> None:
    x = torch.randn(3, 4, *SHAPES[ndim], device=DEVICE)
    check(family, ndim, groups, x, "torch", torch.float32, 1e-5)


@pytest.mark.parametrize("backend", [pytest.param("triton", marks=TRITON), "torch"])
@pytest.mark.parametrize("family", FAMILIES)
def test_extreme_inputs_stay_finite(family: str, backend: str) -> None:
    x = torch.tensor([-1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4], device=DEVICE).repeat(2, 4, 1)
    check(family, 1, 2, x, backend, torch.float32, 2e-4)


@pytest.mark.parametrize("backend", [pytest.param("triton", marks=TRITON), "torch"])
@pytest.mark.parametrize("family", FAMILIES)
def test_empty_batch(family: str, backend: str) -> None:
    fused, _ = pair(family, 2, 2)
    x = torch.randn(0, 4, 5, 5, device=DEVICE, requires_grad=True)
    with use_backend(backend):
        y = fused(x)
        y.sum().backward()
    assert y.shape == (0, 6, 5, 5)
    assert x.grad is not None and x.grad.shape == x.shape


@TRITON
@pytest.mark.parametrize("family", FAMILIES)
def test_autocast_writes_features_in_the_autocast_dtype(family: str) -> None:
    fused, plain = pair(family, 2, 2)
    x = torch.randn(2, 4, 5, 7, device=DEVICE)
    with use_backend("triton"), torch.autocast(DEVICE, dtype=torch.bfloat16):
        feats = fused.features(x)
        y = fused(x)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        y_plain = plain(x)
    assert feats.dtype == torch.bfloat16
    torch.testing.assert_close(feats.float(), plain.features(x).float(), rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(y.float(), y_plain.float(), rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize("backend", [pytest.param("triton", marks=TRITON), "torch"])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [(n, {"channels": 2} if n in ("relu", "wavelet") else {}) for n in list_bases()],
)
def test_every_basis_through_the_fused_pass(name: str, kwargs: dict, backend: str) -> None:
    """Basis level, every plan: values and gradients (input and basis tensors) equal the basis's own ``evaluate``."""
    basis = create_basis(name, **kwargs).to(DEVICE)
    with torch.no_grad():
        for p in basis.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = 1.5 * torch.randn(2, 4, 19, device=DEVICE)
    for squash, base in [("tanh", "silu"), ("sigmoid", "gelu"), ("none", "identity"), ("none", "none")]:
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        with use_backend(backend):
            y = fused_features(None, xa, basis, FeaturePlan(squash, base))
        t = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "none": lambda v: v}[squash](xb)
        prepend = {"silu": torch.nn.functional.silu, "gelu": torch.nn.functional.gelu, "identity": lambda v: v}
        ref = basis.stack(basis.evaluate(t), prepend[base](xb) if base != "none" else None).flatten(1, 2)
        torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-5)
        w = torch.randn_like(ref)
        params = [p for p in basis.parameters() if p.requires_grad]
        got = torch.autograd.grad(y, [xa, *params], w)
        want = torch.autograd.grad(ref, [xb, *params], w)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_gradcheck_of_the_torch_path_float64() -> None:
    for name, kwargs in [("gram", {}), ("relu", {"channels": 4}), ("bernstein", {}), ("rbf", {}), ("bspline", {})]:
        basis = create_basis(name, **kwargs).double()
        x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
        params = [p for p in basis.parameters() if p.requires_grad]
        plan = FeaturePlan("tanh" if name != "bspline" else "none", "silu")

        def f(x: torch.Tensor, *ps: torch.Tensor, basis=basis, plan=plan) -> torch.Tensor:
            return fused_features(None, x, basis, plan)

        with use_backend("torch"):
            assert torch.autograd.gradcheck(f, (x, *params)), name


def test_backend_names_are_checked() -> None:
    with pytest.raises(ValueError, match="backend must be"), use_backend("cuda"):  # type: ignore[arg-type]
        pass


# ------------------------------------------------------------------------------------------- compiled CPU path
@pytest.fixture
def compiled_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANCONVS_COMPILE", "1")


@pytest.mark.parametrize("family", ["kagn", "relukan", "kan"])
def test_compiled_cpu_path_matches_plain(family: str, compiled_cpu: None) -> None:
    """The inductor-compiled PyTorch path (the CPU default): values and all gradients, two layers sharing it."""
    for ndim, groups in [(2, 2), (1, 1)]:
        fused, plain = pair(family, ndim, groups)
        fused, plain = fused.cpu(), plain.cpu()
        x = torch.randn(3, 4, *SHAPES[ndim])
        w = torch.randn(3, 6, *SHAPES[ndim])
        y_f, g_f = run(fused, x, w)
        y_p, g_p = run(plain, x, w)
        torch.testing.assert_close(y_f, y_p, rtol=1e-5, atol=1e-5)
        for a, b in zip(g_f, g_p, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("family", ["kagn", "relukan", "kan", "fastkan"])
def test_split_features_are_contiguous_parts_of_the_whole(family: str, backend: str, compiled_cpu: None) -> None:
    """On CPU a layer with 2-8 groups gets its features as one contiguous tensor per group (its convolution reads
    it without a copy); together they are the plain path's features, and the gradients through them match."""
    fused, plain = (m.cpu() for m in pair(family, 2, 2))
    assert fused.split_groups(torch.empty(0, 4, 1, 1)) == 2
    x = torch.randn(3, 4, *SHAPES[2])
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    with use_backend(backend):
        parts = fused._features(xa, chunks=2)
    whole = plain.features(xb)
    assert isinstance(parts, tuple) and len(parts) == 2
    f = fused.features_per_channel
    assert all(part.is_contiguous() and part.shape == (3, 2 * f, *SHAPES[2]) for part in parts)
    torch.testing.assert_close(torch.cat(parts, 1), whole, rtol=1e-5, atol=1e-5)
    w = torch.randn_like(whole)
    pa = [p for p in fused.basis.parameters() if p.requires_grad]
    pb = [p for p in plain.basis.parameters() if p.requires_grad]
    ga = torch.autograd.grad(parts, [xa, *pa], w.chunk(2, 1))
    gb = torch.autograd.grad(whole, [xb, *pb], w)
    for a, b in zip(ga, gb, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_compiled_wavelet_maps_match_plain(compiled_cpu: None) -> None:
    torch.manual_seed(0)
    layer = kanconvs.create_conv("wavkan", 4, 6, 3, groups=2, padding=1)
    with torch.no_grad():
        layer.scale.add_(0.1 * torch.randn_like(layer.scale))
        layer.translation.add_(0.1 * torch.randn_like(layer.translation))
    x = torch.randn(2, 4, 5, 7)
    w = torch.randn(2, 6, 5, 7)
    y_c, g_c = run(layer, x, w)
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    os.environ["KANCONVS_COMPILE"] = "0"  # restored by the fixture's monkeypatch
    y_p, g_p = run(layer, x, w)
    torch.testing.assert_close(y_c, y_p, rtol=1e-5, atol=1e-5)
    for a, b in zip(g_c + grads, g_p + [p.grad for p in layer.parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_kernel_that_fails_to_build_falls_back_to_pytorch(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA (``auto``) a Triton build failure must not break the model: warn, then the PyTorch path."""
    from kanconvs.kernels import features, triton_features

    def broken(*args, **kwargs):
        raise RuntimeError("simulated Triton compilation error")

    monkeypatch.setattr(features, "_use_triton", lambda x, basis: type(basis) not in features._triton_failed)
    monkeypatch.setattr(triton_features, "launch_forward", broken)
    monkeypatch.setattr(features, "_triton_failed", set())
    fused, plain = pair("kagn", 2, 2)
    x = torch.randn(2, 4, 5, 5)
    with pytest.warns(RuntimeWarning, match="simulated Triton compilation error"):
        y = fused.cpu()(x)
    torch.testing.assert_close(y, plain.cpu()(x))
    assert features._triton_failed == {type(fused.basis)}


# ---------------------------------------------------------------------------------- WavKAN: implicit kernels
WAVKAN_CASES = [(2, 2, 1, 1), (1, 1, 2, 0), (3, 2, 1, 1), (2, 1, 2, 1)]  # ndim, groups, stride, padding


def wavkan_pair(wavelet: str, ndim: int, groups: int, stride: int, padding: int) -> torch.nn.Module:
    torch.manual_seed(0)
    layer = kanconvs.create_conv(
        "wavkan", 4, 6, 3, ndim=ndim, groups=groups, stride=stride, padding=padding, wavelet_type=wavelet
    )
    with torch.no_grad():  # off the init (scales 1, translations 0), so their gradients are tested for real
        layer.scale.add_(0.2 * torch.randn_like(layer.scale))
        layer.translation.add_(0.2 * torch.randn_like(layer.translation))
    return layer.to(DEVICE).train()


@TRITON
@pytest.mark.parametrize("case", WAVKAN_CASES)
@pytest.mark.parametrize("wavelet", ["mexican_hat", "morlet", "dog"])
def test_wavkan_triton_kernels_match_the_tiled_path(wavelet: str, case: tuple[int, int, int, int]) -> None:
    """Values and gradients (input, scales, translations, weights) of the map-free kernels against the tiled maps."""
    layer = wavkan_pair(wavelet, *case)
    x = torch.randn(2, 4, *SHAPES[case[0]], device=DEVICE)
    w = None
    results = []
    for backend in ("triton", "torch"):
        layer.zero_grad()
        xa = x.clone().requires_grad_(True)
        with use_backend(backend):
            y = layer(xa)
        w = torch.randn_like(y) if w is None else w
        (y * w).sum().backward()
        results.append((y, [xa.grad] + [p.grad for p in layer.parameters()]))
    (y_t, g_t), (y_c, g_c) = results
    torch.testing.assert_close(y_t, y_c, rtol=1e-4, atol=1e-4)
    for name, a, b in zip(["input"] + [n for n, _ in layer.named_parameters()], g_t, g_c, strict=True):
        scale = b.abs().max().clamp_min(1.0)
        torch.testing.assert_close(a / scale, b / scale, rtol=1e-4, atol=1e-4, msg=name)


@TRITON
def test_wavkan_triton_edge_cases() -> None:
    layer = wavkan_pair("mexican_hat", 2, 2, 1, 1)
    with use_backend("triton"):
        empty = torch.randn(0, 4, 5, 5, device=DEVICE, requires_grad=True)
        layer(empty).sum().backward()
        assert empty.grad is not None and empty.grad.shape == empty.shape
        layer.eval()
        x = torch.tensor([-1e4, -30.0, 0.0, 30.0, 1e4], device=DEVICE).repeat(1, 4, 5, 1).requires_grad_(True)
        y = layer(x)
        y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    with use_backend("torch"):
        torch.testing.assert_close(y, layer(x.detach()), rtol=1e-4, atol=1e-4)


def test_wavkan_tiles_bound_the_maps_and_match_one_tile() -> None:
    """A tile budget of a few outputs gives the same values and gradients as one tile of all of them."""
    torch.manual_seed(0)
    small = kanconvs.create_conv("wavkan", 4, 6, 3, groups=2, padding=1, tile_bytes=1)  # one output per tile
    whole = kanconvs.create_conv("wavkan", 4, 6, 3, groups=2, padding=1)
    whole.load_state_dict(small.state_dict())
    x = torch.randn(2, 4, 5, 7)
    ys, gs = [], []
    for layer in (small, whole):
        xa = x.clone().requires_grad_(True)
        with use_backend("torch"):
            y = layer.train()(xa)
        (y * torch.arange(y.numel()).view_as(y).sin()).sum().backward()
        ys.append(y)
        gs.append([xa.grad] + [p.grad for p in layer.parameters()])
    torch.testing.assert_close(ys[0], ys[1])
    for a, b in zip(*gs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="tile_bytes must be a positive integer, got 0"):
        kanconvs.create_conv("wavkan", 4, 6, 3, tile_bytes=0)


@TRITON
@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_penalty_differentiates_the_fused_backward(family: str, backend: str) -> None:
    """``create_graph=True`` (a WGAN-GP or R1 penalty): the fused pass's backward is differentiated again and gives
    the plain path's second-order gradients. (The Triton backward used to return tensors without a graph.)"""
    fused, plain = pair(family, 2, 2)
    x = torch.randn(2, 4, *SHAPES[2], device=DEVICE)

    def penalty_grads(layer: torch.nn.Module) -> list[torch.Tensor | None]:
        xx = x.clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(layer.train()(xx).square().sum(), xx, create_graph=True)
        params = [p for p in layer.parameters() if p.requires_grad]
        return list(torch.autograd.grad(gx.square().sum(), params, allow_unused=True))

    with use_backend(backend):
        got = penalty_grads(fused)
    want = penalty_grads(plain)
    names = [n for n, p in fused.named_parameters() if p.requires_grad]
    for name, a, b in zip(names, got, want, strict=True):
        assert (a is None) == (b is None), name
        if a is not None and b is not None:
            scale = b.abs().max().clamp_min(1.0)
            torch.testing.assert_close(a / scale, b / scale, rtol=1e-4, atol=1e-4, msg=name)


def test_one_basis_configuration_stays_compiled_across_ranks_and_layouts(compiled_cpu: None) -> None:
    """Batch 1, size-1 axes, channels_last input and 1/2/3-D layers of one basis configuration: each rank and layout
    has its compiled code of its own, so dynamo's recompile limit is never reached (it used to be, and that
    configuration then ran eagerly, with a warning, for the rest of the process)."""
    import warnings

    layers = {n: kanconvs.create_conv("kaln", 4, 4, 3, ndim=n, padding=1, norm_layer=None) for n in (1, 2, 3)}
    shapes = [(2, 4, 6, 6), (1, 4, 6, 6), (2, 4, 1, 5), (2, 4, 7, 1), (0, 4, 6, 6), (2, 4, 9), (1, 4, 9),
              (2, 4, 3, 3, 3), (1, 4, 1, 3, 3)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "compiling a CPU pass failed … running it eagerly"
        for shape in shapes:
            x = torch.randn(*shape, requires_grad=True)
            layers[x.dim() - 2](x).sum().backward()
        x = torch.randn(2, 4, 6, 6).to(memory_format=torch.channels_last).requires_grad_(True)
        layers[2](x).sum().backward()
        with torch.no_grad():
            layers[2](torch.randn(3, 4, 6, 6))


def test_wavkan_gradient_penalty_is_the_same_with_and_without_recomputation() -> None:
    """The tiles recomputed in the backward (checkpoint_wavelets=True, the default) are differentiated with a graph
    under create_graph=True: the penalty's gradients equal plain autograd's (they were 3-8x too small)."""
    torch.manual_seed(0)
    layers = [kanconvs.create_conv("wavkan", 3, 4, 3, padding=1, norm_layer=None, checkpoint_wavelets=c).double()
              for c in (True, False)]  # fmt: skip
    layers[1].load_state_dict(layers[0].state_dict())
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    grads = []
    for layer in layers:
        xx = x.clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(layer(xx).square().sum(), xx, create_graph=True)
        grads.append(torch.autograd.grad(gx.square().sum(), [layer.scale, layer.translation, layer.wavelet_weight]))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
