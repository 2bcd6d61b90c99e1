"""Statistics that judge generated microstructures against authentic ones.

Porosity distribution, radial two-point correlation S2 (:func:`microvae.correlations.s2`), and
two descriptors that S2 does not determine: the lineal-path function L(r) (connectedness along
straight lines) and the two-point cluster function C2(r) (connectedness through the pore
space). Convention: binary images, 1 = pore; lengths in pixels.
"""
import numpy as np

from .._validate import as_binary_batch

__all__ = ["lineal_path", "cluster_function", "compare"]


def _axis_batch(images, r_max):
    batch, nd = as_binary_batch(images)
    if nd != 2:
        raise ValueError("expected 2D images (N, H, W)")
    limit = min(batch.shape[1:]) - 1
    r_max = limit // 2 if r_max is None else int(r_max)
    if not 0 <= r_max <= limit:
        raise ValueError(f"r_max must be in [0, {limit}] for images of shape {batch.shape[1:]}, got {r_max}")
    return batch, r_max


def lineal_path(images, r_max=None):
    """Lineal-path function of the pore phase along the image axes.

    ``L(r)`` is the probability that a segment of length ``r`` (``r + 1`` pixels) lies wholly in
    the pore phase, estimated per image over every segment position inside the image (no
    periodic wrap) along rows and along columns, the two directions weighted equally.
    ``L(0)`` is the porosity; ``L`` is non-increasing.

    Parameters
    ----------
    images : array_like
        Binary ``(N, H, W)`` or ``(H, W)``, 1 = pore.
    r_max : int, optional
        Largest length, pixels (default: half the smaller side; at most ``side - 1``).

    Returns
    -------
    ndarray of float64, shape ``(N, r_max + 1)``
    """
    batch, r_max = _axis_batch(images, r_max)
    out = np.zeros((len(batch), r_max + 1))
    for pore in (batch.astype(bool), batch.astype(bool).transpose(0, 2, 1)):
        run = pore
        for r in range(r_max + 1):
            if r:
                # Segments of length r: those of length r - 1 extended by the next pixel.
                run = run[:, :, :-1] & pore[:, :, r:]
            out[:, r] += run.mean(axis=(1, 2)) / 2
    return out


def cluster_function(images, r_max=None, connectivity=4):
    """Two-point cluster function of the pore phase along the image axes.

    ``C2(r)`` is the probability that two points ``r`` pixels apart both lie in the same
    connected pore cluster of the image, estimated over every pair inside the image (no wrap,
    clusters are not joined across the boundary) along rows and columns, equally weighted.
    ``C2(0)`` is the porosity and ``C2 <= S2``.

    Parameters
    ----------
    images : array_like
        Binary ``(N, H, W)`` or ``(H, W)``, 1 = pore.
    r_max : int, optional
        Largest distance, pixels (default: half the smaller side).
    connectivity : {4, 8}
        Pixel connectivity of the pore clusters.

    Returns
    -------
    ndarray of float64, shape ``(N, r_max + 1)``
    """
    from scipy import ndimage

    batch, r_max = _axis_batch(images, r_max)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    labels, _ = ndimage.label(batch, structure=structure)
    out = np.zeros((len(batch), r_max + 1))
    for lab in (labels, labels.transpose(0, 2, 1)):
        n = lab.shape[2]
        for r in range(r_max + 1):
            a, b = lab[:, :, :n - r], lab[:, :, r:]
            out[:, r] += ((a == b) & (a > 0)).mean(axis=(1, 2)) / 2
    return out


def compare(generated, reference, r_max=None):
    """Porosity and two-point statistics of generated vs reference (authentic) images.

    Parameters
    ----------
    generated, reference : array_like
        Binary batches ``(N, H, W)``, 1 = pore, with the same image shape.
    r_max : int, optional
        Largest distance for the curves (default: half the smaller side).

    Returns
    -------
    dict
        ``porosity``: mean and std of each set, and the two-sample Kolmogorov-Smirnov
        statistic and p-value of the per-image porosities; for each of ``s2`` (radial,
        periodic), ``lineal_path`` and ``cluster`` (4-connected, along the axes): the mean
        curve of each set and the RMSE between the two mean curves over ``r = 0..r_max``.
    """
    from scipy.stats import ks_2samp

    from ..correlations import s2

    gen, _ = as_binary_batch(generated, name="generated")
    ref, _ = as_binary_batch(reference, name="reference")
    if gen.shape[1:] != ref.shape[1:]:
        raise ValueError(f"generated images {gen.shape[1:]} and reference images {ref.shape[1:]} differ in shape")
    r_max = min(gen.shape[1:]) // 2 if r_max is None else int(r_max)
    phi_g = gen.reshape(len(gen), -1).mean(axis=1)
    phi_r = ref.reshape(len(ref), -1).mean(axis=1)
    ks = ks_2samp(phi_g, phi_r)
    result = {"porosity": {"generated_mean": float(phi_g.mean()), "generated_std": float(phi_g.std()),
                           "reference_mean": float(phi_r.mean()), "reference_std": float(phi_r.std()),
                           "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue)}}
    for name, fn in (("s2", lambda x: s2(x, r_max=r_max)), ("lineal_path", lambda x: lineal_path(x, r_max)),
                     ("cluster", lambda x: cluster_function(x, r_max))):
        g, r = fn(gen).mean(axis=0), fn(ref).mean(axis=0)
        result[name] = {"generated": g, "reference": r, "rmse": float(np.sqrt(np.mean((g - r) ** 2)))}
    return result
