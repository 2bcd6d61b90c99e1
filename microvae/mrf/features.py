"""Neighbourhood tables: the predictors of the MRF's classification trees.

A neighbourhood is a fixed list of pixel offsets ``(di, dj)`` relative to the target pixel
``(i, j)`` (rows grow downwards, columns to the right). The order of the offsets is the order of
the tree's features, and the compiled sampler reads the same offsets, so this module is the one
place that defines them.

Convention: images are binary, 1 = pore, 0 = solid; tables are ``uint8``.
"""
import numpy as np
from numpy.typing import ArrayLike

from .._validate import Seed, as_binary_batch, as_generator, check_int

__all__ = ["causal_offsets", "noncausal_offsets", "valid_window", "neighbourhood_table", "sample_positions",
           "collapse_duplicates"]


def causal_offsets(S: int) -> np.ndarray:
    """Offsets of the causal (raster-scan) neighbourhood of half-width ``S``.

    The ``S`` rows above the pixel over columns ``j - S .. j + S``, then the ``S`` pixels to its
    left in its own row: every one of them precedes ``(i, j)`` in raster order, so a raster scan
    can draw each pixel from ``P(pixel | causal neighbourhood)``. ``2 S (S + 1)`` offsets, ordered
    row by row (top row first), left to right.

    Returns
    -------
    ndarray of int64, shape ``(2 S (S + 1), 2)``
        ``(di, dj)`` per feature.
    """
    S = _check_half_width(S)
    above = [(di, dj) for di in range(-S, 0) for dj in range(-S, S + 1)]
    left = [(0, dj) for dj in range(-S, 0)]
    return np.asarray(above + left, dtype=np.int64).reshape(-1, 2)


def noncausal_offsets(S: int) -> np.ndarray:
    """Offsets of the full ``(2 S + 1) x (2 S + 1)`` square around the pixel, centre excluded.

    Used by the Gibbs refinement, which redraws a pixel given all its neighbours. Ordered row by
    row, left to right; ``(2 S + 1)**2 - 1`` offsets.
    """
    S = _check_half_width(S)
    return np.asarray([(di, dj) for di in range(-S, S + 1) for dj in range(-S, S + 1) if (di, dj) != (0, 0)],
                      dtype=np.int64)


def _check_half_width(S):
    return check_int(S, "neighbourhood half-width S")


def valid_window(shape: tuple[int, int], offsets: ArrayLike) -> tuple[int, int, int, int]:
    """Rows ``[i0, i1)`` and columns ``[j0, j1)`` of the pixels whose whole neighbourhood lies
    inside an image of ``shape``: ``(i0, i1, j0, j1)``. Raises if no pixel qualifies."""
    offsets = np.asarray(offsets)
    h, w = shape
    i0 = max(0, -int(offsets[:, 0].min()))
    i1 = h - max(0, int(offsets[:, 0].max()))
    j0 = max(0, -int(offsets[:, 1].min()))
    j1 = w - max(0, int(offsets[:, 1].max()))
    if i1 <= i0 or j1 <= j0:
        span = (int(np.ptp(offsets[:, 0])) + 1, int(np.ptp(offsets[:, 1])) + 1)
        raise ValueError(f"images of shape {tuple(shape)} are too small for a neighbourhood spanning "
                         f"{span[0]} x {span[1]} pixels (rows x columns, target included)")
    return i0, i1, j0, j1


def sample_positions(shape: tuple[int, int], n_images: int, offsets: ArrayLike, max_samples: int | None = None, *,
                     seed: Seed = None) -> np.ndarray:
    """Training pixels: every pixel with a complete neighbourhood, or a seeded uniform subset.

    Parameters
    ----------
    shape : (int, int)
        Image shape.
    n_images : int
    offsets : array_like, shape ``(K, 2)``
        The largest neighbourhood the positions must accommodate.
    max_samples : int, optional
        Keep at most this many positions, drawn without replacement (uniformly over all
        images and valid pixels); ``None`` keeps all.
    seed : int or numpy Generator, optional

    Returns
    -------
    ndarray of int64, shape ``(M, 3)``
        ``(image, row, column)`` per position, sorted (good memory locality for the gathers).
    """
    i0, i1, j0, j1 = valid_window(shape, offsets)
    per_image = (i1 - i0) * (j1 - j0)
    total = n_images * per_image
    if max_samples is None or max_samples >= total:
        flat = np.arange(total, dtype=np.int64)
    else:
        flat = np.sort(as_generator(seed).choice(total, size=int(max_samples), replace=False))
    img, rest = np.divmod(flat, per_image)
    row, col = np.divmod(rest, j1 - j0)
    return np.stack([img, row + i0, col + j0], axis=1)


def neighbourhood_table(images: ArrayLike, offsets: ArrayLike,
                        positions: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predictor table: the neighbourhood values of each training pixel, and the pixel itself.

    Parameters
    ----------
    images : array_like
        Binary batch ``(N, H, W)`` or one image ``(H, W)``; 1 = pore.
    offsets : array_like of int, shape ``(K, 2)``
        Neighbourhood, e.g. :func:`causal_offsets`.
    positions : array_like of int, shape ``(M, 3)``, optional
        ``(image, row, column)`` of the pixels to tabulate (each with its neighbourhood inside
        the image, e.g. from :func:`sample_positions`). Default: every pixel with a complete
        neighbourhood, image by image in raster order.

    Returns
    -------
    X : ndarray of uint8, shape ``(M, K)``
        ``X[m, k] = image[row + di_k, col + dj_k]``.
    y : ndarray of uint8, shape ``(M,)``
        The pixel values (the targets).

    Notes
    -----
    Built with one vectorized gather per offset (``K`` NumPy operations over all pixels), so
    the cost is ``O(M K)`` with no Python loop over pixels.
    """
    batch, nd = as_binary_batch(images)
    if nd != 2:
        raise ValueError("neighbourhood tables are defined for 2D images (N, H, W)")
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.ndim != 2 or offsets.shape[1] != 2 or len(offsets) == 0:
        raise ValueError(f"offsets must have shape (K, 2), got {offsets.shape}")
    shape = batch.shape[1:]
    i0, i1, j0, j1 = valid_window(shape, offsets)
    if positions is None:
        X = np.empty((len(batch) * (i1 - i0) * (j1 - j0), len(offsets)), dtype=np.uint8)
        for k, (di, dj) in enumerate(offsets):
            X[:, k] = batch[:, i0 + di:i1 + di, j0 + dj:j1 + dj].ravel()
        return X, batch[:, i0:i1, j0:j1].ravel()
    positions = np.asarray(positions)
    if positions.ndim != 2 or positions.shape[1] != 3 or not np.issubdtype(positions.dtype, np.integer):
        raise ValueError(f"positions must be an integer array of shape (M, 3), got {positions.dtype} {positions.shape}")
    n, r, c = positions.T
    if (np.any((n < 0) | (n >= len(batch))) or np.any((r < i0) | (r >= i1)) or np.any((c < j0) | (c >= j1))):
        raise ValueError(f"positions must name existing images and pixels with a complete neighbourhood "
                         f"(rows {i0}..{i1 - 1}, columns {j0}..{j1 - 1})")
    # One flat index per position, shifted per offset, gathered into contiguous rows of the
    # transposed table: three times faster than fancy indexing into the table's strided columns.
    flat = batch.reshape(-1)
    w = shape[1]
    base = (n * shape[0] + r) * w + c
    Xt = np.empty((len(offsets), len(positions)), dtype=np.uint8)
    for k, (di, dj) in enumerate(offsets):
        np.take(flat, base + (di * w + dj), out=Xt[k])
    return np.ascontiguousarray(Xt.T), flat[base]


def collapse_duplicates(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge identical (neighbourhood, target) rows into one row weighted by its multiplicity.

    A tree grown on the weighted unique rows (``sample_weight=counts``, leaf sizes enforced as
    weights) sees exactly the class counts of the full table at every split, so it is the same
    tree up to ties between equally good splits, and much cheaper to grow: most pixels of a
    sandstone image sit inside a grain or a pore, with one of few neighbourhood patterns
    (on Berea 128^2 slices, S = 6: 30 % of the rows are unique).

    Returns
    -------
    X_unique : ndarray of uint8, shape ``(U, K)``
    y_unique : ndarray of uint8, shape ``(U,)``
    counts : ndarray of float64, shape ``(U,)``
        Number of rows merged into each unique row.
    """
    packed = np.ascontiguousarray(np.packbits(np.concatenate([X, y[:, None]], axis=1), axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1])))[:, 0]
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return X[first], y[first], counts.astype(np.float64)
