"""Reading torch files (checkpoints, weights) without running code stored in them, with refusals
in microvae's words.

``torch.load(weights_only=True)`` rebuilds tensors and plain containers only; a file that needs
more is refused. torch's own refusal suggests loading again with ``weights_only=False``, which
would execute whatever the file's author put in it; that advice is never passed on.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["load_torch_file"]


def load_torch_file(path: str | os.PathLike, what: str) -> Any:
    """The object stored in a torch file, on the CPU, tensors and plain containers only.

    Parameters
    ----------
    path : str or Path
        A file written by ``torch.save``.
    what : str
        What the file should hold ("checkpoint", "style weights"), for the messages.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a torch file, a damaged one, one holding pickled objects other than tensors and
        plain containers, or tensors without data (meta tensors).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        if isinstance(exc, pickle.UnpicklingError) and "unsupported global" in str(exc).lower():
            # torch's text goes on to suggest weights_only=False: never repeat it.
            raise ValueError(f"{what} {path}: holds pickled Python objects besides tensors and plain containers; "
                             "microvae never loads those (they can run code): save tensors only, e.g. "
                             "torch.save(model.state_dict(), path)") from None
        detail = " ".join(str(exc).split()).split(". ")[0]  # torch's first sentence says what failed
        if isinstance(exc, pickle.UnpicklingError) or "weights_only" in detail:
            detail = "not a torch file"
        raise ValueError(f"{what} {path}: not a readable {what} file ({detail[:200]}; damaged, cut short or another "
                         "format?)") from None
    if any(t.is_meta for t in _tensors(obj)):
        raise ValueError(f"{what} {path}: holds tensors without data (meta tensors, as made on the 'meta' device); "
                         "save the tensors of a model that holds its weights")
    return obj


def _tensors(obj):
    """Every tensor in nested dicts, lists and tuples."""
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value)
