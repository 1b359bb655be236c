"""Reference names of torch-conv-kan models.u2kanet (being written)."""

__all__: list[str] = []
