"""Reference names of torch-conv-kan models.automodel (being written)."""

__all__: list[str] = []
