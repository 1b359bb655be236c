"""The generated compat modules' ``.pyi`` stubs match the live objects (regenerate: python tools/compat_stubs.py)."""

from __future__ import annotations

import inspect

import pytest
from tools.compat_stubs import STUBS, stub, stub_path

from kanconvs.compat import kans


@pytest.mark.parametrize("module", sorted(STUBS))
def test_stub_is_current(module: str) -> None:
    assert stub_path(module).read_text(encoding="utf-8") == stub(module, STUBS[module]), (
        f"{stub_path(module).name} is stale: run python tools/compat_stubs.py"
    )


def test_generated_names_keep_the_reference_signatures() -> None:
    """Spot checks against torch-conv-kan's kans package (argument names, order and defaults)."""
    assert str(inspect.signature(kans.ReLUKANLayer)) == "(input_size, g, k, output_size, train_ab=True)"
    assert str(inspect.signature(kans.mlp_relukan)) == (
        "(layers_hidden, dropout=0.0, a=1, b=1, train_ab=True, l1_decay=0.0) -> 'ReLUKAN'"
    )
    assert list(inspect.signature(kans.FastKAN).parameters)[:4] == [
        "layers_hidden",
        "dropout",
        "l1_decay",
        "grid_range",
    ]
    with pytest.raises(TypeError, match=r"ChebyKANLayer\(\): missing a required argument: 'degree'"):
        kans.ChebyKANLayer(4, 6)
    with pytest.raises(TypeError, match=r"KACN\(\) got unexpected keyword arguments \['colour'\]"):
        kans.KACN([4, 3], colour="red")
    layer = kans.ReLUKANLayer(4, 5, 3, 6)
    assert (layer.input_size, layer.output_size, layer.g, layer.k, layer.r) == (4, 6, 5, 3, 4 * 25 / 16)


def test_reference_nd_classes_show_the_reference_constructor() -> None:
    """Not the torch-style signature of the kanconvs family they derive from (a class without its own ``__init__``
    once inherited ``KALNConvNd``'s)."""
    from kanconvs.compat import kan_convs

    nd = [name for name in kan_convs.__all__ if name.endswith("NDLayer")]
    assert len(nd) == 11
    for name in nd:
        params = list(inspect.signature(getattr(kan_convs, name)).parameters)
        assert params[0] == "conv_class" and "input_dim" in params and params[-1] == "norm_kwargs", name
