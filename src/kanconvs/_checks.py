"""Checks shared by the constructors' argument validation."""

from __future__ import annotations

__all__ = ["is_real"]


def is_real(value: object) -> bool:
    """Whether ``value`` is an int or float and not a bool (``True`` is an ``int`` to Python, not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
