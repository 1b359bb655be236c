"""Triton, when it is installed: ``jit``, ``tl`` and ``HAS_TRITON`` for the kernel skeleton and the basis files.

Without Triton (CPU-only wheels on some platforms) ``jit`` returns the function unchanged and ``tl`` is ``None``:
the device functions in the basis files are then never called, and every basis runs on the PyTorch path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HAS_TRITON", "jit", "tl", "triton"]


try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # pragma: no cover - Triton ships with the Linux torch wheels
    triton = None
    tl = None
    HAS_TRITON = False


def jit(fn: Callable[..., Any]) -> Any:
    """``triton.jit`` where Triton exists; the plain function otherwise."""
    if not HAS_TRITON:
        return fn
    return triton.jit(fn)
