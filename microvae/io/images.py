"""Image files: read, load as a pore indicator, binarize, save and slice microstructure images.

Convention: the arrays this module returns are ``uint8`` with **1 = pore** and 0 = solid.
Files differ in how they mark the pore phase (the Berea micro-CT stack stores pores as 0,
grains as 255), so loaders take an explicit ``pore_value`` and never guess it.
"""
import io as _io
import math
import os
import stat
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._validate import as_binary_batch, as_generator, check_finite, check_int, check_memory
from .files import atomic_write

__all__ = ["read", "array_info", "load", "as_image_stack", "binarize", "save", "slices", "describe", "SAVE_SUFFIXES"]

_IMAGE_SUFFIXES = (".npy", ".npz", ".tif", ".tiff", ".png", ".raw", ".bin")
SAVE_SUFFIXES = (".npy", ".npz", ".tif", ".tiff")  #: the formats of :func:`save`


def read(path: str | os.PathLike, *, shape: tuple[int, ...] | None = None, dtype: DTypeLike | None = None,
         key: str | None = None) -> np.ndarray:
    """Read an image array from a file as stored, without interpreting its phases.

    Parameters
    ----------
    path : str or Path
        ``.npy``; ``.npz`` (the array ``key``, or its only array); ``.tif``/``.tiff`` (a 2D
        image or a stack); a folder of ``.png`` files (sorted by name, stacked on axis 0);
        ``.raw``/``.bin`` (headerless, needs ``shape`` and ``dtype``); or a ``.zip`` holding
        exactly one file of those kinds (read without extracting).
    shape, dtype :
        Required for raw files; the file size must match exactly.
    key : str, optional
        Array name inside an ``.npz`` archive with several arrays.

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        An unsupported suffix, something other than a regular file (a FIFO, a device), a file
        whose size does not match what its header or ``shape``/``dtype`` say, a colour image,
        an array that is not numeric or boolean, or a damaged file.
    MemoryError
        The array would exceed the memory limit (:func:`microvae._validate.memory_limit`).

    Notes
    -----
    Nothing is read before the suffix, the kind of file and its size are checked, and an array
    is read only after its header says its shape and dtype: a small archive cannot expand into
    gigabytes, and a FIFO or ``/dev/zero`` cannot block or fill the memory.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        return _read_png_folder(path)
    suffix = path.suffix.lower()
    if suffix not in _IMAGE_SUFFIXES + (".zip",):
        raise ValueError(f"{path}: unsupported file type {suffix or '(no suffix)'!r} (use .npy, .npz, .tif, "
                         ".png folder, .raw, .zip)")
    with _open_regular_file(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if suffix == ".zip":
            return _read_zip(fh, str(path), shape=shape, dtype=dtype, key=key)
        return _read_stream(fh, size, suffix, str(path), shape=shape, dtype=dtype, key=key)


def _open_regular_file(path):
    """``path`` opened for reading if it is a regular file. Opened without blocking, so that a FIFO
    with no writer is refused at once instead of waiting for one."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or
                stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise ValueError(f"{path}: {kind}, not an image file; microvae reads regular files only")
    return os.fdopen(fd, "rb")


def _read_zip(fh, name, **kwargs):
    try:
        with zipfile.ZipFile(fh) as zf:
            members = [m for m in zf.infolist() if m.filename.lower().endswith(_IMAGE_SUFFIXES)
                       and not m.filename.startswith("__MACOSX")]
            if len(members) != 1:
                raise ValueError(f"{name}: expected exactly one image file in the zip archive, found "
                                 f"{[m.filename for m in members]}")
            member = members[0]
            where = f"{name}:{member.filename}"
            suffix = Path(member.filename).suffix.lower()
            with zf.open(member) as stream:
                if suffix in (".tif", ".tiff", ".png"):
                    # Their readers seek back and forth: a copy in memory, of the size the archive declares.
                    check_memory(member.file_size, f"{where} ({member.file_size} bytes unpacked)",
                                 "extract it and read the file itself")
                    stream = _io.BytesIO(stream.read())
                return _read_stream(stream, member.file_size, suffix, where, **kwargs)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ValueError(f"{name}: not a readable zip archive ({exc})") from None


def _read_stream(fh, size, suffix, name, *, shape, dtype, key):
    """The array in ``fh``, a file of ``size`` bytes with this suffix (``name`` for messages)."""
    if suffix in (".raw", ".bin"):
        return _read_raw(fh, size, name, shape, dtype)
    try:
        if suffix == ".npy":
            return _read_npy(fh, size, name)
        if suffix == ".npz":
            return _read_npz(fh, name, key)
        if suffix in (".tif", ".tiff"):
            return _read_tiff(fh, name)
        return _read_png(fh, name)
    except MemoryError:
        raise
    except Exception as exc:  # parsers raise many types for damaged files; name the file
        if isinstance(exc, ValueError) and str(exc).startswith(name):
            raise  # microvae's own refusal, which names the file
        raise ValueError(f"{name}: cannot read file ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
                         ) from None


def _read_into(fh, out, name):
    """Fill ``out`` from ``fh``; ``ValueError`` if the file ends first."""
    view = memoryview(out.reshape(-1).view(np.uint8))
    got = 0
    while got < len(view):
        n = fh.readinto(view[got:])
        if not n:
            raise ValueError(f"{name}: file ends after {got} of {len(view)} bytes of data (truncated)")
        got += n
    return out


def _read_raw(fh, size, name, shape, dtype):
    if shape is None or dtype is None:
        raise ValueError(f"{name}: raw files need shape= and dtype=")
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"{name}: dtype={dtype} is not a numeric or boolean image type")
    shape = tuple(int(s) for s in shape)
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if size != expected:
        raise ValueError(f"{name}: file has {size} bytes but shape={shape} of dtype={dtype} needs {expected} "
                         "(truncated, or another shape or dtype)")
    check_memory(expected, f"{name} ({expected} bytes)", "read a part of it (numpy.memmap) or use a machine with "
                 "more memory")
    return _read_into(fh, np.empty(shape, dtype=dtype), name)


def _check_array_header(name, shape, dtype):
    if dtype.hasobject:
        raise ValueError(f"{name}: holds Python objects (a pickled object array), not image data; microvae reads "
                         "numeric and boolean arrays only and never unpickles files: save the images as a numeric "
                         "array (numpy.save of a uint8 or bool array)")
    if dtype.kind not in "biuf":
        raise ValueError(f"{name}: an array of dtype {dtype}, not image data; microvae reads numeric and boolean "
                         "arrays only (complex, text and record arrays are refused)")
    nbytes = math.prod(shape) * dtype.itemsize
    check_memory(nbytes, f"{name} (an array of shape {shape}, {dtype})", "read a part of it with "
                 "numpy.load(..., mmap_mode='r') or use a machine with more memory")
    return nbytes


def _npy_header(fh, name):
    """``(shape, fortran_order, dtype)`` from a ``.npy`` header, leaving ``fh`` at the data."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"{name}: NumPy .npy format version {version} is not supported")
    # Version 3 differs from 2 only in allowing UTF-8 in the header, which array headers never need.
    return (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)


def _read_npy(fh, size, name):
    """A ``.npy`` array, its header checked before its data is read."""
    shape, fortran, dtype = _npy_header(fh, name)
    nbytes = _check_array_header(name, shape, dtype)
    if fh.tell() + nbytes > size:
        raise ValueError(f"{name}: its header declares {nbytes} bytes of {dtype} {shape}, but the file holds "
                         f"{size - fh.tell()} (truncated)")
    out = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
    _read_into(fh, out, name)
    return out.T if fortran else out


def _npz_member(zf, name, key):
    """``(key, ZipInfo)`` of the array ``key`` (or the only one) of an ``.npz`` archive."""
    members = {m.filename[:-4]: m for m in zf.infolist() if m.filename.endswith(".npy")}
    others = [m.filename for m in zf.infolist() if not m.filename.endswith(".npy")]
    if others:
        raise ValueError(f"{name}: holds {others[0]!r}, which is not a NumPy array (.npy); not an .npz of "
                         "numpy.savez")
    if key is None:
        if len(members) != 1:
            raise ValueError(f"{name}: archive holds arrays {list(members)}; choose one with key=")
        key = next(iter(members))
    if key not in members:
        raise ValueError(f"{name}: no array {key!r} in archive (has {list(members)})")
    return key, members[key]


def _read_npz(fh, name, key):
    with zipfile.ZipFile(fh) as zf:
        key, member = _npz_member(zf, name, key)
        with zf.open(member) as stream:
            return _read_npy(stream, member.file_size, f"{name}[{key}]")


def array_info(path: str | os.PathLike, *, key: str | None = None) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of the array in an ``.npy`` file or of an ``.npz`` archive's array
    ``key`` (or its only one), from its header alone: the data is never read.

    Raises
    ------
    ValueError
        Another kind of file, or a damaged one; as :func:`read` for FIFOs, devices and archives
        without that array.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"{path}: array_info reads .npy and .npz headers, not {suffix or 'a file without suffix'!r}")
    with _open_regular_file(path) as fh:
        try:
            if suffix == ".npy":
                shape, _, dtype = _npy_header(fh, str(path))
            else:
                with zipfile.ZipFile(fh) as zf:
                    key, member = _npz_member(zf, str(path), key)
                    with zf.open(member) as stream:
                        shape, _, dtype = _npy_header(stream, f"{path}[{key}]")
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
                raise  # microvae's own refusal, which names the file
            raise ValueError(f"{path}: cannot read file ({type(exc).__name__}: {exc})") from None
    return tuple(shape), np.dtype(dtype)


_COLOUR = "microvae reads single-channel segmented images: save one channel (for example image[..., 0], or " \
          "PIL's Image.convert('L')), then give the stored value of the pore phase"


def _read_tiff(fh, name):
    import tifffile

    with tifffile.TiffFile(fh, name=Path(name).name) as tif:
        if not tif.series:
            raise ValueError(f"{name}: cannot read file (a TIFF file holding no image)")
        series = tif.series[0]
        page = series.pages[0] if series.pages else None
        samples = getattr(page, "samplesperpixel", 1) if page is not None else 1
        # Interleaved samples (RGB, RGBA) would be read as a last axis of width 3 or 4. Separate
        # sample planes are read as a stack of planes: tifffile stored stacks of 3 or 4 grey
        # images that way (as RGB planes) when no photometric was given, as microvae's save did.
        if page is not None and samples > 1 and page.planarconfig == tifffile.PLANARCONFIG.CONTIG:
            raise ValueError(f"{name}: a colour or multi-channel TIFF ({samples} samples per pixel, "
                             f"{page.photometric.name}); {_COLOUR}")
        _check_array_header(name, tuple(series.shape), np.dtype(series.dtype))
        return series.asarray()


def _read_png(fh, name):
    from PIL import Image

    with Image.open(fh) as im:
        if im.mode not in ("1", "L", "P", "I", "F") and not im.mode.startswith("I;"):
            raise ValueError(f"{name}: a colour PNG (mode {im.mode}, {len(im.getbands())} channels); {_COLOUR}")
        _check_array_header(name, (im.height, im.width), np.dtype(np.uint8 if im.mode in ("1", "L", "P")
                                                                    else np.int32))
        return np.asarray(im)


def _read_png_folder(folder):
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise ValueError(f"{folder}: folder holds no .png files")
    first = read(files[0])
    check_memory(len(files) * first.nbytes, f"{len(files)} PNG files of {first.shape} in {folder}",
                 "read fewer at a time")
    images = [first] + [read(p) for p in files[1:]]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"{folder}: PNG files differ in shape: {sorted(shapes)}")
    return np.stack(images)


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
