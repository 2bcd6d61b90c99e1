"""Zarr and HDF5 stores: image stacks opened by path, read in slices, refused when unsafe.

A store handle (:class:`StoreArray`) holds only the path, so it pickles: Dask workers reopen
the file and read their own slice. Stores whose metadata name a non-numeric element type or
a pickle-based codec are refused before any chunk is decoded: decoding them can run code
stored in the file.
"""
import json
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["STORE_SUFFIXES", "is_store", "open_store", "StoreArray", "check_safe_array"]

_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5")
STORE_SUFFIXES = (".zarr", *_HDF5_SUFFIXES)  #: path endings :func:`open_store` opens (Zarr, then HDF5)


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a Zarr store or an HDF5 file (by its ending, :data:`STORE_SUFFIXES`)."""
    return str(path).rstrip("/").lower().endswith(STORE_SUFFIXES)


def open_store(path: str | os.PathLike, dataset: str | None = None) -> "StoreArray":
    """Open a Zarr or HDF5 array lazily (read-only) for labeling.

    Parameters
    ----------
    path : str or Path
        A Zarr store (directory ending in ``.zarr``) or an HDF5 file (``.h5``, ``.hdf5``).
    dataset : str, optional
        Array path inside a Zarr group or HDF5 file; optional when the file holds one array.

    Returns
    -------
    StoreArray
        Picklable handle with ``shape`` and slicing; each access reopens the file, so it can
        be sent to Dask workers.
    """
    return StoreArray(path, dataset)


# Numeric and boolean element types, the only data here: Zarr v2 dtype strings and v3 names.
_V2_DTYPE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248])$")
_V3_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
              "float64"}


def _check_zarr_metadata(path):
    """Refuse a Zarr store holding a non-numeric array or a pickle-based codec, reading only its
    metadata files (before zarr parses them, and before any chunk is read).

    Decoding a pickle codec runs code chosen by whoever wrote the file; numcodecs guards
    against it only in recent versions and only unless ``NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE``
    is set. Object dtypes are decoded by such codecs, so they are refused too. Consolidated
    metadata (``.zmetadata``, a group ``zarr.json``'s ``consolidated_metadata``) is checked like
    the per-array files: zarr reads it instead of them when present, so it may say otherwise.
    """
    for meta in sorted(Path(path).rglob("*")):
        if meta.name not in (".zarray", ".zmetadata", "zarr.json") or not meta.is_file():
            continue
        try:
            spec = json.loads(meta.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{meta}: unreadable Zarr metadata ({exc})") from None
        for where, array, version in _zarr_arrays(meta, spec):
            _check_zarr_array(where, array, version)


def _zarr_arrays(meta, spec):
    """``(where, array metadata, format)`` of every array described in one metadata file."""
    if meta.name == ".zarray":
        yield meta.parent, spec, 2
    elif meta.name == ".zmetadata":
        for key, array in _consolidated_entries(meta, spec):
            if key.split("/")[-1] == ".zarray":
                yield f"{meta} [{key}]", array, 2
    else:
        yield from _zarr_v3_nodes(meta, meta.parent, spec)


def _zarr_v3_nodes(meta, where, node):
    """The arrays of a v3 node: the node itself, or those a group lists in its consolidated metadata."""
    if isinstance(node, dict) and node.get("node_type") != "array":
        if node.get("consolidated_metadata") is not None:
            for key, child in _consolidated_entries(meta, node["consolidated_metadata"]):
                yield from _zarr_v3_nodes(meta, f"{meta} [{key}]", child)
    else:
        yield where, node, 3


def _consolidated_entries(meta, consolidated):
    """``(key, metadata)`` pairs of consolidated metadata (v2 and v3 both keep them in ``metadata``)."""
    entries = consolidated.get("metadata") if isinstance(consolidated, dict) else consolidated
    if entries is None:
        return []
    if not isinstance(entries, dict):
        raise ValueError(f"{meta}: unreadable Zarr consolidated metadata (expected a JSON object)")
    return entries.items()


def _check_zarr_array(where, spec, version):
    """Apply the rule (numeric or boolean dtype, no pickle codec) to one array's metadata."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: unreadable Zarr metadata (expected a JSON object, got {spec!r:.60})")
    if version == 2:
        dtype, codecs = spec.get("dtype"), [spec.get("compressor") or {}, *(spec.get("filters") or [])]
        names = [str(c.get("id", "")) for c in codecs if isinstance(c, dict)]
        numeric = isinstance(dtype, str) and bool(_V2_DTYPE.match(dtype))
    else:
        dtype, codecs = spec.get("data_type"), spec.get("codecs") or []
        names = [str(c.get("name", "")) if isinstance(c, dict) else str(c) for c in codecs]
        numeric = isinstance(dtype, str) and dtype in _V3_DTYPES
    _refuse_pickle(where, names)
    if not numeric:
        raise ValueError(f"{where}: Zarr array of dtype {dtype!r} is not numeric or boolean image data "
                         "(object and string arrays are refused: their codecs can run code stored in the file)")


def _refuse_pickle(where, codec_names):
    unsafe = [n for n in codec_names if "pickle" in n.lower()]
    if unsafe:
        raise ValueError(f"{where}: refusing a Zarr array encoded with {unsafe[0]!r}: decoding it can "
                         "run code stored in the file; store the images as numeric or boolean arrays")


def check_safe_array(data: object) -> None:
    """Refuse a Zarr or Dask array the caller opened unless it is numeric or boolean and free of
    pickle codecs, reading only its metadata.

    The rule of :func:`open_store`, applied to the array's dtype and a Zarr array's codecs
    (zarr 2 ``compressor``/``filters``, zarr 3 ``filters``/``serializer``/``compressors``).
    No chunk has been read yet, so refusing here still comes before any decoding.

    Raises
    ------
    TypeError
        ``data`` is not an array (a group, say).
    ValueError
        A pickle codec, or an object or string element type.
    """
    kind = type(data).__module__.split(".")[0]
    if getattr(data, "dtype", None) is None:
        raise TypeError(f"data: expected an array, got a {kind} {type(data).__name__}; pass one array of it "
                        "or the store path with dataset=")
    compressors = data.compressors if hasattr(data, "compressors") else [getattr(data, "compressor", None)]
    codecs = [c for c in (*(getattr(data, "filters", None) or ()), getattr(data, "serializer", None), *compressors)
              if c is not None]
    _refuse_pickle(f"data ({kind} array)", [name for c in codecs for name in (str(getattr(c, "codec_id", "")),
                                                                                type(c).__name__)])
    if np.dtype(data.dtype).kind not in "biuf":
        raise ValueError(f"data ({kind} array): dtype {data.dtype} is not numeric or boolean image data "
                         "(object and string arrays are refused: their codecs can run code stored in the file)")


class StoreArray:
    """A Zarr/HDF5 array by path: ``shape``, ``dtype`` and ``[i:j]`` reads, reopening the file each time.

    Made by :func:`open_store`, which checks the store first.
    """

    def __init__(self, path: str | os.PathLike, dataset: str | None = None):
        self.path = str(path)
        if not Path(self.path).exists():
            raise FileNotFoundError(f"no such file or folder: {self.path}")
        self.kind = "zarr" if self.path.rstrip("/").lower().endswith(".zarr") else "hdf5"
        if self.kind == "hdf5" and not self.path.lower().endswith(_HDF5_SUFFIXES):
            raise ValueError(f"{self.path}: not a Zarr (.zarr) or HDF5 (.h5, .hdf5) store")
        if self.kind == "zarr":
            _check_zarr_metadata(self.path)
        self.dataset = dataset if dataset is not None else self._only_array()
        with self._open() as arr:
            self.shape = tuple(arr.shape)
            self.dtype = arr.dtype
        if np.dtype(self.dtype).kind not in "biuf":
            raise ValueError(f"{self!r}: dtype {self.dtype} is not numeric or boolean image data")

    def _only_array(self):
        if self.kind == "zarr":
            import zarr

            node = zarr.open(self.path, mode="r")
            if isinstance(node, zarr.Array):
                return ""
            names = [name for name, _ in node.arrays()]
        else:
            import h5py

            names = []
            with h5py.File(self.path, "r") as fh:
                fh.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        if len(names) != 1:
            raise ValueError(f"{self.path} holds arrays {names}; choose one with dataset= (--dataset)")
        return names[0]

    def _open(self):
        return _Opened(self)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        with self._open() as arr:
            return np.asarray(arr[index])

    def __repr__(self):
        return f"{self.kind} array {self.path}{'::' + self.dataset if self.dataset else ''} {self.shape}"


class _Opened:
    """Context manager yielding the underlying zarr/h5py array of a :class:`StoreArray`."""

    def __init__(self, store):
        self.store = store
        self.file = None

    def __enter__(self):
        if self.store.kind == "zarr":
            import zarr

            node = zarr.open(self.store.path, mode="r")
            arr = node if not self.store.dataset else node[self.store.dataset]
        else:
            import h5py

            self.file = h5py.File(self.store.path, "r")
            if self.store.dataset not in self.file:
                self.file.close()
                raise ValueError(f"{self.store.path}: no dataset {self.store.dataset!r}")
            arr = self.file[self.store.dataset]
        if not hasattr(arr, "shape") or len(arr.shape) not in (3, 4):
            raise ValueError(f"{self.store.path}: expected an array of shape (N, H, W) or (N, D, H, W), "
                             f"got {getattr(arr, 'shape', type(arr).__name__)}")
        return arr

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()
