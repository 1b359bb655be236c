"""The README's commands and its usage example are what a newcomer runs first: keep them working."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert text.index("```bash") < text.index("## ")  # before any section


def test_readme_usage_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    usage = next(b for b in blocks if "nn.Sequential" in b)
    namespace: dict[str, object] = {}
    exec(compile(usage, str(README), "exec"), namespace)
    logits = namespace["logits"]
    assert tuple(logits.shape) == (8, 10)  # type: ignore[attr-defined]


def test_readme_new_family_example_runs() -> None:
    """The "adding a family" example: one description gives conv layers, variants and the linear layer."""
    import torch

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "register_spec(" in b and "FamilySpec(" in b)
    namespace: dict[str, object] = {}
    exec(compile(example, str(README), "exec"), namespace)
    layer = namespace["layer"]
    assert type(layer.inner).__name__ == "KALNDegConvNd" and layer.inner.basis.degree == 4  # type: ignore[attr-defined]
    assert layer(torch.randn(2, 64, 5, 5)).shape == (2, 64, 5, 5)  # type: ignore[operator]
    linear = namespace["KALNDegLinear"](3, 2)  # type: ignore[operator]
    assert linear.basis.degree == 2 and linear(torch.randn(4, 3)).shape == (4, 2)
