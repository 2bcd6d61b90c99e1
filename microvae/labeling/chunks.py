"""Labeling in chunks: the :func:`microvae.properties.label` kernel mapped over the chunks of an
image stack, in this process or on a Dask cluster (``dask.distributed``), each finished chunk
saved so that an interrupted run resumes.

:func:`label_dask` returns the labels of one stack; :func:`label_chunks` labels several stacks
with resume; :func:`local_client` starts a local cluster of worker processes and
:func:`close_client` closes it quietly.
"""
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..io import atomic_write, check_safe_array, jsonable, open_store, write_json

__all__ = ["label_dask", "label_chunks", "local_client"]

_CHUNK_PIXELS = 2 ** 24


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
    from ..properties import label

    batch = np.asarray(source[start:stop])
    return label(batch, ndim=batch.ndim - 1, **label_kwargs)


def _label_block(block, label_kwargs):
    from ..properties import label

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

    from ..threads import worker_env

    # Ctrl-C reaches every process of the job: the workers ignore it, and this process stops them
    # as it closes the cluster, instead of one traceback per worker.
    cluster = LocalCluster(n_workers=processes, threads_per_worker=1, processes=True, env=worker_env(processes),
                           preload=[_WORKER_PRELOAD])
    return Client(cluster)


def close_client(client: Any, processes: int | None) -> None:
    """Close a client made by this package (and its local cluster), without the messages Dask
    logs when workers are stopped in the middle of a task (after an error or Ctrl-C): warnings,
    and the scheduler's CRITICAL "Closed comm" lines for each result it can no longer send.

    Parameters
    ----------
    client : dask.distributed.Client
        A client this package made (:func:`local_client`, or one connected to an address).
    processes : int or None
        The worker processes of a local cluster made with the client; with none given (None
        or 0), the cluster behind the client is left running.
    """
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
