"""Int8 post-training quantisation of KA convolutions (and of the plain convolutions and linear layers around them).

Two modes, both through :func:`quantize_int8`:

* ``"static"`` — real int8 arithmetic on CPU with PyTorch's quantized kernels (``torch.ao.nn.quantized``, engine
  ``torch.backends.quantized.engine``: ``x86``/``fbgemm``/``onednn``). Every convolution's input is quantised per
  tensor to ``quint8`` and its weight per output channel to symmetric ``qint8``; the convolution runs in int8 with
  int32 accumulation and its output is requantised to ``quint8``, then dequantised. The scales of inputs and outputs
  come from PyTorch's ``HistogramObserver`` run on calibration batches (``reduce_range`` on ``x86``/``fbgemm``, as
  in PyTorch's default qconfig), those of the weights from ``PerChannelMinMaxObserver``.
* ``"weight_only"`` — weights stored as ``int8`` with one fp32 scale per output channel (symmetric, ``|q| ≤ 127``),
  dequantised at every forward pass: 4× smaller weights on any device (CUDA included); computation and speed are
  those of the float model.

What is quantised (modules are replaced by wrappers, so ``print(model)`` shows it):

=========================  ==============================================  =====================================
module                     ``"static"`` (int8 compute)                     stays fp32
=========================  ==============================================  =====================================
:class:`KAConvNd` (every   the convolution over the feature maps           the basis expansion (squash, base
family)                    → :class:`Int8KAConv`                           activation, basis functions), norm,
                                                                           activation
:class:`WavKANConvNd`      base, wavelet and 1×1 mixing convolutions       wavelet evaluation ψ((x - t) / s),
                           → :class:`Int8WavKANConv`                       norm, activation
``nn.Conv1d/2d/3d``        → :class:`Int8Conv`                             —
``nn.Linear``              → :class:`Int8Linear`                           —
=========================  ==============================================  =====================================

``"weight_only"`` wraps the same modules (and :class:`BottleneckKAConvNd`'s own weights) in :class:`Int8WeightOnly`.
Everything else stays fp32: norms, pooling, KAN linear layers, MoE experts, basis parameters, WavKAN scales and
translations, and in both modes the sub-trees of modules that read their children's weights directly (PEFT wrappers,
Matryoshka heads, ``nn.MultiheadAttention``). ``"static"`` also leaves fp32 the :class:`KAConvNd` subclasses that
override ``forward`` and the subclasses of ``nn.ConvNd``/``nn.Linear`` (their forward may differ).

Quantised models are for inference: their forward raises in training mode, dropout is the identity and activation
penalties (``activation_l1``/``l2``) are not recorded. ``state_dict()`` holds the int8 weights; it loads into a
model quantised the same way (same mode, same engine): for ``"static"`` build that model with
:func:`quantize_int8` and any calibration batch, then ``load_state_dict``. ``torch.save(qmodel)`` and
``torch.load(..., weights_only=False)`` work too. The quantised model has no ``pretrained_cfg`` (its weights are not
the float architecture's), so :func:`~kanconvs.save_pretrained` refuses it: save the float model, or the
``state_dict()``. PyTorch 2.14 has no PT2E export
quantisation (``torch.ao.quantization.quantize_pt2e``); this module uses the eager quantized modules, which
PyTorch marks as deprecated (creating quantized tensors warns once).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import torch
import torch.ao.nn.quantized as nnq
import torch.nn.functional as F
from torch import Tensor, nn
from torch.ao.quantization.observer import HistogramObserver, PerChannelMinMaxObserver
from torch.func import functional_call

from .bases.wavelet import safe_scale
from .layers.bottleneck import BottleneckKAConvNd
from .layers.kan_conv import KAConvNd
from .layers.ranks import RANKS, rank
from .layers.wavkan import WavKANConvNd

__all__ = [
    "Int8Conv",
    "Int8KAConv",
    "Int8Linear",
    "Int8WavKANConv",
    "Int8WeightOnly",
    "QuantMode",
    "model_size_bytes",
    "quantize_int8",
]

#: ``"static"``: int8 compute on CPU; ``"weight_only"``: int8 storage, float compute, any device.
QuantMode = Literal["static", "weight_only"]
_MODES = ("static", "weight_only")
_CONVS: dict[type[nn.Module], int] = {r.conv: n for n, r in RANKS.items()}
_WAVKAN_WEIGHTS = ("base_weight", "wavelet_weight", "out_weight")


def _check_inference(module: nn.Module) -> None:
    if module.training:
        raise RuntimeError(
            f"{type(module).__name__} is inference-only (int8 weights cannot be trained): call model.eval() first"
        )


# ------------------------------------------------------------------------------------------------ static int8
class _StaticOp(nn.Module):
    """fp32 in, fp32 out; int8 inside. Built observing (float compute, observers record ranges), then
    :meth:`freeze` replaces the float weight by PyTorch's quantized module."""

    input_scale: Tensor
    input_zero_point: Tensor

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        # 7-bit activations on x86/fbgemm (PyTorch's default qconfig there): u8·s8 pairs summed in int16 cannot
        # overflow on CPUs without VNNI.
        quant_max = 127 if torch.backends.quantized.engine in ("x86", "fbgemm") else 255
        self.input_observer = HistogramObserver(quant_min=0, quant_max=quant_max)
        self.output_observer = HistogramObserver(quant_min=0, quant_max=quant_max)
        # Kept outside the module tree while observing: only the frozen int8 weight is part of the state.
        self._float: tuple[Tensor, Tensor | None] | None = (weight.detach(), None if bias is None else bias.detach())
        self.register_buffer("input_scale", torch.ones(()))
        self.register_buffer("input_zero_point", torch.zeros((), dtype=torch.long))
        self.quantized: Any = None  # torch.ao.nn.quantized.ConvNd / Linear once frozen

    def _float_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _build(self, qweight: Tensor, bias: Tensor | None) -> Any:
        raise NotImplementedError

    def _prepare(self, x: Tensor) -> Tensor:
        return x

    def forward(self, x: Tensor) -> Tensor:
        _check_inference(self)
        if self._float is not None:  # calibrating
            self.input_observer(x)
            return self.output_observer(self._float_forward(x, *self._float))
        assert self.quantized is not None
        q = torch.quantize_per_tensor(self._prepare(x), self.input_scale, self.input_zero_point, torch.quint8)
        return self.quantized(q).dequantize()

    def freeze(self, name: str) -> None:
        """Quantise the weight with the observed ranges and drop the observers and the float weight."""
        assert self._float is not None, "frozen already"
        if math.isinf(float(self.input_observer.min_val)):
            raise ValueError(
                f"calibration_batches never reached '{name}' ({type(self).__name__}): its forward did not run, so "
                "its input range is unknown; calibrate with inputs that run every layer"
            )
        weight, bias = self._float
        w_obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
        w_obs(weight)
        w_scale, w_zero = w_obs.calculate_qparams()
        qweight = torch.quantize_per_channel(weight, w_scale.float(), w_zero, 0, torch.qint8)
        in_scale, in_zero = self.input_observer.calculate_qparams()
        out_scale, out_zero = self.output_observer.calculate_qparams()
        self.input_scale.fill_(float(in_scale))
        self.input_zero_point.fill_(int(in_zero))
        self.quantized = self._build(qweight, bias)
        self.quantized.scale, self.quantized.zero_point = float(out_scale), int(out_zero)
        self._float = None
        del self.input_observer, self.output_observer

    def __getstate__(self) -> dict[str, Any]:
        # PyTorch's quantized ConvNd pickles its own state but unpickles without nn.Module.__init__ (no hook dicts,
        # no _modules): keep that state aside and rebuild the module as its __deepcopy__ does.
        state = dict(self.__dict__)
        q = self._modules.get("quantized")
        if isinstance(q, (nnq.Conv1d, nnq.Conv2d, nnq.Conv3d)):
            state["_modules"] = {k: v for k, v in self._modules.items() if k != "quantized"}
            state["_quantized_conv"] = (type(q), q.__getstate__())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        conv = state.pop("_quantized_conv", None)
        super().__setstate__(state)
        if conv is not None:
            cls, conv_state = conv
            q = cls.__new__(cls)
            nn.Module.__init__(q)
            q.__setstate__(conv_state)
            self._modules["quantized"] = q

    def weight(self) -> Tensor:
        """The quantised weight (``torch.qint8``, per output channel)."""
        assert self.quantized is not None, "not frozen yet"
        return self.quantized.weight()

    def extra_repr(self) -> str:
        if self._float is not None:
            return "calibrating"
        return f"input_scale={float(self.input_scale):.4g}, input_zero_point={int(self.input_zero_point)}"


class Int8Conv(_StaticOp):
    """A convolution in int8 (PyTorch's quantized ``ConvNd``) between fp32 tensors: quantise the input per tensor,
    convolve with the per-channel ``qint8`` weight, dequantise the ``quint8`` output.

    ``padding="same"`` with uneven padding and non-zero ``padding_mode`` are applied in fp32 before quantising.
    """

    def __init__(
        self,
        ndim: int,
        weight: Tensor,
        bias: Tensor | None,
        stride: tuple[int, ...],
        padding: tuple[int, ...] | str,
        dilation: tuple[int, ...],
        groups: int,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__(weight, bias)
        self.ndim, self.stride, self.dilation, self.groups = ndim, tuple(stride), tuple(dilation), groups
        self.in_channels, self.out_channels = weight.shape[1] * groups, weight.shape[0]
        self.kernel_size = tuple(weight.shape[2:])
        self.padding_mode = padding_mode
        # The quantized kernels take symmetric integer padding only: the rest is padded in fp32 beforehand.
        pads = self._explicit_padding(padding)
        symmetric = padding_mode == "zeros" and all(lo == hi for lo, hi in pads)
        self.padding = tuple(lo for lo, _ in pads) if symmetric else (0,) * ndim
        self.pre_pad = () if symmetric else tuple(p for lo_hi in reversed(pads) for p in lo_hi)

    @classmethod
    def from_float(cls, conv: nn.Conv1d | nn.Conv2d | nn.Conv3d) -> Int8Conv:
        padding = conv.padding if isinstance(conv.padding, str) else tuple(conv.padding)
        return cls(
            _CONVS[type(conv)], conv.weight, conv.bias, tuple(conv.stride), padding, tuple(conv.dilation),
            conv.groups, conv.padding_mode,
        )  # fmt: skip

    def _explicit_padding(self, padding: tuple[int, ...] | str) -> list[tuple[int, int]]:
        if padding == "valid":
            return [(0, 0)] * self.ndim
        if padding == "same":  # as F.convNd: the odd one goes to the end
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size, strict=True)]
            return [(t // 2, t - t // 2) for t in totals]
        assert not isinstance(padding, str), padding
        return [(p, p) for p in padding]

    def _float_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        x = self._prepare(x)
        return rank(self.ndim).conv_fn(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def _prepare(self, x: Tensor) -> Tensor:
        if not self.pre_pad:
            return x
        return F.pad(x, self.pre_pad, mode="constant" if self.padding_mode == "zeros" else self.padding_mode)

    def _build(self, qweight: Tensor, bias: Tensor | None) -> Any:
        qconv = rank(self.ndim).quantized_conv(
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding, self.dilation,
            self.groups, bias=bias is not None,
        )  # fmt: skip
        qconv.set_weight_bias(qweight, bias)
        return qconv


class Int8Linear(_StaticOp):
    """``nn.Linear`` in int8 (PyTorch's quantized ``Linear``) between fp32 tensors; inputs ``(*, in_features)``."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__(linear.weight, linear.bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def _float_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return F.linear(x, weight, bias)

    def _build(self, qweight: Tensor, bias: Tensor | None) -> Any:
        qlinear = nnq.Linear(self.in_features, self.out_features, bias_=bias is not None)
        qlinear.set_weight_bias(qweight, bias)
        return qlinear


def _strip(layer: nn.Module, names: Iterable[str]) -> dict[str, Tensor]:
    """Take the parameters ``names`` out of ``layer`` (their int8 copies replace them); they read ``None`` there."""
    removed: dict[str, Tensor] = {}
    for name in names:
        param = layer._parameters.pop(name, None)
        if param is not None:
            removed[name] = param
            layer.register_parameter(name, None)
    return removed


class Int8KAConv(nn.Module):
    """A :class:`KAConvNd` whose convolution runs in int8 (:class:`Int8Conv`).

    The features ``[base_act(x), B(squash(x))]`` are computed in fp32 by the original layer (kept as ``layer``
    without its weight), quantised per tensor, convolved in int8, dequantised; norm and activation run in fp32.
    """

    def __init__(self, layer: KAConvNd) -> None:
        super().__init__()
        params = _strip(layer, ("weight", "bias"))
        self.layer = layer
        self.conv = Int8Conv(
            layer.ndim, params["weight"].flatten(1, 2), params.get("bias"), layer.stride, layer.padding,
            layer.dilation, layer.groups,
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        _check_inference(self)
        layer = self.layer
        layer.check_input(x)
        return layer.act(layer.norm(self.conv(layer.features(x))))  # eval: output dropout is the identity


class Int8WavKANConv(nn.Module):
    """A :class:`WavKANConvNd` whose base, wavelet and 1×1 mixing convolutions run in int8 (:class:`Int8Conv`).

    The wavelet maps ψ((x - t) / s) (per output/input channel pair), the norm and the activation stay fp32.
    """

    def __init__(self, layer: WavKANConvNd) -> None:
        super().__init__()
        params = _strip(layer, (*_WAVKAN_WEIGHTS, "bias"))
        self.layer = layer
        nd, geometry, ones = layer.ndim, (layer.stride, layer.padding, layer.dilation), (1,) * layer.ndim
        base = params.get("base_weight")
        self.base_conv = Int8Conv(nd, base, None, *geometry, layer.groups) if base is not None else None
        # One c_in → 1 convolution per output channel, then the grouped 1×1 mix, as the float layer.
        self.wavelet_conv = Int8Conv(nd, params["wavelet_weight"], None, *geometry, layer.out_channels)
        # The layer's bias is added to the mixed output (before the base branch and the norm), as the float layer.
        self.mix_conv = Int8Conv(nd, params["out_weight"], params.get("bias"), ones, (0,) * nd, ones, layer.groups)

    def forward(self, x: Tensor) -> Tensor:
        _check_inference(self)
        layer = self.layer
        layer.check_input(x)
        base = self.base_conv(layer.base_activation(x)) if self.base_conv is not None else None
        b, g, nd = x.shape[0], layer.groups, layer.ndim
        c_in, c_out, spatial, ones = layer.in_channels // g, layer.out_channels // g, x.shape[2:], (1,) * nd
        # As WavKANConvNd._wavelet_branch (eval, fp32): (B, C_out · c_in, *S), output-major.
        t = layer.translation.view(1, g, c_out, c_in, *ones)
        s = safe_scale(layer.scale).view(1, g, c_out, c_in, *ones)
        psi = layer.wavelet((x.view(b, g, 1, c_in, *spatial) - t) / s) * layer.channel_window.view(c_in, *ones)
        z = self.mix_conv(self.wavelet_conv(psi.reshape(b, layer.out_channels * c_in, *spatial)))
        return layer.act(layer.norm(z if base is None else z + base))


# ------------------------------------------------------------------------------------------------ weight-only
def quantize_weight(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric per-output-channel int8: ``(q, scale)`` with ``q = clamp(round(w / scale), -127, 127)`` (``int8``)
    and ``scale = max|w[o]| / 127`` (fp32, ``(C_out,)``); ``q · scale`` approximates ``w``."""
    absmax = weight.detach().float().flatten(1).abs().amax(1)
    scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))
    view = (-1,) + (1,) * (weight.dim() - 1)
    q = torch.round(weight.detach().float() / scale.view(view)).clamp_(-127, 127).to(torch.int8)
    return q, scale


class Int8WeightOnly(nn.Module):
    """Wraps a module whose weights ``names`` are stored as ``int8`` (buffers ``<name>_int8``) with per-output-channel
    fp32 scales (``<name>_scale``); each forward dequantises them and runs the module's own forward on them."""

    def __init__(self, module: nn.Module, names: Iterable[str]) -> None:
        super().__init__()
        params = _strip(module, names)
        self.names = tuple(params)
        self.dtypes = {n: p.dtype for n, p in params.items()}
        for name, param in params.items():
            q, scale = quantize_weight(param)
            self.register_buffer(f"{name}_int8", q)
            self.register_buffer(f"{name}_scale", scale)
        self.module = module

    def dequantized(self, name: str) -> Tensor:
        """The float weight ``name`` rebuilt from its int8 values and scales."""
        q, scale = getattr(self, f"{name}_int8"), getattr(self, f"{name}_scale")
        return (q.to(scale.dtype) * scale.view((-1,) + (1,) * (q.dim() - 1))).to(self.dtypes[name])

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        _check_inference(self)
        return functional_call(self.module, {n: self.dequantized(n) for n in self.names}, args, kwargs)

    def extra_repr(self) -> str:
        return f"int8 weights: {', '.join(self.names)}"


# ------------------------------------------------------------------------------------------------ model level
_WRAPPERS = (Int8Conv, Int8Linear, Int8KAConv, Int8WavKANConv, Int8WeightOnly)


def _opaque() -> tuple[type[nn.Module], ...]:
    """Modules that read their children's weights directly: their sub-trees stay float."""
    from .layers.peft import PEFTKAGNConv
    from .models.heads import MatryoshkaHead

    return (PEFTKAGNConv, MatryoshkaHead, nn.MultiheadAttention)


def _replacement(module: nn.Module, mode: str) -> nn.Module | None:
    if mode == "weight_only":
        names: tuple[str, ...] = ()
        if isinstance(module, KAConvNd) or type(module) in (*_CONVS, nn.Linear):
            names = ("weight",)
        elif isinstance(module, WavKANConvNd):
            names = _WAVKAN_WEIGHTS
        elif isinstance(module, BottleneckKAConvNd):
            names = ("base_weight", "squeeze_weight", "expand_weight")
        return Int8WeightOnly(module, names) if names else None
    if isinstance(module, KAConvNd) and type(module).forward is KAConvNd.forward:
        return Int8KAConv(module)
    if isinstance(module, WavKANConvNd) and type(module).forward is WavKANConvNd.forward:
        return Int8WavKANConv(module)
    if type(module) in _CONVS:
        return Int8Conv.from_float(module)  # type: ignore[arg-type]
    if type(module) is nn.Linear:
        return Int8Linear(module)
    return None


def _swap(module: nn.Module, mode: str, opaque: tuple[type[nn.Module], ...], done: dict[int, nn.Module]) -> None:
    """Replace quantisable descendants of ``module`` in place; ``done`` maps ``id(original)`` to its wrapper (shared
    modules get one shared wrapper)."""
    for name, child in list(module._modules.items()):
        if child is None or isinstance(child, (*_WRAPPERS, *opaque)):
            continue
        if id(child) not in done:
            _swap(child, mode, opaque, done)  # children first: a bottleneck's inner KA conv
            wrapper = _replacement(child, mode)
            if wrapper is None:
                continue
            done[id(child)] = wrapper
        module._modules[name] = done[id(child)]


def _batches(calibration_batches: Any) -> Iterator[Tensor]:
    if isinstance(calibration_batches, Tensor):
        yield calibration_batches
        return
    if calibration_batches is None or not isinstance(calibration_batches, Iterable):
        raise TypeError(
            "calibration_batches must be a Tensor or an iterable of Tensors or (input, target) tuples (a "
            f"DataLoader), got {type(calibration_batches).__name__}"
        )
    for batch in calibration_batches:
        x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
        if not isinstance(x, Tensor):
            raise TypeError(f"calibration_batches must yield Tensors or (input, ...) tuples, got {type(x).__name__}")
        yield x


def quantize_int8(
    model: nn.Module,
    calibration_batches: Tensor | Iterable[Any] | None = None,
    *,
    mode: QuantMode = "static",
    inplace: bool = False,
) -> nn.Module:
    """Int8 post-training quantisation of ``model``'s KA convolutions, convolutions and linear layers.

    Args:
        model: the float model (``"static"``: float32, on CPU).
        calibration_batches (``"static"`` only): a Tensor (one batch) or an iterable of Tensors or of
            ``(input, target, …)`` tuples, e.g. a few batches of the training set
            (``itertools.islice(loader, 8)``). The model runs on each in eval mode and the observed ranges set the
            activation scales. Ignored by ``"weight_only"``.
        mode: ``"static"`` (int8 compute on CPU) or ``"weight_only"`` (int8 storage, float compute, any device);
            see the module docstring for what each quantises.
        inplace: convert ``model``'s sub-modules in place instead of a deep copy's (use the returned module all
            the same: a bare layer is replaced, not converted; an error midway leaves ``model`` half converted).

    Returns:
        The quantised model, in eval mode (it refuses to run in training mode).

    Examples:
        >>> from kanconvs import create_model
        >>> model = create_model("simple_kagn_4", widths=[8, 16, 16, 16])
        >>> batches = [torch.randn(4, 1, 12, 12) for _ in range(2)]
        >>> qmodel = quantize_int8(model, batches)
        >>> qmodel(torch.randn(2, 1, 12, 12)).shape
        torch.Size([2, 10])
        >>> model_size_bytes(qmodel) < model_size_bytes(model) / 3
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if mode == "static":
        engine = torch.backends.quantized.engine
        if engine not in torch.backends.quantized.supported_engines or engine == "none":
            raise RuntimeError(f"mode='static' needs a quantized engine, torch.backends.quantized.engine is {engine!r}")
        tensors = [*model.parameters(), *model.buffers()]
        devices = sorted({str(t.device) for t in tensors if t.device.type != "cpu"})
        if devices:
            raise ValueError(
                f"mode='static' runs on CPU only (PyTorch's int8 kernels), but model has tensors on {devices}: "
                "move it with model.cpu(), or use mode='weight_only'"
            )
        dtypes = sorted(
            {str(p.dtype) for p in model.parameters() if p.is_floating_point() and p.dtype != torch.float32}
        )
        if dtypes:
            raise TypeError(
                f"mode='static' needs a float32 model, got parameters of dtype {dtypes}: call model.float()"
            )
        if calibration_batches is None:
            raise ValueError(
                "mode='static' needs calibration_batches (a few input batches to observe ranges), got None"
            )
    target = model if inplace else copy.deepcopy(model)
    target.eval()
    if isinstance(target, (*_WRAPPERS, *_opaque())):
        raise ValueError(f"model is a {type(target).__name__}: nothing to quantise (wrap it in an nn.Sequential?)")
    root = nn.Sequential(target)  # a holder, so that a bare layer as model is replaced too
    wrappers: dict[int, nn.Module] = {}
    _swap(root, mode, _opaque(), wrappers)
    root.eval()  # the new wrappers too
    if not wrappers:
        raise ValueError(
            f"model ({type(model).__name__}) has no module to quantise: expected KAConvNd, WavKANConvNd, "
            "nn.Conv1d/2d/3d or nn.Linear layers (already quantised ones are skipped)"
        )
    for module in target.modules():  # int8 weights now: save_pretrained must not describe them as the float model
        module.__dict__.pop("pretrained_cfg", None)
    if mode == "static":
        seen = 0
        with torch.no_grad():
            for x in _batches(calibration_batches):
                root(x.cpu())
                seen += 1
        if not seen:
            raise ValueError("calibration_batches is empty: mode='static' needs at least one input batch")
        with warnings.catch_warnings():
            # PyTorch warns once per process that quantized tensors are deprecated (said in the module docstring);
            # the first quantized tensor is made here, so this is where the notice would otherwise be printed
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
            for name, op in root.named_modules():
                if isinstance(op, _StaticOp) and op._float is not None:
                    op.freeze(name.removeprefix("0.") or type(model).__name__)
    return root[0]


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of every tensor in ``model.state_dict()``: parameters, persistent buffers and the int8 weights of
    quantized modules (one byte per value, plus their per-channel scales and zero points)."""

    def size(value: Any) -> int:
        if isinstance(value, (tuple, list)):
            return sum(size(v) for v in value)
        if not isinstance(value, Tensor):
            return 0
        n = value.numel() * value.element_size()
        if value.is_quantized and value.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            n += size(value.q_per_channel_scales()) + size(value.q_per_channel_zero_points())
        return n

    return sum(size(v) for v in model.state_dict().values())
