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
