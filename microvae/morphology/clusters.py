"""Connectivity of the pore space: pore clusters, the two-point cluster function, cluster
statistics and percolation, the Euler characteristic and the convexity of the pores.

Clusters are the connected components of the pore phase under a pixel connectivity (4 or 8 in
2D, 6 or 26 in 3D; :func:`check_connectivity`), never joined across the image boundary.
"""
import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from .._validate import as_binary_batch, check_int
from .lines import check_r_max, image_lines, spatial_axes

__all__ = ["label_clusters", "cluster_function", "cluster_statistics", "euler_density", "pore_solidity"]

# Pixel connectivities of the pore clusters: value -> rank for generate_binary_structure, which is
# also scikit-image's ``connectivity`` argument.
_CONNECTIVITY = {2: {4: 1, 8: 2}, 3: {6: 1, 26: 3}}
_DEFAULT_CONNECTIVITY = {2: 4, 3: 6}
#: Pore clusters of fewer pixels do not enter the solidity (their hull says little about shape).
MIN_SOLIDITY_SIZE = 10


def check_connectivity(nd: int, connectivity: int | None) -> int:
    """Pore connectivity checked for ``nd``-dimensional images: 4 or 8 in 2D, 6 or 26 in 3D
    (None: 4 and 6, face neighbours)."""
    if connectivity is None:
        connectivity = _DEFAULT_CONNECTIVITY[nd]
    if connectivity not in _CONNECTIVITY[nd]:
        raise ValueError(f"connectivity for {nd}D images must be one of {sorted(_CONNECTIVITY[nd])}, "
                         f"got {connectivity!r}")
    return int(connectivity)


def label_clusters(images: ArrayLike, connectivity: int | None = None, *,
                   ndim: int | None = None) -> tuple[np.ndarray, int]:
    """Connected pore clusters of each image (:func:`scipy.ndimage.label`).

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    connectivity : int, optional
        Neighbours that join pore pixels: 4 (default) or 8 in 2D, 6 (default) or 26 in 3D.
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    labels : ndarray of int32, shape ``(N,) + spatial``
        0 for solid; cluster labels ``1 .. n`` are unique over the whole batch (no cluster spans
        two images).
    n : int
        Number of clusters in the batch.
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    return label_batch(batch, nd, check_connectivity(nd, connectivity))


def label_batch(batch: np.ndarray, nd: int, connectivity: int) -> tuple[np.ndarray, int]:
    """Connected pore clusters of a validated batch (:func:`label_clusters` without the checks).

    Parameters
    ----------
    batch : ndarray of uint8, shape ``(N,) + spatial``
        A validated binary batch, 1 = pore.
    nd : {2, 3}
        Spatial dimension.
    connectivity : int
        A checked connectivity (:func:`check_connectivity`).

    Returns
    -------
    labels : ndarray of int32, shape ``(N,) + spatial``
        0 for solid; cluster labels ``1 .. n``, unique over the batch.
    n : int
        Number of clusters in the batch.
    """
    structure = np.zeros((3,) * (nd + 1), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(nd, _CONNECTIVITY[nd][connectivity])
    return ndimage.label(batch, structure=structure)


def cluster_function(images: ArrayLike, r_max: int | None = None, *, connectivity: int | None = None,
                     axis: int | None = None, ndim: int | None = None) -> np.ndarray:
    """Two-point cluster function of the pore phase along the image axes.

    ``C2(r)`` is the probability that two points ``r`` pixels apart along an axis both lie in the
    same connected pore cluster of the image, estimated over every pair inside the image (no
    wrap; clusters are not joined across the boundary). ``C2(0)`` is the porosity, ``C2 <= S2``
    along the same axis, and ``C2 = S2`` when the pore space is one connected cluster.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    r_max : int, optional
        Largest distance, pixels (default: half the smallest side; at most ``side - 1``).
    connectivity : int, optional
        4 (default) or 8 in 2D, 6 (default) or 26 in 3D (:func:`label_clusters`).
    axis : int, optional
        Spatial axis; ``None`` (default) averages all axes with equal weight.
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    ndarray of float64, shape ``(N, r_max + 1)``
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    r_max = check_r_max(batch.shape[1:], r_max)
    axes = spatial_axes(nd, axis)
    labels, _ = label_batch(batch, nd, check_connectivity(nd, connectivity))
    return cluster_function_from_labels(labels, r_max, axes)


def _compact_labels(labels):
    """Labels renumbered from 1 within each image, in the smallest integer type that holds them
    and a sentinel, and that sentinel (which no label takes). Pairs are compared only within an
    image, so labels need not be unique across the batch; narrower labels compare faster."""
    flat = labels.reshape(len(labels), -1)
    big = np.iinfo(flat.dtype).max
    first = np.where(flat > 0, flat, big).min(axis=1)
    local = np.where(flat > 0, flat - (first - 1)[:, None], 0)
    top = int(local.max())
    dtype = np.uint8 if top < 255 else np.uint16 if top < 65535 else np.int64
    return local.astype(dtype).reshape(labels.shape), np.iinfo(dtype).max


def cluster_function_from_labels(labels: np.ndarray, r_max: int, axes: tuple[int, ...]) -> np.ndarray:
    """Two-point cluster function C2(r) of labelled images (:func:`cluster_function` from the
    cluster labels).

    Parameters
    ----------
    labels : ndarray of int, shape ``(N,) + spatial``
        Cluster labels, 0 for solid (:func:`label_batch`).
    r_max : int
        Largest distance, pixels (a checked ``r_max``).
    axes : tuple of int
        Spatial axes to average over with equal weight.

    Returns
    -------
    ndarray of float64, shape ``(N, r_max + 1)``
    """
    out = np.zeros((len(labels), r_max + 1))
    labels, sentinel = _compact_labels(labels)
    for ax in axes:
        lab = image_lines(labels, ax)
        n_img, n_lines, n = lab.shape
        # Solid is 0 on one side and the sentinel on the other, so a solid pixel never matches.
        other = np.where(lab > 0, lab, sentinel).astype(lab.dtype)
        for r in range(r_max + 1):
            same = lab[:, :, :n - r] == other[:, :, r:]
            out[:, r] += np.count_nonzero(same.reshape(n_img, -1), axis=1) / (n_lines * (n - r))
    return out / len(axes)


def euler_density(images: ArrayLike, connectivity: int | None = None, *, ndim: int | None = None) -> np.ndarray:
    """Euler characteristic of the pore phase per pixel (:func:`skimage.measure.euler_number`).

    In 2D the Euler number is the number of pore clusters minus the number of holes in them
    (solid regions enclosed by pore); in 3D clusters minus tunnels plus cavities. The outside of
    the image counts as solid (scikit-image's convention), so a solid region touching the
    boundary is not a hole.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    connectivity : int, optional
        Connectivity of the pore phase: 4 (default) or 8 in 2D, 6 (default) or 26 in 3D (the
        solid phase takes the complementary one), the same as :func:`label_clusters`.
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    ndarray of float64, shape ``(N,)``
        Euler number divided by the number of pixels.
    """
    from skimage.measure import euler_number

    batch, nd = as_binary_batch(images, ndim=ndim)
    rank = _CONNECTIVITY[nd][check_connectivity(nd, connectivity)]
    return np.array([euler_number(im, connectivity=rank) for im in batch], dtype=np.float64) / batch[0].size


def cluster_statistics(images: ArrayLike, connectivity: int | None = None, *,
                       ndim: int | None = None) -> dict[str, np.ndarray]:
    """Pore cluster statistics of each image.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    connectivity : int, optional
        4 (default) or 8 in 2D, 6 (default) or 26 in 3D (:func:`label_clusters`).
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    dict of ndarray
        ``n_clusters`` (N,) int64: connected pore clusters; ``cluster_density`` (N,): that per
        pixel; ``largest_fraction`` (N,): pixels of the largest cluster over all pore pixels
        (NaN for an image without pore); ``percolates`` (N, ndim) bool: some cluster touches
        both faces perpendicular to spatial axis ``k`` (spans the image along ``k``).
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    labels, n = label_batch(batch, nd, check_connectivity(nd, connectivity))
    return cluster_statistics_from_labels(labels, n, nd)


def cluster_statistics_from_labels(labels: np.ndarray, n: int, nd: int) -> dict[str, np.ndarray]:
    """Pore cluster statistics of labelled images (:func:`cluster_statistics` from the labels).

    Parameters
    ----------
    labels : ndarray of int, shape ``(N,) + spatial``
        Cluster labels ``1 .. n`` unique over the batch, 0 for solid (:func:`label_batch`).
    n : int
        Number of clusters in the batch.
    nd : {2, 3}
        Spatial dimension.

    Returns
    -------
    dict of ndarray
        ``n_clusters``, ``cluster_density``, ``largest_fraction`` and ``percolates``, as
        :func:`cluster_statistics`.
    """
    n_img = len(labels)
    flat = labels.reshape(n_img, -1)
    size = np.bincount(flat.ravel(), minlength=n + 1)
    image_of = np.zeros(n + 1, dtype=np.int64)
    rows, cols = np.nonzero(flat)
    image_of[flat[rows, cols]] = rows
    n_clusters = np.bincount(image_of[1:], minlength=n_img)
    largest = np.zeros(n_img, dtype=np.int64)
    np.maximum.at(largest, image_of[1:], size[1:])
    pore = np.count_nonzero(flat, axis=1)
    percolates = np.zeros((n_img, nd), dtype=bool)
    for ax in range(nd):
        low, high = np.zeros(n + 1, dtype=bool), np.zeros(n + 1, dtype=bool)
        low[np.take(labels, 0, axis=ax + 1).ravel()] = True
        high[np.take(labels, -1, axis=ax + 1).ravel()] = True
        spanning = np.flatnonzero(low & high)
        spanning = spanning[spanning > 0]
        percolates[image_of[spanning], ax] = True
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(pore > 0, largest / np.maximum(pore, 1), np.nan)
    return {"n_clusters": n_clusters, "cluster_density": n_clusters / flat.shape[1],
            "largest_fraction": fraction, "percolates": percolates}


def pore_solidity(images: ArrayLike, connectivity: int | None = None, *,
                  min_size: int = MIN_SOLIDITY_SIZE) -> np.ndarray:
    """Convexity of the pores of each 2D image: the area-weighted mean solidity of its pore clusters.

    The solidity of a cluster is its area over the area of its convex hull
    (:func:`skimage.measure.regionprops`): 1 for a convex pore, less for concave, branched or
    cusped pore space (the spaces between grains of a sandstone, joined by thin throats), near 1
    for the rounded blobs of an over-smoothed generator.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)`` or ``(N, H, W)``, 1 = pore.
    connectivity : int, optional
        4 (default) or 8: which neighbours join pore pixels into a cluster.
    min_size : int
        Clusters of fewer pixels are left out (the hull of a few pixels says little about shape).

    Returns
    -------
    ndarray of float64, shape ``(N,)``
        NaN for an image without a cluster of ``min_size`` pixels.
    """
    batch, nd = as_binary_batch(images, ndim=2)
    labels, _ = label_batch(batch, nd, check_connectivity(nd, connectivity))
    return solidity_from_labels(labels, check_int(min_size, "min_size"))


def solidity_from_labels(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Pore solidity of labelled 2D images (:func:`pore_solidity` from the cluster labels).

    Parameters
    ----------
    labels : ndarray of int, shape ``(N, H, W)``
        Cluster labels, 0 for solid (:func:`label_batch`).
    min_size : int
        Clusters of fewer pixels are left out.

    Returns
    -------
    ndarray of float64, shape ``(N,)``
        Area-weighted mean solidity of the clusters of ``min_size`` pixels or more; NaN for an
        image without one.
    """
    from skimage.measure import regionprops

    out = np.full(len(labels), np.nan)
    for i, lab in enumerate(labels):
        props = [p for p in regionprops(lab) if p.area >= min_size]
        if props:
            area = np.array([p.area for p in props], dtype=np.float64)
            out[i] = np.dot(area, [p.solidity for p in props]) / area.sum()
    return out
