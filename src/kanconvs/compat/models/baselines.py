"""Reference names of torch-conv-kan models.baselines (being written)."""

__all__: list[str] = []
