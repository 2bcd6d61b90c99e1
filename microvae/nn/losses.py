"""Loss terms of the morphology-aware VAE (DESIGN.md §8, paper Eqs. 5–9).

``L = L_recon + w_kl L_KL + w_st L_ST + w_mc L_MC``, each averaged over the batch.

Style features are lists with one tensor per style-network layer, ``(B, C, H, W)``. The Gram
matrix of an image at a layer is normalized by the layer size:

    ``G = F F^T / (C H W)``,  F the ``(C, H W)`` matrix of activations,

so layers of different widths and resolutions weigh alike and the Grams of images of different
sizes are comparable. The style and mode-collapse losses dispatch to the fused compiled ops of
:mod:`microvae.ops` (``backend="auto"``) or to their pure-torch references (``backend="torch"``).
Features in float16/bfloat16 (autocast) are promoted to float32 first: Gram sums over thousands
of pixels lose too much in half precision.
"""
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .. import ops
from ..choices import LOSS_MODES, RECON_LOSSES

__all__ = ["gram_matrices", "style_loss", "mode_collapse_loss", "style_and_mode_collapse", "reconstruction_loss",
           "kl_divergence", "LOSS_MODES"]


def _layers(feats, name):
    if isinstance(feats, torch.Tensor) or not len(feats):
        raise ValueError(f"{name} must be a non-empty list of per-layer tensors")
    return list(feats)


def _layer_scales(layer_scales, n):
    if layer_scales is None:
        return [1.0] * n
    scales = [float(s) for s in layer_scales]
    if len(scales) != n or not all(s > 0 and s < float("inf") for s in scales):
        raise ValueError(f"layer_scales must be {n} positive finite numbers (one per layer), got {layer_scales}")
    return scales


def _flat_layers(feats, name, layer_scales):
    """``[(F as (B, C, HW), Gram scale), ...]`` with the Gram scale ``layer_scale / (C H W)``."""
    feats = _layers(feats, name)
    out = []
    for i, (feat, extra) in enumerate(zip(feats, _layer_scales(layer_scales, len(feats)))):
        if not isinstance(feat, torch.Tensor) or feat.dim() != 4 or not feat.is_floating_point():
            shape = tuple(feat.shape) if isinstance(feat, torch.Tensor) else type(feat).__name__
            raise ValueError(f"{name}[{i}] must be floating (B, C, H, W) feature maps, got {shape}")
        if feat.dtype in (torch.float16, torch.bfloat16):
            feat = feat.float()
        b, c, h, w = feat.shape
        out.append((feat.reshape(b, c, h * w), extra / (c * h * w)))
    return out


def gram_matrices(feats: Sequence[torch.Tensor], backend: str = "auto",
                  layer_scales: Sequence[float] | None = None) -> list[torch.Tensor]:
    """Normalized Gram matrices ``F F^T / (C H W)`` of every layer.

    Parameters
    ----------
    feats : list of Tensor, each ``(B, C, H, W)``
    backend : {"auto", "torch", "cpp", "cuda"}
    layer_scales : sequence of float, optional
        Extra factor per layer on the Grams (default 1); see :func:`style_loss`.

    Returns
    -------
    list of Tensor, each ``(B, C, C)``, differentiable. Pass them as ``ref_feats`` to reuse the
    Grams of fixed (authentic) images instead of recomputing them.
    """
    return [ops.gram(f, backend=backend) * s for f, s in _flat_layers(feats, "feats", layer_scales)]


def _ref_grams(ref_feats, gen_flat, backend, layer_scales):
    refs = _layers(ref_feats, "ref_feats")
    if len(refs) != len(gen_flat):
        raise ValueError(f"ref_feats has {len(refs)} layers but gen_feats {len(gen_flat)}")
    scales = _layer_scales(layer_scales, len(refs))
    out = []
    for i, (ref, (f, _)) in enumerate(zip(refs, gen_flat)):
        if isinstance(ref, torch.Tensor) and ref.dim() == 3:
            g = ref.to(f.dtype)
        else:
            g = gram_matrices([ref], backend=backend, layer_scales=[scales[i]])[0].to(f.dtype)
        if g.shape[1:] != (f.shape[1], f.shape[1]):
            raise ValueError(f"layer {i}: reference has {g.shape[1]} channels, generated features {f.shape[1]}")
        out.append(g)
    return out


def _style_terms(gen_feats, ref_feats, mode, backend, layer_scales):
    if mode not in LOSS_MODES:
        raise ValueError(f"mode must be one of {LOSS_MODES}, got {mode!r}")
    gen = _flat_layers(gen_feats, "gen_feats", layer_scales)
    refs = _ref_grams(ref_feats, gen, backend, layer_scales)
    losses, grams = zip(*(ops.style_layer(f, r, mode=mode, scale=s, backend=backend)
                          for (f, s), r in zip(gen, refs)))
    return torch.stack(losses).sum(), list(grams)


def style_loss(gen_feats: Sequence[torch.Tensor], ref_feats: Sequence[torch.Tensor], mode: str = "paired",
               backend: str = "auto", layer_scales: Sequence[float] | None = None) -> torch.Tensor:
    """Style (morphology) loss between generated and reference images, summed over layers.

    Parameters
    ----------
    gen_feats : list of Tensor, each ``(B, C_l, H_l, W_l)``
        Style-network features of the generated images.
    ref_feats : list of Tensor
        Per layer either features ``(P, C_l, H', W')`` of the reference images or their Gram
        matrices ``(P, C_l, C_l)`` from :func:`gram_matrices` (cache these for fixed images;
        computed with the same ``layer_scales``).
    mode : {"paired", "all_pairs"}
        ``"paired"`` (default; paper §3.2): generated image ``b`` is compared with reference
        ``b`` (``P = B``), ``mean_b sum_l ||G_l[b] - R_l[b]||_F^2``. ``"all_pairs"`` (paper
        Eq. 8): every generated image with every reference,
        ``mean_{s,p} sum_l ||G_l[s] - R_l[p]||_F^2``, in O(B + P) time.
    backend : {"auto", "torch", "cpp", "cuda"}
    layer_scales : sequence of float, optional
        Factor ``a_l`` on the Grams of layer ``l`` (default 1), which weighs that layer's loss by
        ``a_l^2`` (and its share of the style vector by ``a_l``). The trainer uses
        ``a_l = 1 / rms_p ||R_l[p]||_F`` so that each layer's term is a relative error.

    Returns
    -------
    Tensor, 0-dim. The paper's Eq. 8 sums over pairs; this is the mean over them (Eq. 8 divided
    by the number of pairs), so the weight ``w_st`` does not depend on the batch size.
    """
    return _style_terms(gen_feats, ref_feats, mode, backend, layer_scales)[0]


def mode_collapse_loss(gen_feats: Sequence[torch.Tensor], backend: str = "auto",
                       layer_scales: Sequence[float] | None = None) -> torch.Tensor:
    """Mode-collapse loss (paper Eq. 9): mean squared cosine similarity of the style vectors.

    ``2/(B(B-1)) sum_{i<j} (s_i . s_j / |s_i||s_j|)^2``, where ``s_i`` concatenates the
    normalized Grams of image ``i`` over all layers (each times its ``layer_scales`` factor).
    Needs ``B >= 2``.
    """
    return ops.mode_collapse(gram_matrices(gen_feats, backend=backend, layer_scales=layer_scales), backend=backend)


def style_and_mode_collapse(gen_feats: Sequence[torch.Tensor], ref_feats: Sequence[torch.Tensor],
                            mode: str = "paired", backend: str = "auto",
                            layer_scales: Sequence[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Style and mode-collapse losses together, sharing the generated images' Grams.

    Same arguments as :func:`style_loss`. Each layer's Gram is computed once and serves both
    losses; with a compiled backend the backward of each layer is one GEMM for both.

    Returns
    -------
    (style, mc) : tuple of 0-dim Tensors
    """
    style, grams = _style_terms(gen_feats, ref_feats, mode, backend, layer_scales)
    return style, ops.mode_collapse(grams, backend=backend)


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "sse") -> torch.Tensor:
    """Reconstruction term, summed over pixels and averaged over the batch.

    Parameters
    ----------
    logits : Tensor, ``(B, 1, H, W)``
        Decoder output before the sigmoid.
    target : Tensor, same shape, values in [0, 1] (1 = pore)
    kind : {"sse", "bce"}
        ``"sse"``: Gaussian negative log-likelihood with sigma = 1 (the paper's choice),
        ``0.5 * sum (sigmoid(logits) - x)^2`` per image (constant dropped). ``"bce"``: Bernoulli
        negative log-likelihood, ``sum BCE(sigmoid(logits), x)`` per image, computed from the logits.
    """
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    b = logits.shape[0]
    if kind == "sse":
        return 0.5 * (torch.sigmoid(logits) - target).square().sum() / b
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / b
    raise ValueError(f"kind must be one of {RECON_LOSSES}, got {kind!r}")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form ``KL(N(mu, diag exp(logvar)) || N(0, I))``, summed over latents, batch mean."""
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(f"mu and logvar must both be (B, latent), got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum() / mu.shape[0]
