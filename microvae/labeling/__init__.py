"""Labeling at scale: the :func:`microvae.properties.label` kernel over many images, in chunks
that are saved as they finish (an interrupted run resumes), in this process or on a Dask
cluster (``dask.distributed``), from NumPy, Dask, Zarr or HDF5 arrays and image files.

:func:`label_to_csv` is ``microvae label`` from Python: files or arrays in, a CSV table with a
JSON sidecar out. :func:`label_dask` returns the labels of one stack; :func:`label_chunks`
labels several stacks with resume.

Modules: :mod:`.chunks` (chunks in this process or on a Dask cluster, resumable) and
:mod:`.table` (:func:`label_to_csv`: inputs to a CSV table). Every public name is importable
from ``microvae.labeling``.

Pointing it at a real cluster: start a scheduler and workers (``dask scheduler`` /
``dask worker ADDRESS``, or a deployment such as dask-jobqueue or dask-kubernetes), make
microvae importable on every worker (same version), keep the data where workers can read it
(a shared file system or object store path for Zarr/HDF5; workers open the store themselves
and read only their chunk), then ``label_dask(path, client=Client(ADDRESS))``,
``label_to_csv(paths, output, client=ADDRESS)`` or ``microvae label ... --scheduler ADDRESS``.
Each task labels one chunk with the FFT threads of its worker; use one thread per worker
process for CPU-bound labeling (``dask worker --nthreads 1 --nworkers N``).
"""
from .chunks import label_chunks, label_dask, local_client
from .table import label_to_csv

__all__ = ["label_to_csv", "label_dask", "label_chunks", "local_client"]
