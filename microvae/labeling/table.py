"""Label image files or arrays into a CSV table with a JSON sidecar: :func:`label_to_csv`,
``microvae label`` from Python.

Inputs (files, stores, arrays, optionally sliced into 2D samples) become the sources of
:func:`~microvae.labeling.label_chunks`, labeled in this process, on local worker processes or
on a Dask cluster, and the finished chunks become one table recording each image's file, index
and slice position.
"""
import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..io import open_store
from .chunks import close_client, label_chunks, local_client

__all__ = ["label_to_csv"]

# Full-field solves take ~1.5 min per 64³ volume: chunks of four such volumes resume in minutes.
_FULLFIELD_CHUNK_PIXELS = 2 ** 20
# Options of microvae.properties.label that a table's sidecar records, defaults included.
_RECORDED_OPTIONS = ("d", "K1", "G1", "voxel_size", "periodic", "margin", "extrapolate", "harmonics")


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

    from .._validate import check_moduli, check_voxel_size
    from ..io import check_overwrite, folders, save_table, sidecar_path
    from ..properties import label

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
        from ..fullfield import FULLFIELD_INVALID_FLAGS as invalid_flags
        validity = "1 when every solve converged"
        if batch_size is None:
            batch_size = max(1, _FULLFIELD_CHUNK_PIXELS // max(int(np.prod(src.shape[1:])) for src, _, _ in sources))
    else:
        from ..properties.strong_contrast import INVALID_FLAGS as invalid_flags
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
                close_client(client, processes)
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
    from .._validate import as_binary_batch
    from ..io import as_image_stack, is_store, load, slices

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
