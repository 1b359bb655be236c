"""Model registry: ``register_model``, ``create_model``, ``list_models`` (timm-style)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch  # noqa: F401  (used by the docstring example)
from torch import nn

from .._registry import Registry, unexpected_user_keyword

__all__ = ["create_model", "list_models", "register_model"]

_MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Register a model entry point under its function name (e.g. ``simple_kagn_4``)."""
    _MODELS.add(fn.__name__, fn)
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"simple_*_8"``), sorted."""
    return sorted(name for name in _MODELS if fnmatch.fnmatchcase(name, pattern))


def create_model(name: str, pretrained: str | os.PathLike[str] | bool | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``kwargs`` override the entry point's configuration.

    Args:
        name: a registered name (see :func:`list_models`).
        pretrained: a directory written by :func:`~kanconvs.models.save_pretrained` or a ``.safetensors`` file
            whose weights are loaded (strictly) into the new model; ``None`` or ``False``: random initialisation.
            There are no downloadable weights, so ``True`` is refused.
        kwargs: configuration overrides; recorded, with ``name``, as ``model.pretrained_cfg``.

    Examples:
        >>> model = create_model("simple_kagn_4", num_classes=10, in_channels=1)
        >>> model(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    factory = _MODELS.get(name)
    weights = None
    if pretrained is True:
        raise ValueError(
            f"pretrained=True: kanconvs has no downloadable weights for {name!r}; give pretrained= a directory "
            "written by save_pretrained or a .safetensors / .pt file"
        )
    if pretrained is not None and pretrained is not False:
        from ._hub import _find_weights

        weights = _find_weights(pretrained)  # a bad or missing path fails before the model is built
    try:
        model = factory(**kwargs)
    except TypeError as err:  # raised deep inside a layer: name the model and the option the user passed
        if (unknown := unexpected_user_keyword(err, kwargs)) is None:
            raise
        raise TypeError(
            f"model {name!r} does not take the option {unknown!r} (passed as a keyword argument; {str(err).strip()})"
        ) from None
    model.pretrained_cfg = {"architecture": name, "kwargs": kwargs}  # type: ignore[assignment]
    if weights is not None:
        from ._hub import load_weights

        load_weights(model, weights)
    return model
