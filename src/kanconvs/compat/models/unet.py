"""Reference names of torch-conv-kan models.unet (being written)."""

__all__: list[str] = []
