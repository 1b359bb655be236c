"""Models built from kanconvs layers, and the model registry."""

from . import densekanet, rdnet, reskanet, u2kanet, unet, vggkan

_MODULES = (densekanet, rdnet, reskanet, u2kanet, unet, vggkan)  # before the star imports may shadow a name

from ._factory import ConvNormAct, conv_factory, family_options
from ._hub import from_pretrained, load_weights, read_state_dict, save_pretrained
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
    "read_state_dict",
    "register_model",
    "save_pretrained",
]
for _module in _MODULES:
    __all__ += _module.__all__
