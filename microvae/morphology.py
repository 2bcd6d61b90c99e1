"""Morphology descriptors of binary microstructures that the two-point function S2 does not fix.

Every function takes a batch (``(H, W)``, ``(N, H, W)``, or ``(N, D, H, W)``; pass ``ndim=3``
for a single volume ``(D, H, W)``, as in :func:`microvae.correlations.s2`) and returns one value
or one curve per image.

Conventions
-----------
- 1 = pore, 0 = solid; ``phase`` selects which phase a descriptor is about.
- Lengths are in pixels (voxels); "per area" means per pixel of the image (per voxel in 3D).
- Estimators are non-periodic: a segment or pixel pair counts only when it lies wholly inside the
  image, and clusters are not joined across the image boundary. Exceptions are stated where they
  occur (the scikit-image perimeter and Euler number see the outside of the image as solid).
- "Along the axes": curves are computed along each spatial axis; ``axis=None`` averages the
  axes with equal weight, ``axis=k`` keeps spatial axis ``k`` (0 = first spatial axis).
- Sample statistics over images (here and in :mod:`microvae.compare`) use ``std(ddof=1)``.
"""
import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from ._validate import as_binary_batch, check_int

__all__ = ["lineal_path", "chord_lengths", "ChordLengths", "cluster_function", "specific_surface",
           "euler_density", "perimeter_density", "cluster_statistics", "label_clusters", "descriptors",
           "pattern_histogram", "pore_solidity"]

# Pixel connectivities of the pore clusters: value -> rank for generate_binary_structure, which is
# also scikit-image's ``connectivity`` argument.
_CONNECTIVITY = {2: {4: 1, 8: 2}, 3: {6: 1, 26: 3}}
_DEFAULT_CONNECTIVITY = {2: 4, 3: 6}
# Pore clusters of fewer pixels do not enter the solidity (their hull says little about shape).
_MIN_SOLIDITY_SIZE = 10


def check_r_max(shape: tuple[int, ...], r_max: int | None) -> int:
    """``r_max`` checked for images of spatial ``shape``: an integer in ``[0, min(shape) - 1]``,
    half the smallest side when None."""
    limit = min(shape) - 1
    r_max = check_int(min(shape) // 2 if r_max is None else r_max, "r_max", minimum=0)
    if r_max > limit:
        raise ValueError(f"r_max must be an integer in [0, {limit}] for images of shape {shape}, got {r_max!r}")
    return r_max


def spatial_axes(nd: int, axis: int | None) -> tuple[int, ...]:
    """The spatial axes an axis argument selects: all ``nd`` of them for None, else the one
    checked ``axis`` (ValueError naming ``axis`` outside ``[0, nd - 1]``)."""
    if axis is None:
        return tuple(range(nd))
    if check_int(axis, "axis", minimum=0) >= nd:
        raise ValueError(f"axis must be None or a spatial axis in [0, {nd - 1}], got {axis!r}")
    return (int(axis),)


def _phase(phase):
    if phase not in (0, 1) or isinstance(phase, (bool, np.bool_)):
        raise ValueError(f"phase must be 1 (pore) or 0 (solid), got {phase!r}")
    return int(phase)


def check_connectivity(nd: int, connectivity: int | None) -> int:
    """Pore connectivity checked for ``nd``-dimensional images: 4 or 8 in 2D, 6 or 26 in 3D
    (None: 4 and 6, face neighbours)."""
    if connectivity is None:
        connectivity = _DEFAULT_CONNECTIVITY[nd]
    if connectivity not in _CONNECTIVITY[nd]:
        raise ValueError(f"connectivity for {nd}D images must be one of {sorted(_CONNECTIVITY[nd])}, "
                         f"got {connectivity!r}")
    return int(connectivity)


def _lines(batch, axis):
    """The image lines along spatial ``axis``, as a C-contiguous ``(N, lines, n)`` array."""
    x = np.moveaxis(batch, axis + 1, -1)
    return np.ascontiguousarray(x).reshape(len(batch), -1, x.shape[-1])


def _run_histograms(batch, axis):
    """Run-length histograms along spatial ``axis``: ``counts[phase, kind, image, length]``,
    ``kind`` 0 for all runs and 1 for the runs that touch neither end of their line; shape
    ``(2, 2, N, n + 1)``."""
    lines = _lines(batch, axis)
    n_img, n_lines, n = lines.shape
    lines = lines.reshape(-1, n)
    starts = np.ones(lines.shape, dtype=bool)
    np.not_equal(lines[:, 1:], lines[:, :-1], out=starts[:, 1:])
    # np.nonzero walks rows in order: a run ends where the next one (or its line) starts.
    row, start = np.nonzero(starts)
    end = np.empty_like(start)
    end[:-1] = np.where(row[1:] == row[:-1], start[1:], n)
    end[-1] = n
    inner = (start > 0) & (end < n)
    key = (lines[row, start].astype(np.int64) * n_img + row // n_lines) * (n + 1) + (end - start)
    size = 2 * n_img * (n + 1)
    every = np.bincount(key, minlength=size).reshape(2, n_img, n + 1)
    interior = np.bincount(key[inner], minlength=size).reshape(2, n_img, n + 1)
    return np.stack([every, interior], axis=1)


def _lineal_path(hist, axis_length, n_lines, r_max):
    """L(r) along one axis from its histogram of all runs: a run of ``l`` pixels holds
    ``max(l - r, 0)`` segments of length ``r``, out of ``n - r`` positions per line."""
    r = np.arange(r_max + 1)
    segments = np.maximum(np.arange(hist.shape[1])[:, None] - r[None, :], 0).astype(np.float64)
    return (hist.astype(np.float64) @ segments) / (n_lines * (axis_length - r))


def lineal_path(images: ArrayLike, r_max: int | None = None, *, phase: int = 1, axis: int | None = None,
                ndim: int | None = None) -> np.ndarray:
    """Lineal-path function of one phase along the image axes.

    ``L(r)`` is the probability that a segment of length ``r`` (``r + 1`` pixels) placed along
    an axis lies wholly in ``phase``, estimated per image over every segment position inside the
    image (no periodic wrap). ``L(0)`` is the volume fraction of the phase and ``L`` is
    non-increasing. Computed from the run lengths of each line.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    r_max : int, optional
        Largest length, pixels (default: half the smallest side; at most ``side - 1``).
    phase : {1, 0}
        1 for the pore phase, 0 for the solid phase.
    axis : int, optional
        Spatial axis; ``None`` (default) averages all axes with equal weight.
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    ndarray of float64, shape ``(N, r_max + 1)``
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    r_max, phase = check_r_max(batch.shape[1:], r_max), _phase(phase)
    axes = spatial_axes(nd, axis)
    out = np.zeros((len(batch), r_max + 1))
    for ax in axes:
        n = batch.shape[ax + 1]
        out += _lineal_path(_run_histograms(batch, ax)[phase, 0], n, batch[0].size // n, r_max)
    return out / len(axes)


class ChordLengths:
    """Chord-length distributions of a batch (result of :func:`chord_lengths`).

    Attributes
    ----------
    counts : ndarray of int64, shape ``(N, n_max + 1)``
        Number of chords of each length ``l`` (index ``l``, pixels; index 0 is always 0), summed
        over the axes used.
    probability : ndarray of float64, shape ``(N, n_max + 1)``
        ``counts`` divided by each image's number of chords (number-weighted distribution; NaN
        for an image without chords).
    mean : ndarray of float64, shape ``(N,)``
        Mean chord length, pixels (NaN without chords).
    """

    def __init__(self, counts: np.ndarray):
        self.counts = counts
        total = counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.probability = counts / total[:, None]
            self.mean = (counts @ np.arange(counts.shape[1])) / total

    @property
    def lengths(self) -> np.ndarray:
        """Chord length of each column, pixels."""
        return np.arange(self.counts.shape[1])

    def __repr__(self):
        return f"ChordLengths(images={len(self.counts)}, chords={int(self.counts.sum())})"


def chord_lengths(images: ArrayLike, *, phase: int = 1, axis: int | None = None, edges: bool = False,
                  ndim: int | None = None) -> ChordLengths:
    """Chord-length distribution of one phase along the image axes.

    A chord is a maximal run of ``phase`` pixels along an axis. Chords that touch the image
    boundary are cut by it, so by default (``edges=False``) they are left out; every chord then
    has length ``<= side - 2``. (PoreSpy's ``apply_chords(trim_edges=True)`` also drops the
    whole chords that lie on the outermost lines of the image; they are kept here.)

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    phase : {1, 0}
        1 for the pore phase, 0 for the solid phase.
    axis : int, optional
        Spatial axis; ``None`` (default) pools the chords of all axes.
    edges : bool
        Also count the chords that touch the image boundary.
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    ChordLengths
        ``counts``, ``probability`` (per length ``0 .. max side``) and ``mean`` per image.
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    phase = _phase(phase)
    n_max = max(batch.shape[1:])
    counts = np.zeros((len(batch), n_max + 1), dtype=np.int64)
    for ax in spatial_axes(nd, axis):
        hist = _run_histograms(batch, ax)[phase, 0 if edges else 1]
        counts[:, :hist.shape[1]] += hist
    return ChordLengths(counts)


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
    return _label(batch, nd, check_connectivity(nd, connectivity))


def _label(batch, nd, connectivity):
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
    labels, _ = _label(batch, nd, check_connectivity(nd, connectivity))
    return _cluster_function(labels, r_max, axes)


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


def _cluster_function(labels, r_max, axes):
    out = np.zeros((len(labels), r_max + 1))
    labels, sentinel = _compact_labels(labels)
    for ax in axes:
        lab = _lines(labels, ax)
        n_img, n_lines, n = lab.shape
        # Solid is 0 on one side and the sentinel on the other, so a solid pixel never matches.
        other = np.where(lab > 0, lab, sentinel).astype(lab.dtype)
        for r in range(r_max + 1):
            same = lab[:, :, :n - r] == other[:, :, r:]
            out[:, r] += np.count_nonzero(same.reshape(n_img, -1), axis=1) / (n_lines * (n - r))
    return out / len(axes)


def _bin1_mean_distance(nd):
    """Mean length of the lattice vectors in radial bin 1 of :func:`microvae.correlations.s2`
    (those with ``round(|r|) = 1``: lengths 1 and sqrt(2))."""
    grid = np.stack(np.meshgrid(*[np.arange(-1, 2)] * nd, indexing="ij"), -1).reshape(-1, nd)
    length = np.sqrt((grid ** 2).sum(axis=1))
    return float(length[np.floor(length + 0.5) == 1].mean())


def specific_surface(images: ArrayLike, method: str = "count", *, ndim: int | None = None) -> np.ndarray:
    """Interface between the phases per unit area (2D: length / area; 3D: area / volume), 1/pixel.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    method : {"count", "s2"}
        ``"count"``: the number of pixel faces (edges in 2D) between a pore and a solid pixel
        inside the image, divided by the number of pixels. This is the length (area) of the
        staircase boundary, which for an isotropic structure exceeds the true interface by the
        factor ``4 / pi`` in 2D and ``3 / 2`` in 3D.

        ``"s2"``: the slope of the two-point function at the origin, for statistically isotropic
        media, ``s = -pi S2'(0)`` in 2D and ``s = -4 S2'(0)`` in 3D (Debye; Torquato 2002,
        Eq. 2.45), with ``S2'(0) = (S2(1) - S2(0)) / d1`` from the non-periodic radial S2 of
        :func:`microvae.correlations.s2`, ``d1`` the mean length of the lattice vectors in its
        bin ``r = 1`` (1.207 in 2D, 1.276 in 3D). Estimates the true (smooth) interface; biased
        low by curvature of order ``1 / radius``.
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    ndarray of float64, shape ``(N,)``
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    if method == "count":
        faces = np.zeros(len(batch), dtype=np.int64)
        for ax in range(nd):
            diff = np.diff(batch, axis=ax + 1) != 0
            faces += np.count_nonzero(diff.reshape(len(batch), -1), axis=1)
        return faces / batch[0].size
    if method == "s2":
        from .correlations import s2

        if min(batch.shape[1:]) < 2:
            raise ValueError(f"method='s2' needs images of at least 2 pixels per side, got {batch.shape[1:]}")
        curve = s2(batch, periodic=False, r_max=1, ndim=nd)
        slope = (curve[:, 1] - curve[:, 0]) / _bin1_mean_distance(nd)
        return -(np.pi if nd == 2 else 4.0) * slope
    raise ValueError(f"method must be 'count' or 's2', got {method!r}")


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


def perimeter_density(images: ArrayLike, method: str = "crofton", *, ndim: int | None = None) -> np.ndarray:
    """Length (2D) or area (3D) of the pore boundary per pixel, by scikit-image.

    The outside of the image counts as solid (scikit-image's convention): pore touching the
    image edge has boundary there. For the interface inside the image only, see
    :func:`specific_surface`.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    method : {"crofton", "perimeter"}
        2D: :func:`skimage.measure.perimeter_crofton` (4 directions; unbiased for isotropic
        boundaries) or :func:`skimage.measure.perimeter` (4-neighbourhood boundary-pixel
        weights). 3D ignores it: the area of the :func:`skimage.measure.marching_cubes` surface
        at level 0.5 of the zero-padded volume (:func:`skimage.measure.mesh_surface_area`); on a
        binary volume that surface is terraced, about 9% larger than a smooth one (a digital
        ball of radius 14).
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    ndarray of float64, shape ``(N,)``
    """
    from skimage import measure

    batch, nd = as_binary_batch(images, ndim=ndim)
    if method not in ("crofton", "perimeter"):
        raise ValueError(f"method must be 'crofton' or 'perimeter', got {method!r}")
    if nd == 2:
        if method == "crofton":
            values = [measure.perimeter_crofton(im, directions=4) for im in batch]
        else:
            values = [measure.perimeter(im, neighborhood=4) for im in batch]
    else:
        values = []
        for vol in batch:
            if not vol.any():
                values.append(0.0)
                continue
            verts, faces, _, _ = measure.marching_cubes(np.pad(vol, 1).astype(np.float32), level=0.5)
            values.append(measure.mesh_surface_area(verts, faces))
    return np.asarray(values, dtype=np.float64) / batch[0].size


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
    labels, n = _label(batch, nd, check_connectivity(nd, connectivity))
    return _cluster_statistics(labels, n, nd)


def _cluster_statistics(labels, n, nd):
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


def descriptors(images: ArrayLike, r_max: int | None = None, *, connectivity: int | None = None,
                ndim: int | None = None) -> dict[str, np.ndarray]:
    """Every descriptor of this module for one image set, sharing the run-length histograms and
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
    runs = [_run_histograms(batch, ax) for ax in range(nd)]
    for phase, suffix in ((1, "pore"), (0, "solid")):
        lineal = np.zeros((len(batch), r_max + 1))
        chords = np.zeros((len(batch), max(shape) + 1), dtype=np.int64)
        for ax, hist in enumerate(runs):
            n = shape[ax]
            lineal += _lineal_path(hist[phase, 0], n, batch[0].size // n, r_max)
            chords[:, :n + 1] += hist[phase, 1]
        chord = ChordLengths(chords)
        out[f"lineal_path_{suffix}"] = lineal / nd
        out[f"chord_{suffix}"] = chord.probability[:, 1:]
        out[f"mean_chord_{suffix}"] = chord.mean
    labels, n_labels = _label(batch, nd, connectivity)
    out["cluster"] = _cluster_function(labels, r_max, tuple(range(nd)))
    clusters = _cluster_statistics(labels, n_labels, nd)
    out.update({
        "specific_surface": specific_surface(batch, "count", ndim=nd),
        "specific_surface_s2": specific_surface(batch, "s2", ndim=nd),
        "euler_density": euler_density(batch, connectivity, ndim=nd),
        "perimeter_density": perimeter_density(batch, ndim=nd),
        "cluster_density": clusters["cluster_density"],
        "largest_cluster_fraction": clusters["largest_fraction"],
        "percolation_fraction": clusters["percolates"].mean(axis=1),
        "pore_solidity": _solidity(labels, _MIN_SOLIDITY_SIZE) if nd == 2 else np.full(len(batch), np.nan),
    })
    return out


def pattern_histogram(images: ArrayLike, size: int | None = None, *, ndim: int | None = None) -> np.ndarray:
    """Frequencies of the binary configurations of every ``size``-pixel window of each image.

    The windows are all positions of a square (cube) of ``size`` pixels per side inside the
    image; a window's configuration is the number whose bits are its pixels (row-major, the
    first pixel the lowest bit). The 2x2 configurations fix the area, perimeter and Euler
    characteristic (Minkowski functionals) of a pixel image; 3x3 ones add its local shape: the
    curvature of the boundary, corners and cusps, one-pixel specks and necks.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    size : int, optional
        Window side, pixels (default 3 in 2D, 2 in 3D); at most 16 pixels per window
        (``size**ndim <= 16``: up to 65 536 configurations).
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    ndarray of float64, shape ``(N, 2 ** size**ndim)``
        Per image, the fraction of its windows in each configuration (rows sum to 1).
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    size = check_int(size if size is not None else (3 if nd == 2 else 2), "size")
    if size ** nd > 16:
        raise ValueError(f"size={size} gives {size ** nd} pixels per window in {nd}D; at most 16 are supported")
    if size > min(batch.shape[1:]):
        raise ValueError(f"size={size} exceeds the smallest side of images of shape {batch.shape[1:]}")
    inner = tuple(n - size + 1 for n in batch.shape[1:])
    code = np.zeros((len(batch),) + inner, dtype=np.int64)
    for bit, offset in enumerate(np.ndindex(*(size,) * nd)):
        window = (slice(None),) + tuple(slice(o, o + n) for o, n in zip(offset, inner))
        code |= batch[window].astype(np.int64) << bit
    n_codes = 2 ** size ** nd
    counts = np.bincount((code.reshape(len(batch), -1) + n_codes * np.arange(len(batch))[:, None]).ravel(),
                         minlength=n_codes * len(batch)).reshape(len(batch), n_codes)
    return counts / code[0].size


def pore_solidity(images: ArrayLike, connectivity: int | None = None, *,
                  min_size: int = _MIN_SOLIDITY_SIZE) -> np.ndarray:
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
    labels, _ = _label(batch, nd, check_connectivity(nd, connectivity))
    return _solidity(labels, check_int(min_size, "min_size"))


def _solidity(labels, min_size):
    """Area-weighted mean solidity of the clusters of ``min_size`` pixels or more, per 2D image
    of a labelled batch ``(N, H, W)``."""
    from skimage.measure import regionprops

    out = np.full(len(labels), np.nan)
    for i, lab in enumerate(labels):
        props = [p for p in regionprops(lab) if p.area >= min_size]
        if props:
            area = np.array([p.area for p in props], dtype=np.float64)
            out[i] = np.dot(area, [p.solidity for p in props]) / area.sum()
    return out
