"""Every name of ``kanconvs.compat`` has torch-conv-kan's signature: parameter names, order, kinds and defaults.

The fixture holds facts extracted from the reference's source with ``ast`` (``tools/reference_signatures.py``):
names and the source text of defaults, no code.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import kanconvs.compat as compat

FIXTURE = Path(compat.__file__).parent / "reference_signatures.json"
REFERENCE: dict[str, list[dict[str, Any]]] = json.loads(FIXTURE.read_text(encoding="utf-8"))
KINDS = {"POSITIONAL_OR_KEYWORD": "positional", "VAR_POSITIONAL": "var_positional", "KEYWORD_ONLY": "keyword_only",
         "VAR_KEYWORD": "var_keyword"}  # fmt: skip
# Names of ours that are not the reference's (converters, our constants) or that it defines without a constructor.
NOT_REFERENCE = {"cfgs", "convert_kans_state_dict", "convert_layer_state_dict", "convert_reference_state_dict",
                 "is_reference_layout"}  # fmt: skip


def _same_default(ours: Any, source: str) -> bool:
    try:
        theirs = eval(source, {"nn": nn, "torch": torch})  # the reference's default, e.g. "nn.GELU" or "[-1, 1]"
    except NameError:  # a class of the reference's own (LayerNorm2d): compare by name
        return getattr(ours, "__name__", None) == source
    if isinstance(theirs, list | tuple) and isinstance(ours, list | tuple):
        return list(ours) == list(theirs)  # a tuple default for the reference's (never mutated) list
    return ours is theirs or ours == theirs


def _mismatch(name: str) -> str | None:
    params = list(inspect.signature(getattr(compat, name)).parameters.values())
    problems = []
    for candidate in REFERENCE[name]:
        ref = candidate["params"]
        if [(p.name, KINDS[p.kind.name]) for p in params] != [(n, k) for n, k, _ in ref]:
            problems.append(
                f"{candidate['file']}: parameters {[n for n, _, _ in ref]}, ours {[p.name for p in params]}"
            )
            continue
        wrong = [
            p.name
            for p, (_, _, default) in zip(params, ref, strict=True)
            if (default is None) != (p.default is p.empty)
            or (default is not None and not _same_default(p.default, default))
        ]
        if not wrong:
            return None
        problems.append(f"{candidate['file']}: defaults of {wrong}")
    return "; ".join(problems)


def test_every_compat_name_is_a_reference_name() -> None:
    assert sorted(set(compat.__all__) - set(REFERENCE) - NOT_REFERENCE) == []
    assert len(set(compat.__all__) & set(REFERENCE)) >= 260


@pytest.mark.parametrize("name", sorted(set(compat.__all__) & set(REFERENCE)))
def test_signature_is_the_references(name: str) -> None:
    assert _mismatch(name) is None, _mismatch(name)


def test_reference_blocks_take_their_options_positionally() -> None:
    """``KAGNBasicBlock(inplanes, planes, degree, stride, …)``: the third positional argument is the degree."""
    block = compat.KAGNBasicBlock(16, 16, 2, 2, nn.Conv2d(16, 16, 1, stride=2))
    assert block.conv1.basis.degree == 2 and block.conv1.stride == (2, 2)
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 16, 4, 4)
