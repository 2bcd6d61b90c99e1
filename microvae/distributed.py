"""Labeling at scale: the same :func:`microvae.properties.label` kernel mapped over chunks of
an image stack with Dask (``dask.distributed``), from NumPy, Dask, Zarr or HDF5 arrays.

Pointing it at a real cluster: start a scheduler and workers (``dask scheduler`` /
``dask worker ADDRESS``, or a deployment such as dask-jobqueue or dask-kubernetes), make
microvae importable on every worker (same version), keep the data where workers can read it
(a shared file system or object store path for Zarr/HDF5; workers open the store themselves
and read only their chunk), then ``label_dask(path, client=Client(ADDRESS))`` or
``microvae label ... --scheduler ADDRESS``. Each task labels one chunk with the FFT threads of
its worker; use one thread per worker process for CPU-bound labeling
(``dask worker --nthreads 1 --nworkers N``).
"""
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["label_dask", "open_store", "label_chunks"]

_STORE_SUFFIXES = (".zarr", ".h5", ".hdf5", ".he5")
_CHUNK_PIXELS = 2 ** 24


def open_store(path: str | os.PathLike, dataset: str | None = None) -> "_StoreArray":
    """Open a Zarr or HDF5 array lazily (read-only) for labeling.

    Parameters
    ----------
    path : str or Path
        A Zarr store (directory ending in ``.zarr``) or an HDF5 file (``.h5``, ``.hdf5``).
    dataset : str, optional
        Array path inside a Zarr group or HDF5 file; optional when the file holds one array.

    Returns
    -------
    _StoreArray
        Picklable handle with ``shape`` and slicing; each access reopens the file, so it can
        be sent to Dask workers.
    """
    return _StoreArray(path, dataset)


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


def _check_open_array(data):
    """The same rule for a Zarr or Dask array the caller opened: its dtype, and a Zarr array's
    codecs (zarr 2 ``compressor``/``filters``, zarr 3 ``filters``/``serializer``/``compressors``).
    No chunk has been read yet, so refusing here still comes before any decoding."""
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


class _StoreArray:
    """A Zarr/HDF5 array by path: ``shape`` and ``[i:j]`` reads, reopening the file each time."""

    def __init__(self, path, dataset=None):
        self.path = str(path)
        if not Path(self.path).exists():
            raise FileNotFoundError(f"no such file or folder: {self.path}")
        self.kind = "zarr" if self.path.rstrip("/").lower().endswith(".zarr") else "hdf5"
        if self.kind == "hdf5" and not self.path.lower().endswith(_STORE_SUFFIXES[1:]):
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
    """Context manager yielding the underlying zarr/h5py array of a :class:`_StoreArray`."""

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


def _as_source(data, dataset):
    """A sliceable source with ``shape`` (NumPy, Dask, Zarr, h5py or a store path)."""
    if isinstance(data, (str, os.PathLike)):
        return _StoreArray(data, dataset)
    module = type(data).__module__.split(".")[0]
    if module == "h5py":
        # h5py objects do not pickle; reopen by file name inside each task.
        return _StoreArray(data.file.filename, data.name)
    if module in ("dask", "zarr"):
        _check_open_array(data)
        return data
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    return arr


def _chunk_ranges(n, spatial, batch_size):
    step = batch_size or max(1, _CHUNK_PIXELS // int(np.prod(spatial)))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def _task_args(source, start, stop):
    """Arguments of :func:`_label_slice`: arrays in memory travel as the chunk itself, stores
    as the handle (the worker reads its own slice)."""
    if isinstance(source, np.ndarray):
        return source[start:stop], 0, stop - start
    return source, start, stop


def _label_slice(source, start, stop, label_kwargs):
    """Task body: read images ``start:stop`` (where the task runs) and label them."""
    from .properties import label

    batch = np.asarray(source[start:stop])
    return label(batch, ndim=batch.ndim - 1, **label_kwargs)


def _label_block(block, label_kwargs):
    from .properties import label

    block = np.asarray(block)
    return label(block, ndim=block.ndim - 1, **label_kwargs)


def _concat(results):
    # Keys of the labeller that ran (strong contrast or full field), in its order.
    return {key: np.concatenate([r[key] for r in results]) for key in results[0]}


def label_dask(data: ArrayLike | str | os.PathLike, client: Any = None, *, dataset: str | None = None,
               batch_size: int | None = None, **label_kwargs: Any) -> dict[str, np.ndarray]:
    """Label an image stack chunk by chunk on a Dask cluster; same results as :func:`label`.

    Parameters
    ----------
    data : array_like, dask array, zarr array, h5py dataset, or path
        Images ``(N, H, W)`` or volumes ``(N, D, H, W)``, binary with 1 = pore. A path opens a
        Zarr store or HDF5 file (:func:`open_store`); stores are read by the workers, one
        chunk each, so nothing but labels passes through the client. Object or string dtypes
        and pickle codecs are refused before any chunk is read.
    client : dask.distributed.Client, optional
        Cluster to run on. Default: the current default client if one exists, else Dask's
        local threaded scheduler.
    dataset : str, optional
        Array path inside a Zarr group or HDF5 file.
    batch_size : int, optional
        Images per task (default: about 16 million pixels per task). For a Dask array the
        existing chunks along axis 0 are used unless this is given.
    **label_kwargs
        Passed to :func:`microvae.properties.label` (``d``, ``K1``, ``G1``, ``voxel_size``,
        ``periodic``, ...).

    Returns
    -------
    dict of str -> ndarray
        As :func:`microvae.properties.label`, rows in input order.
    """
    import dask

    for key in ("ndim", "progress"):
        if key in label_kwargs:
            raise TypeError(f"label_dask does not take {key}=")
    source = _as_source(data, dataset)
    shape = tuple(source.shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"data must have shape (N, H, W) or (N, D, H, W), got {shape}")
    if type(source).__module__.split(".")[0] == "dask":
        if batch_size is not None or any(len(c) != 1 for c in source.chunks[1:]):
            source = source.rechunk({0: batch_size or "auto", **{a: -1 for a in range(1, len(shape))}})
        tasks = [dask.delayed(_label_block)(block, label_kwargs) for block in source.to_delayed().ravel()]
    else:
        tasks = [dask.delayed(_label_slice)(*_task_args(source, i, j), label_kwargs)
                 for i, j in _chunk_ranges(shape[0], shape[1:], batch_size)]
    if client is None:
        client = _default_client()
    results = dask.compute(*tasks, scheduler=client) if client is not None else dask.compute(*tasks)
    return _concat(results)


def _default_client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def label_chunks(sources: list, parts_dir: str | os.PathLike, parameters: dict, *, batch_size: int | None = None,
                 client: Any = None, progress: bool = False, overwrite: bool = False,
                 **label_kwargs: Any) -> list[dict[str, np.ndarray]]:
    """Label several sources chunk by chunk, saving each finished chunk so a rerun resumes.

    Parameters
    ----------
    sources : list of array_like
        Sliceable image stacks (NumPy arrays in memory or :func:`open_store` handles).
    parts_dir : str or Path
        Folder for the finished chunks and a manifest of ``parameters``. Chunks found there
        from a run with the same parameters are not recomputed; a folder from other
        parameters is an error unless ``overwrite``.
    parameters : dict
        JSON-serializable description of the inputs and options (compared on resume).
    batch_size : int, optional
        Images per chunk.
    client : dask.distributed.Client, optional
        Run the chunks on this cluster; without, in this process.
    progress : bool
        Progress bar over images.
    overwrite : bool
        Discard saved chunks.
    **label_kwargs
        Passed to :func:`microvae.properties.label`.

    Returns
    -------
    list of dict
        Labels per source, in order.
    """
    from .io import atomic_write

    parts_dir = Path(parts_dir)
    # The manifest keeps its key "chunk_size": folders saved before the rename stay resumable.
    manifest = {"parameters": parameters, "label": label_kwargs, "chunk_size": batch_size}
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if parts_dir.exists() and overwrite:
        shutil.rmtree(parts_dir)
    manifest_path = parts_dir / "manifest.json"
    saved = _read_manifest(manifest_path) if manifest_path.exists() else None
    if saved is not None and saved.get("digest") != digest and any(parts_dir.glob("part-*.npz")):
        raise ValueError(f"{parts_dir} holds chunks of a run with other inputs or parameters; "
                         "pass --overwrite (overwrite=True) to discard them")
    if saved is None or saved.get("digest") != digest:
        # No chunk to keep: a manifest left by a run that failed before its first chunk is replaced.
        parts_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(manifest_path, lambda fh: json.dump({"digest": digest, **manifest}, fh, indent=2, default=str),
                     mode="w", overwrite=True)

    jobs = []
    for s, source in enumerate(sources):
        shape = tuple(source.shape)
        for i, j in _chunk_ranges(shape[0], shape[1:], batch_size):
            jobs.append((s, i, j, parts_dir / f"part-{s:04d}-{i:012d}.npz"))
    for _, i, j, path in jobs:
        if path.exists():
            _read_part(path, j - i)  # a damaged chunk is reported now, not after labeling the rest
    todo = [job for job in jobs if not job[3].exists()]
    try:
        _run_jobs(todo, sources, jobs, client, progress, label_kwargs)
    except BaseException:
        if not any(parts_dir.glob("part-*.npz")):
            # Nothing finished: leave nothing behind that a corrected rerun would trip over.
            shutil.rmtree(parts_dir, ignore_errors=True)
        raise
    out = []
    for s in range(len(sources)):
        out.append(_concat([_read_part(path, j - i) for js, i, j, path in jobs if js == s]))
    return out


def _read_manifest(path):
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is damaged ({exc}); delete it, or pass --overwrite (overwrite=True) to start "
                         "afresh") from None


def _read_part(path, n):
    """The labels of one finished chunk, or a clear error naming the damaged file and the remedy."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as npz:
            part = {key: npz[key] for key in npz.files}
        # Any labeller's keys (strong contrast or full field); each a column of n rows.
        if "porosity" not in part or any(np.shape(v)[:1] != (n,) for v in part.values()):
            raise ValueError("no porosity column" if "porosity" not in part else f"not {n} rows")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is damaged ({exc}); delete it to recompute that chunk, or pass --overwrite "
                         "(overwrite=True) to start afresh") from None
    return part


def _run_jobs(todo, sources, jobs, client, progress, label_kwargs):
    """Label the chunks of ``todo`` (in this process or on ``client``), saving each one atomically."""
    from .io import atomic_write

    total = sum(j - i for _, i, j, _ in jobs)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - sum(j - i for _, i, j, _ in todo), desc="label", unit="img")

    def save(path, result):
        atomic_write(path, lambda fh: np.savez(fh, **result), overwrite=True)

    try:
        if client is None:
            for s, i, j, path in todo:
                save(path, _label_slice(sources[s], i, j, label_kwargs))
                if bar is not None:
                    bar.update(j - i)
        else:
            from distributed import as_completed

            remote = []
            for s, i, j, path in todo:
                remote.append(client.submit(_label_slice, *_task_args(sources[s], i, j), label_kwargs, pure=False))
            where = {fut.key: job for fut, job in zip(remote, todo)}
            for fut in as_completed(remote):
                s, i, j, path = where[fut.key]
                save(path, fut.result())
                if bar is not None:
                    bar.update(j - i)
    finally:
        if bar is not None:
            bar.close()
