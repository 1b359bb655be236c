"""Interpretability: learned φ against hand-written formulas and the layers' own outputs, Grad-CAM against a naive
autograd computation, and the two CLI commands end to end."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import kanconvs
from kanconvs.cli import main
from kanconvs.interpret import (
    default_pairs,
    default_range,
    find_layer,
    grad_cam,
    ka_layers,
    learned_functions,
    overlay_gradcam,
)

D64 = torch.float64


def _grid(lo: float = -2.5, hi: float = 2.5, n: int = 41) -> Tensor:
    return torch.linspace(lo, hi, n, dtype=D64)


# ------------------------------------------------------------------------------------ φ against naive formulas
def test_kacn_matches_chebyshev_cosines() -> None:
    layer = kanconvs.KACNConv2d(3, 4, 3, degree=4, dtype=D64)
    x = _grid()
    pairs = [(0, 0), (2, 3), (1, 2)]
    t = torch.tanh(x)
    cheb = torch.stack([torch.cos(k * torch.arccos(t)) for k in range(5)])  # (F, N)
    expected = torch.stack([torch.einsum("fab,fn->abn", layer.weight[o, i], cheb) for i, o in pairs])
    _, phi_all, used = learned_functions(layer, pairs, x=x, taps="all")
    assert used == pairs and phi_all.shape == (3, 3, 3, 41)
    torch.testing.assert_close(phi_all, expected)
    torch.testing.assert_close(learned_functions(layer, pairs, x=x).phi, expected.sum(dim=(1, 2)))
    torch.testing.assert_close(learned_functions(layer, pairs, x=x, taps="center").phi, expected[:, 1, 1])


def _gram(t: Tensor, beta: Tensor, degree: int) -> list[Tensor]:
    p = [torch.ones_like(t), t]
    for i in range(2, degree + 1):
        b = beta[i - 1] * (2 * i - 1) * (i - 1) ** 2 * (4 * (i - 1) ** 2 - 1) / i**2
        p.append(t * p[i - 1] - b * p[i - 2])
    return p[: degree + 1]


def test_kagn_with_groups_matches_gram_recurrence() -> None:
    layer = kanconvs.KAGNConv2d(4, 6, 3, groups=2, degree=3, dtype=D64)
    with torch.no_grad():
        layer.basis.beta_weights.normal_(0, 0.3)  # the init is tiny: make the recurrence matter
    x = _grid()
    feats = torch.stack([F.silu(x), *[F.silu(p) for p in _gram(torch.tanh(x), layer.basis.beta_weights, 3)]])
    pairs = [(0, 1), (3, 5), (2, 3)]  # inputs 2, 3 are group 1 (outputs 3…5), local index i - 2
    expected = torch.stack([torch.einsum("fab,fn->n", layer.weight[o, i % 2], feats) for i, o in pairs])
    torch.testing.assert_close(learned_functions(layer, pairs, x=x).phi, expected)


def test_kan_linear_matches_cox_de_boor() -> None:
    layer = kanconvs.KANLinear(3, 2, grid_size=4, spline_order=2, grid_range=(-1.0, 1.0), dtype=D64)
    x = _grid(-1.3, 1.3)
    h, k, g = 0.5, 2, 4
    knots = [-1.0 + (j - k) * h for j in range(g + 2 * k + 1)]

    def spline(j: int, p: int) -> Tensor:
        if p == 0:
            return ((x >= knots[j]) & (x < knots[j + 1])).to(D64)
        left = (x - knots[j]) / (knots[j + p] - knots[j]) * spline(j, p - 1)
        return left + (knots[j + p + 1] - x) / (knots[j + p + 1] - knots[j + 1]) * spline(j + 1, p - 1)

    feats = torch.stack([F.gelu(x), *[spline(j, k) for j in range(g + k)]])
    pairs = [(0, 0), (2, 1)]
    expected = torch.stack([layer.weight[o, i] @ feats for i, o in pairs])
    torch.testing.assert_close(learned_functions(layer, pairs, x=x).phi, expected)
    assert default_range(layer) == pytest.approx((-1.2, 1.2))  # the grid range with a 10% margin


# ------------------------------------------------------------------------ φ against the layers' own outputs
def _batch_norm_input(layer: nn.Module) -> nn.Module:
    with torch.no_grad():  # running statistics that change the values (eval mode uses them elementwise)
        layer.input_norm.running_mean.uniform_(-0.5, 0.5)
        layer.input_norm.running_var.uniform_(0.5, 2.0)
    return layer


CONV_CASES = {
    "kan": lambda: kanconvs.KANConv2d(4, 6, 3, groups=2, norm_layer=None, activation=None, bias=True, dtype=D64),
    "fastkan": lambda: _batch_norm_input(kanconvs.FastKANConv2d(4, 6, 3, groups=2, norm_layer="batch", dtype=D64)),
    "kacn": lambda: kanconvs.KACNConv2d(4, 6, 3, groups=2, norm_layer=None, dtype=D64),
    "kagn": lambda: kanconvs.KAGNConv2d(4, 6, 3, groups=2, norm_layer=None, activation=None, dtype=D64),
    "kabn": lambda: kanconvs.KABNConv2d(4, 6, 3, groups=2, norm_layer=None, activation=None, dtype=D64),
    "kahn": lambda: kanconvs.KAHNConv2d(4, 6, 3, groups=2, norm_layer=None, activation=None, dtype=D64),
    "kajn": lambda: kanconvs.KAJNConv2d(4, 6, 3, groups=2, norm_layer=None, activation=None, dtype=D64),
    "relukan": lambda: kanconvs.ReLUKANConv2d(4, 6, 3, groups=2, norm_layer=None, activation=None, dtype=D64),
    "wavkan": lambda: kanconvs.WavKANConv2d(4, 6, 3, groups=2, norm_layer=None, dtype=D64),
    "kagn1d": lambda: kanconvs.KAGNConv1d(2, 3, 3, norm_layer=None, activation=None, dropout=0.3, dtype=D64),
}


def _all_pairs(layer: nn.Module, n_in: int, n_out: int) -> list[tuple[int, int]]:
    return default_pairs(layer, max_inputs=n_in, max_outputs=n_out)


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_sum_over_taps_is_the_response_to_a_constant_patch(name: str) -> None:
    layer = CONV_CASES[name]()
    with torch.no_grad():
        for p in layer.parameters():  # away from the init (unit scales, zero translations, evenly spread phases)
            p.add_(0.1 * torch.randn_like(p))
    n_in, n_out, k = layer.in_channels, layer.out_channels, layer.kernel_size
    x = default_range(layer)
    grid, phi, pairs = learned_functions(layer, _all_pairs(layer, n_in, n_out), x=x, num_points=25)
    # A constant patch as large as the kernel gives one output position; every input channel holds x_n.
    patch = grid.view(-1, 1, *([1] * len(k))).expand(-1, n_in, *k)
    layer.train()  # learned_functions must not depend on the mode; its own forward runs in eval below
    with torch.no_grad():
        out = layer.eval()(patch).flatten(1)  # (N, C_out)
    expected = torch.zeros_like(out)
    for (_, o), values in zip(pairs, phi, strict=True):
        expected[:, o] += values
    bias = getattr(layer, "bias", None)
    if isinstance(bias, Tensor):
        expected += bias
    torch.testing.assert_close(expected, out)


LINEAR_CASES = {
    "kagn": lambda: kanconvs.KAGNLinear(3, 4, norm_layer=None, activation=None, dtype=D64),
    "kan": lambda: kanconvs.KANLinear(3, 4, norm_layer=None, activation=None, dtype=D64),
    "relukan": lambda: kanconvs.ReLUKANLinear(3, 4, dtype=D64),
    "wavkan": lambda: kanconvs.WavKANLinear(3, 4, norm_layer=None, wavelet_type="morlet", dtype=D64),
}


@pytest.mark.parametrize("name", list(LINEAR_CASES))
def test_linear_functions_sum_to_the_output(name: str) -> None:
    layer = LINEAR_CASES[name]()
    with torch.no_grad():
        for p in layer.parameters():  # away from the init (unit scales, zero translations)
            p.add_(0.1 * torch.randn_like(p))
    grid, phi, pairs = learned_functions(layer, _all_pairs(layer, 3, 4), num_points=30)
    assert phi.shape == (12, 30)
    with torch.no_grad():
        out = layer(grid.view(-1, 1).expand(-1, 3))
    expected = torch.zeros_like(out)
    for (_, o), values in zip(pairs, phi, strict=True):
        expected[:, o] += values
    if isinstance(getattr(layer, "bias", None), Tensor):
        expected += layer.bias
    torch.testing.assert_close(expected, out)


def test_sample_statistics_are_bypassed_with_a_warning_and_restored() -> None:
    layer = kanconvs.KALNConv2d(2, 3, 1, norm_layer=None, activation=None, dtype=D64).train()
    squash = layer.squash
    x = torch.linspace(-1, 1, 11, dtype=D64)
    with pytest.warns(UserWarning, match="min–max squash"):
        _, phi, _ = learned_functions(layer, [(1, 2)], x=x)
    legendre = torch.stack([torch.ones_like(x), x, (3 * x**2 - 1) / 2, (5 * x**3 - 3 * x) / 2])
    torch.testing.assert_close(phi[0], layer.weight[2, 1, :, 0, 0] @ torch.cat([x[None], legendre]))
    assert layer.squash is squash and layer.training and all(m.training for m in layer.modules())
    assert all(p.grad is None for p in layer.parameters())
    fast = kanconvs.FastKANConv2d(2, 3, 3)  # instance norm on the input: statistics of the whole map
    with pytest.warns(UserWarning, match="input norm"):
        learned_functions(fast)


# ------------------------------------------------------------------------------------ finding layers, errors
def _tiny() -> nn.Module:
    return kanconvs.create_model("simple_kagn_4", widths=(4, 8), strides=(1, 2), in_channels=1, num_classes=3)


def test_find_layer_by_index_and_name() -> None:
    model = _tiny()
    names = [n for n, _ in ka_layers(model)]
    assert names == ["features.0", "features.1"]
    assert find_layer(model, 1)[0] == find_layer(model, "-1")[0] == "features.1"
    name, layer = find_layer(model, "features.0")
    assert name == "features.0" and layer is model.features[0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (2, "out of range: the model has 2 KA layers"),
        ("features.9", "no module named 'features.9'; KA layers: 'features.0', 'features.1'"),
        ("head", "'head' (Linear) is not a KA layer"),
    ],
)
def test_find_layer_errors(spec: int | str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        find_layer(_tiny(), spec)


def test_not_a_ka_layer_points_inside() -> None:
    model = nn.Sequential(OrderedDict(block=kanconvs.BottleneckKAConv2d(16, 16, 3, family="kacn")))
    with pytest.raises(ValueError, match=r"KA layers inside it: 'block.inner'"):
        find_layer(model, "block")
    assert find_layer(model, 0)[0] == "block.inner"


@pytest.mark.parametrize(
    ("pairs", "message"),
    [([(0, 6)], "out of range: the layer has 4 inputs and 6 outputs"), ([(3, 1)], "not connected"), ([], "empty")],
)
def test_bad_pairs(pairs: list[tuple[int, int]], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        learned_functions(kanconvs.KAGNConv2d(4, 6, 3, groups=2), pairs)


def test_bad_arguments() -> None:
    layer = kanconvs.KAGNConv2d(2, 2, 3)
    with pytest.raises(ValueError, match="taps"):
        learned_functions(layer, taps="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="low < high"):
        learned_functions(layer, x=(1.0, -1.0))
    with pytest.raises(TypeError, match="not a KA layer"):
        learned_functions(nn.Conv2d(2, 2, 3))


# ------------------------------------------------------------------------------------------------ Grad-CAM
def _naive_cam(features: nn.Module, head: nn.Module, x: Tensor, target: list[int]) -> Tensor:
    cams = []
    for b in range(x.shape[0]):
        acts = features(x[b : b + 1]).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(head(acts.clone())[0, target[b]], acts)  # clone: heads may start in place
        cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0].detach()
        cams.append((cam - cam.min()) / (cam.max() - cam.min()))
    return torch.stack(cams)


def test_grad_cam_splits_at_forward_features() -> None:
    model = _tiny().train()
    x = torch.randn(3, 1, 12, 12)
    model.eval()
    with torch.no_grad():
        predicted = model(x).argmax(1).tolist()
    model.train()
    cam = grad_cam(model, x)
    assert cam.shape == (3, 12, 12) and float(cam.min()) >= 0 and float(cam.max()) <= 1
    assert torch.allclose(cam.amax(dim=(1, 2)), torch.ones(3))
    model.eval()
    expected = _naive_cam(model.forward_features, model.forward_head, x, predicted)
    torch.testing.assert_close(cam, expected)
    torch.testing.assert_close(grad_cam(model, x, target=2), _naive_cam(model.features, model.forward_head, x, [2] * 3))
    model.train()
    grad_cam(model, x, target=[0, 1, 2])
    assert all(m.training for m in model.modules()) and all(p.grad is None for p in model.parameters())


def test_grad_cam_on_a_named_layer_with_inplace_relu() -> None:
    features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True))
    head = nn.Sequential(nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    head.append(nn.Linear(5, 3))
    model = nn.Sequential(*features, *head).eval()
    x = torch.randn(2, 3, 10, 10)
    split_head = nn.Sequential(*list(model)[1:])  # the BatchNorm onward: the conv's output is explained
    cam = grad_cam(model, x, target=[1, 0], layer="0")
    torch.testing.assert_close(cam, _naive_cam(model[0], split_head, x, [1, 0]))
    # No forward_features: the default is the last 2-D convolution, model[3].
    torch.testing.assert_close(grad_cam(model, x, target=1), _naive_cam(model[:4], model[4:], x, [1, 1]))
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="target classes"):
        grad_cam(model, x, target=3)


def test_overlay() -> None:
    image, cam = torch.rand(1, 5, 6), torch.rand(5, 6)
    out = overlay_gradcam(image, cam, alpha=0.4)
    assert out.shape == (3, 5, 6) and float(out.min()) >= 0 and float(out.max()) <= 1
    torch.testing.assert_close(overlay_gradcam(image, cam, alpha=0.0), image.expand(3, 5, 6))


# ----------------------------------------------------------------------------------------------------- CLI
def _check_png(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 0 and image.height > 0
        return image.size


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("interpret") / "tiny"
    kanconvs.models.save_pretrained(_tiny(), directory)
    return directory


def test_cli_plot_functions(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    assert main(["plot-functions", str(saved), "--list-layers"]) == 0
    listing = capsys.readouterr().out
    assert "features.0  KAGNConvNd  1 → 4, kernel (3, 3)" in listing and listing.startswith("0  ")
    out = tmp_path / "phi.png"
    assert main(["plot-functions", str(saved), "--layer", "features.1", "--output", str(out)]) == 0
    width, height = _check_png(out)
    assert width > height > 0  # a 4 × 4 grid plus the title
    out_all = tmp_path / "sub" / "taps.png"
    args = ["--layer", "0", "--pairs", "0:0,0:3", "--taps", "all", "--x-range", "-2", "2", "-o", str(out_all)]
    assert main(["plot-functions", str(saved), *args]) == 0
    _check_png(out_all)
    # A weights file with the architecture named on the command line.
    weights = saved / "model.safetensors"
    cfg = json.loads((saved / "config.json").read_text())
    kwargs = [f"{k}={v!r}".replace(" ", "") for k, v in cfg["kwargs"].items()]
    out_file = tmp_path / "file.png"
    assert main(["plot-functions", str(weights), *kwargs, "--model", "simple_kagn_4", "-o", str(out_file)]) == 0
    _check_png(out_file)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer", "7"], "layer index 7 is out of range"),
        (["--layer", "head"], "'head' (Linear) is not a KA layer"),
        (["--layer", "0", "--pairs", "0:9"], "pair 0:9 is out of range"),
        (["--pairs", "0-1"], "--pairs must look like 0:0,1:3"),
    ],
)
def test_cli_plot_functions_errors(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["plot-functions", str(saved), *args, "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kanconvs plot-functions: error: ") and message in err
    assert not (tmp_path / "x.png").exists()


def test_cli_bad_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot-functions", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_cli_gradcam_image_file(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.fromarray((torch.rand(20, 24, 3) * 255).byte().numpy()).save(image)  # RGB: converted to the 1 channel
    out = tmp_path / "cam.png"
    args = ["--image", str(image), "--image-size", "16", "--target", "2", "-o", str(out)]
    assert main(["gradcam", str(saved), *args]) == 0
    assert "Grad-CAM of class 2" in capsys.readouterr().out
    _check_png(out)
    assert main(["gradcam", str(saved), "--image", str(image), "--target", "5"]) == 2
    assert "--target 5 is out of range: the model has 3 classes" in capsys.readouterr().err


def test_cli_gradcam_run_directory_index(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("omegaconf")
    run = tmp_path / "run"
    model = kanconvs.create_model("simple_kagn_4", widths=(4, 8), strides=(1, 2), in_channels=1, num_classes=10)
    kanconvs.models.save_pretrained(model, run / "final")  # no best/: the final weights are used
    model_cfg = "{name: simple_kagn_4, kwargs: {widths: [4, 8], strides: [1, 2]}}"
    (run / "config.yaml").write_text(f"data: {{name: mnist-10k, val_limit: 8}}\nmodel: {model_cfg}\n")
    out = tmp_path / "cam.png"
    assert main(["gradcam", str(run), "--index", "3", "-o", str(out)]) == 0
    assert "Grad-CAM of class" in capsys.readouterr().out
    assert _check_png(out)[0] > 0
    assert main(["plot-functions", str(run), "--weights", "final", "-o", str(tmp_path / "phi.png")]) == 0
    _check_png(tmp_path / "phi.png")
    assert main(["gradcam", str(saved), "--index", "0"]) == 2
    assert "--index needs a dataset" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["plot-functions", "gradcam"])
def test_cli_output_path(
    command: str, saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.fromarray((torch.rand(16, 16) * 255).byte().numpy()).save(image)
    args = [command, str(saved), *(["--image", str(image)] if command == "gradcam" else [])]
    # no suffix: matplotlib writes name.png, and that is the path reported
    assert main([*args, "-o", str(tmp_path / "noext")]) == 0
    assert str(tmp_path / "noext.png") in capsys.readouterr().out and not (tmp_path / "noext").exists()
    _check_png(tmp_path / "noext.png")
    # an existing directory, or a folder that is a file: one line, exit 2, before loading anything
    (tmp_path / "afile").write_text("")
    for output, message in [(tmp_path, "is a directory: expected a file path"), (tmp_path / "afile" / "x.png", "")]:
        assert main([*args, "-o", str(output)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"kanconvs {command}: error: --output") and err.count("\n") == 1 and message in err
    # written atomically: a save failing midway leaves the previous file whole, and no temporary file
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"previous")

    def broken_savefig(self: Figure, fname: Any, **kwargs: Any) -> None:
        Path(fname).write_bytes(b"half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    assert main([*args, "-o", str(keep)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert keep.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.glob(".*")) == []
