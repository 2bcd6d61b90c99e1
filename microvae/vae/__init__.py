"""The morphology-aware VAE: training and sampling (paper §3.2).

``L = L_recon + w_kl L_KL + w_st L_ST + w_mc L_MC`` per step on a random batch of authentic
images. The style loss compares the style-network Gram matrices of generated images with those
of the authentic batch. Generated images for the style terms (``style_mode``,
:data:`microvae.choices.STYLE_MODES`):

- ``"paired"`` (default, paper §3.2): ``x' = decoder(z)``, ``z ~ q(z | x)`` (the very sample that
  is scored by the reconstruction term), compared with its own ``x``;
- ``"all_pairs"`` (paper Eq. 8): the same ``x'``, compared with every ``x`` of the batch;
- ``"prior"`` (the paper's Fig. 6b ablation): ``x' = decoder(z)``, ``z ~ N(0, I)``, each paired
  with a randomly chosen authentic image of the batch;
- ``"none"``: a plain VAE (style and mode-collapse terms off).

:func:`train_vae` trains in a run folder that holds ``config.json``, ``checkpoint.pt`` (model,
optimizer, step, config, random state; replaced atomically), ``metrics.jsonl`` (loss terms
averaged over each logging interval) and ``samples/step_*.png`` (mosaics of images decoded from
a fixed set of prior draws); a run resumes exactly from its checkpoint. :func:`sample` draws
binary images from a run folder, a checkpoint, a :class:`TrainResult` or a bare model.

Multi-GPU: launch with ``torchrun --nproc_per_node=G --no-python microvae train ...`` (or call
:func:`train_vae` under torchrun): each process takes ``batch_size / G`` images per step,
gradients are averaged by ``DistributedDataParallel`` (NCCL on GPUs, gloo on CPUs), and rank 0
writes files.

Modules: :mod:`~microvae.vae.config` (settings and presets), :mod:`~microvae.vae.trainer` (one
process's model, optimizer, random generator, style network and step),
:mod:`~microvae.vae.train` (the loop), :mod:`~microvae.vae.checkpoint` (run folder, checkpoint,
metrics log), :mod:`~microvae.vae.parallel` (torchrun set-up), :mod:`~microvae.vae.sampling` (latents,
thresholds, the sample check, :func:`sample`), :mod:`~microvae.vae.results` (the returned types). The model, the style
network and the loss terms are in :mod:`microvae.nn`.

Examples
--------
>>> from microvae.vae import sample, train_vae
>>> run = train_vae(images, preset="quick", out_dir="runs/mine", seed=0)  # doctest: +SKIP
>>> fake = sample(run, 1000, seed=1)  # (1000, S, S) uint8, 1 = pore     # doctest: +SKIP
"""
from ..augment import dihedral
from ..choices import BINARIZE, LATENTS, STYLE_MODES
from .checkpoint import CHECKPOINT, load_checkpoint
from .config import PRESETS, TrainConfig, load_config
from .results import SampleCheck, TrainResult
from .sampling import SMOOTH_GRID, CollapseWarning, check_samples, fit_latent, sample
from .train import train_vae
from .trainer import Trainer

__all__ = ["TrainConfig", "TrainResult", "SampleCheck", "Trainer", "PRESETS", "load_config", "train_vae", "sample",
           "load_checkpoint", "check_samples", "fit_latent", "dihedral", "CollapseWarning", "CHECKPOINT",
           "SMOOTH_GRID", "STYLE_MODES", "LATENTS", "BINARIZE"]
