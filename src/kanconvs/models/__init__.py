"""Models built from kanconvs layers, and the model registry."""

from . import densekanet as _densekanet
from . import rdnet as _rdnet
from . import reskanet as _reskanet
from . import u2kanet as _u2kanet
from . import unet as _unet
from . import vggkan as _vggkan
from ._factory import ConvNormAct, conv_factory, family_options
from ._hub import from_pretrained, load_weights, read_state_dict, save_pretrained
from ._inputs import min_input_size
from ._registry import create_model, list_models, register_model
from .baselines import SimpleKANet
from .densekanet import *  # noqa: F403
from .kan_mlp import KANMLP, create_kan_mlp
from .rdnet import *  # noqa: F403
from .reskanet import *  # noqa: F403
from .u2kanet import *  # noqa: F403
from .unet import *  # noqa: F403
from .vggkan import *  # noqa: F403

__all__ = [
    "KANMLP",
    "ConvNormAct",
    "SimpleKANet",
    "conv_factory",
    "create_kan_mlp",
    "create_model",
    "family_options",
    "from_pretrained",
    "list_models",
    "load_weights",
    "min_input_size",
    "read_state_dict",
    "register_model",
    "save_pretrained",
]
# underscore aliases: a star import may bring a function named like its module (``vggkan``)
for _module in (_densekanet, _rdnet, _reskanet, _u2kanet, _unet, _vggkan):
    __all__ += _module.__all__
