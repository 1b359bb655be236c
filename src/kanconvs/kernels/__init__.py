"""Fused kernels: the basis pass (squash + basis + base branch) as one autograd node, Triton on CUDA."""

from .features import (
    FeaturePlan,
    base_code,
    compute_dtype,
    eager_only,
    fused_features,
    get_backend,
    squash_code,
    use_backend,
)
from .triton_lang import HAS_TRITON

__all__ = [
    "HAS_TRITON",
    "FeaturePlan",
    "base_code",
    "compute_dtype",
    "eager_only",
    "fused_features",
    "get_backend",
    "squash_code",
    "use_backend",
]
