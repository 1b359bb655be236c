"""Reference-compatible classes and functions generated from table rows.

A row gives the reference's name, its signature (names, order, defaults), the kanconvs class it becomes and how the
bound reference arguments map to that class's keywords, plus the attribute names the reference's code reads. The
constructor binds its arguments against the reference's signature (so ``inspect.signature`` and ``help`` show the
reference's), converts them and calls the kanconvs class.

``python -m kanconvs.compat.stubs`` rewrites the ``.pyi`` stubs from the live objects, so IDEs and mypy see every
generated name with the reference's signature.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..layers.ranks import RANKS

__all__ = ["REQUIRED", "Values", "check_rank", "reference_class", "reference_function", "signature"]

_CONV_CLASSES: dict[Any, int] = {r.conv: n for n, r in RANKS.items()}
_CONV_FUNS: dict[Any, int] = {r.conv_fn: n for n, r in RANKS.items()}

_P = inspect.Parameter
#: The default of a required parameter in :func:`signature`.
REQUIRED = _P.empty
Values = dict[str, Any]


def check_rank(ndim: float, conv_class: Any, conv_w_fun: Any = None) -> int:
    """The reference passes the rank three times (ndim, conv class, functional conv): they must agree."""
    if float(ndim) not in (1.0, 2.0, 3.0):
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    rank = int(ndim)
    if _CONV_CLASSES.get(conv_class) != rank:
        raise ValueError(f"conv_class {conv_class!r} does not match ndim={rank} (expected nn.Conv{rank}d)")
    if conv_w_fun is not None and _CONV_FUNS.get(conv_w_fun) != rank:
        raise ValueError(f"conv_w_fun {conv_w_fun!r} does not match ndim={rank} (expected F.conv{rank}d)")
    return rank


def signature(*params: tuple[str, Any], var_keyword: str | None = None) -> inspect.Signature:
    """``signature(("input_dim", REQUIRED), ("degree", 3))`` → ``(input_dim, degree=3)``; ``var_keyword`` adds
    ``**name``."""
    ps = [_P(n, _P.POSITIONAL_OR_KEYWORD, default=d) for n, d in params]
    if var_keyword is not None:
        ps.append(_P(var_keyword, _P.VAR_KEYWORD))
    return inspect.Signature(ps)


def _bind(name: str, sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Values:
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{name}(): {err}") from None
    bound.apply_defaults()
    return dict(bound.arguments)  # a **name parameter is one entry: the dict of the extra keywords


def _init_of(cls: type) -> Any:
    """``cls.__init__`` (the nearest in its MRO), typed loosely: the generated constructors call it by keywords."""
    return next(klass.__dict__["__init__"] for klass in cls.__mro__ if "__init__" in klass.__dict__)


def reference_class(
    name: str,
    base: type | tuple[type, ...],
    sig: inspect.Signature,
    build: Callable[[Values], Values],
    *,
    module: str,
    doc: str,
    attrs: Mapping[str, str] | None = None,
    after: Callable[[Any, Values], None] | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> Any:
    """A subclass ``name`` of ``base`` (or of the classes of a tuple, mixins first) whose constructor has the
    reference's signature ``sig``.

    ``build(values)`` turns the bound reference arguments into ``base``'s keyword arguments; ``attrs`` maps reference
    attribute names to the argument whose value they keep; ``after(self, values)`` finishes the instance.
    """

    bases = base if isinstance(base, tuple) else (base,)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        values = _bind(name, sig, args, kwargs)
        base_init: Any = _init_of(bases[-1])
        base_init(self, **build(values))
        for attr, arg in (attrs or {}).items():
            setattr(self, attr, values[arg])
        if after is not None:
            after(self, values)

    __init__.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[_P("self", _P.POSITIONAL_OR_KEYWORD), *sig.parameters.values()]
    )
    body = {"__init__": __init__, "__module__": module, "__qualname__": name, "__doc__": doc, **(namespace or {})}
    return type(name, bases, body)


def reference_function(
    name: str, sig: inspect.Signature, target: Callable[..., Any], build: Callable[[Values], Values], *, module: str,
    doc: str,
) -> Any:  # fmt: skip
    """A function ``name`` with the reference's signature that calls ``target(**build(values))``."""

    def function(*args: Any, **kwargs: Any) -> Any:
        return target(**build(_bind(name, sig, args, kwargs)))

    returns = target.__name__ if isinstance(target, type) else inspect.Signature.empty
    function.__signature__ = sig.replace(return_annotation=returns)  # type: ignore[attr-defined]
    function.__name__ = function.__qualname__ = name
    function.__module__, function.__doc__ = module, doc
    return function
