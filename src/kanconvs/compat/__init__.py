"""Drop-in names of torch-conv-kan (``kan_convs``, ``kans``, ``kan_peft``, ``models``) with the reference's signatures.

``from kanconvs.compat import KAGNConv2DLayer`` replaces ``from kan_convs import KAGNConv2DLayer``. The clean,
torch-style API (``KAGNConv2d`` …) lives in :mod:`kanconvs`.
"""

from ..convert import convert_layer_state_dict, convert_reference_state_dict, is_reference_layout
from . import attention, kan_convs, kan_peft, kans, models, moe
from .attention import *  # noqa: F403
from .kan_convs import *  # noqa: F403
from .kan_peft import *  # noqa: F403
from .kans import *  # noqa: F403
from .models import *  # noqa: F403
from .moe import *  # noqa: F403

__all__ = ["convert_layer_state_dict", "convert_reference_state_dict", "is_reference_layout"]
__all__ += kan_convs.__all__
__all__ += kans.__all__
__all__ += kan_peft.__all__
__all__ += moe.__all__
__all__ += attention.__all__
__all__ += models.__all__
