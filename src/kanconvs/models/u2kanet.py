"""u2kanet (being written)."""

__all__: list[str] = []
