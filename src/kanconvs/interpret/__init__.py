"""Interpretability: the learned univariate functions φ of KA layers, and Grad-CAM for image classifiers."""

from .functions import (
    KA_LAYER_TYPES,
    LearnedFunctions,
    Taps,
    default_pairs,
    default_range,
    find_layer,
    ka_layers,
    learned_functions,
    plot_functions,
)
from .gradcam import default_gradcam_layer, grad_cam, overlay_gradcam, plot_gradcam

__all__ = [
    "KA_LAYER_TYPES",
    "LearnedFunctions",
    "Taps",
    "default_gradcam_layer",
    "default_pairs",
    "default_range",
    "find_layer",
    "grad_cam",
    "ka_layers",
    "learned_functions",
    "overlay_gradcam",
    "plot_functions",
    "plot_gradcam",
]
