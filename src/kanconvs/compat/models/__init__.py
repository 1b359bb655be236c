"""Drop-in names of torch-conv-kan's ``models`` package (classes and factory functions, reference signatures).

``from kanconvs.compat import reskagnet_18x32p`` replaces ``from models import reskagnet_18x32p``. The built
models are kanconvs models whose module layout matches the reference, so its checkpoints load with
``model.load_state_dict(reference_state_dict)``. The clean API is :func:`kanconvs.create_model`.
"""

from . import automodel, baselines, densekanet, rdnet, reskanet, u2kanet, unet, vggkan

# Captured before the star imports: a reference factory may share its module's name (``vggkan``).
_MODULES = (automodel, baselines, densekanet, rdnet, reskanet, u2kanet, unet, vggkan)
from .automodel import *  # noqa: F403
from .baselines import *  # noqa: F403
from .densekanet import *  # noqa: F403
from .rdnet import *  # noqa: F403
from .reskanet import *  # noqa: F403
from .u2kanet import *  # noqa: F403
from .unet import *  # noqa: F403
from .vggkan import *  # noqa: F403

__all__: list[str] = []
for _module in _MODULES:
    __all__ += _module.__all__
