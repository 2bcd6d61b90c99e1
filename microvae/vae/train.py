"""Training the morphology-aware VAE: :func:`train_vae`, the loop, its log and sample mosaics."""
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from numpy.typing import ArrayLike

from .._validate import as_binary_batch
from ..io import provenance, write_json
from ..morphology import specific_surface
from ..nn.mode import eval_mode
from ..nn.vae import VAE
from .checkpoint import (CHECKPOINT, append_metrics, check_resumable, data_fingerprint, load_checkpoint,
                         prepare_run_dir, save_checkpoint, truncate_metrics)
from .config import load_config
from .parallel import init_distributed, pick_device
from .results import SampleCheck, TrainResult
from .sampling import CollapseWarning, check_samples, fit_latent
from .trainer import Trainer

__all__ = ["train_vae"]


def train_vae(images: ArrayLike, preset: str = "quick", *, out_dir: str | os.PathLike, seed: int = 0,
              resume: bool = False, overwrite: bool = False, device: str | torch.device | None = None,
              progress: bool = True, **overrides: Any) -> TrainResult:
    """Train the morphology-aware VAE.

    Parameters
    ----------
    images : array_like, ``(N, S, S)``
        Binary authentic images (1 = pore), ``S = image_size`` of the config; ``N >= batch_size``.
    preset : {"quick", "paper"}
        Starting configuration (:data:`~microvae.vae.PRESETS`); ``overrides`` change any
        :class:`~microvae.vae.TrainConfig` field, e.g. ``image_size=128``, ``steps=5000``,
        ``style_mode="none"``, ``w_st=0``.
    out_dir : str or Path
        Run folder (:mod:`microvae.vae.checkpoint`). Must not exist or be empty, unless ``resume``
        or ``overwrite``.
    seed : int
        Seeds the model initialization, the batches and the latent noise (the style network has
        its own ``style_seed``). Same seed, data and config give the same run.
    resume : bool
        Continue the run in ``out_dir`` from its checkpoint up to ``steps`` (which may be raised
        with an override; the other settings must match the checkpoint's).
    overwrite : bool
        Start afresh in an existing run folder (one holding ``config.json``), deleting its
        files: for a run stopped before its first checkpoint, which cannot be resumed. Other
        non-empty folders are never cleared.
    device : str or torch.device, optional
        Default: ``cuda`` (the ``LOCAL_RANK`` GPU under torchrun) if available, else ``cpu``.
    progress : bool
        Show a progress bar with the loss terms.

    Returns
    -------
    TrainResult
    """
    if out_dir is None:
        raise ValueError("out_dir is required: the run folder for checkpoints, metrics and sample mosaics")
    config = load_config(preset, **overrides)
    VAE(**config.model_kwargs())  # the model's own checks (e.g. image size vs stages) before a folder is cleared
    batch, nd = as_binary_batch(images)
    if nd != 2:
        raise ValueError(f"train_vae takes 2D images (N, H, W); cut volumes into slices first "
                         f"(microvae.io.slices), got shape {np.shape(images)}")
    if batch.shape[1:] != (config.image_size, config.image_size):
        raise ValueError(f"images are {batch.shape[1]}x{batch.shape[2]} but image_size={config.image_size}; "
                         "crop/slice them to that size (microvae.io.slices) or pass image_size=")
    if len(batch) < config.batch_size:
        raise ValueError(f"need at least batch_size={config.batch_size} images, got {len(batch)}")
    device = pick_device(device)
    rank, world, owned_group = init_distributed(device)
    try:
        run_dir = Path(out_dir)
        prepare_run_dir(run_dir, resume=resume, rank=rank, overwrite=overwrite)
        return _train(batch, config, run_dir, int(seed), resume, device, progress, rank, world)
    finally:
        if owned_group:
            dist.destroy_process_group()


@torch.no_grad()
def _write_mosaic(run_dir, vae, z, step):
    from ..plotting import mosaic

    with eval_mode(vae):
        p = vae.decode(z.to(next(vae.parameters()).device)).squeeze(1).float().cpu().numpy()
    mosaic(run_dir / "samples" / f"step_{step:07d}.png", (p > 0.5).astype(np.uint8), ncols=8,
           title=f"step {step} (threshold 0.5)", overwrite=True)


def _train(images, config, run_dir, seed, resume, device, progress, rank, world):
    fingerprint = data_fingerprint(images)
    trainer = Trainer(images, config, seed=seed, device=device, rank=rank, world=world)
    vae = trainer.vae

    start, history = 0, []
    if resume:
        ckpt = load_checkpoint(run_dir / CHECKPOINT)
        check_resumable(ckpt, config, seed=seed, fingerprint=fingerprint, style_fingerprint=trainer.style_fingerprint,
                        world=world)
        vae.load_state_dict(ckpt["model"])
        trainer.optimizer.load_state_dict(ckpt["optimizer"])
        trainer.gen.set_state(ckpt["rng"][rank])
        start = int(ckpt["step"])
        if start > config.steps:
            raise ValueError(f"the checkpoint is at step {start}, beyond steps={config.steps}")
        history = truncate_metrics(run_dir / "metrics.jsonl", start) if rank == 0 else []
    if rank == 0:
        write_json(run_dir / "config.json", {**provenance({"seed": seed, "world_size": world}),
                                             "config": config.to_dict(), "data": fingerprint}, overwrite=True)
    fixed_z = torch.randn(16, config.latent, generator=torch.Generator().manual_seed(seed))

    porosity = images.reshape(len(images), -1).mean(axis=1)
    surface = float(specific_surface(images).mean()) if config.sample_smooth == "matched" else None
    checked: SampleCheck | None = None  # the sample check of the last checkpoint (rank 0)

    def check():
        fitted = fit_latent(vae, images) if config.sample_latent == "fitted" else None
        return check_samples(vae, porosity, seed=seed, latent=fitted, smooth=config.sample_smooth, surface=surface)

    from tqdm import tqdm

    bar = tqdm(total=config.steps, initial=start, disable=not progress or rank != 0, unit="step",
               desc="train VAE", dynamic_ncols=True)
    # Per-term sums and counts: the style terms exist only for the steps that computed them.
    sums, counts, last_logged, t0 = {}, {}, start, time.perf_counter()
    vae.train()
    for step in range(start + 1, config.steps + 1):
        for k, v in trainer.step(step).items():
            sums[k], counts[k] = sums.get(k, 0.0) + v, counts.get(k, 0) + 1
        if step % config.log_every == 0 or step == config.steps:
            n = step - last_logged
            row = {"step": step, **{k: float(v) / counts[k] for k, v in sums.items()},
                   "seconds_per_step": (time.perf_counter() - t0) / n}
            if not all(math.isfinite(v) for v in row.values()):
                raise FloatingPointError(
                    f"training diverged at step {step} (loss terms {row}); the checkpoint of the last saved step is "
                    "intact: lower lr or w_st and resume")
            sums, counts, last_logged, t0 = {}, {}, step, time.perf_counter()
            history.append(row)
            if rank == 0:
                append_metrics(run_dir / "metrics.jsonl", row)
                bar.set_postfix({k: f"{row[k]:.4g}" for k in ("loss", "recon", "kl", "style", "mc") if k in row})
        if config.sample_every and step % config.sample_every == 0 and rank == 0:
            _write_mosaic(run_dir, vae, fixed_z, step)
        if (config.checkpoint_every and step % config.checkpoint_every == 0) or step == config.steps:
            rng = trainer.rng_states()  # collective: every process takes part
            if rank == 0:
                checked = check()
                save_checkpoint(run_dir / CHECKPOINT, vae=vae, optimizer=trainer.optimizer, step=step, config=config,
                                seed=seed, rng=rng, fingerprint=fingerprint,
                                style_fingerprint=trainer.style_fingerprint, samples=checked.to_dict())
        bar.update(1)
    bar.close()
    vae.eval()
    if rank == 0:
        if checked is None:  # resumed at the last step: nothing was saved in this call
            checked = check()
        if checked.collapsed:
            warnings.warn(f"the trained VAE looks collapsed ({checked.reason}); its samples do not cover the "
                          "training images' variety: train longer, lower w_st/w_mc, or raise kl_warmup",
                          CollapseWarning, stacklevel=3)
    return TrainResult(run_dir=run_dir, model=vae, config=config, step=config.steps, history=history,
                       samples=checked)
