"""One process's state of a VAE training run and its optimization step (:class:`Trainer`).

Per step, on a random batch of authentic images,
``L = L_recon + w_kl L_KL + H W (w_st L_ST + w_mc L_MC)`` (:class:`~microvae.vae.TrainConfig`
explains the weights, their warm-ups and the normalization). The style loss compares the
style-network Gram matrices of generated images with those of the authentic batch; the authentic
Grams never change, so they are computed once at start-up and indexed per batch.
"""
import numpy as np
import torch
from torch import nn

from ..augment import dihedral
from ..nn.losses import gram_matrices, kl_divergence, reconstruction_loss, style_and_mode_collapse, style_loss
from ..nn.style import VGGStyleNet
from ..nn.vae import VAE
from .config import TrainConfig
from .parallel import gather_states

__all__ = ["Trainer"]


def _ramp(step, start, length):
    """Weight factor at 1-based ``step``: 0 up to ``start``, then linear up to 1 over ``length`` steps."""
    if step is None:
        return 1.0
    if length == 0:
        return float(step > start)
    return min(1.0, max(0.0, (step - start) / length))


class _TrainingForward(nn.Module):
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
        logits, mu, logvar, z = self.vae(x, eps=eps)
        if z_prior is not None:
            style_logits = self.vae.decode_logits(z_prior)
        elif detach_style:
            style_logits = self.vae.decode_logits(z.detach())
        else:
            style_logits = logits
        return logits, mu, logvar, style_logits


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
    per_layer: list[list[torch.Tensor]] = []
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(images[start:start + chunk]).to(device=device, dtype=torch.float32).unsqueeze(1)
        feats = _style_features(style_net, x, config)
        grams = [g.float() for g in gram_matrices(feats, backend=config.backend)]
        per_layer = [p + [g] for p, g in zip(per_layer, grams)] if per_layer else [[g] for g in grams]
    return [torch.cat(p) for p in per_layer]


class Trainer:
    """The state of a training run in one process and its training step.

    Parameters
    ----------
    images : ndarray, uint8, ``(N, S, S)``
        The binary training images (1 = pore), ``S = config.image_size``.
    config : TrainConfig
    seed : int
        Seeds the model initialization and this process's generator of batches and noise.
    device : str or torch.device
    rank, world : int
        This process's rank and the number of processes (DistributedDataParallel when
        ``world > 1``; the process group must be initialized).

    Attributes
    ----------
    vae : VAE
        The model being trained.
    optimizer : torch.optim.Adam
    gen : torch.Generator
        The CPU generator of every random draw of a step (batches, transforms, latent noise), so a
        run is reproducible on any device and resumes exactly; each process has its own.
    style_net : VGGStyleNet or None
        The frozen style network (``None`` when no style term is on).
    ref_grams : list of Tensor or None
        The authentic images' Gram matrices, one ``(N, C, C)`` tensor per style layer (divided by
        ``layer_scales`` with ``style_normalize``).
    layer_scales : list of float or None
        ``1 / RMS Frobenius norm`` of the authentic Grams of each layer (``style_normalize``).
    style_fingerprint : str or None
        SHA-256 of the style network's weights.
    style_factor : float
        Weight of the style terms beside the pixel-summed reconstruction term: the pixel count
        with ``style_normalize``, else 1.
    local_batch : int
        Images per process per step.
    """

    def __init__(self, images: np.ndarray, config: TrainConfig, *, seed: int, device: str | torch.device,
                 rank: int = 0, world: int = 1):
        device = torch.device(device)
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
        # torch's stub of Module.to lacks memory_format, which Module.to takes.
        self.vae.to(device, memory_format=self.memory_format)  # type: ignore[call-overload]
        self.optimizer = torch.optim.Adam(self.vae.parameters(), lr=config.lr)
        # One CPU generator drives batches and latent noise, so a run is reproducible on any device
        # and resumes exactly; each process draws its own batches.
        self.gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))
        self.style_net, self.ref_grams, self.style_fingerprint, self.layer_scales = None, None, None, None
        if config.uses_style_net:
            self.style_net = VGGStyleNet(config.style_layers or None, config.style_weights, config.style_width,
                                         seed=config.style_seed)
            self.style_net.to(device, memory_format=self.memory_format)  # type: ignore[call-overload]
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
        self.module: nn.Module = _TrainingForward(self.vae)
        if world > 1:
            self.module = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[device.index] if device.type == "cuda" else None)
        self.images = torch.from_numpy(images)

    def step(self, step: int | None = None) -> dict[str, torch.Tensor]:
        """Optimization step number ``step`` (1-based; sets the warm-ups, ``None`` = past them) on
        a random batch; returns the loss terms (0-dim tensors, detached; no ``style``, ``mc``
        before ``style_start``)."""
        config, device, b = self.config, self.device, self.local_batch
        # The draws from self.gen, in this order, are the run's randomness: a resumed run repeats them.
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
        # The style network and its reference Grams exist together (set in __init__).
        refs = self.ref_grams
        styled = refs is not None and ramp > 0
        detach = styled and not config.style_encoder_grad
        logits, mu, logvar, style_logits = self.module(x, eps, z_prior if styled else None, detach)
        terms = {"recon": reconstruction_loss(logits, x, config.recon), "kl": kl_divergence(mu, logvar)}
        loss = terms["recon"] + _ramp(step, 0, config.kl_warmup) * config.w_kl * terms["kl"]
        if styled and refs is not None:
            # The style network dominates a step's cost: score only the first style_batch images.
            m = min(config.style_batch or b, b)
            generated = torch.sigmoid(style_logits[:m])
            if turns is not None and config.style_mode != "prior":
                # The cached authentic Grams are of the untransformed images: turn the output back.
                generated = dihedral(generated, turns[:m], inverse=True)
            idx = idx[:m].to(device)
            terms["style"], terms["mc"] = _style_terms(self.style_net, generated, [g[idx] for g in refs],
                                                       self.layer_scales, config)
            loss = loss + ramp * self.style_factor * (config.w_st * terms["style"] + config.w_mc * terms["mc"])
        terms["loss"] = loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {k: v.detach() for k, v in terms.items()}

    def rng_states(self) -> list[torch.Tensor]:
        """Generator states of all processes (collective under DDP)."""
        return gather_states(self.gen.get_state(), device=self.device, world=self.world)
