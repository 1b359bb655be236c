"""torch-conv-kan's ``models.automodel``: :func:`AutoKAN` and :func:`TinyAutoKAGN`, factory functions that return the
network itself (the reference's were wrappers holding ``self.model``). The reference bugs fixed and the defaults
kept: docs/migrating.md, "Differences, module by module".
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from .._generate import Values, exports, reference_function, reference_signature

#: AutoKAN's ``model_name`` → the compat factory it builds (the reference's names; most are the factory's own).
_AUTOKAN_REGISTRY: dict[str, str] = {
    "ukanet18": "ukanet_18", "ukalnet18": "ukalnet_18", "ukagnet18": "ukagnet_18", "ukacnet18": "ukacnet_18",
    **{name: name for name in (
        "fast_ukanet_18", "u2kanet", "u2kalnet", "u2kagnet", "u2kacnet", "fast_u2kanet", "u2kanet_small",
        "u2kalnet_small", "u2kagnet_small", "u2kacnet_small", "fast_u2kanet_small", "densekanet121",
        "fast_densekanet121", "densekagnet121", "densekalnet121", "densekacnet121", "densekalnet161", "densekalnet169",
        "densekalnet201", "densekagnet161", "densekagnet169", "densekagnet201", "vggkan", "fast_vggkan", "vgg_wav_kan",
        "vggkaln", "vggkacn", "vggkagn", "reskagnet18", "reskagnet50", "reskagnet101", "reskagnet152",
    )},
}  # fmt: skip

#: Defaults of the reference AutoKAN that differ from (some) factory defaults; applied when the factory takes them.
_AUTOKAN_DEFAULTS: dict[str, Any] = {
    "affine": True,
    "dropout": 0.0,
    "dropout_linear": 0.0,
    "base_activation": "gelu",
    "grid_range": (-1, 1),
    "norm_layer": "instance2d",
}

_ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU, "prelu": nn.PReLU}
_NORMS: dict[str, type[nn.Module]] = {"instance2d": nn.InstanceNorm2d, "batchnorm2d": nn.BatchNorm2d}


def _factory(name: str) -> Callable[..., nn.Module]:
    """The factory ``name`` as its module holds it now (looked up lazily: the package loads this module first)."""
    exported = getattr(importlib.import_module(__package__ or ""), name)
    return getattr(sys.modules[exported.__module__], name)


def _resolve(value: Any, table: dict[str, type[nn.Module]], what: str) -> Any:
    """Map a reference config string ('gelu', 'batchnorm2d' …) to its class; pass anything else through."""
    if isinstance(value, str):
        try:
            return table[value.lower()]
        except KeyError:
            raise ValueError(f"unknown {what} {value!r}; valid: {sorted(table)}") from None
    return value


def _call(factory: Callable[..., nn.Module], name: str, args: tuple[Any, ...], options: dict[str, Any]) -> nn.Module:
    accepted = reference_signature(name).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = [p for p in accepted if p not in ("input_channels", "num_classes")]
        raise TypeError(f"{name}: unexpected option(s) {unknown}; this model takes {valid}")
    if "base_activation" in options:
        options["base_activation"] = _resolve(options["base_activation"], _ACTIVATIONS, "base_activation")
    if "norm_layer" in options:
        options["norm_layer"] = _resolve(options["norm_layer"], _NORMS, "norm_layer")
    if "grid_range" in options:
        options["grid_range"] = list(options["grid_range"])
    return factory(*args, **options)


def AutoKAN(**kwargs: Any) -> nn.Module:
    """Build the torch-conv-kan model named ``model_name`` and return it (an ``nn.Module``).

    Required keywords: ``model_name`` (one of the reference names, e.g. ``'vggkagn'``, ``'reskagnet18'``,
    ``'densekagnet169'``, ``'u2kagnet_small'``, ``'ukanet18'``, ``'fast_ukanet_18'``), ``input_channels`` and
    ``num_classes``. Every other keyword is an option of the matching compat factory (``groups``, ``degree``,
    ``width_scale``, ``vgg_type``, ``growth_rate`` …). ``base_activation`` may be ``'gelu' | 'silu' | 'relu' |
    'prelu'`` or a class, ``norm_layer`` ``'instance2d' | 'batchnorm2d'`` or a class.

    The returned object *is* the model (the reference's was a wrapper holding ``self.model``).

    Raises:
        TypeError: a required keyword is missing, or an option is not taken by the chosen model.
        ValueError: unknown ``model_name``, activation or norm string.
    """
    options = dict(kwargs)
    missing = [key for key in ("model_name", "input_channels", "num_classes") if key not in options]
    if missing:
        raise TypeError(f"AutoKAN: missing required keyword(s) {missing}")
    model_name = options.pop("model_name")
    input_channels = options.pop("input_channels")
    num_classes = options.pop("num_classes")
    if model_name not in _AUTOKAN_REGISTRY:
        raise ValueError(f"AutoKAN: unknown model_name {model_name!r}; valid names: {sorted(_AUTOKAN_REGISTRY)}")
    factory_name = _AUTOKAN_REGISTRY[model_name]
    accepted = reference_signature(factory_name).parameters
    for key, default in _AUTOKAN_DEFAULTS.items():
        if key in accepted:
            options.setdefault(key, default)
    return _call(_factory(factory_name), factory_name, (input_channels, num_classes), options)


_TINY_MODEL_TYPES = ("VGG", "DenseNet")


def _tiny(v: Values) -> nn.Module:
    model_type, is_moe, kwargs = v.pop("model_type"), v.pop("is_moe"), v.pop("kwargs")
    args = (v.pop("input_channels"), v.pop("num_classes"))
    moe = {n: v.pop(n) for n in ("num_experts", "noisy_gating", "k")}
    width_scale = v.pop("width_scale")  # the DenseNets have none, as in the reference
    if model_type == "VGG":
        name = "moe_vggkagn_bn" if is_moe else "vggkagn_bn"
        options = {**v, **(moe if is_moe else {}), "width_scale": width_scale, "expected_feature_shape": (1, 1)}
        return _call(_factory(name), name, args, {**options, **kwargs})
    if model_type == "DenseNet":
        name = "tiny_densekagnet_moebn" if is_moe else "tiny_densekagnet_bn"
        return _call(_factory(name), name, args, {**v, **(moe if is_moe else {}), **kwargs})
    if model_type == "ResNet":
        raise ValueError(
            "TinyAutoKAGN: model_type 'ResNet' is not supported (it built nothing in torch-conv-kan); "
            f"valid model types: {list(_TINY_MODEL_TYPES)}"
        )
    raise ValueError(f"TinyAutoKAGN: unknown model_type {model_type!r}; valid model types: {list(_TINY_MODEL_TYPES)}")


TinyAutoKAGN = reference_function(
    "TinyAutoKAGN",
    _tiny,
    lambda v: {"v": v},
    module=__name__,
    doc="""Build a bottleneck-KAGN network for the Tiny-ImageNet experiments and return it (an ``nn.Module``).

    ``model_type='VGG'``: ``moe_vggkagn_bn`` when ``is_moe`` else ``vggkagn_bn`` (extra keywords ``vgg_type``,
    ``head_type``, ``last_attention``, ``sa_inner_projection``, ``expected_feature_shape``, default ``(1, 1)``).
    ``model_type='DenseNet'``: ``tiny_densekagnet_moebn`` when ``is_moe`` else ``tiny_densekagnet_bn`` (extra
    keywords ``growth_rate``, ``num_init_features``; no ``width_scale``, as in the reference). ``num_experts``,
    ``noisy_gating`` and ``k`` only apply when ``is_moe``; ``norm_layer`` may be ``'instance2d' | 'batchnorm2d'``.

    Raises:
        ValueError: ``model_type`` is not ``'VGG'`` or ``'DenseNet'`` (``'ResNet'`` built nothing in the reference),
            or an unknown norm string.
        TypeError: an extra keyword not taken by the chosen model.
    """,
)

__all__ = exports(globals())
