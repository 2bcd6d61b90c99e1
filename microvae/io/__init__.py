"""Data in and out: image files, Zarr/HDF5 stores, atomic writes, tables and JSON records.

Convention: the arrays this package returns are ``uint8`` with **1 = pore** and 0 = solid;
loaders take an explicit ``pore_value`` and never guess it. Writes are atomic (temporary file
+ rename) and refuse to replace an existing file unless ``overwrite=True``; every JSON file
is standard JSON (NaN written as ``null``).

Modules: :mod:`.readers` (read image files as stored), :mod:`.images` (load them as the pore
indicator, binarize, save and slice images), :mod:`.stores` (Zarr and HDF5 stores and their
safety checks), :mod:`.files` (atomic writes), :mod:`.folders` (run and study folders) and
:mod:`.records` (CSV tables with provenance, the JSON policy). Every public name is importable
from ``microvae.io``.
"""
from .files import atomic_write, check_overwrite
from .images import SAVE_SUFFIXES, as_image_stack, binarize, describe, load, save, slices
from .readers import array_info, read
from .records import jsonable, provenance, save_table, sidecar_path, write_json
from .stores import STORE_SUFFIXES, StoreArray, check_safe_array, is_store, open_store

__all__ = ["read", "array_info", "load", "as_image_stack", "binarize", "save", "slices", "describe", "SAVE_SUFFIXES",
           "atomic_write", "check_overwrite", "save_table", "sidecar_path", "provenance", "jsonable", "write_json",
           "open_store", "StoreArray", "is_store", "check_safe_array", "STORE_SUFFIXES"]
