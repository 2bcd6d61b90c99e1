"""Deprecated: the VAE's training and sampling moved to :mod:`microvae.vae`.

This module re-exports :mod:`microvae.vae`'s public names for one release and warns on import.
"""
import warnings

from .vae import (BINARIZE, CHECKPOINT, LATENTS, PRESETS, SMOOTH_GRID, STYLE_MODES, CollapseWarning, SampleCheck,
                  TrainConfig, Trainer, TrainResult, check_samples, dihedral, fit_latent, load_checkpoint, load_config,
                  sample, train_vae)

__all__ = ["TrainConfig", "TrainResult", "SampleCheck", "Trainer", "PRESETS", "load_config", "train_vae", "sample",
           "load_checkpoint", "check_samples", "fit_latent", "dihedral", "CollapseWarning", "CHECKPOINT",
           "SMOOTH_GRID", "STYLE_MODES", "LATENTS", "BINARIZE"]

warnings.warn("microvae.train is deprecated and will be removed in the next release: import from microvae.vae "
              "(the same names; the trainer, formerly train._Session, is microvae.vae.Trainer)", DeprecationWarning,
              stacklevel=2)
