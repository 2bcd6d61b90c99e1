"""Local pixel configurations: the frequencies of the binary patterns of small windows."""
import numpy as np
from numpy.typing import ArrayLike

from .._validate import as_binary_batch, check_int

__all__ = ["pattern_histogram"]


def pattern_histogram(images: ArrayLike, size: int | None = None, *, ndim: int | None = None) -> np.ndarray:
    """Frequencies of the binary configurations of every ``size``-pixel window of each image.

    The windows are all positions of a square (cube) of ``size`` pixels per side inside the
    image; a window's configuration is the number whose bits are its pixels (row-major, the
    first pixel the lowest bit). The 2x2 configurations fix the area, perimeter and Euler
    characteristic (Minkowski functionals) of a pixel image; 3x3 ones add its local shape: the
    curvature of the boundary, corners and cusps, one-pixel specks and necks.

    Parameters
    ----------
    images : array_like
        Binary ``(H, W)``, ``(N, H, W)`` or ``(N, D, H, W)``, 1 = pore.
    size : int, optional
        Window side, pixels (default 3 in 2D, 2 in 3D); at most 16 pixels per window
        (``size**ndim <= 16``: up to 65 536 configurations).
    ndim : {None, 2, 3}
        Spatial dimension; pass ``ndim=3`` for a single volume ``(D, H, W)``.

    Returns
    -------
    ndarray of float64, shape ``(N, 2 ** size**ndim)``
        Per image, the fraction of its windows in each configuration (rows sum to 1).
    """
    batch, nd = as_binary_batch(images, ndim=ndim)
    size = check_int(size if size is not None else (3 if nd == 2 else 2), "size")
    if size ** nd > 16:
        raise ValueError(f"size={size} gives {size ** nd} pixels per window in {nd}D; at most 16 are supported")
    if size > min(batch.shape[1:]):
        raise ValueError(f"size={size} exceeds the smallest side of images of shape {batch.shape[1:]}")
    inner = tuple(n - size + 1 for n in batch.shape[1:])
    code = np.zeros((len(batch),) + inner, dtype=np.int64)
    for bit, offset in enumerate(np.ndindex(*(size,) * nd)):
        window = (slice(None),) + tuple(slice(o, o + n) for o, n in zip(offset, inner))
        code |= batch[window].astype(np.int64) << bit
    n_codes = 2 ** size ** nd
    counts = np.bincount((code.reshape(len(batch), -1) + n_codes * np.arange(len(batch))[:, None]).ravel(),
                         minlength=n_codes * len(batch)).reshape(len(batch), n_codes)
    return counts / code[0].size
