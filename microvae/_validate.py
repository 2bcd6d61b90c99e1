"""Input checks shared by every public array function.

The public layer validates and explains; compiled kernels assume clean input (the
scikit-image split between ``texture.py`` and ``_texture.pyx``).
"""
import math
import os

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = ["as_binary_batch", "batch_layout", "check_finite", "as_generator", "check_d", "check_positive",
           "check_porosity", "check_int", "check_float_dtype", "MEMORY_LIMIT_ENV", "memory_limit", "check_memory",
           "format_bytes", "MODULUS_RANGE", "MODULUS_RATIO_RANGE", "VOXEL_SIZE_RANGE", "check_moduli",
           "check_voxel_size"]

#: Environment variable holding the most memory one array (or one step's arrays) of microvae may
#: take, in bytes or with a suffix K, M, G, T (powers of 1024): "8G". Unset: the memory the system
#: reports available when the check runs.
MEMORY_LIMIT_ENV = "MICROVAE_MAX_MEMORY"


def check_finite(array: ArrayLike, name: str = "images") -> None:
    """Raise ``ValueError`` if a floating array holds NaN or inf."""
    array = np.asarray(array)
    if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf values")


def batch_layout(shape, ndim=None, name="images"):
    """``(add_batch_axis, ndim)`` for an array of ``shape`` under the rules of :func:`as_binary_batch`."""
    if ndim not in (None, 2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
    shape = tuple(shape)
    if ndim is None:
        if len(shape) in (2, 3, 4):
            return len(shape) == 2, 2 if len(shape) < 4 else 3
        raise ValueError(f"{name} must have shape (H, W), (N, H, W) or (N, D, H, W); got {shape}")
    if len(shape) not in (ndim, ndim + 1):
        raise ValueError(f"{name} with ndim={ndim} must have {ndim} or {ndim + 1} axes; got shape {shape}")
    return len(shape) == ndim, ndim


def as_binary_batch(images: ArrayLike, ndim: int | None = None, name: str = "images") -> tuple[np.ndarray, int]:
    """Validate a binary image batch and return it as ``uint8`` with a batch axis.

    Parameters
    ----------
    images : array_like
        ``(H, W)`` (one 2D image), ``(N, H, W)`` (N 2D images) or ``(N, D, H, W)`` (N volumes).
        Values must be 0/1 (or bool); 1 marks the pore phase.
    ndim : {None, 2, 3}
        Spatial dimension. ``None`` infers 2 for 2- and 3-dimensional arrays and 3 for
        4-dimensional ones. Pass ``ndim=3`` to hand over a single volume ``(D, H, W)``: a
        3-dimensional array is never silently taken as one volume.
    name : str
        Name used in error messages.

    Returns
    -------
    batch : ndarray of uint8, shape ``(N,) + spatial``
    ndim : int
        Spatial dimension (2 or 3).
    """
    arr = np.asarray(images)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric or boolean array, got dtype {arr.dtype}")
    add_axis, ndim = batch_layout(arr.shape, ndim, name)
    if add_axis:
        arr = arr[None]
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    check_finite(arr, name)
    if arr.dtype != bool:
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            values = np.unique(arr[bad])[:5]
            raise ValueError(
                f"{name} must be binary with 1 = pore and 0 = solid, but holds values such as {values.tolist()}; "
                "load with microvae.io.load(..., pore_value=...) or threshold grayscale data with "
                "microvae.io.binarize(image, threshold, pore_value)"
            )
    return np.ascontiguousarray(arr, dtype=np.uint8), ndim


#: What a ``seed`` argument accepts: an int, a NumPy Generator (used as is) or None (fresh entropy).
Seed = int | np.random.Generator | None


def as_generator(seed: Seed) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from an int, a Generator or ``None``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy Generator or None, got {type(seed).__name__}")


def check_d(d: int) -> None:
    """Raise ``ValueError`` unless ``d``, the dimension of the medium a formula describes, is 2 or 3."""
    if d not in (2, 3):
        raise ValueError(f"d must be 2 or 3, got {d!r}")


def check_positive(value: float, name: str) -> float:
    """``value`` as a float; ``TypeError`` if it is not a number, ``ValueError`` unless finite and > 0
    (lengths, radii, moduli)."""
    if isinstance(value, (bool, str)) or not np.isscalar(value) and np.ndim(value) != 0:
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not (np.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return x


#: Rock moduli ``K1``, ``G1`` (any unit) the property formulas take: they square and multiply
#: moduli, which over- or underflows float64 further out.
MODULUS_RANGE = (1e-100, 1e100)
#: ``K1 / G1`` of a solid: at the ends Poisson's ratio is within a few millionths of its
#: limits -1 and 1/2, beyond any real material.
MODULUS_RATIO_RANGE = (1e-6, 1e6)
#: Voxel sizes (any unit): permeabilities are in units of ``voxel_size**2``, which must stay a
#: normal float64.
VOXEL_SIZE_RANGE = (1e-100, 1e100)


def _check_range(value, name, bounds, why):
    x = check_positive(value, name)
    if not bounds[0] <= x <= bounds[1]:
        raise ValueError(f"{name}={value!r} lies outside [{bounds[0]:.0e}, {bounds[1]:.0e}] ({why})")
    return x


def check_moduli(K1: float, G1: float) -> tuple[float, float]:
    """``(K1, G1)`` as floats after the checks of :data:`MODULUS_RANGE` and :data:`MODULUS_RATIO_RANGE`."""
    why = "the formulas square the moduli; give them in other units, e.g. GPa"
    K1, G1 = _check_range(K1, "K1", MODULUS_RANGE, why), _check_range(G1, "G1", MODULUS_RANGE, why)
    if not MODULUS_RATIO_RANGE[0] <= K1 / G1 <= MODULUS_RATIO_RANGE[1]:
        raise ValueError(f"K1/G1 = {K1 / G1:.3g} lies outside [{MODULUS_RATIO_RANGE[0]:.0e}, "
                         f"{MODULUS_RATIO_RANGE[1]:.0e}]: no solid has a Poisson's ratio that close to -1 or 1/2")
    return K1, G1


def check_voxel_size(voxel_size: float) -> float:
    """``voxel_size`` as a float after the check of :data:`VOXEL_SIZE_RANGE`."""
    return _check_range(voxel_size, "voxel_size", VOXEL_SIZE_RANGE,
                        "permeability is in its square; give it in other units, e.g. micrometres")


def check_porosity(porosity: ArrayLike, name: str = "porosity") -> np.ndarray:
    """``porosity`` (scalar or array) as float64; ``ValueError`` unless every value lies in (0, 1)."""
    phi = np.asarray(porosity, dtype=np.float64)
    if np.any(~np.isfinite(phi)) or np.any((phi <= 0) | (phi >= 1)):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {phi}")
    return phi


def check_float_dtype(dtype: DTypeLike | None, name: str = "dtype") -> np.dtype | None:
    """``dtype`` as ``np.dtype('float64')`` or ``np.dtype('float32')`` (names, NumPy types and
    dtypes accepted), or None; ``ValueError`` for any other precision."""
    if dtype is None:
        return None
    try:
        value = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{name} must be float64 or float32, got {dtype!r}") from None
    if value not in (np.float64, np.float32):
        raise ValueError(f"{name} must be float64 or float32, got {dtype!r}")
    return value


def check_int(value: int, name: str, minimum: int = 1) -> int:
    """``value`` as an int; ``TypeError`` unless it is an integer (not a bool or a float),
    ``ValueError`` if it is below ``minimum`` (sizes and counts)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def format_bytes(n: int) -> str:
    """``n`` bytes in the largest binary unit below it: ``format_bytes(3 * 2**30) == '3.0 GiB'``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _available_memory():
    """Bytes the system says a new allocation can have: Linux's MemAvailable, else the physical
    memory (sysconf), else ``None``."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def memory_limit() -> tuple[int | None, str]:
    """``(bytes, where the number comes from)``: the most one allocation of microvae may take.

    ``MICROVAE_MAX_MEMORY`` when set (``ValueError`` if it is not a size), else the memory the
    system reports available now; ``(None, ...)`` where neither is known.
    """
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if text:
        scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1].upper(), 1)
        try:
            value = float(text[:-1] if scale > 1 else text) * scale
        except ValueError:
            value = -1
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{MEMORY_LIMIT_ENV}={text!r} is not a size; use bytes or a number with K, M, G or T "
                             "(e.g. 8G)")
        return int(value), f"{MEMORY_LIMIT_ENV}={text}"
    return _available_memory(), "the memory available on this machine"


def check_memory(nbytes: int, what: str, advice: str) -> None:
    """Raise ``MemoryError`` before an allocation of ``nbytes`` (computed with Python ints, so a
    huge request cannot overflow) that exceeds :func:`memory_limit`.

    ``what`` says what needs the memory ("1000000000 images of 128 x 128 px") and ``advice``
    what to change ("lower -n or --size"); both end up in the message.
    """
    limit, source = memory_limit()
    if limit is not None and nbytes > limit:
        raise MemoryError(f"{what} would take {format_bytes(nbytes)}, more than the {format_bytes(limit)} microvae "
                          f"may use ({source}); {advice}")
