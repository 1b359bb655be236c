r"""Grad-CAM (Selvaraju et al., 2017) for image classifiers: where in the image the evidence for a class lies.

For feature maps ``A_k`` of a layer and the score ``y_c`` of class ``c``:
``w_k = mean_{h,w} ∂y_c / ∂A_k``, ``cam = ReLU(Σ_k w_k A_k)``, upsampled bilinearly to the input size and scaled
to [0, 1] per image.

Examples:
    >>> import kanconvs
    >>> model = kanconvs.create_model("simple_kagn_4", widths=(4, 8), strides=(1, 2), num_classes=3)
    >>> grad_cam(model, torch.randn(2, 1, 16, 16)).shape
    torch.Size([2, 16, 16])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers._conv_base import ConvBase

__all__ = ["default_gradcam_layer", "grad_cam", "overlay_gradcam", "plot_gradcam"]

Target = int | Sequence[int] | Tensor | None


def default_gradcam_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """``(name, module)`` of the last 2-D convolution (``nn.Conv2d`` or a KA convolution) in registration order."""
    found = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) or (isinstance(m, ConvBase) and m.ndim == 2)
    ]
    if not found:
        raise ValueError(f"{type(model).__name__} has no 2-D convolution: pass layer= (a module or its name)")
    return found[-1]


def _main_output(output: Any) -> Tensor:
    """The main prediction of a model that may return several (the first, as the trainer does)."""
    out = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(out, Tensor) or out.dim() < 2:
        raise ValueError(f"the model must return logits (B, classes, …), got {type(out).__name__}")
    return out


def _targets(target: Target, scores: Tensor) -> Tensor:
    b, classes = scores.shape
    if target is None:
        return scores.argmax(dim=1)
    t = torch.as_tensor(target, device=scores.device).long().flatten()
    t = t.expand(b) if t.numel() == 1 else t
    if t.numel() != b:
        raise ValueError(f"target must be one class or one per image ({b}), got {t.numel()}")
    if bool(((t < 0) | (t >= classes)).any()):
        raise ValueError(f"target classes must be in [0, {classes}), got {t.tolist()}")
    return t


def _activations_and_scores(model: nn.Module, x: Tensor, layer: nn.Module | str | None) -> tuple[Tensor, Tensor]:
    """The feature maps (a leaf that requires grad) and the class scores computed from them."""
    forward_features, forward_head = getattr(model, "forward_features", None), getattr(model, "forward_head", None)
    if layer is None and callable(forward_features) and callable(forward_head):
        with torch.no_grad():  # only the head's gradient is needed: no graph through the features
            features = forward_features(x)
        if isinstance(features, Tensor) and features.dim() == 4:
            acts = features.detach().requires_grad_(True)
            return acts, _scores(forward_head(acts))
    if layer is None:
        module = default_gradcam_layer(model)[1]
    elif isinstance(layer, str):
        modules = dict(model.named_modules())
        if layer not in modules:
            raise ValueError(f"no module named {layer!r} in {type(model).__name__}")
        module = modules[layer]
    else:
        module = layer
    captured: list[Tensor] = []

    def hook(_: nn.Module, __: Any, output: Any) -> Tensor:
        if not isinstance(output, Tensor) or output.dim() != 4:
            raise ValueError(f"Grad-CAM needs a layer with 4-D output maps, got {type(module).__name__}")
        # A leaf: the backward pass stops here, and later in-place ops (ReLU(inplace=True)) modify only the copy.
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()

    handle = module.register_forward_hook(hook)
    try:
        scores = _scores(model(x))
    finally:
        handle.remove()
    if not captured:
        raise ValueError(f"the layer {type(module).__name__} was not called in the forward pass")
    return captured[-1], scores


def _scores(output: Any) -> Tensor:
    logits = _main_output(output)
    # Segmentation maps: a class's score is the sum of its logits over the image.
    return logits.flatten(2).sum(-1) if logits.dim() > 2 else logits


def grad_cam(model: nn.Module, x: Tensor, target: Target = None, layer: nn.Module | str | None = None) -> Tensor:
    """Grad-CAM heatmaps ``(B, H, W)`` in [0, 1] for images ``x`` ``(B, C, H, W)``.

    Args:
        model: a classifier (logits ``(B, classes)``; a tuple's first element; segmentation maps are summed).
        x: the preprocessed input batch.
        target: class(es) to explain: one for every image, one per image, or ``None`` for each image's top class.
        layer: the layer whose output maps are weighted (a module or its ``named_modules`` name). Default: for
            models with ``forward_features``/``forward_head`` (the VGG-KAN and other timm-style classifiers), the
            feature maps between them (the last block before the pooling head); otherwise the last 2-D convolution
            (:func:`default_gradcam_layer`).

    The model runs in eval mode; its training flags are restored, hooks removed, and no ``.grad`` is written to
    its parameters. Images whose map is constant (e.g. no positive evidence) get zeros.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be a batch of images (B, C, H, W), got shape {tuple(x.shape)}")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.enable_grad():
            acts, scores = _activations_and_scores(model, x, layer)
            chosen = _targets(target, scores)
            (grads,) = torch.autograd.grad(scores.gather(1, chosen[:, None]).sum(), acts)
    finally:
        for module, mode in modes:
            module.training = mode
    with torch.no_grad():
        weights = grads.mean(dim=(2, 3), keepdim=True)  # one weight per channel and image
        cam = F.relu((weights * acts).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        lo = cam.amin(dim=(1, 2), keepdim=True)
        span = cam.amax(dim=(1, 2), keepdim=True) - lo
        return torch.where(span > 0, (cam - lo) / span.clamp_min(1e-12), torch.zeros_like(cam))


def _jet(t: Tensor) -> Tensor:
    """The jet colormap (blue → cyan → yellow → red) of ``t`` in [0, 1]: ``(3, *t.shape)``."""
    return torch.stack([(1.5 - (4 * t - c).abs()).clamp(0, 1) for c in (3.0, 2.0, 1.0)])


def overlay_gradcam(image: Tensor, cam: Tensor, alpha: float = 0.5) -> Tensor:
    """Blend a jet-coloured ``cam`` ``(H, W)`` over ``image`` ``(C, H, W)`` in [0, 1] (C = 1 or 3): ``(3, H, W)``."""
    if image.dim() != 3 or image.shape[0] not in (1, 3) or image.shape[1:] != cam.shape:
        raise ValueError(f"expected image (1 or 3, H, W) and cam (H, W), got {tuple(image.shape)}, {tuple(cam.shape)}")
    rgb = image.detach().float().clamp(0, 1).expand(3, *cam.shape)
    return (1 - alpha) * rgb + alpha * _jet(cam.detach().float().clamp(0, 1))


def plot_gradcam(image: Tensor, cam: Tensor, title: str | None = None, alpha: float = 0.5) -> Any:
    """A matplotlib ``Figure``: the image, the Grad-CAM heatmap and their overlay (``image`` in [0, 1])."""
    from .functions import _figure_class

    fig = _figure_class()(figsize=(9.0, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    shown = image.detach().float().clamp(0, 1).cpu()
    heatmap = cam.detach().float().cpu()
    gray = shown.shape[0] == 1
    pixels = (shown[0] if gray else shown.permute(1, 2, 0)).numpy()
    axes[0].imshow(pixels, cmap="gray" if gray else None, vmin=0, vmax=1)
    heat = axes[1].imshow(heatmap.numpy(), cmap="jet", vmin=0, vmax=1)
    fig.colorbar(heat, ax=axes[1], shrink=0.8)
    axes[2].imshow(overlay_gradcam(shown, heatmap, alpha).permute(1, 2, 0).numpy())
    for ax, name in zip(axes, ("input", "Grad-CAM", "overlay"), strict=True):
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
