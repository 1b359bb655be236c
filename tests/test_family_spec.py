"""A family is described once (``FamilySpec``) and that description drives every layer built from it."""

from __future__ import annotations

import inspect
import pathlib

import pytest
import torch
from torch import nn

import kanconvs
from kanconvs import (
    FamilyConvNd,
    FamilyLinear,
    FamilyOption,
    FamilySpec,
    create_conv,
    create_linear,
    declared_options,
    family_options,
    get_spec,
    list_families,
    register_spec,
)
from kanconvs.layers.create import VARIANTS
from kanconvs.layers.moe import MoEBottleneckKAConvNd, MoEKAConvNd

SRC = pathlib.Path(kanconvs.__file__).parent


@pytest.mark.parametrize("family", list_families())
def test_declared_options_are_documented_and_shown(family: str) -> None:
    cls = kanconvs.get_family(family)
    spec = get_spec(family)
    assert cls.spec is spec
    params = inspect.signature(cls).parameters
    for name, default in spec.defaults().items():
        assert name in (cls.__doc__ or ""), f"{cls.__name__}'s docstring does not name its option {name!r}"
        assert params[name].default == default and params[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(params)[:3] == ["in_channels", "out_channels", "kernel_size"]


def test_variant_options_are_constructor_keywords() -> None:
    for variant in VARIANTS.values():  # a variant forwards **kwargs to the layers it derives from
        params = {
            p for cls in variant.layer.__mro__ if "__init__" in vars(cls) for p in inspect.signature(cls).parameters
        }
        assert set(variant.options) <= params, variant.layer.__name__


def test_one_entry_point_builds_every_variant() -> None:
    x = torch.randn(2, 32, 6, 6)
    moe = create_conv("moe_bottleneck_kagn", 32, 32, 3, padding=1, num_experts=3, k=1, degree=2, dim_reduction=2)
    assert isinstance(moe, MoEBottleneckKAConvNd) and moe.moe.num_experts == 3
    assert moe.inner_channels == 16 and moe(x).shape == x.shape
    experts = create_conv("moe_kacn", 32, 16, 3, padding=1, num_experts=2, degree=4).eval()
    assert isinstance(experts, MoEKAConvNd) and experts.family == "kacn"
    assert experts(x).shape == (2, 16, 6, 6)
    bottleneck = create_conv("bottleneck_kaln", 32, 32, 3, ndim=1, padding=1, degree=2)
    assert isinstance(bottleneck.inner, kanconvs.KALNConvNd) and bottleneck.inner.basis.degree == 2
    with pytest.raises(ValueError, match=r"unknown family 'kgan'; did you mean .*'kagn'"):
        create_conv("bottleneck_kgan", 8, 8, 3)


def test_family_options_keep_what_a_family_declares() -> None:
    config = {"degree": 3, "grid_size": 6, "dim_reduction": 8, "num_experts": 4, "norm_layer": "batch"}
    assert family_options("kan", config) == {"grid_size": 6, "norm_layer": "batch"}
    assert family_options("kagn", config) == {"degree": 3, "norm_layer": "batch"}
    assert family_options("bottleneck_kagn", config) == {"degree": 3, "dim_reduction": 8, "norm_layer": "batch"}
    assert family_options("moe_bottleneck_kaln", config) == {
        "degree": 3, "dim_reduction": 8, "num_experts": 4, "norm_layer": "batch"
    }  # fmt: skip
    assert family_options("conv", config) == {"norm_layer": "batch"}
    assert declared_options("kajn") == {"degree", "alpha", "beta"}


def test_a_new_family_is_one_spec_and_two_thin_classes() -> None:
    """Registering a description gives conv layers of every rank, a linear layer, the variants and the filter."""
    spec = register_spec(
        FamilySpec(
            "test_sq_legendre", "legendre", {"order": FamilyOption(2, basis_key="degree")},
            conv={"squash": "tanh", "use_base": False, "activation": None, "norm_layer": None},
            linear={"squash": "tanh", "use_base": False, "activation": None, "norm_layer": None},
            formula="y = conv[P_0…P_n(tanh x)]", linear_formula="y = W·P_0…P_n(tanh x)",
        )
    )  # fmt: skip

    class SqConvNd(FamilyConvNd, family="test_sq_legendre"):
        """Options: ``order``."""

    class SqLinear(FamilyLinear, family="test_sq_legendre"):
        """Options: ``order``."""

    conv = create_conv("test_sq_legendre", 2, 3, 1, ndim=1, order=4)
    assert type(conv) is SqConvNd and conv.basis.degree == 4 and SqConvNd.formula == spec.formula
    # A 1×1 kernel on one position: y = Σ_c Σ_n w[o, c, n] P_n(tanh x_c), the Legendre values written out here.
    x = torch.randn(5, 2, 1, dtype=torch.float64)
    conv = conv.double()
    t = torch.tanh(x[:, :, 0])
    p = [torch.ones_like(t), t]
    for n in range(1, 4):
        p.append(((2 * n + 1) * t * p[n] - n * p[n - 1]) / (n + 1))
    feats = torch.stack(p, dim=-1)  # (N, C, 5)
    w = conv.weight.reshape(3, 2, 5)
    torch.testing.assert_close(conv(x)[:, :, 0], torch.einsum("nck,ock->no", feats, w))
    linear = create_linear("test_sq_legendre", 2, 3)
    assert type(linear) is SqLinear and linear.basis.degree == 2 and linear.weight.shape == (3, 2, 3)
    assert type(create_conv("bottleneck_test_sq_legendre", 16, 16, 3, padding=1).inner) is SqConvNd
    assert family_options("test_sq_legendre", {"order": 3, "degree": 5}) == {"order": 3}
    with pytest.raises(TypeError, match=r"SqConvNd\(\) got an unexpected keyword argument 'degree'.*\['order'\]"):
        SqConvNd(2, 3, 1, ndim=1, degree=5)


def test_gram_basis_activation_is_an_option_of_every_layer() -> None:
    conv = kanconvs.KAGNConv2d(4, 4, 3, basis_activation="gelu")
    linear = kanconvs.KAGNLinear(4, 4, basis_activation=nn.Tanh)
    assert isinstance(conv.basis.activation, nn.GELU) and isinstance(linear.basis.activation, nn.Tanh)


def test_no_signature_sniffing_in_the_core() -> None:
    """Options are declared: no module outside ``compat/`` decides where keywords go by reading signatures."""
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "compat" not in path.parts and "inspect.signature(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
