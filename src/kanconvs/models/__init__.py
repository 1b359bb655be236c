"""Models built from kanconvs layers."""

from .kan_mlp import KANMLP, create_kan_mlp

__all__ = ["KANMLP", "create_kan_mlp"]
