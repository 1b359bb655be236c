"""Extract torch-conv-kan's public constructor and function signatures (facts, not code) into a JSON fixture.

    python tools/reference_signatures.py .reference > src/kanconvs/compat/reference_signatures.json

The reference source is parsed with ``ast`` (nothing of it is imported or copied): for every top-level class (its
``__init__``) and function of the packages ``kan_convs``, ``kans``, ``kan_peft`` and ``models``, the parameter names
in order, their kinds and the source text of their defaults. ``kanconvs.compat`` builds its generated classes and
functions with these signatures, and ``tests/test_compat_signatures.py`` checks every compat name against them.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

PACKAGES = ("kan_convs", "kans", "kan_peft", "models")


def _params(fn: ast.FunctionDef, skip_self: bool) -> list[list[str | None]]:
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    out: list[list[str | None]] = [
        [p.arg, "positional", ast.unparse(d) if d is not None else None]
        for p, d in zip(positional, defaults, strict=True)
    ]
    if skip_self and out:
        out = out[1:]
    if a.vararg:
        out.append([a.vararg.arg, "var_positional", None])
    for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        out.append([p.arg, "keyword_only", ast.unparse(d) if d is not None else None])
    if a.kwarg:
        out.append([a.kwarg.arg, "var_keyword", None])
    return out


def extract(root: Path) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                    sig = _params(node, skip_self=False)
                elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
                    if init is None:
                        continue  # inherits its constructor
                    sig = _params(init, skip_self=True)
                else:
                    continue
                found.setdefault(node.name, []).append({"file": str(path.relative_to(root)), "params": sig})
    return found


if __name__ == "__main__":
    json.dump(extract(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
