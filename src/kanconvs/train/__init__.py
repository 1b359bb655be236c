"""Training: configs, the Accelerate training loop, checkpoints, losses, metrics, optimisers and schedules.

Needs the ``train`` extra (``pip install 'kanconvs[train]'``: accelerate, torchmetrics, omegaconf, tensorboard).
"""

from .checkpoint import CheckpointError, TrainState
from .config import ConfigError, TrainConfig, config_to_yaml, list_configs, load_config
from .losses import DiceBCELoss, DiceLoss, FocalLoss, TverskyLoss, create_loss, list_losses
from .metrics import classification_metrics, segmentation_metrics
from .optim import Lion, create_optimizer, create_scheduler, lbfgs_closure
from .trainer import Trainer, model_kwargs_for, train

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DiceBCELoss",
    "DiceLoss",
    "FocalLoss",
    "Lion",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "TverskyLoss",
    "classification_metrics",
    "config_to_yaml",
    "create_loss",
    "create_optimizer",
    "create_scheduler",
    "lbfgs_closure",
    "list_configs",
    "list_losses",
    "load_config",
    "model_kwargs_for",
    "segmentation_metrics",
    "train",
]
