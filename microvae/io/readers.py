"""Image arrays read from files as stored: ``.npy``, ``.npz``, TIFF, PNG (files and folders), raw
files and zip archives holding one of them.

Nothing is read before the suffix, the kind of file and its declared size are checked, and an
array is read only after its header gives its shape and dtype (:func:`read`, :func:`array_info`).
The phases are not interpreted here: :func:`microvae.io.load` turns what :func:`read` returns
into the pore indicator.
"""
import io as _io
import math
import os
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

from .._validate import check_memory

__all__ = ["read", "array_info"]

_IMAGE_SUFFIXES = (".npy", ".npz", ".tif", ".tiff", ".png", ".raw", ".bin")


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
