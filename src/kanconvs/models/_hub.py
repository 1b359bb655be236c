"""Save and load models as a local directory in the Hugging Face Hub layout (``config.json`` + safetensors)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["from_pretrained", "load_weights", "save_pretrained"]

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def _safetensors() -> Any:
    try:
        import safetensors.torch as st
    except ImportError as err:  # an optional dependency: say how to get it
        raise ImportError("saving and loading weights needs safetensors: pip install 'kanconvs[hub]'") from err
    return st


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same directory, then rename: no half-written file is ever seen."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_pretrained(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (architecture and keyword arguments) to ``directory``.

    The model must come from :func:`~kanconvs.create_model` (it records its configuration), so that
    :func:`from_pretrained` can rebuild it.
    """
    cfg = getattr(model, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or "architecture" not in cfg:
        raise ValueError("model has no pretrained_cfg: build it with kanconvs.create_model(name, ...) to save it")
    st = _safetensors()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(out / WEIGHTS_NAME, lambda tmp: st.save_file(state, tmp, metadata={"format": "pt"}))
    text = json.dumps(cfg, indent=2, sort_keys=True)
    _atomic_write(out / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return out


def load_weights(model: nn.Module, source: str | os.PathLike[str]) -> nn.Module:
    """Load weights from a directory written by :func:`save_pretrained` or a ``.safetensors`` file (strict)."""
    path = Path(source)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no weights at {path} (expected a directory with {WEIGHTS_NAME} or a .safetensors file)"
        )
    state = _safetensors().load_file(str(path))
    model.load_state_dict(state)
    return model


def from_pretrained(directory: str | os.PathLike[str], **overrides: Any) -> nn.Module:
    """Rebuild a model saved by :func:`save_pretrained` and load its weights. ``overrides`` replace saved kwargs."""
    from ._registry import create_model

    cfg_path = Path(directory) / CONFIG_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {directory}: not a directory written by save_pretrained")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    kwargs = {**cfg.get("kwargs", {}), **overrides}
    return create_model(cfg["architecture"], pretrained=directory, **kwargs)
