"""Every descriptor of :mod:`microvae.morphology` of one image set at once, sharing the work."""
import numpy as np
from numpy.typing import ArrayLike

from .._validate import as_binary_batch
from .clusters import (
    MIN_SOLIDITY_SIZE,
    check_connectivity,
    cluster_function_from_labels,
    cluster_statistics_from_labels,
    euler_density,
    label_batch,
    solidity_from_labels,
)
from .lines import ChordLengths, check_r_max, lineal_path_from_runs, run_histograms
from .surface import perimeter_density, specific_surface

__all__ = ["descriptors"]


def descriptors(images: ArrayLike, r_max: int | None = None, *, connectivity: int | None = None,
                ndim: int | None = None) -> dict[str, np.ndarray]:
    """Every descriptor of this package for one image set, sharing the run-length histograms and
    the cluster labels between them (what :func:`microvae.compare.describe` needs).

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    r_max : int, optional
        Largest distance of the curves, pixels (default: half the smallest side).
    connectivity : int, optional
        Pore connectivity of the clusters and the Euler characteristic (:func:`label_clusters`).
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    dict of ndarray
        Curves ``(N, r_max + 1)``: ``lineal_path_pore``, ``lineal_path_solid`` (averaged over the
        axes), ``cluster`` (C2, pore phase); chord-length probabilities ``chord_pore``,
        ``chord_solid`` ``(N, max side)`` for lengths 1, 2, ...; per-image scalars ``(N,)``:
        ``mean_chord_pore``, ``mean_chord_solid``, ``specific_surface`` (face count),
        ``specific_surface_s2``, ``euler_density``, ``perimeter_density``, ``cluster_density``,
        ``largest_cluster_fraction``, ``percolation_fraction`` (fraction of the axes along which
        a cluster spans the image), ``pore_solidity`` (:func:`pore_solidity`; NaN for volumes).
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    shape = batch.shape[1:]
    r_max, connectivity = check_r_max(shape, r_max), check_connectivity(nd, connectivity)
    out = {}
    runs = [run_histograms(batch, ax) for ax in range(nd)]
    for phase, suffix in ((1, "pore"), (0, "solid")):
        lineal = np.zeros((len(batch), r_max + 1))
        chords = np.zeros((len(batch), max(shape) + 1), dtype=np.int64)
        for ax, hist in enumerate(runs):
            n = shape[ax]
            lineal += lineal_path_from_runs(hist[phase, 0], n, batch[0].size // n, r_max)
            chords[:, :n + 1] += hist[phase, 1]
        chord = ChordLengths(chords)
        out[f"lineal_path_{suffix}"] = lineal / nd
        out[f"chord_{suffix}"] = chord.probability[:, 1:]
        out[f"mean_chord_{suffix}"] = chord.mean
    labels, n_labels = label_batch(batch, nd, connectivity)
    out["cluster"] = cluster_function_from_labels(labels, r_max, tuple(range(nd)))
    clusters = cluster_statistics_from_labels(labels, n_labels, nd)
    out.update({
        "specific_surface": specific_surface(batch, "count", ndim=nd),
        "specific_surface_s2": specific_surface(batch, "s2", ndim=nd),
        "euler_density": euler_density(batch, connectivity, ndim=nd),
        "perimeter_density": perimeter_density(batch, ndim=nd),
        "cluster_density": clusters["cluster_density"],
        "largest_cluster_fraction": clusters["largest_fraction"],
        "percolation_fraction": clusters["percolates"].mean(axis=1),
        "pore_solidity": solidity_from_labels(labels, MIN_SOLIDITY_SIZE) if nd == 2 else np.full(len(batch), np.nan),
    })
    return out
