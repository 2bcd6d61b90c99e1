"""PoreSpy-compatible entry points (PoreSpy 3.2): ``metrics.two_point_correlation``,
``metrics.porosity``, ``filters.apply_chords`` and ``metrics.chord_length_distribution``.

Swap ``ps.metrics.two_point_correlation(im)`` for ``two_point_correlation(im)``: same
arguments, same bins, the same non-periodic estimator (each displacement normalized by its
number of pixel pairs, displacements inside the image only), the same ``Results`` fields, equal
to PoreSpy within 1e-10. The difference: the padding is only as large as the largest bin needs
and the bin averages are folded into the spectrum (:func:`microvae.correlations.two_point.binned_s2`),
and :func:`two_point_correlation_batch` transforms many images at once.

The chord pair, ``chord_length_distribution(apply_chords(im))``, gives PoreSpy's chord images and
histograms exactly (one exception for untrimmed 2D chords, see :func:`apply_chords`); the chord
sizes are counted from one :func:`microvae.morphology.label_clusters` labelling instead of one
scikit-image ``regionprops`` object per chord. The chord-length distribution of many images at
once, without the chord image, is :func:`microvae.morphology.chord_lengths`.

PoreSpy's ``lineal_path_distribution`` has no counterpart here: it histograms the values of
``filters.distance_transform_lin`` (each pore pixel's distance to the solid along an axis), a
different quantity from the lineal-path function L(r) of :func:`microvae.morphology.lineal_path`
(the probability that a whole segment of length r lies in the pore).
"""
import time
import warnings
from typing import Any, Iterator, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from .._validate import as_binary_batch, check_positive
from ..correlations.two_point import binned_s2
from ..morphology import label_clusters, spatial_axes

__all__ = ["two_point_correlation", "two_point_correlation_batch", "porosity", "apply_chords",
           "chord_length_distribution", "Results"]


class Results:
    """PoreSpy's result object: attribute and item access to the same fields, iteration over
    the values in the order they were set, and the same printed summary.

    Parameters
    ----------
    func : str
        Name of the function that made it (shown by ``str``; PoreSpy reads it off the stack).
    """

    def __init__(self, func: str) -> None:
        self._func = func
        self._time = time.asctime()

    def __iter__(self) -> Iterator[Any]:
        return (v for k, v in self.__dict__.items() if not k.startswith("_"))

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    def __str__(self) -> str:
        header = "―" * 78
        lines = [header, f"Results of {self._func} generated at {self._time}", header]
        for key, value in self.__dict__.items():
            if not key.startswith("_"):
                shown = f"Array of size {np.shape(value)}" if isinstance(value, np.ndarray) else value
                lines.append(f"{key:<25s} {shown}")
        return "\n".join(lines + [header])


def porosity(im: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Pore fraction as ``porespy.metrics.porosity``: the number of 1s over the number of 0s
    and 1s; other values (e.g. 2 outside a cylindrical core) are ignored, as is everything
    where ``mask`` is False.

    Parameters
    ----------
    im : array_like
        Image, 1 (or True) = pore, 0 = solid.
    mask : array_like of bool, optional
        Same shape as ``im``; True marks the domain.

    Returns
    -------
    float
    """
    im = np.asarray(im)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != im.shape:
            raise ValueError(f"mask must have the shape of im {im.shape}, got {mask.shape}")
        im = im.astype(np.int64) * mask
    pore = np.count_nonzero(im == 1)
    solid = np.count_nonzero(im == 0)
    if pore + solid == 0:
        raise ValueError("im holds no 0 (solid) or 1 (pore) values")
    return pore / (pore + solid)


def _edges(bins, shape):
    """PoreSpy's bin edges (pixels): ``bins`` bins of whole pixels up to half the smallest side,
    or the given edges, which may reach the corner of the displacement window."""
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"bins must be a positive number of bins or an array of edges, got {bins}")
        r_max = int(min(shape) // 2)
        size = max(1, int(np.ceil(r_max / bins)))
        return np.arange(0, r_max + size, size).astype(np.float64)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be an int or a 1D array of at least two increasing, finite edges")
    corner = np.sqrt(np.sum((np.asarray(shape) - 1) ** 2))
    if edges.max() > corner:
        raise ValueError(f"bins reach {edges.max()} pixels, beyond the largest displacement in an image of "
                         f"shape {tuple(shape)} ({corner:.4g} pixels, centre to corner)")
    return edges


def _results(values, pf, edges, voxel_size):
    """The fields of PoreSpy's result, in its order, from the bin averages of S2."""
    widths = np.diff(edges)
    centers = (edges[1:] + edges[:-1]) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        normalized = values / pf
    out = Results("two_point_correlation")
    out.distance = centers * voxel_size
    out.bin_centers = centers * voxel_size
    out.bin_edges = edges * voxel_size
    out.bin_widths = widths * voxel_size
    out.probability = normalized
    out.probability_scaled = normalized * pf
    out.pdf = normalized * pf
    out.relfreq = normalized * widths
    return out


def two_point_correlation(im: ArrayLike, voxel_size: float = 1, bins: int | ArrayLike = 100) -> Results:
    """Two-point correlation function of the pore phase, as ``porespy.metrics.two_point_correlation``.

    Non-periodic estimator: ``S2(r)`` is averaged over the pixel pairs the image holds at each
    displacement ``r`` (``|r_i| < n_i``), then over the displacements of each radial bin
    ``bin_edges[b] <= |r| < bin_edges[b + 1]`` (empty bins give 0).

    Parameters
    ----------
    im : array_like
        Binary 2D or 3D image, 1 (True) = pore.
    voxel_size : float
        Pixel length; scales the distances (after binning, as PoreSpy does).
    bins : int or array_like
        Number of bins (whole pixels, up to half the smallest side) or the bin edges in pixels
        (at most the centre-to-corner distance of the displacement window).

    Returns
    -------
    Results
        ``distance`` (= ``bin_centers``), ``bin_centers``, ``bin_edges``, ``bin_widths``
        (lengths times ``voxel_size``); ``probability`` = S2/φ (1 at r = 0);
        ``probability_scaled`` = ``pdf`` = S2; ``relfreq`` = ``probability`` × bin width in
        pixels.
    """
    im = np.asarray(im)
    if im.ndim not in (2, 3):
        raise ValueError(f"im must be one 2D or 3D image, got shape {im.shape}")
    return two_point_correlation_batch(im, voxel_size, bins, ndim=im.ndim, _single=True)


def two_point_correlation_batch(images: ArrayLike, voxel_size: float = 1, bins: int | ArrayLike = 100, *,
                                ndim: int | None = None, _single: bool = False) -> Results:
    """:func:`two_point_correlation` of many same-shaped images at once.

    Parameters
    ----------
    images : array_like
        ``(N, H, W)`` images or ``(N, D, H, W)`` volumes (a single ``(H, W)`` image is a batch
        of one; pass ``ndim=3`` for a single volume); binary, 1 = pore.
    voxel_size, bins :
        As for :func:`two_point_correlation`.

    Returns
    -------
    Results
        The fields of :func:`two_point_correlation`; ``probability``, ``probability_scaled``,
        ``pdf`` and ``relfreq`` have one row per image, shape ``(N, bins)``.
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    shape = batch.shape[1:]
    check_positive(voxel_size, "voxel_size")
    edges = _edges(bins, shape)
    r_needed = tuple(min(n - 1, int(np.floor(edges[-1]))) for n in shape)
    values = binned_s2(batch, nd, False, edges, r_needed)
    pf = batch.reshape(len(batch), -1).mean(axis=1)
    if _single:
        values, pf = values[0], pf[0]
    else:
        pf = pf[:, None]
    return _results(values, pf, edges, voxel_size)


def apply_chords(im: ArrayLike, spacing: int = 1, axis: int = 0, trim_edges: bool = True,
                 label: bool = False) -> np.ndarray:
    """The pore chords of every ``spacing + 1``-th line along ``axis``, as ``porespy.filters.apply_chords``.

    The lines along ``axis`` are sampled at indices ``0, spacing + 1, 2 (spacing + 1), ...`` of
    every other axis; a chord is a maximal run of pore pixels in a sampled line. With
    ``trim_edges``, chords that touch either end of their line are dropped, and so are all the
    chords of the first and last sampled line of every other axis (PoreSpy clears the border of
    the sampled sub-image, whose outermost lines are those lines).

    :func:`microvae.morphology.chord_lengths` histograms run lengths without placing them, so the
    chords here are found by one :func:`scipy.ndimage.label` pass with a line element. The
    output equals PoreSpy's exactly, labels included: 3D labels and ``spacing=0`` number the chords
    in C order of their first pixel; 2D labels for ``spacing >= 1`` follow cc3d's scan over 2 x 2
    blocks (row pairs, then column pairs), which PoreSpy's labelling uses. Two differences, both
    for ``trim_edges=False`` with ``spacing >= 1``, where PoreSpy returns cc3d's labels as they
    are: labels here are int64, not cc3d's smallest unsigned type; and in 2D cc3d 4.1.1 now and
    then writes chord labels into a few pixels off the sampled pore pixels (seen in about 1 of 30
    random 2D images), which PoreSpy then reports as chords. The chords on the sampled pore
    pixels are equal; those stray pixels are not reproduced.

    Parameters
    ----------
    im : array_like
        Binary 2D or 3D image, 1 (True) = pore.
    spacing : int
        Lines skipped between sampled lines (``>= 1``). ``0`` samples every line and numbers the
        chords (PoreSpy deprecates it and warns, as here).
    axis : int
        Axis the chords run along.
    trim_edges : bool
        Drop the chords cut by the image border (see above).
    label : bool
        Number the chords ``1 .. n`` instead of marking them True (forced by ``spacing=0``).
        Trimmed chords keep their place in the numbering, so the labels left may have gaps.

    Returns
    -------
    ndarray, shape of ``im``
        bool (chord pixels True), or int64 chord labels (0 off the chords) with ``label``.
    """
    image = np.asarray(im)
    if image.ndim not in (2, 3):
        raise ValueError(f"im must be one 2D or 3D image, got shape {image.shape}")
    image = as_binary_batch(image, ndim=image.ndim, name="im")[0][0]
    nd = image.ndim
    if isinstance(spacing, (bool, np.bool_)) or not isinstance(spacing, (int, np.integer)) or spacing < 0:
        raise ValueError(f"spacing must be a non-negative integer, got {spacing!r}")
    if axis is None:
        raise ValueError("axis must be a spatial axis, got None")
    (axis,) = spatial_axes(nd, axis)
    if spacing == 0:
        warnings.warn("spacing=0 is deprecated and will be removed in a future release; use spacing>=1 instead.",
                      DeprecationWarning, stacklevel=2)
        label = True
    step = spacing + 1
    sampled = tuple(slice(None) if d == axis else slice(None, None, step) for d in range(nd))
    lines = np.zeros_like(image)
    lines[sampled] = image[sampled]
    if not (label or trim_edges):
        return lines.astype(bool)
    along = np.zeros((3,) * nd, dtype=bool)
    along[tuple(slice(None) if d == axis else 1 for d in range(nd))] = True
    chords, n = ndimage.label(lines, structure=along)
    number = np.arange(n + 1, dtype=np.int64)
    if label and nd == 2 and spacing > 0:
        number[1:] = _cc3d_order_2d(lines, axis)
    if trim_edges:
        faces = [np.take(chords, [0, -1], axis=axis)]
        faces += [np.take(chords, [0, (chords.shape[d] - 1) // step * step], axis=d) for d in range(nd) if d != axis]
        number[np.concatenate([f.ravel() for f in faces])] = 0
    out = number[chords]
    return out if label else out > 0


def _cc3d_order_2d(lines, axis):
    """cc3d's label of each chord of a 2D line image, listed in C order of the chords' first pixels.

    cc3d labels 8-connected 2D images in 2 x 2 blocks, row pairs first, so a chord's label is the
    rank of the block holding its first pixel. No two chords start in one block: sampled lines
    are at least two apart, and chords in one line are at least one pixel apart.
    """
    first = lines.astype(bool)
    tail = [slice(None)] * 2
    head = [slice(None)] * 2
    tail[axis], head[axis] = slice(1, None), slice(None, -1)
    first[tuple(tail)] &= ~lines[tuple(head)].astype(bool)
    row, col = np.nonzero(first)  # C order = scipy's label order
    block = (row // 2) * ((lines.shape[1] + 1) // 2) + col // 2
    rank = np.empty(len(block), dtype=np.int64)
    rank[np.argsort(block)] = np.arange(1, len(block) + 1)
    return rank


def _component_sizes(pores):
    """Pixels per 4-connected (6 in 3D) pore cluster, as PoreSpy's ``chord_counts``: the area of
    each cluster with the holes it encloses filled (scikit-image's ``area_filled``).

    A hole of a cluster is a solid region that the cluster encloses, so it is also enclosed in
    the whole image; without such regions every filled area is the plain pixel count, taken
    from one labelling. Chord images never have them (their solid is one connected region)."""
    nd = pores.ndim
    labels, n = label_clusters(pores, ndim=nd)
    solid, m = label_clusters(~pores, connectivity=3 ** nd - 1, ndim=nd)
    on_border = np.zeros(m + 1, dtype=bool)
    on_border[np.concatenate([np.take(solid[0], [0, -1], axis=d).ravel() for d in range(nd)])] = True
    if on_border[1:].all():
        return np.bincount(labels.ravel(), minlength=n + 1)[1:]
    from skimage.measure import regionprops  # slow, one object per cluster: only for enclosed solid

    return np.array([r.area_filled for r in regionprops(labels[0])], dtype=np.int64)


def chord_length_distribution(im: ArrayLike, bins: int | ArrayLike | None = 10, log: bool = False,
                              voxel_size: float = 1,
                              normalization: Literal["count", "number", "length"] = "count") -> Results:
    """Histogram of chord lengths in a chord image, as ``porespy.metrics.chord_length_distribution``.

    The chords are the 4-connected (6 in 3D) clusters of ``im > 0`` and their lengths are the
    clusters' pixel counts (areas with enclosed holes filled, as PoreSpy measures them); for an
    image from :func:`apply_chords` with ``spacing >= 1`` these are the chords themselves. The
    histogram follows PoreSpy to the operation, so the result is equal, including its quirks:
    with ``bins=None`` the edges are ``0, 1, .. max + 1`` times ``voxel_size`` even when ``log``
    is set, and ``cdf`` accumulates from the longest chord down (the fraction of chords at least
    that long).

    Parameters
    ----------
    im : array_like
        2D or 3D chord image (bool, or labels as :func:`apply_chords` gives them).
    bins : int, array_like or None
        Number of bins over the data range, the bin edges, or None for one bin per pixel length.
    log : bool
        Histogram ``log10`` of the lengths (the result's first field is then ``LogL``).
    voxel_size : float
        Pixel length; the lengths are scaled before binning.
    normalization : {'count', 'number', 'length'}
        Density of chord numbers (``count`` = ``number``), or of chord numbers times bin centre
        (``length``; PoreSpy truncates each weighted bin to an integer when it sums them, as here).

    Returns
    -------
    Results
        ``L`` (``LogL`` with ``log``; = ``bin_centers``), ``pdf``, ``cdf``, ``relfreq``
        (``pdf`` x bin width, sums to 1), ``bin_centers``, ``bin_edges``, ``bin_widths``.
    """
    image = np.asarray(im)
    if image.ndim not in (2, 3):
        raise ValueError(f"im must be one 2D or 3D image, got shape {image.shape}")
    if normalization not in ("count", "number", "length"):
        raise ValueError(f"normalization must be 'count', 'number' or 'length', got {normalization!r}")
    check_positive(voxel_size, "voxel_size")
    x = _component_sizes(image > 0)
    if bins is None:
        bins = np.array(range(0, x.max() + 2)) * voxel_size
    x = x * voxel_size
    if log:
        x = np.log10(x)
    if normalization == "length":
        counts, edges = np.histogram(x, bins=bins, density=False)
        weighted = counts * (edges[1:] + edges[:-1]) / 2
        pdf = weighted / weighted.sum(dtype=np.int64) / (edges[1:] - edges[:-1])
    else:
        pdf, edges = np.histogram(x, bins=bins, density=True)
    widths = edges[1:] - edges[:-1]
    relfreq = pdf * widths
    centers = (edges[1:] + edges[:-1]) / 2
    out = Results("chord_length_distribution")
    out["LogL" if log else "L"] = centers
    out.pdf = pdf
    out.cdf = np.cumsum(relfreq[::-1])[::-1]
    out.relfreq = relfreq
    out.bin_centers = centers
    out.bin_edges = edges
    out.bin_widths = widths
    return out
