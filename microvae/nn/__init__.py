"""Neural networks of microvae: the morphology-aware VAE, its style network and losses."""
from .losses import (gram_matrices, kl_divergence, mode_collapse_loss, reconstruction_loss, style_and_mode_collapse,
                     style_loss)
from .mode import eval_mode
from .style import DEFAULT_LAYERS, VGGStyleNet
from .vae import VAE

__all__ = ["VAE", "VGGStyleNet", "DEFAULT_LAYERS", "gram_matrices", "style_loss", "mode_collapse_loss",
           "style_and_mode_collapse", "reconstruction_loss", "kl_divergence", "eval_mode"]
