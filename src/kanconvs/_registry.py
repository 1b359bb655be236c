"""A name → object registry: one mechanism for bases, layer families and (later) models."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Container, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry", "unexpected_user_keyword"]

T = TypeVar("T")


def unexpected_user_keyword(err: TypeError, given: Container[str]) -> str | None:
    """The keyword a ``TypeError`` calls unexpected, when it is one the user passed (``given``); else ``None``.

    A registry entry built deep inside (a model, a family layer) can then name itself and the option in the error.

    Examples:
        >>> unexpected_user_keyword(TypeError("f() got an unexpected keyword argument 'colour'"), {"colour": 1})
        'colour'
    """
    found = re.search(r"unexpected keyword argument '(\w+)'", str(err))
    return found.group(1) if found is not None and found.group(1) in given else None


class Registry(Generic[T]):
    """Names in registration order; duplicates and unknown names raise ``ValueError`` naming the valid ones.

    Examples:
        >>> colours = Registry[int]("colour")
        >>> colours.add("red", 1)
        >>> colours.get("red")
        1
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def register_class(self, name: str, formula: str) -> Callable[[T], T]:
        """A class decorator: add the class under ``name`` and record ``family = name`` and its one-line ``formula``
        (README, ``kanconvs list``) on it (the layer families, conv and linear)."""

        def decorator(cls: T) -> T:
            self.add(name, cls)
            cls.family = name  # type: ignore[attr-defined]
            cls.formula = formula  # type: ignore[attr-defined]
            return cls

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self._items, n=5)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}; expected one of {self.names()}{hint}") from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
