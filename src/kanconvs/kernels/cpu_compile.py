"""Inductor-compiled CPU passes, shared per configuration, with a fallback to the plain function.

On CPU an element-wise chain in eager PyTorch is one pass over memory per operation; inductor turns it into one
vectorised loop. The fused basis pass and WavKAN's wavelet maps use this on CPU (measured in reports/). Each
configuration compiles once per process (with dynamic shapes; inductor's on-disk cache makes later processes
faster). ``KANCONVS_COMPILE=0`` turns it off; a failed compilation (no C++ compiler, …) warns once and that
configuration runs eagerly from then on.
"""

from __future__ import annotations

import os
import types
import warnings
from collections.abc import Callable, Hashable
from typing import Any

import torch

__all__ = ["compile_enabled", "cpu_compiled"]

_CACHE: dict[Hashable, Callable[..., Any] | None] = {}


def compile_enabled() -> bool:
    """Whether CPU passes are compiled (``KANCONVS_COMPILE`` unset or not ``0``)."""
    return os.environ.get("KANCONVS_COMPILE", "1") != "0"


def _own_code(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with a code object of its own.

    Dynamo keeps compiled code per code object: closures made by one ``def`` for different configurations would
    share one cache entry, recompile for each and soon hit the recompile limit.
    """
    code = fn.__code__.replace(co_name=f"{fn.__code__.co_name}_{len(_CACHE)}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


def cpu_compiled(key: Hashable, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a plain function or closure) compiled once per ``key``; a failed compilation falls back to ``fn``.

    The wrapper may be kept: after a failure it runs ``fn`` without retrying the compiler.
    """
    if key not in _CACHE:
        _CACHE[key] = torch.compile(_own_code(fn), dynamic=True, fullgraph=True)

    def call(*args: Any) -> Any:
        compiled = _CACHE[key]
        if compiled is None:
            return fn(*args)
        try:
            return compiled(*args)
        except Exception as err:
            _CACHE[key] = None
            warnings.warn(
                f"kanconvs: compiling a CPU pass failed ({type(err).__name__}: {str(err)[:300]}); running it "
                "eagerly (KANCONVS_COMPILE=0 skips the attempt)",
                RuntimeWarning,
                stacklevel=2,
            )
            return fn(*args)

    return call
