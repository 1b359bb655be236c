"""Reference-compatible classes and functions generated from table rows.

A row gives the reference's name, the kanconvs class it becomes and how the bound reference arguments map to that
class's keywords, plus the attribute names the reference's code reads. The signature (names, order, kinds, defaults)
is not spelt out: it is read from ``reference_signatures.json``, the facts ``tools/reference_signatures.py`` extracts
from torch-conv-kan's source with ``ast`` (names and default texts, no code). The constructor binds its arguments
against that signature (so ``inspect.signature`` and ``help`` show the reference's), converts them and calls the
kanconvs class.

``python tools/compat_stubs.py`` rewrites the ``.pyi`` stubs from the live objects, so IDEs and mypy see every
generated name with the reference's signature.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor, nn

from ..convert import convert_in_place, strip_l1_wrappers
from ..layers.factories import ChannelLayerNorm
from ..layers.ranks import RANKS

__all__ = [
    "ReferenceCheckpoints",
    "Values",
    "check_rank",
    "exports",
    "reference_class",
    "reference_function",
    "reference_init",
    "reference_signature",
]

_CONV_CLASSES: dict[Any, int] = {r.conv: n for n, r in RANKS.items()}
_CONV_FUNS: dict[Any, int] = {r.conv_fn: n for n, r in RANKS.items()}

_P = inspect.Parameter
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


class ReferenceCheckpoints(nn.Module):
    """Mixin of the compat modules: torch-conv-kan checkpoints load as they are.

    Before a module's own tensors load, the reference's keys and layouts under its prefix are converted
    (:func:`kanconvs.convert.convert_in_place`), so the module loads reference checkpoints also inside a network
    of the user's. :func:`reference_class` adds it to every class it makes. Networks whose reference wrapped layers
    in ``L1(layer)`` set ``l1_wrappers``: the wrapper's ``.module.`` key segment is dropped (our layers hold the
    penalty themselves).
    """

    l1_wrappers: ClassVar[bool] = False

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
        if self.l1_wrappers:
            strip_l1_wrappers(state_dict, prefix)
        convert_in_place(state_dict, self, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args)


class LayerNorm2d(ChannelLayerNorm):
    """timm's ``LayerNorm2d`` (the reference's RDNet default): LayerNorm over channels, eps 1e-6."""

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)


_KINDS = {"positional": _P.POSITIONAL_OR_KEYWORD, "var_positional": _P.VAR_POSITIONAL,
          "keyword_only": _P.KEYWORD_ONLY, "var_keyword": _P.VAR_KEYWORD}  # fmt: skip
_NAMED_DEFAULTS: dict[str, Any] = {"LayerNorm2d": LayerNorm2d}


def _default(text: str | None) -> Any:
    """The value of a default's source text: a literal, a ``torch.nn`` class or one of :data:`_NAMED_DEFAULTS`."""
    if text is None:
        return _P.empty
    if text.startswith("nn."):
        return getattr(nn, text[3:])
    if text in _NAMED_DEFAULTS:
        return _NAMED_DEFAULTS[text]
    return ast.literal_eval(text)


@functools.cache
def _reference_params() -> dict[str, list[list[str | None]]]:
    table = json.loads(Path(__file__).with_name("reference_signatures.json").read_text(encoding="utf-8"))
    return {name: entries[0]["params"] for name, entries in table.items()}


def exports(namespace: Mapping[str, Any], *extra: str) -> list[str]:
    """``__all__`` of a compat module: the torch-conv-kan names (those of ``reference_signatures.json``) it defines,
    then ``extra`` (so a name added to a table is exported without a hand-kept list)."""
    module, names = namespace["__name__"], _reference_params()
    return [*sorted(n for n, x in namespace.items() if n in names and getattr(x, "__module__", None) == module), *extra]


def reference_signature(name: str) -> inspect.Signature:
    """torch-conv-kan's signature of ``name`` (a class's constructor without ``self``, or a function).

    Examples:
        >>> reference_signature("GRAMLayer")
        <Signature (in_channels, out_channels, degree=3, act=<class 'torch.nn.modules.activation.SiLU'>)>
    """
    try:
        params = _reference_params()[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a torch-conv-kan name in reference_signatures.json") from None
    return inspect.Signature([_P(str(n), _KINDS[str(kind)], default=_default(d)) for n, kind, d in params])


def reference_init(name: str) -> Callable[[Callable[[Any, Values], None]], Any]:
    """Decorate ``__init__(self, v)`` of a hand-written compat class: the constructor takes the reference's signature
    of ``name`` and passes the bound arguments, defaults applied, as the dict ``v``.

    Examples:
        >>> class GRAMLayer:
        ...     @reference_init("GRAMLayer")
        ...     def __init__(self, v: Values) -> None:
        ...         self.degree = v["degree"]
        >>> GRAMLayer(4, 6).degree, str(inspect.signature(GRAMLayer))[:36]
        (3, '(in_channels, out_channels, degree=3')
    """
    sig = reference_signature(name)

    def decorate(init: Callable[[Any, Values], None]) -> Any:
        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, _bind(name, sig, args, kwargs))

        __init__.__signature__ = _with_self(sig)  # type: ignore[attr-defined]
        return __init__

    return decorate


def _with_self(sig: inspect.Signature) -> inspect.Signature:
    return sig.replace(parameters=[_P("self", _P.POSITIONAL_OR_KEYWORD), *sig.parameters.values()])


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
    build: Callable[[Values], Values],
    *,
    module: str,
    doc: str,
    attrs: Mapping[str, str] | None = None,
    after: Callable[[Any, Values], None] | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> Any:
    """A subclass ``name`` of ``base`` (or of the classes of a tuple, mixins first) whose constructor has the
    reference's signature (:func:`reference_signature`).

    ``build(values)`` turns the bound reference arguments into ``base``'s keyword arguments; ``attrs`` maps reference
    attribute names to the argument whose value they keep; ``after(self, values)`` finishes the instance.
    """

    bases = base if isinstance(base, tuple) else (base,)
    if issubclass(bases[-1], nn.Module) and not any(issubclass(b, ReferenceCheckpoints) for b in bases):
        bases = (ReferenceCheckpoints, *bases)
    sig = reference_signature(name)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        values = _bind(name, sig, args, kwargs)
        base_init: Any = _init_of(bases[-1])
        base_init(self, **build(values))
        for attr, arg in (attrs or {}).items():
            setattr(self, attr, values[arg])
        if after is not None:
            after(self, values)

    __init__.__signature__ = _with_self(sig)  # type: ignore[attr-defined]
    body = {"__init__": __init__, "__module__": module, "__qualname__": name, "__doc__": doc, **(namespace or {})}
    return type(name, bases, body)


def reference_function(
    name: str, target: Callable[..., Any], build: Callable[[Values], Values] = dict, *, module: str, doc: str,
) -> Any:  # fmt: skip
    """A function ``name`` with the reference's signature (:func:`reference_signature`) that calls
    ``target(**build(values))``."""
    sig = reference_signature(name)

    def function(*args: Any, **kwargs: Any) -> Any:
        return target(**build(_bind(name, sig, args, kwargs)))

    returns = target.__name__ if isinstance(target, type) else inspect.Signature.empty
    function.__signature__ = sig.replace(return_annotation=returns)  # type: ignore[attr-defined]
    function.__name__ = function.__qualname__ = name
    function.__module__, function.__doc__ = module, doc
    return function
