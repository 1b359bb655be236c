"""Reference names of torch-conv-kan models.rdnet (being written)."""

__all__: list[str] = []
