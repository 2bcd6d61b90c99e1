"""Drawing binary images from a trained VAE: the latent distribution (:func:`fit_latent`), the
smoothing and porosity-matching threshold of the decoded probabilities and the collapse check
(:func:`check_samples`), and :func:`sample`."""
import os

import numpy as np
import torch
from numpy.typing import ArrayLike

from .._validate import check_int
from ..choices import BINARIZE, LATENTS
from ..morphology import specific_surface
from ..nn.mode import eval_mode
from ..nn.vae import VAE
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .results import SampleCheck, TrainResult

__all__ = ["fit_latent", "check_samples", "sample", "CollapseWarning", "SMOOTH_GRID"]


class CollapseWarning(UserWarning):
    """The trained VAE's samples are near-identical or far less varied than the training images."""


# Collapse criteria of check_samples: a porosity spread below this fraction of the data's, or a
# mean pairwise correlation of samples above this value (independent samples: about 0).
_MIN_SPREAD_RATIO = 0.35
_MAX_PAIRWISE = 0.2

# Smoothing widths tried by sample_smooth="matched", pixels.
SMOOTH_GRID = tuple(0.125 * k for k in range(21))


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
    with eval_mode(vae):
        parts = [vae.encode(torch.from_numpy(np.ascontiguousarray(images[i:i + chunk])).to(
                 device=device, dtype=torch.float32).unsqueeze(1)) for i in range(0, len(images), chunk)]
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
    with eval_mode(vae):
        z = _latent_draws(n, vae.latent, torch.Generator().manual_seed(int(seed) + 7919), latent)
        return _probabilities(vae, z, 0.0, device)


def _porosity_threshold(p, porosity):
    """The threshold at which the probabilities ``p`` give mean porosity ``porosity``."""
    return float(np.quantile(p, 1.0 - porosity))


def _matched_threshold(vae, porosity, latent, smooth, seed, n=400):
    """Threshold at which ``n`` seeded samples, smoothed by ``smooth`` px, have mean porosity ``porosity``."""
    return _porosity_threshold(_smoothed(_check_probabilities(vae, latent, seed, n), smooth), porosity)


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
                  smooth: float | str = 0.0, surface: float | None = None) -> SampleCheck:
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
    SampleCheck
        The threshold, the smoothing width used, the latent Gaussian, the samples' and the data's
        porosity statistics, the samples' pairwise correlation, whether they look collapsed and
        why; with ``smooth="matched"`` also the surfaces compared.
    """
    from ..compare import pairwise_correlation

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
    porosity_std, data_porosity_std = float(phi.std(ddof=1)), float(porosity.std(ddof=1))
    pairwise = float(pairwise_correlation(x))
    reasons = []
    if porosity_std < _MIN_SPREAD_RATIO * data_porosity_std:
        reasons.append(f"sample porosity spread {porosity_std:.4f} vs the data's {data_porosity_std:.4f}")
    if not pairwise <= _MAX_PAIRWISE:
        reasons.append(f"mean pairwise correlation of samples {pairwise:.3f}")
    return SampleCheck(threshold=threshold, smooth=float(smooth), latent=latent, porosity_mean=float(phi.mean()),
                       porosity_std=porosity_std, data_porosity_mean=float(porosity.mean()),
                       data_porosity_std=data_porosity_std, pairwise_correlation=pairwise, collapsed=bool(reasons),
                       reason="; ".join(reasons), **matched)


def _model_from(source):
    """(VAE, the run's sample check or ``None``) of a sample() source."""
    if isinstance(source, VAE):
        return source, None
    if isinstance(source, TrainResult):
        return source.model, source.samples
    if isinstance(source, (str, os.PathLike)):
        ckpt = load_checkpoint(source)
        config = TrainConfig(**ckpt["config"])
        vae = VAE(**config.model_kwargs())
        try:
            vae.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise ValueError(f"{source}: checkpoint weights do not fit its config ({exc})") from None
        stored = ckpt.get("samples")
        return vae, SampleCheck.from_dict(stored) if stored else None
    raise TypeError(f"sample() takes a run folder, a checkpoint path, a VAE or a TrainResult, "
                    f"got {type(source).__name__}")


@torch.no_grad()
def sample(source: str | os.PathLike | VAE | TrainResult, n: int, *, seed: int | None = None,
           binarize: str = "matched", threshold: float = 0.5, latent: str | None = None, smooth: float | None = None,
           batch_size: int = 256, device: str | torch.device | None = None) -> np.ndarray:
    """Generate ``n`` binary images from a trained VAE: ``x = binarize(decoder(z))``.

    Parameters
    ----------
    source : run folder, checkpoint path, :class:`~microvae.nn.VAE` or :class:`~microvae.vae.TrainResult`
    n : int
    seed : int, optional
        Seeds the latent draws (and the Bernoulli draws). ``None``: fresh randomness.
    binarize : {"matched", "threshold", "bernoulli"}
        ``"matched"`` (default): pore where the (smoothed) pore probability exceeds the run's
        porosity-matching threshold (:func:`check_samples`, stored in the checkpoint), so that
        samples have the training porosity on average; needs a run folder, checkpoint or
        :class:`~microvae.vae.TrainResult`. ``"threshold"``: pore where the probability exceeds ``threshold``.
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
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
    n = check_int(n, "n")
    vae, run = _model_from(source)
    run_latent = "fitted" if run is not None and run.latent else "prior"
    run_smooth = run.smooth if run is not None else 0.0
    latent = run_latent if latent is None else latent
    smooth = run_smooth if smooth is None else smooth
    if latent not in LATENTS:
        raise ValueError(f"latent must be one of {LATENTS}, got {latent!r}")
    if not (isinstance(smooth, (int, float)) and 0 <= smooth < float("inf")):
        raise ValueError(f"smooth must be a finite number of pixels >= 0, got {smooth!r}")
    fitted = run.latent if latent == "fitted" and run is not None else None
    if latent == "fitted" and fitted is None:
        raise ValueError("latent='fitted' needs the Gaussian fitted to the training images: pass the folder, "
                         "checkpoint or TrainResult of a run trained with sample_latent='fitted', "
                         "or use latent='prior'")
    if binarize == "matched":
        if run is None:
            raise ValueError("binarize='matched' needs the run's porosity-matching threshold: pass the run folder, "
                             "its checkpoint or the TrainResult (a bare VAE, or a checkpoint of an older microvae, "
                             "has none), or use binarize='threshold'")
        threshold = run.threshold
        if (latent, smooth) != (run_latent, run_smooth):
            threshold = _matched_threshold(vae, run.data_porosity_mean, fitted, smooth, seed=0)
    device = torch.device(device) if device is not None else next(vae.parameters()).device
    with eval_mode(vae.to(device)):
        gen = torch.Generator()
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        out = np.empty((n, vae.image_size, vae.image_size), dtype=np.uint8)
        # All latents at once: the same seed gives the same images whatever the batch size.
        z = _latent_draws(n, vae.latent, gen, fitted)
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            p = _probabilities(vae, z[start:start + m], smooth, device, batch_size)
            if binarize == "bernoulli":
                x = torch.bernoulli(torch.from_numpy(p).clamp(0, 1), generator=gen).numpy()
            else:
                x = p > threshold
            out[start:start + m] = x.astype(np.uint8)
    return out
