"""Save and load models as a local directory in the Hugging Face Hub layout (``config.json`` + safetensors)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._io import atomic_write

__all__ = ["from_pretrained", "load_weights", "read_state_dict", "save_pretrained", "unwrap_model"]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
TORCH_WEIGHTS_NAMES = ("pytorch_model.bin", "model.pt", "model.pth")


def _safetensors() -> Any:
    try:
        import safetensors.torch as st
    except ImportError as err:  # an optional dependency: say how to get it
        raise ImportError("saving and loading weights needs safetensors: pip install 'kanconvs[hub]'") from err
    return st


CONFIG_DIGEST_KEY = "kanconvs_config_sha256"


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside ``torch.compile`` (``_orig_mod``) and ``DataParallel`` / DDP / FSDP (``module``) wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module) and type(model).__name__ in _PARALLEL_WRAPPERS:
            inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


_PARALLEL_WRAPPERS = frozenset({"DataParallel", "DistributedDataParallel", "FullyShardedDataParallel"})


def _config_text(model: nn.Module) -> str:
    """``config.json``'s text for ``model`` as it is now (its current ``num_classes``); ``ValueError`` naming a
    keyword argument that JSON cannot store."""
    cfg = getattr(model, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or "architecture" not in cfg:
        raise ValueError("model has no pretrained_cfg: build it with kanconvs.create_model(name, ...) to save it")
    kwargs = dict(cfg.get("kwargs", {}))
    num_classes = getattr(model, "num_classes", None)
    if isinstance(num_classes, int) and not isinstance(num_classes, bool):  # after reset_classifier(n)
        kwargs["num_classes"] = num_classes
    for key, value in kwargs.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"cannot save {cfg['architecture']!r}: its keyword argument {key}={value!r} cannot be stored in "
                f"{CONFIG_NAME} ({err}); build the model with JSON values (strings, numbers, lists, dicts) instead"
            ) from None
    return json.dumps({**cfg, "kwargs": kwargs}, indent=2, sort_keys=True) + "\n"


def save_pretrained(
    model: nn.Module, directory: str | os.PathLike[str], state_dict: Mapping[str, Tensor] | None = None
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (architecture and keyword arguments) to ``directory``.

    The model must come from :func:`~kanconvs.create_model` (it records its configuration), so that
    :func:`from_pretrained` can rebuild it; a ``torch.compile`` or ``DistributedDataParallel`` wrapper is looked
    through, and the current ``num_classes`` (after ``reset_classifier``) is recorded. ``state_dict`` replaces
    ``model.state_dict()`` (e.g. the full weights gathered from a sharded FSDP model).

    Both files are checked before either is written and each replaces its old version atomically; the weights record
    a digest of the config, so :func:`from_pretrained` refuses a pair left mismatched by an interrupted save.
    """
    model = unwrap_model(model)
    text = _config_text(model)
    st = _safetensors()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    source = model.state_dict() if state_dict is None else state_dict
    # a compiled submodule's keys carry "_orig_mod." (torch.compile): save the plain module's keys
    state = {k.replace("_orig_mod.", ""): v.detach().contiguous() for k, v in source.items()}
    metadata = {"format": "pt", CONFIG_DIGEST_KEY: hashlib.sha256(text.encode()).hexdigest()}

    def write_config(tmp: str) -> None:  # the config's temporary file, then the weights, then the config's rename
        Path(tmp).write_text(text, encoding="utf-8")
        atomic_write(out / WEIGHTS_NAME, lambda wtmp: st.save_file(state, wtmp, metadata=metadata))

    atomic_write(out / CONFIG_NAME, write_config)
    return out


def _check_source(source: object) -> Path:
    """``source`` as a path: ``TypeError`` / ``ValueError`` naming ``pretrained`` for what cannot be one."""
    if isinstance(source, bool) or not isinstance(source, str | os.PathLike):
        raise TypeError(
            f"pretrained must be a path (a directory written by save_pretrained, or a .safetensors / .pt file), "
            f"got {source!r}"
        )
    if not os.fspath(source):
        raise ValueError("pretrained must be a path or None, got an empty path ''")
    return Path(source)


def _find_weights(source: str | os.PathLike[str]) -> Path:
    path = _check_source(source)
    if path.is_dir():
        candidates = [path / name for name in (WEIGHTS_NAME, *TORCH_WEIGHTS_NAMES)]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    if not path.is_file():
        raise FileNotFoundError(
            f"no weights at {path} (expected a directory with {WEIGHTS_NAME} or {TORCH_WEIGHTS_NAMES[0]}, or a "
            ".safetensors / .bin / .pt / .pth file)"
        )
    return path


def read_state_dict(source: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a state dict from a safetensors file, a ``torch.save`` file (loaded with ``weights_only=True``), or a
    directory holding ``model.safetensors`` / ``pytorch_model.bin``. A checkpoint dict that wraps the weights under
    ``"state_dict"`` or ``"model"`` is unwrapped."""
    path = _find_weights(source)
    st = _safetensors() if path.suffix == ".safetensors" else None
    try:
        state: Any = st.load_file(str(path)) if st else torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # safetensors raises its own error type, unpickling many kinds
        raise ValueError(f"cannot read weights from {path}: {err}") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


#: ``filter(state_dict, model) -> state_dict`` functions applied by :func:`load_weights` before loading (timm's
#: ``checkpoint_filter_fn``): other layouts of the same weights. :mod:`kanconvs.convert` registers the one for
#: torch-conv-kan checkpoints; the models themselves know nothing of other layouts.
CHECKPOINT_FILTERS: list[Callable[[dict[str, Any], nn.Module], dict[str, Any]]] = []


def register_checkpoint_filter(fn: Callable[[dict[str, Any], nn.Module], dict[str, Any]]) -> None:
    """Have :func:`load_weights` pass every state dict through ``fn`` (once, in registration order)."""
    if fn not in CHECKPOINT_FILTERS:
        CHECKPOINT_FILTERS.append(fn)


def load_weights(model: nn.Module, source: str | os.PathLike[str]) -> nn.Module:
    """Load weights (strictly) from :func:`read_state_dict`'s sources into ``model``, after the registered
    :data:`CHECKPOINT_FILTERS` (torch-conv-kan layouts are converted by
    :func:`kanconvs.convert.convert_reference_state_dict`)."""
    state_dict = dict(read_state_dict(source))
    for fn in CHECKPOINT_FILTERS:
        state_dict = fn(state_dict, model)
    model.load_state_dict(state_dict)
    return model


def from_pretrained(directory: str | os.PathLike[str], **overrides: Any) -> nn.Module:
    """Rebuild a model saved by :func:`save_pretrained` and load its weights. ``overrides`` replace saved kwargs."""
    from ._registry import create_model

    cfg_path = Path(directory) / CONFIG_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {directory}: not a directory written by save_pretrained")
    raw = cfg_path.read_bytes()
    cfg = json.loads(raw.decode("utf-8"))
    if not isinstance(cfg, dict) or "architecture" not in cfg:
        raise ValueError(
            f"{cfg_path} has no 'architecture' entry, so it was not written by save_pretrained (e.g. a torch-conv-kan "
            "Hub snapshot): build the model yourself and load the weights, e.g. "
            "create_model('vggkagn11_v4', pretrained=directory)"
        )
    weights = _find_weights(directory)
    if weights.suffix == ".safetensors":
        with _safetensors().safe_open(str(weights), "pt") as f:
            digest = (f.metadata() or {}).get(CONFIG_DIGEST_KEY)
        if digest is not None and digest != hashlib.sha256(raw).hexdigest():
            raise ValueError(
                f"{cfg_path} is not the config {weights.name} was saved with (an interrupted or partial "
                "save_pretrained?): save the model again"
            )
    kwargs = {**cfg.get("kwargs", {}), **overrides}
    return create_model(cfg["architecture"], pretrained=directory, **kwargs)
