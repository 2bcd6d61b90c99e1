"""Helpers of the MRF's sampling: per-image seeds, canvas margins, the compiled raster scan and
porosity matching."""
import numpy as np
from numpy.typing import ArrayLike

from .._validate import Seed, as_binary_batch, as_generator
from . import _sampler
from .features import causal_offsets, noncausal_offsets

__all__ = ["match_porosity"]


def image_seeds(n: int, seed: Seed) -> np.ndarray:
    """Two independent 64-bit seeds per image (sampling, porosity matching). Drawn as one block,
    so image ``k`` gets the same seeds whatever ``n`` is (``sample(10)[:5] == sample(5)``)."""
    return as_generator(seed).integers(0, 2 ** 64, size=(n, 2), dtype=np.uint64, endpoint=False)


def default_burn_in(S):
    """Sampled rows/columns discarded beside the seeded margins by default: ``2 S + 8``."""
    return 2 * S + 8


def canvas_pad(S, burn_in, gibbs_S, sweeps):
    """Margins of the sampling canvas around the output window: ``(pad, bottom)``. ``pad``
    (top, left, right) holds the causal reach plus the burn-in; with Gibbs sweeps, both must also
    cover the Gibbs reach, since the non-causal neighbourhood reaches below the window."""
    gibbs_reach = gibbs_S if sweeps else 0
    return max(S + burn_in, gibbs_reach), gibbs_reach


def raster_sample(seeds, shape, margins, S, causal_tree, tiles, noise_porosity, gibbs_S=None, gibbs_tree=None,
                  sweeps=0):
    """Compiled sampling of ``len(seeds)`` images of ``shape`` (:func:`_sampler.sample_images`).

    Parameters
    ----------
    seeds : ndarray of uint64, shape ``(n,)``
        One sampling seed per image (:func:`image_seeds`).
    shape : (int, int)
        Height and width of the output images.
    margins : (int, int)
        ``(pad, bottom)`` of the canvas (:func:`canvas_pad`).
    S : int
        Half-width of the causal neighbourhood.
    causal_tree : dict of ndarray
        The exported causal tree (:func:`~microvae.mrf.export_tree`).
    tiles : ndarray of uint8, shape ``(T, h, w)``
        Training images that seed the margins; ``T = 0`` seeds them with noise.
    noise_porosity : float
        Pore fraction of the noise margins.
    gibbs_S : int, optional
        Half-width of the non-causal neighbourhood of ``gibbs_tree``.
    gibbs_tree : dict of ndarray, optional
        The exported non-causal tree, used with ``sweeps > 0``.
    sweeps : int
        Gibbs sweeps over the output after the raster scan.

    Returns
    -------
    ndarray of uint8, shape ``(n,) + shape``
        1 = pore.
    """
    out_h, out_w = shape
    pad, bottom = margins
    width = out_w + 2 * pad
    causal = _sampler.flatten_tree(causal_tree, causal_offsets(S), width)
    gibbs = _sampler.flatten_tree(gibbs_tree, noncausal_offsets(gibbs_S), width) if sweeps else causal

    def chunk(lo, hi):
        return _sampler.sample_images(seeds[lo:hi], out_h, out_w, pad, bottom, S, tiles, noise_porosity,
                                      *causal, *gibbs, sweeps)

    return np.concatenate(_sampler.over_images(chunk, len(seeds)))


def match_porosity(images: ArrayLike, porosity: ArrayLike, *, seed: Seed = None) -> np.ndarray:
    """Bring each image to a target porosity by flipping pixels on the pore/solid interface.

    Parameters
    ----------
    images : array_like
        Binary batch ``(N, H, W)`` or one image; 1 = pore.
    porosity : float or array_like of shape ``(N,)``
        Target pore fraction(s) in [0, 1]; image ``k`` ends with exactly
        ``round(porosity[k] * H * W)`` pore pixels.
    seed : int or numpy Generator, optional
        Breaks ties between equally good candidate pixels.

    Returns
    -------
    ndarray of uint8, shape ``(N, H, W)``
        A corrected copy.

    Notes
    -----
    Only the phase in surplus is flipped, never both, so exactly ``|target - count|`` pixels
    change. Candidates are surplus-phase pixels with a 4-neighbour of the other phase; those
    with the most 8-neighbours of the other phase flip first (filling notches or trimming
    spurs), which keeps the morphology and the two-point statistics as close as possible to the
    uncorrected image while removing a porosity bias. Boundaries are not periodic.
    """
    batch, nd = as_binary_batch(images)
    if nd != 2:
        raise ValueError("match_porosity takes 2D images (N, H, W)")
    targets = np.asarray(porosity, dtype=np.float64)
    if targets.ndim > 1 or (targets.ndim == 1 and len(targets) != len(batch)):
        raise ValueError(f"porosity must be one value or one per image ({len(batch)}), got shape {targets.shape}")
    targets = np.broadcast_to(targets, (len(batch),))
    if not np.all(np.isfinite(targets)) or np.any((targets < 0) | (targets > 1)):
        raise ValueError("target porosity must lie in [0, 1]")
    return match_batch(batch.copy(), targets, image_seeds(len(batch), seed)[:, 1])


def match_batch(batch: np.ndarray, targets: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """:func:`match_porosity` in place on a validated batch, without the checks.

    Parameters
    ----------
    batch : ndarray of uint8, shape ``(N, H, W)``
        Binary images, changed in place.
    targets : ndarray of float64, shape ``(N,)``
        Target pore fractions in [0, 1].
    seeds : ndarray of uint64, shape ``(N,)``
        One tie-breaking seed per image.

    Returns
    -------
    ndarray of uint8
        ``batch``.
    """
    counts = np.rint(targets * batch.shape[1] * batch.shape[2]).astype(np.int64)
    _sampler.over_images(lambda lo, hi: _sampler.match_counts(batch[lo:hi], counts[lo:hi], seeds[lo:hi]), len(batch))
    return batch
