"""Drop-in names of torch-conv-kan (``kan_convs``, ``kans``) with the reference's signatures.

``from kanconvs.compat import KAGNConv2DLayer`` replaces ``from kan_convs import KAGNConv2DLayer``. The clean,
torch-style API (``KAGNConv2d`` …) lives in :mod:`kanconvs`.
"""

from ..convert import convert_layer_state_dict, convert_reference_state_dict, is_reference_layout
from .kan_convs import *  # noqa: F403
from .kan_convs import __all__ as _kan_convs_all
from .kans import *  # noqa: F403
from .kans import __all__ as _kans_all

__all__ = [
    *_kan_convs_all,
    *_kans_all,
    "convert_layer_state_dict",
    "convert_reference_state_dict",
    "is_reference_layout",
]
