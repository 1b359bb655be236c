"""Models built from kanconvs layers, and the model registry."""

from ._hub import from_pretrained, load_weights, save_pretrained
from ._registry import create_model, list_models, register_model
from .baselines import SimpleKANet
from .kan_mlp import KANMLP, create_kan_mlp

__all__ = [
    "KANMLP",
    "SimpleKANet",
    "create_kan_mlp",
    "create_model",
    "from_pretrained",
    "list_models",
    "load_weights",
    "register_model",
    "save_pretrained",
]
