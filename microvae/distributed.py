"""Deprecated home of Dask labeling and the Zarr/HDF5 store opener, kept for one release.

Import :func:`~microvae.labeling.label_dask` and :func:`~microvae.labeling.label_chunks` from
:mod:`microvae.labeling`, and :func:`~microvae.io.open_store` from :mod:`microvae.io`.
"""
import warnings

from .io import open_store
from .labeling import label_chunks, label_dask

__all__ = ["label_dask", "open_store", "label_chunks"]

warnings.warn("microvae.distributed is deprecated and will be removed in the next release: import label_dask and "
              "label_chunks from microvae.labeling, and open_store from microvae.io", DeprecationWarning, stacklevel=2)
