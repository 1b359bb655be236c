"""Drop-in names of torch-conv-kan's ``models`` package (classes and factory functions, reference signatures).

``from kanconvs.compat import reskagnet_18x32p`` replaces ``from models import reskagnet_18x32p``. The built
models are kanconvs models whose module layout matches the reference, so its checkpoints load with
``model.load_state_dict(reference_state_dict)``. The clean API is :func:`kanconvs.create_model`.
"""

from . import automodel as _automodel
from . import baselines as _baselines
from . import densekanet as _densekanet
from . import rdnet as _rdnet
from . import reskanet as _reskanet
from . import u2kanet as _u2kanet
from . import unet as _unet
from . import vggkan as _vggkan
from .automodel import *  # noqa: F403
from .baselines import *  # noqa: F403
from .densekanet import *  # noqa: F403
from .rdnet import *  # noqa: F403
from .reskanet import *  # noqa: F403
from .u2kanet import *  # noqa: F403
from .unet import *  # noqa: F403
from .vggkan import *  # noqa: F403

__all__: list[str] = []
# underscore aliases: a star import may bring a function named like its module (``vggkan``)
for _module in (_automodel, _baselines, _densekanet, _rdnet, _reskanet, _u2kanet, _unet, _vggkan):
    __all__ += _module.__all__
