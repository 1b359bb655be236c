"""Output paths of the commands, checked before the work that fills them (written by :mod:`kanconvs._io`)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["output_file"]


def output_file(text: str | os.PathLike[str], option: str, suffix: str | None = None) -> Path:
    """``text`` as the path of a file to write (``suffix`` added when it has none), checked before any work.

    Raises:
        ValueError: ``text`` is a directory, or a part of its folder is a file, or its folder is not writable.
    """
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"{option} {str(text)!r} is a directory: expected a file path")
    if suffix and not path.suffix:
        path = path.with_name(path.name + suffix)
    if path.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a directory: expected a file path")
    existing = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise ValueError(f"{option} {str(text)!r}: {str(existing)!r} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {str(text)!r}: cannot write in {str(existing)!r} (permission denied)")
    return path
