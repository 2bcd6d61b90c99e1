"""Image files as pore indicators: load, binarize, lay out as stacks, save and slice microstructure images.

Convention: the arrays this module returns are ``uint8`` with **1 = pore** and 0 = solid.
Files differ in how they mark the pore phase (the Berea micro-CT stack stores pores as 0,
grains as 255), so loaders take an explicit ``pore_value`` and never guess it. The files themselves
are read, as stored, by :mod:`microvae.io.readers`.
"""
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._validate import as_binary_batch, as_generator, check_finite, check_int, check_memory
from .files import atomic_write
from .readers import read

__all__ = ["load", "as_image_stack", "binarize", "save", "slices", "describe", "SAVE_SUFFIXES"]

SAVE_SUFFIXES = (".npy", ".npz", ".tif", ".tiff")  #: the formats of :func:`save`


def load(path: str | os.PathLike, pore_value: float | None = None, *, shape: tuple[int, ...] | None = None,
         dtype: DTypeLike | None = None, key: str | None = None) -> NDArray[np.uint8]:
    """Load a segmented image or volume as a binary pore indicator (1 = pore).

    Parameters
    ----------
    path : str or Path
        Any format :func:`read` accepts.
    pore_value : scalar, optional
        The stored value that marks pore (void). Mandatory unless the data already holds
        only 0 and 1, which is then read with the project convention 1 = pore. Data with more
        than two distinct values is grayscale: threshold it with :func:`binarize`.
    shape, dtype, key :
        Passed to :func:`read`.

    Returns
    -------
    ndarray of uint8
        Same shape as stored; 1 where the stored value equals ``pore_value``.
    """
    if isinstance(pore_value, float) and pore_value.is_integer():
        # 255.0 (from a command line or a JSON file) names the stored integer 255: say so in messages.
        pore_value = int(pore_value)
    return _to_pore_indicator(read(path, shape=shape, dtype=dtype, key=key), pore_value, str(path))


def _to_pore_indicator(data, pore_value, name):
    if data.size == 0:
        raise ValueError(f"{name}: image is empty (shape {data.shape})")
    check_finite(data, name)
    values = np.unique(data)
    if pore_value is None:
        if np.isin(values, (0, 1)).all():
            return data.astype(np.uint8)
        raise ValueError(
            f"{name}: data holds values {values[:6].tolist()}{'...' if values.size > 6 else ''}, not 0/1; "
            "pass pore_value= (the stored value that marks pore)"
            + ("" if values.size <= 2 else ", or threshold grayscale data with microvae.io.binarize")
        )
    if values.size > 2:
        raise ValueError(f"{name}: data holds {values.size} distinct values (grayscale); segment it first with "
                         "microvae.io.binarize(image, threshold, pore_value)")
    if pore_value not in values:
        raise ValueError(f"{name}: pore_value={pore_value!r} does not occur in the data (values: {values.tolist()})")
    return (data == pore_value).astype(np.uint8)


def as_image_stack(data: ArrayLike, *, volume: bool = False) -> tuple[np.ndarray, int]:
    """An array as a stack of images with its spatial dimension, by the layout files are stored in.

    Parameters
    ----------
    data : array_like
        ``(H, W)`` one 2D image, ``(N, H, W)`` a stack of 2D images, ``(N, D, H, W)`` a stack
        of volumes; with ``volume=True``, ``(D, H, W)`` one volume.
    volume : bool
        The array is one 3D volume, not a stack of 2D images.

    Returns
    -------
    images : ndarray, shape ``(N, H, W)`` or ``(N, D, H, W)``
        ``data`` (a view) with a leading image axis.
    ndim : {2, 3}
        Spatial dimension of each image.
    """
    data = np.asarray(data)
    if volume:
        if data.ndim != 3:
            raise ValueError(f"volume=True expects a 3D array (D, H, W), got shape {data.shape}")
        return data[None], 3
    if data.ndim == 2:
        return data[None], 2
    if data.ndim in (3, 4):
        return data, data.ndim - 1
    raise ValueError(f"cannot interpret an array of shape {data.shape} as images")


def binarize(image: ArrayLike, threshold: float, pore_value: str = "below") -> NDArray[np.uint8]:
    """Segment a grayscale image into pore (1) and solid (0) by a global threshold.

    Parameters
    ----------
    image : array_like
        Grayscale image or volume (any real dtype; NaN/inf rejected).
    threshold : float
        Intensity separating the phases.
    pore_value : {"below", "above"}
        Which side of the threshold is pore. In micro-CT, pores absorb least and are dark:
        ``"below"`` labels ``image < threshold`` as pore; ``"above"`` labels ``image > threshold``.

    Returns
    -------
    ndarray of uint8, same shape, 1 = pore.
    """
    image = np.asarray(image)
    if image.size == 0:
        raise ValueError("image is empty")
    if image.dtype.kind not in "biuf":
        raise TypeError(f"image must be numeric, got dtype {image.dtype}")
    check_finite(image, "image")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    if pore_value == "below":
        return (image < threshold).astype(np.uint8)
    if pore_value == "above":
        return (image > threshold).astype(np.uint8)
    raise ValueError(f"pore_value must be 'below' or 'above', got {pore_value!r}")


def save(path: str | os.PathLike, images: ArrayLike, *, overwrite: bool = False, compress: bool = True) -> Path:
    """Save images atomically as ``.npy``, ``.npz`` (array ``images``) or ``.tif``.

    Parameters
    ----------
    path : str or Path
        Target; its suffix picks the format.
    images : array_like
    overwrite : bool
        Replace an existing file (default: refuse).
    compress : bool
        Compress ``.npz`` and ``.tif`` output.
    """
    images = np.asarray(images)
    if images.size == 0:
        raise ValueError("refusing to save an empty array")
    if images.dtype.hasobject or images.dtype.kind not in "biuf":
        raise TypeError(f"cannot save an array of dtype {images.dtype}: microvae saves numeric or boolean images "
                        "only (what it reads back)")
    suffix = Path(path).suffix.lower()
    writer: Callable[[IO], object]
    if suffix == ".npy":
        writer = lambda fh: np.save(fh, images)  # noqa: E731
    elif suffix == ".npz":
        savez = np.savez_compressed if compress else np.savez
        writer = lambda fh: savez(fh, images=images)  # noqa: E731
    elif suffix in (".tif", ".tiff"):
        import tifffile

        # minisblack: a stack of 3 or 4 images is not an RGB(A) image.
        writer = lambda fh: tifffile.imwrite(fh, images, photometric="minisblack",  # noqa: E731
                                             compression="zlib" if compress else None)
    else:
        raise ValueError(f"cannot save {suffix or 'a file without suffix'!r}; use .npy, .npz or .tif")
    return atomic_write(path, writer, overwrite=overwrite)


# The samples, or with return_positions=True the samples and their positions.
@overload
def slices(volume: ArrayLike, size: int, n: int | None = None, *, axes: tuple[int, ...] = (0, 1, 2),
           stride: int | None = None, seed: int | np.random.Generator | None = None,
           return_positions: Literal[False] = False) -> NDArray[np.uint8]: ...
@overload
def slices(volume: ArrayLike, size: int, n: int | None = None, *, axes: tuple[int, ...] = (0, 1, 2),
           stride: int | None = None, seed: int | np.random.Generator | None = None,
           return_positions: Literal[True]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]: ...
def slices(volume: ArrayLike, size: int, n: int | None = None, *, axes: tuple[int, ...] = (0, 1, 2),
           stride: int | None = None, seed: int | np.random.Generator | None = None,
           return_positions: bool = False) -> NDArray[np.uint8] | tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Cut square 2D samples from planes of a 3D volume, along one or several axes.

    Parameters
    ----------
    volume : array_like, shape ``(D, H, W)``
        Binary volume (1 = pore).
    size : int
        Side of the square samples, in voxels.
    n : int, optional
        Number of samples. With ``stride=None`` it is required and the samples are drawn at
        uniformly random planes and offsets, spread evenly over ``axes``. With a ``stride``
        the regular grid is cut, and ``n`` (if given) keeps a seeded random subset of it.
    axes : sequence of {0, 1, 2}
        Axes normal to the cutting planes.
    stride : int, optional
        Grid step for planes and in-plane offsets (``stride=size`` gives non-overlapping
        tiles within a plane, planes ``size`` apart).
    seed : int or numpy Generator, optional
    return_positions : bool
        Also return an ``(n, 4)`` int array of ``(axis, plane, row, col)`` per sample.

    Returns
    -------
    samples : ndarray of uint8, shape ``(n, size, size)``
    positions : ndarray, optional
    """
    vol, _ = as_binary_batch(volume, ndim=3, name="volume")
    if vol.shape[0] != 1:
        raise ValueError(f"slices takes one volume (D, H, W), got shape {np.shape(volume)}")
    vol = vol[0]
    axes = tuple(axes)
    if not axes or any(a not in (0, 1, 2) for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"axes must be distinct values from (0, 1, 2), got {axes}")
    size = int(size)
    for a in axes:
        plane = [s for i, s in enumerate(vol.shape) if i != a]
        if size < 1 or size > min(plane):
            raise ValueError(f"size={size} does not fit planes of shape {tuple(plane)} normal to axis {a}")
    rng = as_generator(seed)
    if stride is None:
        if n is None:
            raise ValueError("give n >= 1 (random samples) or a stride (regular grid)")
        n = check_int(n, "n")
        _check_samples_memory(n, size)
        which = np.arange(n) % len(axes)
        pos = np.empty((n, 4), dtype=np.int64)
        for k in range(n):
            a = axes[which[k]]
            plane_shape = [s for i, s in enumerate(vol.shape) if i != a]
            pos[k] = (a, rng.integers(vol.shape[a]), rng.integers(plane_shape[0] - size + 1),
                      rng.integers(plane_shape[1] - size + 1))
    else:
        stride = check_int(stride, "stride")
        # The grid, axis after axis, planes, rows, columns: counted, never listed whole.
        counts = [[len(range(0, vol.shape[a], stride))]
                  + [len(range(0, s - size + 1, stride)) for i, s in enumerate(vol.shape) if i != a] for a in axes]
        per_axis = [math.prod(c) for c in counts]
        total = sum(per_axis)
        if n is None:
            _check_samples_memory(total, size)
            flat = np.arange(total, dtype=np.int64)
        else:
            n = check_int(n, "n")
            if n > total:
                raise ValueError(f"n={n} exceeds the {total} samples on a stride-{stride} grid")
            _check_samples_memory(n, size)
            flat = np.sort(rng.choice(total, size=n, replace=False))
        pos = np.empty((len(flat), 4), dtype=np.int64)
        start = 0
        for a, c, m in zip(axes, counts, per_axis):
            here = (flat >= start) & (flat < start + m)
            pos[here, 0] = a
            pos[here, 1:] = np.stack(np.unravel_index(flat[here] - start, c), axis=1) * stride
            start += m
    out = np.empty((len(pos), size, size), dtype=np.uint8)
    for k, (a, p, i, j) in enumerate(pos):
        out[k] = np.take(vol, p, axis=a)[i:i + size, j:j + size]
    return (out, pos) if return_positions else out


def _check_samples_memory(n, size):
    # The samples and their positions (four int64 each).
    check_memory(n * (size * size + 32), f"{n} samples of {size} x {size} px", "cut fewer samples (n=) or use a "
                 "coarser grid (stride=)")


def describe(images: ArrayLike, ndim: int | None = None) -> dict:
    """Summary statistics of a binary batch: count, shape, porosity mean/std/min/max."""
    batch, nd = as_binary_batch(images, ndim=ndim)
    phi = batch.reshape(len(batch), -1).mean(axis=1)
    return {"n": int(len(batch)), "ndim": nd, "shape": list(batch.shape[1:]),
            "porosity_mean": float(phi.mean()), "porosity_std": float(phi.std()),
            "porosity_min": float(phi.min()), "porosity_max": float(phi.max())}
