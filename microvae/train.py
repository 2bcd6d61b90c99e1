"""Training and sampling of the morphology-aware VAE (paper §3.2, DESIGN.md §8).

``L = L_recon + w_kl L_KL + w_st L_ST + w_mc L_MC`` per step on a random batch of authentic
images. The style loss compares the style-network Gram matrices of generated images with those of
the authentic batch; the authentic Grams never change, so they are computed once at start-up and
indexed per batch. Generated images for the style terms (``style_mode``):

- ``"paired"`` (default, paper §3.2): ``x' = decoder(z)``, ``z ~ q(z | x)`` (the very sample that
  is scored by the reconstruction term), compared with its own ``x``;
- ``"all_pairs"`` (paper Eq. 8): the same ``x'``, compared with every ``x`` of the batch;
- ``"prior"`` (the paper's Fig. 6b ablation): ``x' = decoder(z)``, ``z ~ N(0, I)``, each paired
  with a randomly chosen authentic image of the batch;
- ``"none"``: a plain VAE (style and mode-collapse terms off).

A run folder holds ``config.json``, ``checkpoint.pt`` (model, optimizer, step, config, random
state; replaced atomically), ``metrics.jsonl`` (loss terms averaged over each logging interval)
and ``samples/step_*.png`` (mosaics of images decoded from a fixed set of prior draws).

Multi-GPU: launch with ``torchrun --nproc_per_node=G --no-python microvae train ...`` (or call
:func:`train_vae` under torchrun): each process takes ``batch_size / G`` images per step, gradients
are averaged by ``DistributedDataParallel`` (NCCL on GPUs, gloo on CPUs), and rank 0 writes files.
"""
import dataclasses
import hashlib
import json
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
from torch import nn

from ._validate import Seed, as_binary_batch, check_int
from .io import atomic_write, provenance
from .morphology import specific_surface
from .nn.losses import gram_matrices, kl_divergence, reconstruction_loss, style_and_mode_collapse, style_loss
from .nn.style import VGGStyleNet
from .nn.vae import VAE

__all__ = ["TrainConfig", "TrainResult", "PRESETS", "load_config", "train_vae", "sample", "load_checkpoint",
           "check_samples", "fit_latent", "dihedral", "CollapseWarning", "LATENTS", "BINARIZE"]

STYLE_MODES = ("paired", "all_pairs", "prior", "none")
LATENTS = ("prior", "fitted")
CHECKPOINT = "checkpoint.pt"
_FORMAT = "microvae-vae-checkpoint"
_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint and ``config.json``).

    Model: ``image_size``, ``channels`` (encoder stage widths), ``hidden``, ``latent``,
    ``kernel_size``, ``downsample`` ("pool" | "stride": :class:`~microvae.nn.VAE`). Loss: ``recon`` ("sse" | "bce"), weights ``w_kl``, ``w_st``, ``w_mc``,
    ``kl_warmup`` (steps over which the KL weight rises linearly from 0 to ``w_kl``; 0 = none),
    ``style_start`` and ``style_warmup`` (the style and mode-collapse terms are off for the first
    ``style_start`` steps, then their weights rise linearly to ``w_st``, ``w_mc`` over
    ``style_warmup`` steps),
    ``style_mode`` (module docstring), ``style_batch`` (images of each batch scored by the style
    terms, 0 = all: the style network costs most of a step on a CPU), ``style_normalize`` (below), ``style_encoder_grad`` (whether
    the style terms' gradient reaches the encoder through ``z ~ q(z | x)``; ``False`` decodes the
    sample a second time from a detached ``z`` so the style terms train the decoder only).
    Style network: ``style_layers`` (empty: the network's default, the last ReLU of each of
    the first four blocks), ``style_weights`` ("random" | "vgg19-normalized" | "imagenet" | path),
    ``style_width`` (channel multiplier, random weights only), ``style_seed``, ``style_center``
    (Gram matrices of mean-centred features, i.e. channel covariances, as in the authors' code).
    Optimization: ``batch_size`` (global), ``lr`` (Adam), ``steps``, ``augment`` (each training
    image seen under a random one of the 8 rotations/reflections of the square, :func:`dihedral`:
    eight times the data for a statistically isotropic medium, against memorizing a few hundred
    images; the style terms score the generated image turned back, against the cached Grams).
    Sampling (the defaults of :func:`sample`; they do not change training): ``sample_latent``
    ("prior": ``z ~ N(0, I)``; "fitted": ``z`` from the Gaussian with the mean and covariance of
    the training images' aggregate posterior, :func:`fit_latent`) and ``sample_smooth`` (Gaussian
    smoothing, in pixels, of the decoded probabilities before they are thresholded; "matched":
    the width at which the samples' specific surface matches the training images', found by
    :func:`check_samples`).
    Output: ``log_every``, ``checkpoint_every``, ``sample_every`` (steps; 0 disables mosaics).
    Speed: ``backend`` of the loss kernels, ``channels_last`` and ``bf16`` (bfloat16 autocast of
    the style network's forward; the Grams are still accumulated in float32).

    ``style_normalize=True`` (default) makes the weights independent of the style network and of
    the image size: the Grams of layer ``l`` are divided by the RMS Frobenius norm of the authentic
    Grams at that layer (so each layer's style term is a relative squared error and the layers of
    the style vector weigh alike), and the style and mode-collapse terms are multiplied by the
    number of pixels, as the reconstruction term sums over pixels:
    ``L = L_recon + w_kl L_KL + H W (w_st L_ST + w_mc L_MC)``. ``False`` gives the unnormalized
    ``L_recon + w_kl L_KL + w_st L_ST + w_mc L_MC`` with Grams ``F F^T / (C H W)``.
    """

    preset: str = "custom"
    image_size: int = 128
    channels: tuple = (32, 64, 128, 256)
    hidden: int = 256
    latent: int = 16
    kernel_size: int = 4
    downsample: str = "pool"
    recon: str = "sse"
    w_kl: float = 1.0
    kl_warmup: int = 0
    style_start: int = 0
    style_warmup: int = 0
    w_st: float = 0.05
    w_mc: float = 0.001
    style_mode: str = "paired"
    style_batch: int = 0
    style_normalize: bool = True
    style_encoder_grad: bool = True
    style_layers: tuple = ()
    style_weights: str = "random"
    style_width: float = 1.0
    style_seed: int = 0
    style_center: bool = False
    augment: bool = False
    sample_latent: str = "prior"
    sample_smooth: float | str = 0.0
    batch_size: int = 20
    lr: float = 1e-3
    steps: int = 200_000
    log_every: int = 10
    checkpoint_every: int = 1000
    sample_every: int = 5000
    backend: str = "auto"
    channels_last: bool = False
    bf16: bool = False

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "style_layers", tuple(self.style_layers))
        object.__setattr__(self, "style_weights", str(self.style_weights))
        if self.recon not in ("sse", "bce"):
            raise ValueError(f"recon must be 'sse' or 'bce', got {self.recon!r}")
        if self.style_mode not in STYLE_MODES:
            raise ValueError(f"style_mode must be one of {STYLE_MODES}, got {self.style_mode!r}")
        if self.sample_latent not in LATENTS:
            raise ValueError(f"sample_latent must be one of {LATENTS}, got {self.sample_latent!r}")
        if self.sample_smooth != "matched" and not (isinstance(self.sample_smooth, (int, float))
                                                    and 0 <= self.sample_smooth < float("inf")):
            raise ValueError(f"sample_smooth must be a finite number of pixels >= 0 or 'matched', "
                             f"got {self.sample_smooth!r}")
        if self.backend not in ("auto", "torch", "cpp", "cuda"):
            raise ValueError(f"backend must be auto, torch, cpp or cuda, got {self.backend!r}")
        for name in ("w_kl", "w_st", "w_mc", "lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        for name in ("batch_size", "steps", "log_every"):
            check_int(getattr(self, name), name)
        for name in ("checkpoint_every", "sample_every", "kl_warmup", "style_start", "style_warmup"):
            check_int(getattr(self, name), name, minimum=0)
        if check_int(self.style_batch, "style_batch", minimum=0) > self.batch_size:
            raise ValueError(f"style_batch must be in 0..batch_size={self.batch_size} (0 = all), got {self.style_batch}")
        if self.uses_mode_collapse and (self.style_batch or self.batch_size) < 2:
            raise ValueError("the mode-collapse loss (w_mc > 0) compares images within a batch: batch_size >= 2")

    @property
    def uses_style_net(self):
        return self.style_mode != "none" and (self.w_st > 0 or self.w_mc > 0)

    @property
    def uses_mode_collapse(self):
        return self.style_mode != "none" and self.w_mc > 0

    def model_kwargs(self):
        return {"image_size": self.image_size, "channels": self.channels, "hidden": self.hidden,
                "latent": self.latent, "kernel_size": self.kernel_size, "downsample": self.downsample}

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["channels"], d["style_layers"] = list(self.channels), list(self.style_layers)
        return d


# Presets, chosen from the ablations on Berea (docs/vae.md, "What makes the samples right"):
# Bernoulli reconstruction likelihood, the style terms after the plain VAE has learned, and
# samples drawn from the Gaussian fitted to the training images' aggregate posterior, thresholded
# at the training porosity. The decoded probabilities carry pixel-scale noise that breaks the
# pore space into specks (cluster and Euler densities +75 % to +155 % on Berea), and how much
# smoothing removes it without erasing real small features depends on the model and the data
# (1.25 px for the pooling layout on Berea, 0.625 px on the embedded set): the smoothing is
# matched to the training images' specific surface. "quick": 64^2 images, the authors' strided
# layout (32-32-64-64-96-96), a quarter-width random style network and 1000 steps: with matched
# smoothing the one setting of the ablations that met every target on both seeds without an
# optional download (ImageNet VGG19 features did too, at 4x the cost), in about 2 min of a core.
# "paper": the paper's sizes (128^2, the pooling layout of its text, 32-64-128-256, batch 20,
# Adam 1e-3, 200k iterations) and ImageNet VGG19 features, for a GPU (not measured).
_MEASURED = {"recon": "bce", "sample_latent": "fitted", "sample_smooth": "matched"}
PRESETS = {
    "paper": {"preset": "paper", **_MEASURED, "style_weights": "vgg19-normalized", "kl_warmup": 5000,
              "style_start": 5000, "style_warmup": 5000},
    "quick": {"preset": "quick", **_MEASURED, "image_size": 64, "downsample": "stride",
              "channels": (32, 32, 64, 64, 96, 96), "style_width": 0.25, "steps": 1000, "kl_warmup": 300,
              "style_start": 400, "style_warmup": 200, "checkpoint_every": 250, "sample_every": 500},
}


def load_config(preset: str = "quick", **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a preset with ``overrides`` applied.

    Raises ``ValueError`` for an unknown preset or an unknown/invalid setting.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown}; valid: {sorted(fields - {'preset'})}")
    return TrainConfig(**{**PRESETS[preset], **overrides})


@dataclasses.dataclass
class TrainResult:
    """Outcome of :func:`train_vae`: the run folder, the trained model (eval mode), its config,
    the number of steps done, the logged metrics, and the sample check of the final model
    (:func:`check_samples`: the porosity-matching threshold and the collapse diagnostics)."""

    run_dir: Path
    model: VAE
    config: TrainConfig
    step: int
    history: list
    samples: dict = None

    @property
    def threshold(self):
        """Pore-probability threshold at which samples have the training porosity on average."""
        return self.samples["threshold"]


def _data_fingerprint(images):
    return {"n": int(images.shape[0]), "shape": list(images.shape[1:]),
            "sha256": hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()}


def _init_distributed(device):
    """(rank, world, owned): join the torchrun process group if launched under torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return dist.get_rank(), dist.get_world_size(), True
    return 0, 1, False


def _pick_device(device):
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _ramp(step, start, length):
    """Weight factor at 1-based ``step``: 0 up to ``start``, then linear up to 1 over ``length`` steps."""
    if step is None:
        return 1.0
    if length == 0:
        return float(step > start)
    return min(1.0, max(0.0, (step - start) / length))


def dihedral(x: torch.Tensor, turns: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Images ``x`` ``(B, C, H, W)`` (square) under the symmetries of the square: image ``i`` is
    rotated by ``turns[i] % 4`` quarter turns, then mirrored left-right when ``turns[i] >= 4``;
    ``inverse`` undoes that transform."""
    out = torch.empty_like(x)
    for t in range(8):
        sel = (turns == t).nonzero().flatten().to(x.device)
        if not len(sel):
            continue
        y = x[sel]
        if inverse:
            y = torch.rot90(y.flip(-1) if t >= 4 else y, -(t % 4), dims=(-2, -1))
        else:
            y = torch.rot90(y, t % 4, dims=(-2, -1))
            y = y.flip(-1) if t >= 4 else y
        out[sel] = y
    return out


class _Generator(nn.Module):
    """The VAE's training forward: reconstruction logits, posterior parameters and the logits of
    the images scored by the style terms, in one module so DistributedDataParallel sees every
    use of the decoder in a single forward.

    Style images: the decoded prior draws ``z_prior`` (``prior`` mode); else the decoded posterior
    sample itself, or, with ``detach_style``, the same sample decoded again from a detached ``z``
    so that the style gradient trains the decoder only."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x, eps, z_prior=None, detach_style=False):
        mu, logvar = self.vae.encode(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = self.vae.decode_logits(z)
        if z_prior is not None:
            style_logits = self.vae.decode_logits(z_prior)
        elif detach_style:
            style_logits = self.vae.decode_logits(z.detach())
        else:
            style_logits = logits
        return logits, mu, logvar, style_logits


def train_vae(images: ArrayLike, preset: str = "quick", out_dir: str | os.PathLike | None = None, *, seed: int = 0,
              resume: bool = False, overwrite: bool = False, device: str | torch.device | None = None,
              progress: bool = True, **overrides: Any) -> TrainResult:
    """Train the morphology-aware VAE.

    Parameters
    ----------
    images : array_like, ``(N, S, S)``
        Binary authentic images (1 = pore), ``S = image_size`` of the config; ``N >= batch_size``.
    preset : {"quick", "paper"}
        Starting configuration (:data:`PRESETS`); ``overrides`` change any :class:`TrainConfig` field,
        e.g. ``image_size=128``, ``steps=5000``, ``style_mode="none"``, ``w_st=0``.
    out_dir : str or Path
        Run folder. Must not exist or be empty, unless ``resume`` or ``overwrite``.
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
    device = _pick_device(device)
    rank, world, owned_group = _init_distributed(device)
    try:
        if overwrite and not resume:
            _prepare_run_dir(Path(out_dir), resume, rank, overwrite=True)
        return _train(batch, config, Path(out_dir), int(seed), resume, device, progress, rank, world)
    finally:
        if owned_group:
            dist.destroy_process_group()


def _prepare_run_dir(run_dir, resume, rank, overwrite=False):
    """Check the run folder against ``resume``/``overwrite`` and make it; the messages name the
    option that fits the folder (a run stopped before its first checkpoint can only start afresh)."""
    has_checkpoint = (run_dir / CHECKPOINT).is_file()
    if resume:
        if not has_checkpoint:
            hint = ("the run stopped before its first checkpoint: start it afresh with overwrite=True (--overwrite)"
                    if (run_dir / "config.json").is_file() else "is it the folder of a microvae train run?")
            raise FileNotFoundError(f"cannot resume: {run_dir / CHECKPOINT} does not exist; {hint}")
    elif rank == 0:
        if run_dir.exists() and not run_dir.is_dir():
            raise FileExistsError(f"{run_dir} exists and is not a folder; choose another run folder")
        if run_dir.exists() and any(run_dir.iterdir()):
            if not overwrite:
                hint = ("resume=True (--resume) to continue it or overwrite=True (--overwrite) to start afresh"
                        if has_checkpoint else "it holds no checkpoint to resume from (the run stopped before "
                        "its first one): overwrite=True (--overwrite) starts it afresh")
                raise FileExistsError(f"{run_dir} exists and is not empty; choose a new run folder, or {hint}")
            if not (run_dir / "config.json").is_file():
                # Never delete a folder that is not a run folder, whatever the flag says.
                raise FileExistsError(f"{run_dir} is not empty and holds no microvae run (no config.json); "
                                      "overwrite=True (--overwrite) replaces run folders only: choose another folder")
            import shutil

            for p in run_dir.iterdir():
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        run_dir.mkdir(parents=True, exist_ok=True)


class _Session:
    """The state of a training run in one process (model, optimizer, random generator, style
    network and the cached authentic Grams) and its training step."""

    def __init__(self, images, config, seed, device, rank=0, world=1):
        if config.batch_size % world:
            raise ValueError(f"batch_size={config.batch_size} must be divisible by the {world} processes")
        self.local_batch = config.batch_size // world
        if config.uses_mode_collapse and self.local_batch < 2:
            raise ValueError("the mode-collapse loss needs at least 2 images per process per step")
        self.config, self.device, self.rank, self.world = config, device, rank, world
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.vae = VAE(**config.model_kwargs())
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.vae.to(device, memory_format=self.memory_format)
        self.optimizer = torch.optim.Adam(self.vae.parameters(), lr=config.lr)
        # One CPU generator drives batches and latent noise, so a run is reproducible on any device
        # and resumes exactly; each process draws its own batches.
        self.gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))
        self.style_net, self.ref_grams, self.style_fingerprint, self.layer_scales = None, None, None, None
        if config.uses_style_net:
            self.style_net = VGGStyleNet(config.style_layers or None, config.style_weights, config.style_width,
                                         seed=config.style_seed).to(device, memory_format=self.memory_format)
            self.style_fingerprint = self.style_net.fingerprint()
            self.ref_grams = _authentic_grams(self.style_net, images, device, config)
            if config.style_normalize:
                rms = [float(g.square().sum(dim=(1, 2)).mean().sqrt()) for g in self.ref_grams]
                if not all(r > 0 for r in rms):
                    raise ValueError("a style layer has all-zero Gram matrices on the authentic images; "
                                     "choose other style_layers")
                self.layer_scales = [1.0 / r for r in rms]
                self.ref_grams = [g * a for g, a in zip(self.ref_grams, self.layer_scales)]
        self.style_factor = config.image_size ** 2 if config.style_normalize else 1.0
        self.module = _Generator(self.vae)
        if world > 1:
            self.module = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[device.index] if device.type == "cuda" else None)
        self.images = torch.from_numpy(images)

    def step(self, step=None):
        """Optimization step number ``step`` (1-based; sets the warm-ups, ``None`` = past them) on
        a random batch; returns the loss terms (0-dim tensors, detached; no ``style``, ``mc``
        before ``style_start``)."""
        config, device, b = self.config, self.device, self.local_batch
        idx = torch.randperm(len(self.images), generator=self.gen)[:b]
        x = self.images[idx].to(device=device, dtype=torch.float32).unsqueeze(1)
        turns = None
        if config.augment:
            turns = torch.randint(0, 8, (b,), generator=self.gen)
            x = dihedral(x, turns)
        x = x.contiguous(memory_format=self.memory_format)
        eps = torch.randn(b, config.latent, generator=self.gen).to(device)
        z_prior = None
        if self.style_net is not None and config.style_mode == "prior":
            z_prior = torch.randn(b, config.latent, generator=self.gen).to(device)
            # Random pairing of prior draws with authentic images.
            idx = idx[torch.randperm(b, generator=self.gen)]
        # Before style_start the style terms weigh nothing: skip the style network entirely.
        ramp = _ramp(step, config.style_start, config.style_warmup)
        styled = self.style_net is not None and ramp > 0
        detach = styled and not config.style_encoder_grad
        logits, mu, logvar, style_logits = self.module(x, eps, z_prior if styled else None, detach)
        terms = {"recon": reconstruction_loss(logits, x, config.recon), "kl": kl_divergence(mu, logvar)}
        loss = terms["recon"] + _ramp(step, 0, config.kl_warmup) * config.w_kl * terms["kl"]
        if styled:
            # The style network dominates a step's cost: score only the first style_batch images.
            m = min(config.style_batch or b, b)
            generated = torch.sigmoid(style_logits[:m])
            if turns is not None and config.style_mode != "prior":
                # The cached authentic Grams are of the untransformed images: turn the output back.
                generated = dihedral(generated, turns[:m], inverse=True)
            idx = idx[:m].to(device)
            terms["style"], terms["mc"] = _style_terms(self.style_net, generated, [g[idx] for g in self.ref_grams],
                                                       self.layer_scales, config)
            loss = loss + ramp * self.style_factor * (config.w_st * terms["style"] + config.w_mc * terms["mc"])
        terms["loss"] = loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {k: v.detach() for k, v in terms.items()}

    def rng_states(self):
        """Generator states of all processes (collective under DDP)."""
        state = self.gen.get_state()
        if self.world == 1:
            return [state]
        # NCCL gathers CUDA tensors only; gloo takes CPU ones (device is then the CPU).
        local = state.to(self.device)
        parts = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(parts, local)
        return [p.cpu() for p in parts]


def _train(images, config, run_dir, seed, resume, device, progress, rank, world):
    _prepare_run_dir(run_dir, resume, rank)
    fingerprint = _data_fingerprint(images)
    session = _Session(images, config, seed, device, rank, world)
    vae = session.vae

    start, history = 0, []
    if resume:
        ckpt = load_checkpoint(run_dir / CHECKPOINT)
        _check_resumable(ckpt, config, seed, fingerprint, session.style_fingerprint, world)
        vae.load_state_dict(ckpt["model"])
        session.optimizer.load_state_dict(ckpt["optimizer"])
        session.gen.set_state(ckpt["rng"][rank])
        start = int(ckpt["step"])
        if start > config.steps:
            raise ValueError(f"the checkpoint is at step {start}, beyond steps={config.steps}")
        history = _truncate_metrics(run_dir / "metrics.jsonl", start) if rank == 0 else []
    if rank == 0:
        atomic_write(run_dir / "config.json",
                     lambda fh: json.dump({**provenance({"seed": seed, "world_size": world}),
                                           "config": config.to_dict(), "data": fingerprint}, fh, indent=2),
                     overwrite=True, mode="w")
    fixed_z = torch.randn(16, config.latent, generator=torch.Generator().manual_seed(seed))

    porosity = images.reshape(len(images), -1).mean(axis=1)
    surface = float(specific_surface(images).mean()) if config.sample_smooth == "matched" else None
    checked = {}

    def check():
        fitted = fit_latent(vae, images) if config.sample_latent == "fitted" else None
        return check_samples(vae, porosity, seed=seed, latent=fitted, smooth=config.sample_smooth, surface=surface)

    def save(step):
        rng = session.rng_states()
        if rank == 0:
            checked.update(check())
            _save_checkpoint(run_dir / CHECKPOINT, vae, session.optimizer, step, config, seed, rng, fingerprint,
                             session.style_fingerprint, checked)

    from tqdm import tqdm

    bar = tqdm(total=config.steps, initial=start, disable=not progress or rank != 0, unit="step",
               desc="train VAE", dynamic_ncols=True)
    # Per-term sums and counts: the style terms exist only for the steps that computed them.
    sums, counts, last_logged, t0 = {}, {}, start, time.perf_counter()
    vae.train()
    for step in range(start + 1, config.steps + 1):
        for k, v in session.step(step).items():
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
                _append_metrics(run_dir / "metrics.jsonl", row)
                bar.set_postfix({k: f"{row[k]:.4g}" for k in ("loss", "recon", "kl", "style", "mc") if k in row})
        if config.sample_every and step % config.sample_every == 0 and rank == 0:
            _write_mosaic(run_dir, vae, fixed_z, step)
        if (config.checkpoint_every and step % config.checkpoint_every == 0) or step == config.steps:
            save(step)
        bar.update(1)
    bar.close()
    vae.eval()
    if rank == 0:
        if not checked:  # resumed at the last step: nothing was saved in this call
            checked.update(check())
        if checked["collapsed"]:
            warnings.warn(f"the trained VAE looks collapsed ({checked['reason']}); its samples do not cover the "
                          "training images' variety: train longer, lower w_st/w_mc, or raise kl_warmup",
                          CollapseWarning, stacklevel=3)
    return TrainResult(run_dir=run_dir, model=vae, config=config, step=config.steps, history=history,
                       samples=dict(checked) or None)


class CollapseWarning(UserWarning):
    """The trained VAE's samples are near-identical or far less varied than the training images."""


# Collapse criteria of check_samples: a porosity spread below this fraction of the data's, or a
# mean pairwise correlation of samples above this value (independent samples: about 0).
_MIN_SPREAD_RATIO = 0.35
_MAX_PAIRWISE = 0.2


@torch.no_grad()
def fit_latent(vae: VAE, images: ArrayLike, chunk: int = 100) -> dict[str, list]:
    """Mean and covariance of the aggregate posterior ``q(z) = mean_i q(z | x_i)`` of images.

    With few training images and a strong decoder the encoder spreads the codes of the images
    it uses far wider than ``N(0, I)`` and leaves other latent dimensions unused, so prior draws
    fall between the codes, where the decoder was never trained and decodes fog. Sampling from the
    Gaussian fitted to the aggregate posterior (ex-post density estimation, Ghosh et al. 2020)
    draws where the codes are. By the law of total variance its covariance is
    ``Cov_i(mu_i) + mean_i diag(sigma_i^2)``.

    Parameters
    ----------
    vae : VAE
    images : ndarray ``(N, S, S)``
        Binary training images, N >= 2.
    chunk : int
        Images encoded at once.

    Returns
    -------
    dict with ``mean`` (list, ``latent``) and ``cov`` (nested list, ``latent x latent``).
    """
    device = next(vae.parameters()).device
    was_training = vae.training
    vae.eval()
    try:
        parts = [vae.encode(torch.from_numpy(np.ascontiguousarray(images[i:i + chunk])).to(
                 device=device, dtype=torch.float32).unsqueeze(1)) for i in range(0, len(images), chunk)]
    finally:
        vae.train(was_training)
    mu = torch.cat([m for m, _ in parts]).double().cpu().numpy()
    var = torch.cat([lv for _, lv in parts]).double().exp().cpu().numpy()
    cov = np.cov(mu, rowvar=False, ddof=1) + np.diag(var.mean(axis=0))
    return {"mean": mu.mean(axis=0).tolist(), "cov": np.atleast_2d(cov).tolist()}


def _latent_draws(n, dim, gen, fitted=None):
    """``n`` latent draws: ``N(0, I)``, or the fitted Gaussian of :func:`fit_latent`."""
    z = torch.randn(n, dim, generator=gen)
    if fitted is None:
        return z
    mean = torch.tensor(fitted["mean"], dtype=torch.float64)
    cov = torch.tensor(fitted["cov"], dtype=torch.float64)
    # Unused latent dimensions can leave the covariance singular in floating point.
    chol = torch.linalg.cholesky(cov + 1e-9 * torch.eye(dim, dtype=torch.float64) * cov.diagonal().mean())
    return (mean + z.double() @ chol.T).float()


def _smoothed(p, smooth):
    """Probabilities ``(n, S, S)`` Gaussian-smoothed by ``smooth`` px within each image."""
    if smooth > 0:
        from scipy.ndimage import gaussian_filter

        p = gaussian_filter(p, (0, smooth, smooth), mode="nearest")
    return p


def _probabilities(vae, z, smooth, device, batch_size=256):
    """Decoded pore probabilities ``(n, S, S)`` (NumPy float32), Gaussian-smoothed by ``smooth`` px."""
    p = torch.cat([vae.decode(c.to(device)).float().cpu() for c in z.split(batch_size)]).squeeze(1).numpy()
    return _smoothed(p, smooth)


@torch.no_grad()
def _check_probabilities(vae, latent, seed, n):
    """Unsmoothed probabilities of the ``n`` seeded latent draws the run's sample checks use."""
    device = next(vae.parameters()).device
    was_training = vae.training
    vae.eval()
    try:
        z = _latent_draws(n, vae.latent, torch.Generator().manual_seed(int(seed) + 7919), latent)
        return _probabilities(vae, z, 0.0, device)
    finally:
        vae.train(was_training)


def _porosity_threshold(p, porosity):
    """The threshold at which the probabilities ``p`` give mean porosity ``porosity``."""
    return float(np.quantile(p, 1.0 - porosity))


def _matched_threshold(vae, porosity, latent, smooth, seed, n=400):
    """Threshold at which ``n`` seeded samples, smoothed by ``smooth`` px, have mean porosity ``porosity``."""
    return _porosity_threshold(_smoothed(_check_probabilities(vae, latent, seed, n), smooth), porosity)


# Smoothing widths tried by sample_smooth="matched", pixels.
SMOOTH_GRID = tuple(0.125 * k for k in range(21))


def _matched_smooth(p, porosity, surface):
    """(the width of :data:`SMOOTH_GRID` at which the unsmoothed probabilities ``p``, smoothed and
    thresholded at mean porosity ``porosity``, have the mean specific surface closest to
    ``surface``, that surface)."""
    best = None
    for smooth in SMOOTH_GRID:
        q = _smoothed(p, smooth)
        got = float(specific_surface(q > _porosity_threshold(q, porosity)).mean())
        if best is None or abs(got - surface) < abs(best[1] - surface):
            best = (smooth, got)
    return best


@torch.no_grad()
def check_samples(vae: VAE, porosity: ArrayLike, n: int = 400, *, seed: int = 0, latent: dict | None = None,
                  smooth: float | str = 0.0, surface: float | None = None) -> dict[str, Any]:
    """Porosity-matching threshold and collapse diagnostics of a VAE's samples.

    Decodes ``n`` latent draws (from their own seeded generator, so training randomness is
    untouched), smooths the probabilities by ``smooth`` pixels, and finds the threshold ``t`` at
    which the thresholded samples have the mean training porosity: ``t`` is the
    ``1 - mean(porosity)`` quantile of all their probabilities. A blurry decoder puts few
    probabilities above 0.5, so the 0.5 threshold loses pore phase; ``t`` restores the porosity
    without changing which pixels are most likely pore.

    Parameters
    ----------
    vae : VAE
    porosity : array_like
        Per-image porosity of the training images.
    n : int
        Latent draws.
    seed : int
    latent : dict, optional
        The fitted latent Gaussian (:func:`fit_latent`); default ``N(0, I)``.
    smooth : float or "matched"
        Gaussian smoothing of the probabilities before thresholding, pixels. ``"matched"``: the
        width (0 to 2.5 px in steps of 1/8) at which the thresholded samples' mean specific
        surface (:func:`microvae.morphology.specific_surface`, face count) is closest to
        ``surface``. The decoder's pixel-scale noise adds interface in specks; how much smoothing
        removes it without erasing the data's own small features depends on the data, and the
        training images' interface density says which.
    surface : float, optional
        Mean specific surface of the training images (1/pixel), needed by ``smooth="matched"``.

    Returns
    -------
    dict
        ``threshold``, ``smooth`` (the width used, pixels), ``latent`` (the fitted Gaussian or
        ``None``); with ``smooth="matched"`` also ``surface`` and ``data_surface``;
        ``porosity_mean``/``porosity_std`` of the samples at that threshold and
        ``data_porosity_mean``/``data_porosity_std`` (ddof = 1); ``pairwise_correlation`` of the
        samples (:func:`microvae.compare.pairwise_correlation`); ``collapsed`` (bool) and ``reason``.
    """
    from .compare import pairwise_correlation

    porosity = np.asarray(porosity, dtype=np.float64)
    if smooth == "matched" and (surface is None or not surface > 0):
        raise ValueError(f"smooth='matched' needs the training images' mean specific surface > 0, got {surface!r}")
    p = _check_probabilities(vae, latent, seed, n)
    matched = {}
    if smooth == "matched":
        smooth, got = _matched_smooth(p, porosity.mean(), surface)
        matched = {"surface": got, "data_surface": float(surface)}
    p = _smoothed(p, smooth)
    threshold = _porosity_threshold(p, porosity.mean())
    x = (p > threshold).astype(np.uint8)
    phi = x.reshape(n, -1).mean(axis=1)
    out = {"threshold": threshold, "smooth": float(smooth), "latent": latent,
           "porosity_mean": float(phi.mean()), "porosity_std": float(phi.std(ddof=1)),
           "data_porosity_mean": float(porosity.mean()), "data_porosity_std": float(porosity.std(ddof=1)),
           "pairwise_correlation": float(pairwise_correlation(x)), **matched}
    reasons = []
    if out["porosity_std"] < _MIN_SPREAD_RATIO * out["data_porosity_std"]:
        reasons.append(f"sample porosity spread {out['porosity_std']:.4f} vs the data's {out['data_porosity_std']:.4f}")
    if not out["pairwise_correlation"] <= _MAX_PAIRWISE:
        reasons.append(f"mean pairwise correlation of samples {out['pairwise_correlation']:.3f}")
    out["collapsed"], out["reason"] = bool(reasons), "; ".join(reasons)
    return out


def _style_features(style_net, x, config):
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=config.bf16):
        feats = style_net(x)
    if config.style_center:
        # Centred in float32: the Gram of centred features is a difference of large sums.
        feats = [f.float() - f.float().mean(dim=(2, 3), keepdim=True) for f in feats]
    return feats


def _style_terms(style_net, generated, refs, layer_scales, config):
    feats = _style_features(style_net, generated, config)
    # The prior ablation pairs each prior draw with one (random) authentic image.
    mode = "paired" if config.style_mode == "prior" else config.style_mode
    if config.uses_mode_collapse:
        return style_and_mode_collapse(feats, refs, mode=mode, backend=config.backend, layer_scales=layer_scales)
    st = style_loss(feats, refs, mode=mode, backend=config.backend, layer_scales=layer_scales)
    return st, torch.zeros((), device=generated.device)


@torch.no_grad()
def _authentic_grams(style_net, images, device, config, chunk=50):
    """Gram matrices of every authentic image at every style layer, computed once."""
    per_layer = None
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(images[start:start + chunk]).to(device=device, dtype=torch.float32).unsqueeze(1)
        feats = _style_features(style_net, x, config)
        grams = [g.float() for g in gram_matrices(feats, backend=config.backend)]
        per_layer = [[g] for g in grams] if per_layer is None else [p + [g] for p, g in zip(per_layer, grams)]
    return [torch.cat(p) for p in per_layer]


def _save_checkpoint(path, vae, optimizer, step, config, seed, rng, fingerprint, style_fp, samples):
    state = {"format": _FORMAT, "version": _FORMAT_VERSION, "step": int(step), "seed": int(seed),
             "config": config.to_dict(), "model": vae.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": rng, "data": fingerprint, "style_fingerprint": style_fp, "samples": dict(samples),
             "provenance": provenance({"seed": int(seed)})}
    atomic_write(path, lambda fh: torch.save(state, fh), overwrite=True)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a training checkpoint (a dict; see :func:`train_vae`)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for truncated or foreign files
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a microvae VAE checkpoint")
    if ckpt.get("version") != _FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {ckpt.get('version')} is not supported "
                         f"(this microvae reads version {_FORMAT_VERSION})")
    missing = {"step", "config", "model", "optimizer", "rng", "data"} - set(ckpt)
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {sorted(missing)} (corrupt?)")
    return ckpt


# Settings that may change when a run is resumed: its length and how often it reports.
_RESUMABLE_CHANGES = {"steps", "log_every", "checkpoint_every", "sample_every", "backend", "sample_latent",
                      "sample_smooth"}


def _check_resumable(ckpt, config, seed, fingerprint, style_fp, world):
    saved = TrainConfig(**ckpt["config"]).to_dict()
    diff = {k: (saved[k], v) for k, v in config.to_dict().items()
            if k not in _RESUMABLE_CHANGES and saved.get(k) != v}
    if diff:
        raise ValueError("cannot resume with different settings (checkpoint, now): "
                         + ", ".join(f"{k}={a!r} vs {b!r}" for k, (a, b) in diff.items()))
    if ckpt.get("seed") != seed:
        raise ValueError(f"cannot resume: the run used seed={ckpt.get('seed')}, got seed={seed}")
    if ckpt["data"] != fingerprint:
        raise ValueError(f"cannot resume: the training images differ from the run's ({ckpt['data']['n']} images "
                         f"of {ckpt['data']['shape']}, sha256 {ckpt['data']['sha256'][:12]}...)")
    if ckpt.get("style_fingerprint") != style_fp:
        raise ValueError("cannot resume: the style network's weights differ from the run's")
    if len(ckpt["rng"]) != world:
        raise ValueError(f"cannot resume a {len(ckpt['rng'])}-process run with {world} processes")


def _append_metrics(path, row):
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")


def _truncate_metrics(path, step):
    """Rows logged up to ``step`` (dropping those of steps after the checkpoint), rewritten atomically."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["step"] <= step]
    atomic_write(path, lambda fh: fh.write("".join(json.dumps(r) + "\n" for r in rows)), overwrite=True, mode="w")
    return rows


@torch.no_grad()
def _write_mosaic(run_dir, vae, z, step):
    from .plotting import mosaic

    was_training = vae.training
    vae.eval()
    p = vae.decode(z.to(next(vae.parameters()).device)).squeeze(1).float().cpu().numpy()
    vae.train(was_training)
    mosaic(run_dir / "samples" / f"step_{step:07d}.png", (p > 0.5).astype(np.uint8), ncols=8,
           title=f"step {step} (threshold 0.5)", overwrite=True)


def _model_from(source):
    """(VAE, the run's sample check or ``{}``) of a sample() source."""
    if isinstance(source, VAE):
        return source, {}
    if isinstance(source, TrainResult):
        return source.model, dict(source.samples or {})
    if isinstance(source, (str, os.PathLike)):
        ckpt = load_checkpoint(source)
        config = TrainConfig(**ckpt["config"])
        vae = VAE(**config.model_kwargs())
        try:
            vae.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise ValueError(f"{source}: checkpoint weights do not fit its config ({exc})") from None
        return vae, dict(ckpt.get("samples") or {})
    raise TypeError(f"sample() takes a run folder, a checkpoint path, a VAE or a TrainResult, "
                    f"got {type(source).__name__}")


BINARIZE = ("matched", "threshold", "bernoulli")


@torch.no_grad()
def sample(source: str | os.PathLike | VAE | TrainResult, n: int, *, seed: Seed = None, binarize: str = "matched",
           threshold: float = 0.5, latent: str | None = None, smooth: float | None = None, batch_size: int = 256,
           device: str | torch.device | None = None) -> np.ndarray:
    """Generate ``n`` binary images from a trained VAE: ``x = binarize(decoder(z))``.

    Parameters
    ----------
    source : run folder, checkpoint path, :class:`~microvae.nn.VAE` or :class:`TrainResult`
    n : int
    seed : int, optional
        Seeds the latent draws (and the Bernoulli draws). ``None``: fresh randomness.
    binarize : {"matched", "threshold", "bernoulli"}
        ``"matched"`` (default): pore where the (smoothed) pore probability exceeds the run's
        porosity-matching threshold (:func:`check_samples`, stored in the checkpoint), so that
        samples have the training porosity on average; needs a run folder, checkpoint or
        :class:`TrainResult`. ``"threshold"``: pore where the probability exceeds ``threshold``.
        ``"bernoulli"``: each pixel drawn independently from its probability.
    threshold : float
        Threshold of ``binarize="threshold"``, in (0, 1).
    latent : {"prior", "fitted"}, optional
        Where ``z`` comes from: ``N(0, I)``, or the Gaussian fitted to the training images'
        aggregate posterior (:func:`fit_latent`, stored in the checkpoint of a run whose
        ``sample_latent`` is "fitted"). Default: the run's ``sample_latent`` ("prior" for a bare VAE).
    smooth : float, optional
        Gaussian smoothing of the decoded probabilities before they are thresholded, pixels.
        Default: the width the run's sample check used (its ``sample_smooth``, or the matched width
        of ``sample_smooth="matched"``; 0 for a bare VAE). With ``binarize="matched"`` and
        settings other than the run's, the threshold is found again for them.
    batch_size : int
        Images decoded at once.
    device : str or torch.device, optional
        Default: the model's device.

    Returns
    -------
    ndarray of uint8, shape ``(n, S, S)``, 1 = pore.
    """
    if binarize not in BINARIZE:
        raise ValueError(f"binarize must be one of {BINARIZE}, got {binarize!r}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    n = check_int(n, "n")
    vae, run = _model_from(source)
    run_latent = "fitted" if run.get("latent") else "prior"
    latent = run_latent if latent is None else latent
    smooth = float(run.get("smooth", 0.0)) if smooth is None else smooth
    if latent not in LATENTS:
        raise ValueError(f"latent must be one of {LATENTS}, got {latent!r}")
    if not (isinstance(smooth, (int, float)) and 0 <= smooth < float("inf")):
        raise ValueError(f"smooth must be a finite number of pixels >= 0, got {smooth!r}")
    fitted = run.get("latent") if latent == "fitted" else None
    if latent == "fitted" and fitted is None:
        raise ValueError("latent='fitted' needs the Gaussian fitted to the training images: pass the folder, checkpoint "
                         "or TrainResult of a run trained with sample_latent='fitted', or use latent='prior'")
    if binarize == "matched":
        if "threshold" not in run:
            raise ValueError("binarize='matched' needs the run's porosity-matching threshold: pass the run folder, "
                             "its checkpoint or the TrainResult (a bare VAE, or a checkpoint of an older microvae, "
                             "has none), or use binarize='threshold'")
        threshold = run["threshold"]
        if (latent, smooth) != (run_latent, float(run.get("smooth", 0.0))):
            threshold = _matched_threshold(vae, run["data_porosity_mean"], fitted, smooth, seed=0)
    device = torch.device(device) if device is not None else next(vae.parameters()).device
    was_training = vae.training
    vae.to(device).eval()
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    out = np.empty((n, vae.image_size, vae.image_size), dtype=np.uint8)
    # All latents at once: the same seed gives the same images whatever the batch size.
    z = _latent_draws(n, vae.latent, gen, fitted)
    try:
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            p = _probabilities(vae, z[start:start + m], smooth, device, batch_size)
            if binarize == "bernoulli":
                x = torch.bernoulli(torch.from_numpy(p).clamp(0, 1), generator=gen).numpy()
            else:
                x = p > threshold
            out[start:start + m] = x.astype(np.uint8)
    finally:
        vae.train(was_training)
    return out
