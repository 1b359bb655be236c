"""Int8 quantisation: static int8 KA convolutions against a hand-written int8 reference, whole models, weight-only,
sizes, state dicts and the errors."""

from __future__ import annotations

import copy
import io
import pathlib

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kanconvs import create_model, list_families, save_pretrained
from kanconvs.layers import create_conv
from kanconvs.quant import (
    Int8Conv,
    Int8KAConv,
    Int8Linear,
    Int8WavKANConv,
    Int8WeightOnly,
    model_size_bytes,
    quantize_int8,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions.*:UserWarning"),
    pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning"),  # the float layer
]

KA_FAMILIES = [f for f in list_families() if f != "wavkan"]
SMALL = [8, 16, 32, 64]


def fake_quant(x: Tensor, scale: float, zero_point: int, qmin: int, qmax: int) -> Tensor:
    """Affine quantise then dequantise: (clamp(round(x / s) + z, qmin, qmax) - z) · s."""
    return (torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale


def naive_int8_conv(op: Int8Conv, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """The int8 convolution written out: quint8 input, per-channel symmetric qint8 weight (scale max|w| / 127.5,
    PyTorch's [-128, 127] symmetric range), exact products in float64, then the quint8 output requantisation."""
    qconv, qweight, view = op.quantized, op.weight(), (-1, *[1] * (weight.dim() - 1))
    w_scale = qweight.q_per_channel_scales()
    assert torch.allclose(w_scale, weight.abs().flatten(1).amax(1).double() / 127.5, rtol=1e-6)
    w_int = torch.clamp(torch.round(weight.double() / w_scale.view(view)), -128, 127)
    w_diff = (qweight.int_repr().double() - w_int).abs()
    assert w_diff.max() <= 1 and w_diff.mean() < 0.01  # ties at ±127.5 may round either way
    if op.pre_pad:  # uneven or non-zero padding happens in fp32, before quantising
        x = F.pad(x, op.pre_pad, mode="constant" if op.padding_mode == "zeros" else op.padding_mode)
    x_hat = fake_quant(x.double(), float(op.input_scale), int(op.input_zero_point), 0, 255)
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.dim()]
    b = None if bias is None else bias.double()
    y = conv(x_hat, w_int * w_scale.view(view), b, op.stride, op.padding, op.dilation, op.groups)
    return fake_quant(y, qconv.scale, qconv.zero_point, 0, 255).float()


CASES = [  # (ndim, family, conv options)
    *[(2, f, {"stride": 1, "padding": 1}) for f in KA_FAMILIES],
    (2, "kagn", {"groups": 2, "stride": 2, "padding": 2, "dilation": 2}),
    (2, "kacn", {"groups": 4, "padding": "same", "kernel_size": 4, "bias": True}),  # uneven 'same' padding
    (1, "kaln", {"groups": 2, "stride": 2, "padding": 1}),
    (3, "kagn", {"padding": (1, 0, 1), "dilation": (1, 2, 1)}),
]


@pytest.mark.parametrize(("ndim", "family", "options"), CASES, ids=lambda v: str(v))
def test_static_ka_conv_is_int8_and_matches_the_naive_reference(ndim: int, family: str, options: dict) -> None:
    options = dict(options)
    k = options.pop("kernel_size", 3)
    layer = create_conv(family, 8, 8, k, ndim=ndim, norm_layer=None, activation=None, **options).eval()
    x = torch.randn(4, 8, *[7] * ndim)
    qlayer = quantize_int8(layer, [x, torch.randn_like(x)])
    assert isinstance(qlayer, Int8KAConv) and layer.weight is not None  # a copy: the float layer is untouched
    qweight = qlayer.conv.weight()
    # per output channel and symmetric (stored by PyTorch as per-channel affine with zero points 0)
    assert qweight.dtype == torch.qint8 and qweight.qscheme() == torch.per_channel_affine
    assert qweight.shape == layer.weight.flatten(1, 2).shape and not torch.any(qweight.q_per_channel_zero_points())
    assert qlayer.layer.weight is None and not any(k.endswith("layer.weight") for k in qlayer.state_dict())
    with torch.no_grad():
        y, y32 = qlayer(x), layer(x)
        ref = naive_int8_conv(qlayer.conv, layer.features(x), layer.weight.flatten(1, 2), layer.bias)
    step = qlayer.conv.quantized.scale
    assert y.shape == y32.shape
    assert (y - ref).abs().max() <= step * 1.01  # within one output quantisation step…
    assert (y - ref).abs().le(1e-4).float().mean() > 0.95  # …and nearly always the same integer
    assert (y - y32).abs().max() < 0.06 * (y32.max() - y32.min())  # small against the output range


def test_static_ka_conv_keeps_norm_and_activation_in_fp32() -> None:
    layer = create_conv("kagn", 4, 8, 3, padding=1, norm_layer="batch").eval()
    layer.norm.running_mean.uniform_(-0.1, 0.1)
    x = torch.randn(4, 4, 9, 9)
    qlayer = quantize_int8(layer, x)
    assert isinstance(qlayer.layer.norm, nn.BatchNorm2d) and "Int8Conv" in repr(qlayer)
    with torch.no_grad():
        y, y32 = qlayer(x), layer(x)
    assert (y - y32).abs().max() < 0.05 * (y32.max() - y32.min())


def test_wavkan_convolutions_are_int8() -> None:
    layer = create_conv("wavkan", 4, 8, 3, padding=1, groups=2).eval()
    layer.norm.running_var.fill_(0.5)
    x = torch.randn(4, 4, 8, 8)
    qlayer = quantize_int8(layer, [x])
    assert isinstance(qlayer, Int8WavKANConv)
    for op in (qlayer.base_conv, qlayer.wavelet_conv, qlayer.mix_conv):
        assert op is not None and op.weight().dtype == torch.qint8
    assert qlayer.wavelet_conv.groups == 8 and qlayer.layer.scale.dtype == torch.float32  # wavelets stay fp32
    with torch.no_grad():
        y, y32 = qlayer(x), layer(x)
    assert (y - y32).abs().max() < 0.06 * (y32.max() - y32.min())


@pytest.mark.parametrize("mode", ["static", "weight_only"])
def test_wavkan_bias_is_kept(mode: str) -> None:
    layer = create_conv("wavkan", 4, 8, 3, padding=1, bias=True, norm_layer=None, activation=None).eval()
    bias = layer.bias
    assert isinstance(bias, nn.Parameter)
    with torch.no_grad():
        bias.fill_(1.0)
    x = torch.randn(4, 4, 8, 8)
    qlayer = quantize_int8(layer, [x] if mode == "static" else None, mode=mode)  # type: ignore[arg-type]
    with torch.no_grad():
        y, y32 = qlayer(x), layer(x)
    assert abs(float((y - y32).mean())) < 0.02  # the bias (1.0) was dropped before: mean offset 1.0
    assert (y - y32).abs().max() < 0.06 * (y32.max() - y32.min())
    if mode == "static":
        assert isinstance(qlayer, Int8WavKANConv) and qlayer.layer.bias is None
        assert torch.equal(qlayer.mix_conv.quantized.bias(), bias)


def test_plain_conv_and_linear_match_the_naive_reference() -> None:
    conv = nn.Conv2d(6, 8, 3, padding=1, padding_mode="reflect", groups=2)
    linear = nn.Linear(8, 5)
    x = torch.randn(3, 6, 6, 6)
    model = quantize_int8(nn.Sequential(conv, nn.Flatten(2), nn.Unflatten(2, (6, 6))), x)
    op = model[0]
    assert isinstance(op, Int8Conv) and op.pre_pad == (1, 1, 1, 1)  # reflection padding runs in fp32 first
    with torch.no_grad():
        assert (op(x) - naive_int8_conv(op, x, conv.weight, conv.bias)).abs().max() <= op.quantized.scale * 1.01
    h = torch.randn(4, 2, 8)  # any leading dimensions
    qlinear = quantize_int8(linear, h)
    assert isinstance(qlinear, Int8Linear) and qlinear.weight().dtype == torch.qint8
    with torch.no_grad():
        assert (qlinear(h) - linear(h)).abs().max() < 0.05 * linear(h).abs().max()


@pytest.mark.parametrize("name", ["simple_kagn_4", "simple_conv_4"])
def test_whole_model_quantises_evaluates_and_agrees(name: str) -> None:
    model = create_model(name, widths=SMALL).eval()
    calibration = [(torch.randn(8, 1, 28, 28), torch.zeros(8)) for _ in range(3)]  # (input, target) like a loader
    qmodel = quantize_int8(model, calibration)
    kinds = {type(m) for m in qmodel.modules()}
    assert Int8Linear in kinds and (Int8KAConv if name == "simple_kagn_4" else Int8Conv) in kinds
    assert not any(p.dim() > 1 for p in qmodel.parameters())  # every conv and linear weight is int8 now
    x = torch.randn(64, 1, 28, 28)
    with torch.no_grad():
        logits, qlogits = model(x), qmodel(x)
    assert (logits.argmax(1) == qlogits.argmax(1)).float().mean() >= 0.9
    ratio = model_size_bytes(model) / model_size_bytes(qmodel)
    # kagn: ~4× (weights dominate); conv at these widths: BatchNorm statistics stay fp32
    assert ratio > (3.5 if name == "simple_kagn_4" else 2.5), ratio
    assert not qmodel.training
    qmodel.train()
    with pytest.raises(RuntimeError, match=r"inference-only.*model\.eval"):
        qmodel(x)


def test_static_state_dict_round_trip() -> None:
    model = create_model("simple_kagn_4", widths=SMALL)
    qmodel = quantize_int8(model, torch.randn(4, 1, 16, 16))
    other = quantize_int8(create_model("simple_kagn_4", widths=SMALL), torch.randn(4, 1, 16, 16) * 3)
    state = qmodel.state_dict()
    assert state["features.0.conv.quantized.weight"].dtype == torch.qint8
    other.load_state_dict(state)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(other(x), qmodel(x)) and torch.equal(copy.deepcopy(qmodel)(x), qmodel(x))


@pytest.mark.parametrize("name", ["simple_kagn_4", "simple_conv_4", "simple_wavkan_4"])
@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated:UserWarning")  # torch.load of quantized tensors
def test_static_model_pickles_whole(name: str) -> None:
    qmodel = quantize_int8(create_model(name, widths=SMALL), torch.randn(4, 1, 16, 16))
    buffer = io.BytesIO()
    torch.save(qmodel, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), qmodel(x))
    assert "Int8Conv" in repr(loaded)


@pytest.mark.parametrize("mode", ["static", "weight_only"])
@pytest.mark.parametrize("inplace", [False, True])
def test_quantised_model_is_not_saved_as_the_float_architecture(
    tmp_path: pathlib.Path, mode: str, inplace: bool
) -> None:
    model = create_model("simple_kagn_4", widths=SMALL)
    qmodel = quantize_int8(model, torch.randn(2, 1, 12, 12), mode=mode, inplace=inplace)  # type: ignore[arg-type]
    assert not hasattr(qmodel, "pretrained_cfg")
    assert hasattr(model, "pretrained_cfg") != inplace  # the float model keeps it unless converted in place
    with pytest.raises(ValueError, match="no pretrained_cfg"):
        save_pretrained(qmodel, tmp_path / "q")
    assert not (tmp_path / "q" / "model.safetensors").exists()


def test_weight_only_int8() -> None:
    model = create_model("simple_wavkan_4", widths=SMALL).eval()
    qmodel = quantize_int8(model, mode="weight_only")
    wrapped = [m for m in qmodel.modules() if isinstance(m, Int8WeightOnly)]
    assert len(wrapped) == 5 and wrapped[0].names == ("base_weight", "wavelet_weight", "out_weight")
    assert wrapped[0].wavelet_weight_int8.dtype == torch.int8 and wrapped[-1].weight_int8.dtype == torch.int8
    weight = model.features[0].wavelet_weight
    scale = weight.abs().flatten(1).amax(1) / 127
    assert torch.allclose(wrapped[0].wavelet_weight_scale, scale)
    assert torch.equal(wrapped[0].wavelet_weight_int8, torch.round(weight / scale.view(-1, 1, 1, 1)).to(torch.int8))
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        y, y32 = qmodel(x), model(x)
    assert (y - y32).abs().max() < 0.05 * y32.abs().max()
    assert model_size_bytes(model) / model_size_bytes(qmodel) > 3
    fresh = quantize_int8(create_model("simple_wavkan_4", widths=SMALL), mode="weight_only")
    fresh.load_state_dict(qmodel.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh(x), y)


@pytest.mark.gpu
def test_weight_only_runs_on_cuda() -> None:
    model = create_model("simple_kagn_4", widths=SMALL).cuda().eval()
    qmodel = quantize_int8(model, mode="weight_only")
    x = torch.randn(4, 1, 28, 28, device="cuda")
    with torch.no_grad():
        assert (qmodel(x) - model(x)).abs().max() < 0.05 * model(x).abs().max()


class _TwoBranches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used, self.unused = nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.used(x)


def test_errors_name_the_argument_and_the_expectation() -> None:
    model = create_model("simple_kagn_4", widths=SMALL)
    x = torch.randn(2, 1, 12, 12)
    with pytest.raises(ValueError, match=r"mode must be one of \('static', 'weight_only'\), got 'dynamic'"):
        quantize_int8(model, [x], mode="dynamic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"mode='static' needs calibration_batches.*got None"):
        quantize_int8(model)
    with pytest.raises(ValueError, match="calibration_batches is empty"):
        quantize_int8(model, [])
    with pytest.raises(TypeError, match=r"calibration_batches must yield Tensors.*got str"):
        quantize_int8(model, ["image.png"])
    with pytest.raises(TypeError, match=r"calibration_batches must be a Tensor or an iterable.*got int"):
        quantize_int8(model, 3)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module, got str"):
        quantize_int8("simple_kagn_4", [x])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"runs on CPU only.*\['meta'\].*mode='weight_only'"):
        quantize_int8(create_model("simple_kagn_4", widths=SMALL).to("meta"), [x])
    with pytest.raises(TypeError, match=r"needs a float32 model.*torch.bfloat16.*model.float\(\)"):
        quantize_int8(create_model("simple_kagn_4", widths=SMALL).bfloat16(), [x])
    with pytest.raises(ValueError, match="has no module to quantise: expected KAConvNd"):
        quantize_int8(nn.Sequential(nn.ReLU(), nn.BatchNorm2d(3)), [x])
    with pytest.raises(ValueError, match="has no module to quantise"):  # quantised already
        quantize_int8(quantize_int8(model, mode="weight_only"), mode="weight_only")
    with pytest.raises(ValueError, match="never reached 'unused'"):
        quantize_int8(_TwoBranches(), [x])
