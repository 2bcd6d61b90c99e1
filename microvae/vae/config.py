"""Settings of a VAE training run: :class:`TrainConfig`, the measured :data:`PRESETS` and
:func:`load_config`."""
import dataclasses
import math
from typing import Any

from .._validate import check_int
from ..choices import BACKENDS, LATENTS, RECON_LOSSES, STYLE_MODES

__all__ = ["TrainConfig", "PRESETS", "load_config"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint and ``config.json``).

    Model: ``image_size``, ``channels`` (encoder stage widths), ``hidden``, ``latent``,
    ``kernel_size``, ``downsample`` ("pool" | "stride": :class:`~microvae.nn.VAE`). Loss: ``recon``
    ("sse" | "bce"), weights ``w_kl``, ``w_st``, ``w_mc``,
    ``kl_warmup`` (steps over which the KL weight rises linearly from 0 to ``w_kl``; 0 = none),
    ``style_start`` and ``style_warmup`` (the style and mode-collapse terms are off for the first
    ``style_start`` steps, then their weights rise linearly to ``w_st``, ``w_mc`` over
    ``style_warmup`` steps),
    ``style_mode`` (:mod:`microvae.vae`), ``style_batch`` (images of each batch scored by the style
    terms, 0 = all: the style network costs most of a step on a CPU), ``style_normalize`` (below),
    ``style_encoder_grad`` (whether the style terms' gradient reaches the encoder through
    ``z ~ q(z | x)``; ``False`` decodes the sample a second time from a detached ``z`` so the style
    terms train the decoder only).
    Style network: ``style_layers`` (empty: the network's default, the last ReLU of each of
    the first four blocks), ``style_weights`` ("random" | "vgg19-normalized" | "imagenet" | path),
    ``style_width`` (channel multiplier, random weights only), ``style_seed``, ``style_center``
    (Gram matrices of mean-centred features, i.e. channel covariances, as in the authors' code).
    Optimization: ``batch_size`` (global), ``lr`` (Adam), ``steps``, ``augment`` (each training
    image seen under a random one of the 8 rotations/reflections of the square, :func:`~microvae.vae.dihedral`:
    eight times the data for a statistically isotropic medium, against memorizing a few hundred
    images; the style terms score the generated image turned back, against the cached Grams).
    Sampling (the defaults of :func:`~microvae.vae.sample`; they do not change training): ``sample_latent``
    ("prior": ``z ~ N(0, I)``; "fitted": ``z`` from the Gaussian with the mean and covariance of
    the training images' aggregate posterior, :func:`~microvae.vae.fit_latent`) and ``sample_smooth`` (Gaussian
    smoothing, in pixels, of the decoded probabilities before they are thresholded; "matched":
    the width at which the samples' specific surface matches the training images', found by
    :func:`~microvae.vae.check_samples`).
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
        if self.recon not in RECON_LOSSES:
            raise ValueError(f"recon must be one of {RECON_LOSSES}, got {self.recon!r}")
        if self.style_mode not in STYLE_MODES:
            raise ValueError(f"style_mode must be one of {STYLE_MODES}, got {self.style_mode!r}")
        if self.sample_latent not in LATENTS:
            raise ValueError(f"sample_latent must be one of {LATENTS}, got {self.sample_latent!r}")
        if self.sample_smooth != "matched" and not (isinstance(self.sample_smooth, (int, float))
                                                    and 0 <= self.sample_smooth < float("inf")):
            raise ValueError(f"sample_smooth must be a finite number of pixels >= 0 or 'matched', "
                             f"got {self.sample_smooth!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        for name in ("w_kl", "w_st", "w_mc", "lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        for name in ("batch_size", "steps", "log_every"):
            check_int(getattr(self, name), name)
        for name in ("checkpoint_every", "sample_every", "kl_warmup", "style_start", "style_warmup"):
            check_int(getattr(self, name), name, minimum=0)
        if check_int(self.style_batch, "style_batch", minimum=0) > self.batch_size:
            raise ValueError(f"style_batch must be in 0..batch_size={self.batch_size} (0 = all), "
                             f"got {self.style_batch}")
        if self.uses_mode_collapse and (self.style_batch or self.batch_size) < 2:
            raise ValueError("the mode-collapse loss (w_mc > 0) compares images within a batch: batch_size >= 2")

    @property
    def uses_style_net(self) -> bool:
        """Whether the run needs the style network (style or mode-collapse terms on)."""
        return self.style_mode != "none" and (self.w_st > 0 or self.w_mc > 0)

    @property
    def uses_mode_collapse(self) -> bool:
        """Whether the mode-collapse term is on."""
        return self.style_mode != "none" and self.w_mc > 0

    def model_kwargs(self) -> dict[str, Any]:
        """The :class:`~microvae.nn.VAE` constructor arguments of this configuration."""
        return {"image_size": self.image_size, "channels": self.channels, "hidden": self.hidden,
                "latent": self.latent, "kernel_size": self.kernel_size, "downsample": self.downsample}

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values (lists for tuples), as stored with the run."""
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
