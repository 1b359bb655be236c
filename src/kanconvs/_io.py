"""File writes that a reader, or a kill, never sees half done."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_savefig", "atomic_write", "atomic_write_text"]


def _proc_umask() -> int | None:
    """The umask from ``/proc/self/status`` (Linux 4.7+), read without changing it; None where unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_umask_once() -> int:
    found = _proc_umask()
    if found is None:  # elsewhere the only portable way to read it is to set it: done once, at import
        found = os.umask(0o022)
        os.umask(found)
    return found


_IMPORT_UMASK = _read_umask_once()


def _umask() -> int:
    """The current umask where ``/proc`` shows it, else the one at import; never set, so thread-safe."""
    found = _proc_umask()
    return _IMPORT_UMASK if found is None else found


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp)`` on a temporary file in ``path``'s directory, then rename it to ``path``.

    The file gets the user's usual mode (``mkstemp`` creates 0600) and is flushed to disk before the rename; on any
    error the temporary file is removed.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data on disk before the new name points at it
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, newline: str | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8", newline=newline))


def atomic_savefig(fig: Any, path: Path, dpi: int) -> None:
    """``fig.savefig`` (a matplotlib figure) to ``path`` through :func:`atomic_write`, in the format of its suffix
    (PNG without one), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix[1:].lower() or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt))
