"""Reference names of torch-conv-kan models.vggkan (being written)."""

__all__: list[str] = []
