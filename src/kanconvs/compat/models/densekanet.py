"""Reference names of torch-conv-kan models.densekanet (being written)."""

__all__: list[str] = []
