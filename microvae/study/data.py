"""The authentic pool (embedded set, or samples cut from user images) and the index bookkeeping:
train / validation / test split, the generated samples drawn for a cell, the plan of cells."""
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import as_binary_batch
from .config import StudyConfig
from .keys import derive_seed

__all__ = ["split_indices", "draw_indices", "plan_cells", "cell_indices", "embedded_dataset", "authentic_pool"]


def split_indices(n: int, n_train: int, n_val: int, n_test: int, *, seed: int) -> dict[str, NDArray[np.int64]]:
    """Disjoint random train / validation / test index arrays into ``n`` labeled images."""
    if n_train + n_val + n_test > n:
        raise ValueError(f"need {n_train + n_val + n_test} authentic images for the splits, have {n}")
    order = np.random.default_rng(derive_seed(seed, "split")).permutation(n)
    return {"train": np.sort(order[:n_train]), "val": np.sort(order[n_train:n_train + n_val]),
            "test": np.sort(order[n_train + n_val:n_train + n_val + n_test])}


def draw_indices(pool_size: int, added: int, draw: int, generator: str, *, seed: int) -> NDArray[np.int64]:
    """Indices of the generated samples added in one cell; all of them when ``added >= pool_size``."""
    if added >= pool_size:
        return np.arange(pool_size)
    rng = np.random.default_rng(derive_seed(seed, "draw", generator, added, draw))
    return np.sort(rng.choice(pool_size, size=added, replace=False))


def plan_cells(config: StudyConfig, pool_sizes: dict[str, int] | None = None) -> list[dict]:
    """The training cells of a study, in run order: baseline draws, then every (generator, size, draw).

    Parameters
    ----------
    config : StudyConfig
    pool_sizes : dict, optional
        Generator name -> number of usable (finite-labeled) generated samples; defaults to
        ``n_generated``. A size at or above the pool size is run once, with the whole pool; a
        generator without usable samples gets no cells.

    Returns
    -------
    list of dict
        ``{"key", "generator", "added", "draw", "cnn_seed"}``; ``generator`` is ``None`` and
        ``added`` 0 for the baseline.
    """
    cells = [{"key": f"baseline_d{d:02d}", "generator": None, "added": 0, "draw": d,
              "cnn_seed": derive_seed(config.seed, "cnn", d)} for d in range(config.draws)]
    for g in config.generators:
        pool = (pool_sizes or {}).get(g, config.n_generated)
        if pool == 0:
            continue
        for m in config.added:
            n_draws = 1 if m >= pool else config.draws
            for d in range(n_draws):
                cells.append({"key": f"{g}_m{m:05d}_d{d:02d}", "generator": g, "added": m, "draw": d,
                              "cnn_seed": derive_seed(config.seed, "cnn", d)})
    return cells


def cell_indices(cell: dict, split: dict, usable: dict, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training set of one cell: authentic training indices and indices into the generated set.

    ``usable`` maps generator names to the indices of their samples with finite labels. The
    authentic part is always ``split["train"]``: validation and test images never enter training.
    """
    gen_idx = np.empty(0, dtype=np.int64)
    if cell["generator"] is not None:
        pool = np.asarray(usable[cell["generator"]])
        gen_idx = pool[draw_indices(len(pool), cell["added"], cell["draw"], cell["generator"], seed=seed)]
    return np.asarray(split["train"]), gen_idx


def embedded_dataset(config: StudyConfig, n: int, *, held_out: bool = False) -> NDArray[np.uint8]:
    """The default authentic set: ``n`` sandstone-like images from :func:`microvae.synthetic.grains`.

    ``held_out=True`` draws ``n`` other images of the same generator (another seed): authentic
    images that no generator learns from, for the realism section's classifier test.
    """
    from ..synthetic import grains

    size = config.image_size
    seed = derive_seed(config.seed, "embedded", "held-out") if held_out else derive_seed(config.seed, "embedded")
    return grains((size, size), n=n, seed=seed, **config.synthetic)


def authentic_pool(images: ArrayLike, *, ndim: int, size: int, needed: int,
                   seed: int) -> tuple[NDArray[np.uint8], dict]:
    """Square ``size``-pixel samples from user data, without overlap where the data allows.

    Parameters
    ----------
    images : ndarray
        ``(N, H, W)`` binary 2D images, or one volume ``(1, D, H, W)`` (``ndim=3``).
    ndim : {2, 3}
    size : int
    needed : int
        Minimum number of samples.
    seed : int

    Returns
    -------
    pool : ndarray ``(n, size, size)`` uint8
    note : dict
        How the samples were cut (recorded in results.json and the report).

    Notes
    -----
    A volume is cut into planes normal to all three axes on a grid of step ``size`` (planes
    ``size`` apart, tiles that do not overlap within a plane; slices along different axes
    share one line of voxels at most). When that grid is too small, the step shrinks to the
    largest one that gives ``needed`` samples and the note says by how much samples overlap:
    overlapping samples in different splits make the test R² optimistic. 2D images larger
    than ``size`` are cut into non-overlapping tiles.
    """
    from ..io import slices

    batch, nd = as_binary_batch(images, ndim=ndim)
    if nd == 3:
        if len(batch) != 1:
            raise ValueError(f"give one volume (D, H, W), got {len(batch)} volumes")
        vol = batch[0]
        if min(vol.shape) < size:
            raise ValueError(f"volume of shape {vol.shape} is smaller than the image size {size}")
        for stride in range(size, 0, -1):
            count = sum(len(range(0, vol.shape[a], stride))
                        * math.prod(len(range(0, s - size + 1, stride)) for i, s in enumerate(vol.shape) if i != a)
                        for a in range(3))
            if count >= needed:
                break
        else:
            raise ValueError(f"a volume of shape {vol.shape} holds fewer than {needed} samples of {size} px")
        pool = slices(vol, size, stride=stride, seed=seed)
        note = {"kind": "volume slices along axes 0, 1, 2", "volume_shape": list(vol.shape), "stride": stride,
                "in_plane_overlap_px": size - stride, "grid_samples": int(len(pool))}
        return pool, note
    n, h, w = batch.shape
    if h < size or w < size:
        raise ValueError(f"images are {h}x{w} px, smaller than the study's image size {size}; pass a smaller size")
    tiles = batch[:, :h - h % size, :w - w % size].reshape(n, h // size, size, w // size, size)
    pool = tiles.transpose(0, 1, 3, 2, 4).reshape(-1, size, size)
    if len(pool) < needed:
        raise ValueError(f"{n} images of {h}x{w} px give {len(pool)} tiles of {size} px; the study needs {needed}")
    note = {"kind": "2D images" if (h, w) == (size, size) else f"non-overlapping {size} px tiles of 2D images",
            "source_shape": [n, h, w], "grid_samples": int(len(pool))}
    return np.ascontiguousarray(pool), note
