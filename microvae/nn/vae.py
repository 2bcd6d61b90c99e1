"""The VAE of the morphology-aware generator (paper §3.1, DESIGN.md §8).

Two layouts of the same idea (``downsample``):

- ``"pool"``: stages of two 4x4 convolutions ("same" padding, ReLU) followed by a 2x2 max-pool
  (the paper's text); the decoder mirrors it with a 2x nearest-neighbour upsampling and two 4x4
  convolutions per stage.
- ``"stride"``: one 4x4 convolution of stride 2 per stage (the authors' code: widths
  32-32-64-64-96-96); the decoder mirrors it with 4x4 transposed convolutions of stride 2.

Both end the encoder in fully connected layers of ``hidden`` and 2 x ``latent`` units (mean and
log-variance of the Gaussian latent) and start the decoder with fully connected layers back to
the last feature map; the decoder ends in one output channel: the logit of the pore
probability. Image size, channel widths, hidden and latent sizes are configuration values; the
image side must be divisible by ``2 ** len(channels)``.
"""
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..choices import DOWNSAMPLE

__all__ = ["VAE"]


class _SameConv2d(nn.Conv2d):
    """Stride-1 convolution with output size = input size for any kernel size. Even kernels need
    asymmetric zero padding (one more pixel right/below, PyTorch's ``padding="same"``
    convention); padding explicitly avoids the warning and hidden copy of ``padding="same"``."""

    def __init__(self, c_in, c_out, k):
        super().__init__(c_in, c_out, k)
        lo = (k - 1) // 2
        self._pad = (lo, k - 1 - lo, lo, k - 1 - lo)

    def forward(self, x):
        return super().forward(F.pad(x, self._pad))


class VAE(nn.Module):
    """Convolutional VAE for one-channel binary images (1 = pore).

    Parameters
    ----------
    image_size : int
        Side of the square images (e.g. 64 or 128).
    channels : sequence of int
        Widths of the encoder stages; each halves the side (paper: 4 stages at 128).
    hidden : int
        Width of the fully connected layer (paper: 256).
    latent : int
        Latent dimension (paper: 16).
    kernel_size : int
        Convolution size (paper: 4). With ``downsample="stride"`` it must be even (a stride-2
        convolution of an even kernel with padding ``k/2 - 1`` halves the side exactly).
    downsample : {"pool", "stride"}
        Layout of a stage (module docstring).
    """

    def __init__(self, image_size: int = 128, channels: Sequence[int] = (32, 64, 128, 256), hidden: int = 256,
                 latent: int = 16, kernel_size: int = 4, downsample: str = "pool"):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty sequence of positive widths, got {channels}")
        side = image_size // 2 ** len(channels)
        if image_size < 2 or side < 1 or side * 2 ** len(channels) != image_size:
            raise ValueError(f"image_size={image_size} must be divisible by 2**{len(channels)} = "
                             f"{2 ** len(channels)} (each stage of channels={channels} halves the side); "
                             f"use fewer stages or a larger image size")
        if hidden < 1 or latent < 1 or kernel_size < 1:
            raise ValueError("hidden, latent and kernel_size must be positive")
        if downsample not in DOWNSAMPLE:
            raise ValueError(f"downsample must be one of {DOWNSAMPLE}, got {downsample!r}")
        if downsample == "stride" and kernel_size % 2:
            raise ValueError(f"downsample='stride' needs an even kernel_size, got {kernel_size}")
        self._config = {"image_size": int(image_size), "channels": list(channels), "hidden": int(hidden),
                        "latent": int(latent), "kernel_size": int(kernel_size), "downsample": downsample}
        self.image_size, self.latent = int(image_size), int(latent)
        self._side, k = side, kernel_size

        # The strided layout is a deep stack without pooling: with ReLU, some initializations start
        # with no signal through the 1x1 bottleneck and never learn (measured on Berea: 3 of 4
        # seeds); leaky units (slope 0.2, the DCGAN convention) keep the gradient flowing.
        def act():
            return nn.ReLU(inplace=True) if downsample == "pool" else nn.LeakyReLU(0.2, inplace=True)

        enc, c_in = [], 1
        for c in channels:
            if downsample == "pool":
                enc += [_SameConv2d(c_in, c, k), act(), _SameConv2d(c, c, k), act(), nn.MaxPool2d(2)]
            else:
                enc += [nn.Conv2d(c_in, c, k, stride=2, padding=k // 2 - 1), act()]
            c_in = c
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(channels[-1] * side * side, hidden),
                                     act(), nn.Linear(hidden, 2 * latent))

        self.decoder_fc = nn.Sequential(nn.Linear(latent, hidden), act(),
                                        nn.Linear(hidden, channels[-1] * side * side), act())
        dec = []
        if downsample == "pool":
            for i in reversed(range(len(channels))):
                c_out = channels[i - 1] if i > 0 else channels[0]
                dec += [nn.Upsample(scale_factor=2, mode="nearest"), _SameConv2d(channels[i], channels[i], k),
                        act(), _SameConv2d(channels[i], c_out, k), act()]
            dec.append(_SameConv2d(channels[0], 1, k))
        else:
            for i in reversed(range(1, len(channels))):
                dec += [nn.ConvTranspose2d(channels[i], channels[i - 1], k, stride=2, padding=k // 2 - 1), act()]
            dec.append(nn.ConvTranspose2d(channels[0], 1, k, stride=2, padding=k // 2 - 1))
        self.decoder = nn.Sequential(*dec)
        self._channels_last = channels[-1]
        self._init_weights(0.0 if downsample == "pool" else 0.2)

    @torch.no_grad()
    def _init_weights(self, slope):
        """He initialization for the activations' slope, so that the signal keeps its scale through
        the whole encoder-decoder stack; PyTorch's default shrinks it by about sqrt(3) per layer,
        and through some 16 layers the decoder then starts out ignoring z (on Berea, 3 of 4 seeds
        of the strided layout stayed at the mean image). The encoder's output layer starts small (gain
        0.1), so that training starts from q(z | x) ~ N(0, I); the decoder's has unit gain."""
        gain = (2.0 / (1.0 + slope ** 2)) ** 0.5
        layers = [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
        head = id(self.encoder[-1])
        for m in layers:
            if isinstance(m, nn.Linear):
                fan_in = m.in_features
            elif isinstance(m, nn.ConvTranspose2d):
                # Each output pixel of a stride-s transposed convolution sums in * k^2 / s^2 products.
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1] / (m.stride[0] * m.stride[1])
            else:
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            g = 1.0 if m is layers[-1] else 0.1 if id(m) == head else gain
            m.weight.normal_(0.0, g / fan_in ** 0.5)
            m.bias.zero_()

    @property
    def config(self) -> dict:
        """Constructor arguments, to rebuild the model from a checkpoint."""
        return dict(self._config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance ``(B, latent)`` of q(z | x) for images ``(B, 1, H, W)`` in [0, 1]."""
        if x.dim() != 4 or x.shape[1:] != (1, self.image_size, self.image_size):
            raise ValueError(f"VAE expects images (B, 1, {self.image_size}, {self.image_size}), got {tuple(x.shape)}")
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pore logits ``(B, 1, H, W)`` for latents ``(B, latent)``."""
        h = self.decoder_fc(z).view(-1, self._channels_last, self._side, self._side)
        return self.decoder(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pore probabilities ``(B, 1, H, W)`` for latents ``(B, latent)``."""
        return torch.sigmoid(self.decode_logits(z))

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None, *,
                       eps: torch.Tensor | None = None) -> torch.Tensor:
        """``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)`` drawn from ``generator``, or the
        given standard-normal draw ``eps`` (same shape as ``mu``)."""
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        elif generator is not None:
            raise ValueError("pass either generator (to draw eps) or eps, not both")
        elif eps.shape != mu.shape:
            raise ValueError(f"eps must have the latent shape {tuple(mu.shape)}, got {tuple(eps.shape)}")
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, *,
                eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw ``z ~ q(z | x)``, decode: returns ``(logits, mu, logvar, z)``.

        The standard-normal noise of ``z`` is drawn from ``generator`` (default: torch's global
        generator), or given as ``eps`` ``(B, latent)``: a trainer that draws all of a step's
        randomness from one generator, in a fixed order, passes its draw.
        """
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator, eps=eps)
        return self.decode_logits(z), mu, logvar, z
