"""The named choices of microvae's options, each defined once.

The functions that take these options validate against these tuples, and the command line
offers them as its ``choices``. This module imports nothing: the CLI reads it while it builds
its parser, before torch is loaded.
"""

__all__ = ["STYLE_MODES", "LOSS_MODES", "BACKENDS", "LATENTS", "BINARIZE", "RECON_LOSSES", "DOWNSAMPLE"]

# Which generated images the VAE's style terms score during training (microvae.vae.TrainConfig,
# ``style_mode``): the decoded posterior sample against its own input, against every input of
# the batch, decoded prior draws against random inputs, or no style terms (a plain VAE).
STYLE_MODES = ("paired", "all_pairs", "prior", "none")

# How the fused style and mode-collapse losses pair generated with authentic images
# (microvae.ops, microvae.nn.losses, ``mode``): image i with reference i, or with every reference.
LOSS_MODES = ("paired", "all_pairs")

# Implementations of the loss kernels (``backend``): the compiled op where it is built, else the
# pure-torch reference; the reference; the compiled CPU kernel; the compiled CUDA kernel.
BACKENDS = ("auto", "torch", "cpp", "cuda")

# Where the VAE's sampled latents come from (``latent``, ``sample_latent``): N(0, I), or the
# Gaussian fitted to the training images' aggregate posterior.
LATENTS = ("prior", "fitted")

# How decoded pore probabilities become binary images (``binarize``): at the run's
# porosity-matching threshold, at a given threshold, or one Bernoulli draw per pixel.
BINARIZE = ("matched", "threshold", "bernoulli")

# Reconstruction likelihoods of the VAE (``recon``): Gaussian (sum of squared errors) or Bernoulli.
RECON_LOSSES = ("sse", "bce")

# Layouts of a VAE stage (``downsample``): two convolutions and a max-pool, or one strided convolution.
DOWNSAMPLE = ("pool", "stride")
