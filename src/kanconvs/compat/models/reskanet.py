"""Reference names of torch-conv-kan models.reskanet (being written)."""

__all__: list[str] = []
