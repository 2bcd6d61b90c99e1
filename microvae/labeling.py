"""Labeling at scale: the :func:`microvae.properties.label` kernel over many images, in chunks
that are saved as they finish (an interrupted run resumes), in this process or on a Dask
cluster (``dask.distributed``), from NumPy, Dask, Zarr or HDF5 arrays and image files.

:func:`label_to_csv` is ``microvae label`` from Python: files or arrays in, a CSV table with a
JSON sidecar out. :func:`label_dask` returns the labels of one stack; :func:`label_chunks`
labels several stacks with resume.

Pointing it at a real cluster: start a scheduler and workers (``dask scheduler`` /
``dask worker ADDRESS``, or a deployment such as dask-jobqueue or dask-kubernetes), make
microvae importable on every worker (same version), keep the data where workers can read it
(a shared file system or object store path for Zarr/HDF5; workers open the store themselves
and read only their chunk), then ``label_dask(path, client=Client(ADDRESS))``,
``label_to_csv(paths, output, client=ADDRESS)`` or ``microvae label ... --scheduler ADDRESS``.
Each task labels one chunk with the FFT threads of its worker; use one thread per worker
process for CPU-bound labeling (``dask worker --nthreads 1 --nworkers N``).
"""
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .io import atomic_write, check_safe_array, jsonable, open_store, write_json

__all__ = ["label_to_csv", "label_dask", "label_chunks", "local_client"]

_CHUNK_PIXELS = 2 ** 24
# Full-field solves take ~1.5 min per 64³ volume: chunks of four such volumes resume in minutes.
_FULLFIELD_CHUNK_PIXELS = 2 ** 20
# Options of microvae.properties.label that a table's sidecar records, defaults included.
_RECORDED_OPTIONS = ("d", "K1", "G1", "voxel_size", "periodic", "margin", "extrapolate", "harmonics")


def _as_source(data, dataset):
    """A sliceable source with ``shape`` (NumPy, Dask, Zarr, h5py or a store path)."""
    if isinstance(data, (str, os.PathLike)):
        return open_store(data, dataset)
    module = type(data).__module__.split(".")[0]
    if module == "h5py":
        # h5py objects do not pickle; reopen by file name inside each task.
        return open_store(data.file.filename, data.name)
    if module in ("dask", "zarr"):
        check_safe_array(data)
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
    """Label an image stack chunk by chunk on a Dask cluster; same results as :func:`microvae.properties.label`.

    Parameters
    ----------
    data : array_like, dask array, zarr array, h5py dataset, or path
        Images ``(N, H, W)`` or volumes ``(N, D, H, W)``, binary with 1 = pore. A path opens a
        Zarr store or HDF5 file (:func:`microvae.io.open_store`); stores are read by the workers, one
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
        Sliceable image stacks (NumPy arrays in memory or :func:`microvae.io.open_store` handles).
    parts_dir : str or Path
        Folder for the finished chunks and a manifest of ``parameters``. Chunks found there
        from a run with the same parameters are not recomputed; a folder from other
        parameters is an error unless ``overwrite``.
    parameters : dict
        JSON-serializable description of the inputs and options (compared on resume;
        :func:`microvae.io.jsonable`).
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
    parts_dir = Path(parts_dir)
    # The manifest keeps its key "chunk_size": folders saved before the rename stay resumable.
    manifest = jsonable({"parameters": parameters, "label": label_kwargs, "chunk_size": batch_size})
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
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
        write_json(manifest_path, {"digest": digest, **manifest}, overwrite=True)

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
            for s, i, j, _ in todo:
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


# Run in each worker of local_client: Ctrl-C is for the command, which stops the workers (and
# their warnings about the tasks cancelled then are not news).
_WORKER_PRELOAD = ("import logging, signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                   "logging.getLogger('distributed').setLevel(logging.ERROR)\n")


def local_client(processes: int) -> Any:
    """A Dask client of a new local cluster: ``processes`` worker processes of one thread each.

    Each worker gets its share of this process's kernel threads
    (:func:`microvae.threads.worker_env`), not one thread per CPU each. Close the client and
    then ``client.cluster`` when done (or use the client as a context manager and close the
    cluster after it).
    """
    from distributed import Client, LocalCluster

    from .threads import worker_env

    # Ctrl-C reaches every process of the job: the workers ignore it, and this process stops them
    # as it closes the cluster, instead of one traceback per worker.
    cluster = LocalCluster(n_workers=processes, threads_per_worker=1, processes=True, env=worker_env(processes),
                           preload=[_WORKER_PRELOAD])
    return Client(cluster)


def _close(client, processes):
    """Close a client made here (and its local cluster), without the messages Dask logs when
    workers are stopped in the middle of a task (after an error or Ctrl-C): warnings, and the
    scheduler's CRITICAL "Closed comm" lines for each result it can no longer send."""
    import logging

    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and processes:
            cluster.close()
    finally:
        log.setLevel(level)


def label_to_csv(inputs: str | os.PathLike | ArrayLike | Sequence[str | os.PathLike | ArrayLike],
                 output: str | os.PathLike, *, pore_value: float | None = None, key: str | None = None,
                 shape: tuple[int, ...] | None = None, dtype: DTypeLike | None = None, volume: bool = False,
                 dataset: str | None = None, slice_size: int | None = None, axes: Sequence[int] = (0, 1, 2),
                 stride: int | None = None, batch_size: int | None = None, client: Any = None,
                 processes: int | None = None, overwrite: bool = False, progress: bool = False,
                 **label_kwargs: Any) -> dict[str, np.ndarray]:
    """Label image files or arrays into a CSV table with a JSON sidecar, as ``microvae label`` does.

    The work is split into chunks; finished chunks are kept in ``<output>.parts/`` until the
    table is written, so a call interrupted (or failed) after some chunks resumes where it
    stopped when repeated with the same inputs and options.

    Parameters
    ----------
    inputs : path, array_like, or a sequence of them
        Image stacks or volumes: files in any format of :func:`microvae.io.read`, Zarr
        (``.zarr``) or HDF5 (``.h5``, ``.hdf5``) stores of shape ``(N, H, W)`` or
        ``(N, D, H, W)``, or arrays in memory (binary, 1 = pore). Files and arrays are read by
        :func:`microvae.io.as_image_stack`: ``(H, W)``, ``(N, H, W)`` 2D images or
        ``(N, D, H, W)`` volumes. A store is read by the workers, chunk by chunk, unless it
        is sliced or a volume.
    output : str or Path
        CSV file, one row per image; the sidecar ``<output>.json`` records the inputs, the
        options and the meaning of the validity flags.
    pore_value : scalar, optional
        Stored value that marks pore in files (:func:`microvae.io.load`; not needed for 0/1 data).
    key, shape, dtype :
        Array name inside an ``.npz`` with several arrays; shape and dtype of raw files.
    volume : bool
        Each file or array is one 3D volume ``(D, H, W)``, labeled as a volume unless sliced.
    dataset : str, optional
        Array path inside a Zarr group or HDF5 file.
    slice_size : int, optional
        Cut every volume into ``slice_size`` × ``slice_size`` slices on a regular grid
        (:func:`microvae.io.slices`) and label the slices; the table then gives each slice's
        ``volume``, ``axis``, ``plane``, ``row`` and ``col``.
    axes : sequence of {0, 1, 2}
        With ``slice_size``: axes normal to the cutting planes.
    stride : int, optional
        With ``slice_size``: grid step (default ``slice_size``).
    batch_size : int, optional
        Images per chunk, the unit of progress and resume (default: about 16 million pixels;
        ``method="fullfield"``: about 1 million, four 64³ volumes).
    client : dask.distributed.Client or str, optional
        Label the chunks on this cluster: a client, or the address of a running scheduler
        (connected to for this call). Default: in this process.
    processes : int, optional
        Label the chunks on a new local cluster of this many worker processes
        (:func:`local_client`), closed at the end.
    overwrite : bool
        Replace an existing ``output`` and discard chunks saved by an earlier call.
    progress : bool
        Progress bar over images.
    **label_kwargs
        Passed to :func:`microvae.properties.label` (``d``, ``K1``, ``G1``, ``voxel_size``,
        ``periodic``, ``margin``, ``extrapolate``, ``harmonics``, ``method``) and recorded in
        the sidecar (the first eight with their defaults when not given).

    Returns
    -------
    dict of str -> ndarray
        The table's columns: ``file`` (index into ``inputs``), ``image`` (index in its file),
        the slice positions when sliced (-1 for inputs that were not), then the labels
        (``valid`` as 0/1).
    """
    import inspect

    from ._validate import check_moduli, check_voxel_size
    from .io import check_overwrite, folders, save_table, sidecar_path
    from .properties import label

    items = [inputs] if isinstance(inputs, (str, os.PathLike, np.ndarray)) else list(cast(Sequence, inputs))
    if not items:
        raise ValueError("inputs holds no file or array")
    if client is not None and processes:
        raise ValueError("give either client= (an existing cluster) or processes= (a local one), not both")
    output = Path(output)
    check_overwrite(output, sidecar_path(output), overwrite=overwrite)
    defaults = inspect.signature(label).parameters
    label_kwargs = {**{k: defaults[k].default for k in _RECORDED_OPTIONS}, **label_kwargs}
    # Before any file is read or chunk labeled: these fail only once the formulas run.
    check_voxel_size(label_kwargs["voxel_size"])
    check_moduli(label_kwargs["K1"], label_kwargs["G1"])
    axes = tuple(axes)
    sources = _sources(items, pore_value=pore_value, key=key, shape=shape, dtype=dtype, volume=volume,
                       dataset=dataset, slice_size=slice_size, axes=axes, stride=stride)
    if label_kwargs.get("method") == "fullfield":
        from .fullfield import FULLFIELD_INVALID_FLAGS as invalid_flags
        validity = "1 when every solve converged"
        if batch_size is None:
            batch_size = max(1, _FULLFIELD_CHUNK_PIXELS // max(int(np.prod(src.shape[1:])) for src, _, _ in sources))
    else:
        from .properties.strong_contrast import INVALID_FLAGS as invalid_flags
        validity = "1 inside the formulas' range"
    # "axes" as the command line spells it, as in sidecars written before this function existed.
    params = {"inputs": [_fingerprint(item) for item in items], "sources": [desc for _, _, desc in sources],
              "pore_value": pore_value, "key": key, "dataset": dataset, "volume": volume, "slice": slice_size,
              "axes": ",".join(map(str, axes)), "stride": stride, "chunk": batch_size, **label_kwargs}
    parts_dir = output.with_name(output.name + ".parts")
    output.parent.mkdir(parents=True, exist_ok=True)
    # Held until the table is written: a second call for the same output is refused at once
    # (its chunks and its table would mix with this one's).
    with folders.lock(output.parent, str(output), name=f".{output.name}.lock"):
        own_client = isinstance(client, str) or bool(processes)
        if isinstance(client, str):
            from distributed import Client

            client = Client(client)
        elif processes:
            client = local_client(processes)
        try:
            labels = label_chunks([src for src, _, _ in sources], parts_dir, params, batch_size=batch_size,
                                  client=client, progress=progress, overwrite=overwrite, **label_kwargs)
        finally:
            if own_client:
                _close(client, processes)
        table = _table(sources, labels)
        params["columns_note"] = ("file: index into inputs; E = E/E1, D = De/D2, k in (pixel * voxel_size)^2, "
                                  f"K and G in the units of K1, G1; valid: {validity}; invalid: "
                                  "why not, as the sum of the bits in invalid_flags")
        params["invalid_flags"] = {str(bit): text for bit, text in invalid_flags.items()}
        save_table(output, table, params, overwrite=overwrite)
        shutil.rmtree(parts_dir, ignore_errors=True)
    return table


def _sources(inputs, *, pore_value, key, shape, dtype, volume, dataset, slice_size, axes, stride):
    """Per input: (sliceable images, slice positions or None, description for the sidecar)."""
    from ._validate import as_binary_batch
    from .io import as_image_stack, is_store, load, slices

    out: list[tuple[Any, np.ndarray | None, str]] = []
    for i, item in enumerate(inputs):
        if isinstance(item, (str, os.PathLike)):
            name = desc = str(item)
            if is_store(item):
                store = open_store(item, dataset)
                if not (slice_size or volume):
                    out.append((store, None, repr(store)))
                    continue
                data = store[:]
                if data.ndim == 3 and volume:
                    data = data[None]
                images, nd = (data, data.ndim - 1) if data.ndim == 4 else (data, 2)
            else:
                images, nd = as_image_stack(load(item, pore_value, shape=shape, dtype=dtype, key=key), volume=volume)
        else:
            name = f"inputs[{i}]"
            images, nd = as_binary_batch(*as_image_stack(item, volume=volume), name=name)
            desc = f"{name}: array of shape {images.shape}"
        if slice_size is not None:
            if nd != 3:
                raise ValueError(f"slice_size={slice_size} needs volumes; {name} holds 2D images of shape "
                                 f"{images.shape[1:]} (pass volume=True if the file is one volume)")
            cut = [slices(vol, slice_size, stride=stride or slice_size, axes=axes, return_positions=True)
                   for vol in images]
            pos = np.concatenate([np.column_stack([np.full(len(p), v), p]) for v, (_, p) in enumerate(cut)])
            out.append((np.concatenate([c for c, _ in cut]), pos, desc))
        else:
            out.append((images, None, desc))
    return out


def _fingerprint(item):
    """What identifies an input on resume: a file's path, size and time, an array's content hash."""
    if not isinstance(item, (str, os.PathLike)):
        arr = np.ascontiguousarray(item)
        return {"array": list(arr.shape), "dtype": arr.dtype.str,
                "sha256": hashlib.sha256(arr.tobytes()).hexdigest()[:16]}
    p = Path(item)
    if p.is_dir():
        files = [f for f in p.rglob("*") if f.is_file()]
        return {"path": str(p.resolve()), "bytes": sum(f.stat().st_size for f in files),
                "mtime": max((f.stat().st_mtime for f in files), default=0.0)}
    st = p.stat()
    return {"path": str(p.resolve()), "bytes": st.st_size, "mtime": st.st_mtime}


def _table(sources, labels):
    """The CSV columns: file and image indices, slice positions when any input was sliced, labels."""
    columns: dict[str, list] = {"file": [], "image": []}
    with_pos = any(pos is not None for _, pos, _ in sources)
    if with_pos:
        columns.update({"volume": [], "axis": [], "plane": [], "row": [], "col": []})
    for f, ((_, pos, _), lab) in enumerate(zip(sources, labels)):
        n = len(lab["porosity"])
        columns["file"].append(np.full(n, f))
        columns["image"].append(np.arange(n))
        if with_pos:
            pos = pos if pos is not None else np.full((n, 5), -1)
            for c, key in enumerate(("volume", "axis", "plane", "row", "col")):
                columns[key].append(pos[:, c])
    table = {k: np.concatenate(v) for k, v in columns.items()}
    merged = {k: np.concatenate([lab[k] for lab in labels]) for k in labels[0]}
    table.update({k: v.astype(np.int64) if v.dtype == bool else v for k, v in merged.items()})
    return table
