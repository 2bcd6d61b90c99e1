"""Descriptors along the lines of pixels: the lineal path and the chord lengths of a phase.

Both come from the run lengths of each image line along each spatial axis
(:func:`run_histograms`); the module also holds the checks of the ``r_max`` and ``axis``
arguments that every curve of :mod:`microvae.morphology` shares.
"""
import numpy as np
from numpy.typing import ArrayLike

from .._validate import as_binary_batch, check_int

__all__ = ["lineal_path", "chord_lengths", "ChordLengths"]


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


def image_lines(batch: np.ndarray, axis: int) -> np.ndarray:
    """The image lines along one spatial axis, as a C-contiguous array.

    Parameters
    ----------
    batch : ndarray, shape ``(N,) + spatial``
        A validated batch (binary images or cluster labels).
    axis : int
        Spatial axis (0 = first spatial axis).

    Returns
    -------
    ndarray, shape ``(N, lines, n)``
        Each image's lines of ``n = spatial[axis]`` pixels.
    """
    x = np.moveaxis(batch, axis + 1, -1)
    return np.ascontiguousarray(x).reshape(len(batch), -1, x.shape[-1])


def run_histograms(batch: np.ndarray, axis: int) -> np.ndarray:
    """Run-length histograms of both phases along one spatial axis.

    A run is a maximal segment of one phase along an image line. The lineal path and the chord
    lengths both derive from these histograms, so :func:`microvae.morphology.descriptors`
    computes them once per axis.

    Parameters
    ----------
    batch : ndarray of uint8, shape ``(N,) + spatial``
        A validated binary batch, 1 = pore.
    axis : int
        Spatial axis (0 = first spatial axis).

    Returns
    -------
    ndarray of int64, shape ``(2, 2, N, n + 1)``
        ``counts[phase, kind, image, length]``: the number of runs of each length (pixels;
        ``n`` the side along ``axis``), ``kind`` 0 for all runs and 1 for the runs that touch
        neither end of their line.
    """
    lines = image_lines(batch, axis)
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


def lineal_path_from_runs(hist: np.ndarray, axis_length: int, n_lines: int, r_max: int) -> np.ndarray:
    """Lineal path L(r) of one phase along one axis from its histogram of all runs.

    A run of ``l`` pixels holds ``max(l - r, 0)`` segments of length ``r``, out of
    ``axis_length - r`` positions per line.

    Parameters
    ----------
    hist : ndarray, shape ``(N, axis_length + 1)``
        Runs of the phase per image and length (``run_histograms(...)[phase, 0]``).
    axis_length : int
        Pixels per line along the axis.
    n_lines : int
        Lines per image along the axis.
    r_max : int
        Largest segment length, pixels (less than ``axis_length``).

    Returns
    -------
    ndarray of float64, shape ``(N, r_max + 1)``
    """
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
        out += lineal_path_from_runs(run_histograms(batch, ax)[phase, 0], n, batch[0].size // n, r_max)
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
        hist = run_histograms(batch, ax)[phase, 0 if edges else 1]
        counts[:, :hist.shape[1]] += hist
    return ChordLengths(counts)
