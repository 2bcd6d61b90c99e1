"""Records of results: CSV tables with a JSON sidecar of provenance, and the JSON every file gets.

One JSON policy for every file microvae writes (label sidecars, comparison results, the
study's run folder): :func:`jsonable` turns results into data the :mod:`json` module writes
as standard JSON, with NaN and infinities as ``null`` (JSON has no non-finite numbers, and
``NaN`` tokens break strict readers), and :func:`write_json` writes it atomically.
"""
import math
import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .files import atomic_write, check_overwrite

__all__ = ["jsonable", "write_json", "provenance", "save_table", "sidecar_path"]


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON data: the same values in types :func:`json.dumps` writes as standard JSON.

    Parameters
    ----------
    obj : object
        Mappings, lists, tuples and NumPy arrays (converted recursively), numbers and NumPy
        scalars, strings, booleans, ``None`` and paths.

    Returns
    -------
    object
        Mappings become dicts with the same keys (so ``sort_keys`` orders them as before),
        lists, tuples and arrays become lists, NumPy scalars Python numbers and booleans,
        paths strings, and NaN and infinities ``None`` (written as ``null``).

    Raises
    ------
    TypeError
        For any other type.
    """
    if isinstance(obj, Mapping):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):  # NumPy integers and booleans
        return obj.item()
    if isinstance(obj, PurePath):
        return str(obj)
    if obj is None or isinstance(obj, (str, int)):
        return obj
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, obj: Any, *, overwrite: bool = False, indent: int | None = 2) -> Path:
    """Write ``obj`` as standard JSON (through :func:`jsonable`: NaN becomes ``null``), atomically.

    Parameters
    ----------
    path : str or Path
        File to write (atomically; an existing file is kept unless ``overwrite``).
    obj : object
        Anything :func:`jsonable` takes.
    overwrite : bool
    indent : int or None
        Indentation of :func:`json.dumps` (``None``: one line).

    Returns
    -------
    Path
    """
    import json

    text = json.dumps(jsonable(obj), indent=indent, allow_nan=False)
    return atomic_write(path, lambda fh: fh.write(text), overwrite=overwrite, mode="w")


def provenance(parameters: dict) -> dict:
    """Metadata recorded beside every output: code version, time, and the parameters used."""
    import datetime
    import platform

    from .._version import __version__

    return {"microvae_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "parameters": parameters}


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of a table written by :func:`save_table`: ``<path>.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def save_table(path: str | os.PathLike, columns: dict[str, ArrayLike], parameters: dict, *,
               overwrite: bool = False) -> tuple[Path, Path]:
    """Write a CSV table with a header plus a JSON sidecar ``<path>.json`` holding provenance.

    Parameters
    ----------
    path : str or Path
        CSV file to write (atomically; existing files are kept unless ``overwrite``).
    columns : dict of str -> 1-D array_like
        Column name to values; all columns must have the same length.
    parameters : dict
        JSON-serializable parameters of the computation (:func:`jsonable`), stored in the sidecar.

    Returns
    -------
    (Path, Path)
        The CSV and the sidecar paths.
    """
    import csv

    path = Path(path)
    names = list(columns)
    cols = [np.asarray(columns[k]).ravel() for k in names]
    if not cols or len({len(c) for c in cols}) != 1:
        raise ValueError("columns must be a non-empty mapping of equal-length 1-D arrays")
    sidecar = sidecar_path(path)
    check_overwrite(path, sidecar, overwrite=overwrite)

    def write_csv(fh):
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in zip(*cols):
            writer.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row])

    meta = provenance(parameters)
    meta["columns"] = names
    meta["rows"] = int(len(cols[0]))
    atomic_write(path, write_csv, overwrite=overwrite, mode="w")
    write_json(sidecar, meta, overwrite=overwrite)
    return path, sidecar
